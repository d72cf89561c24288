//! Where log lines go. Lines are handed to a writer thread over a bounded channel, so the
//! enforcement path never blocks on a slow or stuck sink (a full pipe, a wedged syslog): when
//! the channel is full the line is dropped and counted, and the count is reported later.
//! A sink that fails falls back to stderr: losing the log must never stop the daemon.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError, bounded};

use super::kill::KillRecord;
use crate::config::{LogFormat, LogTarget};

/// How serious a line is; mapped to syslog priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Routine (start, reload, events armed).
    Info,
    /// Worth telling, nothing done: a warn level crossed, a decision made in a dry run.
    Notice,
    /// Something the administrator should look at: a process stopped (SIGTERM).
    Warning,
    /// Something failed, or a process was killed outright (SIGKILL, or the kernel's OOM
    /// killer acted first).
    Error,
}

impl Severity {
    /// Its name in JSON lines.
    pub fn name(self) -> &'static str {
        ["info", "notice", "warning", "error"][self as usize]
    }

    /// Its syslog priority: 6 info, 5 notice, 4 warning, 3 error.
    pub fn priority(self) -> u8 {
        6 - self as u8
    }
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

    /// Writes one line. The journal always gets native fields (its own structured form, the
    /// report as `OOMWARD_REPORT=` JSON); stderr and syslog get text or JSON as configured.
    fn write(&mut self, format: LogFormat, r: &Record) {
        let (severity, line) = (r.severity, r.line.as_str());
        let report = r
            .report
            .as_ref()
            .and_then(|k| serde_json::to_string(&**k).ok());
        let json = || super::json::line_object(severity, &r.line, r.time, report.as_deref());
        match self {
            Sink::Stderr => {
                let out = match format {
                    LogFormat::Json => json(),
                    LogFormat::Text => format!("oomward: {line}"),
                };
                let _ = writeln!(std::io::stderr().lock(), "{out}");
            }
            Sink::Journal(sock) => {
                let mut entry = super::journal::entry(severity, &r.line, crate::sys::page_size());
                if let Some(report) = &report {
                    super::journal::field(&mut entry, "OOMWARD_REPORT", report);
                }
                if sock.send(&entry).is_err() {
                    let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
                }
            }
            Sink::Syslog(l) => {
                let text = match format {
                    LogFormat::Json => json(),
                    LogFormat::Text => line.to_string(),
                };
                let r = match severity {
                    Severity::Info => l.info(&text),
                    Severity::Notice => l.notice(&text),
                    Severity::Warning => l.warning(&text),
                    Severity::Error => l.err(&text),
                };
                if r.is_err() {
                    let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
                }
            }
        }
    }
}

/// Lines waiting for the writer; beyond this they are dropped and counted.
const QUEUE: usize = 1024;

/// One line to write.
struct Record {
    severity: Severity,
    line: super::Line,
    /// When it was logged, seconds since the epoch (JSON lines carry it).
    time: f64,
    /// A kill record, for the JSON format and the journal (serialized on the writer thread,
    /// not in the loop).
    report: Option<Arc<KillRecord>>,
}

/// What the writer thread is handed, in order.
enum Message {
    Line(Record),
    /// Close the sink and open this one (a reload changed `log`).
    Switch(LogTarget),
    /// Write lines in this format from now on.
    Format(LogFormat),
}

/// How long a stop waits for queued lines to be written: a sink nobody drains (stderr on an
/// unread pipe) must not keep the daemon from exiting.
const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The daemon's logger: cheap, non-blocking `log` calls; the writing happens on one thread
/// for the daemon's whole life (a reload switches its sink rather than starting another, so a
/// thread blocked on a stuck sink is never left behind).
pub struct Logger {
    handle: LogHandle,
    writer: Option<JoinHandle<()>>,
    /// Closed by the writer thread when it has written everything and ended.
    done: Option<crossbeam_channel::Receiver<()>>,
    target: LogTarget,
    format: LogFormat,
    dropped: u64,
}

/// Lines kept in memory instead of written ([`Logger::capture`]).
type Captured = Arc<Mutex<Vec<String>>>;

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
                let mut format = LogFormat::Text;
                for message in rx {
                    match message {
                        Message::Line(record) => sink.write(format, &record),
                        Message::Switch(target) => sink = Sink::open(target),
                        Message::Format(f) => format = f,
                    }
                }
            })
            .ok();
        let handle = LogHandle {
            tx: Some(tx),
            capture: None,
        };
        Logger {
            handle,
            writer,
            done: Some(done),
            target,
            format: LogFormat::Text,
            dropped: 0,
        }
    }

    /// Writes lines in `format` from the next line on (start, `--log-format`, a reload).
    pub fn set_format(&mut self, format: LogFormat) {
        if format != self.format && self.send_setting(Message::Format(format)) {
            self.format = format;
        }
    }

    /// Points the logger at `target` from the next line on (after a reload); nothing happens
    /// when it is the one in use. Queued like a line, so it never blocks.
    pub fn switch(&mut self, target: LogTarget) {
        if target != self.target && self.send_setting(Message::Switch(target)) {
            self.target = target;
        }
    }

    /// Queues a change of the logger's settings without blocking; whether it was queued (so
    /// that what this side believes in use stays what the logger thread uses).
    fn send_setting(&self, message: Message) -> bool {
        let tx = self.handle.tx.as_ref();
        tx.is_some_and(|tx| tx.try_send(message).is_ok())
    }

    /// A logger that keeps its lines in memory, for tests that read what was decided.
    pub fn capture() -> (Self, Captured) {
        let lines = Captured::default();
        let logger = Logger {
            handle: LogHandle {
                tx: None,
                capture: Some(lines.clone()),
            },
            writer: None,
            done: None,
            target: LogTarget::Stderr,
            format: LogFormat::Text,
            dropped: 0,
        };
        (logger, lines)
    }

    /// Queues one line; never blocks. If the queue is full the line is dropped and counted.
    pub fn log(&mut self, severity: Severity, line: &super::Line) {
        self.queue(severity, line, None);
    }

    /// Queues a kill report: its line, and the record for the JSON format and the journal's
    /// `OOMWARD_REPORT=` field (made into JSON by the writer thread).
    pub fn report(&mut self, severity: Severity, line: &super::Line, record: Arc<KillRecord>) {
        self.queue(severity, line, Some(record));
    }

    fn queue(&mut self, severity: Severity, line: &super::Line, report: Option<Arc<KillRecord>>) {
        if self.dropped > 0 {
            let note =
                super::Line::event("log_dropped", "log queue was full").kv("lines", self.dropped);
            if self.handle.send(Severity::Warning, &note, None).is_ok() {
                self.dropped = 0;
            }
        }
        match self.handle.send(severity, line, report) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped += 1,
            Err(TrySendError::Disconnected(_)) => {
                // The writer thread is gone: write directly rather than lose the line.
                let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
            }
        }
    }

    /// A handle for other threads.
    pub fn handle(&self) -> LogHandle {
        self.handle.clone()
    }

    /// Waits until everything queued has been written (at stop, so the last lines are not
    /// lost), but no longer than [`FINISH_WAIT`]: a sink nobody drains must not keep the daemon
    /// from exiting.
    pub fn finish(mut self) {
        self.handle.tx.take();
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

/// A handle other threads log through (a hook's watcher thread reporting how the hook ended):
/// the logger's queue, never blocking; a full queue drops the line.
#[derive(Clone)]
pub struct LogHandle {
    tx: Option<Sender<Message>>,
    capture: Option<Captured>,
}

impl LogHandle {
    /// Queues one line; never blocks.
    pub fn log(&self, severity: Severity, line: &super::Line) {
        let _ = self.send(severity, line, None);
    }

    /// Queues one line, or keeps it when capturing; a full queue's error comes back.
    fn send(
        &self,
        severity: Severity,
        line: &super::Line,
        report: Option<Arc<KillRecord>>,
    ) -> Result<(), TrySendError<Message>> {
        if let Some(lines) = &self.capture {
            if let Ok(mut l) = lines.lock() {
                l.push(line.as_str().to_string());
            }
            return Ok(());
        }
        let Some(tx) = &self.tx else { return Ok(()) };
        let time = super::kill::unix_now();
        let line = line.clone();
        tx.try_send(Message::Line(Record {
            severity,
            line,
            time,
            report,
        }))
    }
}

impl Drop for Logger {
    /// Closes the queue; the writer thread drains it and ends on its own. Never waits for it,
    /// so replacing the logger on reload cannot block the loop behind a wedged sink.
    fn drop(&mut self) {
        self.handle.tx.take();
    }
}
