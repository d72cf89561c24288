//! Metrics against their real consumers: `promtool check metrics` on what the endpoint serves, a
//! real Prometheus server scraping it over loopback, the server's memory under 10,000 scrapes,
//! and a reader racing 1,000 rewrites of the textfile. First on an in-process [`Metrics`], then
//! against the daemon after a real kill in a 256 MiB v1 memory cgroup (root and cgroup v1).
//!
//! promtool and the Prometheus server come from Debian's `prometheus` package, which CI
//! installs; the tests that need them are ignored by plain `cargo test`, and run without them
//! (`--include-ignored`) they fail saying so.
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use oomward::report::metrics::{self, Metrics, ScopeFigures, Server};
use support::need_v1;
use support::{Daemon, Proc, TestCgroup, serial};

const MIB: u64 = 1 << 20;

#[global_allocator]
static ALLOCATOR: support::alloc::Counting = support::alloc::Counting;

/// Fails the test unless a Prometheus tool is installed (`.ci/setup` installs it). The tests
/// that call this are `#[ignore]`d with the same words.
fn need(tool: &str) {
    support::tools();
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "needs {tool} (Debian package prometheus; .ci/setup installs it)"
    );
}

/// One HTTP/1.0 GET: status, head and body. (1.0 so that no server answers in chunks.)
fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, head.to_string(), body.to_string())
}

/// Runs `promtool check metrics` on `body`; panics with its output if it finds a problem.
fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\non:\n{body}",
        out.status
    );
    println!("promtool check metrics: ok ({} bytes)", body.len());
}

/// A loopback port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server on loopback scraping one target every second; killed, reaped and its
/// directory removed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: oomward\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, addr, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The largest value of the instant query `metric` (a bare name), once one is at least
    /// `at_least`; panics with the server's log after `timeout`.
    fn wait_value(&mut self, metric: &str, at_least: f64, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited: {status}\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                let (status, _, body) =
                    http_get(self.addr, &format!("/api/v1/query?query={metric}"));
                if status == 200 {
                    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                    let best = v["data"]["result"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
                        .fold(f64::NAN, f64::max);
                    if best >= at_least {
                        println!("prometheus: {metric} = {best} ({body})");
                        return best;
                    }
                }
                last = body;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let targets = http_get(self.addr, "/api/v1/targets").2;
        panic!(
            "prometheus never returned {metric} >= {at_least}; last answer {last}\ntargets: {targets}\nlog:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Metrics with a sample of everything, including a scope name that needs escaping.
fn busy_metrics() -> Metrics {
    let m = Metrics::new(env!("CARGO_PKG_VERSION"));
    let f = ScopeFigures {
        available_bytes: 100 * MIB,
        limit_bytes: 256 * MIB,
        warn_bytes: Some(64 * MIB),
        term_bytes: 25 * MIB,
        kill_bytes: 12 * MIB,
        level: 2,
        fill_rate_bytes_per_second: 20.0 * MIB as f64,
        eta_seconds: Some(4.5),
    };
    m.scope(
        "system",
        &ScopeFigures {
            eta_seconds: None,
            ..f
        },
    );
    m.scope("/odd \"name\"\\with\nnewline", &f);
    m.kill("/odd \"name\"\\with\nnewline", "SIGTERM", "term", 1.7e9);
    m.kill("system", "SIGKILL", "eta", 1.7e9 + 1.0);
    m.escalation("system");
    m.futile("system");
    m.rescue("system");
    m.warning("system");
    m.kernel_oom_kills("system", 2);
    m.wakeup("timer");
    m.wakeup("v1_threshold");
    m.hook("pre_kill", "ok");
    m.notification("sent");
    for s in [0.00004, 0.0007, 0.03, 1.5] {
        m.round_seconds(s);
        m.ranking_seconds(s);
    }
    m
}

/// VmRSS of `pid` in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Scrapes `addr` 100 times to warm up, then 10,000 times; RSS of `pid` before and after, in KiB.
fn rss_over_scrapes(addr: SocketAddr, pid: u32) -> (u64, u64) {
    for _ in 0..100 {
        assert_eq!(http_get(addr, "/metrics").0, 200);
    }
    let before = vm_rss_kib(pid);
    let started = Instant::now();
    for _ in 0..10_000 {
        let (status, _, body) = http_get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(body.ends_with('\n'));
    }
    let after = vm_rss_kib(pid);
    println!(
        "10,000 scrapes in {:.1?}: VmRSS {before} KiB before, {after} KiB after ({:+.2} %)",
        started.elapsed(),
        (after as f64 - before as f64) * 100.0 / before as f64
    );
    (before, after)
}

#[test]
fn updates_of_known_scopes_and_renders_into_a_used_buffer_allocate_nothing() {
    let _serial = serial();
    let m = busy_metrics();
    let f = ScopeFigures {
        available_bytes: 1,
        limit_bytes: 2,
        warn_bytes: None,
        term_bytes: 1,
        kill_bytes: 0,
        level: 3,
        fill_rate_bytes_per_second: -1.0,
        eta_seconds: Some(0.5),
    };
    let mut out = String::new();
    m.render(&mut out);
    out.reserve(out.len());
    let n = support::alloc::allocations(|| {
        for _ in 0..100 {
            m.scope("system", &f);
            m.kill("system", "SIGKILL", "eta", 1.7e9);
            m.escalation("system");
            m.futile("system");
            m.rescue("system");
            m.warning("system");
            m.kernel_oom_kills("system", 1);
            m.wakeup("timer");
            m.hook("pre_kill", "ok");
            m.notification("sent");
            m.round_seconds(0.0001);
            m.ranking_seconds(0.01);
        }
        m.render(&mut out);
    });
    assert_eq!(n, 0, "the loop's updates or a render allocated");
}

#[test]
#[ignore = "needs promtool (Debian package prometheus)"]
fn the_endpoint_serves_what_promtool_accepts() {
    need("promtool");
    let _serial = serial();
    let m = Arc::new(busy_metrics());
    let server = Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), m.clone()).unwrap();
    let addr = server.local_addr();
    let (status, head, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        body.contains("scope=\"/odd \\\"name\\\"\\\\with\\nnewline\""),
        "{body}"
    );
    assert!(
        body.contains("oomward_kills_total{scope=\"system\",signal=\"SIGKILL\",reason=\"eta\"} 1")
    );
    let (status, _, index) = http_get(addr, "/");
    assert_eq!(status, 200);
    assert!(index.contains("/metrics"));
    assert_eq!(http_get(addr, "/nothing").0, 404);
    // A client that connects and sends nothing holds up only itself: the next scrape is
    // answered once its read times out, and the server is not stuck.
    let silent = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    assert_eq!(http_get(addr, "/metrics").0, 200);
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(silent);
    promtool_check(&body);
    drop(server);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
}

#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus)"]
fn a_prometheus_server_scrapes_the_in_process_endpoint() {
    need("prometheus");
    let _serial = serial();
    let m = Arc::new(busy_metrics());
    let server = Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), m.clone()).unwrap();
    let mut prometheus = Prometheus::start(server.local_addr());
    assert!(prometheus.wait_value("oomward_kills_total", 1.0, Duration::from_secs(60)) >= 1.0);
    m.kill("system", "SIGKILL", "eta", 1.7e9 + 2.0);
    assert!(prometheus.wait_value("oomward_kills_total", 2.0, Duration::from_secs(30)) >= 2.0);
}

#[test]
fn ten_thousand_scrapes_leave_rss_within_5_percent_in_process() {
    let _serial = serial();
    let m = Arc::new(busy_metrics());
    let server = Server::start(TcpListener::bind("127.0.0.1:0").unwrap(), m).unwrap();
    let (before, after) = rss_over_scrapes(server.local_addr(), std::process::id());
    assert!(
        after as f64 <= before as f64 * 1.05,
        "VmRSS grew from {before} KiB to {after} KiB"
    );
}

/// Checks that `text` is one whole exposition: it ends with a newline, every line is a comment
/// or a sample with a number, and the last family is there. Returns the kills it counts, all
/// label sets together.
fn whole_exposition(text: &str) -> Result<u64, String> {
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut kills = None;
    for line in text.lines() {
        if line.starts_with("# ") {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("not a sample: {line:?}"))?;
        value
            .parse::<f64>()
            .map_err(|_| format!("not a number: {line:?}"))?;
        if name.starts_with("oomward_kills_total{") {
            *kills.get_or_insert(0) +=
                value.parse::<u64>().map_err(|e| format!("{line:?}: {e}"))?;
        }
    }
    if !text.contains("\noomward_ranking_duration_seconds_count ") {
        return Err("the last family is missing".into());
    }
    kills.ok_or_else(|| "no kill count".into())
}

#[test]
fn the_textfile_is_never_seen_half_written_during_1000_rewrites() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oomward.prom");
    let m = busy_metrics();
    let mut buf = String::new();
    metrics::write_file(&path, &m, &mut buf).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, done) = (path.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut reads, mut seen) = (0u64, std::collections::BTreeSet::new());
            let mut text = String::new();
            while !done.load(Ordering::Relaxed) {
                text.clear();
                std::fs::File::open(&path)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                match whole_exposition(&text) {
                    Ok(kills) => {
                        seen.insert(kills);
                    }
                    Err(e) => panic!("read {reads}: {e}\n{text}"),
                }
                reads += 1;
            }
            (reads, seen.len())
        })
    };
    for i in 0..1000 {
        // The file's size changes from one write to the next (scopes come and go), so that a
        // torn read could not pass for a whole one.
        m.kill(&format!("/churn/{}", i % 7), "SIGTERM", "term", 1.7e9);
        let keep = i % 3;
        m.retain_scopes(&|s| !s.starts_with("/churn/") || s.len() % 3 == keep);
        metrics::write_file(&path, &m, &mut buf).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (reads, versions) = reader.join().expect("every read was whole");
    println!("{reads} whole reads of {versions} different versions during 1000 rewrites");
    assert!(versions > 10, "the reader did not overlap the rewrites");
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != &path)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- Against the daemon (root and a cgroup-v1 memory controller). ----

/// A daemon watching a fresh 256 MiB cgroup with the metrics listener and file on, after it
/// has stopped one fast allocator there.
struct Killed {
    daemon: Daemon,
    addr: SocketAddr,
    file: PathBuf,
    // Dropped after the daemon, in declaration order: the cgroup is emptied and removed, the
    // temp dir last.
    _cg: TestCgroup,
    _dir: tempfile::TempDir,
}

fn killed(name: &str) -> Killed {
    let cg = TestCgroup::create(name, 256 * MIB);
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let file = dir.path().join("oomward.prom");
    let report = format!(
        "[report]\nmetrics_listen = \"{addr}\"\nmetrics_file = \"{}\"\nmetrics_interval = \"1s\"\n",
        file.display()
    );
    let daemon = support::cgroup_daemon(&dir, &[&cg.path], "1s", "", &report, &[]).watching();
    let mut hog = Proc::grower(&cg, "0", &[]);
    hog.wait_exit(Duration::from_secs(20))
        .expect("the allocator was stopped");
    daemon.memhog_line(hog.pid);
    cg.assert_no_oom_kill("the allocator", &daemon);
    Killed {
        daemon,
        addr,
        file,
        _cg: cg,
        _dir: dir,
    }
}

/// The kills the exposition counts, all label sets together.
fn kills_in(body: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with("oomward_kills_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `path` until the file exists and counts at least one kill.
fn wait_file(path: &Path, daemon: &Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && kills_in(&text) >= 1.0
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never counted the kill; daemon output:\n{}",
            path.display(),
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root, a cgroup-v1 memory controller and Prometheus"]
fn after_a_kill_the_daemon_serves_valid_metrics_that_prometheus_reads() {
    need_v1();
    need("promtool");
    need("prometheus");
    let _serial = serial();
    let k = killed("metrics");
    let (status, _, body) = http_get(k.addr, "/metrics");
    assert_eq!(status, 200, "{}", k.daemon.output());
    assert!(kills_in(&body) >= 1.0, "{body}");
    assert!(body.contains("oomward_build_info{version="), "{body}");
    assert!(!body.contains("pid="), "{body}");
    promtool_check(&body);
    let file = wait_file(&k.file, &k.daemon);
    whole_exposition(&file).unwrap();
    promtool_check(&file);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&k.file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    let mut prometheus = Prometheus::start(k.addr);
    let kills = prometheus.wait_value("oomward_kills_total", 1.0, Duration::from_secs(60));
    assert!(kills >= 1.0);
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn ten_thousand_scrapes_leave_the_daemons_rss_within_5_percent() {
    need_v1();
    let _serial = serial();
    let k = killed("metrics-rss");
    let (before, after) = rss_over_scrapes(k.addr, k.daemon.child.id());
    assert!(
        after as f64 <= before as f64 * 1.05,
        "the daemon's VmRSS grew from {before} KiB to {after} KiB over 10,000 scrapes"
    );
}

/// A query for Prometheus's HTTP API, percent-encoded.
fn encoded(query: &str) -> String {
    query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A scrape as a scraper with a 1 s timeout makes it: whether `/metrics` answered 200 in time.
fn scrape_within_a_second(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    // A scraper on a busy machine may lose the CPU between its connect and its request: the
    // crowd must not take its connection in that time.
    std::thread::sleep(Duration::from_millis(30));
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").is_err() {
        return false;
    }
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    Instant::now() <= deadline && bytes.starts_with(b"HTTP/1.1 200")
}

/// The daemon's threads, open descriptors and VmRSS (KiB).
fn footprint(pid: u32) -> (u64, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (threads, fds, vm_rss_kib(pid))
}

/// 500 connections that say nothing and 20 that send their request a header at a time, each
/// opened again as soon as it is closed, for `OOMWARD_SLOWLORIS_SECS` (60) seconds: a scraper
/// asking once a second is answered within the second at least 99 times in 100, three fast
/// races in the watched cgroup are all won, and once they are gone the daemon has the threads
/// and descriptors it had before (after a first kill) and about its memory. A real Prometheus
/// sees the cgroup's kill counter at 0 before the first kill and its `increase()` after.
#[test]
#[ignore = "needs root, a cgroup-v1 memory controller and Prometheus"]
fn idle_and_slow_clients_never_hold_a_scrape_or_a_kill() {
    need_v1();
    let _serial = serial();
    let secs = support::env_count("OOMWARD_SLOWLORIS_SECS", 60) as u64;
    let cg = TestCgroup::create("slowloris", 256 * MIB);
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[report]\nmetrics_listen = \"{addr}\"\n\
         [[cgroup]]\npath = \"{}\"\n",
        cg.path
    );
    let config_file = dir.path().join("oomward.toml");
    std::fs::write(&config_file, config).unwrap();
    let daemon = Daemon::start(&config_file, &[]);
    daemon.wait_for("event=scope_added", Duration::from_secs(10));
    // The counter is there, at 0, before anything happened: from the first round that saw the
    // scope (published at the round's end, a moment after the line that says it was added).
    let zero = format!(
        "oomward_kills_total{{scope=\"{}\",signal=\"SIGTERM\",reason=\"term_level\"}} 0",
        cg.path
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (_, _, body) = http_get(addr, "/metrics");
        if body.contains(&zero) || Instant::now() >= deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.contains(&zero), "no zero kill counter:\n{body}");
    need("prometheus");
    let mut prometheus = Prometheus::start(addr);
    let series = encoded(&format!(
        "sum(oomward_kills_total{{scope=\"{}\"}})",
        cg.path
    ));
    assert_eq!(
        prometheus.wait_value(&series, 0.0, Duration::from_secs(60)),
        0.0
    );
    // A first kill starts what lives as long as the daemon (the journal's writer): the
    // footprint is taken after it.
    let mut first = Proc::racer(&cg.procs_file());
    assert!(first.wait_exit(Duration::from_secs(20)).is_some());
    std::thread::sleep(Duration::from_secs(2));
    let pid = daemon.child.id();
    let before = footprint(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let mut crowd = Vec::new();
    // 500 silent connections in 5 threads, each reopened when the server closes it.
    for _ in 0..5 {
        let stop = stop.clone();
        crowd.push(std::thread::spawn(move || {
            let mut held: Vec<Option<TcpStream>> = (0..100).map(|_| None).collect();
            while !stop.load(Ordering::Relaxed) {
                for slot in held.iter_mut() {
                    let closed = slot.as_mut().is_none_or(|s| {
                        let _ = s.set_nonblocking(true);
                        // Still held: nothing to read yet. Closed (0) or anything else: again.
                        match s.read(&mut [0u8; 1]) {
                            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                            Ok(n) => n <= 1,
                        }
                    });
                    if closed {
                        *slot = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok();
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
    }
    // 20 slow clients: a header line every 300 ms, never the end of the head.
    for _ in 0..20 {
        let stop = stop.clone();
        crowd.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                else {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                if s.write_all(b"GET /metrics HTTP/1.1\r\n").is_err() {
                    continue;
                }
                while !stop.load(Ordering::Relaxed) && s.write_all(b"X-Slow: 1\r\n").is_ok() {
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }));
    }
    // Three fast races during it.
    let racer = {
        let procs = cg.procs_file();
        std::thread::spawn(move || {
            let mut pids = Vec::new();
            for _ in 0..3 {
                std::thread::sleep(Duration::from_secs(3));
                let mut hog = Proc::racer(&procs);
                let stopped = hog.wait_exit(Duration::from_secs(20)).is_some();
                pids.push((hog.pid, stopped));
            }
            pids
        })
    };
    let started = Instant::now();
    let (mut asked, mut answered) = (0u32, 0u32);
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(secs) {
        let t = Instant::now();
        asked += 1;
        if scrape_within_a_second(addr) {
            answered += 1;
        }
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
    }
    let during = footprint(pid);
    let races = racer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in crowd {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = footprint(pid);
    println!(
        "{secs} s of 500 idle and 20 slow clients: {answered}/{asked} scrapes within 1 s (slowest \
         {slowest:?}); races {races:?}; threads/fds/VmRSS KiB before {before:?}, during {during:?}, \
         after {after:?}"
    );
    // 99 %: one scrape in a hundred, rounded up, may miss the second on this 2-core machine,
    // where 520 client threads, three races and the daemon's real-time loop share the CPUs.
    let may_miss = (f64::from(asked) * 0.01).ceil() as u32;
    assert!(
        asked - answered <= may_miss,
        "{answered}/{asked} scrapes answered within 1 s (slowest {slowest:?})"
    );
    assert!(races.iter().all(|(_, stopped)| *stopped), "{races:?}");
    cg.assert_no_oom_kill("the races", &daemon);
    assert_eq!(after.0, before.0, "threads");
    assert_eq!(after.1, before.1, "descriptors");
    assert!(
        after.2 <= before.2 + 4096,
        "VmRSS grew: {before:?} -> {after:?}"
    );
    let increase = encoded(&format!(
        "sum(increase(oomward_kills_total{{scope=\"{}\"}}[5m]))",
        cg.path
    ));
    let seen = prometheus.wait_value(&increase, 0.9, Duration::from_secs(30));
    println!("prometheus: increase of the cgroup's kills {seen}");
}
