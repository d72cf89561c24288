//! Prometheus metrics: what the daemon measured and did, as numbers a monitoring system can
//! graph and alert on: served over HTTP by a thread of its own ([`Server`]) and/or
//! written to a file for node_exporter's textfile collector ([`write_file`], rewritten on a
//! thread of its own by [`FileWriter`]).
//!
//! Names follow node_exporter's conventions: an `oomward_` prefix, base units (bytes, seconds),
//! `_total` on counters, an `oomward_build_info` gauge, and no pid labels (a pid is a new series
//! per kill). Every label takes its values from a bounded set: the watched scopes (plus a few
//! retired ones that still hold counts, see [`Metrics::retain_scopes`]), and words from fixed
//! sets in the daemon's code (signal, reason, source, hook, outcome).
//!
//! The exposition is written here, in the classic text format (version 0.0.4), rather than
//! through a client crate: the format is a few lines of HELP, TYPE and samples whose only subtle
//! part is label escaping; `promtool check metrics` and the textfile collector read it as it is,
//! where the maintained `prometheus-client` crate writes OpenMetrics; and what this daemon needs
//! around any registry (updates from a real-time loop that never wait on a scrape, retired
//! cgroups dropped, one reused buffer per reader) would have to be built beside it anyway.
//!
//! Updates lock a mutex for a map look-up and an add; the histograms are atomics and take no
//! lock. [`Metrics::render`] takes the lock once per metric family, never for a whole scrape,
//! so the loop waits at most for the formatting of one family.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The media type of the classic text format, as Prometheus expects it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of a loop round, in seconds: an idle round reads a few kept-open files (tens
/// of microseconds); one that ranks and signals takes milliseconds; a second is a stall.
const ROUND_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Bucket bounds of a ranking pass, in seconds: it reads every process of a scope, from about
/// a millisecond for a small cgroup to seconds for a host with tens of thousands of processes.
const RANKING_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
];

/// How many scopes that are no longer watched keep their counters. A glob over container
/// cgroups sees new names all day; without a bound each would stay a series for ever.
const RETIRED_SCOPES: usize = 64;

/// How many distinct label sets one counter of fixed words may hold before new ones are
/// counted as `other`: the words come from the daemon's code, so this only guards against a
/// caller passing something unbounded by mistake.
const TALLY_MAX: usize = 32;

/// What one full sample of a scope showed, as [`Metrics::scope`] records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScopeFigures {
    /// Memory still available to the scope.
    pub available_bytes: u64,
    /// The limit that binds the scope (MemTotal for the system).
    pub limit_bytes: u64,
    /// The warn threshold in bytes of available, when one is set.
    pub warn_bytes: Option<u64>,
    /// The SIGTERM threshold in bytes of available.
    pub term_bytes: u64,
    /// The SIGKILL threshold in bytes of available.
    pub kill_bytes: u64,
    /// 0 ok, 1 warn, 2 term, 3 kill.
    pub level: u8,
    /// How fast available memory is shrinking (negative: growing).
    pub fill_rate_bytes_per_second: f64,
    /// Projected time to exhaustion; `None` when the scope is not filling.
    pub eta_seconds: Option<f64>,
}

/// The daemon's metrics, updated by the loop and rendered by the server thread or the file
/// writer: `Send + Sync`, shared in an `Arc`.
pub struct Metrics {
    version: String,
    state: Mutex<State>,
    round: Histogram,
    ranking: Histogram,
}

/// Everything behind the lock.
#[derive(Default)]
struct State {
    /// By scope name, in order, so that the exposition is stable from scrape to scrape.
    scopes: BTreeMap<String, ScopeState>,
    /// Kernel OOM kills seen, by domain.
    kernel: BTreeMap<String, DomainState>,
    wakeups: Tally<1>,
    hooks: Tally<2>,
    notifications: Tally<1>,
    /// Kills of processes of Kubernetes pods, by namespace, pod and QoS class (at most
    /// [`TALLY_MAX`] label sets; pods come and go, so later ones count as `other`).
    pod_kills: Tally<3>,
    /// Counts updates: the age of a scope's last update, for evicting retired scopes.
    clock: u64,
}

#[derive(Default)]
struct ScopeState {
    /// The gauges; `None` before the first full sample and once the scope is not watched.
    figures: Option<ScopeFigures>,
    watched: bool,
    touched: u64,
    kills: Tally<2>,
    last_kill: Option<f64>,
    escalations: u64,
    futile: u64,
    rescues: u64,
    warnings: u64,
}

impl ScopeState {
    fn has_counts(&self) -> bool {
        !self.kills.is_empty()
            || self.escalations + self.futile + self.rescues + self.warnings > 0
            || self.last_kill.is_some()
    }
}

#[derive(Default)]
struct DomainState {
    kills: u64,
    watched: bool,
    touched: u64,
}

/// Counts by a fixed number of label values, looked up by comparison (the sets are a handful
/// long), so that counting a label set seen before allocates nothing.
struct Tally<const K: usize> {
    entries: Vec<([String; K], u64)>,
}

impl<const K: usize> Default for Tally<K> {
    fn default() -> Self {
        Tally {
            entries: Vec::new(),
        }
    }
}

impl<const K: usize> Tally<K> {
    fn add(&mut self, labels: [&str; K], n: u64) {
        let labels = if self.entries.len() >= TALLY_MAX && self.count(labels).is_none() {
            ["other"; K]
        } else {
            labels
        };
        match self.entries.iter_mut().find(|(have, _)| *have == labels) {
            Some((_, count)) => *count += n,
            None => self.entries.push((labels.map(str::to_owned), n)),
        }
    }

    /// The count of one label set, if it was counted.
    fn count(&self, labels: [&str; K]) -> Option<u64> {
        let found = self.entries.iter().find(|(have, _)| *have == labels);
        found.map(|(_, n)| *n)
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A histogram of seconds on atomics: the loop records a round without taking the lock.
struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, and a last one for values above every bound (not cumulative).
    counts: Box<[AtomicU64]>,
    /// The sum in nanoseconds: integer, so that it adds atomically and exactly.
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, seconds: f64) {
        // A clock that went backwards, or NaN, counts as zero rather than as a huge value.
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else if seconds > 0.0 {
            f64::MAX
        } else {
            0.0
        };
        let bucket = self.bounds.partition_point(|&b| b < seconds);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // `as` saturates: a value past 584 years adds u64::MAX nanoseconds.
        let nanos = (seconds * 1e9).round() as u64;
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let _ = write!(out, "{name}_bucket{{le=\"");
            match self.bounds.get(i) {
                Some(&bound) => {
                    let _ = write!(out, "{}", Value::Float(bound));
                }
                None => out.push_str("+Inf"),
            }
            let _ = writeln!(out, "\"}} {cumulative}");
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {}", Value::Float(sum));
        // The count is the +Inf bucket as read above, so that the two always agree.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

impl Metrics {
    /// Empty metrics; `version` goes into `oomward_build_info`.
    pub fn new(version: &str) -> Metrics {
        Metrics {
            version: version.to_owned(),
            state: Mutex::new(State::default()),
            round: Histogram::new(ROUND_BUCKETS),
            ranking: Histogram::new(RANKING_BUCKETS),
        }
    }

    /// The lock; a panic elsewhere while holding it leaves plain numbers, still worth serving.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a scope's entry, made on first use (the only allocation).
    fn with_scope(&self, scope: &str, f: impl FnOnce(&mut ScopeState)) {
        let mut state = self.lock();
        state.clock += 1;
        let clock = state.clock;
        let entry = match state.scopes.get_mut(scope) {
            Some(entry) => entry,
            None => state.scopes.entry(scope.to_owned()).or_default(),
        };
        entry.touched = clock;
        f(entry);
    }

    /// Records a full sample of `scope` ("system" or a cgroup path).
    pub fn scope(&self, scope: &str, figures: &ScopeFigures) {
        self.with_scope(scope, |s| {
            s.figures = Some(*figures);
            s.watched = true;
        });
    }

    /// Drops the gauges of every scope `keep` refuses (no longer watched). Their counters stay,
    /// so a rate over a window that saw the kills still sees them, but only for the
    /// [`RETIRED_SCOPES`] most recently updated; a retired scope that counted nothing goes at
    /// once. Kernel OOM kills by domain are kept by the same rule, a domain being named by the
    /// scope whose limit binds it.
    pub fn retain_scopes(&self, keep: &dyn Fn(&str) -> bool) {
        let mut state = self.lock();
        for (name, s) in state.scopes.iter_mut() {
            s.watched = keep(name);
            if !s.watched {
                s.figures = None;
            }
        }
        state.scopes.retain(|_, s| s.watched || s.has_counts());
        keep_recent(&mut state.scopes, |s| (s.watched, s.touched));
        for (name, d) in state.kernel.iter_mut() {
            d.watched = keep(name);
        }
        keep_recent(&mut state.kernel, |d| (d.watched, d.touched));
    }

    /// Counts a signal sent to a process of `scope`, and stamps the scope's last kill.
    pub fn kill(&self, scope: &str, signal: &str, reason: &str, unix_time: f64) {
        self.with_scope(scope, |s| {
            s.kills.add([signal, reason], 1);
            s.last_kill = Some(unix_time);
        });
    }

    /// Counts a SIGTERM escalated to SIGKILL after the grace.
    pub fn escalation(&self, scope: &str) {
        self.with_scope(scope, |s| s.escalations += 1);
    }

    /// Counts a decision not to kill because no kill could relieve the scope.
    pub fn futile(&self, scope: &str) {
        self.with_scope(scope, |s| s.futile += 1);
    }

    /// Adds `n` kills by the kernel's OOM killer seen in `domain`.
    pub fn kernel_oom_kills(&self, domain: &str, n: u64) {
        let mut state = self.lock();
        state.clock += 1;
        let clock = state.clock;
        let entry = match state.kernel.get_mut(domain) {
            Some(entry) => entry,
            None => state
                .kernel
                .entry(domain.to_owned())
                .or_insert(DomainState {
                    watched: true,
                    ..DomainState::default()
                }),
        };
        entry.kills += n;
        entry.touched = clock;
    }

    /// Counts the kernel's OOM kills in `domain` from its count read `before` and `now`: from
    /// the first reading on the domain is listed (at 0 until the kernel kills there).
    pub fn kernel_oom_kills_seen(&self, domain: &str, before: Option<u64>, now: Option<u64>) {
        match (before, now) {
            (None, Some(_)) => self.kernel_oom_kills(domain, 0),
            (Some(b), Some(n)) if n > b => self.kernel_oom_kills(domain, n - b),
            _ => {}
        }
    }

    /// Counts a rescue in `scope`.
    pub fn rescue(&self, scope: &str) {
        self.with_scope(scope, |s| s.rescues += 1);
    }

    /// Counts a warn-level warning sent for `scope`.
    pub fn warning(&self, scope: &str) {
        self.with_scope(scope, |s| s.warnings += 1);
    }

    /// Counts a wake-up of the loop by `source` (timer, signal, a kernel event source).
    pub fn wakeup(&self, source: &str) {
        self.lock().wakeups.add([source], 1);
    }

    /// Records how long a loop round took.
    pub fn round_seconds(&self, seconds: f64) {
        self.round.observe(seconds);
    }

    /// Records how long a ranking pass took.
    pub fn ranking_seconds(&self, seconds: f64) {
        self.ranking.observe(seconds);
    }

    /// Counts a run of `hook` (pre_kill, post_kill, warn) that ended in `outcome` (ok, failed,
    /// timeout, skipped).
    pub fn hook(&self, hook: &str, outcome: &str) {
        self.lock().hooks.add([hook, outcome], 1);
    }

    /// Counts a kill of a process of a Kubernetes pod.
    pub fn pod_kill(&self, namespace: &str, pod: &str, qos: &str) {
        self.lock().pod_kills.add([namespace, pod, qos], 1);
    }

    /// Counts a desktop or other notification that ended in `outcome` (sent, failed).
    pub fn notification(&self, outcome: &str) {
        self.lock().notifications.add([outcome], 1);
    }

    /// Clears `out` and writes the whole exposition into it. Every counter of a watched scope
    /// is there from its first sample, at 0 until it counts (each signal with each reason it
    /// can be sent for): a series that appears only at its first increment is one that
    /// `increase()` never sees rise, and the first kill of a scope went unseen.
    pub fn render(&self, out: &mut String) {
        out.clear();
        family(
            out,
            "oomward_build_info",
            "gauge",
            "Always 1; the version of the running daemon is its label.",
            |out| sample(out, "oomward_build_info", &[("version", &self.version)], 1),
        );
        self.gauges(out);
        self.counters(out);
        family(
            out,
            "oomward_round_duration_seconds",
            "histogram",
            "Time one round of the loop took.",
            |out| self.round.render(out, "oomward_round_duration_seconds"),
        );
        family(
            out,
            "oomward_ranking_duration_seconds",
            "histogram",
            "Time one ranking of a scope's processes took.",
            |out| self.ranking.render(out, "oomward_ranking_duration_seconds"),
        );
    }

    /// The per-scope gauges, one lock per family.
    fn gauges(&self, out: &mut String) {
        type Pick = fn(&ScopeFigures) -> Option<Value>;
        #[rustfmt::skip]
        let simple: [(&str, &str, Pick); 5] = [
            ("oomward_available_bytes", "Memory still available to the scope.", |f| Some(Value::Int(f.available_bytes))),
            ("oomward_limit_bytes", "The memory limit that binds the scope (MemTotal for the system).", |f| Some(Value::Int(f.limit_bytes))),
            ("oomward_level", "Pressure level of the scope: 0 ok, 1 warn, 2 term, 3 kill.", |f| Some(Value::Int(u64::from(f.level)))),
            ("oomward_fill_rate_bytes_per_second", "How fast available memory is shrinking (negative: growing).", |f| Some(Value::Float(f.fill_rate_bytes_per_second))),
            ("oomward_exhaustion_eta_seconds", "Projected time until the scope runs out of memory; absent when not filling.", |f| f.eta_seconds.map(Value::Float)),
        ];
        for (name, help, pick) in simple {
            self.scope_family(out, name, "gauge", help, |out, scope, s| {
                if let Some(value) = s.figures.as_ref().and_then(pick) {
                    sample(out, name, &[("scope", scope)], value);
                }
            });
        }
        let name = "oomward_threshold_bytes";
        let help = "Available memory below which the scope enters a level (warn, term, kill).";
        self.scope_family(out, name, "gauge", help, |out, scope, s| {
            let Some(f) = &s.figures else { return };
            let levels = [
                ("warn", f.warn_bytes),
                ("term", Some(f.term_bytes)),
                ("kill", Some(f.kill_bytes)),
            ];
            for (level, bytes) in levels {
                if let Some(bytes) = bytes {
                    sample(out, name, &[("scope", scope), ("level", level)], bytes);
                }
            }
        });
    }

    /// The counters (and the last kill's time), one lock per family.
    fn counters(&self, out: &mut String) {
        self.kills(out);
        let name = "oomward_last_kill_timestamp_seconds";
        let help = "Unix time of the last signal sent to end a process in the scope.";
        self.scope_family(out, name, "gauge", help, |out, scope, s| {
            if let Some(t) = s.last_kill {
                sample(out, name, &[("scope", scope)], Value::Float(t));
            }
        });
        type Pick = fn(&ScopeState) -> u64;
        #[rustfmt::skip]
        let per_scope: [(&str, &str, Pick); 4] = [
            ("oomward_escalations_total", "SIGTERMs escalated to SIGKILL because the process outlived the grace.", |s| s.escalations),
            ("oomward_futile_decisions_total", "Decisions not to kill because no kill could relieve the scope.", |s| s.futile),
            ("oomward_rescues_total", "Rescues performed in the scope.", |s| s.rescues),
            ("oomward_warnings_total", "Warn-level warnings sent for the scope.", |s| s.warnings),
        ];
        for (name, help, pick) in per_scope {
            self.scope_family(out, name, "counter", help, |out, scope, s| {
                // A watched scope counts from 0; a retired one only while it has a count.
                let n = pick(s);
                if n > 0 || s.watched {
                    sample(out, name, &[("scope", scope)], n);
                }
            });
        }
        self.event_counters(out);
    }

    /// Signals sent by scope, signal and reason. A watched scope lists every signal with
    /// every reason it can be sent for, at 0 until it counts; a retired one what it counted.
    fn kills(&self, out: &mut String) {
        let name = "oomward_kills_total";
        let help = "Signals sent to end a process, by scope, signal and reason.";
        let known = crate::decide::episode::Reason::ALL.map(|r| (r.signal().name(), r.as_str()));
        self.scope_family(out, name, "counter", help, |out, scope, s| {
            let zeros = known.iter().filter(|_| s.watched);
            let others = s
                .kills
                .entries
                .iter()
                .map(|([g, r], _)| (g.as_str(), r.as_str()))
                .filter(|k| !s.watched || !known.contains(k));
            for (signal, reason) in zeros.copied().chain(others) {
                let labels = [("scope", scope), ("signal", signal), ("reason", reason)];
                sample(
                    out,
                    name,
                    &labels,
                    s.kills.count([signal, reason]).unwrap_or(0),
                );
            }
        });
    }

    /// The counters of what happened outside any one scope: the kernel's OOM kills by domain,
    /// then the tallies of fixed words.
    #[rustfmt::skip]
    fn event_counters(&self, out: &mut String) {
        {
            let state = self.lock();
            let name = "oomward_kernel_oom_kills_total";
            let help = "Kills by the kernel's own OOM killer seen, by OOM domain.";
            family(out, name, "counter", help, |out| {
                for (domain, d) in &state.kernel {
                    sample(out, name, &[("domain", domain)], d.kills);
                }
            });
        }
        self.tally(out, "oomward_wakeups_total", "Wake-ups of the loop, by what woke it.", ["source"], |s| &s.wakeups);
        self.tally(out, "oomward_hook_runs_total", "Hook runs, by hook and outcome.", ["hook", "outcome"], |s| &s.hooks);
        self.tally(out, "oomward_notifications_total", "Notifications, by outcome.", ["outcome"], |s| &s.notifications);
        self.tally(out, "oomward_pod_kills_total", "Kills of processes of Kubernetes pods, by namespace, pod and QoS class.", ["namespace", "pod", "qos"], |s| &s.pod_kills);
    }

    /// Writes family `name` under one lock, `each` writing the samples of every scope in turn.
    fn scope_family(
        &self,
        out: &mut String,
        name: &str,
        kind: &str,
        help: &str,
        each: impl Fn(&mut String, &str, &ScopeState),
    ) {
        let state = self.lock();
        family(out, name, kind, help, |out| {
            for (scope, s) in &state.scopes {
                each(out, scope, s);
            }
        });
    }

    /// Writes counter family `name` of the tally `pick` chooses under one lock, a sample per
    /// label set counted, its values under `keys`. A tally that counted nothing has no family.
    fn tally<const K: usize>(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        keys: [&str; K],
        pick: fn(&State) -> &Tally<K>,
    ) {
        let state = self.lock();
        family(out, name, "counter", help, |out| {
            for (values, n) in &pick(&state).entries {
                let labels: [(&str, &str); K] = std::array::from_fn(|i| (keys[i], &*values[i]));
                sample(out, name, &labels, *n);
            }
        });
    }
}

/// Of `map`'s retired entries (no longer watched), keeps only the [`RETIRED_SCOPES`] most
/// recently touched; `of` gives an entry's watched flag and touch stamp. Scopes and the kernel's
/// kill counts by domain retire by this one rule.
fn keep_recent<V>(map: &mut BTreeMap<String, V>, of: impl Fn(&V) -> (bool, u64)) {
    let mut retired: Vec<u64> = map
        .values()
        .map(&of)
        .filter(|(watched, _)| !watched)
        .map(|(_, touched)| touched)
        .collect();
    if retired.len() <= RETIRED_SCOPES {
        return;
    }
    retired.sort_unstable();
    let cut = retired[retired.len() - RETIRED_SCOPES];
    map.retain(|_, v| {
        let (watched, touched) = of(v);
        watched || touched >= cut
    });
}

/// A sample's value: counts as integers, everything else as a float.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl fmt::Display for Value {
    /// The text format's spelling: `+Inf`, `-Inf` and `NaN` as Go parses them, and no exponent
    /// (Rust's `Display` never writes one).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) if x.is_nan() => f.write_str("NaN"),
            Value::Float(x) if x == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(x) if x == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Writes a family's HELP and TYPE lines, then its samples; takes the header back out when
/// `samples` wrote none.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl FnOnce(&mut String)) {
    let start = out.len();
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    let header_end = out.len();
    samples(out);
    if out.len() == header_end {
        out.truncate(start);
    }
}

/// Writes one sample line.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", value.into());
}

/// Appends `value` with the three escapes the text format defines for label values (backslash,
/// double quote, newline): scope names are cgroup names, which their creators choose.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub use super::http::Server;

/// Writes the exposition to `path` so that a reader sees the old file or the new one, never
/// part of one: into `.NAME.tmp` beside it (a name the textfile collector skips, as it reads
/// only `*.prom`), flushed to disk, then renamed over `path`. Mode 0644, whatever the umask:
/// node_exporter runs as another user. `buf` is the caller's, reused from one write to the next.
pub fn write_file(path: &Path, metrics: &Metrics, buf: &mut String) -> io::Result<()> {
    metrics.render(buf);
    super::statefile::replace(path, buf.as_bytes(), 0o644)
}

/// Rewrites the metrics file every `interval` on a thread of its own, so that the loop never
/// waits on a disk (`fdatasync` on a busy one takes seconds). Dropping it stops the thread,
/// after the write in progress if any.
pub struct FileWriter {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FileWriter {
    /// Writes the file at once, then every `interval`; `on_error` hears of each failed write
    /// (the daemon logs it), and the next write is tried all the same.
    pub fn start(
        path: PathBuf,
        interval: Duration,
        metrics: Arc<Metrics>,
        mut on_error: Box<dyn FnMut(&io::Error) + Send>,
    ) -> io::Result<FileWriter> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = crate::sys::spawn_helper("metrics-file", move || {
            let mut buf = String::new();
            loop {
                if let Err(e) = write_file(&path, &metrics, &mut buf) {
                    on_error(&e);
                }
                match stopped.recv_timeout(interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        })?;
        Ok(FileWriter {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn figures(available: u64) -> ScopeFigures {
        ScopeFigures {
            available_bytes: available,
            limit_bytes: 256 << 20,
            warn_bytes: Some(64 << 20),
            term_bytes: 25 << 20,
            kill_bytes: 12 << 20,
            level: 1,
            fill_rate_bytes_per_second: 1.5e6,
            eta_seconds: Some(40.25),
        }
    }

    fn rendered(m: &Metrics) -> String {
        let mut out = String::new();
        m.render(&mut out);
        out
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn empty_metrics_hold_build_info_and_the_histograms_only() {
        let text = rendered(&Metrics::new("1.2.3"));
        assert!(has_line(&text, "# TYPE oomward_build_info gauge"), "{text}");
        assert!(has_line(&text, "oomward_build_info{version=\"1.2.3\"} 1"));
        assert!(!text.contains("oomward_kills_total"), "{text}");
        assert!(!text.contains("oomward_available_bytes"), "{text}");
        assert!(has_line(&text, "oomward_round_duration_seconds_count 0"));
        assert!(has_line(
            &text,
            r#"oomward_round_duration_seconds_bucket{le="+Inf"} 0"#
        ));
    }

    #[test]
    fn a_scope_has_its_gauges_and_thresholds() {
        let m = Metrics::new("x");
        m.scope("/app", &figures(100 << 20));
        let text = rendered(&m);
        for line in [
            "# TYPE oomward_available_bytes gauge",
            "oomward_available_bytes{scope=\"/app\"} 104857600",
            "oomward_limit_bytes{scope=\"/app\"} 268435456",
            "oomward_level{scope=\"/app\"} 1",
            "oomward_fill_rate_bytes_per_second{scope=\"/app\"} 1500000",
            "oomward_exhaustion_eta_seconds{scope=\"/app\"} 40.25",
            "oomward_threshold_bytes{scope=\"/app\",level=\"warn\"} 67108864",
            "oomward_threshold_bytes{scope=\"/app\",level=\"term\"} 26214400",
            "oomward_threshold_bytes{scope=\"/app\",level=\"kill\"} 12582912",
        ] {
            assert!(has_line(&text, line), "no {line:?} in\n{text}");
        }
        // No warn threshold, not filling: those samples are absent, not zero.
        let quiet = ScopeFigures {
            warn_bytes: None,
            eta_seconds: None,
            ..figures(1)
        };
        m.scope("/app", &quiet);
        let text = rendered(&m);
        assert!(!text.contains("level=\"warn\""), "{text}");
        assert!(!text.contains("oomward_exhaustion_eta_seconds"), "{text}");
    }

    #[test]
    fn kills_count_by_scope_signal_and_reason_and_stamp_the_last_kill() {
        let m = Metrics::new("x");
        m.kill("/app", "SIGTERM", "term", 1_700_000_000.5);
        m.kill("/app", "SIGTERM", "term", 1_700_000_001.5);
        m.kill("/app", "SIGKILL", "eta", 1_700_000_002.0);
        m.kill("system", "SIGKILL", "kill", 1_700_000_003.0);
        m.escalation("/app");
        m.futile("system");
        m.rescue("/app");
        m.warning("/app");
        m.kernel_oom_kills("/app", 3);
        m.kernel_oom_kills("/app", 2);
        let text = rendered(&m);
        for line in [
            "# TYPE oomward_kills_total counter",
            "oomward_kills_total{scope=\"/app\",signal=\"SIGTERM\",reason=\"term\"} 2",
            "oomward_kills_total{scope=\"/app\",signal=\"SIGKILL\",reason=\"eta\"} 1",
            "oomward_kills_total{scope=\"system\",signal=\"SIGKILL\",reason=\"kill\"} 1",
            "oomward_last_kill_timestamp_seconds{scope=\"/app\"} 1700000002",
            "oomward_escalations_total{scope=\"/app\"} 1",
            "oomward_futile_decisions_total{scope=\"system\"} 1",
            "oomward_rescues_total{scope=\"/app\"} 1",
            "oomward_warnings_total{scope=\"/app\"} 1",
            "oomward_kernel_oom_kills_total{domain=\"/app\"} 5",
        ] {
            assert!(has_line(&text, line), "no {line:?} in\n{text}");
        }
        // Zeros are not written for every scope.
        assert!(!text.contains("oomward_escalations_total{scope=\"system\"}"));
    }

    #[test]
    fn wakeups_hooks_and_notifications_count_by_their_words() {
        let m = Metrics::new("x");
        for _ in 0..3 {
            m.wakeup("timer");
        }
        m.wakeup("psi");
        m.hook("pre_kill", "ok");
        m.hook("pre_kill", "timeout");
        m.notification("sent");
        m.pod_kill("shop", "web-1", "burstable");
        m.pod_kill("shop", "web-1", "burstable");
        let text = rendered(&m);
        for line in [
            "oomward_pod_kills_total{namespace=\"shop\",pod=\"web-1\",qos=\"burstable\"} 2",
            "oomward_wakeups_total{source=\"timer\"} 3",
            "oomward_wakeups_total{source=\"psi\"} 1",
            "oomward_hook_runs_total{hook=\"pre_kill\",outcome=\"ok\"} 1",
            "oomward_hook_runs_total{hook=\"pre_kill\",outcome=\"timeout\"} 1",
            "oomward_notifications_total{outcome=\"sent\"} 1",
        ] {
            assert!(has_line(&text, line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let m = Metrics::new("x");
        m.scope("/a\\b\"c\nd", &figures(1));
        let text = rendered(&m);
        let escaped = r#"oomward_available_bytes{scope="/a\\b\"c\nd"} 1"#;
        assert!(has_line(&text, escaped), "{text}");
        // Every line is still one sample or one comment.
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("oomward_"),
                "{line:?}"
            );
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_agree_with_count_and_sum() {
        let m = Metrics::new("x");
        for s in [0.00003, 0.0003, 0.0003, 0.02, 2.0] {
            m.round_seconds(s);
        }
        m.ranking_seconds(0.0015);
        m.round_seconds(f64::NAN); // counted as zero
        let text = rendered(&m);
        let n = "oomward_round_duration_seconds";
        for line in [
            format!("# TYPE {n} histogram"),
            format!("{n}_bucket{{le=\"0.00005\"}} 2"),
            format!("{n}_bucket{{le=\"0.0001\"}} 2"),
            format!("{n}_bucket{{le=\"0.0005\"}} 4"),
            format!("{n}_bucket{{le=\"0.025\"}} 5"),
            format!("{n}_bucket{{le=\"1\"}} 5"),
            format!("{n}_bucket{{le=\"+Inf\"}} 6"),
            format!("{n}_count 6"),
            format!("{n}_sum 2.02063"),
            "oomward_ranking_duration_seconds_bucket{le=\"0.001\"} 0".to_string(),
            "oomward_ranking_duration_seconds_bucket{le=\"0.0025\"} 1".to_string(),
            "oomward_ranking_duration_seconds_bucket{le=\"2\"} 1".to_string(),
        ] {
            assert!(has_line(&text, &line), "no {line:?} in\n{text}");
        }
        // Bounds only grow, counts never shrink.
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("oomward_round_duration_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), ROUND_BUCKETS.len() + 1);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }

    #[test]
    fn every_counter_ends_in_total_and_every_sample_follows_its_own_type_line() {
        let m = Metrics::new("x");
        m.scope("system", &figures(5));
        m.kill("system", "SIGKILL", "kill", 1.0);
        m.escalation("system");
        m.futile("system");
        m.rescue("system");
        m.warning("system");
        m.kernel_oom_kills("system", 1);
        m.wakeup("timer");
        m.hook("warn", "ok");
        m.notification("failed");
        m.round_seconds(0.001);
        let text = rendered(&m);
        let mut current: Option<(String, String)> = None;
        let mut families = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(name.starts_with("oomward_"), "{name}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                } else {
                    assert!(!name.ends_with("_total"), "{name}");
                }
                current = Some((name.to_string(), kind.to_string()));
                families += 1;
            } else if line.starts_with("# HELP ") {
                continue;
            } else {
                let (name, kind) = current.as_ref().expect("a sample before any TYPE");
                let sample = line.split(['{', ' ']).next().unwrap();
                let ok = match kind.as_str() {
                    "histogram" => [
                        format!("{name}_bucket"),
                        format!("{name}_sum"),
                        format!("{name}_count"),
                    ]
                    .contains(&sample.to_string()),
                    _ => sample == name,
                };
                assert!(ok, "{sample} under {name} ({kind})");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        assert_eq!(families, 19, "{text}");
        assert!(!text.contains("pid"), "{text}");
    }

    #[test]
    fn retired_scopes_lose_their_gauges_and_keep_their_counters_within_a_bound() {
        let m = Metrics::new("x");
        m.scope("/kept", &figures(1));
        m.scope("/idle", &figures(2));
        m.scope("/killed", &figures(3));
        m.kill("/killed", "SIGTERM", "term", 1.0);
        m.retain_scopes(&|s| s == "/kept");
        let text = rendered(&m);
        assert!(text.contains("oomward_available_bytes{scope=\"/kept\"}"));
        assert!(!text.contains("scope=\"/idle\""), "{text}");
        assert!(!text.contains("oomward_available_bytes{scope=\"/killed\"}"));
        assert!(
            text.contains("oomward_kills_total{scope=\"/killed\""),
            "{text}"
        );

        // Many cgroups come and go, each with a kill: only the most recent stay.
        for i in 0..(RETIRED_SCOPES + 10) {
            m.kill(&format!("/c{i}"), "SIGKILL", "kill", 1.0);
        }
        m.kernel_oom_kills("/gone", 1);
        m.retain_scopes(&|s| s == "/kept");
        let state = m.lock();
        let retired = state.scopes.values().filter(|s| !s.watched).count();
        assert_eq!(retired, RETIRED_SCOPES);
        assert!(state.scopes.contains_key("/kept"));
        assert!(
            !state.scopes.contains_key("/killed"),
            "the oldest went first"
        );
        assert!(!state.scopes.contains_key("/c0"));
        assert!(
            state
                .scopes
                .contains_key(&format!("/c{}", RETIRED_SCOPES + 9))
        );
        assert!(state.kernel.contains_key("/gone"), "within the bound");
    }

    #[test]
    fn a_tally_gone_past_its_bound_counts_new_words_as_other() {
        let m = Metrics::new("x");
        for i in 0..(TALLY_MAX + 5) {
            m.wakeup(&format!("s{i}"));
        }
        m.wakeup("s0");
        let state = m.lock();
        assert_eq!(state.wakeups.entries.len(), TALLY_MAX + 1);
        assert!(state.wakeups.count(["other"]).is_some());
        assert!(state.wakeups.entries.contains(&(["s0".to_string()], 2)));
    }

    #[test]
    fn values_are_spelled_as_the_text_format_wants() {
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(0.00005).to_string(), "0.00005");
        assert_eq!(Value::Float(-2.5).to_string(), "-2.5");
        assert_eq!(Value::Int(u64::MAX).to_string(), "18446744073709551615");
    }

    #[test]
    fn the_file_is_replaced_whole_with_mode_0644_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oomward.prom");
        let m = Metrics::new("x");
        m.kill("system", "SIGKILL", "kill", 1.0);
        // A leftover temp file from a crash does not stop the write.
        std::fs::write(dir.path().join(".oomward.prom.tmp"), "stale").unwrap();
        let mut buf = String::new();
        write_file(&path, &m, &mut buf).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, buf);
        assert!(text.contains("oomward_kills_total"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("oomward.prom")]);
        assert!(write_file(Path::new("/"), &m, &mut buf).is_err());
    }

    #[test]
    fn the_file_writer_rewrites_on_its_interval_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        let m = Arc::new(Metrics::new("x"));
        let writer = FileWriter::start(
            path.clone(),
            Duration::from_millis(20),
            m.clone(),
            Box::new(|e| panic!("{e}")),
        )
        .unwrap();
        m.kill("system", "SIGKILL", "kill", 1.0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&path).is_ok_and(|t| t.contains("oomward_kills_total")) {
            assert!(Instant::now() < deadline, "never rewritten");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(writer);

        let failures = Arc::new(AtomicU64::new(0));
        let count = failures.clone();
        let writer = FileWriter::start(
            dir.path().join("missing/m.prom"),
            Duration::from_millis(5),
            m,
            Box::new(move |_| {
                count.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        while failures.load(Ordering::SeqCst) < 2 {
            assert!(
                Instant::now() < deadline + Duration::from_secs(5),
                "no retry"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(writer);
    }
}
