//! Talking to the service manager (systemd's `sd_notify` protocol): readiness once the first
//! round is done, a status line, and watchdog pings from the loop itself, so that a wedged loop
//! (stopped, deadlocked, stuck in the kernel) stops the pings and systemd restarts the daemon.
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The daemon's side of `Type=notify` and `WatchdogSec=`.
pub struct ServiceManager {
    /// `WATCHDOG_USEC` for this process, when systemd watches it.
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    ready: bool,
    status: String,
}

impl ServiceManager {
    /// Reads what systemd asked for from the environment.
    pub fn from_env() -> Self {
        ServiceManager {
            watchdog: sd_notify::watchdog_enabled(),
            last_ping: None,
            ready: false,
            status: String::new(),
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
    pub fn after_round(&mut self, now: Instant, status: &str) {
        let mut states = Vec::with_capacity(3);
        if !self.ready {
            states.push(NotifyState::Ready);
        }
        if status != self.status {
            states.push(NotifyState::Status(status));
        }
        if let Some(w) = self.watchdog
            && self
                .last_ping
                .is_none_or(|t| now.duration_since(t) >= w / 4)
        {
            states.push(NotifyState::Watchdog);
            self.last_ping = Some(now);
        }
        if states.is_empty() {
            return;
        }
        // A failed notification cannot be reported anywhere useful (the service manager is
        // the listener); the next round tries again for what matters.
        if sd_notify::notify(&states).is_ok() {
            self.ready = true;
            self.status = status.to_string();
        }
    }

    /// Says the daemon is stopping (systemd then expects the exit).
    pub fn stopping(&self) {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }
}
