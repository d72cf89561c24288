//! One watched cgroup and when it is looked at: only when it is due (its own kernel event, its
//! timer from the worst-case fill rate, or an episode in its domain), so that a hundred idle
//! containers cost what one does; its cheap look and full sample, what a sample makes of it for
//! its domain, and the kernel event sources and tripwires armed for it. The part that holds
//! them all, with the system scope, is `watched`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::act::tripwire::Tripwires;
use crate::config::{UnderOom, WatchedCgroup};
use crate::decide::domain::Member;
use crate::decide::trigger::{FillRate, Level, next_sleep, with_exhaustion};
use crate::decide::tripwire;
use crate::events::{ArmError, ArmedSet, Events, Source, Spec};
use crate::probe::Host;
use crate::probe::cgroup::{CgroupVersion, MemoryHierarchy};
use crate::report::{Line, Logger, Severity};
use crate::watch::{
    CgroupSample, ChainFiles, SwapSpace, below_usage_thresholds, cgroup_thresholds,
    look_thresholds, quick_headroom, sample_cgroup_into,
};

/// How long a v1 cgroup whose usage thresholds are armed (and not yet crossed) goes without a
/// look: its thresholds and OOM notification wake the loop when it fills; this look only
/// catches a limit changed on its path (the kernel sends no event for that) and re-arms.
pub const ARMED_REFRESH: Duration = Duration::from_secs(60);
/// How long a v2 cgroup goes without a look while its climb is announced by a tripwire and a
/// limit written on its path by an inotify event: nothing can change unannounced, so the look
/// only refreshes its figures (the status file, the metrics) and re-arms what broke.
pub const ANNOUNCED_REFRESH: Duration = Duration::from_secs(300);
/// After its domain's episode, how long a cgroup is looked at by the worst-case rule although
/// its thresholds are armed. A victim's memory coming back and a restarted worker filling the
/// cgroup again cross the same threshold down and up within milliseconds: the two signals of
/// its eventfd can be read as one, after the round that saw the dip, and the way up is then
/// announced by nothing. Seen here once in about ten thousand kills of a respawning workload
/// (a kernel OOM kill); the timer is the second, independent path while that can happen.
pub const WARM: Duration = Duration::from_secs(1);
/// Where a v1 cgroup's usage is sampled on its way to the term level: at twice the term
/// threshold's headroom. The kernel's threshold event there is a sample like any other, so that
/// when the term threshold's event follows, the two crossings measure the rate at which the
/// cgroup filled in between: an idle cgroup that starts filling is projected at its first
/// decision (whether it has room for SIGTERM, whether its own processes or an unwatched sibling
/// fill it), at no cost while it stays calm.
fn rate_probe(term: u64) -> u64 {
    term.saturating_mul(2)
}

/// The available memory a cgroup limited at `limit` is to be heard at on its way to its term
/// level: its warn level (0: none), the rate probe and the term level.
fn rungs(cfg: &WatchedCgroup, limit: u64) -> [u64; 3] {
    let term = cgroup_thresholds(cfg, limit).term;
    let warn = cfg.available_warn.map_or(0, |w| w.bytes_of(limit));
    [warn, rate_probe(term), term]
}

/// A cgroup just made is looked at this often for its first [`YOUNG`]: its limit is usually
/// written and its processes moved in right after the directory appears.
const YOUNG_LOOK: Duration = Duration::from_millis(50);
/// See [`YOUNG_LOOK`].
const YOUNG: Duration = Duration::from_secs(2);
/// Longest time between looks at a v1 cgroup with `oom_kill_disable = 1` whose OOM
/// notification could not be armed: it can hang at its limit without crossing a threshold.
const HANG_WATCH: Duration = Duration::from_millis(20);

/// One watched cgroup.
pub(super) struct CgroupScope {
    /// Its identity for as long as it is watched.
    pub id: u32,
    /// Its path in the memory hierarchy.
    pub path: String,
    /// The `[[cgroup]]` that matched it.
    pub config_index: usize,
    /// When it started being watched.
    pub added: Instant,
    /// Fill rate seen over its looks: of its domain's charge (what its headroom is made of).
    pub fill: FillRate,
    /// Fill rate of its own working set: what its own processes add, to tell a shortage made
    /// inside it from one made by an unwatched sibling under the same limit.
    pub own_fill: FillRate,
    /// Kernel event sources armed for it (disarmed when it is dropped).
    pub events: Option<ArmedSet>,
    /// What they were armed for ([`CgroupSample::limits_fingerprint`], and the growth wake-up).
    pub armed_for: Option<(u64, Option<GrowthWake>)>,
    /// Every usage threshold and the OOM notification are armed (v1).
    pub thresholds_armed: bool,
    /// Sources already reported as unavailable (a bit per `Source`), to say it once.
    pub unavailable: u16,
    /// The last sample failed (other than by removal); reported once until one succeeds.
    pub read_failing: bool,
    /// The v1 OOM notification is armed: no need to poll for a hang.
    pub oom_armed: bool,
    /// How long its `memory.events` stays quiet after it fired, as last told to the poller.
    pub events_quiet: Duration,
    /// v2: its climb to the term level is announced by a `high` event on every limited
    /// cgroup of its path (a tripwire or someone's `memory.high`, and its `memory.events`
    /// armed), as of the last full sample.
    pub announced: bool,
    /// Its files and its ancestors', kept open.
    pub files: Option<ChainFiles>,
    /// The last full sample (kept for its buffers too).
    pub sample: CgroupSample,
    /// A full sample was taken this round.
    pub fresh: bool,
    /// When the last full sample was taken.
    pub last_full: Option<Instant>,
    /// Until when it is looked at by the worst-case rule even with its thresholds armed: its
    /// domain was in an episode moments ago (see [`WARM`]).
    pub warm_until: Option<Instant>,
    /// When it is due for a look; `None`: now.
    pub next_look: Option<Instant>,
    /// What its last full sample makes of it for its domain, its own level included.
    pub member: Member,
    /// In its warn band (below `available_warn`) at the last full sample.
    pub warned: bool,
    /// Its projected time to exhaustion at the last full sample.
    pub eta: Option<Duration>,
    /// The kernel's OOM counts at the last full sample.
    pub oom_counts: Option<crate::watch::OomCounts>,
    /// Its memory PSI `some` total (µs) at the last full sample, read only while it is past
    /// its term level (v2; `None` elsewhere).
    pub psi_total: Option<u64>,
    /// What told whether it stands still at the last full sample.
    pub stillness: Option<crate::decide::trigger::StillSample>,
    /// The full sample where it was first seen standing still, while it does.
    pub still_since: Option<crate::decide::trigger::StillSample>,
    /// Standing still: the chain index of its nearest limit and the usage there at which the
    /// kernel is to wake the loop (see [`crate::decide::trigger::growth_wake`]).
    pub growth_wake: Option<GrowthWake>,
    /// The wake-up as armed (v1: a usage threshold); its looks are then not paced by the band
    /// above its kill level.
    pub growth_armed: Option<GrowthWake>,
}

impl CgroupScope {
    pub fn new(id: u32, path: String, config_index: usize, now: Instant) -> Self {
        CgroupScope {
            id,
            path,
            config_index,
            added: now,
            fill: FillRate::default(),
            own_fill: FillRate::default(),
            events: None,
            armed_for: None,
            thresholds_armed: false,
            unavailable: 0,
            read_failing: false,
            oom_armed: false,
            announced: false,
            events_quiet: crate::events::V2_EVENTS_COALESCE,
            files: None,
            sample: CgroupSample::default(),
            fresh: false,
            last_full: None,
            warm_until: None,
            next_look: None,
            member: Member::default(),
            warned: false,
            eta: None,
            oom_counts: None,
            psi_total: None,
            stillness: None,
            still_since: None,
            growth_wake: None,
            growth_armed: None,
        }
    }

    /// Whether it must be looked at this round.
    pub fn due(&self, now: Instant) -> bool {
        self.next_look.is_none_or(|t| now >= t)
    }

    /// The cgroup whose limit binds it (its OOM domain), if anything on its path is limited.
    pub fn domain_path(&self) -> Option<&str> {
        let i = self.sample.limit_index?;
        self.sample.chain.get(i).map(|(p, _)| p.as_str())
    }
}

/// What one look at a cgroup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Full sample taken.
    Sampled,
    /// The cheap look says it is still calm; the bytes to its nearest term threshold.
    Calm(u64),
    /// It was removed.
    Gone,
    /// It cannot be read now (said once).
    Unreadable,
}

/// The cheap look at a calm cgroup: the usage floor (one read per limited cgroup on its path).
/// `None` when a full sample is due: it was not calm, its floor is near a threshold, or its last
/// full sample is older than [`ARMED_REFRESH`] (which notices a changed limit).
pub(super) fn cheap_look(
    host: &Host,
    cg: &mut CgroupScope,
    cfg: &WatchedCgroup,
    limits_watched: bool,
    now: Instant,
) -> Option<u64> {
    let refresh = if cg.announced && limits_watched {
        ANNOUNCED_REFRESH
    } else {
        ARMED_REFRESH
    };
    let recent = cg
        .last_full
        .is_some_and(|t| now.duration_since(t) < refresh);
    if !recent || cg.member.level != Level::Ok || cg.sample.limit.is_none() {
        return None;
    }
    let files = cg
        .files
        .get_or_insert_with(|| ChainFiles::new(host, &cg.path));
    quick_headroom(host, files, &cg.sample, cfg, cg.warned, cg.announced)
}

/// A full sample of one cgroup and its ancestors.
pub(super) fn sample(
    host: &Host,
    cg: &mut CgroupScope,
    system_t: u64,
    swap: SwapSpace,
    now: Instant,
    log: &mut Logger,
) -> Look {
    let files = cg
        .files
        .get_or_insert_with(|| ChainFiles::new(host, &cg.path));
    // Reused across rounds: no allocation after the first sample.
    let mut sample = std::mem::take(&mut cg.sample);
    let result = sample_cgroup_into(host, files, &mut sample, system_t, swap);
    // Past its term level, whether it stalls tells if it stands still (see `assess_cgroup`).
    cg.psi_total = if cg.member.level == Level::Ok {
        None
    } else {
        crate::watch::psi_some_total(files)
    };
    cg.sample = sample;
    match result {
        Ok(()) => {
            cg.read_failing = false;
            cg.fresh = true;
            cg.last_full = Some(now);
            Look::Sampled
        }
        Err(e) if e.is_gone() => Look::Gone,
        Err(e) => {
            // Still there but unreadable now (out of descriptors, an odd file): keep watching,
            // say so once, and reopen its files next time.
            if !cg.read_failing {
                cg.read_failing = true;
                log.log(
                    Severity::Error,
                    &Line::new("cannot read cgroup")
                        .kv("event", "scope_unreadable")
                        .kv("scope", &cg.path)
                        .kv("error", e),
                );
            }
            cg.files = None;
            Look::Unreadable
        }
    }
}

/// What a fresh sample makes of a cgroup: its level (with hysteresis, the exhaustion trigger,
/// the v2 `oom` count and a v1 hang) and what its domain needs. Also says when the kernel
/// left OOM. `t_secs` is the loop's clock in seconds.
pub(super) fn assess_cgroup(
    cg: &mut CgroupScope,
    cfg: &WatchedCgroup,
    t_secs: f64,
    log: &mut Logger,
) {
    let sample = &cg.sample;
    let own = sample.own();
    let counts = sample.oom_counts();
    let seen = cg.oom_counts.replace(counts);
    let mut level = Level::Ok;
    let mut need = 0;
    let mut to_kill = u64::MAX;
    cg.eta = None;
    if let (Some(avail), Some(limit)) = (sample.available, sample.limit) {
        let th = cgroup_thresholds(cfg, limit);
        let used = (limit + sample.swap_left).saturating_sub(avail);
        cg.fill.update(used, t_secs);
        cg.own_fill.update(own.working_set(), t_secs);
        cg.eta = cg.fill.eta(avail);
        let trend = cg.fill.eta_trend(avail);
        level = with_exhaustion(th.level(avail, cg.member.level), trend, cfg.exhaustion_term);
        need = th.need(level, avail);
        to_kill = th.headroom_from(Level::Term, avail).unwrap_or(u64::MAX);
        cg.warned = crate::watch::cgroup_warned(cfg, limit, avail, cg.warned);
    }
    // v2: a rising `oom` count means the cgroup is in OOM right now: act at once.
    if seen.is_some_and(|seen| counts.oom_rose_since(&seen)) {
        level = Level::Kill;
        need = need.max(1);
    }
    let rescue = own.under_oom && cfg.on_under_oom == UnderOom::Kill;
    if !own.under_oom && cg.member.rescue {
        log.log(
            Severity::Info,
            &Line::new("cgroup left OOM")
                .kv("event", "under_oom_cleared")
                .kv("scope", &cg.path),
        );
    }
    let steady = stillness(cg, level, to_kill);
    cg.member = Member {
        level,
        need,
        rescue,
        steady,
        to_kill,
    };
}

/// Whether a cgroup at its term level stands still (see
/// [`crate::decide::trigger::stillness`]), from this full sample and the one before. What it
/// is compared with is kept at every full sample; moving at any other level.
fn stillness(
    cg: &mut CgroupScope,
    level: Level,
    to_kill: u64,
) -> crate::decide::trigger::Stillness {
    use crate::decide::trigger::{StillSample, Stillness};
    let now = StillSample {
        used: cg
            .sample
            .limit
            .zip(cg.sample.available)
            .map_or(0, |(l, a)| (l + cg.sample.swap_left).saturating_sub(a)),
        to_kill,
        psi_total: cg.psi_total,
        events: cg.sample.own().pressure_events,
        rate: if cg.eta.is_some() {
            cg.fill.rate()
        } else {
            0.0
        },
    };
    let before = cg.stillness.replace(now);
    let still = if level == Level::Term {
        crate::decide::trigger::stillness(before, cg.still_since, now)
    } else {
        Stillness::Moving
    };
    cg.still_since = match still {
        Stillness::Still => cg.still_since.or(before),
        _ => None,
    };
    cg.growth_wake = match still {
        Stillness::Still => growth_wake(&cg.sample, cg.growth_wake, to_kill),
        _ => None,
    };
    still
}

/// Where the kernel is to wake the loop for a cgroup standing still: the usage of one cgroup of
/// its chain (v1: a usage threshold there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GrowthWake {
    /// The index in the chain of its nearest limit.
    pub index: usize,
    /// The usage there.
    pub usage: u64,
}

/// Where a cgroup standing still is to be woken: where it was, until its nearest limit's usage
/// reached that (page cache, which does not make it move); then anew from there.
fn growth_wake(
    sample: &CgroupSample,
    kept: Option<GrowthWake>,
    to_kill: u64,
) -> Option<GrowthWake> {
    let index = sample.limit_index?;
    let (_, m) = sample.chain.get(index)?;
    if let Some(w) = kept.filter(|w| w.index == index && m.usage < w.usage) {
        return Some(w);
    }
    let (usage, ws, limit) = (m.usage, m.working_set(), sample.limit?);
    let at = crate::decide::trigger::growth_wake(usage, ws, limit, to_kill)?;
    Some(GrowthWake { index, usage: at })
}

/// When a calm cgroup is next due, from its state after a look.
pub(super) fn next_look(
    cg: &CgroupScope,
    cfg: &WatchedCgroup,
    calm_headroom: Option<u64>,
    limits_watched: bool,
    d: &crate::config::Daemon,
    now: Instant,
) -> Instant {
    // Its next crossing (into term from ok, into kill from term) is one the kernel reports.
    // Only once calm again: in the episode the domain's own plan says when to look.
    let warm = cg.member.level == Level::Ok && cg.warm_until.is_some_and(|t| now < t);
    let armed = cg.thresholds_armed && cg.oom_armed && !warm;
    let covered = if cg.announced {
        // v2: the next crossing is a `high` event; past it, the worst-case rule.
        cg.member.level == Level::Ok && !warm
    } else {
        armed
            && match cg.member.level {
                Level::Ok => below_usage_thresholds(&cg.sample, cfg, false, cg.warned),
                Level::Term => below_usage_thresholds(&cg.sample, cfg, true, cg.warned),
                Level::Kill => false,
            }
    };
    let mut wait = if cg.sample.limit.is_none() {
        // Nothing limited on its path: no level to watch until a limit appears.
        d.max_interval
    } else if covered && cg.announced && limits_watched {
        // v2: its fill is a `high` event, a limit or memory.high written on its path an
        // inotify event: the look is a full sample now and then, for the figures.
        ANNOUNCED_REFRESH
    } else if covered {
        // Its thresholds tell of a fill; a look this often (a cheap one) tells of a limit
        // changed on its path, for which the kernel sends nothing.
        ARMED_REFRESH.min(d.max_interval)
    } else {
        let headroom = calm_headroom.or_else(|| {
            let avail = cg.sample.available?;
            look_thresholds(cfg, cg.sample.limit?, cg.warned).headroom_from(cg.member.level, avail)
        });
        next_sleep(headroom, d.fill_rate, d.min_interval, d.max_interval)
    };
    if now.duration_since(cg.added) < YOUNG {
        wait = wait.min(YOUNG_LOOK);
    }
    let own = cg.sample.chain.first().map(|(_, m)| m);
    if own.is_some_and(|m| m.oom_kill_disable)
        && cfg.on_under_oom == UnderOom::Kill
        && !cg.oom_armed
    {
        wait = wait.min(HANG_WATCH);
    }
    now + wait
}

/// Keeps a calm v2 cgroup's `memory.events` quiet until its next look when that look is set by
/// the worst-case rule (see [`crate::events::Events::coalesce`]): in steps of powers of
/// two of the shortest quiet, so that the poller is told only when the step changes. A cgroup
/// whose climb a tripwire announces, that is past its term level or whose domain is in an
/// episode is heard at once.
pub(super) fn quiet_events(cg: &mut CgroupScope, in_episode: bool, now: Instant) {
    let base = crate::events::V2_EVENTS_COALESCE;
    let quiet = match cg.next_look {
        Some(at) if !in_episode && !cg.announced && cg.member.level == Level::Ok => {
            // Up to the step at or past the next look: the look itself is what keeps the
            // rule's promise, and an event muted until just after it costs nothing.
            let wait = at.saturating_duration_since(now).min(base * 128);
            let mut q = base;
            while q < wait {
                q *= 2;
            }
            q
        }
        _ => base,
    };
    if quiet != cg.events_quiet
        && let Some(set) = &cg.events
    {
        set.coalesce("events", quiet);
        cg.events_quiet = quiet;
    }
}

/// The PSI trigger oomward arms: 150 ms of stall (some task waiting on memory) within a 2 s
/// window. 2 s is the shortest window the kernel accepts without CAP_SYS_RESOURCE; it makes
/// this a wake-up for a machine or cgroup starting to thrash, not a millisecond reaction.
pub(super) fn psi_spec(file: std::path::PathBuf) -> Spec {
    Spec::Psi {
        file,
        full: false,
        stall: Duration::from_millis(150),
        window: Duration::from_secs(2),
    }
}

/// The bit of `source` in `CgroupScope::unavailable`.
fn source_bit(source: Source) -> u16 {
    1 << (source as u16)
}

/// Arms (or re-arms, when a limit on its path changed) the kernel event sources of one watched
/// cgroup: v1 usage thresholds at the term and kill levels on each limited cgroup of its path,
/// and the OOM notification; v2 its `memory.events`, each limited ancestor's
/// `memory.events.local` and a `memory.pressure` trigger. Unavailable sources are reported once
/// and left to polling; those that failed for a passing reason are tried again next time.
/// Returns true when arming ran out of descriptors.
pub(super) fn arm_cgroup(
    events: &Events,
    host: &Host,
    cg: &mut CgroupScope,
    cfg: &WatchedCgroup,
    log: &mut Logger,
) -> bool {
    let Some(hier) = &host.memory else {
        return false;
    };
    if cg.events.as_mut().is_some_and(ArmedSet::prune_dropped) {
        // The poller gave up on a source (its file broke): arm what is still wanted again.
        cg.armed_for = None;
    }
    let sample = &cg.sample;
    // Every limited cgroup on the path is armed, not only the tightest now: which one that
    // is flips as they fill, and re-arming at each flip would churn registrations.
    let want = (sample.limits_fingerprint(), cg.growth_wake);
    if cg.armed_for == Some(want) {
        return false;
    }
    cg.armed_for = Some(want);
    let Some(own_dir) = hier.dir(&host.root, &cg.path) else {
        return false;
    };
    let wants = match hier.version {
        CgroupVersion::V1 => v1_sources(hier, &host.root, sample, cfg, own_dir, cg.growth_wake),
        CgroupVersion::V2 => v2_sources(hier, &host.root, sample, &own_dir),
    };
    let set = cg
        .events
        .get_or_insert_with(|| ArmedSet::new(events.clone()));
    set.retain(|k| wants.iter().any(|(w, _)| w == k));
    let mut armed: Vec<&'static str> = Vec::new();
    let mut retry = false;
    let mut out_of_fds = false;
    let mut thresholds_armed = hier.version == CgroupVersion::V1;
    for (key, spec) in &wants {
        let source = spec.source(false);
        match set.arm(key, spec, false) {
            Ok(false) => {}
            Ok(true) => {
                if !armed.contains(&source.as_str()) {
                    armed.push(source.as_str());
                }
            }
            Err(e) => {
                thresholds_armed = false;
                // Out of descriptors or memory now: try again next time.
                retry |= !e.is_permanent();
                out_of_fds |= e.is_out_of_fds();
                if cg.unavailable & source_bit(source) == 0 {
                    cg.unavailable |= source_bit(source);
                    log.log(Severity::Warning, &unavailable_line(&cg.path, source, e));
                }
            }
        }
    }
    cg.oom_armed = set.has("oom");
    cg.growth_armed = cg.growth_wake.filter(|w| {
        let path = sample.chain.get(w.index).map(|(p, _)| p.as_str());
        path.is_some_and(|p| set.has(&growth_key(p, w.usage)))
    });
    cg.thresholds_armed = thresholds_armed && cg.oom_armed;
    if retry {
        cg.armed_for = None;
    }
    if !armed.is_empty() {
        // Sources armed anew start at their kind's quiet.
        cg.events_quiet = crate::events::V2_EVENTS_COALESCE;
        log.log(
            Severity::Info,
            &armed_line(&cg.path, &armed.join(",")).kv("limited", sample.limited().count()),
        );
    }
    out_of_fds
}

/// What a v1 cgroup is armed with: a usage threshold at each level (warn, the rate probe, term,
/// kill) on each limited cgroup of its path, and its OOM notification.
fn v1_sources(
    hier: &MemoryHierarchy,
    root: &Path,
    sample: &CgroupSample,
    cfg: &WatchedCgroup,
    own_dir: PathBuf,
    growth: Option<GrowthWake>,
) -> Vec<(String, Spec)> {
    let mut wants: Vec<(String, Spec)> = Vec::new();
    for (_, path, _, limit) in sample.limited() {
        let Some(dir) = hier.dir(root, path) else {
            continue;
        };
        let t = cgroup_thresholds(cfg, limit);
        for below in rungs(cfg, limit).into_iter().chain([t.kill]) {
            if below > 0 && below < limit {
                let bytes = limit - below;
                wants.push((
                    format!("threshold:{path}:{bytes}"),
                    Spec::V1Threshold {
                        dir: dir.clone(),
                        bytes,
                    },
                ));
            }
        }
    }
    if let Some(w) = growth
        && let Some((path, _)) = sample.chain.get(w.index)
        && let Some(dir) = hier.dir(root, path)
    {
        let bytes = w.usage;
        wants.push((growth_key(path, bytes), Spec::V1Threshold { dir, bytes }));
    }
    wants.push(("oom".into(), Spec::V1Oom { dir: own_dir }));
    wants
}

/// The key of a growth wake-up's threshold: a new one where it moves.
fn growth_key(path: &str, bytes: u64) -> String {
    format!("growth:{path}:{bytes}")
}

/// What a v2 cgroup is armed with: its `memory.events`, each limited ancestor's own events,
/// and a `memory.pressure` trigger.
fn v2_sources(
    hier: &MemoryHierarchy,
    root: &Path,
    sample: &CgroupSample,
    own_dir: &Path,
) -> Vec<(String, Spec)> {
    let mut wants: Vec<(String, Spec)> = Vec::new();
    wants.push((
        "events".into(),
        Spec::V2Events {
            file: own_dir.join("memory.events"),
        },
    ));
    for (i, path, _, _) in sample.limited() {
        let Some(dir) = hier.dir(root, path).filter(|_| i > 0) else {
            continue;
        };
        // An ancestor's limit: its own OOMs (`.local`), not its subtree's, which
        // include every sibling's.
        let local = dir.join("memory.events.local");
        let file = if local.exists() {
            local
        } else {
            dir.join("memory.events")
        };
        wants.push((format!("events:{path}"), Spec::V2Events { file }));
    }
    wants.push(("psi".into(), psi_spec(own_dir.join("memory.pressure"))));
    wants
}

/// Disarms a cgroup's sources (events switched off by a reload).
pub(super) fn disarm_cgroup(cg: &mut CgroupScope) {
    cg.events = None;
    cg.armed_for = None;
    cg.growth_armed = None;
    cg.oom_armed = false;
    cg.thresholds_armed = false;
    cg.announced = false;
}

/// Sets, moves or takes off the tripwires on a v2 cgroup's path after a full sample (see
/// [`crate::decide::tripwire`]): one on each limited cgroup of the path, at the rungs of this
/// cgroup's thresholds. `enabled`: tripwires may be set at all (not a dry run, kernel events
/// on); when not, or when its `tripwire` key says no, only oomward's own are taken off. The
/// sample is updated with what was written.
pub(super) fn place_tripwires(
    wires: &mut Tripwires,
    host: &Host,
    cg: &mut CgroupScope,
    cfg: &WatchedCgroup,
    enabled: bool,
    log: &mut Logger,
) {
    let Some(hier) = host
        .memory
        .as_ref()
        .filter(|h| h.version == CgroupVersion::V2)
    else {
        return;
    };
    let enabled = enabled && cfg.tripwire;
    for i in 0..cg.sample.chain.len() {
        let (path, m) = &cg.sample.chain[i];
        let Some(limit) = m.max else {
            continue;
        };
        let ours = wires.ours(path);
        if !enabled && ours.is_none() {
            continue;
        }
        let want = enabled.then(|| {
            let belows = rungs(cfg, limit);
            let margin = tripwire::margin(belows[2]);
            tripwire::rung(limit, &belows, m.usage, margin, host.page_size)
        });
        let step = tripwire::step(m.high, ours, want.flatten());
        if step == tripwire::Step::Keep {
            continue;
        }
        let path = path.clone();
        let Some(dir) = hier.dir(&host.root, &path) else {
            continue;
        };
        if let Some(now) = wires.apply(cg.id, &path, &dir, step, &cg.path, log) {
            cg.sample.chain[i].1.high = now;
        }
    }
}

/// Whether a cgroup's climb to its term level is announced by the kernel (see
/// [`CgroupScope::announced`]), from its last full sample and its armed sources.
pub(super) fn climb_announced(cg: &CgroupScope, cfg: &WatchedCgroup) -> bool {
    // Only a calm cgroup's next look depends on it; in an episode (sampled every round) the
    // keys of its ancestors' sources are not built for nothing.
    let Some(set) = cg.events.as_ref().filter(|_| cg.member.level == Level::Ok) else {
        return false;
    };
    let mut any = false;
    for (i, path, m, limit) in cg.sample.limited() {
        any = true;
        let armed = if i == 0 {
            set.has("events")
        } else {
            set.has(&format!("events:{path}"))
        };
        let term_at = limit.saturating_sub(look_thresholds(cfg, limit, cg.warned).term);
        if !armed || !tripwire::announced(m.high, m.usage, term_at) {
            return false;
        }
    }
    any
}

/// The line that says which kernel event sources were armed for a scope.
pub(super) fn armed_line(scope: &str, sources: &str) -> Line {
    Line::new("kernel events armed")
        .kv("event", "events_armed")
        .kv("scope", scope)
        .kv("sources", sources)
}

/// The line that says a kernel event source is unavailable for a scope (said once).
pub(super) fn unavailable_line(scope: &str, source: Source, e: ArmError) -> Line {
    Line::new("kernel event source unavailable, polling instead")
        .kv("event", "events_unavailable")
        .kv("scope", scope)
        .kv("source", source.as_str())
        .kv("error", e)
}
