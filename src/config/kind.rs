//! The kinds of value a config key holds: how TOML carries one, how it is read and checked, how
//! it is written back, and what to write instead of a value of the wrong type. A key's kind is
//! named once, in the key table, so two keys of one kind can never be read two ways.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde::de::DeserializeOwned;

use super::value::{Amount, ByteSize, format_duration, parse_duration};
use crate::policy::{ExeNamespace, Glob};
use crate::probe::kube::Qos;

/// One kind of config value.
pub trait Kind {
    /// The value the daemon uses.
    type Value: Debug + Clone;
    /// What the TOML deserializer yields for it.
    type Raw: DeserializeOwned;
    /// What to write instead, for a value of the wrong TOML type.
    fn hint() -> String;
    /// The value, or what is wrong with it.
    fn read(raw: &Self::Raw) -> Result<Self::Value, String>;
    /// The value as TOML, so that the printed config reads back the same; `None`: no line.
    fn write(v: &Self::Value) -> Option<String>;
    /// The value of a key left out with no default: `None` means the key is required.
    fn absent() -> Option<Self::Value> {
        None
    }
}

/// Declares a kind: its value and raw types, its hint, how it reads and writes.
macro_rules! kind {
    ($doc:literal $name:ident: $value:ty, from $raw:ty, $hint:expr,
     read |$r:ident| $read:expr, write |$w:ident| $write:expr) => {
        #[doc = $doc]
        pub enum $name {}
        impl Kind for $name {
            type Value = $value;
            type Raw = $raw;
            fn hint() -> String {
                $hint.into()
            }
            #[allow(clippy::ptr_arg)]
            fn read($r: &$raw) -> Result<$value, String> {
                $read
            }
            #[allow(clippy::ptr_arg)]
            fn write($w: &$value) -> Option<String> {
                Some($write)
            }
        }
    };
}

/// A string as a TOML basic string.
pub fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(", ")
    )
}

const UNQUOTED: &str = "write the number without quotes";
const PATH_HINT: &str = "write a path or a glob in quotes, e.g. \"/system.slice/**\"";
const LEVEL_HINT: &str = "write a percent or a size in quotes, e.g. \"10%\" or \"512MiB\"";
/// The highest percent a threshold may be: above half the memory free there is no shortage.
pub const HIGHEST_PERCENT: f64 = 50.0;

kind!("`true` or `false`." Flag: bool, from bool, "write true or false, without quotes",
    read |r| Ok(*r), write |v| v.to_string());
kind!("A whole number." Count: u32, from u32, UNQUOTED, read |r| Ok(*r), write |v| v.to_string());
kind!("A percent, 0 to 100, 0 meaning off." Percent: f64, from f64, UNQUOTED,
    read |r| if (0.0..=100.0).contains(r) { Ok(*r) } else {
        Err("must be a percent within 0 to 100 (0 turns it off)".into())
    },
    write |v| format!("{v:?}"));
kind!("A duration with its unit: `\"500ms\"`, `\"5s\"`." Dur: Duration, from String,
    "write a duration in quotes with its unit, e.g. \"5s\" or \"500ms\"",
    read |r| parse_duration(r), write |v| quoted(&format_duration(*v)));
kind!("A size with its unit: `\"512MiB\"`." Size: u64, from String,
    "write a size in quotes with its unit, e.g. \"512MiB\"",
    read |r| { has_unit(r)?; ByteSize::parse(r).map(|b| b.0) }, write |v| quoted(&ByteSize(*v).to_string()));
kind!("A threshold: a share of the scope's total or a size, at most [`HIGHEST_PERCENT`]."
    Level: Amount, from String, LEVEL_HINT, read |r| level(r), write |v| quoted(&v.to_string()));
kind!("A threshold that may be `\"off\"`." OptLevel: Option<Amount>, from String,
    format!("{LEVEL_HINT}, or \"off\""),
    read |r| if r.trim() == "off" { Ok(None) } else { level(r).map(Some) },
    write |v| quoted(&v.map_or_else(|| "off".into(), |a| a.to_string())));
kind!("An absolute path, or `\"\"` for off." OptPath: Option<PathBuf>, from String,
    "write an absolute path in quotes, or \"\" for off",
    read |r| opt_path(r), write |v| quoted(&v.as_ref().map_or(String::new(), |p| p.display().to_string())));
kind!("An absolute path to a directory." Dir: PathBuf, from String, "write an absolute path in quotes",
    read |r| opt_path(r)?.ok_or_else(|| "must be an absolute path".into()),
    write |v| quoted(&v.display().to_string()));
kind!("An address to listen on, or `\"\"` for off." Listen: Option<SocketAddr>, from String,
    "write an address and port in quotes, e.g. \"127.0.0.1:9747\", or \"\" for off",
    read |r| listen(r), write |v| quoted(&v.map_or(String::new(), |a| a.to_string())));
kind!("Plain text (a user name)." Text: String, from String, "write a string in quotes",
    read |r| Ok(r.clone()), write |v| quoted(v));
kind!("A list of names." Names: Vec<String>, from Vec<String>,
    "write a list of strings, e.g. [\"alice\", \"bob\"]", read |r| Ok(r.clone()), write |v| list(v));
kind!("A program and its arguments, run without a shell: the program is an absolute path."
    Argv: Vec<String>, from Vec<String>,
    "write a list of strings, e.g. [\"/usr/bin/logger\", \"-t\", \"oomward\"]",
    read |r| argv(r), write |v| list(v));
kind!("A watched cgroup's path in the memory hierarchy, as a glob: starts with `/`."
    CgroupPath: Glob, from String, PATH_HINT,
    read |r| path_glob(r, false, "path"), write |v| quoted(&v.text));
kind!("A glob on an executable's full path." ExeGlob: Glob, from String, PATH_HINT,
    read |r| path_glob(r, true, "exe"), write |v| quoted(&v.text));
kind!("A glob on a process's full cgroup path." CgroupGlob: Glob, from String, PATH_HINT,
    read |r| path_glob(r, true, "cgroup"), write |v| quoted(&v.text));
kind!("A glob on a name without `/` (a pod's namespace, name, container)."
    NameGlob: Glob, from String, "write a name or a glob in quotes",
    read |r| if r.is_empty() { Err("an empty name matches nothing".into()) } else { Glob::new(r) },
    write |v| quoted(&v.text));
kind!("A regular expression." Pattern: Regex, from String, "write a regular expression in quotes",
    read |r| Regex::new(r).map_err(|e| {
        format!("invalid regex {r:?}: {}", e.to_string().lines().last().unwrap_or("").trim())
    }),
    write |v| quoted(v.as_str()));
kind!("A pod's QoS class, as [`Qos::parse`] reads it." QosClass: Qos, from String,
    "write one of \"guaranteed\", \"burstable\", \"besteffort\"",
    read |r| Qos::parse(r).ok_or_else(|| format!("{r:?} is not one of: guaranteed, burstable, besteffort")),
    write |v| quoted(v.as_str()));
kind!("A user: a name (resolved from /etc/passwd after parsing) or a uid."
    User: UserRef, from toml::Value, "write a user name in quotes or a numeric uid",
    read |r| match r {
        toml::Value::Integer(uid) => u32::try_from(*uid).ok().filter(|&u| u != u32::MAX).map(UserRef::Uid)
            .ok_or_else(|| format!("{uid} is not a uid (0 to 4294967294; 4294967295 means none)")),
        toml::Value::String(name) => Ok(UserRef::Name(name.clone())),
        _ => Err("expected a user name or a numeric uid".into()),
    },
    write |v| match v { UserRef::Uid(uid) => uid.to_string(), UserRef::Name(n) => quoted(n) });
kind!("An `oom_score_adj`-like adjustment: -1000 to 1000, not 0." Adjust: i32, from i64, UNQUOTED,
    read |r| match i32::try_from(*r) {
        Ok(a) if (-1000..=1000).contains(&a) && a != 0 => Ok(a),
        _ => Err(format!("{r} is not within -1000..=1000 (0 excluded), in oom_score_adj units")),
    },
    write |v| v.to_string());

/// A number of bytes without a unit is refused unless it is 0: `"8"` was meant as 8 MiB or
/// 8 %, never as 8 bytes, and taken as bytes it turns a threshold off without a word.
fn has_unit(text: &str) -> Result<(), String> {
    let t = text.trim();
    if t.chars().all(|c| c.is_ascii_digit()) && !t.trim_start_matches('0').is_empty() {
        return Err(format!(
            "{t:?} has no unit, which would mean {t} bytes: write \"{t}MiB\" (or \"{t}B\" if bytes are meant)"
        ));
    }
    Ok(())
}

fn level(raw: &str) -> Result<Amount, String> {
    let amount = Amount::parse(raw)?;
    match amount {
        Amount::Bytes(_) => has_unit(raw)?,
        Amount::Percent(p) if p > HIGHEST_PERCENT => {
            return Err(format!(
                "{p}% would act with more than half the memory free: at most {HIGHEST_PERCENT}%"
            ));
        }
        Amount::Percent(_) => {}
    }
    Ok(amount)
}

fn opt_path(p: &str) -> Result<Option<PathBuf>, String> {
    match p {
        "" => Ok(None),
        p if p.starts_with('/') => Ok(Some(PathBuf::from(p))),
        p => Err(format!("{p:?} must be an absolute path (or \"\" for off)")),
    }
}

/// `127.0.0.1:9747`, `[::1]:9747`, or a port alone (`9747`, `:9747`: on loopback); `""`: off.
fn listen(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.is_empty() {
        return Ok(None);
    } else if let Ok(port) = text.strip_prefix(':').unwrap_or(text).parse::<u16>() {
        return Ok(Some(SocketAddr::from(([127, 0, 0, 1], port))));
    }
    text.parse().map(Some).map_err(|_| {
        format!("{text:?} is not an address and port such as \"127.0.0.1:9747\" (or \"\" for off)")
    })
}

fn argv(args: &[String]) -> Result<Vec<String>, String> {
    match args.first() {
        Some(first) if !first.starts_with('/') => Err(format!(
            "{first:?}: the program must be an absolute path (hooks run with an empty PATH-free environment; no shell)"
        )),
        _ if args.iter().any(|a| a.contains('\0')) => Err("an argument holds a NUL byte".into()),
        _ => Ok(args.to_vec()),
    }
}

/// A glob on a full path: absolute, or (`wild`) starting with a wildcard; `what` it is for.
fn path_glob(p: &str, wild: bool, what: &str) -> Result<Glob, String> {
    if p.starts_with('/') || (wild && p.starts_with('*')) {
        return Glob::new(p);
    }
    Err(match what {
        "exe" => format!(
            "{p:?} is matched against the full executable path; write an absolute path or a glob such as \"**/{p}\""
        ),
        "cgroup" => format!(
            "{p:?} is matched against the full cgroup path; start it with / (e.g. \"/{p}\")"
        ),
        _ => format!("{p:?} must start with / (a path in the memory cgroup hierarchy)"),
    })
}

/// A closed set of words, each spelled once in the enum's [`Named::NAMES`].
pub trait Named: Copy + Debug + PartialEq + 'static {
    /// Every spelling and what it means.
    const NAMES: &'static [(&'static str, Self)];
}

/// One of an enum's words: `"auto"`, `"both"`.
pub struct Choice<E>(std::marker::PhantomData<E>);
impl<E: Named> Kind for Choice<E> {
    type Value = E;
    type Raw = String;
    fn hint() -> String {
        let names: Vec<String> = E::NAMES.iter().map(|(n, _)| quoted(n)).collect();
        format!("write one of {} (in quotes)", names.join(", "))
    }
    fn read(raw: &String) -> Result<E, String> {
        let found = E::NAMES.iter().find(|(n, _)| n == raw);
        found.map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = E::NAMES.iter().map(|(n, _)| *n).collect();
            format!("{raw:?} is not one of: {}", names.join(", "))
        })
    }
    fn write(v: &E) -> Option<String> {
        E::NAMES
            .iter()
            .find(|(_, n)| n == v)
            .map(|(w, _)| quoted(w))
    }
}

/// An enum declared with its config spellings, so that a word is written once.
#[macro_export]
#[doc(hidden)]
macro_rules! named_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $word:literal, $doc:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $(#[doc = $doc] $variant,)* }
        impl $crate::config::kind::Named for $name {
            const NAMES: &'static [(&'static str, Self)] = &[$(($word, $name::$variant),)*];
        }
    };
}

impl Named for ExeNamespace {
    const NAMES: &'static [(&'static str, Self)] =
        &[("host", ExeNamespace::Host), ("any", ExeNamespace::Any)];
}

/// A key that may be left out: absent means `None`, and nothing is printed for it.
pub struct Opt<K>(std::marker::PhantomData<K>);
impl<K: Kind> Kind for Opt<K> {
    type Value = Option<K::Value>;
    type Raw = K::Raw;
    fn hint() -> String {
        K::hint()
    }
    fn read(raw: &K::Raw) -> Result<Self::Value, String> {
        K::read(raw).map(Some)
    }
    fn write(v: &Self::Value) -> Option<String> {
        v.as_ref().and_then(K::write)
    }
    fn absent() -> Option<Self::Value> {
        Some(None)
    }
}

/// A user as written: a uid, or a name resolved from /etc/passwd after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// A numeric uid.
    Uid(u32),
    /// A name.
    Name(String),
}

/// A bound on a duration key: within `min..=max`.
pub fn within(min: Duration, max: Duration) -> impl Fn(&Duration) -> Result<(), String> {
    move |v| match () {
        () if *v < min && min <= Duration::from_micros(1) => Err("must be above 0".into()),
        () if *v < min => Err(format!("must be at least {}", format_duration(min))),
        () if *v > max => Err(format!(
            "{} is longer than allowed: at most {}",
            format_duration(*v),
            format_duration(max)
        )),
        () => Ok(()),
    }
}

/// A bound on a count or size: at least `min`, with why.
pub fn at_least<T: PartialOrd + Copy>(
    min: T,
    why: &'static str,
) -> impl Fn(&T) -> Result<(), String> {
    move |v| if *v < min { Err(why.into()) } else { Ok(()) }
}
