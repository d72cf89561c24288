//! The choice of a victim among a domain's ranked candidates: one function for the kill and for
//! the warning that names who a kill would stop, so the warning can never name someone else.
//!
//! It puts together the two rules of [`super::gain`]: [`select`] (the first by rank whose kill
//! is enough, else the first useful one while together they are enough, else nobody) and, but
//! for a rescue, [`forked_child_instead`] (the save before the data: a near-equal forked child
//! of the chosen one that frees as much goes in its stead).

use super::gain::{Prospect, Selection, forked_child_instead, select};

/// The candidate to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen {
    /// Index into the ranked list.
    pub index: usize,
    /// Its kill alone frees what the domain needs.
    pub enough: bool,
    /// The candidate [`select`] chose, when a forked child of it goes instead.
    pub instead_of: Option<usize>,
}

/// Whom to stop in a domain in trouble, or why nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Stop this candidate.
    Victim(Chosen),
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

/// Chooses among `prospects` (ranked, most likely victim first) for a domain that must gain
/// `need` bytes; `children[k]` is candidate `k`'s near-equal forked child, if any (see
/// [`super::gain::near_equal_children`]). A `rescue` (a hung cgroup the kernel will not act
/// on) takes the first eligible candidate whatever it frees, and never a child in its stead:
/// its tasks cannot run a handler, and whoever holds the charge must go.
pub fn choose(
    prospects: &[Prospect],
    children: &[Option<usize>],
    need: u64,
    min_gain: u64,
    rescue: bool,
) -> Choice {
    match select(prospects, need, min_gain, rescue) {
        Selection::Victim { index, enough } => {
            let child = (!rescue)
                .then(|| forked_child_instead(prospects, children, index, enough, need, min_gain))
                .flatten();
            Choice::Victim(Chosen {
                index: child.unwrap_or(index),
                enough,
                instead_of: child.map(|_| index),
            })
        }
        Selection::Futile { total, eligible } => Choice::Futile { total, eligible },
        Selection::NoCandidate => Choice::NoCandidate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn c(gain_mib: u64) -> Prospect {
        Prospect::mib(true, gain_mib)
    }

    fn no(gain_mib: u64) -> Prospect {
        Prospect::mib(false, gain_mib)
    }

    #[test]
    fn choice_table() {
        // A parent (a database), its save's forked child, an unrelated process; with `kin`,
        // the second is the first's near-equal forked child.
        let family: &[Option<usize>] = &[Some(1), None, None];
        let strangers: &[Option<usize>] = &[None, None, None];
        // (prospects, kin, need MiB, rescue) -> (index, enough, instead of); min_gain 5 MiB
        type Want = (usize, bool, Option<usize>);
        let table: &[([Prospect; 3], bool, u64, bool, Want)] = &[
            // No kin: what select says.
            ([c(150), c(120), c(100)], false, 100, false, (0, true, None)),
            // The save before the data: the child frees what the parent was asked to.
            (
                [c(150), c(120), c(100)],
                true,
                100,
                false,
                (1, true, Some(0)),
            ),
            // The child would not be enough where the parent is: the parent.
            ([c(150), c(120), c(100)], true, 130, false, (0, true, None)),
            // None is enough alone, together they are: the child, as the useful one.
            (
                [c(150), c(120), c(300)],
                true,
                400,
                false,
                (1, false, Some(0)),
            ),
            // The child was refused (it cannot be signalled): the parent after all.
            ([c(150), no(120), c(100)], true, 100, false, (0, true, None)),
            // A child below min_gain never goes instead.
            ([c(150), c(4), c(100)], true, 0, false, (0, true, None)),
            // A rescue takes whoever holds the charge, never a child in its stead.
            ([c(150), c(120), c(100)], true, 100, true, (0, true, None)),
            ([c(1), c(120), c(100)], true, 100, true, (0, false, None)),
            // The warning's prediction (need at least one byte, no rescue): the same child a
            // kill would stop, so the warning names who will really be stopped.
            ([c(150), c(120), c(100)], true, 1, false, (1, true, Some(0))),
        ];
        for (prospects, kin, need, rescue, (index, enough, instead_of)) in table {
            let children = if *kin { family } else { strangers };
            assert_eq!(
                choose(prospects, children, need * MIB, 5 * MIB, *rescue),
                Choice::Victim(Chosen {
                    index: *index,
                    enough: *enough,
                    instead_of: *instead_of
                }),
                "{prospects:?} kin {kin} need {need} rescue {rescue}"
            );
        }
    }

    #[test]
    fn nobody_is_chosen_as_select_says() {
        let futile = Choice::Futile {
            total: 0,
            eligible: 2,
        };
        assert_eq!(
            choose(&[c(2), c(3)], &[None, None], 10 * MIB, 5 * MIB, false),
            futile
        );
        assert_eq!(
            choose(&[no(100)], &[None], 10 * MIB, 5 * MIB, false),
            Choice::NoCandidate
        );
        assert_eq!(
            choose(&[], &[], 10 * MIB, 5 * MIB, true),
            Choice::NoCandidate
        );
    }
}
