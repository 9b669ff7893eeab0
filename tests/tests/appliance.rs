//! The appliance's own files (`packaging/ova/`), checked without building or booting the OVA
//! (`packaging/ova/check` does that): its units verify and stay sandboxed, `ovf-apply` takes the
//! vApp properties and refuses what it cannot use, and the polkit rule grants the console's
//! administrator exactly the commands the console runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bgw_tests::paths::repo_root;
use bgw_tests::process::run_bounded;
use bgw_tests::systemd_analyze::{security, verify};

/// The boot report runs as a throwaway user with the agent's sandbox (plus capset, which ip(8)
/// needs to drop its capabilities).
const BOOT_REPORT_EXPOSURE: f64 = 1.4;
/// ovf-apply runs as root (it mounts a CD and writes /etc) with CAP_SYS_ADMIN only and no system
/// call filter, which could get in the way of vmtoolsd.
const OVF_APPLY_EXPOSURE: f64 = 5.0;

fn ova(file: &str) -> PathBuf {
    repo_root().join("packaging/ova").join(file)
}

/// An appliance unit written to `dir`, its `/usr/lib/bgw-appliance/` programs pointing at the
/// repository's copies so `verify` finds them.
fn unit_in(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(ova("rootfs").join(name)).unwrap();
    let text = text.replace(
        "/usr/lib/bgw-appliance/",
        &format!("{}/", ova("").to_str().unwrap().trim_end_matches('/')),
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_appliance_units_verify_and_keep_their_sandboxing() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["bgw-ovf-apply.service", "bgw-boot-report.service"] {
        let out = verify(&unit_in(dir.path(), name));
        assert!(out.success(), "{name}: {}", out.stderr);
        assert!(
            out.stderr.trim().is_empty(),
            "{name} warnings: {}",
            out.stderr
        );
    }
    for (name, max) in [
        ("bgw-boot-report.service", BOOT_REPORT_EXPOSURE),
        ("bgw-ovf-apply.service", OVF_APPLY_EXPOSURE),
    ] {
        let score = security(&dir.path().join(name));
        println!("systemd-analyze security {name}: exposure {score}");
        assert!(score <= max, "{name}: exposure rose from {max} to {score}");
    }
}

/// Runs ovf-apply on `env` (an OVF environment document) against a fresh root; returns the
/// root and what it printed.
fn ovf_apply(env: &str) -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hosts"), "127.0.1.1\tbgw-appliance\n").unwrap();
    let file = root.path().join("ovf-env.xml");
    std::fs::write(&file, env).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(ova("ovf-apply"))
        .arg(&file)
        .env("BGW_OVF_ROOT", root.path());
    let out = run_bounded("ovf-apply", cmd, Duration::from_secs(30)).unwrap();
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(root
        .path()
        .join("var/lib/bgw-appliance/ovf-applied")
        .exists());
    (root, format!("{}{}", out.stdout, out.stderr))
}

fn environment(props: &[(&str, &str)]) -> String {
    let props: String = props
        .iter()
        .map(|(k, v)| format!("    <Property oe:key=\"{k}\" oe:value=\"{v}\"/>\n"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Environment \
         xmlns=\"http://schemas.dmtf.org/ovf/environment/1\"\n \
         xmlns:oe=\"http://schemas.dmtf.org/ovf/environment/1\" oe:id=\"\">\n  \
         <PropertySection>\n{props}  </PropertySection>\n</Environment>\n"
    )
}

fn read(root: &Path, path: &str) -> Option<String> {
    std::fs::read_to_string(root.join(path)).ok()
}

const NETWORK_FILE: &str = "etc/systemd/network/10-vapp-static.network";

#[test]
fn ovf_apply_writes_the_static_address_and_host_name_of_the_vapp_properties() {
    let env = std::fs::read_to_string(ova("ovf-env-check.xml")).unwrap();
    let (root, said) = ovf_apply(&env);
    let root = root.path();
    assert_eq!(
        read(root, "etc/hostname").as_deref(),
        Some("bgw-ovf-check\n")
    );
    assert_eq!(
        read(root, "etc/hosts").as_deref(),
        Some("127.0.1.1\tbgw-ovf-check\n")
    );
    let network = read(root, NETWORK_FILE).unwrap();
    assert!(
        network.contains(
            "[Match]\nName=en* eth*\n\n[Network]\nAddress=10.0.2.50/24\nGateway=10.0.2.2\n\
             DNS=10.0.2.3\nDNS=192.0.2.53\n"
        ),
        "{network}"
    );
    assert!(
        said.contains("static address 10.0.2.50/24 gateway 10.0.2.2 dns 10.0.2.3 192.0.2.53"),
        "{said}"
    );

    // Empty properties (the descriptor's defaults): DHCP and the default host name stay.
    let (root, said) = ovf_apply(&environment(&[
        ("hostname", ""),
        ("ip", ""),
        ("prefix", "24"),
        ("gateway", ""),
        ("dns", ""),
    ]));
    assert!(read(root.path(), NETWORK_FILE).is_none(), "{said}");
    assert!(read(root.path(), "etc/hostname").is_none(), "{said}");
}

#[test]
fn ovf_apply_reports_what_it_cannot_use_and_applies_the_rest() {
    // A bad address keeps DHCP; a bad host name keeps the default.
    for ip in ["10.0.2.300", "10.0.2", "010.0.2.5", "fe80::1"] {
        let (root, said) = ovf_apply(&environment(&[("ip", ip), ("hostname", "gw_1")]));
        assert!(read(root.path(), NETWORK_FILE).is_none(), "{ip}: {said}");
        assert!(said.contains("keeping DHCP"), "{ip}: {said}");
        assert!(said.contains("'gw_1' is not a valid name"), "{said}");
        assert!(read(root.path(), "etc/hostname").is_none(), "{said}");
    }
    for prefix in ["7", "33", "x"] {
        let (root, said) = ovf_apply(&environment(&[("ip", "10.0.0.5"), ("prefix", prefix)]));
        assert!(
            read(root.path(), NETWORK_FILE).is_none(),
            "/{prefix}: {said}"
        );
    }
    // A gateway outside the subnet or a bad DNS server is left out; the address stays.
    let (root, said) = ovf_apply(&environment(&[
        ("ip", "10.0.0.5"),
        ("prefix", "24"),
        ("gateway", "10.0.1.1"),
        ("dns", "10.0.0.2,resolver.example 2606:4700::1111"),
    ]));
    let network = read(root.path(), NETWORK_FILE).unwrap();
    assert!(network.contains("Address=10.0.0.5/24\n"), "{network}");
    assert!(!network.contains("Gateway="), "{network}");
    assert!(
        network.contains("DNS=10.0.0.2\nDNS=2606:4700::1111\n"),
        "{network}"
    );
    assert!(
        said.contains("gateway 10.0.1.1 is not another address in the subnet"),
        "{said}"
    );
    assert!(
        said.contains("'resolver.example' is not an IP address"),
        "{said}"
    );
    // No prefix: /24.
    let (root, _) = ovf_apply(&environment(&[
        ("ip", "192.0.2.10"),
        ("gateway", "192.0.2.1"),
    ]));
    let network = read(root.path(), NETWORK_FILE).unwrap();
    assert!(
        network.contains("Address=192.0.2.10/24\nGateway=192.0.2.1\n"),
        "{network}"
    );
}

/// Every system command the console runs after saving (agent/src/console/work.rs) has its
/// grant in the polkit rule, and the rule grants no other unit or verb.
#[test]
fn the_polkit_rule_grants_exactly_what_the_console_runs() {
    let rule = std::fs::read_to_string(ova("rootfs/50-bgw-admin.rules")).unwrap();
    let work = std::fs::read_to_string(repo_root().join("agent/src/console/work.rs")).unwrap();
    // run_bounded("systemctl", &["try-restart", "UNIT"], ...) and run_bounded("networkctl", ...)
    let code = work.split_whitespace().collect::<String>();
    let mut units = Vec::new();
    for call in code.split("run_bounded(\"").skip(1) {
        let args: Vec<&str> = call.split('"').step_by(2).take(3).collect();
        match args.as_slice() {
            ["networkctl", "reload", ..] => {
                assert!(
                    rule.contains("\"org.freedesktop.network1.reload\""),
                    "{rule}"
                )
            }
            ["systemctl", "try-restart", unit] => units.push(format!("{unit}.service")),
            other => panic!("the console runs {other:?}: give it a grant or remove it"),
        }
    }
    units.sort();
    assert_eq!(units, ["bgw-agent.service", "systemd-timesyncd.service"]);
    for unit in &units {
        assert!(
            rule.contains(&format!("action.lookup(\"unit\") === \"{unit}\"")),
            "{unit}"
        );
    }
    assert_eq!(
        rule.matches("action.lookup(\"unit\") ===").count(),
        units.len()
    );
    assert_eq!(rule.matches("action.lookup(\"verb\") ===").count(), 1);
    assert!(rule.contains("action.lookup(\"verb\") === \"try-restart\""));
    assert_eq!(rule.matches("polkit.Result.YES").count(), 2, "{rule}");
    assert!(rule.contains("subject.isInGroup(\"bgw-admin\")"));
}
