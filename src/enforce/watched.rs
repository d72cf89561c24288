//! What is watched, as one part of the enforcer: the system scope and the watched cgroups,
//! the inotify watches that find new cgroups and written limits, the tripwires, and the rule
//! for when each is looked at next. Each cgroup's own look, assessment and arming are in
//! `scopes`.

use std::time::{Duration, Instant};

use crate::act::tripwire::Tripwires;
use crate::config::{Config, WatchedCgroup};
use crate::decide::domain::{Member, ScopeId};
use crate::decide::stall::{Stall, StallTerms, StallWindow};
use crate::decide::trigger::{FillRate, Level, next_sleep};
use crate::events::{ArmError, ArmedSet, Events, Source, Spec};
use crate::probe::Host;
use crate::probe::meminfo::MemInfo;
use crate::probe::table::ProcessTable;
use crate::report::metrics::Metrics;
use crate::report::{Line, Logger, Severity};
use crate::watch::{SwapSpace, SystemFiles, resolve_cgroups};

use super::moment::Wake;
use super::scopes::{
    CgroupScope, Look, WARM, arm_cgroup, armed_line, assess_cgroup, cheap_look, climb_announced,
    disarm_cgroup, next_look, place_tripwires, psi_spec, quiet_events, sample, unavailable_line,
};

/// How often globs are re-resolved against the live hierarchy when no inotify watch tells of
/// new cgroups (and so the longest sleep while any `[[cgroup]]` is configured then).
pub(super) const RESOLVE_EVERY: Duration = Duration::from_millis(200);
/// With the inotify watch armed, a full re-resolution this often all the same (a lost event).
const RESOLVE_SAFETY: Duration = Duration::from_secs(60);

/// The system scope's state across rounds.
pub(super) struct SystemScope {
    pub files: SystemFiles,
    pub fill: FillRate,
    pub events: Option<ArmedSet>,
    pub unavailable_reported: bool,
    /// /proc/meminfo as last read, and the round it was read in.
    pub mem: Option<MemInfo>,
    pub mem_round: u64,
    /// What this round makes of it (when enabled): its level among others.
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

impl Env<'_> {
    /// Arms one source for the system or the watched tree, reporting the outcome once; the set,
    /// or `None` to try again next round. When descriptors ran out, the process table gives
    /// some back.
    fn arm_one(
        &mut self,
        key: &str,
        spec: &Spec,
        system: bool,
        scope: &str,
        reported: &mut bool,
        log: &mut Logger,
    ) -> Option<ArmedSet> {
        let mut set = ArmedSet::new(self.events?.clone());
        let armed = set.arm(key, spec, system);
        let source = spec.source(system);
        // Failed for a passing reason (out of descriptors): try again next round.
        let retry = armed.as_ref().is_err_and(|e| !e.is_permanent());
        let out_of_fds = armed.as_ref().is_err_and(ArmError::is_out_of_fds);
        match armed {
            Ok(false) => {}
            Ok(true) => log.log(Severity::Info, &armed_line(scope, source.as_str())),
            Err(e) if !*reported => {
                *reported = true;
                log.log(Severity::Warning, &unavailable_line(scope, source, e));
            }
            Err(_) => {}
        }
        if out_of_fds {
            self.table.give_back_fds();
        }
        (!retry).then_some(set)
    }
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
        let every = self.resolve_every();
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
            unwatch(&mut self.wires, &cg, log);
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
            let headroom = th.headroom_from(self.system.member.level, m.mem_available);
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
            let next = self.last_resolve.map_or(now, |t| t + self.resolve_every());
            sleep = sleep.min(next.saturating_duration_since(now));
        }
        sleep.clamp(d.min_interval, d.max_interval)
    }

    /// How often the globs are re-resolved: seldom while the tree watch tells of changes.
    fn resolve_every(&self) -> Duration {
        if self.tree.is_some() {
            RESOLVE_SAFETY
        } else {
            RESOLVE_EVERY
        }
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
                unwatch(wires, c, log);
            }
            keep
        });
    }

    /// Arms an inotify watch on every directory below the globs' literal prefixes (and the
    /// nearest existing ancestor of each), so that a cgroup made or removed there wakes the loop
    /// at once instead of a re-resolution every 200 ms. Re-armed when the set of directories
    /// changed.
    fn arm_tree(&mut self, env: &mut Env<'_>, log: &mut Logger) {
        let (Some(_), Some(hier)) = (env.events, &env.host.memory) else {
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
                add_dir(&mut dirs, hier.dir(&env.host.root, &p));
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
        let set = env.arm_one(
            "tree",
            &spec,
            false,
            "cgroup_tree",
            &mut self.tree_reported,
            log,
        );
        self.tree_for = set.is_some().then_some(fingerprint);
        self.tree = set;
    }

    /// Arms one inotify watch over every directory on the paths of the watched v2 cgroups
    /// sampled so far, for a limit or a `memory.high` written there (the kernel sends no other
    /// notice of either): with it, a cgroup whose climb a tripwire announces needs no look at
    /// `max_interval` to see its limit changed. Re-armed when the set of cgroups changed.
    fn arm_written(&mut self, env: &mut Env<'_>, log: &mut Logger) {
        let (Some(_), Some(hier)) = (env.events, &env.host.memory) else {
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
                add_dir(&mut dirs, hier.dir(&env.host.root, path));
            }
        }
        if dirs.is_empty() {
            self.written = None;
            return;
        }
        // The new watch first, then the old one goes (dropped with its set): no gap.
        let spec = Spec::Written { dirs };
        let set = env.arm_one(
            "written",
            &spec,
            false,
            "cgroup_written",
            &mut self.written_reported,
            log,
        );
        // Not armed for a passing reason: tried again next round.
        self.written_dirty = set.is_none();
        self.written = set;
    }

    /// Arms the system scope's PSI trigger once (and disarms it when the scope is disabled).
    pub fn arm_system(&mut self, env: &mut Env<'_>, log: &mut Logger) {
        if env.events.is_none() {
            return;
        }
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
        let set = env.arm_one(
            "psi",
            &spec,
            true,
            "system",
            &mut self.system.unavailable_reported,
            log,
        );
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

/// A cgroup no longer watched: the tripwires set in it taken off, and said.
fn unwatch(wires: &mut Tripwires, cg: &CgroupScope, log: &mut Logger) {
    wires.release(cg.id, log);
    log.log(
        Severity::Info,
        &Line::new("stopped watching a removed cgroup")
            .kv("event", "scope_removed")
            .kv("scope", &cg.path),
    );
}

/// Adds a directory to a watch's list, once.
fn add_dir(dirs: &mut Vec<std::path::PathBuf>, dir: Option<std::path::PathBuf>) {
    if let Some(d) = dir
        && !dirs.contains(&d)
    {
        dirs.push(d);
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
            level: level_number(cg.member.level, cg.warned),
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
