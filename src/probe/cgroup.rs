//! The memory cgroup hierarchy: where it is mounted (v1, v2 or hybrid, from mountinfo) and what
//! each cgroup's memory looks like (limit, usage, reclaimable cache, swap, OOM state).

use std::path::{Path, PathBuf};

use super::{ProbeError, flat_keyed, read_optional, read_text, under};

/// Which cgroup version provides the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The legacy memory controller (`memory.limit_in_bytes`, `memory.oom_control`).
    V1,
    /// The unified hierarchy (`memory.max`, `memory.events`).
    V2,
}

impl CgroupVersion {
    /// `v1` or `v2`, for logs and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    }

    /// The files of a cgroup's charged memory and its hard limit.
    pub fn usage_and_limit_files(self) -> (&'static str, &'static str) {
        match self {
            CgroupVersion::V1 => ("memory.usage_in_bytes", "memory.limit_in_bytes"),
            CgroupVersion::V2 => ("memory.current", "memory.max"),
        }
    }
}

/// The mounted hierarchy that carries the memory controller.
///
/// On a hybrid host (v1 controllers plus an empty cgroup2 mount) the v1 memory mount wins: that
/// is where limits are enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryHierarchy {
    /// v1 or v2.
    pub version: CgroupVersion,
    /// The mount point as mountinfo names it, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: String,
    /// The mount's root within the hierarchy (`/` unless a container bind-mounted a subtree).
    pub mount_root: String,
}

impl MemoryHierarchy {
    /// Finds the memory hierarchy from `<root>/proc/self/mountinfo`; `None` when there is none
    /// (cgroup scopes then cannot be watched, the system scope still can).
    pub fn discover(root: &Path) -> Result<Option<Self>, ProbeError> {
        let path = under(root, "/proc/self/mountinfo");
        let text = read_text(&path)?;
        let mut unified = None;
        for line in text.lines() {
            let Some(m) = MountLine::parse(line) else {
                continue;
            };
            match m.fstype {
                "cgroup" if m.super_options.split(',').any(|o| o == "memory") => {
                    return Ok(Some(MemoryHierarchy {
                        version: CgroupVersion::V1,
                        mount_point: m.mount_point,
                        mount_root: m.root,
                    }));
                }
                "cgroup2" if unified.is_none() => unified = Some(m),
                _ => {}
            }
        }
        let Some(m) = unified else { return Ok(None) };
        let controllers = read_optional(&under(
            root,
            &format!("{}/cgroup.controllers", m.mount_point),
        ))?;
        let has_memory = controllers.is_some_and(|c| c.split_whitespace().any(|w| w == "memory"));
        Ok(has_memory.then_some(MemoryHierarchy {
            version: CgroupVersion::V2,
            mount_point: m.mount_point,
            mount_root: m.root,
        }))
    }

    /// The directory of cgroup `path` (as /proc/PID/cgroup names it) under `root`; `None` when
    /// the cgroup lies outside the part of the hierarchy this mount shows (a container that
    /// bind-mounted only its own subtree).
    pub fn dir(&self, root: &Path, path: &str) -> Option<PathBuf> {
        let rel = if self.mount_root == "/" {
            path
        } else if is_within(path, &self.mount_root) {
            &path[self.mount_root.len()..]
        } else {
            return None;
        };
        Some(under(root, &self.mount_point).join(rel.trim_start_matches('/')))
    }

    /// The memory cgroup of a process from the text of `/proc/PID/cgroup`.
    pub fn path_of_process(&self, proc_cgroup: &str) -> Option<String> {
        proc_cgroup.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = match self.version {
                CgroupVersion::V1 => controllers.split(',').any(|c| c == "memory"),
                CgroupVersion::V2 => controllers.is_empty(),
            };
            wanted.then(|| path.to_string())
        })
    }

    /// The path of every cgroup in the hierarchy below `start` (inclusive), depth first; for
    /// resolving globs against the live tree. Cgroups removed during the walk are skipped.
    pub fn walk(&self, root: &Path, start: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![normalize(start)];
        while let Some(path) = stack.pop() {
            let Some(dir) = self.dir(root, &path) else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut children: Vec<String> = entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .map(|name| join_cgroup(&path, &name))
                .collect();
            children.sort();
            stack.extend(children.into_iter().rev());
            out.push(path);
        }
        out
    }
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The path of the child `name` of cgroup `parent`.
pub fn join_cgroup(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl MemoryHierarchy {
    /// The thread-group ids in cgroup `path` and its descendants, from their `cgroup.procs`:
    /// a cgroup scope's candidates without reading every process on the machine. Cgroups
    /// removed meanwhile are skipped.
    pub fn subtree_pids(&self, root: &Path, path: &str) -> Vec<i32> {
        let mut pids = Vec::new();
        for cg in self.walk(root, path) {
            let Some(dir) = self.dir(root, &cg) else {
                continue;
            };
            if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

/// The parent of a cgroup path, `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" || path.is_empty() {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => Some("/"),
    }
}

/// True when `path` is `scope` or lies below it.
pub fn is_within(path: &str, scope: &str) -> bool {
    scope == "/"
        || path == scope
        || (path.starts_with(scope) && path.as_bytes().get(scope.len()) == Some(&b'/'))
}

struct MountLine<'a> {
    root: String,
    mount_point: String,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> MountLine<'a> {
    /// `id parent maj:min root mount_point options [optional...] - fstype source super_options`
    fn parse(line: &'a str) -> Option<Self> {
        let (left, right) = line.split_once(" - ")?;
        let mut l = left.split(' ');
        let (_, _, _, root, mount_point) = (l.next()?, l.next()?, l.next()?, l.next()?, l.next()?);
        let mut r = right.split(' ');
        let (fstype, _source, super_options) = (r.next()?, r.next()?, r.next().unwrap_or(""));
        Some(MountLine {
            root: unescape_octal(root),
            mount_point: unescape_octal(mount_point),
            fstype,
            super_options,
        })
    }
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Only a three-digit escape that fits a byte is one; anything else is taken literally.
        let escaped = (b[i] == b'\\' && i + 3 < b.len())
            .then(|| &b[i + 1..i + 4])
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| {
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0')
            })
            .and_then(|v| u8::try_from(v).ok());
        if let Some(v) = escaped {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    super::text_of(&out)
}

/// A limit as the kernel writes it: `None` means unlimited (v2 `max`, v1 PAGE_COUNTER_MAX).
pub fn parse_limit(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    let v: u64 = t.parse().map_err(|_| format!("not a limit: {t:?}"))?;
    // v1 prints PAGE_COUNTER_MAX * PAGE_SIZE (0x7FFFFFFFFFFFF000 with 4 KiB pages) for "none".
    Ok((v < (1u64 << 62)).then_some(v))
}

/// The name under which [`CgroupFiles`] hands out the machine's `vm.swappiness` (cgroup v2 has
/// no per-cgroup value).
pub const SWAPPINESS: &str = "/proc/sys/vm/swappiness";

/// The path of a cgroup's file `name` in `dir`, or the machine's `swappiness` for
/// [`SWAPPINESS`].
pub(crate) fn file_in(dir: &Path, swappiness: &Path, name: &str) -> PathBuf {
    if name == SWAPPINESS {
        swappiness.to_path_buf()
    } else {
        dir.join(name)
    }
}

/// Where [`CgroupMemory::read_from`] gets a cgroup's files: read once, or kept open across
/// samples ([`super::kept::KeptFile`]) so that sampling makes no allocation.
pub trait CgroupFiles {
    /// The text of the cgroup's file `name` (or of [`SWAPPINESS`]); `Ok(None)` when it does
    /// not exist (an optional kernel feature).
    fn text(&mut self, name: &str) -> Result<Option<&str>, ProbeError>;
    /// The path of `name`, for errors.
    fn path_of(&self, name: &str) -> PathBuf;
    /// The error for a file that must exist: the cgroup was removed.
    fn missing(&self, name: &str) -> ProbeError {
        ProbeError::gone(self.path_of(name))
    }
}

/// A cgroup's files read once each (`oomward rank`, tests).
struct OnceFiles {
    dir: PathBuf,
    swappiness: PathBuf,
    text: String,
}

impl CgroupFiles for OnceFiles {
    fn text(&mut self, name: &str) -> Result<Option<&str>, ProbeError> {
        match read_optional(&self.path_of(name))? {
            Some(t) => {
                self.text = t;
                Ok(Some(&self.text))
            }
            None => Ok(None),
        }
    }

    fn path_of(&self, name: &str) -> PathBuf {
        file_in(&self.dir, &self.swappiness, name)
    }
}

fn limit_if_present(
    files: &mut impl CgroupFiles,
    name: &str,
) -> Result<Option<Option<u64>>, ProbeError> {
    match files.text(name)? {
        None => Ok(None),
        Some(t) => match parse_limit(t) {
            Ok(v) => Ok(Some(v)),
            Err(w) => Err(ProbeError::parse(&files.path_of(name), w)),
        },
    }
}

/// The number in file `name`; `Ok(None)` when it does not exist, an error when it holds
/// something else.
fn number(files: &mut impl CgroupFiles, name: &str) -> Result<Option<u64>, ProbeError> {
    match files.text(name)? {
        None => Ok(None),
        Some(t) => match t.trim().parse() {
            Ok(v) => Ok(Some(v)),
            Err(_) => Err(ProbeError::parse(&files.path_of(name), "not a number")),
        },
    }
}

/// The number in file `name`, or `default` when it does not exist or holds something else
/// (a figure that only refines the picture).
fn number_or(files: &mut impl CgroupFiles, name: &str, default: u64) -> Result<u64, ProbeError> {
    Ok(files
        .text(name)?
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(default))
}

/// One cgroup's memory state. Sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupMemory {
    /// The hard limit (`memory.max`, v1 `memory.limit_in_bytes`); `None` = unlimited.
    pub max: Option<u64>,
    /// v2 `memory.high` (throttling, never OOM); `None` = unlimited or v1.
    pub high: Option<u64>,
    /// Charged memory (`memory.current`, v1 `memory.usage_in_bytes`).
    pub usage: u64,
    /// Page cache on the inactive list (`inactive_file`, v1 `total_inactive_file`, whole
    /// subtree): the first the kernel reclaims.
    pub inactive_file: u64,
    /// Page cache on the active list (`active_file`, v1 `total_active_file`). Reclaimable too:
    /// the kernel deactivates it under pressure, and the classic LRU moves any file read twice
    /// here, so leaving it out would count a re-read file as memory in use.
    pub active_file: u64,
    /// Page cache mapped into processes (`file_mapped`, v1 `total_mapped_file`): their code and
    /// mapped files. Reclaiming it makes them fault it straight back in (thrashing), so it
    /// counts as in use.
    pub mapped_file: u64,
    /// Shared memory and tmpfs (`shmem`, v1 `total_shmem`): swap-backed, on the anonymous LRU,
    /// never in `inactive_file`/`active_file`, yet counted in `mapped_file` where mapped.
    pub shmem: u64,
    /// Swap in use by the cgroup's subtree (v2 `memory.swap.current`, v1 memsw usage − usage).
    pub swap_usage: u64,
    /// Swap the cgroup may use beyond `max`: v2 `memory.swap.max`, v1 `memsw.limit - limit`;
    /// `None` = unlimited or not accounted.
    pub swap_max: Option<u64>,
    /// Whether swap is accounted for this cgroup at all (v1 `memsw` files, v2 `memory.swap.max`).
    pub swap_accounted: bool,
    /// `memory.swappiness` (v1) or `vm.swappiness` (v2 uses the global value).
    pub swappiness: u64,
    /// v1 `oom_kill_disable`.
    pub oom_kill_disable: bool,
    /// v1 `under_oom`: tasks are stuck waiting for the OOM to resolve.
    pub under_oom: bool,
    /// v2 `memory.events` `oom` count.
    pub oom_events: u64,
    /// v2 `memory.events` `high` + `max` counts: the kernel throttled the cgroup at its
    /// `memory.high` or reclaimed at its `memory.max` (pressure, not yet an OOM).
    pub pressure_events: u64,
    /// Kernel OOM kills in this cgroup (v1 `oom_control` `oom_kill`, v2 `memory.events` `oom_kill`).
    pub oom_kill: u64,
    /// v2 `memory.oom.group`.
    pub oom_group: bool,
}

impl CgroupMemory {
    /// Reads the memory state of cgroup `path`. A removed cgroup gives an error whose
    /// [`ProbeError::is_gone`] is true.
    pub fn read(hier: &MemoryHierarchy, root: &Path, path: &str) -> Result<Self, ProbeError> {
        let why = "outside the mounted part of the hierarchy";
        let outside = || std::io::Error::new(std::io::ErrorKind::NotFound, why);
        let dir = hier
            .dir(root, path)
            .ok_or_else(|| ProbeError::io(path, outside()))?;
        let mut files = OnceFiles {
            dir,
            swappiness: under(root, "/proc/sys/vm/swappiness"),
            text: String::new(),
        };
        Self::read_from(hier.version, parent(path).is_none(), &mut files)
    }

    /// Reads the memory state from `files` (a cgroup's directory, read once or kept open).
    /// `is_root`: the v2 root has no memory.current.
    pub fn read_from(
        version: CgroupVersion,
        is_root: bool,
        files: &mut impl CgroupFiles,
    ) -> Result<Self, ProbeError> {
        match version {
            CgroupVersion::V1 => Self::read_v1(files),
            CgroupVersion::V2 => Self::read_v2(is_root, files),
        }
    }

    /// The v1 files: hierarchical totals in `memory.stat`, swap as `memsw` (memory + swap).
    fn read_v1(files: &mut impl CgroupFiles) -> Result<Self, ProbeError> {
        let mut m = CgroupMemory {
            max: limit_if_present(files, "memory.limit_in_bytes")?.flatten(),
            ..CgroupMemory::default()
        };
        m.usage = number(files, "memory.usage_in_bytes")?
            .ok_or_else(|| files.missing("memory.usage_in_bytes"))?;
        let Some(stat) = files.text("memory.stat")? else {
            return Err(files.missing("memory.stat"));
        };
        // The hierarchical totals where the kernel has them (use_hierarchy).
        let total = |local: &str, whole: &str| {
            flat_keyed(stat, whole)
                .or_else(|| flat_keyed(stat, local))
                .unwrap_or(0)
        };
        m.inactive_file = total("inactive_file", "total_inactive_file");
        m.active_file = total("active_file", "total_active_file");
        m.mapped_file = total("mapped_file", "total_mapped_file");
        m.shmem = total("shmem", "total_shmem");
        if let Some(memsw_max) = limit_if_present(files, "memory.memsw.limit_in_bytes")? {
            m.swap_accounted = true;
            m.swap_max = match (memsw_max, m.max) {
                (Some(sw), Some(mx)) => Some(sw.saturating_sub(mx)),
                (Some(sw), None) => Some(sw),
                (None, _) => None,
            };
            // Without a usage that reads, none is seen in swap.
            let memsw_usage = number_or(files, "memory.memsw.usage_in_bytes", m.usage)?;
            m.swap_usage = memsw_usage.saturating_sub(m.usage);
        }
        m.swappiness = number_or(files, "memory.swappiness", 60)?;
        if let Some(oc) = files.text("memory.oom_control")? {
            m.oom_kill_disable = flat_keyed(oc, "oom_kill_disable") == Some(1);
            m.under_oom = flat_keyed(oc, "under_oom") == Some(1);
            m.oom_kill = flat_keyed(oc, "oom_kill").unwrap_or(0);
        }
        Ok(m)
    }

    /// The v2 files: `memory.stat` is already hierarchical, swap has files of its own.
    fn read_v2(is_root: bool, files: &mut impl CgroupFiles) -> Result<Self, ProbeError> {
        let mut m = CgroupMemory {
            max: limit_if_present(files, "memory.max")?.flatten(),
            high: limit_if_present(files, "memory.high")?.flatten(),
            ..CgroupMemory::default()
        };
        m.usage = match number(files, "memory.current")? {
            Some(v) => v,
            // The v2 root has no memory.current; its usage is the machine's.
            None if is_root => 0,
            None => return Err(files.missing("memory.current")),
        };
        if let Some(stat) = files.text("memory.stat")? {
            m.inactive_file = flat_keyed(stat, "inactive_file").unwrap_or(0);
            m.active_file = flat_keyed(stat, "active_file").unwrap_or(0);
            m.mapped_file = flat_keyed(stat, "file_mapped").unwrap_or(0);
            m.shmem = flat_keyed(stat, "shmem").unwrap_or(0);
        }
        if let Some(max) = limit_if_present(files, "memory.swap.max")? {
            m.swap_accounted = true;
            m.swap_max = max;
            m.swap_usage = number_or(files, "memory.swap.current", 0)?;
        }
        m.swappiness = number_or(files, SWAPPINESS, 60)?;
        if let Some(ev) = files.text("memory.events")? {
            m.oom_events = flat_keyed(ev, "oom").unwrap_or(0);
            m.pressure_events = flat_keyed(ev, "high")
                .unwrap_or(0)
                .saturating_add(flat_keyed(ev, "max").unwrap_or(0));
            m.oom_kill = flat_keyed(ev, "oom_kill").unwrap_or(0);
        }
        m.oom_group = files
            .text("memory.oom.group")?
            .is_some_and(|t| t.trim() == "1");
        Ok(m)
    }

    /// The memory the kernel cannot simply drop: usage minus the page cache no process maps.
    /// Like the kernel's MemAvailable, active cache counts as reclaimable, not only inactive;
    /// unlike it, mapped cache does not (dropping a running program's code is a thrash, not a
    /// rescue). Mapped shared memory is not on the file lists at all, so only the mapped cache
    /// beyond `shmem` is taken off them.
    pub fn working_set(&self) -> u64 {
        let mapped_cache = self.mapped_file.saturating_sub(self.shmem);
        let reclaimable = self
            .inactive_file
            .saturating_add(self.active_file)
            .saturating_sub(mapped_cache);
        self.usage.saturating_sub(reclaimable)
    }

    /// Swap this cgroup itself still allows (`None`: no limit of its own).
    pub fn swap_left(&self) -> Option<u64> {
        self.swap_max.map(|max| max.saturating_sub(self.swap_usage))
    }
}

/// Reads `path` and each of its ancestors, innermost first, for finding the OOM domain. An
/// ancestor that cannot be read (outside a container's view) ends the chain.
pub fn read_chain(
    hier: &MemoryHierarchy,
    root: &Path,
    path: &str,
) -> Result<Vec<(String, CgroupMemory)>, ProbeError> {
    let mut chain = vec![(path.to_string(), CgroupMemory::read(hier, root, path)?)];
    let mut cur = parent(path);
    while let Some(p) = cur {
        match CgroupMemory::read(hier, root, p) {
            Ok(m) => chain.push((p.to_string(), m)),
            Err(_) => break,
        }
        cur = parent(p);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_lines_parse_with_escapes_and_optional_fields() {
        let m = MountLine::parse(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 master:1 - cgroup cgroup rw,memory",
        )
        .unwrap();
        assert_eq!(m.fstype, "cgroup");
        assert_eq!(m.super_options, "rw,memory");
        assert_eq!(m.mount_point, "/sys/fs/cgroup/memory");
        assert_eq!(unescape_octal(r"/mnt/a\040b"), "/mnt/a b");
        assert!(MountLine::parse("garbage").is_none());
    }

    #[test]
    fn limits_treat_max_and_page_counter_max_as_unlimited() {
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("9223372036854771712\n"), Ok(None));
        assert_eq!(parse_limit("268435456"), Ok(Some(268435456)));
        assert!(parse_limit("").is_err());
    }

    #[test]
    fn process_cgroup_lines_pick_the_memory_hierarchy() {
        let text = "9:name=systemd:/\n4:memory:/app/x\n0::/unified/path\n";
        let v1 = MemoryHierarchy {
            version: CgroupVersion::V1,
            mount_point: "/sys/fs/cgroup/memory".into(),
            mount_root: "/".into(),
        };
        let v2 = MemoryHierarchy {
            version: CgroupVersion::V2,
            ..v1.clone()
        };
        assert_eq!(v1.path_of_process(text).as_deref(), Some("/app/x"));
        assert_eq!(v2.path_of_process(text).as_deref(), Some("/unified/path"));
        assert_eq!(v1.path_of_process("0::/\n"), None);
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/anything", "/"));
    }
}
