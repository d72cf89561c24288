//! The scopes being watched and their samples: the system, and every cgroup matched by a
//! `[[cgroup]]` glob in the live hierarchy (re-resolved as cgroups come and go).

use crate::config::{Config, WatchedCgroup};
use crate::decide::stall::StallCounters;
use crate::decide::swap::EffectiveSwap;
use crate::probe::cgroup::{CgroupFiles, CgroupMemory, SWAPPINESS, is_within, join_cgroup, parent};
use crate::probe::kept::KeptCgroupFiles;
use crate::probe::kept::KeptFile;
use crate::probe::meminfo::MemInfo;
use crate::probe::psi::Pressure;
use crate::probe::swaps::SwapFiles;
use crate::probe::{Host, ProbeError, flat_keyed};
use crate::scope::{memcg_totalpages, oom_domain};
use crate::trigger::{Level, SystemSample, SystemThresholds, Thresholds};

/// Every cgroup path matched by the config's globs, with the index of the first `[[cgroup]]`
/// that matched it. Walks only below each glob's literal prefix. The root cgroup is watched
/// only when named as `/`: a `*` may match nothing, but `/*` means the cgroups below it.
pub fn resolve_cgroups(config: &Config, host: &Host) -> Vec<(String, usize)> {
    let Some(hier) = &host.memory else {
        return Vec::new();
    };
    let mut out: Vec<(String, usize)> = Vec::new();
    for (i, c) in config.cgroups.iter().enumerate() {
        let start = literal_prefix(&c.path.text);
        for path in hier.walk(&host.root, &start) {
            let root_by_wildcard = path == "/" && c.path.text != "/";
            if !root_by_wildcard && c.path.is_match(&path) && !out.iter().any(|(p, _)| *p == path) {
                out.push((path, i));
            }
        }
    }
    out
}

/// The directory part of a glob before its first wildcard: `/kubepods/*/x` → `/kubepods`.
pub fn literal_prefix(glob: &str) -> String {
    let cut = glob.find(['*', '?', '[', '{']).unwrap_or(glob.len());
    let dir = &glob[..cut];
    let dir = if cut < glob.len() {
        dir.rfind('/')
            .map_or("/", |i| if i == 0 { "/" } else { &dir[..i] })
    } else {
        dir
    };
    if dir.is_empty() {
        "/".into()
    } else {
        dir.to_string()
    }
}

/// One sample of a watched cgroup.
#[derive(Debug, Clone, Default)]
pub struct CgroupSample {
    /// The cgroup and its ancestors, innermost first.
    pub chain: Vec<(String, CgroupMemory)>,
    /// What can still be charged before the kernel must OOM-kill: the least memory headroom on
    /// the path (trigger limit − working set, where the trigger limit of each cgroup is its
    /// memory.max, never memory.high) plus `swap_left`. `None` if nothing is limited.
    pub available: Option<u64>,
    /// Swap the cgroup can still move memory to: the least swap limit headroom on the path,
    /// at most the machine's SwapFree; 0 without swap or with swappiness 0 (the kernel then
    /// reclaims no anonymous memory for the cgroup). At its memory limit the kernel swaps before
    /// it OOM-kills, so a full memory limit with swap left is not yet an OOM.
    pub swap_left: u64,
    /// The trigger limit that `available` is measured against.
    pub limit: Option<u64>,
    /// Which cgroup of `chain` that limit belongs to.
    pub limit_index: Option<usize>,
    /// Kernel T for ranking within this cgroup (its OOM domain's `mem_cgroup_get_max`), or the
    /// system's when nothing on the path is limited.
    pub totalpages: u64,
}

impl CgroupSample {
    /// The watched cgroup's own state.
    pub fn own(&self) -> &CgroupMemory {
        &self.chain[0].1
    }

    /// The kernel's OOM count that matters to this cgroup: its own `oom` (v2 `memory.events`,
    /// its subtree: a rise means a task of the cgroup is in OOM now). An ancestor's OOM is not
    /// counted as the cgroup's own: it may be a sibling's, and acting in this cgroup then would
    /// kill the wrong process; the path's least headroom already shows an ancestor that is full.
    pub fn oom_counts(&self) -> OomCounts {
        OomCounts {
            oom: self.own().oom_events,
        }
    }

    /// The cgroups of the chain that have a trigger limit: (index, path, state, limit).
    pub fn limited(&self) -> impl Iterator<Item = (usize, &str, &CgroupMemory, u64)> {
        self.chain
            .iter()
            .enumerate()
            .filter_map(|(i, (p, m))| Some((i, p.as_str(), m, trigger_limit(m)?)))
    }

    /// A number that changes when the set of limited cgroups on the path or any of their
    /// limits changes: what the kernel event sources were armed for.
    pub fn limits_fingerprint(&self) -> u64 {
        self.limited()
            .fold(FINGERPRINT_SEED, |h, (i, _, _, l)| mix(mix(h, i as u64), l))
    }
}

const FINGERPRINT_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// One step of an FNV-1a-like fold over 64-bit words (no allocation, order-sensitive).
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(0x0100_0000_01b3)
}

/// A cgroup's trigger limit: the one the kernel's OOM killer enforces, `memory.max` (v1
/// `memory.limit_in_bytes`). `memory.high` is not one: above it the kernel reclaims and slows
/// the cgroup's allocations, and never kills; it shows as pressure (`high` events, PSI).
fn trigger_limit(m: &CgroupMemory) -> Option<u64> {
    m.max
}

/// See [`CgroupSample::oom_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OomCounts {
    /// The cgroup's own `memory.events` `oom` (its subtree).
    pub oom: u64,
}

impl OomCounts {
    /// Whether the cgroup (or a descendant) met an OOM since `before`.
    pub fn oom_rose_since(&self, before: &OomCounts) -> bool {
        self.oom > before.oom
    }
}

/// A watched cgroup's files and those of its ancestors (innermost first), kept open across
/// samples so that a sample makes no allocation.
#[derive(Debug, Default)]
pub struct ChainFiles {
    chain: Vec<(String, KeptCgroupFiles)>,
}

impl ChainFiles {
    /// The files of `path` and of each ancestor within the mounted hierarchy.
    pub fn new(host: &Host, path: &str) -> Self {
        let mut chain = Vec::new();
        if let Some(hier) = &host.memory {
            let swappiness = host.path(SWAPPINESS);
            let mut cur = Some(path);
            while let Some(p) = cur {
                let Some(dir) = hier.dir(&host.root, p) else {
                    break;
                };
                chain.push((p.to_string(), KeptCgroupFiles::new(dir, swappiness.clone())));
                cur = parent(p);
            }
        }
        ChainFiles { chain }
    }
}

/// Samples a watched cgroup through its kept files into `out` (reused: after the first sample
/// nothing is allocated). An error whose `is_gone()` is true means it was removed. An ancestor
/// that cannot be read (outside a container's view) ends the chain.
pub fn sample_cgroup_into(
    host: &Host,
    files: &mut ChainFiles,
    out: &mut CgroupSample,
    system_t: u64,
    swap: SwapSpace,
) -> Result<(), ProbeError> {
    let hier = host
        .memory
        .as_ref()
        .expect("cgroup scopes exist only with a memory hierarchy");
    if files.chain.is_empty() {
        // Not under the mounted hierarchy (any more): as good as removed.
        return Err(ProbeError::gone(&hier.mount_point));
    }
    let mut n = 0;
    for (i, (path, f)) in files.chain.iter_mut().enumerate() {
        let m = match CgroupMemory::read_from(hier.version, parent(path).is_none(), f) {
            Ok(m) => m,
            Err(e) if i == 0 => return Err(e),
            Err(_) => break,
        };
        match out.chain.get_mut(i) {
            Some((p, slot)) if p == path => *slot = m,
            _ => {
                out.chain.truncate(i);
                out.chain.push((path.clone(), m));
            }
        }
        n = i + 1;
    }
    out.chain.truncate(n);
    summarize(host, out, system_t, swap);
    Ok(())
}

/// A cheap look at a watched cgroup whose last sample was calm: one read of the usage of each
/// limited cgroup on its path (`memory.current`, v1 `memory.usage_in_bytes`), no `memory.stat`.
/// Since page cache only ever lowers the working set, `limit − usage` is a floor of what is
/// available; when that floor stays above every term threshold the cgroup is still calm, and
/// the returned bytes are the least distance to one. `None`: the floor is too close (or a read
/// failed, or nothing is limited, or a limit changed since the last full sample: each limited
/// cgroup's limit is read again too, as the kernel sends no event when one is written): take a
/// full sample. `announced`: the cgroup's climb is announced by a `high` event (a tripwire), so
/// its usage is below the last sample's `memory.high` unless an event is on its way: only the
/// limits and `memory.high` are read, not the usage.
pub fn quick_headroom(
    host: &Host,
    files: &mut ChainFiles,
    last: &CgroupSample,
    cfg: &WatchedCgroup,
    warned: bool,
    announced: bool,
) -> Option<u64> {
    let (usage_file, limit_file) = host.memory.as_ref()?.version.usage_and_limit_files();
    let mut headroom: Option<u64> = None;
    for (i, path, m, limit) in last.limited() {
        let (p, f) = files.chain.get_mut(i)?;
        if p != path {
            return None;
        }
        let now_limit = crate::probe::cgroup::parse_limit(f.text(limit_file).ok()??).ok()?;
        if now_limit != m.max {
            return None;
        }
        // A `memory.high` that announced the cgroup's climb (a tripwire) and was changed: its
        // manager may have put `max` back. Only read where one was set: calm cgroups without
        // one are looked at too often for another read.
        if m.high.is_some() {
            let high = crate::probe::cgroup::parse_limit(f.text("memory.high").ok()??).ok()?;
            if high != m.high {
                return None;
            }
        }
        let usage: u64 = if announced {
            m.usage
        } else {
            f.text(usage_file).ok()??.trim().parse().ok()?
        };
        let floor = limit.saturating_sub(usage);
        let term = look_thresholds(cfg, limit, warned).term;
        if floor <= term {
            return None;
        }
        headroom = Some(headroom.map_or(floor - term, |h: u64| h.min(floor - term)));
    }
    headroom
}

/// The watched cgroup's own memory PSI `some` total, µs (v2 `memory.pressure`); `None` where
/// there is none (v1, a kernel without PSI).
pub fn psi_some_total(files: &mut ChainFiles) -> Option<u64> {
    let (_, f) = files.chain.first_mut()?;
    Some(
        Pressure::parse(f.text("memory.pressure").ok()??)
            .ok()?
            .some
            .total_us,
    )
}

/// Whether the last sample leaves every limited cgroup on the path below its usage threshold
/// at the term level (`limit − term`; with `kill`, at the kill level): the v1 thresholds armed
/// there fire on the way up, so the cgroup needs no timed look until then.
pub fn below_usage_thresholds(
    sample: &CgroupSample,
    cfg: &WatchedCgroup,
    kill: bool,
    warned: bool,
) -> bool {
    let mut any = false;
    for (_, _, m, limit) in sample.limited() {
        any = true;
        let t = look_thresholds(cfg, limit, warned);
        let below = if kill { t.kill } else { t.term };
        if below == 0 || m.usage.saturating_add(below) >= limit {
            return false;
        }
    }
    any
}

/// The kernel's OOM kills in a v1 cgroup's whole subtree: its `memory.oom_control` counts only
/// kills in the cgroup itself, so a domain's count is the sum over its descendants.
pub fn v1_subtree_oom_kills(host: &Host, path: &str) -> Option<u64> {
    let hier = host.memory.as_ref()?;
    let mut total = 0u64;
    for cg in hier.walk(&host.root, path) {
        let Some(dir) = hier.dir(&host.root, &cg) else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(dir.join("memory.oom_control")) {
            total = total.saturating_add(flat_keyed(&text, "oom_kill").unwrap_or(0));
        }
    }
    Some(total)
}

/// The child of `domain` holding the most memory among those no watched scope covers (not
/// within one, none within it): where the charge is when the watched processes cannot free it.
pub fn largest_outside(host: &Host, domain: &str, watched: &[&str]) -> Option<(String, u64)> {
    let hier = host.memory.as_ref()?;
    let dir = hier.dir(&host.root, domain)?;
    let (usage_file, _) = hier.version.usage_and_limit_files();
    let mut best: Option<(String, u64)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = crate::probe::text_of(entry.file_name().as_encoded_bytes());
        let child = join_cgroup(domain, &name);
        let covered = watched
            .iter()
            .any(|w| is_within(&child, w) || is_within(w, &child));
        if covered {
            continue;
        }
        let usage = std::fs::read_to_string(entry.path().join(usage_file))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if best.as_ref().is_none_or(|(_, u)| usage > *u) {
            best = Some((child, usage));
        }
    }
    best
}

/// Fills in a sample's available memory, limit and T from its chain.
fn summarize(host: &Host, out: &mut CgroupSample, system_t: u64, swap: SwapSpace) {
    let chain = &out.chain;
    let least = chain
        .iter()
        .filter_map(|(_, m)| Some(trigger_limit(m)?.saturating_sub(m.working_set())))
        .min();
    (out.limit, out.limit_index) = binding_limit(chain, least);
    out.swap_left = swap_left(chain, swap);
    out.available = least.map(|a| a.saturating_add(out.swap_left));
    out.totalpages = match oom_domain(chain) {
        Some(i) => memcg_totalpages(&chain[i].1, swap.total / host.page_size, host.page_size),
        None => system_t,
    };
}

/// How close to the least headroom an outer cgroup's must be to count as the same shortage.
const SAME_LIMIT_SLACK: u64 = 4 << 20;

/// The limit that binds a chain whose least headroom is `least`: the innermost cgroup with that
/// headroom, or an ancestor whose limit is no larger and whose headroom is within
/// [`SAME_LIMIT_SLACK`] (or 1/64 of its limit) of it, the outermost such. A container and its
/// pod at the same limit are one shortage (the pod's usage includes the container's; their
/// working sets differ by a little page cache and the moment each was read): taking the
/// innermost made the container's scope and the pod's two domains, each choosing a victim for
/// the one shortage (seen in tests/kubernetes). An ancestor with a larger limit stays apart: a
/// charge can fill the inner one and leave it room, so its other children are no help.
fn binding_limit(
    chain: &[(String, CgroupMemory)],
    least: Option<u64>,
) -> (Option<u64>, Option<usize>) {
    let Some(least) = least else {
        return (None, None);
    };
    let limited = || {
        chain.iter().enumerate().filter_map(|(i, (_, m))| {
            trigger_limit(m).map(|l| (i, l, l.saturating_sub(m.working_set())))
        })
    };
    let Some((i0, l0, _)) = limited().find(|&(_, _, avail)| avail == least) else {
        return (None, None);
    };
    let mut found = (Some(l0), Some(i0));
    for (i, l, avail) in limited().filter(|&(i, ..)| i > i0) {
        if l <= l0 && avail <= least.saturating_add(SAME_LIMIT_SLACK.max(l / 64)) {
            found = (Some(l), Some(i));
        }
    }
    found
}

/// The machine's swap, from /proc/meminfo. Bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwapSpace {
    /// SwapTotal.
    pub total: u64,
    /// SwapFree.
    pub free: u64,
}

/// Swap a cgroup can still use: SwapFree, capped by each swap limit on its path (innermost
/// first in `chain`); 0 when the cgroup's swappiness is 0.
fn swap_left(chain: &[(String, CgroupMemory)], swap: SwapSpace) -> u64 {
    if chain.first().is_none_or(|(_, m)| m.swappiness == 0) {
        return 0;
    }
    chain
        .iter()
        .filter_map(|(_, m)| m.swap_left())
        .fold(swap.free, u64::min)
}

/// A watched cgroup's thresholds in bytes for its current trigger limit.
pub fn cgroup_thresholds(c: &WatchedCgroup, limit: u64) -> Thresholds {
    Thresholds {
        term: c.available_term.bytes_of(limit),
        kill: c.available_kill.bytes_of(limit),
    }
}

/// The thresholds a calm cgroup is watched for: its term threshold, or its warn threshold
/// when it has one above term and has not crossed it yet (the warning is the first crossing
/// to catch; once warned, term is the next).
pub fn look_thresholds(c: &WatchedCgroup, limit: u64, warned: bool) -> Thresholds {
    let t = cgroup_thresholds(c, limit);
    match c.available_warn.map(|w| w.bytes_of(limit)) {
        Some(w) if !warned && w > t.term => Thresholds {
            term: w,
            kill: t.kill,
        },
        _ => t,
    }
}

/// A cgroup's warn band: below its warn threshold (with the margin of hysteresis half the gap
/// down to term), given whether it was in the band at the last look.
pub fn cgroup_warned(c: &WatchedCgroup, limit: u64, available: u64, warned: bool) -> bool {
    let Some(w) = c.available_warn else {
        return false;
    };
    let band = Thresholds {
        term: w.bytes_of(limit),
        kill: c.available_term.bytes_of(limit),
    };
    let prev = if warned { Level::Term } else { Level::Ok };
    band.level(available, prev) >= Level::Term
}

/// The machine's files the system scope samples, kept open across rounds.
#[derive(Debug)]
pub struct SystemFiles {
    /// /proc/meminfo.
    pub meminfo: KeptFile,
    /// /proc/pressure/memory.
    pub pressure: KeptFile,
    /// /proc/vmstat (the kernel's `oom_kill` count, refaults and major faults).
    pub vmstat: KeptFile,
    /// /proc/swaps and each zram device's mm_stat.
    pub swaps: SwapFiles,
}

impl SystemFiles {
    /// The files under `host`'s root (opened on first read).
    pub fn new(host: &Host) -> Self {
        SystemFiles {
            meminfo: KeptFile::new(host.path("/proc/meminfo")),
            pressure: KeptFile::new(host.path("/proc/pressure/memory")),
            vmstat: KeptFile::new(host.path("/proc/vmstat")),
            swaps: SwapFiles::new(host),
        }
    }

    /// The kernel's stall counters that `needs` (PSI, vmstat) asks for; a counter the kernel
    /// lacks (no PSI) or that cannot be read is `None`, and its terms do not fire.
    pub fn stall_counters(&mut self, needs: (bool, bool), page_size: u64) -> StallCounters {
        let mut c = StallCounters::default();
        if needs.0
            && let Ok(text) = self.pressure.read()
            && let Ok(p) = Pressure::parse(text)
        {
            c.psi_some_us = Some(p.some.total_us);
            c.psi_full_us = p.full.map(|f| f.total_us);
        }
        if needs.1
            && let Ok(text) = self.vmstat.read()
        {
            let refault = flat_keyed(text, "workingset_refault_file");
            c.refault_file = refault.map(|n| n.saturating_mul(page_size));
            c.major_faults = flat_keyed(text, "pgmajfault");
        }
        c
    }

    /// The machine's swap as RAM it can still give back: SwapTotal and SwapFree, or with zram
    /// each zram device counted at what compression saves (see [`crate::decide::swap`]).
    pub fn effective_swap(&mut self, m: &MemInfo) -> EffectiveSwap {
        let plain = EffectiveSwap {
            total: m.swap_total,
            free: m.swap_free,
            zram: false,
        };
        if m.swap_total == 0 {
            return plain;
        }
        let mut e = EffectiveSwap::default();
        match self.swaps.read(|dev, stat| e.add(dev, stat)) {
            Ok(()) if e.zram => e,
            _ => plain,
        }
    }

    /// The kernel's machine-wide OOM kill count, if this kernel reports it.
    pub fn oom_kills(&mut self) -> Option<u64> {
        flat_keyed(self.vmstat.read().ok()?, "oom_kill")
    }
}

/// One sample of the system scope, with its thresholds resolved against MemTotal/SwapTotal.
pub fn sample_system(
    files: &mut SystemFiles,
    config: &Config,
) -> Result<(MemInfo, SystemSample, SystemThresholds), ProbeError> {
    let m = MemInfo::read_kept(&mut files.meminfo)?;
    let s = &config.system;
    let psi = if s.psi_full_avg10_term > 0.0 {
        match files.pressure.read() {
            Ok(text) => Pressure::parse(text)
                .ok()
                .and_then(|p| p.full.map(|f| f.avg10)),
            // No PSI on this kernel: the condition is off.
            Err(e) if e.is_gone() => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let swap = files.effective_swap(&m);
    let sample = SystemSample {
        mem_available: m.mem_available,
        swap_total: swap.total,
        swap_free: swap.free,
        psi_full_avg10: psi,
    };
    let thresholds = SystemThresholds {
        mem: Thresholds {
            term: s.mem_available_term.bytes_of(m.mem_total),
            kill: s.mem_available_kill.bytes_of(m.mem_total),
        },
        swap: Thresholds {
            term: s.swap_free_term.bytes_of(swap.total),
            kill: s.swap_free_kill.bytes_of(swap.total),
        },
        require_both: s.require == crate::config::Require::Both,
        psi_full_avg10_term: s.psi_full_avg10_term,
    };
    Ok((m, sample, thresholds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(swap_max: Option<u64>, swap_usage: u64) -> CgroupMemory {
        CgroupMemory {
            swap_max,
            swap_usage,
            swap_accounted: true,
            swappiness: 60,
            ..CgroupMemory::default()
        }
    }

    #[test]
    fn swap_left_is_the_tightest_of_the_machine_and_every_limit_on_the_path() {
        const MIB: u64 = 1 << 20;
        let swap = SwapSpace {
            total: 1024 * MIB,
            free: 900 * MIB,
        };
        let chain = |own: CgroupMemory, parent: CgroupMemory| {
            vec![("/a/b".to_string(), own), ("/a".to_string(), parent)]
        };
        // No limits: the machine's free swap.
        assert_eq!(
            swap_left(&chain(memory(None, 0), memory(None, 0)), swap),
            900 * MIB
        );
        // Its own limit, partly used.
        let c = chain(memory(Some(64 * MIB), 16 * MIB), memory(None, 0));
        assert_eq!(swap_left(&c, swap), 48 * MIB);
        // An ancestor's tighter limit.
        let c = chain(
            memory(Some(64 * MIB), 0),
            memory(Some(128 * MIB), 100 * MIB),
        );
        assert_eq!(swap_left(&c, swap), 28 * MIB);
        // Used past the limit (limit lowered): none left, no underflow.
        let c = chain(memory(Some(8 * MIB), 16 * MIB), memory(None, 0));
        assert_eq!(swap_left(&c, swap), 0);
        // The machine is the limit.
        let low = SwapSpace {
            total: 1024 * MIB,
            free: 10 * MIB,
        };
        let c = chain(memory(Some(64 * MIB), 0), memory(None, 0));
        assert_eq!(swap_left(&c, low), 10 * MIB);
        // No swap on the machine, or swappiness 0: nothing.
        assert_eq!(swap_left(&c, SwapSpace::default()), 0);
        let mut own = memory(None, 0);
        own.swappiness = 0;
        assert_eq!(swap_left(&chain(own, memory(None, 0)), swap), 0);
    }

    #[test]
    fn an_ancestor_at_the_same_limit_and_headroom_is_the_one_shortage() {
        const MIB: u64 = 1 << 20;
        let cg = |max: u64, usage: u64| CgroupMemory {
            max: Some(max * MIB),
            usage: usage * MIB,
            ..CgroupMemory::default()
        };
        let chain = |inner: CgroupMemory, outer: CgroupMemory| {
            vec![("/pod/c".to_string(), inner), ("/pod".to_string(), outer)]
        };
        let least = |c: &[(String, CgroupMemory)]| {
            c.iter()
                .filter_map(|(_, m)| Some(trigger_limit(m)?.saturating_sub(m.working_set())))
                .min()
        };
        let table = [
            // (inner max, usage, outer max, usage, binding index)
            // A pod and its one container at one limit: the pod, whichever reads fuller.
            (256, 230, 256, 229, 1),
            (256, 230, 256, 231, 1),
            // A parent with a larger limit stays apart however close its headroom.
            (100, 98, 300, 296, 0),
            // The same limit but far more room in the ancestor: the container.
            (256, 230, 256, 100, 0),
            // A tighter ancestor is the binding one anyway.
            (512, 100, 256, 250, 1),
        ];
        for (row, (im, iu, om, ou, want)) in table.into_iter().enumerate() {
            let c = chain(cg(im, iu), cg(om, ou));
            let (_, at) = binding_limit(&c, least(&c));
            assert_eq!(at, Some(want), "row {row}");
        }
        assert_eq!(binding_limit(&[], None), (None, None));
    }

    #[test]
    fn an_oom_counts_only_in_the_cgroup_itself() {
        const MIB: u64 = 1 << 20;
        let level = |max: Option<u64>, oom_events| CgroupMemory {
            max,
            oom_events,
            ..CgroupMemory::default()
        };
        let sample = |own: CgroupMemory, pod: CgroupMemory| CgroupSample {
            chain: vec![("/pod/a".into(), own), ("/pod".into(), pod)],
            ..CgroupSample::default()
        };
        let before = sample(level(None, 0), level(Some(256 * MIB), 3)).oom_counts();
        // A sibling's OOM at the pod's limit is not an OOM of this cgroup.
        let sibling = sample(level(None, 0), level(Some(256 * MIB), 4)).oom_counts();
        assert!(!sibling.oom_rose_since(&before));
        // Its own OOM.
        let own = sample(level(None, 1), level(Some(256 * MIB), 4)).oom_counts();
        assert!(own.oom_rose_since(&before));
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("/kubepods/**"), "/kubepods");
        assert_eq!(literal_prefix("/kubepods/*/ctr"), "/kubepods");
        assert_eq!(literal_prefix("/app"), "/app");
        assert_eq!(literal_prefix("/*"), "/");
        assert_eq!(literal_prefix("/a/b*"), "/a");
    }
}
