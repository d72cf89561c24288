//! How long processes of each executable took to exit after SIGTERM.
//!
//! A victim asked to exit is watched at its own pace: a database backend that has always gone
//! 40 ms after SIGTERM is looked at again at 40 ms, so its exit is seen at once and the next
//! decision is made on what it gave back. The figure also goes on the decision line, so a
//! reader sees what the victim was expected to need next to the room the projection left it.
//!
//! Bounded: at most [`CAPACITY`] executables, the one least recently seen making way.

use std::time::Duration;

/// The most executables remembered.
pub const CAPACITY: usize = 64;

/// One executable's exits after SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    exe: String,
    /// The slowest of the last exits, decaying: each new exit counts, and an old slow one
    /// weighs less as faster ones follow (`max(new, (old + new) / 2)`).
    typical: Duration,
    /// How many exits were seen.
    exits: u32,
    /// When it was last updated, in updates made (for eviction).
    used: u64,
}

/// Exit times after SIGTERM per executable.
#[derive(Debug, Clone, Default)]
pub struct ExitTimes {
    entries: Vec<Entry>,
    clock: u64,
}

impl ExitTimes {
    /// Notes that a process of `exe` exited `after` its SIGTERM, without a SIGKILL.
    pub fn note(&mut self, exe: &str, after: Duration) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.entries.iter_mut().find(|e| e.exe == exe) {
            e.typical = after.max((e.typical + after) / 2);
            e.exits = e.exits.saturating_add(1);
            e.used = clock;
            return;
        }
        if self.entries.len() >= CAPACITY
            && let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map(|(i, _)| i)
        {
            self.entries.swap_remove(oldest);
        }
        self.entries.push(Entry {
            exe: exe.to_string(),
            typical: after,
            exits: 1,
            used: clock,
        });
    }

    /// How long a process of `exe` is expected to take to exit after SIGTERM, if any of its
    /// kind has before.
    pub fn expected(&self, exe: &str) -> Option<Duration> {
        self.entries
            .iter()
            .find(|e| e.exe == exe)
            .map(|e| e.typical)
    }

    /// How many executables are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_expectation_follows_exits_and_a_slow_one_fades() {
        let mut t = ExitTimes::default();
        assert_eq!(t.expected("/usr/lib/postgresql/15/bin/postgres"), None);
        // (exit ms) -> expected ms after it
        let table = [
            (40u32, 40u32),
            (32, 36),
            (83, 83),
            (40, 61),
            (40, 50),
            (40, 45),
        ];
        for (after, want) in table {
            t.note("/usr/lib/postgresql/15/bin/postgres", after * MS);
            let got = t.expected("/usr/lib/postgresql/15/bin/postgres").unwrap();
            assert_eq!(got.as_millis(), u128::from(want), "after {after}");
        }
        assert_eq!(t.expected("/usr/bin/redis-server"), None);
    }

    #[test]
    fn it_is_bounded_and_forgets_the_least_recently_seen() {
        let mut t = ExitTimes::default();
        for i in 0..CAPACITY {
            t.note(&format!("/bin/{i}"), MS);
        }
        t.note("/bin/0", 2 * MS); // seen again: kept
        t.note("/bin/new", 3 * MS);
        assert_eq!(t.len(), CAPACITY);
        assert_eq!(t.expected("/bin/0"), Some(2 * MS));
        assert_eq!(t.expected("/bin/1"), None);
        assert_eq!(t.expected("/bin/new"), Some(3 * MS));
    }
}
