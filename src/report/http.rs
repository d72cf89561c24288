//! The metrics endpoint: `GET /metrics` (and a pointer to it on `/`) over plain HTTP, on one
//! thread of its own that no client can hold.
//!
//! One thread serves every connection through `poll(2)`: a client that connects and says
//! nothing, or sends its request a byte at a time, holds only its own slot, never the others'
//! answers. Each connection has [`HEAD_TIME`] to send its whole request head (at most
//! [`REQUEST_MAX`] bytes) and [`WRITE_TIME`] to read the answer; at most [`MAX_CONNECTIONS`]
//! are open. A request that comes with its connection (a scraper's) is answered as the
//! connection is taken, needing no slot; beyond the limit a new connection takes the place of
//! the oldest that has not finished its request. Connections are taken [`ACCEPT_BATCH`] at a
//! time, the open ones read in between. A crowd of idle or slow connections cannot keep a
//! scraper out. Memory stays bounded by those numbers; the loop of the daemon is never involved.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::metrics::{CONTENT_TYPE, Metrics};
use crate::sys::{self, Ready};

/// How long a client may take to send its whole request head.
pub const HEAD_TIME: Duration = Duration::from_secs(1);
/// How long a client may take to read its answer.
pub const WRITE_TIME: Duration = Duration::from_secs(5);
/// The largest request head: a scraper's request line and headers fit in a few hundred bytes.
pub const REQUEST_MAX: usize = 2048;
/// The most connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// The most connections taken in one turn.
pub const ACCEPT_BATCH: usize = 16;
/// The listening socket's queue of connections not yet taken (the kernel caps it at
/// `net.core.somaxconn`). std listens with 128: a crowd of 500 reconnecting clients overflowed
/// it about five times a second here, and a scraper whose handshake met a full queue waited
/// the 1 s of a SYN retransmission.
pub const BACKLOG: i32 = 4096;
/// The longest the thread sleeps before it looks whether it was asked to stop.
const STOP_LOOK: Duration = Duration::from_millis(100);

/// A metrics server on a thread of its own; dropping it stops the thread and closes the
/// listener and every connection (a reload that changes or removes the listener).
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts serving from `listener`.
    pub fn start(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = spawn(listener, metrics, stop.clone())?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
    }
}

fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    crate::sys::widen_backlog(&listener, BACKLOG)?;
    crate::sys::defer_accept(&listener, HEAD_TIME.as_secs() as i32)?;
    crate::sys::spawn_helper("metrics", move || {
        let mut server = Serving {
            listener,
            metrics,
            connections: Vec::with_capacity(MAX_CONNECTIONS),
            body: String::new(),
        };
        while !stop.load(Ordering::SeqCst) {
            server.turn();
        }
    })
}

/// One client.
struct Connection {
    stream: TcpStream,
    /// Its request head so far.
    request: Vec<u8>,
    /// The answer, once the request is complete, and how much of it went out.
    answer: Option<(Vec<u8>, usize)>,
    /// When it is closed whatever it is doing.
    deadline: Instant,
    opened: Instant,
}

/// What the thread keeps from one turn to the next.
struct Serving {
    listener: TcpListener,
    metrics: Arc<Metrics>,
    connections: Vec<Connection>,
    /// The exposition, rendered into the same buffer each time.
    body: String,
}

impl Serving {
    /// Waits for something to do (at most until the nearest deadline, or [`STOP_LOOK`]) and
    /// does it: accepts, reads, answers, and closes what is done or late.
    fn turn(&mut self) {
        let now = Instant::now();
        let wait = self
            .connections
            .iter()
            .map(|c| c.deadline.saturating_duration_since(now))
            .min()
            .unwrap_or(STOP_LOOK)
            .min(STOP_LOOK);
        let ready = self.wait(wait);
        let mut keep = vec![true; self.connections.len()];
        for (k, flags) in ready.iter().enumerate().skip(1) {
            if flags.any() {
                let c = &mut self.connections[k - 1];
                keep[k - 1] = !flags.failed() && progress(c, &self.metrics, &mut self.body);
            }
        }
        let now = Instant::now();
        let mut k = 0;
        self.connections.retain(|c| {
            let alive = keep[k] && c.deadline > now;
            k += 1;
            alive
        });
        if ready.first().is_some_and(|f| f.any()) {
            self.accept();
        }
    }

    /// Polls the listener and every connection; their ready flags, the listener's first.
    fn wait(&self, wait: Duration) -> Vec<Ready> {
        let listener = std::iter::once((self.listener.as_fd(), false));
        let answering = self
            .connections
            .iter()
            .map(|c| (c.stream.as_fd(), c.answer.is_some()));
        sys::poll_sockets(listener.chain(answering), wait)
    }

    /// Takes waiting connections, at most [`ACCEPT_BATCH`] a turn (the ones already open are
    /// read between batches: a crowd connecting at once cannot push out a scraper whose
    /// request is on its way). One whose request came with it (a scraper's) is answered at
    /// once, needing no slot. Beyond [`MAX_CONNECTIONS`] the oldest one still sending its
    /// request is closed to make room; when every one is being answered, the new one is
    /// closed at once.
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                // WouldBlock: all taken. Out of descriptors or memory: the next turn.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let now = Instant::now();
            let mut c = Connection {
                stream,
                request: Vec::new(),
                answer: None,
                deadline: now + HEAD_TIME,
                opened: now,
            };
            if !progress(&mut c, &self.metrics, &mut self.body) {
                continue;
            }
            if self.connections.len() >= MAX_CONNECTIONS {
                let oldest = self
                    .connections
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.answer.is_none())
                    .min_by_key(|(_, c)| c.opened)
                    .map(|(k, _)| k);
                match oldest {
                    Some(k) => drop(self.connections.swap_remove(k)),
                    None => continue,
                }
            }
            self.connections.push(c);
        }
    }
}

/// Moves a connection on: reads its request, answers it once complete, writes what it can of
/// the answer. Whether it stays open.
fn progress(c: &mut Connection, metrics: &Metrics, body: &mut String) -> bool {
    if c.answer.is_none() && !read(c, metrics, body) {
        return false;
    }
    let Some((answer, sent)) = &mut c.answer else {
        return true;
    };
    loop {
        match c.stream.write(&answer[*sent..]) {
            Ok(0) => return false,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        if *sent == answer.len() {
            let _ = c.stream.shutdown(Shutdown::Write);
            return false;
        }
    }
}

/// Reads what a connection sent; once its head is complete (or too large) its answer is made.
/// Whether it stays open.
fn read(c: &mut Connection, metrics: &Metrics, body: &mut String) -> bool {
    let mut buf = [0u8; 512];
    let complete = loop {
        let room = REQUEST_MAX - c.request.len();
        match c.stream.read(&mut buf[..room.min(512)]) {
            Ok(0) => return false,
            Ok(n) => c.request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        if ends_head(&c.request) {
            break true;
        }
        if c.request.len() == REQUEST_MAX {
            break false;
        }
    };
    let (head_only, reply) = route(&c.request, complete);
    let (status, content_type, text) = match reply {
        Reply::Metrics => {
            metrics.render(body);
            ("200 OK", CONTENT_TYPE, body.as_str())
        }
        Reply::Fixed(status, content_type, text) => (status, content_type, text),
    };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        text.len()
    )
    .into_bytes();
    if status.starts_with("405") {
        answer.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    if !head_only {
        answer.extend_from_slice(text.as_bytes());
    }
    c.request = Vec::new();
    c.answer = Some((answer, 0));
    c.deadline = Instant::now() + WRITE_TIME;
    true
}

/// What a request gets.
enum Reply {
    Metrics,
    Fixed(&'static str, &'static str, &'static str),
}

const INDEX: &str = "<html><head><title>oomward</title></head><body><h1>oomward</h1>\
<p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

/// True once `request` holds the blank line that ends an HTTP request's head.
fn ends_head(request: &[u8]) -> bool {
    request.windows(4).any(|w| w == b"\r\n\r\n") || request.windows(2).any(|w| w == b"\n\n")
}

/// Whether only the head is wanted (HEAD), and what to answer.
fn route(request: &[u8], complete: bool) -> (bool, Reply) {
    let text = |status, body| Reply::Fixed(status, "text/plain; charset=utf-8", body);
    if !complete {
        return (
            false,
            text("431 Request Header Fields Too Large", "request too large\n"),
        );
    }
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.trim_ascii().split(|&b| b == b' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let head_only = method == b"HEAD";
    if method != b"GET" && !head_only {
        return (false, text("405 Method Not Allowed", "only GET and HEAD\n"));
    }
    let reply = match path {
        b"/metrics" => Reply::Metrics,
        b"/" => Reply::Fixed("200 OK", "text/html; charset=utf-8", INDEX),
        _ => text("404 Not Found", "not found: try /metrics\n"),
    };
    (head_only, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[rustfmt::skip]
    fn requests_are_routed_by_method_and_path() {
        let kind = |r: &[u8], complete| match route(r, complete) {
            (head, Reply::Metrics) => (head, "metrics"),
            (head, Reply::Fixed(status, _, _)) => (head, status),
        };
        let cases: [(&[u8], bool, (bool, &str)); 7] = [
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", true, (false, "metrics")),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", true, (false, "metrics")),
            (b"HEAD /metrics HTTP/1.1\r\n\r\n", true, (true, "metrics")),
            (b"GET / HTTP/1.1\r\n\r\n", true, (false, "200 OK")),
            (b"GET /x HTTP/1.1\r\n\r\n", true, (false, "404 Not Found")),
            (b"POST /metrics HTTP/1.1\r\n\r\n", true, (false, "405 Method Not Allowed")),
            (b"GET /metrics HTTP/1.1\r\nX: yyyy", false, (false, "431 Request Header Fields Too Large")),
        ];
        for (request, complete, want) in cases {
            assert_eq!(kind(request, complete), want, "{}", request.escape_ascii());
        }
        assert!(ends_head(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ends_head(b"GET / HTTP/1.0\n\n"));
        assert!(!ends_head(b"GET / HTTP/1.0\r\nHost: x\r\n"));
    }
}
