//! Per-process facts from `/proc/PID/*`: what the kernel scores a process with and what policy
//! rules match on.
//!
//! A process may exit between being listed and being read; every reader turns that into
//! `Ok(None)` so a scan goes on without it.

use std::path::Path;

use super::{Host, ProbeError, read_text};

/// `PF_KTHREAD` in `/proc/PID/stat` flags.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// What oomward knows about one process (a thread group) at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSnapshot {
    /// Thread-group id.
    pub pid: i32,
    /// `/proc/PID/comm` as stat shows it (set by the process; never trust it alone).
    pub comm: String,
    /// State letter from stat (`R`, `S`, `D`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group id, for `process_group` kills.
    pub pgrp: i32,
    /// Kernel task flags (stat field 9).
    pub flags: u32,
    /// Start time in clock ticks since boot (stat field 22): with the pid, the identity of a
    /// process across PID reuse.
    pub starttime: u64,
    /// Resident pages as the kernel's OOM killer counts them (stat field 24).
    pub rss_pages: u64,
    /// Swapped-out pages (`VmSwap`).
    pub swap_pages: u64,
    /// Page-table pages (`VmPTE`).
    pub pgtables_pages: u64,
    /// Resident private anonymous pages (`RssAnon`): with the swap, what its death frees.
    pub rss_anon_pages: u64,
    /// Resident shared memory and tmpfs pages it maps (`RssShmem`): they stay charged after it
    /// dies.
    pub rss_shmem_pages: u64,
    /// False for zombies and exiting processes: nothing to free, never a candidate.
    pub has_mm: bool,
    /// Real uid; `None` if status could not be parsed.
    pub uid: Option<u32>,
    /// Effective uid; `None` if status could not be parsed.
    pub euid: Option<u32>,
    /// `/proc/PID/oom_score_adj`.
    pub oom_score_adj: i32,
    /// Executable path with ` (deleted)` removed; `None` when unreadable (another user's process
    /// read by an unprivileged user) or absent (kernel threads).
    pub exe: Option<String>,
    /// Whether its `exe` means the host's file of that name: the process is in the host's mount
    /// namespace (PID 1's), or runs the very file (device and inode) the host has at that path.
    pub exe_in_host_mntns: bool,
    /// Arguments joined by single spaces.
    pub cmdline: String,
    /// Memory cgroup path; `None` without a memory hierarchy.
    pub cgroup: Option<String>,
    /// The pod it belongs to, when its cgroup is one kubelet made (names from kubelet's log
    /// directories when they can be read).
    pub kube: Option<super::kube::KubeIdentity>,
    /// systemd's `ManagedOOMPreference=` that applies to it (on a root-owned cgroup of the
    /// unified hierarchy), with the cgroup that set it.
    pub oomd: Option<(super::oomd::OomdPreference, String)>,
}

impl ProcessSnapshot {
    /// Kernel threads own no user memory and are never candidates.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// The fields of `/proc/PID/stat` oomward uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Field 2 without the parentheses.
    pub comm: String,
    /// Field 3.
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 5.
    pub pgrp: i32,
    /// Field 9.
    pub flags: u32,
    /// Field 20.
    pub num_threads: u64,
    /// Field 22.
    pub starttime: u64,
    /// Field 24, pages.
    pub rss: u64,
}

impl Stat {
    /// Parses stat text. The comm may contain spaces and parentheses, so the fields after it are
    /// found from the *last* `)`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let open = text.find('(').ok_or("no '(' before comm")?;
        let close = text.rfind(')').ok_or("no ')' after comm")?;
        if close < open {
            return Err("comm parentheses out of order".into());
        }
        let comm = text[open + 1..close].to_string();
        let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
        // rest[0] is field 3.
        let field = |n: usize| -> Result<&str, String> {
            rest.get(n - 3)
                .copied()
                .ok_or_else(|| format!("stat is short: no field {n}"))
        };
        fn number<T: std::str::FromStr>(n: usize, f: &str) -> Result<T, String> {
            f.parse()
                .map_err(|_| format!("stat field {n} is not a number: {f:?}"))
        }
        let num = |n: usize| number::<u64>(n, field(n)?);
        let int = |n: usize| number::<i32>(n, field(n)?);
        Ok(Stat {
            comm,
            state: field(3)?.chars().next().unwrap_or('?'),
            ppid: int(4)?,
            pgrp: int(5)?,
            flags: num(9)? as u32,
            num_threads: num(20)?,
            starttime: num(22)?,
            rss: num(24)?,
        })
    }
}

/// The fields of `/proc/PID/status` oomward uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// `VmSwap` in KiB.
    pub vm_swap_kib: u64,
    /// `VmPTE` in KiB.
    pub vm_pte_kib: u64,
    /// `RssAnon` in KiB.
    pub rss_anon_kib: u64,
    /// `RssShmem` in KiB.
    pub rss_shmem_kib: u64,
    /// Whether any `Vm*` line is present: the kernel prints them only for a task with an mm.
    pub has_mm: bool,
    /// First field of `Uid:` (real uid).
    pub uid: Option<u32>,
    /// Second field of `Uid:` (effective uid).
    pub euid: Option<u32>,
}

impl Status {
    /// Parses status text; unknown lines are ignored, a short file yields what it has.
    pub fn parse(text: &str) -> Self {
        let mut s = Status::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let kib = value.split_whitespace().next().and_then(|v| v.parse().ok());
            match key {
                "VmSwap" => s.vm_swap_kib = kib.unwrap_or(0),
                "VmPTE" => s.vm_pte_kib = kib.unwrap_or(0),
                "RssAnon" => s.rss_anon_kib = kib.unwrap_or(0),
                "RssShmem" => s.rss_shmem_kib = kib.unwrap_or(0),
                "Uid" => {
                    let mut ids = value.split_whitespace().map(|v| v.parse().ok());
                    s.uid = ids.next().flatten();
                    s.euid = ids.next().flatten();
                }
                _ => {}
            }
            if key == "VmSize" {
                s.has_mm = true;
            }
        }
        s
    }
}

/// Lists the thread groups in `<root>/proc`, in ascending pid order (readdir of /proc yields
/// thread-group leaders only).
pub fn list_pids(host: &Host) -> Result<Vec<i32>, ProbeError> {
    let mut pids = Vec::new();
    list_pids_into(host, &mut pids)?;
    Ok(pids)
}

/// [`list_pids`] into a buffer kept across passes (no allocation per entry: the names are read
/// with getdents into one buffer).
pub fn list_pids_into(host: &Host, pids: &mut Vec<i32>) -> Result<(), ProbeError> {
    let dir = host.path("/proc");
    let io = |source: std::io::Error| ProbeError::io(&dir, source);
    pids.clear();
    crate::sys::each_name(&dir, |name| {
        if let Some(pid) = std::str::from_utf8(name)
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|p| *p > 0)
        {
            pids.push(pid);
        }
    })
    .map_err(io)?;
    pids.sort_unstable();
    Ok(())
}

/// Why some facts of a process could not be read although the process exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hidden {
    /// `/proc/PID/exe` was denied (another user's process, read without privilege).
    pub exe: bool,
}

/// Reads one process. `Ok(None)` when it is gone; facts hidden by permissions are left `None`
/// and reported in [`Hidden`].
pub fn read_process(
    host: &Host,
    pid: i32,
) -> Result<Option<(ProcessSnapshot, Hidden)>, ProbeError> {
    read_process_with(host, pid, true)
}

/// Like [`read_process`]; `cmdline` false skips `/proc/PID/cmdline`, whose read takes the
/// process's mmap lock and can hang behind a process stuck in D state holding it.
pub fn read_process_with(
    host: &Host,
    pid: i32,
    cmdline: bool,
) -> Result<Option<(ProcessSnapshot, Hidden)>, ProbeError> {
    match read_process_inner(host, pid, cmdline) {
        Err(e) if e.is_gone() => Ok(None),
        other => other,
    }
}

fn read_process_inner(
    host: &Host,
    pid: i32,
    cmdline: bool,
) -> Result<Option<(ProcessSnapshot, Hidden)>, ProbeError> {
    let base = host.path(&format!("/proc/{pid}"));
    let stat_path = base.join("stat");
    let stat =
        Stat::parse(&read_text(&stat_path)?).map_err(|w| ProbeError::parse(&stat_path, w))?;
    let mut hidden = Hidden::default();
    let mut snap = ProcessSnapshot {
        pid,
        comm: stat.comm,
        state: stat.state,
        ppid: stat.ppid,
        pgrp: stat.pgrp,
        flags: stat.flags,
        starttime: stat.starttime,
        rss_pages: stat.rss,
        ..ProcessSnapshot::default()
    };
    if snap.is_kernel_thread() {
        return Ok(Some((snap, hidden)));
    }
    let status = Status::parse(&read_text(&base.join("status"))?);
    snap.uid = status.uid;
    snap.euid = status.euid;
    // A thread-group leader that exited before its threads: the kernel scores the group
    // through a live thread's mm (find_lock_task_mm), so read one.
    let leader_gone = !status.has_mm && stat.num_threads > 1;
    let (rss, st) = leader_gone
        .then(|| live_thread_memory(&base, pid))
        .flatten()
        .unwrap_or((stat.rss, status));
    let pages = |kib| kib_pages(kib, host.page_size);
    snap.has_mm = st.has_mm;
    snap.rss_pages = rss;
    snap.swap_pages = pages(st.vm_swap_kib);
    snap.pgtables_pages = pages(st.vm_pte_kib);
    snap.rss_anon_pages = pages(st.rss_anon_kib);
    snap.rss_shmem_pages = pages(st.rss_shmem_kib);
    let adj_path = base.join("oom_score_adj");
    let adj = read_text(&adj_path)?;
    snap.oom_score_adj = adj
        .trim()
        .parse()
        .map_err(|_| ProbeError::parse(&adj_path, format!("not a number: {:?}", adj.trim())))?;
    if cmdline {
        snap.cmdline = read_cmdline(&base.join("cmdline"))?;
    }
    match std::fs::read_link(base.join("exe")) {
        Ok(link) => {
            let s = super::text_of(link.as_os_str().as_encoded_bytes());
            snap.exe = Some(s.strip_suffix(" (deleted)").unwrap_or(&s).to_string());
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => hidden.exe = true,
        Err(_) => {}
    }
    let own_ns = std::fs::read_link(base.join("ns/mnt"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    snap.exe_in_host_mntns = match (host.exe_mount_ns(), own_ns.as_deref()) {
        (Some(h), Some(p)) if h == p => true,
        // Another mount namespace (a sandboxed service, a container): its exe path means the
        // host's file only if it is that very file.
        (Some(_), Some(_)) => snap
            .exe
            .as_deref()
            .is_some_and(|exe| runs_the_hosts_file(host, &base, exe)),
        // Without namespace information (fixture trees, old kernels) there is only one view.
        (None, _) => true,
        (Some(_), None) => false,
    };
    if let Some(hier) = &host.memory {
        let text = read_text(&base.join("cgroup"))?;
        snap.cgroup = hier.path_of_process(&text).map(|c| host.cgroup_path(c));
        snap.kube = snap.cgroup.as_deref().and_then(|c| host.pods.identity(c));
        snap.oomd = snap
            .cgroup
            .as_deref()
            .and_then(|c| super::oomd::preference(hier, &host.root, c));
    }
    Ok(Some((snap, hidden)))
}

/// Whether the process at `base` runs the file that the host (PID 1's mount namespace, seen
/// through `/proc/1/root`, else oomward's own view) has at `exe`: same device and inode. A process in another mount
/// namespace that runs the host's own `/usr/sbin/sshd` is the host's sshd; a container's own
/// `/usr/sbin/sshd` is another file and never gains the host path's protection.
fn runs_the_hosts_file(host: &Host, base: &Path, exe: &str) -> bool {
    let Ok(mine) = crate::sys::file_id(&base.join("exe")) else {
        return false;
    };
    let hosts = host.exe_root.join(exe.trim_start_matches('/'));
    crate::sys::file_id(&hosts).is_ok_and(|theirs| theirs == mine)
}

/// KiB from a status line in pages; a nonsense value saturates instead of wrapping.
fn kib_pages(kib: u64, page_size: u64) -> u64 {
    kib.saturating_mul(1024) / page_size
}

fn live_thread_memory(base: &Path, pid: i32) -> Option<(u64, Status)> {
    let tasks = std::fs::read_dir(base.join("task")).ok()?;
    for entry in tasks.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(tid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if tid == pid {
            continue;
        }
        // A thread may exit while we look: try the next one.
        let Ok(status) = read_text(&entry.path().join("status")) else {
            continue;
        };
        let st = Status::parse(&status);
        if !st.has_mm {
            continue;
        }
        let Some(stat) = read_text(&entry.path().join("stat"))
            .ok()
            .and_then(|t| Stat::parse(&t).ok())
        else {
            continue;
        };
        return Some((stat.rss, st));
    }
    None
}

/// The state of one process now (`R`, `S`, `D`, `Z`, ...) from its `stat`; `None` when it is
/// gone or its pid now names another process (another start time).
pub fn state_of(host: &Host, pid: i32, starttime: u64) -> Option<char> {
    let text = read_text(&host.path(&format!("/proc/{pid}/stat"))).ok()?;
    let stat = Stat::parse(&text).ok()?;
    (stat.starttime == starttime).then_some(stat.state)
}

/// The resident pages of one process (`/proc/PID/statm`, second field); `None` when it is gone
/// or has no memory left to show.
pub fn resident_pages(host: &Host, pid: i32) -> Option<u64> {
    let text = read_text(&host.path(&format!("/proc/{pid}/statm"))).ok()?;
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The command line of one process (arguments joined by spaces), for a report. The read takes
/// the process's mmap lock: callers skip a process in uninterruptible sleep (state `D`), which
/// may hold it for as long as it is stuck.
pub fn cmdline_of(host: &Host, pid: i32) -> Option<String> {
    read_cmdline(&host.path(&format!("/proc/{pid}/cmdline"))).ok()
}

fn read_cmdline(path: &Path) -> Result<String, ProbeError> {
    let bytes = std::fs::read(path).map_err(|source| ProbeError::io(path, source))?;
    let text = super::text_of(&bytes);
    Ok(text
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" "))
}

/// Reads the kernel's own `/proc/PID/oom_score`; `Ok(None)` if the process is gone.
pub fn read_kernel_oom_score(host: &Host, pid: i32) -> Result<Option<u64>, ProbeError> {
    let path = host.path(&format!("/proc/{pid}/oom_score"));
    match read_text(&path) {
        Ok(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ProbeError::parse(&path, "not a number")),
        Err(e) if e.is_gone() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 98765 10000000 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn stat_comm_may_hold_spaces_and_parens() {
        let s = Stat::parse(STAT).unwrap();
        assert_eq!(s.comm, "a (weird) name");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.starttime, 98765);
        assert_eq!(s.rss, 2560);
    }

    #[test]
    fn short_or_garbled_stat_is_an_error() {
        assert!(
            Stat::parse("1234 (x) S 1 2 3")
                .unwrap_err()
                .contains("short")
        );
        assert!(Stat::parse("garbage").is_err());
        assert!(Stat::parse("").is_err());
        assert!(Stat::parse(") 1 (").is_err());
    }

    #[test]
    fn status_without_vm_lines_has_no_mm() {
        let s = Status::parse("Name:\tkworker\nUid:\t0\t0\t0\t0\n");
        assert!(!s.has_mm);
        assert_eq!(s.uid, Some(0));
        let s = Status::parse(
            "Uid:\t1000\t1001\t0\t0\nVmSize:\t 100 kB\nVmPTE:\t 48 kB\nVmSwap:\t 8 kB\n",
        );
        assert!(s.has_mm);
        assert_eq!((s.vm_pte_kib, s.vm_swap_kib, s.uid), (48, 8, Some(1000)));
    }
}

/// The processes of one pass over /proc, with an account of what could not be read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Processes read, ascending pid.
    pub processes: Vec<ProcessSnapshot>,
    /// Listed but gone before they could be read: normal churn.
    pub vanished: usize,
    /// Readable except for their executable (permissions): exe rules cannot match them.
    pub exe_hidden: usize,
    /// Processes skipped because a file was odd or unreadable, with why.
    pub unreadable: Vec<ProbeError>,
}

/// Reads every process, or only those whose memory cgroup lies within `cgroup` (the subtree of
/// a cgroup scope: candidates never come from outside the configured scope). `cmdline` says
/// whether command lines are needed (see [`read_process_with`]).
pub fn scan(host: &Host, cgroup: Option<&str>, cmdline: bool) -> Result<Scan, ProbeError> {
    let mut out = Scan::default();
    // A cgroup scope reads only its own processes (from cgroup.procs); each one's cgroup is
    // still checked below, since a process can move between listing and reading.
    let pids = match (cgroup, &host.memory) {
        (Some(path), Some(hier)) => hier.subtree_pids(&host.root, path),
        _ => list_pids(host)?,
    };
    for pid in pids {
        match read_process_with(host, pid, cmdline) {
            Ok(None) => out.vanished += 1,
            Ok(Some((snap, hidden))) => {
                if let Some(scope) = cgroup {
                    let inside = snap
                        .cgroup
                        .as_deref()
                        .is_some_and(|cg| super::cgroup::is_within(cg, scope));
                    if !inside {
                        continue;
                    }
                }
                if hidden.exe {
                    out.exe_hidden += 1;
                }
                out.processes.push(snap);
            }
            Err(e) => out.unreadable.push(e),
        }
    }
    Ok(out)
}
