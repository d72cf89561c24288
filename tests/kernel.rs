//! The kernel is the oracle: oomward's scores must equal `/proc/PID/oom_score` for every process
//! on the machine, and in a real memory cgroup OOM the kernel must kill the process that
//! `oomward rank --scope` put first.
//!
//! These tests read and load the real kernel, so they hold a lock and run one at a time.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use oomward::probe::Host;
use oomward::probe::process::{list_pids, read_kernel_oom_score, read_process};
use oomward::rank::{Totals, score};
use support::{Proc, oomward, serial};

fn rank_json(args: &[&str]) -> Vec<serde_json::Value> {
    support::rank_rows(oomward().args(["rank", "--json"]).args(args))
}

#[test]
fn oom_score_equals_the_kernels_for_every_process() {
    let _serial = serial();
    // Processes with the adjs and sizes the issue names, beside whatever else runs.
    let plain = Proc::memhog(&["--adj", "0", "--hold", "8"]);
    let half = Proc::memhog(&["--adj", "500", "--hold", "8"]);
    let max = Proc::memhog(&["--adj", "1000", "--hold", "8"]);
    let big = Proc::memhog(&["--hold", "1024"]);

    let rows = rank_json(&[]);
    let host = Host::discover(Path::new("/")).unwrap();
    let mem = oomward::probe::meminfo::MemInfo::read(Path::new("/")).unwrap();
    let t = mem.total_pages(host.page_size);
    let policy = oomward::config::Config::default().policy(std::process::id() as i32, None);
    let listed: HashMap<i64, &serde_json::Value> = rows
        .iter()
        .map(|r| (r["pid"].as_i64().unwrap(), r))
        .collect();

    let (mut matched, mut retried, mut gone) = (0, 0, 0);
    let mut mismatches = Vec::new();
    for pid in list_pids(&host).unwrap() {
        let Some(row) = listed.get(&i64::from(pid)) else {
            // Not listed: kernel threads and zombies, which the kernel scores 0, or new processes.
            if let Ok(Some((snap, _))) = read_process(&host, pid)
                && (snap.is_kernel_thread() || !snap.has_mm)
            {
                assert_eq!(
                    read_kernel_oom_score(&host, pid).unwrap().unwrap_or(0),
                    0,
                    "pid {pid}"
                );
            }
            continue;
        };
        assert_eq!(row["total_pages"].as_u64(), Some(t));
        let ours = row["oom_score"].as_u64().unwrap();
        match read_kernel_oom_score(&host, pid).unwrap() {
            None => gone += 1,
            Some(k) if k == ours => matched += 1,
            Some(_) => {
                // Memory moved between our read and the kernel's: re-read both, sandwiching our
                // read between two kernel reads that agree.
                let mut ok = false;
                for _ in 0..50 {
                    let k1 = read_kernel_oom_score(&host, pid).unwrap();
                    let snap = read_process(&host, pid).unwrap();
                    let k2 = read_kernel_oom_score(&host, pid).unwrap();
                    match (k1, snap, k2) {
                        (Some(a), Some((s, _)), Some(b)) if a == b => {
                            let c = score(
                                &s,
                                &policy,
                                Totals {
                                    scope: t,
                                    system: t,
                                },
                            );
                            if c.oom_score == a {
                                ok = true;
                                break;
                            }
                        }
                        (None, _, _) | (_, None, _) | (_, _, None) => {
                            ok = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if ok {
                    retried += 1;
                } else {
                    mismatches.push(format!("{pid} {}: ours {ours}", row["comm"]));
                }
            }
        }
    }
    println!(
        "kernel oracle: {matched} matched at once, {retried} matched after a re-read, {gone} exited, {} mismatched",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "oom_score differs from the kernel's: {mismatches:?}"
    );
    assert!(matched > 5);

    for (p, adj) in [(&plain, 0), (&half, 500), (&max, 1000)] {
        let row = listed[&i64::from(p.pid)];
        assert_eq!(row["oom_score_adj"].as_i64(), Some(adj));
        assert_eq!(
            Some(row["oom_score"].as_u64().unwrap()),
            read_kernel_oom_score(&host, p.pid).unwrap()
        );
    }
    let big_row = listed[&i64::from(big.pid)];
    assert!(
        big_row["rss_pages"].as_u64().unwrap() >= 1024 * 256,
        "1 GiB is resident: {big_row}"
    );
    // With equal adj, the 1 GiB process outranks every small one.
    let pos = |pid: i32| {
        rows.iter()
            .position(|r| r["pid"].as_i64() == Some(i64::from(pid)))
            .unwrap()
    };
    assert!(pos(big.pid) < pos(plain.pid));
    // adj 1000 puts a small process above the 1 GiB one, as the kernel would.
    assert_eq!(pos(max.pid), 0);
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn kernel_memcg_oom_kills_the_process_rank_put_first() {
    const MIB: u64 = 1 << 20;
    let (_serial, cg) = support::race_cgroup("oracle", 256 * MIB);
    cg.write("memory.oom_control", "0");
    let procs = cg.procs_file();
    // big: 150 MiB adj 0; small: 20 MiB adj 400; trigger: 5 MiB now, grows on SIGUSR1 until
    // the limit is hit. With the cgroup's T (65536 pages) big wins; with the machine's T the adj
    // 400 of small would dominate. The kernel's memcg OOM uses the cgroup's T.
    let mut big = Proc::memhog(&["--cgroup-procs", &procs, "--hold", "150"]);
    let mut small = Proc::memhog(&["--cgroup-procs", &procs, "--adj", "400", "--hold", "20"]);
    let mut trigger = Proc::memhog(&[
        "--cgroup-procs",
        &procs,
        "--hold",
        "5",
        "--grow-on-signal",
        "120",
    ]);

    let rows = rank_json(&["--scope", &cg.path]);
    let pids: Vec<i64> = rows.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    assert_eq!(
        pids.len(),
        3,
        "only the cgroup's processes are candidates: {pids:?}"
    );
    assert_eq!(rows[0]["total_pages"].as_u64(), Some(65536));
    assert_eq!(
        pids[0],
        i64::from(big.pid),
        "rank puts the 150 MiB process first: {rows:?}"
    );
    let small_row = rows
        .iter()
        .find(|r| r["pid"].as_i64() == Some(i64::from(small.pid)))
        .unwrap();
    assert!(
        small_row["oom_score"].as_u64() > rows[0]["oom_score"].as_u64(),
        "in the machine's terms (oom_score) the adj-400 process would score higher"
    );
    assert_eq!(cg.oom_kills(), 0);

    trigger.signal(libc::SIGUSR1);
    let status = big
        .wait_exit(Duration::from_secs(30))
        .expect("the kernel OOM killer fired");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "killed by the kernel's SIGKILL"
    );
    trigger.expect_line("grown");
    assert!(
        small.wait_exit(Duration::from_millis(50)).is_none(),
        "the small process survived"
    );
    assert!(
        trigger.wait_exit(Duration::from_millis(50)).is_none(),
        "the allocating process survived"
    );
    assert_eq!(cg.oom_kills(), 1, "exactly one kernel OOM kill");
    if let Ok(out) = std::process::Command::new("dmesg").output() {
        let log = String::from_utf8_lossy(&out.stdout);
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("oom-kill:") && l.contains(&cg.path))
            .expect("dmesg has the kernel's oom-kill line for the test cgroup");
        assert!(
            line.contains(&format!(",pid={},", big.pid)),
            "dmesg names the victim: {line}"
        );
        println!("kernel: {line}");
    }
}

/// The system scope's cheap pass (one kept-open `oom_score` read per process, full reads only
/// for the finalists) finds the same best candidate as reading every process in full, on this
/// machine's real process list; a second pass reads almost nothing in full; a process started
/// after it, and one that exited, are seen by the next pass (the table lists /proc only when a
/// pid was allocated since its last listing).
#[test]
#[ignore = "needs root to read every process"]
fn the_cheap_pass_finds_the_full_scans_first_candidate() {
    support::need_root("to read every process");
    let _serial = serial();
    // A clear winner (adj 900 is worth 0.9 of the machine's T) and a large runner-up, so the
    // order is stable while the rest of the machine churns.
    let big = Proc::memhog(&["--hold", "512"]);
    let favourite = Proc::memhog(&["--hold", "8", "--adj", "900"]);
    let host = Host::discover(Path::new("/")).unwrap();
    let config = oomward::config::Config::parse("", "defaults").unwrap();
    let policy = config.policy(std::process::id() as i32, None);
    let view = oomward::scope::ScopeView::read(&host, &oomward::scope::ScopeSpec::System).unwrap();
    let mut table = oomward::probe::table::ProcessTable::new(10_000);
    let first = table.pass(&host, &policy, view.totals, 3, false).unwrap();
    let second = table.pass(&host, &policy, view.totals, 3, false).unwrap();
    let full = oomward::probe::process::scan(&host, None, false).unwrap();
    let best = |procs: &[oomward::probe::process::ProcessSnapshot]| -> Vec<i32> {
        oomward::rank::rank(procs, &policy, view.totals)
            .into_iter()
            .filter(|c| c.is_eligible())
            .take(2)
            .map(|c| c.process.pid)
            .collect()
    };
    assert_eq!(
        best(&second.processes),
        best(&full.processes),
        "the cheap pass and the full scan disagree on the best two"
    );
    assert_eq!(best(&second.processes), [favourite.pid, big.pid]);
    println!(
        "cheap pass: {} listed, {} read in full on the first pass, {} on the second; {} descriptors open",
        second.listed,
        first.full_reads,
        second.full_reads,
        table.fds_open()
    );
    assert!(
        second.full_reads * 10 < second.listed,
        "the second pass read {} of {} processes in full",
        second.full_reads,
        second.listed
    );

    // A newcomer that outranks everyone, and the old favourite gone.
    let newcomer = Proc::memhog(&["--hold", "8", "--adj", "1000"]);
    drop(favourite);
    let third = table.pass(&host, &policy, view.totals, 3, false).unwrap();
    assert_eq!(best(&third.processes), [newcomer.pid, big.pid]);
    // Nothing started since: the same best from the kept list.
    let fourth = table.pass(&host, &policy, view.totals, 3, false).unwrap();
    assert_eq!(best(&fourth.processes), [newcomer.pid, big.pid]);
}

/// The hand-written readers of the hot path agree with the `procfs` crate on this machine's real
/// /proc: for every process, the facts the badness and the policy use (comm, ppid, start time,
/// uid, rss, swap, page tables), and /proc/meminfo. Memory moves between two reads (another test
/// of this binary runs a growing allocator), so each process is read ours–procfs–ours: the fixed
/// facts must be equal, and each moving figure procfs saw must lie between our two readings.
#[test]
fn hand_written_readers_agree_with_procfs() {
    use procfs::Current;
    let host = Host::discover(Path::new("/")).unwrap();
    let page_kib = host.page_size / 1024;
    let ours = |pid: i32| read_process(&host, pid).ok().flatten().map(|(s, _)| s);
    let theirs = |pid: i32| {
        let p = procfs::process::Process::new(pid).ok()?;
        let stat = p.stat().ok()?;
        let status = p.status().ok();
        Some((
            stat.comm,
            stat.ppid,
            stat.starttime,
            stat.rss,
            status.as_ref().map(|s| s.ruid),
            status.as_ref().and_then(|s| s.vmswap).unwrap_or(0) / page_kib,
            status.as_ref().and_then(|s| s.vmpte).unwrap_or(0) / page_kib,
        ))
    };
    let view = |s: &oomward::probe::process::ProcessSnapshot| {
        (
            s.comm.clone(),
            s.ppid,
            s.starttime,
            s.rss_pages,
            s.uid,
            s.swap_pages,
            s.pgtables_pages,
        )
    };
    let between = |a: u64, x: u64, b: u64| a.min(b) <= x && x <= a.max(b);
    let mut compared = 0;
    let mut disagree = Vec::new();
    for pid in list_pids(&host).unwrap() {
        let (Some(before), Some(t), Some(after)) = (ours(pid), theirs(pid), ours(pid)) else {
            continue; // gone between the reads
        };
        if before.is_kernel_thread() {
            continue; // procfs has no status VmSwap for it
        }
        let (b, a) = (view(&before), view(&after));
        let fixed_equal =
            (&b.0, b.1, b.2, b.4) == (&t.0, t.1, t.2, t.4) && (&a.0, a.4) == (&t.0, t.4);
        let moving_between =
            between(b.3, t.3, a.3) && between(b.5, t.5, a.5) && between(b.6, t.6, a.6);
        if fixed_equal && moving_between {
            compared += 1;
        } else {
            disagree.push(format!("pid {pid}: ours {b:?} then {a:?}, procfs {t:?}"));
        }
    }
    println!("readers vs procfs: {compared} processes agree");
    assert!(compared > 0);
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));

    let ours = oomward::probe::meminfo::MemInfo::read(Path::new("/")).unwrap();
    let theirs = procfs::Meminfo::current().unwrap();
    assert_eq!(ours.mem_total, theirs.mem_total);
    assert_eq!(ours.swap_total, theirs.swap_total);
    // MemAvailable moves all the time; within 64 MiB across two reads.
    let avail = theirs.mem_available.expect("MemAvailable");
    assert!(
        ours.mem_available.abs_diff(avail) < 64 << 20,
        "{ours:?} vs {avail}"
    );
}

/// A memhog with `args` (which fork one child) once it is ready, and its child's pid.
fn with_child(args: &[&str]) -> (Proc, i32) {
    let mut parent = Proc::memhog_started(args);
    let line = parent.line_starting("child");
    let child = line
        .split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("child PID");
    parent.expect_line("ready");
    (parent, child)
}

/// What a kill frees, as the kernel shows it per mapping: a process's private memory whose
/// pages a forked child still shares copy-on-write is not freed by killing it; shared memory
/// that dies with its last holder (a shared anonymous mapping, a memfd) counts for its only
/// holder and for nobody while another process maps it.
#[test]
fn smaps_tell_what_dies_with_a_process_and_what_others_keep() {
    use oomward::decide::gain::gain_of;
    use oomward::probe::smaps::read_finalists;
    let host = Host::discover(Path::new("/")).unwrap();
    let budget = Duration::from_secs(1);
    let gain = |pid: i32, others: &[i32]| {
        let f = read_finalists(&host, &[pid], others, budget);
        assert_eq!(f.len(), 1, "pid {pid} read");
        gain_of(&f[0].held, &f[0].kept_elsewhere) >> 20
    };
    // (memhog args) -> MiB its kill frees, alone and beside its forked child
    for backing in [&[][..], &["--memfd"][..]] {
        let mut args = vec!["--shared", "--hold", "64"];
        args.extend_from_slice(backing);
        let alone = Proc::memhog(&args);
        let freed = gain(alone.pid, &[alone.pid]);
        assert!((64..70).contains(&freed), "{args:?}: {freed} MiB");
        args.extend_from_slice(&["--fork-children", "1"]);
        let (parent, child) = with_child(&args);
        // The child maps the same object: killing the parent frees none of it.
        let kept = gain(parent.pid, &[parent.pid, child]);
        assert!(kept < 8, "{args:?}: {kept} MiB while the child maps it");
        // Not told of the child, the estimate would count it: the others matter.
        assert!(gain(parent.pid, &[parent.pid]) >= 64);
    }
    // Private memory shared copy-on-write with a child: the parent's kill frees almost none.
    let (parent, child) = with_child(&["--hold", "64", "--fork-children", "1"]);
    let status_anon = {
        let s = std::fs::read_to_string(format!("/proc/{}/status", parent.pid)).unwrap();
        oomward::probe::process::Status::parse(&s).rss_anon_kib >> 10
    };
    assert!(status_anon >= 64, "status says {status_anon} MiB anonymous");
    let freed = gain(parent.pid, &[parent.pid, child]);
    assert!(freed < 8, "copy-on-write counted as gain: {freed} MiB");
    let private = Proc::memhog(&["--hold", "64"]);
    assert!(gain(private.pid, &[private.pid]) >= 64);
}
