//! The command line's one definition: the binary parses with it, and the man page and shell
//! completions are generated from it (`examples/gen_docs.rs`), so `--help`, oomward(8) and the
//! completions cannot disagree.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{DEFAULT_DROPIN_DIR, DEFAULT_PATH};

/// Userspace early-OOM policy enforcer: acts before the kernel's OOM killer, ranks victims
/// with the kernel's own formula plus your rules.
#[derive(Debug, Parser)]
#[command(
    name = "oomward",
    version,
    about,
    arg_required_else_help = true,
    after_help = concat!(
        "Configuration: /etc/oomward/config.toml if it exists (else the built-in defaults), then ",
        "the drop-ins /etc/oomward/config.d/*.toml in name order. See oomward.toml(5)."
    )
)]
pub struct Cli {
    /// Config file instead of /etc/oomward/config.toml; it must exist. Drop-ins are read only
    /// with --config-dir.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Drop-in directory: its *.toml files are merged over the config file in name order
    /// (default with no --config: /etc/oomward/config.d).
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (what the systemd unit starts).
    Run {
        /// Decide and report, never signal.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show candidates as oomward would rank them, with every term of their scores.
    Rank {
        /// `system` or a memory cgroup path such as /kubepods/pod1.
        #[arg(long, default_value = "system")]
        scope: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Only the first N.
        #[arg(long, value_name = "N")]
        top: Option<usize>,
    },
    /// Validate the config the daemon would load and print it with every default filled in.
    ///
    /// Without FILE it checks what `run` would load: --config, else /etc/oomward/config.toml if
    /// it exists, else the built-in defaults; then the drop-ins. It says on stderr which.
    CheckConfig {
        /// A config file to check instead (with no drop-ins unless --config-dir is given).
        file: Option<PathBuf>,
        /// Print nothing on success (for ExecReload=); errors still go to stderr.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// The clap command, for the man page and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Where the config comes from for these arguments.
pub fn origin(file: Option<PathBuf>, dir: Option<PathBuf>) -> crate::config::ConfigOrigin {
    use crate::config::ConfigOrigin;
    match (file, dir) {
        (None, None) => ConfigOrigin::Default,
        (file, dir) => ConfigOrigin::Explicit { file, dir },
    }
}

/// The default paths, as the help text names them (checked by a test).
pub const DEFAULT_PATHS: [&str; 2] = [DEFAULT_PATH, DEFAULT_DROPIN_DIR];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn help_names_the_default_paths() {
        let help = command().render_long_help().to_string();
        for p in DEFAULT_PATHS {
            assert!(help.contains(p), "{p} missing from --help:\n{help}");
        }
    }
}
