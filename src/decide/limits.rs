//! Every timing, threshold and bound an OOM domain is judged by, in one place: how long an
//! episode waits for what (the kernel's victim, an exit's memory, a back-off), how often a
//! domain is looked at, and how much growth or loss counts as more than noise. The modules
//! that decide (`episode`, `gain`, `trigger`) read them from here, so a reader can hold every
//! number beside the kernel's own (`mm/oom_kill.c` keeps its constraint in one
//! `constrained_alloc`).
//!
//! Where a figure comes from (a measurement in the lab, a kernel constant) is said beside it.

use std::time::Duration;

/// The timings an episode runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// SIGTERM → this long → SIGKILL.
    pub grace: Duration,
    /// A SIGKILLed victim still there after this is given up on.
    pub stuck_timeout: Duration,
    /// The longest wait for the kernel's own victim.
    pub kernel_wait: Duration,
    /// How long a domain where nothing could be done is left alone.
    pub backoff: Duration,
    /// After a victim exits, how long a hung cgroup gets before another rescue (its waiting
    /// tasks must run before `under_oom` can clear).
    pub rescue_settle: Duration,
    /// How long before exhaustion a SIGKILL must go out for its memory to come back in time
    /// (see [`KILL_LEAD`]).
    pub kill_lead: Duration,
    /// The longest wait for an exited victim's memory before another is asked to exit (see
    /// [`EXIT_SETTLE`]).
    pub exit_settle: Duration,
}

impl Limits {
    /// The daemon's timings around the configured grace and stuck timeout.
    pub fn new(grace: Duration, stuck_timeout: Duration) -> Self {
        Limits {
            grace,
            stuck_timeout,
            kernel_wait: KERNEL_WAIT,
            backoff: BACKOFF,
            rescue_settle: RESCUE_SETTLE,
            kill_lead: KILL_LEAD,
            exit_settle: EXIT_SETTLE,
        }
    }
}

/// See [`Limits::kill_lead`]: the signal, `process_mrelease` of a few hundred MiB (under a
/// millisecond here), and the loop's own wake-up with every CPU busy faulting memory in (up to
/// 20 ms for an ordinary thread; seen here before the loop ran in the real-time class).
pub const KILL_LEAD: Duration = Duration::from_millis(20);

/// See [`Limits::kernel_wait`]. The kernel's OOM reaper frees a victim's anonymous memory within
/// milliseconds; a tenth of a second covers a large victim and keeps oomward in the race.
pub const KERNEL_WAIT: Duration = Duration::from_millis(100);

/// See [`Limits::exit_settle`]. Tearing down half a GiB of anonymous memory and swap took a
/// quarter of a second in an emulated guest; half a second covers that, and only at the term
/// level of a domain that is not getting worse, where nothing is urgent.
pub const EXIT_SETTLE: Duration = Duration::from_millis(500);

/// See [`Limits::backoff`]: at most two looks a second at a domain where nothing can be done.
pub const BACKOFF: Duration = Duration::from_millis(500);

/// See [`Limits::rescue_settle`].
pub const RESCUE_SETTLE: Duration = Duration::from_millis(100);

/// How often a domain with a SIGKILLed victim being released is sampled.
pub const RELEASE_POLL: Duration = Duration::from_millis(2);

/// How often a domain whose victim was asked to exit is sampled (its pidfd is checked then).
pub const EXIT_POLL: Duration = Duration::from_millis(10);

/// While backed off, how often the domain is sampled anyway: a futile verdict must not be blind
/// to a process that starts growing (at the term level no threshold is left to tell of it
/// before the kill level, and at the kill level none at all). Samples this far apart also
/// measure its fill rate, so the choice that follows can still ask first. A tenth of a second:
/// a grower at 100 MiB/s is seen after 10 MiB, and a futile domain costs ten looks a second.
pub const BACKOFF_LOOK: Duration = Duration::from_millis(100);

/// How often a domain standing still at its term level is looked at, at most: four looks a
/// second (a tight pod may stand still for days). A process that starts growing there is seen
/// within a quarter of a second; its kernel events (v1: the kill level's threshold; v2: `max`,
/// PSI) wake the loop sooner. Nearer its kill level it is looked at more often (see
/// [`STEADY_GROWTH`]).
pub const STEADY_LOOK: Duration = Duration::from_millis(250);

/// The growth a domain standing still is watched for, bytes a second: it is looked at often
/// enough that a grower this fast is noticed before it has eaten the band left above the kill
/// level (half of it to be noticed, see [`STILL_GROWTH`], half while the next look comes). A
/// pod still 5.7 MiB above its kill level, looked at every quarter of a second, was found past
/// it by the first look after a 20 MiB/s grower started, and SIGKILL went out where SIGTERM was
/// due.
pub const STEADY_GROWTH: u64 = 64 << 20;

/// The shortest look at a domain standing still, however near its kill level: 25 looks a
/// second at most.
pub const STEADY_LOOK_MIN: Duration = Duration::from_millis(40);

/// How soon a domain at its term level whose stillness is not known yet (the first look there
/// has nothing to compare with) is looked at again.
pub const STILLNESS_LOOK: Duration = Duration::from_millis(120);

/// A rise of available memory that shows the kernel's victim gave its memory back.
pub const RELEASE_SEEN: u64 = 1 << 20;

/// A fall of available memory that ends a back-off early: the domain is getting worse.
pub const WORSE_BY: u64 = 4 << 20;

/// The least fill rate of a domain that counts as filling, bytes a second (below it, page
/// cache churn and noise).
pub const FILLING: f64 = (4u64 << 20) as f64;

/// How far a domain's available memory must fall after a victim's exit that gave back
/// nothing for the kill to count as barren (below it, page cache churn and noise).
pub const BARREN_FALL: u64 = 4 << 20;

/// How long after a fruitless exit (see [`super::gain::fruitless`]) the domain is watched for whether it
/// goes on filling: a fill slower than [`BARREN_FALL`] in this time is not one a kill must
/// answer at once.
pub const FRUITLESS_WATCH: std::time::Duration = Duration::from_secs(2);

/// Within this share of its parent's score (in per mille), a child counts as near-equal.
pub const NEAR_EQUAL_PER_MILLE: i64 = 900;

/// Growth that counts as moving: between two looks (16 MiB/s at four looks a second), or
/// since the cgroup was first seen standing still (a slow leak). Less is noise: a huge page
/// collapsed by khugepaged is charged 2 MiB before the small pages it replaces are freed.
/// Nearer the kill level than twice this, half the band left counts (never below
/// [`STILL_GROWTH_MIN`]): growth that takes the cgroup halfway to its kill is not noise. (A
/// third was too little: a pod holding still in the VM lab moved by that much.)
pub const STILL_GROWTH: u64 = 4 << 20;

/// The least growth that counts as moving, however near the kill level.
pub const STILL_GROWTH_MIN: u64 = 1 << 20;

/// A projected fill rate at or above which a cgroup moves whatever two looks show: its
/// [`STILL_GROWTH`] per quarter of a second. Two looks a few milliseconds apart (a threshold's
/// event, then the look that follows) see less than [`STILL_GROWTH`] between them at 600 MB/s;
/// taken for still, such a cgroup was left alone for a quarter of a second and reached its
/// limit (a Redis save's copy-on-write here).
pub const STILL_RATE: f64 = (STILL_GROWTH * 4) as f64;

/// The projected fill rate that moves a cgroup already seen standing still: four times
/// [`STILL_RATE`]. A huge page charged between two looks of a pod still for a minute projected
/// 20 MB/s in the VM lab (and it was killed for it), where a grower that matters projects
/// hundreds; a slower one shows [`STILL_GROWTH`] by the next look.
pub const STILL_RATE_SEEN: f64 = STILL_RATE * 4.0;
