//! What oomward tells people: one `message key=value ...` line per event, to stderr, journald
//! or syslog.
//!
//! The line format is an interface (tests and log shippers parse it), so it is built in one
//! place: [`Line`].

pub mod field;
pub mod history;
pub mod http;
pub mod journal;
pub mod json;
pub mod kill;
pub mod metrics;
pub mod notify;
pub mod schema;
mod service;
mod sink;
pub mod statefile;
pub mod status;

pub use field::{ToValue, Value};
pub use service::ServiceManager;
pub use sink::{LogHandle, Logger, Severity};

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// `s` with every control character (newline, carriage return, escape, ...) written as `\n`,
/// `\r`, `\t` or `\xNN`, and backslashes doubled: text that processes choose for themselves
/// (comm, cmdline, exe, cgroup names) must not forge log lines or move a terminal's cursor.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A figure that may not be known, for people: `missing` (`-`, `?`) when it is not.
pub fn or(figure: Option<impl fmt::Display>, missing: &str) -> String {
    figure.map_or_else(|| missing.to_string(), |f| f.to_string())
}

/// `s` as a name in a message: written as a value would be (quoted when it holds spaces,
/// quotes, `=`, a backslash, a control character or nothing), so that a process named
/// `x=1 event=kill` reads as one name, never as fields.
pub fn quoted(s: &str) -> Cow<'_, str> {
    if !needs_quotes(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    Cow::Owned(out)
}

/// ` key=value`, the value quoted when it needs to be.
fn write_pair(buf: &mut String, key: &str, value: &Value) {
    let _ = write!(buf, " {key}=");
    match value {
        Value::Text(t) if needs_quotes(t) => push_quoted(buf, t),
        v => {
            let _ = write!(buf, "{v}");
        }
    }
}

fn needs_quotes(v: &str) -> bool {
    v.is_empty() || v.contains([' ', '"', '=', '\\']) || v.chars().any(char::is_control)
}

fn push_quoted(buf: &mut String, raw: &str) {
    buf.push('"');
    buf.push_str(&escape_controls(raw).replace('"', "\\\""));
    buf.push('"');
}

/// A log line under construction: a short message, then typed fields. Its text is
/// `message key=value ...`, values quoted when they hold spaces, quotes, `=` or nothing; the
/// JSON and journal outputs visit the message and the typed fields themselves, never the text
/// (where a name made to look like fields could pass for them).
#[derive(Debug, Clone)]
pub struct Line {
    buf: String,
    /// Where the message ends in `buf`.
    message_len: usize,
    /// Each field as given: its key and its typed value.
    fields: Vec<(String, Value)>,
}

impl Line {
    /// Starts a line with its message.
    pub fn new(message: &str) -> Self {
        let mut buf = String::with_capacity(160);
        buf.push_str(message);
        Line {
            buf,
            message_len: message.len(),
            fields: Vec::new(),
        }
    }

    /// Starts the line of an `event=` kind (see [`schema::EVENTS`]) with its message.
    pub fn event(event: &str, message: &str) -> Self {
        Line::new(message).kv("event", event)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.buf[..self.message_len]
    }

    /// The fields, in order, with their typed values.
    pub fn fields(&self) -> &[(String, Value)] {
        &self.fields
    }

    /// Appends `key=value`.
    pub fn kv(mut self, key: &str, value: impl ToValue) -> Self {
        self.push(key, value);
        self
    }

    /// Appends `key=value` when `cond` holds (fields that only mean something sometimes).
    pub fn kv_if(mut self, cond: bool, key: &str, value: impl ToValue) -> Self {
        if cond {
            self.push(key, value);
        }
        self
    }

    /// Appends `key=value` when there is a value: a field that is not known is absent, never
    /// a placeholder of another type.
    pub fn kv_opt(mut self, key: &str, value: Option<impl ToValue>) -> Self {
        if let Some(v) = value {
            self.push(key, v);
        }
        self
    }

    /// Appends `key=value` in place. A field the schema knows must have the schema's type
    /// (checked in debug builds, which every test runs).
    pub fn push(&mut self, key: &str, value: impl ToValue) {
        let value = value.to_value();
        debug_assert!(
            schema::kind_of(key).is_none_or(|k| k.holds(&value)),
            "log field {key}={value:?} is not of the schema's type {:?}",
            schema::kind_of(key)
        );
        write_pair(&mut self.buf, key, &value);
        self.fields.push((key.to_string(), value));
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

    #[test]
    fn control_characters_cannot_forge_a_line_or_move_the_cursor() {
        for (value, written) in [
            ("a\nevent=kill pid=1", r#""a\nevent=kill pid=1""#),
            ("x\ry", r#""x\ry""#),
            ("\x1b[2Jboom", r#""\x1b[2Jboom""#),
            ("nel\u{85}", r#""nel\xc2\x85""#),
            ("back\\slash", r#""back\\slash""#),
        ] {
            let l = Line::new("m").kv("comm", value);
            assert_eq!(l.as_str(), format!("m comm={written}"), "{value:?}");
            assert!(!l.as_str().chars().any(char::is_control), "{value:?}");
        }
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(escape_controls("a\x07b"), "a\\x07b");
    }
}
