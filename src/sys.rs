//! The thin typed layer over the system calls the enforcement path needs: pidfds, signals,
//! waiting for exit, process_mrelease, memory locking, priority.
//!
//! Nothing above this module calls libc. Each function does one syscall (or a fixed pair) and
//! returns `io::Result`, so callers decide what an error means.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal};

/// Opens a pidfd: from here on, signals reach this process or nobody, never a reused pid.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// The signals oomward sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// Ask to exit.
    Term,
    /// Force exit.
    Kill,
}

impl Sig {
    fn rustix(self) -> Signal {
        match self {
            Sig::Term => Signal::TERM,
            Sig::Kill => Signal::KILL,
        }
    }

    /// `SIGTERM` / `SIGKILL` for logs.
    pub fn name(self) -> &'static str {
        match self {
            Sig::Term => "SIGTERM",
            Sig::Kill => "SIGKILL",
        }
    }
}

/// Sends a signal through a pidfd. ESRCH means the process has already exited.
pub fn pidfd_send_signal(fd: &OwnedFd, sig: Sig) -> io::Result<()> {
    Ok(rustix::process::pidfd_send_signal(fd, sig.rustix())?)
}

/// Waits up to `timeout` for the process behind the pidfd to exit (POLLIN); true when it has.
pub fn wait_exit(fd: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = Timespec::try_from(timeout).ok();
    loop {
        match poll(&mut fds, ts.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `process_mrelease(pidfd, 0)` (Linux ≥ 5.15): frees a SIGKILLed process's memory now rather
/// than when its last thread finishes exiting. Ok when released or already gone; EAGAIN is
/// retried a few times; ENOSYS (older kernel) and EINVAL (not yet dying) are returned.
pub fn process_mrelease(fd: &OwnedFd) -> io::Result<()> {
    const SYS_PROCESS_MRELEASE: libc::c_long = 448;
    for _ in 0..8 {
        // SAFETY: process_mrelease takes an int fd and an unsigned flags word and touches no
        // user memory; the fd is valid for the duration of the call because we borrow it.
        let r = unsafe { libc::syscall(SYS_PROCESS_MRELEASE, fd.as_fd().as_raw_fd(), 0u32) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ESRCH) => return Ok(()),
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// Locks all current and future pages in RAM so the daemon is not paged out in the very
/// shortage it must react to; MCL_ONFAULT where the kernel has it (locks pages as they are
/// touched instead of populating whole mappings up front).
pub fn lock_memory() -> io::Result<()> {
    use rustix::mm::{MlockAllFlags, mlockall};
    let base = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE;
    match mlockall(base | MlockAllFlags::ONFAULT) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) => Ok(mlockall(base)?),
        Err(e) => Err(e.into()),
    }
}

/// Gives back the pages of `ranges` (clean file pages: see
/// [`crate::probe::smaps::clean_file_ranges`]) and locks again what is touched from then on.
/// Start-up runs the argument parser, the TOML reader and the set-up checks once; locked,
/// their code would stay resident for the daemon's life. Unlocking comes first: the kernel
/// refuses to unmap locked pages. The pages stay in the page cache, so what the loop touches
/// next is mapped again without I/O, and locked (MCL_ONFAULT); [`confine_fault_around`] keeps
/// that to what it touches.
pub fn release_file_pages(ranges: &[std::ops::Range<usize>]) -> io::Result<()> {
    rustix::mm::munlockall()?;
    let unmapped = advise(ranges, rustix::mm::Advice::LinuxDontNeed)
        .and_then(|()| confine_fault_around(ranges));
    let locked = lock_memory();
    unmapped.and(locked)
}

/// The size of the pieces [`confine_fault_around`] cuts mappings into: 4 pages.
const FAULT_PIECE: usize = 16 * 1024;

/// At a fault in a file mapping the kernel maps not one page but every cached page around it,
/// up to 64 KiB ("fault-around"), never beyond the mapping itself. The loop runs code in some
/// forty places spread over the binary and libc, so each of them would keep 64 KiB resident
/// and locked: most of the binary. Every other [`FAULT_PIECE`] of each range is marked for
/// random access, which splits the mapping into pieces of that size (the marking only turns
/// read-ahead off), so a fault maps at most one piece. The cost is a kernel record per piece
/// (some 600, about 120 KiB), against 1.4 MiB of pages no longer locked. Pieces are counted
/// from address zero, so marking a range again changes nothing.
fn confine_fault_around(ranges: &[std::ops::Range<usize>]) -> io::Result<()> {
    advise(&odd_pieces(ranges, FAULT_PIECE), rustix::mm::Advice::Random)
}

/// The odd-numbered `piece`-sized pieces of address space (counted from zero) that the ranges
/// cover, each clipped to its range.
fn odd_pieces(ranges: &[std::ops::Range<usize>], piece: usize) -> Vec<std::ops::Range<usize>> {
    ranges
        .iter()
        .flat_map(|r| {
            (r.start / piece..r.end.div_ceil(piece))
                .filter(|k| k % 2 == 1)
                .map(|k| (k * piece).max(r.start)..((k + 1) * piece).min(r.end))
        })
        .collect()
}

/// Gives each range the same advice; a mapping gone in between (a library unloaded) is
/// skipped.
fn advise(ranges: &[std::ops::Range<usize>], advice: rustix::mm::Advice) -> io::Result<()> {
    for r in ranges {
        // SAFETY: each range is a whole private read-only mapping of a file in which no page
        // was copied on write (smaps said so). Dropping its pages loses nothing, since a later
        // touch maps the same bytes from the file, and no Rust reference can observe the
        // difference; random-access advice only turns read-ahead off. The mapping stays.
        let done = unsafe {
            rustix::mm::madvise(r.start as *mut std::ffi::c_void, r.end - r.start, advice)
        };
        match done {
            Ok(()) | Err(rustix::io::Errno::NOMEM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Makes this process the subreaper of its descendants: an orphan among them is re-parented
/// to it rather than to PID 1, so that it can be killed and reaped here.
pub fn become_subreaper() -> io::Result<()> {
    Ok(rustix::process::set_child_subreaper(Some(
        rustix::process::getpid(),
    ))?)
}

/// Makes reads of `fd` return at once (EAGAIN) when nothing is there.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(&fd)?;
    Ok(fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?)
}

/// How a child of this process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// It exited with this status.
    Exited(i32),
    /// A signal of this number ended it.
    Signalled(i32),
}

/// Reaps the child `pid` (`None`: any child) if it ended, without waiting: its pid and how it
/// ended; `Ok(None)` while it runs; an error when there is no such child (already reaped).
pub fn reap(pid: Option<i32>) -> io::Result<Option<(i32, ChildEnd)>> {
    use rustix::process::{WaitOptions, wait, waitpid};
    let ended = match pid {
        Some(p) => {
            let p = Pid::from_raw(p).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
            waitpid(Some(p), WaitOptions::NOHANG)?
        }
        // Not `waitpid(None)`: that is pid 0, the children of this process group only, and
        // a hook leads a group of its own.
        None => wait(WaitOptions::NOHANG)?,
    };
    let Some((pid, status)) = ended else {
        return Ok(None);
    };
    let end = match status.exit_status() {
        Some(code) => ChildEnd::Exited(code),
        None => ChildEnd::Signalled(status.terminating_signal().unwrap_or(0)),
    };
    Ok(Some((pid.as_raw_nonzero().get(), end)))
}

/// Stops every one of `pids` (`SIGSTOP`, so that none forks again), then kills them, then the
/// process group `group` leads. Only for this process's own children and their descendants,
/// which it alone reaps: none of their numbers can have been reused. One already gone is
/// skipped.
pub fn kill_tree(pids: &[i32], group: i32) {
    use rustix::process::{kill_process, kill_process_group};
    for sig in [Signal::STOP, Signal::KILL] {
        for pid in pids.iter().filter_map(|&p| Pid::from_raw(p)) {
            let _ = kill_process(pid, sig);
        }
    }
    if let Some(g) = Pid::from_raw(group) {
        let _ = kill_process_group(g, Signal::KILL);
    }
}

/// Reads the extended attribute `name` of `path` into `buf`: the value's length.
pub fn getxattr(path: &std::path::Path, name: &str, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::fs::getxattr(path, name, buf)?)
}

/// This process's effective user id: besides root, the one owner trusted for the files it
/// reads and keeps.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether this process runs as root: it may signal anyone's processes, and must trust only
/// files that only root can change.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The size of a memory page, bytes: the unit of `/proc`'s memory counts.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// The device and inode of the file at `path` (a symlink followed, as `/proc/PID/exe` must
/// be): two paths with the same pair are the same file. The device is packed `major << 32 |
/// minor`, as [`crate::probe::smaps::dev_of`] packs the numbers `maps` prints.
pub fn file_id(path: &std::path::Path) -> io::Result<(u64, u64)> {
    let st = rustix::fs::stat(path)?;
    let dev =
        u64::from(rustix::fs::major(st.st_dev)) << 32 | u64::from(rustix::fs::minor(st.st_dev));
    Ok((dev, st.st_ino))
}

/// Makes `opts` refuse a symlink in the file's place: a file the daemon keeps must never lead
/// it to write (or read) elsewhere.
pub fn no_follow(opts: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
}

/// The name of signal number `n` (`SIGKILL`) for logs; `unknown` when it names none.
pub fn signal_name(n: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(n).map_or("unknown", |sig| sig.as_str())
}

/// Sets this process's oom_score_adj (to -1000: the daemon must never be the kernel's victim).
/// Lowering needs CAP_SYS_RESOURCE; EACCES is returned for the caller to warn about.
pub fn set_own_oom_score_adj(adj: i32) -> io::Result<()> {
    std::fs::write("/proc/self/oom_score_adj", adj.to_string())
}

/// Raises the scheduling priority of every thread of this process to at least `nice`, so the
/// daemon runs while others thrash; never lowers it (a unit's `Nice=-20` stays -20). On Linux a
/// nice value belongs to a thread, and threads started later inherit their creator's; so every
/// thread already running is set, by its id. Returns the value the process now runs at.
pub fn raise_own_nice(nice: i32) -> io::Result<i32> {
    let current = rustix::process::getpriority_process(None)?;
    let target = current.min(nice);
    if target == current {
        return Ok(current);
    }
    let mut first_error = None;
    for entry in std::fs::read_dir("/proc/self/task")?.filter_map(Result::ok) {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if let Err(e) = rustix::process::setpriority_process(Some(tid), target) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(target),
    }
}

/// Moves the calling thread to the real-time class (`SCHED_FIFO`, priority `priority`); threads
/// it starts afterwards inherit it. A real-time thread is run as soon as it wakes, ahead of every
/// ordinary task, however busy the CPUs are; the kernel's RT throttling (95 % of each second by
/// default) bounds what a runaway one could take.
pub fn set_own_realtime(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler reads one sched_param from the valid pointer it is given and
    // changes only the calling thread (pid 0); it has no other memory effects.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) }.into())
}

/// This process's id.
pub fn own_pid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// This process's process group.
pub fn own_pgrp() -> i32 {
    rustix::process::getpgrp().as_raw_nonzero().get()
}

/// A new eventfd (non-blocking, close-on-exec): the kernel's cgroup v1 notifications signal
/// one, and the event poller is woken through one.
pub fn eventfd() -> io::Result<OwnedFd> {
    use rustix::event::EventfdFlags;
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?)
}

/// Adds 1 to an eventfd's counter (wakes whoever polls it).
pub fn eventfd_signal(fd: &OwnedFd) -> io::Result<()> {
    rustix::io::write(fd, &1u64.to_ne_bytes())?;
    Ok(())
}

/// Reads and resets an eventfd's counter; 0 when it was not signalled.
pub fn eventfd_read(fd: &OwnedFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    match rustix::io::read(fd, &mut buf) {
        Ok(_) => Ok(u64::from_ne_bytes(buf)),
        Err(rustix::io::Errno::AGAIN) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Reads a kernel file from its start again through a descriptor kept open (`oom_score` of
/// every process each pass: no open and close); the length read.
pub fn read_from_start(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::pread(fd, buf, 0)?)
}

/// Reads a small file from offset 0 and throws the text away: re-arms a kernfs file's change
/// notification (`memory.events`). An error (or nothing to read) means the file is gone.
pub fn pread_discard(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = [0u8; 512];
    match read_from_start(fd, &mut buf)? {
        0 => Err(io::Error::from_raw_os_error(libc::ENODEV)),
        _ => Ok(()),
    }
}

/// A new inotify instance (non-blocking, close-on-exec) watching each directory of `dirs` for
/// subdirectories made or removed (a cgroup tree's containers coming and going); with `written`,
/// for files written in it instead (`IN_MODIFY`: every `write(2)`, cgroup files included: a
/// limit or a `memory.high` written, for which the kernel sends no other notice). Directories
/// that are gone by now are skipped.
pub fn inotify_dirs(dirs: &[std::path::PathBuf], written: bool) -> io::Result<OwnedFd> {
    use rustix::fs::inotify::{self, CreateFlags, WatchFlags as W};
    let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
    let mask = match written {
        true => W::MODIFY | W::ONLYDIR,
        false => W::CREATE | W::DELETE | W::MOVED_FROM | W::MOVED_TO | W::ONLYDIR,
    };
    for dir in dirs {
        match inotify::add_watch(&fd, dir.as_path(), mask) {
            Ok(_) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(fd)
}

/// Reads every event an inotify instance has pending; true if one names a file `wanted`
/// accepts (an event without a name, such as a queue overflow, counts as wanted: something
/// may have been missed).
pub fn drain_names(fd: &OwnedFd, wanted: impl Fn(&[u8]) -> bool) -> io::Result<bool> {
    use rustix::fs::inotify::{ReadFlags, Reader};
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut reader = Reader::new(fd, &mut buf);
    let mut any = false;
    loop {
        match reader.next() {
            Ok(event) => {
                if event.events().contains(ReadFlags::IGNORED) {
                    // A watched directory is gone: its cgroup was removed (the round sees it).
                    continue;
                }
                any |= event.file_name().is_none_or(|n| wanted(n.to_bytes()));
            }
            Err(rustix::io::Errno::AGAIN) => return Ok(any),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads and discards whatever a non-blocking descriptor (an inotify instance) has pending.
pub fn drain(fd: &OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::ENODEV)),
            Ok(_) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads what `fd` (a child's pipe) has into `buf`, again when a signal interrupted the read:
/// the length read, 0 at its end.
pub fn read_uninterrupted(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(&fd, &mut *buf) {
            Err(rustix::io::Errno::INTR) => {}
            done => return Ok(done?),
        }
    }
}

/// Calls `each` with the name of every entry of the directory `dir` (`.` and `..` included):
/// `/proc` is listed every pass, its names read with getdents into one buffer.
pub fn each_name(dir: &std::path::Path, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    use rustix::fs::{Dir, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(dir, flags, Mode::empty())?;
    for entry in Dir::read_from(&fd)? {
        each(entry?.file_name().to_bytes());
    }
    Ok(())
}

/// The number of a descriptor, for `cgroup.event_control` lines.
pub fn raw(fd: &impl AsFd) -> i32 {
    fd.as_fd().as_raw_fd()
}

/// What poll reported for one descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready(u32);

impl Ready {
    /// Anything at all (readable, priority data, error, hang-up).
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// An error or hang-up: a PSI trigger whose cgroup was removed says so (a kernfs file
    /// says it on every change too, so that one is told by reading it).
    pub fn error(self) -> bool {
        self.0 & u32::from((PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL).bits()) != 0
    }

    /// Not an open descriptor at all.
    pub fn invalid(self) -> bool {
        self.0 & u32::from(PollFlags::NVAL.bits()) != 0
    }

    /// An error, or not an open descriptor; a hang-up alone is not (what came before it can
    /// still be read).
    pub fn failed(self) -> bool {
        self.0 & u32::from((PollFlags::ERR | PollFlags::NVAL).bits()) != 0
    }
}

/// Waits until one of `fds` is ready (readable, or with `true`, priority data: PSI triggers,
/// kernfs notifications) or `timeout` passes (`None`: no timeout). Fills `ready` one entry per
/// descriptor.
pub fn poll_ready(
    fds: &[(&OwnedFd, bool)],
    timeout: Option<Duration>,
    ready: &mut Vec<Ready>,
) -> io::Result<()> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, pri)| {
            let flags = if *pri { PollFlags::PRI } else { PollFlags::IN };
            PollFd::new(*fd, flags)
        })
        .collect();
    loop {
        let ts = timeout.and_then(|d| Timespec::try_from(d).ok());
        match poll(&mut pfds, ts.as_ref()) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    ready.clear();
    ready.extend(pfds.iter().map(|p| Ready(u32::from(p.revents().bits()))));
    Ok(())
}

/// Waits until one of `fds` can be read (`false`) or written (`true`), or `timeout` passes (the
/// metrics server's sockets): each one's flags, in order; none at all when the wait failed (a
/// signal came), as after a timeout.
pub fn poll_sockets<'a>(
    fds: impl IntoIterator<Item = (std::os::fd::BorrowedFd<'a>, bool)>,
    timeout: Duration,
) -> Vec<Ready> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .into_iter()
        .map(|(fd, write)| {
            let flags = if write { PollFlags::OUT } else { PollFlags::IN };
            PollFd::from_borrowed_fd(fd, flags)
        })
        .collect();
    match poll(&mut pfds, Timespec::try_from(timeout).ok().as_ref()) {
        Ok(_) => pfds
            .iter()
            .map(|p| Ready(u32::from(p.revents().bits())))
            .collect(),
        Err(_) => vec![Ready::default(); pfds.len()],
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (allowed without privilege) and
/// returns the soft limit now in force: the process table keeps a descriptor per process.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim)?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// Whether `e` says this process (EMFILE) or the machine (ENFILE) has no descriptor left.
pub fn is_out_of_fds(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    [rustix::io::Errno::MFILE, rustix::io::Errno::NFILE]
        .iter()
        .any(|n| code == Some(n.raw_os_error()))
}

/// Whether `e` says the process has already exited (ESRCH).
pub fn is_gone(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ESRCH)
}

/// Whether `e` says the cgroup behind a file was removed (ENODEV: its files, even kept open,
/// fail so).
pub fn no_device(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENODEV)
}

/// Whether `e` is a refusal by policy or for want of privilege (EPERM).
pub fn not_permitted(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EPERM)
}

/// Whether `e` says the filesystem is mounted read-only (EROFS).
pub fn read_only(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EROFS)
}

/// Whether `e` says the kernel has the file but not the feature (EOPNOTSUPP: PSI with `psi=0`).
pub fn not_supported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// The soft RLIMIT_NOFILE in force.
pub fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Sets a listening socket's backlog to `backlog` (capped by the kernel at
/// `net.core.somaxconn`): `listen(2)` on a socket that already listens only changes it.
pub fn widen_backlog(listener: &std::net::TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: listen takes a descriptor, borrowed for the call, and an integer; no memory.
    check(unsafe { libc::listen(listener.as_raw_fd(), backlog) }.into())
}

/// Asks the kernel to hand a listening socket's connections to `accept` only once their
/// first bytes arrived, or after about `secs` (`TCP_DEFER_ACCEPT`): a crowd that connects and
/// says nothing then waits in the kernel's queue instead of the server's few slots, and a
/// scraper's request is there when it is taken, so it is answered at once.
pub fn defer_accept(listener: &std::net::TcpListener, secs: i32) -> io::Result<()> {
    // SAFETY: setsockopt reads one c_int from a valid reference, its size given; the
    // descriptor is borrowed for the call.
    check(
        unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&secs as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        }
        .into(),
    )
}

/// Starts the thread `oomward-NAME` that serves others (the metrics listener, the journal
/// writer, hook and notification watchers), back in the normal scheduling class: threads
/// inherit the loop's real-time class when it starts them, and these must never outrank the
/// machine's own work however busy a client keeps them.
pub fn spawn_helper<F>(name: &str, f: F) -> io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    std::thread::Builder::new()
        .name(format!("oomward-{name}"))
        .spawn(move || {
            leave_realtime();
            f();
        })
}

/// Puts the calling thread back in the normal scheduling class (see [`spawn_helper`]).
pub fn leave_realtime() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads one sched_param from a valid reference; pid 0 is the
    // calling thread.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
    }
}

/// Makes `cmd` start its child as `uid`:`gid` with no supplementary groups, in a process group
/// of its own, unable to gain privileges (`PR_SET_NO_NEW_PRIVS`), with the scheduling and OOM
/// standing of an ordinary process. For children that must not run as root: desktop
/// notifications (run as the receiving user) and hooks.
///
/// All of it is done here, in the child before `exec`, rather than with `Command::uid`/`gid`:
/// std switches the uid before it runs `pre_exec` closures, after which the child may no
/// longer reset its `oom_score_adj` (its `/proc/self` then belongs to root) or clear its groups,
/// and std itself ignores a refused `setgroups`. Do not also call `uid`/`gid` on `cmd`.
///
/// What a child of the daemon would otherwise inherit, and is reset:
/// - `oom_score_adj` -1000: a user's process the kernel could never choose; set to 0.
/// - real-time scheduling and nice -20: set to `SCHED_OTHER`, nice 0.
/// - root's supplementary groups: cleared (`setgroups(0, NULL)`), then gid, then uid (real,
///   effective and saved, so there is no way back).
/// - descriptors without close-on-exec: marked close-on-exec (`close_range`, Linux ≥ 5.11;
///   best effort, as every descriptor the daemon opens already is).
///
/// Needs CAP_SETUID and CAP_SETGID (and, under a seccomp filter, `setgroups`, `setresgid` and
/// `setresuid`); a step that fails makes the spawn fail with its error.
pub fn as_user(cmd: &mut std::process::Command, uid: u32, gid: u32) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // work is allowed: `drop_to_user` makes system calls only (no allocation, no locks), the same
    // calls std makes there for `Command::uid`.
    unsafe {
        cmd.pre_exec(move || drop_to_user(uid, gid));
    }
    cmd
}

/// A system call's return value as a result: negative is the error in `errno`. Makes no
/// allocation, so that it may run between fork and exec.
fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The child's side of [`as_user`]; see there.
fn drop_to_user(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: each call in the block is a plain system call on the calling thread, with integer
    // arguments or pointers to valid, live buffers; none keeps a pointer past the call.
    unsafe {
        let fd = libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        check(fd.into())?;
        let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        check(wrote as libc::c_long)?;

        let param = libc::sched_param { sched_priority: 0 };
        check(libc::sched_setscheduler(0, libc::SCHED_OTHER, &param).into())?;
        check(libc::setpriority(libc::PRIO_PROCESS, 0, 0).into())?;

        check(libc::setgroups(0, std::ptr::null()).into())?;
        check(libc::setresgid(gid, gid, gid).into())?;
        check(libc::setresuid(uid, uid, uid).into())?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;

        // Best effort: older kernels lack close_range or its CLOEXEC flag.
        let _ = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

/// Whether only root can change `path`: it and its directory are owned by root and writable by
/// no group or other user (a directory with the sticky bit, like /tmp, excepted: others cannot
/// replace a root-owned file in it), sshd's rule for its files. The error names what fails; a
/// path that cannot be read passes (reading it says what is wrong).
pub fn only_root_can_change(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    for (what, is_dir) in [(Some(path), false), (dir, true)] {
        let Some(m) = what.and_then(|w| std::fs::metadata(w).ok()) else {
            continue;
        };
        let what = what.unwrap_or(path).display();
        let sticky = is_dir && m.mode() & 0o1000 != 0;
        if m.uid() != 0 {
            return Err(format!("{what} is owned by uid {}", m.uid()));
        } else if m.mode() & 0o022 != 0 && !sticky {
            let who = if m.mode() & 0o002 != 0 {
                "anyone"
            } else {
                "its group"
            };
            return Err(format!("{what} is writable by {who}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::odd_pieces;

    /// Every other piece, clipped to its range; a range inside one even piece has none; the
    /// pieces of a range already cut are the same pieces (a second marking changes nothing).
    #[test]
    fn odd_pieces_table() {
        type Spans = &'static [(usize, usize)];
        let rows: [(Spans, Spans); 4] = [
            (&[(0, 64)], &[(16, 32), (48, 64)]),
            (&[(8, 40)], &[(16, 32)]),
            (&[(0, 10), (40, 56)], &[(48, 56)]),
            (&[(16, 32), (48, 56)], &[(16, 32), (48, 56)]),
        ];
        for (ranges, want) in rows {
            let ranges: Vec<_> = ranges.iter().map(|&(a, b)| a..b).collect();
            let want: Vec<_> = want.iter().map(|&(a, b)| a..b).collect();
            assert_eq!(odd_pieces(&ranges, 16), want, "{ranges:?}");
        }
    }
}
