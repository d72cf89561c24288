//! A minimal D-Bus client over a unix socket: enough to authenticate, say `Hello`, make a
//! method call and wait for its reply, and (for tests) read the method calls a bus delivers.
//!
//! Why not zbus: the daemon's binary is locked in memory (`mlockall`), and zbus would bring an
//! async runtime and dozens of crates for two method calls. The wire format is small and fixed
//! (the D-Bus specification's "Message Protocol"), so it is written out here: little-endian
//! marshalling (both byte orders are read), the message header and its fields, and the SASL
//! `EXTERNAL` handshake.
//!
//! The daemon itself never parses D-Bus: it runs `oomward notify-send` as the receiving user,
//! and only that short-lived, unprivileged child uses this module against the user's own bus.
//! Still, nothing here trusts its input: every read is bounded (a message over [`MAX_MESSAGE`]
//! is refused before it is read), every length and offset is checked, nesting is limited, and
//! bad input is an [`Error`], never a panic.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;

/// The largest message read or written (the specification allows 128 MiB; notifications and
/// their replies are a few hundred bytes).
pub const MAX_MESSAGE: usize = 1 << 20;

/// Containers (arrays, structs, dict entries, variants) nested deeper than this are refused,
/// which bounds the recursion of the decoder (the specification's own limit is 64).
const MAX_DEPTH: u32 = 32;

/// The longest SASL line accepted from the server.
const MAX_AUTH_LINE: usize = 4096;

/// What can go wrong talking to a bus.
#[derive(Debug, Error)]
pub enum Error {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The deadline passed before the exchange was done.
    #[error("timed out")]
    TimedOut,
    /// The bus closed the connection.
    #[error("connection closed by the bus")]
    Closed,
    /// The bus refused the handshake, or answered something that is not SASL.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// A message announced a size over [`MAX_MESSAGE`].
    #[error("message of {0} bytes is over the 1 MiB limit")]
    TooLarge(u64),
    /// A message broke the wire format.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A value cannot be put on the wire (a NUL in a string, an element of the wrong type).
    #[error("cannot encode: {0}")]
    Encode(&'static str),
    /// The peer answered with an error reply.
    #[error("{name}: {message}")]
    Remote {
        /// The error name, e.g. `org.freedesktop.DBus.Error.ServiceUnknown`.
        name: String,
        /// The error's text (control characters escaped), or empty.
        message: String,
    },
}

/// One D-Bus value. Arrays carry their element signature so that an empty one can be written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `y`
    Byte(u8),
    /// `b`
    Bool(bool),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `d`
    F64(f64),
    /// `h`: an index into the message's file descriptors (never sent here, only read past).
    Fd(u32),
    /// `s`
    Str(String),
    /// `o`
    Path(String),
    /// `g`
    Sig(String),
    /// `a...`: the element signature and the elements.
    Array(String, Vec<Value>),
    /// `(...)`
    Struct(Vec<Value>),
    /// `{..}`: a dict entry, only inside an array.
    Entry(Box<Value>, Box<Value>),
    /// `v`
    Variant(Box<Value>),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// An `a{sv}` dictionary from its entries.
    pub fn dict_sv(entries: Vec<(&str, Value)>) -> Value {
        let items = entries
            .into_iter()
            .map(|(k, v)| {
                Value::Entry(
                    Box::new(Value::str(k)),
                    Box::new(Value::Variant(Box::new(v))),
                )
            })
            .collect();
        Value::Array("{sv}".into(), items)
    }

    /// The value's type signature.
    pub fn signature(&self) -> String {
        let mut s = String::new();
        self.push_signature(&mut s);
        s
    }

    fn push_signature(&self, s: &mut String) {
        match self {
            Value::Byte(_) => s.push('y'),
            Value::Bool(_) => s.push('b'),
            Value::I16(_) => s.push('n'),
            Value::U16(_) => s.push('q'),
            Value::I32(_) => s.push('i'),
            Value::U32(_) => s.push('u'),
            Value::I64(_) => s.push('x'),
            Value::U64(_) => s.push('t'),
            Value::F64(_) => s.push('d'),
            Value::Fd(_) => s.push('h'),
            Value::Str(_) => s.push('s'),
            Value::Path(_) => s.push('o'),
            Value::Sig(_) => s.push('g'),
            Value::Array(elem, _) => {
                s.push('a');
                s.push_str(elem);
            }
            Value::Struct(fields) => {
                s.push('(');
                for f in fields {
                    f.push_signature(s);
                }
                s.push(')');
            }
            Value::Entry(k, v) => {
                s.push('{');
                k.push_signature(s);
                v.push_signature(s);
                s.push('}');
            }
            Value::Variant(_) => s.push('v'),
        }
    }

    /// The string inside a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }
}

/// The alignment of the type whose signature starts with `c`.
fn alignment(c: u8) -> usize {
    match c {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// Splits the first complete type off a signature: `("a{sv}", "i")` from `"a{sv}i"`.
/// Checks the characters, the brackets, that dict entries hold a basic key and one value, and
/// the nesting limit.
pub fn split_type(sig: &str) -> Result<(&str, &str), Error> {
    let end = complete_type_end(sig.as_bytes(), 0, 0)?;
    Ok(sig.split_at(end))
}

fn complete_type_end(sig: &[u8], at: usize, depth: u32) -> Result<usize, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Malformed("signature nested too deep"));
    }
    let Some(&c) = sig.get(at) else {
        return Err(Error::Malformed("signature ends inside a type"));
    };
    match c {
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b'h' | b's' | b'o'
        | b'g' | b'v' => Ok(at + 1),
        b'a' => complete_type_end(sig, at + 1, depth + 1),
        b'(' => {
            let mut pos = at + 1;
            if sig.get(pos) == Some(&b')') {
                return Err(Error::Malformed("empty struct"));
            }
            while sig.get(pos) != Some(&b')') {
                pos = complete_type_end(sig, pos, depth + 1)?;
            }
            Ok(pos + 1)
        }
        b'{' => {
            // Only an array element may be a dict entry; the caller's 'a' is checked below.
            if at == 0 || sig[at - 1] != b'a' {
                return Err(Error::Malformed("dict entry outside an array"));
            }
            let key = sig.get(at + 1).copied().unwrap_or(0);
            if !b"ybnqiuxtdhsog".contains(&key) {
                return Err(Error::Malformed("dict key is not a basic type"));
            }
            let pos = complete_type_end(sig, at + 2, depth + 1)?;
            if sig.get(pos) != Some(&b'}') {
                return Err(Error::Malformed(
                    "dict entry does not hold one key and one value",
                ));
            }
            Ok(pos + 1)
        }
        _ => Err(Error::Malformed("invalid signature character")),
    }
}

/// Writes values in the little-endian wire format. Alignment is counted from the start of the
/// buffer, so a buffer must start at an 8-aligned offset of its message (the header fields and
/// the body both do).
#[derive(Debug, Default)]
struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn pad(&mut self, align: usize) {
        self.buf.resize(self.buf.len().next_multiple_of(align), 0);
    }

    fn u32(&mut self, n: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&n.to_le_bytes());
    }

    fn string(&mut self, s: &str) -> Result<(), Error> {
        if s.contains('\0') {
            return Err(Error::Encode("NUL inside a string"));
        }
        let len = u32::try_from(s.len()).map_err(|_| Error::Encode("string too long"))?;
        self.u32(len);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    fn signature(&mut self, s: &str) -> Result<(), Error> {
        let len = u8::try_from(s.len()).map_err(|_| Error::Encode("signature over 255 bytes"))?;
        let mut rest = s;
        while !rest.is_empty() {
            rest = split_type(rest)
                .map_err(|_| Error::Encode("invalid signature"))?
                .1;
        }
        self.buf.push(len);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    fn value(&mut self, v: &Value, depth: u32) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Encode("values nested too deep"));
        }
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(&n.to_le_bytes()),
            Value::U16(n) => self.fixed(&n.to_le_bytes()),
            Value::I32(n) => self.fixed(&n.to_le_bytes()),
            Value::U32(n) | Value::Fd(n) => self.u32(*n),
            Value::I64(n) => self.fixed(&n.to_le_bytes()),
            Value::U64(n) => self.fixed(&n.to_le_bytes()),
            Value::F64(n) => self.fixed(&n.to_bits().to_le_bytes()),
            Value::Str(s) => self.string(s)?,
            Value::Path(p) => {
                if !valid_object_path(p) {
                    return Err(Error::Encode("invalid object path"));
                }
                self.string(p)?;
            }
            Value::Sig(s) => self.signature(s)?,
            Value::Array(elem, items) => {
                let whole = format!("a{elem}");
                let (_, rest) =
                    split_type(&whole).map_err(|_| Error::Encode("invalid array type"))?;
                if !rest.is_empty() {
                    return Err(Error::Encode("array element is not one type"));
                }
                self.u32(0);
                let len_at = self.buf.len() - 4;
                self.pad(alignment(elem.as_bytes()[0]));
                let start = self.buf.len();
                for item in items {
                    if item.signature() != *elem {
                        return Err(Error::Encode("array element of another type"));
                    }
                    self.value(item, depth + 1)?;
                }
                let len = u32::try_from(self.buf.len() - start)
                    .map_err(|_| Error::Encode("array too long"))?;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                if fields.is_empty() {
                    return Err(Error::Encode("empty struct"));
                }
                self.pad(8);
                for f in fields {
                    self.value(f, depth + 1)?;
                }
            }
            Value::Entry(k, val) => {
                self.pad(8);
                self.value(k, depth + 1)?;
                self.value(val, depth + 1)?;
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature())?;
                self.value(inner, depth + 1)?;
            }
        }
        Ok(())
    }

    fn fixed(&mut self, bytes: &[u8]) {
        self.pad(bytes.len());
        self.buf.extend_from_slice(bytes);
    }
}

/// `/` or `/a/b_c`: elements of `[A-Za-z0-9_]`, none empty, no trailing slash.
fn valid_object_path(p: &str) -> bool {
    p == "/"
        || (p.starts_with('/')
            && p[1..].split('/').all(|e| {
                !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }))
}

/// Reads values from a buffer in either byte order; every read is bounds-checked.
struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

impl<'a> Decoder<'a> {
    fn align(&mut self, align: usize) -> Result<(), Error> {
        let to = self.pos.next_multiple_of(align);
        if to > self.buf.len() {
            return Err(Error::Malformed("truncated (padding)"));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(Error::Malformed("truncated"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.align(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        if self.big {
            out.reverse();
        }
        // Little-endian from here on.
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn string(&mut self) -> Result<String, Error> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(Error::Malformed("string not NUL-terminated"));
        }
        utf8(bytes)
    }

    fn signature(&mut self) -> Result<String, Error> {
        let len = usize::from(self.take(1)?[0]);
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(Error::Malformed("signature not NUL-terminated"));
        }
        let sig = utf8(bytes)?;
        let mut rest = sig.as_str();
        while !rest.is_empty() {
            rest = split_type(rest)?.1;
        }
        Ok(sig)
    }

    /// Reads one value of the single complete type `sig`.
    fn value(&mut self, sig: &str, depth: u32) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Malformed("values nested too deep"));
        }
        let bytes = sig.as_bytes();
        let Some(&c) = bytes.first() else {
            return Err(Error::Malformed("empty type"));
        };
        Ok(match c {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(Error::Malformed("boolean neither 0 nor 1")),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' => Value::U32(self.u32()?),
            b'h' => Value::Fd(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            b't' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b'd' => Value::F64(f64::from_bits(u64::from_le_bytes(self.fixed()?))),
            b's' => Value::Str(self.string()?),
            b'o' => {
                let p = self.string()?;
                if !valid_object_path(&p) {
                    return Err(Error::Malformed("invalid object path"));
                }
                Value::Path(p)
            }
            b'g' => Value::Sig(self.signature()?),
            b'v' => {
                let inner = self.signature()?;
                let (first, rest) = split_type(&inner)?;
                if !rest.is_empty() {
                    return Err(Error::Malformed("variant holds more than one type"));
                }
                Value::Variant(Box::new(self.value(first, depth + 1)?))
            }
            b'a' => {
                let elem = &sig[1..];
                let len = self.u32()? as usize;
                if len > MAX_MESSAGE {
                    return Err(Error::Malformed("array too long"));
                }
                self.align(alignment(elem.as_bytes()[0]))?;
                let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
                let end = end.ok_or(Error::Malformed("array runs past the end"))?;
                let mut items = Vec::new();
                // Every element takes at least one byte, so this ends.
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?);
                }
                if self.pos != end {
                    return Err(Error::Malformed("array element runs past the array"));
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' => {
                self.align(8)?;
                let mut rest = &sig[1..sig.len() - 1];
                let mut fields = Vec::new();
                while !rest.is_empty() {
                    let (first, after) = split_type(rest)?;
                    fields.push(self.value(first, depth + 1)?);
                    rest = after;
                }
                Value::Struct(fields)
            }
            b'{' => {
                self.align(8)?;
                let inner = &sig[1..sig.len() - 1];
                let (k, v) = inner.split_at(1);
                let key = self.value(k, depth + 1)?;
                let val = self.value(v, depth + 1)?;
                Value::Entry(Box::new(key), Box::new(val))
            }
            _ => return Err(Error::Malformed("invalid signature character")),
        })
    }
}

fn utf8(bytes: &[u8]) -> Result<String, Error> {
    let s = std::str::from_utf8(bytes).map_err(|_| Error::Malformed("string is not UTF-8"))?;
    if s.contains('\0') {
        return Err(Error::Malformed("NUL inside a string"));
    }
    Ok(s.to_string())
}

/// The four message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call, expecting a reply unless flagged otherwise.
    MethodCall,
    /// A successful reply.
    MethodReturn,
    /// An error reply.
    Error,
    /// A broadcast.
    Signal,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::MethodCall => 1,
            Kind::MethodReturn => 2,
            Kind::Error => 3,
            Kind::Signal => 4,
        }
    }
}

/// Header field codes.
const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SENDER: u8 = 7;
const FIELD_SIGNATURE: u8 = 8;

/// Header flag: the sender wants no reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

/// One message: its header and its body, kept marshalled (with its byte order) until asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Call, return, error or signal.
    pub kind: Kind,
    /// Header flags.
    pub flags: u8,
    /// The serial the sender gave it (0 until sent).
    pub serial: u32,
    /// PATH: the object called or signalling.
    pub path: Option<String>,
    /// INTERFACE.
    pub interface: Option<String>,
    /// MEMBER: the method or signal name.
    pub member: Option<String>,
    /// ERROR_NAME of an error reply.
    pub error_name: Option<String>,
    /// REPLY_SERIAL: the call a reply answers.
    pub reply_serial: Option<u32>,
    /// DESTINATION.
    pub destination: Option<String>,
    /// SENDER (filled in by the bus).
    pub sender: Option<String>,
    /// SIGNATURE of the body ("" for none).
    pub signature: String,
    body: Vec<u8>,
    big_endian: bool,
}

impl Message {
    fn new(kind: Kind) -> Message {
        Message {
            kind,
            flags: 0,
            serial: 0,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            signature: String::new(),
            body: Vec::new(),
            big_endian: false,
        }
    }

    /// A method call of `destination`'s `path`, `interface.member(body...)`.
    pub fn method_call(
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        body: &[Value],
    ) -> Result<Message, Error> {
        let mut m = Message::new(Kind::MethodCall);
        m.destination = Some(destination.into());
        m.path = Some(path.into());
        m.interface = Some(interface.into());
        m.member = Some(member.into());
        m.set_body(body)?;
        Ok(m)
    }

    /// The successful reply to `call`.
    pub fn method_return(call: &Message, body: &[Value]) -> Result<Message, Error> {
        let mut m = Message::new(Kind::MethodReturn);
        m.reply_serial = Some(call.serial);
        m.destination = call.sender.clone();
        m.set_body(body)?;
        Ok(m)
    }

    /// The error reply `name` ("text") to `call`.
    pub fn error(call: &Message, name: &str, text: &str) -> Result<Message, Error> {
        let mut m = Message::new(Kind::Error);
        m.reply_serial = Some(call.serial);
        m.destination = call.sender.clone();
        m.error_name = Some(name.into());
        m.set_body(&[Value::str(text)])?;
        Ok(m)
    }

    fn set_body(&mut self, values: &[Value]) -> Result<(), Error> {
        let mut enc = Encoder::default();
        let mut sig = String::new();
        for v in values {
            v.push_signature(&mut sig);
            enc.value(v, 0)?;
        }
        if sig.len() > 255 {
            return Err(Error::Encode("body signature over 255 bytes"));
        }
        self.signature = sig;
        self.body = enc.buf;
        self.big_endian = false;
        Ok(())
    }

    /// The body's values, in order.
    pub fn body(&self) -> Result<Vec<Value>, Error> {
        let mut dec = Decoder {
            buf: &self.body,
            pos: 0,
            big: self.big_endian,
        };
        let mut values = Vec::new();
        let mut rest = self.signature.as_str();
        while !rest.is_empty() {
            let (first, after) = split_type(rest)?;
            values.push(dec.value(first, 0)?);
            rest = after;
        }
        if dec.pos != self.body.len() {
            return Err(Error::Malformed("body longer than its signature"));
        }
        Ok(values)
    }

    /// The message on the wire (little-endian) with serial `serial`.
    pub fn encode(&self, serial: u32) -> Result<Vec<u8>, Error> {
        if self.big_endian {
            return Err(Error::Encode(
                "a received big-endian message cannot be resent",
            ));
        }
        let body_len =
            u32::try_from(self.body.len()).map_err(|_| Error::Encode("body too long"))?;
        let mut enc = Encoder::default();
        enc.buf
            .extend_from_slice(&[b'l', self.kind.code(), self.flags, 1]);
        enc.u32(body_len);
        enc.u32(serial);
        enc.u32(0); // the fields array's length, filled in below
        let strings = [
            (FIELD_PATH, &self.path),
            (FIELD_INTERFACE, &self.interface),
            (FIELD_MEMBER, &self.member),
            (FIELD_ERROR_NAME, &self.error_name),
            (FIELD_DESTINATION, &self.destination),
            (FIELD_SENDER, &self.sender),
        ];
        for (code, value) in strings {
            if let Some(s) = value {
                let v = if code == FIELD_PATH {
                    Value::Path(s.clone())
                } else {
                    Value::Str(s.clone())
                };
                enc.value(
                    &Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]),
                    0,
                )?;
            }
        }
        if let Some(r) = self.reply_serial {
            let field = Value::Struct(vec![
                Value::Byte(FIELD_REPLY_SERIAL),
                Value::Variant(Box::new(Value::U32(r))),
            ]);
            enc.value(&field, 0)?;
        }
        if !self.signature.is_empty() {
            let field = Value::Struct(vec![
                Value::Byte(FIELD_SIGNATURE),
                Value::Variant(Box::new(Value::Sig(self.signature.clone()))),
            ]);
            enc.value(&field, 0)?;
        }
        let fields_len = (enc.buf.len() - 16) as u32;
        enc.buf[12..16].copy_from_slice(&fields_len.to_le_bytes());
        enc.pad(8);
        enc.buf.extend_from_slice(&self.body);
        if enc.buf.len() > MAX_MESSAGE {
            return Err(Error::TooLarge(enc.buf.len() as u64));
        }
        Ok(enc.buf)
    }
}

/// The whole length of a message from its first 16 bytes, refusing one over [`MAX_MESSAGE`].
pub fn message_len(fixed: &[u8; 16]) -> Result<usize, Error> {
    let big = match fixed[0] {
        b'l' => false,
        b'B' => true,
        _ => return Err(Error::Malformed("unknown byte order")),
    };
    if fixed[3] != 1 {
        return Err(Error::Malformed("unknown protocol version"));
    }
    let word = |at: usize| {
        let b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
        u64::from(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let total = (16 + word(12)).next_multiple_of(8) + word(4);
    if total > MAX_MESSAGE as u64 {
        return Err(Error::TooLarge(total));
    }
    Ok(total as usize)
}

/// Parses one complete message (`buf` exactly as long as [`message_len`] says).
pub fn parse(buf: &[u8]) -> Result<Message, Error> {
    let fixed: &[u8; 16] = buf
        .get(..16)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Malformed("shorter than a header"))?;
    if message_len(fixed)? != buf.len() {
        return Err(Error::Malformed("length does not match the header"));
    }
    let kind = match buf[1] {
        1 => Kind::MethodCall,
        2 => Kind::MethodReturn,
        3 => Kind::Error,
        4 => Kind::Signal,
        _ => return Err(Error::Malformed("unknown message type")),
    };
    let mut dec = Decoder {
        buf,
        pos: 4,
        big: buf[0] == b'B',
    };
    let body_len = dec.u32()? as usize;
    let mut m = Message::new(kind);
    m.flags = buf[2];
    m.big_endian = dec.big;
    m.serial = dec.u32()?;
    if m.serial == 0 {
        return Err(Error::Malformed("serial 0"));
    }
    let fields = dec.value("a(yv)", 0)?;
    let Value::Array(_, fields) = fields else {
        return Err(Error::Malformed("header fields"));
    };
    for field in fields {
        let Value::Struct(pair) = field else {
            return Err(Error::Malformed("header field"));
        };
        let [Value::Byte(code), Value::Variant(v)] = pair.as_slice() else {
            return Err(Error::Malformed("header field"));
        };
        m.set_field(*code, v)?;
    }
    dec.align(8)?;
    m.body = dec.take(body_len)?.to_vec();
    let complete = match kind {
        Kind::MethodCall => m.path.is_some() && m.member.is_some(),
        Kind::MethodReturn => m.reply_serial.is_some(),
        Kind::Error => m.reply_serial.is_some() && m.error_name.is_some(),
        Kind::Signal => m.path.is_some() && m.interface.is_some() && m.member.is_some(),
    };
    if !complete {
        return Err(Error::Malformed("a required header field is missing"));
    }
    if m.signature.is_empty() && !m.body.is_empty() {
        return Err(Error::Malformed("body without a signature"));
    }
    Ok(m)
}

impl Message {
    fn set_field(&mut self, code: u8, v: &Value) -> Result<(), Error> {
        let wrong = Error::Malformed("header field of the wrong type");
        match (code, v) {
            (FIELD_PATH, Value::Path(p)) => self.path = Some(p.clone()),
            (FIELD_INTERFACE, Value::Str(s)) => self.interface = Some(s.clone()),
            (FIELD_MEMBER, Value::Str(s)) => self.member = Some(s.clone()),
            (FIELD_ERROR_NAME, Value::Str(s)) => self.error_name = Some(s.clone()),
            (FIELD_REPLY_SERIAL, Value::U32(n)) => self.reply_serial = Some(*n),
            (FIELD_DESTINATION, Value::Str(s)) => self.destination = Some(s.clone()),
            (FIELD_SENDER, Value::Str(s)) => self.sender = Some(s.clone()),
            (FIELD_SIGNATURE, Value::Sig(s)) => self.signature = s.clone(),
            (FIELD_PATH..=FIELD_SIGNATURE, _) => return Err(wrong),
            // UNIX_FDS and codes from later versions of the specification: ignored.
            _ => {}
        }
        Ok(())
    }
}

/// A connection to a bus, authenticated, with an optional deadline that bounds every read and
/// write.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    /// Bytes read but not yet consumed (a read may return part of a message or more than one).
    inbuf: Vec<u8>,
    next_serial: u32,
    deadline: Option<Instant>,
}

impl Connection {
    /// Connects to the bus socket at `path` and authenticates as this process's effective uid
    /// (SASL `EXTERNAL`: the bus checks it against the socket's peer credentials). No `Hello`
    /// yet: see [`Connection::hello`].
    pub fn connect(path: &Path, deadline: Option<Instant>) -> Result<Connection, Error> {
        let stream = UnixStream::connect(path)?;
        let mut conn = Connection {
            stream,
            inbuf: Vec::new(),
            next_serial: 1,
            deadline,
        };
        let uid = rustix::process::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        conn.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = conn.read_line()?;
        if !line.starts_with("OK ") {
            let shown = crate::report::escape_controls(&line).into_owned();
            return Err(Error::Auth(shown));
        }
        conn.write_all(b"BEGIN\r\n")?;
        Ok(conn)
    }

    /// Sets (or clears) the deadline for what follows.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Registers on the bus (`org.freedesktop.DBus.Hello`); returns the unique name given.
    pub fn hello(&mut self) -> Result<String, Error> {
        let call = Message::method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        let reply = self.call(&call)?;
        match reply.body()?.first() {
            Some(Value::Str(name)) => Ok(name.clone()),
            _ => Err(Error::Malformed("Hello reply holds no name")),
        }
    }

    /// Sends `msg` with the next serial, which it returns.
    pub fn send(&mut self, msg: &Message) -> Result<u32, Error> {
        let serial = self.next_serial;
        self.next_serial = self.next_serial.checked_add(1).unwrap_or(1);
        let bytes = msg.encode(serial)?;
        self.write_all(&bytes)?;
        Ok(serial)
    }

    /// Sends a method call and waits for its reply, setting aside whatever else arrives (signals
    /// such as `NameAcquired`). An error reply is [`Error::Remote`].
    pub fn call(&mut self, msg: &Message) -> Result<Message, Error> {
        let serial = self.send(msg)?;
        loop {
            let m = self.read()?;
            if m.reply_serial != Some(serial) {
                continue;
            }
            match m.kind {
                Kind::MethodReturn => return Ok(m),
                Kind::Error => {
                    let text = match m.body().ok().as_deref() {
                        Some([Value::Str(s), ..]) => s.clone(),
                        _ => String::new(),
                    };
                    let name = m.error_name.unwrap_or_default();
                    return Err(Error::Remote {
                        name: crate::report::escape_controls(&name).into_owned(),
                        message: crate::report::escape_controls(&text).into_owned(),
                    });
                }
                _ => continue,
            }
        }
    }

    /// The next message from the bus; [`Error::Closed`] when it hangs up.
    pub fn read(&mut self) -> Result<Message, Error> {
        self.fill(16)?;
        let mut fixed = [0u8; 16];
        fixed.copy_from_slice(&self.inbuf[..16]);
        let len = message_len(&fixed)?;
        self.fill(len)?;
        let m = parse(&self.inbuf[..len]);
        self.inbuf.drain(..len);
        m
    }

    /// Reads one SASL line (without its CR LF).
    fn read_line(&mut self) -> Result<String, Error> {
        loop {
            if let Some(at) = self.inbuf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.inbuf[..at]).into_owned();
                self.inbuf.drain(..at + 2);
                return Ok(line);
            }
            if self.inbuf.len() > MAX_AUTH_LINE {
                return Err(Error::Auth("overlong line from the bus".into()));
            }
            self.fill(self.inbuf.len() + 1)?;
        }
    }

    /// Reads until at least `n` bytes are buffered.
    fn fill(&mut self, n: usize) -> Result<(), Error> {
        let mut chunk = [0u8; 4096];
        while self.inbuf.len() < n {
            let timeout = self.remaining()?;
            self.stream.set_read_timeout(timeout)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Error::Closed),
                Ok(got) => self.inbuf.extend_from_slice(&chunk[..got]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let timeout = self.remaining()?;
            self.stream.set_write_timeout(timeout)?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    /// The time left before the deadline (None: no deadline); [`Error::TimedOut`] when none is.
    fn remaining(&self) -> Result<Option<Duration>, Error> {
        match self.deadline {
            None => Ok(None),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(Error::TimedOut),
            },
        }
    }
}

/// A socket timeout is [`Error::TimedOut`], a hang-up [`Error::Closed`]; other errors stay I/O.
fn io_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::TimedOut,
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => Error::Closed,
        _ => Error::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_values_marshal_to_hand_computed_bytes() {
        let mut e = Encoder::default();
        e.value(&Value::Byte(7), 0).unwrap();
        e.value(&Value::U32(0x0102_0304), 0).unwrap();
        e.value(&Value::str("ab"), 0).unwrap();
        e.value(&Value::Sig("as".into()), 0).unwrap();
        e.value(&Value::Bool(true), 0).unwrap();
        e.value(&Value::I32(-2), 0).unwrap();
        #[rustfmt::skip]
        let want = [
            7, 0, 0, 0,             // y, padded to 4
            4, 3, 2, 1,             // u
            2, 0, 0, 0, b'a', b'b', 0, // s: length, bytes, NUL
            2, b'a', b's', 0,       // g: one-byte length, bytes, NUL
            0,                      // pad to 4
            1, 0, 0, 0,             // b
            0xfe, 0xff, 0xff, 0xff, // i
        ];
        assert_eq!(e.buf, want);
    }

    #[test]
    fn arrays_and_dicts_marshal_with_their_padding() {
        let mut e = Encoder::default();
        e.value(&Value::Array("s".into(), vec![]), 0).unwrap();
        e.value(&Value::dict_sv(vec![("urgency", Value::Byte(2))]), 0)
            .unwrap();
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 0,                         // as: empty (no padding needed for s)
            16, 0, 0, 0,                        // a{sv}: 16 bytes of elements
            // the entry is 8-aligned: offset 8 already is
            7, 0, 0, 0, b'u', b'r', b'g', b'e', b'n', b'c', b'y', 0, // key
            1, b'y', 0,                         // variant signature
            2,                                  // the byte
        ];
        assert_eq!(e.buf, want);

        // An empty array of 8-aligned elements still pads to the (absent) first element.
        let mut e = Encoder::default();
        e.value(&Value::Byte(1), 0).unwrap();
        e.value(&Value::Array("{sv}".into(), vec![]), 0).unwrap();
        assert_eq!(e.buf, [1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_method_call_marshals_to_the_specified_header() {
        let m = Message::method_call("d", "/p", "i", "M", &[Value::U32(5)]).unwrap();
        let bytes = m.encode(3).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[b'l', 1, 0, 1][..], &[4, 0, 0, 0], &[3, 0, 0, 0],
            &[71, 0, 0, 0],                                  // fields array length
            &[1, 1, b'o', 0, 2, 0, 0, 0, b'/', b'p', 0],     // PATH
            &[0, 0, 0, 0, 0],                                // pad to 8 (offset 27 → 32)
            &[2, 1, b's', 0, 1, 0, 0, 0, b'i', 0],           // INTERFACE
            &[0, 0, 0, 0, 0, 0],                             // pad (42 → 48)
            &[3, 1, b's', 0, 1, 0, 0, 0, b'M', 0],           // MEMBER
            &[0, 0, 0, 0, 0, 0],                             // pad (58 → 64)
            &[6, 1, b's', 0, 1, 0, 0, 0, b'd', 0],           // DESTINATION
            &[0, 0, 0, 0, 0, 0],                             // pad (74 → 80)
            &[8, 1, b'g', 0, 1, b'u', 0],                    // SIGNATURE, ends at 87
            &[0],                                            // pad the body to 88
            &[5, 0, 0, 0],                                   // body
        ]
        .concat();
        assert_eq!(bytes, want);
        assert_eq!(
            message_len(bytes[..16].try_into().unwrap()).unwrap(),
            bytes.len()
        );
    }

    #[test]
    fn messages_round_trip() {
        let body = vec![
            Value::str("oomward"),
            Value::U32(0),
            Value::str("dialog-warning"),
            Value::str("summary"),
            Value::str("body ✓"),
            Value::Array("s".into(), vec![]),
            Value::dict_sv(vec![("urgency", Value::Byte(2)), ("x", Value::I64(-9))]),
            Value::I32(-1),
            Value::Struct(vec![
                Value::F64(1.5),
                Value::Array(
                    "ay".into(),
                    vec![Value::Array("y".into(), vec![Value::Byte(1)])],
                ),
            ]),
        ];
        let mut call = Message::method_call("org.x", "/a/b_1", "org.x.I", "Do", &body).unwrap();
        assert_eq!(call.signature, "susssasa{sv}i(daay)");
        let bytes = call.encode(42).unwrap();
        let back = parse(&bytes).unwrap();
        call.serial = 42;
        assert_eq!(back, call);
        assert_eq!(back.body().unwrap(), body);

        let mut call = back;
        call.sender = Some(":1.7".into());
        let ret = Message::method_return(&call, &[Value::U32(9)]).unwrap();
        let back = parse(&ret.encode(1).unwrap()).unwrap();
        assert_eq!(back.reply_serial, Some(42));
        assert_eq!(back.destination.as_deref(), Some(":1.7"));
        assert_eq!(back.body().unwrap(), [Value::U32(9)]);

        let err = Message::error(&call, "org.x.Error.No", "no").unwrap();
        let back = parse(&err.encode(2).unwrap()).unwrap();
        assert_eq!(back.kind, Kind::Error);
        assert_eq!(back.error_name.as_deref(), Some("org.x.Error.No"));
    }

    #[test]
    fn big_endian_messages_are_read() {
        // A METHOD_RETURN, serial 2, REPLY_SERIAL 1, signature "u", body 7: built by hand.
        #[rustfmt::skip]
        let bytes: Vec<u8> = [
            &[b'B', 2, 0, 1][..], &[0, 0, 0, 4], &[0, 0, 0, 2], &[0, 0, 0, 15],
            &[5, 1, b'u', 0, 0, 0, 0, 1],          // REPLY_SERIAL
            &[8, 1, b'g', 0, 1, b'u', 0],          // SIGNATURE
            &[0],                                  // pad to 32
            &[0, 0, 0, 7],
        ]
        .concat();
        let m = parse(&bytes).unwrap();
        assert_eq!(
            (m.kind, m.serial, m.reply_serial),
            (Kind::MethodReturn, 2, Some(1))
        );
        assert_eq!(m.body().unwrap(), [Value::U32(7)]);
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let good = Message::method_call("d", "/p", "i", "M", &[Value::str("x"), Value::U32(1)])
            .unwrap()
            .encode(1)
            .unwrap();
        // Every truncation, and every single-byte corruption, parses or fails cleanly.
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err());
        }
        for at in 0..good.len() {
            for b in [0u8, 1, 0x7f, 0xff, b'(', b'a', b'{', b'v'] {
                let mut bad = good.clone();
                bad[at] = b;
                if let Ok(m) = parse(&bad) {
                    let _ = m.body();
                }
            }
        }
        // A size over the limit is refused from the fixed header alone.
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&(2u32 << 20).to_le_bytes());
        assert!(matches!(
            message_len(huge[..16].try_into().unwrap()),
            Err(Error::TooLarge(_))
        ));
        // Nesting beyond the limit, and signatures that are not types.
        let deep = "a".repeat(40) + "y";
        assert!(split_type(&deep).is_err());
        for sig in ["", "(", "()", "a", "{sv}", "a{vs}", "a{sss}", "z", "(y"] {
            assert!(split_type(sig).is_err(), "{sig}");
        }
    }

    #[test]
    fn values_that_cannot_be_sent_are_refused() {
        let mut e = Encoder::default();
        assert!(e.value(&Value::str("a\0b"), 0).is_err());
        assert!(e.value(&Value::Path("/a//b".into()), 0).is_err());
        assert!(
            e.value(&Value::Array("s".into(), vec![Value::U32(1)]), 0)
                .is_err()
        );
        assert!(e.value(&Value::Struct(vec![]), 0).is_err());
    }
}
