//! A kernel file kept open and re-read from offset 0 into a buffer that is kept too: the
//! readers of the loop's idle path (meminfo, vmstat, PSI) then make no allocation and no
//! open/close per sample, one `pread` each (two or more only for a file larger than the
//! buffer, which then grows once).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::ProbeError;
use super::cgroup::CgroupFiles;

/// Room for /proc/meminfo, /proc/vmstat and memory.stat as they are today; the buffer grows
/// (once) if a kernel writes more.
const INITIAL: usize = 8192;

/// A cgroup's directory whose files are kept open as they are first asked for: the
/// [`CgroupFiles`] of the loop's samples.
#[derive(Debug)]
pub struct KeptCgroupFiles {
    dir: PathBuf,
    swappiness: PathBuf,
    files: Vec<(String, KeptFile)>,
}

impl KeptCgroupFiles {
    /// The files of cgroup directory `dir`; `swappiness` is the machine's vm.swappiness file.
    pub fn new(dir: PathBuf, swappiness: PathBuf) -> Self {
        KeptCgroupFiles {
            dir,
            swappiness,
            files: Vec::new(),
        }
    }
}

impl CgroupFiles for KeptCgroupFiles {
    fn text(&mut self, name: &str) -> Result<Option<&str>, ProbeError> {
        let i = match self.files.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                let path = self.path_of(name);
                self.files.push((name.to_string(), KeptFile::new(path)));
                self.files.len() - 1
            }
        };
        self.files[i].1.read_optional()
    }

    fn path_of(&self, name: &str) -> PathBuf {
        super::cgroup::file_in(&self.dir, &self.swappiness, name)
    }
}

/// One kept-open kernel file.
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    /// Known not to exist (see `read_optional`).
    absent: bool,
}

impl KeptFile {
    /// Prepares to read `path`; it is opened on the first read (and again after an error).
    pub fn new(path: PathBuf) -> Self {
        KeptFile {
            path,
            file: None,
            buf: Vec::with_capacity(INITIAL),
            absent: false,
        }
    }

    /// The file's path, for errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text, or `None` when it does not exist; a missing file is remembered and not
    /// looked for again (a cgroup's optional files do not appear later: a cgroup that gains
    /// them is a new scope with new files).
    pub fn read_optional(&mut self) -> Result<Option<&str>, ProbeError> {
        if self.absent {
            return Ok(None);
        }
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.absent = true;
                    return Ok(None);
                }
                Err(source) => return Err(ProbeError::io(&self.path, source)),
            }
        }
        self.read().map(Some)
    }

    /// The file's whole text now.
    pub fn read(&mut self) -> Result<&str, ProbeError> {
        if self.file.is_none() {
            let opened = File::open(&self.path).map_err(|e| ProbeError::io(&self.path, e))?;
            self.file = Some(opened);
        }
        let file = self.file.as_ref().expect("opened above");
        // The buffer's capacity is zero-filled once; later reads reuse it as it is.
        let cap = self.buf.capacity().max(INITIAL);
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
        let mut len = 0;
        loop {
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if len < self.buf.len() {
                        // A short read is the end: the kernel's seq files (and sysfs, and
                        // regular files) fill the buffer as far as they have text. Stopping
                        // here saves the second read that would only return 0.
                        break;
                    }
                    // Full: the file is larger than the buffer; grow and read on.
                    let more = self.buf.len();
                    self.buf.resize(self.buf.len() + more, 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.file = None;
                    return Err(ProbeError::io(&self.path, e));
                }
            }
        }
        std::str::from_utf8(&self.buf[..len])
            .map_err(|_| ProbeError::parse(&self.path, "not UTF-8 text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_files_again_and_again_and_grows_for_large_ones() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "MemTotal: 1 kB\n").unwrap();
        let mut k = KeptFile::new(small.clone());
        assert_eq!(k.read().unwrap(), "MemTotal: 1 kB\n");
        std::fs::write(&small, "MemTotal: 22 kB\n").unwrap();
        assert_eq!(k.read().unwrap(), "MemTotal: 22 kB\n");
        let big = dir.path().join("big");
        let text = "x".repeat(3 * INITIAL + 17);
        std::fs::write(&big, &text).unwrap();
        assert_eq!(KeptFile::new(big).read().unwrap(), text);
        let mut gone = KeptFile::new(dir.path().join("none"));
        assert!(gone.read().unwrap_err().is_gone());
    }
}
