//! The system scope's cheap ranking pass: a table of every process, kept across passes, that
//! reads one small file per process per pass instead of six.
//!
//! `/proc/PID/oom_score` is the kernel's own badness with the machine's T (and the process's
//! oom_score_adj), quantized to steps of about 1.5·T/1000 pages: enough to bound every
//! process's score from above. A pass reads it through a descriptor kept open since the process
//! was first seen (one `pread`, no open or close; a descriptor of a process that exited reads
//! ESRCH, so a reused pid is never mistaken for the old process), adds what the policy may add,
//! and reads everything else (stat, status, adj, exe, cgroup) only for the few processes whose
//! bound can still beat the best exact score found. What the policy may add to a process's
//! score is cached from its last full read; each pass refreshes one process in a thousand (so
//! an exec or setuid is seen within a thousand passes), and the finalists are always read and
//! judged afresh, so the cache decides only which processes are read in full. Processes whose
//! bound is within one oom_score quantum of the last finalist's exact score are not read: the
//! choice is exact among the finalists and within one quantum (about 0.2 % of RAM + swap) of
//! the kernel's overall, the resolution of oom_score itself.
//!
//! A process enters the table on the first pass that lists it (one full read), so the table
//! is best filled once at start ([`ProcessTable::pass`] with no need of the result): the first
//! pass of a shortage then reads only the processes started since.
//!
//! Listing /proc costs the kernel about as much as the reads themselves (it builds a dentry
//! for every process), so a pass lists it only when a pid was allocated since the last
//! listing: `/proc/loadavg` ends with the last pid allocated, and while it has not moved no
//! process (or thread) has been created, and the exits are seen through the kept descriptors.
//! Every [`LIST_AT_LEAST_EVERY`]th pass lists anyway (a pid space that wrapped around exactly).
//! The last pid is that of the reader's pid namespace, so this is done only when /proc is of
//! that namespace (`/proc/self` names this process); otherwise every pass lists.
//!
//! Descriptors are kept while the budget lasts (the caller sizes it from RLIMIT_NOFILE); past
//! it, `oom_score` is opened, read and closed each pass.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use super::kept::KeptFile;
use super::process::{ProcessSnapshot, read_process_with};
use super::{Host, ProbeError};
use crate::badness::oom_badness_upper_bound;
use crate::policy::Policy;
use crate::rank::{Totals, score};

/// A pass lists /proc at least this often, even when no pid was allocated since the last
/// listing.
pub const LIST_AT_LEAST_EVERY: u64 = 16;

/// One process in this many is read in full again each pass, oldest first (exec, setuid or a
/// cgroup move can change what the policy says without changing the pid).
pub const REFRESH_ONE_IN: usize = 1000;

#[derive(Debug)]
struct Entry {
    /// `/proc/PID/oom_score`, open (within the budget).
    fd: Option<OwnedFd>,
    /// The pass that last saw it listed.
    seen: u64,
    /// Never a candidate: a kernel thread or a zombie (neither changes back). Its descriptor
    /// is still read each pass, to notice its exit: the pid may then name another process.
    excluded: bool,
    /// The most the policy can raise its score, in pages of the system T.
    raise: i64,
}

/// What a pass found.
#[derive(Debug, Default)]
pub struct Pass {
    /// The finalists, fully read: every process whose score could be among the best `want`.
    pub processes: Vec<ProcessSnapshot>,
    /// Processes listed in /proc.
    pub listed: usize,
    /// Processes read in full this pass (new ones, refreshed ones, finalists).
    pub full_reads: usize,
}

/// The table; one per daemon, kept across passes.
#[derive(Debug)]
pub struct ProcessTable {
    entries: HashMap<i32, Entry>,
    fd_budget: usize,
    fds_open: usize,
    pass: u64,
    pids: Vec<i32>,
    bounds: Vec<(i64, i32)>,
    buf: Vec<u8>,
    /// Where in the pid list the next refresh starts.
    refresh_at: usize,
    /// `/proc/loadavg`, whose last field is the last pid allocated.
    loadavg: Option<KeptFile>,
    /// That pid at the last listing of /proc, the pass it was made in, and whether the listing
    /// before it saw the same pid (a task whose pid was just allocated may not be in /proc yet:
    /// only a second listing at the same pid is trusted to hold every process).
    listed_at: Option<(i32, u64, bool)>,
}

/// What a pass judges processes with: the host it reads, the policy, the scope's T, and
/// whether command lines are read.
struct Judging<'a> {
    host: &'a Host,
    policy: &'a Policy,
    totals: Totals,
    cmdline: bool,
}

impl ProcessTable {
    /// An empty table that keeps at most `fd_budget` descriptors open.
    pub fn new(fd_budget: usize) -> Self {
        ProcessTable {
            entries: HashMap::new(),
            fd_budget,
            fds_open: 0,
            pass: 0,
            pids: Vec::new(),
            bounds: Vec::new(),
            buf: vec![0; 32],
            refresh_at: 0,
            loadavg: None,
            listed_at: None,
        }
    }

    /// Whether the pid list of the last pass may be missing a process: a pid was allocated
    /// since (or it cannot be told), or the last listing is [`LIST_AT_LEAST_EVERY`] passes old.
    fn must_list(&mut self, host: &Host) -> Option<i32> {
        if self.loadavg.is_none() {
            let own_pid_ns = std::fs::read_link(host.path("/proc/self"))
                .ok()
                .and_then(|p| p.to_str()?.parse::<u32>().ok())
                == Some(std::process::id());
            if !own_pid_ns {
                return Some(-1);
            }
        }
        let file = self
            .loadavg
            .get_or_insert_with(|| KeptFile::new(host.path("/proc/loadavg")));
        let last_pid = file
            .read()
            .ok()
            .and_then(|t| t.split_ascii_whitespace().last()?.parse::<i32>().ok());
        match (last_pid, self.listed_at) {
            (Some(now), Some((then, pass, true)))
                if now == then && self.pass - pass < LIST_AT_LEAST_EVERY =>
            {
                None
            }
            _ => Some(last_pid.unwrap_or(-1)),
        }
    }

    /// Descriptors held open now.
    pub fn fds_open(&self) -> usize {
        self.fds_open
    }

    /// One pass over every process: the full snapshots of the processes that can rank among
    /// the best `want` (eligible or not, for the caller's own ranking), with T = `totals`.
    /// `cmdline` as for [`read_process_with`].
    pub fn pass(
        &mut self,
        host: &Host,
        policy: &Policy,
        totals: Totals,
        want: usize,
        cmdline: bool,
    ) -> Result<Pass, ProbeError> {
        self.pass += 1;
        let mut out = Pass::default();
        let mut pids = std::mem::take(&mut self.pids);
        if let Some(last_pid) = self.must_list(host) {
            // Read before the listing: a pid allocated during it makes the next pass list.
            if let Err(e) = super::process::list_pids_into(host, &mut pids) {
                // A partial list: the next pass lists again.
                self.listed_at = None;
                self.pids = pids;
                return Err(e);
            }
            let confirmed = self.listed_at.is_some_and(|(pid, ..)| pid == last_pid);
            self.listed_at = (last_pid >= 0).then_some((last_pid, self.pass, confirmed));
        }
        out.listed = pids.len();
        self.bounds.clear();
        let refresh = pids.len().div_ceil(REFRESH_ONE_IN);
        let from = if self.refresh_at >= pids.len() {
            0
        } else {
            self.refresh_at
        };
        self.refresh_at = from + refresh;
        let by = Judging {
            host,
            policy,
            totals,
            cmdline,
        };
        for (i, &pid) in pids.iter().enumerate() {
            let stale = (from..from + refresh).contains(&i);
            if let Some(bound) = self.bound(&by, pid, stale, &mut out) {
                self.bounds.push((bound, pid));
            }
        }
        // Forget the processes that are gone (closing their descriptors); until the next
        // listing the pid list is what is left of this one.
        pids.retain(|p| self.entries.get(p).is_some_and(|e| e.seen == self.pass));
        self.pids = pids;
        let pass = self.pass;
        let mut closed = 0;
        self.entries.retain(|_, e| {
            let keep = e.seen == pass;
            if !keep && e.fd.is_some() {
                closed += 1;
            }
            keep
        });
        self.fds_open -= closed;

        // Exact scores, best bound first, until no bound can beat the `want`-th best.
        self.bounds.sort_unstable_by(|a, b| b.cmp(a));
        let mut best: Vec<i64> = Vec::with_capacity(want + 1);
        let slack = quantum(totals.system);
        for &(bound, pid) in &self.bounds {
            // Past the `want`-th exact score, a process whose bound is within one oom_score
            // quantum of it could beat it by less than that quantum: not worth a full read.
            if best.len() >= want
                && best
                    .last()
                    .is_some_and(|&floor| bound <= floor.saturating_add(slack))
            {
                break;
            }
            // Gone, or unreadable now: the others still decide the pass.
            let Ok(Some((snap, _))) = read_process_with(host, pid, cmdline) else {
                continue;
            };
            out.full_reads += 1;
            let c = score(&snap, policy, totals);
            if let Some(s) = c.rank_score {
                let at = best.partition_point(|&b| b >= s);
                best.insert(at, s);
                best.truncate(want);
            }
            out.processes.push(snap);
        }
        Ok(out)
    }

    /// The upper bound of `pid`'s rank score, or `None` when it cannot be a candidate (or is
    /// gone). Reads its facts in full when it is new or its verdict is old.
    fn bound(&mut self, by: &Judging, pid: i32, refresh: bool, out: &mut Pass) -> Option<i64> {
        let (host, totals) = (by.host, by.totals);
        // A second try when the first finds the process it knew gone: the pid is listed, so it
        // names a new process now, to be judged at once rather than missed for a pass.
        for first_try in [true, false] {
            let entry = self.entries.get(&pid);
            let unknown = entry.is_none();
            // An excluded process without a kept descriptor cannot be told from a new process
            // under its pid but by reading it again.
            let refresh = entry.is_some_and(|e| {
                (first_try && refresh && !e.excluded) || (e.excluded && e.fd.is_none())
            });
            if (unknown || refresh) && !self.judge(by, pid, out) {
                return None;
            }
            let e = self.entries.get_mut(&pid)?;
            e.seen = self.pass;
            let score = match &e.fd {
                Some(fd) => read_score(fd, &mut self.buf),
                None if e.excluded => return None,
                None => std::fs::read(host.path(&format!("/proc/{pid}/oom_score")))
                    .ok()
                    .and_then(|t| parse_score(&t)),
            };
            match score {
                Some(_) if e.excluded => return None,
                Some(score) => {
                    return Some(
                        oom_badness_upper_bound(score, totals.system).saturating_add(e.raise),
                    );
                }
                // Judged just now, yet its score does not read: let the final phase read it in
                // full rather than guess it low.
                None if !first_try || unknown => return (!e.excluded).then_some(i64::MAX),
                // Exited (ESRCH through the kept descriptor): forget it and try the pid once
                // more as a new process.
                None => self.forget(pid),
            }
        }
        None
    }

    /// Gives descriptors back to the rest of the process (called when an open failed for want
    /// of descriptors): halves the budget and closes what is held beyond it. Those processes'
    /// scores are then opened and read by path each pass.
    pub fn give_back_fds(&mut self) {
        if self.fds_open == 0 {
            return;
        }
        self.fd_budget = self.fds_open / 2;
        let mut over = self.fds_open.saturating_sub(self.fd_budget);
        for e in self.entries.values_mut() {
            if over == 0 {
                break;
            }
            if !e.excluded && e.fd.take().is_some() {
                over -= 1;
                self.fds_open -= 1;
            }
        }
    }

    /// Drops `pid`'s entry, closing its descriptor.
    fn forget(&mut self, pid: i32) {
        if let Some(e) = self.entries.remove(&pid)
            && e.fd.is_some()
        {
            self.fds_open -= 1;
        }
    }

    /// Reads `pid` in full and records what the policy may add; false when it is gone or
    /// unreadable.
    fn judge(&mut self, by: &Judging, pid: i32, out: &mut Pass) -> bool {
        let (host, policy, totals) = (by.host, by.policy, by.totals);
        let snap = match read_process_with(host, pid, by.cmdline) {
            Ok(Some((snap, _))) => snap,
            failed => {
                if failed.is_err() {
                    // There but unreadable now (out of descriptors, say): it leaves the pid
                    // list, so the next pass must list /proc again to find it.
                    self.listed_at = None;
                }
                self.forget(pid);
                return false;
            }
        };
        out.full_reads += 1;
        let c = score(&snap, policy, totals);
        // Protected and unkillable processes keep their place: the policy or adj that makes them
        // so can change, and their own full read in the final phase decides.
        let excluded = snap.is_kernel_thread() || !snap.has_mm || snap.pid <= 1;
        // The policy's shift of the adj, in pages of the system T (never below 0 for a bound).
        let step = i64::try_from(totals.system / 1000).unwrap_or(i64::MAX);
        // The policy's own shift, not the clamped difference it makes now: the adj it is added
        // to can change without a new full read, and oom_score follows the adj at once.
        let raise = i64::from(c.verdict.adjust.max(0)).saturating_mul(step);
        let entry = self.entries.entry(pid).or_insert(Entry {
            fd: None,
            seen: self.pass,
            excluded,
            raise,
        });
        entry.excluded = excluded;
        entry.raise = raise;
        if entry.fd.is_none() && self.fds_open < self.fd_budget {
            let path = host.path(&format!("/proc/{pid}/oom_score"));
            match std::fs::File::open(path) {
                Ok(f) => {
                    entry.fd = Some(OwnedFd::from(f));
                    self.fds_open += 1;
                }
                Err(e) if crate::sys::is_out_of_fds(&e) => {
                    self.give_back_fds();
                }
                Err(_) => {}
            }
        }
        true
    }
}

/// How far apart two processes' badness can be while the kernel shows them the same oom_score
/// (or neighbouring ones), in pages: about 1.5·T/1000, taken twice. Among processes closer
/// than this the pass may choose a different one than the kernel would; Debian's earlyoom,
/// which ranks by oom_score alone, has the same resolution.
fn quantum(totalpages: u64) -> i64 {
    i64::try_from(2 * (totalpages / 1000 + 1)).unwrap_or(i64::MAX)
}

/// Reads `oom_score` from offset 0 through a kept descriptor, into a reused buffer.
fn read_score(fd: &OwnedFd, buf: &mut [u8]) -> Option<i64> {
    let n = crate::sys::read_from_start(fd, buf).ok()?;
    parse_score(&buf[..n])
}

/// `oom_score` text → number.
fn parse_score(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_and_garbage_does_not() {
        assert_eq!(parse_score(b"666\n"), Some(666));
        assert_eq!(parse_score(b""), None);
        assert_eq!(parse_score(b"x\n"), None);
    }
}
