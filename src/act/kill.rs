//! Signalling a victim safely: pidfd, identity check, SIGTERM, wait, SIGKILL, release.
//!
//! A pid alone can be reused between choosing a victim and signalling it; a pidfd cannot. The
//! pidfd is opened first and the process's start time checked afterwards: if it matches the
//! one the victim was chosen with, the pidfd refers to that very process for good.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::probe::Host;
use crate::probe::process::{ProcessSnapshot, Stat};
use crate::sys::{self, Sig};

/// Why a victim could not be signalled.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// It exited before the signal (nothing to do, the shortage may be over).
    #[error("process exited before it could be signalled")]
    Gone,
    /// The pid now belongs to another process: never signal it.
    #[error("pid was reused by another process")]
    Reused,
    /// Its identity could not be checked (an odd or unreadable stat): never signal it, take
    /// the next candidate.
    #[error("identity cannot be verified: {0}")]
    Unverifiable(String),
    /// The system refused (EPERM, ...).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Opens a pidfd for `p` and checks it is still the same process (pid + start time).
pub fn open_verified(host: &Host, p: &ProcessSnapshot) -> Result<OwnedFd, KillError> {
    let fd = match sys::pidfd_open(p.pid) {
        Ok(fd) => fd,
        Err(e) if sys::is_gone(&e) => return Err(KillError::Gone),
        Err(e) => return Err(e.into()),
    };
    // Bytes, never text: a name is whatever the process made it (any user can put a byte that
    // is not UTF-8 in its comm), and a check that failed on it would make the process immune.
    let bytes = match std::fs::read(host.path(&format!("/proc/{}/stat", p.pid))) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound || sys::is_gone(&e) => {
            return Err(KillError::Gone);
        }
        Err(e) => return Err(KillError::Unverifiable(format!("stat: {e}"))),
    };
    same_process(&bytes, p.starttime).map(|()| fd)
}

/// Whether `stat` (the bytes of `/proc/PID/stat`) is the process that started at `starttime`.
/// The fields after the comm are found from its *last* `)`, whatever bytes the comm holds.
pub fn same_process(stat: &[u8], starttime: u64) -> Result<(), KillError> {
    let text = String::from_utf8_lossy(stat);
    match Stat::parse(&text) {
        Ok(s) if s.starttime == starttime => Ok(()),
        Ok(_) => Err(KillError::Reused),
        Err(why) => Err(KillError::Unverifiable(why)),
    }
}

/// Sends `sig`; ESRCH (already exited) is success.
pub fn signal(fd: &OwnedFd, sig: Sig) -> Result<(), KillError> {
    match sys::pidfd_send_signal(fd, sig) {
        Ok(()) => Ok(()),
        Err(e) if sys::is_gone(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A victim being made to exit.
#[derive(Debug)]
pub struct InFlight {
    /// The victim as it was chosen.
    pub victim: ProcessSnapshot,
    /// The scope it lies in (for reports).
    pub scope: String,
    /// The pidfd that signals and watches it.
    pub fd: OwnedFd,
    /// Others signalled with it (its process group or its cgroup), to escalate together.
    pub companions: Vec<Companion>,
    /// When the first signal went out.
    pub first_signal: Instant,
    /// When SIGKILL went out, if it has.
    pub kill_sent: Option<Instant>,
    /// Whether a v2 `cgroup.kill` should be written on escalation (kill_unit = cgroup).
    pub cgroup_kill_file: Option<std::path::PathBuf>,
    /// The pids (victim and companions) still alive when SIGKILL went out: in a group kill the
    /// victim may have left on SIGTERM while a companion needed SIGKILL, and the report must
    /// name the one that did.
    pub sigkilled: Vec<i32>,
    /// `process_mrelease` returned for it. Not yet proof that its memory is back: a victim in
    /// the middle of a long write (a database's save writing its file) has been seen to hold
    /// its pages for 40–90 ms after the call returned, and choosing the next victim on the
    /// call's word alone killed the process the save was for.
    pub release_returned: bool,
    /// It is a forked child stopped instead of this parent: its release does not end the
    /// shortage (the parent's writes copy the pages they still share until the child has
    /// exited), so the next victim waits for its exit.
    pub instead_of: Option<i32>,
}

/// A process signalled together with the victim.
#[derive(Debug)]
pub struct Companion {
    /// Its pid, for reports.
    pub pid: i32,
    /// The verified pidfd that signals and watches it.
    pub fd: OwnedFd,
}

/// Whether the process behind `fd` has exited (a poll error counts as not yet).
pub fn exited(fd: &OwnedFd) -> bool {
    sys::wait_exit(fd, Duration::ZERO).unwrap_or(false)
}

impl InFlight {
    /// True once the victim and every process signalled with it have exited (their pidfds are
    /// readable): until then the shortage is still being resolved. A poll error counts as
    /// "not yet" (the stuck timeout bounds the wait).
    pub fn has_exited(&self) -> bool {
        exited(&self.fd) && self.companions.iter().all(|c| exited(&c.fd))
    }

    /// Sends SIGKILL to the victim and those of its companions still alive (v2: `cgroup.kill`
    /// when the whole cgroup may die), noting who they were in `sigkilled`; queues their
    /// memory for release (the victim's release is what [`Reaper::released`] reports).
    pub fn escalate(&mut self, now: Instant, reaper: &Reaper) {
        self.sigkilled.clear();
        let members = std::iter::once((self.victim.pid, &self.fd))
            .chain(self.companions.iter().map(|c| (c.pid, &c.fd)));
        for (pid, fd) in members {
            if !exited(fd) && signal(fd, Sig::Kill).is_ok() {
                reaper.release(fd, pid);
                self.sigkilled.push(pid);
            }
        }
        if let Some(file) = &self.cgroup_kill_file {
            let _ = std::fs::write(file, "1");
        }
        self.kill_sent = Some(now);
    }

    /// The signal that ended the victim itself: SIGKILL only if it was still alive when the
    /// escalation went out.
    pub fn victim_signal(&self) -> &'static str {
        if self.kill_sent.is_some() && self.sigkilled.contains(&self.victim.pid) {
            "SIGKILL"
        } else {
            "SIGTERM"
        }
    }

    /// `sigkilled` as a comma-separated list for a report (`-` when empty).
    pub fn sigkilled_list(&self) -> String {
        if self.sigkilled.is_empty() {
            return "-".into();
        }
        let pids: Vec<String> = self.sigkilled.iter().map(i32::to_string).collect();
        pids.join(",")
    }
}

/// Calls process_mrelease on its own thread: the call takes the victim's mmap lock and can wait
/// for it, and a victim stuck in D state may hold it. The loop hands over a duplicate of the
/// pidfd and goes on; the pids whose memory was released come back over a second channel, so
/// that the episode knows when a SIGKILLed victim no longer holds anything (the kernel's
/// `MMF_OOM_SKIP`). One thread for the daemon's life; no allocation per kill beyond the
/// channel slots.
#[derive(Debug)]
pub struct Reaper {
    tx: Option<crossbeam_channel::Sender<(OwnedFd, i32)>>,
    done: crossbeam_channel::Receiver<i32>,
}

/// Pidfds waiting for the reaper; beyond this, releases are skipped (the kernel still frees the
/// memory when the victim finishes exiting).
const REAPER_QUEUE: usize = 64;

impl Reaper {
    /// Starts the reaper thread (or a reaper that does nothing if a thread cannot be made).
    pub fn start() -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<(OwnedFd, i32)>(REAPER_QUEUE);
        let (done_tx, done) = crossbeam_channel::bounded::<i32>(REAPER_QUEUE);
        let started = std::thread::Builder::new()
            .name("oomward-reaper".into())
            .spawn(move || {
                for (fd, pid) in rx {
                    // Ok too when it is already gone, which releases its memory as well.
                    if sys::process_mrelease(&fd).is_ok() {
                        let _ = done_tx.try_send(pid);
                    }
                }
            })
            .is_ok();
        Reaper {
            tx: started.then_some(tx),
            done,
        }
    }

    /// Queues the memory release of a SIGKILLed process; the word says what happened to it.
    pub fn release(&self, fd: &OwnedFd, pid: i32) -> &'static str {
        let Some(tx) = &self.tx else {
            return "unavailable";
        };
        let dup = fd.try_clone().ok();
        let queued = dup.is_some_and(|dup| tx.try_send((dup, pid)).is_ok());
        if queued { "queued" } else { "skipped" }
    }

    /// A pid whose memory was released since the last call, if any (call until `None`).
    pub fn released(&self) -> Option<i32> {
        self.done.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(comm: &[u8], starttime: u64) -> Vec<u8> {
        let mut b = b"4242 (".to_vec();
        b.extend_from_slice(comm);
        b.extend_from_slice(
            format!(") R 1 4242 4242 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 {starttime} 1 25 0\n")
                .as_bytes(),
        );
        b
    }

    #[test]
    fn identity_is_checked_on_bytes_whatever_the_comm_holds() {
        // (comm bytes) -> the same process at start time 777
        let comms: &[&[u8]] = &[
            b"memhog",
            b"\xff",
            b"a\xc3(b) c",
            b"x=1 event=kill",
            b") 9 9 (",
            b"\n\0\x1b[31m",
            b"",
        ];
        for comm in comms {
            assert!(
                same_process(&stat(comm, 777), 777).is_ok(),
                "{comm:?} made it unverifiable"
            );
            assert!(
                matches!(same_process(&stat(comm, 778), 777), Err(KillError::Reused)),
                "{comm:?}"
            );
        }
        assert!(matches!(
            same_process(b"4242 (x) R 1", 777),
            Err(KillError::Unverifiable(_))
        ));
    }
}
