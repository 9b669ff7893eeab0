//! The agent through a cloud outage, `kill -9` and SIGTERM.

mod agent_support;

use std::time::{Duration, Instant};

use agent_support::{wait_until, Agent, AgentOptions};
use bgw_tests::cloud::{Cloud, CloudOptions};

fn heartbeat_after(agent: &Agent, after: &str) -> bool {
    agent.status()["last_heartbeat"]
        .as_str()
        .is_some_and(|t| t > after)
}

#[test]
fn cloud_outage_then_recovery_resumes_heartbeats() {
    let mut cloud = Cloud::start(CloudOptions::default()).unwrap();
    let agent = Agent::start(&cloud, AgentOptions::default());
    agent.activate(&cloud);
    cloud.stop();
    wait_until(
        Duration::from_secs(20),
        "the agent notices the outage",
        || {
            agent.status()["cloud"]["last_error"]
                .as_str()
                .map(str::to_string)
        },
    );
    let during = agent.status()["last_heartbeat"]
        .as_str()
        .unwrap()
        .to_string();
    cloud.restart().unwrap();
    // Backoff is capped by the 1 s interval here: heartbeats resume promptly.
    wait_until(Duration::from_secs(20), "heartbeats resume", || {
        heartbeat_after(&agent, &during).then_some(())
    });
    wait_until(Duration::from_secs(20), "the error clears", || {
        agent.status()["cloud"]["last_error"]
            .is_null()
            .then_some(())
    });
}

#[test]
fn kill_9_and_restart_keeps_the_activation() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let mut agent = Agent::start(&cloud, AgentOptions::default());
    let arn = agent.activate(&cloud);
    let agent_id = agent.status()["agent_id"].clone();
    agent.kill();
    agent.launch();
    let status = agent.status();
    assert_eq!(status["gateway_arn"].as_str(), Some(arn.as_str()));
    assert_eq!(status["agent_id"], agent_id);
    let restarted = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    wait_until(
        Duration::from_secs(20),
        "heartbeats after the restart",
        || heartbeat_after(&agent, &restarted).then_some(()),
    );
}

#[test]
fn sigterm_stops_the_agent_within_ten_seconds() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let mut agent = Agent::start(&cloud, AgentOptions::default());
    agent.activate(&cloud);
    let started = Instant::now();
    agent.signal_term();
    let status = wait_until(Duration::from_secs(10), "the agent exits", || {
        agent.try_status()
    });
    assert!(status.success(), "{status:?}\n{}", agent.output());
    assert!(started.elapsed() < Duration::from_secs(10));
}
