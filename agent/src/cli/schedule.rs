//! `bgw-agent schedule ...`: bandwidth schedule and maintenance window questions.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ScheduleCommand {}

pub fn run(cmd: ScheduleCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
