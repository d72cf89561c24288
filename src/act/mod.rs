//! Actions: the thin layer that touches processes. Signalling through verified pidfds, the
//! SIGTERM → grace → SIGKILL escalation, and `process_mrelease` on a thread of its own.

pub mod children;
pub mod hook;
pub mod kill;
pub mod tripwire;
