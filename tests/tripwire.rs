//! cgroup v2 tripwires on a fixture tree (a copy of `tests/fixtures/v2`, so the writes land in
//! a temporary directory): where oomward writes `memory.high`, that it never writes one it did
//! not set, that it takes its own off when it stops, and that the next start takes off what a
//! crash left. The kernel's side (the `high` event waking the loop) is shown in the VM lab's
//! `v2_tripwire`.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oomward::config::Config;
use oomward::enforce::{Enforcer, Wake};
use oomward::events::Events;
use oomward::probe::Host;
use oomward::report::Logger;

const MIB: u64 = 1 << 20;
/// /workload's memory.max in the fixture.
const LIMIT: u64 = 512 * MIB;
/// The first rung of a 512 MiB limit with the default 10 % term band: 2 × 51.2 MiB below the
/// limit, rounded down to a page.
const RUNG: u64 = (LIMIT - LIMIT / 5) / 4096 * 4096;

struct Rig {
    _dir: tempfile::TempDir,
    root: PathBuf,
    log: Logger,
    lines: Arc<Mutex<Vec<String>>>,
    now: Instant,
    /// The wake-ups of the last enforcer's event thread.
    wakes: Option<crossbeam_channel::Receiver<oomward::events::Wakeup>>,
}

impl Rig {
    /// The v2 fixture with /workload calm: 100 MiB used, memory.high `max`.
    fn new() -> Rig {
        let dir = support::fixture_copy("v2");
        let root = dir.path().to_path_buf();
        let (log, lines) = Logger::capture();
        let rig = Rig {
            _dir: dir,
            root,
            log,
            lines,
            now: Instant::now(),
            wakes: None,
        };
        rig.write("memory.current", &(100 * MIB).to_string());
        rig.write("memory.high", "max");
        rig
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.cgroup().join(file), text).unwrap();
    }

    fn high(&self) -> String {
        std::fs::read_to_string(self.cgroup().join("memory.high"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn cgroup(&self) -> PathBuf {
        self.root.join("sys/fs/cgroup/workload")
    }

    fn state(&self) -> PathBuf {
        self.root.join("run/tripwires")
    }

    /// An enforcer watching /workload (status file and journal beside the fixture), with the
    /// kernel event thread attached and the tripwires recorded in the rig's state file.
    fn enforcer(&mut self, extra: &str, dry_run: bool) -> Enforcer {
        let config = format!(
            "[system]\nenabled = false\n[[cgroup]]\npath = \"/workload\"\n{extra}\n[report]\nstatus_file = \"{}\"\njournal = \"{}\"\n",
            self.root.join("status.json").display(),
            self.root.join("kills.jsonl").display()
        );
        let config = Config::parse(&config, "test.toml").unwrap();
        let mut host = Host::discover(&self.root).unwrap();
        host.page_size = 4096;
        let mut e = Enforcer::new(config, host, dry_run);
        let (tx, rx) = crossbeam_channel::bounded(16);
        e.attach_events(Events::start(tx).unwrap());
        self.wakes = Some(rx);
        e.record_tripwires(self.state(), &mut self.log);
        e
    }

    /// One round, `after` the last. A calm cgroup gets a cheap look unless something changed
    /// that the look reads (its limit, its memory.high) or its last full sample is old (a
    /// minute; five once its path is watched for limits written); in the kernel, a crossed
    /// tripwire's event asks for the full sample.
    fn round(&mut self, e: &mut Enforcer, after: Duration) -> Duration {
        self.now += after;
        e.round_at(&mut self.log, Wake::Signal, self.now)
    }

    fn lines_with(&self, what: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }
}

#[test]
fn a_calm_cgroup_gets_a_tripwire_and_is_then_looked_at_rarely() {
    let mut rig = Rig::new();
    let mut e = rig.enforcer("", false);
    rig.round(&mut e, Duration::ZERO);
    assert_eq!(rig.high(), RUNG.to_string());
    assert_eq!(rig.lines_with("event=tripwire_set"), 1);
    let recorded = std::fs::read_to_string(rig.state()).unwrap();
    assert_eq!(recorded, format!("{RUNG} /workload\n"));
    // Announced by the kernel from now on: past its first 2 s (a new cgroup is looked at often),
    // the next look is max_interval away, not headroom ÷ 6 GiB/s (about 50 ms here).
    let sleep = rig.round(&mut e, Duration::from_secs(3));
    assert_eq!(
        sleep,
        Duration::from_secs(5),
        "announced: no worst-case cadence"
    );

    // Climbing past the first rung: the tripwire moves to the term level's rung. (In the
    // kernel the crossing's `high` event asks for the full sample; here, the look that comes
    // when the last full sample is five minutes old.)
    let full = Duration::from_secs(301);
    rig.write("memory.current", &(420 * MIB).to_string());
    rig.round(&mut e, full);
    let term_rung = (LIMIT - LIMIT / 10) / 4096 * 4096;
    assert_eq!(rig.high(), term_rung.to_string());
    // Within half the term band of the top rung: taken off, and the worst-case rule looks.
    rig.write("memory.current", &(440 * MIB).to_string());
    let sleep = rig.round(&mut e, full);
    assert_eq!(rig.high(), "max");
    assert!(sleep < Duration::from_millis(100), "{sleep:?}");
    assert!(!rig.state().exists(), "nothing set, nothing recorded");
    // Back down: set again at the first rung.
    rig.write("memory.current", &(100 * MIB).to_string());
    rig.round(&mut e, full);
    assert_eq!(rig.high(), RUNG.to_string());

    // A clean stop takes it off.
    e.stop(&mut rig.log);
    assert_eq!(rig.high(), "max");
    assert!(!rig.state().exists());
}

#[test]
fn a_memory_high_set_by_someone_else_is_never_written() {
    let mut rig = Rig::new();
    // Set by its manager before oomward looked: never touched, and it announces the climb
    // (below the term level, above the usage).
    rig.write("memory.high", &(300 * MIB).to_string());
    let mut e = rig.enforcer("", false);
    rig.round(&mut e, Duration::ZERO);
    let sleep = rig.round(&mut e, Duration::from_secs(3));
    assert_eq!(rig.high(), (300 * MIB).to_string());
    assert_eq!(
        sleep,
        Duration::from_secs(5),
        "theirs announces the climb too"
    );
    e.stop(&mut rig.log);
    assert_eq!(rig.high(), (300 * MIB).to_string());

    // Set over oomward's: oomward's record is dropped, theirs stays after the stop.
    let mut e = rig.enforcer("", false);
    rig.write("memory.high", "max");
    rig.round(&mut e, Duration::from_secs(1));
    assert_eq!(rig.high(), RUNG.to_string());
    rig.write("memory.high", &(350 * MIB).to_string());
    rig.round(&mut e, Duration::from_secs(1));
    assert_eq!(rig.lines_with("event=tripwire_yielded"), 1);
    e.stop(&mut rig.log);
    assert_eq!(rig.high(), (350 * MIB).to_string());

    // Put back to max by its manager (systemd does at a reload): set again.
    let mut e = rig.enforcer("", false);
    rig.write("memory.high", "max");
    rig.round(&mut e, Duration::from_secs(1));
    assert_eq!(rig.high(), RUNG.to_string());
    rig.write("memory.high", "max");
    rig.round(&mut e, Duration::from_secs(1));
    assert_eq!(rig.high(), RUNG.to_string());
    e.stop(&mut rig.log);
}

#[test]
fn no_tripwire_in_a_dry_run_or_when_switched_off() {
    let mut rig = Rig::new();
    let mut e = rig.enforcer("", true);
    rig.round(&mut e, Duration::ZERO);
    rig.round(&mut e, Duration::from_secs(3));
    assert_eq!(rig.high(), "max");
    let mut e = rig.enforcer("tripwire = false", false);
    rig.round(&mut e, Duration::ZERO);
    assert_eq!(rig.high(), "max");
}

#[test]
fn the_next_start_takes_off_what_a_crash_left() {
    let mut rig = Rig::new();
    let mut e = rig.enforcer("", false);
    rig.round(&mut e, Duration::ZERO);
    assert_eq!(rig.high(), RUNG.to_string());
    // A crash: nothing runs after it.
    std::mem::forget(e);
    assert_eq!(rig.high(), RUNG.to_string());
    let _next = rig.enforcer("", false);
    assert_eq!(rig.high(), "max");
    assert_eq!(rig.lines_with("event=tripwire_restored"), 1);
    assert!(!rig.state().exists());

    // A value found changed since is someone else's: left as it is.
    let mut e = rig.enforcer("", false);
    rig.round(&mut e, Duration::ZERO);
    std::mem::forget(e);
    rig.write("memory.high", &(200 * MIB).to_string());
    let _next = rig.enforcer("", false);
    assert_eq!(rig.high(), (200 * MIB).to_string());
}

#[test]
fn a_limit_written_on_the_path_wakes_the_loop_and_nothing_else_written_does() {
    use oomward::events::{Source, Wakeup};
    let mut rig = Rig::new();
    let mut e = rig.enforcer("", false);
    // The first round samples /workload; the next arms the watch over its path.
    rig.round(&mut e, Duration::ZERO);
    rig.round(&mut e, Duration::from_secs(1));
    let wakes = rig.wakes.clone().unwrap();
    let written = |wakes: &crossbeam_channel::Receiver<Wakeup>| {
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(w) = wakes.recv_deadline(until) {
            if matches!(w, Wakeup::Event(Source::CgroupWritten, _)) {
                return true;
            }
        }
        false
    };
    while wakes.try_recv().is_ok() {}
    // A process moved in, a PSI trigger written: not a limit.
    rig.write("cgroup.procs", "4242");
    rig.write("memory.pressure", "some 150000 2000000");
    assert!(!written(&wakes), "only limit files wake the loop");
    // The limit lowered (a resize): at once, not at the next look.
    rig.write("memory.max", &(300 * MIB).to_string());
    assert!(written(&wakes), "memory.max written wakes the loop");
    e.stop(&mut rig.log);
}
