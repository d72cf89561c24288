//! The daemon's children (hooks, notification helpers): started, watched and ended by one
//! thread, so that none of them, nor anything they start, outlives its welcome.
//!
//! Each child runs in a process group of its own. The daemon is the subreaper of everything
//! they start (`PR_SET_CHILD_SUBREAPER`, [`contain_descendants`]): a child's descendants, in the background, forked
//! twice or in a session of their own (`setsid`), come back to the daemon when their parent
//! exits instead of going to PID 1. Any process that comes back so is a leftover, and is
//! killed (with what it started in turn) as soon as it is seen: a hook is a command that runs
//! and ends, and what it leaves behind ends with it. A child that outlives its timeout is
//! killed with every descendant it has; at the daemon's stop, all of them.
//!
//! One thread does all of this, with no thread or descriptor per child beyond its stderr
//! pipe (closed at its end, whoever else holds the other side): a thousand leftovers cost a
//! sweep of /proc, not a thousand threads.

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::probe::process::Stat;
use crate::sys::{self, ChildEnd};

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this status code (0: success).
    Exited(i32),
    /// A signal ended it.
    Signalled(i32),
    /// It outlived its timeout and was killed, with its descendants.
    TimedOut,
    /// It could not be started.
    NotStarted(String),
    /// The daemon stopped first: it was killed, with its descendants.
    Stopped,
}

/// What the runner says of a child at its end.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Its pid (0 if it never started).
    pub pid: u32,
    /// How it ended.
    pub ending: Ending,
    /// How long it ran.
    pub ran: Duration,
    /// The start of what it wrote on stderr.
    pub stderr: String,
    /// How many leftovers (descendants still there at its end) were killed.
    pub leftovers: usize,
}

impl Ended {
    fn not_started(why: String) -> Ended {
        Ended {
            pid: 0,
            ending: Ending::NotStarted(why),
            ran: Duration::ZERO,
            stderr: String::new(),
            leftovers: 0,
        }
    }
}

/// How much of a child's stderr is kept.
const STDERR_KEPT: usize = 512;
/// How often the runner looks at its children while any runs.
const TICK: Duration = Duration::from_millis(10);
/// How long a stop waits for every child and leftover to be gone.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Called with a child's end, on the runner's thread.
pub type OnEnd = Box<dyn FnOnce(Ended) + Send>;

enum Request {
    Start {
        cmd: Box<Command>,
        timeout: Duration,
        on_end: OnEnd,
    },
    Stop(Sender<()>),
}

/// The runner thread's handle: one for the process, started at the first child.
struct Handle {
    tx: Sender<Request>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

static RUNNER: std::sync::OnceLock<Option<Handle>> = std::sync::OnceLock::new();

/// Whether the process is the subreaper of its descendants and every child of it is the
/// runner's ([`contain_descendants`]).
static CONTAINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes the process the subreaper of its descendants, and the runner the keeper of all its
/// children: any child it did not start is a leftover, killed and reaped. For the daemon,
/// which starts every child through the runner; a program that starts children of its own
/// must not call it (their children would be taken for leftovers).
pub fn contain_descendants() -> io::Result<()> {
    sys::become_subreaper()?;
    CONTAINED.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

fn contained() -> bool {
    CONTAINED.load(std::sync::atomic::Ordering::SeqCst)
}

fn runner() -> Option<&'static Handle> {
    RUNNER
        .get_or_init(|| {
            let (tx, rx) = bounded::<Request>(64);
            let thread = crate::sys::spawn_helper("children", move || {
                Runner::default().run(&rx);
            })
            .ok()?;
            Some(Handle {
                tx,
                thread: std::sync::Mutex::new(Some(thread)),
            })
        })
        .as_ref()
}

/// Starts `cmd` on the runner (its stdin and stdout null, its stderr kept; it should be in a
/// process group of its own, as [`crate::sys::as_user`] makes it), ended with its
/// descendants after `timeout`; `on_end` hears how it ended, on the runner's thread. Never
/// waits. False when the runner cannot take it (then `on_end` hears `NotStarted`).
pub fn spawn(mut cmd: Command, timeout: Duration, on_end: OnEnd) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let request = Request::Start {
        cmd: Box::new(cmd),
        timeout,
        on_end,
    };
    let refused = match runner() {
        Some(h) => match h.tx.try_send(request) {
            Ok(()) => return true,
            Err(e) => e.into_inner(),
        },
        None => request,
    };
    if let Request::Start { on_end, .. } = refused {
        on_end(Ended::not_started(
            "the child runner is busy or could not start".into(),
        ));
    }
    false
}

/// Kills every child and leftover and waits (at most [`STOP_WAIT`]) until they are gone: the
/// daemon's stop. Nothing can be started after it.
pub fn stop() {
    let Some(h) = RUNNER.get().and_then(Option::as_ref) else {
        return;
    };
    let (tx, rx) = bounded(1);
    if h.tx.send(Request::Stop(tx)).is_ok() {
        let _ = rx.recv_timeout(STOP_WAIT + Duration::from_secs(1));
    }
    let thread = h.thread.lock().ok().and_then(|mut t| t.take());
    if let Some(t) = thread {
        let _ = t.join();
    }
}

/// One running child.
struct Running {
    started: Instant,
    timeout: Duration,
    stderr: Option<OwnedFd>,
    kept: Vec<u8>,
    on_end: OnEnd,
}

#[derive(Default)]
struct Runner {
    running: HashMap<i32, Running>,
    /// Sweep for leftovers until this time (set when a child ends).
    sweep_until: Option<Instant>,
    /// The last sweep: at most one every [`SWEEP_EVERY`] (each reads all of /proc).
    swept: Option<Instant>,
}

/// See [`Runner::swept`].
const SWEEP_EVERY: Duration = Duration::from_millis(100);

impl Runner {
    fn run(&mut self, rx: &Receiver<Request>) {
        loop {
            let wait = if self.running.is_empty() && self.sweep_until.is_none() {
                None
            } else {
                Some(TICK)
            };
            let request = match wait {
                None => rx.recv().ok(),
                Some(t) => match rx.recv_timeout(t) {
                    Ok(r) => Some(r),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        self.stop_all();
                        return;
                    }
                },
            };
            match request {
                Some(Request::Start {
                    cmd,
                    timeout,
                    on_end,
                }) => self.start(*cmd, timeout, on_end),
                Some(Request::Stop(done)) => {
                    self.stop_all();
                    let _ = done.send(());
                    return;
                }
                None if wait.is_none() => {
                    // The handle is gone.
                    self.stop_all();
                    return;
                }
                None => {}
            }
            self.tick();
        }
    }

    fn start(&mut self, mut cmd: Command, timeout: Duration, on_end: OnEnd) {
        let now = Instant::now();
        match cmd.spawn() {
            Ok(mut child) => {
                let stderr = child.stderr.take().map(OwnedFd::from);
                if let Some(fd) = &stderr {
                    let _ = sys::set_nonblocking(fd);
                }
                let pid = child.id() as i32;
                // The runner reaps it itself (waitpid on any child): the handle is let go.
                drop(child);
                self.running.insert(
                    pid,
                    Running {
                        started: now,
                        timeout,
                        stderr,
                        kept: Vec::new(),
                        on_end,
                    },
                );
            }
            Err(e) => on_end(Ended::not_started(e.to_string())),
        }
    }

    /// Reads what the children wrote, reaps whoever exited (children and leftovers), ends
    /// those past their timeout, and sweeps for leftovers while one is due.
    fn tick(&mut self) {
        for r in self.running.values_mut() {
            read_stderr(r);
        }
        let reaped: Vec<(i32, ChildEnd)> = if contained() {
            std::iter::from_fn(reap_any).collect()
        } else {
            let pids: Vec<i32> = self.running.keys().copied().collect();
            pids.into_iter().filter_map(reap).collect()
        };
        for (pid, status) in reaped {
            if let Some(r) = self.running.remove(&pid) {
                let ending = match status {
                    ChildEnd::Exited(c) => Ending::Exited(c),
                    ChildEnd::Signalled(s) => Ending::Signalled(s),
                };
                self.finish(pid, r, ending);
            }
        }
        let now = Instant::now();
        let late: Vec<i32> = self
            .running
            .iter()
            .filter(|(_, r)| now.duration_since(r.started) >= r.timeout)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in late {
            kill_tree(pid);
            // Reaped here, so that its pid cannot be reused before the report names it.
            wait_for(pid);
            if let Some(r) = self.running.remove(&pid) {
                self.finish(pid, r, Ending::TimedOut);
            }
        }
        if let Some(until) = self.sweep_until
            && self
                .swept
                .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
        {
            self.swept = Some(now);
            self.sweep();
            if now >= until {
                self.sweep_until = None;
            }
        }
    }

    /// Tells of a child's end, after killing what it left behind.
    fn finish(&mut self, pid: i32, mut r: Running, ending: Ending) {
        read_stderr(&mut r);
        let leftovers = self.sweep();
        // Grandchildren come back as their parents die: look again for a second.
        self.sweep_until = Some(Instant::now() + Duration::from_secs(1));
        let stderr = String::from_utf8_lossy(&r.kept).into_owned();
        drop(r.stderr.take());
        (r.on_end)(Ended {
            pid: pid as u32,
            ending,
            ran: r.started.elapsed(),
            stderr,
            leftovers,
        });
    }

    /// Kills every process that came back to the daemon and is not one of its running
    /// children (with its descendants), and reaps it. How many there were. Only where the
    /// process is contained ([`contain_descendants`]).
    fn sweep(&mut self) -> usize {
        if !contained() {
            return 0;
        }
        let own = std::process::id() as i32;
        let mut killed = 0;
        for _ in 0..16 {
            let tree = process_tree();
            let leftovers: Vec<i32> = tree
                .iter()
                .filter(|(pid, ppid)| *ppid == own && !self.running.contains_key(pid))
                .map(|(pid, _)| *pid)
                .collect();
            if leftovers.is_empty() {
                break;
            }
            for pid in &leftovers {
                kill_tree_in(&tree, *pid);
            }
            killed += leftovers.len();
            for pid in leftovers {
                wait_for(pid);
            }
        }
        while reap_any().is_some() {}
        killed
    }

    /// The daemon stops: every child and leftover is killed and reaped.
    fn stop_all(&mut self) {
        let pids: Vec<i32> = self.running.keys().copied().collect();
        for pid in &pids {
            kill_tree(*pid);
        }
        for pid in pids {
            wait_for(pid);
            if let Some(r) = self.running.remove(&pid) {
                self.finish(pid, r, Ending::Stopped);
            }
        }
        let deadline = Instant::now() + STOP_WAIT;
        while self.sweep() > 0 && Instant::now() < deadline {}
    }
}

/// Keeps the first [`STDERR_KEPT`] bytes of what a child wrote and drains the rest, without
/// waiting: the child never blocks on a full pipe.
fn read_stderr(r: &mut Running) {
    let Some(fd) = &r.stderr else { return };
    let mut buf = [0u8; 4096];
    loop {
        match sys::read_uninterrupted(fd, &mut buf) {
            Ok(0) => {
                r.stderr = None;
                return;
            }
            Ok(n) => {
                let room = STDERR_KEPT.saturating_sub(r.kept.len());
                r.kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(_) => return,
        }
    }
}

/// Reaps one exited child of the daemon, any of them, without waiting.
fn reap_any() -> Option<(i32, ChildEnd)> {
    sys::reap(None).ok().flatten()
}

/// Reaps `pid` if it exited, without waiting.
fn reap(pid: i32) -> Option<(i32, ChildEnd)> {
    sys::reap(Some(pid)).ok().flatten()
}

/// Waits (briefly) for the killed child `pid` and reaps it.
fn wait_for(pid: i32) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while matches!(sys::reap(Some(pid)), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every process's (pid, ppid), from /proc.
fn process_tree() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, Stat::parse(&stat).ok()?.ppid))
        })
        .collect()
}

/// Kills `pid`, its process group and every descendant it has.
fn kill_tree(pid: i32) {
    kill_tree_in(&process_tree(), pid);
}

fn kill_tree_in(tree: &[(i32, i32)], root: i32) {
    let mut doomed = vec![root];
    let mut k = 0;
    while k < doomed.len() {
        let parent = doomed[k];
        doomed.extend(tree.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        k += 1;
    }
    sys::kill_tree(&doomed, root);
}
