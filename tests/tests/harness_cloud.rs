//! Tests of the bgw-cloud process support and the AWS client runners: the cloud starts on a
//! free port, unmodified aws-cli and boto3 (both wire protocols) reach it, and it is stopped on
//! drop.

use bgw_tests::aws::{python, AwsCli, Venv};
use bgw_tests::cloud::{Cloud, CloudOptions};

#[test]
fn aws_cli_and_boto3_reach_a_started_cloud_which_stops_on_drop() {
    let mut cloud = Cloud::start(CloudOptions::default()).expect("start bgw-cloud");
    assert!(
        cloud.endpoint().starts_with("https://127.0.0.1:"),
        "{}",
        cloud.endpoint()
    );
    assert!(cloud.ca_file().is_file());
    let (key_id, secret) = cloud.admin_credentials().expect("admin credentials");
    assert!(!key_id.is_empty() && !secret.is_empty());

    // aws-cli (Smithy RPC v2 CBOR).
    let listed = AwsCli::new(&cloud).run(&["list-gateways"]).unwrap();
    let json = listed
        .json()
        .unwrap_or_else(|e| panic!("{e}\n{}", cloud.output()));
    assert_eq!(json["Gateways"], serde_json::json!([]), "{json}");

    // A wrong secret is refused with an AWS-style error code.
    let bad = cloud.data_dir().join("wrong-credentials");
    std::fs::write(
        &bad,
        format!(
            "[default]\naws_access_key_id = {key_id}\naws_secret_access_key = not-the-secret\n"
        ),
    )
    .unwrap();
    let refused = AwsCli::new(&cloud)
        .credentials_file(&bad)
        .run(&["list-gateways"])
        .unwrap();
    assert!(!refused.success());
    assert!(refused.error_code().is_some(), "{}", refused.stderr());

    // boto3 in both venvs, configured only through the environment the harness sets.
    for venv in [Venv::Cbor, Venv::Json] {
        let out = python(
            venv,
            &cloud,
            "import boto3, json; print(json.dumps(boto3.client('backup-gateway').list_gateways()['Gateways']))",
        )
        .unwrap();
        assert!(out.success(), "{venv:?}: {}", out.stderr);
        assert_eq!(out.stdout.trim(), "[]", "{venv:?}");
    }

    // Restart keeps the data directory and the address.
    let addr = cloud.addr();
    cloud.restart().expect("restart");
    assert_eq!(cloud.addr(), addr);
    assert!(AwsCli::new(&cloud)
        .run(&["list-gateways"])
        .unwrap()
        .success());

    drop(cloud);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "bgw-cloud still listening on {addr}"
    );
}
