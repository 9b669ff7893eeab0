//! Metadata sync against a real vCenter simulator, driven by aws-cli: counts, paths, host
//! names, VMware tags and mapped AWS tags; renames, additions and removals picked up by the
//! change watch without another sync.

mod sync_support;

use std::time::{Duration, Instant};

use bgw_tests::vcsim_soap::SoapSession;
use bgw_tests::vcsim_tags::{ObjectRef, TagClient};
use serde_json::Value;
use sync_support::{small_inventory, Setup};

fn by_name<'a>(vms: &'a [Value], name: &str) -> Option<&'a Value> {
    vms.iter().find(|v| v["Name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_uploads_vms_tags_and_mapped_tags_then_follows_changes() {
    let s = Setup::start(small_inventory()).await;
    let expected = s.vcsim.options().expected_vm_count() as usize;
    let hv = s.import_and_associate();
    s.aws(&[
        "put-hypervisor-property-mappings",
        "--hypervisor-arn",
        &hv,
        "--iam-role-arn",
        "arn:aws:iam::123456789012:role/sync-test",
        "--vmware-to-aws-tag-mappings",
        "VmwareCategory=env,VmwareTagName=prod,AwsTagKey=environment,AwsTagValue=production",
        "VmwareCategory=tier,VmwareTagName=gold,AwsTagKey=backup,AwsTagValue=daily",
    ]);
    s.wait_hypervisor(&hv, "ONLINE", |h| (h["State"] == "ONLINE").then_some(()))
        .await;
    // The mappings reach the agent through a configuration change; then sync on request.
    s.wait_status("mappings applied", |st| {
        (st["config_version"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.aws(&[
        "start-virtual-machines-metadata-sync",
        "--hypervisor-arn",
        &hv,
    ]);
    let h = s
        .wait_hypervisor(&hv, "sync SUCCEEDED", |h| {
            (h["LatestMetadataSyncStatus"] == "SUCCEEDED").then(|| h.clone())
        })
        .await;
    assert!(h.get("LastSuccessfulMetadataSyncTime").is_some(), "{h:#}");
    // The status names the ESXi hosts of the sync (the console tests 443 and 902 on each) and
    // the thumbprint of the vCenter certificate the agent pinned.
    let st = s
        .wait_status("the ESXi hosts in the status", |st| {
            (st["sync"]["esxi_hosts"]
                .as_array()
                .is_some_and(|h| !h.is_empty()))
            .then(|| st.clone())
        })
        .await;
    let thumbprint = st["hypervisor"]["thumbprint"].as_str().unwrap_or_default();
    assert_eq!(thumbprint.len(), 95, "{st:#}");

    let vms = s.vms(&hv);
    assert_eq!(vms.len(), expected, "{vms:#?}");
    let mut soap = SoapSession::login(&s.vcsim).await.unwrap();
    let mut real = soap.list_vms().await.unwrap();
    real.sort();
    for v in &vms {
        let path = v["Path"].as_str().unwrap();
        assert!(path.starts_with("/DC0/vm/"), "{v:#}");
        assert!(path.ends_with(v["Name"].as_str().unwrap()), "{v:#}");
        assert!(!v["HostName"].as_str().unwrap_or("").is_empty(), "{v:#}");
    }

    // The first VM (by moref) carries env/prod and tier/gold.
    let first = by_name(&vms, &real[0].name)
        .expect("first VM listed")
        .clone();
    let arn = first["ResourceArn"].as_str().unwrap().to_string();
    let detail = s.aws(&["get-virtual-machine", "--resource-arn", &arn]);
    let tags = detail["VirtualMachine"]["VmwareTags"].to_string();
    assert!(tags.contains("prod") && tags.contains("gold"), "{detail:#}");
    let aws_tags = s.aws(&["list-tags-for-resource", "--resource-arn", &arn])["Tags"].to_string();
    assert!(
        aws_tags.contains("environment") && aws_tags.contains("production"),
        "{aws_tags}"
    );
    assert!(
        aws_tags.contains("backup") && aws_tags.contains("daily"),
        "{aws_tags}"
    );
    // The second one is env/dev: only the tier mapping applies.
    let second = by_name(&vms, &real[1].name).unwrap();
    let second_tags = s.aws(&[
        "list-tags-for-resource",
        "--resource-arn",
        second["ResourceArn"].as_str().unwrap(),
    ])["Tags"]
        .to_string();
    assert!(!second_tags.contains("production"), "{second_tags}");

    // Rename: the same VM (same ARN) shows the new name within seconds, without a sync.
    let started = Instant::now();
    soap.rename("VirtualMachine", &real[0].moref, "renamed-by-test")
        .await
        .unwrap();
    let renamed = s
        .wait_hypervisor(&hv, "rename visible", |_| {
            let d = s.aws(&["get-virtual-machine", "--resource-arn", &arn]);
            (d["VirtualMachine"]["Name"] == "renamed-by-test").then_some(d)
        })
        .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(renamed["VirtualMachine"]["Path"]
        .as_str()
        .unwrap()
        .ends_with("/renamed-by-test"));
    assert_eq!(
        s.vms(&hv).len(),
        expected,
        "a rename does not duplicate the VM"
    );

    // Detaching a VMware tag takes its mapped AWS tag away at the next sync; a tag set with
    // TagResource under another key stays.
    s.aws(&[
        "tag-resource",
        "--resource-arn",
        &arn,
        "--tags",
        "Key=owner,Value=ops",
    ]);
    let tagging = TagClient::login(&s.vcsim).await.unwrap();
    let vm_ref = ObjectRef::vm(&real[0].moref);
    let attached = tagging
        .list_attached_tags(std::slice::from_ref(&vm_ref))
        .await
        .unwrap();
    let mut prod = None;
    for id in &attached[&vm_ref] {
        if tagging.get_tag(id).await.unwrap().name == "prod" {
            tagging.detach_tag(id, &vm_ref).await.unwrap();
            prod = Some(id.clone());
        }
    }
    let prod = prod.unwrap_or_else(|| panic!("env/prod was attached to {}", real[0].moref));
    s.aws(&[
        "start-virtual-machines-metadata-sync",
        "--hypervisor-arn",
        &hv,
    ]);
    let after = s
        .wait_hypervisor(&hv, "mapped tag removed", |_| {
            let t = s.aws(&["list-tags-for-resource", "--resource-arn", &arn])["Tags"].clone();
            (!t.to_string().contains("environment")).then_some(t)
        })
        .await
        .to_string();
    assert!(
        after.contains("backup") && after.contains("daily"),
        "{after}"
    );
    assert!(after.contains("owner") && after.contains("ops"), "{after}");
    let detail = s.aws(&["get-virtual-machine", "--resource-arn", &arn]);
    assert!(
        !detail["VirtualMachine"]["VmwareTags"]
            .to_string()
            .contains("prod"),
        "{detail:#}"
    );

    // Tags are not in vCenter's change feed: the agent's tag check (every 2 s here) notices a
    // new attachment and syncs without being asked.
    tagging
        .attach_tag_to_vms(&prod, &[real[0].moref.as_str()])
        .await
        .unwrap();
    s.wait_hypervisor(&hv, "attached tag mapped without a sync request", |_| {
        let t = s.aws(&["list-tags-for-resource", "--resource-arn", &arn])["Tags"].to_string();
        t.contains("environment").then_some(())
    })
    .await;

    // Removal: the VM leaves ListVirtualMachines.
    let gone = real[2].name.clone();
    if real[2].power_state == "poweredOn" {
        soap.call(
            "PowerOffVM_Task",
            &format!(r#"<_this type="VirtualMachine">{}</_this>"#, real[2].moref),
        )
        .await
        .unwrap();
    }
    soap.call(
        "UnregisterVM",
        &format!(r#"<_this type="VirtualMachine">{}</_this>"#, real[2].moref),
    )
    .await
    .unwrap();
    s.wait_hypervisor(&hv, "removal visible", |_| {
        by_name(&s.vms(&hv), &gone).is_none().then_some(())
    })
    .await;
    assert_eq!(s.vms(&hv).len(), expected - 1);

    // Addition: a clone appears.
    let parent = soap
        .call(
            "RetrievePropertiesEx",
            &format!(
                r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>VirtualMachine</type><pathSet>parent</pathSet></propSet><objectSet><obj type="VirtualMachine">{}</obj></objectSet></specSet><options/>"#,
                real[3].moref
            ),
        )
        .await
        .unwrap();
    let folder = parent.find("val").expect("parent folder").text.clone();
    soap.call(
        "CloneVM_Task",
        &format!(
            r#"<_this type="VirtualMachine">{}</_this><folder type="Folder">{folder}</folder><name>added-by-test</name><spec><location/><template>false</template><powerOn>false</powerOn></spec>"#,
            real[3].moref
        ),
    )
    .await
    .unwrap();
    s.wait_hypervisor(&hv, "addition visible", |_| {
        by_name(&s.vms(&hv), "added-by-test").map(|_| ())
    })
    .await;
    assert_eq!(s.vms(&hv).len(), expected);
}
