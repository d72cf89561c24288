//! The watched scopes and when each is looked at: the system every round it is enabled, each
//! cgroup only when it is due (its own kernel event, its timer from the worst-case fill rate, or
//! an episode in its domain), so that a hundred idle containers cost what one does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::act::tripwire::Tripwires;
use crate::config::{Config, UnderOom, WatchedCgroup};
use crate::decide::domain::{Member, ScopeId};
use crate::decide::stall::{Stall, StallTerms, StallWindow};
use crate::decide::trigger::{FillRate, Level, next_sleep, with_exhaustion};
use crate::decide::tripwire;
use crate::events::{ArmError, ArmedSet, Events, Source, Spec};
use crate::probe::Host;
use crate::probe::cgroup::{CgroupVersion, MemoryHierarchy};
use crate::probe::meminfo::MemInfo;
use crate::probe::table::ProcessTable;
use crate::report::metrics::Metrics;
use crate::report::{Line, Logger, Severity};
use crate::watch::{
    CgroupSample, ChainFiles, SwapSpace, SystemFiles, below_usage_thresholds, cgroup_thresholds,
    look_thresholds, quick_headroom, resolve_cgroups, sample_cgroup_into,
};

use super::moment::Wake;

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
    /// Its level from its own thresholds at the last look.
    pub level: Level,
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
    /// What this round makes of it for its domain.
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
            level: Level::Ok,
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
    if !recent || cg.level != Level::Ok || cg.sample.limit.is_none() {
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
    cg.psi_total = if cg.level == Level::Ok {
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
        level = with_exhaustion(th.level(avail, cg.level), trend, cfg.exhaustion_term);
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
    cg.level = level;
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
    let warm = cg.level == Level::Ok && cg.warm_until.is_some_and(|t| now < t);
    let armed = cg.thresholds_armed && cg.oom_armed && !warm;
    let covered = if cg.announced {
        // v2: the next crossing is a `high` event; past it, the worst-case rule.
        cg.level == Level::Ok && !warm
    } else {
        armed
            && match cg.level {
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
            look_thresholds(cfg, cg.sample.limit?, cg.warned).headroom_from(cg.level, avail)
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
        Some(at) if !in_episode && !cg.announced && cg.level == Level::Ok => {
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
                    log.log(
                        Severity::Warning,
                        &Line::new("kernel event source unavailable, polling instead")
                            .kv("event", "events_unavailable")
                            .kv("scope", &cg.path)
                            .kv("source", source.as_str())
                            .kv("error", e),
                    );
                }
            }
        }
    }
    cg.oom_armed = set.has("oom");
    cg.growth_armed = cg
        .growth_wake
        .filter(|w| set.has(&growth_key(&sample.chain[w.index].0, w.usage)));
    cg.thresholds_armed = thresholds_armed && cg.oom_armed;
    if retry {
        cg.armed_for = None;
    }
    if !armed.is_empty() {
        // Sources armed anew start at their kind's quiet.
        cg.events_quiet = crate::events::V2_EVENTS_COALESCE;
        log.log(
            Severity::Info,
            &Line::new("kernel events armed")
                .kv("event", "events_armed")
                .kv("scope", &cg.path)
                .kv("sources", armed.join(","))
                .kv("limited", sample.limited().count()),
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
        let warn = cfg.available_warn.map_or(0, |w| w.bytes_of(limit));
        for below in [warn, rate_probe(t.term), t.term, t.kill] {
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
    if let Some(GrowthWake {
        index,
        usage: bytes,
    }) = growth
    {
        let path = &sample.chain[index].0;
        if let Some(dir) = hier.dir(root, path) {
            wants.push((growth_key(path, bytes), Spec::V1Threshold { dir, bytes }));
        }
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
            let t = cgroup_thresholds(cfg, limit);
            let warn = cfg.available_warn.map_or(0, |w| w.bytes_of(limit));
            let belows = [warn, rate_probe(t.term), t.term];
            tripwire::rung(
                limit,
                &belows,
                m.usage,
                tripwire::margin(t.term),
                host.page_size,
            )
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
    let Some(set) = cg.events.as_ref().filter(|_| cg.level == Level::Ok) else {
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

/// Arms one source for the system or the watched tree, reporting the outcome once; returns
/// the set (`None`: try again next round) and whether descriptors ran out.
pub(super) fn arm_one(
    events: &Events,
    key: &str,
    spec: &Spec,
    system: bool,
    scope: &str,
    reported: &mut bool,
    log: &mut Logger,
) -> (Option<ArmedSet>, bool) {
    let mut set = ArmedSet::new(events.clone());
    let armed = set.arm(key, spec, system);
    let source = spec.source(system);
    // Failed for a passing reason (out of descriptors): try again next round.
    let retry = armed.as_ref().is_err_and(|e| !e.is_permanent());
    let out_of_fds = armed.as_ref().is_err_and(ArmError::is_out_of_fds);
    match armed {
        Ok(false) => {}
        Ok(true) => log.log(
            Severity::Info,
            &Line::new("kernel events armed")
                .kv("event", "events_armed")
                .kv("scope", scope)
                .kv("sources", source.as_str()),
        ),
        Err(e) if !*reported => {
            *reported = true;
            log.log(
                Severity::Warning,
                &Line::new("kernel event source unavailable, polling instead")
                    .kv("event", "events_unavailable")
                    .kv("scope", scope)
                    .kv("source", source.as_str())
                    .kv("error", e),
            );
        }
        Err(_) => {}
    }
    ((!retry).then_some(set), out_of_fds)
}

/// How often globs are re-resolved against the live hierarchy when no inotify watch tells of
/// new cgroups (and so the longest sleep while any `[[cgroup]]` is configured then).
pub(super) const RESOLVE_EVERY: Duration = Duration::from_millis(200);
/// With the inotify watch armed, a full re-resolution this often all the same (a lost event).
const RESOLVE_SAFETY: Duration = Duration::from_secs(60);

/// The system scope's state across rounds.
pub(super) struct SystemScope {
    pub files: SystemFiles,
    pub level: Level,
    pub fill: FillRate,
    pub events: Option<ArmedSet>,
    pub unavailable_reported: bool,
    /// /proc/meminfo as last read, and the round it was read in.
    pub mem: Option<MemInfo>,
    pub mem_round: u64,
    /// What this round makes of it (when enabled).
    pub member: Member,
    pub eta: Option<Duration>,
    /// The kernel's machine-wide OOM kill count (`/proc/vmstat`), and the round it was read in.
    pub oom_kills: Option<u64>,
    pub oom_kills_round: u64,
    /// In the warn band (MemAvailable below `mem_available_warn`) at the last sample.
    pub warned: bool,
    /// The stall counters of recent samples, and what they said at the last one.
    pub stall_window: StallWindow,
    pub stall: Option<Stall>,
    /// Until when PSI avg10 still shows the stall of a victim that has exited.
    pub psi_quiet_until: Option<Instant>,
}

/// What PSI's avg10 averages over: after a system victim exits, its stall shows that long.
const PSI_AVG10_SPAN: Duration = Duration::from_secs(10);

impl SystemScope {
    /// A victim of the system domain exited: the stall it caused is over with it, and only
    /// what comes after counts toward the next one (else the same window would choose a second
    /// victim); PSI avg10 shows it for a while yet.
    pub fn victim_exited(&mut self) {
        self.stall_window.clear();
        self.psi_quiet_until = Some(Instant::now() + PSI_AVG10_SPAN);
    }
}

/// What the watched scopes are looked at with, lent by the round: the running config, the
/// host, the kernel event poller (once attached), the metrics, and the process table (which
/// gives descriptors back when arming runs out of them).
pub(super) struct Env<'a> {
    pub config: &'a Config,
    pub host: &'a Host,
    pub events: Option<&'a Events>,
    pub metrics: Option<&'a Metrics>,
    pub table: &'a mut ProcessTable,
    /// Deciding without signalling (no tripwire is placed then).
    pub dry_run: bool,
    /// When the enforcer started: the clock of the fill rates.
    pub started: Instant,
    /// The round's number: what is read at most once a round.
    pub round: u64,
}

/// What is watched, across rounds: the system scope, the cgroups the globs resolve to, the
/// inotify watches that tell of their coming and going and of limits written on their paths,
/// and the tripwires set in them.
pub(super) struct Watched {
    pub system: SystemScope,
    pub cgroups: Vec<CgroupScope>,
    next_scope: u32,
    /// The inotify watch on the directories below the globs, and what it was armed for.
    tree: Option<ArmedSet>,
    tree_for: Option<u64>,
    tree_reported: bool,
    /// The inotify watch on every directory of the watched v2 cgroups' paths for a limit or a
    /// `memory.high` written, and whether the set of directories changed since it was armed.
    written: Option<ArmedSet>,
    written_dirty: bool,
    /// A cgroup was added or removed since the domains were last grouped in full.
    pub members_changed: bool,
    written_reported: bool,
    last_resolve: Option<Instant>,
    /// The cgroup v2 tripwires set (`memory.high` written to be told of a fill).
    pub wires: Tripwires,
}

impl Watched {
    /// Nothing watched yet on `host`: the system scope at rest, no cgroup.
    pub fn new(host: &Host) -> Self {
        Watched {
            system: SystemScope {
                files: SystemFiles::new(host),
                level: Level::Ok,
                fill: FillRate::default(),
                events: None,
                unavailable_reported: false,
                mem: None,
                mem_round: 0,
                member: Member::default(),
                eta: None,
                oom_kills: None,
                oom_kills_round: 0,
                warned: false,
                stall_window: StallWindow::default(),
                stall: None,
                psi_quiet_until: None,
            },
            cgroups: Vec::new(),
            next_scope: 0,
            tree: None,
            tree_for: None,
            tree_reported: false,
            written: None,
            written_dirty: true,
            members_changed: true,
            written_reported: false,
            last_resolve: None,
            wires: Tripwires::default(),
        }
    }

    /// A new config: the globs are resolved and the tree watched anew, and since thresholds
    /// may have changed, everything is re-armed and looked at on the next round.
    pub fn reconfigured(&mut self) {
        self.last_resolve = None;
        self.tree_for = None;
        self.system.events = None;
        for cg in &mut self.cgroups {
            cg.armed_for = None;
            cg.next_look = None;
            // A full sample: the limits on its path are read again too.
            cg.last_full = None;
        }
    }

    /// The cgroups: globs re-resolved when the tree watch says something changed (or
    /// periodically without one), the tree watch and the watch for limits written armed.
    pub fn refresh_cgroups(
        &mut self,
        env: &mut Env<'_>,
        wake: Wake,
        now: Instant,
        log: &mut Logger,
    ) {
        if env.config.cgroups.is_empty() {
            return;
        }
        let every = if self.tree.is_some() {
            RESOLVE_SAFETY
        } else {
            RESOLVE_EVERY
        };
        let told = matches!(wake, Wake::Event(Source::CgroupTree, _));
        if told
            || self
                .last_resolve
                .is_none_or(|t| now.duration_since(t) >= every)
        {
            self.resolve(env, log, now);
            self.last_resolve = Some(now);
            self.arm_tree(env, log);
        }
        self.arm_written(env, log);
    }

    /// Says what woke the round when that is news (a PSI trigger), and marks a cgroup whose
    /// own source fired as due.
    pub fn report_wake(&mut self, host: &Host, log: &mut Logger, wake: Wake) {
        let Wake::Event(source, id) = wake else {
            return;
        };
        if matches!(source, Source::SystemPsi | Source::CgroupPsi) {
            self.report_pressure(host, log, source, id);
        }
        if source == Source::CgroupWritten
            && self.written.as_ref().is_some_and(|w| w.contains_id(id))
        {
            // A limit or a memory.high written somewhere on the watched paths: every cgroup
            // takes its cheap look now, which reads them and takes a full sample where one moved.
            for cg in &mut self.cgroups {
                cg.next_look = None;
            }
            return;
        }
        for cg in &mut self.cgroups {
            if cg.events.as_ref().is_some_and(|e| e.contains_id(id)) {
                cg.next_look = None;
            }
        }
    }

    /// /proc/meminfo, read at most once a round (`round`) and only when something needs it.
    pub fn meminfo(&mut self, round: u64, log: &mut Logger) -> Option<MemInfo> {
        if self.system.mem_round == round {
            return self.system.mem;
        }
        self.system.mem_round = round;
        match MemInfo::read_kept(&mut self.system.files.meminfo) {
            Ok(m) => self.system.mem = Some(m),
            Err(e) => log.log(
                Severity::Error,
                &Line::new("cannot read meminfo").kv("error", e),
            ),
        }
        self.system.mem
    }

    /// The machine's kernel OOM kill count, read at most once a round (`round`).
    pub fn machine_oom_kills(&mut self, round: u64) -> Option<u64> {
        if self.system.oom_kills_round != round {
            self.system.oom_kills_round = round;
            self.system.oom_kills = self.system.files.oom_kills();
        }
        self.system.oom_kills
    }

    /// Every watched cgroup that is due (or whose domain is in an episode: `busy`). Whether a
    /// cgroup was sampled in full, added or removed (its part of the status moved).
    pub fn sample_cgroups(
        &mut self,
        env: &mut Env<'_>,
        busy: &[ScopeId],
        wake: Wake,
        now: Instant,
        log: &mut Logger,
    ) -> bool {
        let mut removed = Vec::new();
        for i in 0..self.cgroups.len() {
            self.cgroups[i].fresh = false;
            let in_episode = busy.contains(&ScopeId::Cgroup(self.cgroups[i].id));
            if in_episode {
                self.cgroups[i].warm_until = Some(now + WARM);
            }
            if (in_episode || self.cgroups[i].due(now))
                && self.look_at(env, i, in_episode, wake, now, log) == Look::Gone
            {
                removed.push(i);
            }
        }
        let moved =
            !removed.is_empty() || self.members_changed || self.cgroups.iter().any(|c| c.fresh);
        for i in removed.into_iter().rev() {
            let cg = self.cgroups.remove(i);
            self.written_dirty = true;
            self.members_changed = true;
            self.wires.release(cg.id, log);
            log.log(
                Severity::Info,
                &Line::new("stopped watching a removed cgroup")
                    .kv("event", "scope_removed")
                    .kv("scope", cg.path),
            );
        }
        moved
    }

    /// One cgroup's look: the cheap floor when it is calm and nothing says otherwise, else a
    /// full sample and its level; its event sources; when it is due again.
    fn look_at(
        &mut self,
        env: &mut Env<'_>,
        i: usize,
        in_episode: bool,
        wake: Wake,
        now: Instant,
        log: &mut Logger,
    ) -> Look {
        let config = env.config;
        let cfg = &config.cgroups[self.cgroups[i].config_index];
        let limits_watched =
            !self.written_dirty && self.written.as_ref().is_some_and(|w| w.has("written"));
        // Woken by its own event, or in an episode: a full sample.
        let own_event = matches!(wake, Wake::Event(_, id)
            if self.cgroups[i].events.as_ref().is_some_and(|e| e.contains_id(id)));
        let calm = if in_episode || own_event {
            None
        } else {
            cheap_look(env.host, &mut self.cgroups[i], cfg, limits_watched, now)
        };
        let look = match calm {
            Some(h) => Look::Calm(h),
            None => {
                let (system_t, swap) = self.machine_totals(env, log);
                let first = self.cgroups[i].last_full.is_none();
                let look = sample(env.host, &mut self.cgroups[i], system_t, swap, now, log);
                // Its path is known from now on: watched for limits written from next round.
                self.written_dirty |= first && look == Look::Sampled;
                look
            }
        };
        let cg = &mut self.cgroups[i];
        match look {
            Look::Gone => return look,
            Look::Unreadable => {
                cg.next_look = Some(now + RESOLVE_EVERY);
                return look;
            }
            Look::Sampled => {
                let t_secs = now.duration_since(env.started).as_secs_f64();
                assess_cgroup(cg, cfg, t_secs, log);
                if let Some(m) = env.metrics {
                    scope_metrics(m, cg, cfg);
                }
            }
            Look::Calm(_) => {}
        }
        if cg.fresh {
            let enabled = config.daemon.events && env.events.is_some() && !env.dry_run;
            place_tripwires(&mut self.wires, env.host, cg, cfg, enabled, log);
        }
        if !config.daemon.events {
            disarm_cgroup(cg);
        } else if let Some(events) = env.events
            && cg.fresh
            && arm_cgroup(events, env.host, cg, cfg, log)
        {
            // Out of descriptors: the process table gives some back.
            env.table.give_back_fds();
        }
        if cg.fresh {
            cg.announced = climb_announced(cg, cfg);
            // Standing still with its growth announced by the kernel: its looks need not be
            // paced by the band above its kill level.
            if cg.growth_wake.is_some() && cg.growth_armed == cg.growth_wake {
                cg.member.to_kill = u64::MAX;
            }
        }
        let calm = match look {
            Look::Calm(h) => Some(h),
            _ => None,
        };
        // Not armed over its path yet when this was its first sample.
        let limits_watched = limits_watched && !self.written_dirty;
        cg.next_look = Some(next_look(
            cg,
            cfg,
            calm,
            limits_watched,
            &config.daemon,
            now,
        ));
        quiet_events(cg, in_episode, now);
        look
    }

    /// The machine's T and swap for a cgroup's sample (/proc/meminfo read once a round, and
    /// only when a full sample needs it).
    fn machine_totals(&mut self, env: &Env<'_>, log: &mut Logger) -> (u64, SwapSpace) {
        match self.meminfo(env.round, log) {
            Some(m) => (
                m.total_pages(env.host.page_size),
                SwapSpace {
                    total: m.swap_total,
                    free: m.swap_free,
                },
            ),
            None => (u64::MAX, SwapSpace::default()),
        }
    }

    /// How long the round may sleep: until the first thing is due (a cgroup's look, the
    /// system's worst-case fill, a domain's victims or wait as `wake_in` says, a re-resolution).
    pub fn sleep(&self, config: &Config, now: Instant, wake_in: Option<Duration>) -> Duration {
        let d = &config.daemon;
        let mut sleep = d.max_interval;
        if config.system.enabled
            && let Some(m) = self.system.mem
        {
            let s = &config.system;
            let th = crate::trigger::Thresholds {
                term: s.mem_available_term.bytes_of(m.mem_total),
                kill: s.mem_available_kill.bytes_of(m.mem_total),
            };
            // Not yet warned: the warn threshold is the next crossing to catch.
            let th = match s.mem_available_warn.map(|w| w.bytes_of(m.mem_total)) {
                Some(w) if !self.system.warned && w > th.term => crate::trigger::Thresholds {
                    term: w,
                    kill: th.kill,
                },
                _ => th,
            };
            let headroom = th.headroom_from(self.system.level, m.mem_available);
            sleep = sleep.min(next_sleep(
                headroom,
                d.fill_rate,
                d.min_interval,
                d.max_interval,
            ));
            sleep = sleep.min(stall_sleep(config, &m));
        }
        for cg in &self.cgroups {
            let at = cg.next_look.unwrap_or(now);
            sleep = sleep.min(at.saturating_duration_since(now));
        }
        if let Some(w) = wake_in {
            sleep = sleep.min(w);
        }
        if !config.cgroups.is_empty() {
            let every = if self.tree.is_some() {
                RESOLVE_SAFETY
            } else {
                RESOLVE_EVERY
            };
            let next = self.last_resolve.map_or(now, |t| t + every);
            sleep = sleep.min(next.saturating_duration_since(now));
        }
        sleep.clamp(d.min_interval, d.max_interval)
    }

    fn resolve(&mut self, env: &Env<'_>, log: &mut Logger, now: Instant) {
        let found = resolve_cgroups(env.config, env.host);
        for (path, index) in &found {
            if let Some(cg) = self.cgroups.iter_mut().find(|c| c.path == *path) {
                cg.config_index = *index;
            } else {
                log.log(
                    Severity::Info,
                    &Line::new("watching cgroup")
                        .kv("event", "scope_added")
                        .kv("scope", path),
                );
                self.written_dirty = true;
                self.members_changed = true;
                self.cgroups
                    .push(CgroupScope::new(self.next_scope, path.clone(), *index, now));
                self.next_scope = self.next_scope.wrapping_add(1);
            }
        }
        if let Some(m) = env.metrics {
            let system = env.config.system.enabled;
            m.retain_scopes(&|name: &str| {
                (system && name == "system") || found.iter().any(|(p, _)| p == name)
            });
        }
        let wires = &mut self.wires;
        let dirty = &mut self.written_dirty;
        let changed = &mut self.members_changed;
        self.cgroups.retain(|c| {
            let keep = found.iter().any(|(p, _)| *p == c.path);
            if !keep {
                *dirty = true;
                *changed = true;
                wires.release(c.id, log);
                log.log(
                    Severity::Info,
                    &Line::new("stopped watching a removed cgroup")
                        .kv("event", "scope_removed")
                        .kv("scope", &c.path),
                );
            }
            keep
        });
    }

    /// Arms an inotify watch on every directory below the globs' literal prefixes (and the
    /// nearest existing ancestor of each), so that a cgroup made or removed there wakes the loop
    /// at once instead of a re-resolution every 200 ms. Re-armed when the set of directories
    /// changed.
    fn arm_tree(&mut self, env: &mut Env<'_>, log: &mut Logger) {
        let (Some(events), Some(hier)) = (env.events, &env.host.memory) else {
            return;
        };
        if !env.config.daemon.events {
            self.tree = None;
            return;
        }
        let mut dirs: Vec<std::path::PathBuf> = Vec::new();
        for c in &env.config.cgroups {
            let start = crate::watch::literal_prefix(&c.path.text);
            // The nearest existing ancestor too: the prefix itself may not exist yet (a
            // Kubernetes node before its first pod), and its making must wake the loop.
            let mut anchor = crate::probe::cgroup::parent(&start).unwrap_or("/");
            while anchor != "/" && !hier.dir(&env.host.root, anchor).is_some_and(|d| d.is_dir()) {
                anchor = crate::probe::cgroup::parent(anchor).unwrap_or("/");
            }
            let anchor = anchor.to_string();
            for p in std::iter::once(anchor).chain(hier.walk(&env.host.root, &start)) {
                if let Some(d) = hier.dir(&env.host.root, &p)
                    && !dirs.contains(&d)
                {
                    dirs.push(d);
                }
            }
        }
        let fingerprint = dirs.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, d| {
            d.as_os_str()
                .as_encoded_bytes()
                .iter()
                .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
        });
        if self.tree_for == Some(fingerprint) && self.tree.is_some() {
            return;
        }
        let spec = Spec::Tree { dirs };
        let (set, out_of_fds) = arm_one(
            events,
            "tree",
            &spec,
            false,
            "cgroup_tree",
            &mut self.tree_reported,
            log,
        );
        if out_of_fds {
            env.table.give_back_fds();
        }
        self.tree_for = set.is_some().then_some(fingerprint);
        self.tree = set;
    }

    /// Arms one inotify watch over every directory on the paths of the watched v2 cgroups
    /// sampled so far, for a limit or a `memory.high` written there (the kernel sends no other
    /// notice of either): with it, a cgroup whose climb a tripwire announces needs no look at
    /// `max_interval` to see its limit changed. Re-armed when the set of cgroups changed.
    fn arm_written(&mut self, env: &mut Env<'_>, log: &mut Logger) {
        let (Some(events), Some(hier)) = (env.events, &env.host.memory) else {
            return;
        };
        if !env.config.daemon.events || hier.version != crate::probe::cgroup::CgroupVersion::V2 {
            self.written = None;
            return;
        }
        if self.written.as_mut().is_some_and(ArmedSet::prune_dropped) {
            // The poller gave up on it: armed anew.
            self.written_dirty = true;
        }
        if !self.written_dirty {
            return;
        }
        self.written_dirty = false;
        let mut dirs: Vec<std::path::PathBuf> = Vec::new();
        for cg in self.cgroups.iter().filter(|c| c.last_full.is_some()) {
            for (path, _) in &cg.sample.chain {
                if let Some(d) = hier.dir(&env.host.root, path)
                    && !dirs.contains(&d)
                {
                    dirs.push(d);
                }
            }
        }
        if dirs.is_empty() {
            self.written = None;
            return;
        }
        // The new watch first, then the old one goes (dropped with its set): no gap.
        let spec = Spec::Written { dirs };
        let (set, out_of_fds) = arm_one(
            events,
            "written",
            &spec,
            false,
            "cgroup_written",
            &mut self.written_reported,
            log,
        );
        if out_of_fds {
            env.table.give_back_fds();
        }
        // Not armed for a passing reason: tried again next round.
        self.written_dirty = set.is_none();
        self.written = set;
    }

    /// Arms the system scope's PSI trigger once (and disarms it when the scope is disabled).
    pub fn arm_system(&mut self, env: &mut Env<'_>, log: &mut Logger) {
        let Some(events) = env.events else {
            return;
        };
        if !env.config.system.enabled || !env.config.daemon.events {
            self.system.events = None;
            return;
        }
        if self
            .system
            .events
            .as_mut()
            .is_some_and(ArmedSet::prune_dropped)
        {
            self.system.events = None;
        }
        if self.system.events.is_some() {
            return;
        }
        let spec = psi_spec(env.host.path("/proc/pressure/memory"));
        let (set, out_of_fds) = arm_one(
            events,
            "psi",
            &spec,
            true,
            "system",
            &mut self.system.unavailable_reported,
            log,
        );
        if out_of_fds {
            env.table.give_back_fds();
        }
        self.system.events = set;
    }

    /// Says which scope's PSI trigger fired, with its pressure now: a machine or container
    /// starting to thrash is worth a line even when no threshold is crossed yet.
    fn report_pressure(&self, host: &Host, log: &mut Logger, source: Source, id: u64) {
        let (scope, file) = if source == Source::SystemPsi {
            ("system", host.path("/proc/pressure/memory"))
        } else {
            let Some(cg) = self
                .cgroups
                .iter()
                .find(|c| c.events.as_ref().is_some_and(|e| e.contains_id(id)))
            else {
                return;
            };
            let Some(dir) = host
                .memory
                .as_ref()
                .and_then(|h| h.dir(&host.root, &cg.path))
            else {
                return;
            };
            (cg.path.as_str(), dir.join("memory.pressure"))
        };
        let mut line = Line::new("the kernel reported memory pressure")
            .kv("event", "pressure")
            .kv("scope", scope)
            .kv("source", source.as_str());
        if let Ok(Some(p)) = crate::probe::psi::Pressure::read(&file) {
            line.push("some_avg10", p.some.avg10);
            if let Some(full) = p.full {
                line.push("full_avg10", full.avg10);
            }
        }
        log.log(Severity::Info, &line);
    }

    /// The scope a domain member is, for logs.
    pub fn scope_name(&self, id: ScopeId) -> &str {
        match id {
            ScopeId::System => "system",
            ScopeId::Cgroup(n) => self
                .cgroups
                .iter()
                .find(|c| c.id == n)
                .map_or("-", |c| c.path.as_str()),
        }
    }
}

/// The system's stall terms, the bound on MemAvailable resolved against MemTotal (0: none).
pub(super) fn stall_terms(config: &Config, mem: &MemInfo) -> StallTerms {
    let c = &config.system;
    StallTerms {
        window: c.stall_window,
        psi_some: c.psi_some_term,
        psi_full: c.psi_full_term,
        refault_rate: c.refault_rate_term,
        major_fault_rate: u64::from(c.major_fault_rate_term),
        below_available: config
            .system
            .early_available_below
            .map_or(0, |b| b.bytes_of(mem.mem_total)),
    }
}

/// With stall terms on, the system is sampled often enough to measure its window: every
/// eighth of it at or below the bound on MemAvailable, and before the bound could be
/// reached at the worst-case fill rate above it.
fn stall_sleep(config: &Config, m: &MemInfo) -> Duration {
    let d = &config.daemon;
    let terms = stall_terms(config, m);
    if !terms.any() {
        return d.max_interval;
    }
    let every = (terms.window / 8).max(d.min_interval);
    let above = m.mem_available.saturating_sub(terms.below_available);
    if terms.below_available == 0 || above == 0 {
        return every;
    }
    next_sleep(Some(above), d.fill_rate, d.min_interval, d.max_interval)
}

/// A cgroup's figures after a full sample, as the metrics give them (none while its available
/// memory or its limit is unknown).
fn scope_metrics(m: &Metrics, cg: &CgroupScope, cfg: &WatchedCgroup) {
    let (Some(avail), Some(limit)) = (cg.sample.available, cg.sample.limit) else {
        return;
    };
    let t = crate::watch::cgroup_thresholds(cfg, limit);
    m.scope(
        &cg.path,
        &crate::report::metrics::ScopeFigures {
            available_bytes: avail,
            limit_bytes: limit,
            warn_bytes: cfg.available_warn.map(|w| w.bytes_of(limit)),
            term_bytes: t.term,
            kill_bytes: t.kill,
            level: level_number(cg.level, cg.warned),
            fill_rate_bytes_per_second: cg.fill.rate(),
            eta_seconds: cg.eta.map(|e| e.as_secs_f64()),
        },
    );
}

/// A level as the metrics give it: 0 ok, 1 warn, 2 term, 3 kill.
fn level_number(level: Level, warned: bool) -> u8 {
    match level {
        Level::Ok if warned => 1,
        Level::Ok => 0,
        Level::Term => 2,
        Level::Kill => 3,
    }
}
