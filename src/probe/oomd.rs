//! systemd's `ManagedOOMPreference=`, as the extended attributes it sets on a unit's cgroup
//! (`user.oomd_avoid`, `user.oomd_omit`, value `1`), so a unit configured for systemd-oomd means
//! the same to oomward.
//!
//! A preference is a claim to protection, so it is honoured only on a cgroup directory owned
//! by root: systemd's own units are; a user's delegated subtree (`user@UID.service` and below)
//! belongs to the user, who can set any `user.*` attribute there and must not be able to
//! protect their processes that way.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::cgroup::{MemoryHierarchy, parent};

/// What a unit asked of an OOM killer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomdPreference {
    /// `ManagedOOMPreference=avoid`: chosen only when nothing else is.
    Avoid,
    /// `ManagedOOMPreference=omit`: never chosen.
    Omit,
}

impl OomdPreference {
    /// `avoid` or `omit`.
    pub fn as_str(self) -> &'static str {
        match self {
            OomdPreference::Avoid => "avoid",
            OomdPreference::Omit => "omit",
        }
    }
}

const OMIT: &str = "user.oomd_omit";
const AVOID: &str = "user.oomd_avoid";

/// The preference set on the directory itself, if it is owned by root. `omit` wins over
/// `avoid` when both are set.
pub fn dir_preference(dir: &Path) -> Option<OomdPreference> {
    let owner = std::fs::metadata(dir).ok()?.uid();
    if owner != 0 {
        return None;
    }
    if is_set(dir, OMIT) {
        Some(OomdPreference::Omit)
    } else if is_set(dir, AVOID) {
        Some(OomdPreference::Avoid)
    } else {
        None
    }
}

/// The preference that applies to a process in `cgroup`: the nearest one set on it or an
/// ancestor, with the cgroup that set it. Only the unified (v2) hierarchy carries them.
pub fn preference(
    hier: &MemoryHierarchy,
    root: &Path,
    cgroup: &str,
) -> Option<(OomdPreference, String)> {
    if hier.version != super::cgroup::CgroupVersion::V2 {
        return None;
    }
    let mut cur = Some(cgroup);
    while let Some(p) = cur {
        if let Some(dir) = hier.dir(root, p)
            && let Some(pref) = dir_preference(&dir)
        {
            return Some((pref, p.to_string()));
        }
        cur = parent(p);
    }
    None
}

/// Whether the attribute `name` is set to a value starting with `1` (systemd writes `1`).
fn is_set(dir: &Path, name: &str) -> bool {
    let mut buf = [0u8; 8];
    crate::sys::getxattr(dir, name, &mut buf).is_ok_and(|n| n > 0 && buf[0] == b'1')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets a `user.*` attribute to `1`, as systemd does.
    fn set(dir: &Path, name: &str) -> bool {
        rustix::fs::setxattr(dir, name, b"1", rustix::fs::XattrFlags::empty()).is_ok()
    }

    fn chown(dir: &Path, uid: u32) -> bool {
        std::os::unix::fs::chown(dir, Some(uid), None).is_ok()
    }

    #[test]
    fn preferences_on_a_fixture_tree_nearest_first_root_owned_only() {
        // On the project's own filesystem: the tree needs `user.*` attributes, which a tmpfs
        // /tmp lacks on older kernels.
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&target).unwrap();
        let tmp = tempfile::tempdir_in(&target).unwrap();
        let mount = tmp.path().join("sys/fs/cgroup");
        let user = mount.join("user.slice/user-1000.slice/user@1000.service");
        let app = user.join("app.slice/app-firefox.scope");
        let system = mount.join("system.slice");
        let db = system.join("db.service");
        let cache = system.join("cache.service/worker");
        for d in [&app, &db, &cache] {
            std::fs::create_dir_all(d).unwrap();
        }
        assert!(set(&db, OMIT), "user xattrs on {}", db.display());
        assert!(set(&system.join("cache.service"), AVOID));
        // A user's own cgroup claiming protection; the directories are root's (this test runs
        // as root) until handed to the user, as systemd delegates user@.service.
        assert!(set(&app, OMIT));
        let hier = MemoryHierarchy {
            version: super::super::cgroup::CgroupVersion::V2,
            mount_point: "/sys/fs/cgroup".into(),
            mount_root: "/".into(),
        };
        let pref = |cg: &str| preference(&hier, tmp.path(), cg);
        assert_eq!(
            pref("/system.slice/db.service"),
            Some((OomdPreference::Omit, "/system.slice/db.service".into()))
        );
        // Inherited from the nearest ancestor that has one.
        assert_eq!(
            pref("/system.slice/cache.service/worker"),
            Some((OomdPreference::Avoid, "/system.slice/cache.service".into()))
        );
        assert_eq!(pref("/system.slice"), None);
        assert_eq!(pref("/nowhere/at/all"), None);
        let is_root = nix::unistd::geteuid().is_root();
        if is_root {
            // Root-owned: honoured.
            assert_eq!(
                pref("/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope")
                    .map(|p| p.0),
                Some(OomdPreference::Omit)
            );
            // Handed to the user: the same attribute is ignored.
            assert!(chown(&app, 1000));
            assert_eq!(
                pref("/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope"),
                None
            );
        }
        // Only v2 carries them.
        let v1 = MemoryHierarchy {
            version: super::super::cgroup::CgroupVersion::V1,
            ..hier
        };
        assert_eq!(
            preference(&v1, tmp.path(), "/system.slice/db.service"),
            None
        );
    }
}
