//! The JSON log format: a line (`message key=value ...`) as one JSON object, for log shippers.
//!
//! Values that look like integers or booleans become JSON numbers and booleans, except under
//! the keys whose values a process or a user chooses (a comm may be "123"): those stay strings,
//! so a field has one type in every line.

use serde_json::{Map, Value};

use super::Severity;

/// Keys whose values are text whatever they look like.
const TEXT_KEYS: &[&str] = &[
    "comm",
    "exe",
    "cmdline",
    "cgroup",
    "user",
    "scope",
    "domain",
    "path",
    "error",
    "largest_outside",
    "candidates",
    "signals",
    "sigkilled",
    "version",
    "config",
    "hook",
    "why",
    "program",
    "stderr",
    "pod",
    "pod_uid",
    "namespace",
    "container",
    "container_id",
    "qos",
];

/// The severity's name in JSON lines.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Notice => "notice",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// One JSON object for a line: `time` (RFC 3339), `severity`, `message`, then the fields in
/// order; `report` (a kill record, already JSON) nested whole when given.
pub fn line_object(
    severity: Severity,
    line: &super::Line,
    time: f64,
    report: Option<&str>,
) -> String {
    let mut o = Map::new();
    o.insert("time".into(), Value::String(super::kill::rfc3339(time)));
    o.insert(
        "severity".into(),
        Value::String(severity_name(severity).into()),
    );
    o.insert("message".into(), Value::String(line.message().to_string()));
    for (key, value) in line.fields() {
        // The first of a key holds: `time`, `severity` and `message` are the line's own.
        o.entry(key.clone())
            .or_insert_with(|| typed(key, value.clone()));
    }
    if let Some(r) = report.and_then(|r| serde_json::from_str::<Value>(r).ok()) {
        o.insert("report".into(), r);
    }
    Value::Object(o).to_string()
}

fn typed(key: &str, value: String) -> Value {
    if TEXT_KEYS.contains(&key) {
        return Value::String(value);
    }
    match value.as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let numeric = !value.is_empty()
        && value.len() < 20
        && value
            .strip_prefix('-')
            .unwrap_or(&value)
            .chars()
            .all(|c| c.is_ascii_digit())
        && !value.strip_prefix('-').unwrap_or(&value).is_empty();
    if numeric && let Ok(n) = value.parse::<i64>() {
        return Value::from(n);
    }
    if numeric && let Ok(n) = value.parse::<u64>() {
        return Value::from(n);
    }
    Value::String(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_numbers_and_chosen_text_stays_text() {
        let line = super::super::Line::new("signalled victim")
            .kv("event", "term")
            .kv("pid", 42)
            .kv("comm", "123")
            .kv("available", 1024u64)
            .kv("adj", -5)
            .kv("enough", true)
            .kv("eta_ms", "-")
            .kv("exe", "/usr/bin/a b");
        let json = line_object(Severity::Warning, &line, 0.0, None);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["message"], "signalled victim");
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["comm"], "123");
        assert_eq!(v["available"], 1024);
        assert_eq!(v["adj"], -5);
        assert_eq!(v["enough"], true);
        assert_eq!(v["eta_ms"], "-");
        assert_eq!(v["exe"], "/usr/bin/a b");
    }

    #[test]
    fn a_report_is_nested_whole() {
        let line = super::super::Line::new("killed x").kv("event", "report");
        let json = line_object(Severity::Info, &line, 0.0, Some(r#"{"victim":{"pid":7}}"#));
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["report"]["victim"]["pid"], 7);
        assert_eq!(v["event"], "report");
    }

    #[test]
    fn a_name_made_of_fields_stays_one_value() {
        let name = "x=1 event=kill message=m time=0";
        let line =
            super::super::Line::new(&format!("killed {} (pid 5)", super::super::quoted(name)))
                .kv("event", "report")
                .kv("comm", name)
                .kv("message", "forged");
        let v: Value =
            serde_json::from_str(&line_object(Severity::Error, &line, 0.0, None)).unwrap();
        assert_eq!(v["event"], "report");
        assert_eq!(v["comm"], name);
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["message"], format!("killed \"{name}\" (pid 5)"));
        assert!(v.get("x").is_none(), "{v}");
    }
}
