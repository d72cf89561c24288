//! `oomward rank`: the candidates of a scope, most likely victim first, with every term of the
//! score, as a table for people or JSON for programs (fields per DESIGN §3a).

use std::io::Write;

use oomward::report::{escape_controls, or};
use serde_json::json;

use oomward::config::ConfigOrigin;
use oomward::probe::Host;
use oomward::probe::process::scan;
use oomward::rank::{Candidate, rank as rank_candidates};
use oomward::scope::{ScopeSpec, ScopeView};

use crate::Failure;

/// Runs `oomward rank`.
pub fn rank(
    origin: &ConfigOrigin,
    scope: &str,
    json: bool,
    top: Option<usize>,
) -> Result<(), Failure> {
    let config = origin.load().map_err(Failure::usage)?;
    let spec = if scope == "system" {
        ScopeSpec::System
    } else if scope.starts_with('/') {
        ScopeSpec::Cgroup(scope.trim_end_matches('/').to_string()).normalized()
    } else {
        return Err(Failure::usage(format!(
            "--scope {scope:?}: expected `system` or a cgroup path starting with /"
        )));
    };
    let host = Host::discover(std::path::Path::new("/")).map_err(Failure::runtime)?;
    let view = ScopeView::read(&host, &spec).map_err(|e| match e {
        oomward::scope::ScopeError::Probe(p) => Failure::runtime(p),
        other => Failure::usage(other),
    })?;
    let within = match &spec {
        ScopeSpec::System => None,
        ScopeSpec::Cgroup(p) => Some(p.as_str()),
    };
    let scan = scan(&host, within, true).map_err(Failure::runtime)?;
    let self_exe = std::fs::read_link("/proc/self/exe")
        .ok()
        .map(|p| oomward::probe::text_of(p.as_os_str().as_encoded_bytes()));
    let mut policy = config.policy(std::process::id() as i32, self_exe);
    policy.first_user_uid = host.first_user_uid;
    let mut ranked = rank_candidates(&scan.processes, &policy, view.totals);
    if let Some(n) = top {
        ranked.truncate(n);
    }
    let mut out = std::io::stdout().lock();
    let written = if json {
        write_json(&mut out, &ranked, &view)
    } else {
        write_table(&mut out, &ranked, &view, host.page_size)
    };
    super::unless_closed(written).map_err(Failure::runtime)?;
    if scan.exe_hidden > 0 {
        let hint = if oomward::sys::is_root() {
            ""
        } else {
            " (run as root to see more)"
        };
        eprintln!(
            "note: the executable of {} process(es) could not be read (permission denied); exe rules and the built-in set cannot match them{hint}",
            scan.exe_hidden
        );
    }
    for e in &scan.unreadable {
        eprintln!("note: skipped: {e}");
    }
    Ok(())
}

fn write_json(
    out: &mut impl Write,
    ranked: &[Candidate<'_>],
    view: &ScopeView,
) -> std::io::Result<()> {
    let rows: Vec<serde_json::Value> = ranked
        .iter()
        .map(|c| {
            let p = c.process;
            let k = p.kube.as_ref();
            json!({
                "pid": p.pid,
                "comm": p.comm,
                "exe": p.exe,
                "cmdline": p.cmdline,
                "uid": p.uid,
                "cgroup": p.cgroup,
                "state": p.state.to_string(),
                "starttime": p.starttime,
                "rss_pages": c.points.rss,
                "swap_pages": c.points.swap,
                "pgtables_pages": c.points.pgtables,
                "oom_score_adj": p.oom_score_adj,
                "total_pages": view.totals.scope,
                "badness": c.badness,
                "oom_score": c.oom_score,
                "policy_adjust": c.verdict.adjust,
                "effective_adj": c.effective_adj,
                "protected": !c.is_eligible(),
                "protected_by": protected_by(c),
                "rank_score": c.rank_score,
                "pod_uid": k.map(|k| &k.pod_uid),
                "pod": k.and_then(|k| k.pod.as_ref()),
                "namespace": k.and_then(|k| k.namespace.as_ref()),
                "container": k.and_then(|k| k.container.as_ref()),
                "container_id": k.and_then(|k| k.container_id.as_ref()),
                "qos": k.map(|k| k.qos.as_str()),
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &rows)?;
    writeln!(out)
}

/// What keeps a candidate from being chosen: the policy's protection, else the kernel's.
fn protected_by(c: &Candidate<'_>) -> Option<String> {
    let kernel = || c.unkillable.map(|u| format!("kernel:{}", u.as_str()));
    c.verdict.protected.map(|p| p.to_string()).or_else(kernel)
}

fn mib(pages: u64, page: u64) -> String {
    format!("{:.1}", (pages * page) as f64 / (1u64 << 20) as f64)
}

fn write_table(
    out: &mut impl Write,
    ranked: &[Candidate<'_>],
    view: &ScopeView,
    page: u64,
) -> std::io::Result<()> {
    let t = view.totals.scope;
    match (&view.spec, &view.domain) {
        (ScopeSpec::System, _) => writeln!(
            out,
            "scope system: T = {t} pages ({} MiB of RAM + swap)",
            mib(t, page)
        )?,
        (ScopeSpec::Cgroup(p), Some(d)) => writeln!(
            out,
            "scope {p}: OOM domain {d}, T = {t} pages ({} MiB: limit + usable swap); oom_score column uses the system T = {}",
            mib(t, page),
            view.totals.system
        )?,
        (ScopeSpec::Cgroup(p), None) => writeln!(
            out,
            "scope {p}: no limit on its path, an OOM here would be system-wide; T = {t} pages"
        )?,
    }
    #[rustfmt::skip]
    writeln!(
        out,
        "{:>7} {:<15} {:>6} {:>9} {:>8} {:>6} {:>5} {:>5} {:>10} {:>5} {:>10}  {:<16} CGROUP / EXE",
        "PID", "COMM", "UID", "RSS_MiB", "SWAP_MiB", "PTE", "ADJ", "POL", "BADNESS", "SCORE", "RANK", "PROTECTED"
    )?;
    for c in ranked {
        let p = c.process;
        let protected = protected_by(c).unwrap_or_else(|| "-".into());
        #[rustfmt::skip]
        writeln!(
            out,
            "{:>7} {:<15} {:>6} {:>9} {:>8} {:>6} {:>5} {:>+5} {:>10} {:>5} {:>10}  {:<16} {} {}",
            p.pid, escape_controls(&p.comm), or(p.uid, "?"),
            mib(c.points.rss, page), mib(c.points.swap, page), c.points.pgtables,
            p.oom_score_adj, c.verdict.adjust, or(c.badness, "-"), c.oom_score, or(c.rank_score, "-"),
            protected, escape_controls(p.cgroup.as_deref().unwrap_or("-")),
            escape_controls(p.exe.as_deref().unwrap_or("?")),
        )?;
    }
    Ok(())
}
