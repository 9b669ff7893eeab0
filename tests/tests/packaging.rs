//! The files that install the agent: the systemd unit passes `systemd-analyze verify` without a
//! warning and keeps its sandboxing score, and the example configuration is valid.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bgw_tests::paths::{repo_root, workspace_binary};
use bgw_tests::process::{run_bounded, CommandOutput};

/// The highest `systemd-analyze security` exposure the unit may have (0.0 best, 10.0 worst).
const MAX_EXPOSURE: f64 = 2.0;

fn agent_binary() -> PathBuf {
    workspace_binary("bgw-agent", "BGW_AGENT_BIN").expect("bgw-agent is built")
}

/// The shipped unit with `/usr/bin/bgw-agent` pointing at the built binary, so `verify` can
/// check the executable too.
fn unit_in(dir: &Path, transform: impl Fn(&str) -> String) -> PathBuf {
    let unit = std::fs::read_to_string(repo_root().join("systemd/bgw-agent.service")).unwrap();
    let unit = unit.replace("/usr/bin/bgw-agent", agent_binary().to_str().unwrap());
    let path = dir.join("bgw-agent.service");
    std::fs::write(&path, transform(&unit)).unwrap();
    path
}

fn analyze(args: &[&str], unit: &Path) -> CommandOutput {
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(args).arg(unit).current_dir(unit.parent().unwrap());
    run_bounded("systemd-analyze", cmd, Duration::from_secs(60))
        .expect("systemd-analyze runs (Debian package systemd; scripts/test installs it)")
}

fn verify(unit: &Path) -> CommandOutput {
    analyze(&["verify", "--man=no"], unit)
}

#[test]
fn the_unit_verifies_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = verify(&unit_in(dir.path(), str::to_string));
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.trim().is_empty(), "warnings: {}", out.stderr);

    // The check sees mistakes: a misspelt directive is reported.
    let bad = tempfile::tempdir().unwrap();
    let out = verify(&unit_in(bad.path(), |u| u.replace("UMask=", "Umask=")));
    assert!(out.stderr.contains("Umask"), "{}", out.stderr);
}

#[test]
fn the_unit_keeps_its_sandboxing() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(
        &["security", "--offline=true", "--no-pager"],
        &unit_in(dir.path(), str::to_string),
    );
    let score = exposure(&out.stdout).unwrap_or_else(|| panic!("{}{}", out.stdout, out.stderr));
    println!("systemd-analyze security: exposure {score}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{}",
        out.stdout
    );

    // Dropping the sandbox shows in the score.
    let open = tempfile::tempdir().unwrap();
    let out = analyze(
        &["security", "--offline=true", "--no-pager"],
        &unit_in(open.path(), |u| {
            u.lines()
                .filter(|l| !l.starts_with("Protect") && !l.starts_with("Private"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    assert!(
        exposure(&out.stdout).unwrap() > MAX_EXPOSURE,
        "{}",
        out.stdout
    );
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

#[test]
fn the_example_configuration_is_valid() {
    let path = repo_root().join("packaging/agent.toml");
    let mut cmd = Command::new(agent_binary());
    cmd.arg("check-config").arg("--config").arg(&path);
    let out = run_bounded("bgw-agent check-config", cmd, Duration::from_secs(30)).unwrap();
    assert!(out.success(), "{}{}", out.stdout, out.stderr);

    // The same file with a misspelt key is refused, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("agent.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &bad,
        text.replace("heartbeat_interval", "heartbeat_intervall"),
    )
    .unwrap();
    let mut cmd = Command::new(agent_binary());
    cmd.arg("check-config").arg("--config").arg(&bad);
    let out = run_bounded("bgw-agent check-config", cmd, Duration::from_secs(30)).unwrap();
    assert!(!out.success());
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("heartbeat_intervall"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}
