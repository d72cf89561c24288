//! The killer: the one way signals go out (through a pidfd verified to be the process chosen,
//! a SIGKILL followed by `process_mrelease` on the reaper's thread), the victims given up on,
//! and the one thread that may wait on a stuck process's smaps. A leaf: it knows processes and
//! pidfds, not domains or the round.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::decide::domain::ProcessKey;
use crate::kill::{self, Companion, InFlight, KillError, Reaper};
use crate::probe::Host;
use crate::probe::process::ProcessSnapshot;
use crate::probe::smaps::Finalist;
use crate::sys::Sig;

/// Victims that did not exit after SIGKILL (or can never be signalled), never chosen again.
const STUCK_MAX: usize = 64;

/// What signals, and what it remembers across rounds.
pub(super) struct Killer {
    /// Deciding and reporting without signalling.
    pub dry_run: bool,
    reaper: Reaper,
    /// The last [`STUCK_MAX`] given up on, in a ring.
    stuck: [ProcessKey; STUCK_MAX],
    stuck_len: usize,
    /// A read of a stuck process's smaps is under way on its own thread: no second one until
    /// it returns.
    stuck_read: Arc<AtomicBool>,
}

impl Killer {
    pub fn new(dry_run: bool) -> Self {
        Killer {
            dry_run,
            reaper: Reaper::start(),
            stuck: [ProcessKey {
                pid: 0,
                starttime: 0,
            }; STUCK_MAX],
            stuck_len: 0,
            stuck_read: Arc::default(),
        }
    }

    /// Gives up on a process: it is never chosen again.
    pub fn mark_stuck(&mut self, key: ProcessKey) {
        self.stuck[self.stuck_len % STUCK_MAX] = key;
        self.stuck_len += 1;
    }

    pub fn is_stuck(&self, key: ProcessKey) -> bool {
        self.stuck[..self.stuck_len.min(STUCK_MAX)].contains(&key)
    }

    /// Signals the process behind a verified pidfd.
    pub fn signal(&self, fd: &OwnedFd, sig: Sig) -> Result<(), KillError> {
        kill::signal(fd, sig)
    }

    /// After a SIGKILL, queues the process's memory for release; the word says what became of
    /// it (`-` for a SIGTERM).
    pub fn release(&self, fd: &OwnedFd, pid: i32, sig: Sig) -> &'static str {
        if sig == Sig::Kill {
            self.reaper.release(fd, pid)
        } else {
            "-"
        }
    }

    /// Signals a process taken with the victim: opened verified, signalled, its memory
    /// released after a SIGKILL. `None` when it could not be signalled.
    pub fn signal_companion(
        &self,
        host: &Host,
        p: &ProcessSnapshot,
        sig: Sig,
    ) -> Option<Companion> {
        let fd = kill::open_verified(host, p).ok()?;
        self.signal(&fd, sig).ok()?;
        self.release(&fd, p.pid, sig);
        Some(Companion { pid: p.pid, fd })
    }

    /// SIGKILL for a victim in flight and those signalled with it still alive.
    pub fn escalate(&self, f: &mut InFlight, now: Instant) {
        f.escalate(now, &self.reaper);
    }

    /// A pid whose memory was released since the last call, if any (call until `None`).
    pub fn released(&self) -> Option<i32> {
        self.reaper.released()
    }

    /// Reads what finalists in uninterruptible sleep hold on a thread of its own, waiting for
    /// it at most `wait`. A read still blocked then is left to finish on its own (the
    /// finalists keep their estimate from status), and none other is started until it has:
    /// one thread at most ever waits on a stuck process.
    pub fn read_stuck_finalists(
        &self,
        host: &Host,
        pids: Vec<i32>,
        others: Vec<i32>,
        budget: Duration,
        wait: Duration,
    ) -> Vec<Finalist> {
        if self.stuck_read.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let host = host.clone();
        let busy = self.stuck_read.clone();
        let spawned = std::thread::Builder::new()
            .name("oomward-smaps".into())
            .spawn(move || {
                crate::sys::leave_realtime();
                let read = crate::probe::smaps::read_finalists(&host, &pids, &others, budget);
                let _ = tx.send(read);
                busy.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.stuck_read.store(false, Ordering::Release);
            return Vec::new();
        }
        rx.recv_timeout(wait).unwrap_or_default()
    }
}
