//! The configuration: TOML text → typed, validated [`Config`].
//!
//! Two steps, as in ripgrep: the file is deserialized into `Raw*` structs that keep the span of
//! every value, then [`Config::from_raw`] checks each value and each combination and reports the
//! first problem with its file, line and key. Nothing half-valid comes out: a caller either gets
//! a whole `Config` or an error, so a bad reload can leave the running config untouched.

pub mod value;

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::policy::{Action, ExeNamespace, Glob, Policy, Rule};
pub use value::{Amount, ByteSize, format_duration, parse_duration};

/// Where the daemon looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/oomward/config.toml";
/// Drop-ins merged over it, in name order (presets are enabled by linking them here).
pub const DEFAULT_DROPIN_DIR: &str = "/etc/oomward/config.d";

/// A config that cannot be used. Displayed as `FILE:LINE: KEY: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but a value or combination is invalid.
    #[error("{}", located(file, *line, key, message))]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// Dotted key, e.g. `system.mem_available_kill` or `rule[2].comm`.
        key: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// An error as printed: control characters the file held (echoed in a message or key) are
/// escaped, so a message is one line and cannot move a terminal's cursor.
fn located(file: &str, line: Option<usize>, key: &str, message: &str) -> String {
    let key = crate::report::escape_controls(key);
    let message = crate::report::escape_controls(message);
    match line {
        Some(l) => format!("{file}:{l}: {key}: {message}"),
        None => format!("{file}: {key}: {message}"),
    }
}

/// `log = ...`: where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The journal when stderr is the journal's stream, stderr on a terminal, else syslog.
    Auto,
    /// Plain lines on stderr.
    Stderr,
    /// The local syslog socket.
    Syslog,
    /// Native journal entries with structured fields (`OOMWARD_EVENT=` …); plain stderr
    /// lines when there is no journal.
    Journald,
}

/// `log_format = ...`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `message key=value ...`, for people and `grep`.
    Text,
    /// One JSON object per line (`message`, `severity`, then every field; numbers as numbers),
    /// for log shippers. A kill report is written whole, nested.
    Json,
}

/// `require = ...`: how memory and swap combine for the system scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// Memory AND swap low (earlyoom's rule: swap still free means the machine can cope).
    Both,
    /// Either one low.
    Either,
}

/// `on_under_oom = ...`: what to do with a v1 cgroup hung in OOM with `oom_kill_disable = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderOom {
    /// Kill its top-ranked process with SIGKILL.
    Kill,
    /// Leave it (someone else handles it).
    Ignore,
}

/// `kill_unit = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillUnit {
    /// The chosen process (and those sharing its memory).
    Process,
    /// Every process of the cgroup.
    Cgroup,
}

/// `[daemon]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    /// Longest sleep between samples.
    pub max_interval: Duration,
    /// Shortest sleep between samples.
    pub min_interval: Duration,
    /// Worst-case bytes per second at which memory can fill; sets the next sleep.
    pub fill_rate: u64,
    /// Decide and report, never signal.
    pub dry_run: bool,
    /// Let kernel events (memcg thresholds and notifications, PSI triggers) wake the loop;
    /// false leaves every wake-up to the timer (to compare, or on a kernel whose events
    /// misbehave).
    pub events: bool,
    /// Run the loop in the real-time scheduling class (`SCHED_FIFO` 1).
    pub realtime: bool,
    /// Log sink.
    pub log: LogTarget,
    /// Log line format (`--log-format` overrides it).
    pub log_format: LogFormat,
}

/// `[system]`.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// Watch the whole machine.
    pub enabled: bool,
    /// MemAvailable at or below which to warn (once per episode, naming the likely victim);
    /// `None` = no warn level. Swap combines with it as for `term`.
    pub mem_available_warn: Option<Amount>,
    /// MemAvailable at or below which to send SIGTERM (share of MemTotal or bytes).
    pub mem_available_term: Amount,
    /// ... and SIGKILL.
    pub mem_available_kill: Amount,
    /// SwapFree at or below which to send SIGTERM (share of SwapTotal or bytes).
    pub swap_free_term: Amount,
    /// ... and SIGKILL.
    pub swap_free_kill: Amount,
    /// How memory and swap combine.
    pub require: Require,
    /// PSI `full` avg10 percent at which to act at the term level; 0 = off.
    pub psi_full_avg10_term: f64,
    /// Act at the term level when MemAvailable would run out within this long at the fill
    /// rate seen; zero = off.
    pub exhaustion_term: Duration,
    /// Act at the term level on thrashing (see [`Stall`]).
    pub stall: Stall,
    /// MemAvailable (share of MemTotal or bytes) at or below which the early triggers count:
    /// the stall terms, `psi_full_avg10_term` and `exhaustion_term`. `None` (`off`): always.
    /// Pressure and projections on a machine with memory to spare are no reason to kill: I/O
    /// stalls on page cache, a burst of allocation that will stop.
    pub early_available_below: Option<Amount>,
}

/// The stall terms of `[system]`: act at the term level when, over `stall_window`, memory
/// stalls (PSI `some`/`full` percent of the window), evicted file pages come back (refaults,
/// bytes a second) or major faults run at or above their term, while MemAvailable is at or
/// below `early_available_below`. Every term is off (0) by default; the desktop preset sets
/// them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// The span the rates are measured over.
    pub window: Duration,
    /// PSI `some` percent of the window.
    pub psi_some_term: f64,
    /// PSI `full` percent of the window.
    pub psi_full_term: f64,
    /// File refaults, bytes a second.
    pub refault_rate_term: u64,
    /// Major faults a second.
    pub major_fault_rate_term: u64,
}

/// One `[[cgroup]]`.
#[derive(Debug, Clone)]
pub struct WatchedCgroup {
    /// Path glob in the memory hierarchy.
    pub path: Glob,
    /// Available memory at or below which to warn; `None` = no warn level.
    pub available_warn: Option<Amount>,
    /// Available memory (limit − working set) at or below which to send SIGTERM.
    pub available_term: Amount,
    /// ... and SIGKILL.
    pub available_kill: Amount,
    /// What to do when the cgroup hangs in OOM.
    pub on_under_oom: UnderOom,
    /// A process or the whole cgroup.
    pub kill_unit: KillUnit,
    /// Act at the term level when available memory would run out within this long at the
    /// fill rate seen; zero = off.
    pub exhaustion_term: Duration,
    /// cgroup v2: set `memory.high` (where it is `max`) just below the term level, so that the
    /// kernel's `high` event says the cgroup is filling instead of a look at the worst-case
    /// fill rate's cadence.
    pub tripwire: bool,
}

/// `[kill]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Kill {
    /// SIGTERM → this long → SIGKILL.
    pub grace: Duration,
    /// Signal the victim's whole process group (its members within the scope).
    pub process_group: bool,
    /// How long a SIGKILLed victim may take to exit before it is given up on (stuck in D
    /// state on a dead filesystem) and the next candidate is chosen.
    pub stuck_timeout: Duration,
    /// Warn when more kills than this happen within a minute (a respawning workload).
    pub warn_kills_per_minute: u32,
    /// A candidate whose kill would free less than this (share of the OOM domain's limit, or
    /// bytes) is never chosen.
    pub min_gain: Amount,
    /// The most a percent `min_gain` asks for, bytes (2 % of a 64 GiB machine is too much to
    /// ask of one kill).
    pub min_gain_max: u64,
}

/// `[report]`: where oomward keeps what it did and shows what it sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The kill journal (one JSON record per kill, appended and fsync'd); `None` = off.
    pub journal: Option<PathBuf>,
    /// The journal is rotated (to `<journal>.1`) when it would grow past this, bytes.
    pub journal_max_size: u64,
    /// The daemon's view for `oomward status`, rewritten atomically at most once a second when
    /// it changed; `None` = off.
    pub status_file: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP here; `None` = off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Write the metrics to this file (node_exporter's textfile collector); `None` = off.
    pub metrics_file: Option<PathBuf>,
    /// How often the metrics file is rewritten (when something changed).
    pub metrics_interval: Duration,
}

/// `[hooks]`: programs run around kills, without privileges.
#[derive(Debug, Clone, PartialEq)]
pub struct Hooks {
    /// Run before a victim is signalled (argv; empty = none). The kill waits for it at most
    /// `pre_kill_timeout`.
    pub pre_kill: Vec<String>,
    /// Run after a victim exited (or was given up on), with the outcome.
    pub post_kill: Vec<String>,
    /// Run when a scope crosses its warn level.
    pub warn: Vec<String>,
    /// The user hooks run as (never root), its uid and primary gid.
    pub user: String,
    /// Its uid and primary gid, resolved when the config was loaded (`None` when no hook is
    /// set and the user does not exist).
    pub ids: Option<(u32, u32)>,
    /// The longest a kill waits for `pre_kill`.
    pub pre_kill_timeout: Duration,
    /// A hook still running after this long is killed.
    pub timeout: Duration,
    /// Hooks started in any minute beyond this are skipped (and counted).
    pub max_per_minute: u32,
}

/// `[notify]`: desktop notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// At warn and at each kill, notify every logged-in graphical user (logind's sessions) on
    /// their session bus.
    pub desktop: bool,
    /// Users to notify besides the graphical sessions' (names, resolved to uids at load).
    pub users: Vec<(String, u32)>,
    /// Where the per-user runtime directories are (each bus is `<dir>/<uid>/bus`).
    pub runtime_dir: PathBuf,
}

/// The whole, valid configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, or `<built-in defaults>`.
    pub source: String,
    /// `[daemon]`.
    pub daemon: Daemon,
    /// `[system]`.
    pub system: System,
    /// `[[cgroup]]`.
    pub cgroups: Vec<WatchedCgroup>,
    /// `[kill]`.
    pub kill: Kill,
    /// `[report]`.
    pub report: Report,
    /// `[hooks]`.
    pub hooks: Hooks,
    /// `[notify]`.
    pub notify: Notify,
    /// `[policy] builtin`.
    pub builtin_protection: bool,
    /// `[[rule]]`, compiled.
    pub rules: Vec<Rule>,
    /// Things that are allowed but probably not meant (a comm-only protect rule).
    pub warnings: Vec<String>,
    /// The files it was read from, in order, for the reload guard.
    pub files: Vec<LoadedFile>,
}

/// What a reload compares: one file as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFile {
    /// Its path.
    pub name: String,
    /// Its length in bytes.
    pub len: usize,
    /// Whether it ends with a newline (a file cut short by a writer usually does not).
    pub complete: bool,
}

impl Config {
    /// Checks what only the machine can tell: a system threshold given as a size must be below
    /// what the machine has (a `mem_available_term` of 64GiB on a 16 GiB machine would act on
    /// every round of an idle machine). `mem_total` and `swap_total` in bytes; a machine without
    /// swap accepts any swap size (the swap conditions do not block there).
    pub fn check_against_machine(&self, mem_total: u64, swap_total: u64) -> Result<(), String> {
        if !self.system.enabled {
            return Ok(());
        }
        let s = &self.system;
        let checks = [
            (
                "system.mem_available_term",
                s.mem_available_term,
                mem_total,
                "MemTotal",
            ),
            (
                "system.mem_available_kill",
                s.mem_available_kill,
                mem_total,
                "MemTotal",
            ),
            (
                "system.swap_free_term",
                s.swap_free_term,
                swap_total,
                "SwapTotal",
            ),
            (
                "system.swap_free_kill",
                s.swap_free_kill,
                swap_total,
                "SwapTotal",
            ),
        ];
        for (key, amount, total, what) in checks {
            if let Amount::Bytes(b) = amount
                && total > 0
                && b >= total / 2
            {
                return Err(format!(
                    "{}: {key}: {} is at least half of this machine's {what} ({}): at most 50%",
                    self.source,
                    ByteSize(b),
                    ByteSize(total)
                ));
            }
        }
        Ok(())
    }

    /// Whether `new`, read on a reload, may replace the running `self`. A file being written
    /// (emptied by `>`, cut short, or removed and not yet back) reads as a valid but smaller
    /// config: every rule and scope it lost would silently stop applying. So a reload is
    /// refused when a file the running config came from is now missing, empty, or no longer
    /// ends with a newline; a restart takes such a config as it is.
    pub fn may_replace(&self, new: &Config) -> Result<(), String> {
        for old in self.files.iter().filter(|f| f.len > 0) {
            match new.files.iter().find(|f| f.name == old.name) {
                None => {
                    return Err(format!(
                        "{} is gone (it had {} bytes); restart to run without it",
                        old.name, old.len
                    ));
                }
                Some(f) if f.len == 0 || (old.complete && !f.complete) => {
                    return Err(format!(
                        "{} is {} (it had {} bytes): still being written? Fix it or restart",
                        f.name,
                        if f.len == 0 {
                            "empty"
                        } else {
                            "cut short, without a final newline"
                        },
                        old.len
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::parse("", "<built-in defaults>").expect("the built-in defaults are valid")
    }
}

type Val<T> = Option<Spanned<T>>;

/// Moves a value's span up by `base`, into the offset range of its file (see [`Part`]).
fn rebase<T>(v: &mut Val<T>, base: usize) {
    if let Some(s) = v.take() {
        let r = s.span();
        *v = Some(Spanned::new(r.start + base..r.end + base, s.into_inner()));
    }
}

/// A `Raw*` table: every field optional and spanned; `rebase` moves its spans into its file's
/// range, `overlay` lets a later file (a drop-in) override the fields it sets.
macro_rules! raw_table {
    ($name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct $name {
            $($field: Val<$ty>,)*
        }

        impl $name {
            fn rebase(&mut self, base: usize) {
                $(rebase(&mut self.$field, base);)*
            }

            #[allow(dead_code)]
            fn overlay(&mut self, later: Self) {
                $(if later.$field.is_some() {
                    self.$field = later.$field;
                })*
            }
        }
    };
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    daemon: RawDaemon,
    system: RawSystem,
    cgroup: Vec<RawCgroup>,
    kill: RawKill,
    report: RawReport,
    hooks: RawHooks,
    notify: RawNotify,
    policy: RawPolicy,
    rule: Vec<RawRule>,
}

impl RawConfig {
    fn rebase(&mut self, base: usize) {
        self.daemon.rebase(base);
        self.system.rebase(base);
        self.kill.rebase(base);
        self.report.rebase(base);
        self.hooks.rebase(base);
        self.notify.rebase(base);
        self.policy.rebase(base);
        self.cgroup.iter_mut().for_each(|c| c.rebase(base));
        self.rule.iter_mut().for_each(|r| r.rebase(base));
    }

    /// A drop-in over what came before: its keys override, its `[[cgroup]]` and `[[rule]]`
    /// entries are appended (a later rule is evaluated after the earlier ones).
    fn overlay(&mut self, later: RawConfig) {
        self.daemon.overlay(later.daemon);
        self.system.overlay(later.system);
        self.kill.overlay(later.kill);
        self.report.overlay(later.report);
        self.hooks.overlay(later.hooks);
        self.notify.overlay(later.notify);
        self.policy.overlay(later.policy);
        self.cgroup.extend(later.cgroup);
        self.rule.extend(later.rule);
    }
}

raw_table!(RawDaemon {
    max_interval: String,
    min_interval: String,
    fill_rate: String,
    dry_run: bool,
    events: bool,
    realtime: bool,
    log: String,
    log_format: String,
});

raw_table!(RawSystem {
    enabled: bool,
    mem_available_warn: String,
    mem_available_term: String,
    mem_available_kill: String,
    swap_free_term: String,
    swap_free_kill: String,
    require: String,
    psi_full_avg10_term: f64,
    exhaustion_term: String,
    stall_window: String,
    psi_some_term: f64,
    psi_full_term: f64,
    refault_rate_term: String,
    major_fault_rate_term: u64,
    early_available_below: String,
});

raw_table!(RawCgroup {
    path: String,
    available_warn: String,
    available_term: String,
    available_kill: String,
    on_under_oom: String,
    kill_unit: String,
    exhaustion_term: String,
    tripwire: bool,
});

raw_table!(RawKill {
    grace: String,
    process_group: bool,
    stuck_timeout: String,
    warn_kills_per_minute: u32,
    min_gain: String,
    min_gain_max: String,
});

raw_table!(RawReport {
    journal: String,
    journal_max_size: String,
    status_file: String,
    metrics_listen: String,
    metrics_file: String,
    metrics_interval: String,
});

raw_table!(RawHooks {
    pre_kill: Vec<String>,
    post_kill: Vec<String>,
    warn: Vec<String>,
    user: String,
    pre_kill_timeout: String,
    timeout: String,
    max_per_minute: u32,
});

raw_table!(RawNotify {
    desktop: bool,
    users: Vec<String>,
    runtime_dir: String,
});

raw_table!(RawPolicy { builtin: bool });

#[derive(Deserialize)]
#[serde(untagged)]
enum UserValue {
    Uid(i64),
    Name(String),
    Other(#[allow(dead_code)] toml::Value),
}

raw_table!(RawRule {
    exe: String,
    exe_namespace: String,
    comm: String,
    cmdline: String,
    cgroup: String,
    user: UserValue,
    qos: String,
    namespace: String,
    pod: String,
    container: String,
    protect: bool,
    adjust: i64,
});

/// One file of a config: the main file or a drop-in. Its values' spans were moved up by `base`,
/// so that a span says which file it came from.
struct Part {
    file: String,
    text: String,
    base: usize,
}

/// A place in the config files, for an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    file: String,
    line: usize,
}

/// Turns spans into files and lines and builds located errors, across the main file and its
/// drop-ins.
struct Source {
    parts: Vec<Part>,
    /// Where each `[[name]]` header is, in order through the files: found once, so that
    /// placing errors and rules stays linear in the size of the config.
    headers: std::collections::HashMap<String, Vec<Loc>>,
}

impl Source {
    /// The part a (rebased) offset falls in.
    fn part_of(&self, offset: usize) -> Option<&Part> {
        self.parts.iter().rev().find(|p| p.base <= offset)
    }

    /// File and 1-based line of a rebased offset.
    fn loc(&self, span: Option<Range<usize>>) -> Option<Loc> {
        let start = span?.start;
        let part = self.part_of(start)?;
        Some(Loc {
            file: part.file.clone(),
            line: line_of(&part.text, start - part.base),
        })
    }

    /// The files, for an error that no single value caused.
    fn files(&self) -> String {
        let names: Vec<&str> = self.parts.iter().map(|p| p.file.as_str()).collect();
        if names.is_empty() {
            "<built-in defaults>".to_string()
        } else {
            names.join(" + ")
        }
    }

    fn err(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        let loc = self.loc(span);
        ConfigError::Invalid {
            file: loc
                .as_ref()
                .map_or_else(|| self.files(), |l| l.file.clone()),
            line: loc.map(|l| l.line),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn new(parts: Vec<Part>) -> Self {
        let mut headers: std::collections::HashMap<String, Vec<Loc>> = Default::default();
        for p in &parts {
            for (i, l) in p.text.lines().enumerate() {
                let l = strip_comment(l).replace([' ', '\t'], "");
                if let Some(name) = l.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
                    headers.entry(name.to_string()).or_default().push(Loc {
                        file: p.file.clone(),
                        line: i + 1,
                    });
                }
            }
        }
        Source { parts, headers }
    }

    /// Where the `n`th (0-based) `[[name]]` header is, counting through the files in order,
    /// for errors about a whole table.
    fn header(&self, name: &str, n: usize) -> Option<Loc> {
        self.headers.get(name)?.get(n).cloned()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// For an error from the TOML parser: the dotted key at the error's line of `text`, found from
/// the text (the key before `=`, the nearest table header above, and which `[[...]]` it is).
fn key_at(text: &str, line: usize) -> String {
    let key = raw_key_at(text, line);
    // What the user wrote, not all of it: a file of one long line (carriage returns only)
    // would be echoed whole, and control characters shown raw.
    // (Control characters are escaped where the error is printed.)
    let short: String = key.chars().take(64).collect();
    if short.trim().is_empty() {
        "(line)".into()
    } else if short.len() < key.len() {
        format!("{short}...")
    } else {
        short
    }
}

fn raw_key_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(this) = lines.get(line.saturating_sub(1)) else {
        return "(file)".into();
    };
    let this = strip_comment(this).trim();
    if this.starts_with('[') {
        return this
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string();
    }
    let key = this
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    let header = lines[..line.saturating_sub(1)]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| l.trim_start().starts_with('['));
    match header {
        None => key.to_string(),
        Some((_, h)) => {
            let h = strip_comment(h).trim();
            let name = h.trim_matches(|c| c == '[' || c == ']').trim();
            if h.starts_with("[[") {
                let header = format!("[[{name}]]");
                let index = lines[..line]
                    .iter()
                    .filter(|l| strip_comment(l).replace(' ', "") == header)
                    .count();
                format!("{name}[{index}].{key}")
            } else {
                format!("{name}.{key}")
            }
        }
    }
}

/// A line without its trailing `# comment` (outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (c, in_str) {
            ('"' | '\'', None) => in_str = Some(c),
            (q, Some(open)) if q == open => in_str = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}

/// One file's text, named by its path.
fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    let name = path.display().to_string();
    trusted(path)?;
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: name.clone(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((name, text)),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(ConfigError::Invalid {
                file: name,
                line: Some(line),
                key: "(file)".into(),
                message: "not UTF-8 text (a TOML file must be UTF-8)".into(),
            })
        }
    }
}

/// Run as root, oomward reads only files that only root can change: a config names what root
/// will kill and what it will never kill. Refused, as sshd refuses them: a file or its
/// directory owned by another user, or writable by group or others (a directory with the
/// sticky bit, like /tmp, excepted: others cannot replace a root-owned file in it).
fn trusted(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let refuse = |what: &Path, why: String| ConfigError::Invalid {
        file: path.display().to_string(),
        line: None,
        key: "(file)".into(),
        message: format!(
            "{} {why}: refused, as oomward runs as root (chown root and chmod go-w it)",
            what.display()
        ),
    };
    let check = |what: &Path, dir: bool| -> Result<(), ConfigError> {
        let Ok(m) = std::fs::metadata(what) else {
            return Ok(()); // reading it says what is wrong
        };
        if m.uid() != 0 {
            return Err(refuse(what, format!("is owned by uid {}", m.uid())));
        }
        let sticky = dir && m.mode() & 0o1000 != 0;
        if m.mode() & 0o022 != 0 && !sticky {
            return Err(refuse(
                what,
                format!(
                    "is writable by {}",
                    if m.mode() & 0o002 != 0 {
                        "anyone"
                    } else {
                        "its group"
                    }
                ),
            ));
        }
        Ok(())
    };
    check(path, false)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check(dir, true)?;
    }
    Ok(())
}

/// The `*.toml` files of a drop-in directory, in name order (systemd's rule, so `50-desktop`
/// comes before `90-local`). A missing directory has none; an unreadable one is an error.
fn dropin_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// One file as spanned raw tables; a syntax or type error names the file, line and key, with
/// a hint for the usual mistakes.
fn parse_raw(file: &str, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let key = line.map_or_else(|| "(file)".to_string(), |l| key_at(text, l));
        let mut message = e.message().trim().to_string();
        if let Some(h) = type_hint(&key, &message) {
            message = format!("{message}; {h}");
        }
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            key,
            message,
        }
    })
}

/// Keys whose value is a duration, a size, or a share-or-size: their values are strings.
const DURATION_KEYS: &[&str] = &[
    "max_interval",
    "min_interval",
    "grace",
    "stuck_timeout",
    "exhaustion_term",
    "stall_window",
];
const SIZE_KEYS: &[&str] = &["fill_rate", "min_gain_max", "refault_rate_term"];
const AMOUNT_KEYS: &[&str] = &[
    "mem_available_term",
    "mem_available_kill",
    "swap_free_term",
    "swap_free_kill",
    "available_term",
    "available_kill",
    "min_gain",
    "early_available_below",
];

/// What the writer of `key = value` most likely meant, for a TOML type error.
fn type_hint(key: &str, message: &str) -> Option<String> {
    if !message.starts_with("invalid type") {
        return None;
    }
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let bare_number = message.contains("integer") || message.contains("floating point");
    if message.contains("expected a string") {
        let example = if DURATION_KEYS.contains(&leaf) {
            "a duration in quotes with its unit, e.g. \"5s\" or \"500ms\""
        } else if SIZE_KEYS.contains(&leaf) {
            "a size in quotes with its unit, e.g. \"512MiB\""
        } else if AMOUNT_KEYS.contains(&leaf) {
            "a percent or a size in quotes, e.g. \"10%\" or \"512MiB\""
        } else {
            "a string in quotes"
        };
        let what = if bare_number {
            "a bare number has no unit: "
        } else {
            ""
        };
        return Some(format!("{what}write {example}"));
    }
    if message.contains("expected a boolean") {
        return Some("write true or false, without quotes".into());
    }
    if message.contains("string")
        && (message.contains("expected u32")
            || message.contains("expected i64")
            || message.contains("expected f64"))
    {
        return Some("write the number without quotes".into());
    }
    None
}

/// A string as a TOML basic string (what `check-config` prints must parse again).
/// An optional threshold as the config writes it.
fn off_or(a: Option<Amount>) -> String {
    a.map_or_else(|| "off".to_string(), |a| a.to_string())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn span<T>(v: &Val<T>) -> Option<Range<usize>> {
    v.as_ref().map(|s| s.span())
}

impl Config {
    /// Reads and validates one config file (no drop-ins).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_layers(Some(path), None)
    }

    /// Reads the main file (if any; it must exist when named) and then every `*.toml` in
    /// `dropins` (if the directory exists) in name order, merges them and validates the result.
    pub fn load_layers(main: Option<&Path>, dropins: Option<&Path>) -> Result<Self, ConfigError> {
        let mut files = Vec::new();
        if let Some(path) = main {
            files.push(read_file(path)?);
        }
        if let Some(dir) = dropins {
            for path in dropin_files(dir)? {
                files.push(read_file(&path)?);
            }
        }
        Self::from_files(files)
    }

    /// Validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::from_files(vec![(file.to_string(), text.to_string())])
    }

    /// Validates a config made of these files, in order: `(name, text)`. Each file is parsed
    /// on its own (syntax and type errors name it), later files override earlier ones key by
    /// key, then the merged whole is checked (errors name the file that set the key).
    fn from_files(files: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let mut merged = RawConfig::default();
        let mut parts = Vec::new();
        let mut loaded = Vec::new();
        let mut base = 0;
        for (file, text) in files {
            loaded.push(LoadedFile {
                name: file.clone(),
                len: text.len(),
                complete: text.is_empty() || text.ends_with('\n'),
            });
            let mut raw = parse_raw(&file, &text)?;
            raw.rebase(base);
            merged.overlay(raw);
            let len = text.len();
            parts.push(Part { file, text, base });
            base += len + 1;
        }
        let mut config = Self::from_raw(merged, &Source::new(parts))?;
        config.files = loaded;
        Ok(config)
    }

    fn from_raw(raw: RawConfig, src: &Source) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let d = &raw.daemon;
        let daemon = Daemon {
            max_interval: duration(src, &d.max_interval, "daemon.max_interval", "5s")?,
            min_interval: duration(src, &d.min_interval, "daemon.min_interval", "2ms")?,
            fill_rate: size(src, &d.fill_rate, "daemon.fill_rate", "6GiB")?,
            dry_run: flag(&d.dry_run, false),
            events: flag(&d.events, true),
            realtime: flag(&d.realtime, true),
            log: choice(
                src,
                &d.log,
                "daemon.log",
                &[
                    ("auto", LogTarget::Auto),
                    ("stderr", LogTarget::Stderr),
                    ("syslog", LogTarget::Syslog),
                    ("journald", LogTarget::Journald),
                ],
                LogTarget::Auto,
            )?,
            log_format: choice(
                src,
                &d.log_format,
                "daemon.log_format",
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
                LogFormat::Text,
            )?,
        };
        if daemon.min_interval < Duration::from_micros(100) {
            return Err(src.err(
                span(&d.min_interval),
                "daemon.min_interval",
                "must be at least 100us",
            ));
        }
        if daemon.min_interval > daemon.max_interval {
            return Err(src.err(
                span(&d.min_interval).or(span(&d.max_interval)),
                "daemon.min_interval",
                format!(
                    "{} is longer than max_interval {}",
                    format_duration(daemon.min_interval),
                    format_duration(daemon.max_interval)
                ),
            ));
        }
        if !(1 << 20..=1 << 40).contains(&daemon.fill_rate) {
            return Err(src.err(
                span(&d.fill_rate),
                "daemon.fill_rate",
                format!(
                    "{} per second is not a plausible worst-case fill rate: between 1MiB and 1TiB",
                    ByteSize(daemon.fill_rate)
                ),
            ));
        }
        at_most(
            src,
            &d.max_interval,
            "daemon.max_interval",
            daemon.max_interval,
            LONGEST_SLEEP,
        )?;
        at_most(
            src,
            &d.min_interval,
            "daemon.min_interval",
            daemon.min_interval,
            Duration::from_secs(1),
        )?;

        let s = &raw.system;
        let system = System {
            enabled: flag(&s.enabled, true),
            mem_available_warn: optional_amount(
                src,
                &s.mem_available_warn,
                "system.mem_available_warn",
            )?,
            mem_available_term: amount(
                src,
                &s.mem_available_term,
                "system.mem_available_term",
                "10%",
            )?,
            mem_available_kill: amount(
                src,
                &s.mem_available_kill,
                "system.mem_available_kill",
                "5%",
            )?,
            swap_free_term: amount(src, &s.swap_free_term, "system.swap_free_term", "10%")?,
            swap_free_kill: amount(src, &s.swap_free_kill, "system.swap_free_kill", "5%")?,
            require: choice(
                src,
                &s.require,
                "system.require",
                &[("both", Require::Both), ("either", Require::Either)],
                Require::Both,
            )?,
            psi_full_avg10_term: s.psi_full_avg10_term.as_ref().map_or(0.0, |v| *v.get_ref()),
            exhaustion_term: duration(src, &s.exhaustion_term, "system.exhaustion_term", "0s")?,
            stall: stall_terms(src, s)?,
            early_available_below: optional_amount(
                src,
                &s.early_available_below,
                "system.early_available_below",
            )?,
        };
        if let Some(bound) = system.early_available_below {
            sane_threshold(
                src,
                &s.early_available_below,
                "system.early_available_below",
                bound,
            )?;
        }
        for (v, key, amount) in [
            (
                &s.mem_available_term,
                "system.mem_available_term",
                system.mem_available_term,
            ),
            (
                &s.mem_available_kill,
                "system.mem_available_kill",
                system.mem_available_kill,
            ),
            (
                &s.swap_free_term,
                "system.swap_free_term",
                system.swap_free_term,
            ),
            (
                &s.swap_free_kill,
                "system.swap_free_kill",
                system.swap_free_kill,
            ),
        ] {
            sane_threshold(src, v, key, amount)?;
        }
        at_most(
            src,
            &s.exhaustion_term,
            "system.exhaustion_term",
            system.exhaustion_term,
            LONGEST_WAIT,
        )?;
        ordered(
            src,
            system.mem_available_kill,
            system.mem_available_term,
            (&s.mem_available_kill, &s.mem_available_term),
            "system.mem_available_kill",
            "mem_available_term",
        )?;
        ordered(
            src,
            system.swap_free_kill,
            system.swap_free_term,
            (&s.swap_free_kill, &s.swap_free_term),
            "system.swap_free_kill",
            "swap_free_term",
        )?;
        if let Some(warn) = system.mem_available_warn {
            sane_threshold(
                src,
                &s.mem_available_warn,
                "system.mem_available_warn",
                warn,
            )?;
            ordered(
                src,
                system.mem_available_term,
                warn,
                (&s.mem_available_term, &s.mem_available_warn),
                "system.mem_available_term",
                "mem_available_warn",
            )?;
        }
        if !(0.0..=100.0).contains(&system.psi_full_avg10_term) {
            return Err(src.err(
                span(&s.psi_full_avg10_term),
                "system.psi_full_avg10_term",
                "must be a percent within 0 to 100 (0 turns it off)",
            ));
        }

        let mut cgroups = Vec::new();
        for (i, c) in raw.cgroup.iter().enumerate() {
            let key = |k: &str| format!("cgroup[{}].{k}", i + 1);
            let Some(path) = &c.path else {
                return Err(src
                    .err(None, &key("path"), "every [[cgroup]] needs a path")
                    .at(src.header("cgroup", i)));
            };
            let p = path.get_ref();
            if !p.starts_with('/') {
                return Err(src.err(
                    Some(path.span()),
                    &key("path"),
                    format!("{p:?} must start with / (a path in the memory cgroup hierarchy)"),
                ));
            }
            let glob = Glob::new(p).map_err(|m| src.err(Some(path.span()), &key("path"), m))?;
            let wc = WatchedCgroup {
                path: glob,
                available_warn: optional_amount(src, &c.available_warn, &key("available_warn"))?,
                available_term: amount(src, &c.available_term, &key("available_term"), "10%")?,
                available_kill: amount(src, &c.available_kill, &key("available_kill"), "5%")?,
                on_under_oom: choice(
                    src,
                    &c.on_under_oom,
                    &key("on_under_oom"),
                    &[("kill", UnderOom::Kill), ("ignore", UnderOom::Ignore)],
                    UnderOom::Kill,
                )?,
                kill_unit: choice(
                    src,
                    &c.kill_unit,
                    &key("kill_unit"),
                    &[("process", KillUnit::Process), ("cgroup", KillUnit::Cgroup)],
                    KillUnit::Process,
                )?,
                exhaustion_term: duration(src, &c.exhaustion_term, &key("exhaustion_term"), "0s")?,
                tripwire: flag(&c.tripwire, true),
            };
            ordered(
                src,
                wc.available_kill,
                wc.available_term,
                (&c.available_kill, &c.available_term),
                &key("available_kill"),
                "available_term",
            )?;
            sane_threshold(
                src,
                &c.available_term,
                &key("available_term"),
                wc.available_term,
            )?;
            sane_threshold(
                src,
                &c.available_kill,
                &key("available_kill"),
                wc.available_kill,
            )?;
            at_most(
                src,
                &c.exhaustion_term,
                &key("exhaustion_term"),
                wc.exhaustion_term,
                LONGEST_WAIT,
            )?;
            if let Some(warn) = wc.available_warn {
                sane_threshold(src, &c.available_warn, &key("available_warn"), warn)?;
                ordered(
                    src,
                    wc.available_term,
                    warn,
                    (&c.available_term, &c.available_warn),
                    &key("available_term"),
                    "available_warn",
                )?;
            }
            if let Some(first) = cgroups
                .iter()
                .position(|w: &WatchedCgroup| w.path.text == wc.path.text)
            {
                return Err(src.err(
                    Some(path.span()),
                    &key("path"),
                    format!(
                        "{p:?} is already watched by cgroup[{}]: one [[cgroup]] per path",
                        first + 1
                    ),
                ));
            }
            cgroups.push(wc);
        }

        let kill = Kill {
            grace: duration(src, &raw.kill.grace, "kill.grace", "5s")?,
            process_group: flag(&raw.kill.process_group, false),
            stuck_timeout: duration(src, &raw.kill.stuck_timeout, "kill.stuck_timeout", "10s")?,
            warn_kills_per_minute: raw
                .kill
                .warn_kills_per_minute
                .as_ref()
                .map_or(10, |v| *v.get_ref()),
            min_gain: amount(src, &raw.kill.min_gain, "kill.min_gain", "2%")?,
            min_gain_max: size(src, &raw.kill.min_gain_max, "kill.min_gain_max", "128MiB")?,
        };
        if kill.grace.is_zero() {
            return Err(src.err(
                span(&raw.kill.grace),
                "kill.grace",
                "must be above 0 (SIGKILL at once is the kill threshold's job)",
            ));
        }
        if kill.stuck_timeout.is_zero() {
            return Err(src.err(
                span(&raw.kill.stuck_timeout),
                "kill.stuck_timeout",
                "must be above 0",
            ));
        }
        if kill.warn_kills_per_minute == 0 {
            return Err(src.err(
                span(&raw.kill.warn_kills_per_minute),
                "kill.warn_kills_per_minute",
                "must be at least 1",
            ));
        }

        at_most(src, &raw.kill.grace, "kill.grace", kill.grace, LONGEST_WAIT)?;
        at_most(
            src,
            &raw.kill.stuck_timeout,
            "kill.stuck_timeout",
            kill.stuck_timeout,
            LONGEST_WAIT,
        )?;
        sane_threshold(src, &raw.kill.min_gain, "kill.min_gain", kill.min_gain)?;

        let report = report_section(src, &raw.report, &mut warnings)?;
        let hooks = hooks_section(src, &raw.hooks)?;
        let notify = notify_section(src, &raw.notify)?;

        let mut rules = Vec::new();
        for (i, r) in raw.rule.iter().enumerate() {
            let rule = compile_rule(src, r, i)?;
            if rule.action == Action::Protect && rule.matches(&crate::policy::sentinel_process()) {
                return Err(src
                    .err(None, &format!("rule[{}]", i + 1), "protects every process (its matchers match anything): narrow it with an exact exe, a user or a cgroup")
                    .at(src.header("rule", i)));
            }
            if rule.protects_by_spoofable_names_only() {
                let file = src
                    .header("rule", i)
                    .map_or_else(|| src.files(), |l| l.file);
                warnings.push(format!(
                    "{file}:{}: rule[{}]: protects by comm/cmdline alone; any user can give a process that name. Add exe, user or cgroup.",
                    rule.line,
                    i + 1
                ));
            }
            if rule.protects_by_exe_alone() {
                let file = src
                    .header("rule", i)
                    .map_or_else(|| src.files(), |l| l.file);
                warnings.push(format!(
                    "{file}:{}: rule[{}]: protects by exe alone; any user allowed to run it gets the protection (with LD_PRELOAD, for any program). Add user or cgroup (e.g. cgroup = \"/system.slice/**\").",
                    rule.line,
                    i + 1
                ));
            }
            rules.push(rule);
        }

        if !system.enabled && cgroups.is_empty() {
            warnings.push(format!(
                "{}: no scope is enabled ([system] enabled = false and no [[cgroup]]): oomward watches nothing and will never act",
                src.files()
            ));
        }
        Ok(Config {
            source: src.files(),
            daemon,
            system,
            cgroups,
            kill,
            report,
            hooks,
            notify,
            builtin_protection: flag(&raw.policy.builtin, true),
            rules,
            warnings,
            files: Vec::new(),
        })
    }

    /// `[report]`, `[hooks]` and `[notify]` as TOML, for [`Config::to_toml`].
    fn report_toml(&self, o: &mut String) {
        let path = |p: &Option<PathBuf>| {
            toml_str(
                &p.as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
            )
        };
        let argv = |a: &[String]| {
            let items: Vec<String> = a.iter().map(|s| toml_str(s)).collect();
            format!("[{}]", items.join(", "))
        };
        let r = &self.report;
        let _ = writeln!(o, "\n[report]");
        let _ = writeln!(o, "journal = {}", path(&r.journal));
        let _ = writeln!(o, "journal_max_size = \"{}\"", ByteSize(r.journal_max_size));
        let _ = writeln!(o, "status_file = {}", path(&r.status_file));
        let _ = writeln!(
            o,
            "metrics_listen = {}",
            toml_str(&r.metrics_listen.map_or(String::new(), |a| a.to_string()))
        );
        let _ = writeln!(o, "metrics_file = {}", path(&r.metrics_file));
        let _ = writeln!(
            o,
            "metrics_interval = \"{}\"",
            format_duration(r.metrics_interval)
        );
        let h = &self.hooks;
        let _ = writeln!(o, "\n[hooks]");
        let _ = writeln!(o, "pre_kill = {}", argv(&h.pre_kill));
        let _ = writeln!(o, "post_kill = {}", argv(&h.post_kill));
        let _ = writeln!(o, "warn = {}", argv(&h.warn));
        let _ = writeln!(o, "user = {}", toml_str(&h.user));
        let _ = writeln!(
            o,
            "pre_kill_timeout = \"{}\"",
            format_duration(h.pre_kill_timeout)
        );
        let _ = writeln!(o, "timeout = \"{}\"", format_duration(h.timeout));
        let _ = writeln!(o, "max_per_minute = {}", h.max_per_minute);
        let n = &self.notify;
        let _ = writeln!(o, "\n[notify]");
        let _ = writeln!(o, "desktop = {}", n.desktop);
        let users: Vec<String> = n.users.iter().map(|(name, _)| name.clone()).collect();
        let _ = writeln!(o, "users = {}", argv(&users));
        let _ = writeln!(
            o,
            "runtime_dir = {}",
            toml_str(&n.runtime_dir.display().to_string())
        );
    }

    /// The least a kill must free in a domain whose limit is `limit` bytes.
    pub fn min_gain_bytes(&self, limit: u64) -> u64 {
        match self.kill.min_gain {
            Amount::Percent(_) => self
                .kill
                .min_gain
                .bytes_of(limit)
                .min(self.kill.min_gain_max),
            Amount::Bytes(b) => b,
        }
    }

    /// The policy this config describes, for a daemon with the given pid and executable.
    pub fn policy(&self, self_pid: i32, self_exe: Option<String>) -> Policy {
        Policy {
            builtin: self.builtin_protection,
            rules: self.rules.clone(),
            self_pid,
            self_exe,
            first_user_uid: crate::policy::DEFAULT_FIRST_USER_UID,
        }
    }

    /// The effective config as TOML, every default filled in: what `check-config` prints.
    pub fn to_toml(&self) -> String {
        let mut o = String::new();
        let d = &self.daemon;
        let log = match d.log {
            LogTarget::Auto => "auto",
            LogTarget::Stderr => "stderr",
            LogTarget::Syslog => "syslog",
            LogTarget::Journald => "journald",
        };
        let _ = writeln!(o, "# effective configuration from {}", self.source);
        let _ = writeln!(o, "[daemon]");
        let _ = writeln!(o, "max_interval = \"{}\"", format_duration(d.max_interval));
        let _ = writeln!(o, "min_interval = \"{}\"", format_duration(d.min_interval));
        let _ = writeln!(o, "fill_rate = \"{}\"", ByteSize(d.fill_rate));
        let _ = writeln!(o, "dry_run = {}", d.dry_run);
        let _ = writeln!(o, "events = {}", d.events);
        let _ = writeln!(o, "realtime = {}", d.realtime);
        let _ = writeln!(o, "log = \"{log}\"");
        let _ = writeln!(
            o,
            "log_format = \"{}\"",
            if d.log_format == LogFormat::Json {
                "json"
            } else {
                "text"
            }
        );
        let s = &self.system;
        let _ = writeln!(o, "\n[system]");
        let _ = writeln!(o, "enabled = {}", s.enabled);
        let _ = writeln!(
            o,
            "mem_available_warn = \"{}\"",
            off_or(s.mem_available_warn)
        );
        let _ = writeln!(o, "mem_available_term = \"{}\"", s.mem_available_term);
        let _ = writeln!(o, "mem_available_kill = \"{}\"", s.mem_available_kill);
        let _ = writeln!(o, "swap_free_term = \"{}\"", s.swap_free_term);
        let _ = writeln!(o, "swap_free_kill = \"{}\"", s.swap_free_kill);
        let _ = writeln!(
            o,
            "require = \"{}\"",
            if s.require == Require::Both {
                "both"
            } else {
                "either"
            }
        );
        let _ = writeln!(o, "psi_full_avg10_term = {:?}", s.psi_full_avg10_term);
        let _ = writeln!(
            o,
            "exhaustion_term = \"{}\"",
            format_duration(s.exhaustion_term)
        );
        let st = &s.stall;
        let _ = writeln!(o, "stall_window = \"{}\"", format_duration(st.window));
        let _ = writeln!(o, "psi_some_term = {:?}", st.psi_some_term);
        let _ = writeln!(o, "psi_full_term = {:?}", st.psi_full_term);
        let _ = writeln!(
            o,
            "refault_rate_term = \"{}\"",
            ByteSize(st.refault_rate_term)
        );
        let _ = writeln!(o, "major_fault_rate_term = {}", st.major_fault_rate_term);
        let _ = writeln!(
            o,
            "early_available_below = \"{}\"",
            off_or(s.early_available_below)
        );
        for c in &self.cgroups {
            let _ = writeln!(o, "\n[[cgroup]]");
            let _ = writeln!(o, "path = {}", toml_str(&c.path.text));
            let _ = writeln!(o, "available_warn = \"{}\"", off_or(c.available_warn));
            let _ = writeln!(o, "available_term = \"{}\"", c.available_term);
            let _ = writeln!(o, "available_kill = \"{}\"", c.available_kill);
            let _ = writeln!(
                o,
                "on_under_oom = \"{}\"",
                if c.on_under_oom == UnderOom::Kill {
                    "kill"
                } else {
                    "ignore"
                }
            );
            let _ = writeln!(
                o,
                "kill_unit = \"{}\"",
                if c.kill_unit == KillUnit::Process {
                    "process"
                } else {
                    "cgroup"
                }
            );
            let _ = writeln!(
                o,
                "exhaustion_term = \"{}\"",
                format_duration(c.exhaustion_term)
            );
            let _ = writeln!(o, "tripwire = {}", c.tripwire);
        }
        let _ = writeln!(o, "\n[kill]");
        let _ = writeln!(o, "grace = \"{}\"", format_duration(self.kill.grace));
        let _ = writeln!(o, "process_group = {}", self.kill.process_group);
        let _ = writeln!(
            o,
            "stuck_timeout = \"{}\"",
            format_duration(self.kill.stuck_timeout)
        );
        let _ = writeln!(
            o,
            "warn_kills_per_minute = {}",
            self.kill.warn_kills_per_minute
        );
        let _ = writeln!(o, "min_gain = \"{}\"", self.kill.min_gain);
        let _ = writeln!(o, "min_gain_max = \"{}\"", ByteSize(self.kill.min_gain_max));
        self.report_toml(&mut o);
        let _ = writeln!(o, "\n[policy]");
        let _ = writeln!(o, "builtin = {}", self.builtin_protection);
        for r in &self.rules {
            let _ = writeln!(o, "\n# from line {}\n[[rule]]", r.line);
            if let Some(g) = &r.exe {
                let _ = writeln!(o, "exe = {}", toml_str(&g.text));
                let ns = if r.exe_namespace == ExeNamespace::Host {
                    "host"
                } else {
                    "any"
                };
                let _ = writeln!(o, "exe_namespace = \"{ns}\"");
            }
            if let Some(re) = &r.comm {
                let _ = writeln!(o, "comm = {}", toml_str(re.as_str()));
            }
            if let Some(re) = &r.cmdline {
                let _ = writeln!(o, "cmdline = {}", toml_str(re.as_str()));
            }
            if let Some(g) = &r.cgroup {
                let _ = writeln!(o, "cgroup = {}", toml_str(&g.text));
            }
            if let Some(uid) = r.uid {
                let _ = writeln!(o, "user = {uid}");
            }
            if let Some(q) = r.pod.qos {
                let _ = writeln!(o, "qos = \"{}\"", q.as_str());
            }
            for (k, g) in [
                ("namespace", &r.pod.namespace),
                ("pod", &r.pod.pod),
                ("container", &r.pod.container),
            ] {
                if let Some(g) = g {
                    let _ = writeln!(o, "{k} = {}", toml_str(&g.text));
                }
            }
            match r.action {
                Action::Protect => {
                    let _ = writeln!(o, "protect = true");
                }
                Action::Adjust(n) => {
                    let _ = writeln!(o, "adjust = {n}");
                }
            }
        }
        o
    }
}

impl ConfigError {
    /// The error placed at `loc` (a table's header) when it is known.
    fn at(mut self, loc: Option<Loc>) -> Self {
        if let (ConfigError::Invalid { file, line, .. }, Some(loc)) = (&mut self, loc) {
            *file = loc.file;
            *line = Some(loc.line);
        }
        self
    }
}

/// A threshold that may be `"off"` (the default).
fn optional_amount(
    src: &Source,
    v: &Val<String>,
    key: &str,
) -> Result<Option<Amount>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s) if s.get_ref().trim() == "off" => Ok(None),
        Some(_) => amount(src, v, key, "off").map(Some),
    }
}

/// A path that may be `""` (off); relative paths are refused (the daemon's working directory
/// is `/` under systemd but not in a shell).
fn optional_path(
    src: &Source,
    v: &Val<String>,
    key: &str,
    default: Option<PathBuf>,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    let text = s.get_ref();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.starts_with('/') {
        return Err(src.err(
            Some(s.span()),
            key,
            format!("{text:?} must be an absolute path (or \"\" for off)"),
        ));
    }
    Ok(Some(PathBuf::from(text)))
}

/// The first directory of a systemd-style directory variable (`STATE_DIRECTORY`,
/// `RUNTIME_DIRECTORY`: colon-separated, absolute), else `fallback`. The unit's
/// `StateDirectory=`/`RuntimeDirectory=` then decide where the files go, and a test can give a
/// daemon directories of its own.
fn systemd_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .and_then(|v| {
            let v = v.to_str()?.split(':').next()?.to_string();
            v.starts_with('/').then(|| PathBuf::from(v))
        })
        .unwrap_or_else(|| PathBuf::from(fallback))
}

/// Where the kill journal is by default.
pub fn default_journal() -> PathBuf {
    state_dir().join("kills.jsonl")
}

/// The state directory: `$STATE_DIRECTORY` under systemd, else /var/lib/oomward.
pub fn state_dir() -> PathBuf {
    systemd_dir("STATE_DIRECTORY", "/var/lib/oomward")
}

/// Where the last config that loaded is kept, for a start whose config does not load.
pub fn last_good_path() -> PathBuf {
    state_dir().join("last-good.toml")
}

/// The runtime directory: `$RUNTIME_DIRECTORY` under systemd, else /run/oomward.
pub fn runtime_dir() -> PathBuf {
    systemd_dir("RUNTIME_DIRECTORY", "/run/oomward")
}

/// Where the status file is by default.
pub fn default_status_file() -> PathBuf {
    runtime_dir().join("status.json")
}

fn report_section(
    src: &Source,
    r: &RawReport,
    warnings: &mut Vec<String>,
) -> Result<Report, ConfigError> {
    let metrics_listen = match &r.metrics_listen {
        None => None,
        Some(s) if s.get_ref().is_empty() => None,
        Some(s) => Some(
            parse_listen(s.get_ref())
                .map_err(|m| src.err(Some(s.span()), "report.metrics_listen", m))?,
        ),
    };
    if let Some(addr) = metrics_listen
        && !addr.ip().is_loopback()
    {
        warnings.push(format!(
            "{}: report.metrics_listen {addr} is not a loopback address: anyone who can reach it sees the watched cgroups' names and figures",
            src.files()
        ));
    }
    let report = Report {
        journal: optional_path(src, &r.journal, "report.journal", Some(default_journal()))?,
        journal_max_size: size(src, &r.journal_max_size, "report.journal_max_size", "4MiB")?,
        status_file: optional_path(
            src,
            &r.status_file,
            "report.status_file",
            Some(default_status_file()),
        )?,
        metrics_listen,
        metrics_file: optional_path(src, &r.metrics_file, "report.metrics_file", None)?,
        metrics_interval: duration(src, &r.metrics_interval, "report.metrics_interval", "15s")?,
    };
    if report.journal_max_size < 64 << 10 {
        return Err(src.err(
            span(&r.journal_max_size),
            "report.journal_max_size",
            "must be at least 64KiB (a kill record is a few KiB)",
        ));
    }
    if report.metrics_interval < Duration::from_secs(1) {
        return Err(src.err(
            span(&r.metrics_interval),
            "report.metrics_interval",
            "must be at least 1s",
        ));
    }
    at_most(
        src,
        &r.metrics_interval,
        "report.metrics_interval",
        report.metrics_interval,
        LONGEST_WAIT,
    )?;
    Ok(report)
}

/// `127.0.0.1:9747`, `[::1]:9747`, or a port alone (`9747`, `:9747`: on loopback).
fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!("{text:?} is not an address and port such as \"127.0.0.1:9747\" (or \"\" for off)")
    })
}

fn hooks_section(src: &Source, h: &RawHooks) -> Result<Hooks, ConfigError> {
    let argv = |v: &Val<Vec<String>>, key: &str| -> Result<Vec<String>, ConfigError> {
        let Some(s) = v else { return Ok(Vec::new()) };
        let args = s.get_ref();
        if let Some(first) = args.first()
            && !first.starts_with('/')
        {
            return Err(src.err(
                Some(s.span()),
                key,
                format!("{first:?}: the program must be an absolute path (hooks run with an empty PATH-free environment; no shell)"),
            ));
        }
        if args.iter().any(|a| a.contains('\0')) {
            return Err(src.err(Some(s.span()), key, "an argument holds a NUL byte"));
        }
        Ok(args.clone())
    };
    let mut hooks = Hooks {
        pre_kill: argv(&h.pre_kill, "hooks.pre_kill")?,
        post_kill: argv(&h.post_kill, "hooks.post_kill")?,
        warn: argv(&h.warn, "hooks.warn")?,
        user: h
            .user
            .as_ref()
            .map_or_else(|| "nobody".to_string(), |u| u.get_ref().clone()),
        ids: None,
        pre_kill_timeout: duration(src, &h.pre_kill_timeout, "hooks.pre_kill_timeout", "300ms")?,
        timeout: duration(src, &h.timeout, "hooks.timeout", "30s")?,
        max_per_minute: h.max_per_minute.as_ref().map_or(30, |v| *v.get_ref()),
    };
    at_most(
        src,
        &h.pre_kill_timeout,
        "hooks.pre_kill_timeout",
        hooks.pre_kill_timeout,
        Duration::from_secs(5),
    )?;
    at_most(
        src,
        &h.timeout,
        "hooks.timeout",
        hooks.timeout,
        LONGEST_WAIT,
    )?;
    if hooks.timeout.is_zero() {
        return Err(src.err(span(&h.timeout), "hooks.timeout", "must be above 0"));
    }
    if hooks.max_per_minute == 0 {
        return Err(src.err(
            span(&h.max_per_minute),
            "hooks.max_per_minute",
            "must be at least 1 (remove the hooks to run none)",
        ));
    }
    let any = !(hooks.pre_kill.is_empty() && hooks.post_kill.is_empty() && hooks.warn.is_empty());
    match nix::unistd::User::from_name(&hooks.user) {
        Ok(Some(u)) if u.uid.is_root() => {
            return Err(src.err(
                span(&h.user),
                "hooks.user",
                format!("{:?} is root: hooks run without privileges (a hook that needs them can ask a service that has them)", hooks.user),
            ));
        }
        Ok(Some(u)) => hooks.ids = Some((u.uid.as_raw(), u.gid.as_raw())),
        _ if any => {
            return Err(src.err(
                span(&h.user),
                "hooks.user",
                format!("no user named {:?} on this machine", hooks.user),
            ));
        }
        _ => {}
    }
    Ok(hooks)
}

fn notify_section(src: &Source, n: &RawNotify) -> Result<Notify, ConfigError> {
    let mut users = Vec::new();
    if let Some(list) = &n.users {
        for name in list.get_ref() {
            match nix::unistd::User::from_name(name) {
                Ok(Some(u)) if !u.uid.is_root() => users.push((name.clone(), u.uid.as_raw())),
                Ok(Some(_)) => {
                    return Err(src.err(
                        Some(list.span()),
                        "notify.users",
                        format!("{name:?} is root: notifications go to users' session buses"),
                    ));
                }
                _ => {
                    return Err(src.err(
                        Some(list.span()),
                        "notify.users",
                        format!("no user named {name:?} on this machine"),
                    ));
                }
            }
        }
    }
    Ok(Notify {
        desktop: flag(&n.desktop, false),
        users,
        runtime_dir: optional_path(
            src,
            &n.runtime_dir,
            "notify.runtime_dir",
            Some(PathBuf::from("/run/user")),
        )?
        .unwrap_or_else(|| PathBuf::from("/run/user")),
    })
}

/// `[system]`'s stall terms, checked: percents within 0–100, a window of 100 ms to a minute.
fn stall_terms(src: &Source, s: &RawSystem) -> Result<Stall, ConfigError> {
    let percent = |v: &Val<f64>, key: &str| -> Result<f64, ConfigError> {
        let p = v.as_ref().map_or(0.0, |v| *v.get_ref());
        if (0.0..=100.0).contains(&p) {
            Ok(p)
        } else {
            Err(src.err(
                span(v),
                key,
                "must be a percent within 0 to 100 (0 turns it off)",
            ))
        }
    };
    let stall = Stall {
        window: duration(src, &s.stall_window, "system.stall_window", "2s")?,
        psi_some_term: percent(&s.psi_some_term, "system.psi_some_term")?,
        psi_full_term: percent(&s.psi_full_term, "system.psi_full_term")?,
        refault_rate_term: size(src, &s.refault_rate_term, "system.refault_rate_term", "0")?,
        major_fault_rate_term: s.major_fault_rate_term.as_ref().map_or(0, |v| *v.get_ref()),
    };
    if stall.window < Duration::from_millis(100) || stall.window > Duration::from_secs(60) {
        return Err(src.err(
            span(&s.stall_window),
            "system.stall_window",
            "must be within 100ms and 1m",
        ));
    }
    Ok(stall)
}

fn flag(v: &Val<bool>, default: bool) -> bool {
    v.as_ref().map_or(default, |s| *s.get_ref())
}

fn duration(
    src: &Source,
    v: &Val<String>,
    key: &str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let text = v.as_ref().map_or(default, |s| s.get_ref().as_str());
    parse_duration(text).map_err(|m| src.err(span(v), key, m))
}

fn size(src: &Source, v: &Val<String>, key: &str, default: &str) -> Result<u64, ConfigError> {
    let text = v.as_ref().map_or(default, |s| s.get_ref().as_str());
    ByteSize::parse(text)
        .map(|b| b.0)
        .map_err(|m| src.err(span(v), key, m))
}

fn amount(src: &Source, v: &Val<String>, key: &str, default: &str) -> Result<Amount, ConfigError> {
    let text = v.as_ref().map_or(default, |s| s.get_ref().as_str());
    Amount::parse(text).map_err(|m| src.err(span(v), key, m))
}

fn choice<T: Copy>(
    src: &Source,
    v: &Val<String>,
    key: &str,
    options: &[(&str, T)],
    default: T,
) -> Result<T, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    options
        .iter()
        .find(|(name, _)| *name == s.get_ref())
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            src.err(
                Some(s.span()),
                key,
                format!("{:?} is not one of: {}", s.get_ref(), names.join(", ")),
            )
        })
}

/// A kill threshold must not lie above its term threshold (it would skip SIGTERM). Mixed units
/// (percent vs size) are compared when the scope's total is known.
/// The longest sleep between samples: beyond it a machine can fill unseen.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// The longest grace, stuck timeout or projection: a victim that blocks all action for longer
/// (a year was accepted once) leaves the machine to the kernel.
const LONGEST_WAIT: Duration = Duration::from_secs(600);
/// The highest percent a threshold may be: above half the memory free there is no shortage.
const HIGHEST_PERCENT: f64 = 50.0;

fn at_most(
    src: &Source,
    v: &Val<String>,
    key: &str,
    value: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if value > max {
        return Err(src.err(
            span(v),
            key,
            format!(
                "{} is longer than {} allows: at most {}",
                format_duration(value),
                key,
                format_duration(max)
            ),
        ));
    }
    Ok(())
}

fn sane_threshold(
    src: &Source,
    v: &Val<String>,
    key: &str,
    amount: Amount,
) -> Result<(), ConfigError> {
    if let Amount::Percent(p) = amount
        && p > HIGHEST_PERCENT
    {
        return Err(src.err(
            span(v),
            key,
            format!(
                "{p}% would act with more than half the memory free: at most {HIGHEST_PERCENT}%"
            ),
        ));
    }
    Ok(())
}

fn ordered(
    src: &Source,
    kill: Amount,
    term: Amount,
    (kill_val, term_val): (&Val<String>, &Val<String>),
    key: &str,
    term_key: &str,
) -> Result<(), ConfigError> {
    let above = match (kill, term) {
        (Amount::Percent(k), Amount::Percent(t)) => k > t,
        (Amount::Bytes(k), Amount::Bytes(t)) => k > t,
        _ => false,
    };
    if above {
        // Placed where the user wrote one of the two (the other may be a default).
        return Err(src.err(
            span(kill_val).or(span(term_val)),
            key,
            format!("{kill} is above {term_key} {term}: the kill level must be at or below the term level"),
        ));
    }
    Ok(())
}

fn compile_rule(src: &Source, r: &RawRule, i: usize) -> Result<Rule, ConfigError> {
    let n = i + 1;
    let key = |k: &str| format!("rule[{n}].{k}");
    let header = src.header("rule", i);
    let exe = match &r.exe {
        None => None,
        Some(v) => {
            let p = v.get_ref();
            if !(p.starts_with('/') || p.starts_with('*')) {
                return Err(src.err(
                    Some(v.span()),
                    &key("exe"),
                    format!("{p:?} is matched against the full executable path; write an absolute path or a glob such as \"**/{p}\""),
                ));
            }
            Some(Glob::new(p).map_err(|m| src.err(Some(v.span()), &key("exe"), m))?)
        }
    };
    let exe_namespace = choice(
        src,
        &r.exe_namespace,
        &key("exe_namespace"),
        &[("host", ExeNamespace::Host), ("any", ExeNamespace::Any)],
        ExeNamespace::Host,
    )?;
    let regex = |v: &Val<String>, k: &str| -> Result<Option<Regex>, ConfigError> {
        v.as_ref()
            .map(|s| {
                Regex::new(s.get_ref()).map_err(|e| {
                    let msg = e.to_string();
                    let last = msg.lines().last().unwrap_or("").trim().to_string();
                    src.err(
                        Some(s.span()),
                        &key(k),
                        format!("invalid regex {:?}: {last}", s.get_ref()),
                    )
                })
            })
            .transpose()
    };
    let comm = regex(&r.comm, "comm")?;
    let cmdline = regex(&r.cmdline, "cmdline")?;
    let cgroup = match &r.cgroup {
        None => None,
        Some(v) => {
            let p = v.get_ref();
            if !(p.starts_with('/') || p.starts_with('*')) {
                return Err(src.err(
                    Some(v.span()),
                    &key("cgroup"),
                    format!("{p:?} is matched against the full cgroup path; start it with / (e.g. \"/{p}\")"),
                ));
            }
            Some(Glob::new(p).map_err(|m| src.err(Some(v.span()), &key("cgroup"), m))?)
        }
    };
    if let (Some(ns), None) = (&r.exe_namespace, &exe) {
        return Err(src.err(
            Some(ns.span()),
            &key("exe_namespace"),
            "exe_namespace applies to an exe matcher, and this rule has none",
        ));
    }
    let uid = match &r.user {
        None => None,
        Some(v) => {
            Some(match v.get_ref() {
                UserValue::Uid(uid) => u32::try_from(*uid)
                    .ok()
                    .filter(|&u| u != u32::MAX)
                    .ok_or_else(|| {
                        src.err(
                            Some(v.span()),
                            &key("user"),
                            format!("{uid} is not a uid (0 to 4294967294; 4294967295 means none)"),
                        )
                    })?,
                UserValue::Other(_) => {
                    return Err(src.err(
                        Some(v.span()),
                        &key("user"),
                        "expected a user name or a numeric uid",
                    ));
                }
                UserValue::Name(name) => match nix::unistd::User::from_name(name) {
                    Ok(Some(u)) => u.uid.as_raw(),
                    _ => {
                        return Err(src.err(Some(v.span()), &key("user"), format!("no user named {name:?} on this machine (a numeric uid is accepted too)")));
                    }
                },
            })
        }
    };
    let pod = pod_match(src, r, &key)?;
    if exe.is_none()
        && comm.is_none()
        && cmdline.is_none()
        && cgroup.is_none()
        && uid.is_none()
        && pod.is_empty()
    {
        return Err(src
            .err(
                None,
                &format!("rule[{n}]"),
                "a rule needs at least one of exe, comm, cmdline, cgroup, user, qos, namespace, pod, container",
            )
            .at(header.clone()));
    }
    let protect = flag(&r.protect, false);
    let action = match (&r.adjust, protect) {
        (Some(a), true) => {
            return Err(src.err(
                Some(a.span()),
                &key("adjust"),
                "a rule either protects or adjusts, not both",
            ));
        }
        (Some(a), false) => {
            let v = *a.get_ref();
            if !(-1000..=1000).contains(&v) || v == 0 {
                return Err(src.err(
                    Some(a.span()),
                    &key("adjust"),
                    format!("{v} is not within -1000..=1000 (0 excluded), in oom_score_adj units"),
                ));
            }
            Action::Adjust(v as i32)
        }
        (None, true) => Action::Protect,
        (None, false) => {
            return Err(src
                .err(
                    span(&r.protect),
                    &key("protect"),
                    "the rule does nothing: set protect = true or an adjust",
                )
                .at(src.loc(span(&r.protect)).or(header.clone())));
        }
    };
    Ok(Rule {
        exe,
        exe_namespace,
        comm,
        cmdline,
        cgroup,
        uid,
        pod,
        action,
        line: header.map_or(0, |l| l.line),
    })
}

/// A rule's pod matchers: `qos` one of the three classes, the names as globs (a name has no
/// `/`, so `*` matches any part of it).
fn pod_match(
    src: &Source,
    r: &RawRule,
    key: &dyn Fn(&str) -> String,
) -> Result<crate::policy::PodMatch, ConfigError> {
    use crate::probe::kube::Qos;
    let qos = match &r.qos {
        None => None,
        Some(v) => Some(Qos::parse(v.get_ref()).ok_or_else(|| {
            src.err(
                Some(v.span()),
                &key("qos"),
                format!(
                    "{:?} is not one of: guaranteed, burstable, besteffort",
                    v.get_ref()
                ),
            )
        })?),
    };
    let glob = |v: &Val<String>, k: &str| -> Result<Option<Glob>, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) if s.get_ref().is_empty() => {
                Err(src.err(Some(s.span()), &key(k), "an empty name matches nothing"))
            }
            Some(s) => Glob::new(s.get_ref())
                .map(Some)
                .map_err(|m| src.err(Some(s.span()), &key(k), m)),
        }
    };
    Ok(crate::policy::PodMatch {
        qos,
        namespace: glob(&r.namespace, "namespace")?,
        pod: glob(&r.pod, "pod")?,
        container: glob(&r.container, "container")?,
    })
}

#[cfg(test)]
mod tests;

/// Where the config comes from, so a reload reads the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// No `--config`/`--config-dir`: [`DEFAULT_PATH`] if it exists (else the built-in
    /// defaults), then the drop-ins in [`DEFAULT_DROPIN_DIR`].
    Default,
    /// `--config FILE` (must exist) and/or `--config-dir DIR`. Without a FILE the default
    /// path is used as for [`ConfigOrigin::Default`]; without a DIR there are no drop-ins.
    Explicit {
        /// The main file.
        file: Option<std::path::PathBuf>,
        /// The drop-in directory.
        dir: Option<std::path::PathBuf>,
    },
}

impl ConfigOrigin {
    /// Loads the config from this origin.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let default = Path::new(DEFAULT_PATH);
        let default_main = default.exists().then_some(default);
        match self {
            ConfigOrigin::Default => {
                Config::load_layers(default_main, Some(Path::new(DEFAULT_DROPIN_DIR)))
            }
            ConfigOrigin::Explicit { file, dir } => {
                Config::load_layers(file.as_deref().or(default_main), dir.as_deref())
            }
        }
    }
}
