//! A replaced vCenter connection that ends late cannot overwrite its successor's state.
//!
//! The connection is replaced while it waits for an answer from vCenter (its keepalive), so
//! it cannot stop within the bound the link gives it; its successor connects and reports
//! ONLINE; only then does the replaced connection's vCenter go away, and the connection
//! reports its end. The hypervisor state (what `bgw-agent status` and the heartbeat, hence
//! `GetHypervisor`, show) must stay ONLINE.
//!
//! The order is forced with a [`LatencyProxy`] between the link and vcsim: it holds back
//! every answer on the first connection's sockets, then drops them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_agent::clock::{CloudTime, SystemClock};
use bgw_agent::hypervisor::{HypervisorEnv, HypervisorLink};
use bgw_agent::hypervisor_board::HypervisorBoard;
use bgw_agent::jobs::{JobRunner, JobStore};
use bgw_agent::metrics::Metrics;
use bgw_agent::outbox::Outbox;
use bgw_agent::state::Store;
use bgw_agent::sync_board::SyncBoard;
use bgw_agent::vcenter_link::{LinkOptions, VcenterLink, STOP_BOUND};
use bgw_protocol::config::{HypervisorConfig, PropertyMapping};
use bgw_protocol::heartbeat::HypervisorState;
use bgw_protocol::metadata::SyncStatus;
use bgw_tests::latency_proxy::LatencyProxy;
use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use tokio_util::sync::CancellationToken;

/// Answers held back this long are, for the test, never answered.
const HELD: Duration = Duration::from_secs(3600);

/// Polls `done` every 20 ms until it holds; panics after `timeout`.
async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_connection_ending_after_its_successor_is_online_changes_nothing() {
    let vc = Vcsim::start(VcsimOptions {
        clusters: 1,
        hosts_per_cluster: 1,
        standalone_hosts: 0,
        vms_per_pool: 4,
        ..Default::default()
    })
    .expect("start vcsim");
    let proxy = LatencyProxy::start(vc.addr())
        .await
        .expect("start the proxy");

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let time = CloudTime::new(Arc::new(SystemClock));
    let board = Arc::new(HypervisorBoard::new());
    let env = HypervisorEnv {
        store: store.clone(),
        outbox: Outbox::new(store.clone()),
        board: board.clone(),
        sync: SyncBoard::load(store.clone()).unwrap(),
        metrics: Arc::new(Metrics::new()),
        time: time.clone(),
    };
    let shutdown = CancellationToken::new();
    let jobs = JobRunner::start(
        JobStore::new(store.tree("jobs").unwrap()),
        time,
        shutdown.child_token(),
    )
    .unwrap();
    // A keepalive every 100 ms: one is soon waiting for its answer once answers are held.
    let link = VcenterLink::new(LinkOptions {
        keepalive: Duration::from_millis(100),
        ..LinkOptions::default()
    });
    let mut hv = HypervisorConfig {
        hypervisor_arn: "arn:aws:backup-gateway:us-east-1:123456789012:hypervisor/hype-1".into(),
        host: proxy.host_port(),
        username: Some(vc.username().into()),
        password: Some(vc.password().into()),
        property_mappings: vec![],
    };

    link.apply(env.clone(), jobs.clone(), Some(hv.clone()))
        .await;
    wait_for(
        "the first connection online with its sync done",
        Duration::from_secs(60),
        || {
            board.current().state == HypervisorState::Online
                && env.sync.current().last_status == Some(SyncStatus::Succeeded)
        },
    )
    .await;

    // Hold back every answer to the first connection, then wait until it has asked
    // something (its keepalive) that will not be answered.
    proxy.set_delay(HELD);
    proxy.open_connections().set_delay(HELD);
    let asked = proxy.client_bytes();
    wait_for(
        "a request waiting for its answer",
        Duration::from_secs(10),
        || proxy.client_bytes() > asked,
    )
    .await;
    let replaced = proxy.open_connections();
    replaced.set_delay(HELD);
    // The successor's connections are answered at once.
    proxy.set_delay(Duration::ZERO);

    // A configuration change replaces the connection. The replaced one cannot stop (it
    // waits for vCenter); its successor connects once the link stops waiting for it.
    hv.property_mappings = vec![PropertyMapping {
        vmware_category: "env".into(),
        vmware_tag_name: "prod".into(),
        aws_tag_key: "environment".into(),
        aws_tag_value: "production".into(),
    }];
    let replaced_at = Instant::now();
    link.apply(env.clone(), jobs.clone(), Some(hv.clone()))
        .await;
    wait_for(
        "the successor online",
        STOP_BOUND + Duration::from_secs(30),
        || board.current().state == HypervisorState::Online,
    )
    .await;
    assert!(
        replaced_at.elapsed() >= STOP_BOUND,
        "the successor came online before the link stopped waiting for the replaced connection"
    );
    assert!(
        !replaced.all_closed(),
        "the replaced connection is still waiting"
    );
    let successor = board.current();

    // Now the replaced connection's vCenter goes away: it reports its end.
    replaced.close();
    wait_for(
        "the replaced connection's report",
        Duration::from_secs(20),
        || board.dropped() > 0 || board.current() != successor,
    )
    .await;
    assert_eq!(
        board.current(),
        successor,
        "the replaced connection's end overwrote its successor's state"
    );
    assert_eq!(board.dropped(), 1, "one late report, dropped");

    drop(link);
    shutdown.cancel();
}
