//! The `oomward` binary: parses the command line (defined in [`oomward::cli`]) and runs the
//! subcommand.
//!
//! Only this file maps errors to exit codes: 0 success, 1 runtime failure, 2 usage or config
//! error (clap's own usage errors, and no subcommand at all, exit 2 as well).

mod cmd;

use std::process::ExitCode;

use clap::Parser;

use oomward::cli::{Cli, Command};

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
    let Some(command) = cli.command else {
        // `arg_required_else_help` covers a bare `oomward`; a global flag alone lands here.
        let _ = oomward::cli::command().print_help();
        return ExitCode::from(2);
    };
    let origin = oomward::cli::origin(cli.config.clone(), cli.config_dir.clone());
    let result = match command {
        Command::Run {
            dry_run,
            log_format,
        } => cmd::run(&origin, dry_run, log_format.as_deref()),
        Command::History {
            since,
            json,
            journal,
        } => cmd::history(&origin, since.as_deref(), json, journal),
        Command::Why {
            victim,
            json,
            journal,
        } => cmd::why(&origin, &victim, json, journal),
        Command::Status { json, file, check } => cmd::status(&origin, json, file, check),
        Command::NotifySend {
            bus,
            summary,
            body,
            urgency,
            timeout_ms,
        } => {
            let timeout = std::time::Duration::from_millis(timeout_ms);
            oomward::report::notify::send_one(&bus, &summary, &body, urgency, timeout)
                .map(drop)
                .map_err(Failure::runtime)
        }
        Command::Rank { scope, json, top } => cmd::rank(&origin, &scope, json, top),
        Command::LiftTripwires => cmd::lift_tripwires(),
        Command::LogSchema => {
            print!("{}", oomward::report::schema::describe());
            Ok(())
        }
        Command::CheckConfig { file, quiet } => {
            cmd::check_config(file.or(cli.config), cli.config_dir, quiet)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("oomward: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
