//! The key table: every key of every table, declared once with its kind, default, bounds and
//! doc line. From it come the typed sections with their defaults, reading them from the merged
//! files (errors placed at the value, with what to write for a value of the wrong type), the
//! printed effective config and the key list `config.example.toml` is checked against, where
//! each key's prose is.
//! What involves two keys (a kill level above its term level) is checked in `validate`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::kind::*;
use super::source::Keys;
use super::value::ByteSize;
use crate::named_enum;

/// One table of the config: its name, whether it is an array of tables (`[[name]]`), its keys.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// `daemon`, `cgroup`, ...
    pub name: &'static str,
    /// `[[name]]`.
    pub array: bool,
    /// Its keys, in order.
    pub keys: &'static [&'static str],
}

/// Reads one key: its value as written, else its default (written as a user would write it),
/// else what its kind means by absent. A value of the wrong TOML type gets what to write
/// instead, from the kind.
fn read_key<K: Kind>(keys: &Keys, key: &str, default: Option<K::Raw>) -> Result<K::Value, String> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or((key, key));
    match (keys.value(leaf), default) {
        (Some(v), _) => K::read(&K::Raw::deserialize(v.clone()).map_err(|e| {
            let message = e.message().trim().to_string();
            let bare = message.contains("expected a string")
                && (message.contains("integer") || message.contains("floating point"));
            match (message.starts_with("invalid type"), bare) {
                (false, _) => message,
                (true, false) => format!("{message}; {}", K::hint()),
                (true, true) => format!("{message}; a bare number has no unit: {}", K::hint()),
            }
        })?),
        (None, Some(d)) => K::read(&d).map_err(|m| format!("default: {m}")),
        (None, None) => K::absent().ok_or_else(|| {
            let table = table.split('[').next().unwrap_or(table);
            format!("required: every [[{table}]] needs a {leaf}")
        }),
    }
}

/// Declares one table: the typed section, reading, printing and key list.
macro_rules! table {
    ($(#[$meta:meta])* $name:ident = $table:literal $([$array:tt])? {
        $($field:ident: $kind:ty $(= $default:expr)? $(, check $check:expr)?, $doc:literal;)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $(#[doc = $doc] pub $field: <$kind as Kind>::Value,)*
        }

        impl $name {
            /// The table and its keys.
            pub fn table() -> TableInfo {
                TableInfo {
                    name: $table,
                    array: false $(|| stringify!($array) == "array")?,
                    keys: &[$(stringify!($field),)*],
                }
            }

            /// Every key read and checked against its own bounds; `prefix` names the table in
            /// errors (`daemon`, `cgroup[2]`).
            #[allow(clippy::useless_conversion)]
            pub(super) fn read(keys: &Keys, prefix: &str) -> Result<$name, ConfigError> {
                keys.known(Self::table().keys, prefix)?;
                Ok($name {$($field: {
                    let (leaf, key) = (stringify!($field), format!("{prefix}.{}", stringify!($field)));
                    let default: Option<<$kind as Kind>::Raw> = None $(.or(Some(($default).into())))?;
                    let value = read_key::<$kind>(keys, &key, default).map_err(|m| keys.err(leaf, &key, m))?;
                    $(($check)(&value).map_err(|m| keys.err(leaf, &key, m))?;)?
                    value
                },)*})
            }

            /// The table's header and keys as TOML lines, after a blank line.
            pub(super) fn write(&self, o: &mut String) {
                let _ = match false $(|| stringify!($array) == "array")? {
                    true => write!(o, "\n[[{}]]\n", $table),
                    false => write!(o, "\n[{}]\n", $table),
                };
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
        Auto = "auto", "The journal when stderr is the journal's stream, stderr on a terminal, else syslog.";
        Stderr = "stderr", "Plain lines on stderr.";
        Syslog = "syslog", "The local syslog socket.";
        Journald = "journald", "Native journal entries with structured fields; plain stderr lines without a journal.";
    }
}

named_enum! {
    /// `log_format = ...`: how log lines are written.
    pub enum LogFormat {
        Text = "text", "`message key=value ...`, for people and `grep`.";
        Json = "json", "One JSON object per line, for log shippers.";
    }
}

named_enum! {
    /// `require = ...`: how memory and swap combine for the system scope.
    pub enum Require {
        Both = "both", "Memory AND swap low (swap still free means the machine can cope).";
        Either = "either", "Either one low.";
    }
}

named_enum! {
    /// `on_under_oom = ...`: what to do with a v1 cgroup hung in OOM with `oom_kill_disable = 1`.
    pub enum UnderOom {
        Kill = "kill", "Kill its top-ranked process with SIGKILL.";
        Ignore = "ignore", "Leave it (someone else handles it).";
    }
}

named_enum! {
    /// `kill_unit = ...`.
    pub enum KillUnit {
        Process = "process", "The chosen process (and those sharing its memory).";
        Cgroup = "cgroup", "Every process of the cgroup.";
    }
}

/// The longest sleep between samples: beyond it a machine can fill unseen.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// The longest grace, stuck timeout or projection: a victim that blocks all action for longer
/// (a year was accepted once) leaves the machine to the kernel.
const LONGEST_WAIT: Duration = Duration::from_secs(600);
const ZERO: Duration = Duration::ZERO;
const ABOVE_ZERO: Duration = Duration::from_micros(1);
const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

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
    Daemon = "daemon" {
        max_interval: Dur = "5s", check within(ZERO, LONGEST_SLEEP), "Longest sleep between samples.";
        min_interval: Dur = "2ms", check within(Duration::from_micros(100), ms(1000)), "Shortest sleep between samples.";
        fill_rate: Size = "6GiB", check plausible_fill_rate, "Worst-case bytes per second at which memory can fill; sets the next sleep.";
        dry_run: Flag = false, "Decide and report, never signal.";
        events: Flag = true, "Let kernel events (memcg thresholds and notifications, PSI triggers) wake the loop.";
        realtime: Flag = true, "Run the loop in the real-time scheduling class (`SCHED_FIFO` 1).";
        log: Choice<LogTarget> = "auto", "Log sink.";
        log_format: Choice<LogFormat> = "text", "Log line format (`--log-format` overrides it).";
    }
}

table! {
    /// `[system]`: the whole machine.
    #[derive(PartialEq)]
    System = "system" {
        enabled: Flag = true, "Watch the whole machine.";
        mem_available_warn: OptLevel = "off", "MemAvailable at or below which to warn, naming the likely victim.";
        mem_available_term: Level = "10%", "MemAvailable at or below which to send SIGTERM (share of MemTotal or bytes).";
        mem_available_kill: Level = "5%", "... and SIGKILL.";
        swap_free_term: Level = "10%", "SwapFree at or below which to send SIGTERM (share of SwapTotal or bytes).";
        swap_free_kill: Level = "5%", "... and SIGKILL.";
        require: Choice<Require> = "both", "How memory and swap combine.";
        psi_full_avg10_term: Percent = 0.0, "PSI `full` avg10 percent at which to act at the term level; 0 = off.";
        exhaustion_term: Dur = "0s", check within(ZERO, LONGEST_WAIT), "Act at the term level when MemAvailable would run out within this long; 0 = off.";
        stall_window: Dur = "2s", check within(ms(100), ms(60_000)), "The span the stall rates are measured over.";
        psi_some_term: Percent = 0.0, "PSI `some` percent of the stall window at which to act at the term level; 0 = off.";
        psi_full_term: Percent = 0.0, "PSI `full` percent of the stall window; 0 = off.";
        refault_rate_term: Size = "0", "File refaults, bytes a second; 0 = off.";
        major_fault_rate_term: Count = 0u32, "Major faults a second; 0 = off.";
        early_available_below: OptLevel = "off", "MemAvailable at or below which the early triggers (stall, PSI, exhaustion) count; `None`: always.";
    }
}

table! {
    /// One `[[cgroup]]`: a watched memory cgroup (or every cgroup its glob matches).
    #[derive(PartialEq)]
    WatchedCgroup = "cgroup" [array] {
        path: CgroupPath, "Path glob in the memory hierarchy.";
        available_warn: OptLevel = "off", "Available memory at or below which to warn; `None`: no warning.";
        available_term: Level = "10%", "Available memory (limit − working set) at or below which to send SIGTERM.";
        available_kill: Level = "5%", "... and SIGKILL.";
        on_under_oom: Choice<UnderOom> = "kill", "What to do when the cgroup hangs in OOM.";
        kill_unit: Choice<KillUnit> = "process", "A process or the whole cgroup.";
        exhaustion_term: Dur = "0s", check within(ZERO, LONGEST_WAIT), "Act at the term level when available memory would run out within this long; 0 = off.";
        tripwire: Flag = true, "cgroup v2: set `memory.high` (where it is `max`) just below the term level, to be woken as it fills.";
    }
}

table! {
    /// `[kill]`.
    #[derive(PartialEq)]
    Kill = "kill" {
        grace: Dur = "5s", check within(ABOVE_ZERO, LONGEST_WAIT), "SIGTERM → this long → SIGKILL.";
        process_group: Flag = false, "Signal the victim's whole process group (its members within the scope).";
        stuck_timeout: Dur = "10s", check within(ABOVE_ZERO, LONGEST_WAIT), "How long a SIGKILLed victim may take to exit before the next is chosen.";
        warn_kills_per_minute: Count = 10u32, check at_least(1, "must be at least 1"), "Warn when more kills than this happen within a minute.";
        min_gain: Level = "2%", "A candidate whose kill would free less (share of the domain's limit, or bytes) is never chosen.";
        min_gain_max: Size = "128MiB", "The most a percent `min_gain` asks for.";
        exit_settle: Dur = "500ms", check within(ZERO, ms(5000)), "The longest wait for an exited victim's memory to come back.";
    }
}

table! {
    /// `[report]`: where oomward keeps what it did and shows what it sees.
    #[derive(PartialEq)]
    Report = "report" {
        journal: OptPath = crate::paths::state_dir().join("kills.jsonl").display().to_string(), "The kill journal (one JSON record per kill); `None`: off.";
        journal_max_size: Size = "4MiB", check at_least(64 << 10, "must be at least 64KiB (a kill record is a few KiB)"), "The journal is rotated past this.";
        status_file: OptPath = crate::paths::runtime_dir().join("status.json").display().to_string(), "The daemon's view for `oomward status`; `None`: off.";
        metrics_listen: Listen = "", "Serve Prometheus metrics over HTTP here; `None`: off.";
        metrics_file: OptPath = "", "Write the metrics to this file (node_exporter's textfile collector); `None`: off.";
        metrics_interval: Dur = "15s", check within(ms(1000), LONGEST_WAIT), "How often the metrics file is rewritten.";
    }
}

table! {
    /// `[hooks]`: programs run around kills, without privileges.
    #[derive(PartialEq)]
    Hooks = "hooks" {
        pre_kill: Argv = Vec::new(), "Run before a victim is signalled (argv; empty: none), waited for `pre_kill_timeout`.";
        post_kill: Argv = Vec::new(), "Run after a victim exited (or was given up on), with the outcome.";
        warn: Argv = Vec::new(), "Run when a scope crosses its warn level.";
        user: Text = "nobody", "The user hooks run as (never root).";
        pre_kill_timeout: Dur = "300ms", check within(ZERO, ms(5000)), "The longest a kill waits for `pre_kill`.";
        timeout: Dur = "30s", check within(ABOVE_ZERO, LONGEST_WAIT), "A hook still running after this long is killed.";
        max_per_minute: Count = 30u32, check at_least(1, "must be at least 1 (remove the hooks to run none)"), "Hooks beyond this in a minute are skipped.";
    }
}

table! {
    /// `[notify]`: desktop notifications.
    #[derive(PartialEq)]
    Notify = "notify" {
        desktop: Flag = false, "At warn and at each kill, notify every logged-in graphical user on their session bus.";
        users: Names = Vec::new(), "Users to notify besides the graphical sessions' (names).";
        runtime_dir: Dir = "/run/user", "Where the per-user runtime directories are (each bus is `<dir>/<uid>/bus`).";
    }
}

table! {
    /// `[policy]`.
    #[derive(PartialEq)]
    PolicyKeys = "policy" {
        builtin: Flag = true, "The built-in protection (PID 1, kernel threads, the session's essentials).";
    }
}

table! {
    /// One `[[rule]]` as written: matchers and an action, compiled into a
    /// [`crate::policy::Rule`] once users are resolved.
    RuleKeys = "rule" [array] {
        exe: Opt<ExeGlob>, "Glob on the executable path.";
        exe_namespace: Opt<Choice<crate::policy::ExeNamespace>>, "Which processes `exe` may match: the host's file only, or any.";
        comm: Opt<Pattern>, "Regex on `/proc/PID/comm`.";
        cmdline: Opt<Pattern>, "Regex on the command line.";
        cgroup: Opt<CgroupGlob>, "Glob on the process's memory cgroup path.";
        user: Opt<User>, "Real user: a name or a uid.";
        qos: Opt<QosClass>, "The pod's QoS class.";
        namespace: Opt<NameGlob>, "Glob on the pod's namespace.";
        pod: Opt<NameGlob>, "Glob on the pod's name.";
        container: Opt<NameGlob>, "Glob on the container's name.";
        protect: Opt<Flag>, "Never choose a matching process.";
        adjust: Opt<Adjust>, "Add this to a matching process's badness, in `oom_score_adj` units.";
    }
}

impl Kill {
    /// The timings of an episode: the kernel's and the loop's own, and what `[kill]` sets.
    pub fn limits(&self) -> crate::decide::limits::Limits {
        let timings = crate::decide::limits::Limits::new(self.grace, self.stuck_timeout);
        let exit_settle = self.exit_settle;
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
