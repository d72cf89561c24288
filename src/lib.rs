//! oomward: a userspace early-OOM policy enforcer.
//!
//! The library holds everything but the command line, in three layers that follow the data:
//! - reading: `probe` (kernel state into plain structs, every reader under a root directory so
//!   fixture trees stand in for `/`), `watch` (which cgroups are watched and their samples) and
//!   `events` (kernel notifications that wake the loop);
//! - deciding: `decide` (pure functions of plain values: the kernel's badness and OOM-domain
//!   arithmetic, thresholds, policy, ranking, episodes per OOM domain, the expected gain of a
//!   kill), unit-tested with tables;
//! - acting: `act` (pidfd signalling, escalation, memory release) and `report` (log lines).
//!
//! `cli` is the command line's one definition (the binary, the man page and the completions
//! come from it). `enforce` runs one round as named steps over those layers; `daemon` is the process's life.
#![warn(missing_docs)]

pub mod act;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decide;
pub mod enforce;
pub mod events;
pub mod paths;
pub mod probe;
pub mod report;
pub mod sys;
pub mod watch;

// The pure modules kept their crate-root paths for the CLI, tests and benches.
pub use act::kill;
pub use decide::{badness, policy, rank, scope, trigger};
