//! The subcommands, each turning library errors into a [`Failure`] with its exit code.

mod rank;

use std::path::PathBuf;

use oomward::config::{Config, ConfigOrigin, DEFAULT_PATH};
use oomward::daemon::{self, DaemonError};

use crate::Failure;

pub use rank::rank;

/// `oomward run`.
pub fn run(origin: &ConfigOrigin, dry_run: bool) -> Result<(), Failure> {
    daemon::run(origin, dry_run).map_err(|e| match e {
        DaemonError::Config(c) => Failure::usage(c),
        other => Failure::runtime(other),
    })
}

/// `oomward check-config [FILE]`: exit 0 and the effective config, or 2 and the error.
pub fn check_config(file: Option<PathBuf>) -> Result<(), Failure> {
    let path = file.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let config = Config::load(&path).map_err(Failure::usage)?;
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", config.to_toml());
    Ok(())
}
