//! Native journald entries: a log line (`message key=value ...`, see [`super::Line`]) becomes
//! one datagram of fields, so `journalctl -o json` and `journalctl OOMWARD_EVENT=kill` work
//! without parsing text: `OOMWARD_<KEY>=` for each pair (exact values), `PRIORITY=`,
//! `SYSLOG_IDENTIFIER=oomward`, and a `MESSAGE=` for people, with sizes in MiB.

use std::os::unix::fs::MetadataExt;

use super::{Severity, Value};

/// The journal's socket for native entries.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// Whether stderr is connected to the journal: systemd sets `JOURNAL_STREAM=DEV:INODE` for the
/// stream it gives a service, and the variable is inherited by anything the service starts
/// (a shell, a test); only when stderr is still that very stream does it mean the journal.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream
        .to_str()
        .is_some_and(|s| stream_matches(s, meta.dev(), meta.ino()))
}

/// `JOURNAL_STREAM`'s `DEV:INODE` against a file's device and inode.
fn stream_matches(stream: &str, dev: u64, ino: u64) -> bool {
    let mut parts = stream.splitn(2, ':');
    let (Some(d), Some(i)) = (parts.next(), parts.next()) else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// A text line split back into its message and `key=value` pairs (values unquoted): the
/// inverse of [`super::Line`], for readers of the text format (the daemon's own outputs are
/// built from the line's fields). The message ends before the first word outside quotes that
/// looks like `key=`; names in a message are quoted ([`super::quoted`]) when they could look
/// like one.
pub fn split(line: &str) -> (&str, Vec<(&str, String)>) {
    let mut cut = line.len();
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' if !quoted && starts_with_key(&line[i + 1..]) => {
                cut = i;
                break;
            }
            _ => {}
        }
    }
    let message = &line[..cut];
    let mut pairs = Vec::new();
    let mut rest = line[cut..].trim_start();
    while let Some(eq) = rest.find('=') {
        let key = &rest[..eq];
        let (value, after) = read_value(&rest[eq + 1..]);
        pairs.push((key, value));
        rest = after.trim_start();
    }
    (message, pairs)
}

fn starts_with_key(s: &str) -> bool {
    let Some(eq) = s.find('=') else {
        return false;
    };
    let key = &s[..eq];
    !key.is_empty()
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// One value (quoted with `\"`, `\\`, `\n`, `\r`, `\t`, `\xNN` escapes, or up to the next
/// space) and the rest.
fn read_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut out: Vec<u8> = Vec::new();
        let mut chars = quoted.char_indices();
        let mut end = quoted.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = i + 1;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push(b'\n'),
                    Some((_, 'r')) => out.push(b'\r'),
                    Some((_, 't')) => out.push(b'\t'),
                    Some((j, 'x')) => {
                        let byte = quoted
                            .get(j + 1..j + 3)
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        if let Some(b) = byte {
                            out.push(b);
                            chars.next();
                            chars.next();
                        }
                    }
                    Some((_, other)) => {
                        out.extend_from_slice(other.encode_utf8(&mut [0u8; 4]).as_bytes())
                    }
                    None => break,
                },
                c => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
            }
        }
        let rest = quoted.get(end..).unwrap_or("");
        (String::from_utf8_lossy(&out).into_owned(), rest)
    } else {
        let end = s.find(' ').unwrap_or(s.len());
        (s[..end].to_string(), &s[end..])
    }
}

/// A value for people: bytes and pages in MiB (as the schema types them), others as they are.
fn human(key: &str, value: &Value, page_size: u64) -> (String, Value) {
    use super::schema::{Kind, kind_of};
    let mib = |bytes: u64| Value::Text(format!("{:.1}MiB", bytes as f64 / (1u64 << 20) as f64));
    let n = match value {
        Value::UInt(n) => *n,
        Value::Int(n) if *n >= 0 => *n as u64,
        _ => return (key.to_string(), value.clone()),
    };
    match kind_of(key) {
        Some(Kind::Bytes) => (key.to_string(), mib(n)),
        Some(Kind::Pages) => (
            key.strip_suffix("_pages").unwrap_or(key).to_string(),
            mib(n.saturating_mul(page_size)),
        ),
        _ => (key.to_string(), value.clone()),
    }
}

/// The entry for one line: the datagram's bytes. An entry of a known kind carries its
/// `MESSAGE_ID`; every entry carries the schema's version.
pub fn entry(severity: Severity, line: &super::Line, page_size: u64) -> Vec<u8> {
    let pairs = line.fields();
    let mut text = line.message().to_string();
    for (k, v) in pairs {
        let (k, v) = human(k, v, page_size);
        super::write_pair(&mut text, &k, &v);
    }
    let mut out = Vec::with_capacity(line.as_str().len() * 2 + 64);
    field(&mut out, "MESSAGE", &text);
    field(&mut out, "PRIORITY", &severity.priority().to_string());
    field(&mut out, "SYSLOG_IDENTIFIER", "oomward");
    let event = pairs.iter().find(|(k, _)| k == "event");
    if let Some(id) = event.and_then(|(_, v)| super::schema::message_id(&v.to_string())) {
        field(&mut out, "MESSAGE_ID", id);
    }
    field(
        &mut out,
        "OOMWARD_SCHEMA",
        &super::schema::VERSION.to_string(),
    );
    for (k, v) in pairs {
        let key = format!("OOMWARD_{}", k.to_ascii_uppercase());
        field(&mut out, &key, &v.to_string());
    }
    out
}

/// One field in the journal's native format: `KEY=value\n`, or for a value holding a newline
/// `KEY\n`, its length as 64-bit little endian, the value, `\n`.
pub fn field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Line;

    #[test]
    fn a_line_splits_back_into_its_message_and_pairs() {
        let line = Line::new("would signal (dry run)")
            .kv("event", "kill")
            .kv("comm", "Web Content")
            .kv("cmd", "say \"hi\"\nbye\r\x1b[2J\u{85}")
            .kv("empty", "")
            .kv("pid", 42);
        let (message, pairs) = split(line.as_str());
        assert_eq!(message, "would signal (dry run)");
        let want: Vec<(&str, String)> = vec![
            ("event", "kill".into()),
            ("comm", "Web Content".into()),
            ("cmd", "say \"hi\"\nbye\r\x1b[2J\u{85}".into()),
            ("empty", "".into()),
            ("pid", "42".into()),
        ];
        assert_eq!(pairs, want);
        assert_eq!(split("just words").1, vec![]);
    }

    fn fields(bytes: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap();
            let head = std::str::from_utf8(&rest[..nl]).unwrap();
            if let Some((k, v)) = head.split_once('=') {
                out.push((k.to_string(), v.to_string()));
                rest = &rest[nl + 1..];
            } else {
                let len = u64::from_le_bytes(rest[nl + 1..nl + 9].try_into().unwrap()) as usize;
                let v = std::str::from_utf8(&rest[nl + 9..nl + 9 + len]).unwrap();
                out.push((head.to_string(), v.to_string()));
                rest = &rest[nl + 9 + len + 1..];
            }
        }
        out
    }

    #[test]
    fn an_entry_has_structured_fields_and_a_message_in_mib() {
        let line = Line::new("sent SIGTERM")
            .kv("event", "term")
            .kv("scope", "/app")
            .kv("pid", 1234)
            .kv("available", 3 << 20)
            .kv("rss_anon_pages", 256)
            .kv("cmd", "a\nb");
        let f = fields(&entry(Severity::Warning, &line, 4096));
        let get = |k: &str| f.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PRIORITY"), Some("4"));
        assert_eq!(get("SYSLOG_IDENTIFIER"), Some("oomward"));
        assert_eq!(get("OOMWARD_EVENT"), Some("term"));
        assert_eq!(get("OOMWARD_SCOPE"), Some("/app"));
        assert_eq!(get("OOMWARD_PID"), Some("1234"));
        assert_eq!(
            get("OOMWARD_AVAILABLE"),
            Some("3145728"),
            "exact in the field"
        );
        assert_eq!(get("OOMWARD_CMD"), Some("a\nb"), "a newline survives");
        let m = get("MESSAGE").unwrap();
        assert!(m.starts_with("sent SIGTERM event=term"), "{m}");
        assert!(m.contains("available=3.0MiB"), "{m}");
        assert!(m.contains("rss_anon=1.0MiB"), "{m}");
    }

    #[test]
    fn journal_stream_must_name_stderr_itself() {
        assert!(stream_matches("64768:123", 64768, 123));
        assert!(!stream_matches("64768:124", 64768, 123));
        assert!(!stream_matches("64768", 64768, 123));
        assert!(!stream_matches("x:y", 64768, 123));
    }
}
