//! `oomward history`, `oomward why`, `oomward status`: reading what the daemon recorded (the
//! kill journal, the status file) and showing it to people. They need no privilege beyond
//! reading those files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use oomward::config::{Config, ConfigOrigin, parse_duration};
use oomward::report::history;
use oomward::report::kill::{Considered, KillRecord, Victim, human, human_signed, unix_now};
use oomward::report::{escape_controls, or, status};

use crate::Failure;

/// The config whose paths say where the daemon's files are. When it does not load (a typo:
/// the daemon then runs on its last good config), the last good config where it can be read,
/// else the built-in defaults, said on stderr: the person asking why their process died must
/// not be told about a typo instead.
fn reading_config(origin: &ConfigOrigin) -> Config {
    let error = match origin.load() {
        Ok(c) => return c,
        Err(e) => e,
    };
    let (config, from) = oomward::daemon::last_good_or_defaults(|_| true);
    let from = from.unwrap_or_else(|| "the built-in defaults".into());
    eprintln!("oomward: {error}\noomward: the config does not load; reading the paths of {from}");
    config
}

/// The journal to read (`--journal`, else the config's `[report] journal`) and its records;
/// for a user who may not read it, those of its public twin (no command lines), said on
/// stderr.
fn read_journal(
    origin: &ConfigOrigin,
    given: Option<PathBuf>,
) -> Result<(PathBuf, Vec<KillRecord>), Failure> {
    let path = match given {
        Some(p) => p,
        None => reading_config(origin)
            .report
            .journal
            .ok_or_else(|| Failure::usage("the kill journal is off ([report] journal = \"\")"))?,
    };
    let read = match history::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let public = history::public_path(&path);
            eprintln!(
                "oomward: {} is root's; reading {} (command lines are kept private)",
                path.display(),
                public.display()
            );
            history::read(&public)
        }
        other => other,
    };
    let read =
        read.map_err(|e| Failure::runtime(format!("cannot read {}: {e}", path.display())))?;
    if read.skipped > 0 {
        eprintln!(
            "oomward: {}: {} line(s) that are not kill records were skipped",
            path.display(),
            read.skipped
        );
    }
    Ok((path, read.records))
}

fn print(text: &str) -> Result<(), Failure> {
    let written = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    super::unless_closed(written).map_err(|e| Failure::runtime(format!("cannot write: {e}")))
}

/// `value` as indented JSON, and a newline.
fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// `oomward history [--since AGE] [--json]`.
pub fn history(
    origin: &ConfigOrigin,
    since: Option<&str>,
    json: bool,
    journal: Option<PathBuf>,
) -> Result<(), Failure> {
    let (path, mut records) = read_journal(origin, journal)?;
    if let Some(age) = since {
        let age = parse_duration(age).map_err(|e| Failure::usage(format!("--since: {e}")))?;
        let from = unix_now() - age.as_secs_f64();
        records.retain(|r| r.time >= from);
    }
    let mut out = String::new();
    for r in &records {
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
        } else {
            let _ = writeln!(
                out,
                "{}  {}  [{}{}]",
                r.time_text,
                r.summary(),
                r.reason,
                if r.dry_run { ", dry run" } else { "" }
            );
        }
    }
    if records.is_empty() && !json {
        eprintln!("oomward: no kills recorded in {}", path.display());
    }
    print(&out)
}

/// `oomward why PID|COMM [--json]`.
pub fn why(
    origin: &ConfigOrigin,
    who: &str,
    json: bool,
    journal: Option<PathBuf>,
) -> Result<(), Failure> {
    let (path, records) = read_journal(origin, journal)?;
    let Some(r) = history::find(&records, who) else {
        return Err(Failure::runtime(format!(
            "no kill of {who:?} in {} (pid or process name)",
            path.display()
        )));
    };
    print(&if json { pretty(r) } else { explain(r) })
}

/// A kill record in words.
pub fn explain(r: &KillRecord) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}  {}", r.time_text, r.summary());
    explain_victim(&mut o, &r.victim);
    explain_trigger(&mut o, r);
    explain_choice(&mut o, r);
    explain_outcome(&mut o, r);
    explain_candidates(&mut o, &r.candidates);
    o
}

/// Who the victim was: its identity, then its command line.
fn explain_victim(o: &mut String, v: &Victim) {
    let _ = writeln!(
        o,
        "\nvictim: {} (pid {}, uid {}{}), cgroup {}, exe {}",
        escape_controls(&v.comm),
        v.pid,
        or(v.uid, "?"),
        v.user
            .as_deref()
            .map(|u| format!(" {}", escape_controls(u)))
            .unwrap_or_default(),
        escape_controls(v.cgroup.as_deref().unwrap_or("-")),
        escape_controls(v.exe.as_deref().unwrap_or("?")),
    );
    let cmdline = if v.cmdline.is_empty() {
        "(not shown: kept private, or not read)".into()
    } else {
        escape_controls(&v.cmdline)
    };
    let _ = writeln!(o, "  cmdline: {cmdline}");
}

/// Why the domain acted then: its level and figures, how fast it was filling.
fn explain_trigger(o: &mut String, r: &KillRecord) {
    let t = &r.trigger;
    let _ = writeln!(
        o,
        "\nwhy now: {} in {} (domain {}) was at level {}: {} available of {} (needs {} back to leave it)",
        r.reason,
        escape_controls(&r.scope),
        escape_controls(&r.domain),
        r.level,
        human(t.available),
        human(t.limit),
        human(t.need)
    );
    // No rate is measured at the first look after a quiet spell (see `FillRate`): say so,
    // rather than that nothing filled.
    let filling = if t.fill_rate == 0 {
        "  fill rate not measured yet (the first look after a quiet spell)".to_string()
    } else {
        format!("  filling at {}/s", human(t.fill_rate))
    };
    let _ = writeln!(
        o,
        "{filling}{}{}",
        t.eta_ms
            .map(|e| format!(", out of memory in {:.1} s at that rate", e as f64 / 1000.0))
            .unwrap_or_default(),
        t.psi_some_avg10
            .map(|p| format!("; memory pressure (PSI some avg10) {p:.1}%"))
            .unwrap_or_default()
    );
}

/// Why this process: the terms of its badness and what its kill was to free.
fn explain_choice(o: &mut String, r: &KillRecord) {
    let v = &r.victim;
    let _ = writeln!(
        o,
        "\nwhy this one: the highest score among the candidates that could be chosen.\n  \
         badness {} = (rss {} + swap {} + page tables {}) in pages + oom_score_adj {} x {} pages / 1000 (the kernel's formula, T = {} pages)\n  \
         score with the policy's adjustment ({:+}): {}",
        v.badness,
        human(v.rss_bytes),
        human(v.swap_bytes),
        human(v.pgtables_bytes),
        v.oom_score_adj,
        v.total_pages,
        v.total_pages,
        v.policy_adjust,
        v.rank_score
    );
    let _ = writeln!(
        o,
        "  expected to free {} (its private anonymous memory and swap{}); enough to leave the level: {}; a kill had to free at least {}",
        human(r.expected_gain),
        if r.kill_unit == "cgroup" {
            ", for the whole cgroup"
        } else {
            ""
        },
        if r.enough { "yes" } else { "no" },
        human(r.min_gain)
    );
}

/// The signals sent and how the victim and its domain came out of them.
fn explain_outcome(o: &mut String, r: &KillRecord) {
    let _ = writeln!(o, "\nwhat happened:");
    for s in &r.signals {
        let _ = writeln!(o, "  {} at {} ms ({})", s.signal, s.at_ms, s.why);
    }
    match r.exit_ms {
        Some(ms) => {
            let _ = writeln!(o, "  exited {ms} ms after the first signal");
        }
        None => {
            let _ = writeln!(o, "  outcome: {}", r.outcome);
        }
    }
    if let Some(after) = r.released.available_after {
        let _ = writeln!(
            o,
            "  available {} -> {} ({})",
            human(r.released.available_before),
            human(after),
            or(r.released.freed.map(human_signed), "-")
        );
    }
    if !r.companions.is_empty() {
        let _ = writeln!(o, "  signalled with it: {:?}", r.companions);
    }
}

/// The candidates as a table, best first, with why each other one was not chosen.
fn explain_candidates(o: &mut String, candidates: &[Considered]) {
    let _ = writeln!(o, "\ncandidates considered (best first):");
    let _ = writeln!(
        o,
        "  {:>4} {:>8} {:<16} {:>6} {:>8} {:>8} {:>10} {:>10} {:>12}  note",
        "rank", "pid", "comm", "uid", "adj", "badness", "rss", "swap", "would free"
    );
    for c in candidates {
        let note = if c.chosen {
            Some("chosen")
        } else {
            c.not_chosen.as_deref()
        };
        #[rustfmt::skip]
        let _ = writeln!(
            o,
            "  {:>4} {:>8} {:<16} {:>6} {:>8} {:>8} {:>10} {:>10} {:>12}  {}",
            c.rank, c.pid, escape_controls(&c.comm), or(c.uid, "?"), c.oom_score_adj, or(c.badness, "-"),
            human(c.rss_bytes), human(c.swap_bytes), human(c.expected_gain), note.unwrap_or_default()
        );
    }
}

/// `oomward status [--json]`.
pub fn status(
    origin: &ConfigOrigin,
    json: bool,
    file: Option<PathBuf>,
    check: bool,
) -> Result<(), Failure> {
    let path = match file {
        Some(p) => p,
        None => reading_config(origin).report.status_file.ok_or_else(|| {
            Failure::usage("the status file is off ([report] status_file = \"\")")
        })?,
    };
    let view = status::read(&path).map_err(|e| {
        Failure::runtime(format!(
            "cannot read {}: {e} (is the daemon running? it writes the file after its first round)",
            path.display()
        ))
    })?;
    let alive = Path::new(&format!("/proc/{}", view.pid)).exists();
    if check {
        let age = (unix_now() - view.updated).max(0.0);
        return match status::liveness(alive, age) {
            Ok(()) => print(&format!(
                "ok: pid {} finished a round {age:.0} s ago\n",
                view.pid
            )),
            Err(why) => Err(Failure::runtime(format!("{}: {why}", path.display()))),
        };
    }
    if json {
        return print(&pretty(&view));
    }
    let mut text = status::render(&view, unix_now());
    if !alive {
        text.push_str("\n(the daemon that wrote this is no longer running)\n");
    }
    print(&text)
}
