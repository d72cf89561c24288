//! The daemon's view for `oomward status`: written by the daemon to a file
//! (`/run/oomward/status.json` by default), atomically, at most once a second when something a
//! reader would notice changed, and every [`HEARTBEAT`] anyway; rendered by the command. A
//! file, not a socket: a reader needs no privilege the file's mode does not give, and can never
//! slow the loop down. Its age is the daemon's liveness (`oomward status --check`): the loop
//! finishes a round at least every `max_interval`, and a loop that stopped turning (stuck in a
//! read, deadlocked) stops rewriting it, whatever its other threads still answer.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::kill::{KillOutcome, KillReason, human};

/// The longest the status file goes unwritten while the loop turns.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// The age past which the status file says the loop no longer turns: three heartbeats.
pub const STALE_SECS: f64 = 90.0;

/// Whether a status file `age` seconds old, written by a daemon that is (or is not) `alive`,
/// says the daemon is well; if not, why.
pub fn liveness(alive: bool, age: f64) -> Result<(), String> {
    if !alive {
        return Err("the daemon that wrote it is not running".into());
    }
    if age > STALE_SECS {
        return Err(format!(
            "the daemon has not finished a round for {age:.0} s (its loop may be stuck)"
        ));
    }
    Ok(())
}

/// The whole view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// oomward's version.
    pub version: String,
    /// The daemon's pid.
    pub pid: u32,
    /// When it started, seconds since the epoch.
    pub started: f64,
    /// When this view was written.
    pub updated: f64,
    /// Deciding without signalling.
    pub dry_run: bool,
    /// The config asked for did not load at start: why, and what runs instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
    /// Victims signalled since start.
    pub victims: u64,
    /// Every watched scope.
    pub scopes: Vec<ScopeStatus>,
    /// Every OOM domain with a member or business.
    pub domains: Vec<DomainStatus>,
    /// The last kills, newest last.
    pub last_kills: Vec<KillSummary>,
}

/// One scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScopeStatus {
    /// `system` or the cgroup's path.
    pub name: String,
    /// `ok`, `warn`, `term`, `kill`.
    pub level: String,
    /// Available memory, bytes (rounded to the MiB: the file changes when it matters).
    pub available: u64,
    /// The limit that binds, bytes.
    pub limit: u64,
    /// Warn threshold, bytes, if any.
    pub warn_at: Option<u64>,
    /// SIGTERM threshold, bytes.
    pub term_at: u64,
    /// SIGKILL threshold, bytes.
    pub kill_at: u64,
    /// Fill rate seen, bytes per second.
    pub fill_rate: u64,
    /// Projected time to exhaustion, milliseconds.
    pub eta_ms: Option<u64>,
    /// Kernel event sources armed for it.
    pub events: Vec<String>,
}

/// One OOM domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainStatus {
    /// `system` or the binding cgroup.
    pub name: String,
    /// Its watched scopes.
    pub members: Vec<String>,
    /// `calm` or `episode`.
    pub state: String,
    /// oomward's kills in the episode.
    pub kills: u32,
    /// Victims being made to exit.
    pub in_flight: Vec<InFlightStatus>,
}

/// A victim in flight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InFlightStatus {
    /// Its pid.
    pub pid: i32,
    /// Its comm.
    pub comm: String,
    /// The last signal sent.
    pub signal: String,
    /// Since the first signal, milliseconds.
    pub since_ms: u64,
}

/// A kill, in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillSummary {
    /// When, RFC 3339.
    pub time_text: String,
    /// Its scope.
    pub scope: String,
    /// The victim's pid.
    pub pid: i32,
    /// Its comm.
    pub comm: String,
    /// Why.
    pub reason: KillReason,
    /// How it ended.
    pub outcome: KillOutcome,
    /// Memory it used (rss + swap + page tables), bytes.
    pub used: u64,
    /// What its domain got back, bytes.
    pub freed: Option<i64>,
}

/// Writes status views on a thread of its own: the loop hands the latest over and goes on (a
/// file system that stalls, even /run under memory pressure, must not hold it up). One view
/// waits at most; a newer one replaces it only at the next hand-over, which comes within a
/// second while anything changes.
pub struct StatusWriter {
    tx: crossbeam_channel::Sender<(std::path::PathBuf, StatusView)>,
    problems: crossbeam_channel::Receiver<String>,
}

impl StatusWriter {
    /// Starts the thread.
    pub fn start() -> io::Result<StatusWriter> {
        let (tx, rx) = crossbeam_channel::bounded::<(std::path::PathBuf, StatusView)>(1);
        let (ptx, problems) = crossbeam_channel::bounded::<String>(4);
        crate::sys::spawn_helper("status", move || {
            for (path, view) in rx {
                if let Err(e) = write(&path, &view) {
                    let _ = ptx.try_send(format!("{}: {e}", path.display()));
                }
            }
        })?;
        Ok(StatusWriter { tx, problems })
    }

    /// Hands a view over; false when the previous one is still being written (this one is
    /// dropped: the next round offers a newer one).
    pub fn offer(&self, path: std::path::PathBuf, view: StatusView) -> bool {
        self.tx.try_send((path, view)).is_ok()
    }

    /// A failed write since the last call, if any.
    pub fn problem(&self) -> Option<String> {
        self.problems.try_recv().ok()
    }
}

/// Writes `view` to `path` atomically: a temporary file in the same directory, renamed over
/// the old one, so a reader sees the old view or the new, never half of one. Mode 0644.
pub fn write(path: &Path, view: &StatusView) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let mut text = serde_json::to_vec_pretty(view).map_err(io::Error::other)?;
    text.push(b'\n');
    super::statefile::replace(path, &text, 0o644)
}

/// Reads a status file.
pub fn read(path: &Path) -> io::Result<StatusView> {
    let text = std::fs::read(path)?;
    serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The view for people.
pub fn render(v: &StatusView, now: f64) -> String {
    let mut o = String::new();
    render_daemon(&mut o, v, now);
    render_scopes(&mut o, &v.scopes);
    render_domains(&mut o, &v.domains);
    render_kills(&mut o, &v.last_kills);
    o
}

/// The daemon itself: version, uptime, victims, the view's age, a config that did not load.
fn render_daemon(o: &mut String, v: &StatusView, now: f64) {
    let age = (now - v.updated).max(0.0);
    let _ = writeln!(
        o,
        "oomward {} (pid {}), up {}, {} victim(s) since start{}; view {:.0} s old",
        v.version,
        v.pid,
        ago(now - v.started),
        v.victims,
        if v.dry_run { " (dry run)" } else { "" },
        age
    );
    if let Some(e) = &v.config_error {
        let _ = writeln!(o, "\nCONFIG ERROR: {e}");
    }
}

/// The scopes as a table: level, figures, thresholds, event sources.
fn render_scopes(o: &mut String, scopes: &[ScopeStatus]) {
    let _ = writeln!(o, "\nscopes:");
    let _ = writeln!(
        o,
        "  {:<32} {:<5} {:>10} {:>10} {:>22} {:>12} {:>8}  events",
        "scope", "level", "available", "limit", "warn/term/kill at", "fill/s", "eta"
    );
    for s in scopes {
        let at = format!(
            "{}/{}/{}",
            super::or(s.warn_at.map(short), "-"),
            short(s.term_at),
            short(s.kill_at)
        );
        let eta = super::or(s.eta_ms.map(|e| format!("{:.1}s", e as f64 / 1000.0)), "-");
        let events = if s.events.is_empty() {
            "timer only".to_string()
        } else {
            s.events.join(",")
        };
        #[rustfmt::skip]
        let _ = writeln!(
            o,
            "  {:<32} {:<5} {:>10} {:>10} {:>22} {:>12} {:>8}  {}",
            super::escape_controls(&s.name), s.level, human(s.available), human(s.limit), at,
            human(s.fill_rate), eta, events
        );
    }
}

/// The OOM domains, each with its victims in flight.
fn render_domains(o: &mut String, domains: &[DomainStatus]) {
    let _ = writeln!(o, "\ndomains:");
    for d in domains {
        let _ = writeln!(
            o,
            "  {} [{}] members: {}; {} kill(s) this episode",
            super::escape_controls(&d.name),
            d.state,
            super::escape_controls(&d.members.join(", ")),
            d.kills
        );
        for f in &d.in_flight {
            let _ = writeln!(
                o,
                "    in flight: {} (pid {}) {} {} ms ago",
                super::escape_controls(&f.comm),
                f.pid,
                f.signal,
                f.since_ms
            );
        }
    }
}

/// The last kills, newest last.
fn render_kills(o: &mut String, kills: &[KillSummary]) {
    let _ = writeln!(o, "\nlast kills:");
    if kills.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for k in kills {
        let (comm, scope) = (
            super::escape_controls(&k.comm),
            super::escape_controls(&k.scope),
        );
        let freed = super::or(k.freed.map(super::kill::human_signed), "-");
        #[rustfmt::skip]
        let _ = writeln!(
            o,
            "  {} {comm} (pid {}) in {scope}: {}, used {}, freed {freed} [{}]",
            k.time_text, k.pid, k.reason, human(k.used), k.outcome
        );
    }
}

fn short(b: u64) -> String {
    human(b).replace(' ', "")
}

fn ago(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{}h", s / 86400, (s / 3600) % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_status_file_says_the_daemon_is_alive_while_it_is_fresh_and_its_writer_runs() {
        assert_eq!(liveness(true, 0.0), Ok(()));
        assert_eq!(liveness(true, STALE_SECS), Ok(()));
        assert!(
            liveness(true, STALE_SECS + 1.0)
                .unwrap_err()
                .contains("round")
        );
        assert!(liveness(false, 0.0).unwrap_err().contains("not running"));
    }

    #[rustfmt::skip]
    fn view() -> StatusView {
        StatusView {
            version: "0.1.0".into(), pid: 42, started: 1000.0, updated: 1100.0, dry_run: false,
            config_error: None, victims: 1,
            scopes: vec![ScopeStatus {
                name: "/app".into(), level: "term".into(), available: 20 << 20, limit: 256 << 20,
                warn_at: Some(40 << 20), term_at: 25 << 20, kill_at: 12 << 20,
                fill_rate: 10 << 20, eta_ms: Some(2000),
                events: vec!["v1_threshold".into(), "v1_oom".into()],
            }],
            domains: vec![DomainStatus {
                name: "/app".into(), members: vec!["/app".into()], state: "episode".into(),
                kills: 1,
                in_flight: vec![InFlightStatus {
                    pid: 7, comm: "hog".into(), signal: "SIGTERM".into(), since_ms: 300,
                }],
            }],
            last_kills: vec![],
        }
    }

    #[test]
    fn written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/status.json");
        write(&path, &view()).unwrap();
        assert_eq!(read(&path).unwrap(), view());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert!(!dir.path().join("run/status.json.tmp").exists());
    }

    #[test]
    fn rendered_for_people() {
        let text = render(&view(), 1101.0);
        assert!(
            text.contains("oomward 0.1.0 (pid 42), up 1m, 1 victim(s)"),
            "{text}"
        );
        assert!(text.contains("/app"), "{text}");
        assert!(text.contains("40.0MiB/25.0MiB/12.0MiB"), "{text}");
        assert!(
            text.contains("in flight: hog (pid 7) SIGTERM 300 ms ago"),
            "{text}"
        );
        assert!(text.contains("v1_threshold,v1_oom"), "{text}");
    }
}
