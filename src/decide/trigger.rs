//! When to act: a scope's sample and thresholds → a level, with hysteresis, and how long the loop
//! may sleep before the next sample.
//!
//! Pure. The sleep rule is what makes polling safe: the next sample must come before memory
//! could have filled the headroom at the *worst-case* rate, not the rate seen so far, because an
//! idle cgroup can start filling at full speed at any moment.

use super::limits::{
    STEADY_GROWTH, STEADY_LOOK_MIN, STILL_GROWTH, STILL_GROWTH_MIN, STILL_RATE, STILL_RATE_SEEN,
};
use std::time::Duration;

/// How urgent a scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub enum Level {
    /// Enough memory.
    #[default]
    Ok,
    /// At or below the term threshold: ask a victim to exit (SIGTERM).
    Term,
    /// At or below the kill threshold: make it exit (SIGKILL).
    Kill,
}

impl Level {
    /// `ok`, `term`, `kill` for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Term => "term",
            Level::Kill => "kill",
        }
    }
}

/// Thresholds on one free-memory quantity, in bytes. A threshold of 0 is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// At or below: term.
    pub term: u64,
    /// At or below: kill.
    pub kill: u64,
}

impl Thresholds {
    /// The margin a quantity must rise above a threshold before the level drops back: half the
    /// gap between term and kill, at least 1 MiB, so a scope hovering at a threshold does not
    /// flap between levels (and does not start a new episode with every sample).
    pub fn hysteresis(&self) -> u64 {
        ((self.term.saturating_sub(self.kill)) / 2).max(1 << 20)
    }

    /// The level of `free` bytes given the previous level.
    pub fn level(&self, free: u64, prev: Level) -> Level {
        let margin = self.hysteresis();
        let below = |threshold: u64, sticky: bool| {
            threshold > 0
                && (free <= threshold || (sticky && free < threshold.saturating_add(margin)))
        };
        if below(self.kill, prev >= Level::Kill) {
            Level::Kill
        } else if below(self.term, prev >= Level::Term) {
            Level::Term
        } else {
            Level::Ok
        }
    }

    /// Bytes the quantity must rise by to leave `level` (past the threshold and its
    /// hysteresis margin); 0 at `ok` or when that level is off.
    pub fn need(&self, level: Level, free: u64) -> u64 {
        let threshold = match level {
            Level::Ok => return 0,
            Level::Term => self.term,
            Level::Kill => self.kill,
        };
        if threshold == 0 {
            return 0;
        }
        threshold
            .saturating_add(self.hysteresis())
            .saturating_sub(free)
    }

    /// Bytes left before the next level down is reached from `level` (the term threshold from
    /// `ok`, the kill threshold from `term`); `None` when that threshold is off or already
    /// passed at the kill level.
    pub fn headroom_from(&self, level: Level, free: u64) -> Option<u64> {
        let next = match level {
            Level::Ok => self.term,
            Level::Term => self.kill,
            Level::Kill => return None,
        };
        (next > 0).then(|| free.saturating_sub(next))
    }

    /// Bytes left before the term level is reached (0 when at or past it); `None` when the
    /// term level is off.
    pub fn headroom(&self, free: u64) -> Option<u64> {
        (self.term > 0).then(|| free.saturating_sub(self.term))
    }
}

/// One sample of the system scope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemSample {
    /// MemAvailable, bytes.
    pub mem_available: u64,
    /// SwapTotal, bytes (0: no swap).
    pub swap_total: u64,
    /// SwapFree, bytes.
    pub swap_free: u64,
    /// PSI `full` avg10, percent, if the kernel has PSI.
    pub psi_full_avg10: Option<f64>,
}

/// Thresholds of the system scope, resolved to bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemThresholds {
    /// On MemAvailable.
    pub mem: Thresholds,
    /// On SwapFree.
    pub swap: Thresholds,
    /// Memory AND swap (true) or memory OR swap (false).
    pub require_both: bool,
    /// PSI full avg10 at or above which the level is at least term; 0 = off.
    pub psi_full_avg10_term: f64,
}

/// The system scope's level. With no swap the swap condition neither blocks nor fires on its
/// own: the memory condition alone decides.
pub fn system_level(s: &SystemSample, t: &SystemThresholds, prev: Level) -> Level {
    let level = t.with_swap(s, t.mem.level(s.mem_available, prev), || {
        t.swap.level(s.swap_free, prev)
    });
    let psi = match s.psi_full_avg10 {
        Some(v) if t.psi_full_avg10_term > 0.0 && v >= t.psi_full_avg10_term => Level::Term,
        _ => Level::Ok,
    };
    level.max(psi)
}

impl SystemThresholds {
    /// Bytes the machine must gain to leave `level`: what MemAvailable needs, or with swap and
    /// `require = both` the smaller of what memory and swap need (either one recovering ends
    /// the condition); a level from PSI alone needs nothing in particular.
    pub fn need(&self, s: &SystemSample, level: Level) -> u64 {
        self.with_swap(s, self.mem.need(level, s.mem_available), || {
            self.swap.need(level, s.swap_free)
        })
    }

    /// What memory says (`mem`) and swap says together, as `require` has it: both (the lesser)
    /// or either (the greater); with no swap, memory alone.
    fn with_swap<T: Ord>(&self, s: &SystemSample, mem: T, swap: impl FnOnce() -> T) -> T {
        if s.swap_total == 0 {
            mem
        } else if self.require_both {
            mem.min(swap())
        } else {
            mem.max(swap())
        }
    }
}

/// A level raised by the projected time to exhaustion: at least `term` when memory runs out
/// within `exhaustion_term` at the fill rate seen (`None` or a zero setting: off).
pub fn with_exhaustion(level: Level, eta: Option<Duration>, exhaustion_term: Duration) -> Level {
    match eta {
        Some(eta) if !exhaustion_term.is_zero() && eta <= exhaustion_term => level.max(Level::Term),
        _ => level,
    }
}

/// The sleep before the next sample: the headroom divided by the worst-case fill rate, within
/// `[min, max]`. No headroom at all (no thresholds) sleeps `max`.
pub fn next_sleep(headroom: Option<u64>, fill_rate: u64, min: Duration, max: Duration) -> Duration {
    match headroom {
        None => max,
        Some(h) => {
            let secs = h as f64 / fill_rate.max(1) as f64;
            Duration::from_secs_f64(secs.min(max.as_secs_f64())).clamp(min, max)
        }
    }
}

/// See [`FillRate`]: seconds.
pub const FILL_RATE_MEMORY: f64 = 0.25;

/// The observed fill rate of a scope, bytes per second: an average of increases only, weighted
/// by time with a quarter-second memory ([`FILL_RATE_MEMORY`]), so that it follows what the
/// scope does now whatever the sampling rate (a sample after a long quiet spell says little;
/// ten samples 10 ms apart say as much as one 100 ms apart). For reports and the projected time
/// to exhaustion; sleeping uses the configured worst case instead.
///
/// A rate needs recent samples: after a gap longer than [`FILL_RATE_MAX_GAP`] (an idle
/// cgroup that only the kernel's threshold event woke) the difference between two samples is
/// no rate at all: a process that jumped by 100 MiB a minute ago and one that is growing now
/// look the same. The rate is then unknown ([`FillRate::eta`] is `None`) until the next
/// sample within the gap, which an episode takes within milliseconds.
///
/// Each step spans at least [`FILL_RATE_MIN_SPAN`]: allocators grow in bursts (a chunk, a
/// page-fault storm), and a burst seen over 10 ms would read as a hundred times the rate.
///
/// Until a step of that span exists (the first look after a quiet spell, or a kernel threshold
/// event that arrives tens of milliseconds after the last look), growth of at least
/// [`FILL_RATE_PROVISIONAL_GROWTH`] over at least [`FILL_RATE_PROVISIONAL_SPAN`] stands in as a
/// provisional rate: a grower woken by its cgroup's threshold 70 ms after the last look is
/// projected on what it did in those 70 ms rather than not at all.
///
/// Growth between the last two looks that passes the same bar counts too, whatever the step
/// in progress averages: a scope that paused and then fills at 2.5 GB/s is projected on the
/// 26 MiB its last 10 ms added, not on the 80 ms before them.
///
/// A drop (a victim's memory back) keeps the rate but withholds the projection until the
/// scope grows again from its lowest point since, by at least [`FILL_RATE_REGROWTH`] and at
/// least half as fast as the rate says (on average since that point, or now): a respawned worker that grows on at once is projected
/// on the old rate within a millisecond, but when the victim was the allocator, nothing grows
/// but noise, and a rate that was the victim's must not project an exhaustion that is no
/// longer coming (it picked a second victim for nothing under a node's `exhaustion_term` in
/// the VM lab). Meanwhile the rate decays as usual, so the bar falls with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FillRate {
    /// The sample the next step is measured from.
    anchor: Option<(u64, f64)>,
    rate: f64,
    known: bool,
    /// The lowest used bytes since the last drop and when, while the projection is withheld.
    regrowth_from: Option<(u64, f64)>,
    /// The growth from the anchor over a span shorter than a step, when large enough to count
    /// while the rate is unknown or zero (see [`FillRate`]).
    provisional: Option<f64>,
    /// The last step's own rate: a scope that starts filling is projected on what it does
    /// now, not on an average that still remembers it idle.
    last_step: f64,
    /// The sample before this one.
    last: Option<(u64, f64)>,
    /// The growth between the last two samples, when large enough to be a rate (the same bar
    /// as [`FillRate::provisional`]): what the scope does right now, where the step in progress
    /// still averages in a pause before it.
    burst: Option<f64>,
}

/// See [`FillRate`]: seconds.
pub const FILL_RATE_PROVISIONAL_SPAN: f64 = 0.02;
/// See [`FillRate`]: bytes (a few allocation bursts at least).
pub const FILL_RATE_PROVISIONAL_GROWTH: u64 = 4 << 20;
/// See [`FillRate`]: growth this large counts over as little as [`FILL_RATE_BIG_SPAN`]: no
/// burst of page faults writes 16 MiB in a few milliseconds without the process filling that
/// fast (the two threshold events of a cgroup filling at 2.5 GB/s come 10 ms apart).
pub const FILL_RATE_BIG_GROWTH: u64 = 16 << 20;
/// See [`FILL_RATE_BIG_GROWTH`]: seconds.
pub const FILL_RATE_BIG_SPAN: f64 = 0.002;

/// Whether growth of `grown` bytes over `dt` seconds, shorter than a step, makes a provisional
/// rate (see [`FillRate`]).
fn provisional_step(grown: u64, dt: f64) -> bool {
    (dt >= FILL_RATE_PROVISIONAL_SPAN && grown >= FILL_RATE_PROVISIONAL_GROWTH)
        || (dt >= FILL_RATE_BIG_SPAN && grown >= FILL_RATE_BIG_GROWTH)
}

/// See [`FillRate`]: the least growth after a drop that makes the rate a projection again:
/// the noise floor every other growth bar uses. At 1 MiB, MemAvailable's own wobble a few
/// milliseconds after a victim's memory came back averaged above half the victim's rate and
/// projected its exhaustion again: a second pod was stopped on a node in the VM lab
/// (`k8s_node`, `exhaustion_term = "2s"`). A worker respawned at 1 GB/s is projected 4 ms in.
pub const FILL_RATE_REGROWTH: u64 = 4 << 20;

/// See [`FillRate`]: seconds.
pub const FILL_RATE_MAX_GAP: f64 = 0.5;
/// See [`FillRate`]: seconds.
pub const FILL_RATE_MIN_SPAN: f64 = 0.1;

impl FillRate {
    /// Feeds a sample of used bytes at time `t` seconds.
    pub fn update(&mut self, used: u64, t: f64) -> f64 {
        let Some((prev, pt)) = self.anchor else {
            self.anchor = Some((used, t));
            self.last = Some((used, t));
            return self.rate;
        };
        let dt = t - pt;
        self.provisional = None;
        self.burst = self.last.and_then(|(lu, lt)| {
            let (grown, span) = (used.checked_sub(lu)?, t - lt);
            (span < FILL_RATE_MIN_SPAN && provisional_step(grown, span))
                .then(|| grown as f64 / span)
        });
        self.last = Some((used, t));
        // What the scope does now: the step that just completed, the growth in progress, or
        // the growth since the look before, whichever is fastest.
        let mut recent = self.burst;
        if dt > FILL_RATE_MAX_GAP {
            self.rate = 0.0;
            self.last_step = 0.0;
            self.known = false;
            self.anchor = Some((used, t));
        } else if used < prev {
            // Memory was freed (a victim's): the next step measures the growth from here,
            // not from above the drop, where a new worker's growth would cancel out.
            self.anchor = Some((used, t));
        } else if dt >= FILL_RATE_MIN_SPAN - 1e-9 {
            let inst = (used as f64 - prev as f64).max(0.0) / dt;
            let weight = 1.0 - (-dt / FILL_RATE_MEMORY).exp();
            self.rate += weight * (inst - self.rate);
            self.last_step = inst;
            self.known = true;
            self.anchor = Some((used, t));
            recent = Some(recent.map_or(inst, |r: f64| r.max(inst)));
        } else if provisional_step(used.saturating_sub(prev), dt) {
            let p = (used - prev) as f64 / dt;
            self.provisional = Some(p);
            recent = Some(recent.map_or(p, |r: f64| r.max(p)));
        }
        self.regrowth_from = self.regrowth(used, t, prev, recent);
        self.rate()
    }

    /// The floor a projection is withheld from after this sample (see [`FillRate`]): kept
    /// until the scope has grown by [`FILL_RATE_REGROWTH`] from it and grows at least half as
    /// fast as the rate, on average since the floor or now (`recent`). A drop, a pause, then a
    /// worker that fills at full speed is projected as soon as its speed is seen: an average
    /// since the floor that still counts the pause withheld it while 26 MiB ran out in 10 ms.
    fn regrowth(&self, used: u64, t: f64, prev: u64, recent: Option<f64>) -> Option<(u64, f64)> {
        match self.regrowth_from {
            Some((floor, _)) if used < floor => Some((used, t)),
            None if used < prev => Some((used, t)),
            Some((floor, ft)) => {
                let half = 0.5 * self.rate;
                let grown = (used - floor) as f64;
                let back = grown >= FILL_RATE_REGROWTH as f64
                    && (grown >= half * (t - ft) || recent.is_some_and(|r| r >= half));
                (!back).then_some((floor, ft))
            }
            None => None,
        }
    }

    /// The rate now, bytes per second: the average, or the last step's when it is faster (a
    /// scope speeding up), or the provisional one or the growth since the look before while
    /// the measured rate is unknown or lower.
    pub fn rate(&self) -> f64 {
        let measured = if self.known {
            self.rate.max(self.last_step)
        } else {
            0.0
        };
        [self.provisional, self.burst]
            .into_iter()
            .flatten()
            .fold(measured, f64::max)
    }

    /// Whether a rate has been measured (a step of [`FILL_RATE_MIN_SPAN`] or more since the
    /// scope was last looked at after a gap).
    pub fn known(&self) -> bool {
        self.known
    }

    /// When `available` bytes run out at this rate; `None` when the rate is unknown (see
    /// [`FillRate`]) or not filling (below 1 MiB/s, which is noise at the sampling rates used),
    /// and after a drop until the scope grows again.
    pub fn eta(&self, available: u64) -> Option<Duration> {
        self.eta_at(available, self.rate())
    }

    /// Like [`FillRate::eta`] on the average alone (the provisional rate while none is known):
    /// what raises a level early (`exhaustion_term`). A level raised on the last step of a
    /// process that just started growing names the wrong victim: the one about to run away is
    /// still small (seen in the VM lab's Kubernetes node, where a Burstable pod was stopped
    /// for a BestEffort one's first 100 ms).
    pub fn eta_trend(&self, available: u64) -> Option<Duration> {
        let rate = if self.known {
            self.rate
        } else {
            self.provisional.unwrap_or(0.0)
        };
        self.eta_at(available, rate)
    }

    fn eta_at(&self, available: u64, rate: f64) -> Option<Duration> {
        let known = self.known || self.provisional.is_some() || self.burst.is_some();
        (known && self.regrowth_from.is_none() && rate >= (1u64 << 20) as f64)
            .then(|| Duration::from_secs_f64((available as f64 / rate).min(1e6)))
    }
}

/// Whether a cgroup at its term level stands still, so that the kernel would never touch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stillness {
    /// It grows, stalls, or the kernel throttles or reclaims at its limits: the usual ladder.
    #[default]
    Moving,
    /// It stands still: watched, not killed. A pod sized tight is not killed for that.
    Still,
    /// Not known yet (no earlier look to compare with, or no rate measured): one more look,
    /// soon, before anything is decided. The daemon's first look at a cgroup already at its
    /// term level is one.
    Unknown,
}

/// What one look tells of a cgroup's stillness.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StillSample {
    /// Bytes in use against its limit (what its headroom is made of).
    pub used: u64,
    /// Bytes of available memory above its kill level (`u64::MAX` when that level is off).
    pub to_kill: u64,
    /// Its memory PSI `some` total, µs, where read.
    pub psi_total: Option<u64>,
    /// Its `high` + `max` event count.
    pub events: u64,
    /// The fill rate it is projected on now, bytes a second (0 when it is not projected: not
    /// filling, not known, or withheld after a drop; see [`FillRate::eta`]).
    pub rate: f64,
}

/// Whether a cgroup at its term level stands still: it is not projected to fill at
/// [`STILL_RATE`] or faster ([`STILL_RATE_SEEN`] once it was seen still); since the look
/// `before` it grew by less than [`STILL_GROWTH`] (less near its kill level), did
/// not stall (its PSI total, where both looks read one) and had no `high` or `max` event; and
/// since `base`, the look where it was first seen standing still, it grew by less than
/// [`STILL_GROWTH`] too. Without an earlier look it is not known yet, unless it fills.
pub fn stillness(
    before: Option<StillSample>,
    base: Option<StillSample>,
    now: StillSample,
) -> Stillness {
    let bar = if base.is_some() {
        STILL_RATE_SEEN
    } else {
        STILL_RATE
    };
    if now.rate >= bar {
        return Stillness::Moving;
    }
    let Some(b) = before else {
        return Stillness::Unknown;
    };
    let grew = |from: StillSample| now.used >= from.used.saturating_add(growth_bar(from.to_kill));
    let stalled = matches!((b.psi_total, now.psi_total), (Some(x), Some(y)) if y > x);
    if grew(b) || base.is_some_and(grew) || now.events > b.events || stalled {
        Stillness::Moving
    } else {
        Stillness::Still
    }
}

/// The growth from a look that counts as moving: [`STILL_GROWTH`], or half the band left above
/// the kill level when that is less (not below [`STILL_GROWTH_MIN`]).
fn growth_bar(to_kill: u64) -> u64 {
    (to_kill / 2).clamp(STILL_GROWTH_MIN, STILL_GROWTH)
}

/// v1: the usage (of the cgroup whose limit is nearest) at which the kernel is asked to wake the
/// loop while a cgroup stands still `to_kill` bytes above its kill level: its `usage` now plus
/// the growth that counts as moving. Below its limit the kernel reclaims nothing for a grower,
/// so any growth shows as usage first, and the looks need no longer be paced by the band.
/// `None` where the wake-up would not pay: the limit comes first, or page cache worth that
/// growth could grow instead and wake the loop for nothing (then it is looked at as before).
pub fn growth_wake(usage: u64, working_set: u64, limit: u64, to_kill: u64) -> Option<u64> {
    let bar = growth_bar(to_kill);
    let at = usage.saturating_add(bar);
    (usage.saturating_sub(working_set) < bar && at < limit).then_some(at)
}

/// How soon a domain standing still `to_kill` bytes above its kill level is looked at again:
/// by the time a grower at [`STEADY_GROWTH`] has eaten half that band, within
/// [`STEADY_LOOK_MIN`] and `cap`.
pub fn steady_look(to_kill: u64, cap: Duration) -> Duration {
    let secs = (to_kill / 2) as f64 / STEADY_GROWTH as f64;
    Duration::from_secs_f64(secs.min(cap.as_secs_f64())).clamp(STEADY_LOOK_MIN.min(cap), cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_still_cgroup_is_woken_by_its_growth_where_growth_shows_as_usage() {
        // (usage, working set, limit, band above the kill level, MiB) -> wake-up at, MiB.
        let cases: &[(u64, u64, u64, u64, Option<u64>)] = &[
            // 6 MiB above its kill level, no cache: woken 3 MiB (half the band) up.
            (237, 237, 256, 6, Some(240)),
            // Far from its kill level: at the full growth bar.
            (200, 200, 256, 40, Some(204)),
            // Very near it: never less than the least bar.
            (250, 250, 256, 1, Some(251)),
            // Cache worth the bar could grow instead: no wake-up.
            (237, 233, 256, 6, None),
            (237, 235, 256, 6, Some(240)),
            // The limit before the wake-up.
            (254, 254, 256, 6, None),
        ];
        for &(usage, ws, limit, band, want) in cases {
            let got = growth_wake(usage * MIB, ws * MIB, limit * MIB, band * MIB);
            assert_eq!(got, want.map(|w| w * MIB), "{usage} {ws} {limit} {band}");
        }
    }
    const T: Thresholds = Thresholds {
        term: 100 * MIB,
        kill: 50 * MIB,
    };

    #[test]
    fn a_cgroup_at_its_term_level_stands_still_only_when_nothing_moves() {
        use Stillness::*;
        const M: u64 = 1 << 20;
        let at = |used_mib: u64, psi: Option<u64>, events: u64| StillSample {
            used: used_mib * M,
            to_kill: 64 * M,
            psi_total: psi,
            events,
            rate: 0.0,
        };
        let filling = |rate_mib: u64| StillSample {
            rate: (rate_mib * M) as f64,
            ..at(236, Some(500), 3)
        };
        let near = |used_mib: u64, to_kill_mib: u64| {
            Some(StillSample {
                to_kill: to_kill_mib * M,
                ..at(used_mib, Some(500), 3)
            })
        };
        let calm = Some(at(236, Some(500), 3));
        let base = Some(at(235, Some(400), 3));
        // (before, base, now) -> stillness
        let table = [
            (calm, None, at(236, Some(500), 3), Still),
            (calm, base, at(236, Some(500), 3), Still),
            // A huge page collapsed (+2 MiB): noise.
            (calm, base, at(238, Some(500), 3), Still),
            // Grew since the last look, or slowly since it stood still.
            (calm, base, at(240, Some(500), 3), Moving),
            (
                at(238, Some(500), 3).into(),
                base,
                at(239, Some(500), 3),
                Moving,
            ),
            // Stalled, or the kernel throttled or reclaimed at its limits.
            (calm, base, at(236, Some(501), 3), Moving),
            (calm, base, at(236, Some(500), 4), Moving),
            // PSI read at one look only: it says nothing.
            (calm, base, at(236, None, 3), Still),
            // A first look: one more look first.
            (None, None, at(236, Some(500), 3), Unknown),
            // Projected to fill at 600 MB/s: moving, though the look before was 2 ms ago and
            // saw 1 MiB of it; a slow projection (a page cache's noise) is not.
            (calm, base, filling(600), Moving),
            (None, None, filling(600), Moving),
            (calm, base, filling(8), Still),
            // A huge page charged between two looks of a cgroup seen still: projected at
            // 20 MB/s, still noise; the same projection before it was seen still moves it.
            (calm, base, filling(20), Still),
            (calm, None, filling(20), Moving),
            (calm, base, filling(64), Moving),
            // Near the kill level, less growth counts: 2 MiB with 3 MiB left (the band's half,
            // 1.5 MiB), but never less than 1 MiB.
            (near(236, 3), None, at(238, Some(500), 3), Moving),
            (near(236, 3), None, at(237, Some(500), 3), Still),
            (near(236, 1), None, at(237, Some(500), 3), Moving),
            (near(236, 0), None, at(236, Some(500), 3), Still),
        ];
        for (before, base, now, want) in table {
            assert_eq!(
                stillness(before, base, now),
                want,
                "{before:?} {base:?} {now:?}"
            );
        }
    }

    #[test]
    fn a_still_domain_near_its_kill_level_is_looked_at_sooner() {
        let cap = Duration::from_millis(250);
        // (band above the kill level, MiB) -> look, ms
        let table = [
            (u64::MAX / MIB, 250),
            (64, 250),
            (32, 250),
            (16, 125),
            // The VM lab's pod, 5.7 MiB left: a 20 MiB/s grower is noticed after 2.85 MiB and
            // at most one more look, 3.8 MiB in all.
            (6, 46),
            (1, 40),
            (0, 40),
        ];
        for (band, ms) in table {
            let look = steady_look(band.saturating_mul(MIB), cap);
            assert_eq!(look.as_millis(), ms, "{band} MiB");
        }
        assert_eq!(steady_look(0, Duration::from_millis(10)).as_millis(), 10);
    }

    #[test]
    fn levels_at_or_below_thresholds() {
        assert_eq!(T.level(200 * MIB, Level::Ok), Level::Ok);
        assert_eq!(T.level(100 * MIB, Level::Ok), Level::Term);
        assert_eq!(T.level(51 * MIB, Level::Ok), Level::Term);
        assert_eq!(T.level(50 * MIB, Level::Ok), Level::Kill);
        assert_eq!(T.level(0, Level::Ok), Level::Kill);
    }

    #[test]
    fn hysteresis_keeps_a_level_until_free_rises_past_the_margin() {
        // margin = (100-50)/2 = 25 MiB
        assert_eq!(T.level(110 * MIB, Level::Term), Level::Term);
        assert_eq!(T.level(125 * MIB, Level::Term), Level::Ok);
        assert_eq!(T.level(60 * MIB, Level::Kill), Level::Kill);
        assert_eq!(T.level(76 * MIB, Level::Kill), Level::Term);
        // without the previous level, the plain thresholds
        assert_eq!(T.level(110 * MIB, Level::Ok), Level::Ok);
    }

    #[test]
    fn zero_thresholds_are_off() {
        let off = Thresholds { term: 0, kill: 0 };
        assert_eq!(off.level(0, Level::Ok), Level::Ok);
        assert_eq!(off.headroom(0), None);
        let term_only = Thresholds { term: 10, kill: 0 };
        assert_eq!(term_only.level(0, Level::Ok), Level::Term);
    }

    fn sys(require_both: bool) -> SystemThresholds {
        SystemThresholds {
            mem: T,
            swap: Thresholds {
                term: 10 * MIB,
                kill: 5 * MIB,
            },
            require_both,
            psi_full_avg10_term: 0.0,
        }
    }

    #[test]
    fn no_swap_means_memory_alone_decides() {
        let s = SystemSample {
            mem_available: 40 * MIB,
            swap_total: 0,
            swap_free: 0,
            psi_full_avg10: None,
        };
        assert_eq!(system_level(&s, &sys(true), Level::Ok), Level::Kill);
        let s = SystemSample {
            mem_available: 400 * MIB,
            ..s
        };
        assert_eq!(system_level(&s, &sys(false), Level::Ok), Level::Ok);
    }

    #[test]
    fn require_both_or_either() {
        let s = SystemSample {
            mem_available: 40 * MIB,
            swap_total: 1024 * MIB,
            swap_free: 500 * MIB,
            psi_full_avg10: None,
        };
        assert_eq!(
            system_level(&s, &sys(true), Level::Ok),
            Level::Ok,
            "swap still free"
        );
        assert_eq!(system_level(&s, &sys(false), Level::Ok), Level::Kill);
        let s = SystemSample {
            swap_free: 8 * MIB,
            ..s
        };
        assert_eq!(system_level(&s, &sys(true), Level::Ok), Level::Term);
    }

    #[test]
    fn psi_raises_to_term() {
        let mut t = sys(true);
        t.psi_full_avg10_term = 20.0;
        let s = SystemSample {
            mem_available: 400 * MIB,
            swap_total: 0,
            swap_free: 0,
            psi_full_avg10: Some(25.0),
        };
        assert_eq!(system_level(&s, &t, Level::Ok), Level::Term);
        let s = SystemSample {
            psi_full_avg10: Some(5.0),
            ..s
        };
        assert_eq!(system_level(&s, &t, Level::Ok), Level::Ok);
    }

    #[test]
    fn sleep_is_headroom_over_worst_case_rate() {
        let min = Duration::from_millis(2);
        let max = Duration::from_secs(5);
        let rate = 6 << 30;
        // 230 MiB at 6 GiB/s ~ 37 ms
        let s = next_sleep(Some(230 * MIB), rate, min, max);
        assert!(
            s > Duration::from_millis(36) && s < Duration::from_millis(38),
            "{s:?}"
        );
        assert_eq!(next_sleep(Some(0), rate, min, max), min);
        assert_eq!(next_sleep(Some(u64::MAX), rate, min, max), max);
        assert_eq!(next_sleep(None, rate, min, max), max);
    }

    #[test]
    fn need_and_headroom_follow_the_level() {
        // need = threshold + margin (25 MiB) - free
        assert_eq!(T.need(Level::Ok, 10 * MIB), 0);
        assert_eq!(T.need(Level::Term, 90 * MIB), 35 * MIB);
        assert_eq!(T.need(Level::Kill, 40 * MIB), 35 * MIB);
        assert_eq!(T.need(Level::Term, 200 * MIB), 0);
        assert_eq!(Thresholds { term: 0, kill: 0 }.need(Level::Term, 0), 0);
        assert_eq!(T.headroom_from(Level::Ok, 150 * MIB), Some(50 * MIB));
        assert_eq!(T.headroom_from(Level::Term, 80 * MIB), Some(30 * MIB));
        assert_eq!(T.headroom_from(Level::Kill, 10 * MIB), None);
    }

    #[test]
    fn system_need_with_and_without_swap() {
        let s = SystemSample {
            mem_available: 40 * MIB,
            swap_total: 0,
            swap_free: 0,
            psi_full_avg10: None,
        };
        assert_eq!(sys(true).need(&s, Level::Kill), 35 * MIB);
        let s = SystemSample {
            swap_total: 1024 * MIB,
            swap_free: 4 * MIB,
            ..s
        };
        // swap needs 5 + 2.5 - 4 = 3.5 MiB: either recovering ends a `both` condition.
        assert_eq!(sys(true).need(&s, Level::Kill), 7 * MIB / 2);
        assert_eq!(sys(false).need(&s, Level::Kill), 35 * MIB);
    }

    #[test]
    fn exhaustion_raises_to_term_when_on() {
        let s = Duration::from_secs(1);
        assert_eq!(with_exhaustion(Level::Ok, Some(s), 2 * s), Level::Term);
        assert_eq!(with_exhaustion(Level::Ok, Some(3 * s), 2 * s), Level::Ok);
        assert_eq!(with_exhaustion(Level::Kill, Some(s), 2 * s), Level::Kill);
        assert_eq!(
            with_exhaustion(Level::Ok, Some(s), Duration::ZERO),
            Level::Ok
        );
        assert_eq!(with_exhaustion(Level::Ok, None, 2 * s), Level::Ok);
    }

    #[test]
    fn eta_is_available_over_the_rate_seen() {
        let mut f = FillRate::default();
        assert_eq!(f.eta(100 * MIB), None);
        f.update(0, 0.0);
        f.update(100 * MIB, 0.1);
        // Speeding up from idle: the step's own rate, not the average that remembers it idle.
        let eta = f.eta(300 * MIB).unwrap();
        assert!((eta.as_secs_f64() - 0.3).abs() < 1e-6, "{eta:?}");
        // What raises a level is the average: one step from idle is a third of the way there.
        let avg = 1000.0 * MIB as f64 * (1.0 - (-0.1 / FILL_RATE_MEMORY).exp());
        let trend = f.eta_trend(300 * MIB).unwrap();
        assert!(
            (trend.as_secs_f64() - 300.0 * MIB as f64 / avg).abs() < 1e-6,
            "{trend:?}"
        );
        // The faster of the average and the last step: at 500 MiB/s after 1000, the step's
        // (the average still climbs from idle); stopped, the average, which decays.
        let mut slower = f;
        slower.update(150 * MIB, 0.2);
        assert!(
            (slower.rate() - 500.0 * MIB as f64).abs() < 1.0,
            "{}",
            slower.rate()
        );
        let mut stopped = f;
        stopped.update(100 * MIB, 0.2);
        let w = 1.0 - (-0.1 / FILL_RATE_MEMORY).exp();
        let avg = 1000.0 * MIB as f64 * w * (1.0 - w);
        assert!(
            (stopped.rate() - avg).abs() < 1.0,
            "{} {avg}",
            stopped.rate()
        );
        // A stop: 100 ms later nothing grew; the rate falls by e^-0.4 whether that was seen
        // in one sample or in ten 10 ms apart (steps span at least FILL_RATE_MIN_SPAN).
        let mut a = f;
        let mut b = f;
        a.update(100 * MIB, 0.2);
        for k in 1..=10 {
            b.update(100 * MIB, 0.1 + 0.01 * f64::from(k));
        }
        // A drop (a victim's memory freed) is a new baseline: a worker that starts over and
        // grows 40 MiB in 100 ms reads as growing, not as 160 MiB less.
        let mut d = FillRate::default();
        d.update(200 * MIB, 0.0);
        d.update(0, 0.05);
        d.update(40 * MIB, 0.15);
        assert!(d.rate() > 100.0 * MIB as f64, "{}", d.rate());
        // A burst of 1 MiB seen within 10 ms is not a rate of 100 MiB/s.
        let mut burst = FillRate::default();
        burst.update(0, 0.0);
        burst.update(MIB, 0.01);
        assert_eq!(burst.eta(10 * MIB), None);
        burst.update(MIB, 1.0 / 3.0);
        assert!(burst.rate() < 4.0 * MIB as f64, "{}", burst.rate());
        assert!(
            (a.rate() - b.rate()).abs() < 1.0,
            "{} {}",
            a.rate(),
            b.rate()
        );
        // Growth of 4 MiB or more over 20 ms or more, shorter than a step: a provisional rate
        // while none is known, gone at the next step.
        let mut woken = FillRate::default();
        woken.update(100 * MIB, 0.0);
        woken.update(107 * MIB, 0.07);
        let eta = woken.eta(14 * MIB).unwrap();
        assert!((eta.as_secs_f64() - 0.14).abs() < 1e-6, "{eta:?}");
        // The next step measures: the rate is that step's from then on.
        woken.update(107 * MIB, 0.1);
        assert!(
            (woken.rate() - 70.0 * MIB as f64).abs() < 1.0,
            "{}",
            woken.rate()
        );
        let mut short = FillRate::default();
        short.update(100 * MIB, 0.0);
        short.update(104 * MIB, 0.019);
        assert_eq!(short.eta(14 * MIB), None);
        // 25 MiB in 10 ms (the probe's and the term threshold's events of a cgroup filling at
        // 2.5 GB/s) is a rate however short the span.
        let mut fast = FillRate::default();
        fast.update(200 * MIB, 0.0);
        fast.update(225 * MIB, 0.01);
        let eta = fast.eta(25 * MIB).unwrap();
        assert!((eta.as_secs_f64() - 0.01).abs() < 1e-6, "{eta:?}");
        // After a quiet minute, one sample says nothing about the rate now: a jump made long
        // ago is not a fill rate. The next sample within the gap tells again.
        let mut c = f;
        c.update(200 * MIB, 60.0);
        assert_eq!(c.eta(300 * MIB), None);
        c.update(210 * MIB, 60.1);
        assert!(c.eta(300 * MIB).is_some());
    }

    #[test]
    fn a_drop_withholds_the_projection_until_the_scope_grows_again() {
        // An allocator at 1000 MiB/s for 300 ms: projected.
        let mut f = FillRate::default();
        for k in 0..=3u32 {
            f.update(u64::from(k) * 100 * MIB, f64::from(k) * 0.1);
        }
        assert!(f.eta(300 * MIB).is_some());
        // Killed: 300 MiB back. Nothing grows but a few pages (a page cache's noise): the
        // rate that was the victim's projects nothing, however long it takes to decay.
        let mut gone = f;
        gone.update(0, 0.32);
        assert_eq!(gone.eta(300 * MIB), None);
        gone.update(512 * 1024, 0.34);
        gone.update(256 * 1024, 0.36);
        gone.update(900 * 1024, 0.38);
        gone.update(900 * 1024, 0.9);
        assert_eq!(gone.eta(300 * MIB), None);
        // Noise of 3 MiB over 100 ms is not the 1000 MiB/s the rate still says: withheld.
        let mut noise = f;
        noise.update(0, 0.32);
        noise.update(3 * MIB, 0.42);
        assert_eq!(noise.eta(300 * MIB), None);
        // A grower at 150 MiB/s, killed: MemAvailable's wobble of 2 MiB 10 ms after the floor
        // averages above half that rate, yet it is noise: withheld (a second pod was stopped
        // for it on a node).
        let mut wobble = FillRate::default();
        for k in 0..=3u32 {
            wobble.update(u64::from(k) * 15 * MIB, f64::from(k) * 0.1);
        }
        wobble.update(0, 0.32);
        wobble.update(2 * MIB, 0.33);
        assert_eq!(wobble.eta(300 * MIB), None, "{}", wobble.rate());
        // Once the rate has decayed (nothing grew for a second), growth at its pace counts.
        noise.update(3 * MIB, 1.4);
        noise.update(8 * MIB, 1.5);
        assert!(noise.eta(300 * MIB).is_some(), "{}", noise.rate());
        // A respawned worker grows on at once: projected on the rate as it stands.
        let mut respawned = f;
        respawned.update(0, 0.32);
        respawned.update(8 * MIB, 0.321);
        let eta = respawned.eta(300 * MIB).expect("projected again");
        assert!(eta < Duration::from_secs(1), "{eta:?}");
        // Growth from the floor, not from the first sample after the drop.
        let mut floor = f;
        floor.update(10 * MIB, 0.32);
        floor.update(5 * MIB, 0.33);
        floor.update(10 * MIB + 512 * 1024, 0.34);
        assert!(floor.eta(300 * MIB).is_some());
        // stress-ng's memfd workers, as sampled in a 256 MiB cgroup: a victim's memory comes
        // back (floor at 157 MiB); for 80 ms the survivors grow slowly while it finishes
        // exiting, then a new worker fills at 2.5 GB/s. Its speed is seen between the last two
        // looks, 10 ms apart (the rate probe's and the term threshold's events); with 25 MiB
        // left it must be projected (10 ms: no room for SIGTERM), not withheld because the
        // 90 ms since the floor average less than half the rate.
        let mut memfd = FillRate::default();
        for k in 0..=10u32 {
            memfd.update(u64::from(k) * 230 * MIB, f64::from(k) * 0.1);
        }
        memfd.update(157 * MIB, 1.01);
        memfd.update(205 * MIB, 1.093);
        assert_eq!(memfd.eta(50 * MIB), None, "{memfd:?}");
        memfd.update(231 * MIB, 1.103);
        let eta = memfd
            .eta(25 * MIB)
            .expect("projected on the speed seen now");
        assert!(eta < Duration::from_millis(15), "{eta:?}");
    }

    #[test]
    fn fill_rate_tracks_increases_only() {
        let mut f = FillRate::default();
        f.update(0, 0.0);
        let r = f.update(100, 0.1);
        assert!(r > 0.0);
        // A drop only moves the baseline; then nothing grows for 100 ms: the rate falls.
        assert_eq!(f.update(50, 0.2), r);
        let r2 = f.update(50, 0.3);
        assert!(r2 < r);
    }
}
