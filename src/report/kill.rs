//! The kill report: one record per action, what the kernel prints at an OOM kill but written
//! before it is too late, and completed when the victim is gone: the trigger's figures, the
//! victim and every term of its badness, what its kill was expected to free and what the
//! domain actually got back, the signals and their timings, and the candidates it was chosen
//! from.
//!
//! The record is plain data (serde): the log line, the JSON log format, the kill journal,
//! `oomward history` and `oomward why` all read the same fields.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Line;

/// How many candidates a record keeps: enough to see why the victim came first and what the
/// next ones would have freed.
pub const CANDIDATES_KEPT: usize = 10;
/// A cmdline is cut to this many bytes (it may hold anything a process was started with).
pub const CMDLINE_KEPT: usize = 256;
/// The record format's version, for readers of old journals.
pub const RECORD_VERSION: u32 = 1;

/// One action and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// When the first signal was sent: seconds since the epoch.
    pub time: f64,
    /// The same in UTC, RFC 3339, for people and `--since`.
    pub time_text: String,
    /// The watched scope the victim lies in.
    pub scope: String,
    /// Its OOM domain (`system` or the binding cgroup).
    pub domain: String,
    /// Decided only (dry run): nothing was signalled.
    pub dry_run: bool,
    /// Why: `term_level`, `kill_level`, `keep_up`, `eta`, `rescue`, `stall`, `warn_level`.
    pub reason: KillReason,
    /// The domain's level when it was decided.
    pub level: KillLevel,
    /// What woke the loop for the round that decided.
    pub wake: String,
    /// The figures that triggered it.
    pub trigger: Trigger,
    /// The chosen process.
    pub victim: Victim,
    /// What the kill was expected to free, bytes (its private anonymous memory and swap, or
    /// its group's).
    pub expected_gain: u64,
    /// Whether that was enough to leave the level.
    pub enough: bool,
    /// The least a kill had to free to be chosen, bytes.
    pub min_gain: u64,
    /// `process` or `cgroup`.
    pub kill_unit: String,
    /// Other processes signalled with it (a group or cgroup kill).
    pub companions: Vec<i32>,
    /// The signals sent, in order.
    pub signals: Vec<SignalSent>,
    /// How it ended (see [`KillOutcome`]).
    pub outcome: KillOutcome,
    /// First signal → exit, milliseconds.
    pub exit_ms: Option<u64>,
    /// What `process_mrelease` said for a SIGKILL (`released`, `unsupported`, ...).
    pub mrelease: Option<String>,
    /// The domain's available memory before and after.
    pub released: Released,
    /// The best-ranked candidates when it was decided, the victim among them.
    pub candidates: Vec<Considered>,
}

/// Defines a word of the record: an enum with one spelling per variant, written and logged as
/// that spelling (`as_str`, `Display`, serde). Any other string reads back as `Other`, kept as
/// written: a journal or status file from another version stays readable, and says what it
/// said.
macro_rules! record_word {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A word this version does not know (a record of another version), as written.
            Other(String),
        }

        impl $name {
            /// Its spelling in records, logs and hooks' environment.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $word,)+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($word => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| Self::from(s.as_str()))
            }
        }

        crate::logged_as_text!($name);
    };
}

record_word! {
    /// Why a record's victim was chosen: the decision's reason, or the warn level for a
    /// warning's likely victim.
    KillReason {
        /// At the term level.
        TermLevel => "term_level",
        /// At the kill level.
        KillLevel => "kill_level",
        /// At the kill level while earlier victims were still exiting.
        KeepUp => "keep_up",
        /// Memory was projected to run out before a SIGTERM could help.
        Eta => "eta",
        /// A hung cgroup.
        Rescue => "rescue",
        /// The domain thrashed (a stall term crossed).
        Stall => "stall",
        /// A warning: a warn level was crossed, nobody was signalled.
        WarnLevel => "warn_level",
    }
}

record_word! {
    /// The domain's level when a record's decision was made.
    KillLevel {
        /// Enough memory (a stall or a rescue acts without a low level).
        Ok => "ok",
        /// In its warn band (a warning).
        Warn => "warn",
        /// At or below its term threshold.
        Term => "term",
        /// At or below its kill threshold.
        Kill => "kill",
    }
}

record_word! {
    /// How a record's action ended.
    KillOutcome {
        /// Signalled, not yet gone (a record of the status file or a `pre_kill` hook).
        InFlight => "in_flight",
        /// The victim exited.
        Exited => "exited",
        /// It did not exit after SIGKILL.
        Stuck => "stuck",
        /// It could not be signalled.
        Failed => "failed",
        /// Decided only: nothing was signalled.
        DryRun => "dry_run",
        /// A warning's likely victim: nobody was signalled.
        Warning => "warning",
    }
}

/// A decision's reason and a domain's level are spelled in a record as on the decision line.
impl From<crate::decide::episode::Reason> for KillReason {
    fn from(r: crate::decide::episode::Reason) -> Self {
        Self::from(r.as_str())
    }
}

impl From<crate::decide::trigger::Level> for KillLevel {
    fn from(l: crate::decide::trigger::Level) -> Self {
        Self::from(l.as_str())
    }
}

/// The trigger's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Available memory in the domain, bytes.
    pub available: u64,
    /// The limit that binds (MemTotal for the system), bytes.
    pub limit: u64,
    /// Bytes to gain to leave the level.
    pub need: u64,
    /// Fill rate seen, bytes per second.
    pub fill_rate: u64,
    /// Projected time to exhaustion at that rate, milliseconds.
    pub eta_ms: Option<u64>,
    /// Memory pressure (PSI `some` avg10, percent) of the domain.
    pub psi_some_avg10: Option<f64>,
    /// PSI `full` avg10, percent.
    pub psi_full_avg10: Option<f64>,
}

/// The victim as it was when chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Victim {
    /// Its pid.
    pub pid: i32,
    /// Its start time (clock ticks since boot): pid + start time identify it.
    pub starttime: u64,
    /// Its comm (set by the process itself).
    pub comm: String,
    /// Its executable, if readable.
    pub exe: Option<String>,
    /// Its real uid.
    pub uid: Option<u32>,
    /// That uid's name.
    pub user: Option<String>,
    /// Its memory cgroup.
    pub cgroup: Option<String>,
    /// Its command line, cut to [`CMDLINE_KEPT`] bytes.
    pub cmdline: String,
    /// `oom_score_adj`.
    pub oom_score_adj: i32,
    /// The policy's adjustment, in `oom_score_adj` units.
    pub policy_adjust: i32,
    /// Resident anonymous memory, bytes.
    pub rss_anon_bytes: u64,
    /// Resident shared memory and tmpfs it maps, bytes (stays charged after it dies).
    pub rss_shmem_bytes: u64,
    /// Resident memory as the kernel's OOM killer counts it, bytes.
    pub rss_bytes: u64,
    /// Swapped out, bytes.
    pub swap_bytes: u64,
    /// Page tables, bytes.
    pub pgtables_bytes: u64,
    /// The kernel's T for the domain, pages.
    pub total_pages: u64,
    /// Kernel badness with the domain's T.
    pub badness: i64,
    /// Badness with the policy's adjustment: the order oomward kills in.
    pub rank_score: i64,
    /// Its pod's uid, when it runs in a pod.
    #[serde(default)]
    pub pod_uid: Option<String>,
    /// The pod's name (from kubelet's log directories).
    #[serde(default)]
    pub pod: Option<String>,
    /// The pod's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The container's name.
    #[serde(default)]
    pub container: Option<String>,
    /// The container's id.
    #[serde(default)]
    pub container_id: Option<String>,
    /// The pod's QoS class: guaranteed, burstable, besteffort.
    #[serde(default)]
    pub qos: Option<String>,
}

/// One signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalSent {
    /// `SIGTERM` or `SIGKILL`.
    pub signal: String,
    /// Milliseconds after the first signal.
    pub at_ms: u64,
    /// Why this one: the decision's reason, or the escalation's (`grace`, `kill_level`, ...).
    pub why: String,
}

/// The domain's available memory around the kill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Released {
    /// When it was decided, bytes.
    pub available_before: u64,
    /// Just after the victim was gone, bytes.
    pub available_after: Option<u64>,
    /// After − before, bytes (negative when the domain kept filling).
    pub freed: Option<i64>,
}

/// A candidate as it was ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Considered {
    /// Its place in the ranking, from 1.
    pub rank: usize,
    /// Its pid.
    pub pid: i32,
    /// Its comm.
    pub comm: String,
    /// Its real uid.
    pub uid: Option<u32>,
    /// Its memory cgroup.
    pub cgroup: Option<String>,
    /// Resident memory (kernel's count), bytes.
    pub rss_bytes: u64,
    /// Swapped out, bytes.
    pub swap_bytes: u64,
    /// `oom_score_adj`.
    pub oom_score_adj: i32,
    /// Kernel badness with the domain's T (`None`: the kernel would never pick it).
    pub badness: Option<i64>,
    /// With the policy's adjustment (`None`: not eligible).
    pub rank_score: Option<i64>,
    /// What killing it would have freed, bytes.
    pub expected_gain: u64,
    /// This one was the victim.
    pub chosen: bool,
    /// Why it could not be chosen, if so: `protected:<what>`, `unkillable:<why>`,
    /// `below_min_gain`, `in_flight`, `oomward`.
    pub not_chosen: Option<String>,
    /// `namespace/pod` when it runs in a pod (`pod uid` when the names are not known).
    #[serde(default)]
    pub pod: Option<String>,
}

impl KillRecord {
    /// The victim's memory as the kernel's OOM killer counts it (rss + swap + page tables).
    pub fn victim_bytes(&self) -> u64 {
        let v = &self.victim;
        v.rss_bytes
            .saturating_add(v.swap_bytes)
            .saturating_add(v.pgtables_bytes)
    }

    /// The first line a person reads: who, where, how much, how it ended.
    pub fn summary(&self) -> String {
        let v = &self.victim;
        let mut s = String::with_capacity(160);
        let verb = match self.outcome {
            KillOutcome::DryRun => "would kill",
            KillOutcome::Failed => "could not kill",
            KillOutcome::Stuck => "killed (stuck, never exited)",
            _ => "killed",
        };
        let _ = write!(
            s,
            "{verb} {} (pid {}{}) in {}{}: used {}, expected to free {}",
            super::quoted(&v.comm),
            v.pid,
            v.user
                .as_deref()
                .map(|u| format!(", {}", super::quoted(u)))
                .unwrap_or_default(),
            self.pod_words(),
            super::quoted(&self.scope),
            human(self.victim_bytes()),
            human(self.expected_gain),
        );
        if let Some(f) = self.released.freed {
            let _ = write!(s, ", freed {}", human_signed(f));
        }
        if let Some(ms) = self.exit_ms {
            let first = self.signals.first().map_or("-", |x| x.signal.as_str());
            let _ = write!(s, ", exited {ms} ms after {first}");
            if self.signals.len() > 1 {
                let _ = write!(s, " (SIGKILL after {} ms)", self.signals[1].at_ms);
            }
        }
        s
    }

    /// `pod NS/NAME container C (QOS) in ` for a victim in a pod, else nothing.
    fn pod_words(&self) -> String {
        let v = &self.victim;
        let Some(uid) = &v.pod_uid else {
            return String::new();
        };
        let pod = match (&v.namespace, &v.pod) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            _ => uid.clone(),
        };
        let container = v
            .container
            .as_deref()
            .map(|c| format!(" container {}", super::quoted(c)))
            .unwrap_or_default();
        let qos = v
            .qos
            .as_deref()
            .map(|q| format!(" ({q})"))
            .unwrap_or_default();
        format!("pod {}{container}{qos}, ", super::quoted(&pod))
    }

    /// The report as one log line: the summary, then the main figures as raw numbers; the
    /// candidates as `pid:comm:rank_score:gain` items.
    pub fn line(&self) -> Line {
        let v = &self.victim;
        let line = Line::event("report", &self.summary())
            .kv("outcome", &self.outcome)
            .kv("scope", &self.scope)
            .kv("domain", &self.domain)
            .kv("reason", &self.reason)
            .kv("level", &self.level)
            .kv("pid", v.pid)
            .kv("comm", &v.comm)
            .kv("exe", v.exe.as_deref().unwrap_or("?"))
            .kv("uid", v.uid.map_or(-1, i64::from))
            .kv("user", v.user.as_deref().unwrap_or("?"))
            .kv("cgroup", v.cgroup.as_deref().unwrap_or("-"))
            // The pod it runs in, each field only when known (none outside a pod).
            .kv_opt("pod_uid", v.pod_uid.as_deref())
            .kv_opt("pod", v.pod.as_deref())
            .kv_opt("namespace", v.namespace.as_deref())
            .kv_opt("container", v.container.as_deref())
            .kv_opt("container_id", v.container_id.as_deref())
            .kv_opt("qos", v.qos.as_deref());
        self.with_figures(line)
    }

    /// `line` with the figures after the victim's fields: what triggered, what was to be freed
    /// and what was (a figure not known is absent); then the signals and the candidates.
    fn with_figures(&self, line: Line) -> Line {
        let candidates: Vec<String> = self
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "{}:{}:{}:{}",
                    c.pid,
                    c.comm.replace([',', ':'], "_"),
                    super::or(c.rank_score, "-"),
                    c.expected_gain
                )
            })
            .collect();
        let signals: Vec<String> = self
            .signals
            .iter()
            .map(|x| format!("{}@{}", x.signal, x.at_ms))
            .collect();
        line.kv("available", self.trigger.available)
            .kv("limit", self.trigger.limit)
            .kv("fill_rate", self.trigger.fill_rate)
            .kv_opt("eta_ms", self.trigger.eta_ms)
            .kv("badness", self.victim.badness)
            .kv("rank_score", self.victim.rank_score)
            .kv("expected_gain", self.expected_gain)
            .kv_opt("available_after", self.released.available_after)
            .kv_opt("freed", self.released.freed)
            .kv_opt("exit_ms", self.exit_ms)
            .kv("signals", signals.join(","))
            .kv("candidates", candidates.join(","))
    }
}

/// Bytes for people: `512 KiB`, `1.5 MiB`, `2.25 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{:.1} {}", v, UNITS[u])
    }
}

/// [`human`] with a sign.
pub fn human_signed(bytes: i64) -> String {
    if bytes < 0 {
        format!("-{}", human(bytes.unsigned_abs()))
    } else {
        human(bytes as u64)
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-12-02T16:04:05.123Z`), without a date crate:
/// the civil-from-days conversion is a dozen lines.
pub fn rfc3339(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let millis = ((unix - secs as f64) * 1000.0).round().min(999.0) as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Now, seconds since the epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A complete record, for tests of everything that reads records.
    #[rustfmt::skip]
    pub(crate) fn sample_record(pid: i32, comm: &str, time: f64) -> KillRecord {
        KillRecord {
            version: RECORD_VERSION, time, time_text: rfc3339(time),
            scope: "/app".into(), domain: "/app".into(), dry_run: false,
            reason: KillReason::TermLevel, level: KillLevel::Term, wake: "v1_threshold".into(),
            trigger: Trigger {
                available: 20 << 20, limit: 256 << 20, need: 6 << 20, fill_rate: 50 << 20,
                eta_ms: Some(400), psi_some_avg10: Some(1.5), psi_full_avg10: None,
            },
            victim: Victim {
                pid, starttime: 12345, comm: comm.into(), exe: Some("/usr/bin/hog".into()),
                uid: Some(1000), user: Some("alice".into()), cgroup: Some("/app".into()),
                cmdline: "hog --big".into(), oom_score_adj: 0, policy_adjust: 0,
                rss_anon_bytes: 200 << 20, rss_shmem_bytes: 0, rss_bytes: 201 << 20,
                swap_bytes: 0, pgtables_bytes: 1 << 20,
                total_pages: 65536, badness: 51712, rank_score: 51712,
                pod_uid: None, pod: None, namespace: None, container: None, container_id: None,
                qos: None,
            },
            expected_gain: 200 << 20, enough: true, min_gain: 5 << 20,
            kill_unit: "process".into(), companions: vec![],
            signals: vec![SignalSent { signal: "SIGTERM".into(), at_ms: 0, why: "term_level".into() }],
            outcome: KillOutcome::Exited, exit_ms: Some(42), mrelease: None,
            released: Released {
                available_before: 20 << 20, available_after: Some(220 << 20), freed: Some(200 << 20),
            },
            candidates: vec![Considered {
                rank: 1, pid, comm: comm.into(), uid: Some(1000), cgroup: Some("/app".into()),
                rss_bytes: 201 << 20, swap_bytes: 0, oom_score_adj: 0,
                badness: Some(51712), rank_score: Some(51712), expected_gain: 200 << 20,
                chosen: true, not_chosen: None, pod: None,
            }],
        }
    }

    /// Reads `word` as JSON and writes it back: the value it reads as, and the same bytes out.
    fn reads_back<T>(word: &str, want: &T)
    where
        T: Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Display
            + PartialEq
            + std::fmt::Debug,
    {
        let json = format!("\"{word}\"");
        let read: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&read, want, "{word}");
        assert_eq!(serde_json::to_string(&read).unwrap(), json);
        assert_eq!(read.to_string(), word);
    }

    #[test]
    #[rustfmt::skip]
    fn record_words_are_written_as_read_table() {
        // (word in a record) -> what it reads as; written back the same, known or not.
        use {KillLevel as L, KillOutcome as O, KillReason as R};
        let reasons = [
            ("term_level", R::TermLevel), ("kill_level", R::KillLevel), ("keep_up", R::KeepUp),
            ("eta", R::Eta), ("rescue", R::Rescue), ("stall", R::Stall), ("warn_level", R::WarnLevel),
            ("later_reason", R::Other("later_reason".into())),
        ];
        let levels = [
            ("ok", L::Ok), ("warn", L::Warn), ("term", L::Term), ("kill", L::Kill),
            ("", L::Other(String::new())),
        ];
        let outcomes = [
            ("in_flight", O::InFlight), ("exited", O::Exited), ("stuck", O::Stuck),
            ("failed", O::Failed), ("dry_run", O::DryRun), ("warning", O::Warning),
            ("Exited", O::Other("Exited".into())),
        ];
        reasons.iter().for_each(|(w, r)| reads_back(w, r));
        levels.iter().for_each(|(w, l)| reads_back(w, l));
        outcomes.iter().for_each(|(w, o)| reads_back(w, o));
    }

    /// A decision's reason and a domain's level are spelled in a record as on the decision
    /// line: one word for each.
    #[test]
    fn a_record_spells_reasons_and_levels_as_the_decision_line() {
        use crate::decide::trigger::Level;
        for r in crate::decide::episode::Reason::ALL {
            let word = KillReason::from(r);
            assert_eq!(word.as_str(), r.as_str());
            assert!(!matches!(word, KillReason::Other(_)), "{word}");
        }
        for l in [Level::Ok, Level::Term, Level::Kill] {
            let word = KillLevel::from(l);
            assert_eq!(word.as_str(), l.as_str());
            assert!(!matches!(word, KillLevel::Other(_)), "{word}");
        }
    }

    #[test]
    fn dates_are_utc_rfc3339() {
        for (unix, text) in [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (951_782_400.5, "2000-02-29T00:00:00.500Z"),
            (1_796_227_445.0, "2026-12-02T16:04:05.000Z"),
            (4_107_542_399.0, "2100-02-28T23:59:59.000Z"),
        ] {
            assert_eq!(rfc3339(unix), text, "{unix}");
        }
    }

    #[test]
    fn sizes_for_people() {
        for (b, text) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (200 << 20, "200 MiB"),
            ((2 << 30) + (1 << 28), "2.2 GiB"),
        ] {
            assert_eq!(human(b), text, "{b}");
        }
        assert_eq!(human_signed(-(3 << 20)), "-3.0 MiB");
    }

    #[test]
    fn the_line_names_the_victim_in_words_and_numbers() {
        let r = sample_record(4242, "hog", 1_796_227_445.0);
        let line = r.line();
        let text = line.as_str();
        assert!(
            text.starts_with("killed hog (pid 4242, alice) in /app: used 202 MiB, expected to free 200 MiB, freed 200 MiB, exited 42 ms after SIGTERM"),
            "{text}"
        );
        let (_, pairs) = super::super::journal::split(text);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("event"), Some("report"));
        assert_eq!(get("pid"), Some("4242"));
        assert_eq!(get("freed"), Some(&*(200u64 << 20).to_string()));
        assert_eq!(
            get("candidates"),
            Some(&*format!("4242:hog:51712:{}", 200u64 << 20))
        );
        assert_eq!(get("signals"), Some("SIGTERM@0"));
    }

    #[test]
    fn a_name_made_of_fields_is_quoted_in_the_words_and_read_back_whole() {
        for name in ["x=1 event=kill", "a\"b\nevent=x c", "plain"] {
            let r = sample_record(4242, name, 1_796_227_445.0);
            let line = r.line();
            let (message, pairs) = super::super::journal::split(line.as_str());
            let get = |k: &str| -> Vec<&str> {
                pairs
                    .iter()
                    .filter(|(key, _)| *key == k)
                    .map(|(_, v)| v.as_str())
                    .collect()
            };
            assert_eq!(get("event"), ["report"], "{}", line.as_str());
            assert_eq!(get("comm"), [name], "{}", line.as_str());
            assert!(get("x").is_empty(), "{}", line.as_str());
            assert_eq!(message, line.message());
            assert!(
                message.starts_with(&format!("killed {} (pid 4242", super::super::quoted(name))),
                "{message}"
            );
        }
    }

    #[test]
    fn a_record_survives_json() {
        let r = sample_record(1, "a", 1.0);
        let text = serde_json::to_string(&r).unwrap();
        let back: KillRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
