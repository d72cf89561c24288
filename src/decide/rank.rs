//! Ranking: the kernel's badness with the scope's total pages, then the policy on top.
//!
//! Pure: it takes process snapshots and returns them ordered most-likely-victim first, with every
//! term of the score kept so that `oomward rank`, kill reports and tests can show their work.

use std::cmp::Ordering;

use crate::badness::{OOM_SCORE_ADJ_MIN, Points, Unkillable, oom_badness, oom_score};
use crate::policy::{Policy, Verdict, effective_adj};
use crate::probe::process::ProcessSnapshot;

/// The kernel's `totalpages` for the two views of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// T of the scope being ranked (the OOM domain's limit for a cgroup).
    pub scope: u64,
    /// T of the whole machine (RAM + swap): what `/proc/PID/oom_score` uses.
    pub system: u64,
}

/// One ranked process with every term of its score.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The facts it was ranked on.
    pub process: &'a ProcessSnapshot,
    /// rss + swap + page tables, pages.
    pub points: Points,
    /// Why the kernel itself would never pick it, if so.
    pub unkillable: Option<Unkillable>,
    /// Kernel badness with the scope's T (`None` when unkillable).
    pub badness: Option<i64>,
    /// Kernel-format oom_score with the *system* T: comparable to /proc/PID/oom_score.
    pub oom_score: u64,
    /// The policy's verdict.
    pub verdict: Verdict,
    /// oom_score_adj after the policy's adjustment.
    pub effective_adj: i32,
    /// Badness recomputed with `effective_adj`: the order oomward kills in. `None` when the
    /// process is not eligible.
    pub rank_score: Option<i64>,
}

impl Candidate<'_> {
    /// May this process be chosen as a victim?
    pub fn is_eligible(&self) -> bool {
        self.rank_score.is_some()
    }
}

/// The kernel's reasons never to pick a process, as far as /proc shows them.
pub fn unkillable(p: &ProcessSnapshot) -> Option<Unkillable> {
    if p.pid == 1 {
        Some(Unkillable::GlobalInit)
    } else if p.is_kernel_thread() {
        Some(Unkillable::KernelThread)
    } else if !p.has_mm {
        Some(Unkillable::NoMm)
    } else if p.oom_score_adj == OOM_SCORE_ADJ_MIN {
        Some(Unkillable::AdjMin)
    } else {
        None
    }
}

/// Scores one process.
pub fn score<'a>(p: &'a ProcessSnapshot, policy: &Policy, totals: Totals) -> Candidate<'a> {
    let points = Points {
        rss: p.rss_pages,
        swap: p.swap_pages,
        pgtables: p.pgtables_pages,
    };
    let unkillable = unkillable(p);
    let badness = unkillable
        .is_none()
        .then(|| oom_badness(points, p.oom_score_adj, totals.scope));
    let system_badness = unkillable
        .is_none()
        .then(|| oom_badness(points, p.oom_score_adj, totals.system));
    let verdict = policy.evaluate(p);
    let effective_adj = effective_adj(p.oom_score_adj, verdict.adjust);
    let rank_score = (unkillable.is_none() && verdict.protected.is_none())
        .then(|| oom_badness(points, effective_adj, totals.scope));
    Candidate {
        process: p,
        points,
        unkillable,
        badness,
        oom_score: oom_score(system_badness, totals.system),
        verdict,
        effective_adj,
        rank_score,
    }
}

/// Ranks the processes that are listed at all (kernel threads and zombies are not), eligible
/// ones first by rank score. Ties go to the later-started process: the kernel walks its task
/// list in creation order and the last of equals wins. Ineligible ones follow by badness.
pub fn rank<'a>(
    procs: &'a [ProcessSnapshot],
    policy: &Policy,
    totals: Totals,
) -> Vec<Candidate<'a>> {
    let mut out: Vec<Candidate<'a>> = procs
        .iter()
        .filter(|p| !p.is_kernel_thread() && p.has_mm)
        .map(|p| score(p, policy, totals))
        .collect();
    out.sort_by(compare);
    out
}

fn compare(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    let key = |c: &Candidate<'_>| {
        (
            c.rank_score.is_some(),
            c.rank_score.or(c.badness).unwrap_or(i64::MIN),
        )
    };
    key(b)
        .cmp(&key(a))
        .then(b.process.starttime.cmp(&a.process.starttime))
        .then(b.process.pid.cmp(&a.process.pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, ExeNamespace, Rule};

    fn p(pid: i32, rss: u64, adj: i32, start: u64) -> ProcessSnapshot {
        ProcessSnapshot {
            pid,
            comm: format!("p{pid}"),
            rss_pages: rss,
            oom_score_adj: adj,
            starttime: start,
            has_mm: true,
            uid: Some(1000),
            exe_in_host_mntns: true,
            ..ProcessSnapshot::default()
        }
    }

    fn policy(rules: Vec<Rule>) -> Policy {
        Policy {
            builtin: true,
            rules,
            self_pid: 99999,
            self_exe: None,
            first_user_uid: crate::policy::DEFAULT_FIRST_USER_UID,
        }
    }

    /// A rule matching comm `re` only.
    fn comm_rule(re: &str, action: Action) -> Rule {
        Rule {
            exe: None,
            exe_namespace: ExeNamespace::Host,
            comm: Some(regex::Regex::new(re).unwrap()),
            cmdline: None,
            cgroup: None,
            uid: None,
            pod: crate::policy::PodMatch::default(),
            action,
            line: 1,
        }
    }

    const SYS: u64 = 6_291_456;

    /// A scope of `scope` pages on the machine of [`SYS`] pages.
    fn totals(scope: u64) -> Totals {
        Totals { scope, system: SYS }
    }

    #[test]
    fn the_scope_total_decides_whom_adj_favours() {
        // In a 256 MiB cgroup (65536 pages) a 150 MiB process beats a 20 MiB one with adj 400;
        // with the machine's T the adj dominates. The kernel's memcg OOM uses the cgroup's T.
        let procs = vec![p(10, 38400, 0, 1), p(11, 5120, 400, 2)];
        let in_cgroup = rank(&procs, &policy(vec![]), totals(65536));
        assert_eq!(in_cgroup[0].process.pid, 10);
        let system = rank(&procs, &policy(vec![]), totals(SYS));
        assert_eq!(system[0].process.pid, 11);
        // oom_score is always in the system's terms
        assert!(in_cgroup[1].oom_score > in_cgroup[0].oom_score);
    }

    #[test]
    fn ties_go_to_the_later_started_process() {
        let procs = vec![p(20, 100, 0, 5), p(21, 100, 0, 9), p(22, 100, 0, 7)];
        let r = rank(&procs, &policy(vec![]), totals(SYS));
        let order: Vec<i32> = r.iter().map(|c| c.process.pid).collect();
        assert_eq!(order, vec![21, 22, 20]);
    }

    #[test]
    fn unkillable_and_protected_sink_and_kthreads_and_zombies_vanish() {
        let mut kthread = p(2, 0, 0, 0);
        kthread.flags = crate::probe::process::PF_KTHREAD;
        let mut zombie = p(3, 0, 0, 0);
        zombie.has_mm = false;
        let init = p(1, 5000, 0, 0);
        let adj_min = p(30, 9000, -1000, 3);
        let mut protected = p(31, 8000, 0, 4);
        protected.comm = "db".into();
        let small = p(32, 10, 0, 5);
        let rule = comm_rule("^db$", Action::Protect);
        let procs = vec![kthread, zombie, init, adj_min, protected, small];
        let r = rank(&procs, &policy(vec![rule]), totals(SYS));
        let order: Vec<i32> = r.iter().map(|c| c.process.pid).collect();
        assert_eq!(order[0], 32);
        assert_eq!(r.len(), 4);
        assert!(!order.contains(&2) && !order.contains(&3));
        let init_c = r.iter().find(|c| c.process.pid == 1).unwrap();
        assert_eq!(init_c.oom_score, 0);
        assert_eq!(init_c.unkillable, Some(Unkillable::GlobalInit));
        let adj_c = r.iter().find(|c| c.process.pid == 30).unwrap();
        assert_eq!(adj_c.oom_score, 0);
        assert!(!adj_c.is_eligible());
    }

    #[test]
    fn rule_adjustments_move_processes_in_adj_units() {
        let procs = vec![p(40, 1000, 0, 1), p(41, 900, 0, 2)];
        let prefer = comm_rule("^p41$", Action::Adjust(1));
        let r = rank(&procs, &policy(vec![prefer]), totals(200_000));
        // +1 adj unit = 200 pages at T = 200000: 900 + 200 > 1000
        assert_eq!(r[0].process.pid, 41);
        assert_eq!(r[0].rank_score, Some(1100));
        assert_eq!(r[0].badness, Some(900));
    }
}
