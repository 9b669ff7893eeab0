//! Hypervisor import, association and TestHypervisorConfiguration against a real vCenter
//! simulator, driven by aws-cli: good credentials, wrong password, unreachable host, a changed
//! certificate, and a vCenter restart.

mod sync_support;

use sync_support::{aws_error, small_inventory, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_hypervisor_configuration_says_what_failed() {
    let s = Setup::start(small_inventory()).await;
    let host = s.vcsim.host_port();
    let test = |host: &str, password: &str| {
        aws_error(
            &s.cloud,
            &[
                "test-hypervisor-configuration",
                "--gateway-arn",
                &s.gateway_arn,
                "--host",
                host,
                "--username",
                s.vcsim.username(),
                "--password",
                password,
            ],
        )
    };
    assert_eq!(
        test(&host, s.vcsim.password()),
        None,
        "good credentials pass"
    );

    let wrong = test(&host, "not-the-password").expect("wrong password fails");
    assert!(wrong.contains("ValidationException"), "{wrong}");
    assert!(
        wrong.to_lowercase().contains("authentication") || wrong.contains("login"),
        "{wrong}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = test(&format!("127.0.0.1:{port}"), "x").expect("closed port fails");
    assert!(unreachable.contains("TCP"), "{unreachable}");

    let dns = test("no-such-vcenter.invalid", "x").expect("unknown name fails");
    assert!(dns.contains("DNS"), "{dns}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn associated_hypervisor_goes_online_and_refuses_a_changed_certificate() {
    let mut s = Setup::start(small_inventory()).await;
    let hv = s.import_and_associate();
    s.wait_hypervisor(&hv, "ONLINE", |h| (h["State"] == "ONLINE").then_some(()))
        .await;
    let first = s.vcsim.thumbprint_sha256();

    s.vcsim
        .restart_with_new_certificate()
        .expect("restart vcsim");
    let second = s.vcsim.thumbprint_sha256();
    assert_ne!(first, second);
    s.wait_hypervisor(&hv, "ERROR after the certificate changed", |h| {
        (h["State"] == "ERROR").then_some(())
    })
    .await;
    let message = s
        .wait_status("hypervisor message", |st| {
            st["hypervisor"]["message"].as_str().map(str::to_string)
        })
        .await;
    assert!(
        message.contains(&first),
        "names the recorded thumbprint: {message}"
    );
    assert!(
        message.contains(&second),
        "names the new thumbprint: {message}"
    );

    // The operator re-trusts the new certificate: the hypervisor comes back ONLINE.
    let bin = bgw_tests::paths::workspace_binary("bgw-agent", "BGW_AGENT_BIN").unwrap();
    let out = std::process::Command::new(bin)
        .args(["vcenter", "retrust", "--config"])
        .arg(s.agent_dir.path().join("agent.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("forgot"));
    s.wait_hypervisor(&hv, "ONLINE after re-trust", |h| {
        (h["State"] == "ONLINE").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vcenter_restart_goes_offline_and_back_online() {
    let mut s = Setup::start(small_inventory()).await;
    let hv = s.import_and_associate();
    s.wait_hypervisor(&hv, "ONLINE", |h| (h["State"] == "ONLINE").then_some(()))
        .await;
    s.vcsim.stop();
    s.wait_status("OFFLINE while vCenter is down", |st| {
        (st["hypervisor"]["state"] == "OFFLINE").then_some(())
    })
    .await;
    s.vcsim.restart().expect("restart vcsim");
    s.wait_hypervisor(&hv, "ONLINE after the restart", |h| {
        (h["State"] == "ONLINE").then_some(())
    })
    .await;
}
