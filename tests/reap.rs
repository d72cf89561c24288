//! How the daemon's child runner learns that a hook ended: `sys::reap`, for any child and for
//! one child. A hook leads a process group of its own, and "any child" must include it (pid 0
//! in waitpid means the caller's group only: hooks then ran into their timeout although they
//! had exited).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use oomward::sys::{ChildEnd, reap};

/// Reaps until `pid` (`None`: any child) is reaped, for at most five seconds.
fn reaped(pid: Option<i32>) -> (i32, ChildEnd) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(ended) = reap(pid).expect("a child to reap") {
            return ended;
        }
        assert!(Instant::now() < deadline, "nothing reaped for {pid:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn children_in_groups_of_their_own_are_reaped_with_how_they_ended() {
    // Reaped here, by number: the `Child` handles are never waited on.
    let exits = Command::new("true").process_group(0).spawn().unwrap().id() as i32;
    assert_eq!(reaped(None), (exits, ChildEnd::Exited(0)));
    let pid = Command::new("sh")
        .args(["-c", "kill -9 $$"])
        .process_group(0)
        .spawn()
        .unwrap()
        .id() as i32;
    assert_eq!(reaped(Some(pid)), (pid, ChildEnd::Signalled(9)));
    // Gone: there is nothing left to reap, which is an error (ECHILD), not "still running".
    assert!(reap(Some(pid)).is_err());
}
