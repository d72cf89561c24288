//! What oomward knows about the machine it reads, found once at start.

use std::path::{Path, PathBuf};

use super::ProbeError;
use super::cgroup::MemoryHierarchy;

/// The machine as the readers see it: where /proc and /sys are, the page size, the memory
/// cgroup hierarchy and oomward's own mount namespace (for exe rules).
#[derive(Debug, Clone)]
pub struct Host {
    /// `/` in production; a fixture tree in tests.
    pub root: PathBuf,
    /// Bytes per page; every kernel count in pages is converted with it.
    pub page_size: u64,
    /// The hierarchy with the memory controller, if any.
    pub memory: Option<MemoryHierarchy>,
    /// `/proc/self/ns/mnt` as a link text, `None` when it cannot be read.
    pub mount_ns: Option<String>,
}

impl Host {
    /// Discovers the host under `root` (the real machine when `root` is `/`).
    pub fn discover(root: &Path) -> Result<Self, ProbeError> {
        let page_size = rustix::param::page_size() as u64;
        let memory = MemoryHierarchy::discover(root)?;
        let mount_ns = std::fs::read_link(super::under(root, "/proc/self/ns/mnt"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        Ok(Host {
            root: root.to_path_buf(),
            page_size,
            memory,
            mount_ns,
        })
    }

    /// Path of an absolute kernel path on this host.
    pub fn path(&self, abs: &str) -> PathBuf {
        super::under(&self.root, abs)
    }
}
