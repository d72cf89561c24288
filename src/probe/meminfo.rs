//! `/proc/meminfo`: the system scope's sample and its total pages.

use std::path::Path;

use super::{ProbeError, read_text, under};

/// The fields of /proc/meminfo oomward uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    /// `MemTotal`: RAM the kernel manages (`totalram_pages`).
    pub mem_total: u64,
    /// `MemAvailable`: what can be allocated without swapping; estimated from MemFree, Buffers and
    /// Cached on kernels older than 3.14 that lack it.
    pub mem_available: u64,
    /// `SwapTotal`.
    pub swap_total: u64,
    /// `SwapFree`.
    pub swap_free: u64,
}

impl MemInfo {
    /// Reads `<root>/proc/meminfo`.
    pub fn read(root: &Path) -> Result<Self, ProbeError> {
        let path = under(root, "/proc/meminfo");
        let text = read_text(&path)?;
        Self::parse(&text).map_err(|what| ProbeError::parse(&path, what))
    }

    /// Reads a kept-open /proc/meminfo (the loop's idle path: no allocation).
    pub fn read_kept(file: &mut super::kept::KeptFile) -> Result<Self, ProbeError> {
        let parsed = Self::parse(file.read()?);
        parsed.map_err(|what| ProbeError::parse(file.path(), what))
    }

    /// Parses the text of /proc/meminfo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut fields: [Option<u64>; 7] = [None; 7];
        #[rustfmt::skip]
        const KEYS: [&str; 7] = [
            "MemTotal:", "MemAvailable:", "SwapTotal:", "SwapFree:", "MemFree:", "Buffers:", "Cached:",
        ];
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(key), Some(value)) = (it.next(), it.next()) else {
                continue;
            };
            if let Some(i) = KEYS.iter().position(|k| *k == key) {
                let kib: u64 = value
                    .parse()
                    .map_err(|_| format!("{key} has a non-numeric value {value:?}"))?;
                fields[i] = Some(kib.saturating_mul(1024));
            }
        }
        let mem_total = fields[0].ok_or("no MemTotal line")?;
        let mem_available = match fields[1] {
            Some(v) => v,
            None => {
                let free = fields[4].ok_or("neither MemAvailable nor MemFree")?;
                free.saturating_add(fields[5].unwrap_or(0))
                    .saturating_add(fields[6].unwrap_or(0))
            }
        };
        Ok(MemInfo {
            mem_total,
            mem_available,
            swap_total: fields[2].unwrap_or(0),
            swap_free: fields[3].unwrap_or(0),
        })
    }

    /// The kernel's `totalpages` for a system-wide OOM: `totalram_pages + total_swap_pages`.
    pub fn total_pages(&self, page_size: u64) -> u64 {
        (self.mem_total / page_size).saturating_add(self.swap_total / page_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib_fields_into_bytes() {
        let m = MemInfo::parse(
            "MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    500 kB\nSwapTotal: 8 kB\nSwapFree: 4 kB\n",
        )
        .unwrap();
        assert_eq!(m.mem_total, 1000 * 1024);
        assert_eq!(m.mem_available, 500 * 1024);
        assert_eq!(m.total_pages(4096), 250 + 2);
    }

    #[test]
    fn old_kernels_without_memavailable_get_an_estimate() {
        let m =
            MemInfo::parse("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 20 kB\n")
                .unwrap();
        assert_eq!(m.mem_available, 130 * 1024);
        assert_eq!(m.swap_total, 0);
    }

    #[test]
    fn missing_or_garbled_fields_are_errors() {
        assert!(MemInfo::parse("").is_err());
        assert!(MemInfo::parse("MemTotal: lots kB\n").is_err());
    }
}
