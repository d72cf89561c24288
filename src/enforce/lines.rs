//! The decision line: everything a reader needs to check a kill, in one `key=value` line.

use crate::decide::episode::Reason;
use crate::probe::kube::KubeIdentity;
use crate::rank::Candidate;
use crate::report::{Line, Severity};
use crate::sys::Sig;

use super::moment::{Moment, Pick};

/// How serious a decision line is: a process asked to stop (SIGTERM) is a warning, one killed
/// outright (SIGKILL) or a signal that could not be sent an error, so that `journalctl -p
/// warning` lists every kill and `-p err` every SIGKILL.
pub(super) fn decision_severity(sent: bool, sig: Sig) -> Severity {
    match (sent, sig) {
        (true, Sig::Term) => Severity::Warning,
        _ => Severity::Error,
    }
}

/// The line for the decision `pick` about a process of `scope` in `domain`.
pub(super) fn decision_line(
    message: &str,
    scope: &str,
    domain: &str,
    m: &Moment<'_>,
    pick: &Pick<'_, '_>,
) -> Line {
    let (obs, fig) = (m.obs, m.fig);
    let event = match pick.reason {
        Reason::Rescue => "rescue",
        Reason::Term | Reason::Stall => "term",
        _ => "kill",
    };
    let line = Line::new(message)
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
        .kv_if(
            pick.instead_of.is_some(),
            "instead_of",
            pick.instead_of.unwrap_or(0),
        )
        .kv_opt("eta_ms", obs.eta.map(|e| e.as_millis()))
        .kv_if(
            obs.stall.is_some(),
            "stall",
            obs.stall.map_or_else(String::new, |s| {
                format!("{}:{:.1}", s.cause.as_str(), s.value)
            }),
        )
        .kv("wake", m.wake.as_str());
    victim_fields(line, pick.victim)
        .kv("total_pages", fig.totalpages)
        .kv("fill_rate", fig.fill_rate as u64)
        .kv("badness", pick.victim.badness.unwrap_or(0))
        .kv("rank_score", pick.victim.rank_score.unwrap_or(0))
        .kv("signal", pick.reason.signal().name())
        .kv("signal_rule", signal_rule(pick.reason, obs.eta.is_some()))
        .kv_opt("room_ms", pick.room.map(|r| r.as_millis()))
        .kv_opt("term_exit_ms", pick.expected_exit.map(|r| r.as_millis()))
}

/// Who the victim is (with its pod when it runs in one), and what it holds as the kernel's
/// badness weighs it, so that the line can be checked against `/proc` and the kernel's choice.
fn victim_fields(line: Line, c: &Candidate<'_>) -> Line {
    let p = c.process;
    let line = line
        .kv("pid", p.pid)
        .kv("comm", &p.comm)
        .kv("exe", p.exe.as_deref().unwrap_or("?"))
        .kv("uid", p.uid.map_or(-1, i64::from))
        .kv("cgroup", p.cgroup.as_deref().unwrap_or("-"));
    pod_fields(line, p.kube.as_ref())
        .kv("rss_pages", c.points.rss)
        .kv("rss_anon_pages", p.rss_anon_pages)
        .kv("rss_shmem_pages", p.rss_shmem_pages)
        .kv("swap_pages", c.points.swap)
        .kv("pgtables_pages", c.points.pgtables)
        .kv("oom_score_adj", p.oom_score_adj)
        .kv("policy_adjust", c.verdict.adjust)
}

/// The pod a victim runs in, when it does: what of its identity is known, and its QoS class.
fn pod_fields(line: Line, kube: Option<&KubeIdentity>) -> Line {
    let Some(k) = kube else {
        return line;
    };
    line.kv("pod_uid", k.pod_uid.as_str())
        .kv_if(
            k.namespace.is_some(),
            "namespace",
            k.namespace.as_deref().unwrap_or(""),
        )
        .kv_if(k.pod.is_some(), "pod", k.pod.as_deref().unwrap_or(""))
        .kv_if(
            k.container.is_some(),
            "container",
            k.container.as_deref().unwrap_or(""),
        )
        .kv("qos", k.qos.as_str())
}

/// Which rule chose the signal: the level (`term_level`, `kill_level`), a projection that left
/// room to ask first (`room`) or none (`no_room`), the victims' release at the kill level
/// (`keep_up`), a hung cgroup (`rescue`), or a stall (`stall`).
fn signal_rule(reason: Reason, projected: bool) -> &'static str {
    match reason {
        Reason::Term | Reason::Stall if projected => "room",
        Reason::Term => "term_level",
        Reason::Stall => "stall",
        Reason::Eta => "no_room",
        Reason::Kill => "kill_level",
        Reason::KeepUp => "keep_up",
        Reason::Rescue => "rescue",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kill_is_a_warning_and_a_sigkill_an_error() {
        for (sent, sig, severity) in [
            (true, Sig::Term, Severity::Warning),
            (true, Sig::Kill, Severity::Error),
            (false, Sig::Term, Severity::Error),
            (false, Sig::Kill, Severity::Error),
        ] {
            assert_eq!(decision_severity(sent, sig), severity, "{sent} {sig:?}");
        }
    }
}
