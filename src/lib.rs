//! oomward: a userspace early-OOM policy enforcer.
//!
//! The library holds everything but the command line: readers of kernel state (`probe`), the
//! kernel's own ranking arithmetic (`badness`, `scope`, `rank`), the administrator's rules
//! (`policy`), the configuration (`config`) and the log format (`report`). Decision modules are
//! pure and unit-tested on plain values; I/O modules take a root path so tests can point them at
//! fixture trees.
#![warn(missing_docs)]

pub mod badness;
pub mod config;
pub mod daemon;
pub mod enforce;
pub mod events;
pub mod kill;
pub mod policy;
pub mod probe;
pub mod rank;
pub mod report;
pub mod scope;
pub mod sys;
pub mod trigger;
pub mod watch;
