//! A log field's value, typed where it is logged: the text, JSON and journal sinks each write
//! the type their way, and none of them guesses it back from text (a comm of `123` stays text,
//! a pid stays a number).

use std::borrow::Cow;
use std::fmt;

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Words, names, paths: whatever a process, a user or the code chose.
    Text(String),
    /// A signed number.
    Int(i64),
    /// An unsigned number (sizes, counts, ids).
    UInt(u64),
    /// A number with a fraction (a PSI average).
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
            Value::UInt(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::Int(n) => (*n).into(),
            Value::UInt(n) => (*n).into(),
            Value::Float(x) => (*x).into(),
            Value::Bool(b) => (*b).into(),
        }
    }
}

/// What can be a field's value, and as which type.
pub trait ToValue {
    /// The typed value.
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

macro_rules! typed_as {
    ($variant:ident as $wide:ty: $($t:ty),*) => {
        $(impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::$variant(<$wide>::from(*self))
            }
        })*
    };
}

typed_as!(UInt as u64: u8, u16, u32, u64);
typed_as!(Int as i64: i8, i16, i32, i64);
typed_as!(Bool as bool: bool);
typed_as!(Float as f64: f32, f64);

/// Sizes and std's u128 durations (ms, µs): none of ours comes near u64's range, and one that
/// did would read as the largest value rather than wrap.
macro_rules! saturated_as {
    ($variant:ident as $wide:ty: $($t:ty),*) => {
        $(impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::$variant(<$wide>::try_from(*self).unwrap_or(<$wide>::MAX))
            }
        })*
    };
}

saturated_as!(UInt as u64: usize, u128);
saturated_as!(Int as i64: isize);

/// Types logged as their text (`Display`): names, paths, errors, words.
#[macro_export]
#[doc(hidden)]
macro_rules! logged_as_text {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::report::field::ToValue for $t {
            fn to_value(&self) -> $crate::report::field::Value {
                $crate::report::field::Value::Text(self.to_string())
            }
        })*
    };
}

logged_as_text!(
    str,
    String,
    Cow<'_, str>,
    char,
    std::io::Error,
    std::path::Display<'_>,
    std::net::SocketAddr,
    fmt::Arguments<'_>,
    nix::errno::Errno,
    rustix::io::Errno,
    crate::config::Amount,
    crate::config::ByteSize,
    crate::events::ArmError,
    crate::act::kill::KillError,
    crate::probe::ProbeError,
);
