//! Each kernel event source fires on the real kernel: the cgroup v1 usage threshold and OOM
//! notification in real memory cgroups of this machine, and the machine's PSI trigger while a
//! process thrashes its page cache inside a small memory cgroup (the machine itself is never
//! short of memory). The v2 sources are proven in the VM lab. One test at a time: they race the
//! kernel.

mod support;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};
use oomward::events::{Events, Source, Spec, Wakeup};
use support::{Proc, TestCgroup, need_v1, race_cgroup};

const MIB: u64 = 1 << 20;

/// Fails the test where the kernel has no PSI (or the rest [`race_cgroup`] needs).
fn need_psi() {
    need_v1();
    assert!(
        std::path::Path::new("/proc/pressure/memory").exists(),
        "needs PSI (/proc/pressure/memory; a kernel booted with psi=1)"
    );
}

/// The event thread, and where its wake-ups arrive.
fn events() -> (Events, Receiver<Wakeup>) {
    let (tx, rx) = bounded(16);
    (Events::start(tx).expect("event thread"), rx)
}

/// Waits up to `timeout` for an event from `want`; other wake-ups are skipped. Returns when it
/// came, measured from `since`.
fn wait_event(
    rx: &Receiver<Wakeup>,
    want: Source,
    since: Instant,
    timeout: Duration,
) -> Option<Duration> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(Wakeup::Event(s, _)) if s == want => return Some(since.elapsed()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn v1_usage_threshold_fires_when_usage_crosses_it() {
    let (_serial, cg) = race_cgroup("ev-threshold", 256 * MIB);
    let (events, rx) = events();
    events
        .arm(
            &Spec::V1Threshold {
                dir: cg.dir.clone(),
                bytes: 64 * MIB,
            },
            false,
        )
        .expect("arm a v1 threshold");
    // Below the threshold: nothing.
    let _small = Proc::memhog(&["--cgroup-procs", &cg.procs_file(), "--hold", "16"]);
    assert_eq!(
        wait_event(
            &rx,
            Source::V1Threshold,
            Instant::now(),
            Duration::from_millis(300)
        ),
        None,
        "fired below the threshold"
    );
    // Across it.
    let t0 = Instant::now();
    let mut big = Proc::memhog_started(&["--cgroup-procs", &cg.procs_file(), "--hold", "100"]);
    let after = wait_event(&rx, Source::V1Threshold, t0, Duration::from_secs(5));
    big.expect_line("ready");
    let after = after.expect("no v1_threshold event after usage crossed 64 MiB");
    println!("v1 threshold event {after:?} after the allocator started");
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn v1_oom_notification_fires_when_the_cgroup_enters_oom() {
    let (_serial, cg) = race_cgroup("ev-oom", 64 * MIB);
    // The kernel must not resolve the OOM itself: the allocator hangs at the limit instead.
    cg.write("memory.oom_control", "1");
    let (events, rx) = events();
    events
        .arm(
            &Spec::V1Oom {
                dir: cg.dir.clone(),
            },
            false,
        )
        .expect("arm the OOM notification");
    assert_eq!(
        wait_event(
            &rx,
            Source::V1Oom,
            Instant::now(),
            Duration::from_millis(200)
        ),
        None,
        "fired without an OOM"
    );
    let t0 = Instant::now();
    let _hog = Proc::memhog_started(&["--cgroup-procs", &cg.procs_file(), "--hold", "100"]);
    let after = wait_event(&rx, Source::V1Oom, t0, Duration::from_secs(10))
        .expect("no v1_oom event although the cgroup hangs in OOM");
    assert_eq!(
        cg.keyed("memory.oom_control", "under_oom"),
        1,
        "the event came, but the cgroup is not in OOM"
    );
    println!("v1 OOM event {after:?} after the allocator started");
}

#[test]
#[ignore = "needs root, a cgroup-v1 memory controller and PSI"]
fn system_psi_trigger_fires_while_a_cgroup_thrashes_its_page_cache() {
    need_psi();
    let (_serial, cg) = race_cgroup("ev-psi", 16 * MIB);
    let (events, rx) = events();
    // The trigger oomward arms: 150 ms of stall in a 2 s window.
    events
        .arm(
            &Spec::Psi {
                file: "/proc/pressure/memory".into(),
                full: false,
                stall: Duration::from_millis(150),
                window: Duration::from_secs(2),
            },
            true,
        )
        .expect("arm the system PSI trigger");
    assert_eq!(
        wait_event(
            &rx,
            Source::SystemPsi,
            Instant::now(),
            Duration::from_millis(300)
        ),
        None,
        "fired without a stall"
    );
    let thrash = Thrash::start(&cg);
    let t0 = Instant::now();
    let after = wait_event(&rx, Source::SystemPsi, t0, Duration::from_secs(20));
    drop(thrash);
    let pressure = std::fs::read_to_string("/proc/pressure/memory").unwrap_or_default();
    let after = after.unwrap_or_else(|| {
        panic!("no system_psi event in 20 s of page-cache thrashing; /proc/pressure/memory:\n{pressure}")
    });
    println!("system PSI event {after:?} after the thrashing started");
}

/// Memory stall without starving the machine: a 256 MiB file, out of the page cache, read over
/// and over inside a 16 MiB memory cgroup, so that every read reclaims the pages read before
/// (reclaim counts as memory stall, machine-wide too). Stops when dropped.
struct Thrash {
    reader: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Thrash {
    fn start(cg: &TestCgroup) -> Thrash {
        let dir = tempfile::tempdir_in("/var/tmp").expect("temp dir");
        let file = dir.path().join("thrash");
        {
            use std::io::Write;
            let f = std::fs::File::create(&file).expect("create the file");
            (&f).write_all(&vec![0x5Au8; 256 * MIB as usize])
                .expect("write the file");
            f.sync_all().expect("sync the file");
            // Out of the page cache: the reader reads it from disk, charging its own cgroup.
            nix::fcntl::posix_fadvise(
                &f,
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )
            .expect("drop the file's cache");
        }
        let script = format!(
            "echo $$ > {procs}; while :; do cat {file} > /dev/null; done",
            procs = cg.procs_file(),
            file = file.display()
        );
        let reader = std::process::Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .expect("start the reader");
        Thrash { reader, _dir: dir }
    }
}

impl Drop for Thrash {
    fn drop(&mut self) {
        // The shell's `cat` dies with the test cgroup; the shell is reaped here.
        let _ = self.reader.kill();
        let _ = self.reader.wait();
    }
}

/// The daemon with its system scope on (dry run: it never acts on this machine) logs that the
/// kernel reported memory pressure when its PSI trigger fires.
#[test]
#[ignore = "needs root, a cgroup-v1 memory controller and PSI"]
fn the_daemon_reports_a_system_psi_wake() {
    need_psi();
    let (_serial, cg) = race_cgroup("ev-psi-daemon", 16 * MIB);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oomward.toml");
    std::fs::write(&config, "[daemon]\nlog = \"stderr\"\ndry_run = true\n").unwrap();
    let d = support::Daemon::start(&config, &[]);
    d.wait_for("event=events_armed scope=system", Duration::from_secs(10));
    let _thrash = Thrash::start(&cg);
    let line = d.wait_for_line("event=pressure scope=system", Duration::from_secs(20));
    assert!(line.contains("source=system_psi"), "{line}");
    assert!(line.contains("some_avg10="), "{line}");
}
