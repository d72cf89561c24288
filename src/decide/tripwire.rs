//! Where a cgroup v2 tripwire goes: the `memory.high` oomward writes so that the kernel tells
//! it when a calm cgroup starts to fill. v2 has no usage thresholds (v1's eventfds); what it has
//! is `memory.events`, marked on every `high` event, and a `high` event happens when a charge
//! takes the cgroup past its `memory.high`. Without one, a calm v2 cgroup can only be looked at
//! on the worst-case fill rate's cadence (a 256 MiB cgroup every ~40 ms).
//!
//! Above its `memory.high` the kernel throttles a cgroup and reclaims its page cache, so a
//! tripwire must never sit where a cgroup lives. It is only ever set above the usage seen, by a
//! margin; it climbs a ladder of rungs as usage climbs (twice the term band below the limit,
//! like v1's rate probe, then the term level: the two crossings measure the fill rate before the
//! first decision); once usage is past the top rung it is taken off and oomward looks by
//! itself, as it does for a v1 cgroup past its thresholds. A `memory.high` that anyone else set
//! is theirs: never written, and a `high` event it raises announces a climb just as well.

/// The rung a tripwire goes at for a cgroup using `usage` bytes under `limit`: the lowest of
/// `limit − below` (for each `below` of `belows`: the distances from the limit at which oomward
/// looks closer) that lies at least `margin` above the usage, rounded down to a page (the
/// kernel keeps `memory.high` in pages). `None`: usage is past every rung, no tripwire.
pub fn rung(limit: u64, belows: &[u64], usage: u64, margin: u64, page: u64) -> Option<u64> {
    let page = page.max(1);
    belows
        .iter()
        .filter(|&&b| b > 0 && b < limit)
        .map(|&b| (limit - b) / page * page)
        .filter(|&r| usage.saturating_add(margin) <= r)
        .min()
}

/// How far below a rung usage must be before a tripwire goes there: half the term band, at
/// least 1 MiB. Written just above usage, the next few allocations would throttle the cgroup
/// (and a write below usage makes the writer reclaim); a cgroup hovering at a rung would have
/// it put on and taken off at every look.
pub fn margin(term_below: u64) -> u64 {
    (term_below / 2).max(1 << 20)
}

/// What to do with one cgroup's `memory.high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Write this many bytes: a new tripwire, or oomward's own moved to another rung.
    Write(u64),
    /// Put back `max`: oomward's tripwire is no longer wanted.
    Restore,
    /// Forget oomward's record without writing: the value there is not oomward's any more
    /// (its manager wrote `max` back, or someone set a `memory.high` of their own).
    Forget,
    /// Nothing.
    Keep,
}

/// The step for one cgroup, from its `memory.high` as read now (`None`: `max`), the value
/// oomward wrote there if it did, and the rung wanted (`None`: no tripwire).
pub fn step(high: Option<u64>, ours: Option<u64>, want: Option<u64>) -> Step {
    match (ours, high) {
        // Ours and still there.
        (Some(o), Some(h)) if h == o => match want {
            Some(w) if w != o => Step::Write(w),
            Some(_) => Step::Keep,
            None => Step::Restore,
        },
        // Its manager put `max` back (systemd does at a daemon-reload): ours is gone; a new one
        // if it is still wanted.
        (Some(_), None) => want.map_or(Step::Forget, Step::Write),
        // Someone else's value: theirs.
        (Some(_), Some(_)) => Step::Forget,
        (None, None) => want.map_or(Step::Keep, Step::Write),
        (None, Some(_)) => Step::Keep,
    }
}

/// Whether a cgroup's climb to its term level (`term_at`, in bytes of usage) is announced by a
/// `high` event: a `memory.high` (oomward's or anyone's) at or below that level and above the
/// usage now.
pub fn announced(high: Option<u64>, usage: u64, term_at: u64) -> bool {
    high.is_some_and(|h| usage < h && h <= term_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_rung_is_the_lowest_that_lies_a_margin_above_usage() {
        // 256 MiB limit, term band 25.6 MiB: rungs at limit − 51.2 and limit − 25.6 MiB.
        let limit = 256 * MIB;
        let term = limit / 10;
        let belows = [2 * term, term];
        let m = margin(term);
        let low = (limit - 2 * term) / 4096 * 4096;
        let high = (limit - term) / 4096 * 4096;
        for (usage, want) in [
            (0, Some(low)),
            (100 * MIB, Some(low)),
            (low - m, Some(low)),
            // Within the margin of the low rung: the next one.
            (low - m + 1, Some(high)),
            (low + MIB, Some(high)),
            (high - m, Some(high)),
            (high - m + 1, None),
            (250 * MIB, None),
            (300 * MIB, None),
        ] {
            assert_eq!(rung(limit, &belows, usage, m, 4096), want, "usage {usage}");
        }
    }

    #[test]
    fn a_rung_is_page_aligned_and_never_at_or_past_the_limit() {
        assert_eq!(rung(10_000, &[1_000], 0, 0, 4096), Some(8192));
        // A band as wide as the limit, or none at all, gives no rung.
        assert_eq!(rung(10_000, &[10_000, 0], 0, 0, 4096), None);
        assert_eq!(rung(10_000, &[], 0, 0, 4096), None);
        // A warn level further down is the first rung.
        let limit = 1024 * MIB;
        assert_eq!(
            rung(limit, &[300 * MIB, 200 * MIB, 100 * MIB], 0, MIB, 4096),
            Some(724 * MIB)
        );
    }

    #[test]
    fn the_margin_is_half_the_term_band_and_at_least_a_mib() {
        assert_eq!(margin(64 * MIB), 32 * MIB);
        assert_eq!(margin(MIB), MIB);
        assert_eq!(margin(0), MIB);
    }

    #[test]
    fn the_step_never_touches_a_memory_high_that_is_not_oomwards() {
        let (a, b, c) = (Some(100), Some(200), Some(300));
        for (high, ours, want, expected) in [
            // Nothing there, nothing of ours.
            (None, None, a, Step::Write(100)),
            (None, None, None, Step::Keep),
            // Theirs, whatever oomward would want.
            (c, None, a, Step::Keep),
            (c, None, None, Step::Keep),
            // Ours, still there: moved, kept or taken off.
            (a, a, b, Step::Write(200)),
            (a, a, a, Step::Keep),
            (a, a, None, Step::Restore),
            // Ours, put back to max by its manager: set again only if still wanted.
            (None, a, b, Step::Write(200)),
            (None, a, None, Step::Forget),
            // Ours, overwritten by someone: theirs now.
            (c, a, b, Step::Forget),
            (c, a, None, Step::Forget),
        ] {
            assert_eq!(
                step(high, ours, want),
                expected,
                "high {high:?} ours {ours:?} want {want:?}"
            );
        }
    }

    #[test]
    fn a_climb_is_announced_by_a_memory_high_between_usage_and_the_term_level() {
        for (high, usage, term_at, yes) in [
            (Some(200), 100, 230, true),
            (Some(230), 100, 230, true),
            // Past it already: no event comes for the rest of the climb.
            (Some(200), 200, 230, false),
            (Some(200), 210, 230, false),
            // Above the term level: it would come too late.
            (Some(240), 100, 230, false),
            (None, 100, 230, false),
        ] {
            assert_eq!(
                announced(high, usage, term_at),
                yes,
                "{high:?} {usage} {term_at}"
            );
        }
    }
}
