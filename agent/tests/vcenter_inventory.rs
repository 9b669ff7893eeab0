//! `bgw-agent vcenter inventory` against the vCenter simulator: without `--disks` no disks are
//! read or shown, with `--disks` every VM lists its disk.

use std::process::Command;

use bgw_tests::vcsim::{Vcsim, VcsimOptions};

fn inventory(vc: &Vcsim, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_bgw-agent"))
        .args(["vcenter", "inventory", "--host", &vc.host_port()])
        .args(["--username", vc.username(), "--password-env", "VC_PASSWORD"])
        .args(["--thumbprint", &vc.thumbprint_sha256(), "--json"])
        .args(extra)
        .env("VC_PASSWORD", vc.password())
        .output()
        .expect("bgw-agent runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn disks_are_listed_only_with_the_disks_flag() {
    let vc = Vcsim::start(VcsimOptions::default()).expect("vcsim starts");
    let expected = vc.options().expected_vm_count() as usize;

    let plain = inventory(&vc, &[]);
    assert_eq!(plain.len(), expected);
    assert!(
        plain.iter().all(|vm| vm.get("disks").is_none()),
        "{:?}",
        plain[0]
    );

    let with_disks = inventory(&vc, &["--disks"]);
    assert_eq!(with_disks.len(), expected);
    for vm in &with_disks {
        // vcsim gives every VM one 1 MiB thin disk.
        let disks = vm["disks"].as_array().unwrap_or_else(|| panic!("{vm}"));
        assert_eq!(disks.len(), 1, "{vm}");
        assert_eq!(disks[0]["capacity_bytes"], 1024 * 1024, "{vm}");
        assert!(
            disks[0]["file_name"].as_str().unwrap().ends_with(".vmdk"),
            "{vm}"
        );
    }
}
