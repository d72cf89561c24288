//! The value syntax of the config file: sizes, percents, thresholds and durations, read the same
//! way by every key and unit-tested on plain strings.

use std::fmt;
use std::time::Duration;

/// A size in bytes: `512MiB`, `1GiB`, `64KiB`, `512M` or a number of bytes. Single letters are
/// 1024-based, as in systemd's `MemoryMax=`; `MB`/`GB` are refused rather than guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses the size syntax; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
        let bad = |why: &str| Err(format!("invalid size {text:?}: {why}"));
        let shift = match unit.trim() {
            _ if digits.is_empty() => {
                return bad("expected a number of bytes or a number with KiB, MiB, GiB or TiB");
            }
            "" | "B" => 0,
            "K" | "KiB" | "k" => 10,
            "M" | "MiB" => 20,
            "G" | "GiB" => 30,
            "T" | "TiB" => 40,
            "KB" | "kB" | "MB" | "GB" | "TB" => {
                return bad(&format!(
                    "{unit} is ambiguous; write KiB, MiB, GiB or TiB (1024-based)"
                ));
            }
            other => {
                return bad(&format!(
                    "unknown unit {other:?} (use B, KiB, MiB, GiB or TiB)"
                ));
            }
        };
        let Ok(n) = digits.parse::<u64>() else {
            return bad("number too large");
        };
        n.checked_mul(1 << shift)
            .map_or_else(|| bad("too large"), |b| Ok(ByteSize(b)))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if self.0 != 0 && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{name}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A threshold on free or available memory: a share of a total (MemTotal, SwapTotal, a
/// cgroup's limit, known only when the scope is sampled) or a size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// Percent of the relevant total, 0 to 100.
    Percent(f64),
    /// An absolute number of bytes.
    Bytes(u64),
}

impl Amount {
    /// Parses `10%`, `2.5%` or a size.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let Some(num) = t.strip_suffix('%') else {
            let e = |e| format!("{e}, or a percent such as \"10%\"");
            return ByteSize::parse(t).map(|b| Amount::Bytes(b.0)).map_err(e);
        };
        match num.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Amount::Percent(p)),
            Ok(_) => Err(format!(
                "invalid percent {text:?}: must be within 0% to 100%"
            )),
            Err(_) => Err(format!(
                "invalid percent {text:?}: expected a number before %"
            )),
        }
    }

    /// The threshold in bytes for a scope whose total is `total` bytes.
    pub fn bytes_of(self, total: u64) -> u64 {
        match self {
            Amount::Bytes(b) => b,
            Amount::Percent(p) => ((total as f64) * p / 100.0) as u64,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Percent(p) => write!(f, "{p}%"),
            Amount::Bytes(b) => write!(f, "{}", ByteSize(*b)),
        }
    }
}

/// Parses `100ms`, `5s`, `1m`, `1h` (and `us`); a bare number is refused as ambiguous.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'));
    let (num, unit) = t.split_at(split.unwrap_or(t.len()));
    let bad = |why: &str| Err(format!("invalid duration {text:?}: {why}"));
    let Ok(n) = num.parse::<f64>() else {
        return bad("expected a number with a unit (ms, s, m, h)");
    };
    let secs = match unit.trim() {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "" => return bad("a unit is required (ms, s, m, h)"),
        other => return bad(&format!("unknown unit {other:?}")),
    };
    // Whole microseconds, as the file writes them back: "0.5us" would print as "0s".
    let micros = secs * 1e6;
    if !secs.is_finite() || secs > 365.0 * 86400.0 {
        bad("out of range")
    } else if (micros - micros.round()).abs() > 1e-3 {
        bad("finer than a microsecond")
    } else {
        Ok(Duration::from_micros(micros.round() as u64))
    }
}

/// Formats a duration the way the config file writes it.
pub fn format_duration(d: Duration) -> String {
    match d.as_micros() {
        us if us.is_multiple_of(1_000_000) => format!("{}s", us / 1_000_000),
        us if us.is_multiple_of(1000) => format!("{}ms", us / 1000),
        us => format!("{us}us"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_1024_based() {
        assert_eq!(ByteSize::parse("512MiB"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("512M"), Ok(ByteSize(512 << 20)));
        assert_eq!(ByteSize::parse("1G"), Ok(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("64KiB"), Ok(ByteSize(64 << 10)));
        assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
        assert_eq!(ByteSize::parse("6GiB").unwrap().to_string(), "6GiB");
    }

    #[test]
    fn ambiguous_or_bad_sizes_are_refused() {
        assert!(ByteSize::parse("512MB").unwrap_err().contains("ambiguous"));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999999999").is_err());
        assert!(ByteSize::parse("17179869184TiB").is_err());
    }

    #[test]
    fn amounts_are_percent_or_size() {
        assert_eq!(Amount::parse("10%"), Ok(Amount::Percent(10.0)));
        assert_eq!(Amount::parse("2.5%"), Ok(Amount::Percent(2.5)));
        assert_eq!(Amount::parse("1GiB"), Ok(Amount::Bytes(1 << 30)));
        assert!(Amount::parse("101%").is_err());
        assert!(Amount::parse("-1%").is_err());
        assert_eq!(Amount::Percent(10.0).bytes_of(1000), 100);
        assert_eq!(Amount::Bytes(7).bytes_of(1000), 7);
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2ms"), Ok(Duration::from_millis(2)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert_eq!(format_duration(Duration::from_millis(2)), "2ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
    }
}
