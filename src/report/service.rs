//! Talking to the service manager (systemd's `sd_notify` protocol): readiness once the first
//! round is done, a status line, and watchdog pings from the loop itself, so that a wedged loop
//! (stopped, deadlocked, stuck in the kernel) stops the pings and systemd restarts the daemon.
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::enforce::Status;

/// The daemon's side of `Type=notify` and `WatchdogSec=`.
pub struct ServiceManager {
    /// `NOTIFY_SOCKET` is set: a service manager listens. Without it every call returns at
    /// once, so the loop pays nothing outside systemd.
    listening: bool,
    /// `WATCHDOG_USEC` for this process, when systemd watches it.
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    ready: bool,
    status: Option<Status>,
}

impl ServiceManager {
    /// Reads what systemd asked for from the environment.
    pub fn from_env() -> Self {
        ServiceManager {
            listening: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
            last_ping: None,
            ready: false,
            status: None,
        }
    }

    /// The watchdog interval, when enabled.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// The longest the loop may sleep and still ping in time: a third of the watchdog
    /// interval, so one late wake-up does not cost a restart.
    pub fn max_sleep(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 3)
    }

    /// After a complete round: READY=1 the first time, the status when it changed, and a
    /// watchdog ping when one is due (every quarter interval at most).
    pub fn after_round(&mut self, now: Instant, status: Status) {
        if !self.listening {
            return;
        }
        let ping = self.watchdog.is_some_and(|w| {
            self.last_ping
                .is_none_or(|t| now.duration_since(t) >= w / 4)
        });
        let changed = self.status != Some(status);
        if self.ready && !changed && !ping {
            return;
        }
        let text = changed.then(|| status.to_string());
        let mut states = Vec::with_capacity(3);
        if !self.ready {
            states.push(NotifyState::Ready);
        }
        if let Some(t) = &text {
            states.push(NotifyState::Status(t));
        }
        if ping {
            states.push(NotifyState::Watchdog);
            self.last_ping = Some(now);
        }
        // A failed notification cannot be reported anywhere useful (the service manager is
        // the listener); the next round tries again for what matters.
        if sd_notify::notify(&states).is_ok() {
            self.ready = true;
            self.status = Some(status);
        }
    }

    /// Says the daemon is stopping (systemd then expects the exit).
    pub fn stopping(&self) {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }
}
