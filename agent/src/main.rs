//! `bgw-agent`: the long-running gateway agent and its operator commands.
//!
//! The binary is thin: it parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bgw_agent::cli;

#[derive(Parser)]
#[command(name = "bgw-agent", version, about = "Backup gateway agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask bandwidth-schedule and maintenance-window questions offline.
    #[command(subcommand)]
    Schedule(cli::schedule::ScheduleCommand),
    /// Look at vCenter the way the gateway does.
    #[command(subcommand)]
    Vcenter(cli::vcenter::VcenterCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schedule(cmd) => cli::schedule::run(cmd),
        Command::Vcenter(cmd) => cli::vcenter::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
