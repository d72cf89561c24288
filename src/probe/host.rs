//! What oomward knows about the machine it reads, found once at start.

use std::path::{Path, PathBuf};

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
}

impl Host {
    /// Discovers the host under `root` (the real machine when `root` is `/`).
    pub fn discover(root: &Path) -> Result<Self, ProbeError> {
        let page_size = rustix::param::page_size() as u64;
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
        let first_user_uid = std::fs::read_to_string(super::under(root, "/etc/login.defs"))
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
        })
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
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("UID_MIN"))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_min_is_read_from_login_defs() {
        let text = "# UID_MIN 5\nMAIL_DIR /var/mail\nUID_MIN\t\t 1000\nUID_MAX 60000\n";
        assert_eq!(super::uid_min(text), Some(1000));
        assert_eq!(super::uid_min("UID_MIN x\n"), None);
        assert_eq!(super::uid_min(""), None);
    }
}
