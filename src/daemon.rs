//! The daemon's life: load the config, announce it, react to signals.
//!
//! Enforcement (the watch loop, victim choice and kills) is not built yet; until it is, `run`
//! says so in its start line and idles, so nobody mistakes it for protection.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Config, ConfigError, ConfigOrigin, format_duration};
use crate::probe::Host;
use crate::probe::meminfo::MemInfo;
use crate::report::{Line, Logger, Severity};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config at start is invalid: refuse to start.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Setting up signal handling or reading the host failed.
    #[error("{0}")]
    Setup(String),
}

/// Runs until SIGTERM or SIGINT. SIGHUP reloads the config; an invalid new config is logged and
/// the running one kept.
pub fn run(origin: &ConfigOrigin, force_dry_run: bool) -> Result<(), DaemonError> {
    let mut config = origin.load()?;
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| DaemonError::Setup(format!("cannot install signal handlers: {e}")))?;
    let host = Host::discover(std::path::Path::new("/"))
        .map_err(|e| DaemonError::Setup(format!("cannot read the host: {e}")))?;
    let mut log = Logger::new(config.daemon.log);
    announce(&mut log, &config, &host, force_dry_run, "start");
    for signal in signals.forever() {
        match signal {
            SIGHUP => match origin.load() {
                Ok(new) => {
                    log = Logger::new(new.daemon.log);
                    config = new;
                    announce(&mut log, &config, &host, force_dry_run, "reload");
                }
                Err(e) => log.log(
                    Severity::Error,
                    Line::new("reload refused, keeping the running config")
                        .kv("event", "reload")
                        .kv("error", e)
                        .as_str(),
                ),
            },
            _ => {
                log.log(
                    Severity::Info,
                    Line::new("stopping")
                        .kv("event", "stop")
                        .kv("signal", signal)
                        .as_str(),
                );
                return Ok(());
            }
        }
    }
    Ok(())
}

fn announce(log: &mut Logger, config: &Config, host: &Host, force_dry_run: bool, event: &str) {
    for w in &config.warnings {
        log.log(
            Severity::Warning,
            Line::new("config warning").kv("detail", w).as_str(),
        );
    }
    let mut line = Line::new(if event == "start" {
        "started"
    } else {
        "config reloaded"
    })
    .kv("event", event)
    .kv("config", &config.source)
    .kv("enforcement", "not-built")
    .kv("dry_run", config.daemon.dry_run || force_dry_run)
    .kv("max_interval", format_duration(config.daemon.max_interval))
    .kv("grace", format_duration(config.kill.grace))
    .kv("rules", config.rules.len())
    .kv("builtin_protection", config.builtin_protection);
    if config.system.enabled {
        let s = &config.system;
        line.push("system_mem_available_term", s.mem_available_term);
        line.push("system_mem_available_kill", s.mem_available_kill);
        line.push("system_swap_free_term", s.swap_free_term);
        line.push("system_swap_free_kill", s.swap_free_kill);
        if let Ok(m) = MemInfo::read(&host.root) {
            line.push("mem_total", m.mem_total);
            line.push("term_at_bytes", s.mem_available_term.bytes_of(m.mem_total));
            line.push("kill_at_bytes", s.mem_available_kill.bytes_of(m.mem_total));
        }
    } else {
        line.push("system", "disabled");
    }
    for c in &config.cgroups {
        line.push(
            "cgroup",
            format!("{}:{}/{}", c.path.text, c.available_term, c.available_kill),
        );
    }
    let hier = host.memory.as_ref().map_or("none", |h| h.version.as_str());
    line.push("memory_cgroup", hier);
    log.log(Severity::Info, line.as_str());
    log.log(
        Severity::Warning,
        Line::new("enforcement is not built yet: oomward watches nothing and kills nothing")
            .kv("event", "idle")
            .as_str(),
    );
}
