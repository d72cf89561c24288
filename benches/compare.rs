//! oomward beside its peers, on this machine, in one run: Debian's earlyoom for the idle cost
//! (with oomward watching the system, 100 idle cgroups or one) and the ranking pass, the
//! kernel's OOM killer for the race, the respawning workers and the hang. Prints one table;
//! each figure is a median (and p99 where it is a latency) with the ratio to the peer measured
//! in the same run. Run it with `bash benches/run.sh` (it fetches earlyoom and builds the
//! release binaries); `cargo bench --bench compare -- SECTION...` runs some of `idle`,
//! `idle_cgroups`, `rank`, `race`, `respawn`, `rescue`.
//!
//! Memory pressure is made only inside memory cgroups with a limit (cgroup v1 on this machine),
//! never machine-wide; every cgroup and process the bench makes is removed at its end.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};
use oomward::events::{Events, Source, Spec, Wakeup};
use oomward::probe::Host;
use oomward::probe::process::scan;
use oomward::rank::rank;
use oomward::scope::{ScopeSpec, ScopeView};

/// Joining a cgroup between fork and exec, as the supervisor's workers do.
#[path = "../examples/support/cgroup.rs"]
mod cgroup;
/// CLOCK_BOOTTIME as memhog reads it to stamp its SIGTERM.
#[path = "../examples/support/clock.rs"]
mod clock;
use clock::boottime_us;

const MIB: u64 = 1 << 20;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let on = |s: &str| wanted.is_empty() || wanted.iter().any(|w| w == s);
    let bins = Bins::find();
    let mut table = Table::default();
    println!("oomward benchmark on {}", machine());
    if on("idle") {
        idle(&bins, &mut table);
    }
    if on("idle_cgroups") {
        idle_cgroups(&bins, &mut table);
    }
    if on("rank") {
        rank_pass(&bins, &mut table);
    }
    if on("race") {
        race(&bins, &mut table);
    }
    if on("respawn") {
        respawn(&bins, &mut table);
    }
    if on("rescue") {
        rescue(&bins, &mut table);
    }
    if on("config") {
        config_load(&mut table);
    }
    println!("\n{}", table.render());
}

/// The binaries under test.
struct Bins {
    oomward: PathBuf,
    memhog: PathBuf,
    /// `examples/supervisor.rs`: checked only by the section that uses it.
    supervisor: PathBuf,
    earlyoom: PathBuf,
}

impl Bins {
    fn find() -> Bins {
        let release = Path::new(ROOT).join("target/release");
        let earlyoom = std::env::var_os("OOMWARD_EARLYOOM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/earlyoom"));
        let bins = Bins {
            oomward: release.join("oomward"),
            memhog: release.join("examples/memhog"),
            supervisor: release.join("examples/supervisor"),
            earlyoom,
        };
        for p in [&bins.oomward, &bins.memhog, &bins.earlyoom] {
            assert!(
                p.exists(),
                "{} is missing: run the bench with `bash benches/run.sh`",
                p.display()
            );
        }
        bins
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} CPUs, {} GiB RAM, kernel {}",
        mem / (1 << 20),
        kernel.trim()
    )
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------------------------

/// CPU time of every thread of `pid`, ns (schedstat: precise, unlike clock ticks).
fn cpu_ns(pid: u32) -> u64 {
    tasks(pid)
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Context switches (voluntary + involuntary) of every thread of `pid`: its wake-ups.
fn wakeups(pid: u32) -> u64 {
    tasks(pid)
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("status")).ok())
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

fn tasks(pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// A `Key:  N kB` value of /proc/PID/status, in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Read system calls made so far by `pid` (/proc/PID/io `syscr`).
fn read_syscalls(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("syscr: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of the calling thread, ns.
fn thread_cpu_ns() -> u64 {
    clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

fn p99(v: &[f64]) -> f64 {
    quantile(v, 0.99)
}

/// Nearest-rank quantile; NaN when empty.
fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    /// A row: what, oomward's figure, the peer's, the ratio oomward/peer, the target.
    fn row(&mut self, what: &str, ours: f64, peer: Option<f64>, unit: &str, target: &str) {
        let fmt = |v: f64| {
            if v.is_nan() {
                "-".to_string()
            } else if v.fract() == 0.0 && unit.is_empty() {
                format!("{v:.0}")
            } else if v >= 100.0 {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.2} {unit}")
            }
        };
        let ratio = peer.map_or("-".into(), |p| {
            if p > 0.0 {
                format!("{:.2}", ours / p)
            } else {
                "-".into()
            }
        });
        let row = [
            what.to_string(),
            fmt(ours),
            peer.map_or("-".into(), fmt),
            ratio,
            target.to_string(),
        ];
        println!("{}", row.join(" | "));
        self.rows.push(row);
    }

    /// The two idle rows, CPU time and wake-ups per minute (medians over [`idle_windows`]'s
    /// windows, given as `cpu` and `wake`), of the process at `ours` beside the one at `peer`;
    /// `versus` ends both rows' names, and `targets` are the CPU row's and the wake-up row's.
    fn idle_rows(
        &mut self,
        (cpu, wake): &(Vec<Vec<f64>>, Vec<Vec<f64>>),
        (ours, peer): (usize, usize),
        versus: &str,
        [cpu_target, wake_target]: [&str; 2],
    ) {
        self.row(
            &format!("idle CPU time per minute{versus}"),
            median(&cpu[ours]),
            Some(median(&cpu[peer])),
            "ms",
            cpu_target,
        );
        self.row(
            &format!("idle wake-ups per minute{versus}"),
            median(&wake[ours]),
            Some(median(&wake[peer])),
            "",
            wake_target,
        );
    }

    fn render(&self) -> String {
        let mut s =
            String::from("| measure | oomward | peer | ratio | target |\n|---|---|---|---|---|\n");
        for r in &self.rows {
            s += &format!("| {} |\n", r.join(" | "));
        }
        s
    }
}

/// A child killed and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A v1 memory cgroup made for the bench; its processes are killed and it is removed on drop.
struct Cgroup {
    dir: PathBuf,
    path: String,
}

impl Cgroup {
    fn create(name: &str, limit: u64) -> Cgroup {
        Cgroup::at(
            &format!("/oomward-bench-{name}-{}", std::process::id()),
            Some(limit),
        )
    }

    /// The cgroup at `path` of the memory hierarchy (its parent must exist), with a limit or
    /// none.
    fn at(path: &str, limit: Option<u64>) -> Cgroup {
        let host = Host::discover(Path::new("/")).expect("read the host");
        let hier = host.memory.expect("a memory cgroup hierarchy");
        let dir = Path::new(&hier.mount_point).join(path.trim_start_matches('/'));
        std::fs::create_dir(&dir).expect("create the bench cgroup (root, cgroup v1)");
        let cg = Cgroup {
            dir,
            path: path.to_string(),
        };
        if let Some(limit) = limit {
            cg.write("memory.limit_in_bytes", &limit.to_string());
        }
        cg
    }

    /// `/oomward-bench-NAME-PID` without a limit (a parent for limited children).
    fn create_unlimited(name: &str) -> Cgroup {
        Cgroup::at(
            &format!("/oomward-bench-{name}-{}", std::process::id()),
            None,
        )
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.dir.join(file), value).expect("write a cgroup file");
    }

    fn keyed(&self, file: &str, key: &str) -> u64 {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    }

    fn procs(&self) -> String {
        self.dir.join("cgroup.procs").display().to_string()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..200 {
            let pids = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            if pids.trim().is_empty() {
                break;
            }
            for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with a pid read from our own cgroup; no memory is touched.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

/// Starts `oomward run` with `config`, its log in a file; waits for its start line.
fn start_oomward(bins: &Bins, dir: &Path, config: &str) -> (Running, PathBuf) {
    let conf = dir.join("oomward.toml");
    std::fs::write(&conf, config).expect("write the config");
    let log = dir.join("oomward.log");
    let child = Command::new(&bins.oomward)
        .args(["run", "--config"])
        .arg(&conf)
        .env("STATE_DIRECTORY", dir)
        .env("RUNTIME_DIRECTORY", dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start oomward");
    let running = Running(child);
    wait_for_line(&log, "event=start", Duration::from_secs(10));
    (running, log)
}

/// [`start_oomward`], waiting until it watches its cgroup, and beside it the bench's own event
/// thread armed with `spec` (`what` it is, for the panic), the kernel event the trials time
/// from: the daemon, its log, the thread's wake-ups and the thread (last, so dropped first).
fn start_oomward_and_arm(
    bins: &Bins,
    dir: &Path,
    config: &str,
    spec: &Spec,
    what: &str,
) -> (Running, PathBuf, Receiver<Wakeup>, Events) {
    let (daemon, log) = start_oomward(bins, dir, config);
    wait_for_line(&log, "event=scope_added", Duration::from_secs(5));
    let (tx, rx) = bounded(64);
    let watcher = Events::start(tx).expect("event thread");
    watcher
        .arm(spec, false)
        .unwrap_or_else(|e| panic!("arm the bench's {what}: {e:?}"));
    (daemon, log, rx, watcher)
}

fn wait_for_line(file: &Path, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(file).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no {needle:?} in {} within {timeout:?}", file.display());
}

fn wait_event(rx: &Receiver<Wakeup>, want: Source, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(Wakeup::Event(s, _)) if s == want => return Some(boottime_us()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Idle
// ---------------------------------------------------------------------------------------------

/// Both daemons at their defaults on this (idle) machine for 60 s: CPU time and wake-ups per
/// minute (medians over six 10 s windows), VmRSS and RssAnon at the end.
fn idle(bins: &Bins, table: &mut Table) {
    println!("\n== idle: oomward and earlyoom at their defaults, 60 s side by side");
    let dir = tempfile::tempdir().expect("temp dir");
    // oomward's built-in defaults; only the log goes to a file.
    let (ours, _log) = start_oomward(bins, dir.path(), "[daemon]\nlog = \"stderr\"\n");
    let peer = start_earlyoom(bins);
    std::thread::sleep(Duration::from_secs(2));
    let (op, ep) = (ours.0.id(), peer.0.id());
    let idle = idle_windows(&[op, ep], 6);
    table.idle_rows(&idle, (0, 1), "", ["<= 1.0", "<= 0.5"]);
    table.row(
        "VmRSS",
        status_kb(op, "VmRSS") as f64 / 1024.0,
        Some(status_kb(ep, "VmRSS") as f64 / 1024.0),
        "MiB",
        "<= 1.2",
    );
    table.row(
        "RssAnon",
        status_kb(op, "RssAnon") as f64 / 1024.0,
        Some(status_kb(ep, "RssAnon") as f64 / 1024.0),
        "MiB",
        "-",
    );
}

/// earlyoom on the system as Debian's service starts it (/etc/default/earlyoom: -r 3600), its
/// output dropped.
fn start_earlyoom(bins: &Bins) -> Running {
    Running(
        Command::new(&bins.earlyoom)
            .args(["-r", "3600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start earlyoom"),
    )
}

// ---------------------------------------------------------------------------------------------
// 1b. Idle, watching idle cgroups
// ---------------------------------------------------------------------------------------------

/// CPU time (ms) and wake-ups per minute of each of `pids` over `windows` windows of 10 s,
/// side by side: one list per pid of each. CPU from schedstat, wake-ups as context switches.
fn idle_windows(pids: &[u32], windows: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut cpu = vec![Vec::new(); pids.len()];
    let mut wake = vec![Vec::new(); pids.len()];
    for _ in 0..windows {
        let before: Vec<(u64, u64)> = pids.iter().map(|&p| (cpu_ns(p), wakeups(p))).collect();
        std::thread::sleep(Duration::from_secs(10));
        for (i, &p) in pids.iter().enumerate() {
            // Per minute.
            cpu[i].push(cpu_ns(p).saturating_sub(before[i].0) as f64 * 6.0 / 1e6);
            wake[i].push(wakeups(p).saturating_sub(before[i].1) as f64 * 6.0);
        }
    }
    (cpu, wake)
}

/// A process asleep in `cg` (`sleep 3600`, which joins the cgroup between fork and exec): an
/// idle member that never wakes. Killed and reaped on drop.
fn sleeper(cg: &Cgroup) -> Running {
    let procs = CString::new(cg.procs()).expect("a path without NUL");
    let mut cmd = Command::new("sleep");
    cmd.arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cgroup::join_before_exec(&mut cmd, procs);
    Running(cmd.spawn().expect("start sleep in a bench cgroup"))
}

/// A parent cgroup without a limit and `n` children `c000`.. with a 256 MiB limit and one
/// sleeping process each. Fields drop in order: the sleepers (killed and reaped), the
/// children, the parent.
struct IdleTree {
    _sleepers: Vec<Running>,
    children: Vec<Cgroup>,
    parent: Cgroup,
}

impl IdleTree {
    fn create(n: usize) -> IdleTree {
        let mut tree = IdleTree {
            _sleepers: Vec::new(),
            children: Vec::new(),
            parent: Cgroup::create_unlimited("idle"),
        };
        for i in 0..n {
            let cg = Cgroup::at(&format!("{}/c{i:03}", tree.parent.path), Some(256 * MIB));
            tree._sleepers.push(sleeper(&cg));
            tree.children.push(cg);
        }
        tree
    }
}

/// Descriptors open in `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// oomward watching 100 idle v1 cgroups (256 MiB each, one sleeping process in each, one
/// `[[cgroup]]` glob, the system scope off) and, in the same 60 s, oomward watching one of
/// them (its exact path) and earlyoom at its defaults on the system: CPU time and wake-ups per
/// minute, measured as `idle` measures them.
fn idle_cgroups(bins: &Bins, table: &mut Table) {
    const N: usize = 100;
    println!(
        "\n== idle_cgroups: oomward watching {N} idle cgroups, and one, beside earlyoom (system), 60 s"
    );
    let tree = IdleTree::create(N);
    let config = |path: &str| {
        format!(
            "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[[cgroup]]\npath = \"{path}\"\n"
        )
    };
    let (dir_many, dir_one) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let (many, log_many) = start_oomward(
        bins,
        dir_many.path(),
        &config(&format!("{}/*", tree.parent.path)),
    );
    let (one, log_one) = start_oomward(bins, dir_one.path(), &config(&tree.children[0].path));
    let peer = start_earlyoom(bins);
    wait_for_count(&log_many, "event=scope_added", N, Duration::from_secs(20));
    wait_for_count(&log_one, "event=scope_added", 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(2));
    let pids = [many.0.id(), one.0.id(), peer.0.id()];
    let idle = idle_windows(&pids, 6);
    let label = format!("{N} idle cgroups");
    table.idle_rows(
        &idle,
        (0, 2),
        &format!(", oomward watching {label} vs earlyoom (system)"),
        ["<= 2.0", "<= 2.0"],
    );
    table.idle_rows(
        &idle,
        (1, 2),
        ", oomward watching 1 idle cgroup vs earlyoom (system)",
        ["-", "-"],
    );
    println!(
        "  oomward with {label}: VmRSS {:.2} MiB, {} descriptors; with 1: VmRSS {:.2} MiB, {} descriptors",
        status_kb(pids[0], "VmRSS") as f64 / 1024.0,
        fds(pids[0]),
        status_kb(pids[1], "VmRSS") as f64 / 1024.0,
        fds(pids[1]),
    );
    let killed = [&log_many, &log_one]
        .iter()
        .map(|l| count_lines(l, &["event=term ", "event=kill "]))
        .sum::<usize>();
    if killed > 0 {
        println!("  warning: the idle daemons signalled {killed} processes");
    }
    // The daemons end before the tree goes.
    drop((many, one, peer));
    drop(tree);
}

/// Lines of `file` containing any of `needles`.
fn count_lines(file: &Path, needles: &[&str]) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .count()
}

fn wait_for_count(file: &Path, needle: &str, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if count_lines(file, &[needle]) >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "fewer than {n} {needle:?} lines in {} within {timeout:?}",
        file.display()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Ranking pass
// ---------------------------------------------------------------------------------------------

/// N idle processes (forked children that wait in pause()), killed and reaped on drop.
struct Idlers(Vec<i32>);

impl Idlers {
    fn spawn(n: usize) -> Idlers {
        let mut pids = Vec::with_capacity(n);
        for _ in 0..n {
            // SAFETY: the child only calls async-signal-safe functions (pause, _exit) before it
            // is killed; the parent records its pid.
            match unsafe { libc::fork() } {
                0 => loop {
                    // SAFETY: pause takes no arguments and touches no memory.
                    unsafe { libc::pause() };
                },
                -1 => break,
                pid => pids.push(pid),
            }
        }
        Idlers(pids)
    }
}

impl Drop for Idlers {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: signals and reaps our own children.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.0 {
            let mut status = 0;
            // SAFETY: as above.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
    }
}

/// The system scope's ranking pass with 2k, 10k and 20k extra idle processes: CPU time per pass
/// and read syscalls per process. oomward: the daemon's own scan + rank code, timed in this
/// process (thread CPU time, median of 7 passes). earlyoom: in dry run with thresholds that
/// always trigger, its CPU time over 10 s divided by the passes counted in its log.
fn rank_pass(bins: &Bins, table: &mut Table) {
    println!("\n== ranking pass: oomward's scan+rank vs earlyoom's victim search");
    let host = Host::discover(Path::new("/")).expect("read the host");
    let config = oomward::config::Config::parse("", "(built-in defaults)").expect("defaults");
    let policy = config.policy(std::process::id() as i32, None);
    for n in [2000usize, 10000, 20000] {
        let idlers = Idlers::spawn(n);
        let total = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        let view = ScopeView::read(&host, &ScopeSpec::System).expect("scope");
        // The daemon's pass: the process table (its first pass reads everyone in full and opens
        // the descriptors; the steady state is the passes after it).
        let budget = oomward::sys::raise_nofile_limit()
            .unwrap_or(1024)
            .saturating_sub(256);
        let mut procs =
            oomward::probe::table::ProcessTable::new(usize::try_from(budget).unwrap_or(1024));
        let mut ns = Vec::new();
        let mut reads = Vec::new();
        let mut cold_ms = 0.0;
        for i in 0..8 {
            let r0 = read_syscalls("self");
            let t0 = thread_cpu_ns();
            let pass = procs
                .pass(&host, &policy, view.totals, 8, false)
                .expect("pass");
            std::hint::black_box(rank(&pass.processes, &policy, view.totals));
            let spent = (thread_cpu_ns() - t0) as f64;
            if i == 0 {
                cold_ms = spent / 1e6;
            } else {
                ns.push(spent);
                reads.push((read_syscalls("self") - r0) as f64 / total as f64);
            }
        }
        // Every process read in full (what `oomward rank` does), for reference.
        let t0 = thread_cpu_ns();
        let s = scan(&host, None, false).expect("scan");
        std::hint::black_box(rank(&s.processes, &policy, view.totals));
        let full_ms = (thread_cpu_ns() - t0) as f64 / 1e6;
        let (peer_ms, peer_reads) = earlyoom_pass(bins, total);
        table.row(
            &format!("ranking pass, {total} processes ({} extra)", idlers.0.len()),
            median(&ns) / 1e6,
            peer_ms,
            "ms",
            if n == 2000 { "<= 0.25" } else { "-" },
        );
        table.row(
            &format!("  read syscalls per process per pass, {total} processes"),
            median(&reads),
            peer_reads,
            "",
            "-",
        );
        table.row(
            &format!("  oomward's first pass / a full read of all, {total} processes"),
            cold_ms,
            Some(full_ms),
            "ms",
            "-",
        );
        println!("  ({} descriptors kept open)", procs.fds_open());
        drop(idlers);
    }
}

/// earlyoom's CPU time per victim search (ms) and read syscalls per process, from 10 s of dry
/// run with thresholds that always trigger.
fn earlyoom_pass(bins: &Bins, processes: usize) -> (Option<f64>, Option<f64>) {
    let mut child = Command::new(&bins.earlyoom)
        .args(["--dryrun", "-m", "99,99", "-s", "99,99", "-r", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start earlyoom");
    let pid = child.id();
    let stderr = child.stderr.take().expect("piped");
    let counter = std::thread::spawn(move || {
        let mut passes = 0u64;
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("sending SIG") {
                passes += 1;
            }
            if text.len() < 2000 {
                text += &line;
                text.push('\n');
            }
        }
        (passes, text)
    });
    std::thread::sleep(Duration::from_secs(1));
    let (c0, r0) = (cpu_ns(pid), read_syscalls(&pid.to_string()));
    // Passes are counted over the whole run; the CPU over the measured 10 s is scaled to it.
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let (c1, r1) = (cpu_ns(pid), read_syscalls(&pid.to_string()));
    let measured = t0.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let (passes, text) = counter.join().unwrap_or_default();
    if passes == 0 {
        println!("earlyoom made no pass; its output:\n{text}");
        return (None, None);
    }
    // The passes of the measured window, by rate over the whole run (1 s more).
    let window_passes = passes as f64 * measured.as_secs_f64() / (measured.as_secs_f64() + 1.0);
    (
        Some((c1 - c0) as f64 / 1e6 / window_passes),
        Some((r1 - r0) as f64 / window_passes / processes as f64),
    )
}

// ---------------------------------------------------------------------------------------------
// 3. Race
// ---------------------------------------------------------------------------------------------

/// The seed scenario N times: a fast allocator in a 256 MiB memcg. For each trial: stopped by
/// oomward before the kernel's OOM killer (its oom_kill counter unchanged), by SIGTERM or by
/// SIGKILL at once when the daemon's decision line says `reason=eta` (the projected time to the
/// limit is shorter than the 1 s grace, so SIGTERM could not finish in time). Latencies from the
/// term threshold's crossing (the bench's own eventfd at the same level): to the SIGTERM as the
/// allocator saw it, and for a SIGKILL (which the allocator cannot see) to its exit (its pidfd).
/// With kernel events, then with the timer alone.
fn race(bins: &Bins, table: &mut Table) {
    let trials: usize = std::env::var("OOMWARD_BENCH_RACE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for events in [true, false] {
        println!("\n== race: {trials} fast allocators in a 256 MiB memcg, events = {events}");
        let r = race_trials(bins, trials, events);
        let label = if events { "events" } else { "polling only" };
        table.row(
            &format!("race ({label}): stopped by oomward before the kernel, of {trials}"),
            (r.term_ms.len() + r.eta_exit_ms.len() + r.untimed) as f64,
            None,
            "",
            if events { "100 of 100" } else { "-" },
        );
        table.row(
            &format!("race ({label}): of those, by SIGKILL at once (reason=eta)"),
            r.eta_exit_ms.len() as f64,
            None,
            "",
            "-",
        );
        table.row(
            &format!("race ({label}): taken by the kernel's OOM killer"),
            r.kernel as f64,
            None,
            "",
            "0",
        );
        table.row(
            &format!("race ({label}): of oomward's, not timed (see the trial lines)"),
            r.untimed as f64,
            None,
            "",
            "-",
        );
        table.row(
            &format!(
                "race ({label}): threshold -> SIGTERM, median of {}",
                r.term_ms.len()
            ),
            median(&r.term_ms),
            None,
            "ms",
            "-",
        );
        table.row(
            &format!("race ({label}): threshold -> SIGTERM, p99"),
            p99(&r.term_ms),
            None,
            "ms",
            if events { "< 10 ms" } else { "-" },
        );
        table.row(
            &format!(
                "race ({label}): threshold -> exit after SIGKILL (reason=eta), median of {}",
                r.eta_exit_ms.len()
            ),
            median(&r.eta_exit_ms),
            None,
            "ms",
            "-",
        );
        table.row(
            &format!("race ({label}): threshold -> exit after SIGKILL (reason=eta), p99"),
            p99(&r.eta_exit_ms),
            None,
            "ms",
            "-",
        );
    }
}

/// What the race's trials saw.
#[derive(Debug, Default)]
struct RaceTrials {
    /// Trials stopped by SIGTERM: threshold -> SIGTERM as the allocator saw it, ms.
    term_ms: Vec<f64>,
    /// Trials stopped by SIGKILL with `reason=eta`: threshold -> the allocator's exit, ms.
    eta_exit_ms: Vec<f64>,
    /// Trials oomward stopped (the kernel's oom_kill counter unchanged, the allocator gone)
    /// that have no latency to time: its signal went out before the bench's own threshold
    /// fired, or its SIGKILL followed a SIGTERM the allocator never ran its handler for.
    untimed: usize,
    /// Trials the kernel's OOM killer took.
    kernel: usize,
}

fn race_trials(bins: &Bins, trials: usize, events: bool) -> RaceTrials {
    let cg = Cgroup::create("race", 256 * MIB);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[daemon]\nlog = \"stderr\"\nevents = {events}\n[system]\nenabled = false\n[kill]\ngrace = \"1s\"\n[[cgroup]]\npath = \"{}\"\n",
        cg.path
    );
    // The term level: 10 % below the limit, as the daemon's default available_term.
    let threshold = Spec::V1Threshold {
        dir: cg.dir.clone(),
        bytes: 256 * MIB - 256 * MIB / 10,
    };
    let (_daemon, log, rx, _watcher) =
        start_oomward_and_arm(bins, dir.path(), &config, &threshold, "threshold");
    let mut out_r = RaceTrials::default();
    for trial in 0..trials {
        while rx.try_recv().is_ok() {}
        let oom_before = cg.keyed("memory.oom_control", "oom_kill");
        let mut hog = Command::new(&bins.memhog)
            .args([
                "--cgroup-procs",
                &cg.procs(),
                "--rate",
                "0",
                "--grow",
                "600",
            ])
            .args(["--delay-ms", "50", "--say-term"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start memhog");
        let pid = hog.id();
        let pidfd = oomward::sys::pidfd_open(pid as i32).expect("pidfd");
        let crossed = wait_event(&rx, Source::V1Threshold, Duration::from_secs(10));
        let exited = oomward::sys::wait_exit(&pidfd, Duration::from_secs(20)).unwrap_or(false);
        let exit_at = boottime_us();
        let status = wait_child(&mut hog, Duration::from_secs(if exited { 5 } else { 0 }));
        let mut out = String::new();
        if let Some(mut s) = hog.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let term_us = out
            .lines()
            .find_map(|l| l.strip_prefix("term-at "))
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("us=")))
            .and_then(|v| v.parse::<u64>().ok());
        let kernel = cg.keyed("memory.oom_control", "oom_kill") > oom_before;
        // oomward's decision line naming this allocator (written as the signal goes out; the
        // exit may be seen first).
        let decision = decision_line(&log, pid, Duration::from_secs(1));
        let field = |k: &str| {
            decision.as_deref().and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                    .map(str::to_string)
            })
        };
        let sigkill = status.and_then(|s| s.signal()) == Some(libc::SIGKILL);
        let eta = sigkill
            && field("event").as_deref() == Some("kill")
            && field("reason").as_deref() == Some("eta");
        match (term_us, crossed, kernel) {
            (Some(t), Some(c), false) => out_r.term_ms.push(t.saturating_sub(c) as f64 / 1000.0),
            (None, Some(c), false) if eta && exited => {
                out_r
                    .eta_exit_ms
                    .push(exit_at.saturating_sub(c) as f64 / 1000.0);
            }
            (_, _, true) => {
                out_r.kernel += 1;
                println!(
                    "trial {trial}: taken by the kernel (status {status:?}, crossed {crossed:?}, term {term_us:?}, decision {:?})",
                    decision.unwrap_or_default()
                );
            }
            _ if exited => {
                out_r.untimed += 1;
                println!(
                    "trial {trial}: stopped by oomward, not timed (status {status:?}, crossed {crossed:?}, term {term_us:?}, decision {:?})",
                    decision.unwrap_or_default()
                );
            }
            _ => println!(
                "trial {trial}: not stopped at all (status {status:?}, crossed {crossed:?}, term {term_us:?}, decision {:?})",
                decision.unwrap_or_default()
            ),
        }
        // The daemon sees the exit and the cgroup drains before the next allocator.
        std::thread::sleep(Duration::from_millis(150));
    }
    let eta = out_r.eta_exit_ms.len();
    println!(
        "stopped by SIGTERM: {}, by SIGKILL with reason=eta: {eta}, of {trials}",
        out_r.term_ms.len()
    );
    out_r
}

/// The daemon's first decision line (`event=term` or `event=kill`) naming `pid`, waiting for it
/// at most `timeout`.
fn decision_line(log: &Path, pid: u32, timeout: Duration) -> Option<String> {
    let needle = format!(" pid={pid} ");
    let deadline = Instant::now() + timeout;
    loop {
        let found = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .find(|l| {
                (l.contains("event=term ") || l.contains("event=kill ")) && l.contains(&needle)
            })
            .map(str::to_string);
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

// ---------------------------------------------------------------------------------------------
// 3b. Respawning workers
// ---------------------------------------------------------------------------------------------

/// What one respawn run saw.
#[derive(Debug, Default, Clone, Copy)]
struct RespawnRun {
    /// The kernel's OOM kills in the cgroup (memory.oom_control `oom_kill`).
    kernel: u64,
    /// oomward's victims: its decision lines (`event=term`, `event=kill`).
    ours: usize,
    /// The supervisor's counts, from its last line; None if it did not print one (it died).
    restarts: Option<u64>,
    term: u64,
    kill: u64,
    other: u64,
}

/// The respawning-workers race: the supervisor (in the cgroup itself, `--join`) keeps two
/// `memhog --rate 0 --grow 600` workers alive in a 256 MiB v1 memcg for 10 s, restarting each
/// the moment it dies; five runs with oomward watching the cgroup (default thresholds, grace
/// 1 s) and five with the kernel alone. Figures per 10 s, medians: the kernel's OOM kills
/// (target 0 with oomward), oomward's kills, the supervisor's restarts.
/// `OOMWARD_BENCH_RESPAWN=N` runs each side N times (default 5).
fn respawn(bins: &Bins, table: &mut Table) {
    assert!(
        bins.supervisor.exists(),
        "{} is missing: run the bench with `bash benches/run.sh`",
        bins.supervisor.display()
    );
    let runs: usize = std::env::var("OOMWARD_BENCH_RESPAWN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let secs = 10;
    let mut medians = Vec::new();
    for daemon in [true, false] {
        let who = if daemon {
            "oomward"
        } else {
            "the kernel alone"
        };
        println!(
            "\n== respawn: 2 respawned fast allocators in a 256 MiB memcg, {runs} runs of {secs} s, {who}"
        );
        let mut all = Vec::new();
        for run in 0..runs {
            let r = respawn_run(bins, daemon, secs);
            println!("run {run}: {r:?}");
            all.push(r);
        }
        let med = |f: &dyn Fn(&RespawnRun) -> f64| median(&all.iter().map(f).collect::<Vec<_>>());
        let died = all.iter().filter(|r| r.restarts.is_none()).count();
        if died > 0 {
            println!("  the supervisor itself died in {died} of {runs} runs");
        }
        medians.push((
            med(&|r| r.kernel as f64),
            med(&|r| r.ours as f64),
            med(&|r| r.restarts.map_or(f64::NAN, |n| n as f64)),
            died,
        ));
    }
    let (ours, kernel) = (medians[0], medians[1]);
    table.row(
        "respawn: kernel OOM kills per 10 s, with oomward vs the kernel alone",
        ours.0,
        Some(kernel.0),
        "",
        "0",
    );
    table.row("respawn: oomward's kills per 10 s", ours.1, None, "", "-");
    table.row(
        "respawn: supervisor restarts per 10 s, with oomward vs the kernel alone",
        ours.2,
        Some(kernel.2),
        "",
        "-",
    );
    table.row(
        &format!(
            "respawn: runs where the supervisor died, of {runs}, with oomward vs the kernel alone"
        ),
        ours.3 as f64,
        Some(kernel.3 as f64),
        "",
        "0",
    );
}

fn respawn_run(bins: &Bins, daemon: bool, secs: u64) -> RespawnRun {
    let cg = Cgroup::create("respawn", 256 * MIB);
    let dir = tempfile::tempdir().expect("temp dir");
    let oomward = daemon.then(|| {
        let config = format!(
            "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[kill]\ngrace = \"1s\"\n[[cgroup]]\npath = \"{}\"\n",
            cg.path
        );
        let (running, log) = start_oomward(bins, dir.path(), &config);
        wait_for_line(&log, "event=scope_added", Duration::from_secs(5));
        (running, log)
    });
    let mut sup = Command::new(&bins.supervisor)
        .args(["--workers", "2", "--seconds", &secs.to_string()])
        .args(["--cgroup-procs", &cg.procs(), "--join", "--"])
        .arg(&bins.memhog)
        .args(["--rate", "0", "--grow", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the supervisor");
    let status = wait_child(&mut sup, Duration::from_secs(secs + 20));
    let mut out = String::new();
    if let Some(mut s) = sup.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    let mut r = RespawnRun {
        kernel: cg.keyed("memory.oom_control", "oom_kill"),
        ours: oomward.as_ref().map_or(0, |(_, log)| {
            count_lines(log, &["event=term ", "event=kill "])
        }),
        ..RespawnRun::default()
    };
    if let Some(line) = out.lines().find_map(|l| l.strip_prefix("supervisor ")) {
        let kv = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('=')?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        r.restarts = Some(kv("restarts"));
        (r.term, r.kill, r.other) = (kv("term"), kv("kill"), kv("other"));
    } else {
        println!("  the supervisor printed no counts (status {status:?})");
    }
    // The daemon ends before the cgroup goes (its processes are killed by the drop).
    drop(oomward);
    r
}

// ---------------------------------------------------------------------------------------------
// 4. Hang rescue
// ---------------------------------------------------------------------------------------------

/// A 128 MiB v1 memcg with oom_kill_disable = 1: an allocator hangs at the limit (the kernel
/// does nothing); latency from the cgroup entering OOM (the bench's own OOM eventfd) to the
/// victim's exit (its pidfd), 20 times. With the timer alone too.
fn rescue(bins: &Bins, table: &mut Table) {
    for events in [true, false] {
        println!("\n== rescue: 20 hangs in OOM with oom_kill_disable = 1, events = {events}");
        let lat = rescue_trials(bins, 20, events);
        let label = if events { "events" } else { "polling only" };
        table.row(
            &format!("under_oom rescue ({label}), median"),
            median(&lat),
            None,
            "ms",
            "-",
        );
        table.row(
            &format!("under_oom rescue ({label}), p99 of {}", lat.len()),
            p99(&lat),
            None,
            "ms",
            if events { "< 50 ms" } else { "-" },
        );
    }
}

fn rescue_trials(bins: &Bins, trials: usize, events: bool) -> Vec<f64> {
    let cg = Cgroup::create("rescue", 128 * MIB);
    cg.write("memory.oom_control", "1");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[daemon]\nlog = \"stderr\"\nevents = {events}\n[system]\nenabled = false\n[[cgroup]]\npath = \"{}\"\navailable_term = \"0%\"\navailable_kill = \"0%\"\non_under_oom = \"kill\"\n",
        cg.path
    );
    let oom = Spec::V1Oom {
        dir: cg.dir.clone(),
    };
    let (_daemon, _log, rx, _watcher) =
        start_oomward_and_arm(bins, dir.path(), &config, &oom, "OOM notification");
    let mut lat = Vec::new();
    for trial in 0..trials {
        while rx.try_recv().is_ok() {}
        let mut hog = Command::new(&bins.memhog)
            .args(["--cgroup-procs", &cg.procs(), "--hold", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start memhog");
        let pidfd = oomward::sys::pidfd_open(hog.id() as i32).expect("pidfd");
        let Some(oom_at) = wait_event(&rx, Source::V1Oom, Duration::from_secs(10)) else {
            println!("trial {trial}: the cgroup never entered OOM");
            let _ = hog.kill();
            let _ = hog.wait();
            continue;
        };
        let exited = oomward::sys::wait_exit(&pidfd, Duration::from_secs(10)).unwrap_or(false);
        let exit_at = boottime_us();
        let _ = hog.wait();
        if exited {
            lat.push(exit_at.saturating_sub(oom_at) as f64 / 1000.0);
        } else {
            println!("trial {trial}: not rescued within 10 s");
            let _ = hog.kill();
            let _ = hog.wait();
        }
        // under_oom clears and the daemon's rescue settles before the next hang.
        std::thread::sleep(Duration::from_millis(200));
    }
    lat
}

/// Loading a config of 20,000 `[[rule]]`s (a generated policy, e.g. one rule per container
/// image): a reload must stay linear in the file's size. No peer has rules of this kind.
fn config_load(table: &mut Table) {
    println!("\n== config: 20,000 rules");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!(
            "[[rule]]\nexe = \"/opt/app{i}/bin/*\"\ncgroup = \"/kubepods/**\"\nadjust = {}\n",
            i % 900 + 1
        ));
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let c = oomward::config::Config::parse(&text, "rules.toml").expect("valid");
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(c.rules.len(), 20_000);
    }
    table.row(
        "config load, 20k rules (best of 3)",
        best * 1000.0,
        None,
        "ms",
        "< 1000 ms",
    );
}
