//! Desktop notifications against a real session bus: a `dbus-daemon --session` and the test
//! notification server (`tests/notify_server.py`, on GLib's D-Bus), both run as `nobody` in a
//! temporary runtime directory, receive what `oomward notify-send` (through `busctl`) and the
//! in-process [`Notifier`] send.
//!
//! Needs root (to run processes as another user), `dbus-daemon`, `busctl` and python3-gi: the
//! tests are ignored by plain `cargo test`, and fail saying what is missing when run without.
//! Every process started is killed, and every directory removed, on every path.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use oomward::report::notify::{self, Note, Notifier, Outcome, Target, urgency};

/// The unprivileged user the buses and servers run as.
const NOBODY: u32 = 65534;

/// Fails the test, saying what is missing, unless this machine can run it: root (to run the
/// bus and the server as another user), `dbus-daemon`, `busctl` and Debian's python3-gi (the
/// stand-in server). `.ci/setup` installs them; the tests are `#[ignore]`d with these words.
fn need_bus() {
    support::need_root("to run processes as another user");
    for (tool, package) in [("dbus-daemon", "dbus-daemon"), ("busctl", "systemd")] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .status();
        assert!(
            found.is_ok_and(|s| s.success()),
            "needs {tool} (Debian package {package})"
        );
    }
    let gi = Command::new("/usr/bin/python3")
        .args(["-c", "from gi.repository import Gio"])
        .status();
    assert!(
        gi.is_ok_and(|s| s.success()),
        "needs /usr/bin/python3 with GLib's bindings (Debian packages python3-gi, gir1.2-glib-2.0)"
    );
}

/// A runtime directory like `/run/user`, removed when dropped, with `<uid>/` (mode 0700)
/// belonging to `uid`, as logind makes it.
pub struct RuntimeDir {
    tmp: tempfile::TempDir,
}

impl RuntimeDir {
    pub fn new(uid: u32) -> RuntimeDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        // The users' processes must reach their own directory below it.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let user_dir = tmp.path().join(uid.to_string());
        fs::create_dir(&user_dir).expect("mkdir");
        fs::set_permissions(&user_dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        chown(&user_dir, Some(uid), Some(uid)).expect("chown");
        RuntimeDir { tmp }
    }

    /// The directory standing in for `/run/user`.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `<dir>/<uid>/<name>`.
    pub fn socket(&self, uid: u32, name: &str) -> PathBuf {
        self.tmp.path().join(uid.to_string()).join(name)
    }
}

/// A process started for a test, killed and reaped when dropped; its stdout lines arrive on a
/// channel.
pub struct Spawned {
    child: Child,
    lines: Receiver<String>,
}

impl Spawned {
    fn start(cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned { child, lines }
    }

    /// The next stdout line, waiting at most `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next stdout line as JSON.
    pub fn next_json(&self, timeout: Duration) -> Option<serde_json::Value> {
        let line = self.next_line(timeout)?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A session bus (`dbus-daemon --session`) listening on `socket`, run as `uid`; returns once
/// it listens.
pub fn session_bus(socket: &Path, uid: u32) -> Spawned {
    let bus = Spawned::start(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .uid(uid)
            .gid(uid),
    );
    let address = bus.next_line(Duration::from_secs(10));
    assert!(
        address.as_deref().is_some_and(|a| a.contains("unix:path=")),
        "dbus-daemon did not start: {address:?}"
    );
    bus
}

/// The test notification server (tests/notify_server.py) on the bus at `socket`, run as
/// `uid`; returns once it owns org.freedesktop.Notifications.
pub fn notify_server(socket: &Path, uid: u32) -> Spawned {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify_server.py");
    let server = Spawned::start(
        Command::new("/usr/bin/python3")
            .arg(script)
            .arg(socket)
            .env_clear()
            .uid(uid)
            .gid(uid),
    );
    let ready = server.next_json(Duration::from_secs(10));
    assert!(
        ready.as_ref().is_some_and(|r| r.get("ready").is_some()),
        "notify_server did not start: {ready:?}"
    );
    server
}

/// A root directory with one logind session file: a graphical session of `uid`.
pub fn logind_root(uid: u32) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("run/systemd/sessions");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(
        dir.join("3"),
        format!(
            "UID={uid}\nUSER=nobody\nACTIVE=1\nSTATE=active\nREMOTE=0\nTYPE=wayland\nCLASS=user\n"
        ),
    )
    .expect("session file");
    root
}

fn oomward_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oomward"))
}

#[test]
#[ignore = "needs root, dbus-daemon, busctl and python3-gi"]
fn notify_send_as_the_user_reaches_the_notification_server() {
    need_bus();
    let run = RuntimeDir::new(NOBODY);
    let socket = run.socket(NOBODY, "bus");
    let _bus = session_bus(&socket, NOBODY);
    let server = notify_server(&socket, NOBODY);

    let mut cmd = Command::new(oomward_exe());
    cmd.arg("notify-send")
        .arg("--bus")
        .arg(&socket)
        .args(["--summary", "Memory low: killed firefox"])
        .arg("--body=-firefox (pid 42) used 3.1 GiB <b>&</b>")
        .args(["--urgency", "2", "--timeout-ms", "2000"])
        .env_clear();
    oomward::sys::as_user(&mut cmd, NOBODY, NOBODY);
    let out = cmd.output().expect("run notify-send");
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let got = server
        .next_json(Duration::from_secs(5))
        .expect("a Notify call");
    assert_eq!(
        got,
        serde_json::json!({
            "app": "oomward",
            "summary": "Memory low: killed firefox",
            // The server reads markup, so the process-chosen text is escaped.
            "body": "-firefox (pid 42) used 3.1 GiB &lt;b&gt;&amp;&lt;/b&gt;",
            "urgency": 2,
        })
    );
}

#[test]
#[ignore = "needs root, dbus-daemon, busctl and python3-gi"]
fn the_notifier_reaches_each_graphical_session_and_reports_it() {
    need_bus();
    let run = RuntimeDir::new(NOBODY);
    let socket = run.socket(NOBODY, "bus");
    let _bus = session_bus(&socket, NOBODY);
    let server = notify_server(&socket, NOBODY);
    let root = logind_root(NOBODY);

    let targets = notify::targets(root.path(), run.path(), &[]);
    assert_eq!(
        targets,
        [Target {
            uid: NOBODY,
            gid: NOBODY,
            bus: socket.clone()
        }]
    );
    let (told, outcomes) = crossbeam_channel::unbounded();
    let tell = Box::new(move |o: &Outcome| drop(told.send(o.clone())));
    let notifier = Notifier::start(oomward_exe(), tell).expect("notifier");
    for (summary, level) in [("warn", urgency::NORMAL), ("kill", urgency::CRITICAL)] {
        let start = Instant::now();
        assert!(notifier.send(Note {
            summary: summary.into(),
            body: "memhog (pid 7) used 512 MiB".into(),
            urgency: level,
            targets: targets.clone(),
        }));
        // Queuing never waits.
        assert!(start.elapsed() < Duration::from_millis(100));
        let outcome = outcomes.recv_timeout(Duration::from_secs(5));
        assert_eq!(outcome, Ok(Outcome::Sent { uid: NOBODY }));
        let got = server
            .next_json(Duration::from_secs(5))
            .expect("a Notify call");
        assert_eq!(got["summary"], summary);
        assert_eq!(got["urgency"], level);
        assert_eq!(got["body"], "memhog (pid 7) used 512 MiB");
    }
    assert_eq!(notifier.dropped(), 0);
}

#[test]
#[ignore = "needs root, dbus-daemon, busctl and python3-gi"]
fn failures_are_reported_with_a_reason_within_the_deadline() {
    need_bus();
    let run = RuntimeDir::new(NOBODY);
    // A bus nobody serves notifications on.
    let empty_bus = run.socket(NOBODY, "bus");
    let _bus = session_bus(&empty_bus, NOBODY);
    // A socket that accepts connections and never says a word.
    let silent = run.socket(NOBODY, "silent");
    let _listener = UnixListener::bind(&silent).expect("bind");
    fs::set_permissions(&silent, fs::Permissions::from_mode(0o777)).expect("chmod");

    let (told, outcomes) = crossbeam_channel::unbounded();
    let tell = Box::new(move |o: &Outcome| drop(told.send(o.clone())));
    let notifier = Notifier::start(oomward_exe(), tell).expect("notifier");
    let target = |uid: u32, bus: &Path| Target {
        uid,
        gid: uid,
        bus: bus.to_path_buf(),
    };
    let cases = [
        (target(NOBODY, &empty_bus), "was not provided by any"),
        (target(NOBODY, &silent), "timed out"),
        (target(NOBODY, &run.socket(NOBODY, "gone")), "No such file"),
        (target(0, &empty_bus), "refused"),
    ];
    for (target, reason) in cases {
        let start = Instant::now();
        assert!(notifier.send(Note {
            summary: "s".into(),
            body: "b".into(),
            urgency: urgency::NORMAL,
            targets: vec![target.clone()],
        }));
        let outcome = outcomes
            .recv_timeout(Duration::from_secs(10))
            .expect("an outcome");
        let took = start.elapsed();
        match outcome {
            Outcome::Failed { uid, why } => {
                assert_eq!(uid, target.uid);
                assert!(why.contains(reason), "{}: {why:?}", target.bus.display());
                assert!(!why.contains('\n'), "{why:?}");
            }
            other => panic!("{}: {other:?}", target.bus.display()),
        }
        // notify-send's own deadline is 2 s; it is killed at 3 s.
        assert!(took < Duration::from_millis(3500), "{took:?}");
    }
}

#[test]
#[ignore = "needs root to run processes as another user"]
fn children_run_as_the_user_with_nothing_of_the_daemon() {
    support::need_root("to run processes as another user");
    // The daemon runs with oom_score_adj -1000; here a raised value stands in (raising is
    // harmless, and is put back).
    let before = fs::read_to_string("/proc/self/oom_score_adj").expect("read adj");
    fs::write("/proc/self/oom_score_adj", "500").expect("raise adj");
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "id -u; id -g; id -G; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status",
    ])
    .env_clear()
    .stdin(Stdio::null());
    oomward::sys::as_user(&mut cmd, NOBODY, NOBODY);
    let out = cmd.output();
    fs::write("/proc/self/oom_score_adj", before.trim()).expect("restore adj");
    let out = out.expect("run sh");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        ["65534", "65534", "65534", "0", "NoNewPrivs:\t1"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// End to end: the daemon watching a real memory cgroup with a warn level, an allocator growing
/// in it; the user's session bus gets one notification at warn (naming the allocator) and one
/// at its kill (critical).
#[test]
#[ignore = "needs root, a cgroup-v1 memory controller, dbus-daemon, busctl and python3-gi"]
fn the_daemon_notifies_the_users_session_at_warn_and_at_the_kill() {
    need_bus();
    support::need_v1();
    let _serial = support::serial();
    let run = RuntimeDir::new(NOBODY);
    let socket = run.socket(NOBODY, "bus");
    let _bus = session_bus(&socket, NOBODY);
    let server = notify_server(&socket, NOBODY);
    let cg = support::TestCgroup::create("notify", 256 << 20);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("oomward.toml");
    fs::write(
        &conf,
        format!(
            "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[kill]\ngrace = \"300ms\"\n\
             [notify]\ndesktop = true\nusers = [\"nobody\"]\nruntime_dir = \"{}\"\n\
             [[cgroup]]\npath = \"{}\"\navailable_warn = \"40%\"\n",
            run.path().display(),
            cg.path
        ),
    )
    .unwrap();
    let d = support::Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let mut hog = support::Proc::grower(&cg, "30", &[]);
    assert!(hog.wait_exit(Duration::from_secs(30)).is_some());
    let warn = server
        .next_json(Duration::from_secs(10))
        .expect("a notification at warn");
    println!("warn: {warn}");
    assert_eq!(warn["summary"], "Memory is running low");
    assert_eq!(warn["urgency"], urgency::NORMAL);
    let body = warn["body"].as_str().unwrap();
    assert!(body.contains(&format!("memhog (pid {}", hog.pid)), "{body}");
    let kill = server
        .next_json(Duration::from_secs(10))
        .expect("a notification at the kill");
    println!("kill: {kill}");
    assert_eq!(kill["summary"], "memhog was stopped to free memory");
    assert_eq!(kill["urgency"], urgency::CRITICAL);
    let body = kill["body"].as_str().unwrap();
    assert!(body.contains(&format!("(pid {}) used", hog.pid)), "{body}");
    assert!(body.contains("MiB"), "{body}");
    // Each outcome is logged as its `notify-send` ends.
    let sent = "event=notify uid=65534 outcome=sent";
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.output().matches(sent).count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = d.output();
    assert_eq!(out.matches(sent).count(), 2, "{out}");
    assert!(
        server.next_json(Duration::from_millis(500)).is_none(),
        "one each"
    );
}
