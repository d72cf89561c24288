//! Pressure stall information (`/proc/pressure/memory`, v2 `memory.pressure`).

use std::path::Path;

use super::{ProbeError, read_optional};

/// One line of a PSI file.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    /// Percent of the last 10 s in which tasks stalled.
    pub avg10: f64,
    /// Over 60 s.
    pub avg60: f64,
    /// Over 300 s.
    pub avg300: f64,
    /// Total stall time, microseconds.
    pub total_us: u64,
}

/// A PSI file: `some` (at least one task stalled) and `full` (all non-idle tasks stalled).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    /// The `some` line.
    pub some: PsiLine,
    /// The `full` line; absent for CPU pressure on older kernels.
    pub full: Option<PsiLine>,
}

impl Pressure {
    /// Reads a PSI file; `Ok(None)` when the kernel has no PSI (file absent, or `psi=0` which
    /// makes reads fail with EOPNOTSUPP).
    pub fn read(path: &Path) -> Result<Option<Self>, ProbeError> {
        let text = match read_optional(path) {
            Ok(t) => t,
            Err(ProbeError::Io { source, .. }) if crate::sys::not_supported(&source) => None,
            Err(e) => return Err(e),
        };
        match text {
            None => Ok(None),
            Some(t) => Self::parse(&t)
                .map(Some)
                .map_err(|what| ProbeError::parse(path, what)),
        }
    }

    /// Parses `some avg10=.. avg60=.. avg300=.. total=..` and the `full` line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut some = None;
        let mut full = None;
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let kind = it.next();
            let mut parsed = PsiLine::default();
            for field in it {
                let (k, v) = field
                    .split_once('=')
                    .ok_or_else(|| format!("field {field:?} is not key=value"))?;
                let bad = || format!("{k} has a bad value {v:?}");
                match k {
                    "avg10" => parsed.avg10 = v.parse().map_err(|_| bad())?,
                    "avg60" => parsed.avg60 = v.parse().map_err(|_| bad())?,
                    "avg300" => parsed.avg300 = v.parse().map_err(|_| bad())?,
                    "total" => parsed.total_us = v.parse().map_err(|_| bad())?,
                    _ => {}
                }
            }
            match kind {
                Some("some") => some = Some(parsed),
                Some("full") => full = Some(parsed),
                _ => {}
            }
        }
        Ok(Pressure {
            some: some.ok_or("no `some` line")?,
            full,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_some_and_full() {
        let p = Pressure::parse(
            "some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\nfull avg10=0.75 avg60=0.10 avg300=0.00 total=999\n",
        )
        .unwrap();
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.total_us, 12345);
        assert_eq!(p.full.unwrap().avg10, 0.75);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Pressure::parse("").is_err());
        assert!(Pressure::parse("some avg10=x").is_err());
        assert!(Pressure::parse("some avg10").is_err());
    }
}
