//! Software updates end to end: real `bgw-cloud` and real agent processes, releases published
//! with `bgw-cloud release publish` from artifacts made by `packaging/make-update-artifact`.
//!
//! The agent installed first is `<target>/debug/bgw-agent`; the versions it updates to are
//! built by `scripts/update-builds` (run by `scripts/test`) into `<target>/update-builds/`:
//! 100.1.0 and 100.4.0 work, 100.2.0 exits at once, 100.3.0 never heartbeats.

mod agent_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent_support::{Agent, AgentOptions};
use bgw_tests::aws::AwsCli;
use bgw_tests::cloud::{Cloud, CloudOptions};
use bgw_tests::paths::{target_dir, workspace_binary};
use bgw_tests::process::run_bounded;
use serde_json::Value;
use tempfile::TempDir;

/// The trial deadline the tests configure (the default is 120 s).
const DEADLINE_SECS: u64 = 8;

/// The directory of an extra build made by `scripts/update-builds`.
fn update_build(version: &str) -> PathBuf {
    let dir = target_dir().join("update-builds").join(version);
    assert!(
        dir.join(format!("bgw-agent-{version}.tar.gz")).is_file(),
        "{} is missing: run scripts/test (or scripts/update-builds, then cargo build --workspace --bins) \
         to build the agent versions the update tests install",
        dir.display()
    );
    dir
}

fn artifact(version: &str) -> PathBuf {
    update_build(version).join(format!("bgw-agent-{version}.tar.gz"))
}

fn bgw_cloud(args: &[&str]) -> String {
    let binary = workspace_binary("bgw-cloud", "BGW_CLOUD_BIN").expect("bgw-cloud is built");
    let mut command = Command::new(binary);
    command.args(args);
    let out = run_bounded("bgw-cloud", command, Duration::from_secs(60)).unwrap();
    assert!(
        out.success(),
        "bgw-cloud {args:?}: {}\n{}",
        out.stderr,
        out.stdout
    );
    out.stdout
}

/// A signing key pair (`release.key`, `release.pub`) in a temporary directory.
struct Keys {
    dir: TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        bgw_cloud(&[
            "release",
            "keygen",
            "--out",
            dir.path().join("k").to_str().unwrap(),
        ]);
        Keys { dir }
    }

    fn secret(&self) -> PathBuf {
        self.dir.path().join("k/release.key")
    }

    fn public(&self) -> PathBuf {
        self.dir.path().join("k/release.pub")
    }
}

fn publish(cloud: &Cloud, keys: &Keys, artifact: &Path, extra: &[&str]) {
    let data = cloud.data_dir().to_str().unwrap().to_string();
    let secret = keys.secret();
    let mut args = vec![
        "release",
        "publish",
        "--data",
        &data,
        "--artifact",
        artifact.to_str().unwrap(),
        "--signing-key",
        secret.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bgw_cloud(&args);
}

fn history(cloud: &Cloud, arn: &str) -> Vec<Value> {
    let data = cloud.data_dir().to_str().unwrap().to_string();
    let out = bgw_cloud(&["release", "history", "--data", &data, "--gateway", arn]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["History"].as_array().cloned().unwrap_or_default()
}

fn result_of(cloud: &Cloud, arn: &str, version: &str) -> Option<(String, String)> {
    history(cloud, arn)
        .into_iter()
        .rev()
        .find(|h| h["Version"] == version && h["Result"] != "IN_PROGRESS")
        .map(|h| {
            (
                h["Result"].as_str().unwrap_or_default().to_string(),
                h["Reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

fn aws(cloud: &Cloud, args: &[&str]) -> Value {
    let out = AwsCli::new(cloud).run(args).unwrap();
    assert!(out.success(), "{args:?}: {}", out.stderr());
    out.json().unwrap_or(Value::Null)
}

/// An activated agent of the packaged version that trusts `keys`.
fn start_agent(cloud: &Cloud, keys: &Keys, extra: &str) -> (Agent, String) {
    let agent = Agent::start(
        cloud,
        AgentOptions {
            extra_config: format!(
                "\n[updates]\ntrusted_keys = [\"{}\"]\ntrial_deadline = \"{DEADLINE_SECS}s\"\n{extra}",
                keys.public().display()
            ),
            ..Default::default()
        },
    );
    let arn = agent.activate(cloud);
    (agent, arn)
}

/// A maintenance window next week (so nothing applies unless asked).
fn window_far_away(cloud: &Cloud, arn: &str) {
    let day = (chrono::Utc::now().date_naive() + chrono::Days::new(3))
        .format("%w")
        .to_string();
    aws(
        cloud,
        &[
            "put-maintenance-start-time",
            "--gateway-arn",
            arn,
            "--hour-of-day",
            "3",
            "--minute-of-hour",
            "0",
            "--day-of-week",
            &day,
        ],
    );
}

/// Polls `check` until it returns `Some`; on timeout fails with the agent's output.
fn wait_for<T>(
    agent: &Agent,
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}:\n{}",
            agent.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The update part of `bgw-agent status --json` (null while the agent restarts).
fn update_status(agent: &Agent) -> Value {
    status_if_up(agent).map_or(Value::Null, |s| s["update"].clone())
}

fn wait_for_state(agent: &Agent, state: &str, limit: Duration) -> Value {
    wait_for(
        agent,
        limit,
        &format!("the update state is {state}"),
        || {
            let u = update_status(agent);
            (u["state"] == state).then_some(u)
        },
    )
}

/// Waits until the agent runs `version` and has heartbeated since it started.
fn wait_running(agent: &Agent, version: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        // The agent restarts during an update: status fails while it is down.
        let status = status_if_up(agent);
        if let Some(s) = status {
            if s["version"] == version && s["last_heartbeat"].is_string() {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for version {version} to run and heartbeat:\n{}",
            agent.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_if_up(agent: &Agent) -> Option<Value> {
    let binary = workspace_binary("bgw-agent", "BGW_AGENT_BIN").unwrap();
    let mut command = Command::new(binary);
    command
        .args(["status", "--json", "--config"])
        .arg(&agent.config);
    let out = run_bounded("bgw-agent status", command, Duration::from_secs(20)).ok()?;
    if !out.success() {
        return None;
    }
    serde_json::from_str(&out.stdout).ok()
}

#[test]
fn update_now_installs_a_release_and_broken_ones_roll_back_and_are_not_retried() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let keys = Keys::new();
    let (mut agent, arn) = start_agent(&cloud, &keys, "");
    let operator_pid = agent.pid();
    window_far_away(&cloud, &arn);

    // A release waits for the window until UpdateGatewaySoftwareNow.
    publish(&cloud, &keys, &artifact("100.1.0"), &[]);
    let waiting = wait_for_state(&agent, "WAITING", Duration::from_secs(60));
    assert_eq!(waiting["staged_version"], "100.1.0");
    assert!(agent
        .state_dir()
        .join("versions/100.1.0/bgw-agent")
        .is_file());
    let gw = agent_support::get_gateway(&cloud, &arn);
    assert!(gw["NextUpdateAvailabilityTime"].as_f64().is_some(), "{gw}");
    let asked = Instant::now();
    aws(
        &cloud,
        &["update-gateway-software-now", "--gateway-arn", &arn],
    );
    let status = wait_running(&agent, "100.1.0", Duration::from_secs(60));
    let switch = asked.elapsed();
    println!(
        "FIGURE update-now to the new version heartbeating: {:.1} s",
        switch.as_secs_f64()
    );
    wait_for(
        &agent,
        Duration::from_secs(20),
        "the update is committed",
        || (update_status(&agent)["state"] == "COMMITTED").then_some(()),
    );
    assert_eq!(status["update"]["running_version"], "100.1.0");
    wait_for(
        &agent,
        Duration::from_secs(20),
        "the cloud records SUCCEEDED",
        || {
            (result_of(&cloud, &arn, "100.1.0").map(|r| r.0).as_deref() == Some("SUCCEEDED"))
                .then_some(())
        },
    );
    assert_eq!(agent.pid(), operator_pid);
    assert!(
        agent.try_status().is_none(),
        "the operator's process still runs"
    );

    // A build that exits at once: rolled back to 100.1.0 without help.
    let started = Instant::now();
    publish(&cloud, &keys, &artifact("100.2.0"), &["--urgent"]);
    let rolled = wait_for(
        &agent,
        Duration::from_secs(60),
        "100.2.0 is rolled back",
        || result_of(&cloud, &arn, "100.2.0"),
    );
    println!(
        "FIGURE exit-at-start build: publish to the rollback in the cloud's history {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(rolled.0, "ROLLED_BACK", "{rolled:?}");
    assert!(rolled.1.contains("exited"), "{rolled:?}");
    wait_running(&agent, "100.1.0", Duration::from_secs(30));

    // A build that never heartbeats: rolled back when the deadline passes.
    publish(&cloud, &keys, &artifact("100.3.0"), &["--urgent"]);
    let started = wait_for(
        &agent,
        Duration::from_secs(60),
        "100.3.0 is on trial",
        || trial_of(&agent, "100.3.0").then(Instant::now),
    );
    wait_for(
        &agent,
        Duration::from_secs(60),
        "100.3.0 is rolled back",
        || {
            let u = status_if_up(&agent)?;
            (u["version"] == "100.1.0"
                && u["update"]["state"] == "ROLLED_BACK"
                && u["update"]["last_attempt"]["version"] == "100.3.0")
                .then_some(())
        },
    );
    let rollback = started.elapsed();
    println!(
        "FIGURE no-heartbeat build: trial start to the previous version running again {:.1} s (deadline {DEADLINE_SECS} s)",
        rollback.as_secs_f64()
    );
    assert!(
        rollback < Duration::from_secs(DEADLINE_SECS + 10),
        "{rollback:?}"
    );
    let rolled = wait_for(
        &agent,
        Duration::from_secs(30),
        "the cloud records it",
        || result_of(&cloud, &arn, "100.3.0"),
    );
    assert_eq!(rolled.0, "ROLLED_BACK", "{rolled:?}");
    assert!(rolled.1.contains("within"), "{rolled:?}");

    // Neither is tried again: the cloud stops offering them, the agent would refuse them.
    std::thread::sleep(Duration::from_secs(3));
    let u = update_status(&agent);
    assert_eq!(u["state"], "ROLLED_BACK", "{u}");
    assert!(u["available_version"].is_null(), "{u}");
    for version in ["100.2.0", "100.3.0"] {
        let tries = history(&cloud, &arn)
            .iter()
            .filter(|h| h["Version"] == version)
            .count();
        assert_eq!(tries, 1, "{version} was tried again");
    }

    // A newer release is.
    publish(&cloud, &keys, &artifact("100.4.0"), &["--urgent"]);
    wait_running(&agent, "100.4.0", Duration::from_secs(60));
    wait_for(
        &agent,
        Duration::from_secs(20),
        "100.4.0 is committed",
        || (update_status(&agent)["state"] == "COMMITTED").then_some(()),
    );
    assert_eq!(agent.pid(), operator_pid);
    agent.stop();
}

/// The update record says `version` is on trial (or was: it is read from the file).
fn trial_of(agent: &Agent, version: &str) -> bool {
    std::fs::read(agent.state_dir().join("update-state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| {
            v["phase"]["state"] == "verifying"
                && v["phase"]["release"]["manifest"]["version"] == version
        })
}

/// An artifact whose `bgw-agent` is a script printing its version (never run: refused first).
fn fake_artifact(dir: &Path, version: &str) -> PathBuf {
    let binary = dir.join(format!("agent-{version}"));
    std::fs::write(&binary, format!("#!/bin/sh\necho 'bgw-agent {version}'\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = dir.join(format!("bgw-agent-{version}.tar.gz"));
    let mut command =
        Command::new(bgw_tests::paths::repo_root().join("packaging/make-update-artifact"));
    command.arg(&binary).arg(&out);
    let result = run_bounded("make-update-artifact", command, Duration::from_secs(30)).unwrap();
    assert!(result.success(), "{}", result.stderr);
    out
}

/// The copy of a published artifact the cloud serves.
fn served(cloud: &Cloud, version: &str) -> PathBuf {
    cloud
        .data_dir()
        .join("releases")
        .join(format!("bgw-agent-{version}.tar.gz"))
}

#[test]
fn bad_releases_are_refused_reported_and_not_installed() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let keys = Keys::new();
    let stranger = Keys::new();
    let (mut agent, arn) = start_agent(&cloud, &keys, "");
    window_far_away(&cloud, &arn);
    let work = tempfile::tempdir().unwrap();

    // Published while the agent is down, so that the served copies can be damaged before it
    // sees them. Offered newest first: each refusal lets the cloud offer the next one.
    agent.stop();
    publish(
        &cloud,
        &keys,
        &fake_artifact(work.path(), "100.11.0"),
        &["--min-version", "100.0.0"],
    );
    publish(&cloud, &keys, &fake_artifact(work.path(), "100.12.0"), &[]);
    let file = served(&cloud, "100.12.0");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    publish(&cloud, &keys, &fake_artifact(work.path(), "100.13.0"), &[]);
    let file = served(&cloud, "100.13.0");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    publish(
        &cloud,
        &stranger,
        &fake_artifact(work.path(), "100.14.0"),
        &["--urgent"],
    );
    agent.launch();

    for (version, code) in [
        ("100.14.0", "UNTRUSTED_KEY"),
        ("100.13.0", "TAMPERED"),
        ("100.12.0", "TRUNCATED"),
        ("100.11.0", "TOO_OLD"),
    ] {
        let (result, reason) = wait_for(
            &agent,
            Duration::from_secs(60),
            &format!("{version} is refused"),
            || result_of(&cloud, &arn, version),
        );
        assert_eq!(result, "REFUSED", "{version}: {reason}");
        assert!(reason.starts_with(code), "{version}: {reason}");
        println!("{version}: {reason}");
    }
    let status = agent.status();
    assert_eq!(status["version"], bgw_version_of_packaged(&agent));
    assert_eq!(status["update"]["state"], "IDLE", "{status}");
    assert_eq!(status["update"]["last_attempt"]["result"], "REFUSED");
    let versions = agent.state_dir().join("versions");
    for version in ["100.11.0", "100.12.0", "100.13.0", "100.14.0"] {
        assert!(!versions.join(version).exists(), "{version} was staged");
    }
    // Nothing is offered any more: every release was refused once.
    wait_for(
        &agent,
        Duration::from_secs(10),
        "no release is offered",
        || {
            update_status(&agent)["available_version"]
                .is_null()
                .then_some(())
        },
    );
}

/// What the packaged agent (`<target>/debug/bgw-agent`) reports.
fn bgw_version_of_packaged(_agent: &Agent) -> String {
    let binary = workspace_binary("bgw-agent", "BGW_AGENT_BIN").unwrap();
    let out = Command::new(binary).arg("--version").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("bgw-agent ")
        .to_string()
}

#[test]
fn a_release_waits_for_the_window_in_the_gateways_time_zone_and_resumes_after_kill_9() {
    use chrono::{Datelike, Timelike};
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let keys = Keys::new();
    let mut agent = Agent::start(
        &cloud,
        AgentOptions {
            timezone: "Asia/Tokyo".into(),
            extra_config: format!(
                "\n[updates]\ntrusted_keys = [\"{}\"]\ntrial_deadline = \"{DEADLINE_SECS}s\"\n",
                keys.public().display()
            ),
            ..Default::default()
        },
    );
    let arn = agent.activate(&cloud);
    let packaged = bgw_version_of_packaged(&agent);

    // The window starts at the first whole minute at least 45 s from now, given in Tokyo time.
    let now = chrono::Utc::now();
    let start = (now + chrono::Duration::seconds(105))
        .with_second(0)
        .unwrap()
        .with_nanosecond(0)
        .unwrap();
    let tokyo = start.with_timezone(&chrono_tz::Asia::Tokyo);
    aws(
        &cloud,
        &[
            "put-maintenance-start-time",
            "--gateway-arn",
            &arn,
            "--hour-of-day",
            &tokyo.hour().to_string(),
            "--minute-of-hour",
            &tokyo.minute().to_string(),
            "--day-of-week",
            &tokyo.weekday().num_days_from_sunday().to_string(),
        ],
    );
    wait_for(
        &agent,
        Duration::from_secs(20),
        "the agent knows the window",
        || {
            let s = status_if_up(&agent)?;
            (s["update"]["next_window_start"].as_str()
                == Some(&start.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            .then_some(())
        },
    );

    // The agent was killed halfway through the download: half the artifact is on disk.
    agent.kill();
    let incoming = agent.state_dir().join("versions/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let whole = std::fs::read(artifact("100.1.0")).unwrap();
    std::fs::write(
        incoming.join("bgw-agent-100.1.0.tar.gz"),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    publish(&cloud, &keys, &artifact("100.1.0"), &[]);
    agent.launch();
    let waiting = wait_for_state(&agent, "WAITING", Duration::from_secs(60));
    assert_eq!(waiting["staged_version"], "100.1.0");
    assert!(
        agent.output().contains("resuming the artifact download"),
        "{}",
        agent.output()
    );

    // kill -9 while waiting: it waits again after the restart, nothing applied.
    agent.kill();
    agent.launch();
    let waiting = wait_for_state(&agent, "WAITING", Duration::from_secs(30));
    assert_eq!(waiting["staged_version"], "100.1.0");

    // Not before the window...
    while chrono::Utc::now() < start - chrono::Duration::seconds(2) {
        if let Some(s) = status_if_up(&agent) {
            assert_eq!(s["version"], packaged, "applied before the window");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // ...but at its start.
    let s = wait_running(&agent, "100.1.0", Duration::from_secs(45));
    let late = chrono::Utc::now() - start;
    println!(
        "FIGURE window start to the new version heartbeating: {:.1} s",
        late.num_milliseconds() as f64 / 1000.0
    );
    assert!(s["update"]["state"] == "VERIFYING" || s["update"]["state"] == "COMMITTED");
    wait_for(
        &agent,
        Duration::from_secs(20),
        "the cloud records SUCCEEDED",
        || {
            (result_of(&cloud, &arn, "100.1.0").map(|r| r.0).as_deref() == Some("SUCCEEDED"))
                .then_some(())
        },
    );
}

#[test]
fn kill_9_during_a_trial_rolls_back_at_the_next_start() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let keys = Keys::new();
    let (mut agent, arn) = start_agent(&cloud, &keys, "");
    let packaged = bgw_version_of_packaged(&agent);
    publish(&cloud, &keys, &artifact("100.3.0"), &["--urgent"]);
    wait_for(
        &agent,
        Duration::from_secs(60),
        "100.3.0 is on trial",
        || trial_of(&agent, "100.3.0").then_some(()),
    );
    // The operator's process dies; its trial child goes with it (else the store would still
    // be held and the restart below would fail).
    agent.kill();
    agent.launch();
    let s = wait_running(&agent, &packaged, Duration::from_secs(30));
    assert_eq!(s["update"]["state"], "ROLLED_BACK", "{s}");
    let reason = s["update"]["last_attempt"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("before it passed its trial"), "{reason}");
    let (result, _) = wait_for(
        &agent,
        Duration::from_secs(20),
        "the cloud records it",
        || result_of(&cloud, &arn, "100.3.0"),
    );
    assert_eq!(result, "ROLLED_BACK");
}
