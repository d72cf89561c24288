//! Decisions: pure functions of plain values, no I/O. The kernel's own arithmetic (`badness`,
//! `scope`), the administrator's thresholds and rules (`trigger`, `stall`, `policy`), the order of
//! candidates (`rank`), and what a round does about an OOM domain (`domain`, `episode`,
//! `gain`, `choose`). Each is unit-tested on tables of inputs and expected outputs.

pub mod badness;
pub mod choose;
pub mod domain;
pub mod episode;
pub mod exits;
pub mod gain;
pub mod limits;
pub mod policy;
pub mod rank;
pub mod scope;
pub mod stall;
pub mod swap;
pub mod trigger;
pub mod tripwire;
