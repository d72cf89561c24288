//! What oomward knows about the machine it reads, found once at start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ProbeError;
use super::cgroup::MemoryHierarchy;

/// The machine as the readers see it: where /proc and /sys are, the page size, the memory
/// cgroup hierarchy and the mount namespaces exe rules are judged in.
#[derive(Debug, Clone)]
pub struct Host {
    /// `/` in production; a fixture tree in tests.
    pub root: PathBuf,
    /// Bytes per page; every kernel count in pages is converted with it.
    pub page_size: u64,
    /// The hierarchy with the memory controller, if any.
    pub memory: Option<MemoryHierarchy>,
    /// oomward's own `/proc/self/ns/mnt` as a link text, `None` when it cannot be read.
    pub mount_ns: Option<String>,
    /// PID 1's `/proc/1/ns/mnt` as oomward sees it: the host's mount namespace, in which exe
    /// paths are meant. oomward itself may run in another one (a sandboxed systemd unit has a
    /// private mount namespace; so has a container with the host's PID namespace). `None` when
    /// it cannot be read (an ordinary user running `rank`).
    pub host_mount_ns: Option<String>,
    /// Where the host's files are seen: `/proc/1/root` when oomward may look through it, else
    /// its own root (a private mount namespace of a sandboxed unit still shows the same files,
    /// same devices and inodes).
    pub exe_root: PathBuf,
    /// `UID_MIN` of `/etc/login.defs` (the first ordinary user's uid), else 1000.
    pub first_user_uid: u32,
    /// Kubelet's pod and container names, shared by every reader of this host.
    pub pods: Arc<Pods>,
    /// Where oomward's own cgroup namespace is rooted in the memory hierarchy, when it runs in
    /// one of its own (a container on a cgroup v2 node): other processes' `/proc/PID/cgroup`
    /// then read `/../../…`, relative to that root, while the mounted hierarchy shows the
    /// host's whole tree. `None` in the host's namespace.
    pub cgroup_ns_root: Option<String>,
}

/// Kubelet's pod and container names (`/var/log/pods`, `/var/log/containers` under the host's
/// root), read at start and again, at most every [`PODS_REREAD`], once a process of a pod
/// they do not name was met. Without those directories (not a node, or not mounted into a
/// container) a pod is known by its uid and QoS class only.
#[derive(Debug, Default)]
pub struct Pods {
    names: Mutex<super::kube::PodNames>,
    /// A process of an unnamed pod was met since the last read.
    stale: AtomicBool,
    read_at: Mutex<Option<Instant>>,
}

/// The least time between two readings of kubelet's log directories.
pub const PODS_REREAD: Duration = Duration::from_secs(2);

impl Pods {
    /// Reads the names under `root`.
    pub fn read(root: &Path) -> Pods {
        Pods {
            names: Mutex::new(super::kube::PodNames::read(root)),
            stale: AtomicBool::new(false),
            read_at: Mutex::new(Some(Instant::now())),
        }
    }

    /// The pod identity of a process in memory cgroup `cgroup`, with the names known.
    pub fn identity(&self, cgroup: &str) -> Option<super::kube::KubeIdentity> {
        // Most processes are no pod's: no lock for them.
        if !cgroup.contains("kubepods") {
            return None;
        }
        let names = self.names.lock().ok()?;
        let id = super::kube::identity(cgroup, &names)?;
        if !names.knows(&id.pod_uid) {
            self.stale.store(true, Ordering::Relaxed);
        }
        Some(id)
    }

    /// Reads the names again if a process of an unnamed pod was met and the last reading is
    /// at least [`PODS_REREAD`] old; true when it did.
    pub fn refresh(&self, root: &Path, now: Instant) -> bool {
        if !self.stale.load(Ordering::Relaxed) {
            return false;
        }
        let Ok(mut at) = self.read_at.lock() else {
            return false;
        };
        if at.is_some_and(|t| now.saturating_duration_since(t) < PODS_REREAD) {
            return false;
        }
        *at = Some(now);
        let fresh = super::kube::PodNames::read(root);
        if let Ok(mut names) = self.names.lock() {
            *names = fresh;
        }
        self.stale.store(false, Ordering::Relaxed);
        true
    }
}

impl Host {
    /// Discovers the host under `root` (the real machine when `root` is `/`).
    pub fn discover(root: &Path) -> Result<Self, ProbeError> {
        let page_size = crate::sys::page_size();
        let memory = MemoryHierarchy::discover(root)?;
        let ns = |path: &str| {
            std::fs::read_link(super::under(root, path))
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        };
        let pid1_root = super::under(root, "/proc/1/root");
        let exe_root = if std::fs::metadata(&pid1_root).is_ok() {
            pid1_root
        } else {
            root.to_path_buf()
        };
        // The host's /etc (through PID 1's root): in a container, the image's would say nothing
        // of the node's users.
        let first_user_uid = std::fs::read_to_string(exe_root.join("etc/login.defs"))
            .ok()
            .and_then(|t| uid_min(&t))
            .unwrap_or(crate::policy::DEFAULT_FIRST_USER_UID);
        Ok(Host {
            exe_root,
            first_user_uid,
            root: root.to_path_buf(),
            page_size,
            memory,
            mount_ns: ns("/proc/self/ns/mnt"),
            host_mount_ns: ns("/proc/1/ns/mnt"),
            pods: Arc::new(Pods::read(root)),
            cgroup_ns_root: None,
        }
        .with_cgroup_ns_root())
    }

    /// Finds [`Host::cgroup_ns_root`]: when PID 1's memory cgroup reads as a path above the
    /// namespace's root (`/..`), the cgroup of the hierarchy whose `cgroup.procs` holds
    /// oomward's own pid is that root (looked for once, at start, on the real machine only).
    fn with_cgroup_ns_root(mut self) -> Self {
        let Some(hier) = &self.memory else {
            return self;
        };
        let pid1 = std::fs::read_to_string(self.path("/proc/1/cgroup"))
            .ok()
            .and_then(|t| hier.path_of_process(&t));
        if self.root != Path::new("/") || !pid1.is_some_and(|p| p.starts_with("/..")) {
            return self;
        }
        let me = std::process::id().to_string();
        self.cgroup_ns_root = hier.walk(&self.root, "/").into_iter().find(|cg| {
            hier.dir(&self.root, cg)
                .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
                .is_some_and(|procs| procs.lines().any(|l| l.trim() == me))
        });
        self
    }

    /// A memory cgroup path as `/proc/PID/cgroup` shows it, in the hierarchy's terms: a path
    /// relative to oomward's cgroup namespace joined to its root, `..` resolved.
    pub fn cgroup_path(&self, seen: String) -> String {
        match &self.cgroup_ns_root {
            // Inside the namespace every path is relative to its root, `/` included.
            Some(root) => resolve_cgroup(root, &seen),
            None => seen,
        }
    }

    /// The mount namespace exe paths are judged in: PID 1's, else (unreadable) oomward's own.
    pub fn exe_mount_ns(&self) -> Option<&str> {
        self.host_mount_ns.as_deref().or(self.mount_ns.as_deref())
    }

    /// Path of an absolute kernel path on this host.
    pub fn path(&self, abs: &str) -> PathBuf {
        super::under(&self.root, abs)
    }
}

/// `UID_MIN` from login.defs text: a `UID_MIN <number>` line, comments ignored.
fn uid_min(text: &str) -> Option<u32> {
    u32::try_from(super::flat_keyed(text, "UID_MIN")?).ok()
}

/// `path` (absolute within a cgroup namespace rooted at `ns_root`) as a hierarchy path.
fn resolve_cgroup(ns_root: &str, path: &str) -> String {
    let mut parts: Vec<&str> = ns_root.split('/').filter(|p| !p.is_empty()).collect();
    for p in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if p == ".." {
            parts.pop();
        } else {
            parts.push(p);
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_in_a_cgroup_namespace_are_resolved_against_its_root() {
        let root = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope";
        for (seen, host) in [
            ("/", root),
            (
                "/../../kubepods-besteffort.slice/kubepods-besteffort-pod2.slice/crio-d.scope",
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2.slice/crio-d.scope",
            ),
            ("/../../../init.scope", "/init.scope"),
            ("/../../../../../..", "/"),
            (
                "/sub",
                "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope/sub",
            ),
        ] {
            assert_eq!(super::resolve_cgroup(root, seen), host, "{seen}");
        }
    }

    #[test]
    fn uid_min_is_read_from_login_defs() {
        let uid_min = super::uid_min;
        let text = "# UID_MIN 5\nMAIL_DIR /var/mail\nUID_MIN\t\t 1000\nUID_MAX 60000\n";
        assert_eq!(uid_min(text), Some(1000));
        assert_eq!(uid_min("UID_MIN x\n"), None);
        assert_eq!(uid_min(""), None);
    }
}
