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
use std::ops::ControlFlow;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// A cgroup was made or removed below a watched glob's literal prefix (inotify).
    CgroupTree,
    /// A limit or a `memory.high` was written on a watched cgroup's path (inotify).
    CgroupWritten,
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
            Source::CgroupTree => "cgroup_tree",
            Source::CgroupWritten => "cgroup_written",
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
    /// v2: `memory.events` (this cgroup and its subtree) or `memory.events.local` (this
    /// cgroup alone), which the kernel marks on every change.
    V2Events {
        /// The file.
        file: PathBuf,
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
    /// Subdirectories made or removed in any of these cgroup directories.
    Tree {
        /// The directories.
        dirs: Vec<PathBuf>,
    },
    /// A limit file (`memory.max`, `memory.high`, `memory.swap.max`; v1 `memory.limit_in_bytes`,
    /// `memory.memsw.limit_in_bytes`) written in any of these cgroup directories.
    Written {
        /// The directories.
        dirs: Vec<PathBuf>,
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
            Spec::Tree { .. } => Source::CgroupTree,
            Spec::Written { .. } => Source::CgroupWritten,
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

impl ArmError {
    /// True when this process or the machine ran out of descriptors.
    pub fn is_out_of_fds(&self) -> bool {
        matches!(self, ArmError::Io { source, .. } if sys::is_out_of_fds(source))
    }

    /// True when arming again cannot work: the kernel has no such source, or refuses it to us.
    /// Anything else (out of descriptors or memory) may pass, so the source is tried again.
    pub fn is_permanent(&self) -> bool {
        match self {
            ArmError::Io { source, .. } => {
                // ENOENT, EACCES/EPERM, EINVAL, EOPNOTSUPP/ENOSYS by kind; ENODEV (a removed
                // cgroup's file) has no kind of its own.
                matches!(
                    source.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::PermissionDenied
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::Unsupported
                ) || sys::no_device(source)
            }
            ArmError::NoPoller => true,
        }
    }
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
    /// An inotify instance: readable until its events are read.
    Drain,
    /// An inotify instance of written files: read, and a wake-up only for a limit file.
    Written,
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
    /// Wake-ups in the current second, to mute a source that fires without pause.
    burst: (Instant, u32),
    /// Not polled until then: a bursty source, or one that just fired and coalesces.
    muted_until: Option<Instant>,
    /// How long it stays quiet after it fired, when its owner said (see [`Events::coalesce`]).
    coalesce: Option<Duration>,
}

impl Armed {
    /// How long a source stays quiet after it fired. `memory.events` changes on every
    /// `high` throttling event, thousands a second in a cgroup at its `memory.high`: one
    /// wake-up per few milliseconds says as much (the round re-reads everything).
    fn coalesce(&self) -> Duration {
        if let Some(d) = self.coalesce {
            return d;
        }
        match self.clear {
            Clear::Kernfs => V2_EVENTS_COALESCE,
            Clear::Eventfd | Clear::Psi => Duration::ZERO,
            // A container start makes several directories at once: one look after them.
            Clear::Drain => TREE_COALESCE,
            // Each one makes every watched cgroup look (the watch does not say whose path the
            // directory is on): a user writing their own delegated cgroup's memory.high in a
            // loop must not make the daemon spin.
            Clear::Written => WRITTEN_COALESCE,
        }
    }

    /// Mutes the source for its quiet after it fired at `now`, or to the end of the second
    /// when it fired more than [`MAX_WAKES_PER_SECOND`] times in it.
    fn fired(&mut self, now: Instant) {
        if now.duration_since(self.burst.0) >= Duration::from_secs(1) {
            self.burst = (now, 0);
        }
        self.burst.1 += 1;
        let quiet = if self.burst.1 > MAX_WAKES_PER_SECOND {
            self.burst.0 + Duration::from_secs(1)
        } else {
            now + self.coalesce()
        };
        if quiet > now {
            self.muted_until = Some(quiet);
        }
    }
}

/// See [`Armed::coalesce`].
pub const V2_EVENTS_COALESCE: Duration = Duration::from_millis(5);
/// See [`Armed::coalesce`].
const TREE_COALESCE: Duration = Duration::from_millis(5);
/// See [`Armed::coalesce`].
const WRITTEN_COALESCE: Duration = Duration::from_millis(50);

enum Ctl {
    Add(Box<Armed>),
    Remove(u64),
    Coalesce(u64, Duration),
}

/// A source firing more often than this per second is muted for the rest of the second (the
/// timer covers it meanwhile): a kernel event is a wake-up, not a stream.
const MAX_WAKES_PER_SECOND: u32 = 500;

/// How many dropped ids wait for their owners at most.
const MAX_DROPPED_KEPT: usize = 1024;

/// The sources the poller dropped (their file says the cgroup is gone, or cannot be read):
/// the owner re-arms or forgets them.
#[derive(Debug, Default)]
struct Dropped {
    /// Bumped on every drop, so that owners look at `ids` only when it moved.
    generation: AtomicU64,
    ids: Mutex<Vec<u64>>,
}

/// The caller's handle: arms and disarms sources; the poller thread does the waiting. Clones
/// share the one poller.
#[derive(Debug, Clone)]
pub struct Events {
    ctl: Sender<Ctl>,
    kick: Arc<OwnedFd>,
    next_id: Arc<AtomicU64>,
    dropped: Arc<Dropped>,
}

impl Events {
    /// Starts the poller thread, which sends each event as a [`Wakeup::Event`] on `wake`
    /// (dropping it when the channel is full: a wake-up is already pending).
    pub fn start(wake: Sender<Wakeup>) -> io::Result<Events> {
        let kick = Arc::new(sys::eventfd()?);
        let (ctl, rx) = unbounded();
        let thread_kick = kick.clone();
        let dropped = Arc::new(Dropped::default());
        let thread_dropped = dropped.clone();
        std::thread::Builder::new()
            .name("oomward-events".into())
            .spawn(move || poll_loop(&thread_kick, &rx, &wake, &thread_dropped))?;
        Ok(Events {
            ctl,
            kick,
            next_id: Arc::new(AtomicU64::new(1)),
            dropped,
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
            muted_until: None,
            coalesce: None,
        };
        if !self.send(Ctl::Add(Box::new(armed))) {
            return Err(ArmError::NoPoller);
        }
        Ok(id)
    }

    /// Disarms a source (closing its descriptors in the poller).
    pub fn disarm(&self, id: u64) {
        self.send(Ctl::Remove(id));
    }

    /// Keeps the source armed as `id` quiet for `d` after each time it fires (instead of its
    /// kind's few milliseconds). For a cgroup looked at by the worst-case rule: an event before
    /// its next look says nothing that look would not (the rule already assumes the fastest
    /// fill), and a cgroup whose page cache fills its limit marks `memory.events` hundreds of
    /// times a second (its `max` reclaim).
    pub fn coalesce(&self, id: u64, d: Duration) {
        self.send(Ctl::Coalesce(id, d));
    }

    /// Hands `ctl` to the poller and wakes it; false when the poller is gone.
    fn send(&self, ctl: Ctl) -> bool {
        let sent = self.ctl.send(ctl).is_ok();
        if sent {
            let _ = sys::eventfd_signal(&self.kick);
        }
        sent
    }
}

/// Opens what `spec` needs and registers it with the kernel.
fn open(spec: &Spec) -> Result<(OwnedFd, Vec<OwnedFd>, Clear), ArmError> {
    match spec {
        Spec::V1Threshold { dir, bytes } => register_v1(dir, "memory.usage_in_bytes", Some(*bytes)),
        Spec::V1Oom { dir } => register_v1(dir, "memory.oom_control", None),
        Spec::V2Events { file: path } => {
            let f = std::fs::File::open(path).map_err(io_at(path))?;
            // Read once: the kernel reports a change relative to the last read.
            sys::pread_discard(f.as_fd()).map_err(io_at(path))?;
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
        Spec::Tree { dirs } | Spec::Written { dirs } => {
            let written = matches!(spec, Spec::Written { .. });
            let at = dirs.first().map_or(Path::new("/"), PathBuf::as_path);
            let fd = sys::inotify_dirs(dirs, written).map_err(io_at(at))?;
            let clear = if written {
                Clear::Written
            } else {
                Clear::Drain
            };
            Ok((fd, Vec::new(), clear))
        }
    }
}

/// `cgroup.event_control` registration: "<eventfd> <target fd> [<threshold>]", the target
/// being the cgroup's file `target`.
fn register_v1(
    dir: &Path,
    target: &str,
    threshold: Option<u64>,
) -> Result<(OwnedFd, Vec<OwnedFd>, Clear), ArmError> {
    let control = dir.join("cgroup.event_control");
    let target = dir.join(target);
    let target_file = std::fs::File::open(&target).map_err(io_at(&target))?;
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
    Ok((efd, vec![OwnedFd::from(target_file)], Clear::Eventfd))
}

/// The poller: waits on the kick eventfd and every armed source; forwards events.
fn poll_loop(kick: &OwnedFd, ctl: &Receiver<Ctl>, wake: &Sender<Wakeup>, dropped: &Dropped) {
    let mut armed: Vec<Armed> = Vec::new();
    let mut ready: Vec<Ready> = Vec::new();
    // Which armed source each polled descriptor after the kick is (muted ones are left out).
    let mut polled: Vec<usize> = Vec::new();
    let mut drop_ids: Vec<u64> = Vec::new();
    loop {
        let timeout = unmuted(&mut armed, Instant::now(), &mut polled);
        if poll(kick, &armed, &polled, timeout, &mut ready).is_err() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        // The sources first, against the list that was polled: a PSI trigger's readiness is
        // consumed by the poll itself, so it must not be lost to a kick in the same poll.
        drop_ids.clear();
        if forward(&mut armed, &polled, &ready, wake, &mut drop_ids).is_break() {
            return;
        }
        if !drop_ids.is_empty() {
            drop_broken(&mut armed, &drop_ids, dropped);
        }
        if ready.first().is_some_and(|r| r.any()) {
            let _ = sys::eventfd_read(kick);
            if take_ctl(&mut armed, ctl).is_break() {
                return;
            }
        }
    }
}

/// Fills `polled` with the sources to poll now, unmuting those whose quiet is over; the
/// time until the first muted one is due, so that the poll wakes to unmute it.
fn unmuted(armed: &mut [Armed], now: Instant, polled: &mut Vec<usize>) -> Option<Duration> {
    let mut timeout: Option<Duration> = None;
    polled.clear();
    for (i, a) in armed.iter_mut().enumerate() {
        if let Some(until) = a.muted_until {
            if until > now {
                let left = until - now;
                timeout = Some(timeout.map_or(left, |t: Duration| t.min(left)));
                continue;
            }
            a.muted_until = None;
        }
        polled.push(i);
    }
    timeout
}

/// Polls the kick eventfd, then the `polled` sources, into `ready` (in that order).
fn poll(
    kick: &OwnedFd,
    armed: &[Armed],
    polled: &[usize],
    timeout: Option<Duration>,
    ready: &mut Vec<Ready>,
) -> io::Result<()> {
    let mut fds: Vec<(&OwnedFd, bool)> = Vec::with_capacity(armed.len() + 1);
    fds.push((kick, false));
    for &i in polled {
        let a = &armed[i];
        fds.push((
            &a.fd,
            !matches!(a.clear, Clear::Eventfd | Clear::Drain | Clear::Written),
        ));
    }
    sys::poll_ready(&fds, timeout, ready)
}

/// Clears every ready source and sends its wake-up; a source that broke goes into
/// `drop_ids`. Breaks when the loop's end of the channel is gone.
fn forward(
    armed: &mut [Armed],
    polled: &[usize],
    ready: &[Ready],
    wake: &Sender<Wakeup>,
    drop_ids: &mut Vec<u64>,
) -> ControlFlow<()> {
    let now = Instant::now();
    for (&i, r) in polled.iter().zip(ready.iter().skip(1)) {
        if !r.any() {
            continue;
        }
        let a = &mut armed[i];
        let Some(cleared) = clear(a, r) else {
            continue;
        };
        if cleared.is_err() {
            // Its file errors from now on. Still a wake-up: the round notices the removal.
            drop_ids.push(a.id);
        } else {
            a.fired(now);
        }
        match wake.try_send(Wakeup::Event(a.source, a.id)) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => return ControlFlow::Break(()),
        }
    }
    ControlFlow::Continue(())
}

/// Clears a ready source's readiness; an error when it broke, `None` when what it saw is no
/// reason to wake the loop.
fn clear(a: &Armed, r: &Ready) -> Option<io::Result<()>> {
    // A kernfs file reports POLLERR on every change; anything else reporting an error or a
    // hang-up is a trigger whose cgroup went away.
    if r.invalid() || (a.clear != Clear::Kernfs && r.error()) {
        return Some(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
    }
    Some(match a.clear {
        Clear::Eventfd => sys::eventfd_read(&a.fd).map(|_| ()),
        Clear::Psi => Ok(()),
        Clear::Kernfs => sys::pread_discard(a.fd.as_fd()),
        Clear::Drain => sys::drain(&a.fd),
        Clear::Written => match sys::drain_names(&a.fd, is_limit_file) {
            // Another file written (cgroup.procs, a PSI trigger): no wake-up.
            Ok(false) => return None,
            other => other.map(drop),
        },
    })
}

/// Forgets the sources in `drop_ids` and hands their ids to their owners.
fn drop_broken(armed: &mut Vec<Armed>, drop_ids: &[u64], dropped: &Dropped) {
    armed.retain(|a| !drop_ids.contains(&a.id));
    if let Ok(mut ids) = dropped.ids.lock() {
        ids.extend_from_slice(drop_ids);
        // An owner that disarmed a source as it was dropped never collects it: keep
        // the list bounded (a lost entry only leaves that source to polling).
        let excess = ids.len().saturating_sub(MAX_DROPPED_KEPT);
        ids.drain(..excess);
    }
    dropped.generation.fetch_add(1, Ordering::Release);
}

/// Applies the owners' requests sent since the last kick. Breaks when every owner is gone.
fn take_ctl(armed: &mut Vec<Armed>, ctl: &Receiver<Ctl>) -> ControlFlow<()> {
    loop {
        match ctl.try_recv() {
            Ok(Ctl::Add(a)) => armed.push(*a),
            Ok(Ctl::Remove(id)) => armed.retain(|a| a.id != id),
            Ok(Ctl::Coalesce(id, d)) => {
                for a in armed.iter_mut().filter(|a| a.id == id) {
                    a.coalesce = Some(d);
                    // A shorter quiet than the one running now ends it sooner.
                    if a.muted_until.is_some_and(|t| t > Instant::now() + d) {
                        a.muted_until = Some(Instant::now() + d);
                    }
                }
            }
            Err(crossbeam_channel::TryRecvError::Empty) => return ControlFlow::Continue(()),
            Err(crossbeam_channel::TryRecvError::Disconnected) => return ControlFlow::Break(()),
        }
    }
}

/// The files whose writing [`Spec::Written`] reports: the limits the round reads and the
/// `memory.high` a tripwire is (v2), the limits (v1).
fn is_limit_file(name: &[u8]) -> bool {
    matches!(
        name,
        b"memory.max"
            | b"memory.high"
            | b"memory.swap.max"
            | b"memory.limit_in_bytes"
            | b"memory.memsw.limit_in_bytes"
    )
}

/// The sources armed for one scope, by keys the caller chooses (a key names the source and its
/// parameters, so a changed threshold is a new key). Dropping the set disarms them all.
#[derive(Debug)]
pub struct ArmedSet {
    events: Events,
    ids: Vec<(String, u64)>,
    /// The poller's drop generation this set last looked at.
    drops_seen: u64,
}

impl ArmedSet {
    /// An empty set arming through `events`.
    pub fn new(events: Events) -> Self {
        let drops_seen = events.dropped.generation.load(Ordering::Acquire);
        ArmedSet {
            events,
            ids: Vec::new(),
            drops_seen,
        }
    }

    /// Forgets the sources the poller dropped since the last call (so that they are armed
    /// again, or reported); true if there were any. Cheap when nothing was dropped.
    pub fn prune_dropped(&mut self) -> bool {
        let generation = self.events.dropped.generation.load(Ordering::Acquire);
        if generation == self.drops_seen {
            return false;
        }
        self.drops_seen = generation;
        let Ok(mut dropped) = self.events.dropped.ids.lock() else {
            return false;
        };
        let before = self.ids.len();
        self.ids.retain(|(_, id)| {
            let gone = dropped.contains(id);
            if gone {
                dropped.retain(|d| d != id);
            }
            !gone
        });
        self.ids.len() != before
    }

    /// The keys of the sources armed (for the status file).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(|(k, _)| k.as_str())
    }

    /// Whether a source is armed under `key`.
    pub fn has(&self, key: &str) -> bool {
        self.ids.iter().any(|(k, _)| k == key)
    }

    /// Whether the source armed as `id` is one of this set's.
    pub fn contains_id(&self, id: u64) -> bool {
        self.ids.iter().any(|(_, i)| *i == id)
    }

    /// Arms `spec` under `key` unless it already is; true if it was armed now.
    pub fn arm(&mut self, key: &str, spec: &Spec, system: bool) -> Result<bool, ArmError> {
        if self.has(key) {
            return Ok(false);
        }
        let id = self.events.arm(spec, system)?;
        self.ids.push((key.to_string(), id));
        Ok(true)
    }

    /// Keeps every source whose key starts with `prefix` quiet for `d` after it fires (see
    /// [`Events::coalesce`]).
    pub fn coalesce(&self, prefix: &str, d: Duration) {
        for (_, id) in self.ids.iter().filter(|(k, _)| k.starts_with(prefix)) {
            self.events.coalesce(*id, d);
        }
    }

    /// Disarms every key `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        // Collect this set's dropped ids first, so that none is left behind in the list.
        self.prune_dropped();
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
    fn only_a_missing_or_refused_source_is_given_up() {
        let err = |code| ArmError::Io {
            path: "/sys/fs/cgroup/app/memory.pressure".into(),
            source: io::Error::from_raw_os_error(code),
        };
        for code in [
            libc::ENOENT,
            libc::EACCES,
            libc::EPERM,
            libc::EINVAL,
            libc::EOPNOTSUPP,
            libc::ENODEV,
        ] {
            assert!(err(code).is_permanent(), "errno {code}");
        }
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EAGAIN] {
            assert!(!err(code).is_permanent(), "errno {code}");
        }
        assert!(err(libc::EMFILE).is_out_of_fds());
        assert!(!err(libc::ENOMEM).is_out_of_fds());
    }

    /// Every kind of registration names its own source, in the word the logs use (a PSI
    /// trigger by whether it is the machine's or a cgroup's), and no two share a word.
    #[test]
    #[rustfmt::skip]
    fn specs_name_their_sources() {
        let dir = PathBuf::from("/sys/fs/cgroup/memory/app");
        let psi = |file: &str| Spec::Psi {
            file: file.into(),
            full: false,
            stall: Duration::from_millis(150),
            window: Duration::from_secs(2),
        };
        let (events, pressure) = ("/sys/fs/cgroup/app/memory.events", "/sys/fs/cgroup/app/memory.pressure");
        let table = [
            (Spec::V1Threshold { dir: dir.clone(), bytes: 1 }, false, "v1_threshold"),
            (Spec::V1Oom { dir: dir.clone() }, false, "v1_oom"),
            (Spec::V2Events { file: events.into() }, false, "v2_events"),
            (psi("/proc/pressure/memory"), true, "system_psi"),
            (psi(pressure), false, "cgroup_psi"),
            (Spec::Tree { dirs: vec![dir.clone()] }, false, "cgroup_tree"),
            (Spec::Written { dirs: vec![dir] }, false, "cgroup_written"),
        ];
        let mut words: Vec<&str> = Vec::new();
        for (spec, system, word) in &table {
            assert_eq!(spec.source(*system).as_str(), *word, "{spec:?}");
            words.push(word);
        }
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), table.len(), "two sources share a word");
    }
}
