//! Desktop notifications: at a warning and at each kill, a notification on the session bus of
//! every logged-in graphical user (`org.freedesktop.Notifications.Notify`), so the person at the
//! machine learns why a window vanished.
//!
//! A session bus accepts only its own user (it checks the peer's uid), and the daemon is root,
//! locked in memory and must never wait. So the daemon does not speak D-Bus at all: a
//! [`Notifier`] thread runs `oomward notify-send` ([`send_one`]) once per user, as that user,
//! with a cleared environment and a deadline, and kills it if it overstays; that child makes
//! the calls with systemd's `busctl`. Whatever a user's bus sends back is read by that user's
//! own short-lived processes, never by root. The loop only
//! queues a [`Note`] (a full queue drops it, counted); each [`Outcome`] is told on the thread.
//!
//! Who is notified comes from logind's session files (`/run/systemd/sessions/*`), read without
//! any user database lookup: NSS may go to the network, and these are read on the loop.
//!
//! Under a sandboxed unit this needs what switching users needs: CAP_SETUID and CAP_SETGID in
//! the capability bounding set, the `@setuid` system calls past a `~@privileged` filter, and
//! `/run/user` visible (`ProtectHome=read-only` is enough: connecting to a socket is not a write
//! to its file system). Otherwise every outcome is a [`Outcome::Failed`] that says why.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use thiserror::Error;

use super::escape_controls;

/// Notes waiting for the notifier thread; beyond this, a note is dropped (and counted).
const QUEUE: usize = 8;
/// How long `notify-send` itself waits for the bus.
const CHILD_TIMEOUT: Duration = Duration::from_secs(2);
/// When a `notify-send` still running is killed.
const KILL_AFTER: Duration = Duration::from_secs(3);

/// The notification service's well-known name, object and interface.
const SERVICE: &str = "org.freedesktop.Notifications";
const OBJECT: &str = "/org/freedesktop/Notifications";

/// One logind session, as its state file describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// The session id (the file's name).
    pub id: String,
    /// `UID=`
    pub uid: u32,
    /// `TYPE=`: tty, x11, wayland, mir, unspecified.
    pub kind: String,
    /// `CLASS=`: user, greeter, lock-screen, background.
    pub class: String,
    /// `STATE=`: online, active, closing.
    pub state: String,
}

impl Session {
    /// A user's graphical session that is not ending: one with a desktop to show a notification
    /// on. Greeters and lock screens are not the user's desktop.
    pub fn is_graphical(&self) -> bool {
        matches!(self.kind.as_str(), "x11" | "wayland" | "mir")
            && self.class == "user"
            && self.state != "closing"
    }

    fn parse(id: &str, text: &str) -> Option<Session> {
        let mut s = Session {
            id: id.to_string(),
            uid: u32::MAX,
            ..Session::default()
        };
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "UID" => s.uid = value.parse().ok()?,
                "TYPE" => s.kind = value.to_string(),
                "CLASS" => s.class = value.to_string(),
                "STATE" => s.state = value.to_string(),
                _ => {}
            }
        }
        (s.uid != u32::MAX).then_some(s)
    }
}

/// The graphical user sessions under `<root>/run/systemd/sessions`, one per uid (lowest uid
/// first). Missing or unreadable files are skipped; the `*.ref` FIFOs logind keeps beside the
/// session files are never opened (opening a FIFO waits for a writer).
pub fn sessions(root: &Path) -> Vec<Session> {
    let entries = fs::read_dir(root.join("run/systemd/sessions"));
    let mut found: Vec<Session> = (entries.into_iter().flatten())
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let id = e
                .file_name()
                .into_string()
                .ok()
                .filter(|id| !id.contains('.'))?;
            Session::parse(&id, &bounded_text(fs::File::open(e.path()).ok()))
        })
        .filter(Session::is_graphical)
        .collect();
    found.sort_by(|a, b| a.uid.cmp(&b.uid).then_with(|| a.id.cmp(&b.id)));
    found.dedup_by_key(|s| s.uid);
    found
}

/// Where one user's notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The user, whom `notify-send` runs as.
    pub uid: u32,
    /// Their primary group.
    pub gid: u32,
    /// Their session bus socket.
    pub bus: PathBuf,
}

/// The users to notify: those with a graphical session (see [`sessions`]) and `extra_users`,
/// each once, who have a session bus at `<runtime_dir>/UID/bus`.
///
/// The gid is the group of the user's runtime directory, which logind creates with the user's
/// primary group: no user database lookup (NSS may wait on the network). The directory must
/// belong to the uid, and `bus` must be a socket. Root is listed like anyone (the [`Notifier`]
/// refuses it, and says so).
pub fn targets(root: &Path, runtime_dir: &Path, extra_users: &[u32]) -> Vec<Target> {
    let mut uids: Vec<u32> = sessions(root).iter().map(|s| s.uid).collect();
    uids.extend_from_slice(extra_users);
    uids.sort_unstable();
    uids.dedup();
    uids.into_iter()
        .filter_map(|uid| target(runtime_dir, uid))
        .collect()
}

fn target(runtime_dir: &Path, uid: u32) -> Option<Target> {
    let dir = runtime_dir.join(uid.to_string());
    let meta = fs::symlink_metadata(&dir).ok()?;
    if !meta.is_dir() || meta.uid() != uid {
        return None;
    }
    let bus = dir.join("bus");
    if !fs::symlink_metadata(&bus).ok()?.file_type().is_socket() {
        return None;
    }
    Some(Target {
        uid,
        gid: meta.gid(),
        bus,
    })
}

/// Urgency levels of the notification specification.
pub mod urgency {
    /// Low.
    pub const LOW: u8 = 0;
    /// Normal.
    pub const NORMAL: u8 = 1;
    /// Critical: stays until dismissed on most desktops.
    pub const CRITICAL: u8 = 2;
}

/// One notification for a list of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The title line.
    pub summary: String,
    /// The text (plain: markup characters are escaped where the server reads markup).
    pub body: String,
    /// 0 low, 1 normal, 2 critical ([`urgency`]).
    pub urgency: u8,
    /// Who receives it.
    pub targets: Vec<Target>,
}

/// What became of one user's notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The notification server accepted it.
    Sent {
        /// The user.
        uid: u32,
    },
    /// It did not reach the user.
    Failed {
        /// The user.
        uid: u32,
        /// One line: `notify-send`'s error, or why it was not run or was killed.
        why: String,
    },
}

/// What hears of each outcome on the notification thread.
pub type Tell = Box<dyn Fn(&Outcome) + Send>;

/// The notification thread and its queue. Dropping it closes the queue; the thread finishes
/// the notes it holds (each bounded by [`KILL_AFTER`] per user) and ends.
#[derive(Debug)]
pub struct Notifier {
    queue: Sender<Note>,
    dropped: Arc<AtomicU64>,
}

impl Notifier {
    /// Starts the thread. `exe` is the oomward binary to run as `exe notify-send ...`
    /// (`/proc/self/exe` keeps working after a package upgrade replaced the file); `tell` hears
    /// of each outcome on the notification thread as it happens (the daemon logs it there, not
    /// at its next round).
    pub fn start(exe: PathBuf, tell: Tell) -> io::Result<Notifier> {
        let (queue, notes) = crossbeam_channel::bounded::<Note>(QUEUE);
        crate::sys::spawn_helper("notify", move || {
            for note in notes {
                for target in &note.targets {
                    tell(&notify_as(&exe, target, &note));
                }
            }
        })?;
        Ok(Notifier {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues a note; never waits. False when the queue was full (or the thread gone) and the
    /// note was dropped.
    pub fn send(&self, note: Note) -> bool {
        match self.queue.try_send(note) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Notes dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Runs `exe notify-send` as the target's user and waits for it, at most [`KILL_AFTER`].
fn notify_as(exe: &Path, target: &Target, note: &Note) -> Outcome {
    let uid = target.uid;
    let failed = |why: String| Outcome::Failed { uid, why };
    if uid == 0 {
        return failed("refused: notifications never run as root".into());
    }
    let mut bus = OsString::from("--bus=");
    bus.push(&target.bus);
    let mut cmd = Command::new(exe);
    cmd.arg("notify-send")
        .arg(bus)
        // `--x=value`: a value starting with '-' stays a value. Arguments cannot hold NUL.
        .arg(format!("--summary={}", note.summary.replace('\0', "")))
        .arg(format!("--body={}", note.body.replace('\0', "")))
        .arg(format!("--urgency={}", note.urgency))
        .arg(format!("--timeout-ms={}", CHILD_TIMEOUT.as_millis()))
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    crate::sys::as_user(&mut cmd, uid, target.gid);
    // On the daemon's child runner: ended with what it started at KILL_AFTER, reaped there.
    let (tx, rx) = crossbeam_channel::bounded(1);
    crate::act::children::spawn(
        cmd,
        KILL_AFTER,
        Box::new(move |end| {
            let _ = tx.send(end);
        }),
    );
    let Ok(end) = rx.recv_timeout(KILL_AFTER + Duration::from_secs(2)) else {
        return failed(format!("no end within {} s", KILL_AFTER.as_secs()));
    };
    use crate::act::children::Ending;
    let said = first_line(&end.stderr);
    match end.ending {
        Ending::Exited(0) => Outcome::Sent { uid },
        Ending::TimedOut => failed(format!("killed after {} s", KILL_AFTER.as_secs())),
        Ending::NotStarted(e) => failed(format!("cannot run {} as uid {uid}: {e}", exe.display())),
        _ if !said.is_empty() => failed(said),
        Ending::Exited(c) => failed(format!("notify-send exited {c}")),
        Ending::Signalled(s) => failed(format!("notify-send killed by signal {s}")),
        Ending::Stopped => failed("the daemon stops".into()),
    }
}

/// The first line `notify-send` wrote to stderr, without its `oomward: ` prefix, escaped.
fn first_line(stderr: &str) -> String {
    let line = stderr.lines().next().unwrap_or("").trim();
    let line = line.strip_prefix("oomward: ").unwrap_or(line);
    escape_controls(line).into_owned()
}

/// Where `busctl` is looked for: the child's environment is empty, so no `PATH`.
const BUSCTL: [&str; 3] = ["/usr/bin/busctl", "/bin/busctl", "/usr/local/bin/busctl"];
/// The most of `busctl`'s output read (a capability list or an id is a few dozen bytes), and of
/// a session file (a larger one is not logind's).
const MAX_OUTPUT: u64 = 64 * 1024;

/// Why one notification could not be sent (what `notify-send` prints before exiting 1).
#[derive(Debug, Error)]
pub enum NotifyError {
    /// No `busctl` (it comes with systemd, wherever there is a user bus).
    #[error("busctl not found ({}): it comes with systemd", BUSCTL.join(", "))]
    NoBusctl,
    /// `busctl` could not be run.
    #[error("{bus}: cannot run busctl: {source}")]
    Spawn {
        /// The bus socket.
        bus: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The bus or the server did not answer within the deadline (a socket that accepts and
    /// never speaks, a server that never replies).
    #[error("{bus}: timed out after {ms} ms")]
    TimedOut {
        /// The bus socket.
        bus: String,
        /// The deadline.
        ms: u128,
    },
    /// Connecting or the call failed: `busctl`'s own words.
    #[error("{bus}: {said}")]
    Call {
        /// The bus socket.
        bus: String,
        /// The first line `busctl` wrote to stderr.
        said: String,
    },
    /// The server answered `Notify` with something other than an id.
    #[error("{bus}: Notify answered {said:?}, not an id")]
    Reply {
        /// The bus socket.
        bus: String,
        /// What it answered, as `busctl` shows it.
        said: String,
    },
}

/// Sends one notification on the bus at `bus` as the calling user and returns the id the
/// server gave it; everything (connecting included) within `timeout`. The calls are made by
/// `busctl` (systemd's D-Bus client), killed at the deadline: its own `--timeout` covers a
/// method call, not a bus that accepts the connection and never speaks. The body is escaped
/// (`&`, `<`, `>`) when the server reads markup (or will not say): it carries process names,
/// which their processes choose, and a notification from oomward must show them as they are.
pub fn send_one(
    bus: &Path,
    summary: &str,
    body: &str,
    urgency: u8,
    timeout: Duration,
) -> Result<u32, NotifyError> {
    let busctl = BUSCTL
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or(NotifyError::NoBusctl)?;
    let call = BusCall {
        busctl,
        bus,
        deadline: Instant::now() + timeout,
        timeout,
    };
    // A server that cannot list its capabilities is taken to read markup; a timeout is the
    // end of it.
    let markup = match call.run("GetCapabilities", &[]) {
        Ok(caps) => caps.contains("\"body-markup\""),
        Err(e @ NotifyError::TimedOut { .. }) => return Err(e),
        Err(_) => true,
    };
    let body = if markup {
        escape_markup(body)
    } else {
        body.to_string()
    };
    let urgency = urgency.to_string();
    let args = [
        "susssasa{sv}i",
        "oomward",
        "0",
        "dialog-warning",
        summary,
        &body,
        // No actions; one hint, the urgency byte.
        "0",
        "1",
        "urgency",
        "y",
        &urgency,
        // The server's default display time.
        "-1",
    ];
    let said = call.run("Notify", &args)?;
    said.trim()
        .strip_prefix("u ")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| NotifyError::Reply {
            bus: call.shown(),
            said: escape_controls(said.trim()).into_owned(),
        })
}

/// One method call on the notification service, through `busctl`, within a deadline.
struct BusCall<'a> {
    busctl: &'a Path,
    bus: &'a Path,
    deadline: Instant,
    timeout: Duration,
}

impl BusCall<'_> {
    fn shown(&self) -> String {
        escape_controls(&self.bus.display().to_string()).into_owned()
    }

    /// Runs `busctl call` of `method` with `args` (arguments are literal argv words, after
    /// `--`: a summary starting with `-` is not an option), and returns what it printed.
    fn run(&self, method: &str, args: &[&str]) -> Result<String, NotifyError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timed_out = || NotifyError::TimedOut {
            bus: self.shown(),
            ms: self.timeout.as_millis(),
        };
        if left.is_zero() {
            return Err(timed_out());
        }
        let mut address = OsString::from("--address=unix:path=");
        address.push(address_escape(self.bus.as_os_str().as_bytes()));
        let mut child = Command::new(self.busctl)
            .arg(address)
            .arg(format!("--timeout={}ms", left.as_millis().max(1)))
            .args(["--", "call", SERVICE, OBJECT, SERVICE, method])
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NotifyError::Spawn {
                bus: self.shown(),
                source,
            })?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => {
                    thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(timed_out());
                }
            }
        };
        let out = bounded_text(child.stdout.take());
        let err = bounded_text(child.stderr.take());
        if status.success() {
            Ok(out)
        } else {
            Err(NotifyError::Call {
                bus: self.shown(),
                said: first_line(&err),
            })
        }
    }
}

/// What a finished child wrote on one of its pipes (or a file holds), at most [`MAX_OUTPUT`]
/// bytes of it.
fn bounded_text(pipe: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(p) = pipe {
        let _ = p.take(MAX_OUTPUT).read_to_string(&mut text);
    }
    text
}

/// A path as a D-Bus address value: bytes outside the unescaped set written as `%hh`.
fn address_escape(path: &[u8]) -> String {
    path.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-_/.\\*".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// `s` with the three characters markup gives meaning to written as entities.
fn escape_markup(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn session_file(root: &Path, id: &str, text: &str) {
        let dir = root.join("run/systemd/sessions");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(id), text).unwrap();
    }

    #[test]
    #[rustfmt::skip]
    fn graphical_user_sessions_are_kept_once_per_uid() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for (id, text) in [
            ("2", "# This is private data.\nUID=1000\nUSER=ann\nACTIVE=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\n"),
            ("3", "UID=1000\nUSER=ann\nSTATE=online\nTYPE=x11\nCLASS=user\n"),
            ("4", "UID=1001\nUSER=bob\nSTATE=active\nTYPE=tty\nCLASS=user\n"),
            ("c1", "UID=102\nUSER=gdm\nSTATE=active\nTYPE=wayland\nCLASS=greeter\n"),
            ("5", "UID=1002\nUSER=cy\nSTATE=closing\nTYPE=x11\nCLASS=user\n"),
            ("6", "UID=1003\nUSER=di\nSTATE=online\nTYPE=x11\nCLASS=user\nREMOTE=1\n"),
            ("7", "USER=nobody-knows\nTYPE=x11\nCLASS=user\n"),
            ("8", "UID=12x\nTYPE=x11\nCLASS=user\n"),
        ] {
            session_file(root, id, text);
        }
        // logind's reference FIFOs: never opened.
        nix::unistd::mkfifo(
            &root.join("run/systemd/sessions/2.ref"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let found = sessions(root);
        let ids: Vec<(&str, u32)> = found.iter().map(|s| (s.id.as_str(), s.uid)).collect();
        assert_eq!(ids, [("2", 1000), ("6", 1003)]);
        assert!(sessions(&root.join("nowhere")).is_empty());
    }

    #[test]
    fn targets_need_the_users_runtime_dir_and_bus_socket() {
        use std::os::unix::fs::chown;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let run = tmp.path().join("run");
        for (id, uid) in [("1", 65534), ("2", 65533)] {
            let text = format!("UID={uid}\nSTATE=active\nTYPE=wayland\nCLASS=user\n");
            session_file(&root, id, &text);
        }
        let me = rustix::process::geteuid().as_raw();
        let my_gid = rustix::process::getegid().as_raw();
        // uid 65534: a bus. uid 65533: a directory but no socket. `me`: listed by config.
        let others = [(65534u32, true), (65533, false)]
            .into_iter()
            .filter(|&(uid, _)| uid != me);
        for (uid, with_bus) in others.chain([(me, true)]) {
            let dir = run.join(uid.to_string());
            fs::create_dir_all(&dir).unwrap();
            if with_bus {
                // The socket file outlives the listener, which is all a target needs.
                UnixListener::bind(dir.join("bus")).unwrap();
            }
            if uid != me {
                if me != 0 {
                    continue; // cannot give a directory away
                }
                chown(&dir, Some(uid), Some(uid + 7)).unwrap();
            }
        }
        let got = targets(&root, &run, &[me, 4242]);
        let mut want = vec![Target {
            uid: me,
            gid: my_gid,
            bus: run.join(format!("{me}/bus")),
        }];
        if me == 0 {
            want.push(Target {
                uid: 65534,
                gid: 65541,
                bus: run.join("65534/bus"),
            });
        }
        want.sort_by_key(|t| t.uid);
        assert_eq!(got, want);
        // A directory owned by someone else is not the user's.
        assert!(target(&run, 4242).is_none());
        fs::create_dir_all(run.join("4242")).unwrap();
        assert!(target(&run, 4242).is_none());
    }

    #[test]
    fn bus_paths_are_written_as_dbus_addresses() {
        assert_eq!(address_escape(b"/run/user/1000/bus"), "/run/user/1000/bus");
        assert_eq!(address_escape(b"/tmp/a b;c=d,e"), "/tmp/a%20b%3bc%3dd%2ce");
        assert_eq!(address_escape(b"/x\xff"), "/x%ff");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_markup("<b>x</b> & y"),
            "&lt;b&gt;x&lt;/b&gt; &amp; y"
        );
        assert_eq!(escape_markup("plain"), "plain");
    }

    #[test]
    fn root_is_refused_without_running_anything() {
        let note = Note {
            summary: "s".into(),
            body: "b".into(),
            urgency: urgency::NORMAL,
            targets: vec![],
        };
        let target = Target {
            uid: 0,
            gid: 0,
            bus: "/nonexistent".into(),
        };
        let out = notify_as(Path::new("/nonexistent/oomward"), &target, &note);
        assert!(matches!(out, Outcome::Failed { uid: 0, ref why } if why.contains("root")));
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        // A notifier whose thread never takes a note: the queue fills, then every note is
        // dropped at once; with the thread gone, too.
        let (queue, notes) = crossbeam_channel::bounded(QUEUE);
        let notifier = Notifier {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let note = Note {
            summary: "s".into(),
            body: "b".into(),
            urgency: urgency::LOW,
            targets: vec![],
        };
        let start = Instant::now();
        let accepted = (0..20).filter(|_| notifier.send(note.clone())).count();
        assert_eq!(accepted, QUEUE);
        assert_eq!(notifier.dropped(), (20 - QUEUE) as u64);
        drop(notes);
        assert!(!notifier.send(note));
        assert_eq!(notifier.dropped(), (21 - QUEUE) as u64);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
