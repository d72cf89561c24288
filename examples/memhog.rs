//! memhog: a memory allocator for oomward's tests and demonstrations.
//!
//! It joins a cgroup, sets its own oom_score_adj, touches a given amount of memory (so it is
//! resident, not just reserved), reports `ready`, and can grow further on SIGUSR1 or at a given
//! rate. Tests use it to make real memory pressure inside limited memory cgroups.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Write our pid to this cgroup.procs (or tasks) file before allocating anything.
    #[arg(long)]
    cgroup_procs: Option<String>,
    /// Set our own oom_score_adj.
    #[arg(long)]
    adj: Option<i32>,
    /// MiB to allocate and touch at start.
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// MiB to allocate and touch more when SIGUSR1 arrives.
    #[arg(long, default_value_t = 0)]
    grow_on_signal: u64,
    /// After `ready`, keep allocating at this many MiB per second (0: as fast as possible) up to
    /// `--grow` MiB more.
    #[arg(long)]
    rate: Option<u64>,
    /// MiB to grow by with `--rate`.
    #[arg(long, default_value_t = 0)]
    grow: u64,
    /// Wait this many milliseconds after `ready` before growing with `--rate`.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Hold `--hold` in a shared anonymous mapping (shmem): memory that process_mrelease and
    /// the OOM reaper cannot free while the process lingers.
    #[arg(long)]
    shared: bool,
    /// Grow (`--rate`, `--grow`) in one shared mapping instead of private memory: memory that
    /// dies with its last holder, freed by a kill only when nobody else maps it.
    #[arg(long)]
    shared_grow: bool,
    /// Back the shared mappings with a memfd instead of `/dev/zero` (MAP_SHARED|MAP_ANONYMOUS).
    #[arg(long)]
    memfd: bool,
    /// After `--hold`, fork this many children that keep every mapping (copy-on-write for
    /// private memory, the same pages for shared) and sleep; each is announced as `child PID`,
    /// and each dies with its parent.
    #[arg(long, default_value_t = 0)]
    fork_children: u32,
    /// Ignore SIGTERM (to test escalation to SIGKILL).
    #[arg(long)]
    ignore_term: bool,
    /// On SIGTERM, allocate and touch this many MiB more, as fast as it can, and only then
    /// exit: a shutdown handler that needs memory (a state dump), which must not win the race
    /// against the limit.
    #[arg(long)]
    term_grow: Option<u64>,
    /// On SIGTERM, print `term-at MS us=US` (CLOCK_BOOTTIME, the clock of /proc/uptime, in ms
    /// and µs) and then die of it: when the signal arrived, for reaction latencies measured
    /// from outside.
    #[arg(long)]
    say_term: bool,
    /// Set its own name (comm) to these bytes, given in hex (`ff` is the byte 0xff): a name
    /// that is not UTF-8, as any user can give a process with prctl(PR_SET_NAME).
    #[arg(long)]
    comm_hex: Option<String>,
    /// Ignored: lets a copy stand in for a browser's child process, whose command line says
    /// what it is (`--type=renderer`), so that rules matching command lines see one.
    #[arg(long = "type", hide = true)]
    _process_type: Option<String>,
}

/// Its SIGTERM stamp's clock, read as the bench reads it.
#[path = "support/clock.rs"]
mod clock;
use clock::boottime_us;

const MIB: usize = 1 << 20;

fn touch(chunks: &mut Vec<Vec<u8>>, mib: u64) {
    for _ in 0..mib {
        chunks.push(vec![0xA5u8; MIB]);
    }
}

/// Maps `mib` MiB of shared memory (a memfd, or MAP_SHARED|MAP_ANONYMOUS), untouched; kept
/// until exit. Returns its address.
fn shared_region(mib: u64, memfd: bool) -> *mut u8 {
    let len = (mib as usize) * MIB;
    if len == 0 {
        return std::ptr::null_mut();
    }
    let (flags, fd) = if memfd {
        // SAFETY: memfd_create reads the NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(c"memhog".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create failed");
        // SAFETY: ftruncate on the descriptor just made.
        let sized = unsafe { libc::ftruncate(fd, len as libc::off_t) };
        assert_eq!(sized, 0, "ftruncate");
        (libc::MAP_SHARED, fd)
    } else {
        (libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)
    };
    // SAFETY: a fresh shared mapping with no address hint of a descriptor (or none) that this
    // process owns; the pointer is checked against MAP_FAILED.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        );
        assert!(p != libc::MAP_FAILED, "mmap failed");
        p.cast::<u8>()
    }
}

/// Touches `mib` MiB of a region from `region` on.
fn touch_region(region: *mut u8, from_mib: u64, mib: u64) {
    // SAFETY: callers pass a region mapped by `shared_region` at least `from_mib + mib` MiB
    // long; the writes stay within it.
    unsafe {
        std::ptr::write_bytes(
            region.add(from_mib as usize * MIB),
            0xA5,
            mib as usize * MIB,
        );
    }
}

/// Forks a child that keeps every mapping and sleeps until its parent dies.
fn fork_child() {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the child only calls async-signal-safe functions (prctl, getppid, pause, _exit)
    // before exiting; the parent goes on.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // A parent killed before the line above left no one to tell of it: a test that
            // stops its memhog at once must not leave the child (and its pipes) behind.
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            loop {
                libc::pause();
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "child {pid}");
    let _ = out.flush();
}

fn say(word: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{word} {}", std::process::id());
    let _ = out.flush();
}

/// prctl(PR_SET_NAME) with raw bytes (at most 15, the kernel's TASK_COMM_LEN less its NUL).
fn set_comm(hex: &str) {
    let mut name: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex comm"))
        .filter(|b| *b != 0)
        .take(15)
        .collect();
    name.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from the pointer,
    // which points at `name`, alive and NUL-terminated for the duration of the call.
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl(PR_SET_NAME)");
}

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.cgroup_procs {
        std::fs::write(path, std::process::id().to_string()).expect("join cgroup");
    }
    if let Some(hex) = &args.comm_hex {
        set_comm(hex);
    }
    if let Some(adj) = args.adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).expect("set oom_score_adj");
    }
    if args.say_term && !args.ignore_term {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM])
            .expect("SIGTERM handler");
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                let us = boottime_us();
                say(&format!("term-at {} us={us}", us / 1000));
                let _ =
                    signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGTERM);
            }
        });
    }
    if args.ignore_term {
        let ignored = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGTERM, ignored)
            .expect("SIGTERM handler");
    }
    let grow = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, grow.clone())
        .expect("SIGUSR1 handler");
    let termed = Arc::new(AtomicBool::new(false));
    if args.term_grow.is_some() {
        signal_hook::flag::register(signal_hook::consts::SIGTERM, termed.clone())
            .expect("SIGTERM handler");
    }
    let mut chunks = Vec::new();
    let on_term = |chunks: &mut Vec<Vec<u8>>| {
        if let Some(mib) = args.term_grow
            && termed.load(Ordering::SeqCst)
        {
            touch(chunks, mib);
            std::process::exit(0);
        }
    };
    if args.shared {
        touch_region(shared_region(args.hold, args.memfd), 0, args.hold);
    } else {
        touch(&mut chunks, args.hold);
    }
    for _ in 0..args.fork_children {
        fork_child();
    }
    let growing = if args.shared_grow {
        shared_region(args.grow, args.memfd)
    } else {
        std::ptr::null_mut()
    };
    say("ready");
    if let Some(rate) = args.rate {
        std::thread::sleep(Duration::from_millis(args.delay_ms));
        let start = Instant::now();
        for i in 0..args.grow {
            on_term(&mut chunks);
            if growing.is_null() {
                touch(&mut chunks, 1);
            } else {
                touch_region(growing, i, 1);
            }
            if rate > 0 {
                let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        say("grown");
    }
    loop {
        on_term(&mut chunks);
        if grow.swap(false, Ordering::SeqCst) {
            touch(&mut chunks, args.grow_on_signal);
            say("grown");
        }
        std::hint::black_box(&chunks);
        std::thread::sleep(Duration::from_millis(5));
    }
}
