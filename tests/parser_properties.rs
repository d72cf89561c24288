//! Fuzzing by property, for every reader of kernel text and for the config loader: starting
//! from the real files in `tests/fixtures` (the seed corpus) and from arbitrary text, mutate
//! (truncate, insert bytes, duplicate, drop and swap lines, change numbers to huge, negative or
//! empty ones) and feed the result to the parser. None may panic, in debug builds too (where
//! arithmetic overflow panics); a parsed value must keep its invariants.
//!
//! A nightly toolchain (for cargo-fuzz) cannot be had here, so this is proptest with
//! shrinking; `OOMWARD_FUZZ_CASES` sets the number of inputs per target (CI: 2000), or
//! `OOMWARD_FUZZ_SECS` a time per target instead (each prints how many inputs it tried).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oomward::config::Config;
use oomward::probe::ProbeError;
use oomward::probe::cgroup::{CgroupFiles, CgroupMemory, CgroupVersion, MemoryHierarchy};
use oomward::probe::meminfo::MemInfo;
use oomward::probe::process::{Stat, Status};
use oomward::probe::psi::Pressure;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("OOMWARD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Runs `test` on inputs from `strategy`: `cases()` of them, or batches until
/// `OOMWARD_FUZZ_SECS` have passed. A failure panics with the smallest input proptest shrank
/// it to.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    let budget = std::env::var("OOMWARD_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let start = std::time::Instant::now();
    let batch = if budget.is_some() { 5000 } else { cases() };
    let mut tried: u64 = 0;
    loop {
        let mut runner = TestRunner::new(RunnerConfig::with_cases(batch));
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        tried += u64::from(batch);
        if budget.is_none_or(|b| start.elapsed() >= b) {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {tried} inputs in {:.0?}, no failure",
        start.elapsed()
    );
}

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One change to a text.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Insert(usize, String),
    DuplicateLine(usize),
    DropLine(usize),
    SwapLines(usize, usize),
    /// Replace the n-th number with this text.
    Number(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let weird_number = prop_oneof![
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-1".to_string()),
        Just("".to_string()),
        Just("max".to_string()),
        Just("0".to_string()),
        Just("1e308".to_string()),
        "[0-9]{1,25}",
    ];
    prop_oneof![
        (0..4096usize).prop_map(Edit::Truncate),
        (0..4096usize, "\\PC{0,8}|[\\x00-\\x1f()=:%\\n ]{1,4}")
            .prop_map(|(i, s)| Edit::Insert(i, s)),
        (0..64usize).prop_map(Edit::DuplicateLine),
        (0..64usize).prop_map(Edit::DropLine),
        (0..64usize, 0..64usize).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (0..64usize, weird_number).prop_map(|(i, s)| Edit::Number(i, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_string();
    for e in edits {
        match e {
            Edit::Truncate(n) => {
                let mut cut = (*n).min(t.len());
                while !t.is_char_boundary(cut) {
                    cut -= 1;
                }
                t.truncate(cut);
            }
            Edit::Insert(at, s) => {
                let mut i = (*at).min(t.len());
                while !t.is_char_boundary(i) {
                    i -= 1;
                }
                t.insert_str(i, s);
            }
            Edit::DuplicateLine(n) | Edit::DropLine(n) | Edit::SwapLines(n, _) => {
                let mut lines: Vec<String> = t.lines().map(String::from).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = n % lines.len();
                match e {
                    Edit::DuplicateLine(_) => lines.insert(i, lines[i].clone()),
                    Edit::DropLine(_) => {
                        lines.remove(i);
                    }
                    Edit::SwapLines(_, m) => {
                        let j = m % lines.len();
                        lines.swap(i, j);
                    }
                    _ => unreachable!(),
                }
                t = lines.join("\n");
                t.push('\n');
            }
            Edit::Number(n, s) => {
                let spans: Vec<(usize, usize)> = number_spans(&t);
                if spans.is_empty() {
                    continue;
                }
                let (a, b) = spans[n % spans.len()];
                t.replace_range(a..b, s);
            }
        }
    }
    t
}

fn number_spans(t: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in t.char_indices() {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, t.len()));
    }
    out
}

/// A seed from the corpus, mutated; or arbitrary text.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::sample::select(seeds), prop::collection::vec(edit(), 0..6))
            .prop_map(|(s, e)| apply(&s, &e)),
        1 => "\\PC{0,200}",
    ]
}

/// A cgroup's files from a map, as the readers see a cgroup directory.
struct MapFiles(HashMap<String, String>, String);

impl CgroupFiles for MapFiles {
    fn text(&mut self, name: &str) -> Result<Option<&str>, ProbeError> {
        match self.0.get(name) {
            Some(t) => {
                self.1 = t.clone();
                Ok(Some(&self.1))
            }
            None => Ok(None),
        }
    }
    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from("/fuzz").join(name)
    }
}

fn cgroup_files(dir: &str) -> HashMap<String, String> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    std::fs::read_dir(&base)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type().ok()?.is_file().then_some(())?;
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name, std::fs::read_to_string(e.path()).ok()?))
        })
        .collect()
}

/// A cgroup directory with each file mutated.
fn mutated_cgroup(dir: &'static str) -> impl Strategy<Value = HashMap<String, String>> {
    let files = cgroup_files(dir);
    let names: Vec<String> = files.keys().cloned().collect();
    prop::collection::vec(
        (
            prop::sample::select(names),
            prop::collection::vec(edit(), 1..4),
        ),
        0..6,
    )
    .prop_map(move |changes| {
        let mut f = files.clone();
        for (name, edits) in changes {
            let t = apply(&f[&name], &edits);
            f.insert(name, t);
        }
        f
    })
}

#[test]
fn proc_stat_never_panics() {
    let seeds = vec![
        fixture("v1/proc/412/stat"),
        fixture("v1/proc/2/stat"),
        fixture("v1/proc/600/stat"),
    ];
    fuzz("proc_stat", mutated(seeds), |text| {
        let _ = Stat::parse(&text);
        Ok(())
    });
}

#[test]
fn proc_status_never_panics() {
    let seeds = vec![fixture("v1/proc/412/status"), fixture("v1/proc/600/status")];
    fuzz("proc_status", mutated(seeds), |text| {
        let s = Status::parse(&text);
        let _ = (s.uid, s.euid, s.vm_swap_kib);
        Ok(())
    });
}

#[test]
fn meminfo_never_panics() {
    let seeds = vec![fixture("v1/proc/meminfo"), fixture("v2/proc/meminfo")];
    fuzz("meminfo", mutated(seeds), |text| {
        if let Ok(m) = MemInfo::parse(&text) {
            let _ = m.total_pages(4096);
        }
        Ok(())
    });
}

#[test]
fn pressure_never_panics() {
    fuzz(
        "pressure",
        mutated(vec![fixture("v1/proc/pressure/memory")]),
        |text| {
            let _ = Pressure::parse(&text);
            Ok(())
        },
    );
}

#[test]
fn proc_cgroup_lines_never_panic() {
    let seeds = vec![fixture("v1/proc/412/cgroup"), fixture("v2/proc/900/cgroup")];
    fuzz("proc_cgroup", mutated(seeds), |text| {
        for version in [CgroupVersion::V1, CgroupVersion::V2] {
            let h = MemoryHierarchy {
                version,
                mount_point: "/sys/fs/cgroup".into(),
                mount_root: "/".into(),
            };
            let _ = h.path_of_process(&text);
        }
        Ok(())
    });
}

#[test]
fn v1_cgroup_files_never_panic() {
    fuzz(
        "v1_cgroup",
        mutated_cgroup("v1/sys/fs/cgroup/memory/app"),
        |files| {
            let mut f = MapFiles(files, String::new());
            if let Ok(m) = CgroupMemory::read_from(CgroupVersion::V1, false, &mut f) {
                let _ = (m.working_set(), m.swap_left());
            }
            Ok(())
        },
    );
}

#[test]
fn v2_cgroup_files_never_panic() {
    fuzz(
        "v2_cgroup",
        mutated_cgroup("v2/sys/fs/cgroup/workload"),
        |files| {
            for is_root in [false, true] {
                let mut f = MapFiles(files.clone(), String::new());
                if let Ok(m) = CgroupMemory::read_from(CgroupVersion::V2, is_root, &mut f) {
                    let _ = (m.working_set(), m.swap_left());
                }
            }
            Ok(())
        },
    );
}

#[test]
fn the_config_loader_never_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let seeds = vec![
        read("config.example.toml"),
        read("packaging/presets/desktop.toml"),
        read("packaging/presets/server.toml"),
        "[[cgroup]]\npath = \"/kubepods/{a,b}/**\"\navailable_term = \"64MiB\"\n[[rule]]\nexe = \"/usr/bin/x\"\nuser = 0\nprotect = true\n".to_string(),
    ];
    fuzz("config", mutated(seeds), |text| {
        match Config::parse(&text, "fuzz.toml") {
            Ok(c) => {
                // What it accepted, it prints back in a form it accepts again.
                let again = Config::parse(&c.to_toml(), "again.toml");
                prop_assert!(again.is_ok(), "{:?}", again.err());
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("fuzz.toml"), "{msg}");
                prop_assert!(!msg.chars().any(|c| c.is_control() && c != '\n'), "{msg:?}");
            }
        }
        Ok(())
    });
}
