//! One OOM domain's episode: calm → pressure → victims in flight → recovered, as a pure state
//! machine driven by what each round observed and the clock it was given.
//!
//! The rules are the kernel's, moved earlier:
//! - a victim is asked to exit (SIGTERM) whenever the projection leaves room for one more look
//!   before a SIGKILL must go out; a database backend that exits in 40 ms on SIGTERM finishes
//!   its work cleanly, where a SIGKILL makes PostgreSQL end every other session too. SIGKILL at
//!   once only when not even that look fits ([`room_for_term`]);
//! - while a victim only asked to exit is within its grace, nobody else is chosen; it is looked
//!   at at its own pace ([`term_look`]) and escalated to SIGKILL at the last safe moment: when
//!   the headroom left would be gone before the next look plus the time a SIGKILL takes to free
//!   memory, when the domain reaches its kill level, or when the grace ends;
//! - a SIGKILLed victim whose memory has been released (`process_mrelease` returned) no longer
//!   holds anything up: at the kill level the next victim is chosen at once, as the kernel's
//!   OOM killer skips a victim the OOM reaper has finished with (`MMF_OOM_SKIP`). A workload
//!   that respawns its workers must not outrun one kill at a time;
//! - a kill by the kernel's own OOM killer means oomward was late: the episode waits for that
//!   victim's memory to come back, at most [`Limits::kernel_wait`], once, and then acts on the
//!   next sample; later kernel kills never extend the wait;
//! - a domain where nothing can be done backs off instead of rescanning every few milliseconds,
//!   and is looked at again when it gets worse or when the back-off ends.

use std::time::{Duration, Instant};

use crate::decide::domain::ProcessKey;
use crate::decide::limits::{
    BACKOFF_LOOK, EXIT_POLL, Limits, RELEASE_POLL, RELEASE_SEEN, STEADY_LOOK, STILLNESS_LOOK,
    WORSE_BY,
};
use crate::decide::trigger::Level;
use crate::sys::Sig;

/// How soon a domain whose victim was only asked to exit is looked at again: every
/// [`EXIT_POLL`] while the projection is far, faster as it nears the [`Limits::kill_lead`]
/// (half of what is left before a SIGKILL would be due), never faster than [`RELEASE_POLL`].
pub fn term_look(eta: Option<Duration>, l: &Limits) -> Duration {
    match eta {
        None => EXIT_POLL,
        Some(e) => (e.saturating_sub(l.kill_lead) / 2).clamp(RELEASE_POLL, EXIT_POLL),
    }
}

/// Whether the projected time to exhaustion leaves room to ask a victim to exit: one more look
/// ([`term_look`]) and then, if it is still there, a SIGKILL in time ([`Limits::kill_lead`]).
/// No projection (not filling, or not known yet): room.
pub fn room_for_term(eta: Option<Duration>, l: &Limits) -> bool {
    eta.is_none_or(|e| e > term_look(Some(e), l) + l.kill_lead)
}

/// The headroom a projection leaves after the last safe moment for a SIGKILL, for the decision
/// line: what a victim asked to exit has, at the least, to do it in.
pub fn room(eta: Option<Duration>, l: &Limits) -> Option<Duration> {
    eta.map(|e| e.saturating_sub(l.kill_lead))
}

/// How long a decided kill may wait for the `pre_kill` hook before its signal goes out: not at
/// all for a SIGKILL (the kill level, keeping up, no room, a rescue: the memory is needed now),
/// and for a SIGTERM at most half the headroom its projection leaves ([`room`]), within the
/// configured `timeout`; without a projection (not filling), the whole `timeout`. A hook that
/// hangs can then cost a SIGTERM half its room, never the race: the other half is still there
/// for a look and a SIGKILL.
pub fn pre_kill_wait(
    signal: Sig,
    eta: Option<Duration>,
    l: &Limits,
    timeout: Duration,
) -> Duration {
    if signal == Sig::Kill {
        return Duration::ZERO;
    }
    room(eta, l).map_or(timeout, |r| (r / 2).min(timeout))
}

/// What a round observed of one domain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The worst level of the domain's scopes.
    pub level: Level,
    /// A watched v1 cgroup of the domain hangs in OOM (`under_oom`) and asks to be rescued.
    pub rescue: bool,
    /// The domain's available memory, bytes.
    pub available: u64,
    /// When available memory runs out at the fill rate observed so far; `None` when not filling.
    pub eta: Option<Duration>,
    /// The kernel's OOM kills in the domain so far (a count that only grows); `None` unknown.
    pub kernel_kills: Option<u64>,
    /// The domain thrashes (a stall term crossed): the reason for a level that the percent
    /// thresholds alone would not have raised.
    pub stall: Option<crate::decide::stall::Stall>,
    /// At its term level: whether it stands still (see [`crate::decide::trigger::stillness`]).
    /// Still: watched, not acted on; not known yet: one more look first.
    pub steady: crate::decide::trigger::Stillness,
    /// Bytes of available memory above its kill level, at the nearest member (`u64::MAX` when
    /// none has one): how soon a domain standing still is looked at again.
    pub to_kill: u64,
}

/// A victim in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Victim {
    /// Who.
    pub key: ProcessKey,
    /// When the first signal went out.
    pub signalled: Instant,
    /// When SIGKILL went out, if it has.
    pub killed: Option<Instant>,
    /// `process_mrelease` returned for it: its memory is back.
    pub released: bool,
    /// It (and everyone signalled with it) has exited.
    pub exited: bool,
    /// When processes of its executable have exited after SIGTERM before (see
    /// [`crate::decide::exits`]): the domain is looked at then, to see it go at once.
    pub expected_exit: Option<Duration>,
    /// What its exit should give back.
    pub expected: Expected,
}

/// What a victim's exit should give back: the domain's available memory when it was chosen,
/// and what its death was expected to free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// Available memory at the choice, bytes.
    pub available: u64,
    /// The expected gain, bytes.
    pub gain: u64,
}

impl Expected {
    /// The available memory that shows the exit's memory back: half its expected gain
    /// above where the domain was when it was chosen.
    fn back_at(self) -> u64 {
        self.available.saturating_add(self.gain / 2)
    }
}

/// Why a victim is escalated to SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Its grace ended.
    Grace,
    /// The domain reached its kill level.
    KillLevel,
    /// The projection leaves no room for another look before the limit.
    Eta,
}

impl Escalation {
    /// The word on the `escalate` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Escalation::Grace => "grace",
            Escalation::KillLevel => "kill_level",
            Escalation::Eta => "eta",
        }
    }
}

/// Why a new victim is to be chosen, and so with which signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// At the term level: ask it to exit.
    Term,
    /// At the kill level.
    Kill,
    /// At the kill level while earlier victims are still exiting (their memory released).
    KeepUp,
    /// Memory runs out before one more look and a SIGKILL's lead: no room to ask.
    Eta,
    /// A hung cgroup (`oom_kill_disable = 1`, `under_oom`): its tasks cannot run a handler.
    Rescue,
    /// At the term level because the domain thrashes (a stall term crossed): ask it to exit.
    Stall,
}

impl Reason {
    /// Every reason, for what is listed before it first happens (the metrics' label sets).
    pub const ALL: [Reason; 6] = [
        Reason::Term,
        Reason::Stall,
        Reason::Kill,
        Reason::KeepUp,
        Reason::Eta,
        Reason::Rescue,
    ];

    /// The signal this reason calls for.
    pub fn signal(self) -> Sig {
        match self {
            Reason::Term | Reason::Stall => Sig::Term,
            _ => Sig::Kill,
        }
    }

    /// The word on the decision line.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Term => "term_level",
            Reason::Kill => "kill_level",
            Reason::KeepUp => "keep_up",
            Reason::Eta => "eta",
            Reason::Rescue => "rescue",
            Reason::Stall => "stall",
        }
    }
}

/// The kernel's OOM killer acted in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelKills {
    /// Kills since the last round.
    pub new: u64,
    /// Kills in this episode (or, outside one, since the count was first read).
    pub in_episode: u64,
    /// The first report of this episode: say it; later ones are counted, not logged.
    pub first: bool,
    /// The episode now waits for the kernel's victim (at most [`Limits::kernel_wait`]).
    pub waiting: bool,
}

/// An episode that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// From the first sample in trouble to the last victim gone and the level back to ok.
    pub lasted: Duration,
    /// oomward's victims.
    pub kills: u32,
    /// The kernel's.
    pub kernel_kills: u64,
}

/// What to do about one domain now.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// An episode began with this sample.
    pub started: bool,
    /// Victims that have exited, with the time since their first signal.
    pub exited: Vec<(ProcessKey, Duration)>,
    /// Victims to SIGKILL now.
    pub escalate: Vec<(ProcessKey, Escalation)>,
    /// SIGKILLed victims still there after the stuck timeout: given up on.
    pub stuck: Vec<ProcessKey>,
    /// Choose a new victim, for this reason.
    pub choose: Option<Reason>,
    /// The kernel killed in the domain.
    pub kernel: Option<KernelKills>,
    /// The episode ended.
    pub recovered: Option<Summary>,
    /// The domain stands still at its term level and nothing is chosen: said once an episode.
    pub steady_first: bool,
    /// The next sample of this domain is wanted within this long (victims in flight, a wait
    /// or a back-off ending); `None`: the domain's thresholds and events decide.
    pub wake_in: Option<Duration>,
}

/// Why nothing could be done (each said once per episode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Futility {
    /// No eligible candidate's kill could take the domain out of its level.
    Futile,
    /// No eligible candidate at all.
    NoCandidate,
    /// The last kill gave back nothing, and whether the domain goes on filling is not known
    /// yet: never said.
    Waiting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    until: Instant,
    available: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    until: Instant,
    level: Level,
    available: u64,
}

/// One domain's episode state, kept across rounds.
#[derive(Debug, Clone, Default)]
pub struct Episode {
    started: Option<Instant>,
    level: Level,
    victims: Vec<Victim>,
    kills: u32,
    kernel_seen: Option<u64>,
    kernel_kills: u64,
    kernel_said: bool,
    hold: Option<Hold>,
    /// A wait for the kernel's victim was had since oomward last chose: no second one.
    hold_spent: bool,
    backoff: Option<Backoff>,
    said_futile: bool,
    said_no_candidate: bool,
    said_steady: bool,
    dry_run_decided: bool,
    last_exit: Option<Instant>,
    /// The projection at the last assessment, for the pace of the looks at a victim.
    eta: Option<Duration>,
    /// A victim has exited but its memory is not back yet (see [`Settle`]).
    settle: Option<Settle>,
}

/// A victim's exit is not the return of its memory: the task is a zombie once its own
/// reference to the address space is dropped, and whoever holds another one (a reader of its
/// `/proc/PID/stat` or `smaps` at that moment, a process sharing it through `CLONE_VM`) tears
/// it down when they let go, hundreds of milliseconds later for a large one. The kernel's OOM
/// killer waits for that (`MMF_OOM_SKIP`), not for the exit; so does oomward, at the term
/// level, for at most [`Limits::exit_settle`], while the domain is not getting worse: a second
/// victim chosen in that window dies for memory that was already on its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settle {
    until: Instant,
    /// The available memory that shows it back.
    back_at: u64,
    /// The available memory at the first sample after the exit.
    at_exit: u64,
}

impl Episode {
    /// The level at the last assessment.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Whether an episode is under way (trouble seen and not yet recovered).
    pub fn in_episode(&self) -> bool {
        self.started.is_some()
    }

    /// The victims in flight.
    pub fn victims(&self) -> &[Victim] {
        &self.victims
    }

    /// A victim in flight, to record what the round saw of it (exited, released).
    pub fn victim_mut(&mut self, key: ProcessKey) -> Option<&mut Victim> {
        self.victims.iter_mut().find(|v| v.key == key)
    }

    /// oomward's kills in this episode.
    pub fn kills(&self) -> u32 {
        self.kills
    }

    /// Records a victim signalled now (SIGKILL at once when `killed`); `expected_exit` is how
    /// long its executable took to exit after SIGTERM before, if known.
    pub fn signalled(
        &mut self,
        key: ProcessKey,
        now: Instant,
        killed: bool,
        expected_exit: Option<Duration>,
        expected: Expected,
    ) {
        self.victims.push(Victim {
            key,
            signalled: now,
            killed: killed.then_some(now),
            released: false,
            exited: false,
            expected_exit,
            expected,
        });
        self.kills += 1;
        self.hold_spent = false;
        self.backoff = None;
    }

    /// Whether the episode has stopped choosing for now: its dry-run decision was reported, or
    /// it is backing off. A choice that led to nothing otherwise (the victim vanished before
    /// its pidfd was opened) is tried again at the next sample.
    pub fn standing_by(&self) -> bool {
        self.dry_run_decided || self.backoff.is_some()
    }

    /// Records that a dry run reported its decision: one per episode.
    pub fn dry_run_decided(&mut self) {
        self.dry_run_decided = true;
    }

    /// Leaves the domain alone for a while because nothing could be done; true the first time
    /// in this episode for this reason (the caller says why then, and only then).
    ///
    /// Not while victims are in flight: their memory is on its way back, and a worker that was
    /// just restarted beside them (too small to be worth a kill yet) may be the next one, so
    /// the domain stays sampled every few milliseconds; false then, nothing to say.
    pub fn back_off(&mut self, why: Futility, obs: &Observation, now: Instant, l: &Limits) -> bool {
        if !self.victims.is_empty() {
            return false;
        }
        self.backoff = Some(Backoff {
            until: now + l.backoff,
            level: obs.level,
            available: obs.available,
        });
        let said = match why {
            Futility::Futile => &mut self.said_futile,
            Futility::NoCandidate => &mut self.said_no_candidate,
            Futility::Waiting => return false,
        };
        !std::mem::replace(said, true)
    }

    /// The round's step for this domain: follow the episode, the kernel's kills and the victims
    /// in flight, and say whether to choose a new victim.
    pub fn assess(&mut self, obs: &Observation, now: Instant, l: &Limits) -> Plan {
        let mut plan = Plan::default();
        self.eta = obs.eta;
        let hung = if obs.rescue { Level::Kill } else { obs.level };
        if hung > Level::Ok && self.started.is_none() {
            self.start(now);
            plan.started = true;
        }
        plan.kernel = self.follow_kernel(obs, now, l);
        self.follow_victims(obs, hung, now, l, &mut plan);
        // A hung cgroup is rescued again only once the last victim's exit had time to settle.
        let rescue_settled = self
            .last_exit
            .is_none_or(|t| now.duration_since(t) >= l.rescue_settle);
        let rescue = obs.rescue && rescue_settled;
        let level = if rescue { Level::Kill } else { obs.level };
        self.level = level;
        if level == Level::Ok && self.victims.is_empty() && !obs.rescue {
            plan.recovered = self.end(now);
            return plan;
        }
        plan.choose = self.may_choose(obs, level, rescue, now, l, &mut plan.wake_in);
        if plan.choose == Some(Reason::Term) {
            use crate::decide::trigger::{Stillness, steady_look};
            let look = match obs.steady {
                Stillness::Moving => None,
                // The kernel would never touch a cgroup that stands still: watched, not killed.
                Stillness::Still => {
                    plan.steady_first = !std::mem::replace(&mut self.said_steady, true);
                    Some(steady_look(obs.to_kill, STEADY_LOOK))
                }
                Stillness::Unknown => Some(steady_look(obs.to_kill, STILLNESS_LOOK)),
            };
            if let Some(look) = look {
                plan.choose = None;
                sooner(&mut plan.wake_in, look);
            }
        }
        if obs.rescue && !rescue_settled {
            let left = l.rescue_settle - now.duration_since(self.last_exit.unwrap_or(now));
            sooner(&mut plan.wake_in, left);
        }
        plan
    }

    fn start(&mut self, now: Instant) {
        *self = Episode {
            started: Some(now),
            victims: std::mem::take(&mut self.victims),
            ..self.between()
        };
    }

    /// The state between episodes: only the kernel's count as last seen and the last exit
    /// outlive one.
    fn between(&self) -> Episode {
        Episode {
            kernel_seen: self.kernel_seen,
            last_exit: self.last_exit,
            ..Episode::default()
        }
    }

    fn end(&mut self, now: Instant) -> Option<Summary> {
        let started = self.started?;
        let summary = Summary {
            lasted: now.duration_since(started),
            kills: self.kills,
            kernel_kills: self.kernel_kills,
        };
        *self = self.between();
        Some(summary)
    }

    /// Counts the kernel's kills; the first one since oomward last chose starts the one wait.
    fn follow_kernel(
        &mut self,
        obs: &Observation,
        now: Instant,
        l: &Limits,
    ) -> Option<KernelKills> {
        // A wait ends when the memory came back, the trouble is over, or its time is up.
        if let Some(h) = self.hold
            && (now >= h.until
                || obs.available >= h.available.saturating_add(RELEASE_SEEN)
                || obs.level == Level::Ok)
        {
            self.hold = None;
        }
        let n = obs.kernel_kills?;
        let seen = self.kernel_seen.replace(n);
        let new = n.saturating_sub(seen?);
        if new == 0 {
            return None;
        }
        self.kernel_kills += new;
        let waiting = self.started.is_some() && self.hold.is_none() && !self.hold_spent;
        if waiting {
            self.hold = Some(Hold {
                until: now + l.kernel_wait,
                available: obs.available,
            });
            self.hold_spent = true;
        }
        let first = !std::mem::replace(&mut self.kernel_said, true);
        Some(KernelKills {
            new,
            in_episode: self.kernel_kills,
            first,
            waiting,
        })
    }

    fn follow_victims(
        &mut self,
        obs: &Observation,
        level: Level,
        now: Instant,
        l: &Limits,
        plan: &mut Plan,
    ) {
        let mut i = 0;
        while i < self.victims.len() {
            let v = self.victims[i];
            if v.exited {
                plan.exited.push((v.key, now.duration_since(v.signalled)));
                self.last_exit = Some(now);
                let back_at = v.expected.back_at();
                if obs.available < back_at {
                    let s = self.settle.get_or_insert(Settle {
                        until: now + l.exit_settle,
                        back_at,
                        at_exit: obs.available,
                    });
                    s.back_at = s.back_at.max(back_at);
                }
                self.victims.remove(i);
                continue;
            }
            match v.killed {
                Some(at) if now.duration_since(at) >= l.stuck_timeout => {
                    plan.stuck.push(v.key);
                    self.victims.remove(i);
                    continue;
                }
                Some(_) => {}
                None => {
                    let elapsed = now.duration_since(v.signalled);
                    let why = if level == Level::Kill {
                        Some(Escalation::KillLevel)
                    } else if elapsed >= l.grace {
                        Some(Escalation::Grace)
                    } else if !room_for_term(obs.eta, l) {
                        Some(Escalation::Eta)
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        plan.escalate.push((v.key, why));
                        self.victims[i].killed = Some(now);
                    }
                }
            }
            i += 1;
        }
    }

    /// How soon the victims in flight want the domain sampled again: a SIGKILLed one whose
    /// memory is not yet released every [`RELEASE_POLL`], one asked to exit at the pace of
    /// [`term_look`] (and at the end of its grace, and when its executable's earlier exits
    /// say it will be gone). `None` without victims. The caller asks again after signalling a
    /// new victim, which the plan it acted on could not know of.
    pub fn victims_poll(&self, now: Instant, l: &Limits) -> Option<Duration> {
        self.victims
            .iter()
            .map(|v| match v.killed {
                None => {
                    let since = now.duration_since(v.signalled);
                    let expected = v
                        .expected_exit
                        .filter(|t| *t > since)
                        .map(|t| (t - since).max(RELEASE_POLL));
                    let look = term_look(self.eta, l).min(expected.unwrap_or(Duration::MAX));
                    look.min(l.grace.saturating_sub(since))
                }
                Some(_) if !v.released => RELEASE_POLL,
                Some(_) => EXIT_POLL,
            })
            .min()
    }

    /// Whether a new victim may be chosen now; otherwise when to look again.
    fn may_choose(
        &mut self,
        obs: &Observation,
        level: Level,
        rescue: bool,
        now: Instant,
        l: &Limits,
        wake_in: &mut Option<Duration>,
    ) -> Option<Reason> {
        *wake_in = self.victims_poll(now, l);
        let mut want = |d: Duration| sooner(wake_in, d);
        if level == Level::Ok || self.dry_run_decided {
            return None;
        }
        if let Some(b) = self.backoff {
            let worse = level > b.level || obs.available.saturating_add(WORSE_BY) <= b.available;
            if now < b.until && !worse {
                want(BACKOFF_LOOK.min(b.until - now));
                return None;
            }
            self.backoff = None;
        }
        if let Some(h) = self.hold {
            want(h.until.saturating_duration_since(now).max(RELEASE_POLL));
            return None;
        }
        if obs.rescue && !rescue {
            return None; // settling after the last rescue
        }
        if let Some(s) = self.settle {
            let over = now >= s.until
                || obs.available >= s.back_at
                || obs.available.saturating_add(WORSE_BY) <= s.at_exit
                || level == Level::Kill
                || rescue
                || !room_for_term(obs.eta, l);
            if !over {
                want(EXIT_POLL.min(s.until - now));
                return None;
            }
            self.settle = None;
        }
        let asked_only = self.victims.iter().any(|v| v.killed.is_none());
        let releasing = self
            .victims
            .iter()
            .any(|v| v.killed.is_some() && !v.released);
        if asked_only || releasing {
            return None;
        }
        let at_kill = level == Level::Kill;
        if !self.victims.is_empty() && !at_kill {
            // Every victim is SIGKILLed and released: its memory shows at the next sample.
            return None;
        }
        Some(if rescue {
            Reason::Rescue
        } else if at_kill && !self.victims.is_empty() {
            Reason::KeepUp
        } else if at_kill {
            Reason::Kill
        } else if !room_for_term(obs.eta, l) {
            Reason::Eta
        } else if obs.stall.is_some() {
            Reason::Stall
        } else {
            Reason::Term
        })
    }
}

/// `wake_in` made no later than `d`.
fn sooner(wake_in: &mut Option<Duration>, d: Duration) {
    *wake_in = Some(wake_in.map_or(d, |w| w.min(d)));
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_pre_kill_hook_never_costs_a_sigkill_and_a_sigterm_at_most_half_its_room() {
        let l = Limits::new(Duration::from_secs(5), Duration::from_secs(10));
        let ms = Duration::from_millis;
        let timeout = ms(300);
        // (signal, eta) -> wait
        let table = [
            (Sig::Kill, None, ms(0)),
            (Sig::Kill, Some(ms(5000)), ms(0)),
            // Not filling: the whole timeout.
            (Sig::Term, None, ms(300)),
            // Far from exhaustion: the timeout bounds it.
            (Sig::Term, Some(ms(2000)), ms(300)),
            // 220 ms to exhaustion, 20 ms of it the SIGKILL's lead: half of the 200 left.
            (Sig::Term, Some(ms(220)), ms(100)),
            // At the last safe moment: nothing.
            (Sig::Term, Some(ms(20)), ms(0)),
            (Sig::Term, Some(ms(5)), ms(0)),
        ];
        for (sig, eta, want) in table {
            assert_eq!(
                pre_kill_wait(sig, eta, &l, timeout),
                want,
                "{sig:?} {eta:?}"
            );
        }
    }

    use super::*;

    const MIB: u64 = 1 << 20;
    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Limits {
        Limits::new(Duration::from_secs(1), Duration::from_secs(10))
    }

    fn obs(level: Level, available_mib: u64) -> Observation {
        Observation {
            level,
            rescue: false,
            available: available_mib * MIB,
            eta: None,
            kernel_kills: Some(0),
            stall: None,
            steady: crate::decide::trigger::Stillness::Moving,
            to_kill: u64::MAX,
        }
    }

    #[test]
    fn a_domain_standing_still_is_watched_and_looked_at_sooner_near_its_kill_level() {
        use crate::decide::trigger::Stillness::{Moving, Still, Unknown};
        // (stillness, band above the kill level, MiB) -> (chosen, look in ms)
        let table = [
            (Still, None, Some(250)),
            (Still, Some(16), Some(125)),
            (Still, Some(6), Some(46)),
            (Unknown, None, Some(120)),
            (Unknown, Some(6), Some(46)),
            (Moving, Some(6), None),
        ];
        for (steady, band, look) in table {
            let mut e = Episode::default();
            let o = Observation {
                steady,
                to_kill: band.map_or(u64::MAX, |b| b * MIB),
                ..obs(Level::Term, 100)
            };
            let p = e.assess(&o, Instant::now(), &limits());
            let want_choice = look.is_none().then_some(Reason::Term);
            assert_eq!(p.choose, want_choice, "{steady:?} {band:?}");
            if let Some(ms) = look {
                assert_eq!(
                    p.wake_in.map(|w| w.as_millis()),
                    Some(ms),
                    "{steady:?} {band:?}"
                );
            }
        }
    }

    fn key(pid: i32) -> ProcessKey {
        ProcessKey { pid, starttime: 1 }
    }

    /// A driven clock: `at(ms)` is that long after the start.
    struct Clock(Instant);
    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    #[test]
    fn calm_pressure_in_flight_recovered() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        // Calm: nothing to do.
        let p = e.assess(&obs(Level::Ok, 100), c.at(0), &l);
        assert_eq!(p, Plan::default());
        // Pressure: choose, with SIGTERM.
        let p = e.assess(&obs(Level::Term, 20), c.at(10), &l);
        assert!(p.started);
        assert_eq!(p.choose, Some(Reason::Term));
        e.signalled(key(1), c.at(10), false, None, Expected::default());
        // Right after signalling, the caller learns when to look again.
        assert_eq!(e.victims_poll(c.at(10), &l), Some(EXIT_POLL));
        // In flight: wait for it, sampled every EXIT_POLL.
        let p = e.assess(&obs(Level::Term, 20), c.at(20), &l);
        assert_eq!((p.choose, p.wake_in), (None, Some(EXIT_POLL)));
        // It exits; the level is back to ok: recovered, with the summary.
        e.victim_mut(key(1)).unwrap().exited = true;
        let p = e.assess(&obs(Level::Ok, 120), c.at(50), &l);
        assert_eq!(p.exited, vec![(key(1), 40 * MS)]);
        assert_eq!(
            p.recovered,
            Some(Summary {
                lasted: 40 * MS,
                kills: 1,
                kernel_kills: 0
            })
        );
        assert!(!e.in_episode());
    }

    /// The desktop lab's case: the allocator (550 MiB expected) exits 21 ms after SIGTERM, but
    /// a reader of its `/proc/PID/stat` holds its address space and tears it down for a
    /// quarter of a second; a 20 MiB bystander must not be asked to exit meanwhile.
    #[test]
    fn an_exited_victims_memory_is_waited_for_at_the_term_level() {
        let l = limits();
        let gone = Expected {
            available: 12 * MIB,
            gain: 550 * MIB,
        };
        let ms = Duration::from_millis;
        // (level, available MiB at the next look, ms after the exit's sample, eta ms) -> choice
        type Row = (Level, u64, u64, Option<u64>, Option<Reason>);
        let table: &[Row] = &[
            // Not back yet, nothing worse: wait.
            (Level::Term, 14, 10, None, None),
            (Level::Term, 14, 490, None, None),
            (Level::Term, 14, 400, Some(2000), None),
            // Back (half the expected gain): nothing to choose; the level says.
            (Level::Term, 12 + 275, 100, None, Some(Reason::Term)),
            // The wait ends.
            (Level::Term, 14, 500, None, Some(Reason::Term)),
            // The domain is getting worse: something else fills it.
            (Level::Term, 9, 30, None, Some(Reason::Term)),
            // The kill level, or no room for a look: no waiting.
            (Level::Kill, 14, 30, None, Some(Reason::Kill)),
            (Level::Term, 14, 30, Some(15), Some(Reason::Eta)),
        ];
        for (row, &(level, mib, after, eta, want)) in table.iter().enumerate() {
            let c = Clock(Instant::now());
            let mut e = Episode::default();
            assert_eq!(
                e.assess(&obs(Level::Term, 12), c.at(0), &l).choose,
                Some(Reason::Term)
            );
            e.signalled(key(1), c.at(0), false, None, gone);
            e.victim_mut(key(1)).unwrap().exited = true;
            // The first sample after the exit: 14 MiB, the memory not back.
            let p = e.assess(&obs(Level::Term, 14), c.at(21), &l);
            assert_eq!(p.exited.len(), 1, "row {row}");
            assert_eq!((p.choose, p.wake_in), (None, Some(EXIT_POLL)), "row {row}");
            let o = Observation {
                eta: eta.map(ms),
                ..obs(level, mib)
            };
            let p = e.assess(&o, c.at(21 + after), &l);
            assert_eq!(p.choose, want, "row {row}");
            if want.is_none() {
                assert!(p.wake_in.is_some_and(|w| w <= EXIT_POLL), "row {row}");
            }
        }
        // An exit that gave back what it should: the next choice is not held.
        let c = Clock(Instant::now());
        let mut e = Episode::default();
        e.assess(&obs(Level::Term, 12), c.at(0), &l);
        e.signalled(key(1), c.at(0), false, None, gone);
        e.victim_mut(key(1)).unwrap().exited = true;
        let p = e.assess(&obs(Level::Term, 300), c.at(21), &l);
        assert_eq!(p.choose, Some(Reason::Term));
    }

    #[test]
    fn a_stall_is_the_reason_at_the_term_level_unless_memory_runs_out_first() {
        let l = limits();
        let stall = Some(crate::decide::stall::Stall {
            cause: crate::decide::stall::StallCause::PsiFull,
            value: 42.0,
        });
        let table = [
            // (level, eta ms, stall, expected)
            (Level::Term, None, stall, Some(Reason::Stall)),
            (Level::Term, Some(100), stall, Some(Reason::Stall)),
            (Level::Term, Some(10), stall, Some(Reason::Eta)),
            (Level::Kill, None, stall, Some(Reason::Kill)),
            (Level::Term, None, None, Some(Reason::Term)),
            (Level::Ok, None, stall, None),
        ];
        for (i, (level, eta, stall, want)) in table.into_iter().enumerate() {
            let mut e = Episode::default();
            let o = Observation {
                eta: eta.map(Duration::from_millis),
                stall,
                ..obs(level, 50)
            };
            assert_eq!(e.assess(&o, Instant::now(), &l).choose, want, "row {i}");
        }
        assert_eq!(Reason::Stall.signal(), Sig::Term);
    }

    #[test]
    fn escalation_table() {
        let l = limits();
        // (level, ms since SIGTERM, eta ms) -> escalation
        let table: &[(Level, u64, Option<u64>, Option<Escalation>)] = &[
            (Level::Term, 100, None, None),
            (Level::Term, 999, None, None),
            (Level::Term, 1000, None, Some(Escalation::Grace)),
            (Level::Kill, 1, None, Some(Escalation::KillLevel)),
            // SIGTERM until the last safe moment: one more look and a SIGKILL's lead.
            (Level::Term, 100, Some(950), None),
            (Level::Term, 100, Some(800), None),
            (Level::Term, 100, Some(30), None),
            (Level::Term, 100, Some(22), Some(Escalation::Eta)),
            (Level::Term, 100, Some(5), Some(Escalation::Eta)),
            (Level::Ok, 100, None, None),
            (Level::Ok, 1500, None, Some(Escalation::Grace)),
        ];
        for &(level, ms, eta, want) in table {
            let c = Clock(Instant::now());
            let mut e = Episode::default();
            e.assess(&obs(Level::Term, 20), c.at(0), &l);
            e.signalled(key(1), c.at(0), false, None, Expected::default());
            let mut o = obs(level, 20);
            o.eta = eta.map(Duration::from_millis);
            let p = e.assess(&o, c.at(ms), &l);
            assert_eq!(
                p.escalate.first().map(|(_, w)| *w),
                want,
                "{level:?} {ms} ms {eta:?}"
            );
        }
    }

    #[test]
    fn choice_table() {
        let l = limits();
        // (level, eta ms, rescue) -> reason of the first choice
        let table: &[(Level, Option<u64>, bool, Option<Reason>)] = &[
            (Level::Ok, None, false, None),
            (Level::Term, None, false, Some(Reason::Term)),
            (Level::Term, Some(5000), false, Some(Reason::Term)),
            // Room for a look and a SIGKILL's lead after it: ask first.
            (Level::Term, Some(300), false, Some(Reason::Term)),
            (Level::Term, Some(24), false, Some(Reason::Term)),
            // No room: SIGKILL at once.
            (Level::Term, Some(22), false, Some(Reason::Eta)),
            (Level::Term, Some(1), false, Some(Reason::Eta)),
            (Level::Kill, Some(300), false, Some(Reason::Kill)),
            (Level::Kill, None, false, Some(Reason::Kill)),
            (Level::Ok, None, true, Some(Reason::Rescue)),
            (Level::Term, None, true, Some(Reason::Rescue)),
        ];
        for &(level, eta, rescue, want) in table {
            let mut e = Episode::default();
            let mut o = obs(level, 20);
            o.eta = eta.map(Duration::from_millis);
            o.rescue = rescue;
            let p = e.assess(&o, Instant::now(), &l);
            assert_eq!(p.choose, want, "{level:?} {eta:?} {rescue}");
            assert_eq!(want.map(Reason::signal).is_some(), p.choose.is_some());
        }
        assert_eq!(Reason::Term.signal(), Sig::Term);
        assert_eq!(Reason::Eta.signal(), Sig::Kill);
    }

    #[test]
    fn the_look_at_a_victim_asked_to_exit_speeds_up_as_the_projection_nears() {
        let l = limits();
        // (eta ms) -> (look ms, room to ask)
        let table: &[(Option<u64>, u64, bool)] = &[
            (None, 10, true),
            (Some(5000), 10, true),
            (Some(40), 10, true),
            (Some(30), 5, true),
            (Some(24), 2, true),
            (Some(22), 2, false),
            (Some(20), 2, false),
            (Some(0), 2, false),
        ];
        for &(eta, look, room) in table {
            let eta = eta.map(Duration::from_millis);
            assert_eq!(term_look(eta, &l), Duration::from_millis(look), "{eta:?}");
            assert_eq!(room_for_term(eta, &l), room, "{eta:?}");
        }
    }

    #[test]
    fn a_victim_is_looked_at_when_its_executable_exited_before() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        e.assess(&obs(Level::Term, 20), c.at(0), &l);
        // Its executable exited 4 ms after SIGTERM before: looked at then, not at EXIT_POLL.
        e.signalled(key(1), c.at(0), false, Some(4 * MS), Expected::default());
        assert_eq!(e.victims_poll(c.at(0), &l), Some(4 * MS));
        // Past that time, the ordinary pace.
        assert_eq!(e.victims_poll(c.at(5), &l), Some(EXIT_POLL));
        // With the projection near, faster.
        let mut o = obs(Level::Term, 20);
        o.eta = Some(30 * MS);
        let p = e.assess(&o, c.at(6), &l);
        assert_eq!(p.wake_in, Some(5 * MS));
        assert!(p.escalate.is_empty());
    }

    #[test]
    fn at_the_kill_level_the_next_victim_follows_once_the_last_ones_memory_is_released() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        assert_eq!(
            e.assess(&obs(Level::Kill, 5), c.at(0), &l).choose,
            Some(Reason::Kill)
        );
        e.signalled(key(1), c.at(0), true, None, Expected::default());
        // SIGKILLed, memory not yet released: wait, sampling every RELEASE_POLL.
        let p = e.assess(&obs(Level::Kill, 5), c.at(2), &l);
        assert_eq!((p.choose, p.wake_in), (None, Some(RELEASE_POLL)));
        // Released, still at the kill level (a respawned worker filled it again): next one.
        e.victim_mut(key(1)).unwrap().released = true;
        let p = e.assess(&obs(Level::Kill, 5), c.at(4), &l);
        assert_eq!(p.choose, Some(Reason::KeepUp));
        e.signalled(key(2), c.at(4), true, None, Expected::default());
        assert_eq!(e.victims().len(), 2);
        // Released but only at the term level: the freed memory shows soon, wait for exits.
        e.victim_mut(key(2)).unwrap().released = true;
        let p = e.assess(&obs(Level::Term, 20), c.at(6), &l);
        assert_eq!(p.choose, None);
        // Both exit, still at the term level: a new SIGTERM victim.
        e.victim_mut(key(1)).unwrap().exited = true;
        e.victim_mut(key(2)).unwrap().exited = true;
        let p = e.assess(&obs(Level::Term, 20), c.at(8), &l);
        assert_eq!(p.exited.len(), 2);
        assert_eq!(p.choose, Some(Reason::Term));
        assert_eq!(e.kills(), 2);
    }

    #[test]
    fn a_victim_only_asked_to_exit_holds_up_the_next_choice_until_escalated() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        e.assess(&obs(Level::Term, 20), c.at(0), &l);
        e.signalled(key(1), c.at(0), false, None, Expected::default());
        // Kill level: escalate it, but do not choose another before its memory is released.
        let p = e.assess(&obs(Level::Kill, 5), c.at(30), &l);
        assert_eq!(p.escalate, vec![(key(1), Escalation::KillLevel)]);
        assert_eq!(p.choose, None);
        e.victim_mut(key(1)).unwrap().released = true;
        assert_eq!(
            e.assess(&obs(Level::Kill, 5), c.at(32), &l).choose,
            Some(Reason::KeepUp)
        );
    }

    #[test]
    fn a_kernel_kill_mid_episode_waits_for_its_victim_once_then_acts_on_the_next_sample() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        let at = |level, avail, kills| Observation {
            kernel_kills: Some(kills),
            ..obs(level, avail)
        };
        e.assess(&at(Level::Term, 20, 3), c.at(0), &l);
        e.signalled(key(1), c.at(0), false, None, Expected::default());
        // The kernel kills (its own victim) while ours is within its grace.
        let p = e.assess(&at(Level::Kill, 1, 4), c.at(100), &l);
        let k = p.kernel.unwrap();
        assert_eq!(
            (k.new, k.in_episode, k.first, k.waiting),
            (1, 1, true, true)
        );
        assert_eq!(p.escalate, vec![(key(1), Escalation::KillLevel)]);
        e.victim_mut(key(1)).unwrap().released = true;
        e.victim_mut(key(1)).unwrap().exited = true;
        // Still at the kill level, the kernel's victim not yet gone: wait.
        let p = e.assess(&at(Level::Kill, 1, 4), c.at(110), &l);
        assert_eq!(p.choose, None);
        assert!(p.wake_in.is_some_and(|w| w <= l.kernel_wait));
        // More kernel kills do not extend the wait (counted, not said again).
        let p = e.assess(&at(Level::Kill, 1, 6), c.at(120), &l);
        let k = p.kernel.unwrap();
        assert_eq!(
            (k.new, k.in_episode, k.first, k.waiting),
            (2, 3, false, false)
        );
        // Its memory comes back (available rises) 30 ms after the kill; still at the term
        // level: oomward acts on that very sample, well within 50 ms of the victim's exit.
        let p = e.assess(&at(Level::Term, 12, 6), c.at(130), &l);
        assert_eq!(p.choose, Some(Reason::Term));
    }

    #[test]
    fn kernel_kills_that_never_stop_cannot_keep_oomward_waiting() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        let mut t = 0;
        let mut kills = 0;
        let mut chosen_at = Vec::new();
        // A kill every 20 ms, memory never seen coming back, for two seconds.
        while t < 2000 {
            kills += 1;
            let o = Observation {
                kernel_kills: Some(kills),
                ..obs(Level::Kill, 1)
            };
            let p = e.assess(&o, c.at(t), &l);
            if p.choose.is_some() {
                chosen_at.push(t);
                e.signalled(key(t as i32), c.at(t), true, None, Expected::default());
                let v = e.victim_mut(key(t as i32)).unwrap();
                v.released = true;
                v.exited = true;
            }
            t += 20;
        }
        // The first choice comes at most kernel_wait after the first kill, and then at every
        // sample after a wait (one wait per choice).
        assert!(
            chosen_at[0] <= l.kernel_wait.as_millis() as u64 + 20,
            "{chosen_at:?}"
        );
        assert!(chosen_at.len() >= 15, "{chosen_at:?}");
    }

    #[test]
    fn a_kill_outside_an_episode_is_counted_but_starts_no_wait() {
        let l = limits();
        let mut e = Episode::default();
        e.assess(&obs(Level::Ok, 100), Instant::now(), &l);
        let o = Observation {
            kernel_kills: Some(1),
            ..obs(Level::Ok, 100)
        };
        let k = e.assess(&o, Instant::now(), &l).kernel.unwrap();
        assert!(k.first && !k.waiting);
    }

    #[test]
    fn nothing_to_do_backs_off_says_so_once_and_looks_again_when_worse() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        let o = obs(Level::Term, 20);
        assert_eq!(e.assess(&o, c.at(0), &l).choose, Some(Reason::Term));
        assert!(e.back_off(Futility::Futile, &o, c.at(0), &l));
        // Within the back-off: no choice, but looked at every BACKOFF_LOOK (a grower may start).
        let p = e.assess(&o, c.at(100), &l);
        assert_eq!((p.choose, p.wake_in), (None, Some(BACKOFF_LOOK)));
        let p = e.assess(&o, c.at(450), &l);
        assert_eq!((p.choose, p.wake_in), (None, Some(50 * MS)));
        // It ends: look again, and say nothing new.
        assert_eq!(e.assess(&o, c.at(500), &l).choose, Some(Reason::Term));
        assert!(!e.back_off(Futility::Futile, &o, c.at(500), &l));
        // A different reason is said once too.
        assert!(e.back_off(Futility::NoCandidate, &o, c.at(500), &l));
        // Worse: the kill level, or 4 MiB less available, ends it early.
        assert_eq!(
            e.assess(&obs(Level::Kill, 19), c.at(510), &l).choose,
            Some(Reason::Kill)
        );
        e.back_off(Futility::Futile, &obs(Level::Term, 20), c.at(520), &l);
        assert_eq!(e.assess(&obs(Level::Term, 17), c.at(530), &l).choose, None);
        assert_eq!(
            e.assess(&obs(Level::Term, 16), c.at(540), &l).choose,
            Some(Reason::Term)
        );
        // At the kill level too.
        e.back_off(Futility::Futile, &obs(Level::Kill, 2), c.at(550), &l);
        let p = e.assess(&obs(Level::Kill, 2), c.at(560), &l);
        assert_eq!((p.choose, p.wake_in), (None, Some(BACKOFF_LOOK)));
        // Not while a victim is in flight: it goes on being followed.
        let mut f = Episode::default();
        f.assess(&obs(Level::Kill, 2), c.at(0), &l);
        f.signalled(key(9), c.at(0), true, None, Expected::default());
        assert!(!f.back_off(Futility::Futile, &obs(Level::Kill, 2), c.at(0), &l));
        assert_eq!(
            f.assess(&obs(Level::Kill, 2), c.at(2), &l).wake_in,
            Some(RELEASE_POLL)
        );
        // A new episode says it again.
        e.assess(&obs(Level::Ok, 100), c.at(600), &l);
        e.assess(&o, c.at(700), &l);
        assert!(e.back_off(Futility::Futile, &o, c.at(700), &l));
    }

    #[test]
    fn a_stuck_victim_is_given_up_and_the_next_one_chosen() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        e.assess(&obs(Level::Kill, 5), c.at(0), &l);
        e.signalled(key(1), c.at(0), true, None, Expected::default());
        assert_eq!(e.assess(&obs(Level::Kill, 5), c.at(9_999), &l).choose, None);
        let p = e.assess(&obs(Level::Kill, 5), c.at(10_000), &l);
        assert_eq!(p.stuck, vec![key(1)]);
        assert_eq!(p.choose, Some(Reason::Kill));
    }

    #[test]
    fn a_rescue_waits_for_the_hung_cgroup_to_settle_after_an_exit() {
        let c = Clock(Instant::now());
        let l = limits();
        let mut e = Episode::default();
        let hung = Observation {
            rescue: true,
            ..obs(Level::Kill, 0)
        };
        assert_eq!(e.assess(&hung, c.at(0), &l).choose, Some(Reason::Rescue));
        e.signalled(key(1), c.at(0), true, None, Expected::default());
        e.victim_mut(key(1)).unwrap().exited = true;
        let p = e.assess(&hung, c.at(20), &l);
        assert_eq!(p.choose, None);
        assert_eq!(p.wake_in, Some(100 * MS));
        assert_eq!(e.assess(&hung, c.at(120), &l).choose, Some(Reason::Rescue));
    }

    #[test]
    fn a_dry_run_decides_once_per_episode() {
        let l = limits();
        let mut e = Episode::default();
        let now = Instant::now();
        assert!(e.assess(&obs(Level::Term, 20), now, &l).choose.is_some());
        e.dry_run_decided();
        assert!(e.assess(&obs(Level::Kill, 2), now, &l).choose.is_none());
        e.assess(&obs(Level::Ok, 200), now, &l);
        assert!(e.assess(&obs(Level::Term, 20), now, &l).choose.is_some());
    }
}
