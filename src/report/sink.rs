//! Where log lines go. Lines are handed to a writer thread over a bounded channel, so the
//! enforcement path never blocks on a slow or stuck sink (a full pipe, a wedged syslog): when
//! the channel is full the line is dropped and counted, and the count is reported later.
//! A sink that fails falls back to stderr: losing the log must never stop the daemon.

use std::io::{IsTerminal, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::config::LogTarget;

/// How serious a line is; mapped to syslog priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Routine (start, reload, decisions).
    Info,
    /// Something the administrator should look at.
    Warning,
    /// Something failed.
    Error,
}

enum Sink {
    Stderr,
    /// Native entries on the journal's socket.
    Journal(std::os::unix::net::UnixDatagram),
    Syslog(Box<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>),
}

impl Sink {
    fn open(target: LogTarget) -> Self {
        let resolved = match target {
            LogTarget::Auto if super::journal::stderr_is_journal() => LogTarget::Journald,
            LogTarget::Auto if std::io::stderr().is_terminal() => LogTarget::Stderr,
            LogTarget::Auto if std::path::Path::new("/dev/log").exists() => LogTarget::Syslog,
            LogTarget::Auto => LogTarget::Stderr,
            other => other,
        };
        match resolved {
            LogTarget::Journald => {
                let sock = std::os::unix::net::UnixDatagram::unbound()
                    .and_then(|s| s.connect(super::journal::SOCKET).map(|()| s));
                match sock {
                    Ok(s) => Sink::Journal(s),
                    // No journal (not a systemd host): plain lines rather than nothing.
                    Err(_) => Sink::Stderr,
                }
            }
            LogTarget::Syslog => {
                let formatter = syslog::Formatter3164 {
                    facility: syslog::Facility::LOG_DAEMON,
                    hostname: None,
                    process: "oomward".into(),
                    pid: std::process::id(),
                };
                match syslog::unix(formatter) {
                    Ok(l) => Sink::Syslog(Box::new(l)),
                    Err(_) => Sink::Stderr,
                }
            }
            _ => Sink::Stderr,
        }
    }

    fn write(&mut self, severity: Severity, line: &str) {
        match self {
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
            }
            Sink::Journal(sock) => {
                let entry = super::journal::entry(severity, line, page_size());
                if sock.send(&entry).is_err() {
                    let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
                }
            }
            Sink::Syslog(l) => {
                let r = match severity {
                    Severity::Info => l.info(line),
                    Severity::Warning => l.warning(line),
                    Severity::Error => l.err(line),
                };
                if r.is_err() {
                    let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
                }
            }
        }
    }
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Lines waiting for the writer; beyond this they are dropped and counted.
const QUEUE: usize = 1024;

/// What the writer thread is handed, in order.
enum Message {
    Line(Severity, String),
    /// Close the sink and open this one (a reload changed `log`).
    Switch(LogTarget),
}

/// How long a stop waits for queued lines to be written: a sink nobody drains (stderr on an
/// unread pipe) must not keep the daemon from exiting.
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The daemon's logger: cheap, non-blocking `log` calls; the writing happens on one thread
/// for the daemon's whole life (a reload switches its sink rather than starting another, so a
/// thread blocked on a stuck sink is never left behind).
pub struct Logger {
    tx: Option<Sender<Message>>,
    writer: Option<JoinHandle<()>>,
    /// Closed by the writer thread when it has written everything and ended.
    done: Option<crossbeam_channel::Receiver<()>>,
    target: LogTarget,
    dropped: u64,
    capture: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
}

impl Logger {
    /// Opens the sink `target` names; `auto` picks the journal when stderr is the journal's
    /// stream (`JOURNAL_STREAM` names stderr's device and inode: a service's), stderr on a
    /// terminal, else syslog if its socket exists, else stderr.
    pub fn new(target: LogTarget) -> Self {
        let (tx, rx) = bounded::<Message>(QUEUE);
        let (done_tx, done) = bounded::<()>(0);
        let writer = std::thread::Builder::new()
            .name("oomward-log".into())
            .spawn(move || {
                let _done = done_tx;
                let mut sink = Sink::open(target);
                for message in rx {
                    match message {
                        Message::Line(severity, line) => sink.write(severity, &line),
                        Message::Switch(target) => sink = Sink::open(target),
                    }
                }
            })
            .ok();
        Logger {
            tx: Some(tx),
            writer,
            done: Some(done),
            target,
            dropped: 0,
            capture: None,
        }
    }

    /// Points the logger at `target` from the next line on (after a reload); nothing happens
    /// when it is the one in use. Queued like a line, so it never blocks.
    pub fn switch(&mut self, target: LogTarget) {
        if target == self.target {
            return;
        }
        if let Some(tx) = &self.tx
            && tx.try_send(Message::Switch(target)).is_ok()
        {
            self.target = target;
        }
    }

    /// A logger that keeps its lines in memory, for tests that read what was decided.
    pub fn capture() -> (Self, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let logger = Logger {
            tx: None,
            writer: None,
            done: None,
            target: LogTarget::Stderr,
            dropped: 0,
            capture: Some(lines.clone()),
        };
        (logger, lines)
    }

    /// Queues one line; never blocks. If the queue is full the line is dropped and counted.
    pub fn log(&mut self, severity: Severity, line: &str) {
        if let Some(lines) = &self.capture {
            if let Ok(mut l) = lines.lock() {
                l.push(line.to_string());
            }
            return;
        }
        let Some(tx) = &self.tx else { return };
        if self.dropped > 0 {
            let note = format!(
                "log queue was full event=log_dropped lines={}",
                self.dropped
            );
            if tx.try_send(Message::Line(Severity::Warning, note)).is_ok() {
                self.dropped = 0;
            }
        }
        match tx.try_send(Message::Line(severity, line.to_string())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {
                // The writer thread is gone: write directly rather than lose the line.
                let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
            }
        }
    }
}

impl Logger {
    /// Waits until everything queued has been written (at stop, so the last lines are not
    /// lost), but no longer than [`FINISH_WAIT`]: a sink nobody drains must not keep the daemon
    /// from exiting.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(done) = self.done.take() {
            // Disconnected when the writer ends; a timeout leaves it to the process's exit.
            let _ = done.recv_timeout(FINISH_WAIT);
        }
        if let Some(w) = self.writer.take()
            && w.is_finished()
        {
            let _ = w.join();
        }
    }
}

impl Drop for Logger {
    /// Closes the queue; the writer thread drains it and ends on its own. Never waits for it,
    /// so replacing the logger on reload cannot block the loop behind a wedged sink.
    fn drop(&mut self) {
        self.tx.take();
    }
}
