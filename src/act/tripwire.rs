//! The cgroup v2 tripwires oomward set (see [`crate::decide::tripwire`] for where they go and
//! why): the writes to `memory.high`, the record of what is oomward's, and the state file that
//! lets the next start put `max` back after a crash.
//!
//! The state file holds one line per tripwire, `<bytes> <cgroup path>`, rewritten (into a new
//! file renamed over the old) at every write, so that it always names the value that is there:
//! a value found changed at restore time is someone else's and stays.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::decide::tripwire::Step;
use crate::probe::Host;
use crate::report::{Line, Logger, Severity};

/// One tripwire oomward set.
#[derive(Debug)]
struct Wire {
    /// The cgroup's path in the hierarchy.
    path: String,
    /// Its directory.
    dir: PathBuf,
    /// The value written (what `memory.high` reads while it is still ours).
    ours: u64,
    /// The watched cgroups whose look set or moved it: when the last is no longer watched, it
    /// is taken off.
    claimants: Vec<u32>,
}

/// The tripwires in place, and where they are recorded.
#[derive(Debug, Default)]
pub struct Tripwires {
    wires: Vec<Wire>,
    /// The state file; `None`: not recorded (tests).
    state: Option<PathBuf>,
    /// Cgroups whose `memory.high` could not be written (delegated to a user): said once,
    /// left to polling.
    refused: Vec<String>,
    /// The cgroup tree is mounted read-only (a container's volume): said once, no tripwire.
    read_only: bool,
}

impl Tripwires {
    /// Records every tripwire in `state` from now on.
    pub fn record_in(&mut self, state: PathBuf) {
        self.state = Some(state);
    }

    /// The value oomward wrote to `path`'s `memory.high`, if it did.
    pub fn ours(&self, path: &str) -> Option<u64> {
        self.wires.iter().find(|w| w.path == path).map(|w| w.ours)
    }

    /// How many are in place.
    pub fn count(&self) -> usize {
        self.wires.len()
    }

    /// Carries out `step` for `path` (whose directory is `dir`) on behalf of the watched cgroup
    /// `claimant`. Returns what `memory.high` holds afterwards when it wrote (`Some(None)`:
    /// `max`), so the caller's sample says what is there.
    pub fn apply(
        &mut self,
        claimant: u32,
        path: &str,
        dir: &Path,
        step: Step,
        scope: &str,
        log: &mut Logger,
    ) -> Option<Option<u64>> {
        let at = self.wires.iter().position(|w| w.path == path);
        let done = match (step, at) {
            (Step::Keep, _) => None,
            (Step::Write(bytes), at) => {
                if self.read_only || self.refused.iter().any(|p| p == path) {
                    return None;
                }
                if let Err(e) = write_high(dir, &bytes.to_string()) {
                    if !gone(&e) {
                        self.refuse(path, scope, &e, log);
                    }
                    return None;
                }
                if let Some(w) = at.map(|i| &mut self.wires[i]) {
                    w.ours = bytes;
                    if !w.claimants.contains(&claimant) {
                        w.claimants.push(claimant);
                    }
                } else {
                    log.log(
                        Severity::Info,
                        &Line::new("tripwire set: memory.high below the term level")
                            .kv("event", "tripwire_set")
                            .kv("scope", scope)
                            .kv("cgroup", path)
                            .kv("high", bytes),
                    );
                    self.wires.push(Wire {
                        path: path.to_string(),
                        dir: dir.to_path_buf(),
                        ours: bytes,
                        claimants: vec![claimant],
                    });
                }
                Some(Some(bytes))
            }
            (Step::Restore, Some(i)) => {
                let w = self.wires.remove(i);
                // A cgroup removed meanwhile has nothing left to restore.
                let _ = write_high(&w.dir, "max");
                Some(None)
            }
            (Step::Forget, Some(i)) => {
                let w = self.wires.remove(i);
                log.log(
                    Severity::Info,
                    &Line::new("tripwire yielded: memory.high was changed by someone else")
                        .kv("event", "tripwire_yielded")
                        .kv("scope", scope)
                        .kv("cgroup", &w.path),
                );
                None
            }
            (Step::Restore | Step::Forget, None) => None,
        };
        if done.is_some() || matches!(step, Step::Forget) {
            self.save(log);
        }
        done
    }

    /// A watched cgroup is no longer watched: the tripwires only it claimed are taken off.
    pub fn release(&mut self, claimant: u32, log: &mut Logger) {
        let before = self.wires.len();
        self.wires.retain_mut(|w| {
            w.claimants.retain(|&c| c != claimant);
            if w.claimants.is_empty() {
                restore_if_ours(&w.dir, w.ours);
                false
            } else {
                true
            }
        });
        if self.wires.len() != before {
            self.save(log);
        }
    }

    /// Takes every tripwire off (the daemon stops, or is told to stop setting them).
    pub fn lift_all(&mut self, log: &mut Logger) {
        if self.wires.is_empty() {
            return;
        }
        let n = self.wires.len();
        for w in self.wires.drain(..) {
            restore_if_ours(&w.dir, w.ours);
        }
        log.log(
            Severity::Info,
            &Line::new("tripwires taken off: memory.high back to max")
                .kv("event", "tripwires_lifted")
                .kv("count", n),
        );
        self.save(log);
    }

    fn refuse(&mut self, path: &str, scope: &str, e: &io::Error, log: &mut Logger) {
        if crate::sys::read_only(e) {
            self.read_only = true;
            log.log(
                Severity::Warning,
                &Line::new(
                    "the cgroup tree is read-only: no tripwires, calm v2 cgroups are polled",
                )
                .kv("event", "tripwire_refused")
                .kv("cgroup", path)
                .kv("error", e),
            );
            return;
        }
        // Bounded: a lost entry means one more failed write and one more line.
        if self.refused.len() < 1024 {
            self.refused.push(path.to_string());
        }
        log.log(
            Severity::Warning,
            &Line::event("tripwire_refused", "cannot set a tripwire, polling instead")
                .kv("scope", scope)
                .kv("cgroup", path)
                .kv("error", e),
        );
    }

    /// Rewrites the state file (removed when nothing is set).
    fn save(&self, log: &mut Logger) {
        let Some(state) = &self.state else {
            return;
        };
        let saved = if self.wires.is_empty() {
            match std::fs::remove_file(state) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            let text: String = self
                .wires
                .iter()
                .map(|w| format!("{} {}\n", w.ours, w.path))
                .collect();
            write_state(state, text.as_bytes())
        };
        if let Err(e) = saved {
            log.log(
                Severity::Warning,
                &Line::new("cannot record the tripwires; after a crash they stay until removed")
                    .kv("event", "tripwire_state")
                    .kv("file", state.display())
                    .kv("error", e),
            );
        }
    }
}

/// Puts `max` back on every tripwire the state file names whose `memory.high` still holds the
/// value recorded: what a daemon that did not stop cleanly left behind. Returns how many. The
/// file is removed after.
pub fn restore_left(state: &Path, host: &Host, log: &mut Logger) -> usize {
    let Some(hier) = &host.memory else {
        return 0;
    };
    let text = match read_state(state) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return 0,
        Err(e) => {
            log.log(
                Severity::Warning,
                &Line::new("cannot read the tripwires left by the last run")
                    .kv("event", "tripwire_state")
                    .kv("file", state.display())
                    .kv("error", e),
            );
            return 0;
        }
    };
    let mut restored = 0;
    for (bytes, path) in parse_state(&text) {
        let Some(dir) = hier.dir(&host.root, path) else {
            continue;
        };
        if restore_if_ours(&dir, bytes) {
            restored += 1;
            log.log(
                Severity::Info,
                &Line::new("tripwire left by the last run taken off")
                    .kv("event", "tripwire_restored")
                    .kv("cgroup", path)
                    .kv("high", bytes),
            );
        }
    }
    let _ = std::fs::remove_file(state);
    restored
}

/// The state file's lines: `<bytes> <path>`; anything else (a path that is not absolute or
/// climbs with `..`) is skipped.
fn parse_state(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines().filter_map(|line| {
        let (bytes, path) = line.split_once(' ')?;
        let bytes = bytes.parse().ok()?;
        let sane = path.starts_with('/') && !path.split('/').any(|c| c == "..");
        sane.then_some((bytes, path))
    })
}

/// Writes `max` if `memory.high` in `dir` still holds `ours`; true if it did.
fn restore_if_ours(dir: &Path, ours: u64) -> bool {
    let now = std::fs::read_to_string(dir.join("memory.high"))
        .ok()
        .and_then(|t| crate::probe::cgroup::parse_limit(&t).ok());
    now == Some(Some(ours)) && write_high(dir, "max").is_ok()
}

fn write_high(dir: &Path, value: &str) -> io::Result<()> {
    // Never created: a missing file is a removed cgroup (or not v2).
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join("memory.high"))?
        .write_all(value.as_bytes())
}

/// The cgroup is gone: nothing to say.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || crate::sys::no_device(e)
}

/// Reads the state file, never through a symlink.
fn read_state(state: &Path) -> io::Result<String> {
    let mut f = crate::sys::no_follow(std::fs::OpenOptions::new().read(true)).open(state)?;
    let mut text = String::new();
    io::Read::read_to_string(&mut f, &mut text)?;
    Ok(text)
}

/// Writes the state file as a new file renamed over the old (see
/// [`crate::report::statefile::replace`]): never through a planted symlink, and a reader (the
/// next start) sees one whole version.
fn write_state(state: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::report::statefile::replace(state, bytes, 0o600)
}

/// Where the state file is by default: beside the status file, in the runtime directory (a
/// cgroup's `memory.high` does not outlive a reboot, nor need its record).
pub fn default_state() -> PathBuf {
    crate::paths::runtime_dir().join("tripwires")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_names_absolute_paths_only() {
        let text = "1048576 /app\nx /bad\n2097152 relative\n4096 /a/../etc\n8192 /pods/p 1\n\n";
        let got: Vec<(u64, &str)> = parse_state(text).collect();
        assert_eq!(got, vec![(1_048_576, "/app"), (8192, "/pods/p 1")]);
    }
}
