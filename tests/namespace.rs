//! Exe rules under mount namespaces, on this machine's kernel: the shipped systemd unit gives
//! oomward a private mount namespace, and exe rules (with them the built-in protected set) must
//! match exactly the same processes there as outside. A process in another namespace that runs
//! the host's file is matched; one whose namespace puts another file at that path (a container's
//! own binary) never is.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::oomward;

/// A child killed and reaped when dropped, even when the test fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

fn spawn(cmd: &mut Command) -> Guard {
    Guard(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn"),
    )
}

/// Waits until `pid` runs an executable named `exe` (unshare and sh have exec'd it).
fn wait_exec(pid: i32, exe: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|l| l == exe) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("pid {pid} never ran {}", exe.display());
}

/// `protected_by` of each of `pids` in `rank --json`, run through `wrap` (empty: directly).
fn protection(wrap: &[&str], config: &Path, pids: &[i32]) -> BTreeMap<i32, Option<String>> {
    let bin = env!("CARGO_BIN_EXE_oomward");
    let mut cmd = if wrap.is_empty() {
        oomward()
    } else {
        let mut wrapped = Command::new(wrap[0]);
        wrapped.args(&wrap[1..]).arg(bin);
        wrapped
    };
    let rows = support::rank_rows(cmd.arg("--config").arg(config).args(["rank", "--json"]));
    pids.iter()
        .map(|&pid| {
            let row = rows
                .iter()
                .find(|r| r["pid"] == pid)
                .unwrap_or_else(|| panic!("pid {pid} not ranked by {wrap:?}"));
            (pid, row["protected_by"].as_str().map(String::from))
        })
        .collect()
}

#[test]
#[ignore = "needs root and unshare(1)"]
fn exe_rules_match_the_same_processes_inside_a_private_mount_namespace() {
    support::need_root("to enter a private mount namespace");
    assert!(
        Command::new("unshare").arg("--version").output().is_ok(),
        "needs unshare(1) (util-linux)"
    );
    let sleep: PathBuf = std::fs::canonicalize("/usr/bin/sleep").expect("sleep");
    let dir = tempfile::tempdir().unwrap();
    // Another file at the same path inside a namespace: what a container's image is.
    let fake = dir.path().join("sleep");
    std::fs::copy(&sleep, &fake).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[[rule]]\nexe = \"{}\"\nprotect = true\n", sleep.display()),
    )
    .unwrap();

    let host = spawn(Command::new(&sleep).arg("1000"));
    let sandboxed = spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(&sleep)
            .arg("1000"),
    );
    let container = spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} {} && exec {} 1000",
                fake.display(),
                sleep.display(),
                sleep.display()
            )),
    );
    for g in [&host, &sandboxed, &container] {
        wait_exec(g.pid(), &sleep);
    }
    let pids = [host.pid(), sandboxed.pid(), container.pid()];

    let outside = protection(&[], &config, &pids);
    let inside = protection(
        &["unshare", "--mount", "--propagation", "private"],
        &config,
        &pids,
    );
    assert_eq!(
        outside, inside,
        "the same processes are protected inside a private mount namespace as outside"
    );
    assert!(
        outside[&host.pid()].is_some(),
        "the host's sleep is protected by the exe rule: {outside:?}"
    );
    assert!(
        outside[&sandboxed.pid()].is_some(),
        "a sandboxed process running the host's file is protected: {outside:?}"
    );
    assert_eq!(
        outside[&container.pid()],
        None,
        "another file at the host's path never gains protection: {outside:?}"
    );
}
