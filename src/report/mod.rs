//! What oomward tells people: one `message key=value ...` line per event, to stderr, journald
//! or syslog.
//!
//! The line format is an interface (tests and log shippers parse it), so it is built in one
//! place: [`Line`].

pub mod journal;
mod service;
mod sink;

pub use service::ServiceManager;
pub use sink::{Logger, Severity};

use std::fmt::{self, Write as _};

/// A log line under construction: a short message, then `key=value` pairs, values quoted when
/// they hold spaces, quotes, `=` or nothing.
#[derive(Debug, Clone)]
pub struct Line {
    buf: String,
}

impl Line {
    /// Starts a line with its message.
    pub fn new(message: &str) -> Self {
        let mut buf = String::with_capacity(160);
        buf.push_str(message);
        Line { buf }
    }

    /// Appends `key=value`.
    pub fn kv(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.push(key, value);
        self
    }

    /// Appends `key=value` when `cond` holds (fields that only mean something sometimes).
    pub fn kv_if(mut self, cond: bool, key: &str, value: impl fmt::Display) -> Self {
        if cond {
            self.push(key, value);
        }
        self
    }

    /// Appends `key=value` in place.
    pub fn push(&mut self, key: &str, value: impl fmt::Display) {
        let start = self.buf.len();
        let _ = write!(self.buf, " {key}=");
        let vstart = self.buf.len();
        let _ = write!(self.buf, "{value}");
        let v = &self.buf[vstart..];
        let needs_quotes = v.is_empty() || v.contains([' ', '"', '=', '\t', '\n', '\\']);
        if needs_quotes {
            let raw = self.buf.split_off(vstart);
            self.buf.push('"');
            for c in raw.chars() {
                match c {
                    '"' => self.buf.push_str("\\\""),
                    '\\' => self.buf.push_str("\\\\"),
                    '\n' => self.buf.push_str("\\n"),
                    '\t' => self.buf.push_str("\\t"),
                    c => self.buf.push(c),
                }
            }
            self.buf.push('"');
        }
        debug_assert!(self.buf.len() > start);
    }

    /// The finished line.
    pub fn as_str(&self) -> &str {
        &self.buf
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_spaces_or_quotes_are_quoted() {
        let l = Line::new("start")
            .kv("event", "start")
            .kv("comm", "Web Content")
            .kv("cmd", "say \"hi\"")
            .kv("empty", "")
            .kv("pid", 42);
        assert_eq!(
            l.as_str(),
            r#"start event=start comm="Web Content" cmd="say \"hi\"" empty="" pid=42"#
        );
    }
}
