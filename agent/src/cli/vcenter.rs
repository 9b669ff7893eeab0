//! `bgw-agent vcenter ...`: diagnostics against vCenter.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum VcenterCommand {}

pub fn run(cmd: VcenterCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
