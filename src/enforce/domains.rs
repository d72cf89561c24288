//! The OOM domains of a round: which watched scopes share a binding limit, what the domain as
//! a whole looks like (the episode's observation), the victims in flight, and the plan's
//! follow-up (exits, escalations, stuck victims, the kernel's kills, recovery).

use std::time::Instant;

use crate::decide::domain::{DomainKey, ProcessKey, ScopeId};
use crate::decide::episode::Episode;
use crate::decide::exits::ExitTimes;
use crate::kill::InFlight;
use crate::probe::Host;

use super::killer::Killer;
use super::watched::Watched;

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
            let i = self.index_of(|k| *k == DomainKey::System, || DomainKey::System);
            let d = &mut self.list[i];
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
            let i = self.index_of(
                |k| matches!(k, DomainKey::Memcg(p) if p == path),
                || DomainKey::Memcg(path.to_string()),
            );
            let d = &mut self.list[i];
            d.members.push(id);
            d.fresh |= fresh;
        }
    }

    /// The place of the domain whose key `is` says, added with key `key()` when there is none.
    fn index_of(
        &mut self,
        is: impl Fn(&DomainKey) -> bool,
        key: impl FnOnce() -> DomainKey,
    ) -> usize {
        self.list
            .iter()
            .position(|d| is(&d.key))
            .unwrap_or_else(|| {
                self.list.push(Domain::new(key()));
                self.list.len() - 1
            })
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
