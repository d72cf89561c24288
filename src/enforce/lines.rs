//! The decision line: everything a reader needs to check a kill, in one `key=value` line.

use crate::decide::episode::Observation;
use crate::rank::Candidate;
use crate::report::Line;
use crate::sys::Sig;

use super::Wake;
use super::act::Pick;
use super::domains::Figures;

/// The line for a decision about `c` in `scope` of `domain`.
#[allow(clippy::too_many_arguments)]
pub(super) fn decision_line(
    message: &str,
    event: &str,
    scope: &str,
    domain: &str,
    obs: &Observation,
    fig: &Figures,
    pick: &Pick<'_, '_>,
    wake: Wake,
    c: &Candidate<'_>,
    sig: Sig,
) -> Line {
    let p = c.process;
    Line::new(message)
        .kv("event", event)
        .kv("scope", scope)
        .kv("domain", domain)
        .kv("level", obs.level.as_str())
        .kv("reason", pick.reason.as_str())
        .kv("available", obs.available)
        .kv("limit", fig.limit)
        .kv("need", fig.need)
        .kv("gain", pick.gain)
        .kv("enough", pick.enough)
        .kv(
            "eta_ms",
            obs.eta
                .map_or_else(|| "-".to_string(), |e| e.as_millis().to_string()),
        )
        .kv("wake", wake.as_str())
        .kv("pid", p.pid)
        .kv("comm", &p.comm)
        .kv("exe", p.exe.as_deref().unwrap_or("?"))
        .kv("uid", p.uid.map_or(-1, i64::from))
        .kv("cgroup", p.cgroup.as_deref().unwrap_or("-"))
        .kv("rss_pages", c.points.rss)
        .kv("rss_anon_pages", p.rss_anon_pages)
        .kv("rss_shmem_pages", p.rss_shmem_pages)
        .kv("swap_pages", c.points.swap)
        .kv("pgtables_pages", c.points.pgtables)
        .kv("oom_score_adj", p.oom_score_adj)
        .kv("policy_adjust", c.verdict.adjust)
        .kv("total_pages", fig.totalpages)
        .kv("fill_rate", fig.fill_rate as u64)
        .kv("badness", c.badness.unwrap_or(0))
        .kv("rank_score", c.rank_score.unwrap_or(0))
        .kv("signal", sig.name())
}
