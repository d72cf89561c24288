//! The key table: every key of every table, declared once with its kind, default, bounds and
//! doc line. From it come the typed sections with their defaults, the raw serde tables (every
//! value spanned, for errors that name the line), the printed effective config, the type hints
//! and the key list the example file is checked against.
//!
//! Adding a key is one line here (and its prose in `config.example.toml`). What involves two
//! keys (a kill level above its term level) is checked in `validate`, not here.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;

use super::kind::*;
use super::value::ByteSize;
use super::{ConfigError, Source, Val, default_journal, default_status_file, rebase};
use crate::named_enum;

/// What the key table says of one key, for hints and for the documentation check.
#[derive(Debug, Clone, Copy)]
pub struct KeyInfo {
    /// Its name within its table.
    pub name: &'static str,
    /// What to write for it.
    pub hint: fn() -> String,
}

/// One table of the config: its name, whether it is an array of tables (`[[name]]`), its keys.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// `daemon`, `cgroup`, ...
    pub name: &'static str,
    /// `[[name]]`.
    pub array: bool,
    /// Its keys, in order.
    pub keys: Vec<KeyInfo>,
}

/// Reads one key: its value as written, else its default (written as a user would write it),
/// else what its kind means by absent; errors are placed at the value.
fn read_key<K: Kind>(
    src: &Source,
    v: &Val<K::Raw>,
    key: &str,
    default: Option<K::Raw>,
) -> Result<K::Value, ConfigError> {
    match (v, default) {
        (Some(s), _) => K::read(s.get_ref()).map_err(|m| src.err(Some(s.span()), key, m)),
        (None, Some(d)) => K::read(&d).map_err(|m| src.err(None, key, format!("default: {m}"))),
        (None, None) => K::absent().ok_or_else(|| {
            let (table, leaf) = key.split_once('.').unwrap_or((key, key));
            let table = table.split('[').next().unwrap_or(table);
            src.err(
                None,
                key,
                format!("required: every [[{table}]] needs a {leaf}"),
            )
        }),
    }
}

fn span<T>(v: &Val<T>) -> Option<Range<usize>> {
    v.as_ref().map(|s| s.span())
}

/// Declares one table: the typed section, its raw form, reading, printing and key list.
macro_rules! table {
    (
        $(#[$meta:meta])*
        $name:ident / $raw:ident = $table:literal $([$array:tt])? {
            $(
                $(#[doc = $doc:literal])*
                $field:ident: $kind:ty $(= $default:expr)? $(, check $check:expr)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $($(#[doc = $doc])* pub $field: <$kind as Kind>::Value,)*
        }

        #[derive(Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        pub(super) struct $raw {
            $(pub(super) $field: Val<<$kind as Kind>::Raw>,)*
        }

        impl $raw {
            pub(super) fn rebase(&mut self, base: usize) {
                $(rebase(&mut self.$field, base);)*
            }

            /// A later file's keys override this one's (`[[...]]` entries are appended instead).
            #[allow(dead_code)]
            pub(super) fn overlay(&mut self, later: Self) {
                $(if later.$field.is_some() {
                    self.$field = later.$field;
                })*
            }

            /// Every key read and checked against its own bounds; `prefix` names the table in
            /// errors (`daemon`, `cgroup[2]`).
            #[allow(clippy::useless_conversion)]
            pub(super) fn read(&self, src: &Source, prefix: &str) -> Result<$name, ConfigError> {
                Ok($name {$($field: {
                    let key = format!("{prefix}.{}", stringify!($field));
                    let default: Option<<$kind as Kind>::Raw> = None $(.or(Some(($default).into())))?;
                    let value = read_key::<$kind>(src, &self.$field, &key, default)?;
                    $(($check)(&value).map_err(|m| src.err(span(&self.$field), &key, m))?;)?
                    value
                },)*})
            }
        }

        impl $name {
            /// The table and its keys.
            pub fn table() -> TableInfo {
                TableInfo {
                    name: $table,
                    array: false $(|| stringify!($array) == "array")?,
                    keys: vec![$(KeyInfo { name: stringify!($field), hint: <$kind as Kind>::hint },)*],
                }
            }

            /// The keys as TOML lines.
            pub(super) fn write(&self, o: &mut String) {
                $(if let Some(v) = <$kind as Kind>::write(&self.$field) {
                    let _ = writeln!(o, "{} = {v}", stringify!($field));
                })*
            }
        }
    };
}

named_enum! {
    /// `log = ...`: where log lines go.
    pub enum LogTarget {
        /// The journal when stderr is the journal's stream, stderr on a terminal, else syslog.
        Auto = "auto",
        /// Plain lines on stderr.
        Stderr = "stderr",
        /// The local syslog socket.
        Syslog = "syslog",
        /// Native journal entries with structured fields; plain stderr lines without a journal.
        Journald = "journald",
    }
}

named_enum! {
    /// `log_format = ...`: how log lines are written.
    pub enum LogFormat {
        /// `message key=value ...`, for people and `grep`.
        Text = "text",
        /// One JSON object per line, for log shippers.
        Json = "json",
    }
}

named_enum! {
    /// `require = ...`: how memory and swap combine for the system scope.
    pub enum Require {
        /// Memory AND swap low (swap still free means the machine can cope).
        Both = "both",
        /// Either one low.
        Either = "either",
    }
}

named_enum! {
    /// `on_under_oom = ...`: what to do with a v1 cgroup hung in OOM with `oom_kill_disable = 1`.
    pub enum UnderOom {
        /// Kill its top-ranked process with SIGKILL.
        Kill = "kill",
        /// Leave it (someone else handles it).
        Ignore = "ignore",
    }
}

named_enum! {
    /// `kill_unit = ...`.
    pub enum KillUnit {
        /// The chosen process (and those sharing its memory).
        Process = "process",
        /// Every process of the cgroup.
        Cgroup = "cgroup",
    }
}

/// The longest sleep between samples: beyond it a machine can fill unseen.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// The longest grace, stuck timeout or projection: a victim that blocks all action for longer
/// (a year was accepted once) leaves the machine to the kernel.
const LONGEST_WAIT: Duration = Duration::from_secs(600);
const ZERO: Duration = Duration::ZERO;
const ABOVE_ZERO: Duration = Duration::from_micros(1);

fn plausible_fill_rate(rate: &u64) -> Result<(), String> {
    if (1 << 20..=1 << 40).contains(rate) {
        return Ok(());
    }
    Err(format!(
        "{} per second is not a plausible worst-case fill rate: between 1MiB and 1TiB",
        ByteSize(*rate)
    ))
}

table! {
    /// `[daemon]`.
    #[derive(PartialEq)]
    Daemon / RawDaemon = "daemon" {
        /// Longest sleep between samples.
        max_interval: Dur = "5s", check within(ZERO, LONGEST_SLEEP);
        /// Shortest sleep between samples.
        min_interval: Dur = "2ms", check within(Duration::from_micros(100), Duration::from_secs(1));
        /// Worst-case bytes per second at which memory can fill; sets the next sleep.
        fill_rate: Size = "6GiB", check plausible_fill_rate;
        /// Decide and report, never signal.
        dry_run: Flag = false;
        /// Let kernel events (memcg thresholds and notifications, PSI triggers) wake the loop.
        events: Flag = true;
        /// Run the loop in the real-time scheduling class (`SCHED_FIFO` 1).
        realtime: Flag = true;
        /// Log sink.
        log: Choice<LogTarget> = "auto";
        /// Log line format (`--log-format` overrides it).
        log_format: Choice<LogFormat> = "text";
    }
}

table! {
    /// `[system]`: the whole machine.
    #[derive(PartialEq)]
    System / RawSystem = "system" {
        /// Watch the whole machine.
        enabled: Flag = true;
        /// MemAvailable at or below which to warn, naming the likely victim; `None`: no warning.
        mem_available_warn: OptLevel = "off";
        /// MemAvailable at or below which to send SIGTERM (share of MemTotal or bytes).
        mem_available_term: Level = "10%";
        /// ... and SIGKILL.
        mem_available_kill: Level = "5%";
        /// SwapFree at or below which to send SIGTERM (share of SwapTotal or bytes).
        swap_free_term: Level = "10%";
        /// ... and SIGKILL.
        swap_free_kill: Level = "5%";
        /// How memory and swap combine.
        require: Choice<Require> = "both";
        /// PSI `full` avg10 percent at which to act at the term level; 0 = off.
        psi_full_avg10_term: Percent = 0.0;
        /// Act at the term level when MemAvailable would run out within this long; 0 = off.
        exhaustion_term: Dur = "0s", check within(ZERO, LONGEST_WAIT);
        /// The span the stall rates are measured over.
        stall_window: Dur = "2s", check within(Duration::from_millis(100), Duration::from_secs(60));
        /// PSI `some` percent of the stall window at which to act at the term level; 0 = off.
        psi_some_term: Percent = 0.0;
        /// PSI `full` percent of the stall window; 0 = off.
        psi_full_term: Percent = 0.0;
        /// File refaults, bytes a second; 0 = off.
        refault_rate_term: Size = "0";
        /// Major faults a second; 0 = off.
        major_fault_rate_term: Count = 0u32;
        /// MemAvailable at or below which the early triggers (stall, PSI, exhaustion) count;
        /// `None`: always. Pressure on a machine with memory to spare is no reason to kill.
        early_available_below: OptLevel = "off";
    }
}

table! {
    /// One `[[cgroup]]`: a watched memory cgroup (or every cgroup its glob matches).
    #[derive(PartialEq)]
    WatchedCgroup / RawCgroup = "cgroup" [array] {
        /// Path glob in the memory hierarchy.
        path: CgroupPath;
        /// Available memory at or below which to warn; `None`: no warning.
        available_warn: OptLevel = "off";
        /// Available memory (limit − working set) at or below which to send SIGTERM.
        available_term: Level = "10%";
        /// ... and SIGKILL.
        available_kill: Level = "5%";
        /// What to do when the cgroup hangs in OOM.
        on_under_oom: Choice<UnderOom> = "kill";
        /// A process or the whole cgroup.
        kill_unit: Choice<KillUnit> = "process";
        /// Act at the term level when available memory would run out within this long; 0 = off.
        exhaustion_term: Dur = "0s", check within(ZERO, LONGEST_WAIT);
        /// cgroup v2: set `memory.high` (where it is `max`) just below the term level, so that
        /// the kernel's `high` event says the cgroup is filling.
        tripwire: Flag = true;
    }
}

table! {
    /// `[kill]`.
    #[derive(PartialEq)]
    Kill / RawKill = "kill" {
        /// SIGTERM → this long → SIGKILL. Above 0: SIGKILL at once is the kill level's job.
        grace: Dur = "5s", check within(ABOVE_ZERO, LONGEST_WAIT);
        /// Signal the victim's whole process group (its members within the scope).
        process_group: Flag = false;
        /// How long a SIGKILLed victim may take to exit before the next candidate is chosen.
        stuck_timeout: Dur = "10s", check within(ABOVE_ZERO, LONGEST_WAIT);
        /// Warn when more kills than this happen within a minute (a respawning workload).
        warn_kills_per_minute: Count = 10u32, check at_least(1, "must be at least 1");
        /// A candidate whose kill would free less (share of the domain's limit, or bytes) is
        /// never chosen.
        min_gain: Level = "2%";
        /// The most a percent `min_gain` asks for.
        min_gain_max: Size = "128MiB";
        /// The longest wait for an exited victim's memory to come back before another is asked.
        exit_settle: Dur = "500ms", check within(ZERO, Duration::from_secs(5));
    }
}

table! {
    /// `[report]`: where oomward keeps what it did and shows what it sees.
    #[derive(PartialEq)]
    Report / RawReport = "report" {
        /// The kill journal (one JSON record per kill, appended and fsync'd); `None`: off.
        journal: OptPath = default_journal().display().to_string();
        /// The journal is rotated (to `<journal>.1`) when it would grow past this, bytes.
        journal_max_size: Size = "4MiB", check at_least(64 << 10, "must be at least 64KiB (a kill record is a few KiB)");
        /// The daemon's view for `oomward status`, rewritten when it changed; `None`: off.
        status_file: OptPath = default_status_file().display().to_string();
        /// Serve Prometheus metrics over HTTP here; `None`: off.
        metrics_listen: Listen = "";
        /// Write the metrics to this file (node_exporter's textfile collector); `None`: off.
        metrics_file: OptPath = "";
        /// How often the metrics file is rewritten (when something changed).
        metrics_interval: Dur = "15s", check within(Duration::from_secs(1), LONGEST_WAIT);
    }
}

table! {
    /// `[hooks]`: programs run around kills, without privileges.
    #[derive(PartialEq)]
    Hooks / RawHooks = "hooks" {
        /// Run before a victim is signalled (argv; empty: none); the kill waits at most
        /// `pre_kill_timeout`.
        pre_kill: Argv = Vec::new();
        /// Run after a victim exited (or was given up on), with the outcome.
        post_kill: Argv = Vec::new();
        /// Run when a scope crosses its warn level.
        warn: Argv = Vec::new();
        /// The user hooks run as (never root).
        user: Text = "nobody";
        /// The longest a kill waits for `pre_kill`.
        pre_kill_timeout: Dur = "300ms", check within(ZERO, Duration::from_secs(5));
        /// A hook still running after this long is killed.
        timeout: Dur = "30s", check within(ABOVE_ZERO, LONGEST_WAIT);
        /// Hooks started in any minute beyond this are skipped (and counted).
        max_per_minute: Count = 30u32, check at_least(1, "must be at least 1 (remove the hooks to run none)");
    }
}

table! {
    /// `[notify]`: desktop notifications.
    #[derive(PartialEq)]
    Notify / RawNotify = "notify" {
        /// At warn and at each kill, notify every logged-in graphical user on their session bus.
        desktop: Flag = false;
        /// Users to notify besides the graphical sessions' (names).
        users: Names = Vec::new();
        /// Where the per-user runtime directories are (each bus is `<dir>/<uid>/bus`).
        runtime_dir: Dir = "/run/user";
    }
}

table! {
    /// `[policy]`.
    #[derive(PartialEq)]
    PolicyKeys / RawPolicy = "policy" {
        /// The built-in protection (PID 1, kernel threads, the session's essentials).
        builtin: Flag = true;
    }
}

table! {
    /// One `[[rule]]` as written: matchers and an action, compiled into a
    /// [`crate::policy::Rule`] once users are resolved.
    RuleKeys / RawRule = "rule" [array] {
        /// Glob on the executable path.
        exe: Opt<ExeGlob>;
        /// Which processes `exe` may match: the host's file only, or any.
        exe_namespace: Opt<Choice<crate::policy::ExeNamespace>>;
        /// Regex on `/proc/PID/comm`.
        comm: Opt<Pattern>;
        /// Regex on the command line.
        cmdline: Opt<Pattern>;
        /// Glob on the process's memory cgroup path.
        cgroup: Opt<CgroupGlob>;
        /// Real user: a name or a uid.
        user: Opt<User>;
        /// The pod's QoS class.
        qos: Opt<QosClass>;
        /// Glob on the pod's namespace.
        namespace: Opt<NameGlob>;
        /// Glob on the pod's name.
        pod: Opt<NameGlob>;
        /// Glob on the container's name.
        container: Opt<NameGlob>;
        /// Never choose a matching process.
        protect: Opt<Flag>;
        /// Add this to a matching process's badness, in `oom_score_adj` units.
        adjust: Opt<Adjust>;
    }
}

impl Kill {
    /// The timings of an episode: the kernel's and the loop's own, and what `[kill]` sets.
    pub fn limits(&self) -> crate::decide::limits::Limits {
        let exit_settle = self.exit_settle;
        let timings = crate::decide::limits::Limits::new(self.grace, self.stuck_timeout);
        crate::decide::limits::Limits {
            exit_settle,
            ..timings
        }
    }
}

/// Every table, in the order the effective config prints them.
pub fn tables() -> Vec<TableInfo> {
    vec![
        Daemon::table(),
        System::table(),
        WatchedCgroup::table(),
        Kill::table(),
        Report::table(),
        Hooks::table(),
        Notify::table(),
        PolicyKeys::table(),
        RuleKeys::table(),
    ]
}

/// What to write for `key` (`kill.grace`, `rule[2].user`), from its kind.
pub fn hint(key: &str) -> Option<String> {
    let (table, leaf) = key.split_once('.')?;
    let table = table.split('[').next()?;
    let t = tables().into_iter().find(|t| t.name == table)?;
    t.keys.iter().find(|k| k.name == leaf).map(|k| (k.hint)())
}
