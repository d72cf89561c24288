//! What the rounds tell people: a kill record made when a victim is chosen, completed as its
//! signals go out and when it is gone, then published (log, kill journal, `post_kill` hook,
//! the status file's last kills); the status file. The warning at a scope's warn level is
//! made in `act`, where it names whom the kill would choose.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::act::hook::{HookKind, HookRunner, Started, Teller};
use crate::config::Config;
use crate::decide::domain::{DomainKey, ProcessKey};
use crate::events::ArmedSet;
use crate::probe::Host;
use crate::probe::process::ProcessSnapshot;
use crate::rank::Candidate;
use crate::report::history::Journal;
use crate::report::kill::{
    CANDIDATES_KEPT, CMDLINE_KEPT, Considered, KillOutcome, KillRecord, RECORD_VERSION, Released,
    SignalSent, Trigger, Victim, rfc3339, unix_now,
};
use crate::report::status::{
    self, DomainStatus, InFlightStatus, KillSummary, ScopeStatus, StatusView,
};
use crate::report::{Line, Logger, Severity};

use super::domains::Domain;
use super::moment::{Lineup, Moment, Pick};
use super::watched::Watched;

/// How many kills the status file lists.
const LAST_KILLS: usize = 10;
/// How long a finished record waits for its domain's next sample (its memory after).
const AFTER_WAIT: Duration = Duration::from_secs(2);
/// The status file is rewritten at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// The reporting state across rounds.
#[derive(Default)]
pub(super) struct Reporting {
    /// The kill journal's writer, and what it was started for.
    pub journal: Option<(Journal, std::path::PathBuf, u64)>,
    /// Hooks running and their outcomes.
    pub hooks: HookRunner,
    /// The last kills, for the status file.
    pub last_kills: VecDeque<KillSummary>,
    /// User names by uid, from the host's /etc/passwd (never NSS: a directory service may hang
    /// while the machine is short of memory).
    pub users: std::collections::HashMap<u32, Option<String>>,
    /// The fingerprint of what the status file last said, and when it was written.
    pub status_said: Option<u64>,
    /// The cgroups' part of `status_said`, while no cgroup moved.
    pub status_cgroups: Option<u64>,
    pub status_at: Option<Instant>,
    /// A failure to write the status file was reported (once).
    pub status_failed: bool,
    /// The status file's writer thread, started with the first view.
    pub status_writer: Option<status::StatusWriter>,
    /// Records completed this round, for the daemon to pass on (notifications).
    pub published: Vec<std::sync::Arc<KillRecord>>,
    /// Warnings sent this round (a record naming the likely victim), likewise.
    pub warnings: Vec<KillRecord>,
    /// The metrics, when something serves or writes them.
    pub metrics: Option<std::sync::Arc<crate::report::metrics::Metrics>>,
    /// Victims signalled since start (dry-run decisions included), for the service status.
    pub victims: u64,
    /// When it started, seconds since the epoch (for the status file).
    pub started_unix: f64,
}

/// Whether `record` is of the victim `key`.
fn is_of(record: &KillRecord, key: ProcessKey) -> bool {
    record.victim.pid == key.pid && record.victim.starttime == key.starttime
}

/// The first candidates of a lineup as a record names them, `victim` marked as the chosen.
fn considered(
    lineup: &Lineup<'_>,
    victim: &Candidate<'_>,
    min_gain: u64,
    page: u64,
) -> Vec<Considered> {
    let chosen = lineup.ranked.iter().position(|c| std::ptr::eq(c, victim));
    lineup
        .ranked
        .iter()
        .zip(&lineup.prospects)
        .enumerate()
        .take(CANDIDATES_KEPT)
        .map(|(i, (c, p))| {
            let q = c.process;
            let not_chosen = if Some(i) == chosen {
                None
            } else if let Some(prot) = c.verdict.protected {
                Some(format!("protected:{prot}"))
            } else if let Some(u) = c.unkillable {
                Some(format!("unkillable:{u:?}").to_lowercase())
            } else if !p.eligible {
                Some("not_eligible".into())
            } else if p.gain < min_gain {
                Some("below_min_gain".into())
            } else {
                Some("ranked_lower".into())
            };
            Considered {
                rank: i + 1,
                pid: q.pid,
                comm: q.comm.clone(),
                uid: q.uid,
                cgroup: q.cgroup.clone(),
                rss_bytes: q.rss_pages.saturating_mul(page),
                swap_bytes: q.swap_pages.saturating_mul(page),
                oom_score_adj: q.oom_score_adj,
                badness: c.badness,
                rank_score: c.rank_score,
                expected_gain: p.gain,
                chosen: Some(i) == chosen,
                not_chosen,
                pod: q.kube.as_ref().map(|k| match (&k.namespace, &k.pod) {
                    (Some(ns), Some(name)) => format!("{ns}/{name}"),
                    _ => k.pod_uid.clone(),
                }),
            }
        })
        .collect()
}

/// What a kill record is made and published with, lent by the round: the running config,
/// the host, the watched scopes (to name them), whether signals go out, and the reporting
/// state the record is told through.
pub(super) struct Report<'a> {
    pub config: &'a Config,
    pub host: &'a Host,
    pub watched: &'a Watched,
    pub dry_run: bool,
    pub reporting: &'a mut Reporting,
}

impl Report<'_> {
    /// The record of a decision, before its signal goes out: the pick, and the first of the
    /// lineup it was picked from, each with what it would have freed.
    pub(super) fn new_record(
        &mut self,
        d: &Domain,
        pick: &Pick<'_, '_>,
        lineup: &Lineup<'_>,
        m: &Moment<'_>,
        min_gain: u64,
    ) -> KillRecord {
        let candidates = considered(lineup, pick.victim, min_gain, self.host.page_size);
        let (obs, fig) = (m.obs, m.fig);
        let c = pick.victim;
        let p = c.process;
        let page = self.host.page_size;
        let time = unix_now();
        KillRecord {
            version: RECORD_VERSION,
            time,
            time_text: rfc3339(time),
            scope: self.watched.scope_name(pick.owner.scope).to_string(),
            domain: d.key.name().to_string(),
            dry_run: self.dry_run,
            reason: pick.reason.into(),
            level: obs.level.into(),
            wake: m.wake.as_str().to_string(),
            trigger: Trigger {
                available: obs.available,
                limit: fig.limit,
                need: fig.need,
                fill_rate: fig.fill_rate as u64,
                eta_ms: obs.eta.map(|e| e.as_millis() as u64),
                psi_some_avg10: None,
                psi_full_avg10: None,
            },
            victim: Victim {
                pid: p.pid,
                starttime: p.starttime,
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                uid: p.uid,
                user: None,
                cgroup: p.cgroup.clone(),
                cmdline: cut(&p.cmdline, CMDLINE_KEPT),
                oom_score_adj: p.oom_score_adj,
                policy_adjust: c.verdict.adjust,
                rss_anon_bytes: p.rss_anon_pages.saturating_mul(page),
                rss_shmem_bytes: p.rss_shmem_pages.saturating_mul(page),
                rss_bytes: c.points.rss.saturating_mul(page),
                swap_bytes: c.points.swap.saturating_mul(page),
                pgtables_bytes: c.points.pgtables.saturating_mul(page),
                total_pages: fig.totalpages,
                badness: c.badness.unwrap_or(0),
                rank_score: c.rank_score.unwrap_or(0),
                pod_uid: p.kube.as_ref().map(|k| k.pod_uid.clone()),
                pod: p.kube.as_ref().and_then(|k| k.pod.clone()),
                namespace: p.kube.as_ref().and_then(|k| k.namespace.clone()),
                container: p.kube.as_ref().and_then(|k| k.container.clone()),
                container_id: p.kube.as_ref().and_then(|k| k.container_id.clone()),
                qos: p.kube.as_ref().map(|k| k.qos.as_str().to_string()),
            },
            expected_gain: pick.gain,
            enough: pick.enough,
            min_gain,
            kill_unit: match pick.owner.unit {
                crate::config::KillUnit::Process => "process".into(),
                crate::config::KillUnit::Cgroup => "cgroup".into(),
            },
            companions: Vec::new(),
            // The signal it is decided to get (its time is set when it goes out).
            signals: vec![SignalSent {
                signal: pick.reason.signal().name().to_string(),
                at_ms: 0,
                why: pick.reason.as_str().to_string(),
            }],
            outcome: KillOutcome::InFlight,
            exit_ms: None,
            mrelease: None,
            released: Released {
                available_before: obs.available,
                available_after: None,
                freed: None,
            },
            candidates,
        }
    }

    /// Fills in what takes reading files: the domain's pressure, the victim's user name and,
    /// when the scan did not read it (only rules on cmdline need it there), its command line.
    /// Called before the signal: a victim SIGKILLed at once loses its command line with its
    /// memory, and `why` then showed none. The command line read takes the victim's mmap lock
    /// for reading, as its own page faults do (not held up by them); never for a process in
    /// uninterruptible sleep, which may hold it for writing for as long as it is stuck.
    pub(super) fn fill_in(&mut self, d: &Domain, record: &mut KillRecord, p: &ProcessSnapshot) {
        if record.victim.user.is_none() {
            record.victim.user = p.uid.and_then(|u| self.user_name(u));
            let (some, full) = self.domain_pressure(d);
            record.trigger.psi_some_avg10 = some;
            record.trigger.psi_full_avg10 = full;
        }
        if record.victim.cmdline.is_empty() && p.state != 'D' {
            let text = crate::probe::process::cmdline_of(self.host, p.pid).unwrap_or_default();
            record.victim.cmdline = cut(&text, CMDLINE_KEPT);
        }
    }

    /// PSI avg10 (some, full) of a domain: the machine's, or the binding cgroup's (v2).
    fn domain_pressure(&self, d: &Domain) -> (Option<f64>, Option<f64>) {
        let file = match &d.key {
            DomainKey::System => self.host.path("/proc/pressure/memory"),
            DomainKey::Memcg(path) => match self
                .host
                .memory
                .as_ref()
                .and_then(|h| h.dir(&self.host.root, path))
            {
                Some(d) => d.join("memory.pressure"),
                None => return (None, None),
            },
        };
        match crate::probe::psi::Pressure::read(&file) {
            Ok(Some(p)) => (Some(p.some.avg10), p.full.map(|f| f.avg10)),
            _ => (None, None),
        }
    }

    /// A uid's name from the host's /etc/passwd, cached.
    fn user_name(&mut self, uid: u32) -> Option<String> {
        if let Some(name) = self.reporting.users.get(&uid) {
            return name.clone();
        }
        // The host's (through PID 1's root): a container's image has its own or none.
        let name = crate::probe::passwd::Passwd::read(&self.host.exe_root)
            .by_uid(uid)
            .map(|a| a.name.clone());
        if self.reporting.users.len() < 4096 {
            self.reporting.users.insert(uid, name.clone());
        }
        name
    }

    /// Runs the `pre_kill` hook for a record about to be acted on (filled in first: the hook
    /// gets everything); the kill waits for it at most `wait` (see
    /// [`crate::decide::episode::pre_kill_wait`]). Says so when the kill goes on without it.
    /// Whether the hook was waited for at all (the victim may have died meanwhile).
    pub(super) fn pre_kill_hook(
        &mut self,
        d: &Domain,
        record: &mut KillRecord,
        p: &ProcessSnapshot,
        wait: Duration,
        log: &mut Logger,
    ) -> bool {
        if self.config.hooks.pre_kill.is_empty() {
            return false;
        }
        self.fill_in(d, record, p);
        let (message, event) = match self.run_hook(HookKind::PreKill, record, wait, log) {
            Started::Late => (
                "pre_kill hook still running: signalling without it",
                "hook_late",
            ),
            Started::Alongside => (
                "pre_kill hook started alongside the kill: no time to wait for it",
                "hook_alongside",
            ),
            _ => return !wait.is_zero(),
        };
        log.log(
            Severity::Notice,
            &Line::new(message)
                .kv("event", event)
                .kv("hook", "pre_kill")
                .kv("pid", record.victim.pid)
                .kv("reason", &record.reason)
                .kv("waited_ms", wait.as_millis()),
        );
        !wait.is_zero()
    }

    /// Runs the hook `kind` for `record`, waiting for it at most `wait`; the hook's watcher
    /// tells how it ended (to the log and the metrics).
    pub(super) fn run_hook(
        &mut self,
        kind: HookKind,
        record: &KillRecord,
        wait: Duration,
        log: &Logger,
    ) -> Started {
        let teller = Teller {
            log: log.handle(),
            metrics: self.reporting.metrics.clone(),
        };
        self.reporting
            .hooks
            .run(kind, self.config, record, &teller, wait)
    }

    /// Notes a signal in the record of the victim `key`.
    pub(super) fn record_signal(
        &mut self,
        d: &mut Domain,
        key: ProcessKey,
        signal: &str,
        why: &str,
    ) {
        let now = unix_now();
        if let Some(r) = d.records.iter_mut().find(|r| is_of(r, key)) {
            r.signals.push(SignalSent {
                signal: signal.to_string(),
                at_ms: ((now - r.time).max(0.0) * 1000.0) as u64,
                why: why.to_string(),
            });
        }
    }

    /// Completes the record of the victim `key` (gone, or given up on) and publishes it.
    pub(super) fn finish_record(
        &mut self,
        d: &mut Domain,
        key: ProcessKey,
        outcome: KillOutcome,
        after: Option<Duration>,
        log: &mut Logger,
    ) {
        let Some(pos) = d.records.iter().position(|r| is_of(r, key)) else {
            return;
        };
        let mut record = d.records.remove(pos);
        record.exit_ms = after.map(|a| a.as_millis() as u64);
        let gone = matches!(outcome, KillOutcome::Exited | KillOutcome::Stuck);
        record.outcome = outcome;
        if gone {
            // What it gave back is read at the domain's next sample: no extra reads in the
            // loop between a victim's exit and the next decision, and by then the kernel has
            // uncharged everything the exit freed. A stuck victim's memory was reaped
            // (`process_mrelease`) though it never exited: its report says how much too.
            d.exited.push((record, Instant::now()));
        } else {
            self.publish(record, log);
        }
    }

    /// Publishes the records of victims that exited before `available` was sampled, with it
    /// as what they left; without a sample, those that waited [`AFTER_WAIT`] go out without
    /// it and the others are handed back.
    pub(super) fn publish_gone(
        &mut self,
        gone: Vec<(KillRecord, Instant)>,
        available: Option<u64>,
        log: &mut Logger,
    ) -> Vec<(KillRecord, Instant)> {
        let now = Instant::now();
        let mut still = Vec::new();
        for (mut record, at) in gone {
            match available {
                Some(a) => {
                    record.released.available_after = Some(a);
                    record.released.freed =
                        Some(a as i64 - record.released.available_before as i64);
                }
                None if now.duration_since(at) < AFTER_WAIT => {
                    still.push((record, at));
                    continue;
                }
                None => {}
            }
            self.publish(record, log);
        }
        still
    }

    /// Tells of a finished record: the report line, the kill journal, the `post_kill` hook,
    /// the status file's last kills; and keeps it for the daemon (metrics, notifications).
    pub(super) fn publish(&mut self, record: KillRecord, log: &mut Logger) {
        let severity = match record.outcome {
            KillOutcome::Failed | KillOutcome::Stuck => Severity::Error,
            _ => Severity::Info,
        };
        let record = std::sync::Arc::new(record);
        log.report(severity, &record.line(), record.clone());
        self.journal_append(&record, log);
        self.run_hook(HookKind::PostKill, &record, Duration::ZERO, log);
        self.reporting.last_kills.push_back(KillSummary {
            time_text: record.time_text.clone(),
            scope: record.scope.clone(),
            pid: record.victim.pid,
            comm: record.victim.comm.clone(),
            reason: record.reason.clone(),
            outcome: record.outcome.clone(),
            used: record.victim_bytes(),
            freed: record.released.freed,
        });
        while self.reporting.last_kills.len() > LAST_KILLS {
            self.reporting.last_kills.pop_front();
        }
        self.reporting.published.push(record);
    }

    fn journal_append(&mut self, record: &std::sync::Arc<KillRecord>, log: &mut Logger) {
        let Some(path) = self.config.report.journal.clone() else {
            return;
        };
        let max = self.config.report.journal_max_size;
        let current = self
            .reporting
            .journal
            .as_ref()
            .is_some_and(|(_, p, m)| *p == path && *m == max);
        if !current {
            match Journal::start(path.clone(), max) {
                Ok(j) => self.reporting.journal = Some((j, path, max)),
                Err(e) => {
                    log.log(
                        Severity::Error,
                        &Line::new("cannot start the kill journal's writer").kv("error", e),
                    );
                    return;
                }
            }
        }
        if let Some((j, _, _)) = &mut self.reporting.journal {
            j.append(record.clone());
        }
    }
}

impl Reporting {
    /// Logs what the report threads said since the last round: the journal's write errors and
    /// drops, hooks skipped by the rate limit. Cheap when there is nothing: an empty channel
    /// read. (A hook's watcher logs how it ended itself, as it ends.)
    pub fn drain_reports(&mut self, config: &Config, log: &mut Logger) {
        let skipped = std::mem::take(&mut self.hooks.skipped);
        if skipped > 0 {
            log.log(
                Severity::Warning,
                &Line::new("hooks skipped: more than hooks.max_per_minute started in a minute")
                    .kv("event", "hook_skipped")
                    .kv("skipped", skipped)
                    .kv("max_per_minute", config.hooks.max_per_minute),
            );
        }
        if let Some((j, _, _)) = &mut self.journal {
            let (problems, dropped) = j.problems();
            for p in problems {
                log.log(
                    Severity::Error,
                    &Line::new("cannot write the kill journal")
                        .kv("event", "journal_error")
                        .kv("error", p),
                );
            }
            if dropped > 0 {
                log.log(
                    Severity::Warning,
                    &Line::new("kill journal writer is behind: records dropped")
                        .kv("event", "journal_dropped")
                        .kv("records", dropped),
                );
            }
        }
    }
}

/// What the status file tells of, lent by the round.
pub(super) struct StatusSources<'a> {
    pub config: &'a Config,
    pub watched: &'a Watched,
    pub domains: &'a [Domain],
    pub dry_run: bool,
    /// Why the config asked for did not load, while it does not.
    pub config_error: &'a Option<String>,
}

impl Reporting {
    /// Rewrites the status file when what it says changed (at most once a second): scopes,
    /// domains, victims in flight, the last kills. Comparing costs a few small allocations, and
    /// only while a status file is configured.
    pub fn write_status(&mut self, s: &StatusSources<'_>, now: Instant, log: &mut Logger) {
        if s.config.report.status_file.is_none() {
            return;
        }
        if self
            .status_at
            .is_some_and(|t| now.duration_since(t) < STATUS_EVERY)
        {
            return;
        }
        let cgroups = self.cgroups_fingerprint(s.watched);
        let said = self.status_fingerprint(s, now, cgroups);
        let beat = self
            .status_at
            .is_none_or(|t| now.duration_since(t) >= status::HEARTBEAT);
        if self.status_said == Some(said) && !beat {
            return;
        }
        let Some(path) = s.config.report.status_file.clone() else {
            return;
        };
        let mut stamped = self.status_view(s, now);
        stamped.updated = unix_now();
        self.status_at = Some(now);
        self.status_said = Some(said);
        if self.status_writer.is_none() {
            match status::StatusWriter::start() {
                Ok(w) => self.status_writer = Some(w),
                Err(e) => {
                    self.status_problem(log, &path.display().to_string(), &e.to_string());
                    return;
                }
            }
        }
        let Some(writer) = &self.status_writer else {
            return;
        };
        if !writer.offer(path, stamped) {
            // Still writing the last one: offer this again next round.
            self.status_said = None;
        }
        if let Some(p) = writer.problem() {
            self.status_problem(log, "", &p);
        }
    }

    /// Says once that the status file cannot be written.
    fn status_problem(&mut self, log: &mut Logger, path: &str, error: &str) {
        if self.status_failed {
            return;
        }
        self.status_failed = true;
        log.log(
            Severity::Error,
            &Line::new("cannot write the status file")
                .kv("event", "status_error")
                .kv_if(!path.is_empty(), "path", path)
                .kv("error", error),
        );
    }

    /// What the cgroups' part of the status says, as a number. It moves only with a full
    /// sample of one, or one coming or going ([`Reporting::cgroups_moved`]): kept from the
    /// last time otherwise, which spares hashing a hundred calm cgroups every second.
    fn cgroups_fingerprint(&mut self, watched: &Watched) -> u64 {
        use std::hash::{Hash, Hasher};
        if let Some(said) = self.status_cgroups {
            return said;
        }
        let mut c = std::collections::hash_map::DefaultHasher::new();
        for cg in &watched.cgroups {
            (cg.id, cg.member.level, cg.warned).hash(&mut c);
            let limit = cg.sample.limit.unwrap_or(0);
            cg.sample.available.map(|a| coarse(a, limit)).hash(&mut c);
            limit.hash(&mut c);
            filling(cg.fill.rate(), limit).hash(&mut c);
            soon(cg.eta).hash(&mut c);
            cg.events.as_ref().map(|e| e.keys().count()).hash(&mut c);
        }
        let said = c.finish();
        self.status_cgroups = Some(said);
        said
    }

    /// A cgroup was sampled in full, added or removed: its part of the status is computed anew.
    pub fn cgroups_moved(&mut self) {
        self.status_cgroups = None;
    }

    /// What the status file would say, hashed without building it (no allocation: this runs
    /// at every round, the idle ones included): levels, warn bands, available memory in steps
    /// of 1 % of the limit, limits, fill rates and projections by order of magnitude, armed
    /// sources, domains and their victims, kills. Equal fingerprints: nothing a reader would
    /// act on changed (the file's figures are exact as of its `updated` time).
    fn status_fingerprint(&self, s: &StatusSources<'_>, now: Instant, cgroups: u64) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if s.config.system.enabled
            && let Some(m) = s.watched.system.mem
        {
            (s.watched.system.member.level, s.watched.system.warned).hash(&mut h);
            (coarse(m.mem_available, m.mem_total), m.mem_total).hash(&mut h);
            filling(s.watched.system.fill.rate(), m.mem_total).hash(&mut h);
            soon(s.watched.system.eta).hash(&mut h);
            s.watched
                .system
                .events
                .as_ref()
                .map(|e| e.keys().count())
                .hash(&mut h);
        }
        cgroups.hash(&mut h);
        s.config_error.hash(&mut h);
        for d in s.domains {
            (d.members.len(), d.episode.in_episode(), d.episode.kills()).hash(&mut h);
            for f in &d.in_flight {
                (f.victim.pid, f.kill_sent.is_some()).hash(&mut h);
                now.duration_since(f.first_signal).as_secs().hash(&mut h);
            }
        }
        (self.victims, self.last_kills.len(), s.dry_run).hash(&mut h);
        self.last_kills.back().map(|k| k.pid).hash(&mut h);
        h.finish()
    }

    /// The status view without its time.
    fn status_view(&self, s: &StatusSources<'_>, now: Instant) -> StatusView {
        let scopes = scope_statuses(s);
        let domains = domain_statuses(s, now);
        StatusView {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            started: self.started_unix,
            updated: 0.0,
            dry_run: s.dry_run,
            config_error: s.config_error.clone(),
            victims: self.victims,
            scopes,
            domains,
            last_kills: self.last_kills.iter().cloned().collect(),
        }
    }
}

/// Every watched scope as the status file shows it: its level, its memory rounded to the
/// MiB and its thresholds.
fn scope_statuses(from: &StatusSources<'_>) -> Vec<ScopeStatus> {
    let mut scopes = Vec::new();
    if from.config.system.enabled
        && let Some(m) = from.watched.system.mem
    {
        let s = &from.config.system;
        let system = &from.watched.system;
        scopes.push(ScopeStatus {
            name: "system".into(),
            level: level_word(system.member.level, system.warned).into(),
            available: mib(m.mem_available),
            limit: m.mem_total,
            warn_at: s.mem_available_warn.map(|w| w.bytes_of(m.mem_total)),
            term_at: s.mem_available_term.bytes_of(m.mem_total),
            kill_at: s.mem_available_kill.bytes_of(m.mem_total),
            fill_rate: mib(system.fill.rate() as u64),
            eta_ms: system.eta.map(whole_seconds_ms),
            events: event_names(&system.events),
        });
    }
    for cg in &from.watched.cgroups {
        let cfg = &from.config.cgroups[cg.config_index];
        let limit = cg.sample.limit.unwrap_or(0);
        let t = crate::watch::cgroup_thresholds(cfg, limit);
        scopes.push(ScopeStatus {
            name: cg.path.clone(),
            level: level_word(cg.member.level, cg.warned).into(),
            available: mib(cg.sample.available.unwrap_or(0)),
            limit,
            warn_at: cfg.available_warn.map(|w| w.bytes_of(limit)),
            term_at: t.term,
            kill_at: t.kill,
            fill_rate: mib(cg.fill.rate() as u64),
            eta_ms: cg.eta.map(whole_seconds_ms),
            events: event_names(&cg.events),
        });
    }
    scopes
}

/// Every OOM domain as the status file shows it: its members, its episode, its victims in
/// flight (their time in whole seconds).
fn domain_statuses(s: &StatusSources<'_>, now: Instant) -> Vec<DomainStatus> {
    s.domains
        .iter()
        .map(|d| DomainStatus {
            name: d.key.name().to_string(),
            members: d
                .members
                .iter()
                .map(|m| s.watched.scope_name(*m).to_string())
                .collect(),
            state: if d.episode.in_episode() {
                "episode".into()
            } else {
                "calm".into()
            },
            kills: d.episode.kills(),
            in_flight: d
                .in_flight
                .iter()
                .map(|f| InFlightStatus {
                    pid: f.victim.pid,
                    comm: f.victim.comm.clone(),
                    signal: if f.kill_sent.is_some() {
                        "SIGKILL".into()
                    } else {
                        "SIGTERM".into()
                    },
                    since_ms: whole_seconds_ms(now.duration_since(f.first_signal)),
                })
                .collect(),
        })
        .collect()
}

/// A time in milliseconds, rounded down to the second: the status file changes when it matters.
fn whole_seconds_ms(d: Duration) -> u64 {
    (d.as_millis() as u64) / 1000 * 1000
}

/// The kernel event sources armed for a scope, by name.
fn event_names(events: &Option<ArmedSet>) -> Vec<String> {
    events
        .as_ref()
        .map(|e| e.keys().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Bytes rounded down to the MiB: the status file changes when it matters.
fn mib(bytes: u64) -> u64 {
    bytes & !((1 << 20) - 1)
}

/// Available memory in steps of 1 % of the limit (at least 4 MiB): what the status file says
/// is rewritten when memory moves by a step, not with the jitter of an idle machine.
fn coarse(bytes: u64, limit: u64) -> u64 {
    bytes / (limit / 100).max(4 << 20)
}

/// A fill rate by order of magnitude in units of 1 % of the limit per second: 0 for the
/// jitter of an idle scope, then a step each time it doubles.
fn filling(rate: f64, limit: u64) -> u32 {
    let unit = (limit / 100).max(1 << 20) as f64;
    let steps = (rate / unit).max(0.0) as u64;
    u64::BITS - steps.leading_zeros()
}

/// A projected time to exhaustion, when it is under a minute, by order of magnitude in
/// seconds; further off, nothing worth a rewrite.
fn soon(eta: Option<Duration>) -> Option<u32> {
    eta.filter(|e| e.as_secs() < 60)
        .map(|e| u64::BITS - e.as_secs().leading_zeros())
}

/// A scope's level for people, the warn band included.
fn level_word(level: crate::trigger::Level, warned: bool) -> &'static str {
    match level {
        crate::trigger::Level::Ok if warned => "warn",
        l => l.as_str(),
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
