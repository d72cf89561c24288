//! What a kill would free, and whether any kill can help.
//!
//! The kernel kills at its limit whatever the victim frees. oomward acts earlier, when it still
//! has the choice not to: a kill that frees nothing the domain is short of (the charge is tmpfs
//! or shared memory, or lies in a part of the domain no watched scope covers) only costs a
//! process. So before signalling, each candidate's *expected gain* is estimated: its private
//! anonymous memory and its swap (shared memory and tmpfs pages stay charged after it dies).
//! The order of candidates stays the kernel's badness with the policy on top; the gain only
//! (a) rules out candidates below `kill.min_gain`, (b) prefers, in that order, the first whose
//! kill alone frees what the domain needs, and (c) declares the domain *futile* when even every
//! remaining candidate together could not free it.
//!
//! For the finalists the estimate is exact where `status` cannot be (see
//! [`crate::probe::smaps`]): copy-on-write pages still shared with a parent or child are not
//! gain, and shared memory that dies with its last holder (a shared anonymous mapping, a memfd)
//! is gain when no other process maps it or holds it open. And among candidates of near-equal
//! badness, a forked child whose kill frees what is needed goes before its parent (the save
//! before the data: [`forked_child_instead`]).

use super::limits::{BARREN_FALL, FILLING, FRUITLESS_WATCH, NEAR_EQUAL_PER_MILLE};
use crate::probe::smaps::{Held, ObjectId};

/// What a process's death gives back, from what it holds: its private anonymous pages and
/// swap, and each object that dies with it, unless `kept` (what other processes map or hold
/// open) keeps it alive.
pub fn gain_of(held: &Held, kept: &[ObjectId]) -> u64 {
    let objects = held
        .objects
        .iter()
        .filter(|(id, _)| !kept.contains(id))
        .fold(0u64, |t, (_, b)| t.saturating_add(*b));
    held.private_anon
        .saturating_add(held.swap)
        .saturating_add(objects)
}

/// Whether a domain's shortage comes from outside its watched members: it fills (at least
/// [`FILLING`]) and its members' own working sets grow at less than a quarter of that rate.
/// A kill inside then buys milliseconds: an unwatched sibling under the same limit takes the
/// memory back at once, and the kernel kills it at the limit anyway.
pub fn pressure_from_outside(domain_rate: f64, members_rate: Option<f64>) -> bool {
    members_rate.is_some_and(|m| domain_rate >= FILLING && m * 4.0 < domain_rate)
}

/// Whether a victim's exit gave back nothing worth the name: by the first sample after it the
/// domain had gained less than an eighth of what the kill was expected to free (nothing at
/// all, or less, when the domain kept filling meanwhile).
pub fn fruitless(freed: i64, expected: u64) -> bool {
    freed <= 0 || (freed as u64).saturating_mul(8) < expected
}

/// What became of a fruitless kill, weighed at a later sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighed {
    /// Too soon to tell: the next kill for the same cause waits.
    Pending,
    /// The domain fell by [`BARREN_FALL`] or more since the first sample after the exit:
    /// whatever the kill gave back, the domain went on filling as before; the victim was not
    /// what filled it, and what it held did not come back.
    Barren,
    /// The domain stopped filling with the victim gone (a writer to tmpfs, say): it helped.
    Cleared,
}

/// Weighs a fruitless kill: `available_at_exit` at the first sample after the exit,
/// `available_now` at this one, `since` the time between them.
pub fn weigh(available_at_exit: u64, available_now: u64, since: std::time::Duration) -> Weighed {
    if available_at_exit.saturating_sub(available_now) >= BARREN_FALL {
        Weighed::Barren
    } else if since >= FRUITLESS_WATCH {
        Weighed::Cleared
    } else {
        Weighed::Pending
    }
}

/// Whether another kill in an episode that had a fruitless one would be made for the same
/// cause: yes unless the watched members themselves now drive the fill (they grow at
/// [`FILLING`] or more and at least a quarter of the domain's rate), as a new grower would.
/// Never in a domain without a members' rate (the system): every process there is a
/// candidate, the one that fills it among them, so a fruitless kill was a choice to say, not
/// a cause to stop for.
pub fn same_cause(domain_rate: f64, members_rate: Option<f64>) -> bool {
    members_rate.is_some_and(|m| m < FILLING || m * 4.0 < domain_rate)
}

/// A ranked candidate as the kinship rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kin<'a> {
    /// Its pid.
    pub pid: i32,
    /// Its parent's.
    pub ppid: i32,
    /// Its executable.
    pub exe: Option<&'a str>,
    /// Its rank score.
    pub score: i64,
}

/// For each candidate, a forked child of it among the candidates (same executable, a score of
/// at least [`NEAR_EQUAL_PER_MILLE`] of its own): the kernel sacrificed such a child for its
/// parent for years, since the parent holds the state (a database's data, a server's
/// sessions) and the child is a save, a snapshot or a worker that can be made again. The
/// highest-ranked such child when there are several.
pub fn near_equal_children(kin: &[Kin<'_>]) -> Vec<Option<usize>> {
    kin.iter()
        .map(|parent| {
            kin.iter().position(|c| {
                c.ppid == parent.pid
                    && c.pid != parent.pid
                    && c.exe.is_some()
                    && c.exe == parent.exe
                    && i128::from(c.score) * 1000
                        >= i128::from(parent.score) * i128::from(NEAR_EQUAL_PER_MILLE)
            })
        })
        .collect()
}

/// When [`select`] chose `index` (enough or not), the near-equal forked child to stop
/// instead, if it may be chosen and frees as much as was asked of its parent: at least
/// `min_gain`, and `need` when the parent's kill was to be enough.
pub fn forked_child_instead(
    ranked: &[Prospect],
    children: &[Option<usize>],
    index: usize,
    enough: bool,
    need: u64,
    min_gain: u64,
) -> Option<usize> {
    let c = (*children.get(index)?)?;
    let p = ranked.get(c)?;
    (p.eligible && p.gain >= min_gain && (!enough || p.gain >= need)).then_some(c)
}

/// What a process's death gives back: private anonymous pages and swap, in bytes.
pub fn expected_gain(rss_anon_pages: u64, swap_pages: u64, page_size: u64) -> u64 {
    rss_anon_pages
        .saturating_add(swap_pages)
        .saturating_mul(page_size)
}

/// One ranked candidate as the choice sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prospect {
    /// It may be chosen (eligible under the kernel's rules and the policy, not given up on).
    pub eligible: bool,
    /// Its expected gain, bytes (for a group kill, the group's).
    pub gain: u64,
}

/// What to do about a domain in trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Kill the candidate at this index of the ranked list.
    Victim {
        /// Index into the ranked list.
        index: usize,
        /// Its kill alone frees what the domain needs.
        enough: bool,
    },
    /// Killing would not help: kill nobody.
    Futile {
        /// What all candidates at or above `min_gain` would free together.
        total: u64,
        /// How many candidates were eligible at all.
        eligible: usize,
    },
    /// No eligible candidate.
    NoCandidate,
}

/// Chooses among `ranked` (most likely victim first) for a domain that must gain `need` bytes
/// to leave its level. A `rescue` (a hung cgroup the kernel will not act on) takes the first
/// eligible candidate whatever it frees.
pub fn select(ranked: &[Prospect], need: u64, min_gain: u64, rescue: bool) -> Selection {
    let mut eligible = 0;
    let mut total: u64 = 0;
    let mut first_useful = None;
    let mut first_enough = None;
    for (i, c) in ranked.iter().enumerate() {
        if !c.eligible {
            continue;
        }
        eligible += 1;
        if rescue {
            return Selection::Victim {
                index: i,
                enough: c.gain >= need,
            };
        }
        if c.gain < min_gain {
            continue;
        }
        total = total.saturating_add(c.gain);
        first_useful.get_or_insert(i);
        if c.gain >= need {
            first_enough.get_or_insert(i);
            break;
        }
    }
    if eligible == 0 {
        return Selection::NoCandidate;
    }
    if let Some(index) = first_enough {
        return Selection::Victim {
            index,
            enough: true,
        };
    }
    // No single kill is enough. Kills add up (the next victim follows this one), as long as
    // together they can get there. No break was taken: `total` counts every candidate.
    match first_useful {
        Some(index) if total >= need => Selection::Victim {
            index,
            enough: false,
        },
        _ => Selection::Futile { total, eligible },
    }
}

/// Prospects written in MiB, for the choice's tables here and in [`super::choose`].
#[cfg(test)]
impl Prospect {
    pub(crate) const fn mib(eligible: bool, mib: u64) -> Self {
        Prospect {
            eligible,
            gain: mib << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn c(gain_mib: u64) -> Prospect {
        Prospect::mib(true, gain_mib)
    }

    const NO: Prospect = Prospect::mib(false, 500);

    #[test]
    fn gain_is_private_anonymous_memory_and_swap() {
        assert_eq!(expected_gain(256, 0, 4096), MIB);
        assert_eq!(expected_gain(128, 128, 4096), MIB);
        assert_eq!(expected_gain(u64::MAX, 1, 4096), u64::MAX);
    }

    #[test]
    fn selection_table() {
        // (ranked, need MiB, min_gain MiB) -> selection
        let victim = |index, enough| Selection::Victim { index, enough };
        let futile = |total_mib: u64, eligible| Selection::Futile {
            total: total_mib * MIB,
            eligible,
        };
        let table: &[(&[Prospect], u64, u64, Selection)] = &[
            // The first by rank frees enough: it.
            (&[c(100), c(200)], 10, 5, victim(0, true)),
            // The first by rank is below min_gain: passed over.
            (&[c(2), c(100)], 10, 5, victim(1, true)),
            // Prefer the first (by rank) whose kill is enough.
            (&[c(8), c(30), c(300)], 20, 5, victim(1, true)),
            // None alone is enough, together they are: the first useful one.
            (&[c(8), c(9), c(7)], 20, 5, victim(0, false)),
            // Idle processes beside tmpfs: each below min_gain, nothing to gain.
            (&[c(4), c(3), c(2), c(1)], 7, 5, futile(0, 4)),
            // Above min_gain but together not enough.
            (&[c(6), c(6)], 20, 5, futile(12, 2)),
            // Ineligible ones never count, however large.
            (&[NO, c(1)], 10, 5, futile(0, 1)),
            (&[NO, NO], 10, 5, Selection::NoCandidate),
            (&[], 10, 5, Selection::NoCandidate),
            // Nothing needed (the level comes from pressure alone): the first useful one.
            (&[c(1), c(6)], 0, 5, victim(1, true)),
        ];
        for (ranked, need, min_gain, want) in table {
            assert_eq!(
                select(ranked, need * MIB, min_gain * MIB, false),
                *want,
                "{ranked:?} need {need} min {min_gain}"
            );
        }
    }

    /// Where a domain's fill comes from: outside its members (`pressure_from_outside`), and
    /// after a barren kill, whether it is still the same cause (`same_cause`).
    #[test]
    fn a_domain_filled_from_outside_its_members_is_one_cause() {
        const M: f64 = MIB as f64;
        // (domain MiB/s, members' own MiB/s) -> (from outside, the same cause: no new kill)
        let table: &[(f64, Option<f64>, bool, bool)] = &[
            (100.0, Some(0.0), true, true),
            (100.0, Some(24.0), true, true),
            (100.0, Some(25.0), false, false),
            (100.0, Some(100.0), false, false),
            // A slow fill: members grow at the noise floor at most.
            (3.0, Some(3.0), false, true),
            (3.0, Some(0.0), false, true),
            (10.0, Some(8.0), false, false),
            (0.0, Some(0.0), false, true),
            // The system domain has no members' rate: never outside, never the same cause.
            (100.0, None, false, false),
        ];
        for &(domain, members, outside, same) in table {
            let (d, m) = (domain * M, members.map(|m| m * M));
            assert_eq!(pressure_from_outside(d, m), outside, "{domain} {members:?}");
            assert_eq!(same_cause(d, m), same, "{domain} {members:?}");
        }
    }

    #[test]
    fn a_kill_that_gave_back_nothing_while_the_domain_filled_is_barren() {
        // (freed MiB, expected MiB) -> fruitless
        let table: &[(i64, u64, bool)] = &[
            (-18, 20, true),
            (0, 20, true),
            // A shared object that lived on: 6 MiB back of 120 expected.
            (6, 120, true),
            (15, 120, false),
            (10, 10, false),
            // Expected nothing and got a little: not fruitless.
            (1, 0, false),
        ];
        for &(freed, expected, want) in table {
            assert_eq!(
                fruitless(freed * MIB as i64, expected * MIB),
                want,
                "{freed} {expected}"
            );
        }
        // (available at the exit's sample MiB, available now MiB, ms since) -> weighed
        let table: &[(u64, u64, u64, Weighed)] = &[
            (100, 90, 500, Weighed::Barren),
            (100, 96, 1900, Weighed::Barren),
            (100, 96, 5000, Weighed::Barren),
            // Fell less than the noise floor: not yet, and never once the watch is over.
            (100, 97, 500, Weighed::Pending),
            (100, 97, 2000, Weighed::Cleared),
            // The domain stopped filling with the victim gone (a tmpfs writer): it helped.
            (100, 100, 100, Weighed::Pending),
            (100, 120, 2500, Weighed::Cleared),
        ];
        for &(at_exit, now, ms, want) in table {
            assert_eq!(
                weigh(
                    at_exit * MIB,
                    now * MIB,
                    std::time::Duration::from_millis(ms)
                ),
                want,
                "{at_exit} {now} {ms}"
            );
        }
    }

    #[test]
    fn gain_counts_objects_nobody_else_keeps() {
        let a = ObjectId { dev: 1, inode: 10 };
        let b = ObjectId { dev: 1, inode: 11 };
        let held = Held {
            private_anon: 100,
            swap: 5,
            objects: vec![(a, 1000), (b, 20)],
        };
        // (kept by others) -> gain
        let table: &[(&[ObjectId], u64)] =
            &[(&[], 1125), (&[a], 125), (&[a, b], 105), (&[b], 1105)];
        for (kept, want) in table {
            assert_eq!(gain_of(&held, kept), *want, "{kept:?}");
        }
    }

    #[test]
    fn a_near_equal_forked_child_goes_before_its_parent() {
        let k = |pid, ppid, exe, score| Kin {
            pid,
            ppid,
            exe,
            score,
        };
        let redis = Some("/usr/bin/redis-server");
        // Parent first (higher by 2 %), its save's child next, an unrelated process, a child
        // of another executable, and a child too small to be near-equal.
        let kin = [
            k(100, 1, redis, 1000),
            k(200, 100, redis, 980),
            k(300, 1, Some("/usr/bin/python3"), 950),
            k(400, 300, Some("/usr/bin/cat"), 940),
            k(500, 300, Some("/usr/bin/python3"), 800),
        ];
        assert_eq!(
            near_equal_children(&kin),
            vec![Some(1), None, None, None, None]
        );
        let children = near_equal_children(&kin);
        let ranked = [c(150), c(120), c(100), c(1), c(100)];
        // The parent would be enough: the child is, too, so it goes instead.
        assert_eq!(
            forked_child_instead(&ranked, &children, 0, true, 100 * MIB, 5 * MIB),
            Some(1)
        );
        // The child would not be enough where the parent was: the parent.
        assert_eq!(
            forked_child_instead(&ranked, &children, 0, true, 130 * MIB, 5 * MIB),
            None
        );
        // Not enough either way, the child frees at least min_gain: the child.
        assert_eq!(
            forked_child_instead(&ranked, &children, 0, false, 500 * MIB, 5 * MIB),
            Some(1)
        );
        // A child that may not be chosen, or a candidate without one: nothing instead.
        let mut no = ranked;
        no[1].eligible = false;
        assert_eq!(
            forked_child_instead(&no, &children, 0, true, 100 * MIB, 5 * MIB),
            None
        );
        assert_eq!(
            forked_child_instead(&ranked, &children, 2, true, 10 * MIB, 5 * MIB),
            None
        );
    }

    #[test]
    fn a_rescue_takes_the_first_eligible_whatever_it_frees() {
        assert_eq!(
            select(&[NO, c(1), c(100)], 50 * MIB, 5 * MIB, true),
            Selection::Victim {
                index: 1,
                enough: false
            }
        );
        assert_eq!(
            select(&[NO], 50 * MIB, 5 * MIB, true),
            Selection::NoCandidate
        );
    }
}
