//! One round of enforcement: sample every scope, follow the victim in flight, and if a scope is
//! in trouble and nobody is already dying for it, choose and signal one victim.
//!
//! Rules that keep it from doing harm:
//! - at most one victim in flight at a time; after it exits, every scope is sampled again
//!   before another is chosen (never two kills for one shortage);
//! - no new victim in a scope whose kernel `oom_kill` count just moved (the kernel's own victim
//!   is exiting);
//! - candidates come only from the scope's own subtree; PID 1, kernel threads, oomward and
//!   protected processes are never chosen; a victim that survives SIGKILL is never chosen again.

use std::time::{Duration, Instant};

use crate::config::{Config, KillUnit, UnderOom};
use crate::events::{ArmError, ArmedSet, Events, Source, Spec};
use crate::kill::{self, Companion, InFlight, KillError};
use crate::policy::Policy;
use crate::probe::Host;
use crate::probe::cgroup::CgroupVersion;
use crate::probe::process::{ProcessSnapshot, scan};
use crate::probe::table::ProcessTable;
use crate::rank::{Candidate, Totals, rank};
use crate::report::{Line, Logger, Severity};
use crate::sys::Sig;
use crate::trigger::{FillRate, Level, next_sleep, system_level};
use crate::watch::{
    CgroupSample, ChainFiles, SwapSpace, SystemFiles, cgroup_thresholds, resolve_cgroups,
    sample_cgroup_into, sample_system,
};

/// Why the loop woke up, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The adaptive timer.
    Timer,
    /// A signal (reload).
    Signal,
    /// A kernel event: its source and the id it was armed with.
    Event(Source, u64),
}

impl Wake {
    fn as_str(self) -> &'static str {
        match self {
            Wake::Timer => "timer",
            Wake::Signal => "signal",
            Wake::Event(s, _) => s.as_str(),
        }
    }
}

#[derive(Debug, Default)]
struct ScopeState {
    level: Level,
    fill: FillRate,
    /// An action or a `no_candidate` was reported in this episode (level left `ok`).
    reported: bool,
    oom_kill_seen: Option<u64>,
    /// A cgroup's OOM counts at the last sample.
    oom_counts_seen: Option<crate::watch::OomCounts>,
    kernel_kill_at: Option<Instant>,
    under_oom_since: Option<Instant>,
    /// When this scope's last victim exited.
    last_exit: Option<Instant>,
    /// After finding no eligible candidate, do not rescan before this.
    no_candidate_until: Option<Instant>,
}

struct CgroupScope {
    path: String,
    config_index: usize,
    state: ScopeState,
    /// Kernel event sources armed for this cgroup (disarmed when it is dropped).
    events: Option<ArmedSet>,
    /// What they were armed for ([`CgroupSample::limits_fingerprint`]: the limited cgroups of
    /// its path and their limits); re-armed when it changes, or when arming is to be retried.
    armed_for: Option<u64>,
    /// Sources already reported as unavailable (a bit per `Source`), to say it once.
    unavailable: u8,
    /// The last sample failed (other than by removal); reported once until one succeeds.
    read_failing: bool,
    /// The v1 OOM notification is armed: no need to poll for a hang.
    oom_armed: bool,
    /// Its files and its ancestors', kept open.
    files: Option<ChainFiles>,
    /// The last sample, kept for its buffers.
    sample: CgroupSample,
}

impl CgroupScope {
    fn new(path: String, config_index: usize) -> Self {
        CgroupScope {
            path,
            config_index,
            state: ScopeState::default(),
            events: None,
            armed_for: None,
            unavailable: 0,
            read_failing: false,
            oom_armed: false,
            files: None,
            sample: CgroupSample::default(),
        }
    }
}

/// What a round found about one scope in trouble.
struct Trouble {
    /// `system` or the cgroup path: looked up again by name when acting, because cgroups may
    /// be dropped from the watch list during the round.
    scope: String,
    /// The `[[cgroup]]` entry, `None` for the system.
    config_index: Option<usize>,
    level: Level,
    rescue: bool,
    depth: usize,
    available: u64,
    limit: u64,
    totalpages: u64,
    /// The machine's T, for kernel-format oom_score in reports.
    system_totalpages: u64,
    /// Observed fill rate, bytes per second, for reports.
    fill_rate: f64,
    /// v2 `memory.oom.group = 1`: the kernel would kill the whole cgroup, so oomward does too.
    oom_group: bool,
}

/// Victims that did not exit after SIGKILL, never chosen again (pid, start time).
const STUCK_MAX: usize = 64;
/// Kill times kept for the rate warning.
const RATE_RING: usize = 64;
/// How often globs are re-resolved against the live hierarchy (and so the longest sleep while
/// any `[[cgroup]]` is configured).
const RESOLVE_EVERY: Duration = Duration::from_millis(200);
/// How long after the kernel's own OOM kill a scope is left alone while its victim exits.
const KERNEL_KILL_COOLDOWN: Duration = Duration::from_secs(1);
/// How long after a victim exits before a hung cgroup may be rescued again.
const RESCUE_SETTLE: Duration = Duration::from_millis(100);
/// How long to wait before rescanning a scope that had no eligible candidate.
const NO_CANDIDATE_BACKOFF: Duration = Duration::from_millis(500);
/// How many of the best candidates the system scope's cheap pass reads in full (the first
/// eligible one not given up on is chosen; stuck victims are rare).
const CHEAP_FINALISTS: usize = 8;
/// Descriptors kept free for everything else when sizing the process table: at least this
/// many, and at least an eighth of the limit (each watched cgroup keeps a dozen files open per
/// level of its path, and each armed event source one or two).
const FD_RESERVE: u64 = 256;

/// The process table's descriptor budget: the soft RLIMIT_NOFILE less the reserve. Should the
/// rest still run out, the table gives half of its descriptors back.
fn fd_budget() -> usize {
    let limit = crate::sys::nofile_limit();
    let reserve = FD_RESERVE.max(limit / 8);
    usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX)
}

/// Sample interval while a victim is exiting.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(2);
/// Longest sleep while a watched v1 cgroup has `oom_kill_disable = 1`: it can hang at its limit
/// without crossing any threshold first. (The kernel's OOM notification replaces this poll.)
const HANG_WATCH: Duration = Duration::from_millis(20);

/// The enforcement state that lives across rounds.
pub struct Enforcer {
    config: Config,
    host: Host,
    policy: Policy,
    dry_run: bool,
    system: ScopeState,
    cgroups: Vec<CgroupScope>,
    last_resolve: Option<Instant>,
    in_flight: Option<InFlight>,
    stuck: [(i32, u64); STUCK_MAX],
    stuck_len: usize,
    kill_times: [Option<Instant>; RATE_RING],
    kill_next: usize,
    started: Instant,
    self_pid: i32,
    /// Whether any rule matches on cmdline: reading /proc/PID/cmdline takes the process's
    /// mmap lock, which a stuck process may hold, so it is read only when needed.
    needs_cmdline: bool,
    reaper: kill::Reaper,
    /// The kernel event poller, once attached (the daemon attaches it; tests may not).
    events: Option<Events>,
    /// Every process, kept across the system scope's ranking passes.
    table: ProcessTable,
    /// The system scope's kernel files, kept open.
    system_files: SystemFiles,
    /// The table was filled once (at the first round with the system scope on), so that the
    /// first pass of a shortage reads in full only the processes started since.
    table_filled: bool,
    /// The system scope's PSI trigger.
    system_events: Option<ArmedSet>,
    system_unavailable_reported: bool,
}

impl Enforcer {
    /// Prepares enforcement of `config` on `host`.
    pub fn new(config: Config, host: Host, dry_run: bool) -> Self {
        let self_pid = crate::sys::own_pid();
        let self_exe = std::fs::read_link(host.path("/proc/self/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let policy = config.policy(self_pid, self_exe);
        let dry_run = dry_run || config.daemon.dry_run;
        let system_files = SystemFiles::new(&host);
        Enforcer {
            config,
            host,
            policy,
            dry_run,
            system: ScopeState::default(),
            cgroups: Vec::new(),
            last_resolve: None,
            in_flight: None,
            stuck: [(0, 0); STUCK_MAX],
            stuck_len: 0,
            kill_times: [None; RATE_RING],
            kill_next: 0,
            started: Instant::now(),
            self_pid,
            needs_cmdline: false,
            reaper: kill::Reaper::start(),
            events: None,
            table: ProcessTable::new(fd_budget()),
            system_files,
            table_filled: false,
            system_events: None,
            system_unavailable_reported: false,
        }
        .with_cmdline_need()
    }

    fn with_cmdline_need(mut self) -> Self {
        self.needs_cmdline = self.policy.rules.iter().any(|r| r.cmdline.is_some());
        self
    }

    /// Takes a new config (reload) without losing the victim in flight or the scopes' levels.
    pub fn set_config(&mut self, config: Config, force_dry_run: bool) {
        let self_exe = self.policy.self_exe.clone();
        self.policy = config.policy(self.self_pid, self_exe);
        self.dry_run = force_dry_run || config.daemon.dry_run;
        self.config = config;
        self.last_resolve = None;
        self.needs_cmdline = self.policy.rules.iter().any(|r| r.cmdline.is_some());
        // Thresholds may have changed: re-arm everything on the next round.
        self.system_events = None;
        for cg in &mut self.cgroups {
            cg.armed_for = None;
        }
    }

    /// Lets kernel events wake the loop: from the next round on, every watched cgroup gets its
    /// sources armed (v1 usage thresholds at its term and kill levels and the OOM notification;
    /// v2 `memory.events` and a `memory.pressure` trigger), and the system scope a PSI trigger.
    pub fn attach_events(&mut self, events: Events) {
        self.events = Some(events);
    }

    /// Whether decisions are only reported.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Runs one round now; returns how long to sleep before the next.
    pub fn round(&mut self, log: &mut Logger, wake: Wake) -> Duration {
        self.round_at(log, wake, Instant::now())
    }

    /// The system scope's current level (for tests and reports).
    pub fn system_level(&self) -> Level {
        self.system.level
    }

    /// A watched cgroup's current level; `None` if it is not watched (for tests and reports).
    pub fn cgroup_level(&self, path: &str) -> Option<Level> {
        self.cgroups
            .iter()
            .find(|c| c.path == path)
            .map(|c| c.state.level)
    }

    /// Runs one round as of `now` (a test can drive the clock); returns the sleep before the next.
    pub fn round_at(&mut self, log: &mut Logger, wake: Wake, now: Instant) -> Duration {
        if self
            .last_resolve
            .is_none_or(|t| now.duration_since(t) >= RESOLVE_EVERY)
        {
            self.resolve(log);
            self.last_resolve = Some(now);
        }
        let mut headroom: Option<u64> = None;
        let mut hang_prone = false;
        let mut troubles: Vec<Trouble> = Vec::new();
        let t_secs = now.duration_since(self.started).as_secs_f64();

        self.arm_system(log);
        if let Wake::Event(source @ (Source::SystemPsi | Source::CgroupPsi), id) = wake {
            self.report_pressure(log, source, id);
        }

        // The system scope.
        let mut system_t = 0;
        let mut swap = SwapSpace::default();
        match sample_system(&mut self.system_files, &self.config) {
            Ok((mem, sample, thresholds)) => {
                system_t = mem.total_pages(self.host.page_size);
                if self.config.system.enabled && !self.table_filled {
                    self.table_filled = true;
                    let totals = Totals {
                        scope: system_t,
                        system: system_t,
                    };
                    let _ = self.table.pass(
                        &self.host,
                        &self.policy,
                        totals,
                        CHEAP_FINALISTS,
                        self.needs_cmdline,
                    );
                }
                swap = SwapSpace {
                    total: mem.swap_total,
                    free: mem.swap_free,
                };
                if self.config.system.enabled {
                    let level = system_level(&sample, &thresholds, self.system.level);
                    let fill = self
                        .system
                        .fill
                        .update(mem.mem_total.saturating_sub(mem.mem_available), t_secs);
                    // The kernel's own OOM kills, machine-wide.
                    if let Some(n) = self.system_files.oom_kills() {
                        if self.system.oom_kill_seen.is_some_and(|seen| n > seen) {
                            self.system.kernel_kill_at = Some(now);
                            log.log(
                                Severity::Warning,
                                Line::new("the kernel OOM killer acted")
                                    .kv("event", "kernel_oom_kill")
                                    .kv("scope", "system")
                                    .kv("oom_kill", n)
                                    .as_str(),
                            );
                        }
                        self.system.oom_kill_seen = Some(n);
                    }
                    let cooling = self
                        .system
                        .kernel_kill_at
                        .is_some_and(|t| now.duration_since(t) < KERNEL_KILL_COOLDOWN);
                    transition(&mut self.system, level);
                    headroom = min_opt(headroom, thresholds.mem.headroom(mem.mem_available));
                    if level > Level::Ok && !cooling {
                        troubles.push(Trouble {
                            scope: "system".into(),
                            config_index: None,
                            level,
                            rescue: false,
                            depth: 0,
                            available: mem.mem_available,
                            limit: mem.mem_total,
                            totalpages: system_t,
                            system_totalpages: system_t,
                            fill_rate: fill,
                            oom_group: false,
                        });
                    }
                }
            }
            Err(e) => log.log(
                Severity::Error,
                Line::new("cannot read meminfo").kv("error", e).as_str(),
            ),
        }

        // The cgroups.
        let mut removed = Vec::new();
        for (i, cg) in self.cgroups.iter_mut().enumerate() {
            let files = cg
                .files
                .get_or_insert_with(|| ChainFiles::new(&self.host, &cg.path));
            // Reused across rounds (put back at the end of the iteration): no allocation.
            let mut sample = std::mem::take(&mut cg.sample);
            match sample_cgroup_into(&self.host, files, &mut sample, system_t, swap) {
                Ok(()) => {}
                Err(e) if e.is_gone() => {
                    removed.push(i);
                    continue;
                }
                Err(e) => {
                    // Still there but unreadable now (out of descriptors, an odd file): keep
                    // watching, say so once, and reopen its files next round.
                    if e.is_out_of_fds() {
                        self.table.give_back_fds();
                    }
                    if !cg.read_failing {
                        cg.read_failing = true;
                        log.log(
                            Severity::Error,
                            Line::new("cannot read cgroup")
                                .kv("event", "scope_unreadable")
                                .kv("scope", &cg.path)
                                .kv("error", e)
                                .as_str(),
                        );
                    }
                    cg.files = None;
                    cg.sample = sample;
                    continue;
                }
            };
            cg.read_failing = false;
            let cfg = &self.config.cgroups[cg.config_index];
            let own = sample.own();
            let counts = sample.oom_counts();
            let seen = cg.state.oom_counts_seen.replace(counts);
            let kernel_killed = seen.is_some_and(|seen| counts.kill_rose_since(&seen));
            if kernel_killed {
                cg.state.kernel_kill_at = Some(now);
                log.log(
                    Severity::Warning,
                    Line::new("the kernel OOM killer acted in a watched cgroup")
                        .kv("event", "kernel_oom_kill")
                        .kv("scope", &cg.path)
                        .kv("oom_kill", own.oom_kill)
                        .as_str(),
                );
            }
            let mut level = Level::Ok;
            let mut fill = 0.0;
            if let (Some(avail), Some(limit)) = (sample.available, sample.limit) {
                let th = cgroup_thresholds(cfg, limit);
                level = th.level(avail, cg.state.level);
                // Memory in use, the quantity that grows as the cgroup fills.
                let used = (limit + sample.swap_left).saturating_sub(avail);
                fill = cg.state.fill.update(used, t_secs);
                headroom = min_opt(headroom, th.headroom(avail));
            }
            // v2: a rising `oom` count means the cgroup is in OOM right now: act at once.
            if seen.is_some_and(|seen| counts.oom_rose_since(&seen)) {
                level = Level::Kill;
            }
            // A rescue waits a moment after the previous victim exited: the tasks waiting in
            // the OOM need to run before `under_oom` can clear.
            let settled = cg
                .state
                .last_exit
                .is_none_or(|t| now.duration_since(t) >= RESCUE_SETTLE);
            let rescue = own.under_oom && cfg.on_under_oom == UnderOom::Kill && settled;
            if !self.config.daemon.events {
                // Switched off (by a reload, perhaps): disarm.
                cg.events = None;
                cg.armed_for = None;
                cg.oom_armed = false;
            } else if let Some(events) = &self.events
                && arm_cgroup(events, &self.host, cg, &sample, cfg, log)
            {
                // Out of descriptors: the process table gives some back.
                self.table.give_back_fds();
            }
            hang_prone |=
                own.oom_kill_disable && cfg.on_under_oom == UnderOom::Kill && !cg.oom_armed;
            if own.under_oom {
                cg.state.under_oom_since.get_or_insert(now);
            } else if let Some(since) = cg.state.under_oom_since.take() {
                log.log(
                    Severity::Info,
                    Line::new("cgroup left OOM")
                        .kv("event", "under_oom_cleared")
                        .kv("scope", &cg.path)
                        .kv("after_ms", now.duration_since(since).as_millis())
                        .as_str(),
                );
            }
            if rescue {
                level = Level::Kill;
            } else if own.under_oom && !settled {
                level = level.min(Level::Term);
            }
            transition(&mut cg.state, level);
            let cooling = cg
                .state
                .kernel_kill_at
                .is_some_and(|t| now.duration_since(t) < KERNEL_KILL_COOLDOWN);
            let backing_off = cg.state.no_candidate_until.is_some_and(|t| now < t);
            if level > Level::Ok && !cooling && !backing_off {
                troubles.push(Trouble {
                    scope: cg.path.clone(),
                    config_index: Some(cg.config_index),
                    level,
                    rescue,
                    depth: if cg.path == "/" {
                        0
                    } else {
                        cg.path.matches('/').count()
                    },
                    available: sample.available.unwrap_or(0),
                    limit: sample.limit.unwrap_or(0),
                    totalpages: sample.totalpages,
                    system_totalpages: system_t,
                    fill_rate: fill,
                    oom_group: own.oom_group,
                });
            }
            cg.sample = sample;
        }
        for i in removed.into_iter().rev() {
            let cg = self.cgroups.remove(i);
            log.log(
                Severity::Info,
                Line::new("stopped watching a removed cgroup")
                    .kv("event", "scope_removed")
                    .kv("scope", cg.path)
                    .as_str(),
            );
        }

        // The victim in flight.
        if let Some(mut f) = self.in_flight.take() {
            let level = self.level_of(&f.scope);
            if f.has_exited() {
                if let Some(state) = self.state_mut(&f.scope) {
                    state.last_exit = Some(now);
                }
                log.log(
                    Severity::Info,
                    Line::new("victim exited")
                        .kv("event", "exit")
                        .kv("scope", &f.scope)
                        .kv("pid", f.victim.pid)
                        .kv("comm", &f.victim.comm)
                        .kv("after_ms", now.duration_since(f.first_signal).as_millis())
                        .kv("signal", f.victim_signal())
                        .kv_if(!f.companions.is_empty(), "members", f.companions.len() + 1)
                        .kv_if(f.kill_sent.is_some(), "sigkilled", f.sigkilled_list())
                        .as_str(),
                );
            } else if f.kill_sent.is_none()
                && (now.duration_since(f.first_signal) >= self.config.kill.grace
                    || level == Level::Kill)
            {
                f.escalate(now, &self.reaper);
                let why = if level == Level::Kill {
                    "kill_level"
                } else {
                    "grace"
                };
                let victim_alive = f.sigkilled.contains(&f.victim.pid);
                log.log(
                    Severity::Warning,
                    Line::new(if victim_alive {
                        "victim still alive, sent SIGKILL"
                    } else {
                        "victim gone, others signalled with it still alive: sent SIGKILL"
                    })
                    .kv("event", "escalate")
                    .kv("scope", &f.scope)
                    .kv("pid", f.victim.pid)
                    .kv("comm", &f.victim.comm)
                    .kv("victim_alive", victim_alive)
                    .kv("sigkilled", f.sigkilled_list())
                    .kv("signal", "SIGKILL")
                    .kv("reason", why)
                    .kv("after_ms", now.duration_since(f.first_signal).as_millis())
                    .as_str(),
                );
                self.in_flight = Some(f);
            } else if f
                .kill_sent
                .is_some_and(|t| now.duration_since(t) >= self.config.kill.stuck_timeout)
            {
                log.log(
                    Severity::Error,
                    Line::new(
                        "victim did not exit after SIGKILL; giving up on it and choosing another",
                    )
                    .kv("event", "stuck")
                    .kv("scope", &f.scope)
                    .kv("pid", f.victim.pid)
                    .kv("comm", &f.victim.comm)
                    .kv("state", f.victim.state)
                    .as_str(),
                );
                self.mark_stuck(f.victim.pid, f.victim.starttime);
            } else {
                self.in_flight = Some(f);
            }
            // Re-sample before choosing anyone else.
            return IN_FLIGHT_POLL;
        }

        // Choose: rescues first, then the worst level, innermost cgroups before their parents,
        // the system last.
        troubles.sort_by(|a, b| {
            b.rescue
                .cmp(&a.rescue)
                .then(b.level.cmp(&a.level))
                .then(b.config_index.is_some().cmp(&a.config_index.is_some()))
                .then(b.depth.cmp(&a.depth))
        });
        for t in &troubles {
            if self.act(log, t, wake, now) {
                return IN_FLIGHT_POLL;
            }
        }
        let mut sleep = self.sleep(headroom);
        if hang_prone {
            sleep = sleep.min(HANG_WATCH);
        }
        if !self.config.cgroups.is_empty() {
            // A cgroup created now (a container starting) must be watched before it can fill.
            sleep = sleep.min(RESOLVE_EVERY);
        }
        sleep
    }

    fn sleep(&self, headroom: Option<u64>) -> Duration {
        let d = &self.config.daemon;
        next_sleep(headroom, d.fill_rate, d.min_interval, d.max_interval)
    }

    fn level_of(&self, scope: &str) -> Level {
        if scope == "system" {
            return self.system.level;
        }
        self.cgroups
            .iter()
            .find(|c| c.path == scope)
            .map_or(Level::Ok, |c| c.state.level)
    }

    fn resolve(&mut self, log: &mut Logger) {
        let found = resolve_cgroups(&self.config, &self.host);
        for (path, index) in &found {
            if let Some(cg) = self.cgroups.iter_mut().find(|c| c.path == *path) {
                cg.config_index = *index;
            } else {
                log.log(
                    Severity::Info,
                    Line::new("watching cgroup")
                        .kv("event", "scope_added")
                        .kv("scope", path)
                        .as_str(),
                );
                self.cgroups.push(CgroupScope::new(path.clone(), *index));
            }
        }
        self.cgroups.retain(|c| {
            let keep = found.iter().any(|(p, _)| *p == c.path);
            if !keep {
                log.log(
                    Severity::Info,
                    Line::new("stopped watching a removed cgroup")
                        .kv("event", "scope_removed")
                        .kv("scope", &c.path)
                        .as_str(),
                );
            }
            keep
        });
    }

    /// Arms the system scope's PSI trigger once (and disarms it when the scope is disabled).
    fn arm_system(&mut self, log: &mut Logger) {
        let Some(events) = &self.events else {
            return;
        };
        if !self.config.system.enabled || !self.config.daemon.events {
            self.system_events = None;
            return;
        }
        if self
            .system_events
            .as_mut()
            .is_some_and(ArmedSet::prune_dropped)
        {
            self.system_events = None;
        }
        if self.system_events.is_some() {
            return;
        }
        let mut set = ArmedSet::new(events.clone());
        let spec = psi_spec(self.host.path("/proc/pressure/memory"));
        let armed = set.arm("psi", &spec, true);
        // Failed for a passing reason (out of descriptors): try again next round.
        let retry = armed.as_ref().is_err_and(|e| !e.is_permanent());
        if armed.as_ref().is_err_and(ArmError::is_out_of_fds) {
            self.table.give_back_fds();
        }
        match armed {
            Ok(false) => {}
            Ok(true) => log.log(
                Severity::Info,
                Line::new("kernel events armed")
                    .kv("event", "events_armed")
                    .kv("scope", "system")
                    .kv("sources", Source::SystemPsi.as_str())
                    .as_str(),
            ),
            Err(e) if !self.system_unavailable_reported => {
                self.system_unavailable_reported = true;
                log.log(
                    Severity::Warning,
                    Line::new("kernel event source unavailable, polling instead")
                        .kv("event", "events_unavailable")
                        .kv("scope", "system")
                        .kv("source", Source::SystemPsi.as_str())
                        .kv("error", e)
                        .as_str(),
                );
            }
            Err(_) => {}
        }
        if !retry {
            self.system_events = Some(set);
        }
    }

    /// Says which scope's PSI trigger fired, with its pressure now: a machine or container
    /// starting to thrash is worth a line even when no threshold is crossed yet.
    fn report_pressure(&self, log: &mut Logger, source: Source, id: u64) {
        let (scope, file) = if source == Source::SystemPsi {
            ("system", self.host.path("/proc/pressure/memory"))
        } else {
            let Some(cg) = self
                .cgroups
                .iter()
                .find(|c| c.events.as_ref().is_some_and(|e| e.contains_id(id)))
            else {
                return;
            };
            let Some(dir) = self
                .host
                .memory
                .as_ref()
                .and_then(|h| h.dir(&self.host.root, &cg.path))
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
        log.log(Severity::Info, line.as_str());
    }

    fn mark_stuck(&mut self, pid: i32, starttime: u64) {
        self.stuck[self.stuck_len % STUCK_MAX] = (pid, starttime);
        self.stuck_len += 1;
    }

    fn is_stuck(&self, p: &ProcessSnapshot) -> bool {
        self.stuck[..self.stuck_len.min(STUCK_MAX)].contains(&(p.pid, p.starttime))
    }

    /// Chooses and signals a victim for one scope in trouble; true when one is now in flight.
    fn act(&mut self, log: &mut Logger, t: &Trouble, wake: Wake, now: Instant) -> bool {
        let scope = t.scope.clone();
        let within = t.config_index.map(|_| t.scope.clone());
        let cfg = t
            .config_index
            .and_then(|i| self.config.cgroups.get(i).cloned());
        let Some(state_reported) = self.state_mut(&scope).map(|s| s.reported) else {
            return false;
        };
        if self.dry_run && state_reported {
            return false;
        }
        let totals = Totals {
            scope: t.totalpages,
            system: t.system_totalpages.max(1),
        };
        // The system scope ranks through the process table (one small read per process);
        // a cgroup scope reads its few processes in full, and a process-group kill needs every
        // process's group.
        let cheap = t.config_index.is_none() && !self.config.kill.process_group;
        let listed = if cheap {
            self.table
                .pass(
                    &self.host,
                    &self.policy,
                    totals,
                    CHEAP_FINALISTS,
                    self.needs_cmdline,
                )
                .map(|p| crate::probe::process::Scan {
                    processes: p.processes,
                    ..Default::default()
                })
        } else {
            scan(&self.host, within.as_deref(), self.needs_cmdline)
        };
        let scanned = match listed {
            Ok(s) => s,
            Err(e) => {
                log.log(
                    Severity::Error,
                    Line::new("cannot list processes").kv("error", e).as_str(),
                );
                return false;
            }
        };
        let procs = &scanned.processes;
        let ranked = rank(procs, &self.policy, totals);
        let victim = ranked.iter().find(|c| {
            c.is_eligible()
                && c.process.pid != self.self_pid
                && c.process.pid > 1
                && !self.is_stuck(c.process)
        });
        let Some(victim) = victim else {
            if !state_reported {
                log.log(
                    Severity::Warning,
                    Line::new("scope is low on memory but has no eligible candidate")
                        .kv("event", "no_candidate")
                        .kv("scope", &scope)
                        .kv("level", t.level.as_str())
                        .kv("available", t.available)
                        .kv("limit", t.limit)
                        .kv("processes", ranked.len())
                        .kv("vanished", scanned.vanished)
                        .kv("unreadable", scanned.unreadable.len())
                        .kv(
                            "first_error",
                            scanned
                                .unreadable
                                .first()
                                .map_or(String::new(), |e| e.to_string()),
                        )
                        .as_str(),
                );
            }
            // Rescanning every few ms would only burn CPU during the shortage: back off.
            if let Some(state) = self.state_mut(&scope) {
                state.reported = true;
                state.no_candidate_until = Some(now + NO_CANDIDATE_BACKOFF);
            }
            return false;
        };
        // At the kill level, or for a hung cgroup (whose tasks cannot run a SIGTERM handler),
        // SIGKILL at once; otherwise SIGTERM and a grace.
        let sig = if t.rescue || t.level == Level::Kill {
            Sig::Kill
        } else {
            Sig::Term
        };
        let event = if t.rescue {
            "rescue"
        } else if sig == Sig::Kill {
            "kill"
        } else {
            "term"
        };
        if self.dry_run {
            log.log(
                Severity::Info,
                decision_line(
                    "would signal (dry run)",
                    event,
                    &scope,
                    t,
                    wake,
                    victim,
                    sig,
                )
                .kv("dry_run", true)
                .as_str(),
            );
            self.set_reported(&scope);
            return false;
        }
        if self.host.root != std::path::Path::new("/") {
            // Pids under another root are not this machine's processes: never signal them.
            log.log(
                Severity::Error,
                Line::new("refusing to signal: processes read from a root other than /")
                    .kv("root", self.host.root.display())
                    .as_str(),
            );
            return false;
        }
        let fd = match kill::open_verified(&self.host, victim.process) {
            Ok(fd) => fd,
            Err(KillError::Gone) | Err(KillError::Reused) => return false,
            Err(KillError::Io(e)) if e.raw_os_error() != Some(libc::EPERM) => {
                // Transient (EMFILE, ENOMEM): try again next round, do not blacklist.
                log.log(
                    Severity::Error,
                    Line::new("cannot open a pidfd for the victim")
                        .kv("pid", victim.process.pid)
                        .kv("error", e)
                        .as_str(),
                );
                return false;
            }
            Err(e) => {
                log.log(
                    Severity::Error,
                    Line::new("cannot signal victim")
                        .kv("pid", victim.process.pid)
                        .kv("error", e)
                        .as_str(),
                );
                self.mark_stuck(victim.process.pid, victim.process.starttime);
                return false;
            }
        };
        // Signal first, log after.
        let sent = kill::signal(&fd, sig);
        let first_signal = Instant::now();
        let mut companions = Vec::new();
        let mut cgroup_kill_file = None;
        let kill_unit = match cfg.as_ref() {
            _ if t.oom_group => KillUnit::Cgroup,
            Some(c) => c.kill_unit,
            None => KillUnit::Process,
        };
        if kill_unit == KillUnit::Cgroup {
            companions = self.signal_others(procs, victim.process.pid, sig, |_| true);
            // cgroup.kill spares nobody: use it only when every process of the subtree may die.
            let all_killable = procs.iter().all(|p| self.may_kill(p));
            if let (Some(hier), Some(path)) = (&self.host.memory, &within)
                && hier.version == CgroupVersion::V2
                && all_killable
            {
                let f = hier
                    .dir(&self.host.root, path)
                    .map(|d| d.join("cgroup.kill"));
                if let Some(f) = f.filter(|f| f.exists()) {
                    if sig == Sig::Kill {
                        let _ = std::fs::write(&f, "1");
                    }
                    cgroup_kill_file = Some(f);
                }
            }
        } else if self.config.kill.process_group {
            let pgrp = victim.process.pgrp;
            if pgrp > 1 && pgrp != crate::sys::own_pgrp() {
                companions = self.signal_others(procs, victim.process.pid, sig, |p| p.pgrp == pgrp);
            }
        }
        let released = if sig == Sig::Kill {
            self.reaper.release(&fd)
        } else {
            "-"
        };
        let mut line = decision_line("signalled victim", event, &scope, t, wake, victim, sig);
        match &sent {
            Ok(()) => line.push("outcome", "sent"),
            Err(e) => line.push("outcome", format!("failed: {e}")),
        }
        if !companions.is_empty() {
            line.push("companions", companions.len());
        }
        if sig == Sig::Kill {
            line.push("mrelease", released);
        }
        log.log(
            if t.rescue {
                Severity::Warning
            } else {
                Severity::Info
            },
            line.as_str(),
        );
        self.set_reported(&scope);
        if sent.is_err() {
            self.mark_stuck(victim.process.pid, victim.process.starttime);
            return false;
        }
        self.note_kill(log, now);
        let sigkilled = if sig == Sig::Kill {
            std::iter::once(victim.process.pid)
                .chain(companions.iter().map(|c| c.pid))
                .collect()
        } else {
            Vec::new()
        };
        self.in_flight = Some(InFlight {
            victim: victim.process.clone(),
            scope,
            fd,
            companions,
            first_signal,
            sigkilled,
            kill_sent: (sig == Sig::Kill).then_some(first_signal),
            cgroup_kill_file,
        });
        true
    }

    /// Signals the other processes of the scan that `pick` selects, through verified pidfds.
    fn signal_others(
        &self,
        procs: &[ProcessSnapshot],
        victim: i32,
        sig: Sig,
        pick: impl Fn(&ProcessSnapshot) -> bool,
    ) -> Vec<Companion> {
        let mut out = Vec::new();
        for p in procs {
            if p.pid == victim || !pick(p) || !self.may_kill(p) {
                continue;
            }
            if let Ok(fd) = kill::open_verified(&self.host, p)
                && kill::signal(&fd, sig).is_ok()
            {
                out.push(Companion { pid: p.pid, fd });
            }
        }
        out
    }

    /// Whether a process may be signalled at all: not oomward, not init, not a kernel thread,
    /// not unkillable for the kernel (adj -1000, no mm), not protected by policy. The same
    /// promise holds for companions of a group or cgroup kill as for a chosen victim.
    fn may_kill(&self, p: &ProcessSnapshot) -> bool {
        p.pid != self.self_pid
            && p.pid > 1
            && crate::rank::unkillable(p).is_none()
            && self.policy.evaluate(p).protected.is_none()
    }

    fn state_mut(&mut self, scope: &str) -> Option<&mut ScopeState> {
        if scope == "system" {
            return Some(&mut self.system);
        }
        self.cgroups
            .iter_mut()
            .find(|c| c.path == scope)
            .map(|c| &mut c.state)
    }

    fn set_reported(&mut self, scope: &str) {
        if let Some(state) = self.state_mut(scope) {
            state.reported = true;
        }
    }

    fn note_kill(&mut self, log: &mut Logger, now: Instant) {
        self.kill_times[self.kill_next % RATE_RING] = Some(now);
        self.kill_next += 1;
        let minute = Duration::from_secs(60);
        let recent = self
            .kill_times
            .iter()
            .flatten()
            .filter(|t| now.duration_since(**t) < minute)
            .count();
        if recent > self.config.kill.warn_kills_per_minute as usize {
            log.log(
                Severity::Warning,
                Line::new("many kills in the last minute: a workload keeps coming back")
                    .kv("event", "kill_rate")
                    .kv("kills_last_minute", recent)
                    .kv("warn_at", self.config.kill.warn_kills_per_minute)
                    .as_str(),
            );
        }
    }
}

fn transition(state: &mut ScopeState, level: Level) {
    if level == Level::Ok {
        state.reported = false;
    }
    state.level = level;
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn decision_line(
    message: &str,
    event: &str,
    scope: &str,
    t: &Trouble,
    wake: Wake,
    c: &Candidate<'_>,
    sig: Sig,
) -> Line {
    let p = c.process;
    Line::new(message)
        .kv("event", event)
        .kv("scope", scope)
        .kv("level", t.level.as_str())
        .kv("available", t.available)
        .kv("limit", t.limit)
        .kv("wake", wake.as_str())
        .kv("pid", p.pid)
        .kv("comm", &p.comm)
        .kv("exe", p.exe.as_deref().unwrap_or("?"))
        .kv("uid", p.uid.map_or(-1, i64::from))
        .kv("cgroup", p.cgroup.as_deref().unwrap_or("-"))
        .kv("rss_pages", c.points.rss)
        .kv("swap_pages", c.points.swap)
        .kv("pgtables_pages", c.points.pgtables)
        .kv("oom_score_adj", p.oom_score_adj)
        .kv("policy_adjust", c.verdict.adjust)
        .kv("total_pages", t.totalpages)
        .kv("fill_rate", t.fill_rate as u64)
        .kv("badness", c.badness.unwrap_or(0))
        .kv("rank_score", c.rank_score.unwrap_or(0))
        .kv("signal", sig.name())
}

/// The PSI trigger oomward arms: 150 ms of stall (some task waiting on memory) within a 2 s
/// window. 2 s is the shortest window the kernel accepts without CAP_SYS_RESOURCE; it makes
/// this a wake-up for a machine or cgroup starting to thrash, not a millisecond reaction.
fn psi_spec(file: std::path::PathBuf) -> Spec {
    Spec::Psi {
        file,
        full: false,
        stall: Duration::from_millis(150),
        window: Duration::from_secs(2),
    }
}

/// The bit of `source` in `CgroupScope::unavailable`.
fn source_bit(source: Source) -> u8 {
    1 << (source as u8)
}

/// Arms (or re-arms, when a limit on its path changed) the kernel event sources of one watched
/// cgroup: v1 usage thresholds at the term and kill levels on each limited cgroup of its path,
/// and the OOM notification; v2 its `memory.events`, each limited ancestor's
/// `memory.events.local` and a `memory.pressure` trigger. Unavailable sources are reported once
/// and left to polling; those that failed for a passing reason are tried again next round.
/// Returns true when arming ran out of descriptors.
fn arm_cgroup(
    events: &Events,
    host: &Host,
    cg: &mut CgroupScope,
    sample: &CgroupSample,
    cfg: &crate::config::WatchedCgroup,
    log: &mut Logger,
) -> bool {
    let Some(hier) = &host.memory else {
        return false;
    };
    if cg.events.as_mut().is_some_and(ArmedSet::prune_dropped) {
        // The poller gave up on a source (its file broke): arm what is still wanted again.
        cg.armed_for = None;
    }
    // Every limited cgroup on the path is armed, not only the tightest now: which one that
    // is flips as they fill, and re-arming at each flip would churn registrations.
    let want = sample.limits_fingerprint();
    if cg.armed_for == Some(want) {
        return false;
    }
    cg.armed_for = Some(want);
    let Some(own_dir) = hier.dir(&host.root, &cg.path) else {
        return false;
    };
    let mut wants: Vec<(String, Spec)> = Vec::new();
    match hier.version {
        CgroupVersion::V1 => {
            for (_, path, _, limit) in sample.limited() {
                let Some(dir) = hier.dir(&host.root, path) else {
                    continue;
                };
                let t = cgroup_thresholds(cfg, limit);
                for below in [t.term, t.kill] {
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
            wants.push(("oom".into(), Spec::V1Oom { dir: own_dir }));
        }
        CgroupVersion::V2 => {
            wants.push((
                "events".into(),
                Spec::V2Events {
                    file: own_dir.join("memory.events"),
                },
            ));
            for (i, path, _, _) in sample.limited() {
                let Some(dir) = hier.dir(&host.root, path).filter(|_| i > 0) else {
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
        }
    }
    let set = cg
        .events
        .get_or_insert_with(|| ArmedSet::new(events.clone()));
    set.retain(|k| wants.iter().any(|(w, _)| w == k));
    let mut armed: Vec<&'static str> = Vec::new();
    let mut retry = false;
    let mut out_of_fds = false;
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
                // Out of descriptors or memory now: try again next round.
                retry |= !e.is_permanent();
                out_of_fds |= e.is_out_of_fds();
                if cg.unavailable & source_bit(source) == 0 {
                    cg.unavailable |= source_bit(source);
                    log.log(
                        Severity::Warning,
                        Line::new("kernel event source unavailable, polling instead")
                            .kv("event", "events_unavailable")
                            .kv("scope", &cg.path)
                            .kv("source", source.as_str())
                            .kv("error", e)
                            .as_str(),
                    );
                }
            }
        }
    }
    cg.oom_armed = set.has("oom");
    if retry {
        cg.armed_for = None;
    }
    if !armed.is_empty() {
        log.log(
            Severity::Info,
            Line::new("kernel events armed")
                .kv("event", "events_armed")
                .kv("scope", &cg.path)
                .kv("sources", armed.join(","))
                .kv("limited", sample.limited().count())
                .as_str(),
        );
    }
    out_of_fds
}
