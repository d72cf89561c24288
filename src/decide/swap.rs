//! Swap as headroom in RAM. A page moved to a disk swap gives its page of RAM back; a page
//! moved to zram gives back only what compression saved, because its compressed copy stays in
//! RAM (`mm_stat`'s `mem_used_total`). So each zram device's size and free space count at
//! `1 − cost`, where cost is the RAM it uses per byte stored; with incompressible data that is
//! nothing at all, and a machine whose zram still looks half free is in fact out of memory.

use crate::probe::swaps::{SwapDevice, ZramStat};

/// The RAM cost per byte stored assumed for a zram device holding too little to measure:
/// half, more than the 2.5–4× ratios lzo-rle and zstd reach on ordinary anonymous memory, so
/// an empty device is not taken for more headroom than it will give.
pub const ZRAM_DEFAULT_COST: f64 = 0.5;
/// Below this much stored, a device's own ratio says little (a few pages, its metadata).
pub const ZRAM_MEASURED_FROM: u64 = 4 << 20;

/// The swap of the machine, counted as RAM it can still give back, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EffectiveSwap {
    /// What all devices could give back when empty.
    pub total: u64,
    /// What they can still give back.
    pub free: u64,
    /// Whether any device is zram (otherwise the figures are SwapTotal and SwapFree).
    pub zram: bool,
}

/// The RAM cost per byte stored of a zram device: its measured `mem_used_total /
/// orig_data_size` once it holds [`ZRAM_MEASURED_FROM`], else [`ZRAM_DEFAULT_COST`]; at most
/// 1 (a device never gives back less than nothing). Unreadable figures: the default.
pub fn zram_cost(stat: Option<ZramStat>) -> f64 {
    match stat {
        Some(s) if s.orig_data_size >= ZRAM_MEASURED_FROM => {
            (s.mem_used_total as f64 / s.orig_data_size as f64).clamp(0.0, 1.0)
        }
        _ => ZRAM_DEFAULT_COST,
    }
}

impl EffectiveSwap {
    /// Adds one device.
    pub fn add(&mut self, dev: SwapDevice, stat: Option<ZramStat>) {
        let free = dev.size.saturating_sub(dev.used);
        if dev.zram.is_some() {
            let keep = 1.0 - zram_cost(stat);
            self.total = self.total.saturating_add((dev.size as f64 * keep) as u64);
            self.free = self.free.saturating_add((free as f64 * keep) as u64);
            self.zram = true;
        } else {
            self.total = self.total.saturating_add(dev.size);
            self.free = self.free.saturating_add(free);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn zram(size_mib: u64, used_mib: u64) -> SwapDevice {
        SwapDevice {
            zram: Some(0),
            size: size_mib * MIB,
            used: used_mib * MIB,
        }
    }

    fn stat(orig_mib: u64, used_mib: u64) -> Option<ZramStat> {
        Some(ZramStat {
            orig_data_size: orig_mib * MIB,
            compr_data_size: used_mib * MIB,
            mem_used_total: used_mib * MIB,
        })
    }

    #[test]
    fn zram_counts_at_what_compression_saves() {
        let table = [
            // (device size, used, stat, expected total, expected free), MiB
            // 4:1 measured: a quarter of each byte stays in RAM.
            (256, 100, stat(100, 25), 192, 117),
            // Incompressible: no headroom at all, however free the device looks.
            (256, 100, stat(100, 100), 0, 0),
            // Worse than incompressible (overhead): still nothing, never negative.
            (256, 100, stat(100, 130), 0, 0),
            // Too little stored to measure: the default cost of a half.
            (256, 1, stat(1, 1), 128, 127),
            // No figures at all: the default.
            (256, 0, None, 128, 128),
        ];
        for (i, (size, used, st, total, free)) in table.into_iter().enumerate() {
            let mut e = EffectiveSwap::default();
            e.add(zram(size, used), st);
            let within = |a: u64, b: u64| a.abs_diff(b * MIB) <= MIB / 2;
            assert!(within(e.total, total), "row {i}: total {}", e.total / MIB);
            assert!(within(e.free, free), "row {i}: free {}", e.free / MIB);
            assert!(e.zram);
        }
    }

    #[test]
    fn a_disk_counts_one_for_one_and_devices_add_up() {
        let mut e = EffectiveSwap::default();
        e.add(
            SwapDevice {
                zram: None,
                size: 1024 * MIB,
                used: 24 * MIB,
            },
            None,
        );
        assert_eq!((e.total, e.free, e.zram), (1024 * MIB, 1000 * MIB, false));
        e.add(zram(256, 0), stat(0, 0));
        assert_eq!((e.total, e.free, e.zram), (1152 * MIB, 1128 * MIB, true));
    }
}
