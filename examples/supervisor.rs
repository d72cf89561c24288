//! supervisor: keeps N workers alive for a while, restarting each one the moment it dies, the
//! way a respawning service manager or a job runner with retries does. Tests use it to show that
//! a workload which replaces its killed allocators at once never gets the kernel's OOM killer
//! to act in its cgroup, and that the supervisor itself (small, adj 0) survives.
//!
//! ```text
//! supervisor [--workers N] [--seconds S] [--cgroup-procs FILE] [--join] [--adj N]
//!            [--mode malloc|mmap] [--mib M] [-- WORKER ARGV...]
//! supervisor worker-mmap --mib M [--cgroup-procs FILE] [--adj N]
//! ```
//!
//! With `--cgroup-procs FILE` each worker joins that cgroup before it runs (between fork and
//! exec, by writing `0`, "the writer", to the file), or with `--join` the supervisor joins it
//! itself first and its workers inherit it. Workers: the given argv, or by `--mode`: `malloc`
//! runs memhog (next to this binary) with `--rate 0 --grow M`, `mmap` runs this binary's own
//! `worker-mmap --mib M`, which maps anonymous memory one MiB at a time and touches it page by
//! page. Workers' stdout goes to /dev/null.
//!
//! It prints `ready <pid>` once the first workers run, `exit pid=.. how=..` on stderr for each
//! worker that ended, and at the end one line
//! `supervisor restarts=N term=N kill=N other=N`, then exits 0. Workers still running at the
//! end are SIGKILLed and reaped (not counted).

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cgroup.rs"]
mod cgroup;

const MIB: usize = 1 << 20;

fn usage(msg: &str) -> ! {
    eprintln!("supervisor: {msg}");
    eprintln!(
        "usage: supervisor [--workers N] [--seconds S] [--cgroup-procs FILE] [--join] [--adj N] \
         [--mode malloc|mmap] [--mib M] [-- WORKER ARGV...]\n       \
         supervisor worker-mmap --mib M [--cgroup-procs FILE] [--adj N]"
    );
    std::process::exit(2);
}

fn value<T: std::str::FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> T {
    let Some(v) = args.next() else {
        usage(&format!("{flag} needs a value"))
    };
    v.parse()
        .unwrap_or_else(|_| usage(&format!("{flag}: bad value {v:?}")))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn set_adj(adj: i32) {
    std::fs::write("/proc/self/oom_score_adj", adj.to_string()).expect("set oom_score_adj");
}

fn join(procs: &str) {
    std::fs::write(procs, std::process::id().to_string()).expect("join cgroup");
}

/// The mmap worker: anonymous private mappings of one MiB each, every page written, kept until
/// the process dies (it sleeps once it has all of them).
fn worker_mmap(mut args: impl Iterator<Item = String>) -> ! {
    let mut mib: usize = 600;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mib" => mib = value(&mut args, "--mib"),
            "--cgroup-procs" => join(&value::<String>(&mut args, "--cgroup-procs")),
            "--adj" => set_adj(value(&mut args, "--adj")),
            other => usage(&format!("worker-mmap: unknown argument {other:?}")),
        }
    }
    say(&format!("ready {}", std::process::id()));
    let page = rustix::param::page_size();
    let mut maps = Vec::with_capacity(mib);
    for _ in 0..mib {
        // SAFETY: a fresh anonymous private mapping without an address hint; the result is
        // checked against MAP_FAILED and the writes below stay inside the MIB bytes mapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MIB,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "mmap failed");
        let base = p.cast::<u8>();
        for off in (0..MIB).step_by(page) {
            // SAFETY: `off < MIB`, inside the mapping made just above, which is writable.
            unsafe { base.add(off).write_volatile(0xA5) };
        }
        maps.push(p as usize);
    }
    say("grown");
    loop {
        std::hint::black_box(&maps);
        std::thread::sleep(Duration::from_secs(1));
    }
}

struct Opts {
    workers: usize,
    seconds: f64,
    cgroup_procs: Option<String>,
    join: bool,
    adj: Option<i32>,
    mode: String,
    mib: u64,
    argv: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Opts {
    let mut o = Opts {
        workers: 2,
        seconds: 30.0,
        cgroup_procs: None,
        join: false,
        adj: None,
        mode: "malloc".into(),
        mib: 600,
        argv: Vec::new(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workers" => o.workers = value(&mut args, "--workers"),
            "--seconds" => o.seconds = value(&mut args, "--seconds"),
            "--cgroup-procs" => o.cgroup_procs = Some(value(&mut args, "--cgroup-procs")),
            "--join" => o.join = true,
            "--adj" => o.adj = Some(value(&mut args, "--adj")),
            "--mode" => o.mode = value(&mut args, "--mode"),
            "--mib" => o.mib = value(&mut args, "--mib"),
            "--" => {
                o.argv = args.by_ref().collect();
                break;
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if o.workers == 0 {
        usage("--workers must be at least 1");
    }
    if !matches!(o.mode.as_str(), "malloc" | "mmap") {
        usage("--mode is malloc or mmap");
    }
    o
}

/// The worker command line when none was given after `--`.
fn default_argv(o: &Opts) -> Vec<String> {
    let me = std::env::current_exe().expect("own exe");
    match o.mode.as_str() {
        "mmap" => vec![
            me.display().to_string(),
            "worker-mmap".into(),
            "--mib".into(),
            o.mib.to_string(),
        ],
        _ => {
            let memhog: PathBuf = me.with_file_name("memhog");
            vec![
                memhog.display().to_string(),
                "--rate".into(),
                "0".into(),
                "--grow".into(),
                o.mib.to_string(),
            ]
        }
    }
}

struct Worker {
    child: Child,
    pidfd: OwnedFd,
}

fn spawn(argv: &[String], join_path: Option<&CString>) -> Worker {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(path) = join_path {
        cgroup::join_before_exec(&mut cmd, path.clone());
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", argv[0]));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    let pidfd =
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).expect("pidfd_open");
    Worker { child, pidfd }
}

#[derive(Default)]
struct Counts {
    restarts: u64,
    term: u64,
    kill: u64,
    other: u64,
}

impl Counts {
    fn record(&mut self, pid: u32, status: std::process::ExitStatus) {
        let how = match status.signal() {
            Some(libc::SIGTERM) => {
                self.term += 1;
                "SIGTERM".to_string()
            }
            Some(libc::SIGKILL) => {
                self.kill += 1;
                "SIGKILL".to_string()
            }
            Some(sig) => {
                self.other += 1;
                format!("signal{sig}")
            }
            None => {
                self.other += 1;
                format!("code{}", status.code().unwrap_or(-1))
            }
        };
        eprintln!("supervisor: exit pid={pid} how={how}");
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("worker-mmap") {
        args.next();
        worker_mmap(args);
    }
    let o = parse(args);
    if let Some(adj) = o.adj {
        set_adj(adj);
    }
    let argv = if o.argv.is_empty() {
        default_argv(&o)
    } else {
        o.argv.clone()
    };
    let join_path = match (&o.cgroup_procs, o.join) {
        (Some(p), true) => {
            join(p);
            None
        }
        (Some(p), false) => Some(CString::new(p.as_str()).expect("path without NUL")),
        (None, _) => None,
    };
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let mut workers: HashMap<u32, Worker> = HashMap::new();
    for _ in 0..o.workers {
        let w = spawn(&argv, join_path.as_ref());
        workers.insert(w.child.id(), w);
    }
    say(&format!("ready {}", std::process::id()));
    let mut counts = Counts::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Wait for any worker to end (its pidfd becomes readable) or the end of the run.
        let pids: Vec<u32> = workers.keys().copied().collect();
        let mut fds: Vec<rustix::event::PollFd<'_>> = pids
            .iter()
            .map(|p| rustix::event::PollFd::new(&workers[p].pidfd, rustix::event::PollFlags::IN))
            .collect();
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
        let ended: Vec<u32> = pids
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| !fd.revents().is_empty())
            .map(|(p, _)| *p)
            .collect();
        drop(fds);
        for pid in ended {
            let mut w = workers.remove(&pid).expect("known worker");
            let status = w.child.wait().expect("waitpid");
            counts.record(pid, status);
            if Instant::now() < deadline {
                let w = spawn(&argv, join_path.as_ref());
                workers.insert(w.child.id(), w);
                counts.restarts += 1;
            }
        }
    }
    for (_, mut w) in workers.drain() {
        let _ = w.child.kill();
        let _ = w.child.wait();
    }
    say(&format!(
        "supervisor restarts={} term={} kill={} other={}",
        counts.restarts, counts.term, counts.kill, counts.other
    ));
}
