//! What one decision about a domain is made of: the moment the round acts in (why it woke, its
//! observation and figures), its candidates lined up, where a candidate lies, and the candidate
//! chosen.
//! Plain values that the choice, the warning, its decision line and its kill record share;
//! this module imports none of theirs.

use std::time::{Duration, Instant};

use crate::config::KillUnit;
use crate::decide::domain::ScopeId;
use crate::decide::episode::{Observation, Reason};
use crate::decide::gain::Prospect;
use crate::events::Source;
use crate::probe::process::Scan;
use crate::rank::{Candidate, Totals};

/// Why the loop woke up, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The adaptive timer.
    Timer,
    /// A signal (reload).
    Signal,
    /// A kernel event: its source and the id it was armed with.
    Event(Source, u64),
}

impl Wake {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Wake::Timer => "timer",
            Wake::Signal => "signal",
            Wake::Event(s, _) => s.as_str(),
        }
    }
}

/// What the round knows about a domain when it acts on it.
pub(super) struct Moment<'a> {
    pub obs: &'a Observation,
    pub fig: &'a Figures,
    pub wake: Wake,
    pub now: Instant,
}

/// The domain's figures this round, for the choice and the reports.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Figures {
    /// The limit that binds (MemTotal for the system), bytes.
    pub limit: u64,
    /// Kernel T for ranking within the domain, pages.
    pub totalpages: u64,
    /// The machine's T, pages.
    pub system_totalpages: u64,
    /// Bytes to gain to leave the level.
    pub need: u64,
    /// Observed fill rate, bytes per second (the fastest member's).
    pub fill_rate: f64,
    /// What the watched members' own working sets add per second, together (cgroups only).
    pub members_fill_rate: Option<f64>,
    /// Shared memory and tmpfs charged to the domain, bytes (cgroups only).
    pub shmem: Option<u64>,
}

impl Figures {
    /// The T's the domain's candidates are ranked with: its own, and the machine's (for
    /// `oom_score`, always comparable to the kernel's).
    pub fn totals(&self) -> Totals {
        Totals {
            scope: self.totalpages,
            system: self.system_totalpages.max(1),
        }
    }
}

/// A domain's candidates as a choice sees them, index for index: ranked with the domain's T,
/// the watched scope that holds each, what choosing each would mean, and each one's near-equal
/// forked child among them. The kill and the warning line up the same way, so that the
/// warning names whom the kill would stop.
pub(super) struct Lineup<'p> {
    /// The scan they were read from (the ranked candidates borrow its processes).
    pub scan: &'p Scan,
    pub ranked: Vec<Candidate<'p>>,
    pub owners: Vec<Owner>,
    pub prospects: Vec<Prospect>,
    pub children: Vec<Option<usize>>,
}

/// Where a candidate lies: the watched scope that holds it, and how it is killed there.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub scope: ScopeId,
    pub path: Option<String>,
    pub unit: KillUnit,
}

/// The chosen candidate and why.
pub(super) struct Pick<'a, 'p> {
    pub victim: &'a Candidate<'p>,
    pub owner: &'a Owner,
    pub gain: u64,
    pub enough: bool,
    pub reason: Reason,
    /// How long processes of its executable took to exit after SIGTERM before.
    pub expected_exit: Option<Duration>,
    /// What the projection leaves after the last safe moment for a SIGKILL.
    pub room: Option<Duration>,
    /// The parent it was chosen instead of (a near-equal forked child goes first).
    pub instead_of: Option<i32>,
}
