//! The client against a real vCenter API: govmomi's simulator.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_soap::SoapSession;
use bgw_tests::vcsim_tags::{Cardinality as TestCardinality, TagClient};
use futures::StreamExt;
use vsphere_client::{
    CancellationToken, Change, Client, ConnectOptions, Error, ErrorKind, Thumbprint, Trust,
};

fn options(vc: &Vcsim, trust: Trust) -> ConnectOptions {
    ConnectOptions::new(vc.host_port(), vc.username(), vc.password(), trust)
}

fn pinned(vc: &Vcsim) -> Trust {
    Trust::Thumbprint(vc.thumbprint_sha256().parse().expect("harness thumbprint"))
}

async fn connect(vc: &Vcsim) -> Client {
    Client::connect(options(vc, pinned(vc)))
        .await
        .expect("connect")
        .0
}

/// Number of sessions the simulator's SessionManager holds.
async fn session_count(admin: &mut SoapSession) -> usize {
    let resp = admin
        .call(
            "RetrievePropertiesEx",
            r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>SessionManager</type><pathSet>sessionList</pathSet></propSet><objectSet><obj type="SessionManager">SessionManager</obj></objectSet></specSet><options/>"#,
        )
        .await
        .expect("read sessionList");
    resp.find("val")
        .map(|v| v.children_named("UserSession").count())
        .unwrap_or(0)
}

async fn session_keys(admin: &mut SoapSession) -> Vec<String> {
    let resp = admin
        .call(
            "RetrievePropertiesEx",
            r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>SessionManager</type><pathSet>sessionList</pathSet></propSet><objectSet><obj type="SessionManager">SessionManager</obj></objectSet></specSet><options/>"#,
        )
        .await
        .expect("read sessionList");
    resp.find("val")
        .map(|v| {
            v.children_named("UserSession")
                .filter_map(|s| s.child("key").map(|k| k.text.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn login_and_logout_leave_no_session_behind() {
    let vc = Vcsim::start(VcsimOptions::default()).unwrap();
    let mut admin = SoapSession::login(&vc).await.unwrap();
    let before = session_count(&mut admin).await;
    let (client, info) = Client::connect(options(&vc, pinned(&vc))).await.unwrap();
    assert_eq!(
        info.seen_thumbprint.map(|t| t.to_string()),
        Some(vc.thumbprint_sha256().to_uppercase())
    );
    assert_eq!(session_count(&mut admin).await, before + 1);
    client.keepalive().await.unwrap();
    client.logout().await.unwrap();
    assert_eq!(session_count(&mut admin).await, before);
}

#[tokio::test]
async fn logs_in_again_after_the_server_drops_the_session() {
    let vc = Vcsim::start(VcsimOptions::default()).unwrap();
    let mut admin = SoapSession::login(&vc).await.unwrap();
    let client = connect(&vc).await;
    let first = client.list_vms().await.unwrap();
    // Terminate every session except the admin's own.
    let keys: Vec<String> = session_keys(&mut admin)
        .await
        .into_iter()
        .filter(|k| k != admin.cookie())
        .collect();
    assert!(!keys.is_empty());
    let args: String = keys
        .iter()
        .map(|k| format!("<sessionId>{k}</sessionId>"))
        .collect();
    admin
        .call(
            "TerminateSession",
            &format!(r#"<_this type="SessionManager">SessionManager</_this>{args}"#),
        )
        .await
        .unwrap();
    // Concurrent callers share one new login.
    let (a, b, c) = tokio::join!(client.list_vms(), client.keepalive(), client.list_vms());
    assert_eq!(a.unwrap(), first);
    b.unwrap();
    assert_eq!(c.unwrap().len(), first.len());
    client.logout().await.unwrap();
}

#[tokio::test]
async fn listing_matches_the_simulator() {
    let opts = VcsimOptions {
        clusters: 2,
        vms_per_pool: 3,
        folders: 1,
        ..VcsimOptions::default()
    };
    let expected = opts.expected_vm_count() as usize;
    let vc = Vcsim::start(opts).unwrap();
    let mut admin = SoapSession::login(&vc).await.unwrap();
    let truth = admin.list_vms().await.unwrap();
    let mut o = options(&vc, pinned(&vc));
    o.page_size = 4; // several pages from one answer
    let (client, _) = Client::connect(o).await.unwrap();
    let mut pages = Vec::new();
    let stats = client.inventory(|p| pages.push(p)).await.unwrap();
    assert!(
        pages.iter().all(|p| p.len() <= 4) && pages.len() >= 2,
        "{stats:?}"
    );
    let mut vms: Vec<_> = pages.into_iter().flatten().collect();
    vms.sort_by(|a, b| a.moref.cmp(&b.moref));
    assert_eq!(vms.len(), expected);
    assert_eq!(vms.len(), truth.len());
    for (vm, t) in vms.iter().zip(&truth) {
        assert_eq!(vm.moref, t.moref);
        assert_eq!(vm.name, t.name);
        assert_eq!(vm.instance_uuid.as_deref(), Some(t.instance_uuid.as_str()));
        assert_eq!(vm.power_state.as_str(), t.power_state);
        assert!(vm.bios_uuid.is_some());
        // The path resolves to this very VM on the server.
        let found = admin
            .call(
                "FindByInventoryPath",
                &format!(
                    r#"<_this type="SearchIndex">SearchIndex</_this><inventoryPath>{}</inventoryPath>"#,
                    vm.path
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            found.child("returnval").map(|r| r.text.as_str()),
            Some(vm.moref.as_str()),
            "path {} of {}",
            vm.path,
            vm.moref
        );
        // The ESXi host is the one the server reports.
        let host = admin
            .call(
                "RetrievePropertiesEx",
                &format!(
                    r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>runtime.host</pathSet></propSet><objectSet><obj type="VirtualMachine">{}</obj></objectSet></specSet><options/>"#,
                    vm.moref
                ),
            )
            .await
            .unwrap();
        let host_ref = host.find("val").unwrap().text.clone();
        let host_name = admin
            .call(
                "RetrievePropertiesEx",
                &format!(
                    r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>HostSystem</type><pathSet>name</pathSet></propSet><objectSet><obj type="HostSystem">{host_ref}</obj></objectSet></specSet><options/>"#
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            vm.esxi_host.as_deref(),
            Some(host_name.find("val").unwrap().text.as_str())
        );
        // The listing leaves the devices out; vcsim gives every VM one 1 MiB thin disk on its
        // datastore, read on request.
        assert!(vm.disks.is_empty(), "{vm:?}");
        let disks = client.disks_for(&[vm.moref.as_str()]).await.unwrap();
        let disks = &disks[&vm.moref];
        assert_eq!(disks.len(), 1, "{vm:?}");
        let disk = &disks[0];
        assert_eq!(disk.capacity_bytes, 1024 * 1024);
        assert!(disk.file_name.ends_with(".vmdk"), "{disk:?}");
        assert!(disk.file_name.starts_with('['), "{disk:?}");
        assert!(!disk.label.is_empty());
        assert!(!vm.datastores.is_empty());
        assert!(vm
            .resource_pool
            .as_deref()
            .is_some_and(|p| p.starts_with('/')));
    }
    client.logout().await.unwrap();
}

#[tokio::test]
async fn tags_match_what_was_attached() {
    let vc = Vcsim::start(VcsimOptions {
        vms_per_pool: 3,
        ..VcsimOptions::default()
    })
    .unwrap();
    let mut admin = SoapSession::login(&vc).await.unwrap();
    let vms = admin.list_vms().await.unwrap();
    let tagger = TagClient::login(&vc).await.unwrap();
    let env = tagger
        .create_category("Environment", TestCardinality::Single)
        .await
        .unwrap();
    let team = tagger
        .create_category("Team", TestCardinality::Multiple)
        .await
        .unwrap();
    let prod = tagger.create_tag(&env, "prod").await.unwrap();
    let dev = tagger.create_tag(&env, "dev").await.unwrap();
    let web = tagger.create_tag(&team, "web").await.unwrap();
    let _unused = tagger.create_tag(&team, "db").await.unwrap();
    let all: Vec<&str> = vms.iter().map(|v| v.moref.as_str()).collect();
    let (first, rest) = all.split_at(2);
    tagger.attach_tag_to_vms(&prod, first).await.unwrap();
    tagger.attach_tag_to_vms(&dev, rest).await.unwrap();
    tagger.attach_tag_to_vms(&web, &all[..1]).await.unwrap();

    let client = connect(&vc).await;
    let tags = client.tags().await.unwrap();
    assert_eq!(
        client.rest_flavor().await,
        Some(vsphere_client::RestFlavor::Rest)
    );
    assert_eq!(tags.categories.len(), 2);
    assert_eq!(tags.tags.len(), 4);
    let mut seen = BTreeMap::new();
    for vm in &vms {
        let names: Vec<String> = tags
            .of_vm(&vm.moref)
            .into_iter()
            .map(|t| format!("{}:{}", t.category, t.name))
            .collect();
        seen.insert(vm.moref.clone(), names);
    }
    assert_eq!(seen[first[0]], ["Environment:prod", "Team:web"]);
    assert_eq!(seen[first[1]], ["Environment:prod"]);
    for m in rest {
        assert_eq!(seen[*m], ["Environment:dev"]);
    }
    // The catalogue is cached: a second read costs only the batch call.
    let before = client.request_count();
    let morefs: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    client.tags_for(&morefs).await.unwrap();
    assert_eq!(client.request_count() - before, 1);
    client.logout().await.unwrap();
}

async fn next_change(
    stream: &mut futures::stream::BoxStream<'static, vsphere_client::Result<Change>>,
) -> Change {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("a change within 30 s")
        .expect("stream open")
        .expect("no watch error")
}

#[tokio::test]
async fn watch_sees_rename_new_and_removed_vms() {
    let vc = Vcsim::start(VcsimOptions::default()).unwrap();
    let mut admin = SoapSession::login(&vc).await.unwrap();
    let vms = admin.list_vms().await.unwrap();
    let client = connect(&vc).await;
    let cancel = CancellationToken::new();
    let mut changes = client.watch(cancel.clone());
    let mut entered = HashSet::new();
    for _ in 0..vms.len() {
        match next_change(&mut changes).await {
            Change::Enter(vm) => entered.insert(vm.moref),
            other => panic!("expected the initial listing, got {other:?}"),
        };
    }
    assert_eq!(entered.len(), vms.len());

    // Rename.
    let target = &vms[0];
    admin
        .rename("VirtualMachine", &target.moref, "renamed-vm")
        .await
        .unwrap();
    match next_change(&mut changes).await {
        Change::Modify(vm) => {
            assert_eq!(vm.moref, target.moref);
            assert_eq!(vm.name, "renamed-vm");
            assert!(vm.path.ends_with("/renamed-vm"), "{}", vm.path);
        }
        other => panic!("expected a modify, got {other:?}"),
    }

    // A new VM: clone the renamed one into the same folder.
    let parent = admin
        .call(
            "RetrievePropertiesEx",
            &format!(
                r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>parent</pathSet></propSet><objectSet><obj type="VirtualMachine">{}</obj></objectSet></specSet><options/>"#,
                target.moref
            ),
        )
        .await
        .unwrap();
    let folder = parent.find("val").unwrap().text.clone();
    admin
        .call(
            "CloneVM_Task",
            &format!(
                r#"<_this type="VirtualMachine">{}</_this><folder type="Folder">{folder}</folder><name>clone-1</name><spec><location/><template>false</template><powerOn>false</powerOn></spec>"#,
                target.moref
            ),
        )
        .await
        .unwrap();
    let clone_moref = loop {
        match next_change(&mut changes).await {
            Change::Enter(vm) => {
                assert_eq!(vm.name, "clone-1");
                break vm.moref;
            }
            Change::Modify(_) => continue, // the clone source may report a change too
            other => panic!("expected an enter, got {other:?}"),
        }
    };

    // Remove it again.
    admin
        .call(
            "UnregisterVM",
            &format!(r#"<_this type="VirtualMachine">{clone_moref}</_this>"#),
        )
        .await
        .unwrap();
    loop {
        match next_change(&mut changes).await {
            Change::Leave { moref } => {
                assert_eq!(moref, clone_moref);
                break;
            }
            Change::Modify(_) => continue,
            other => panic!("expected a leave, got {other:?}"),
        }
    }
    cancel.cancel();
    client.logout().await.unwrap();
}

#[tokio::test]
async fn certificate_trust_modes() {
    let mut vc = Vcsim::start(VcsimOptions::default()).unwrap();
    // The right pin and the CA file are accepted.
    let (c, _) = Client::connect(options(&vc, pinned(&vc))).await.unwrap();
    c.logout().await.unwrap();
    let (c, _) = Client::connect(options(&vc, Trust::CaFile(vc.ca_file())))
        .await
        .unwrap();
    c.logout().await.unwrap();
    // Trust on first use reports what it saw.
    let (c, info) = Client::connect(options(&vc, Trust::TrustOnFirstUse))
        .await
        .unwrap();
    let seen = info.seen_thumbprint.expect("thumbprint reported");
    assert_eq!(seen, vc.thumbprint_sha256().parse::<Thumbprint>().unwrap());
    c.logout().await.unwrap();
    // The system roots do not know the test CA: refused, with the thumbprint shown.
    let err = Client::connect(options(&vc, Trust::SystemRoots))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains(&seen.to_string()), "{err}");

    // After a certificate change the old pin is refused, showing both thumbprints.
    vc.restart_with_new_certificate().unwrap();
    let err = Client::connect(options(&vc, Trust::Thumbprint(seen)))
        .await
        .unwrap_err();
    match &err {
        Error::Tls {
            expected: Some(e),
            seen: Some(s),
            ..
        } => {
            assert_eq!(*e, seen.to_string());
            assert_eq!(*s, vc.thumbprint_sha256().to_uppercase());
        }
        other => panic!("expected a TLS pin error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("expected") && msg.contains(&seen.to_string()),
        "{msg}"
    );
}

#[tokio::test]
async fn errors_tell_authentication_from_network() {
    let vc = Vcsim::start(VcsimOptions::default()).unwrap();
    let mut o = options(&vc, pinned(&vc));
    o.password = "wrong".into();
    let err = Client::connect(o).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let o = ConnectOptions::new(
        format!("127.0.0.1:{port}"),
        "u",
        "p",
        Trust::TrustOnFirstUse,
    );
    let err = Client::connect(o).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.is_unreachable());
    // The HTTP client's error travels with it, with its whole chain of causes.
    let cause = std::error::Error::source(&err).expect("the connection error is kept");
    assert!(cause.is::<reqwest::Error>(), "{cause:?}");
}
