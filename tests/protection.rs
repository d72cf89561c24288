//! Built-in protection as a security boundary, tried as a hostile local user would on this
//! machine's kernel: the genuine `/usr/bin/dbus-daemon` (a built-in protected path) run by an
//! ordinary user with `LD_PRELOAD`, through a symlink, or through `/proc/PID/root` of a process
//! in the user's own user namespace, and the oomward binary itself run by a user, all show the
//! genuine file in `/proc/PID/exe`; none may be protected. The same binaries run by root
//! outside a user session still are.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::oomward;

const DBUS: &str = "/usr/bin/dbus-daemon";
/// An ordinary user: `nobody`.
const USER: &str = "65534";

/// A child (and, through its process group, what it started) killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `argv` in its own process group, as `nobody` when `as_user`, and returns it once
/// its executable is `exe` (an intermediate `setpriv`, `unshare` or `sh` has exec'd it).
fn start(argv: &[&str], as_user: bool, env: &[(&str, &str)], exe: &Path) -> (Guard, i32) {
    let mut cmd = if as_user {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", USER, "--regid", USER, "--clear-groups", "--"]);
        c.args(argv);
        c
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let guard = Guard(cmd.spawn().expect("spawn"));
    let leader = guard.0.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // The process of the group that runs `exe` (a shell may have forked it).
        if let Some(pid) = group_members(leader)
            .into_iter()
            .find(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|l| l == exe))
        {
            return (guard, pid);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{argv:?} never ran {}", exe.display());
}

fn group_members(pgrp: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                let after = &s[s.rfind(')').map_or(0, |i| i + 2)..];
                after.split(' ').nth(2) == Some(&pgrp.to_string())
            })
        })
        .collect()
}

/// `protected_by` of `pid` in `rank --json`.
fn protected_by(pid: i32) -> Option<String> {
    let rows = support::rank_rows(oomward().args(["rank", "--json"]));
    let row = rows
        .iter()
        .find(|r| r["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} not ranked"));
    row["protected_by"].as_str().map(String::from)
}

/// Fails the test, saying what is missing, unless it can run here; the tests are `#[ignore]`d
/// with the same words.
fn need_tools() {
    support::need_root("to run processes as another user");
    assert!(
        Path::new(DBUS).exists(),
        "needs {DBUS} (.ci/setup installs it)"
    );
    for tool in ["setpriv", "unshare"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "needs {tool}(1) (util-linux)"
        );
    }
}

/// A session bus daemon listening in `dir`, as its argv.
fn dbus_argv(exe: &str, dir: &Path) -> Vec<String> {
    vec![
        exe.to_string(),
        "--session".into(),
        "--nofork".into(),
        format!("--address=unix:path={}/bus", dir.display()),
    ]
}

fn dir_for_user() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    dir
}

#[test]
#[ignore = "needs root, dbus-daemon, setpriv and unshare"]
fn a_user_cannot_claim_the_builtin_protection_of_a_system_daemon() {
    need_tools();
    let dbus = PathBuf::from(DBUS);

    // Root running it outside a user session: a system daemon, protected.
    let root_dir = tempfile::tempdir().unwrap();
    let argv = dbus_argv(DBUS, root_dir.path());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (_root, root_pid) = start(&argv, false, &[], &dbus);
    assert_eq!(protected_by(root_pid).as_deref(), Some("builtin:system"));

    // A user running the genuine file with a preloaded library (it need not exist for the
    // loader to try; what matters is who runs it).
    let d1 = dir_for_user();
    let argv = dbus_argv(DBUS, d1.path());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (_preloaded, pid) = start(&argv, true, &[("LD_PRELOAD", "/nonexistent/hog.so")], &dbus);
    assert_eq!(protected_by(pid), None, "LD_PRELOAD as a user");

    // Through a symlink the user made.
    let d2 = dir_for_user();
    let link = d2.path().join("innocent");
    std::os::unix::fs::symlink(DBUS, &link).unwrap();
    let argv = dbus_argv(link.to_str().unwrap(), d2.path());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (_linked, pid) = start(&argv, true, &[], &dbus);
    assert_eq!(protected_by(pid), None, "through a symlink");

    // Through /proc/PID/root of a process in the user's own user and mount namespace.
    let (ns_holder, holder) = start(
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sleep",
            "1000",
        ],
        true,
        &[],
        Path::new("/usr/bin/sleep"),
    );
    let d3 = dir_for_user();
    let via = format!("/proc/{holder}/root{DBUS}");
    let argv = dbus_argv(&via, d3.path());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (_via_ns, pid) = start(&argv, true, &[], &dbus);
    assert_eq!(protected_by(pid), None, "through another namespace's root");
    drop(ns_holder);

    // The root daemon is still protected after all that.
    assert_eq!(protected_by(root_pid).as_deref(), Some("builtin:system"));
}

#[test]
#[ignore = "needs root, dbus-daemon, setpriv and unshare"]
fn a_user_running_the_oomward_binary_is_not_protected_as_an_instance() {
    need_tools();
    let bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_oomward")).unwrap();
    // `check-config` blocked reading a FIFO: an oomward process that stays.
    let dir = dir_for_user();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let argv = [
        bin.to_str().unwrap(),
        "check-config",
        fifo.to_str().unwrap(),
    ];
    let (_user, pid) = start(&argv, true, &[], &bin);
    assert_eq!(protected_by(pid), None, "a user's oomward process");
    // Root's, on a FIFO in a directory only root can write (root refuses any other).
    let root_dir = tempfile::tempdir().unwrap();
    let root_fifo = root_dir.path().join("fifo");
    nix::unistd::mkfifo(&root_fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let argv = [
        bin.to_str().unwrap(),
        "check-config",
        root_fifo.to_str().unwrap(),
    ];
    let (_root, pid) = start(&argv, false, &[], &bin);
    assert_eq!(
        protected_by(pid).as_deref(),
        Some("builtin:oomward"),
        "root's oomward process is another instance"
    );
}
