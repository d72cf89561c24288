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
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    loop {
        match poll(&mut fds, Some(&ts)) {
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

/// Sets this process's oom_score_adj (to -1000: the daemon must never be the kernel's victim).
/// Lowering needs CAP_SYS_RESOURCE; EACCES is returned for the caller to warn about.
pub fn set_own_oom_score_adj(adj: i32) -> io::Result<()> {
    std::fs::write("/proc/self/oom_score_adj", adj.to_string())
}

/// Raises this process's scheduling priority (nice value) so it runs while others thrash.
pub fn set_own_nice(nice: i32) -> io::Result<()> {
    Ok(rustix::process::setpriority_process(None, nice)?)
}

/// This process's id.
pub fn own_pid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// This process's process group.
pub fn own_pgrp() -> i32 {
    rustix::process::getpgrp().as_raw_nonzero().get()
}
