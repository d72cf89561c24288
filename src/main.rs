//! The `oomward` command line: `run` (the default), `rank`, `check-config`.
//!
//! Only this file maps errors to exit codes: 0 success, 1 runtime failure, 2 usage or config
//! error (clap's own usage errors exit 2 as well).

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use oomward::config::ConfigOrigin;

/// Userspace early-OOM policy enforcer: acts before the kernel's OOM killer, ranks victims
/// with the kernel's own formula plus your rules.
#[derive(Parser)]
#[command(name = "oomward", version, about)]
struct Cli {
    /// Config file (default: /etc/oomward/config.toml if it exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
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
    /// Validate a config and print it with every default filled in.
    CheckConfig {
        /// The file (default: --config, else /etc/oomward/config.toml).
        file: Option<PathBuf>,
    },
}

/// An error with the exit code it maps to.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Usage or config error: exit 2.
    pub fn usage(message: impl ToString) -> Self {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
    /// Runtime failure: exit 1.
    pub fn runtime(message: impl ToString) -> Self {
        Failure {
            code: 1,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let origin = match &cli.config {
        Some(p) => ConfigOrigin::Explicit(p.clone()),
        None => ConfigOrigin::Default,
    };
    let result = match cli.command.unwrap_or(Command::Run { dry_run: false }) {
        Command::Run { dry_run } => cmd::run(&origin, dry_run),
        Command::Rank { scope, json, top } => cmd::rank(&origin, &scope, json, top),
        Command::CheckConfig { file } => cmd::check_config(file.or(cli.config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("oomward: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
