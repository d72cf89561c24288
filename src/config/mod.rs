//! The configuration: TOML text → typed, validated [`Config`].
//!
//! Three steps, as in ripgrep: each file is deserialized into raw tables that keep the span of
//! every value ([`keys`], generated from the one key table); the merged tables are read key by
//! key and then checked where two keys meet (`validate`); what the config names on this
//! machine is resolved last (`resolve`: users from /etc/passwd, rules). Every error names its
//! file, line and key. Nothing half-valid comes out: a caller gets a whole `Config` or an error,
//! so a bad reload leaves the running config untouched.

pub mod keys;
pub mod kind;
mod resolve;
mod source;
pub mod value;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::policy::{Action, Policy, Rule};
use crate::probe::passwd::Passwd;
pub use keys::{
    Daemon, Hooks, Kill, KillUnit, LogFormat, LogTarget, Notify, Report, Require, System, UnderOom,
    WatchedCgroup,
};
use keys::{PolicyKeys, RawCgroup, RawDaemon, RawHooks, RawKill, RawNotify, RawPolicy};
use keys::{RawReport, RawRule, RawSystem, RuleKeys};
pub use resolve::Accounts;
use source::{Loc, Part, Source, key_at, line_of};
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
        let warn = s.mem_available_warn.unwrap_or(s.mem_available_term);
        let pairs = [
            (
                "mem_available_kill",
                s.mem_available_kill,
                "mem_available_term",
                s.mem_available_term,
                mem_total,
            ),
            (
                "swap_free_kill",
                s.swap_free_kill,
                "swap_free_term",
                s.swap_free_term,
                swap_total,
            ),
            (
                "mem_available_term",
                s.mem_available_term,
                "mem_available_warn",
                warn,
                mem_total,
            ),
        ];
        for (key, lower, upper_key, upper, total) in pairs {
            if total > 0 && level_above(lower, upper, Some(total)) {
                return Err(format!(
                    "{}: system.{key}: {lower} is above {upper_key} {upper} on this machine ({} of {}): the lower level would skip the upper one's stage",
                    self.source,
                    ByteSize(lower.bytes_of(total)),
                    ByteSize(upper.bytes_of(total))
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

/// Moves a value's span up by `base`, into the offset range of its file (see `Part`).
fn rebase<T>(v: &mut Val<T>, base: usize) {
    if let Some(s) = v.take() {
        let r = s.span();
        *v = Some(Spanned::new(r.start + base..r.end + base, s.into_inner()));
    }
}

fn span<T>(v: &Val<T>) -> Option<Range<usize>> {
    v.as_ref().map(|s| s.span())
}

/// One file's tables as written.
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
/// what to write instead for a value of the wrong type (from the key's kind).
fn parse_raw(file: &str, text: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let key = line.map_or_else(|| "(file)".to_string(), |l| key_at(text, l));
        let mut message = e.message().trim().to_string();
        if message.starts_with("invalid type")
            && let Some(hint) = keys::hint(&key)
        {
            let bare = message.contains("expected a string")
                && (message.contains("integer") || message.contains("floating point"));
            let what = if bare {
                "a bare number has no unit: "
            } else {
                ""
            };
            message = format!("{message}; {what}{hint}");
        }
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            key,
            message,
        }
    })
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
        let passwd = Passwd::read(Path::new("/"));
        let mut config = Self::from_raw(&merged, &Source::new(parts), &passwd)?;
        config.files = loaded;
        Ok(config)
    }

    /// Read every table, check what involves two keys, resolve what the config names.
    fn from_raw(raw: &RawConfig, src: &Source, passwd: &Passwd) -> Result<Self, ConfigError> {
        let at_header = |e: ConfigError, table: &str, i: usize| match &e {
            ConfigError::Invalid { line: None, .. } => e.at(src.header(table, i)),
            _ => e,
        };
        let mut cgroups = Vec::new();
        for (i, c) in raw.cgroup.iter().enumerate() {
            let read = c.read(src, &format!("cgroup[{}]", i + 1));
            cgroups.push(read.map_err(|e| at_header(e, "cgroup", i))?);
        }
        let mut rule_keys = Vec::new();
        for (i, r) in raw.rule.iter().enumerate() {
            rule_keys.push(r.read(src, &format!("rule[{}]", i + 1))?);
        }
        let mut config = Config {
            source: src.files(),
            daemon: raw.daemon.read(src, "daemon")?,
            system: raw.system.read(src, "system")?,
            cgroups,
            kill: raw.kill.read(src, "kill")?,
            report: raw.report.read(src, "report")?,
            hooks: raw.hooks.read(src, "hooks")?,
            notify: raw.notify.read(src, "notify")?,
            accounts: Accounts::default(),
            builtin_protection: raw.policy.read(src, "policy")?.builtin,
            rules: Vec::new(),
            rule_keys,
            warnings: Vec::new(),
            files: Vec::new(),
        };
        config.validate(raw, src)?;
        config.accounts = resolve::accounts(
            src,
            (&config.hooks, &raw.hooks.user),
            (&config.notify, &raw.notify.users),
            passwd,
        )?;
        for (i, (keys, r)) in config.rule_keys.iter().zip(&raw.rule).enumerate() {
            let rule = resolve::rule(src, keys, r, i, passwd)?;
            config.rules.push(rule);
        }
        config.check_rules(src)?;
        Ok(config)
    }

    /// The checks that involve more than one key, and the warnings.
    fn validate(&mut self, raw: &RawConfig, src: &Source) -> Result<(), ConfigError> {
        let (d, rd) = (&self.daemon, &raw.daemon);
        if d.min_interval > d.max_interval {
            return Err(src.err(
                span(&rd.min_interval).or(span(&rd.max_interval)),
                "daemon.min_interval",
                format!(
                    "{} is longer than max_interval {}",
                    format_duration(d.min_interval),
                    format_duration(d.max_interval)
                ),
            ));
        }
        self.check_levels(raw, src)?;
        if let Some(addr) = self.report.metrics_listen
            && !addr.ip().is_loopback()
        {
            self.warnings.push(format!(
                "{}: report.metrics_listen {addr} is not a loopback address: anyone who can reach it sees the watched cgroups' names and figures",
                src.files()
            ));
        }
        if !self.system.enabled && self.cgroups.is_empty() {
            self.warnings.push(format!(
                "{}: no scope is enabled ([system] enabled = false and no [[cgroup]]): oomward watches nothing and will never act",
                src.files()
            ));
        }
        Ok(())
    }

    /// Each scope's levels in order (kill ≤ term ≤ warn) where their units allow, and one
    /// `[[cgroup]]` per path.
    fn check_levels(&self, raw: &RawConfig, src: &Source) -> Result<(), ConfigError> {
        let (s, rs) = (&self.system, &raw.system);
        let levels = [
            (
                "system.mem_available_kill",
                "mem_available_term",
                s.mem_available_kill,
                s.mem_available_term,
                &rs.mem_available_kill,
                &rs.mem_available_term,
            ),
            (
                "system.swap_free_kill",
                "swap_free_term",
                s.swap_free_kill,
                s.swap_free_term,
                &rs.swap_free_kill,
                &rs.swap_free_term,
            ),
            (
                "system.mem_available_term",
                "mem_available_warn",
                s.mem_available_term,
                s.mem_available_warn.unwrap_or(s.mem_available_term),
                &rs.mem_available_term,
                &rs.mem_available_warn,
            ),
        ];
        for (key, upper_key, lower, upper, lower_val, upper_val) in levels {
            ordered(src, key, (lower, lower_val), (upper_key, upper, upper_val))?;
        }
        for (i, (c, rc)) in self.cgroups.iter().zip(&raw.cgroup).enumerate() {
            let key = |k: &str| format!("cgroup[{}].{k}", i + 1);
            let warn = c.available_warn.unwrap_or(c.available_term);
            ordered(
                src,
                &key("available_kill"),
                (c.available_kill, &rc.available_kill),
                ("available_term", c.available_term, &rc.available_term),
            )?;
            ordered(
                src,
                &key("available_term"),
                (c.available_term, &rc.available_term),
                ("available_warn", warn, &rc.available_warn),
            )?;
            if let Some(first) = self.cgroups[..i]
                .iter()
                .position(|w| w.path.text == c.path.text)
            {
                return Err(src.err(
                    span(&rc.path),
                    &key("path"),
                    format!(
                        "{:?} is already watched by cgroup[{}]: one [[cgroup]] per path",
                        c.path.text,
                        first + 1
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A rule may not protect everything; protection a local user can claim is warned about.
    fn check_rules(&mut self, src: &Source) -> Result<(), ConfigError> {
        for (i, rule) in self.rules.iter().enumerate() {
            let header = src.header("rule", i);
            if rule.action == Action::Protect && rule.matches(&crate::policy::sentinel_process()) {
                return Err(src
                    .err(None, &format!("rule[{}]", i + 1), "protects every process (its matchers match anything): narrow it with an exact exe, a user or a cgroup")
                    .at(header));
            }
            let file = header.map_or_else(|| src.files(), |l| l.file);
            let place = format!("{file}:{}: rule[{}]", rule.line, i + 1);
            if rule.protects_by_spoofable_names_only() {
                self.warnings.push(format!("{place}: protects by comm/cmdline alone; any user can give a process that name. Add exe, user or cgroup."));
            }
            if rule.protects_by_exe_alone() {
                self.warnings.push(format!("{place}: protects by exe alone; any user allowed to run it gets the protection (with LD_PRELOAD, for any program). Add user or cgroup (e.g. cgroup = \"/system.slice/**\")."));
            }
        }
        Ok(())
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
        let mut o = format!("# effective configuration from {}\n[daemon]\n", self.source);
        self.daemon.write(&mut o);
        o.push_str("\n[system]\n");
        self.system.write(&mut o);
        for c in &self.cgroups {
            o.push_str("\n[[cgroup]]\n");
            c.write(&mut o);
        }
        o.push_str("\n[kill]\n");
        self.kill.write(&mut o);
        o.push_str("\n[report]\n");
        self.report.write(&mut o);
        o.push_str("\n[hooks]\n");
        self.hooks.write(&mut o);
        o.push_str("\n[notify]\n");
        self.notify.write(&mut o);
        o.push_str("\n[policy]\n");
        let builtin = self.builtin_protection;
        PolicyKeys { builtin }.write(&mut o);
        for (keys, rule) in self.rule_keys.iter().zip(&self.rules) {
            o.push_str(&format!("\n# from line {}\n[[rule]]\n", rule.line));
            keys.write(&mut o);
        }
        o
    }
}

/// A lower level (kill below term, term below warn) must not lie above the upper one: it would
/// skip the upper stage. Levels in different units are compared when the scope's total is
/// known ([`Config::check_against_machine`] for the system). The error is placed where the
/// user wrote one of the two (the other may be a default).
fn ordered(
    src: &Source,
    key: &str,
    (lower, lower_val): (Amount, &Val<String>),
    (upper_key, upper, upper_val): (&str, Amount, &Val<String>),
) -> Result<(), ConfigError> {
    if level_above(lower, upper, None) {
        return Err(src.err(
            span(lower_val).or(span(upper_val)),
            key,
            format!("{lower} is above {upper_key} {upper}: the kill level must be at or below the term level, the term level at or below the warn level"),
        ));
    }
    Ok(())
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
