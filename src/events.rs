//! Kernel events that wake the loop before the timer would: cgroup v1 usage thresholds and OOM
//! notifications (eventfds registered through `cgroup.event_control`), cgroup v2
//! `memory.events` changes, and PSI triggers (`/proc/pressure/memory`, v2 `memory.pressure`).
//!
//! One thread polls every armed source and sends a [`Wakeup::Event`] over the same channel that
//! carries signals; the loop then runs a round at once. A wake-up only says "look now": the
//! round re-reads everything and decides as after a timer tick, so an extra or a lost event
//! never changes a decision, only when it is made. The adaptive timer stays as the fallback, and
//! every source that cannot be armed (an old kernel, a missing file, no permission) is reported
//! once by the caller and left to polling.
//!
//! Arming happens on the caller's thread (so errors come back at once); the armed descriptors
//! are then handed to the poller, which owns and closes them. Closing the eventfd of a v1
//! registration unregisters it in the kernel; closing a PSI trigger's file removes the trigger.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, unbounded};

use crate::sys::{self, Ready};

/// What woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// A signal (SIGHUP, SIGTERM, SIGINT).
    Signal(i32),
    /// A kernel event from an armed source (the id [`Events::arm`] returned).
    Event(Source, u64),
}

/// The kinds of event source, for reports (`wake=` on decision lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// v1: usage crossed a threshold set at a cgroup's term or kill level.
    V1Threshold,
    /// v1: the cgroup (or an ancestor) entered OOM.
    V1Oom,
    /// v2: `memory.events` changed (`high`, `max`, `oom`, `oom_kill`).
    V2Events,
    /// v2: the cgroup's `memory.pressure` trigger fired.
    CgroupPsi,
    /// The machine's `/proc/pressure/memory` trigger fired.
    SystemPsi,
}

impl Source {
    /// The word used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::V1Threshold => "v1_threshold",
            Source::V1Oom => "v1_oom",
            Source::V2Events => "v2_events",
            Source::CgroupPsi => "cgroup_psi",
            Source::SystemPsi => "system_psi",
        }
    }
}

/// What to arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// v1: an eventfd signalled when `memory.usage_in_bytes` crosses `bytes` (either way).
    V1Threshold {
        /// The cgroup's directory.
        dir: PathBuf,
        /// The usage threshold.
        bytes: u64,
    },
    /// v1: an eventfd signalled when the cgroup (or an ancestor) enters OOM.
    V1Oom {
        /// The cgroup's directory.
        dir: PathBuf,
    },
    /// v2: `memory.events`, which the kernel marks on every change.
    V2Events {
        /// The cgroup's directory.
        dir: PathBuf,
    },
    /// A PSI trigger: `some|full <stall µs> <window µs>`.
    Psi {
        /// `/proc/pressure/memory` or a v2 cgroup's `memory.pressure`.
        file: PathBuf,
        /// `full` (all non-idle tasks stalled) rather than `some` (at least one).
        full: bool,
        /// Stall time within the window that fires it.
        stall: Duration,
        /// The window (0.5–10 s; a multiple of 2 s without CAP_SYS_RESOURCE).
        window: Duration,
    },
}

impl Spec {
    /// The source kind this spec arms.
    pub fn source(&self, system: bool) -> Source {
        match self {
            Spec::V1Threshold { .. } => Source::V1Threshold,
            Spec::V1Oom { .. } => Source::V1Oom,
            Spec::V2Events { .. } => Source::V2Events,
            Spec::Psi { .. } if system => Source::SystemPsi,
            Spec::Psi { .. } => Source::CgroupPsi,
        }
    }
}

/// Why a source could not be armed (the caller logs it and relies on polling).
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// A file the registration needs is missing or refused us.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The poller thread is gone (it could not be started).
    #[error("the event thread is not running")]
    NoPoller,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ArmError + '_ {
    move |source| ArmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How the poller waits on an armed source and clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clear {
    /// An eventfd: readable; read its counter.
    Eventfd,
    /// A PSI trigger: POLLPRI, cleared by the poll itself.
    Psi,
    /// A kernfs file (`memory.events`): POLLPRI|POLLERR until read again.
    Kernfs,
}

/// One armed source, owned by the poller.
#[derive(Debug)]
struct Armed {
    id: u64,
    source: Source,
    /// The descriptor polled.
    fd: OwnedFd,
    /// Descriptors that must stay open for the registration to live (the v1 control file's
    /// target), closed with it.
    _keep: Vec<OwnedFd>,
    clear: Clear,
    /// Wake-ups in the current second, to stop a source that fires without pause (a removed
    /// cgroup's file reporting an error forever).
    burst: (Instant, u32),
}

enum Ctl {
    Add(Box<Armed>),
    Remove(u64),
}

/// A source firing more often than this per second is dropped (the round falls back to
/// polling for it): a kernel event is a wake-up, not a stream.
const MAX_WAKES_PER_SECOND: u32 = 500;

/// The caller's handle: arms and disarms sources; the poller thread does the waiting. Clones
/// share the one poller.
#[derive(Debug, Clone)]
pub struct Events {
    ctl: Sender<Ctl>,
    kick: Arc<OwnedFd>,
    next_id: Arc<AtomicU64>,
}

impl Events {
    /// Starts the poller thread, which sends each event as a [`Wakeup::Event`] on `wake`
    /// (dropping it when the channel is full: a wake-up is already pending).
    pub fn start(wake: Sender<Wakeup>) -> io::Result<Events> {
        let kick = Arc::new(sys::eventfd()?);
        let (ctl, rx) = unbounded();
        let thread_kick = kick.clone();
        std::thread::Builder::new()
            .name("oomward-events".into())
            .spawn(move || poll_loop(&thread_kick, &rx, &wake))?;
        Ok(Events {
            ctl,
            kick,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Arms `spec`; the id disarms it. `system` tells a machine-wide PSI trigger from a
    /// cgroup's.
    pub fn arm(&self, spec: &Spec, system: bool) -> Result<u64, ArmError> {
        let source = spec.source(system);
        let (fd, keep, clear) = open(spec)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let armed = Armed {
            id,
            source,
            fd,
            _keep: keep,
            clear,
            burst: (Instant::now(), 0),
        };
        if self.ctl.send(Ctl::Add(Box::new(armed))).is_err() {
            return Err(ArmError::NoPoller);
        }
        self.poke();
        Ok(id)
    }

    /// Disarms a source (closing its descriptors in the poller).
    pub fn disarm(&self, id: u64) {
        if self.ctl.send(Ctl::Remove(id)).is_ok() {
            self.poke();
        }
    }

    fn poke(&self) {
        let _ = sys::eventfd_signal(&self.kick);
    }
}

/// Opens what `spec` needs and registers it with the kernel.
fn open(spec: &Spec) -> Result<(OwnedFd, Vec<OwnedFd>, Clear), ArmError> {
    match spec {
        Spec::V1Threshold { dir, bytes } => {
            let target = dir.join("memory.usage_in_bytes");
            let (efd, keep) = register_v1(dir, &target, Some(*bytes))?;
            Ok((efd, vec![keep], Clear::Eventfd))
        }
        Spec::V1Oom { dir } => {
            let target = dir.join("memory.oom_control");
            let (efd, keep) = register_v1(dir, &target, None)?;
            Ok((efd, vec![keep], Clear::Eventfd))
        }
        Spec::V2Events { dir } => {
            let path = dir.join("memory.events");
            let f = std::fs::File::open(&path).map_err(io_at(&path))?;
            // Read once: the kernel reports a change relative to the last read.
            sys::pread_discard(f.as_fd()).map_err(io_at(&path))?;
            Ok((OwnedFd::from(f), Vec::new(), Clear::Kernfs))
        }
        Spec::Psi {
            file,
            full,
            stall,
            window,
        } => {
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(file)
                .map_err(io_at(file))?;
            let trigger = format!(
                "{} {} {}\0",
                if *full { "full" } else { "some" },
                stall.as_micros(),
                window.as_micros()
            );
            f.write_all(trigger.as_bytes()).map_err(io_at(file))?;
            Ok((OwnedFd::from(f), Vec::new(), Clear::Psi))
        }
    }
}

/// `cgroup.event_control` registration: "<eventfd> <target fd> [<threshold>]".
fn register_v1(
    dir: &Path,
    target: &Path,
    threshold: Option<u64>,
) -> Result<(OwnedFd, OwnedFd), ArmError> {
    let control = dir.join("cgroup.event_control");
    let target_file = std::fs::File::open(target).map_err(io_at(target))?;
    let efd = sys::eventfd().map_err(io_at(&control))?;
    let line = match threshold {
        Some(t) => format!("{} {} {t}", sys::raw(&efd), sys::raw(&target_file.as_fd())),
        None => format!("{} {}", sys::raw(&efd), sys::raw(&target_file.as_fd())),
    };
    // Never created: a missing control file means the kernel offers no such registration.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&control)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(io_at(&control))?;
    Ok((efd, OwnedFd::from(target_file)))
}

/// The poller: waits on the kick eventfd and every armed source; forwards events.
fn poll_loop(kick: &OwnedFd, ctl: &Receiver<Ctl>, wake: &Sender<Wakeup>) {
    let mut armed: Vec<Armed> = Vec::new();
    let mut ready: Vec<Ready> = Vec::new();
    loop {
        {
            let mut fds: Vec<(&OwnedFd, bool)> = Vec::with_capacity(armed.len() + 1);
            fds.push((kick, false));
            for a in &armed {
                fds.push((&a.fd, a.clear != Clear::Eventfd));
            }
            if sys::poll_ready(&fds, &mut ready).is_err() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        }
        if ready.first().is_some_and(|r| r.any()) {
            let _ = sys::eventfd_read(kick);
            let mut gone = false;
            loop {
                match ctl.try_recv() {
                    Ok(Ctl::Add(a)) => armed.push(*a),
                    Ok(Ctl::Remove(id)) => armed.retain(|a| a.id != id),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                return;
            }
            // The list changed: the readiness below is stale.
            continue;
        }
        let now = Instant::now();
        let mut drop_ids: Vec<u64> = Vec::new();
        for (a, r) in armed.iter_mut().zip(ready.iter().skip(1)) {
            if !r.any() {
                continue;
            }
            let cleared = match a.clear {
                Clear::Eventfd => sys::eventfd_read(&a.fd).map(|_| ()),
                Clear::Psi => Ok(()),
                Clear::Kernfs => sys::pread_discard(a.fd.as_fd()),
            };
            if cleared.is_err() {
                // A removed cgroup: its file errors forever. The round notices the removal.
                drop_ids.push(a.id);
            }
            if now.duration_since(a.burst.0) >= Duration::from_secs(1) {
                a.burst = (now, 0);
            }
            a.burst.1 += 1;
            if a.burst.1 > MAX_WAKES_PER_SECOND {
                drop_ids.push(a.id);
            }
            match wake.try_send(Wakeup::Event(a.source, a.id)) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        if !drop_ids.is_empty() {
            armed.retain(|a| !drop_ids.contains(&a.id));
        }
    }
}

/// The sources armed for one scope, by keys the caller chooses (a key names the source and its
/// parameters, so a changed threshold is a new key). Dropping the set disarms them all.
#[derive(Debug)]
pub struct ArmedSet {
    events: Events,
    ids: Vec<(String, u64)>,
}

impl ArmedSet {
    /// An empty set arming through `events`.
    pub fn new(events: Events) -> Self {
        ArmedSet {
            events,
            ids: Vec::new(),
        }
    }

    /// Whether `key` is armed.
    pub fn has(&self, key: &str) -> bool {
        self.ids.iter().any(|(k, _)| k == key)
    }

    /// Whether the source armed as `id` is one of this set's.
    pub fn contains_id(&self, id: u64) -> bool {
        self.ids.iter().any(|(_, i)| *i == id)
    }

    /// Arms `spec` under `key` unless it already is.
    pub fn arm(&mut self, key: &str, spec: &Spec, system: bool) -> Result<(), ArmError> {
        if self.has(key) {
            return Ok(());
        }
        let id = self.events.arm(spec, system)?;
        self.ids.push((key.to_string(), id));
        Ok(())
    }

    /// Disarms every key `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let events = &self.events;
        self.ids.retain(|(k, id)| {
            let kept = keep(k);
            if !kept {
                events.disarm(*id);
            }
            kept
        });
    }
}

impl Drop for ArmedSet {
    fn drop(&mut self) {
        self.retain(|_| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_their_sources() {
        let dir = PathBuf::from("/sys/fs/cgroup/memory/app");
        let psi = Spec::Psi {
            file: "/proc/pressure/memory".into(),
            full: false,
            stall: Duration::from_millis(150),
            window: Duration::from_secs(2),
        };
        assert_eq!(psi.source(true), Source::SystemPsi);
        assert_eq!(psi.source(false), Source::CgroupPsi);
        assert_eq!(
            Spec::V1Threshold { dir, bytes: 1 }.source(false).as_str(),
            "v1_threshold"
        );
    }
}
