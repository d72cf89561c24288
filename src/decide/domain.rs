//! Who is who: typed identities for scopes, processes and OOM domains, and how the scopes of one
//! domain add up to what the domain's episode sees.
//!
//! The kernel decides per *OOM domain*: the whole machine, or the memory cgroup whose limit is
//! hit (`mem_cgroup_oom`), and its victim is the worst process of that whole domain. oomward
//! groups its watched scopes the same way: every cgroup scope belongs to the domain of the limit
//! that binds it (the cgroup on its path with the least headroom), so siblings under one tight
//! parent share one episode and one ranking, while unrelated cgroups never wait on each other.

use std::fmt;

use crate::decide::trigger::{Level, Stillness};
use crate::probe::process::ProcessSnapshot;

/// A watched scope: the system, or one watched cgroup, numbered when it is first watched (a
/// number is never given to another cgroup, so a removed and re-created cgroup is a new scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeId {
    /// The whole machine.
    System,
    /// A watched cgroup.
    Cgroup(u32),
}

/// One process for good: a pid can be reused, a pid with its start time cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessKey {
    /// Thread-group id.
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub starttime: u64,
}

impl ProcessKey {
    /// The key of a snapshot.
    pub fn of(p: &ProcessSnapshot) -> Self {
        ProcessKey {
            pid: p.pid,
            starttime: p.starttime,
        }
    }
}

/// An OOM domain: the unit the kernel's OOM killer decides in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DomainKey {
    /// The whole machine (RAM + swap).
    System,
    /// The memory cgroup whose limit binds, by its path in the memory hierarchy.
    Memcg(String),
}

impl DomainKey {
    /// `system` or the cgroup path, as logs write it.
    pub fn name(&self) -> &str {
        match self {
            DomainKey::System => "system",
            DomainKey::Memcg(p) => p,
        }
    }
}

impl fmt::Display for DomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one scope contributes to its domain in one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member {
    /// Its level from its own thresholds.
    pub level: Level,
    /// Bytes the domain must gain to leave that level (0 at `ok`).
    pub need: u64,
    /// A v1 cgroup hung in OOM with `oom_kill_disable = 1` that asks to be rescued.
    pub rescue: bool,
    /// At its term level: whether it stands still (see [`crate::decide::trigger::stillness`]).
    pub steady: Stillness,
    /// Bytes of available memory above its kill level, which pace a still domain's looks
    /// (`u64::MAX` when it has none, or when the kernel wakes the loop as it grows).
    pub to_kill: u64,
}

impl Member {
    /// A member at `level` needing `need` bytes that neither hangs nor stands still: the
    /// system scope always (earlyoom's rule: MemAvailable alone decides), a cgroup before its
    /// first sample.
    pub fn moving(level: Level, need: u64) -> Self {
        Member {
            level,
            need,
            rescue: false,
            steady: Stillness::Moving,
            to_kill: u64::MAX,
        }
    }
}

impl Default for Member {
    fn default() -> Self {
        Member::moving(Level::Ok, 0)
    }
}

/// The scopes of a domain taken together: the worst level, the largest need, any rescue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    /// The worst level of any member.
    pub level: Level,
    /// What the domain must gain to leave the worst member's level.
    pub need: u64,
    /// Some member hangs in OOM.
    pub rescue: bool,
    /// At the domain's term level: still when every member there is; moving when any is; else
    /// not known yet. Moving at any other level.
    pub steady: Stillness,
    /// The least of the members' bytes above their kill levels.
    pub to_kill: u64,
}

impl Default for Combined {
    fn default() -> Self {
        Combined {
            level: Level::Ok,
            need: 0,
            rescue: false,
            steady: Stillness::Moving,
            to_kill: u64::MAX,
        }
    }
}

/// Combines the members of one domain.
pub fn combine(members: impl IntoIterator<Item = Member>) -> Combined {
    let c = members
        .into_iter()
        .fold(Combined::default(), |acc, m| Combined {
            to_kill: acc.to_kill.min(m.to_kill),
            level: acc.level.max(m.level),
            need: if m.level >= acc.level && m.level > Level::Ok {
                if m.level > acc.level {
                    m.need
                } else {
                    acc.need.max(m.need)
                }
            } else {
                acc.need
            },
            rescue: acc.rescue || m.rescue,
            // Of the members at the worst level: all of them.
            steady: match m.level.cmp(&acc.level) {
                std::cmp::Ordering::Greater => m.steady,
                std::cmp::Ordering::Equal => match (acc.steady, m.steady) {
                    (Stillness::Moving, _) | (_, Stillness::Moving) => Stillness::Moving,
                    (Stillness::Unknown, _) | (_, Stillness::Unknown) => Stillness::Unknown,
                    _ => Stillness::Still,
                },
                std::cmp::Ordering::Less => acc.steady,
            },
        });
    Combined {
        steady: if c.level == Level::Term {
            c.steady
        } else {
            Stillness::Moving
        },
        ..c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn m(level: Level, need_mib: u64, rescue: bool) -> Member {
        Member {
            rescue,
            ..Member::moving(level, need_mib * MIB)
        }
    }

    #[test]
    fn a_domain_is_as_bad_as_its_worst_member_and_needs_what_that_level_needs() {
        let table: &[(&[Member], Level, u64, bool)] = &[
            (&[], Level::Ok, 0, false),
            (&[m(Level::Ok, 0, false)], Level::Ok, 0, false),
            (
                &[m(Level::Term, 5, false), m(Level::Ok, 0, false)],
                Level::Term,
                5,
                false,
            ),
            // The worst level decides the need, not the largest number.
            (
                &[m(Level::Term, 30, false), m(Level::Kill, 4, false)],
                Level::Kill,
                4,
                false,
            ),
            (
                &[m(Level::Kill, 4, false), m(Level::Term, 30, false)],
                Level::Kill,
                4,
                false,
            ),
            // Two members at one level (different thresholds): the larger need.
            (
                &[m(Level::Term, 3, false), m(Level::Term, 9, true)],
                Level::Term,
                9,
                true,
            ),
        ];
        let near = |to_kill_mib: u64| Member {
            to_kill: to_kill_mib * MIB,
            ..m(Level::Term, 1, false)
        };
        assert_eq!(combine([near(9), near(3), near(7)]).to_kill, 3 * MIB);
        assert_eq!(combine([]).to_kill, u64::MAX);
        for (members, level, need, rescue) in table {
            let c = combine(members.iter().copied());
            assert_eq!(
                (c.level, c.need, c.rescue),
                (*level, need * MIB, *rescue),
                "{members:?}"
            );
        }
    }

    #[test]
    fn a_domain_stands_still_when_every_member_at_its_term_level_does() {
        use Stillness::*;
        let at = |level, steady| Member {
            steady,
            ..m(level, 1, false)
        };
        let table: &[(&[Member], Stillness)] = &[
            (&[at(Level::Term, Still)], Still),
            (&[at(Level::Term, Still), at(Level::Ok, Moving)], Still),
            (&[at(Level::Term, Still), at(Level::Term, Moving)], Moving),
            (&[at(Level::Term, Moving), at(Level::Term, Still)], Moving),
            (&[at(Level::Term, Still), at(Level::Term, Unknown)], Unknown),
            (&[at(Level::Term, Unknown), at(Level::Term, Moving)], Moving),
            // A member at the kill level: the domain is not at its term level.
            (&[at(Level::Term, Still), at(Level::Kill, Still)], Moving),
            (&[at(Level::Ok, Still)], Moving),
        ];
        for (members, want) in table {
            assert_eq!(
                combine(members.iter().copied()).steady,
                *want,
                "{members:?}"
            );
        }
    }

    #[test]
    fn keys_name_themselves_as_logs_write_them() {
        assert_eq!(DomainKey::System.to_string(), "system");
        assert_eq!(DomainKey::Memcg("/p".into()).name(), "/p");
        let p = ProcessSnapshot {
            pid: 7,
            starttime: 99,
            ..ProcessSnapshot::default()
        };
        assert_eq!(
            ProcessKey::of(&p),
            ProcessKey {
                pid: 7,
                starttime: 99
            }
        );
    }
}
