//! The command line as users and scripts meet it: exit codes, messages naming file/line/key,
//! `rank` output, and the idle daemon's start, reload and stop.

mod support;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use support::{Daemon, check_config, check_config_says, oomward};

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `check-config` of a file holding `text` exits with `code` and says `words` on stderr.
fn text_check_says(text: &str, code: i32, words: &str) {
    let dir = tempfile::tempdir().unwrap();
    check_config_says(&write_config(&dir, text), code, words);
}

#[test]
fn version_prints_the_crate_version() {
    let out = oomward().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_config_prints_the_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[system]\nmem_available_term = \"2GiB\"\n");
    let said = check_config(&p);
    assert_eq!(said.code, Some(0));
    let text = said.stdout;
    assert!(text.contains("mem_available_term = \"2GiB\""), "{text}");
    assert!(
        text.contains("grace = \"5s\""),
        "defaults are filled in: {text}"
    );
}

#[test]
fn check_config_error_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[kill]\ngrace = \"5\"\n");
    check_config_says(&p, 2, &format!("{}:2: kill.grace:", p.display()));
}

#[test]
fn check_config_uses_the_global_config_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[daemon]\nbogus = 1\n");
    let out = oomward()
        .arg("--config")
        .arg(&p)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2: daemon.bogus:"));
}

#[test]
fn comm_only_protect_rule_warns_at_load() {
    text_check_says(
        "[[rule]]\ncomm = \"^sshd$\"\nprotect = true\n",
        0,
        "any user can give a process that name",
    );
}

#[test]
fn no_subcommand_prints_help_and_starts_nothing() {
    let out = oomward().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("Usage: oomward"), "{all}");
    assert!(all.contains("check-config"), "{all}");
}

#[test]
fn check_config_without_a_file_checks_what_run_would_load_and_says_which() {
    let out = oomward().arg("check-config").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if std::path::Path::new("/etc/oomward/config.toml").exists() {
        assert!(err.contains("checked /etc/oomward/config.toml"), "{err}");
    } else {
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("built-in defaults"), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("[daemon]"));
    }
}

#[test]
fn check_config_merges_the_dropin_directory_and_names_the_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = write_config(&dir, "[kill]\ngrace = \"2s\"\n");
    let d = dir.path().join("config.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("50-a.toml"), "[kill]\ngrace = \"3s\"\n").unwrap();
    let run = || {
        oomward()
            .arg("--config")
            .arg(&main)
            .arg("--config-dir")
            .arg(&d)
            .arg("check-config")
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("grace = \"3s\""));
    assert!(String::from_utf8_lossy(&out.stderr).contains("50-a.toml"));
    let bad = d.join("60-b.toml");
    std::fs::write(&bad, "[kill]\ngrace = 5\n").unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: kill.grace:", bad.display())),
        "{err}"
    );
    assert!(err.contains("\"5s\""), "a bare number gets a hint: {err}");
}

#[test]
fn check_config_quiet_prints_nothing_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "");
    let out = oomward()
        .args(["check-config", "--quiet"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn a_config_that_watches_nothing_is_warned_about() {
    text_check_says("[system]\nenabled = false\n", 0, "no scope is enabled");
}

#[test]
fn missing_explicit_config_is_an_error() {
    let out = oomward()
        .args(["--config", "/nonexistent/oomward.toml", "rank"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/oomward.toml"));
    let out = oomward()
        .args(["--config", "/nonexistent/oomward.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A typo, then a restart: the daemon runs on the last config that loaded and says so (at
/// err, in `status`, in the service status); `check-config` still refuses the file; with no
/// last good config it runs on the built-in defaults. A reload that loads clears it.
#[test]
fn a_config_that_does_not_load_at_start_runs_on_the_last_good_one() {
    use nix::sys::signal::Signal;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let status_file = dir.path().join("status.json");
    let good = format!(
        "[daemon]\nlog = \"stderr\"\ndry_run = true\nmax_interval = \"1s\"\n\
         [report]\nstatus_file = \"{}\"\n[[rule]]\ncomm = \"^kept$\"\nadjust = 7\n",
        status_file.display()
    );
    let good = good.as_str();
    let p = write_config(&dir, good);
    let status_text = || {
        let out = oomward()
            .args(["status", "--file"])
            .arg(&status_file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let start = |p: &std::path::Path| {
        Daemon::start_with(
            p,
            &["--dry-run"],
            &[("STATE_DIRECTORY", state.to_str().unwrap())],
        )
    };
    // No last good config yet: a typo runs on the defaults.
    let typo = format!("{good}[kill]\ngrace = \"5 parsecs\"\n");
    std::fs::write(&p, &typo).unwrap();
    let d = start(&p);
    let out = d.wait_for("event=config_error", Duration::from_secs(10));
    assert!(out.contains("built-in defaults"), "{out}");
    drop(d);
    // A good start keeps its config; the next start with the typo runs on it.
    std::fs::write(&p, good).unwrap();
    let d = start(&p);
    d.wait_for("event=start", Duration::from_secs(10));
    drop(d);
    let last = state.join("last-good.toml");
    assert!(std::fs::read_to_string(&last).unwrap().contains("^kept$"));
    std::fs::write(&p, &typo).unwrap();
    let d = start(&p);
    let out = d.wait_for("event=config_error", Duration::from_secs(10));
    let line = out
        .lines()
        .find(|l| l.contains("event=config_error"))
        .unwrap();
    assert!(
        line.contains("kill.grace") && line.contains(&*p.to_string_lossy()),
        "{line}"
    );
    assert!(line.contains(&*last.to_string_lossy()), "{line}");
    // Still running (no refusal, no restart loop), and it says so where an operator looks.
    std::thread::sleep(Duration::from_secs(2));
    let text = status_text();
    assert!(
        text.contains("CONFIG ERROR") && text.contains("kill.grace"),
        "{text}"
    );
    let check = oomward()
        .arg("--config")
        .arg(&p)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
    // Mended and reloaded: the error is gone.
    std::fs::write(&p, good).unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_for("event=reload", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let text = status_text();
    assert!(!text.contains("CONFIG ERROR"), "{text}\n{}", d.output());
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        oomward().arg("frobnicate").output().unwrap().status.code(),
        Some(2)
    );
    let out = oomward()
        .args(["rank", "--scope", "kubepods"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = oomward()
        .args(["rank", "--scope", "/no/such/cgroup/oomward-test"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no memory cgroup"));
}

#[test]
fn rank_json_has_the_documented_fields_and_order() {
    let child = oomward()
        .args(["rank", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let my_pid = i64::from(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        for (k, check) in [
            ("pid", r["pid"].is_i64()),
            ("comm", r["comm"].is_string()),
            ("exe", r["exe"].is_string() || r["exe"].is_null()),
            ("uid", r["uid"].is_u64()),
            ("cgroup", r["cgroup"].is_string() || r["cgroup"].is_null()),
            ("rss_pages", r["rss_pages"].is_u64()),
            ("swap_pages", r["swap_pages"].is_u64()),
            ("pgtables_pages", r["pgtables_pages"].is_u64()),
            ("oom_score_adj", r["oom_score_adj"].is_i64()),
            ("total_pages", r["total_pages"].is_u64()),
            ("badness", r["badness"].is_i64() || r["badness"].is_null()),
            ("oom_score", r["oom_score"].is_u64()),
            ("protected", r["protected"].is_boolean()),
            (
                "rank_score",
                r["rank_score"].is_i64() || r["rank_score"].is_null(),
            ),
        ] {
            assert!(check, "field {k} has the wrong type in {r}");
        }
    }
    // Eligible first, by rank_score descending.
    let scores: Vec<Option<i64>> = rows.iter().map(|r| r["rank_score"].as_i64()).collect();
    let first_ineligible = scores
        .iter()
        .position(Option::is_none)
        .unwrap_or(scores.len());
    assert!(scores[first_ineligible..].iter().all(Option::is_none));
    assert!(
        scores[..first_ineligible].windows(2).all(|w| w[0] >= w[1]),
        "{scores:?}"
    );
    // oomward itself is listed as protected, and PID 1 too. (Itself by its pid: another test's
    // daemon may be running, and one a user started is not protected.)
    let me = rows
        .iter()
        .find(|r| r["pid"] == my_pid)
        .expect("oomward lists itself");
    assert_eq!(me["comm"], "oomward");
    assert_eq!(me["protected"], true);
    if let Some(init) = rows.iter().find(|r| r["pid"] == 1) {
        assert_eq!(init["protected"], true);
        assert_eq!(init["oom_score"], 0);
    }
    // --top
    let out = oomward()
        .args(["rank", "--json", "--top", "2"])
        .output()
        .unwrap();
    let top: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(top.len(), 2.min(rows.len()));
}

#[test]
fn rank_table_shows_every_term() {
    let out = oomward().args(["rank", "--top", "3"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("scope system: T = "));
    let header = lines.next().unwrap();
    for col in "PID COMM RSS_MiB SWAP_MiB PTE ADJ POL BADNESS SCORE RANK PROTECTED".split(' ') {
        assert!(header.contains(col), "{col} missing in {header}");
    }
    assert_eq!(lines.count(), 3);
}

#[test]
#[ignore = "needs root to switch to an ordinary user"]
fn rank_as_an_ordinary_user_says_what_it_could_not_read() {
    support::need_root("to switch to an ordinary user");
    let out = oomward()
        .args(["rank", "--json"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.len() > 3, "other users' processes are still listed");
    assert!(
        rows.iter().any(|r| r["exe"].is_null()),
        "root's exe links are hidden"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not be read") && err.contains("run as root"),
        "{err}"
    );
}

#[test]
fn run_starts_keeps_its_config_on_a_bad_reload_and_stops_on_sigterm() {
    use nix::sys::signal::Signal;
    let dir = tempfile::tempdir().unwrap();
    let config = |term: &str| {
        format!(
            "[daemon]\nlog = \"stderr\"\ndry_run = true\n[system]\nmem_available_term = \"{term}\"\n"
        )
    };
    let p = write_config(&dir, &config("7%"));
    let mut d = Daemon::start(&p, &[]);
    let out = d.wait_for("system_mem_available_term=7%", Duration::from_secs(10));
    assert!(out.contains("event=start"), "{out}");
    assert!(out.contains("event=self_protect"), "{out}");

    std::fs::write(&p, config("seven")).unwrap();
    d.signal(Signal::SIGHUP);
    let out = d.wait_for("reload refused", Duration::from_secs(10));
    assert!(out.contains(":5: system.mem_available_term:"), "{out}");

    std::fs::write(&p, config("8%")).unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_for("system_mem_available_term=8%", Duration::from_secs(10));

    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM stops it cleanly"
    );
    d.wait_for("event=stop", Duration::from_secs(1));
}

#[test]
fn run_tells_systemd_it_is_ready_after_a_round_and_pings_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[daemon]\nlog = \"stderr\"\ndry_run = true\n");
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let d = Daemon::start_with(
        &p,
        &[],
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            // 600 ms: pings are due every 150 ms, and the loop sleeps at most 200 ms.
            ("WATCHDOG_USEC", "600000"),
        ],
    );
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a first notification");
    let first = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(first.contains("READY=1\n"), "{first}");
    assert!(first.contains("STATUS=watching the system"), "{first}");
    assert!(first.contains("WATCHDOG=1\n"), "{first}");
    // The start line is written before the first round (READY's order against it is shown
    // in the systemd guest, where both reach the journal); here it reaches the pipe soon.
    d.wait_for("event=start", Duration::from_secs(5));
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let n = sock.recv(&mut buf).expect("a watchdog ping in time");
        let msg = String::from_utf8_lossy(&buf[..n]);
        assert!(!msg.contains("READY=1"), "READY is sent once: {msg}");
        pings += msg.matches("WATCHDOG=1").count();
    }
    // One every 150-200 ms: 7 to 10 in 1.5 s; a loop that slept its 5 s would send none.
    assert!(pings >= 5, "{pings} watchdog pings in 1.5 s");
}

#[test]
#[ignore = "needs a machine without /dev/log (log = \"auto\" picks syslog there)"]
fn an_inherited_journal_stream_that_is_not_stderr_gives_plain_lines() {
    assert!(
        !std::path::Path::new("/dev/log").exists(),
        "needs a machine without /dev/log: log = \"auto\" picks syslog there and stderr stays empty"
    );
    // JOURNAL_STREAM is inherited by everything a service starts; stderr here is a pipe, not
    // that stream, so lines must not carry <N> priority prefixes or go to the journal.
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[daemon]\nlog = \"auto\"\ndry_run = true\n");
    let d = Daemon::start_with(&p, &[], &[("JOURNAL_STREAM", "8:12345")]);
    let out = d.wait_for("event=start", Duration::from_secs(10));
    assert!(out.contains("oomward: started "), "{out}");
    assert!(!out.contains("<6>") && !out.contains("<4>"), "{out}");
}

#[test]
#[ignore = "needs root to start at nice -20"]
fn a_nice_value_the_service_asks_for_is_kept_by_every_thread() {
    support::need_root("to start at nice -20");
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[daemon]\nlog = \"stderr\"\ndry_run = true\n");
    let mut cmd = oomward();
    cmd.arg("--config").arg(&p).arg("run");
    cmd.env("STATE_DIRECTORY", dir.path())
        .env("RUNTIME_DIRECTORY", dir.path());
    // As the unit's Nice=-20 does: the process starts at -20.
    // SAFETY: the closure runs in the child between fork and exec and makes one system call
    // (setpriority), async-signal-safe, on no memory of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setpriority_process(None, -20).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.stderr(std::process::Stdio::null()).spawn().unwrap();
    let pid = child.id();
    // Wait for the worker threads (log, signals, events, reaper) to exist.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut nices = Vec::new();
    while std::time::Instant::now() < deadline {
        nices = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .map(|s| {
                let after = &s[s.rfind(')').unwrap() + 2..];
                // Fields after the command: state is 3rd overall; nice is the 19th.
                after.split(' ').nth(16).unwrap().parse::<i32>().unwrap()
            })
            .collect();
        if nices.len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(nices.len() >= 4, "threads: {nices:?}");
    assert!(
        nices.iter().all(|&n| n == -20),
        "every thread stays at -20: {nices:?}"
    );
}

#[test]
fn the_help_texts_agree_on_where_the_config_comes_from() {
    let help = |args: &[&str]| {
        let out = oomward().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for text in [help(&["--help"]), help(&["check-config", "--help"])] {
        for words in [
            "/etc/oomward/config.toml",
            "/etc/oomward/config.d",
            "built-in defaults",
        ] {
            assert!(text.contains(words), "{words:?} missing from:\n{text}");
        }
    }
}

#[test]
fn check_config_output_errors_are_reported_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "");
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = oomward()
        .arg("check-config")
        .arg(&p)
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write the config"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // A reader that goes away after one line: not an error, not a panic.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{} check-config {} | head -n 1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_oomward"),
            p.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// Threads and resident memory of a process.
fn threads_and_rss_kib(pid: u32) -> (usize, u64) {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    (threads, rss)
}

#[test]
fn a_sink_nobody_reads_leaks_nothing_on_reloads_and_does_not_hold_up_a_stop() {
    use nix::sys::signal::{Signal, kill};
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(&dir, "[daemon]\nlog = \"stderr\"\ndry_run = true\n");
    // stderr is a pipe this test never reads: it fills after 64 KiB and the writer blocks.
    let mut child = oomward()
        .arg("--config")
        .arg(&p)
        .arg("run")
        .env("STATE_DIRECTORY", dir.path())
        .env("RUNTIME_DIRECTORY", dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    std::thread::sleep(Duration::from_millis(500));
    let before = threads_and_rss_kib(child.id());
    for _ in 0..400 {
        kill(pid, Signal::SIGHUP).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = threads_and_rss_kib(child.id());
    let start = std::time::Instant::now();
    kill(pid, Signal::SIGTERM).unwrap();
    let mut status = None;
    while start.elapsed() < Duration::from_secs(10) {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(after.0, before.0, "threads before/after 400 reloads");
    assert!(
        after.1 <= before.1 + 2048,
        "RSS {} KiB → {} KiB after 400 reloads",
        before.1,
        after.1
    );
    assert!(status.is_some(), "SIGTERM did not stop it within 10 s");
    assert!(stop < Duration::from_secs(5), "stop took {stop:?}");
}

#[test]
fn a_reload_of_an_emptied_config_keeps_the_running_one() {
    use nix::sys::signal::Signal;
    let dir = tempfile::tempdir().unwrap();
    let p = write_config(
        &dir,
        "[daemon]\nlog = \"stderr\"\ndry_run = true\n[[rule]]\ncomm = \"^x$\"\nadjust = 5\n",
    );
    let d = Daemon::start(&p, &[]);
    d.wait_for("rules=1", Duration::from_secs(10));
    // What `>` does to a file while an editor or a tool writes it.
    std::fs::write(&p, "").unwrap();
    d.signal(Signal::SIGHUP);
    let out = d.wait_for("reload refused", Duration::from_secs(10));
    assert!(out.contains("is empty"), "{out}");
    assert!(!out.contains("rules=0"), "{out}");
}
