//! `bgw-agent`: the long-running gateway agent and its operator commands.
//!
//! The binary is thin: it parses arguments and hands over to the library.
//!
//! `BGW_VERSION=1.2.3 cargo build -p bgw-agent` makes an agent that reports 1.2.3 (else the
//! crate version); `BGW_BUILD_FAULT=exit-at-start|no-heartbeat` makes a deliberately broken
//! one for the update tests. Both are read here, so changing them recompiles only this file.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bgw_agent::cli;

#[derive(Parser)]
#[command(
    name = "bgw-agent",
    version = bgw_agent::version(),
    about = "Backup gateway agent",
    after_help = cli::exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway agent (the systemd service).
    Run(cli::daemon::ConfigArg),
    /// Validate the configuration file without starting.
    CheckConfig(cli::daemon::ConfigArg),
    /// Obtain an activation key from the running agent (for the console).
    ActivationKey(cli::daemon::ActivationKeyArgs),
    /// Show the running agent's status.
    Status(cli::daemon::StatusArgs),
    /// List the running agent's jobs (metadata syncs, ...), oldest first.
    Jobs(cli::daemon::JobsArgs),
    /// Ask bandwidth-schedule and maintenance-window questions offline.
    #[command(subcommand)]
    Schedule(cli::schedule::ScheduleCommand),
    /// The appliance's menu at the VM console (80x24, keyboard only).
    Console(cli::console::ConsoleArgs),
    /// Look at vCenter the way the gateway does.
    #[command(subcommand)]
    Vcenter(cli::vcenter::VcenterCommand),
}

fn main() -> ExitCode {
    bgw_agent::build::init(option_env!("BGW_VERSION"), option_env!("BGW_BUILD_FAULT"));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::daemon::run(args),
        Command::CheckConfig(args) => cli::daemon::check_config(args),
        Command::ActivationKey(args) => cli::daemon::activation_key(args),
        Command::Status(args) => cli::daemon::status(args),
        Command::Jobs(args) => cli::daemon::jobs(args),
        Command::Schedule(cmd) => cli::schedule::run(cmd),
        Command::Vcenter(cmd) => cli::vcenter::run(cmd),
        Command::Console(args) => cli::console::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => cli::exit::report(err),
    }
}
