//! The loop's idle path makes no allocation: a round with the system scope at rest (meminfo,
//! vmstat and PSI read through kept-open files into kept buffers), or with a watched cgroup at
//! rest (its files and its ancestors' kept open, its sample reused), allocates nothing once the
//! first rounds have opened the files and filled the process table. Counted by a global
//! allocator on the test's own thread, on this machine's real /proc and a real v1 memory cgroup
//! (dry run: nothing is ever signalled, and nothing is near a threshold). Not a sample and not
//! counted: the re-resolution of `[[cgroup]]` globs every 200 ms, which walks directories.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use oomward::config::Config;
use oomward::enforce::{Enforcer, Wake};
use oomward::probe::Host;
use oomward::report::Logger;
use oomward::trigger::Level;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the thread-local counters
// are plain Cells with const initialisers, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note() {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
    let (mut log, _lines) = Logger::capture();
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
    COUNTING.with(|c| c.set(true));
    for _ in 0..50 {
        enforcer.round_at(&mut log, Wake::Timer, now);
        now += Duration::from_millis(300);
    }
    COUNTING.with(|c| c.set(false));
    let allocations = COUNT.with(Cell::get);
    assert_eq!(
        allocations, 0,
        "50 idle rounds allocated {allocations} times"
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
    COUNTING.with(|c| c.set(true));
    for _ in 0..50 {
        enforcer.round_at(&mut log, Wake::Timer, now);
        now += Duration::from_millis(1);
    }
    COUNTING.with(|c| c.set(false));
    let allocations = COUNT.with(Cell::get);
    assert_eq!(
        allocations, 0,
        "50 idle samples allocated {allocations} times"
    );
}
