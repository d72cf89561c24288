//! The kernel's OOM arithmetic, reproduced integer-exactly.
//!
//! oomward ranks victims the way `mm/oom_kill.c` would if the scope's limit were hit, so a user
//! who reads `/proc/PID/oom_score` or sets `oom_score_adj` (as kubelet does for its QoS classes)
//! gets the order they already expect, only earlier. The names mirror the kernel's
//! (`oom_badness`, `totalpages`) so the two can be read side by side.

/// `OOM_SCORE_ADJ_MIN`: a process with this adj is never chosen, by the kernel or by oomward.
pub const OOM_SCORE_ADJ_MIN: i32 = -1000;
/// `OOM_SCORE_ADJ_MAX`.
pub const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// Why the kernel would never pick a process (its `oom_badness` returns `LONG_MIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unkillable {
    /// PID 1: killing it panics the machine.
    GlobalInit,
    /// A kernel thread has no user memory to free.
    KernelThread,
    /// No mm: a zombie or a process in the middle of exiting; nothing to gain.
    NoMm,
    /// `oom_score_adj` is -1000: the administrator's promise.
    AdjMin,
}

impl Unkillable {
    /// A short word for tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Unkillable::GlobalInit => "init",
            Unkillable::KernelThread => "kthread",
            Unkillable::NoMm => "no-mm",
            Unkillable::AdjMin => "adj-min",
        }
    }
}

/// The memory the kernel charges to a process, in pages: what killing it would free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Points {
    /// Resident pages, as the kernel counts them (`/proc/PID/stat` field 24).
    pub rss: u64,
    /// Swap entries (`VmSwap` in pages).
    pub swap: u64,
    /// Page-table pages (`VmPTE` in pages).
    pub pgtables: u64,
}

impl Points {
    /// `get_mm_rss + MM_SWAPENTS + mm_pgtables_bytes / PAGE_SIZE`.
    pub fn total(self) -> u64 {
        self.rss
            .saturating_add(self.swap)
            .saturating_add(self.pgtables)
    }
}

/// The kernel's `oom_badness` for a killable task: points plus adj scaled by `totalpages / 1000`.
///
/// The division comes first, exactly as in the kernel, so with `totalpages < 1000` the adj has no
/// effect at all. The result is signed: a large negative adj can make it negative.
pub fn oom_badness(points: Points, oom_score_adj: i32, totalpages: u64) -> i64 {
    let adj = i64::from(oom_score_adj)
        .saturating_mul(i64::try_from(totalpages / 1000).unwrap_or(i64::MAX));
    i64::try_from(points.total())
        .unwrap_or(i64::MAX)
        .saturating_add(adj)
}

/// `/proc/PID/oom_score` as the kernel prints it: `(1000 + badness * 1000 / totalpages) * 2 / 3`
/// with C's truncating division, or 0 for an unkillable task.
pub fn oom_score(badness: Option<i64>, totalpages: u64) -> u64 {
    match badness {
        None => 0,
        Some(b) => {
            let t = totalpages.max(1) as i64;
            let score = (1000 + b.saturating_mul(1000) / t) * 2 / 3;
            score.max(0) as u64
        }
    }
}

/// The largest badness a process can have given its `/proc/PID/oom_score` with `totalpages`:
/// the score is quantized (one step is about 1.5·T/1000 pages), so this bounds the kernel's
/// badness from above for a cheap first pass; exact values need the process's own files.
pub fn oom_badness_upper_bound(oom_score: i64, totalpages: u64) -> i64 {
    let t = totalpages.max(1) as i64;
    // score = floor(x * 2 / 3) with x = 1000 + trunc(b * 1000 / T) ≥ 0, so x ≤ (3·score + 2) / 2;
    // then b * 1000 / T < x − 1000 + 1, and b < (x − 999) · T / 1000 (rounded up, plus one page
    // for truncation toward zero on the negative side).
    let x = (3 * oom_score.max(0) + 2) / 2;
    ((x - 999).saturating_mul(t) + 999) / 1000 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_bound_from_oom_score_holds_and_is_tight() {
        for t in [1u64, 999, 1000, 65_536, 6_291_456, 25_000_000] {
            let step = (t / 1000) as i64 + 1;
            for b in (-(t as i64)..=(t as i64) * 2).step_by((t as usize / 97).max(1)) {
                let s = oom_score(Some(b), t) as i64;
                let ub = oom_badness_upper_bound(s, t);
                assert!(ub >= b, "T={t} b={b} score={s}: bound {ub} below");
                assert!(
                    ub <= b + 3 * step + 3,
                    "T={t} b={b} score={s}: bound {ub} too loose"
                );
            }
        }
    }

    fn pts(rss: u64) -> Points {
        Points {
            rss,
            swap: 0,
            pgtables: 0,
        }
    }

    #[test]
    fn points_add_rss_swap_and_page_tables() {
        let p = Points {
            rss: 100,
            swap: 20,
            pgtables: 3,
        };
        assert_eq!(oom_badness(p, 0, 1_000_000), 123);
    }

    #[test]
    fn adj_is_scaled_after_integer_division() {
        // 6_291_455 / 1000 = 6291, not 6291.455
        assert_eq!(oom_badness(pts(0), 500, 6_291_455), 500 * 6291);
        assert_eq!(oom_badness(pts(10), 1000, 65_536), 10 + 1000 * 65);
        assert_eq!(oom_badness(pts(10), -999, 65_536), 10 - 999 * 65);
    }

    #[test]
    fn adj_has_no_effect_below_1000_pages() {
        assert_eq!(oom_badness(pts(42), 1000, 999), 42);
        assert_eq!(oom_badness(pts(42), -999, 999), 42);
    }

    #[test]
    fn zero_rss_with_adj_zero_scores_666() {
        assert_eq!(
            oom_score(Some(oom_badness(pts(0), 0, 6_000_000)), 6_000_000),
            666
        );
    }

    #[test]
    fn oom_score_truncates_like_c() {
        // badness -1 with huge T: -1*1000/T = 0 in C (toward zero), so 666.
        assert_eq!(oom_score(Some(-1), 6_000_000), 666);
        // adj +1000 of a tiny process: badness = 1000 * (T/1000) ~ T -> (1000+1000)*2/3 = 1333
        let t = 6_291_456;
        assert_eq!(oom_score(Some(oom_badness(pts(0), 1000, t)), t), 1332);
        // the whole of memory and adj 1000
        assert_eq!(oom_score(Some(oom_badness(pts(t), 1000, t)), t), 1999);
    }

    #[test]
    fn unkillable_scores_zero() {
        assert_eq!(oom_score(None, 6_000_000), 0);
    }

    #[test]
    fn huge_totals_do_not_overflow() {
        let t = u64::from(u32::MAX) * 16; // 256 TiB of 4 KiB pages
        let b = oom_badness(pts(t), 1000, t);
        assert!(oom_score(Some(b), t) >= 1332);
    }
}
