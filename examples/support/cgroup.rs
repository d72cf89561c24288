//! Joining a memory cgroup between fork and exec, the one way for the test programs (examples/)
//! and the bench (benches/compare.rs, which takes it by `#[path]`): the program starts inside
//! the cgroup, so none of its memory is charged elsewhere. Not an example of its own.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child of `cmd` write itself into `procs` (a `cgroup.procs` file) before it execs;
/// if that fails, spawning fails with the error.
pub fn join_before_exec(cmd: &mut Command, procs: CString) {
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls (open, write, close) on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0": the writing process itself.
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n == 1 { Ok(()) } else { Err(err) }
        });
    }
}
