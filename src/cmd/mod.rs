//! The subcommands, each turning library errors into a [`Failure`] with its exit code.

mod history;
mod rank;

use std::path::{Path, PathBuf};

use oomward::config::{ConfigOrigin, DEFAULT_DROPIN_DIR, DEFAULT_PATH};
use oomward::daemon::{self, DaemonError};

use crate::Failure;

pub use history::{history, status, why};
pub use rank::rank;

/// `oomward run`.
pub fn run(origin: &ConfigOrigin, dry_run: bool, log_format: Option<&str>) -> Result<(), Failure> {
    let format = match log_format {
        Some("json") => Some(oomward::config::LogFormat::Json),
        Some(_) => Some(oomward::config::LogFormat::Text),
        None => None,
    };
    daemon::run(origin, dry_run, format).map_err(|e| match e {
        DaemonError::Config(c) => Failure::usage(c),
        DaemonError::Unfit(why) => Failure::usage(why),
        other => Failure::runtime(other),
    })
}

/// `oomward check-config [FILE]`: exit 0 and the effective config, or 2 and the error. Says on
/// stderr what it checked: the files, or the built-in defaults when there are none.
pub fn check_config(
    file: Option<PathBuf>,
    dir: Option<PathBuf>,
    quiet: bool,
) -> Result<(), Failure> {
    let origin = oomward::cli::origin(file, dir);
    let config = origin.load().map_err(Failure::usage)?;
    // What run would refuse on this machine, check-config refuses too.
    if let Ok(host) = oomward::probe::Host::discover(Path::new("/")) {
        daemon::fits_machine(&config, &host).map_err(Failure::usage)?;
    }
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if !quiet {
        if origin == ConfigOrigin::Default && !Path::new(DEFAULT_PATH).exists() {
            eprintln!(
                "oomward: no {DEFAULT_PATH}: checked the built-in defaults and the drop-ins in {DEFAULT_DROPIN_DIR}: {}",
                config.source
            );
        } else {
            eprintln!("oomward: checked {}", config.source);
        }
        let written =
            std::io::Write::write_all(&mut std::io::stdout().lock(), config.to_toml().as_bytes())
                .and_then(|()| std::io::Write::flush(&mut std::io::stdout().lock()));
        unless_closed(written)
            .map_err(|e| Failure::runtime(format!("cannot write the config: {e}")))?;
    }
    Ok(())
}

/// `written` to stdout, a closed pipe (`| head`) taken as success: that is the reader's choice;
/// any other write error is a failure, never a panic.
fn unless_closed(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `oomward lift-tripwires`: what the next start would take off, taken off now (the unit's
/// `ExecStopPost=`, which runs however the daemon ended).
pub fn lift_tripwires() -> Result<(), Failure> {
    let host = oomward::probe::Host::discover(Path::new("/"))
        .map_err(|e| Failure::runtime(format!("cannot read the host: {e}")))?;
    let mut log = oomward::report::Logger::new(oomward::config::LogTarget::Stderr);
    oomward::act::tripwire::restore_left(&oomward::act::tripwire::default_state(), &host, &mut log);
    log.finish();
    Ok(())
}
