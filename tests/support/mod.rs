//! Shared helpers for the integration tests: the binaries under test, guards that clean up the
//! processes and cgroups a test makes (on every path, panics included), and a lock so that tests
//! racing the kernel run one at a time.
#![allow(dead_code)]

pub mod alloc;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use std::time::Instant;

/// The oomward binary built for this test run.
pub fn oomward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oomward"))
}

/// What a finished command said: its exit code and its output as text.
pub struct Said {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end; what it said.
pub fn said(cmd: &mut Command) -> Said {
    let out = cmd.output().expect("run the command");
    Said {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `oomward check-config FILE`: what it said.
pub fn check_config(file: &Path) -> Said {
    said(oomward().arg("check-config").arg(file))
}

/// `oomward check-config FILE`, which must exit with `code` and say `words` on stderr (a
/// refusal with its place and reason, or a warning); what it said.
pub fn check_config_says(file: &Path, code: i32, words: &str) -> Said {
    let said = check_config(file);
    assert_eq!(said.code, Some(code), "{}", said.stderr);
    assert!(
        said.stderr.contains(words),
        "no {words:?} in: {}",
        said.stderr
    );
    said
}

/// The test allocator (examples/memhog.rs), built by `cargo test` beside the test binaries.
pub fn memhog_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let debug_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = debug_dir.join("examples").join("memhog");
    assert!(
        path.exists(),
        "{} missing: run the tests with `cargo test`, which builds examples",
        path.display()
    );
    path
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises tests that race the kernel so a failure is not noise from a neighbour.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when running as root; tests of the real kernel need it and say so when they cannot run.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A child process killed and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub pid: i32,
    lines: BufReader<std::process::ChildStdout>,
}

impl Proc {
    /// Starts memhog with `args` and waits until it reports `ready`.
    pub fn memhog(args: &[&str]) -> Proc {
        let mut p = Proc::memhog_started(args);
        p.expect_line("ready");
        p
    }

    /// The fast race: memhog in the cgroup whose `cgroup.procs` is `procs`, growing to 512 MiB
    /// at 500 MiB/s after 50 ms, past any 256 MiB limit in half a second.
    pub fn racer(procs: &str) -> Proc {
        Proc::memhog(&[
            "--cgroup-procs",
            procs,
            "--rate",
            "500",
            "--grow",
            "512",
            "--delay-ms",
            "50",
        ])
    }

    /// Memhog with `args` in `cg` (it joins the cgroup itself before it touches any memory),
    /// once it is `ready`.
    pub fn memhog_in(cg: &TestCgroup, args: &[&str]) -> Proc {
        let procs = cg.procs_file();
        let mut all = vec!["--cgroup-procs", procs.as_str()];
        all.extend_from_slice(args);
        Proc::memhog(&all)
    }

    /// The usual race: memhog in `cg`, starting 50 ms after `ready` and growing up to 600 MiB
    /// at `rate` MiB/s (0: as fast as it can), with `extra` arguments of memhog's.
    pub fn grower(cg: &TestCgroup, rate: &str, extra: &[&str]) -> Proc {
        let mut args = vec!["--rate", rate, "--grow", "600", "--delay-ms", "50"];
        args.extend_from_slice(extra);
        Proc::memhog_in(cg, &args)
    }

    /// Starts memhog with `args` without waiting for it (it may never be ready: an allocator
    /// that hangs at its cgroup's limit).
    pub fn memhog_started(args: &[&str]) -> Proc {
        let mut child = Command::new(memhog_path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn memhog");
        let pid = child.id() as i32;
        let stdout = child.stdout.take().expect("stdout");
        Proc {
            child,
            pid,
            lines: BufReader::new(stdout),
        }
    }

    /// Takes over a child started elsewhere (with piped stdout).
    pub fn adopt(mut child: Child) -> Proc {
        let pid = child.id() as i32;
        let stdout = child.stdout.take().expect("stdout piped");
        let mut p = Proc {
            child,
            pid,
            lines: BufReader::new(stdout),
        };
        p.expect_line("ready");
        p
    }

    /// Blocks until the child prints a line starting with `word`.
    pub fn expect_line(&mut self, word: &str) {
        self.line_starting(word);
    }

    /// Waits up to `timeout` for the child to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY-free: nix wraps kill(2).
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::try_from(sig).expect("signal"),
        );
    }
}

impl Drop for Proc {
    /// Kills and reaps it, but never waits forever (a frozen or D-state child would hang the
    /// test run); such a child is reported instead.
    fn drop(&mut self) {
        let _ = self.child.kill();
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            eprintln!("warning: pid {} did not exit after SIGKILL", self.pid);
        }
    }
}

/// A v1 memory cgroup made for one test, emptied and removed when dropped.
pub struct TestCgroup {
    /// Path in the hierarchy, e.g. `/oomward-test-oracle-1234`.
    pub path: String,
    /// Its directory.
    pub dir: PathBuf,
}

/// The v1 memory controller's mount point, if this host has one.
pub fn v1_memory_mount() -> Option<PathBuf> {
    let host = oomward::probe::Host::discover(Path::new("/")).ok()?;
    let hier = host.memory?;
    (hier.version == oomward::probe::cgroup::CgroupVersion::V1)
        .then(|| PathBuf::from(hier.mount_point))
}

impl TestCgroup {
    /// Creates `<mount>/oomward-test-<name>-<pid>` with the given limit in bytes (0: no limit).
    pub fn create(name: &str, limit: u64) -> TestCgroup {
        let mount = v1_memory_mount().expect("a v1 memory controller");
        let path = format!("/oomward-test-{name}-{}", std::process::id());
        let dir = mount.join(path.trim_start_matches('/'));
        if dir.exists() {
            // A leftover from a crashed earlier run with the same pid: clean it first.
            drop(TestCgroup {
                path: path.clone(),
                dir: dir.clone(),
            });
        }
        std::fs::create_dir(&dir).expect("create test cgroup");
        let cg = TestCgroup { path, dir };
        if limit > 0 {
            cg.write("memory.limit_in_bytes", &limit.to_string());
        }
        cg
    }

    /// Writes a control file.
    pub fn write(&self, file: &str, value: &str) {
        std::fs::write(self.dir.join(file), value).unwrap_or_else(|e| panic!("write {file}: {e}"));
    }

    /// Reads a control file.
    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"))
    }

    /// A `key value` entry of a flat-keyed file such as memory.oom_control.
    pub fn keyed(&self, file: &str, key: &str) -> u64 {
        self.read(file)
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{file} has no {key}"))
    }

    /// The kernel's OOM kills of tasks in this cgroup (`oom_kill` of memory.oom_control): not
    /// 0 where oomward was late.
    pub fn oom_kills(&self) -> u64 {
        self.keyed("memory.oom_control", "oom_kill")
    }

    /// Fails the test, saying `what` and showing what `d` printed, where the kernel's OOM
    /// killer fired in this cgroup: oomward must get there first.
    pub fn assert_no_oom_kill(&self, what: &str, d: &Daemon) {
        let kills = self.oom_kills();
        assert_eq!(
            kills,
            0,
            "{what}: the kernel OOM killer fired; daemon output:\n{}",
            d.output()
        );
    }

    /// The `cgroup.procs` path, for memhog's `--cgroup-procs`.
    pub fn procs_file(&self) -> String {
        self.dir.join("cgroup.procs").display().to_string()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Children first (a cgroup with children cannot be removed).
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    drop(TestCgroup {
                        path: format!("{}/{name}", self.path),
                        dir: e.path(),
                    });
                }
            }
        }
        self.kill_all();
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

/// A daemon under test: its stderr is collected by a thread, so waiting for a line can time out
/// instead of blocking in read(2); killed and reaped when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
    /// Its state and runtime directories (the kill journal, the status file), its own: a test
    /// never writes to the machine's /var/lib/oomward or /run/oomward.
    pub dirs: tempfile::TempDir,
}

impl Daemon {
    /// Starts `oomward --config FILE run ARGS...`.
    pub fn start(config: &std::path::Path, args: &[&str]) -> Daemon {
        Daemon::start_with(config, args, &[])
    }

    /// Starts `oomward --config FILE run ARGS...` with these environment variables added.
    pub fn start_with(config: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dirs = tempfile::tempdir().unwrap();
        let mut child = oomward()
            .arg("--config")
            .arg(config)
            .arg("run")
            .args(args)
            .env("STATE_DIRECTORY", dirs.path().join("state"))
            .env("RUNTIME_DIRECTORY", dirs.path().join("run"))
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon { child, seen, dirs }
    }

    /// Itself once it watches its cgroup (`event=scope_added` within 5 s): where a test's
    /// allocator may start.
    pub fn watching(self) -> Daemon {
        self.wait_for("event=scope_added", Duration::from_secs(5));
        self
    }

    /// Waits up to 5 s until it watches the cgroup at `path` (`event=scope_added scope=PATH`).
    pub fn wait_watching(&self, path: &str) {
        let added = format!("event=scope_added scope={path}");
        self.wait_for(&added, Duration::from_secs(5));
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Waits until the output contains `needle`; panics with the output after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.seen.lock().unwrap().clone();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {timeout:?}; output:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a line contains `needle`; the first such line. Panics with the output after
    /// `timeout`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let out = self.wait_for(needle, timeout);
        let line = out.lines().find(|l| l.contains(needle));
        line.expect("the output holds it").to_string()
    }

    /// Waits up to 2 s for a line naming memhog `pid` (what was decided about it); the first.
    pub fn memhog_line(&self, pid: i32) -> String {
        self.wait_for_line(&format!("pid={pid} comm=memhog"), Duration::from_secs(2))
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).unwrap();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Everything it has printed so far.
    pub fn output(&self) -> String {
        self.seen.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for `needle` in what it printed from byte `from` on, and carries on
    /// either way: lets an episode end before a test reads what it said, without failing there.
    pub fn settle_until(&self, from: usize, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.output()[from..].contains(needle) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl TestCgroup {
    /// Creates a child `name` of this cgroup with the given limit (0: no limit).
    pub fn child(&self, name: &str, limit: u64) -> TestCgroup {
        let path = format!("{}/{name}", self.path);
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir).expect("create child cgroup");
        let cg = TestCgroup { path, dir };
        if limit > 0 {
            cg.write("memory.limit_in_bytes", &limit.to_string());
        }
        cg
    }
}

/// A v1 freezer cgroup: a frozen task stays in D state even after SIGKILL until thawed, which
/// is how a victim stuck on a dead filesystem looks. Thawed and removed when dropped.
pub struct Freezer {
    dir: PathBuf,
}

impl Freezer {
    /// Creates it, if this host has the v1 freezer.
    pub fn create(name: &str) -> Option<Freezer> {
        let base = Path::new("/sys/fs/cgroup/freezer");
        if !base.join("freezer.state").exists() && !base.join("tasks").exists() {
            return None;
        }
        let dir = base.join(format!("oomward-test-{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        Some(Freezer { dir })
    }

    /// Moves a process in and freezes it; waits until the kernel says FROZEN.
    pub fn freeze(&self, pid: i32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("move to freezer");
        std::fs::write(self.dir.join("freezer.state"), "FROZEN").expect("freeze");
        for _ in 0..500 {
            if std::fs::read_to_string(self.dir.join("freezer.state"))
                .unwrap_or_default()
                .trim()
                == "FROZEN"
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("the freezer did not freeze");
    }

    /// Thaws it.
    pub fn thaw(&self) {
        let _ = std::fs::write(self.dir.join("freezer.state"), "THAWED");
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        self.thaw();
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

// ---- Helpers for tests/domains.rs (OOM domains and episodes). ----

/// The test supervisor (examples/supervisor.rs), built by `cargo test` beside memhog.
pub fn supervisor_path() -> PathBuf {
    let path = memhog_path().with_file_name("supervisor");
    assert!(
        path.exists(),
        "{} missing: run the tests with `cargo test`, which builds examples",
        path.display()
    );
    path
}

impl Proc {
    /// Blocks until the child prints a line starting with `word`; that line, without its
    /// newline. Panics if the child ends first.
    pub fn line_starting(&mut self, word: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.lines.read_line(&mut line).expect("read child stdout");
            assert!(n > 0, "pid {} ended before printing {word:?}", self.pid);
            if line.starts_with(word) {
                return line.trim_end().to_string();
            }
        }
    }
}

impl TestCgroup {
    /// A number from memory.stat (`total_*` for the subtree).
    pub fn stat(&self, key: &str) -> u64 {
        self.read("memory.stat")
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("memory.stat has no {key}"))
    }

    /// memory.usage_in_bytes.
    pub fn usage(&self) -> u64 {
        self.read("memory.usage_in_bytes")
            .trim()
            .parse()
            .expect("usage")
    }

    /// What is left to charge under this cgroup's own limit before the kernel must reclaim
    /// anything but unmapped page cache: limit − (usage − file LRU pages). Shared memory and
    /// tmpfs pages live on the anon lists, so they count as used (they cannot be dropped).
    pub fn available_under(&self, limit: u64) -> i64 {
        let cache = self.stat("total_inactive_file") + self.stat("total_active_file");
        limit as i64 - (self.usage() as i64 - cache as i64)
    }

    /// The kernel's OOM kills of tasks in this cgroup and every cgroup below it. (In cgroup v1
    /// a memcg OOM kill is counted in `oom_kill` of the victim's own cgroup, not in the cgroup
    /// whose limit was hit.)
    pub fn oom_kills_subtree(&self) -> u64 {
        let mut n = self.oom_kills();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    // Borrowed view of a child; forgotten so its Drop never removes it.
                    let child = std::mem::ManuallyDrop::new(TestCgroup {
                        path: format!("{}/{name}", self.path),
                        dir: e.path(),
                    });
                    n += child.oom_kills_subtree();
                }
            }
        }
        n
    }
}

/// A tmpfs mounted on a temporary directory for one test; unmounted (lazily if still busy) and
/// the directory removed when dropped.
pub struct Tmpfs {
    pub dir: PathBuf,
    /// Removed once the tmpfs is unmounted (fields drop after `Drop::drop`).
    _mount_point: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax, e.g. `300m`) on a new temporary directory.
    pub fn mount(size: &str) -> Tmpfs {
        let mount_point = tempfile::tempdir().unwrap();
        let dir = mount_point.path().to_path_buf();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {}", dir.display());
        Tmpfs {
            dir,
            _mount_point: mount_point,
        }
    }

    /// Writes `mib` MiB of zeros to `name` from a short-lived `dd` that first joins the cgroup
    /// `procs` (a cgroup.procs file), so that the tmpfs pages are charged to that cgroup and
    /// stay charged after `dd` exits.
    pub fn fill_from(&self, procs: &str, name: &str, mib: u64) {
        let script = format!(
            "echo $$ > {procs} && exec dd if=/dev/zero of={} bs=1M count={mib} status=none",
            self.dir.join(name).display()
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .status()
            .expect("run sh");
        assert!(
            status.success(),
            "writing {mib} MiB to the tmpfs: {status:?}"
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            eprintln!("warning: {} was busy, unmounted lazily", self.dir.display());
        }
    }
}

/// Context switches (voluntary + involuntary) of every thread of `pid` so far: how often it
/// has woken up.
/// The CPU time process `pid` has used so far (user and system, all its threads).
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    let per_sec = rustix::param::clock_ticks_per_second();
    Duration::from_secs_f64(ticks as f64 / per_sec as f64)
}

pub fn context_switches(pid: i32) -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    for t in tasks.flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for l in status.lines() {
            if let Some(v) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

/// A daemon watching the `[[cgroup]]` `paths` (each with `cgroup_extra` in its table), the
/// system scope off, logging to stderr, with `grace` unless `extra` sets the `[kill]` table
/// itself; started with `args` and its start line seen. Its config is `dir/oomward.toml`.
pub fn cgroup_daemon(
    dir: &tempfile::TempDir,
    paths: &[&str],
    grace: &str,
    cgroup_extra: &str,
    extra: &str,
    args: &[&str],
) -> Daemon {
    let kill = if extra.contains("[kill]") {
        String::new()
    } else {
        format!("[kill]\ngrace = \"{grace}\"\n")
    };
    let mut config =
        format!("[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n{kill}{extra}\n");
    for p in paths {
        config.push_str(&format!("\n[[cgroup]]\npath = \"{p}\"\n{cgroup_extra}\n"));
    }
    let file = dir.path().join("oomward.toml");
    std::fs::write(&file, config).expect("write the config");
    let d = Daemon::start(&file, args);
    d.wait_for("event=start", Duration::from_secs(10));
    d
}

/// A daemon watching the cgroup at `path` only, with the defaults otherwise (grace 5 s), once it
/// watches it: how the tests of real applications run it, as a user would. Its config is
/// `dir/oomward.toml`.
pub fn default_daemon(dir: &tempfile::TempDir, path: &str) -> Daemon {
    let config = format!(
        "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[[cgroup]]\npath = \"{path}\"\n"
    );
    let file = dir.path().join("oomward.toml");
    std::fs::write(&file, config).unwrap();
    let d = Daemon::start(&file, &[]);
    d.wait_for("event=scope_added", Duration::from_secs(10));
    d
}

/// The lines of a daemon's output `out` that say a process was signalled, by oomward (term,
/// kill, escalate, rescue) or by the kernel's OOM killer: everyone a run made suffer.
pub fn signal_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| {
            [
                "event=term ",
                "event=kill ",
                "event=escalate ",
                "event=rescue ",
                "event=kernel_oom_kill",
            ]
            .iter()
            .any(|e| l.contains(e))
        })
        .map(str::to_string)
        .collect()
}

/// Fails the test, saying what is missing, where the tests that race the kernel cannot run
/// (they need root and a cgroup-v1 memory controller). Such a test is `#[ignore]`d with the
/// same words: plain `cargo test` leaves it out and says so, and run with `--include-ignored`
/// on a machine without them it fails instead of passing untried.
pub fn need_v1() {
    assert!(is_root(), "needs root (and a cgroup-v1 memory controller)");
    assert!(
        v1_memory_mount().is_some(),
        "needs a cgroup-v1 memory controller (this kernel mounts none)"
    );
    tools();
}

/// What a test that races the kernel starts with: it fails where it cannot run ([`need_v1`]),
/// waits its turn ([`serial`]), and has its own cgroup `name` with `limit` (0: none) and a
/// directory for the daemon's files. Bound as `let (_serial, cg, dir) = kernel_race(..)`, they
/// are dropped in the reverse order: the directory, the cgroup, and last the lock.
pub fn kernel_race(
    name: &str,
    limit: u64,
) -> (MutexGuard<'static, ()>, TestCgroup, tempfile::TempDir) {
    let (serial, cg) = race_cgroup(name, limit);
    let dir = tempfile::tempdir().unwrap();
    (serial, cg, dir)
}

/// [`kernel_race`] without the directory: a test that starts no daemon, or starts it later.
pub fn race_cgroup(name: &str, limit: u64) -> (MutexGuard<'static, ()>, TestCgroup) {
    need_v1();
    let serial = serial();
    let cg = TestCgroup::create(name, limit);
    (serial, cg)
}

/// Fails the test where it is not run as root, saying `why` it needs root.
pub fn need_root(why: &str) {
    assert!(is_root(), "needs root: {why}");
    tools();
}

/// Installs what the ignored tests use from Debian (`tests/setup.sh`: idempotent, says what it
/// installs), once per test program and only as root: the full suite is one command on a fresh
/// machine.
pub fn tools() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if !is_root() {
        return;
    }
    DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/setup.sh");
        let st = Command::new("bash")
            .arg(&script)
            .status()
            .expect("run bash");
        assert!(st.success(), "{} failed", script.display());
    });
}

/// A copy of the fixture tree `tests/fixtures/NAME` (`cp -a`) in a temporary directory, for a
/// test that writes into its tree.
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}/."));
    let status = Command::new("cp")
        .arg("-a")
        .arg(fixture)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "cp -a of the fixture {name}");
    dir
}

/// A count from the environment (a longer run while developing), else `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The rows of `oomward rank --json` run as `cmd` (`oomward()` with its arguments, perhaps a
/// user to run as); fails the test, with what it said, where it does not succeed.
pub fn rank_rows(cmd: &mut Command) -> Vec<serde_json::Value> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `key=value` of a daemon's log line (values here never hold spaces).
pub fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Whether `pid` is alive: not gone, and not a zombie its parent has yet to reap (whose memory
/// is freed already).
pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Installs Debian's `package` (without prompts; `apt-get update` only when the install fails
/// without it), for a test of a real application that is not there yet.
pub fn apt_install(package: &str) -> Result<(), String> {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "-qq", package];
    if apt(&install) || (apt(&["update", "-qq"]) && apt(&install)) {
        Ok(())
    } else {
        Err(format!("apt-get install {package} failed"))
    }
}

impl TestCgroup {
    /// Kills every process in the cgroup (not its children's) and waits until none is left.
    pub fn kill_all(&self) {
        let procs = self.dir.join("cgroup.procs");
        for _ in 0..200 {
            let pids: Vec<i32> = std::fs::read_to_string(&procs)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
