//! `systemd-analyze` on a unit file: `verify` (warnings are on stderr) and the `security`
//! exposure score (0.0 best, 10.0 worst), as the unit tests of `systemd/` and the appliance use
//! them. The unit's directory is the working directory, so units beside it are found.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::{run_bounded, CommandOutput};

fn analyze(args: &[&str], unit: &Path) -> CommandOutput {
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(args).arg(unit).current_dir(unit.parent().unwrap());
    run_bounded("systemd-analyze", cmd, Duration::from_secs(60))
        .expect("systemd-analyze runs (Debian package systemd; scripts/test installs it)")
}

/// `systemd-analyze verify --man=no UNIT`.
pub fn verify(unit: &Path) -> CommandOutput {
    analyze(&["verify", "--man=no"], unit)
}

/// The unit's overall exposure from `systemd-analyze security --offline=true`; panics with the
/// report when it has none.
pub fn security(unit: &Path) -> f64 {
    let out = analyze(&["security", "--offline=true", "--no-pager"], unit);
    exposure(&out.stdout).unwrap_or_else(|| panic!("{}{}", out.stdout, out.stderr))
}

/// "→ Overall exposure level for bgw-agent.service: 1.6 OK 🙂" → 1.6
fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    line.rsplit_once(": ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
