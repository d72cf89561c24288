//! The JSON log format: a line as one JSON object, for log shippers: its message and typed
//! fields as they were logged (a comm of "123" stays a string, a pid is a number), with the
//! version of the schema they follow ([`super::schema`]).

use serde_json::{Map, Value};

use super::Severity;

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
    o.insert("severity".into(), Value::String(severity.name().into()));
    o.insert("message".into(), Value::String(line.message().to_string()));
    o.insert("schema".into(), super::schema::VERSION.into());
    for (key, value) in line.fields() {
        // The first of a key holds: `time`, `severity` and `message` are the line's own.
        o.entry(key.clone()).or_insert_with(|| value.to_json());
    }
    if let Some(r) = report.and_then(|r| serde_json::from_str::<Value>(r).ok()) {
        o.insert("report".into(), r);
    }
    Value::Object(o).to_string()
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
