//! What oomward tells people (issue 12), against real kills in v1 memory cgroups: the kill
//! report with every field (as text and as JSON), the kill journal read back by `history` and
//! `why` after a restart, the status file and `status`, hooks (environment, a hanging
//! `pre_kill` that cannot delay the kill, a failing hook logged), and the warning at the warn
//! level naming the process then chosen at term.
//!
//! They race the kernel, so they run one at a time (and, across test binaries, under
//! `flock /tmp/oomward-kernel.lock`).
#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom; the 80-line bound is for src/"
)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{Daemon, Proc, TestCgroup, kernel_race, need_v1, oomward, serial};

const MIB: u64 = 1 << 20;
const LIMIT: u64 = 256 * MIB;

/// A config watching `path` only, with the journal and status file in `dir`.
fn config(dir: &Path, path: &str, cgroup_extra: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[kill]\ngrace = \"300ms\"\n\
         [report]\njournal = \"{j}\"\nstatus_file = \"{s}\"\n{extra}\n\
         [[cgroup]]\npath = \"{path}\"\n{cgroup_extra}\n",
        j = dir.join("kills.jsonl").display(),
        s = dir.join("status.json").display(),
    );
    let file = dir.join("oomward.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// A JSON line carries the schema's version, and each of its fields is one the schema
/// documents, of the schema's type.
fn follows_the_schema(v: &Value, line: &str) {
    use oomward::report::schema::{Kind, VERSION, kind_of};
    assert_eq!(v["schema"], VERSION, "{line}");
    for (key, value) in v.as_object().unwrap() {
        if ["time", "severity", "schema", "report"].contains(&key.as_str()) {
            continue;
        }
        let kind = kind_of(key).unwrap_or_else(|| panic!("{key} is not in the schema: {line}"));
        let fits = match kind {
            Kind::Text => value.is_string(),
            Kind::Flag => value.is_boolean(),
            Kind::Float => value.is_number(),
            _ => value.is_i64() || value.is_u64(),
        };
        assert!(fits, "{key} is not of the schema's type {kind:?}: {line}");
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn run_cli(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = oomward()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn a_kill_is_reported_whole_kept_in_the_journal_and_explained_after_a_restart() {
    let (_serial, cg, dir) = kernel_race("report", LIMIT);
    let conf = config(dir.path(), &cg.path, "", "");
    let d = Daemon::start(&conf, &["--log-format", "json"]);
    d.wait_for("\"event\":\"start\"", Duration::from_secs(10));
    let idle = Proc::memhog_in(&cg, &["--hold", "8"]);
    let mut hog = Proc::grower(&cg, "40", &[]);
    let status = hog.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "the allocator was never stopped");
    let out = d.wait_for("\"event\":\"report\"", Duration::from_secs(10));
    // Every line of the JSON format is one JSON object.
    let lines = json_lines(&out);
    assert_eq!(
        lines.len(),
        out.lines().filter(|l| !l.trim().is_empty()).count(),
        "a line that is not JSON:\n{out}"
    );
    let reports: Vec<&Value> = lines.iter().filter(|l| l["event"] == "report").collect();
    assert_eq!(reports.len(), 1, "one report per action:\n{out}");
    let line = reports[0];
    let r = &line["report"];
    println!("report: {}", serde_json::to_string_pretty(r).unwrap());
    // The message is for people: human sizes; the fields are raw numbers.
    let message = line["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("killed memhog (pid {}", hog.pid)),
        "{message}"
    );
    assert!(message.contains("MiB"), "{message}");
    assert_eq!(line["pid"], hog.pid);
    // The scenario's numbers.
    let v = &r["victim"];
    assert_eq!(v["pid"], hog.pid);
    assert_eq!(v["comm"], "memhog");
    assert_eq!(v["uid"], 0);
    assert_eq!(v["user"], "root");
    assert_eq!(v["cgroup"], cg.path.as_str());
    assert!(v["exe"].as_str().unwrap().ends_with("memhog"));
    assert!(v["cmdline"].as_str().unwrap().contains("--rate 40"));
    let rss = v["rss_bytes"].as_u64().unwrap();
    assert!((150 * MIB..LIMIT).contains(&rss), "rss {rss}");
    let anon = v["rss_anon_bytes"].as_u64().unwrap();
    assert!(anon > 150 * MIB && anon <= rss, "anon {anon} of rss {rss}");
    for key in [
        "badness",
        "rank_score",
        "total_pages",
        "pgtables_bytes",
        "swap_bytes",
    ] {
        assert!(v[key].is_number(), "victim.{key}");
    }
    assert_eq!(v["total_pages"].as_u64().unwrap(), LIMIT / 4096);
    let t = &r["trigger"];
    assert_eq!(t["limit"].as_u64().unwrap(), LIMIT);
    let available = t["available"].as_u64().unwrap();
    assert!(
        available <= LIMIT / 10 + MIB,
        "decided at {available} available"
    );
    // Decided on the kernel's threshold event: the fill rate is what the samples saw (maybe
    // none yet), the projection there when there is a rate.
    assert!(t["fill_rate"].is_u64(), "fill rate");
    assert!(t["eta_ms"].is_number() || t["eta_ms"].is_null(), "eta");
    assert!(t.get("psi_some_avg10").is_some());
    assert_eq!(r["scope"], cg.path.as_str());
    assert_eq!(r["domain"], cg.path.as_str());
    assert_eq!(r["reason"], "term_level");
    assert_eq!(r["outcome"], "exited");
    assert_eq!(r["signals"][0]["signal"], "SIGTERM");
    assert!(r["exit_ms"].as_u64().unwrap() < 1000);
    let gain = r["expected_gain"].as_u64().unwrap();
    assert!(
        gain > 150 * MIB && gain <= anon + MIB,
        "expected gain {gain}"
    );
    let before = r["released"]["available_before"].as_u64().unwrap();
    let after = r["released"]["available_after"].as_u64().unwrap();
    let freed = r["released"]["freed"].as_i64().unwrap();
    assert_eq!(before, available);
    assert_eq!(freed, after as i64 - before as i64);
    assert!(freed > 120 * MIB as i64, "freed only {freed}");
    // The candidates: the victim first, the idle one after it with what it would have freed.
    let c = r["candidates"].as_array().unwrap();
    assert!(c.len() >= 2, "{c:?}");
    assert_eq!(c[0]["pid"], hog.pid);
    assert_eq!(c[0]["chosen"], true);
    let other = c
        .iter()
        .find(|x| x["pid"] == idle.pid)
        .expect("the idle process");
    assert_eq!(other["chosen"], false);
    assert!(other["expected_gain"].as_u64().unwrap() >= 7 * MIB);
    assert!(other["not_chosen"].is_string());

    // The status file while it runs; `status` renders it without the daemon's help.
    std::thread::sleep(Duration::from_millis(1200));
    let (ok, text, err) = run_cli(&conf, &["status"]);
    assert!(ok, "{err}");
    assert!(text.contains(&cg.path), "{text}");
    assert!(text.contains("killed") || text.contains("memhog"), "{text}");
    let (ok, text, _) = run_cli(&conf, &["status", "--json"]);
    assert!(ok);
    let view: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["scopes"][0]["name"], cg.path.as_str());
    assert_eq!(view["last_kills"][0]["pid"], hog.pid);
    let mode = std::fs::metadata(dir.path().join("status.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // Restarted: the journal is kept, and `history` and `why` explain the kill.
    drop(d);
    let d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let (ok, text, err) = run_cli(&conf, &["history"]);
    assert!(ok, "{err}");
    assert!(
        text.contains(&format!("killed memhog (pid {}", hog.pid)),
        "{text}"
    );
    let (ok, text, _) = run_cli(&conf, &["history", "--since", "1h", "--json"]);
    assert!(ok);
    let kept: Vec<Value> = json_lines(&text);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0], *r, "the journal keeps the record as reported");
    let (ok, text, err) = run_cli(&conf, &["why", &hog.pid.to_string()]);
    assert!(ok, "{err}");
    for needle in [
        format!("victim: memhog (pid {}", hog.pid),
        "why now: term_level".to_string(),
        "candidates considered".to_string(),
        format!("{}", idle.pid),
        "chosen".to_string(),
    ] {
        assert!(text.contains(&needle), "{needle:?} missing:\n{text}");
    }
    println!("why:\n{text}");
    let (ok, text, _) = run_cli(&conf, &["why", "memhog", "--json"]);
    assert!(ok);
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again["victim"]["pid"], hog.pid);
    let (ok, _, err) = run_cli(&conf, &["why", "nosuchprocess"]);
    assert!(!ok && err.contains("no kill of"), "{err}");
    drop(idle);
}

/// A directory every user may write (the hooks run as `nobody`).
fn shared_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn env_file(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn wait_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn hooks_get_the_victim_cannot_delay_the_kill_and_are_logged_when_they_fail() {
    let (_serial, cg, dir) = kernel_race("hooks", LIMIT);
    let out = shared_dir();
    let o = out.path().display();
    let extra = format!(
        "[hooks]\nuser = \"nobody\"\npre_kill_timeout = \"300ms\"\ntimeout = \"2s\"\n\
         pre_kill = [\"/bin/sh\", \"-c\", \"date +%s%N > {o}/pre.start; (env; echo UID=$(id -u)) > {o}/pre.env; sleep 10\"]\n\
         post_kill = [\"/bin/sh\", \"-c\", \"env > {o}/post.env\"]\n\
         warn = [\"/bin/sh\", \"-c\", \"echo no such luck >&2; exit 3\"]\n"
    );
    let conf = config(dir.path(), &cg.path, "available_warn = \"30%\"", &extra);
    let d = Daemon::start_with(&conf, &[], &[("OOMWARD_TEST_SECRET", "leak")]);
    d.wait_for("event=start", Duration::from_secs(10));
    let mut hog = Proc::grower(&cg, "40", &[]);
    let status = hog.wait_exit(Duration::from_secs(30));
    let exited_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(status.is_some(), "the allocator was never stopped");
    assert!(wait_file(
        &out.path().join("pre.env"),
        Duration::from_secs(5)
    ));
    let pre = env_file(&out.path().join("pre.env"));
    assert_eq!(get(&pre, "OOMWARD_EVENT"), Some("pre_kill"));
    assert_eq!(get(&pre, "OOMWARD_PID"), Some(&*hog.pid.to_string()));
    assert_eq!(get(&pre, "OOMWARD_COMM"), Some("memhog"));
    assert_eq!(get(&pre, "OOMWARD_CGROUP"), Some(cg.path.as_str()));
    assert_eq!(get(&pre, "OOMWARD_SCOPE"), Some(cg.path.as_str()));
    assert_eq!(get(&pre, "OOMWARD_SIGNAL"), Some("SIGTERM"));
    assert_eq!(get(&pre, "OOMWARD_LIMIT"), Some(&*LIMIT.to_string()));
    assert_eq!(get(&pre, "UID"), Some("65534"), "runs as nobody");
    assert!(
        get(&pre, "OOMWARD_TEST_SECRET").is_none(),
        "the daemon's environment leaked"
    );
    // The kill did not wait for the hook's 10 s: the victim died within the 300 ms timeout
    // (plus the time to die and be seen).
    let started: u128 = std::fs::read_to_string(out.path().join("pre.start"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let waited_ms = (exited_at.as_nanos().saturating_sub(started)) / 1_000_000;
    println!("pre_kill hook started {waited_ms} ms before the victim was seen gone");
    assert!(
        waited_ms < 1000,
        "the kill waited {waited_ms} ms for the hook"
    );
    // post_kill: the outcome and the whole record.
    assert!(wait_file(
        &out.path().join("post.env"),
        Duration::from_secs(5)
    ));
    let post = env_file(&out.path().join("post.env"));
    assert_eq!(get(&post, "OOMWARD_EVENT"), Some("post_kill"));
    assert_eq!(get(&post, "OOMWARD_OUTCOME"), Some("exited"));
    let record: Value = serde_json::from_str(get(&post, "OOMWARD_REPORT").unwrap()).unwrap();
    assert_eq!(record["victim"]["pid"], hog.pid);
    // The failing warn hook and the hanging pre_kill hook are logged, and nothing else broke.
    let text = d.wait_for("hook=warn", Duration::from_secs(5));
    let warn_hook = text
        .lines()
        .find(|l| l.contains("event=hook hook=warn"))
        .unwrap_or_else(|| panic!("no warn hook line:\n{text}"));
    assert!(
        warn_hook.contains("outcome=failed") && warn_hook.contains("exit_code=3"),
        "{warn_hook}"
    );
    assert!(text.contains("stderr=\"no such luck\""), "{text}");
    assert!(text.contains("event=hook_late hook=pre_kill"), "{text}");
    let text = d.wait_for("outcome=timeout", Duration::from_secs(5));
    assert!(text.contains("event=hook hook=pre_kill"), "{text}");
    assert_eq!(cg.keyed("memory.oom_control", "oom_kill"), 0);
}

/// A `pre_kill` hook that never ends, five fast races (500 MiB/s towards 512 MiB in a
/// 256 MiB cgroup): no kill is held back so long that the kernel wins one, and the journal
/// holds only what oomward did: one record per signal it sent, each a process it signalled.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn a_hanging_pre_kill_hook_never_loses_a_fast_race() {
    let (_serial, cg, dir) = kernel_race("hookrace", LIMIT);
    let extra =
        "[hooks]\nuser = \"nobody\"\ntimeout = \"2s\"\npre_kill = [\"/bin/sleep\", \"1000\"]\n";
    let conf = config(dir.path(), &cg.path, "", extra);
    let d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let procs = cg.procs_file();
    let mut hogs = Vec::new();
    for run in 0..5 {
        let before = cg.keyed("memory.oom_control", "oom_kill");
        let mut hog = Proc::racer(&procs);
        assert!(
            hog.wait_exit(Duration::from_secs(30)).is_some(),
            "run {run}: the allocator was never stopped"
        );
        let kernel = cg.keyed("memory.oom_control", "oom_kill") - before;
        assert_eq!(kernel, 0, "run {run}: the kernel won:\n{}", d.output());
        hogs.push(hog.pid);
        d.wait_for(
            &format!("killed memhog (pid {}", hog.pid),
            Duration::from_secs(5),
        );
    }
    let out = d.output();
    let decisions: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("event=term ") || l.contains("event=kill "))
        .collect();
    let waits: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("event=hook_late") || l.contains("event=hook_alongside"))
        .collect();
    println!("decisions: {decisions:#?}\nhook waits: {waits:#?}");
    assert_eq!(decisions.len(), 5, "one decision a race:\n{out}");
    assert!(
        decisions.iter().all(|l| l.contains("outcome=sent")),
        "{decisions:#?}"
    );
    assert_eq!(
        waits.len(),
        5,
        "each kill says it went on without the hook:\n{out}"
    );
    let journal = std::fs::read_to_string(dir.path().join("kills.jsonl")).unwrap();
    let records = json_lines(&journal);
    assert_eq!(records.len(), 5, "{journal}");
    for r in &records {
        let pid = r["victim"]["pid"].as_i64().unwrap() as i32;
        assert!(
            hogs.contains(&pid),
            "a record of a process never raced: {r}"
        );
        assert_eq!(r["outcome"], "exited", "{r}");
        assert!(!r["signals"].as_array().unwrap().is_empty(), "{r}");
    }
    assert!(
        !out.contains("event=gone_before_signal"),
        "a victim outran the hook wait:\n{out}"
    );
}

/// Victims whose names are made to forge fields (`x=1 event=kill`; a quote, a newline and
/// `event=x`), stopped by a daemon logging text and by one logging JSON: every line about them
/// keeps its own `event`, and the name comes back whole as the value of `comm`, never as
/// fields of its own.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn a_victim_name_cannot_forge_a_field_in_any_output() {
    need_v1();
    let _serial = serial();
    let names: [&[u8]; 2] = [b"x=1 event=kill", b"a\"b\nevent=x c"];
    for format in ["text", "json"] {
        for name in names {
            let cg = TestCgroup::create("forge", LIMIT);
            let dir = tempfile::tempdir().unwrap();
            let conf = config(dir.path(), &cg.path, "", "");
            let d = Daemon::start(&conf, &["--log-format", format]);
            d.wait_for("start", Duration::from_secs(10));
            let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
            let mut hog = Proc::grower(&cg, "40", &["--comm-hex", &hex]);
            assert!(hog.wait_exit(Duration::from_secs(30)).is_some());
            let pid = hog.pid;
            let out = if format == "json" {
                d.wait_for("\"event\":\"report\"", Duration::from_secs(10))
            } else {
                d.wait_for("event=report", Duration::from_secs(10))
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let mut events = Vec::new();
            for line in out.lines().filter(|l| !l.trim().is_empty()) {
                // (event, comm, pid) of the line, as a log reader would take them.
                let (event, comm, line_pid) = if format == "json" {
                    let v: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                    for key in ["event", "message", "time", "severity"] {
                        assert!(v.get(key).is_some(), "no {key}: {line}");
                    }
                    follows_the_schema(&v, line);
                    (
                        v["event"].as_str().map(String::from),
                        v["comm"].as_str().map(String::from),
                        v["pid"].as_i64(),
                    )
                } else {
                    let text = line.strip_prefix("oomward: ").unwrap_or(line);
                    let (_, pairs) = oomward::report::journal::split(text);
                    let get = |k: &str| {
                        let all: Vec<&String> = pairs
                            .iter()
                            .filter(|(key, _)| *key == k)
                            .map(|(_, v)| v)
                            .collect();
                        assert!(all.len() <= 1, "{k} twice: {line}");
                        all.first().map(|v| v.to_string())
                    };
                    (
                        get("event"),
                        get("comm"),
                        get("pid").and_then(|p| p.parse().ok()),
                    )
                };
                if line_pid != Some(i64::from(pid)) {
                    continue;
                }
                if let Some(comm) = &comm {
                    assert_eq!(comm, &name, "{format}: {line}");
                }
                events.push(event.unwrap_or_else(|| panic!("{format}: no event: {line}")));
            }
            println!("{format} {name:?}: events {events:?}");
            for want in ["term", "exit", "report"] {
                assert!(
                    events.iter().any(|e| e == want),
                    "{format} {name:?}: no {want} line of its own: {events:?}\n{out}"
                );
            }
            assert!(
                events
                    .iter()
                    .all(|e| ["term", "kill", "escalate", "exit", "report"].contains(&e.as_str())),
                "{format} {name:?}: an event it did not have: {events:?}\n{out}"
            );
            // The journal is written by a thread of its own, after the report line.
            let path = dir.path().join("kills.jsonl");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let journal = loop {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.ends_with('\n') || std::time::Instant::now() > deadline {
                    break text;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let record = &json_lines(&journal)
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("{format} {name:?}: no kill record in 5 s"));
            assert_eq!(record["victim"]["comm"], name.as_str());
        }
    }
}

/// Symlinks planted as the kill journal, the status file and the metrics file. In a
/// directory another user owns the daemon refuses to start and says which key and which
/// directory; in a directory only root can change, a symlink planted there (before, say, a
/// restore from a backup) is never followed: the file it points at keeps its bytes and mode.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn state_files_never_follow_a_planted_symlink() {
    need_v1();
    let _serial = serial();
    let victim_dir = tempfile::tempdir().unwrap();
    let precious = victim_dir.path().join("shadow");
    std::fs::write(&precious, "root:x:0:0\n").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
    let plant = |dir: &Path| {
        for name in ["kills.jsonl", "status.json", "oomward.prom"] {
            std::os::unix::fs::symlink(&precious, dir.join(name)).unwrap();
        }
    };
    let config_in = |dir: &Path, cg: &str| {
        let text = format!(
            "[daemon]\nlog = \"stderr\"\n[system]\nenabled = false\n[kill]\ngrace = \"300ms\"\n\
             [report]\njournal = \"{j}\"\nstatus_file = \"{s}\"\nmetrics_file = \"{m}\"\n\
             metrics_interval = \"1s\"\n[[cgroup]]\npath = \"{cg}\"\n",
            j = dir.join("kills.jsonl").display(),
            s = dir.join("status.json").display(),
            m = dir.join("oomward.prom").display(),
        );
        let file = victim_dir.path().join("oomward.toml");
        std::fs::write(&file, text).unwrap();
        file
    };
    let cg = TestCgroup::create("statefiles", LIMIT);
    // Another user's directory: refused at start, and by check-config.
    let theirs = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(theirs.path(), Some(65534), Some(65534)).unwrap();
    plant(theirs.path());
    let conf = config_in(theirs.path(), &cg.path);
    let run = oomward()
        .args(["--config"])
        .arg(&conf)
        .arg("run")
        .env("STATE_DIRECTORY", victim_dir.path())
        .env("RUNTIME_DIRECTORY", victim_dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "it started:\n{err}");
    assert!(
        err.contains("[report] journal") && err.contains("owned by uid 65534"),
        "{err}"
    );
    let (ok, _, err) = run_cli(&conf, &["check-config"]);
    assert!(!ok && err.contains("owned by uid 65534"), "{err}");
    // A directory only root can change, with the symlinks planted: run, kill, write.
    let ours = tempfile::tempdir().unwrap();
    plant(ours.path());
    let conf = config_in(ours.path(), &cg.path);
    let d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let mut hog = Proc::grower(&cg, "40", &[]);
    assert!(hog.wait_exit(Duration::from_secs(30)).is_some());
    d.wait_for("event=report", Duration::from_secs(10));
    d.wait_for("event=journal_error", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "root:x:0:0\n");
    let mode = std::fs::metadata(&precious).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    for name in ["status.json", "oomward.prom"] {
        let meta = std::fs::symlink_metadata(ours.path().join(name)).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{name} was not replaced by a file of its own:\n{}",
            d.output()
        );
    }
    assert!(
        std::fs::symlink_metadata(ours.path().join("kills.jsonl"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the journal's symlink was touched"
    );
}

/// An ordinary user whose process oomward stopped asks `oomward why PID` and is answered:
/// what was stopped, why, what else was considered; a second user asking about it sees no
/// command line, and neither can read root's journal. Root still sees everything.
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn an_ordinary_user_can_ask_why_their_process_died() {
    let (_serial, cg, dir) = kernel_race("whyuser", LIMIT);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = config(dir.path(), &cg.path, "", "");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    // A process of uid 65534 with a secret on its command line, in the cgroup.
    let procs = cg.procs_file();
    let mut hog = Proc::adopt(
        std::process::Command::new("sh")
            .stdout(std::process::Stdio::piped())
            .arg("-c")
            .arg(format!(
                "echo $$ > {procs} && exec setpriv --reuid 65534 --regid 65534 --clear-groups {} --rate 40 --grow 600 --delay-ms 50 --type=hunter2",
                support::memhog_path().display()
            ))
            .spawn()
            .unwrap(),
    );
    assert!(hog.wait_exit(Duration::from_secs(30)).is_some());
    d.wait_for(
        &format!("killed memhog (pid {}", hog.pid),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(500));
    let why_as = |uid: u32| {
        use std::os::unix::process::CommandExt;
        let out = oomward()
            .arg("--config")
            .arg(&conf)
            .args(["why", &hog.pid.to_string()])
            .uid(uid)
            .gid(uid)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, text, err) = why_as(65534);
    println!("why, as the victim's user:\n{text}{err}");
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(
        text.contains(&format!("(pid {}, uid 65534", hog.pid)),
        "{text}"
    );
    assert!(
        text.contains("why now:") && text.contains("why this one:"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    let (code, text, _) = why_as(65533);
    assert_eq!(code, Some(0));
    assert!(
        !text.contains("hunter2"),
        "another user saw the command line:\n{text}"
    );
    // Root's journal is root's; root sees the command line.
    let (ok, text, err) = run_cli(&conf, &["why", &hog.pid.to_string()]);
    assert!(ok, "{err}");
    assert!(text.contains("hunter2"), "{text}");
    let mode = std::fs::metadata(dir.path().join("kills.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
}

/// The processes whose command line is exactly `argv` (NUL-separated in /proc).
fn processes_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// The daemon's threads (by name) and open descriptors (by what they are).
fn threads_and_fds(pid: u32) -> (Vec<String>, Vec<String>) {
    let mut threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default())
        .collect();
    threads.sort();
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|f| {
            // Pipes and sockets by kind: their inode numbers differ from one run to the next.
            let target = std::fs::read_link(f.path()).unwrap_or_default();
            let t = target.to_string_lossy().into_owned();
            t.split(':').next().unwrap_or_default().to_string()
        })
        .collect();
    fds.sort();
    (threads, fds)
}

/// A `post_kill` hook that leaves a `sleep` in the background and one in a session of its
/// own, after five kills: neither is alive once the hook ends (its end says so), none after
/// the daemon's stop, and the daemon has the threads and descriptors it had after the first
/// (which starts what lives for the daemon's life: the journal's writer, the child runner).
#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn nothing_a_hook_starts_outlives_it() {
    let (_serial, cg, dir) = kernel_race("hookkids", LIMIT);
    let extra = "[hooks]\nuser = \"nobody\"\ntimeout = \"5s\"\n\
                 post_kill = [\"/bin/sh\", \"-c\", \"sleep 3141 & setsid sleep 3142 & exit 0\"]\n";
    let conf = config(dir.path(), &cg.path, "", extra);
    let mut d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let mut before = None;
    for run in 0..6 {
        let mut hog = Proc::grower(&cg, "200", &[]);
        assert!(
            hog.wait_exit(Duration::from_secs(30)).is_some(),
            "run {run}"
        );
        d.wait_for(
            &format!("killed memhog (pid {}", hog.pid),
            Duration::from_secs(10),
        );
        // The hook's end is logged once it ran.
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.output().matches("event=hook hook=post_kill").count() <= run {
            assert!(
                Instant::now() < deadline,
                "no end of hook {run}:\n{}",
                d.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if run == 0 {
            std::thread::sleep(Duration::from_millis(1500));
            before = Some(threads_and_fds(d.child.id()));
        }
    }
    let before = before.unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let out = d.output();
    let ends: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("event=hook hook=post_kill"))
        .collect();
    println!("hook ends: {ends:#?}");
    assert_eq!(ends.len(), 6, "{out}");
    assert!(
        ends.iter()
            .all(|l| l.contains("outcome=ok") && l.contains("leftovers_killed=2")),
        "{ends:#?}"
    );
    let left: Vec<i32> = [["sleep", "3141"], ["sleep", "3142"]]
        .iter()
        .flat_map(|a| processes_running(a))
        .collect();
    assert!(left.is_empty(), "hooks' children alive: {left:?}");
    let after = threads_and_fds(d.child.id());
    assert_eq!(
        after, before,
        "(threads, descriptors) before the first kill and after"
    );
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
    let left: Vec<i32> = [["sleep", "3141"], ["sleep", "3142"]]
        .iter()
        .flat_map(|a| processes_running(a))
        .collect();
    assert!(
        left.is_empty(),
        "hooks' children alive after the stop: {left:?}"
    );
}

#[test]
#[ignore = "needs root and a cgroup-v1 memory controller"]
fn crossing_warn_warns_once_naming_the_process_then_chosen_at_term() {
    let (_serial, cg, dir) = kernel_race("warn", LIMIT);
    let conf = config(dir.path(), &cg.path, "available_warn = \"40%\"", "");
    let d = Daemon::start(&conf, &[]);
    d.wait_for("event=start", Duration::from_secs(10));
    let mut idle = Proc::memhog_in(&cg, &["--hold", "16"]);
    let mut hog = Proc::grower(&cg, "30", &[]);
    assert!(hog.wait_exit(Duration::from_secs(30)).is_some());
    let out = d.wait_for("event=report", Duration::from_secs(10));
    let warns: Vec<&str> = out.lines().filter(|l| l.contains("event=warn")).collect();
    let terms: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("event=term") || l.contains("event=kill "))
        .collect();
    println!("warnings: {warns:#?}\ndecisions: {terms:#?}");
    assert_eq!(warns.len(), 1, "one warning per episode:\n{out}");
    let named = format!("pid={} comm=memhog", hog.pid);
    assert!(
        warns[0].contains(&named),
        "the warning names the allocator: {}",
        warns[0]
    );
    assert!(warns[0].contains(&format!("(pid {})", hog.pid)));
    assert_eq!(terms.len(), 1, "{out}");
    assert!(terms[0].contains(&named), "{}", terms[0]);
    assert!(
        idle.wait_exit(Duration::from_millis(1)).is_none(),
        "the idle one lives"
    );
    assert_eq!(cg.keyed("memory.oom_control", "oom_kill"), 0);
}
