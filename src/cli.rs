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
        /// Log lines as text (`message key=value ...`) or one JSON object per line; overrides
        /// `[daemon] log_format`.
        #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
        log_format: Option<String>,
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
    /// List the kills recorded in the kill journal, oldest first.
    History {
        /// Only kills this recent: 30m, 1h, 2d.
        #[arg(long, value_name = "AGE")]
        since: Option<String>,
        /// One JSON kill record per line, as the journal keeps them.
        #[arg(long)]
        json: bool,
        /// The journal to read instead of `[report] journal`.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
    /// Explain a kill: the victim, why it was chosen, who else was considered and what each
    /// would have freed.
    Why {
        /// The victim's pid or its process name (comm); the latest matching kill.
        victim: String,
        /// The kill record as JSON.
        #[arg(long)]
        json: bool,
        /// The journal to read instead of `[report] journal`.
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
    },
    /// Show the running daemon's view: scopes, domains, levels, thresholds, event sources,
    /// victims in flight, the last kills.
    Status {
        /// The status file as the daemon wrote it.
        #[arg(long)]
        json: bool,
        /// The status file to read instead of `[report] status_file`.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Print nothing but one line, and exit non-zero unless the daemon that wrote the
        /// file is running and has finished a round recently (a liveness probe).
        #[arg(long)]
        check: bool,
    },
    /// Send one desktop notification on a session bus and exit: 0 when the notification server
    /// took it, 1 with the reason on stderr. The daemon runs this as the receiving user.
    #[command(hide = true)]
    NotifySend {
        /// The session bus socket (/run/user/UID/bus).
        #[arg(long, value_name = "SOCKET")]
        bus: PathBuf,
        /// The notification's title.
        #[arg(long)]
        summary: String,
        /// Its text.
        #[arg(long, default_value = "")]
        body: String,
        /// 0 low, 1 normal, 2 critical.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
        urgency: u8,
        /// How long to wait for the bus, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        timeout_ms: u64,
    },
    /// Take off the cgroup v2 tripwires a daemon that did not stop cleanly left (`memory.high`
    /// back to `max` where it still holds the value oomward wrote), as the next start would.
    /// The systemd unit runs it after the daemon stopped.
    #[command(hide = true)]
    LiftTripwires,
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
    /// Print the log schema: every field a log entry may carry with its type, and every kind
    /// of entry (`event=`) with its journal MESSAGE_ID. JSON lines carry its version as
    /// `schema`, journal entries as OOMWARD_SCHEMA.
    LogSchema,
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
