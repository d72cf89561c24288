//! The kernel's clocks, read the one way for the test programs (examples/) and the bench
//! (benches/compare.rs, which takes it by `#[path]`): memhog stamps its SIGTERM in
//! CLOCK_BOOTTIME and the bench measures against that stamp, so both must read it alike. Not
//! an example of its own: cargo builds only the files directly in examples/.
#![allow(dead_code, reason = "each program uses the clocks it needs")]

/// Nanoseconds of `clock` (a `libc::CLOCK_*` id).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Microseconds of CLOCK_BOOTTIME, the clock of /proc/uptime.
pub fn boottime_us() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME) / 1000
}
