//! The OOM domains of a round: which watched scopes share a binding limit, what the domain as
//! a whole looks like (the episode's observation), the victims in flight, and the plan's
//! follow-up (exits, escalations, stuck victims, the kernel's kills, recovery).

use std::time::{Duration, Instant};

use crate::decide::domain::{DomainKey, ProcessKey, ScopeId, combine};
use crate::decide::episode::{Episode, Escalation, Observation, Plan};
use crate::decide::exits::ExitTimes;
use crate::decide::trigger::Level;
use crate::kill::InFlight;
use crate::probe::Host;
use crate::probe::cgroup::CgroupVersion;
use crate::report::kill::KillOutcome;
use crate::report::{Line, Logger, Severity};

use super::killer::Killer;
use super::moment::{Figures, Moment};
use super::scopes::Watched;
use super::{Enforcer, Wake};

/// How soon after a victim's exit its domain is sampled again, for what the exit gave back.
const AFTER_EXIT: Duration = Duration::from_millis(20);

/// One OOM domain's state across rounds.
pub(super) struct Domain {
    pub key: DomainKey,
    pub episode: Episode,
    /// The victims being made to exit, with their pidfds.
    pub in_flight: Vec<InFlight>,
    /// Its watched scopes this round.
    pub members: Vec<ScopeId>,
    /// A member was sampled in full this round.
    pub fresh: bool,
    /// The kernel's OOM kills in the domain, as last counted.
    pub kernel_kills: Option<u64>,
    /// The machine's count when the domain's (v1) count was last summed.
    pub vmstat_seen: Option<u64>,
    /// The records of its victims in flight, completed when they are gone.
    pub records: Vec<crate::report::kill::KillRecord>,
    /// A warning went out in this episode.
    pub warned: bool,
    /// Records of victims gone, waiting for the domain's next sample (what they left), and
    /// since when.
    pub exited: Vec<(crate::report::kill::KillRecord, Instant)>,
    /// What this episode's finished kills showed (see [`crate::decide::gain::barren`]).
    pub evidence: Evidence,
}

/// A kill of the episode whose victim's exit gave back (next to) nothing.
#[derive(Debug, Clone)]
pub(super) struct Fruitless {
    pub pid: i32,
    pub comm: String,
    /// What the domain gained by the exit, bytes.
    pub freed: i64,
    /// What the kill was expected to free, bytes.
    pub expected: u64,
    /// The domain's available memory at the first sample after the exit, bytes.
    pub available_at_exit: u64,
    /// When that sample was taken.
    pub at: Instant,
}

/// What the episode's finished kills showed about the domain.
#[derive(Debug, Clone, Default)]
pub(super) struct Evidence {
    /// A kill that gave back nothing, weighed by whether the domain goes on filling; the next
    /// kill for the same cause waits for the verdict.
    pub suspect: Option<Fruitless>,
    /// A kill that gave back nothing while the domain went on filling: no other is made for
    /// the same cause in this episode.
    pub barren: Option<Fruitless>,
}

impl Domain {
    fn new(key: DomainKey) -> Self {
        Domain {
            key,
            episode: Episode::default(),
            in_flight: Vec::new(),
            members: Vec::new(),
            fresh: false,
            kernel_kills: None,
            vmstat_seen: None,
            records: Vec::new(),
            warned: false,
            exited: Vec::new(),
            evidence: Evidence::default(),
        }
    }

    /// An episode is under way or a victim is in flight: every member is looked at each round.
    pub fn busy(&self) -> bool {
        self.episode.in_episode() || !self.in_flight.is_empty()
    }

    /// Kept while it has members or business (a record still to publish included).
    pub fn worth_keeping(&self) -> bool {
        self.busy() || !self.members.is_empty() || !self.exited.is_empty()
    }
}

/// Kills per second over the last minute, for the rate warning: exact to the second, no
/// allocation, never capped.
#[derive(Debug)]
pub(super) struct KillRate {
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

/// The OOM domains across rounds, and what their kills taught: how often they come, and how
/// long each executable's victims take to exit.
#[derive(Default)]
pub(super) struct Domains {
    pub list: Vec<Domain>,
    /// Kills per second over the last minute, for the rate warning.
    pub kill_rate: KillRate,
    /// How long victims of each executable took to exit after SIGTERM.
    pub exits: ExitTimes,
}

impl Domains {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Domain `i` taken out of the list to be handled (a placeholder without victims stands in
    /// for it meanwhile); see [`Domains::put_back`].
    pub fn take(&mut self, i: usize) -> Domain {
        std::mem::replace(&mut self.list[i], Domain::new(DomainKey::System))
    }

    /// Domain `i` back in its place once handled.
    pub fn put_back(&mut self, i: usize, d: Domain) {
        self.list[i] = d;
    }

    /// The members of the domains in an episode, with a victim in flight or a record still
    /// waiting for a sample: looked at every round.
    pub fn busy_members(&self) -> Vec<ScopeId> {
        self.list
            .iter()
            .filter(|d| d.busy() || !d.exited.is_empty())
            .flat_map(|d| d.members.iter().copied())
            .collect()
    }

    /// Drops the domains with neither members nor business.
    pub fn forget_idle(&mut self) {
        self.list.retain(Domain::worth_keeping);
    }

    /// Counts a kill at second `s` (since the enforcer started); the kills of the last minute
    /// when they are more than `warn_at` and no warning went out in the last minute.
    pub fn note_kill(&mut self, s: u64, warn_at: u32) -> Option<u32> {
        let recent = self.kill_rate.note(s);
        (recent > warn_at && self.kill_rate.may_warn(s)).then_some(recent)
    }

    /// Step 5: groups the watched scopes by the limit that binds them.
    pub fn group(&mut self, watched: &mut Watched, system_enabled: bool) {
        // A cgroup's domain changes only with a full sample of it (or its coming and going):
        // a round that sampled none keeps last round's members, which with a hundred calm
        // cgroups saves a search per cgroup every round.
        let regroup = watched.members_changed || watched.cgroups.iter().any(|c| c.fresh);
        for d in &mut self.list {
            if regroup || d.key == DomainKey::System {
                d.members.clear();
            }
            d.fresh = false;
        }
        if system_enabled && watched.system.mem.is_some() {
            let d = self.domain_mut(DomainKey::System);
            d.members.push(ScopeId::System);
            d.fresh = true;
        }
        if !regroup {
            return;
        }
        watched.members_changed = false;
        for c in 0..watched.cgroups.len() {
            let cg = &watched.cgroups[c];
            let Some(path) = cg.domain_path() else {
                continue;
            };
            let (id, fresh) = (ScopeId::Cgroup(cg.id), cg.fresh);
            // Found without allocating a key (the idle path allocates nothing).
            let i = match self
                .list
                .iter()
                .position(|d| matches!(&d.key, DomainKey::Memcg(p) if p == path))
            {
                Some(i) => i,
                None => {
                    self.list
                        .push(Domain::new(DomainKey::Memcg(path.to_string())));
                    self.list.len() - 1
                }
            };
            let d = &mut self.list[i];
            d.members.push(id);
            d.fresh |= fresh;
        }
    }

    pub fn domain_mut(&mut self, key: DomainKey) -> &mut Domain {
        let i = match self.list.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                self.list.push(Domain::new(key));
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }

    /// What the victims in flight did since the last round: exited, or had their memory
    /// released by `process_mrelease` (step 3). Whether a victim of the system domain exited.
    pub fn follow_victims(&mut self, killer: &mut Killer, host: &Host) -> bool {
        while let Some(pid) = killer.released() {
            for d in &mut self.list {
                for f in d.in_flight.iter_mut().filter(|f| f.victim.pid == pid) {
                    f.release_returned = true;
                }
            }
        }
        // Released once its memory shows it: at most half of what it held when chosen is
        // still resident (or it is gone). A forked child stopped instead of its parent only
        // by its exit (see `InFlight::instead_of`).
        for d in &mut self.list {
            let Domain {
                in_flight, episode, ..
            } = d;
            for f in in_flight
                .iter()
                .filter(|f| f.release_returned && f.instead_of.is_none())
            {
                let Some(v) = episode.victim_mut(ProcessKey::of(&f.victim)) else {
                    continue;
                };
                if !v.released {
                    v.released = crate::probe::process::resident_pages(host, f.victim.pid)
                        .is_none_or(|rss| rss.saturating_mul(2) <= f.victim.rss_pages);
                }
            }
        }
        let mut system_exit = false;
        for d in &mut self.list {
            let Domain {
                key,
                in_flight,
                episode,
                ..
            } = d;
            for f in in_flight.iter() {
                if f.has_exited()
                    && let Some(v) = episode.victim_mut(ProcessKey::of(&f.victim))
                {
                    v.exited = true;
                    system_exit |= *key == DomainKey::System;
                }
            }
        }
        system_exit
    }
}

impl Enforcer {
    /// Step 6: every domain handled in turn, each taken out of the list meanwhile (a placeholder
    /// without victims stands in for it); the soonest that one wants its next sample.
    pub(super) fn handle_domains(
        &mut self,
        log: &mut Logger,
        wake: Wake,
        now: Instant,
    ) -> Option<Duration> {
        let mut wake_in = None;
        for i in 0..self.domains.len() {
            let mut d = self.domains.take(i);
            let w = self.handle_domain(&mut d, log, wake, now);
            self.domains.put_back(i, d);
            wake_in = super::min_opt(wake_in, w);
        }
        wake_in
    }

    /// Step 6, per domain: assess its episode and carry out the plan. Returns when the domain
    /// wants its next sample.
    fn handle_domain(
        &mut self,
        d: &mut Domain,
        log: &mut Logger,
        wake: Wake,
        now: Instant,
    ) -> Option<Duration> {
        if !d.fresh && !d.busy() {
            if !d.exited.is_empty() {
                // No sample to give them: they go out without one after a while.
                let waiting = std::mem::take(&mut d.exited);
                d.exited = self.publish_gone(waiting, None, log);
                return Some(Duration::from_millis(200));
            }
            return None;
        }
        let (obs, fig) = self.observe(d);
        // Records of victims gone take this sample as what they left; published after this
        // round's decision, which must not wait for them.
        let after_sample = obs.available;
        let gone_before = std::mem::take(&mut d.exited);
        if obs.level == Level::Ok && d.fresh && self.warn_due(d) {
            let moment = Moment {
                obs: &obs,
                fig: &fig,
                wake,
                now,
            };
            self.warn_domain(d, &moment, log);
        }
        let plan = d.episode.assess(&obs, now, &self.limits);
        for &(key, after) in &plan.exited {
            self.victim_exited(d, key, after, log);
        }
        // This round's sample was taken after its exits were seen (the victims are followed
        // before the memory is sampled): what they gave back is known before the next choice.
        self.weigh_kills(d, after_sample, log);
        self.report_plan(d, &plan, &obs, log);
        for &key in &plan.stuck {
            self.victim_stuck(d, key, log);
        }
        for &(key, why) in &plan.escalate {
            self.escalate(d, key, why, obs.level, now, log);
        }
        if let Some(reason) = plan.choose {
            let moment = Moment {
                obs: &obs,
                fig: &fig,
                wake,
                now,
            };
            self.choose_and_act(d, reason, &moment, log);
        }
        // A victim signalled just now is followed from the next few milliseconds on; a choice
        // that came to nothing (its victim vanished) is made again at once.
        let episode = &d.episode;
        let retry = if plan.choose.is_none() || !episode.victims().is_empty() {
            None
        } else if !episode.standing_by() {
            Some(crate::decide::limits::RELEASE_POLL)
        } else if d.evidence.suspect.is_some() {
            // Waiting for the verdict on a kill that gave back nothing: the samples give it.
            Some(crate::decide::limits::BACKOFF_LOOK)
        } else {
            None
        };
        let victims = episode.victims_poll(now, &self.limits);
        self.publish_gone(gone_before, Some(after_sample), log);
        // A victim gone: the next sample, soon, says what it left (its record waits for it).
        let after = (!d.exited.is_empty()).then_some(AFTER_EXIT);
        super::min_opt(
            super::min_opt(plan.wake_in, victims),
            super::min_opt(retry, after),
        )
    }

    /// What the episode's finished kills showed: a victim whose exit gave back nothing worth
    /// the name (see [`crate::decide::gain::fruitless`]) is a suspect, weighed at each sample
    /// after; when the domain goes on filling, the kill was barren: said once, and no other
    /// kill is made for the same cause in this episode (see `choose_and_act`). Forgotten when
    /// the episode ends.
    fn weigh_kills(&mut self, d: &mut Domain, available: u64, log: &mut Logger) {
        use crate::decide::gain::{Weighed, fruitless, weigh};
        if !d.busy() {
            d.evidence = Evidence::default();
            return;
        }
        if let Some(s) = &d.evidence.suspect {
            match weigh(s.available_at_exit, available, s.at.elapsed()) {
                Weighed::Pending => {}
                Weighed::Cleared => d.evidence.suspect = None,
                Weighed::Barren => {
                    let s = d.evidence.suspect.take().expect("checked");
                    log.log(
                        Severity::Warning,
                        &Line::new(
                            "a kill freed nothing while the domain kept filling: no other for the same cause in this episode",
                        )
                        .kv("event", "barren")
                        .kv("domain", d.key.name())
                        .kv("pid", s.pid)
                        .kv("comm", &s.comm)
                        .kv("freed", s.freed)
                        .kv("expected", s.expected)
                        .kv("available_at_exit", s.available_at_exit)
                        .kv("available", available),
                    );
                    d.evidence.barren = Some(s);
                }
            }
        }
        if d.evidence.barren.is_some() || d.evidence.suspect.is_some() {
            return;
        }
        // The records of this round's exits, waiting to be published with the next sample.
        let now = Instant::now();
        d.evidence.suspect = d
            .exited
            .iter()
            .filter(|(r, _)| r.outcome == KillOutcome::Exited)
            .find_map(|(r, _)| {
                let freed = available as i64 - r.released.available_before as i64;
                fruitless(freed, r.expected_gain).then(|| Fruitless {
                    pid: r.victim.pid,
                    comm: r.victim.comm.clone(),
                    freed,
                    expected: r.expected_gain,
                    available_at_exit: available,
                    at: now,
                })
            });
    }

    /// The domain as its episode sees it: its members combined, the kernel's kills counted.
    fn observe(&mut self, d: &mut Domain) -> (Observation, Figures) {
        let system_t = self
            .watched
            .system
            .mem
            .map_or(1, |m| m.total_pages(self.host.page_size));
        if d.key == DomainKey::System {
            self.observe_system(d, system_t)
        } else {
            self.observe_memcg(d, system_t)
        }
    }

    /// The system domain: MemAvailable against MemTotal, the machine's kernel kills.
    fn observe_system(&mut self, d: &mut Domain, system_t: u64) -> (Observation, Figures) {
        let m = self.watched.system.mem.unwrap_or_default();
        let kills = self.watched.machine_oom_kills(self.round);
        if let Some(m) = &self.reporting.metrics {
            m.kernel_oom_kills_seen("system", d.kernel_kills, kills);
        }
        d.kernel_kills = kills;
        let obs = Observation {
            level: self.watched.system.member.level,
            rescue: false,
            available: m.mem_available,
            eta: self.watched.system.eta,
            kernel_kills: kills,
            stall: self.watched.system.stall,
            // The system keeps earlyoom's rule: MemAvailable alone decides.
            steady: crate::decide::trigger::Stillness::Moving,
            to_kill: u64::MAX,
        };
        let fig = Figures {
            limit: m.mem_total,
            totalpages: system_t,
            system_totalpages: system_t,
            need: self.watched.system.member.need,
            fill_rate: self.watched.system.fill.rate(),
            members_fill_rate: None,
            shmem: None,
        };
        (obs, fig)
    }

    /// A cgroup domain: its members combined (the tightest limit, the fastest fill, the
    /// nearest projection), the kernel's kills in it.
    fn observe_memcg(&mut self, d: &mut Domain, system_t: u64) -> (Observation, Figures) {
        let cgroups = &self.watched.cgroups;
        let members = || {
            d.members
                .iter()
                .filter_map(|id| cgroups.iter().find(|c| ScopeId::Cgroup(c.id) == *id))
        };
        let combined = combine(members().map(|c| c.member));
        let mut available = u64::MAX;
        let mut fig = Figures {
            system_totalpages: system_t,
            totalpages: u64::MAX,
            need: combined.need,
            ..Figures::default()
        };
        let mut eta: Option<Duration> = None;
        let mut v2_kills = None;
        for c in members() {
            let s = &c.sample;
            available = available.min(s.available.unwrap_or(u64::MAX));
            fig.limit = fig.limit.max(s.limit.unwrap_or(0));
            fig.totalpages = fig.totalpages.min(s.totalpages);
            fig.fill_rate = fig.fill_rate.max(c.fill.rate());
            fig.members_fill_rate = Some(fig.members_fill_rate.unwrap_or(0.0) + c.own_fill.rate());
            eta = match (eta, c.eta) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some((_, m)) = s.limit_index.and_then(|li| s.chain.get(li)) {
                fig.shmem = Some(m.shmem);
                v2_kills = Some(m.oom_kill);
            }
        }
        if available == u64::MAX {
            available = 0;
        }
        let level = combined.level;
        let rescue = combined.rescue;
        let busy = d.busy() || level > Level::Ok || rescue;
        let kernel_kills = match self.host.memory.as_ref().map(|h| h.version) {
            Some(CgroupVersion::V2) => v2_kills,
            _ if busy => self.v1_domain_kills(d),
            _ => d.kernel_kills,
        };
        if let Some(m) = &self.reporting.metrics {
            m.kernel_oom_kills_seen(d.key.name(), d.kernel_kills, kernel_kills);
        }
        d.kernel_kills = kernel_kills;
        let obs = Observation {
            level,
            rescue,
            available,
            eta,
            kernel_kills,
            stall: None,
            steady: combined.steady,
            to_kill: combined.to_kill,
        };
        (obs, fig)
    }

    /// A v1 domain's kernel OOM kills: summed over its subtree (a v1 cgroup counts only its
    /// own), and only again when the machine's count moved.
    fn v1_domain_kills(&mut self, d: &mut Domain) -> Option<u64> {
        let machine = self.watched.machine_oom_kills(self.round);
        if d.kernel_kills.is_some() && machine.is_some() && d.vmstat_seen == machine {
            return d.kernel_kills;
        }
        let sum = crate::watch::v1_subtree_oom_kills(&self.host, d.key.name());
        d.vmstat_seen = machine;
        sum
    }

    fn report_plan(&mut self, d: &Domain, plan: &Plan, obs: &Observation, log: &mut Logger) {
        let name = d.key.name();
        if let Some(k) = plan.kernel
            && k.first
        {
            let mut line = Line::new(if k.waiting {
                "the kernel OOM killer acted in a watched domain: oomward was late; waiting for its victim, then acting"
            } else {
                "the kernel OOM killer acted in a watched domain"
            })
            .kv("event", "kernel_oom_kill")
            .kv("domain", name)
            .kv("kernel_kills", k.in_episode)
            .kv("level", obs.level.as_str())
            .kv("available", obs.available);
            if k.waiting {
                line.push("wait_ms", self.limits.kernel_wait.as_millis());
            }
            log.log(Severity::Error, &line);
        }
        if let Some(s) = plan.recovered {
            log.log(
                Severity::Info,
                &Line::new("domain recovered")
                    .kv("event", "recovered")
                    .kv("domain", name)
                    .kv("after_ms", s.lasted.as_millis())
                    .kv("kills", s.kills)
                    .kv("kernel_kills", s.kernel_kills),
            );
        }
        if plan.steady_first {
            log.log(
                Severity::Info,
                &Line::new(
                    "at its term level but standing still: watched, not acted on (the kernel would not touch it)",
                )
                .kv("event", "steady")
                .kv("scope", self.members_list(d))
                .kv("domain", name)
                .kv("available", obs.available)
                .kv_opt("eta_ms", obs.eta.map(|e| e.as_millis())),
            );
        }
    }

    /// Takes a victim out of the domain's flight (its pidfds close when it is dropped).
    fn take_in_flight(&mut self, d: &mut Domain, key: ProcessKey) -> Option<InFlight> {
        let pos = d
            .in_flight
            .iter()
            .position(|f| ProcessKey::of(&f.victim) == key)?;
        Some(d.in_flight.remove(pos))
    }

    fn victim_exited(
        &mut self,
        d: &mut Domain,
        key: ProcessKey,
        after: Duration,
        log: &mut Logger,
    ) {
        let Some(f) = self.take_in_flight(d, key) else {
            return;
        };
        if f.kill_sent.is_none()
            && let Some(exe) = &f.victim.exe
        {
            // Gone on SIGTERM alone: what its kind needs next time.
            self.domains.exits.note(exe, after);
        }
        self.finish_record(d, key, KillOutcome::Exited, Some(after), log);
        log.log(
            Severity::Info,
            &Line::new("victim exited")
                .kv("event", "exit")
                .kv("scope", &f.scope)
                .kv("domain", d.key.name())
                .kv("pid", f.victim.pid)
                .kv("comm", &f.victim.comm)
                .kv("after_ms", after.as_millis())
                .kv("signal", f.victim_signal())
                .kv_if(!f.companions.is_empty(), "members", f.companions.len() + 1)
                .kv_if(f.kill_sent.is_some(), "sigkilled", f.sigkilled_list()),
        );
    }

    fn victim_stuck(&mut self, d: &mut Domain, key: ProcessKey, log: &mut Logger) {
        let Some(f) = self.take_in_flight(d, key) else {
            return;
        };
        // Its state now, not the scan's from before the signal (a victim stuck in D was
        // reported as `S`).
        let state = crate::probe::process::state_of(&self.host, key.pid, key.starttime)
            .map_or_else(|| "gone".to_string(), |c| c.to_string());
        log.log(
            Severity::Error,
            &Line::new("victim did not exit after SIGKILL; giving up on it and choosing another")
                .kv("event", "stuck")
                .kv("scope", &f.scope)
                .kv("domain", d.key.name())
                .kv("pid", f.victim.pid)
                .kv("comm", &f.victim.comm)
                .kv("state", state),
        );
        self.killer.mark_stuck(key);
        self.finish_record(d, key, KillOutcome::Stuck, None, log);
    }

    fn escalate(
        &mut self,
        d: &mut Domain,
        key: ProcessKey,
        why: Escalation,
        level: Level,
        now: Instant,
        log: &mut Logger,
    ) {
        let Some(f) = d
            .in_flight
            .iter_mut()
            .find(|f| ProcessKey::of(&f.victim) == key)
        else {
            return;
        };
        self.killer.escalate(f, now);
        let victim_alive = f.sigkilled.contains(&f.victim.pid);
        if !victim_alive && let Some(v) = d.episode.victim_mut(key) {
            // Only companions were left: nothing of the victim's own to release.
            v.released = true;
        }
        log.log(
            Severity::Error,
            &Line::new(if victim_alive {
                "victim still alive, sent SIGKILL"
            } else {
                "victim gone, others signalled with it still alive: sent SIGKILL"
            })
            .kv("event", "escalate")
            .kv("scope", &f.scope)
            .kv("domain", d.key.name())
            .kv("level", level.as_str())
            .kv("pid", f.victim.pid)
            .kv("comm", &f.victim.comm)
            .kv("victim_alive", victim_alive)
            .kv("sigkilled", f.sigkilled_list())
            .kv("signal", "SIGKILL")
            .kv("reason", why.as_str())
            .kv("after_ms", now.duration_since(f.first_signal).as_millis()),
        );
        self.record_signal(d, key, "SIGKILL", why.as_str());
        if let Some(m) = &self.reporting.metrics {
            let scope = d
                .records
                .iter()
                .find(|r| r.victim.pid == key.pid)
                .map_or_else(|| d.key.name().to_string(), |r| r.scope.clone());
            m.escalation(&scope);
        }
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
