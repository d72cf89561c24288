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

/// The daemon's logger: cheap, non-blocking `log` calls; the writing happens on its own thread.
pub struct Logger {
    tx: Option<Sender<(Severity, String)>>,
    writer: Option<JoinHandle<()>>,
    dropped: u64,
    capture: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
}

impl Logger {
    /// Opens the sink `target` names; `auto` picks the journal when stderr is the journal's
    /// stream (`JOURNAL_STREAM` names stderr's device and inode: a service's), stderr on a
    /// terminal, else syslog if its socket exists, else stderr.
    pub fn new(target: LogTarget) -> Self {
        let (tx, rx) = bounded::<(Severity, String)>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("oomward-log".into())
            .spawn(move || {
                let mut sink = Sink::open(target);
                for (severity, line) in rx {
                    sink.write(severity, &line);
                }
            })
            .ok();
        Logger {
            tx: Some(tx),
            writer,
            dropped: 0,
            capture: None,
        }
    }

    /// A logger that keeps its lines in memory, for tests that read what was decided.
    pub fn capture() -> (Self, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let logger = Logger {
            tx: None,
            writer: None,
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
            if tx.try_send((Severity::Warning, note)).is_ok() {
                self.dropped = 0;
            }
        }
        match tx.try_send((severity, line.to_string())) {
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
    /// lost). Only for the end of the daemon's life: a wedged sink would make this wait.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
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
