//! Choosing and signalling a victim for a domain: gather the candidates of its watched scopes,
//! rank them with the domain's T, weigh what each kill would free, and either signal the one
//! [`choose`] picks or say why nobody is killed; at a warn level, name the one it would pick.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::act::hook::HookKind;
use crate::config::{Config, KillUnit};
use crate::decide::choose::{Choice, Chosen, choose};
use crate::decide::domain::{DomainKey, ProcessKey, ScopeId};
use crate::decide::episode::{Futility, Reason};
use crate::decide::gain::{
    Kin, Prospect, expected_gain, near_equal_children, pressure_from_outside, same_cause,
};
use crate::decide::limits::Limits;
use crate::kill::{self, Companion, InFlight, KillError};
use crate::policy::Policy;
use crate::probe::Host;
use crate::probe::cgroup::{CgroupVersion, is_within};
use crate::probe::process::{ProcessSnapshot, Scan, scan};
use crate::probe::table::ProcessTable;
use crate::rank::{Candidate, Totals, rank};
use crate::report::kill::{KillLevel, KillOutcome, KillReason, KillRecord};
use crate::report::{Line, Logger, Severity};
use crate::sys::Sig;

use super::domains::{Domain, Domains};
use super::killer::Killer;
use super::lines::{decision_line, decision_severity};
use super::moment::{Figures, Lineup, Moment, Owner, Pick};
use super::report::{Report, Reporting};
use super::scopes::CgroupScope;
use super::watched::Watched;

/// How many of the best candidates the system scope's cheap pass reads in full.
pub(super) const CHEAP_FINALISTS: usize = 8;
/// How many of the first eligible candidates have their gain read from smaps.
const FINALISTS: usize = 8;
/// The most time spent reading the finalists' smaps; the rest keep the estimate from status.
const FINALISTS_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);

/// How long a SIGTERM decision waits for the smaps of a finalist in uninterruptible sleep (read
/// off the loop): a third of the room its projection leaves, at most [`STUCK_READ_MAX`] (a walk
/// of a 330 MiB Redis save child took 15–35 ms here). The rest of the room is the grace's.
fn stuck_read_wait(
    eta: Option<std::time::Duration>,
    l: &crate::decide::limits::Limits,
) -> Duration {
    crate::decide::episode::room(eta, l).map_or(STUCK_READ_MAX, |r| (r / 3).min(STUCK_READ_MAX))
}

/// See [`stuck_read_wait`].
const STUCK_READ_MAX: Duration = Duration::from_millis(50);

/// Whether the parent of candidate `k`, of the same executable, is among the candidates.
fn has_parent_of_its_kind(ranked: &[Candidate<'_>], k: usize) -> bool {
    let p = ranked[k].process;
    p.exe.is_some()
        && ranked
            .iter()
            .any(|c| c.process.pid == p.ppid && c.process.exe == p.exe)
}

/// For each ranked candidate, its near-equal forked child of the same executable among the
/// candidates, if any (see [`near_equal_children`]): the one stopped in its stead.
fn near_equal_children_of(ranked: &[Candidate<'_>]) -> Vec<Option<usize>> {
    let kin: Vec<Kin<'_>> = ranked
        .iter()
        .map(|c| Kin {
            pid: c.process.pid,
            ppid: c.process.ppid,
            exe: c.process.exe.as_deref(),
            score: c.rank_score.unwrap_or(i64::MIN),
        })
        .collect();
    near_equal_children(&kin)
}

/// The decision line once the signal was tried: its outcome, how many were signalled with
/// the victim, and for a SIGKILL what `process_mrelease` said.
fn with_outcome(
    mut line: Line,
    sent: &Result<(), KillError>,
    companions: usize,
    sig: Sig,
    released: &str,
) -> Line {
    match sent {
        Ok(()) => line.push("outcome", "sent"),
        Err(e) => line.push("outcome", format!("failed: {e}")),
    }
    if companions > 0 {
        line.push("companions", companions);
    }
    if sig == Sig::Kill {
        line.push("mrelease", released);
    }
    line
}

/// The pids a signal `sig` killed outright: the victim and its companions for a SIGKILL, none
/// for a SIGTERM.
fn sigkilled(victim: i32, companions: &[Companion], sig: Sig) -> Vec<i32> {
    if sig == Sig::Kill {
        std::iter::once(victim)
            .chain(companions.iter().map(|c| c.pid))
            .collect()
    } else {
        Vec::new()
    }
}

/// What a futile line says: why, and what the candidates could have freed together.
pub(super) struct Futile {
    cause: Cause,
    total: u64,
    eligible: usize,
}

impl Futile {
    /// Said before any process is read: nothing to total.
    fn unread(cause: Cause) -> Self {
        Futile {
            cause,
            total: 0,
            eligible: 0,
        }
    }
}

/// Why nobody is killed in a domain in trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// What could be freed is not what the domain is short of (tmpfs, shared memory).
    Unfreeable,
    /// The domain fills from an unwatched part of it.
    Outside,
    /// A kill of this episode freed nothing while the domain kept filling, and nothing has
    /// changed since (no watched member drives the fill).
    Barren,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Unfreeable => "unfreeable",
            Cause::Outside => "outside",
            Cause::Barren => "barren",
        }
    }
}

/// What became of a choice once the signal was tried.
pub(super) enum Signalled {
    /// Signalled, or nothing more to do in this round (it was gone, a transient error).
    Done,
    /// It cannot be signalled and never will be (its identity cannot be checked, the system
    /// refused): the next candidate is taken in the same round.
    Refused,
}

/// What choosing and signalling a victim is done with, lent by the round: the running config
/// and what it resolves to, the host, the signals, the reports, the watched scopes and the
/// domains (the one at hand taken out of them), and the process table.
pub(super) struct Act<'a> {
    pub config: &'a Config,
    pub limits: &'a Limits,
    pub host: &'a Host,
    pub policy: &'a Policy,
    pub killer: &'a mut Killer,
    pub reporting: &'a mut Reporting,
    pub watched: &'a mut Watched,
    pub domains: &'a mut Domains,
    /// Every process, kept across the system scope's ranking passes.
    pub table: &'a mut ProcessTable,
    pub self_pid: i32,
    /// Whether any rule matches on cmdline (see the enforcer's field).
    pub needs_cmdline: bool,
    /// When the enforcer started: the clock of the kill rate.
    pub started: Instant,
    /// The round's number: what is read at most once a round.
    pub round: u64,
}

impl Act<'_> {
    /// What records are made and published with.
    pub(super) fn report(&mut self) -> Report<'_> {
        Report {
            config: self.config,
            host: self.host,
            watched: self.watched,
            dry_run: self.killer.dry_run,
            reporting: self.reporting,
        }
    }

    /// Chooses among the domain's candidates and acts: signal the victim, or back off.
    pub(super) fn choose_and_act(
        &mut self,
        d: &mut Domain,
        reason: Reason,
        m: &Moment<'_>,
        log: &mut Logger,
    ) {
        let fig = m.fig;
        if reason != Reason::Rescue && self.held_back(d, m, log) {
            return;
        }
        let ranking = Instant::now();
        // A SIGTERM leaves time to read what each finalist would really free; a SIGKILL that
        // must go out now does not (smaps walks page tables under the mmap lock, while the
        // allocators fault in behind it).
        let exact = (reason.signal() == Sig::Term).then(|| stuck_read_wait(m.obs.eta, self.limits));
        let mut scanned = Scan::default();
        let mut lineup = match self.lineup(d, fig, exact, &mut scanned) {
            Ok(l) => l,
            Err(e) => {
                log.log(
                    Severity::Error,
                    &Line::new("cannot list processes").kv("error", e),
                );
                return;
            }
        };
        if let Some(metrics) = &self.reporting.metrics {
            metrics.ranking_seconds(ranking.elapsed().as_secs_f64());
        }
        let min_gain = self.config.min_gain_bytes(fig.limit);
        let rescue = reason == Reason::Rescue;
        let choice = loop {
            let choice = choose(
                &lineup.prospects,
                &lineup.children,
                fig.need,
                min_gain,
                rescue,
            );
            let Choice::Victim(chosen) = choice else {
                break choice;
            };
            let pick = self.pick(&lineup, chosen, m, reason);
            let record = self.report().new_record(d, &pick, &lineup, m, min_gain);
            match self.signal(d, &pick, &lineup.scan.processes, m, record, log) {
                // It could not be signalled and never will be: the next one, in this round.
                Signalled::Refused => lineup.prospects[chosen.index].eligible = false,
                Signalled::Done => return,
            }
        };
        match choice {
            // Never here: each victim was signalled (or refused) in the loop.
            Choice::Victim { .. } => {}
            Choice::Futile { total, eligible } => {
                let why = Futile {
                    cause: Cause::Unfreeable,
                    total,
                    eligible,
                };
                self.nobody(d, m, why, log);
            }
            Choice::NoCandidate => self.no_candidate(d, m, lineup.ranked.len(), lineup.scan, log),
        }
    }

    /// The candidates of domain `d` lined up for a choice (see [`Lineup`]), read into `scanned`:
    /// the ranked candidates borrow its processes, so it lives with the caller. `exact`: as for
    /// [`Act::prospects`]. The one way the kill and the warning read them.
    pub(super) fn lineup<'p>(
        &mut self,
        d: &Domain,
        fig: &Figures,
        exact: Option<Duration>,
        scanned: &'p mut Scan,
    ) -> Result<Lineup<'p>, crate::probe::ProbeError> {
        let totals = fig.totals();
        *scanned = self.gather(d, totals)?;
        let scan: &'p Scan = scanned;
        let ranked = rank(&scan.processes, self.policy, totals);
        let (owners, prospects) = self.prospects(d, &ranked, &scan.processes, exact);
        let children = near_equal_children_of(&ranked);
        Ok(Lineup {
            scan,
            ranked,
            owners,
            prospects,
            children,
        })
    }

    /// Whether the domain's fill says no kill would help before any process is read (not for a
    /// rescue): it fills from outside the watched scopes, or a kill of this episode already
    /// gave back nothing for the same cause. Backs off (and says why) when so.
    fn held_back(&mut self, d: &mut Domain, m: &Moment<'_>, log: &mut Logger) -> bool {
        let fig = m.fig;
        if pressure_from_outside(fig.fill_rate, fig.members_fill_rate) {
            // An unwatched sibling fills the limit: a kill here buys milliseconds. Said before
            // any process is read: nobody here is a victim whatever they hold.
            self.nobody(d, m, Futile::unread(Cause::Outside), log);
            return true;
        }
        let evidence = &d.evidence;
        if (evidence.barren.is_none() && evidence.suspect.is_none())
            || !same_cause(fig.fill_rate, fig.members_fill_rate)
        {
            return false;
        }
        if evidence.barren.is_some() {
            // A kill already gave back nothing while the domain went on filling: another
            // made for the same cause would give back as little.
            self.nobody(d, m, Futile::unread(Cause::Barren), log);
        } else {
            // The last kill gave back nothing: whether the domain goes on filling says if
            // another would do better. Looked at again soon, quietly.
            d.episode
                .back_off(Futility::Waiting, m.obs, m.now, self.limits);
        }
        true
    }

    /// A domain in trouble with nobody eligible in it: backs off, and says so once per episode
    /// with what the scan of its `processes` found.
    fn no_candidate(
        &mut self,
        d: &mut Domain,
        m: &Moment<'_>,
        processes: usize,
        scanned: &Scan,
        log: &mut Logger,
    ) {
        let obs = m.obs;
        if !d
            .episode
            .back_off(Futility::NoCandidate, obs, m.now, self.limits)
        {
            return;
        }
        log.log(
            Severity::Warning,
            &Line::new("domain is low on memory but has no eligible candidate")
                .kv("event", "no_candidate")
                .kv("scope", self.members_list(d))
                .kv("domain", d.key.name())
                .kv("level", obs.level.as_str())
                .kv_if(obs.rescue, "rescue", true)
                .kv("available", obs.available)
                .kv("limit", m.fig.limit)
                .kv("processes", processes)
                .kv("vanished", scanned.vanished)
                .kv("unreadable", scanned.unreadable.len()),
        );
    }

    /// Kills nobody in a domain where no kill would help: backs off, and says why (and counts
    /// it) once per episode.
    fn nobody(&mut self, d: &mut Domain, m: &Moment<'_>, why: Futile, log: &mut Logger) {
        if d.episode
            .back_off(Futility::Futile, m.obs, m.now, self.limits)
        {
            self.report_futile(d, m, why, log);
            if let Some(metrics) = &self.reporting.metrics {
                metrics.futile(d.key.name());
            }
        }
    }

    /// The decision about the candidate of a lineup that was chosen, with what the projection
    /// and its executable's earlier exits say about the time it has.
    pub(super) fn pick<'a, 'p>(
        &self,
        lineup: &'a Lineup<'p>,
        chosen: Chosen,
        m: &Moment<'_>,
        reason: Reason,
    ) -> Pick<'a, 'p> {
        let victim = &lineup.ranked[chosen.index];
        Pick {
            victim,
            owner: &lineup.owners[chosen.index],
            gain: lineup.prospects[chosen.index].gain,
            enough: chosen.enough,
            reason,
            expected_exit: victim
                .process
                .exe
                .as_deref()
                .and_then(|exe| self.domains.exits.expected(exe)),
            room: crate::decide::episode::room(m.obs.eta, self.limits),
            instead_of: chosen.instead_of.map(|k| lineup.ranked[k].process.pid),
        }
    }

    /// How long the `pre_kill` hook may hold a kill with `sig` back now.
    fn pre_kill_wait(&self, sig: Sig, m: &Moment<'_>) -> Duration {
        crate::decide::episode::pre_kill_wait(
            sig,
            m.obs.eta,
            self.limits,
            self.config.hooks.pre_kill_timeout,
        )
    }

    /// For each ranked candidate of domain `d`: the watched scope that holds it (and how it is
    /// killed there), and what choosing it would mean (eligible, expected gain). `exact`: the
    /// finalists' gain is read from smaps (a stuck finalist's read waited for this long at
    /// most); otherwise it is bounded from above by what status says (shared memory
    /// included), so that no candidate is passed over in a hurry for a gain that only smaps
    /// could show.
    pub(super) fn prospects(
        &self,
        d: &Domain,
        ranked: &[Candidate<'_>],
        procs: &[ProcessSnapshot],
        exact: Option<Duration>,
    ) -> (Vec<Owner>, Vec<Prospect>) {
        let owners: Vec<Owner> = ranked.iter().map(|c| self.owner(d, c.process)).collect();
        let mut prospects: Vec<Prospect> = ranked
            .iter()
            .zip(&owners)
            .map(|(c, o)| Prospect {
                eligible: self.may_choose(d, c),
                gain: self.gain(c.process, o, procs, exact.is_none()),
            })
            .collect();
        if let Some(wait) = exact {
            self.finalists_gain(d, ranked, &owners, &mut prospects, procs, wait);
        }
        (owners, prospects)
    }

    /// The exact gain of the finalists (the first eligible candidates killed alone), from what
    /// they map ([`crate::probe::smaps`]): copy-on-write pages shared with a parent or child
    /// are not gain, shared memory that dies with them is, unless another process of the
    /// domain maps it or holds it open. The system domain does not know every process's
    /// mappings at that moment, so there its shared memory never counts.
    fn finalists_gain(
        &self,
        d: &Domain,
        ranked: &[Candidate<'_>],
        owners: &[Owner],
        prospects: &mut [Prospect],
        procs: &[ProcessSnapshot],
        stuck_wait: Duration,
    ) {
        if self.config.kill.process_group {
            return;
        }
        let finalists: Vec<usize> = (0..ranked.len())
            .filter(|&k| prospects[k].eligible && owners[k].unit == KillUnit::Process)
            .take(FINALISTS)
            // Only where status can be wrong and it matters: shared memory (which may die with
            // it or not), or a forked child whose parent of the same executable is among the
            // candidates (pages shared copy-on-write; it may be stopped instead of the parent,
            // for what it alone frees). The parent itself is not read: a page walk of a large
            // process under a save's copy-on-write took 15–100 ms here, and a plain allocator
            // is not slowed down by a walk of itself either.
            .filter(|&k| ranked[k].process.rss_shmem_pages > 0 || has_parent_of_its_kind(ranked, k))
            .collect();
        if finalists.is_empty() {
            return;
        }
        let system = d.key == DomainKey::System;
        let others: Vec<i32> = if system {
            Vec::new()
        } else {
            procs.iter().map(|p| p.pid).collect()
        };
        // Reading smaps takes the mmap lock, which a process in uninterruptible sleep may hold
        // for as long as it is stuck: those are read off the loop (a Redis save child writing
        // its snapshot is in D for milliseconds at a time, and its status figure counted every
        // page it shares with its parent as its own: +150 %).
        let (stuck, running): (Vec<usize>, Vec<usize>) = finalists
            .iter()
            .partition(|&&k| ranked[k].process.state == 'D');
        let pids =
            |ks: &[usize]| -> Vec<i32> { ks.iter().map(|&k| ranked[k].process.pid).collect() };
        let mut read = crate::probe::smaps::read_finalists(
            self.host,
            &pids(&running),
            &others,
            FINALISTS_BUDGET,
        );
        if !stuck.is_empty() {
            read.extend(self.killer.read_stuck_finalists(
                self.host,
                pids(&stuck),
                others,
                FINALISTS_BUDGET,
                stuck_wait,
            ));
        }
        for f in read {
            let Some(k) = finalists
                .iter()
                .copied()
                .find(|&k| ranked[k].process.pid == f.pid)
            else {
                continue;
            };
            let mut held = f.held;
            if system {
                held.objects.clear();
            }
            prospects[k].gain = crate::decide::gain::gain_of(&held, &f.kept_elsewhere);
        }
    }

    /// The candidates of a domain: the system's through the process table (one small read per
    /// process, full reads for the finalists), a cgroup domain's from its watched scopes'
    /// subtrees (nested scopes read once).
    pub(super) fn gather(
        &mut self,
        d: &Domain,
        totals: Totals,
    ) -> Result<Scan, crate::probe::ProbeError> {
        if d.key == DomainKey::System {
            if self.config.kill.process_group {
                return scan(self.host, None, self.needs_cmdline);
            }
            return self
                .table
                .pass(
                    self.host,
                    self.policy,
                    totals,
                    CHEAP_FINALISTS,
                    self.needs_cmdline,
                )
                .map(|p| Scan {
                    processes: p.processes,
                    ..Scan::default()
                });
        }
        let paths = self.member_paths(d);
        let mut out = Scan::default();
        for p in &paths {
            if paths.iter().any(|q| q != p && is_within(p, q)) {
                continue; // inside another member: already read with it
            }
            let s = scan(self.host, Some(p), self.needs_cmdline)?;
            out.processes.extend(s.processes);
            out.vanished += s.vanished;
            out.unreadable.extend(s.unreadable);
        }
        crate::scope::retain_within(&mut out.processes, &paths);
        Ok(out)
    }

    /// The watched cgroups of a domain.
    fn member_cgroups(&self, d: &Domain) -> impl Iterator<Item = &CgroupScope> {
        d.members.iter().filter_map(|id| match id {
            ScopeId::Cgroup(n) => self.watched.cgroups.iter().find(|c| c.id == *n),
            ScopeId::System => None,
        })
    }

    fn member_paths(&self, d: &Domain) -> Vec<String> {
        self.member_cgroups(d).map(|c| c.path.clone()).collect()
    }

    pub(super) fn members_list(&self, d: &Domain) -> String {
        let names: Vec<&str> = d
            .members
            .iter()
            .map(|id| self.watched.scope_name(*id))
            .collect();
        names.join(",")
    }

    /// The innermost watched scope of the domain that holds `p`.
    pub(super) fn owner(&self, d: &Domain, p: &ProcessSnapshot) -> Owner {
        let system = Owner {
            scope: ScopeId::System,
            path: None,
            unit: KillUnit::Process,
        };
        if d.key == DomainKey::System {
            return system;
        }
        let cgroup = p.cgroup.as_deref().unwrap_or("");
        self.member_cgroups(d)
            .filter(|c| is_within(cgroup, &c.path))
            .max_by_key(|c| c.path.len())
            .map_or(system, |c| {
                let cfg = &self.config.cgroups[c.config_index];
                let oom_group = c.sample.chain.first().is_some_and(|(_, m)| m.oom_group);
                Owner {
                    scope: ScopeId::Cgroup(c.id),
                    path: Some(c.path.clone()),
                    unit: if oom_group {
                        KillUnit::Cgroup
                    } else {
                        cfg.kill_unit
                    },
                }
            })
    }

    /// May this ranked process be chosen for domain `d`: eligible for the kernel and the
    /// policy, not oomward, not init, not given up on, not already in flight in `d` or any
    /// other domain.
    pub(super) fn may_choose(&self, d: &Domain, c: &Candidate<'_>) -> bool {
        let p = c.process;
        let key = ProcessKey::of(p);
        c.is_eligible()
            && p.pid != self.self_pid
            && p.pid > 1
            && !self.killer.is_stuck(key)
            && !std::iter::once(d)
                .chain(&self.domains.list)
                .any(|d| d.in_flight.iter().any(|f| f.victim.pid == p.pid))
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

    /// What killing `p` frees by what status says: its private anonymous memory and swap (with
    /// `with_shared`, its shared memory too: an upper bound), or for a group kill the killable
    /// members' together.
    pub(super) fn gain(
        &self,
        p: &ProcessSnapshot,
        owner: &Owner,
        procs: &[ProcessSnapshot],
        with_shared: bool,
    ) -> u64 {
        let one = |q: &ProcessSnapshot| {
            let shared = if with_shared { q.rss_shmem_pages } else { 0 };
            expected_gain(
                q.rss_anon_pages.saturating_add(shared),
                q.swap_pages,
                self.host.page_size,
            )
        };
        match (&owner.unit, &owner.path) {
            (KillUnit::Cgroup, Some(path)) => procs
                .iter()
                .filter(|q| is_within(q.cgroup.as_deref().unwrap_or(""), path))
                .filter(|q| q.pid == p.pid || self.may_kill(q))
                .map(one)
                .fold(0u64, u64::saturating_add),
            _ if self.config.kill.process_group && p.pgrp > 1 => procs
                .iter()
                .filter(|q| q.pid == p.pid || (q.pgrp == p.pgrp && self.may_kill(q)))
                .map(one)
                .fold(0u64, u64::saturating_add),
            _ => one(p),
        }
    }

    fn report_futile(&self, d: &Domain, m: &Moment<'_>, why: Futile, log: &mut Logger) {
        let (obs, fig) = (m.obs, m.fig);
        let min_gain = self.config.min_gain_bytes(fig.limit);
        let Futile {
            cause,
            total,
            eligible,
        } = why;
        let domain = d.key.name();
        let mut line = Line::new(match cause {
            Cause::Unfreeable => {
                "no kill can free what the domain needs: killing nobody, leaving the limit to the kernel"
            }
            Cause::Outside => {
                "the domain is filled from outside the watched scopes: killing nobody, leaving the limit to the kernel"
            }
            Cause::Barren => {
                "a kill in this episode freed nothing while the domain kept filling: killing nobody else for it, leaving the limit to the kernel"
            }
        })
        .kv("event", "futile")
        .kv("cause", cause.as_str())
        .kv("scope", self.members_list(d))
        .kv("domain", domain)
        .kv("level", obs.level.as_str())
        .kv("available", obs.available)
        .kv("limit", fig.limit)
        .kv("need", fig.need)
        .kv("gain_total", total)
        .kv("eligible", eligible)
        .kv("min_gain", min_gain)
        .kv("fill_rate", fig.fill_rate as u64)
        .kv_opt("members_fill_rate", fig.members_fill_rate.map(|r| r as u64));
        if let Some(s) = fig.shmem {
            line.push("shmem", s);
            line.push("shmem_mib", s >> 20);
        }
        if d.key != DomainKey::System {
            let paths = self.member_paths(d);
            let watched: Vec<&str> = paths.iter().map(String::as_str).collect();
            if let Some((path, usage)) = crate::watch::largest_outside(self.host, domain, &watched)
            {
                line.push("largest_outside", path);
                line.push("largest_outside_usage", usage);
            }
        }
        log.log(Severity::Warning, &line);
    }

    /// Signals the chosen victim (and, for a group kill, its group within its scope); the
    /// signal goes first and the line after.
    fn signal(
        &mut self,
        d: &mut Domain,
        pick: &Pick<'_, '_>,
        procs: &[ProcessSnapshot],
        m: &Moment<'_>,
        mut record: crate::report::kill::KillRecord,
        log: &mut Logger,
    ) -> Signalled {
        let victim = pick.victim;
        let sig = pick.reason.signal();
        let scope = self.watched.scope_name(pick.owner.scope).to_string();
        let domain = d.key.name().to_string();
        let line = |message: &str| decision_line(message, &scope, &domain, m, pick);
        if self.killer.dry_run {
            let said = line("would signal (dry run)").kv("dry_run", true);
            self.signal_dry_run(d, pick, m, record, &said, log);
            return Signalled::Done;
        }
        if self.host.root != std::path::Path::new("/") {
            self.refuse_foreign_root(d, log);
            return Signalled::Done;
        }
        let key = ProcessKey::of(victim.process);
        let fd = match self.open_victim(victim.process, log) {
            Ok(fd) => fd,
            Err(done) => return done,
        };
        let wait = self.pre_kill_wait(sig, m);
        if self
            .report()
            .pre_kill_hook(d, &mut record, victim.process, wait, log)
            && kill::exited(&fd)
        {
            // The kernel's OOM killer (or the victim itself) was faster: nothing was sent, so
            // nothing is reported as oomward's; the next sample tells what is left to do.
            log.log(
                Severity::Notice,
                &Line::new("the victim exited while the pre_kill hook ran: not signalled")
                    .kv("event", "gone_before_signal")
                    .kv("scope", &scope)
                    .kv("pid", victim.process.pid)
                    .kv("comm", &victim.process.comm),
            );
            return Signalled::Done;
        }
        // Who it is, read while it is still there: once SIGKILLed its command line goes with
        // its memory (see `fill_in`).
        self.report().fill_in(d, &mut record, victim.process);
        let sent = self.killer.signal(&fd, sig);
        let first_signal = Instant::now();
        record.time = crate::report::kill::unix_now();
        record.time_text = crate::report::kill::rfc3339(record.time);
        let (companions, cgroup_kill_file) = self.signal_group(pick, procs, sig);
        let released = self.killer.release(&fd, victim.process.pid, sig);
        let message = if sent.is_ok() {
            "signalled victim"
        } else {
            "could not signal the victim"
        };
        let said = with_outcome(line(message), &sent, companions.len(), sig, released);
        log.log(decision_severity(sent.is_ok(), sig), &said);
        record.companions = companions.iter().map(|c| c.pid).collect();
        if sig == Sig::Kill {
            record.mrelease = Some(released.to_string());
        }
        if sent.is_err() {
            self.killer.mark_stuck(key);
            record.outcome = KillOutcome::Failed;
            self.report().publish(record, log);
            return Signalled::Done;
        }
        self.count_kill(pick, &record);
        let flight = InFlight {
            victim: victim.process.clone(),
            scope,
            fd,
            sigkilled: sigkilled(victim.process.pid, &companions, sig),
            companions,
            first_signal,
            kill_sent: (sig == Sig::Kill).then_some(first_signal),
            cgroup_kill_file,
            release_returned: false,
            instead_of: pick.instead_of,
        };
        self.follow_signalled(d, pick, m, flight, record, log);
        Signalled::Done
    }

    /// A dry run decides as a kill would, says so in `said`, runs the `pre_kill` hook and
    /// publishes the record, but signals nobody.
    fn signal_dry_run(
        &mut self,
        d: &mut Domain,
        pick: &Pick<'_, '_>,
        m: &Moment<'_>,
        mut record: crate::report::kill::KillRecord,
        said: &Line,
        log: &mut Logger,
    ) {
        log.log(Severity::Notice, said);
        d.episode.dry_run_decided();
        record.outcome = KillOutcome::DryRun;
        let wait = self.pre_kill_wait(pick.reason.signal(), m);
        self.report()
            .pre_kill_hook(d, &mut record, pick.victim.process, wait, log);
        self.report().fill_in(d, &mut record, pick.victim.process);
        self.report().publish(record, log);
    }

    /// Pids under another root are not this machine's processes: never signal them.
    fn refuse_foreign_root(&mut self, d: &mut Domain, log: &mut Logger) {
        log.log(
            Severity::Error,
            &Line::new("refusing to signal: processes read from a root other than /")
                .kv("root", self.host.root.display()),
        );
        d.episode.dry_run_decided();
    }

    /// A pidfd for the victim, verified to be the process chosen; otherwise what became of the
    /// choice (a victim that can never be signalled is never chosen again).
    fn open_victim(&mut self, p: &ProcessSnapshot, log: &mut Logger) -> Result<OwnedFd, Signalled> {
        match kill::open_verified(self.host, p) {
            Ok(fd) => Ok(fd),
            // Gone since the scan (a reused pid means that too): its memory is on its way
            // back, the next sample says whether anyone else must go.
            Err(KillError::Gone) | Err(KillError::Reused) => Err(Signalled::Done),
            Err(KillError::Io(e)) if !crate::sys::not_permitted(&e) => {
                // Transient (EMFILE, ENOMEM): try again next round, do not give up on it.
                log.log(
                    Severity::Error,
                    &Line::new("cannot open a pidfd for the victim")
                        .kv("pid", p.pid)
                        .kv("error", e),
                );
                Err(Signalled::Done)
            }
            Err(e) => {
                log.log(
                    Severity::Error,
                    &Line::new("cannot signal the chosen process; never choosing it again, taking the next")
                        .kv("event", "unverifiable")
                        .kv("pid", p.pid)
                        .kv("comm", &p.comm)
                        .kv("error", e),
                );
                self.killer.mark_stuck(ProcessKey::of(p));
                Err(Signalled::Refused)
            }
        }
    }

    /// Counts a kill that went out in the metrics, by scope, signal and reason (and by pod).
    fn count_kill(&self, pick: &Pick<'_, '_>, record: &crate::report::kill::KillRecord) {
        let Some(metrics) = &self.reporting.metrics else {
            return;
        };
        let sig = pick.reason.signal();
        metrics.kill(&record.scope, sig.name(), pick.reason.as_str(), record.time);
        if pick.reason == Reason::Rescue {
            metrics.rescue(&record.scope);
        }
        if let Some(k) = &pick.victim.process.kube {
            let pod = k.pod.as_deref().unwrap_or(&k.pod_uid);
            let namespace = k.namespace.as_deref().unwrap_or("");
            metrics.pod_kill(namespace, pod, k.qos.as_str());
        }
    }

    /// A victim signalled: its record waits for its exit, the episode counts it, and the
    /// domain follows it in `flight` until it is gone.
    fn follow_signalled(
        &mut self,
        d: &mut Domain,
        pick: &Pick<'_, '_>,
        m: &Moment<'_>,
        flight: InFlight,
        record: crate::report::kill::KillRecord,
        log: &mut Logger,
    ) {
        let expected = crate::decide::episode::Expected {
            available: record.released.available_before,
            gain: record.expected_gain,
        };
        // Kept until the victim is gone.
        d.records.push(record);
        self.note_kill(log, m.now);
        d.episode.signalled(
            ProcessKey::of(&flight.victim),
            flight.first_signal,
            flight.kill_sent.is_some(),
            pick.expected_exit,
            expected,
        );
        d.in_flight.push(flight);
    }

    /// For a group kill: the other killable processes of the victim's scope (or its process
    /// group within the domain), signalled through verified pidfds; on v2 the `cgroup.kill`
    /// file when every process of the scope may die.
    fn signal_group(
        &self,
        pick: &Pick<'_, '_>,
        procs: &[ProcessSnapshot],
        sig: Sig,
    ) -> (Vec<Companion>, Option<std::path::PathBuf>) {
        let victim = pick.victim.process;
        match (&pick.owner.unit, &pick.owner.path) {
            (KillUnit::Cgroup, Some(path)) => {
                let within =
                    |q: &ProcessSnapshot| is_within(q.cgroup.as_deref().unwrap_or(""), path);
                let companions = self.signal_others(procs, victim.pid, sig, within);
                // cgroup.kill spares nobody: use it only when every process of the subtree may die.
                let all_killable = procs.iter().filter(|q| within(q)).all(|q| self.may_kill(q));
                let mut file = None;
                if let Some(hier) = &self.host.memory
                    && hier.version == CgroupVersion::V2
                    && all_killable
                    && let Some(f) = hier
                        .dir(&self.host.root, path)
                        .map(|d| d.join("cgroup.kill"))
                        .filter(|f| f.exists())
                {
                    if sig == Sig::Kill {
                        let _ = std::fs::write(&f, "1");
                    }
                    file = Some(f);
                }
                (companions, file)
            }
            _ if self.config.kill.process_group => {
                let pgrp = victim.pgrp;
                if pgrp > 1 && pgrp != crate::sys::own_pgrp() {
                    (
                        self.signal_others(procs, victim.pid, sig, |q| q.pgrp == pgrp),
                        None,
                    )
                } else {
                    (Vec::new(), None)
                }
            }
            _ => (Vec::new(), None),
        }
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
            out.extend(self.killer.signal_companion(self.host, p, sig));
        }
        out
    }

    /// Counts a kill and warns, at most once a minute, when a workload keeps coming back.
    fn note_kill(&mut self, log: &mut Logger, now: Instant) {
        self.reporting.victims += 1;
        let s = now.duration_since(self.started).as_secs();
        let warn_at = self.config.kill.warn_kills_per_minute;
        if let Some(recent) = self.domains.note_kill(s, warn_at) {
            log.log(
                Severity::Warning,
                &Line::new("many kills in the last minute: a workload keeps coming back")
                    .kv("event", "kill_rate")
                    .kv("kills_last_minute", recent)
                    .kv("warn_at", warn_at),
            );
        }
    }

    /// At a domain's first crossing of a warn level in an episode: names the process that
    /// would be chosen at term, logs it, runs the `warn` hook; the daemon notifies desktops.
    pub fn warn_domain(&mut self, d: &mut Domain, m: &Moment<'_>, log: &mut Logger) {
        let Some(record) = self.likely_victim(d, m) else {
            log.log(
                Severity::Notice,
                &Line::new("memory is running low; no process could be stopped")
                    .kv("event", "warn")
                    .kv("scope", self.members_list(d))
                    .kv("domain", d.key.name())
                    .kv("available", m.obs.available)
                    .kv("limit", m.fig.limit),
            );
            return;
        };
        let v = &record.victim;
        log.log(
            Severity::Notice,
            &Line::new(&format!(
                "memory is running low in {}: {} (pid {}) would be stopped first; it uses {}",
                crate::report::quoted(&record.scope),
                crate::report::quoted(&v.comm),
                v.pid,
                crate::report::kill::human(record.victim_bytes())
            ))
            .kv("event", "warn")
            .kv("scope", &record.scope)
            .kv("domain", &record.domain)
            .kv("available", record.trigger.available)
            .kv("limit", record.trigger.limit)
            .kv("pid", v.pid)
            .kv("comm", &v.comm)
            .kv("uid", v.uid.map_or(-1, i64::from))
            .kv("used", record.victim_bytes())
            .kv("expected_gain", record.expected_gain),
        );
        self.report()
            .run_hook(HookKind::Warn, &record, Duration::ZERO, log);
        if let Some(m) = &self.reporting.metrics {
            m.warning(&record.scope);
        }
        self.reporting.warnings.push(record);
    }

    /// The process a term decision would choose now, as a record (outcome `warning`): chosen
    /// as the kill chooses (a near-equal forked child before its parent included), so that the
    /// warning names who would really be stopped. Without the kill's smaps read of the
    /// finalists (a warning does not walk page tables under anyone's mmap lock): their gain is
    /// status's estimate, as for a SIGKILL that cannot wait.
    fn likely_victim(&mut self, d: &Domain, m: &Moment<'_>) -> Option<KillRecord> {
        let fig = m.fig;
        let mut scanned = Scan::default();
        let lineup = self.lineup(d, fig, None, &mut scanned).ok()?;
        let min_gain = self.config.min_gain_bytes(fig.limit);
        // What a term decision would need: at least what brings it back above term.
        let need = fig.need.max(1);
        let Choice::Victim(chosen) =
            choose(&lineup.prospects, &lineup.children, need, min_gain, false)
        else {
            return None;
        };
        let pick = self.pick(&lineup, chosen, m, Reason::Term);
        let mut record = self.report().new_record(d, &pick, &lineup, m, min_gain);
        let victim = pick.victim.process;
        self.report().fill_in(d, &mut record, victim);
        record.outcome = KillOutcome::Warning;
        record.reason = KillReason::WarnLevel;
        record.level = KillLevel::Warn;
        Some(record)
    }

    /// Whether a warning is due for domain `d` this round: a member is in its warn band, the
    /// domain is still below term, and no warning went out in this episode.
    pub fn warn_due(&mut self, d: &mut Domain) -> bool {
        let warned_now = d.members.iter().any(|id| match id {
            ScopeId::System => self.watched.system.warned,
            ScopeId::Cgroup(n) => self.watched.cgroups.iter().any(|c| c.id == *n && c.warned),
        });
        if !warned_now {
            // Out of the band (past its margin): the next crossing is a new episode.
            if !d.busy() {
                d.warned = false;
            }
            return false;
        }
        if d.warned {
            return false;
        }
        d.warned = true;
        true
    }
}
