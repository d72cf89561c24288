//! The loop's idle path makes no allocation: a round with the system scope at rest (meminfo,
//! vmstat and PSI read through kept-open files into kept buffers), or with a watched cgroup at
//! rest (its files and its ancestors' kept open, its sample reused), allocates nothing once the
//! first rounds have opened the files and filled the process table. Counted by a global
//! allocator on the test's own thread, on this machine's real /proc and a real v1 memory cgroup
//! (dry run: nothing is ever signalled, and nothing is near a threshold). Not a sample and not
//! counted: the re-resolution of `[[cgroup]]` globs every 200 ms, which walks directories.

mod support;

use std::time::{Duration, Instant};

use oomward::config::Config;
use oomward::enforce::{Enforcer, Wake};
use oomward::probe::Host;
use oomward::report::Logger;
use oomward::trigger::Level;

#[global_allocator]
static ALLOCATOR: support::alloc::Counting = support::alloc::Counting;

/// `config` with the status file (and kill journal) in `dir`: the idle path is measured with
/// the status file on, as the daemon runs by default.
fn status_in(dir: &tempfile::TempDir, config: &str) -> String {
    format!(
        "{config}[report]\nstatus_file = \"{}\"\njournal = \"{}\"\n",
        dir.path().join("status.json").display(),
        dir.path().join("kills.jsonl").display()
    )
}

#[test]
fn idle_rounds_of_the_system_scope_allocate_nothing() {
    let state = tempfile::tempdir().unwrap();
    let host = Host::discover(std::path::Path::new("/")).expect("read the host");
    let config = Config::parse(
        &status_in(&state, "[daemon]\ndry_run = true\nevents = false\n"),
        "test.toml",
    )
    .expect("config");
    let mut enforcer = Enforcer::new(config, host, true);
    let (mut log, lines) = Logger::capture();
    let mut now = Instant::now();
    // Warm-up: the files are opened and the process table filled.
    for _ in 0..3 {
        enforcer.round_at(&mut log, Wake::Timer, now);
        now += Duration::from_millis(300);
    }
    assert_eq!(
        enforcer.system_level(),
        Level::Ok,
        "this machine is short of memory: the idle path cannot be measured"
    );
    // Idle means nothing new to say: a window in which a round logged something or rewrote
    // the status file (the machine's available memory moved by 1 % of RAM, as it does right
    // after other tests) measured something else, and is taken again.
    let status = state.path().join("status.json");
    let settled = || {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read(&status).unwrap_or_default()
    };
    for attempt in 1..=10 {
        let said = lines.lock().unwrap().len();
        let before = settled();
        let allocations = support::alloc::allocations(|| {
            for _ in 0..50 {
                enforcer.round_at(&mut log, Wake::Timer, now);
                now += Duration::from_millis(300);
            }
        });
        let logged = lines.lock().unwrap()[said..].to_vec();
        if logged.is_empty() && settled() == before {
            assert_eq!(
                allocations, 0,
                "50 idle rounds allocated {allocations} times"
            );
            return;
        }
        println!(
            "attempt {attempt} was not idle ({allocations} allocations): status rewritten or {logged:?}"
        );
    }
    panic!(
        "no 50 rounds in a row were idle: {:?}",
        lines.lock().unwrap()
    );
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn idle_samples_of_a_watched_cgroup_allocate_nothing() {
    support::need_v1();
    let state = tempfile::tempdir().unwrap();
    let _serial = support::serial();
    let cg = support::TestCgroup::create("idle-alloc", 256 << 20);
    let host = Host::discover(std::path::Path::new("/")).expect("read the host");
    let config = Config::parse(
        &format!(
            "{}[system]\nenabled = false\n[[cgroup]]\npath = \"{}\"\n",
            status_in(&state, "[daemon]\ndry_run = true\nevents = false\n"),
            cg.path
        ),
        "test.toml",
    )
    .expect("config");
    let mut enforcer = Enforcer::new(config, host, true);
    let (mut log, _lines) = Logger::capture();
    let mut now = Instant::now();
    for _ in 0..3 {
        enforcer.round_at(&mut log, Wake::Timer, now);
        now += Duration::from_millis(1);
    }
    assert_eq!(enforcer.cgroup_level(&cg.path), Some(Level::Ok));
    // 50 samples 1 ms apart: within one re-resolution period.
    let allocations = support::alloc::allocations(|| {
        for _ in 0..50 {
            enforcer.round_at(&mut log, Wake::Timer, now);
            now += Duration::from_millis(1);
        }
    });
    assert_eq!(
        allocations, 0,
        "50 idle samples allocated {allocations} times"
    );
}
