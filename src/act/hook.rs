//! Hooks: programs the administrator configured to run at a warning, before a kill and after
//! one. Each runs as an argv (never through a shell), as the configured unprivileged user, with
//! an environment holding only `PATH` and the event's `OOMWARD_*` variables, in a process group
//! of its own, on the daemon's one child runner ([`crate::act::children`]): ended with every
//! descendant at `[hooks] timeout` and at the daemon's stop, and what it leaves behind when it
//! ends is killed then. How each ended is logged. The loop only ever waits for `pre_kill`, and
//! never longer than the kill can afford. A hook that fails, hangs or cannot start is logged
//! and changes nothing else.

use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use crate::config::{Config, Hooks as HookConfig};
use crate::report::kill::KillRecord;
use crate::report::metrics::Metrics;
use crate::report::{Line, LogHandle, Severity};

/// Which hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// A scope crossed its warn level.
    Warn,
    /// A victim is about to be signalled.
    PreKill,
    /// A victim is gone (or was given up on).
    PostKill,
}

impl HookKind {
    /// Its name in logs, metrics and `OOMWARD_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Warn => "warn",
            HookKind::PreKill => "pre_kill",
            HookKind::PostKill => "post_kill",
        }
    }
}

pub use crate::act::children::{Ended, Ending};

/// One hook's report, for the loop to log.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which hook.
    pub kind: HookKind,
    /// The program.
    pub program: String,
    /// How it ended, as the child runner says (its stderr's start is for the log).
    pub end: Ended,
}

/// What starting a hook came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// No hook of that kind is configured.
    None,
    /// Over `[hooks] max_per_minute`: not run.
    Skipped,
    /// Running (or already finished); its ending comes through [`HookRunner::outcomes`].
    Running,
    /// `pre_kill` still running when its wait ended: the kill goes on without it.
    Late,
    /// `pre_kill` started with no wait at all (a kill that cannot wait): it runs alongside.
    Alongside,
    /// It could not be started (reported through the outcomes too).
    Failed,
}

impl Outcome {
    /// `ok`, `failed` or `timeout`, for metrics.
    pub fn word(&self) -> &'static str {
        match self.end.ending {
            Ending::Exited(0) => "ok",
            Ending::TimedOut => "timeout",
            _ => "failed",
        }
    }

    /// The log line of how it ended: failures and timeouts as warnings.
    pub fn line(&self) -> (Severity, Line) {
        let end = &self.end;
        let (severity, message) = match &end.ending {
            Ending::Exited(0) => (Severity::Info, "hook finished"),
            Ending::TimedOut => (
                Severity::Warning,
                "hook ran past its timeout: killed, with what it started",
            ),
            Ending::Stopped => (Severity::Info, "hook killed: the daemon stops"),
            Ending::NotStarted(_) => (Severity::Warning, "hook could not be started"),
            _ => (Severity::Warning, "hook failed"),
        };
        let mut line = Line::event("hook", message)
            .kv("hook", self.kind.as_str())
            .kv("program", &self.program)
            .kv("pid", end.pid)
            .kv("outcome", self.word())
            .kv("ran_ms", end.ran.as_millis());
        match &end.ending {
            Ending::Exited(c) => line.push("exit_code", c),
            Ending::Signalled(s) => line.push("signal", crate::sys::signal_name(*s)),
            Ending::NotStarted(e) => line.push("error", e),
            Ending::TimedOut | Ending::Stopped => {}
        }
        let line = line
            .kv_if(end.leftovers > 0, "leftovers_killed", end.leftovers)
            .kv_if(!end.stderr.is_empty(), "stderr", end.stderr.trim_end());
        (severity, line)
    }
}

/// Where a hook's watcher tells how it ended: the log, and the metrics when they are on.
#[derive(Clone)]
pub struct Teller {
    /// The daemon's log.
    pub log: LogHandle,
    /// The metrics.
    pub metrics: Option<std::sync::Arc<Metrics>>,
}

/// Starts hooks; their watcher threads tell how each ended.
#[derive(Default)]
pub struct HookRunner {
    /// Starts in the last minute, oldest first.
    starts: std::collections::VecDeque<Instant>,
    /// Hooks skipped by the rate limit since last reported.
    pub skipped: u64,
}

impl HookRunner {
    /// Runs the `kind` hook for `record` if one is configured. For `pre_kill` waits until it
    /// exits or `wait` passes, whichever comes first (what the kill can afford: see
    /// [`crate::decide::episode::pre_kill_wait`]); never waits otherwise. How it ends is told
    /// through `teller` by its watcher thread.
    pub fn run(
        &mut self,
        kind: HookKind,
        config: &Config,
        record: &KillRecord,
        teller: &Teller,
        wait: Duration,
    ) -> Started {
        let cfg = &config.hooks;
        let argv = match kind {
            HookKind::Warn => &cfg.warn,
            HookKind::PreKill => &cfg.pre_kill,
            HookKind::PostKill => &cfg.post_kill,
        };
        let (Some(program), Some((uid, gid))) = (argv.first(), config.accounts.hooks) else {
            return Started::None;
        };
        let now = Instant::now();
        self.starts
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if self.starts.len() >= cfg.max_per_minute as usize {
            self.skipped += 1;
            return Started::Skipped;
        }
        self.starts.push_back(now);
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", HOOK_PATH)
            .envs(environment(kind, record))
            .current_dir("/");
        crate::sys::as_user(&mut cmd, uid, gid);
        let (done_tx, done_rx) = bounded::<()>(1);
        let teller = teller.clone();
        let program = program.clone();
        let spawned = crate::act::children::spawn(
            cmd,
            cfg.timeout,
            Box::new(move |end| {
                let _ = done_tx.try_send(());
                let outcome = Outcome { kind, program, end };
                let (severity, line) = outcome.line();
                teller.log.log(severity, &line);
                if let Some(m) = &teller.metrics {
                    m.hook(kind.as_str(), outcome.word());
                }
            }),
        );
        if !spawned {
            return Started::Failed;
        }
        if kind == HookKind::PreKill {
            if wait.is_zero() {
                return Started::Alongside;
            }
            let left = wait.saturating_sub(now.elapsed());
            if done_rx.recv_timeout(left).is_err() {
                return Started::Late;
            }
        }
        Started::Running
    }
}

/// The PATH hooks run with, and where a program named without a slash is looked up.
pub const HOOK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Whether the hook program `program` may be run by root's daemon: it exists, is a file that
/// can be executed, and neither it nor any directory above it can be changed by anyone but
/// root (or `owner`, the daemon's user): a hook another user could rewrite is a way to run
/// code as the hooks' user at will, as sshd reasons about its keys. Its path, resolved.
pub fn check_program(program: &str, owner: u32) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let path = if program.contains('/') {
        std::path::PathBuf::from(program)
    } else {
        HOOK_PATH
            .split(':')
            .map(|d| std::path::Path::new(d).join(program))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{program}: not found in {HOOK_PATH}"))?
    };
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{}: not executable", path.display()));
    }
    if meta.uid() != 0 && meta.uid() != owner {
        return Err(format!("{}: owned by uid {}", path.display(), meta.uid()));
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0) {
        return Err(format!(
            "{}: writable by others (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    if let Ok(link) = std::fs::symlink_metadata(&path)
        && link.file_type().is_symlink()
        && link.uid() != 0
        && link.uid() != owner
    {
        return Err(format!(
            "{}: a symlink owned by uid {}",
            path.display(),
            link.uid()
        ));
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    crate::report::statefile::verify_dir(dir, owner).map_err(|e| e.to_string())?;
    let real = std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = real.parent() {
        crate::report::statefile::verify_dir(dir, owner).map_err(|e| e.to_string())?;
    }
    Ok(path)
}

/// Every configured hook's program checked as [`check_program`] says, named by its key.
pub fn check_config(cfg: &HookConfig, owner: u32) -> Result<(), String> {
    for (key, argv) in [
        ("pre_kill", &cfg.pre_kill),
        ("post_kill", &cfg.post_kill),
        ("warn", &cfg.warn),
    ] {
        if let Some(program) = argv.first() {
            check_program(program, owner).map_err(|e| format!("[hooks] {key}: {e}"))?;
        }
    }
    Ok(())
}

/// The hook's environment: `OOMWARD_EVENT` and the record's figures (the victim, or for a
/// warning the likely victim), and after a kill the outcome and the whole record as JSON.
pub fn environment(kind: HookKind, r: &KillRecord) -> Vec<(String, String)> {
    let v = &r.victim;
    let opt = |o: Option<String>| o.unwrap_or_default();
    let mut env = vec![
        ("OOMWARD_EVENT", kind.as_str().to_string()),
        ("OOMWARD_SCOPE", r.scope.clone()),
        ("OOMWARD_DOMAIN", r.domain.clone()),
        ("OOMWARD_LEVEL", r.level.as_str().to_string()),
        ("OOMWARD_REASON", r.reason.as_str().to_string()),
        ("OOMWARD_AVAILABLE", r.trigger.available.to_string()),
        ("OOMWARD_LIMIT", r.trigger.limit.to_string()),
        ("OOMWARD_PID", v.pid.to_string()),
        ("OOMWARD_COMM", v.comm.clone()),
        ("OOMWARD_EXE", opt(v.exe.clone())),
        ("OOMWARD_UID", opt(v.uid.map(|u| u.to_string()))),
        ("OOMWARD_USER", opt(v.user.clone())),
        ("OOMWARD_CGROUP", opt(v.cgroup.clone())),
        ("OOMWARD_CMDLINE", v.cmdline.clone()),
        ("OOMWARD_USED_BYTES", r.victim_bytes().to_string()),
        ("OOMWARD_EXPECTED_GAIN", r.expected_gain.to_string()),
        ("OOMWARD_BADNESS", v.badness.to_string()),
        (
            "OOMWARD_SIGNAL",
            r.signals
                .first()
                .map_or_else(String::new, |s| s.signal.clone()),
        ),
        ("OOMWARD_DRY_RUN", r.dry_run.to_string()),
    ];
    if kind == HookKind::PostKill {
        env.extend([
            ("OOMWARD_OUTCOME", r.outcome.as_str().to_string()),
            ("OOMWARD_EXIT_MS", opt(r.exit_ms.map(|m| m.to_string()))),
            (
                "OOMWARD_FREED",
                opt(r.released.freed.map(|f| f.to_string())),
            ),
            (
                "OOMWARD_REPORT",
                serde_json::to_string(r).unwrap_or_default(),
            ),
        ]);
    }
    env.into_iter()
        // A NUL cannot be passed in an environment; a process can put one nowhere we read, but
        // be sure.
        .map(|(k, v)| (k.to_string(), v.replace('\0', "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::kill::tests::sample_record;

    #[test]
    fn a_hook_only_root_can_change_is_accepted_and_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        assert!(check_program("sh", 0).is_ok());
        assert!(check_program("/bin/sh", 0).is_ok());
        let e = check_program("/nonexistent/hook", 0).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        assert!(
            check_program("no-such-hook-anywhere", 0)
                .unwrap_err()
                .contains("not found")
        );
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let hook = d.path().join("hook");
        std::fs::write(&hook, "#!/bin/sh\n").unwrap();
        let set =
            |m: u32| std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(m)).unwrap();
        let refused = || check_program(hook.to_str().unwrap(), 0).unwrap_err();
        set(0o755);
        assert!(check_program(hook.to_str().unwrap(), 0).is_ok());
        set(0o644);
        assert!(refused().contains("not executable"));
        set(0o757);
        assert!(refused().contains("writable"));
        set(0o755);
        std::os::unix::fs::chown(&hook, Some(1000), None).unwrap();
        assert!(refused().contains("uid 1000"));
        std::os::unix::fs::chown(&hook, Some(0), None).unwrap();
        // In a user's directory.
        std::os::unix::fs::chown(d.path(), Some(1000), Some(1000)).unwrap();
        assert!(refused().contains("uid 1000"));
    }

    #[test]
    fn the_environment_names_the_victim_and_after_a_kill_the_outcome() {
        let r = sample_record(77, "hog", 5.0);
        let pre = environment(HookKind::PreKill, &r);
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&pre, "OOMWARD_EVENT").as_deref(), Some("pre_kill"));
        assert_eq!(get(&pre, "OOMWARD_PID").as_deref(), Some("77"));
        assert_eq!(get(&pre, "OOMWARD_COMM").as_deref(), Some("hog"));
        assert_eq!(get(&pre, "OOMWARD_USER").as_deref(), Some("alice"));
        assert_eq!(get(&pre, "OOMWARD_SIGNAL").as_deref(), Some("SIGTERM"));
        assert!(get(&pre, "OOMWARD_OUTCOME").is_none());
        let post = environment(HookKind::PostKill, &r);
        assert_eq!(get(&post, "OOMWARD_OUTCOME").as_deref(), Some("exited"));
        assert_eq!(
            get(&post, "OOMWARD_FREED").as_deref(),
            Some(&*(200u64 << 20).to_string())
        );
        let report: KillRecord =
            serde_json::from_str(&get(&post, "OOMWARD_REPORT").unwrap()).unwrap();
        assert_eq!(report, r);
    }
}
