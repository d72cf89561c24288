//! Swap devices (`/proc/swaps`) and what a zram device's stored pages cost in RAM
//! (`/sys/block/zramN/mm_stat`).
//!
//! A page swapped to a disk gives its whole page of RAM back; a page swapped to zram gives
//! back only what compression saved, since the compressed copy lives in RAM too. So SwapFree
//! on zram is not headroom one-for-one: see [`crate::decide::swap`] for the arithmetic.

use super::kept::KeptFile;
use super::{Host, ProbeError};

/// One line of `/proc/swaps`: sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwapDevice {
    /// The N of `/dev/zramN`; `None` for any other device or file.
    pub zram: Option<u32>,
    /// Its size.
    pub size: u64,
    /// How much of it is used.
    pub used: u64,
}

/// What a zram device holds (`mm_stat`'s first three fields), bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZramStat {
    /// Uncompressed size of what is stored.
    pub orig_data_size: u64,
    /// Compressed size of it.
    pub compr_data_size: u64,
    /// RAM the device uses for it, with its allocator's overhead.
    pub mem_used_total: u64,
}

/// Parses the lines of `/proc/swaps` (a header, then `Filename Type Size Used Priority`, sizes
/// in KiB), calling `each` for every device without allocating. A line that does not parse is
/// skipped: swap is an input to a threshold, and one odd line must not blind the scope.
pub fn parse_swaps(text: &str, mut each: impl FnMut(SwapDevice)) {
    for line in text.lines().skip(1) {
        let mut it = line.split_whitespace();
        let (Some(name), Some(_kind), Some(size), Some(used)) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let (Ok(size), Ok(used)) = (size.parse::<u64>(), used.parse::<u64>()) else {
            continue;
        };
        let zram = name
            .strip_prefix("/dev/zram")
            .and_then(|n| n.parse::<u32>().ok());
        each(SwapDevice {
            zram,
            size: size.saturating_mul(1024),
            used: used.saturating_mul(1024),
        });
    }
}

/// Parses a zram device's `mm_stat`.
pub fn parse_mm_stat(text: &str) -> Result<ZramStat, String> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let mut next = |what: &str| match it.next() {
        Some(Ok(v)) => Ok(v),
        _ => Err(format!("no number for {what}")),
    };
    Ok(ZramStat {
        orig_data_size: next("orig_data_size")?,
        compr_data_size: next("compr_data_size")?,
        mem_used_total: next("mem_used_total")?,
    })
}

/// The machine's swap files, kept open across samples: `/proc/swaps` and the `mm_stat` of each
/// zram device in use (opened when first seen).
#[derive(Debug)]
pub struct SwapFiles {
    swaps: KeptFile,
    zram: Vec<(u32, KeptFile)>,
    root: std::path::PathBuf,
}

impl SwapFiles {
    /// The files under `host`'s root.
    pub fn new(host: &Host) -> Self {
        SwapFiles {
            swaps: KeptFile::new(host.path("/proc/swaps")),
            zram: Vec::new(),
            root: host.path("/"),
        }
    }

    /// Calls `each` for every swap device, with its zram figures when it is one (`None` when
    /// they cannot be read). Allocates only the first time a zram device is seen.
    pub fn read(
        &mut self,
        mut each: impl FnMut(SwapDevice, Option<ZramStat>),
    ) -> Result<(), ProbeError> {
        let Some(text) = self.swaps.read_optional()? else {
            return Ok(());
        };
        let zram = &mut self.zram;
        let root = &self.root;
        parse_swaps(text, |dev| {
            let stat = dev.zram.and_then(|n| {
                let i = match zram.iter().position(|(k, _)| *k == n) {
                    Some(i) => i,
                    None => {
                        let path = root.join(format!("sys/block/zram{n}/mm_stat"));
                        zram.push((n, KeptFile::new(path)));
                        zram.len() - 1
                    }
                };
                let text = zram[i].1.read_optional().ok()??;
                parse_mm_stat(text).ok()
            });
            each(dev, stat);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_lines_with_zram_named_and_odd_lines_skipped() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/zram0                              partition\t262140\t\t1024\t\t100\n\
                    /swapfile                               file\t\t1048572\t\t0\t\t-2\n\
                    /dev/zramx partition 1 1 1\n\
                    garbage\n";
        let mut seen = Vec::new();
        parse_swaps(text, |d| seen.push(d));
        assert_eq!(
            seen,
            vec![
                SwapDevice {
                    zram: Some(0),
                    size: 262140 * 1024,
                    used: 1024 * 1024,
                },
                SwapDevice {
                    zram: None,
                    size: 1048572 * 1024,
                    used: 0,
                },
                // `/dev/zramx` is no zram device number: a plain device.
                SwapDevice {
                    zram: None,
                    size: 1024,
                    used: 1024,
                },
            ]
        );
        let mut n = 0;
        parse_swaps("Filename Type Size Used Priority\n", |_| n += 1);
        assert_eq!(n, 0);
    }

    #[test]
    fn mm_stat_fields() {
        let s = parse_mm_stat(
            "  4194304   1048576   1327104        0  1327104        0        0        0\n",
        )
        .unwrap();
        assert_eq!(
            s,
            ZramStat {
                orig_data_size: 4194304,
                compr_data_size: 1048576,
                mem_used_total: 1327104,
            }
        );
        assert!(parse_mm_stat("12 34").is_err());
        assert!(parse_mm_stat("").is_err());
    }
}
