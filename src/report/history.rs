//! The kill journal: every kill record appended as one JSON line to a file that survives
//! restarts (`/var/lib/oomward/kills.jsonl` by default), fsync'd, rotated by size to
//! `<file>.1`. `oomward history` and `oomward why` read it.
//!
//! The journal is root's (mode 0640): a record holds the victim's command line, where
//! programs put passwords and tokens. Its public twin ([`public_path`], mode 0644) holds the
//! same records without it, so that the person whose process died can ask `oomward why PID`
//! and be answered, as the desktop notification tells them to: who was stopped, why, what else
//! was considered, and what it freed; nobody's command line.
//!
//! The writing happens on a thread of its own: an fsync under memory pressure can take seconds
//! (the disk is busy with the very writeback that pressure causes), and the loop must never wait
//! for it. Records are handed over a bounded channel; a full one drops the record and says so.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::kill::KillRecord;

/// Records waiting for the writer.
const QUEUE: usize = 64;
/// Lines longer than this in a journal are not records (a damaged file): skipped.
const LONGEST_LINE: usize = 1 << 20;

/// The writer's handle, owned by the loop.
pub struct Journal {
    tx: Sender<Arc<KillRecord>>,
    problems: Receiver<String>,
    dropped: u64,
}

impl Journal {
    /// Starts the writer for `path`, rotated when it would grow past `max_size` bytes. Nothing
    /// is opened until the first record: a daemon that never kills never touches the disk.
    pub fn start(path: PathBuf, max_size: u64) -> io::Result<Journal> {
        let (tx, rx) = bounded::<Arc<KillRecord>>(QUEUE);
        let (ptx, problems) = bounded::<String>(QUEUE);
        crate::sys::spawn_helper("journal", move || {
            for record in rx {
                // The journal, then its public twin without the command line.
                let mut public = (*record).clone();
                public.victim.cmdline = String::new();
                let twin = public_path(&path);
                for (path, r, mode) in [(&path, &*record, 0o640), (&twin, &public, 0o644)] {
                    let Ok(line) = serde_json::to_string(r) else {
                        continue;
                    };
                    if let Err(e) = append(path, max_size, &line, mode) {
                        let _ = ptx.try_send(format!("{}: {e}", path.display()));
                    }
                }
            }
        })?;
        Ok(Journal {
            tx,
            problems,
            dropped: 0,
        })
    }

    /// Queues a record; never blocks (it is made into JSON on the writer thread).
    pub fn append(&mut self, record: Arc<KillRecord>) {
        if self.tx.try_send(record).is_err() {
            self.dropped += 1;
        }
    }

    /// What went wrong since the last call (a full disk, a read-only file system), and how many
    /// records were dropped; for the loop to log.
    pub fn problems(&mut self) -> (Vec<String>, u64) {
        let dropped = std::mem::take(&mut self.dropped);
        (self.problems.try_iter().collect(), dropped)
    }
}

/// The public twin of the journal at `path`: `kills.jsonl` → `kills.public.jsonl`.
pub fn public_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_owned();
    let mut name = stem;
    name.push(".public");
    if let Some(ext) = path.extension() {
        name.push(".");
        name.push(ext);
    }
    path.with_file_name(name)
}

/// Appends one line to a file of mode `mode` (0640 for the journal, 0644 for its public twin):
/// rotates first when the file would grow past `max_size`, then writes the whole line in one
/// `write` on an `O_APPEND` descriptor and fsyncs.
pub fn append(path: &Path, max_size: u64, line: &str, mode: u32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if len > 0 && len + line.len() as u64 + 1 > max_size {
        std::fs::rename(path, rotated(path))?;
    }
    // Never through a planted symlink (see `statefile`); the mode set whatever the umask
    // (the unit's is 0077).
    let mut f = super::statefile::open_append(path, mode)?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_data()
}

/// Where a rotated journal goes.
pub fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// What a journal holds: its records, oldest first (the rotated file's, then the file's), and
/// how many lines were not records (damaged, cut short by a crash).
#[derive(Debug, Default)]
pub struct Read {
    /// The records, oldest first.
    pub records: Vec<KillRecord>,
    /// Lines that could not be read as records.
    pub skipped: usize,
}

/// Reads the journal at `path` and its rotated predecessor. A missing file holds no records.
pub fn read(path: &Path) -> io::Result<Read> {
    let mut out = Read::default();
    for p in [rotated(path), path.to_path_buf()] {
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in io::BufReader::new(f).split(b'\n') {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            match (line.len() <= LONGEST_LINE)
                .then(|| serde_json::from_slice::<KillRecord>(&line).ok())
                .flatten()
            {
                Some(r) => out.records.push(r),
                None => out.skipped += 1,
            }
        }
    }
    out.records.sort_by(|a, b| a.time.total_cmp(&b.time));
    Ok(out)
}

/// The latest record whose victim is `who`: a pid, or else a comm.
pub fn find<'a>(records: &'a [KillRecord], who: &str) -> Option<&'a KillRecord> {
    let by_pid = who.parse::<i32>().ok();
    records.iter().rev().find(|r| match by_pid {
        Some(pid) => r.victim.pid == pid,
        None => r.victim.comm == who,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::kill::tests::sample_record;
    use std::fs::OpenOptions;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_survive_rotation_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/kills.jsonl");
        let one = serde_json::to_string(&sample_record(1, "a", 10.0)).unwrap();
        let max = (one.len() as u64 + 1) * 3;
        for i in 0..5 {
            let r = sample_record(100 + i, "hog", 20.0 + f64::from(i));
            append(&path, max, &serde_json::to_string(&r).unwrap(), 0o640).unwrap();
        }
        // 5 records at 3 per file: 3 rotated away, of which the last rotation kept 2..
        let got = read(&path).unwrap();
        let pids: Vec<i32> = got.records.iter().map(|r| r.victim.pid).collect();
        assert!(pids.ends_with(&[103, 104]), "{pids:?}");
        assert!(std::fs::metadata(&path).unwrap().len() <= max);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // A line cut short by a crash and garbage are skipped, not fatal.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"version\":1,\"ti\n\xff\xfe\n").unwrap();
        let got = read(&path).unwrap();
        assert_eq!(got.skipped, 2);
        assert_eq!(got.records.last().unwrap().victim.pid, 104);
    }

    #[test]
    fn why_finds_the_latest_by_pid_or_comm() {
        let rs = vec![
            sample_record(5, "hog", 1.0),
            sample_record(6, "other", 2.0),
            sample_record(7, "hog", 3.0),
        ];
        assert_eq!(find(&rs, "hog").unwrap().victim.pid, 7);
        assert_eq!(find(&rs, "6").unwrap().victim.comm, "other");
        assert!(find(&rs, "8").is_none());
        assert!(find(&rs, "nobody").is_none());
    }

    #[test]
    fn a_missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let got = read(&dir.path().join("none.jsonl")).unwrap();
        assert!(got.records.is_empty());
    }
}
