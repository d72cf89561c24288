//! A domain's turn in the round (step 6): its episode assessed on what its members show, and
//! the plan carried out: victims gone or stuck, escalations, the kernel's kills, recovery, the
//! warning, and a choice when the plan calls for one.

use std::time::{Duration, Instant};

use crate::decide::domain::{DomainKey, ProcessKey, ScopeId, combine};
use crate::decide::episode::{Escalation, Observation, Plan};
use crate::decide::trigger::Level;
use crate::kill::InFlight;
use crate::probe::cgroup::CgroupVersion;
use crate::report::kill::KillOutcome;
use crate::report::{Line, Logger, Severity};

use super::act::Act;
use super::domains::{Domain, Evidence, Fruitless};
use super::moment::{Figures, Moment, Wake};

/// How soon after a victim's exit its domain is sampled again, for what the exit gave back.
const AFTER_EXIT: Duration = Duration::from_millis(20);

impl Act<'_> {
    /// Step 6: every domain handled in turn, each taken out of the list meanwhile (a placeholder
    /// without victims stands in for it); the soonest that one wants its next sample.
    pub fn handle_domains(
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
            wake_in = min_opt(wake_in, w);
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
                d.exited = self.report().publish_gone(waiting, None, log);
                return Some(Duration::from_millis(200));
            }
            return None;
        }
        let (obs, fig) = self.observe(d);
        // Records of victims gone take this sample as what they left; published after this
        // round's decision, which must not wait for them.
        let after_sample = obs.available;
        let gone_before = std::mem::take(&mut d.exited);
        let moment = Moment {
            obs: &obs,
            fig: &fig,
            wake,
            now,
        };
        if obs.level == Level::Ok && d.fresh && self.warn_due(d) {
            self.warn_domain(d, &moment, log);
        }
        let plan = d.episode.assess(&obs, now, self.limits);
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
        let victims = episode.victims_poll(now, self.limits);
        self.report()
            .publish_gone(gone_before, Some(after_sample), log);
        // A victim gone: the next sample, soon, says what it left (its record waits for it).
        let after = (!d.exited.is_empty()).then_some(AFTER_EXIT);
        min_opt(min_opt(plan.wake_in, victims), min_opt(retry, after))
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
            eta = min_opt(eta, c.eta);
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
        let sum = crate::watch::v1_subtree_oom_kills(self.host, d.key.name());
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
        self.report()
            .finish_record(d, key, KillOutcome::Exited, Some(after), log);
        log.log(
            Severity::Info,
            &victim_line("victim exited", "exit", d, &f)
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
        let state = crate::probe::process::state_of(self.host, key.pid, key.starttime)
            .map_or_else(|| "gone".to_string(), |c| c.to_string());
        log.log(
            Severity::Error,
            &victim_line(
                "victim did not exit after SIGKILL; giving up on it and choosing another",
                "stuck",
                d,
                &f,
            )
            .kv("state", state),
        );
        self.killer.mark_stuck(key);
        self.report()
            .finish_record(d, key, KillOutcome::Stuck, None, log);
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
        self.report().record_signal(d, key, "SIGKILL", why.as_str());
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

/// The line about a victim of `d` in flight: what happened, who it is and where.
fn victim_line(message: &str, event: &str, d: &Domain, f: &InFlight) -> Line {
    Line::new(message)
        .kv("event", event)
        .kv("scope", &f.scope)
        .kv("domain", d.key.name())
        .kv("pid", f.victim.pid)
        .kv("comm", &f.victim.comm)
}

fn min_opt(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}
