//! Activation of a real `bgw-agent` against a real `bgw-cloud`, driven by aws-cli.

mod agent_support;

use std::time::Duration;

use agent_support::{file_mode, get_gateway, wait_until, Agent, AgentOptions};
use bgw_tests::aws::AwsCli;
use bgw_tests::cloud::{Cloud, CloudOptions};

#[test]
fn bad_or_missing_region_is_refused_listing_the_valid_one() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let agent = Agent::start(&cloud, AgentOptions::default());
    let (status, _, body) =
        agent.activation_get("activationRegion=eu-west-3&gatewayType=BACKUP_VM");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("eu-west-3") && body.contains("us-east-1"),
        "{body}"
    );
    let (status, _, body) = agent.activation_get("gatewayType=BACKUP_VM");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("valid regions: us-east-1"), "{body}");
    let (status, _, body) = agent.activation_get("activationRegion=us-east-1&gatewayType=FILE_S3");
    assert_eq!(status, 400, "{body}");

    // The console command asks the running daemon.
    let console = |region: &str| {
        let mut command = std::process::Command::new(
            bgw_tests::paths::workspace_binary("bgw-agent", "BGW_AGENT_BIN").unwrap(),
        );
        command
            .args(["activation-key", "--region", region, "--config"])
            .arg(&agent.config);
        bgw_tests::process::run_bounded(
            "bgw-agent activation-key",
            command,
            Duration::from_secs(20),
        )
        .unwrap()
    };
    let bad = console("eu-west-3");
    assert!(!bad.success());
    assert!(
        bad.stderr.contains("valid regions: us-east-1"),
        "{}",
        bad.stderr
    );
    let good = console("us-east-1");
    assert!(good.success(), "{}", good.stderr);
    let key = good.stdout.trim();
    assert_eq!(key.len(), 29, "{key}");
    assert_eq!(agent.status()["pending_activation_key"], key);
}

#[test]
fn activation_then_heartbeats_move_last_seen_time_and_a_reused_key_is_refused() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let agent = Agent::start(&cloud, AgentOptions::default());
    assert_eq!(agent.status()["activated"], false);

    // no_redirect: the key alone as the body, the same key while it is fresh.
    let (status, _, body) =
        agent.activation_get("activationRegion=us-east-1&gatewayType=BACKUP_VM&no_redirect");
    assert_eq!(status, 200, "{body}");
    let key = agent.activation_key();
    assert_eq!(body.trim(), key);

    let arn = agent.activate(&cloud);
    assert!(arn.starts_with("arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-"));

    // Credentials at rest are owner-only.
    assert_eq!(file_mode(&agent.state_dir()), 0o700);
    assert_eq!(
        file_mode(&agent.state_dir().join("db").join("db")) & 0o077,
        0
    );

    // Heartbeats (every second here) move LastSeenTime forward.
    let first = wait_until(Duration::from_secs(20), "LastSeenTime is set", || {
        get_gateway(&cloud, &arn)["LastSeenTime"].as_f64()
    });
    wait_until(Duration::from_secs(20), "LastSeenTime moves", || {
        let later = get_gateway(&cloud, &arn)["LastSeenTime"].as_f64()?;
        (later > first).then_some(())
    });
    let status = agent.status();
    assert!(status["last_heartbeat"].as_str().is_some(), "{status}");

    // The key activated one gateway; using it again is a clear error.
    let again = AwsCli::new(&cloud)
        .run(&[
            "create-gateway",
            "--activation-key",
            &key,
            "--gateway-display-name",
            "second",
            "--gateway-type",
            "BACKUP_VM",
        ])
        .unwrap();
    assert!(!again.success());
    assert!(
        again.stderr().contains("already used"),
        "{}",
        again.stderr()
    );

    // An activated gateway hands out no more keys.
    let (status, _, body) = agent.activation_get("activationRegion=us-east-1");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(&arn), "{body}");

    // Metrics are served in the Prometheus text format.
    let metrics = std::process::Command::new("curl")
        .args([
            "-s",
            &format!("http://{}/metrics", agent.endpoint("metrics")),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        text.contains("bgw_agent_heartbeats_total{result=\"ok\"}"),
        "{text}"
    );
}

#[test]
fn an_expired_key_is_refused_by_create_gateway() {
    let cloud = Cloud::start(CloudOptions {
        extra_args: vec!["--activation-key-ttl".into(), "2s".into()],
        ..Default::default()
    })
    .unwrap();
    let agent = Agent::start(&cloud, AgentOptions::default());
    let key = agent.activation_key();
    // Wait for the real expiry of the key (2 s after issue), then use it.
    std::thread::sleep(Duration::from_millis(2500));
    let out = AwsCli::new(&cloud)
        .run(&[
            "create-gateway",
            "--activation-key",
            &key,
            "--gateway-display-name",
            "late",
            "--gateway-type",
            "BACKUP_VM",
        ])
        .unwrap();
    assert!(!out.success());
    assert_eq!(out.error_code().as_deref(), Some("ValidationException"));
    assert!(out.stderr().contains("expired"), "{}", out.stderr());
    assert_eq!(agent.status()["activated"], false);
}

#[test]
fn an_unreachable_cloud_answers_503_with_retry_after_not_a_hang() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let agent = Agent::start(
        &cloud,
        AgentOptions {
            endpoint: Some(format!("https://127.0.0.1:{port}")),
            ..Default::default()
        },
    );
    let started = std::time::Instant::now();
    let (status, headers, body) =
        agent.activation_get("activationRegion=us-east-1&gatewayType=BACKUP_VM");
    assert_eq!(status, 503, "{body}");
    assert!(
        headers.iter().any(|(k, _)| k == "retry-after"),
        "{headers:?}"
    );
    assert!(body.contains("cannot reach the cloud"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(15));
}
