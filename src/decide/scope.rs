//! The arithmetic of a scope: which cgroup's limit an OOM would hit, and the kernel's
//! `totalpages` for ranking within it.
//!
//! Two limits must not be mixed (DESIGN §1): the *trigger* limit says when to act; the *ranking*
//! total says whom the kernel would pick. This module computes the ranking total exactly as
//! `mem_cgroup_get_max` does for the cgroup whose limit is hit.

use crate::probe::cgroup::CgroupMemory;

/// What a ranking or a watch is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeSpec {
    /// The whole machine: every process, T = RAM + swap.
    System,
    /// A cgroup subtree (path in the memory hierarchy): its processes only.
    Cgroup(String),
}

impl ScopeSpec {
    /// `system` or the cgroup path, as the CLI and logs write it.
    pub fn name(&self) -> &str {
        match self {
            ScopeSpec::System => "system",
            ScopeSpec::Cgroup(p) => p,
        }
    }
}

/// Index into `chain` (innermost first) of the cgroup whose hard limit an allocation in the
/// innermost one would hit first: the limited cgroup with the least headroom. On a tie the inner
/// one wins, as the kernel charges from the leaf upward and fails at the first full counter.
/// `None` when nothing on the path is limited (the OOM would be system-wide).
pub fn oom_domain(chain: &[(String, CgroupMemory)]) -> Option<usize> {
    chain
        .iter()
        .enumerate()
        .filter_map(|(i, (_, m))| m.max.map(|max| (i, max.saturating_sub(m.usage))))
        .min_by_key(|&(i, headroom)| (headroom, i))
        .map(|(i, _)| i)
}

/// The kernel's `mem_cgroup_get_max`: the limit in pages plus the swap the cgroup may use (capped
/// by the machine's swap) when swappiness is not 0. Never 0 (the kernel uses 1 then).
pub fn memcg_totalpages(m: &CgroupMemory, swap_total_pages: u64, page_size: u64) -> u64 {
    let Some(max) = m.max else {
        return u64::MAX;
    };
    let mut pages = max / page_size;
    if m.swappiness != 0 {
        // Unaccounted or unlimited swap counts as all of the machine's swap.
        let swap = m.swap_max.map_or(u64::MAX, |b| b / page_size);
        pages += swap.min(swap_total_pages);
    }
    pages.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(max: Option<u64>, usage: u64) -> CgroupMemory {
        CgroupMemory {
            max,
            usage,
            swappiness: 60,
            ..CgroupMemory::default()
        }
    }

    #[test]
    fn domain_is_the_limited_cgroup_with_least_headroom() {
        let chain = vec![
            ("/a/b".to_string(), cg(None, 100)),
            ("/a".to_string(), cg(Some(1000), 900)),
            ("/".to_string(), cg(None, 5000)),
        ];
        assert_eq!(oom_domain(&chain), Some(1));
        let chain = vec![
            ("/a/b".to_string(), cg(Some(500), 100)),
            ("/a".to_string(), cg(Some(1000), 900)),
        ];
        assert_eq!(oom_domain(&chain), Some(1));
        let tie = vec![
            ("/a/b".to_string(), cg(Some(200), 100)),
            ("/a".to_string(), cg(Some(1000), 900)),
        ];
        assert_eq!(oom_domain(&tie), Some(0));
        assert_eq!(oom_domain(&[("/x".to_string(), cg(None, 1))]), None);
    }

    #[test]
    fn totalpages_is_limit_plus_capped_swap() {
        let page = 4096;
        let mut m = cg(Some(256 << 20), 0);
        // no swap on the machine: the limit alone
        assert_eq!(memcg_totalpages(&m, 0, page), 65536);
        // unlimited swap limit counts as the machine's swap
        assert_eq!(memcg_totalpages(&m, 1000, page), 66536);
        // a swap limit below the machine's swap
        m.swap_max = Some(100 * page);
        assert_eq!(memcg_totalpages(&m, 1000, page), 65636);
        // swappiness 0: swap does not count
        m.swappiness = 0;
        assert_eq!(memcg_totalpages(&m, 1000, page), 65536);
        // a zero limit is never a zero divisor
        assert_eq!(memcg_totalpages(&cg(Some(0), 0), 0, page), 1);
    }
}

/// A scope as read from the live system: its totals for ranking and where its limit is.
#[derive(Debug, Clone)]
pub struct ScopeView {
    /// What was asked for.
    pub spec: ScopeSpec,
    /// T for the scope and for the machine.
    pub totals: crate::rank::Totals,
    /// For a cgroup scope: the cgroup whose limit an OOM would hit (itself or an ancestor), or
    /// `None` when nothing on its path is limited and an OOM would be system-wide.
    pub domain: Option<String>,
}

/// Why a scope cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    /// Reading the kernel failed.
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    /// A cgroup scope was asked for on a host without a memory cgroup hierarchy.
    #[error("no memory cgroup hierarchy is mounted on this host")]
    NoMemoryHierarchy,
    /// The cgroup does not exist.
    #[error(
        "no memory cgroup {0:?} (paths are relative to the memory hierarchy's root, e.g. /kubepods)"
    )]
    NoSuchCgroup(String),
}

impl ScopeView {
    /// Reads the totals of `spec` on `host`.
    pub fn read(host: &crate::probe::Host, spec: &ScopeSpec) -> Result<Self, ScopeError> {
        let mem = crate::probe::meminfo::MemInfo::read(&host.root)?;
        let system = mem.total_pages(host.page_size);
        let ScopeSpec::Cgroup(path) = spec else {
            return Ok(ScopeView {
                spec: spec.clone(),
                totals: crate::rank::Totals {
                    scope: system,
                    system,
                },
                domain: None,
            });
        };
        let hier = host.memory.as_ref().ok_or(ScopeError::NoMemoryHierarchy)?;
        let chain = match crate::probe::cgroup::read_chain(hier, &host.root, path) {
            Ok(c) => c,
            Err(e) if e.is_gone() => return Err(ScopeError::NoSuchCgroup(path.clone())),
            Err(e) => return Err(e.into()),
        };
        let swap_total = mem.swap_total / host.page_size;
        let (scope_t, domain) = match oom_domain(&chain) {
            Some(i) => {
                let (name, m) = &chain[i];
                let t = memcg_totalpages(m, swap_total, host.page_size);
                (t, Some(name.clone()))
            }
            None => (system, None),
        };
        Ok(ScopeView {
            spec: spec.clone(),
            totals: crate::rank::Totals {
                scope: scope_t,
                system,
            },
            domain,
        })
    }
}

impl ScopeSpec {
    /// `/a/b/` and `/a/b` name the same cgroup; the root is `/`.
    pub fn normalized(self) -> Self {
        match self {
            ScopeSpec::Cgroup(p) if p.is_empty() => ScopeSpec::Cgroup("/".into()),
            other => other,
        }
    }
}

/// Keeps the processes that lie inside one of a domain's watched cgroups, as their own
/// `/proc/PID/cgroup` says when they were read: a process that moved out between the listing
/// of a cgroup and the reading of its files (or whose cgroup is unknown) is no candidate of
/// this domain. With this, a cgroup scope's victim lies inside it by construction.
pub fn retain_within(
    processes: &mut Vec<crate::probe::process::ProcessSnapshot>,
    members: &[String],
) {
    processes.retain(|p| {
        p.cgroup.as_deref().is_some_and(|c| {
            members
                .iter()
                .any(|m| crate::probe::cgroup::is_within(c, m))
        })
    });
}
