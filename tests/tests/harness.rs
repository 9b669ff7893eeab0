//! Tests of the test support itself: the simulator starts, serves SOAP and REST tagging over
//! our certificate, and goes away when dropped.

use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_soap::{SoapSession, XmlNode};
use bgw_tests::vcsim_tags::{Cardinality, ObjectRef, TagClient};
use bgw_tests::HarnessError;

fn small() -> VcsimOptions {
    VcsimOptions {
        clusters: 2,
        hosts_per_cluster: 1,
        standalone_hosts: 1,
        vms_per_pool: 3,
        ..Default::default()
    }
}

#[tokio::test]
async fn vcsim_serves_soap_with_our_certificate_and_checks_credentials() {
    let vc = Vcsim::start(small()).expect("start vcsim");
    assert!(vc.url().starts_with("https://127.0.0.1:"), "{}", vc.url());
    assert!(vc.url().ends_with("/sdk"));

    // The certificate served is the generated one: same SHA-256 thumbprint.
    let response = vc
        .http_client()
        .unwrap()
        .get(format!("{}/about", vc.base_url()))
        .send()
        .await
        .expect("TLS handshake with the generated CA");
    let tls = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let served = tls.peer_certificate().expect("peer certificate");
    assert_eq!(
        bgw_tests::tls::sha256_thumbprint(served),
        vc.thumbprint_sha256()
    );
    assert_eq!(vc.thumbprint_sha256().len(), 32 * 3 - 1);

    // A client that does not trust our CA is refused.
    let stranger = bgw_tests::tls::TestPki::generate("stranger").unwrap();
    let refused = stranger
        .http_client()
        .unwrap()
        .get(format!("{}/about", vc.base_url()))
        .send()
        .await;
    assert!(refused.is_err(), "a foreign CA must not validate vcsim");

    // Login checks the password; listing VMs matches the requested inventory.
    let wrong = SoapSession::login_as(&vc, vc.username(), "wrong-password").await;
    match wrong {
        Err(HarnessError::SoapFault { fault, .. }) => {
            assert!(fault.contains("InvalidLogin"), "{fault}")
        }
        other => panic!("expected InvalidLogin, got {other:?}"),
    }
    let mut soap = SoapSession::login(&vc).await.expect("login");
    let vms = soap.list_vms().await.expect("list VMs");
    assert_eq!(vms.len() as u32, small().expected_vm_count());
    assert_eq!(vms.len(), 9);
    for vm in &vms {
        assert!(vm.moref.starts_with("vm-"), "{vm:?}");
        assert!(
            !vm.name.is_empty() && vm.instance_uuid.len() == 36,
            "{vm:?}"
        );
    }
    let mut uuids: Vec<_> = vms.iter().map(|v| v.instance_uuid.clone()).collect();
    uuids.dedup();
    assert_eq!(uuids.len(), vms.len(), "instance UUIDs are unique");

    // Sessions can be listed and terminated; logging out closes ours.
    let other = SoapSession::login(&vc).await.expect("second login");
    let sessions = soap.sessions().await.expect("session list");
    let keys: Vec<&str> = sessions.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&soap.cookie()) && keys.contains(&other.cookie()),
        "{sessions:?}"
    );
    assert!(sessions.iter().all(|(_, user)| user == vc.username()));
    soap.terminate_sessions(&[other.cookie()])
        .await
        .expect("terminate");
    let after: Vec<String> = soap
        .sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(!after.iter().any(|k| k == other.cookie()), "{after:?}");
    match other.logout().await {
        Err(HarnessError::SoapFault { fault, .. }) => {
            assert!(fault.contains("NotAuthenticated"), "{fault}")
        }
        other => panic!("a terminated session must be NotAuthenticated, got {other:?}"),
    }
    soap.logout().await.expect("logout");
}

#[tokio::test]
async fn tags_can_be_created_attached_and_read_back() {
    let vc = Vcsim::start(VcsimOptions::default()).expect("start vcsim");
    let mut soap = SoapSession::login(&vc).await.unwrap();
    let vms = soap.list_vms().await.unwrap();
    assert_eq!(vms.len(), 4);

    let tags = TagClient::login(&vc).await.expect("REST login");
    let category = tags
        .create_category("backup-policy", Cardinality::Single)
        .await
        .unwrap();
    let gold = tags.create_tag(&category, "gold").await.unwrap();
    let silver = tags.create_tag(&category, "silver").await.unwrap();
    let info = tags.get_tag(&gold).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.category_id.as_str()),
        ("gold", category.as_str())
    );
    assert_eq!(
        tags.get_category(&category).await.unwrap().name,
        "backup-policy"
    );

    let first_two: Vec<&str> = vms[..2].iter().map(|v| v.moref.as_str()).collect();
    tags.attach_tag_to_vms(&gold, &first_two).await.unwrap();
    tags.attach_tag_to_vms(&silver, &[vms[2].moref.as_str()])
        .await
        .unwrap();

    let objects: Vec<ObjectRef> = vms.iter().map(|v| ObjectRef::vm(&v.moref)).collect();
    let attached = tags.list_attached_tags(&objects).await.unwrap();
    assert_eq!(attached[&objects[0]], vec![gold.clone()]);
    assert_eq!(attached[&objects[1]], vec![gold.clone()]);
    assert_eq!(attached[&objects[2]], vec![silver.clone()]);
    assert!(attached[&objects[3]].is_empty());

    tags.detach_tag(&gold, &objects[0]).await.unwrap();
    tags.delete_tag(&silver).await.unwrap();
    let attached = tags.list_attached_tags(&objects).await.unwrap();
    assert!(attached[&objects[0]].is_empty());
    assert_eq!(attached[&objects[1]], vec![gold]);
    assert!(attached[&objects[2]].is_empty());

    // Requests without a session are refused.
    let anonymous = vc
        .http_client()
        .unwrap()
        .get(format!("{}/rest/com/vmware/cis/tagging/tag", vc.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    tags.logout().await.unwrap();
}

#[tokio::test]
async fn vcsim_is_killed_on_drop_and_restarts_on_the_same_port() {
    let mut vc = Vcsim::start(VcsimOptions::default()).expect("start vcsim");
    let addr = vc.addr();
    let thumbprint = vc.thumbprint_sha256();
    let client = vc.http_client().unwrap();

    vc.restart().expect("restart");
    assert_eq!(vc.addr(), addr);
    assert_eq!(vc.thumbprint_sha256(), thumbprint);
    let mut soap = SoapSession::login(&vc).await.expect("login after restart");
    assert_eq!(soap.list_vms().await.unwrap().len(), 4);

    vc.restart_with_new_certificate()
        .expect("restart with a new certificate");
    assert_eq!(vc.addr(), addr);
    assert_ne!(vc.thumbprint_sha256(), thumbprint);

    drop(vc);
    let after = client.get(format!("https://{addr}/about")).send().await;
    assert!(after.is_err(), "vcsim still answers after drop: {after:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "port {addr} still open"
    );
}

#[test]
fn xml_parser_reads_faults_and_namespaced_attributes() {
    let node = XmlNode::parse(
        r#"<?xml version="1.0"?><e:Envelope xmlns:e="x" xmlns:xsi="y"><e:Body><v xsi:type="xsd:string">a &amp; b</v></e:Body></e:Envelope>"#,
    )
    .unwrap();
    assert_eq!(node.name, "Envelope");
    let v = node.find("v").unwrap();
    assert_eq!(v.text, "a & b");
    assert_eq!(v.attr("type"), Some("xsd:string"));
    assert!(XmlNode::parse("<a><b></a>").is_err());
}

#[tokio::test]
async fn vms_can_be_renamed_powered_off_and_destroyed() {
    let vc = Vcsim::start(VcsimOptions::default()).expect("start vcsim");
    let mut soap = SoapSession::login(&vc).await.unwrap();
    let vms = soap.list_vms().await.unwrap();
    assert!(
        vms.iter().all(|vm| vm.power_state == "poweredOn"),
        "{vms:?}"
    );

    soap.rename("VirtualMachine", &vms[0].moref, "renamed")
        .await
        .unwrap();
    soap.power_off_vm(&vms[1].moref).await.unwrap();
    match soap.power_off_vm(&vms[1].moref).await {
        Err(HarnessError::SoapFault { fault, .. }) => {
            assert!(fault.contains("InvalidPowerState"), "{fault}")
        }
        other => panic!("powering off twice must fail, got {other:?}"),
    }
    soap.destroy_vm(&vms[1].moref).await.unwrap(); // already off
    soap.destroy_vm(&vms[2].moref).await.unwrap(); // powered on: switched off first

    let after = soap.list_vms().await.unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    let renamed = after.iter().find(|vm| vm.moref == vms[0].moref).unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.instance_uuid, vms[0].instance_uuid);
    assert!(!after
        .iter()
        .any(|vm| vm.moref == vms[1].moref || vm.moref == vms[2].moref));
}
