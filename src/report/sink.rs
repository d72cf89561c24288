//! Where log lines go. A sink that fails falls back to stderr: losing the log must never stop
//! the daemon.

use std::io::{IsTerminal, Write};

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
    Journald,
    Syslog(Box<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>),
}

/// The daemon's logger.
pub struct Logger {
    sink: Sink,
}

impl Logger {
    /// Opens the sink `target` names; `auto` picks journald under systemd (JOURNAL_STREAM set),
    /// stderr on a terminal, else syslog if its socket exists, else stderr.
    pub fn new(target: LogTarget) -> Self {
        let resolved = match target {
            LogTarget::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogTarget::Journald,
            LogTarget::Auto if std::io::stderr().is_terminal() => LogTarget::Stderr,
            LogTarget::Auto if std::path::Path::new("/dev/log").exists() => LogTarget::Syslog,
            LogTarget::Auto => LogTarget::Stderr,
            other => other,
        };
        let sink = match resolved {
            LogTarget::Journald => Sink::Journald,
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
        };
        Logger { sink }
    }

    /// Writes one line. Errors are swallowed after a fallback attempt: the log is best effort.
    pub fn log(&mut self, severity: Severity, line: &str) {
        match &mut self.sink {
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "oomward: {line}");
            }
            Sink::Journald => {
                let prio = match severity {
                    Severity::Info => 6,
                    Severity::Warning => 4,
                    Severity::Error => 3,
                };
                let _ = writeln!(std::io::stderr().lock(), "<{prio}>{line}");
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
