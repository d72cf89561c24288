//! memhog: a memory allocator for oomward's tests and demonstrations.
//!
//! It joins a cgroup, sets its own oom_score_adj, touches a given amount of memory (so it is
//! resident, not just reserved), reports `ready`, and can grow further on SIGUSR1 or at a given
//! rate. Tests use it to make real memory pressure inside limited memory cgroups.

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
    /// Ignore SIGTERM (to test escalation to SIGKILL).
    #[arg(long)]
    ignore_term: bool,
    /// On SIGTERM, print `term-at MS us=US` (CLOCK_BOOTTIME, the clock of /proc/uptime, in ms
    /// and µs) and then die of it: when the signal arrived, for reaction latencies measured
    /// from outside.
    #[arg(long)]
    say_term: bool,
    /// Ignored: lets a copy stand in for a browser's child process, whose command line says
    /// what it is (`--type=renderer`), so that rules matching command lines see one.
    #[arg(long = "type", hide = true)]
    _process_type: Option<String>,
}

/// Microseconds of CLOCK_BOOTTIME.
fn boottime_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

const MIB: usize = 1 << 20;

fn touch(chunks: &mut Vec<Vec<u8>>, mib: u64) {
    for _ in 0..mib {
        chunks.push(vec![0xA5u8; MIB]);
    }
}

/// Maps and touches `mib` MiB of MAP_SHARED|MAP_ANONYMOUS memory; kept until exit.
fn shared_mapping(mib: u64) -> usize {
    let len = (mib as usize) * MIB;
    if len == 0 {
        return 0;
    }
    // SAFETY: a fresh anonymous mapping with no address hint; the pointer is checked against
    // MAP_FAILED and the writes stay within the `len` bytes just mapped.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert!(p != libc::MAP_FAILED, "mmap failed");
        std::ptr::write_bytes(p.cast::<u8>(), 0xA5, len);
        p as usize
    }
}

fn say(word: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{word} {}", std::process::id());
    let _ = out.flush();
}

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.cgroup_procs {
        std::fs::write(path, std::process::id().to_string()).expect("join cgroup");
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
    let mut chunks = Vec::new();
    let _shared = if args.shared {
        Some(shared_mapping(args.hold))
    } else {
        touch(&mut chunks, args.hold);
        None
    };
    say("ready");
    if let Some(rate) = args.rate {
        std::thread::sleep(Duration::from_millis(args.delay_ms));
        let start = Instant::now();
        for i in 0..args.grow {
            touch(&mut chunks, 1);
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
        if grow.swap(false, Ordering::SeqCst) {
            touch(&mut chunks, args.grow_on_signal);
            say("grown");
        }
        std::hint::black_box(&chunks);
        std::thread::sleep(Duration::from_millis(5));
    }
}
