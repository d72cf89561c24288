//! Enforcement against the real kernel: each test makes its own v1 memory cgroup, runs a real
//! allocator in it and a daemon scoped to it (`[system] enabled = false`), and checks who was
//! signalled, by whom, and that the kernel's own OOM killer did not act (its `oom_kill`
//! counter stayed 0). They race the kernel, so they run one at a time.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Daemon, Freezer, Proc, TestCgroup, kernel_race, log_field, need_v1, serial};

const MIB: u64 = 1 << 20;

/// A daemon watching `path` only, logging to stderr, with a 300 ms grace unless `extra` sets
/// the [kill] table itself; `cgroup_extra` goes into the [[cgroup]] table. (The grace is short
/// so that a [`steady_allocator`] is projected to reach the limit after it, and gets SIGTERM.)
fn daemon(
    dir: &tempfile::TempDir,
    path: &str,
    cgroup_extra: &str,
    extra: &str,
    args: &[&str],
) -> Daemon {
    support::cgroup_daemon(dir, &[path], "300ms", cgroup_extra, extra, args)
}

/// Ended by one of the signals oomward sends (whether it was oomward is checked in its log and
/// in the kernel's oom_kill counter).
fn stopped_by_oomward(status: &std::process::ExitStatus) -> bool {
    matches!(status.signal(), Some(libc::SIGTERM | libc::SIGKILL))
}

/// As fast as it can: the seed's allocator.
fn fast_allocator(cg: &TestCgroup, extra: &[&str]) -> Proc {
    Proc::grower(cg, "0", extra)
}

/// At 20 MiB/s: slow enough that at a 10 % or 20 % threshold of a 256 MiB cgroup its projected
/// time to the limit (about a second) exceeds the tests' 300 ms grace, so the first signal is
/// SIGTERM; a fast one gets SIGKILL at once (`reason=eta`).
fn steady_allocator(cg: &TestCgroup, extra: &[&str]) -> Proc {
    Proc::grower(cg, "20", extra)
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn seed_000_fast_allocator_is_stopped_with_sigterm_before_the_limit_20_of_20() {
    let (_serial, cg, dir) = kernel_race("seed", 256 * MIB);
    // A respawning workload: enforcement goes on, with a warning past 5 kills a minute.
    let d = daemon(
        &dir,
        &cg.path,
        "",
        "[kill]\ngrace = \"1s\"\nwarn_kills_per_minute = 5\n",
        &[],
    )
    .watching();
    let mut peaks = Vec::new();
    let (mut by_term, mut by_eta, mut by_escalation) = (0, 0, 0);
    for round in 0..20 {
        cg.write("memory.max_usage_in_bytes", "0");
        let mut hog = fast_allocator(&cg, &[]);
        let status = hog
            .wait_exit(Duration::from_secs(20))
            .expect("the allocator was stopped");
        cg.assert_no_oom_kill(&format!("round {round}"), &d);
        // SIGTERM, or SIGKILL at once when the projection says the limit comes before the
        // grace could end (the decision line says reason=eta with its eta_ms).
        let line = d.memhog_line(hog.pid);
        match status.signal() {
            Some(libc::SIGTERM) => {
                assert!(line.contains("event=term "), "round {round}: {line}");
                by_term += 1;
            }
            Some(libc::SIGKILL) if line.contains("event=term ") => {
                // Asked first, then SIGKILLed at the last safe moment.
                d.wait_for(
                    &format!("pid={} comm=memhog victim_alive=true", hog.pid),
                    Duration::from_secs(2),
                );
                by_escalation += 1;
            }
            Some(libc::SIGKILL) => {
                assert!(
                    line.contains("event=kill ")
                        && line.contains("reason=eta")
                        && line.contains("signal_rule=no_room"),
                    "round {round}: SIGKILL without the projection saying so: {line}"
                );
                by_eta += 1;
            }
            other => panic!("round {round}: ended by {other:?}"),
        }
        peaks.push(
            cg.read("memory.max_usage_in_bytes")
                .trim()
                .parse::<u64>()
                .unwrap()
                / MIB,
        );
    }
    println!(
        "seed 000: stopped 20/20 before the limit, {by_term} by SIGTERM, {by_escalation} by SIGKILL after SIGTERM, {by_eta} by SIGKILL on the projection; peak usage MiB: {peaks:?}"
    );
    // What woke the daemon for each decision: the usage threshold armed at the term level
    // fires as the allocator crosses it; the timer may still get there first now and then.
    let out = d.output();
    assert!(
        out.contains("event=events_armed") && out.contains("sources=v1_threshold,v1_oom"),
        "{out}"
    );
    let wakes: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("event=term ") || l.contains("event=kill "))
        .filter_map(|l| l.split(' ').find_map(|w| w.strip_prefix("wake=")))
        .collect();
    let by_event = wakes.iter().filter(|w| **w == "v1_threshold").count();
    println!(
        "seed 000: decisions woken by the v1 threshold {by_event}/{}",
        wakes.len()
    );
    assert!(
        by_event > 0,
        "no decision was woken by the threshold: {wakes:?}"
    );
}

/// SIGTERM is sent whenever the projection leaves room, so a victim's SIGTERM handler may
/// itself allocate (a state dump on the way out): oomward must still get there before the
/// kernel, by SIGKILL at the last safe moment. Each round: an allocator growing at 300 MiB/s
/// (projected about 80 ms from the limit at the term level: room to ask) whose handler then
/// allocates 400 MiB more as fast as it can.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn a_sigterm_handler_that_allocates_is_sigkilled_before_the_limit_10_of_10() {
    let (_serial, cg, dir) = kernel_race("termgrow", 256 * MIB);
    let d = daemon(&dir, &cg.path, "", "[kill]\ngrace = \"5s\"\n", &[]).watching();
    let (mut asked, mut at_once) = (0, 0);
    for round in 0..10 {
        let mut hog = Proc::grower(&cg, "300", &["--term-grow", "400"]);
        let status = hog
            .wait_exit(Duration::from_secs(20))
            .expect("the allocator was stopped");
        cg.assert_no_oom_kill(&format!("round {round}"), &d);
        let line = d.memhog_line(hog.pid);
        if line.contains("event=term ") {
            // It was asked, its handler grew: SIGKILL by escalation, or its exit after the
            // handler when that fitted.
            assert!(
                line.contains("signal_rule=room") || line.contains("signal_rule=term_level"),
                "round {round}: SIGTERM without room: {line}"
            );
            if status.signal() == Some(libc::SIGKILL) {
                d.wait_for(
                    &format!("pid={} comm=memhog victim_alive=true", hog.pid),
                    Duration::from_secs(2),
                );
            }
            asked += 1;
        } else {
            assert!(
                line.contains("signal_rule=no_room"),
                "round {round}: {line}"
            );
            at_once += 1;
        }
    }
    println!(
        "term handler that allocates: 10/10 before the kernel, {asked} asked first, {at_once} SIGKILLed at once"
    );
    assert!(
        asked > 0,
        "never asked first: the rule gave no room at 300 MiB/s"
    );
}

/// A name is whatever its process made it. An ordinary user's allocator whose comm holds bytes
/// that are not UTF-8 (set with prctl, or taken from a file name with such bytes) is stopped
/// before the kernel like any other, in the seed race (as fast as it can), 5 of 5, and the
/// decision line shows the name escaped.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn a_name_that_is_not_utf8_makes_nobody_immune_5_of_5() {
    let (_serial, cg, dir) = kernel_race("bytes", 256 * MIB);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy whose file name is not UTF-8: its comm (and exe) come from that name.
    let odd_name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"hog\xff\xfe");
    let copy = dir.path().join(odd_name);
    std::fs::copy(support::memhog_path(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = daemon(&dir, &cg.path, "", "", &[]).watching();
    let memhog = support::memhog_path();
    for round in 0..5 {
        let by_file = round % 2 == 1;
        let exe = if by_file { &copy } else { &memhog };
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--rate", "0", "--grow", "600", "--delay-ms", "200"])
            .stdout(std::process::Stdio::piped())
            .uid(65534)
            .gid(65534);
        if !by_file {
            cmd.args(["--comm-hex", "ff6d656d"]);
        }
        // Adopted once it said ready; it grows 200 ms later, inside the cgroup by then.
        let mut hog = Proc::adopt(cmd.spawn().unwrap());
        cg.write("cgroup.procs", &hog.pid.to_string());
        let comm = std::fs::read(format!("/proc/{}/comm", hog.pid)).unwrap();
        assert!(
            std::str::from_utf8(&comm).is_err(),
            "round {round}: comm {comm:?} is UTF-8"
        );
        let status = hog
            .wait_exit(Duration::from_secs(20))
            .expect("the allocator was stopped");
        assert!(stopped_by_oomward(&status), "round {round}: {status:?}");
        cg.assert_no_oom_kill(&format!("round {round}"), &d);
        let line = d.wait_for_line(&format!("pid={} comm=", hog.pid), Duration::from_secs(2));
        assert!(line.contains("uid=65534"), "round {round}: {line}");
        // The bytes that are not UTF-8 are shown as such, not replaced (`\xNN`, whose
        // backslash the log line escapes in turn).
        let shown = if by_file {
            r#"comm="hog\\xff\\xfe""#
        } else {
            r#"comm="\\xffmem""#
        };
        assert!(
            line.contains(shown) && !line.contains('\u{fffd}'),
            "round {round}: the name is not shown escaped ({shown}): {line}"
        );
    }
    assert!(!d.output().contains("event=unverifiable"), "{}", d.output());
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn allocator_ignoring_sigterm_gets_sigkill_after_grace() {
    let (_serial, cg, dir) = kernel_race("grace", 256 * MIB);
    // Term at 20 % available (51 MiB), kill at 5 % (13 MiB): the allocator settles about
    // 29 MiB from the limit, well inside the term band, and ignores SIGTERM.
    let d = daemon(
        &dir,
        &cg.path,
        "available_term = \"20%\"\navailable_kill = \"5%\"",
        "",
        &[],
    )
    .watching();
    let mut hog = Proc::memhog_in(&cg, &["--ignore-term", "--rate", "20", "--grow", "224"]);
    let status = hog
        .wait_exit(Duration::from_secs(15))
        .expect("the allocator was stopped");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let out = d.wait_for("event=escalate", Duration::from_secs(2));
    assert!(
        out.contains(&format!("event=term scope={}", cg.path)),
        "SIGTERM came first: {out}"
    );
    let line = out.lines().find(|l| l.contains("event=escalate")).unwrap();
    assert!(line.contains("reason=grace"), "{line}");
    let after: u64 = log_field(line, "after_ms").unwrap().parse().unwrap();
    assert!(
        (300..2000).contains(&after),
        "SIGKILL {after} ms after SIGTERM, grace is 300 ms"
    );
    assert_eq!(cg.oom_kills(), 0);
    println!("escalation after grace: SIGKILL {after} ms after SIGTERM");
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn allocator_ignoring_sigterm_gets_sigkill_at_once_past_the_kill_level() {
    let (_serial, cg, dir) = kernel_race("killlevel", 256 * MIB);
    // A long grace: only the kill level can explain a quick SIGKILL.
    let d = daemon(
        &dir,
        &cg.path,
        "available_term = \"40%\"\navailable_kill = \"25%\"",
        "[kill]\ngrace = \"20s\"\n",
        &[],
    )
    .watching();
    // It creeps into the term band at 1 MiB/s (projected to reach the limit in minutes, so the
    // first signal is SIGTERM, which it ignores), then jumps 60 MiB past the kill level.
    let mut hog = Proc::memhog_in(
        &cg,
        &[
            "--ignore-term",
            "--hold",
            "150",
            "--rate",
            "1",
            "--grow",
            "10",
            "--grow-on-signal",
            "60",
        ],
    );
    d.wait_for("event=term ", Duration::from_secs(20));
    hog.signal(libc::SIGUSR1);
    let status = hog
        .wait_exit(Duration::from_secs(20))
        .expect("the allocator was stopped");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let out = d.wait_for("event=escalate", Duration::from_secs(2));
    // Escalated long before the 20 s grace: at the kill level, or on the way there when the
    // projection (sampled every 10 ms while the victim is in flight) already showed the limit
    // coming before the grace could end.
    let line = out.lines().find(|l| l.contains("event=escalate")).unwrap();
    assert!(
        line.contains("reason=kill_level") || line.contains("reason=eta"),
        "{line}"
    );
    assert_eq!(cg.oom_kills(), 0, "{out}");
}

/// Copies memhog to `dir/name` so it runs with another exe path (and comm).
fn memhog_copy(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::copy(support::memhog_path(), &path).unwrap();
    path.display().to_string()
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn exe_rule_protects_the_larger_process_but_not_an_impostor_with_its_name() {
    let (_serial, cg, dir) = kernel_race("protect", 256 * MIB);
    let bin = tempfile::tempdir().unwrap();
    // Readable by the other user who runs the impostor.
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(bin.path().join("other")).unwrap();
    std::fs::set_permissions(
        bin.path().join("other"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let protected_exe = memhog_copy(bin.path(), "dbserver");
    let impostor_exe = memhog_copy(&bin.path().join("other"), "dbserver");
    let rules = format!(
        "[[rule]]\nexe = \"{protected_exe}\"\nuser = \"root\"\nprotect = true\n\n[[rule]]\ncomm = \"^no-such-program$\"\nprotect = true\n"
    );
    let d = daemon(&dir, &cg.path, "", &rules, &[]);
    d.wait_for("event=config_warning", Duration::from_secs(2));
    d.wait_for("event=scope_added", Duration::from_secs(5));
    let procs = cg.procs_file();

    // 1. The 120 MiB protected process survives; the growing smaller one is the victim.
    let mut big = {
        let child = std::process::Command::new(&protected_exe)
            .args(["--cgroup-procs", procs.as_str(), "--hold", "120"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Proc::adopt(child)
    };
    let mut small = steady_allocator(&cg, &[]);
    let status = small
        .wait_exit(Duration::from_secs(20))
        .expect("the small allocator was stopped");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{}", d.output());
    assert!(
        big.wait_exit(Duration::from_millis(100)).is_none(),
        "the protected process survived"
    );
    assert_eq!(cg.oom_kills(), 0);

    // 2. Another user runs a program with the same name from elsewhere: not protected, and
    //    the largest killable process, so it is the victim.
    let mut impostor = {
        let child = std::process::Command::new(&impostor_exe)
            .args(["--grow-on-signal", "100"])
            .stdout(std::process::Stdio::piped())
            .uid(65534)
            .gid(65534)
            .spawn()
            .unwrap();
        let mut p = Proc::adopt(child);
        cg.write("cgroup.procs", &p.pid.to_string());
        p.signal(libc::SIGUSR1);
        p.expect_line("grown");
        p
    };
    let impostor_comm = std::fs::read_to_string(format!("/proc/{}/comm", impostor.pid)).unwrap();
    let big_comm = std::fs::read_to_string(format!("/proc/{}/comm", big.pid)).unwrap();
    assert_eq!(impostor_comm, big_comm, "same comm");
    let mut trigger = steady_allocator(&cg, &[]);
    let status = impostor
        .wait_exit(Duration::from_secs(20))
        .expect("the impostor was stopped");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let out = d.wait_for(
        &format!("pid={} comm=dbserver", impostor.pid),
        Duration::from_secs(2),
    );
    assert!(out.contains("uid=65534"), "{out}");
    assert!(
        big.wait_exit(Duration::from_millis(100)).is_none(),
        "the protected process survived"
    );
    let _ = trigger.wait_exit(Duration::from_secs(1));
    assert_eq!(cg.oom_kills(), 0);
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn hung_cgroup_with_oom_kill_disable_is_rescued() {
    let (_serial, cg, dir) = kernel_race("hung", 128 * MIB);
    cg.write("memory.oom_control", "1");
    // Thresholds off: only the hang itself triggers.
    let d = daemon(
        &dir,
        &cg.path,
        "available_term = \"0%\"\navailable_kill = \"0%\"\non_under_oom = \"kill\"",
        "",
        &[],
    )
    .watching();
    let mut hog = fast_allocator(&cg, &[]);
    let mut since = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if since.is_none() && cg.keyed("memory.oom_control", "under_oom") == 1 {
            since = Some(Instant::now());
            let state =
                std::fs::read_to_string(format!("/proc/{}/stat", hog.pid)).unwrap_or_default();
            println!(
                "allocator state while under_oom: {}",
                state
                    .split(") ")
                    .nth(1)
                    .unwrap_or("?")
                    .chars()
                    .next()
                    .unwrap_or('?')
            );
        }
        if let Some(s) = hog.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "not rescued; daemon output:\n{}",
            d.output()
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    // The hang may end before this loop sees it (the kernel's OOM notification wakes the
    // daemon within a millisecond); the rescue line then is the proof: the daemon decides a
    // rescue only on `under_oom 1`.
    match since {
        Some(since) => println!(
            "under_oom 1 -> victim exit: {} ms",
            since.elapsed().as_millis()
        ),
        None => println!("the rescue came before this loop saw under_oom 1"),
    }
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let out = d.wait_for("event=rescue", Duration::from_secs(2));
    assert!(out.contains(&format!("pid={}", hog.pid)), "{out}");
    // The kernel's OOM notification is armed for the cgroup, and the rescue came from it, or
    // from a look the cgroup had due anyway: at its limit with thresholds off, its headroom is
    // nothing and it is looked at every min_interval, so a look can see `under_oom 1` before
    // the notification is read (seen once in CI). Either is the round that had to act.
    assert!(
        out.lines()
            .any(|l| l.contains("event=events_armed") && l.contains("v1_oom")),
        "no OOM notification armed:\n{out}"
    );
    let rescue = out.lines().find(|l| l.contains("event=rescue")).unwrap();
    assert!(
        rescue.contains("wake=v1_oom") || rescue.contains("wake=timer"),
        "{rescue}"
    );
    let cleared = Instant::now() + Duration::from_secs(5);
    while cg.keyed("memory.oom_control", "under_oom") != 0 {
        assert!(Instant::now() < cleared, "under_oom did not clear");
        std::thread::sleep(Duration::from_millis(5));
    }
    d.wait_for("event=under_oom_cleared", Duration::from_secs(2));
    assert_eq!(cg.oom_kills(), 0);
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn page_cache_alone_is_not_killed() {
    need_v1();
    let _serial = serial();
    // A file on a disk filesystem, larger than the limit, written outside the cgroup.
    let file = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(file.as_file());
        let block = vec![0x5Au8; MIB as usize];
        for _ in 0..400 {
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
    file.as_file().sync_all().unwrap();
    std::fs::write("/proc/sys/vm/drop_caches", "1").unwrap();
    let cg = TestCgroup::create("cache", 128 * MIB);
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&dir, &cg.path, "", "", &[]).watching();
    let script = format!(
        "echo $$ > {} && exec cat {} > /dev/null",
        cg.procs_file(),
        file.path().display()
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "the reader was not killed: {status:?}");
    let peak = cg
        .read("memory.max_usage_in_bytes")
        .trim()
        .parse::<u64>()
        .unwrap();
    assert!(
        peak > 100 * MIB,
        "the page cache filled the cgroup (peak {} MiB)",
        peak / MIB
    );
    std::thread::sleep(Duration::from_millis(100));
    let out = d.output();
    assert!(
        !out.contains("event=term") && !out.contains("event=kill"),
        "{out}"
    );
    assert_eq!(cg.oom_kills(), 0);
    println!(
        "page cache: peak {} MiB in a 128 MiB cgroup, nothing killed",
        peak / MIB
    );
}

/// Waits until the daemon watches `cg`, made under its glob, then races a fast allocator in it:
/// stopped by oomward (SIGTERM, or SIGKILL when first seen past the narrow kill level of a
/// 128 MiB cgroup), never by the kernel.
fn picked_up_and_enforced(d: &Daemon, cg: &TestCgroup) {
    d.wait_for(
        &format!("event=scope_added scope={}", cg.path),
        Duration::from_secs(5),
    );
    let mut hog = fast_allocator(cg, &[]);
    let status = hog.wait_exit(Duration::from_secs(20)).expect("stopped");
    assert!(stopped_by_oomward(&status), "{status:?}");
    d.memhog_line(hog.pid);
    assert_eq!(cg.oom_kills(), 0, "{}", d.output());
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn cgroups_matched_by_a_glob_are_picked_up_and_dropped_as_they_come_and_go() {
    let (_serial, parent, dir) = kernel_race("glob", 0);
    let d = daemon(&dir, &format!("{}/*", parent.path), "", "", &[]);
    std::thread::sleep(Duration::from_millis(300));
    let late = parent.child("late", 128 * MIB);
    picked_up_and_enforced(&d, &late);
    let late_path = late.path.clone();
    drop(late);
    d.wait_for(
        &format!("event=scope_removed scope={late_path}"),
        Duration::from_secs(5),
    );
    // Still enforcing afterwards, in a new cgroup.
    let again = parent.child("again", 128 * MIB);
    picked_up_and_enforced(&d, &again);
    let out = d.output();
    assert!(!out.contains("cannot read cgroup"), "{out}");
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn dry_run_reports_the_decision_and_kills_nothing() {
    let (_serial, cg, dir) = kernel_race("dry", 256 * MIB);
    let d = daemon(&dir, &cg.path, "", "", &["--dry-run"]).watching();
    let mut hog = fast_allocator(&cg, &[]);
    let status = hog
        .wait_exit(Duration::from_secs(30))
        .expect("the kernel OOM killer ended it");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "killed by the kernel, not by oomward"
    );
    let out = d.wait_for("would signal (dry run)", Duration::from_secs(2));
    assert!(out.contains(&format!("pid={}", hog.pid)), "{out}");
    assert!(out.contains("dry_run=true"), "{out}");
    assert!(!out.contains("signalled victim"), "{out}");
    assert_eq!(cg.oom_kills(), 1, "the kernel acted instead");
}

#[test]
#[ignore = "needs root, a cgroup-v1 memory controller and the v1 freezer"]
fn victim_stuck_after_sigkill_is_given_up_and_the_next_one_chosen() {
    let (_serial, cg, dir) = kernel_race("stuck", 256 * MIB);
    let d = daemon(
        &dir,
        &cg.path,
        "",
        "[kill]\ngrace = \"300ms\"\nstuck_timeout = \"700ms\"\n",
        &[],
    )
    .watching();
    let procs = cg.procs_file();
    // The largest process is frozen: it cannot exit, whatever it is sent. Its memory is
    // private, so it is worth killing, and process_mrelease gives that memory back once it is
    // SIGKILLed, but the process itself stays. (Declared before the freezer so that the
    // freezer, dropped first, thaws it before its guard reaps it.) A process holding only
    // shared memory would not be chosen at all: its death would free nothing.
    let mut frozen = Proc::memhog(&["--cgroup-procs", &procs, "--hold", "150"]);
    let freezer = Freezer::create("stuck").expect("needs the cgroup-v1 freezer");
    freezer.freeze(frozen.pid);
    // A second one grows at 20 MiB/s: it brings the cgroup into the term band next to the
    // frozen one (which is chosen, SIGTERMed, SIGKILLed after the grace, has its memory
    // released, does not exit and is given up on), then again on its own, and is chosen then.
    let mut next = Proc::memhog(&["--cgroup-procs", &procs, "--rate", "20", "--grow", "240"]);
    let Some(status) = next.wait_exit(Duration::from_secs(30)) else {
        panic!(
            "the next candidate was not stopped; daemon output:\n{}",
            d.output()
        );
    };
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let out = d.output();
    let terms = out
        .matches(&format!("event=term scope={} ", cg.path))
        .count();
    assert!(
        out.contains(&format!(
            "event=stuck scope={0} domain={0} pid={1}",
            cg.path, frozen.pid
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("pid={} comm=memhog", next.pid)),
        "{out}"
    );
    assert_eq!(
        terms, 2,
        "the stuck victim was chosen once, then the next one: {out}"
    );
    assert_eq!(cg.oom_kills(), 0);
    // The stuck line says its state as it is (frozen), not the scan's from before the
    // signal; its report says what the release gave back.
    let field = |line: &str, key: &str| -> Option<String> {
        let (_, pairs) = oomward::report::journal::split(line.strip_prefix("oomward: ")?);
        pairs.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    };
    let needle = format!("pid={} ", frozen.pid);
    let stuck = out
        .lines()
        .find(|l| l.contains("event=stuck ") && l.contains(&needle))
        .unwrap();
    let now = std::fs::read_to_string(format!("/proc/{}/stat", frozen.pid)).unwrap();
    let now = now[now.rfind(')').unwrap() + 2..].chars().next().unwrap();
    assert_eq!(field(stuck, "state"), Some(now.to_string()), "{stuck}");
    let report = out
        .lines()
        .find(|l| l.contains("event=report outcome=stuck") && l.contains(&needle))
        .unwrap_or_else(|| panic!("no report of the stuck victim: {out}"));
    let freed: i64 = field(report, "freed")
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no freed figure: {report}"));
    assert!(freed > 100 * MIB as i64, "released 150 MiB: {report}");
    // Thawed, it dies of the signals it was sent (the kernel reports the first pending one).
    freezer.thaw();
    let status = frozen
        .wait_exit(Duration::from_secs(5))
        .expect("it exits once thawed");
    assert!(
        matches!(status.signal(), Some(libc::SIGTERM | libc::SIGKILL)),
        "{status:?}"
    );
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn kill_unit_cgroup_signals_every_killable_process_and_spares_protected_ones() {
    let (_serial, cg, dir) = kernel_race("unit", 256 * MIB);
    let bin = tempfile::tempdir().unwrap();
    let protected_exe = memhog_copy(bin.path(), "keeper");
    let rule = format!("[[rule]]\nexe = \"{protected_exe}\"\nprotect = true\n");
    let d = daemon(&dir, &cg.path, "kill_unit = \"cgroup\"", &rule, &[]).watching();
    let procs = cg.procs_file();
    let mut keeper = Proc::adopt(
        std::process::Command::new(&protected_exe)
            .args(["--cgroup-procs", procs.as_str(), "--hold", "20"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut idle_a = Proc::memhog(&["--cgroup-procs", &procs, "--hold", "30"]);
    // idle b ignores SIGTERM: the escalation after grace is for it alone, and the report must
    // say so (the victim, the allocator, left on SIGTERM).
    let mut idle_b = Proc::memhog(&["--cgroup-procs", &procs, "--hold", "10", "--ignore-term"]);
    let mut hog = steady_allocator(&cg, &[]);
    for (name, p) in [
        ("allocator", &mut hog),
        ("idle a", &mut idle_a),
        ("idle b", &mut idle_b),
    ] {
        let status = p
            .wait_exit(Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{name} was not stopped: {}", d.output()));
        assert!(stopped_by_oomward(&status), "{name}: {status:?}");
    }
    let out = d.wait_for("event=exit", Duration::from_secs(2));
    assert!(
        keeper.wait_exit(Duration::from_millis(200)).is_none(),
        "the protected process survived: {out}"
    );
    let line = |event: &str| {
        out.lines()
            .find(|l| l.contains(&format!("event={event} ")))
            .unwrap_or_else(|| panic!("no {event} line: {out}"))
            .to_string()
    };
    let term = line("term");
    assert!(term.contains(&format!("pid={} ", hog.pid)), "{term}");
    assert!(term.contains("companions=2"), "{term}");
    let escalate = line("escalate");
    let only_b = format!("sigkilled={}", idle_b.pid);
    assert!(escalate.contains("victim_alive=false"), "{escalate}");
    assert!(escalate.split(' ').any(|w| w == only_b), "{escalate}");
    let exit = line("exit");
    for want in ["signal=SIGTERM", "members=3", only_b.as_str()] {
        assert!(exit.split(' ').any(|w| w == want), "{want} missing: {exit}");
    }
    let left: Vec<String> = cg
        .read("cgroup.procs")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        left,
        vec![keeper.pid.to_string()],
        "only the protected process is left"
    );
    assert_eq!(cg.oom_kills(), 0);
}

/// A glob whose literal prefix does not exist yet (a node before its first pod): the nearest
/// existing ancestor is watched, so the prefix's making and then its first cgroup are picked up
/// at once, not at the minute's safety re-resolution.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn a_glob_below_a_cgroup_made_later_is_picked_up_at_once() {
    let (_serial, parent, dir) = kernel_race("anchor", 0);
    // Two levels missing: the prefix's parent does not exist either.
    let d = daemon(&dir, &format!("{}/kube/pods/*", parent.path), "", "", &[]);
    d.wait_for("scope=cgroup_tree", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let kube = parent.child("kube", 0);
    std::thread::sleep(Duration::from_millis(100));
    let pods = kube.child("pods", 0);
    std::thread::sleep(Duration::from_millis(100));
    let first = pods.child("first", 128 * MIB);
    let started = Instant::now();
    // At once: the kernel's inotify event, not a later look (the full look comes every 5 s,
    // the glob's safety re-resolution every minute).
    d.wait_for(
        &format!("event=scope_added scope={}", first.path),
        Duration::from_secs(1),
    );
    println!(
        "glob below a cgroup made later: watched {} ms after it was made",
        started.elapsed().as_millis()
    );
}

/// A reload is read off the enforcement loop: while SIGHUPs keep a 40 MB config loading
/// (about 3 s each in a debug build: a generated file padded with comments), a fast allocator
/// is still stopped before the kernel's OOM killer, five times over. Read on the loop, each
/// load would leave the cgroup unsampled for far longer than the allocator takes to reach its
/// limit.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn reloading_a_large_config_never_stops_the_loop_sampling() {
    let (_serial, cg, dir) = kernel_race("reload_race", 256 * MIB);
    let d = daemon(&dir, &cg.path, "", "", &[]).watching();
    // The same config, 40 MB of comments longer.
    let file = dir.path().join("oomward.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    let pad = format!("# {}\n", "x".repeat(98));
    text.push_str(&pad.repeat(400_000));
    std::fs::write(&file, &text).unwrap();
    let started = Instant::now();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    d.wait_for("event=reload", Duration::from_secs(60));
    let load = started.elapsed();
    let pid = d.pid();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storm = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut results = Vec::new();
    for _ in 0..5 {
        let mut hog = fast_allocator(&cg, &[]);
        let status = hog.wait_exit(Duration::from_secs(20));
        results.push((status, cg.oom_kills()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    storm.join().unwrap();
    // The storm's loads were in flight through the rounds (each takes longer than all five):
    // their results arrive after.
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.output().matches("event=reload").count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let reloads = d.output().matches("event=reload").count();
    for (round, (status, oom_kill)) in results.iter().enumerate() {
        let status = status.expect("the allocator was stopped");
        assert!(stopped_by_oomward(&status), "round {round}: {status:?}");
        assert_eq!(
            *oom_kill,
            0,
            "round {round}: the kernel OOM killer fired while a reload was loading; output:\n{}",
            d.output()
        );
    }
    assert!(
        reloads >= 2,
        "the storm's loads came back: {reloads} reloads"
    );
    println!(
        "reload race: a 40 MB config loads in {load:?}; {reloads} reloads; 5/5 stopped by oomward"
    );
}
