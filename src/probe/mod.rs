//! Readers of kernel state: /proc and the cgroup filesystems into plain structs.
//!
//! Every reader takes the root directory it reads under (`/` in production), so the same code
//! runs on the fixture trees in `tests/fixtures/`. Readers parse from `&str` and never decide
//! anything; the decisions live in `badness`, `policy` and `rank`.

pub mod cgroup;
pub mod host;
pub mod kept;
pub mod kube;
pub mod meminfo;
pub mod oomd;
pub mod passwd;
pub mod process;
pub mod psi;
pub mod smaps;
pub mod swaps;
pub mod table;

use std::io;
use std::path::{Path, PathBuf};

pub use host::Host;

/// A failure to read or understand one kernel file.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file was read but its content is not what the kernel writes there.
    #[error("{}: {what}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
}

impl ProbeError {
    /// True when the object behind the file no longer exists (a process that exited, a cgroup
    /// that was removed): a normal event for a scanner, never an error for the scan. A file
    /// kept open across the removal of its cgroup reads ENODEV.
    pub fn is_gone(&self) -> bool {
        match self {
            ProbeError::Io { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
                    || crate::sys::is_gone(source)
                    || crate::sys::no_device(source)
            }
            ProbeError::Parse { .. } => false,
        }
    }

    /// True when this process or the machine ran out of file descriptors: the object is there,
    /// the read may work once descriptors are given back.
    pub fn is_out_of_fds(&self) -> bool {
        matches!(self, ProbeError::Io { source, .. } if crate::sys::is_out_of_fds(source))
    }

    /// True when permissions hide the file (an ordinary user reading another user's process).
    pub fn is_denied(&self) -> bool {
        matches!(self, ProbeError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }

    /// The file at `path` could not be read.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        ProbeError::Io {
            path: path.into(),
            source,
        }
    }

    /// The file at `path` is not there (any more): [`ProbeError::is_gone`].
    pub fn gone(path: impl Into<PathBuf>) -> Self {
        Self::io(path, io::ErrorKind::NotFound.into())
    }

    pub(crate) fn parse(path: &Path, what: impl Into<String>) -> Self {
        ProbeError::Parse {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

/// Text of bytes from the kernel that are meant to be UTF-8 and need not be (a process names
/// itself, its file and its arguments with any bytes it likes): valid runs as they are, every
/// other byte as `\xNN`. Nothing is lost, unlike U+FFFD: a report says which bytes a name
/// held, and two names that differ in such bytes print differently.
pub fn text_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

/// Reads a whole kernel file as text (see [`text_of`]).
pub(crate) fn read_text(path: &Path) -> Result<String, ProbeError> {
    std::fs::read(path)
        .map(|bytes| text_of(&bytes))
        .map_err(|source| ProbeError::io(path, source))
}

/// Reads a file that may legitimately be absent (an optional kernel feature): `Ok(None)` then.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, ProbeError> {
    match read_text(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.is_gone() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The value of `key` in a file of `key value` lines (memory.stat, memory.events, oom_control).
pub(crate) fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
}

/// Joins an absolute path under a root: `under(root, "/proc/1/stat")`.
pub(crate) fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_that_are_not_utf8_are_shown_not_replaced() {
        let table: &[(&[u8], &str)] = &[
            (b"memhog", "memhog"),
            (b"\xffmem", "\\xffmem"),
            (b"hog\xff\xfe", "hog\\xff\\xfe"),
            ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
            // A sequence cut short: its bytes, then what follows.
            (b"a\xe2\x82b", "a\\xe2\\x82b"),
            (b"", ""),
        ];
        for (bytes, want) in table {
            assert_eq!(super::text_of(bytes), *want, "{bytes:?}");
        }
    }
}
