//! One round of enforcement, as named steps: refresh what is watched, follow the victims in
//! flight, sample the scopes that are due, group them into OOM domains, then per domain assess
//! its episode, act on the plan, and sleep until the next thing is due.
//!
//! The decisions are pure and live in `decide` (`episode::Episode::assess`, `choose::choose`,
//! `rank`); this module only gathers their inputs and carries out their outputs, in the spirit
//! of the kernel's `out_of_memory` → `select_bad_process` → `oom_kill_process`.
//!
//! Rules that keep it from doing harm:
//! - each OOM domain has its own episode and victims; domains never wait on each other;
//! - candidates come only from the domain's watched scopes; PID 1, kernel threads, oomward and
//!   protected processes are never chosen; a victim that survives SIGKILL is never chosen again;
//! - no kill that cannot help: a candidate below `kill.min_gain` is never chosen, and a domain
//!   whose candidates cannot free what it needs is left to the kernel (`event=futile`).

mod act;
mod domains;
mod killer;
mod lines;
mod moment;
mod report;
mod scopes;

use std::time::{Duration, Instant};

use crate::config::{Config, WatchedCgroup};
use crate::decide::domain::{Member, ScopeId};
use crate::decide::limits::Limits;
use crate::decide::stall::{Stall, StallTerms, StallWindow, judge};
use crate::decide::trigger::{FillRate, Level, next_sleep, system_level, with_exhaustion};
use crate::events::{ArmedSet, Events, Source, Spec};
use crate::policy::Policy;
use crate::probe::Host;
use crate::probe::meminfo::MemInfo;
use crate::probe::table::ProcessTable;
use crate::rank::Totals;
use crate::report::{Line, Logger, Severity};
use crate::watch::{SwapSpace, SystemFiles, resolve_cgroups, sample_system};

use domains::Domain;
use killer::Killer;
use scopes::{CgroupScope, Look};

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

/// How often globs are re-resolved against the live hierarchy when no inotify watch tells of
/// new cgroups (and so the longest sleep while any `[[cgroup]]` is configured then).
const RESOLVE_EVERY: Duration = Duration::from_millis(200);
/// With the inotify watch armed, a full re-resolution this often all the same (a lost event).
const RESOLVE_SAFETY: Duration = Duration::from_secs(60);
/// How many of the best candidates the system scope's cheap pass reads in full.
const CHEAP_FINALISTS: usize = 8;
/// Descriptors kept free for everything else when sizing the process table: at least this
/// many, and at least an eighth of the limit.
const FD_RESERVE: u64 = 256;

/// The process table's descriptor budget: the soft RLIMIT_NOFILE less the reserve.
fn fd_budget() -> usize {
    let limit = crate::sys::nofile_limit();
    let reserve = FD_RESERVE.max(limit / 8);
    usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX)
}

/// The system scope's state across rounds.
struct SystemScope {
    files: SystemFiles,
    level: Level,
    fill: FillRate,
    events: Option<ArmedSet>,
    unavailable_reported: bool,
    /// /proc/meminfo as last read, and the round it was read in.
    mem: Option<MemInfo>,
    mem_round: u64,
    /// What this round makes of it (when enabled).
    member: Member,
    eta: Option<Duration>,
    /// The kernel's machine-wide OOM kill count (`/proc/vmstat`), and the round it was read in.
    oom_kills: Option<u64>,
    oom_kills_round: u64,
    /// In the warn band (MemAvailable below `mem_available_warn`) at the last sample.
    warned: bool,
    /// The stall counters of recent samples, and what they said at the last one.
    stall_window: StallWindow,
    stall: Option<Stall>,
    /// Until when PSI avg10 still shows the stall of a victim that has exited.
    psi_quiet_until: Option<Instant>,
}

/// See [`Enforcer::early_triggers_count`].
#[derive(Debug, Clone, Copy)]
struct EarlyTriggers {
    /// MemAvailable is at or below `early_available_below` (or there is none).
    below: bool,
    /// ... and PSI avg10 may count.
    psi_avg10: bool,
}

/// Kills per second over the last minute, for the rate warning: exact to the second, no
/// allocation, never capped.
#[derive(Debug)]
struct KillRate {
    buckets: [u32; 60],
    /// The second (since the enforcer started) each bucket counts.
    second: [u64; 60],
    warned_at: Option<u64>,
}

impl Default for KillRate {
    fn default() -> Self {
        KillRate {
            buckets: [0; 60],
            second: [u64::MAX; 60],
            warned_at: None,
        }
    }
}

impl KillRate {
    /// Counts a kill at second `s`; the count over the last minute.
    fn note(&mut self, s: u64) -> u32 {
        let i = (s % 60) as usize;
        if self.second[i] != s {
            self.second[i] = s;
            self.buckets[i] = 0;
        }
        self.buckets[i] += 1;
        (0..60)
            .filter(|&j| s.saturating_sub(self.second[j]) < 60)
            .map(|j| self.buckets[j])
            .sum()
    }

    /// Whether to warn now (at most once a minute).
    fn may_warn(&mut self, s: u64) -> bool {
        if self.warned_at.is_some_and(|w| s.saturating_sub(w) < 60) {
            return false;
        }
        self.warned_at = Some(s);
        true
    }
}

/// The daemon's state in a line for `systemctl status`: what is watched, victims so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The system scope is on.
    pub system: bool,
    /// Watched cgroups now.
    pub cgroups: usize,
    /// Victims signalled since start.
    pub victims: u64,
    /// Deciding without signalling.
    pub dry_run: bool,
    /// Running on the last good config (or the defaults): the one asked for did not load.
    pub config_error: bool,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let system = if self.system {
            "the system"
        } else {
            "no system scope"
        };
        if self.config_error {
            write!(
                f,
                "CONFIG ERROR (see the journal), running on the last good config; "
            )?;
        }
        write!(
            f,
            "watching {system} and {} cgroup(s); {} victim(s) since start{}",
            self.cgroups,
            self.victims,
            if self.dry_run { " (dry run)" } else { "" }
        )
    }
}

/// The enforcement state that lives across rounds.
pub struct Enforcer {
    config: Config,
    host: Host,
    policy: Policy,
    killer: Killer,
    limits: Limits,
    system: SystemScope,
    cgroups: Vec<CgroupScope>,
    next_scope: u32,
    domains: Vec<Domain>,
    kill_rate: KillRate,
    started: Instant,
    round: u64,
    self_pid: i32,
    /// Whether any rule matches on cmdline: reading /proc/PID/cmdline takes the process's
    /// mmap lock, which a stuck process may hold, so it is read only when needed.
    needs_cmdline: bool,
    /// The config asked for at start did not load: why, and what runs instead (cleared by a
    /// reload that loads).
    config_error: Option<String>,
    /// The kernel event poller, once attached (the daemon attaches it; tests may not).
    events: Option<Events>,
    /// Every process, kept across the system scope's ranking passes.
    table: ProcessTable,
    /// The table was filled once (at the first round with the system scope on).
    table_filled: bool,
    /// The inotify watch on the directories below the globs, and what it was armed for.
    tree: Option<ArmedSet>,
    tree_for: Option<u64>,
    tree_reported: bool,
    /// The inotify watch on every directory of the watched v2 cgroups' paths for a limit or a
    /// `memory.high` written, and whether the set of directories changed since it was armed.
    written: Option<ArmedSet>,
    written_dirty: bool,
    /// A cgroup was added or removed since the domains were last grouped in full.
    members_changed: bool,
    written_reported: bool,
    last_resolve: Option<Instant>,
    /// Kill records, hooks, the kill journal, the status file, the metrics and the count of
    /// victims.
    reporting: report::Reporting,
    /// How long victims of each executable took to exit after SIGTERM.
    exits: crate::decide::exits::ExitTimes,
    /// The cgroup v2 tripwires set (`memory.high` written to be told of a fill).
    wires: crate::act::tripwire::Tripwires,
}

impl Enforcer {
    /// What the service manager's status line says: compared every round (cheap, no
    /// allocation), formatted only when it changed.
    pub fn status(&self) -> Status {
        Status {
            system: self.config.system.enabled,
            cgroups: self.cgroups.len(),
            victims: self.reporting.victims,
            dry_run: self.killer.dry_run,
            config_error: self.config_error.is_some(),
        }
    }

    /// Says (in the status file and the service status) that the config asked for did not
    /// load and what runs instead; `None` once one loads.
    pub fn set_config_error(&mut self, error: Option<String>) {
        self.config_error = error;
    }

    /// Whether it runs on a config other than the one asked for (see `set_config_error`).
    pub fn on_fallback(&self) -> bool {
        self.config_error.is_some()
    }

    /// The running configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Prepares enforcement of `config` on `host`.
    pub fn new(config: Config, host: Host, dry_run: bool) -> Self {
        let self_pid = crate::sys::own_pid();
        let self_exe = std::fs::read_link(host.path("/proc/self/exe"))
            .ok()
            .map(|p| crate::probe::text_of(p.as_os_str().as_encoded_bytes()));
        let mut policy = config.policy(self_pid, self_exe);
        policy.first_user_uid = host.first_user_uid;
        let dry_run = dry_run || config.daemon.dry_run;
        let system = SystemScope {
            files: SystemFiles::new(&host),
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
        };
        let limits = config.kill.limits();
        let needs_cmdline = policy.rules.iter().any(|r| r.cmdline.is_some());
        Enforcer {
            config,
            host,
            policy,
            killer: Killer::new(dry_run),
            limits,
            system,
            cgroups: Vec::new(),
            next_scope: 0,
            domains: Vec::new(),
            kill_rate: KillRate::default(),
            started: Instant::now(),
            round: 0,
            self_pid,
            needs_cmdline,
            config_error: None,
            events: None,
            table: ProcessTable::new(fd_budget()),
            table_filled: false,
            tree: None,
            tree_for: None,
            tree_reported: false,
            written: None,
            written_dirty: true,
            members_changed: true,
            written_reported: false,
            last_resolve: None,
            reporting: report::Reporting {
                started_unix: crate::report::kill::unix_now(),
                ..Default::default()
            },
            exits: Default::default(),
            wires: Default::default(),
        }
    }

    /// Counts into `metrics` from the next round on (`None`: stop counting).
    pub fn attach_metrics(
        &mut self,
        metrics: Option<std::sync::Arc<crate::report::metrics::Metrics>>,
    ) {
        self.reporting.metrics = metrics;
    }

    /// The kill records completed and the warnings sent since the last call, for what the
    /// daemon does beyond the log (metrics, desktop notifications).
    pub fn take_reports(
        &mut self,
    ) -> (
        Vec<std::sync::Arc<crate::report::kill::KillRecord>>,
        Vec<crate::report::kill::KillRecord>,
    ) {
        (
            std::mem::take(&mut self.reporting.published),
            std::mem::take(&mut self.reporting.warnings),
        )
    }

    /// Takes a new config (reload) without losing the victims in flight or the episodes.
    pub fn set_config(&mut self, config: Config, force_dry_run: bool) {
        let self_exe = self.policy.self_exe.clone();
        self.policy = config.policy(self.self_pid, self_exe);
        self.policy.first_user_uid = self.host.first_user_uid;
        self.killer.dry_run = force_dry_run || config.daemon.dry_run;
        self.limits = config.kill.limits();
        self.config = config;
        self.last_resolve = None;
        self.tree_for = None;
        self.needs_cmdline = self.policy.rules.iter().any(|r| r.cmdline.is_some());
        // Thresholds may have changed: re-arm and look at everything on the next round.
        self.system.events = None;
        for cg in &mut self.cgroups {
            cg.armed_for = None;
            cg.next_look = None;
            // A full sample: the limits on its path are read again too.
            cg.last_full = None;
        }
    }

    /// Lets kernel events wake the loop: from the next round on, every watched cgroup gets its
    /// sources armed (v1 usage thresholds at its term and kill levels and the OOM notification;
    /// v2 `memory.events` and a `memory.pressure` trigger), the system scope a PSI trigger, and
    /// the cgroup tree below the globs an inotify watch.
    pub fn attach_events(&mut self, events: Events) {
        self.events = Some(events);
    }

    /// Records the cgroup v2 tripwires in `state` (so that the next start can take off what a
    /// crash left), after taking off what the last run left there.
    pub fn record_tripwires(&mut self, state: std::path::PathBuf, log: &mut Logger) {
        crate::act::tripwire::restore_left(&state, &self.host, log);
        self.wires.record_in(state);
    }

    /// The daemon stops: every tripwire is taken off (`memory.high` back to `max`).
    pub fn stop(&mut self, log: &mut Logger) {
        self.wires.lift_all(log);
    }

    /// Whether decisions are only reported.
    pub fn dry_run(&self) -> bool {
        self.killer.dry_run
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
            .map(|c| c.level)
    }

    /// Runs one round as of `now` (a test can drive the clock); returns the sleep before the next.
    pub fn round_at(&mut self, log: &mut Logger, wake: Wake, now: Instant) -> Duration {
        let began = Instant::now();
        let sleep = self.round_steps(log, wake, now);
        if let Some(m) = &self.reporting.metrics {
            m.wakeup(wake.as_str());
            m.round_seconds(began.elapsed().as_secs_f64());
        }
        sleep
    }

    fn round_steps(&mut self, log: &mut Logger, wake: Wake, now: Instant) -> Duration {
        self.round += 1;
        self.refresh(log, wake, now);
        self.report_wake(log, wake);
        // The victims first, the memory after: a victim seen gone must be gone from the sample
        // too. Sampled first, a victim exiting in between left a domain at its level with
        // nobody in flight, and a second victim was chosen on memory already given back.
        self.follow_victims();
        self.sample_system(log, now);
        self.sample_cgroups(log, wake, now);
        self.group_domains();
        let wake_in = self.handle_domains(log, wake, now);
        self.domains.retain(Domain::worth_keeping);
        self.drain_reports(log);
        self.write_status(now, log);
        self.sleep(now, wake_in)
    }

    /// Step 1: what is watched. Globs re-resolved when the tree watch says something changed
    /// (or periodically without one), the tree watch and the system's PSI trigger armed.
    fn refresh(&mut self, log: &mut Logger, wake: Wake, now: Instant) {
        self.arm_system(log);
        // Pod names for processes of pods kubelet's directories did not name yet.
        self.host.pods.refresh(&self.host.root, now);
        if self.config.cgroups.is_empty() {
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
            self.resolve(log, now);
            self.last_resolve = Some(now);
            self.arm_tree(log);
        }
        self.arm_written(log);
    }

    /// Step 2: says what woke the round when that is news (a PSI trigger), and marks a cgroup
    /// whose own source fired as due.
    fn report_wake(&mut self, log: &mut Logger, wake: Wake) {
        let Wake::Event(source, id) = wake else {
            return;
        };
        if matches!(source, Source::SystemPsi | Source::CgroupPsi) {
            self.report_pressure(log, source, id);
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

    /// /proc/meminfo, read at most once a round and only when something needs it.
    fn meminfo(&mut self, log: &mut Logger) -> Option<MemInfo> {
        if self.system.mem_round == self.round {
            return self.system.mem;
        }
        self.system.mem_round = self.round;
        match MemInfo::read_kept(&mut self.system.files.meminfo) {
            Ok(m) => self.system.mem = Some(m),
            Err(e) => log.log(
                Severity::Error,
                &Line::new("cannot read meminfo").kv("error", e),
            ),
        }
        self.system.mem
    }

    /// The machine's kernel OOM kill count, read at most once a round.
    fn machine_oom_kills(&mut self) -> Option<u64> {
        if self.system.oom_kills_round != self.round {
            self.system.oom_kills_round = self.round;
            self.system.oom_kills = self.system.files.oom_kills();
        }
        self.system.oom_kills
    }

    /// Step 4a: the system scope, when enabled.
    fn sample_system(&mut self, log: &mut Logger, now: Instant) {
        if !self.config.system.enabled {
            return;
        }
        let t_secs = now.duration_since(self.started).as_secs_f64();
        match sample_system(&mut self.system.files, &self.config) {
            Ok((mem, sample, thresholds)) => {
                self.system.mem = Some(mem);
                self.system.mem_round = self.round;
                if !self.table_filled {
                    self.table_filled = true;
                    let t = mem.total_pages(self.host.page_size);
                    let totals = Totals {
                        scope: t,
                        system: t,
                    };
                    let _ = self.table.pass(
                        &self.host,
                        &self.policy,
                        totals,
                        CHEAP_FINALISTS,
                        self.needs_cmdline,
                    );
                }
                self.system
                    .fill
                    .update(mem.mem_total.saturating_sub(mem.mem_available), t_secs);
                let eta = self.system.fill.eta(mem.mem_available);
                let early = self.early_triggers_count(&mem, now);
                let sample = crate::trigger::SystemSample {
                    psi_full_avg10: sample.psi_full_avg10.filter(|_| early.psi_avg10),
                    ..sample
                };
                let trend = self.system.fill.eta_trend(mem.mem_available);
                let level = with_exhaustion(
                    system_level(&sample, &thresholds, self.system.level),
                    trend.filter(|_| early.below),
                    self.config.system.exhaustion_term,
                );
                let terms = self.stall_terms(&mem);
                let stall = self.system_stall(&terms, &mem, now);
                let need = thresholds.need(&sample, level);
                let (level, need) = match stall {
                    Some(_) => (
                        level.max(Level::Term),
                        need.max(crate::decide::stall::need(&terms, mem.mem_available)),
                    ),
                    None => (level, need),
                };
                self.system.level = level;
                self.system.eta = eta;
                self.system.stall = stall;
                self.system.warned =
                    system_warned(&self.config, &mem, &sample, &thresholds, self.system.warned);
                // The system keeps earlyoom's rule: MemAvailable alone decides.
                self.system.member = Member::moving(level, need);
            }
            Err(e) => log.log(
                Severity::Error,
                &Line::new("cannot read meminfo").kv("error", e),
            ),
        }
    }

    /// The system's stall terms, the bound on MemAvailable resolved against MemTotal (0: none).
    fn stall_terms(&self, mem: &MemInfo) -> StallTerms {
        let c = &self.config.system;
        StallTerms {
            window: c.stall_window,
            psi_some: c.psi_some_term,
            psi_full: c.psi_full_term,
            refault_rate: c.refault_rate_term,
            major_fault_rate: u64::from(c.major_fault_rate_term),
            below_available: self
                .config
                .system
                .early_available_below
                .map_or(0, |b| b.bytes_of(mem.mem_total)),
        }
    }

    /// Which early triggers may count now: MemAvailable at or below `early_available_below`
    /// (the stall terms judge that themselves), and for PSI avg10 besides, not within its ten
    /// seconds after a system victim exited: avg10 decays over 10 s and would otherwise choose
    /// victim after victim on a stall that ended with the first.
    fn early_triggers_count(&self, mem: &MemInfo, now: Instant) -> EarlyTriggers {
        let below = self
            .config
            .system
            .early_available_below
            .is_none_or(|b| mem.mem_available <= b.bytes_of(mem.mem_total));
        let quiet = self.system.psi_quiet_until.is_some_and(|t| now < t);
        EarlyTriggers {
            below,
            psi_avg10: below && !quiet,
        }
    }

    /// With stall terms on, the system is sampled often enough to measure its window: every
    /// eighth of it at or below the bound on MemAvailable, and before the bound could be
    /// reached at the worst-case fill rate above it.
    fn stall_sleep(&self, m: &MemInfo) -> Duration {
        let d = &self.config.daemon;
        let terms = self.stall_terms(m);
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

    /// Whether the machine thrashes: the stall counters read (only when a term is on) and
    /// judged over the window.
    fn system_stall(&mut self, terms: &StallTerms, mem: &MemInfo, now: Instant) -> Option<Stall> {
        if !terms.any() {
            return None;
        }
        let page = self.host.page_size;
        let counters = self.system.files.stall_counters(terms.needs(), page);
        let w = &mut self.system.stall_window;
        w.push(now, counters, terms.window);
        judge(&w.rates(terms.window)?, terms, mem.mem_available)
    }

    /// Step 4b: every watched cgroup that is due (or whose domain is in an episode).
    fn sample_cgroups(&mut self, log: &mut Logger, wake: Wake, now: Instant) {
        let busy: Vec<ScopeId> = self
            .domains
            .iter()
            .filter(|d| d.busy() || !d.exited.is_empty())
            .flat_map(|d| d.members.iter().copied())
            .collect();
        let mut removed = Vec::new();
        for i in 0..self.cgroups.len() {
            self.cgroups[i].fresh = false;
            let in_episode = busy.contains(&ScopeId::Cgroup(self.cgroups[i].id));
            if in_episode {
                self.cgroups[i].warm_until = Some(now + scopes::WARM);
            }
            if (in_episode || self.cgroups[i].due(now))
                && self.look_at(i, in_episode, wake, now, log) == Look::Gone
            {
                removed.push(i);
            }
        }
        if !removed.is_empty() || self.members_changed || self.cgroups.iter().any(|c| c.fresh) {
            self.cgroups_moved();
        }
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
    }

    /// One cgroup's look: the cheap floor when it is calm and nothing says otherwise, else a
    /// full sample and its level; its event sources; when it is due again.
    fn look_at(
        &mut self,
        i: usize,
        in_episode: bool,
        wake: Wake,
        now: Instant,
        log: &mut Logger,
    ) -> Look {
        let cfg = &self.config.cgroups[self.cgroups[i].config_index];
        let limits_watched =
            !self.written_dirty && self.written.as_ref().is_some_and(|w| w.has("written"));
        // Woken by its own event, or in an episode: a full sample.
        let own_event = matches!(wake, Wake::Event(_, id)
            if self.cgroups[i].events.as_ref().is_some_and(|e| e.contains_id(id)));
        let calm = if in_episode || own_event {
            None
        } else {
            scopes::cheap_look(&self.host, &mut self.cgroups[i], cfg, limits_watched, now)
        };
        let look = match calm {
            Some(h) => Look::Calm(h),
            None => {
                let (system_t, swap) = self.machine_totals(log);
                let first = self.cgroups[i].last_full.is_none();
                let look =
                    scopes::sample(&self.host, &mut self.cgroups[i], system_t, swap, now, log);
                // Its path is known from now on: watched for limits written from next round.
                self.written_dirty |= first && look == Look::Sampled;
                look
            }
        };
        let cfg = &self.config.cgroups[self.cgroups[i].config_index];
        let cg = &mut self.cgroups[i];
        match look {
            Look::Gone => return look,
            Look::Unreadable => {
                cg.next_look = Some(now + RESOLVE_EVERY);
                return look;
            }
            Look::Sampled => {
                let t_secs = now.duration_since(self.started).as_secs_f64();
                scopes::assess_cgroup(cg, cfg, t_secs, log);
                if let Some(m) = &self.reporting.metrics {
                    scope_metrics(m, cg, cfg);
                }
            }
            Look::Calm(_) => {}
        }
        if cg.fresh {
            let enabled =
                self.config.daemon.events && self.events.is_some() && !self.killer.dry_run;
            scopes::place_tripwires(&mut self.wires, &self.host, cg, cfg, enabled, log);
        }
        if !self.config.daemon.events {
            scopes::disarm_cgroup(cg);
        } else if let Some(events) = &self.events
            && cg.fresh
            && scopes::arm_cgroup(events, &self.host, cg, cfg, log)
        {
            // Out of descriptors: the process table gives some back.
            self.table.give_back_fds();
        }
        if cg.fresh {
            cg.announced = scopes::climb_announced(cg, cfg);
        }
        let calm = match look {
            Look::Calm(h) => Some(h),
            _ => None,
        };
        // Not armed over its path yet when this was its first sample.
        let limits_watched = limits_watched && !self.written_dirty;
        cg.next_look = Some(scopes::next_look(
            cg,
            cfg,
            calm,
            limits_watched,
            &self.config.daemon,
            now,
        ));
        scopes::quiet_events(cg, in_episode, now);
        look
    }

    /// The machine's T and swap for a cgroup's sample (/proc/meminfo read once a round, and
    /// only when a full sample needs it).
    pub(super) fn machine_totals(&mut self, log: &mut Logger) -> (u64, SwapSpace) {
        match self.meminfo(log) {
            Some(m) => (
                m.total_pages(self.host.page_size),
                SwapSpace {
                    total: m.swap_total,
                    free: m.swap_free,
                },
            ),
            None => (u64::MAX, SwapSpace::default()),
        }
    }

    /// The final step: sleep until the first thing is due (a cgroup's look, the system's
    /// worst-case fill, a domain's victims or wait, a re-resolution).
    fn sleep(&self, now: Instant, wake_in: Option<Duration>) -> Duration {
        let d = &self.config.daemon;
        let mut sleep = d.max_interval;
        if self.config.system.enabled
            && let Some(m) = self.system.mem
        {
            let s = &self.config.system;
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
            sleep = sleep.min(self.stall_sleep(&m));
        }
        for cg in &self.cgroups {
            let at = cg.next_look.unwrap_or(now);
            sleep = sleep.min(at.saturating_duration_since(now));
        }
        if let Some(w) = wake_in {
            sleep = sleep.min(w);
        }
        if !self.config.cgroups.is_empty() {
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

    fn resolve(&mut self, log: &mut Logger, now: Instant) {
        let found = resolve_cgroups(&self.config, &self.host);
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
        if let Some(m) = &self.reporting.metrics {
            let system = self.config.system.enabled;
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
    fn arm_tree(&mut self, log: &mut Logger) {
        let (Some(events), Some(hier)) = (&self.events, &self.host.memory) else {
            return;
        };
        if !self.config.daemon.events {
            self.tree = None;
            return;
        }
        let mut dirs: Vec<std::path::PathBuf> = Vec::new();
        for c in &self.config.cgroups {
            let start = crate::watch::literal_prefix(&c.path.text);
            // The nearest existing ancestor too: the prefix itself may not exist yet (a
            // Kubernetes node before its first pod), and its making must wake the loop.
            let mut anchor = crate::probe::cgroup::parent(&start).unwrap_or("/");
            while anchor != "/"
                && !hier
                    .dir(&self.host.root, anchor)
                    .is_some_and(|d| d.is_dir())
            {
                anchor = crate::probe::cgroup::parent(anchor).unwrap_or("/");
            }
            let anchor = anchor.to_string();
            for p in std::iter::once(anchor).chain(hier.walk(&self.host.root, &start)) {
                if let Some(d) = hier.dir(&self.host.root, &p)
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
        let (set, out_of_fds) = scopes::arm_one(
            events,
            "tree",
            &spec,
            false,
            "cgroup_tree",
            &mut self.tree_reported,
            log,
        );
        if out_of_fds {
            self.table.give_back_fds();
        }
        self.tree_for = set.is_some().then_some(fingerprint);
        self.tree = set;
    }

    /// Arms one inotify watch over every directory on the paths of the watched v2 cgroups
    /// sampled so far, for a limit or a `memory.high` written there (the kernel sends no other
    /// notice of either): with it, a cgroup whose climb a tripwire announces needs no look at
    /// `max_interval` to see its limit changed. Re-armed when the set of cgroups changed.
    fn arm_written(&mut self, log: &mut Logger) {
        let (Some(events), Some(hier)) = (&self.events, &self.host.memory) else {
            return;
        };
        if !self.config.daemon.events || hier.version != crate::probe::cgroup::CgroupVersion::V2 {
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
                if let Some(d) = hier.dir(&self.host.root, path)
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
        let (set, out_of_fds) = scopes::arm_one(
            events,
            "written",
            &spec,
            false,
            "cgroup_written",
            &mut self.written_reported,
            log,
        );
        if out_of_fds {
            self.table.give_back_fds();
        }
        // Not armed for a passing reason: tried again next round.
        self.written_dirty = set.is_none();
        self.written = set;
    }

    /// Arms the system scope's PSI trigger once (and disarms it when the scope is disabled).
    fn arm_system(&mut self, log: &mut Logger) {
        let Some(events) = &self.events else {
            return;
        };
        if !self.config.system.enabled || !self.config.daemon.events {
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
        let spec = scopes::psi_spec(self.host.path("/proc/pressure/memory"));
        let (set, out_of_fds) = scopes::arm_one(
            events,
            "psi",
            &spec,
            true,
            "system",
            &mut self.system.unavailable_reported,
            log,
        );
        if out_of_fds {
            self.table.give_back_fds();
        }
        self.system.events = set;
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
        log.log(Severity::Info, &line);
    }

    /// The scope a domain member is, for logs.
    fn scope_name(&self, id: ScopeId) -> &str {
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

/// The system's warn band: the term rule (memory and swap as `require` says) with
/// `mem_available_warn` in place of `mem_available_term`, and a margin of half the gap down to
/// term on the way back up.
fn system_warned(
    config: &Config,
    mem: &MemInfo,
    sample: &crate::trigger::SystemSample,
    thresholds: &crate::trigger::SystemThresholds,
    warned: bool,
) -> bool {
    let Some(w) = config.system.mem_available_warn else {
        return false;
    };
    let band = crate::trigger::SystemThresholds {
        mem: crate::trigger::Thresholds {
            term: w.bytes_of(mem.mem_total),
            kill: thresholds.mem.term,
        },
        psi_full_avg10_term: 0.0,
        ..*thresholds
    };
    let prev = if warned { Level::Term } else { Level::Ok };
    system_level(sample, &band, prev) >= Level::Term
}

/// A cgroup's figures after a full sample, as the metrics give them (none while its available
/// memory or its limit is unknown).
fn scope_metrics(m: &crate::report::metrics::Metrics, cg: &CgroupScope, cfg: &WatchedCgroup) {
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

fn min_opt(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_rate_counts_the_last_minute_exactly_and_warns_once_a_minute() {
        let mut r = KillRate::default();
        for _ in 0..100 {
            r.note(5);
        }
        assert_eq!(r.note(30), 101);
        // A minute after second 5, those hundred are out of the window.
        assert_eq!(r.note(65), 2);
        assert!(r.may_warn(65));
        assert!(!r.may_warn(100));
        assert!(r.may_warn(125));
    }
}
