//! `bgw-agent console`: the appliance's menu at the VM console.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

#[derive(clap::Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub config: crate::cli::daemon::ConfigArg,
    /// Prefix of every system file the console reads or writes (logs, bundles, network files).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
}

pub fn run(args: ConsoleArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config.config)?;
    crate::console::term::run(config, &args.config.config, &args.root)?;
    Ok(ExitCode::SUCCESS)
}
