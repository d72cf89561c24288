//! A stand-in desktop notification server for the tests: it owns
//! `org.freedesktop.Notifications` on the session bus given as its one argument and prints each
//! `Notify` call it receives as one JSON line on stdout,
//! `{"app":..,"summary":..,"body":..,"urgency":..}`, answering with a new id. The first line is
//! `{"ready":"<its unique name>"}`, once the name is its own. It says it reads markup, so the
//! tests see bodies escaped. It exits when the bus goes away.
//!
//! Usage: notify_server /run/user/UID/bus

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use oomward::report::dbus::{self, Connection, Kind, Message, NO_REPLY_EXPECTED, Value};

const NAME: &str = "org.freedesktop.Notifications";
/// RequestName's flag: fail rather than wait in line for the name.
const DO_NOT_QUEUE: u32 = 4;
/// RequestName's answer when the name is now ours.
const PRIMARY_OWNER: u32 = 1;

fn main() -> ExitCode {
    let Some(bus) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: notify_server BUS_SOCKET");
        return ExitCode::from(2);
    };
    match serve(&bus) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notify_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(bus: &std::path::Path) -> Result<(), dbus::Error> {
    let mut conn = Connection::connect(bus, None)?;
    let me = conn.hello()?;
    let request = Message::method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "RequestName",
        &[Value::str(NAME), Value::U32(DO_NOT_QUEUE)],
    )?;
    let reply = conn.call(&request)?;
    if reply.body()?.first() != Some(&Value::U32(PRIMARY_OWNER)) {
        return Err(dbus::Error::Auth(format!("{NAME} is taken")));
    }
    print_line(&serde_json::json!({ "ready": me }));

    let mut next_id = 1u32;
    loop {
        let call = match conn.read() {
            Ok(m) => m,
            Err(dbus::Error::Closed) => return Ok(()),
            Err(dbus::Error::Malformed(why)) => {
                eprintln!("notify_server: skipped a message: {why}");
                continue;
            }
            Err(e) => return Err(e),
        };
        if call.kind != Kind::MethodCall || call.interface.as_deref() != Some(NAME) {
            continue;
        }
        let answer = match call.member.as_deref() {
            Some("Notify") => match notify_fields(&call) {
                Some(line) => {
                    print_line(&line);
                    next_id += 1;
                    Message::method_return(&call, &[Value::U32(next_id - 1)])?
                }
                None => Message::error(
                    &call,
                    "org.freedesktop.DBus.Error.InvalidArgs",
                    "expected susssasa{sv}i",
                )?,
            },
            Some("GetCapabilities") => {
                let caps = ["body", "body-markup"].map(Value::str).to_vec();
                Message::method_return(&call, &[Value::Array("s".into(), caps)])?
            }
            _ => Message::error(
                &call,
                "org.freedesktop.DBus.Error.UnknownMethod",
                "not served by the test server",
            )?,
        };
        if call.flags & NO_REPLY_EXPECTED == 0 {
            conn.send(&answer)?;
        }
    }
}

/// The JSON line for a Notify call, or None when its arguments are not Notify's.
fn notify_fields(call: &Message) -> Option<serde_json::Value> {
    if call.signature != "susssasa{sv}i" {
        return None;
    }
    let body = call.body().ok()?;
    let [app, _, _, summary, text, _, Value::Array(_, hints), _] = body.as_slice() else {
        return None;
    };
    let urgency = hints.iter().find_map(|h| match h {
        Value::Entry(k, v) if k.as_str() == Some("urgency") => match v.as_ref() {
            Value::Variant(inner) => match inner.as_ref() {
                Value::Byte(u) => Some(*u),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    });
    Some(serde_json::json!({
        "app": app.as_str()?,
        "summary": summary.as_str()?,
        "body": text.as_str()?,
        "urgency": urgency,
    }))
}

fn print_line(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
