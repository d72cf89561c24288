//! Thrashing, as the kernel reports it: the share of a recent window in which tasks stalled on
//! memory (PSI `some`/`full`), the rate at which evicted file pages came back (workingset
//! refaults) and the rate of major faults. On a desktop these rise well before MemAvailable
//! reaches any percent line: the compositor's code and the fonts are file pages, and the
//! kernel evicts them to make room for a growing anonymous process (with zram, sooner still).
//!
//! Pure: the caller reads the kernel's cumulative counters at each sample and keeps them in a
//! [`StallWindow`]; the window gives rates over its span; [`judge`] compares them with the
//! configured terms. A stall counts only while available memory is at or below a bound
//! ([`StallTerms::below_available`]), so heavy but healthy I/O on a machine with memory to
//! spare is never a reason to kill.

use std::time::{Duration, Instant};

/// The configured stall terms of a scope. A term of 0 is off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StallTerms {
    /// The span the rates are measured over.
    pub window: Duration,
    /// PSI `some`: percent of the window in which at least one task stalled on memory.
    pub psi_some: f64,
    /// PSI `full`: percent of the window in which every non-idle task stalled on memory.
    pub psi_full: f64,
    /// File pages that were evicted and read back, bytes per second.
    pub refault_rate: u64,
    /// Major faults per second.
    pub major_fault_rate: u64,
    /// Available memory (bytes) at or below which a stall counts; 0: always.
    pub below_available: u64,
}

impl StallTerms {
    /// Whether any stall term is on.
    pub fn any(&self) -> bool {
        self.psi_some > 0.0
            || self.psi_full > 0.0
            || self.refault_rate > 0
            || self.major_fault_rate > 0
    }

    /// Whether the counters behind the rates need reading (`psi`, `vmstat`).
    pub fn needs(&self) -> (bool, bool) {
        (
            self.psi_some > 0.0 || self.psi_full > 0.0,
            self.refault_rate > 0 || self.major_fault_rate > 0,
        )
    }
}

/// The kernel's cumulative counters at one sample; `None` where the kernel has none (no PSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StallCounters {
    /// PSI `some` total, microseconds.
    pub psi_some_us: Option<u64>,
    /// PSI `full` total, microseconds.
    pub psi_full_us: Option<u64>,
    /// `workingset_refault_file`, in bytes (pages × page size).
    pub refault_file: Option<u64>,
    /// `pgmajfault`.
    pub major_faults: Option<u64>,
}

/// Rates over a window's span.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StallRates {
    /// What they were measured over.
    pub span: Duration,
    /// PSI `some`, percent of the span.
    pub psi_some: Option<f64>,
    /// PSI `full`, percent of the span.
    pub psi_full: Option<f64>,
    /// Bytes of file pages refaulted per second.
    pub refault_rate: Option<f64>,
    /// Major faults per second.
    pub major_fault_rate: Option<f64>,
}

/// Which term a stall crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallCause {
    /// PSI `full` over the window.
    PsiFull,
    /// PSI `some` over the window.
    PsiSome,
    /// Workingset refaults of file pages.
    Refaults,
    /// Major faults.
    MajorFaults,
}

impl StallCause {
    /// The word on the decision line.
    pub fn as_str(self) -> &'static str {
        match self {
            StallCause::PsiFull => "psi_full",
            StallCause::PsiSome => "psi_some",
            StallCause::Refaults => "refaults",
            StallCause::MajorFaults => "major_faults",
        }
    }
}

/// What [`judge`] found: the first term crossed and the rate that crossed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// The term crossed.
    pub cause: StallCause,
    /// Its rate (percent, bytes/s or faults/s).
    pub value: f64,
}

/// How many samples a window keeps. They are kept at least a sixteenth of the window apart
/// (a newer one replaces the newest until it is), so the ring always reaches back a whole
/// window, whatever the sampling rate, without allocating.
const SLOTS: usize = 24;

/// Recent counters of one scope, oldest first, in a fixed ring.
#[derive(Debug, Clone)]
pub struct StallWindow {
    ring: [(Option<Instant>, StallCounters); SLOTS],
    /// Index of the oldest entry.
    head: usize,
    len: usize,
}

impl Default for StallWindow {
    fn default() -> Self {
        StallWindow {
            ring: [(None, StallCounters::default()); SLOTS],
            head: 0,
            len: 0,
        }
    }
}

impl StallWindow {
    fn at(&self, i: usize) -> (Instant, StallCounters) {
        let (t, c) = self.ring[(self.head + i) % SLOTS];
        (t.expect("entries below len are set"), c)
    }

    /// Records a sample taken at `now`.
    pub fn push(&mut self, now: Instant, c: StallCounters, window: Duration) {
        let spacing = window / 16;
        // The newest is replaced while it is too close to the one before it: entries stay
        // spaced, and the newest is always the latest sample.
        if self.len >= 2 {
            let (before, _) = self.at(self.len - 2);
            if now.saturating_duration_since(before) < spacing {
                let last = (self.head + self.len - 1) % SLOTS;
                self.ring[last] = (Some(now), c);
                return;
            }
        }
        if self.len == SLOTS {
            self.head = (self.head + 1) % SLOTS;
            self.len -= 1;
        }
        self.ring[(self.head + self.len) % SLOTS] = (Some(now), c);
        self.len += 1;
    }

    /// Forgets every sample: after a victim exited, the stall it caused must not count
    /// against the next one.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The rates from the newest sample back to the latest one at least `window` old, or
    /// the oldest when that spans at least half the window; `None` before that (a stall must
    /// be sustained, not a blip).
    pub fn rates(&self, window: Duration) -> Option<StallRates> {
        if self.len < 2 {
            return None;
        }
        let (t1, c1) = self.at(self.len - 1);
        let mut base = self.at(0);
        for i in (0..self.len - 1).rev() {
            let (t, c) = self.at(i);
            if t1.saturating_duration_since(t) >= window {
                base = (t, c);
                break;
            }
        }
        let (t0, c0) = base;
        let span = t1.saturating_duration_since(t0);
        if span.is_zero() || span < window / 2 {
            return None;
        }
        Some(rates_between(&c0, &c1, span))
    }
}

/// The rates between two samples `span` apart. A counter that went backwards (reset) gives
/// no rate.
pub fn rates_between(c0: &StallCounters, c1: &StallCounters, span: Duration) -> StallRates {
    let secs = span.as_secs_f64();
    let per_sec = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / secs),
        _ => None,
    };
    let percent = |a, b| per_sec(a, b).map(|us| (us / 1e6 * 100.0).min(100.0));
    StallRates {
        span,
        psi_some: percent(c0.psi_some_us, c1.psi_some_us),
        psi_full: percent(c0.psi_full_us, c1.psi_full_us),
        refault_rate: per_sec(c0.refault_file, c1.refault_file),
        major_fault_rate: per_sec(c0.major_faults, c1.major_faults),
    }
}

/// Whether the scope stalls: the first term (in the order `full`, `some`, refaults, major
/// faults) its rate reaches, while `available` is at or below the bound.
pub fn judge(rates: &StallRates, terms: &StallTerms, available: u64) -> Option<Stall> {
    if terms.below_available > 0 && available > terms.below_available {
        return None;
    }
    let checks = [
        (StallCause::PsiFull, rates.psi_full, terms.psi_full),
        (StallCause::PsiSome, rates.psi_some, terms.psi_some),
        (
            StallCause::Refaults,
            rates.refault_rate,
            terms.refault_rate as f64,
        ),
        (
            StallCause::MajorFaults,
            rates.major_fault_rate,
            terms.major_fault_rate as f64,
        ),
    ];
    checks
        .into_iter()
        .find_map(|(cause, rate, term)| match rate {
            Some(v) if term > 0.0 && v >= term => Some(Stall { cause, value: v }),
            _ => None,
        })
}

/// Bytes available memory must rise by before a stall stops counting (past the bound, by 1 %
/// of it or 1 MiB): what a victim must free for the stall trigger to let go.
pub fn need(terms: &StallTerms, available: u64) -> u64 {
    if terms.below_available == 0 {
        return 0;
    }
    let margin = (terms.below_available / 100).max(1 << 20);
    terms
        .below_available
        .saturating_add(margin)
        .saturating_sub(available)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn c(some_ms: u64, full_ms: u64, refault_mib: u64, majflt: u64) -> StallCounters {
        StallCounters {
            psi_some_us: Some(some_ms * 1000),
            psi_full_us: Some(full_ms * 1000),
            refault_file: Some(refault_mib * MIB),
            major_faults: Some(majflt),
        }
    }

    fn terms() -> StallTerms {
        StallTerms {
            window: 2 * S,
            psi_some: 40.0,
            psi_full: 10.0,
            refault_rate: 32 * MIB,
            major_fault_rate: 2000,
            below_available: 100 * MIB,
        }
    }

    #[test]
    fn rates_are_deltas_over_the_span() {
        let r = rates_between(&c(0, 0, 0, 0), &c(500, 200, 64, 1000), 2 * S);
        assert_eq!(r.span, 2 * S);
        assert_eq!(r.psi_some, Some(25.0));
        assert_eq!(r.psi_full, Some(10.0));
        assert_eq!(r.refault_rate, Some((32 * MIB) as f64));
        assert_eq!(r.major_fault_rate, Some(500.0));
        // A counter that went back (or is missing) gives no rate; the rest still do.
        let mut back = c(100, 0, 0, 0);
        back.psi_full_us = None;
        let r = rates_between(&c(500, 0, 0, 0), &back, S);
        assert_eq!((r.psi_some, r.psi_full), (None, None));
        assert_eq!(r.major_fault_rate, Some(0.0));
    }

    #[test]
    fn judge_table() {
        let t = terms();
        let rates = |some: f64, full: f64, refault_mib: u64, majflt: f64| StallRates {
            span: 2 * S,
            psi_some: Some(some),
            psi_full: Some(full),
            refault_rate: Some((refault_mib * MIB) as f64),
            major_fault_rate: Some(majflt),
        };
        let cause = |r: StallRates, avail_mib: u64| judge(&r, &t, avail_mib * MIB).map(|s| s.cause);
        let table = [
            // (rates, available MiB, expected)
            (rates(0.0, 0.0, 0, 0.0), 50, None),
            (rates(39.9, 9.9, 31, 1999.0), 50, None),
            (rates(0.0, 10.0, 0, 0.0), 50, Some(StallCause::PsiFull)),
            (rates(40.0, 0.0, 0, 0.0), 50, Some(StallCause::PsiSome)),
            (rates(0.0, 0.0, 32, 0.0), 50, Some(StallCause::Refaults)),
            (
                rates(0.0, 0.0, 0, 2000.0),
                50,
                Some(StallCause::MajorFaults),
            ),
            // Full first when several cross.
            (
                rates(90.0, 50.0, 500, 9000.0),
                50,
                Some(StallCause::PsiFull),
            ),
            // At the bound still counts; above it, nothing does.
            (
                rates(90.0, 50.0, 500, 9000.0),
                100,
                Some(StallCause::PsiFull),
            ),
            (rates(90.0, 50.0, 500, 9000.0), 101, None),
        ];
        for (i, (r, avail, want)) in table.into_iter().enumerate() {
            assert_eq!(cause(r, avail), want, "row {i}");
        }
        // A term of 0 is off; a bound of 0 is no bound.
        let off = StallTerms {
            psi_full: 0.0,
            below_available: 0,
            ..t
        };
        let r = rates(0.0, 80.0, 0, 0.0);
        assert_eq!(judge(&r, &off, u64::MAX), None);
        let unbounded = StallTerms {
            below_available: 0,
            ..t
        };
        assert!(judge(&r, &unbounded, u64::MAX).is_some());
        // No PSI on the kernel: the PSI terms never fire.
        let none = StallRates {
            psi_some: None,
            psi_full: None,
            ..r
        };
        assert_eq!(judge(&none, &t, 0), None);
    }

    #[test]
    fn a_window_needs_half_its_span_and_measures_back_a_whole_window() {
        let base = Instant::now();
        let window = 2 * S;
        let mut w = StallWindow::default();
        assert_eq!(w.rates(window), None);
        // A sample every 100 ms, each adding 100 ms of `full`: a whole stall.
        for i in 0..=9u64 {
            w.push(base + ms(i * 100), c(i * 100, i * 100, 0, 0), window);
        }
        // 0.9 s of history < half the window: not yet sustained.
        assert_eq!(w.rates(window), None);
        for i in 10..=40u64 {
            w.push(base + ms(i * 100), c(i * 100, i * 100, 0, 0), window);
        }
        let r = w.rates(window).unwrap();
        assert!(
            r.span >= window && r.span < window + 200 * MS,
            "{:?}",
            r.span
        );
        assert!((r.psi_full.unwrap() - 100.0).abs() < 1e-9);
        // The stall stops: within a window the rate falls to nothing.
        for i in 41..=70u64 {
            w.push(base + ms(i * 100), c(4000, 4000, 0, 0), window);
        }
        assert_eq!(w.rates(window).unwrap().psi_full, Some(0.0));
        // Cleared: no rate until half a window of new samples.
        w.clear();
        w.push(base + ms(7100), c(4000, 4000, 0, 0), window);
        assert_eq!(w.rates(window), None);
    }

    #[test]
    fn fast_samples_do_not_shorten_the_window() {
        // Samples every 2 ms (an episode) for 3 s: the ring still reaches back a whole window.
        let base = Instant::now();
        let window = 2 * S;
        let mut w = StallWindow::default();
        for i in 0..1500u64 {
            // The first second stalls fully, the rest not at all.
            let full = (i * 2).min(1000);
            w.push(base + ms(i * 2), c(full, full, 0, 0), window);
        }
        let r = w.rates(window).unwrap();
        assert!(r.span >= window, "{:?}", r.span);
        // From t≈0.9–1.0 s to 3 s: at most ~0.1 s of the stall inside the window.
        assert!(r.psi_full.unwrap() < 10.0, "{r:?}");
    }

    #[test]
    fn the_need_is_to_the_bound_and_a_margin() {
        let t = terms();
        assert_eq!(need(&t, 40 * MIB), 61 * MIB);
        assert_eq!(need(&t, 500 * MIB), 0);
        let unbounded = StallTerms {
            below_available: 0,
            ..t
        };
        assert_eq!(need(&unbounded, 0), 0);
    }
}
