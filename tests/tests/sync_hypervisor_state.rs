//! The hypervisor state stays true across quick configuration changes: associating a
//! hypervisor and changing its property mappings at once restarts the vCenter connection
//! twice in a row; `GetHypervisor` and `bgw-agent status` must settle on ONLINE and stay
//! there (the connection that was replaced, busy with a sync, must not report its end
//! afterwards).

mod sync_support;

use std::process::Command;
use std::time::{Duration, Instant};

use bgw_tests::vcsim::VcsimOptions;
use serde_json::Value;
use sync_support::{small_inventory, Setup};

/// `bgw-agent status --json`, through the real command.
fn cli_status(s: &Setup) -> Value {
    let bin = bgw_tests::paths::workspace_binary("bgw-agent", "BGW_AGENT_BIN").unwrap();
    let out = Command::new(bin)
        .args(["status", "--json", "--config"])
        .arg(s.agent_dir.path().join("agent.toml"))
        .output()
        .expect("run bgw-agent status");
    assert!(
        out.status.success(),
        "bgw-agent status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn put_mappings(s: &Setup, hv: &str, round: usize) {
    let mapping = format!(
        "VmwareCategory=env,VmwareTagName=prod,AwsTagKey=environment,AwsTagValue=round-{round}"
    );
    s.aws(&[
        "put-hypervisor-property-mappings",
        "--hypervisor-arn",
        hv,
        "--iam-role-arn",
        "arn:aws:iam::123456789012:role/sync-test",
        "--vmware-to-aws-tag-mappings",
        &mapping,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_configuration_changes_leave_the_hypervisor_online() {
    // Enough VMs that a sync takes a moment.
    let s = Setup::start(VcsimOptions {
        vms_per_pool: 150,
        ..small_inventory()
    })
    .await;
    let host = s.vcsim.host_port();
    let hv = s.aws(&[
        "import-hypervisor-configuration",
        "--name",
        "vcsim",
        "--host",
        &host,
        "--username",
        s.vcsim.username(),
        "--password",
        s.vcsim.password(),
    ])["HypervisorArn"]
        .as_str()
        .unwrap()
        .to_string();

    for round in 0..6 {
        if round > 0 {
            s.aws(&[
                "disassociate-gateway-from-server",
                "--gateway-arn",
                &s.gateway_arn,
            ]);
            s.wait_status("the hypervisor disassociated", |st| {
                st["hypervisor"]["arn"].is_null().then_some(())
            })
            .await;
        }
        // Association, then the mappings at once: two configuration changes in a row, each
        // of which restarts the vCenter connection.
        s.aws(&[
            "associate-gateway-to-server",
            "--gateway-arn",
            &s.gateway_arn,
            "--server-arn",
            &hv,
        ]);
        // The mappings change lands while the first connection is up and syncing.
        s.wait_status("the association applied", |st| {
            (st["hypervisor"]["state"] == "ONLINE").then_some(())
        })
        .await;
        // A sync on request is running on the first connection when the mappings change.
        s.aws(&[
            "start-virtual-machines-metadata-sync",
            "--hypervisor-arn",
            &hv,
        ]);
        put_mappings(&s, &hv, round);
        s.wait_status("ONLINE in bgw-agent status", |st| {
            (st["hypervisor"]["state"] == "ONLINE").then_some(())
        })
        .await;
        s.wait_hypervisor(&hv, "ONLINE in GetHypervisor", |h| {
            (h["State"] == "ONLINE").then_some(())
        })
        .await;

        // It stays connected: a connection restarting for a late change may say PENDING
        // for a moment, but the replaced connection's end (OFFLINE) must never show.
        let hold = Instant::now() + Duration::from_secs(8);
        while Instant::now() < hold {
            let st = cli_status(&s);
            let state = &st["hypervisor"]["state"];
            assert!(
                state == "ONLINE" || state == "PENDING",
                "round {round}: bgw-agent status left ONLINE while connected: {st:#}"
            );
            let h = s.hypervisor(&hv);
            assert!(
                h["State"] == "ONLINE" || h["State"] == "PENDING",
                "round {round}: GetHypervisor left ONLINE while connected: {h:#}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(
            cli_status(&s)["hypervisor"]["state"],
            "ONLINE",
            "round {round}"
        );
        assert_eq!(s.hypervisor(&hv)["State"], "ONLINE", "round {round}");
    }
}
