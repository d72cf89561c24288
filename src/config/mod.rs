//! The configuration: TOML text → typed, validated [`Config`].
//!
//! Three steps, as in ripgrep: the files are parsed into tables that keep where each value was
//! set, a later file's keys over an earlier's (`source`); the merged tables are read key by key
//! ([`keys`], generated from the one key table) and then checked where two keys meet
//! (`validate`); what the config names on this
//! machine is resolved last (`resolve`: users from /etc/passwd, rules). Every error names its
//! file, line and key. Nothing half-valid comes out: a caller gets a whole `Config` or an error,
//! so a bad reload leaves the running config untouched.

pub mod keys;
pub mod kind;
mod resolve;
mod source;
pub mod value;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::policy::{Policy, Rule};
use crate::probe::passwd::Passwd;
pub use keys::{
    Daemon, Hooks, Kill, KillUnit, LogFormat, LogTarget, Notify, Report, Require, System, UnderOom,
    WatchedCgroup,
};
use keys::{PolicyKeys, RuleKeys};
pub use resolve::Accounts;
use source::{Keys, Layers};
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

impl ConfigError {
    fn invalid(file: impl Into<String>, line: Option<usize>, key: &str, message: String) -> Self {
        let (file, key) = (file.into(), key.to_string());
        ConfigError::Invalid {
            file,
            line,
            key,
            message,
        }
    }
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
    /// Who the hooks run as and whom notifications go to, resolved at load.
    pub accounts: Accounts,
    /// `[policy] builtin`.
    pub builtin_protection: bool,
    /// `[[rule]]`, compiled.
    pub rules: Vec<Rule>,
    /// `[[rule]]` as written, for the effective config.
    rule_keys: Vec<RuleKeys>,
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
        file: Option<PathBuf>,
        /// The drop-in directory.
        dir: Option<PathBuf>,
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

/// One file's text, named by its path. Run as root, oomward reads only files that only root
/// can change: a config names what root will kill and what it will never kill.
fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    let name = path.display().to_string();
    let invalid = |line, message| ConfigError::invalid(&name, line, "(file)", message);
    if crate::sys::is_root() {
        crate::sys::only_root_can_change(path).map_err(|why| {
            let fix = "refused, as oomward runs as root (chown root and chmod go-w it)";
            invalid(None, format!("{why}: {fix}"))
        })?;
    }
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: name.clone(),
        source,
    })?;
    String::from_utf8(bytes)
        .map(|text| (name.clone(), text))
        .map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let why = "not UTF-8 text (a TOML file must be UTF-8)";
            invalid(Some(line), why.into())
        })
}

/// The `*.toml` files of a drop-in directory, in name order (systemd's rule, so `50-desktop`
/// comes before `90-local`). A missing directory has none; an unreadable one is an error.
fn dropin_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            let path = dir.display().to_string();
            return Err(ConfigError::Read { path, source });
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

impl Config {
    /// Reads and validates one config file (no drop-ins).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_layers(Some(path), None)
    }

    /// Reads the main file (if any; it must exist when named) and then every `*.toml` in
    /// `dropins` (if the directory exists) in name order, merges them and validates the result.
    pub fn load_layers(main: Option<&Path>, dropins: Option<&Path>) -> Result<Self, ConfigError> {
        let mut paths: Vec<PathBuf> = main.map(Path::to_path_buf).into_iter().collect();
        if let Some(dir) = dropins {
            paths.extend(dropin_files(dir)?);
        }
        let files = paths.iter().map(|p| read_file(p));
        let passwd = Passwd::read(Path::new("/"));
        Self::from_files(files.collect::<Result<_, _>>()?, &passwd)
    }

    /// Validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let passwd = Passwd::read(Path::new("/"));
        Self::from_files(vec![(file.to_string(), text.to_string())], &passwd)
    }

    /// Validates a config made of these files, in order: `(name, text)`. Each file is parsed
    /// on its own (syntax errors name it), later files override earlier ones key by key, then
    /// the merged whole is read and checked (errors name the file that set the key).
    fn from_files(files: Vec<(String, String)>, passwd: &Passwd) -> Result<Self, ConfigError> {
        let layers = Layers::parse(&files)?;
        let mut config = Self::from_layers(&layers, passwd)?;
        let loaded = files.iter().map(|(name, text)| LoadedFile {
            name: name.clone(),
            len: text.len(),
            complete: text.is_empty() || text.ends_with('\n'),
        });
        config.files = loaded.collect();
        Ok(config)
    }

    /// Read every table, check what involves two keys, resolve what the config names.
    fn from_layers(layers: &Layers, passwd: &Passwd) -> Result<Self, ConfigError> {
        let nth = |table: &str, i: usize| format!("{table}[{}]", i + 1);
        let cgroups = layers.entries("cgroup").iter().enumerate();
        let cgroups = cgroups.map(|(i, c)| WatchedCgroup::read(c, &nth("cgroup", i)));
        let rules = layers.entries("rule").iter().enumerate();
        let rule_keys = rules.map(|(i, r)| RuleKeys::read(r, &nth("rule", i)));
        let mut config = Config {
            source: layers.files.clone(),
            daemon: Daemon::read(layers.table("daemon"), "daemon")?,
            system: System::read(layers.table("system"), "system")?,
            cgroups: cgroups.collect::<Result<_, _>>()?,
            kill: Kill::read(layers.table("kill"), "kill")?,
            report: Report::read(layers.table("report"), "report")?,
            hooks: Hooks::read(layers.table("hooks"), "hooks")?,
            notify: Notify::read(layers.table("notify"), "notify")?,
            accounts: Accounts::default(),
            builtin_protection: PolicyKeys::read(layers.table("policy"), "policy")?.builtin,
            rules: Vec::new(),
            rule_keys: rule_keys.collect::<Result<_, _>>()?,
            warnings: Vec::new(),
            files: Vec::new(),
        };
        config.validate(layers)?;
        config.accounts = resolve::accounts(&config, layers, passwd)?;
        let rules = config.rule_keys.iter().zip(layers.entries("rule"));
        for (i, keys) in rules.enumerate() {
            let rule = resolve::rule(keys, i, passwd, &mut config.warnings)?;
            config.rules.push(rule);
        }
        Ok(config)
    }

    /// The checks that involve more than one key, and the warnings.
    fn validate(&mut self, layers: &Layers) -> Result<(), ConfigError> {
        let (d, rd) = (&self.daemon, layers.table("daemon"));
        if d.min_interval > d.max_interval {
            let (min, max) = (
                format_duration(d.min_interval),
                format_duration(d.max_interval),
            );
            let why = format!("{min} is longer than max_interval {max}");
            let at = rd.either("min_interval", "max_interval");
            return Err(rd.err(at, "daemon.min_interval", why));
        }
        for (ladder, _) in self.system.ladders() {
            ordered(layers.table("system"), "system", &ladder)?;
        }
        for (i, (c, rc)) in self
            .cgroups
            .iter()
            .zip(layers.entries("cgroup"))
            .enumerate()
        {
            let table = format!("cgroup[{}]", i + 1);
            ordered(rc, &table, &c.ladder())?;
            let mut earlier = self.cgroups[..i].iter();
            if let Some(first) = earlier.position(|w| w.path.text == c.path.text) {
                let path = &c.path.text;
                let why = format!(
                    "{path:?} is already watched by cgroup[{}]: one [[cgroup]] per path",
                    first + 1
                );
                return Err(rc.err("path", &format!("{table}.path"), why));
            }
        }
        let files = &layers.files;
        if let Some(addr) = self.report.metrics_listen.filter(|a| !a.ip().is_loopback()) {
            self.warnings.push(format!("{files}: report.metrics_listen {addr} is not a loopback address: anyone who can reach it sees the watched cgroups' names and figures"));
        }
        if !self.system.enabled && self.cgroups.is_empty() {
            self.warnings.push(format!("{files}: no scope is enabled ([system] enabled = false and no [[cgroup]]): oomward watches nothing and will never act"));
        }
        Ok(())
    }

    /// Checks what only the machine can tell: a system threshold given as a size must be below
    /// half of what the machine has (a `mem_available_term` of 64GiB on a 16 GiB machine would
    /// act on every round of an idle machine), and levels in two units must be in order.
    /// `mem_total` and `swap_total` in bytes; a machine without swap accepts any swap level
    /// (the swap conditions do not block there).
    pub fn check_against_machine(&self, mem_total: u64, swap_total: u64) -> Result<(), String> {
        let enabled = self.system.enabled;
        for (ladder, swap) in self.system.ladders().into_iter().filter(|_| enabled) {
            let (total, what) = [(mem_total, "MemTotal"), (swap_total, "SwapTotal")][swap as usize];
            let (src, whole) = (&self.source, ByteSize(total));
            // The kill and term levels; a warning may come at any level.
            let big = |(_, l): &&(_, Amount)| matches!(l, Amount::Bytes(b) if *b >= total / 2);
            if let Some((key, l)) = ladder.iter().take(2).find(big).filter(|_| total > 0) {
                return Err(format!(
                    "{src}: system.{key}: {l} is at least half of this machine's {what} ({whole}): at most 50%"
                ));
            }
            if let Some([(key, l), (up, u)]) =
                misordered(&ladder, Some(total)).filter(|_| total > 0)
            {
                let (lb, ub) = (ByteSize(l.bytes_of(total)), ByteSize(u.bytes_of(total)));
                return Err(format!(
                    "{src}: system.{key}: {l} is above {up} {u} on this machine ({lb} of {ub}): the lower level would skip the upper one's stage"
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
            let (name, had) = (&old.name, old.len);
            let state = match new.files.iter().find(|f| f.name == old.name) {
                None => {
                    return Err(format!(
                        "{name} is gone (it had {had} bytes); restart to run without it"
                    ));
                }
                Some(f) if f.len == 0 => "empty",
                Some(f) if old.complete && !f.complete => "cut short, without a final newline",
                Some(_) => continue,
            };
            return Err(format!(
                "{name} is {state} (it had {had} bytes): still being written? Fix it or restart"
            ));
        }
        Ok(())
    }

    /// The least a kill must free in a domain whose limit is `limit` bytes.
    pub fn min_gain_bytes(&self, limit: u64) -> u64 {
        let k = &self.kill;
        match k.min_gain {
            Amount::Percent(_) => k.min_gain.bytes_of(limit).min(k.min_gain_max),
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
        let mut o = format!("# effective configuration from {}", self.source);
        self.daemon.write(&mut o);
        self.system.write(&mut o);
        self.cgroups.iter().for_each(|c| c.write(&mut o));
        self.kill.write(&mut o);
        self.report.write(&mut o);
        self.hooks.write(&mut o);
        self.notify.write(&mut o);
        let policy = PolicyKeys {
            builtin: self.builtin_protection,
        };
        policy.write(&mut o);
        for (keys, rule) in self.rule_keys.iter().zip(&self.rules) {
            let _ = write!(o, "\n# from line {}", rule.line);
            keys.write(&mut o);
        }
        o
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::parse("", "<built-in defaults>").expect("the built-in defaults are valid")
    }
}

/// A scope's levels, lowest first, each of which must be at or below the next: kill ≤ term ≤
/// warn (a warn level that is off stands at the term level).
type Ladder = Vec<(&'static str, Amount)>;

impl System {
    /// The memory levels and the swap levels (`true`: their total is SwapTotal).
    fn ladders(&self) -> [(Ladder, bool); 2] {
        let (kill, term) = (self.mem_available_kill, self.mem_available_term);
        let warn = self.mem_available_warn.unwrap_or(term);
        let memory = vec![
            ("mem_available_kill", kill),
            ("mem_available_term", term),
            ("mem_available_warn", warn),
        ];
        let swap = vec![
            ("swap_free_kill", self.swap_free_kill),
            ("swap_free_term", self.swap_free_term),
        ];
        [(memory, false), (swap, true)]
    }
}

impl WatchedCgroup {
    fn ladder(&self) -> Ladder {
        let (kill, term) = (self.available_kill, self.available_term);
        let warn = self.available_warn.unwrap_or(term);
        vec![
            ("available_kill", kill),
            ("available_term", term),
            ("available_warn", warn),
        ]
    }
}

/// The first level above the next one up, and that one: the lower level would skip the upper
/// one's stage. Levels in two units are compared only when the scope's `total` is known
/// ([`Config::check_against_machine`] for the system).
fn misordered(ladder: &Ladder, total: Option<u64>) -> Option<[(&'static str, Amount); 2]> {
    ladder
        .windows(2)
        .find(|w| level_above(w[0].1, w[1].1, total))
        .map(|w| [w[0], w[1]])
}

/// A ladder's levels as far as their units allow; the error is placed where the user wrote
/// one of the two (the other may be a default).
fn ordered(keys: &Keys, table: &str, ladder: &Ladder) -> Result<(), ConfigError> {
    let Some([(key, low), (up_key, up)]) = misordered(ladder, None) else {
        return Ok(());
    };
    let why = format!(
        "{low} is above {up_key} {up}: the kill level must be at or below the term level, the term level at or below the warn level"
    );
    Err(keys.err(keys.either(key, up_key), &format!("{table}.{key}"), why))
}

/// Whether `lower` is above `upper`; across units only when `total` is known.
fn level_above(lower: Amount, upper: Amount, total: Option<u64>) -> bool {
    match (lower, upper, total) {
        (Amount::Percent(l), Amount::Percent(u), _) => l > u,
        (Amount::Bytes(l), Amount::Bytes(u), _) => l > u,
        (l, u, Some(t)) => l.bytes_of(t) > u.bytes_of(t),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
