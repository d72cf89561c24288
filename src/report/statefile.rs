//! The files oomward keeps (the kill journal, the status file, the metrics file): written only
//! in a directory that no one but root can change, and never through a symlink.
//!
//! A root daemon that appends to `/var/lib/oomward/kills.jsonl` follows whatever that name is:
//! with a directory another user can write, a planted symlink had root append a record to, or
//! truncate and rewrite, any file on the machine. So each file's directory is verified before
//! the daemon starts ([`verify_dir`], also `check-config`): it and every directory above it
//! owned by root (or the daemon's own user) and writable by no one else, unless sticky and
//! root's, as `/tmp` is (no one can then rename or remove what is not theirs). And the last
//! component is opened with `O_NOFOLLOW`, a rewrite made in a new file (`O_EXCL`) renamed
//! over the old one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// How many symlinks a directory's path may pass through before it is refused.
const LINKS_MAX: usize = 16;

/// Why a state directory is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirError {
    /// It, or a directory above it, can be changed by a user other than root.
    #[error("{path} is {why}: another user could put a symlink where oomward writes")]
    Unsafe {
        /// The directory (or symlink) found wanting.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// It could not be examined.
    #[error("{path}: {error}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The error.
        error: String,
    },
}

/// Checks that `dir` can only be changed by root or `owner` (the daemon's user): see the
/// module's documentation. A missing directory is judged by the nearest one that exists (it
/// is made there later).
pub fn verify_dir(dir: &Path, owner: u32) -> Result<(), DirError> {
    let mut dir = dir.to_path_buf();
    while !dir.exists() {
        match dir.parent() {
            Some(p) if p != dir => dir = p.to_path_buf(),
            _ => break,
        }
    }
    walk(&dir, owner, 0)
}

/// Checks every component of `path` from the root down; a symlink must be root's (or
/// `owner`'s) and what it points at is checked in turn.
fn walk(path: &Path, owner: u32, links: usize) -> Result<(), DirError> {
    let mut at = PathBuf::from("/");
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| unreadable(path, &e))?
            .join(path)
    };
    for part in absolute.components() {
        match part {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(name) => {
                let next = at.join(name);
                let meta = std::fs::symlink_metadata(&next).map_err(|e| unreadable(&next, &e))?;
                if meta.file_type().is_symlink() {
                    judge(&next, &meta, owner)?;
                    if links >= LINKS_MAX {
                        return Err(unsafe_dir(&next, "a chain of too many symlinks"));
                    }
                    let target = std::fs::read_link(&next).map_err(|e| unreadable(&next, &e))?;
                    let resolved = at.join(target);
                    walk(&resolved, owner, links + 1)?;
                    at = std::fs::canonicalize(&resolved).map_err(|e| unreadable(&next, &e))?;
                    continue;
                }
                judge(&next, &meta, owner)?;
                at = next;
            }
        }
    }
    let root = std::fs::symlink_metadata("/").map_err(|e| unreadable(Path::new("/"), &e))?;
    judge(Path::new("/"), &root, owner)
}

/// Whether one directory or symlink is safe: owned by root or `owner`, and writable by
/// nobody else (group or others), unless sticky and root's.
fn judge(path: &Path, meta: &std::fs::Metadata, owner: u32) -> Result<(), DirError> {
    let (uid, mode) = (meta.uid(), meta.mode());
    let ours = uid == 0 || uid == owner;
    let sticky = mode & 0o1000 != 0 && uid == 0;
    let why = if meta.file_type().is_symlink() {
        (!ours).then(|| format!("a symlink owned by uid {uid}"))
    } else if !meta.is_dir() {
        Some("not a directory".into())
    } else if !ours {
        Some(format!("owned by uid {uid}"))
    } else if mode & 0o002 != 0 && !sticky {
        Some(format!("writable by anyone (mode {:o})", mode & 0o7777))
    } else if mode & 0o020 != 0 && meta.gid() != 0 && !sticky {
        Some(format!(
            "writable by group {} (mode {:o})",
            meta.gid(),
            mode & 0o7777
        ))
    } else {
        None
    };
    why.map_or(Ok(()), |why| Err(unsafe_dir(path, &why)))
}

fn unsafe_dir(path: &Path, why: &str) -> DirError {
    DirError::Unsafe {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

fn unreadable(path: &Path, e: &io::Error) -> DirError {
    DirError::Unreadable {
        path: path.to_path_buf(),
        error: e.to_string(),
    }
}

/// Opens `path` for appending (created with `mode` when missing, the mode set whatever the
/// umask), refusing a symlink in its place.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    let f = crate::sys::no_follow(OpenOptions::new().create(true).append(true).mode(mode))
        .open(path)?;
    refuse_other_files(&f, path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Replaces `path` with `bytes` whole, so that a reader sees the old file or the new one:
/// written into `.NAME.tmp` beside it, created afresh (`O_EXCL`: never a planted symlink or
/// someone's file; a temp file left by a crash is removed first), flushed, given `mode`
/// whatever the umask, renamed over `path`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let temp = temp_of(path)?;
    let open = || {
        crate::sys::no_follow(OpenOptions::new().write(true).create_new(true).mode(mode))
            .open(&temp)
    };
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&temp)?;
            open()?
        }
        other => other?,
    };
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_data())
        .and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `.NAME.tmp` beside `path` (a name the textfile collector skips: it reads `*.prom`).
pub fn temp_of(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(".tmp");
    Ok(path.with_file_name(temp))
}

/// A state file is a plain file with one name: a hard link to another file (made by someone
/// who could write the directory before it was verified) is refused too.
fn refuse_other_files(f: &File, path: &Path) -> io::Result<()> {
    let meta = f.metadata()?;
    if !meta.is_file() || meta.nlink() > 1 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a plain file of its own", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path, m: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn a_directory_only_root_can_change_passes_and_one_anyone_can_write_does_not() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good");
        std::fs::create_dir(&good).unwrap();
        mode(&good, 0o755);
        assert_eq!(verify_dir(&good, 0), Ok(()));
        // Not there yet: judged by where it will be made.
        assert_eq!(verify_dir(&good.join("later/deeper"), 0), Ok(()));
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        mode(&open, 0o777);
        let e = verify_dir(&open, 0).unwrap_err().to_string();
        assert!(e.contains("writable by anyone"), "{e}");
        // Below a directory anyone can write: refused too.
        std::fs::create_dir(open.join("inner")).unwrap();
        assert!(verify_dir(&open.join("inner"), 0).is_err());
        // Another user's.
        let theirs = d.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
        let e = verify_dir(&theirs, 0).unwrap_err().to_string();
        assert!(e.contains("owned by uid 1000"), "{e}");
        assert_eq!(verify_dir(&theirs, 1000), Ok(()));
        // Sticky and root's, like /tmp: fine.
        let sticky = d.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        mode(&sticky, 0o1777);
        std::fs::create_dir(sticky.join("mine")).unwrap();
        assert_eq!(verify_dir(&sticky.join("mine"), 0), Ok(()));
        // A symlink of another user's on the way.
        let link = d.path().join("link");
        symlink(&good, &link).unwrap();
        assert_eq!(verify_dir(&link, 0), Ok(()));
        std::os::unix::fs::lchown(&link, Some(1000), Some(1000)).unwrap();
        let e = verify_dir(&link, 0).unwrap_err().to_string();
        assert!(e.contains("symlink owned by uid 1000"), "{e}");
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let journal = d.path().join("kills.jsonl");
        symlink(&target, &journal).unwrap();
        assert!(open_append(&journal, 0o640).is_err());
        // A rewrite replaces the link itself, never what it points at.
        let status = d.path().join("status.json");
        symlink(&target, &status).unwrap();
        symlink(&target, temp_of(&status).unwrap()).unwrap();
        replace(&status, b"{}\n", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        assert_eq!(std::fs::read_to_string(&status).unwrap(), "{}\n");
        assert!(
            !std::fs::symlink_metadata(&status)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let m = std::fs::metadata(&status).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o644);
        // A hard link to another file is refused for appending.
        let linked = d.path().join("linked");
        std::fs::hard_link(&target, &linked).unwrap();
        assert!(open_append(&linked, 0o640).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }
}
