//! uiprobe: a stand-in for a compositor in oomward's desktop lab.
//!
//! A compositor wakes for every frame and touches its code and its textures; when memory runs
//! short it is late (the scheduler, memory stalls) and its file-backed pages have been dropped,
//! so each touch faults them back in from disk. uiprobe does the same and measures both: every
//! period (10 ms, an absolute deadline on CLOCK_MONOTONIC) it wakes, records how late it woke,
//! then reads one byte of each of the next `--touch-pages` pages of a read-only shared mapping
//! of `--file` (rotating through it) and records how long those reads took.
//!
//! It prints `ready` once set up, and on exit (after `--seconds`, or on SIGTERM) one line:
//! `uiprobe wakes=N late_p50_us=.. late_p99_us=.. late_max_us=.. touch_p99_us=..
//! touch_max_us=.. majflt=.. missed=..` (majflt: major faults since `ready`; missed: periods
//! skipped because a wake came more than a period late). The loop allocates nothing: the
//! sample buffers are allocated and written once before `ready`.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

#[path = "support/clock.rs"]
mod clock;

#[derive(Parser)]
struct Args {
    /// Run this many seconds, then print the summary and exit (0: until SIGTERM).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// The file to map (created, or extended, to `--file-mib` MiB).
    #[arg(long)]
    file: String,
    /// Size of the file in MiB.
    #[arg(long, default_value_t = 64)]
    file_mib: u64,
    /// Pages read per wake, continuing where the last wake stopped.
    #[arg(long, default_value_t = 64)]
    touch_pages: u64,
    /// The period in milliseconds.
    #[arg(long, default_value_t = 10)]
    period_ms: u64,
}

const PAGE: usize = 4096;
/// Samples kept at most (one per wake): an hour at 10 ms.
const MAX_SAMPLES: usize = 360_000;

fn monotonic_ns() -> u64 {
    clock::clock_ns(libc::CLOCK_MONOTONIC)
}

/// Sleeps until CLOCK_MONOTONIC reads `ns` (returns early on a signal).
fn sleep_until(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; the remaining-time pointer may be null with
    // TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

fn major_faults() -> u64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the valid, exclusively borrowed `ru`.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_majflt as u64
}

/// A buffer of `n` samples, written once so that its pages are present before the loop.
fn samples(n: usize) -> Vec<u32> {
    let mut v = Vec::with_capacity(n);
    v.resize(n, u32::MAX);
    std::hint::black_box(&v);
    v.clear();
    v
}

/// The value at quantile `q` (0..=1) of `v`, sorted in place; 0 when empty.
fn quantile(v: &mut [u32], q: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

/// Opens `path` if it is a file of at least `mib` MiB (read-only: it may belong to someone
/// else), else makes it one, writing non-zero data (real blocks on disk, not a hole).
fn prepare_file(path: &str, mib: u64) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, SeekFrom};
    let want = mib * (1 << 20);
    if let Ok(f) = std::fs::File::open(path)
        && f.metadata()?.len() >= want
    {
        return Ok(f);
    }
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let have = f.metadata()?.len();
    let mut at = have - have % (1 << 20);
    let chunk: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8 + 1).collect();
    f.set_len(at)?;
    f.seek(SeekFrom::Start(at))?;
    while at < want {
        f.write_all(&chunk)?;
        at += 1 << 20;
    }
    f.sync_all()?;
    Ok(f)
}

fn main() {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).expect("signal handler");
    }
    let file = prepare_file(&args.file, args.file_mib.max(1))
        .unwrap_or_else(|e| panic!("{}: {e}", args.file));
    let len = (args.file_mib.max(1) as usize) << 20;
    // SAFETY: a read-only shared mapping of `len` bytes of an open file at least that long; no
    // address hint. Checked against MAP_FAILED; only read below, within `len`.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert!(base != libc::MAP_FAILED, "mmap failed");
    let base = base.cast::<u8>().cast_const();
    let pages = len / PAGE;
    let touch = (args.touch_pages as usize).min(pages);
    let period = args.period_ms.max(1) * 1_000_000;
    let cap = if args.seconds == 0 {
        MAX_SAMPLES
    } else {
        ((args.seconds * 1000 / args.period_ms.max(1)) as usize + 16).min(MAX_SAMPLES)
    };
    let mut late = samples(cap);
    let mut touched = samples(cap);
    let mut late_max = 0u64;
    let mut touch_max = 0u64;
    let mut wakes = 0u64;
    let mut missed = 0u64;
    let mut cursor = 0usize;
    let mut sink = 0u8;

    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready {}", std::process::id());
        let _ = out.flush();
    }
    let faults0 = major_faults();
    let start = monotonic_ns();
    let end = if args.seconds == 0 {
        u64::MAX
    } else {
        start + args.seconds * 1_000_000_000
    };
    let mut next = start + period;
    while !stop.load(Ordering::Relaxed) && next < end {
        sleep_until(next);
        let woke = monotonic_ns();
        if woke < next {
            // A signal ended the sleep early.
            continue;
        }
        let lateness = woke - next;
        for i in 0..touch {
            let page = (cursor + i) % pages;
            // SAFETY: page * PAGE < len: a readable byte of the mapping.
            sink ^= unsafe { std::ptr::read_volatile(base.add(page * PAGE)) };
        }
        cursor = (cursor + touch) % pages;
        let done = monotonic_ns();
        let took = done - woke;
        wakes += 1;
        late_max = late_max.max(lateness);
        touch_max = touch_max.max(took);
        if late.len() < late.capacity() {
            late.push((lateness / 1000).min(u32::MAX as u64) as u32);
            touched.push((took / 1000).min(u32::MAX as u64) as u32);
        }
        next += period;
        if next <= done {
            // More than a period late: skip the frames that are already past, as a compositor
            // does, instead of waking for each of them at once.
            let behind = (done - next) / period + 1;
            missed += behind;
            next += behind * period;
        }
    }
    std::hint::black_box(sink);
    let majflt = major_faults() - faults0;
    let late_p50 = quantile(&mut late, 0.5);
    let late_p99 = quantile(&mut late, 0.99);
    let touch_p50 = quantile(&mut touched, 0.5);
    let touch_p99 = quantile(&mut touched, 0.99);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "uiprobe wakes={wakes} late_p50_us={late_p50} late_p99_us={late_p99} late_max_us={} \
         touch_p50_us={touch_p50} touch_p99_us={touch_p99} touch_max_us={} majflt={majflt} \
         missed={missed}",
        late_max / 1000,
        touch_max / 1000
    );
    let _ = out.flush();
}
