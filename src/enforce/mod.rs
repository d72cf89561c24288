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
mod plan;
mod report;
mod scopes;
mod watched;

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::decide::domain::Member;
use crate::decide::limits::Limits;
use crate::decide::stall::{Stall, StallTerms, judge};
use crate::decide::trigger::{Level, system_level, with_exhaustion};
use crate::events::Events;
use crate::policy::Policy;
use crate::probe::Host;
use crate::probe::meminfo::MemInfo;
use crate::probe::table::ProcessTable;
use crate::rank::Totals;
use crate::report::{Line, Logger, Severity};
use crate::watch::sample_system;

use act::{Act, CHEAP_FINALISTS};
use domains::Domains;
use killer::Killer;
use report::{Reporting, StatusSources};
use watched::{Env, Watched};

pub use moment::Wake;

/// Descriptors kept free for everything else when sizing the process table: at least this
/// many, and at least an eighth of the limit.
const FD_RESERVE: u64 = 256;

/// The process table's descriptor budget: the soft RLIMIT_NOFILE less the reserve.
fn fd_budget() -> usize {
    let limit = crate::sys::nofile_limit();
    let reserve = FD_RESERVE.max(limit / 8);
    usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX)
}

/// The policy `config` asks for on `host`, oomward itself being `self_pid` running `self_exe`.
fn policy_for(config: &Config, host: &Host, self_pid: i32, self_exe: Option<String>) -> Policy {
    let mut policy = config.policy(self_pid, self_exe);
    policy.first_user_uid = host.first_user_uid;
    policy
}

/// Whether any rule matches on cmdline (see [`Enforcer::needs_cmdline`]).
fn needs_cmdline(policy: &Policy) -> bool {
    policy.rules.iter().any(|r| r.cmdline.is_some())
}

/// See [`Enforcer::early_triggers_count`].
#[derive(Debug, Clone, Copy)]
struct EarlyTriggers {
    /// MemAvailable is at or below `early_available_below` (or there is none).
    below: bool,
    /// ... and PSI avg10 may count.
    psi_avg10: bool,
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
    /// The system scope and the watched cgroups, with the watches and tripwires on them.
    watched: Watched,
    /// The OOM domains, their victims, and what their kills taught.
    domains: Domains,
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
    /// Kill records, hooks, the kill journal, the status file, the metrics and the count of
    /// victims.
    reporting: Reporting,
}

impl Enforcer {
    /// What the service manager's status line says: compared every round (cheap, no
    /// allocation), formatted only when it changed.
    pub fn status(&self) -> Status {
        Status {
            system: self.config.system.enabled,
            cgroups: self.watched.cgroups.len(),
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
        let policy = policy_for(&config, &host, self_pid, self_exe);
        let dry_run = dry_run || config.daemon.dry_run;
        let watched = Watched::new(&host);
        let limits = config.kill.limits();
        let needs_cmdline = needs_cmdline(&policy);
        Enforcer {
            config,
            host,
            policy,
            killer: Killer::new(dry_run),
            limits,
            watched,
            domains: Domains::default(),
            started: Instant::now(),
            round: 0,
            self_pid,
            needs_cmdline,
            config_error: None,
            events: None,
            table: ProcessTable::new(fd_budget()),
            table_filled: false,
            reporting: Reporting {
                started_unix: crate::report::kill::unix_now(),
                ..Default::default()
            },
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
        self.policy = policy_for(&config, &self.host, self.self_pid, self_exe);
        self.killer.dry_run = force_dry_run || config.daemon.dry_run;
        self.limits = config.kill.limits();
        self.config = config;
        self.needs_cmdline = needs_cmdline(&self.policy);
        // Thresholds may have changed: re-arm and look at everything on the next round.
        self.watched.reconfigured();
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
        self.watched.wires.record_in(state);
    }

    /// The daemon stops: every tripwire is taken off (`memory.high` back to `max`).
    pub fn stop(&mut self, log: &mut Logger) {
        self.watched.wires.lift_all(log);
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
        self.watched.system.member.level
    }

    /// A watched cgroup's current level; `None` if it is not watched (for tests and reports).
    pub fn cgroup_level(&self, path: &str) -> Option<Level> {
        self.watched
            .cgroups
            .iter()
            .find(|c| c.path == path)
            .map(|c| c.member.level)
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
        // Step 2: says what woke the round when that is news (a PSI trigger), and marks a
        // cgroup whose own source fired as due.
        self.watched.report_wake(&self.host, log, wake);
        // Step 3: what the victims in flight did since the last round. The victims first, the
        // memory after: a victim seen gone must be gone from the sample too. Sampled first, a
        // victim exiting in between left a domain at its level with nobody in flight, and a
        // second victim was chosen on memory already given back.
        if self.domains.follow_victims(&mut self.killer, &self.host) {
            self.watched.system.victim_exited();
        }
        self.sample_system(log, now);
        self.sample_cgroups(log, wake, now);
        self.domains
            .group(&mut self.watched, self.config.system.enabled);
        // Step 6: every domain handled in turn; the soonest that one wants its next sample.
        let wake_in = self.act().handle_domains(log, wake, now);
        self.domains.forget_idle();
        self.reporting.drain_reports(&self.config, log);
        self.write_status(now, log);
        // The final step: sleep until the first thing is due.
        self.watched.sleep(&self.config, now, wake_in)
    }

    /// Step 1: what is watched. Globs re-resolved when the tree watch says something changed
    /// (or periodically without one), the tree watch and the system's PSI trigger armed.
    fn refresh(&mut self, log: &mut Logger, wake: Wake, now: Instant) {
        let (watched, mut env) = self.watched_env();
        watched.arm_system(&mut env, log);
        // Pod names for processes of pods kubelet's directories did not name yet.
        env.host.pods.refresh(&env.host.root, now);
        watched.refresh_cgroups(&mut env, wake, now, log);
    }

    /// Rewrites the status file when what it says changed (see [`Reporting::write_status`]).
    fn write_status(&mut self, now: Instant, log: &mut Logger) {
        let sources = StatusSources {
            config: &self.config,
            watched: &self.watched,
            domains: &self.domains.list,
            dry_run: self.killer.dry_run,
            config_error: &self.config_error,
        };
        self.reporting.write_status(&sources, now, log);
    }

    /// The parts a domain is handled with, borrowed apart.
    fn act(&mut self) -> Act<'_> {
        Act {
            config: &self.config,
            limits: &self.limits,
            host: &self.host,
            policy: &self.policy,
            killer: &mut self.killer,
            reporting: &mut self.reporting,
            watched: &mut self.watched,
            domains: &mut self.domains,
            table: &mut self.table,
            self_pid: self.self_pid,
            needs_cmdline: self.needs_cmdline,
            started: self.started,
            round: self.round,
        }
    }

    /// The watched scopes and what they are looked at with, borrowed apart.
    fn watched_env(&mut self) -> (&mut Watched, Env<'_>) {
        let env = Env {
            config: &self.config,
            host: &self.host,
            events: self.events.as_ref(),
            metrics: self.reporting.metrics.as_deref(),
            table: &mut self.table,
            dry_run: self.killer.dry_run,
            started: self.started,
            round: self.round,
        };
        (&mut self.watched, env)
    }

    /// Step 4a: the system scope, when enabled.
    fn sample_system(&mut self, log: &mut Logger, now: Instant) {
        if !self.config.system.enabled {
            return;
        }
        let t_secs = now.duration_since(self.started).as_secs_f64();
        match sample_system(&mut self.watched.system.files, &self.config) {
            Ok((mem, sample, thresholds)) => {
                self.watched.system.mem = Some(mem);
                self.watched.system.mem_round = self.round;
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
                self.watched
                    .system
                    .fill
                    .update(mem.mem_total.saturating_sub(mem.mem_available), t_secs);
                let eta = self.watched.system.fill.eta(mem.mem_available);
                let early = self.early_triggers_count(&mem, now);
                let sample = crate::trigger::SystemSample {
                    psi_full_avg10: sample.psi_full_avg10.filter(|_| early.psi_avg10),
                    ..sample
                };
                let trend = self.watched.system.fill.eta_trend(mem.mem_available);
                let level = with_exhaustion(
                    system_level(&sample, &thresholds, self.watched.system.member.level),
                    trend.filter(|_| early.below),
                    self.config.system.exhaustion_term,
                );
                let terms = watched::stall_terms(&self.config, &mem);
                let stall = self.system_stall(&terms, &mem, now);
                let need = thresholds.need(&sample, level);
                let (level, need) = match stall {
                    Some(_) => (
                        level.max(Level::Term),
                        need.max(crate::decide::stall::need(&terms, mem.mem_available)),
                    ),
                    None => (level, need),
                };
                self.watched.system.eta = eta;
                self.watched.system.stall = stall;
                self.watched.system.warned = system_warned(
                    &self.config,
                    &mem,
                    &sample,
                    &thresholds,
                    self.watched.system.warned,
                );
                // The system keeps earlyoom's rule: MemAvailable alone decides.
                self.watched.system.member = Member::moving(level, need);
            }
            Err(e) => log.log(
                Severity::Error,
                &Line::new("cannot read meminfo").kv("error", e),
            ),
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
        let quiet = self.watched.system.psi_quiet_until.is_some_and(|t| now < t);
        EarlyTriggers {
            below,
            psi_avg10: below && !quiet,
        }
    }

    /// Whether the machine thrashes: the stall counters read (only when a term is on) and
    /// judged over the window.
    fn system_stall(&mut self, terms: &StallTerms, mem: &MemInfo, now: Instant) -> Option<Stall> {
        if !terms.any() {
            return None;
        }
        let page = self.host.page_size;
        let counters = self
            .watched
            .system
            .files
            .stall_counters(terms.needs(), page);
        let w = &mut self.watched.system.stall_window;
        w.push(now, counters, terms.window);
        judge(&w.rates(terms.window)?, terms, mem.mem_available)
    }

    /// Step 4b: every watched cgroup that is due (or whose domain is in an episode).
    fn sample_cgroups(&mut self, log: &mut Logger, wake: Wake, now: Instant) {
        let busy = self.domains.busy_members();
        let (watched, mut env) = self.watched_env();
        if watched.sample_cgroups(&mut env, &busy, wake, now, log) {
            self.reporting.cgroups_moved();
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
