//! The package on a real systemd host: Debian 12 with systemd as PID 1, dbus and sshd, booted
//! on Debian's own 6.1 kernel under QEMU (the VM lab's machinery, `tests/vm/lab.rs`; the image
//! from `tests/vm/prepare-systemd.sh`). Each test builds the .deb with `packaging/build.sh`
//! (cheap when built), boots the guest with it and one scenario from
//! `tests/vm/systemd/scenarios/`, installs it there with `dpkg -i`, and asserts on the `RESULT`
//! line the guest prints. What it shows that no other test can: the unit as systemd runs it
//! (Type=notify, the watchdog, reload, the hardening's private mount namespace) and the
//! maintainer scripts on a live system.
//!
//! `OOMWARD_SKIP_VM=1` skips them (each says so on stderr), as in `tests/vm_lab.rs`.

#[path = "vm/lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use lab::{Guest, Lab};

/// `target/packages/oomward_*_amd64.deb`, built by `packaging/build.sh` once per test run.
fn deb() -> &'static Path {
    static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = DEB.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join("packaging/build.sh"))
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running packaging/build.sh: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "packaging/build.sh failed ({}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // build.sh prints the .deb's path and the .rpm's as its last lines.
        stdout
            .lines()
            .map(str::trim)
            .find(|l| l.ends_with("_amd64.deb"))
            .map(PathBuf::from)
            .filter(|p| p.starts_with(root.join("target/packages")) && p.is_file())
            .ok_or_else(|| {
                format!("packaging/build.sh named no .deb in target/packages:\n{stdout}")
            })
    });
    match built {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Boots the systemd guest with scenario `name` and the .deb as `/lab/oomward.deb`, unless the
/// VM tests are skipped.
fn run(name: &str, limit_s: u64) -> Option<Guest> {
    if lab::skipped(&format!("{name} on {} (systemd)", lab::SYSTEMD_KERNEL)) {
        return None;
    }
    let deb = deb();
    let lab = Lab::get();
    Some(lab.run_systemd(
        name,
        &[("lab/oomward.deb", 0o644, deb)],
        Duration::from_secs(limit_s),
    ))
}

/// package: dpkg -i enables and starts the unit, active only after READY=1; the journal
/// entries are structured; a broken config is refused on reload (by `systemctl reload` and by
/// the daemon on a bare SIGHUP) while the daemon runs on, and a fixed one is taken; a stopped
/// daemon is restarted by the watchdog; purge leaves nothing behind.
#[test]
fn package() {
    let Some(g) = run("package", 300) else {
        return;
    };
    g.expect_pass();
    for (key, want) in [
        ("dpkg_rc", "0"),
        ("active", "active"),
        ("enabled", "enabled"),
        ("type", "notify"),
        ("start_before_active", "yes"),
        ("conf_active_lines", "0"),
        ("bad_reload_active", "active"),
        ("hup_refused", "yes"),
        ("hup_active", "active"),
        ("good_reload_rc", "0"),
        ("good_reload_logged", "yes"),
        ("watchdog", "3s"),
        ("new_comm", "oomward"),
        ("old_gone", "yes"),
        ("purge_rc", "0"),
        ("leftover", "0"),
        ("unit_files", "0"),
        ("process_left", "no"),
    ] {
        g.expect_kv(key, want);
    }
    let v = g.expect_pass();
    assert!(
        !v.kv["status"].is_empty(),
        "no STATUS= text\n{}",
        g.transcript()
    );
    // A refused reload keeps the very same process; so does a good one.
    let pid = g.num("pid");
    assert!(pid > 1);
    for key in ["bad_reload_pid", "hup_pid", "good_reload_pid"] {
        assert_eq!(
            g.num(key),
            pid,
            "{key}: the daemon was replaced\n{}",
            g.transcript()
        );
    }
    assert_ne!(
        g.num("bad_reload_rc"),
        0,
        "systemctl reload took a broken config"
    );
    assert!(
        g.num("bad_reload_logged") > 0,
        "the journal does not name the bad key\n{}",
        g.transcript()
    );
    // Every entry the daemon wrote is structured.
    assert!(g.num("own_entries") > 0);
    assert_eq!(g.num("own_structured"), g.num("own_entries"));
    assert!((0..=7).contains(&g.num("start_priority")));
    // The watchdog: a new process, counted as an automatic restart, within WatchdogSec (3 s)
    // + RestartSec (1 s) + the new process's first round, with room for software emulation.
    assert_ne!(g.num("new_pid"), g.num("wd_pid"));
    assert_eq!(g.num("nr_after"), g.num("nr_before") + 1);
    assert!(
        g.num("watchdog_logged") > 0,
        "no watchdog timeout in the journal"
    );
    let restart_ms = g.num("restart_ms");
    assert!(
        (3_000..20_000).contains(&restart_ms),
        "restarted {restart_ms} ms after SIGSTOP, WatchdogSec=3s\n{}",
        g.transcript()
    );
    assert!(g.num("files") > 10, "dpkg -L listed too little");
}

/// system_short: the whole machine short of memory, the package at its defaults: the transient
/// hog unit is stopped by oomward (its first decision names the hog), the kernel kills nobody,
/// and sshd, journald and dbus-daemon at oom_score_adj 1000 (the kernel's first choices) are
/// untouched, protected by the built-in exe rules alone; so is a 200 MiB process at a path of
/// the built-in set (`/usr/lib/openssh/sshd-session`), which unprotected would be the victim.
/// With the shipped hooks drop-in linked, a `post_kill` hook runs as nobody and knows the
/// victim; `oomward status` works for nobody, `history` and `why` name the hog.
#[test]
fn system_short() {
    let Some(g) = run("system_short", 300) else {
        return;
    };
    g.expect_pass();
    g.expect_kv("dpkg_rc", "0");
    g.expect_kv("oomward", "active");
    g.expect_kv("hog_result", "signal");
    let sig = g.num("hog_signal");
    assert!(sig == 15 || sig == 9, "the hog died of signal {sig}");
    assert_eq!(
        g.num("victim"),
        g.num("hog"),
        "oomward's first victim was not the hog"
    );
    assert!(g.num("decisions") >= 1);
    g.expect_kv("others", "0");
    g.expect_kv("oom_kill", "0");
    g.expect_kv("bystanders_ok", "yes");
    g.expect_kv("sshd_exe", "/usr/sbin/sshd");
    g.expect_kv("sshd_adj", "1000");
    // At adj 1000 the kernel's own ranking puts them first.
    assert!(g.num("sshd_score") >= 1000 && g.num("journald_score") >= 1000);
    // The protection mattered: the large stand-in at a path of the built-in set ranks first
    // and its kill alone would end the shortage, so only its exe rule spared it.
    g.expect_kv("protected_exe", "/usr/lib/openssh/sshd-session");
    assert!(g.num("protected_score") >= 1000);
    assert!(
        g.num("protected_rss_mib") >= 150,
        "the protected stand-in holds too little to matter\n{}",
        g.transcript()
    );
    assert_eq!(
        g.num("oomward_pid_after"),
        g.num("oomward_pid"),
        "the daemon restarted"
    );
    // The reports under the unit: the shipped hooks drop-in lets a post_kill hook run as
    // nobody with the victim in its environment; `status` works for nobody; `history` and
    // `why` read the kill journal in the StateDirectory.
    g.expect_kv("hook_caps", "yes");
    g.expect_kv("hook_ok", "yes");
    g.expect_kv("status_ok", "yes");
    g.expect_kv("history_ok", "yes");
    g.expect_kv("why_ok", "yes");
}
