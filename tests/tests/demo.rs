//! `scripts/demo`, the README's first command, brings the whole system up and syncs: bgw-cloud,
//! a vCenter simulator, an activated bgw-agent, a metadata sync that lists every VM, a backup
//! and a restore compared byte for byte, a software update installed with
//! `update-gateway-software-now`.

use std::process::Command;
use std::time::Duration;

use bgw_tests::paths::{repo_root, workspace_binary};
use bgw_tests::process::run_bounded;

#[test]
fn the_demo_activates_a_gateway_and_syncs_every_vm() {
    // The binaries this test run built; the demo builds them itself otherwise.
    let agent = workspace_binary("bgw-agent", "BGW_AGENT_BIN").expect("bgw-agent is built");
    workspace_binary("bgw-cloud", "BGW_CLOUD_BIN").expect("bgw-cloud is built");
    let update = bgw_tests::paths::target_dir().join("update-builds/100.1.0/bgw-agent");
    assert!(
        update.is_file(),
        "{} is missing: run scripts/test (or scripts/update-builds, then cargo build --workspace --bins)",
        update.display()
    );
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(repo_root().join("scripts/demo"));
    cmd.env("DEMO_EXIT", "1")
        .env("DEMO_BIN_DIR", agent.parent().unwrap())
        .env("DEMO_VMS_PER_POOL", "5")
        .env("DEMO_UPDATE_BIN", &update)
        .env("TMPDIR", work.path());
    let out = run_bounded("scripts/demo", cmd, Duration::from_secs(600)).expect("demo ran");
    let text = format!("{}\n{}", out.stdout, out.stderr);
    assert!(out.success(), "{text}");
    for expected in [
        "activation key: ",
        "gateway: arn:aws:backup-gateway:",
        "test-hypervisor-configuration: OK",
        "ONLINE / SUCCEEDED",
        "VMs in ListVirtualMachines: 20",
        "backup: COMPLETED",
        "restore: COMPLETED, disk identical",
        "-> 100.1.0 running (COMMITTED)",
        "demo complete",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
