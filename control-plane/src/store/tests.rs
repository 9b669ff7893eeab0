use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn gateway(n: u32) -> GatewayRecord {
    GatewayRecord {
        arn: format!("arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-{n:08x}"),
        display_name: format!("gw-{n}"),
        gateway_type: "BACKUP_VM".into(),
        created: now(),
        hypervisor_arn: None,
        last_seen: None,
        maintenance_start_time: None,
        next_update_availability: None,
        software_version: None,
        timezone: None,
        update_requested: None,
        reported: Default::default(),
    }
}

fn hypervisor(n: u32) -> HypervisorRecord {
    HypervisorRecord {
        arn: format!("arn:aws:backup-gateway:us-east-1:123456789012:hypervisor/hype-{n:08x}"),
        name: format!("hv-{n}"),
        host: "vcenter.example.com".into(),
        username: None,
        password: Some(crate::secret::Secret::new("pw")),
        kms_key_arn: None,
        log_group_arn: None,
        state: HypervisorState::Pending,
        sync_status: None,
        sync_message: None,
        last_successful_sync: None,
        property_mappings: vec![],
        iam_role_arn: None,
        gateway_arn: None,
    }
}

fn key(store: &Store, k: &str) {
    store
        .insert_activation_key(&ActivationKeyRecord {
            key: k.into(),
            created: now(),
            expires: now() + Duration::minutes(30),
            state: KeyState::Available,
        })
        .unwrap();
}

#[test]
fn unused_keys_are_forgotten_a_grace_period_after_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    key(&store, "USED");
    key(&store, "UNUSED");
    store
        .create_gateway("USED", now(), &gateway(1), &Tags::new())
        .unwrap();
    let grace = Duration::days(1);
    // Expired an hour ago: kept, and CreateGateway still says why it refuses.
    let soon = now() + Duration::minutes(90);
    assert_eq!(store.prune_expired_activation_keys(soon, grace).unwrap(), 0);
    let late = store.create_gateway("UNUSED", soon, &gateway(2), &Tags::new());
    assert!(matches!(late, Err(StoreError::Invalid(m)) if m.contains("expired")));
    // A day and more after expiry: forgotten; the consumed key stays.
    let later = now() + Duration::days(2);
    assert_eq!(
        store.prune_expired_activation_keys(later, grace).unwrap(),
        1
    );
    assert!(store.get_activation_key("UNUSED").unwrap().is_none());
    assert!(store.get_activation_key("USED").unwrap().is_some());
    let again = store.create_gateway("USED", later, &gateway(3), &Tags::new());
    assert!(matches!(again, Err(StoreError::Conflict(m)) if m.contains("already used")));
}

#[test]
fn activation_key_is_consumed_once_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    key(&store, "K1");
    store
        .create_gateway("K1", now(), &gateway(1), &Tags::new())
        .unwrap();
    let again = store.create_gateway("K1", now(), &gateway(2), &Tags::new());
    assert!(matches!(again, Err(StoreError::Conflict(m)) if m.contains("already used")));
    key(&store, "K2");
    let late = store.create_gateway(
        "K2",
        now() + Duration::minutes(31),
        &gateway(3),
        &Tags::new(),
    );
    assert!(matches!(late, Err(StoreError::Invalid(m)) if m.contains("expired")));
    assert!(store.get_gateway(&gateway(3).arn).is_err());
}

#[test]
fn survives_reopen_and_refuses_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        key(&store, "K1");
        store
            .create_gateway("K1", now(), &gateway(1), &Tags::new())
            .unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_gateway(&gateway(1).arn).unwrap().display_name,
        "gw-1"
    );
    drop(store);

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("notes.txt"), "hello").unwrap();
    let err = Store::open(foreign.path()).err().unwrap();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");

    let file = foreign.path().join("notes.txt");
    assert!(Store::open(&file).is_err());
}

#[test]
fn association_conflicts_and_delete_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    key(&store, "K1");
    key(&store, "K2");
    store
        .create_gateway("K1", now(), &gateway(1), &Tags::new())
        .unwrap();
    store
        .create_gateway("K2", now(), &gateway(2), &Tags::new())
        .unwrap();
    store
        .insert_hypervisor(&hypervisor(1), &Tags::new())
        .unwrap();
    store
        .insert_hypervisor(&hypervisor(2), &Tags::new())
        .unwrap();
    store
        .associate(&gateway(1).arn, &hypervisor(1).arn)
        .unwrap();
    assert!(matches!(
        store.associate(&gateway(1).arn, &hypervisor(2).arn),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.associate(&gateway(2).arn, &hypervisor(1).arn),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.delete_hypervisor(&hypervisor(1).arn),
        Err(StoreError::Conflict(_))
    ));
    store.disassociate(&gateway(1).arn).unwrap();
    store.delete_hypervisor(&hypervisor(1).arn).unwrap();
    assert!(matches!(
        store.get_hypervisor(&hypervisor(1).arn),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn pages_are_ordered_by_arn_and_resume_after_the_last_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for n in [5, 1, 4, 2, 3] {
        store
            .insert_hypervisor(&hypervisor(n), &Tags::new())
            .unwrap();
    }
    let (first, next) = store.list_hypervisors(None, 2).unwrap();
    assert_eq!(
        first.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["hv-1", "hv-2"]
    );
    // A record inserted before the cursor does not shift the next page.
    store
        .insert_hypervisor(&hypervisor(0), &Tags::new())
        .unwrap();
    let (second, next) = store.list_hypervisors(next.as_deref(), 2).unwrap();
    assert_eq!(
        second.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["hv-3", "hv-4"]
    );
    let (third, next) = store.list_hypervisors(next.as_deref(), 2).unwrap();
    assert_eq!(third.len(), 1);
    assert!(next.is_none());
}

#[test]
fn vms_are_keyed_by_instance_uuid_and_tags_need_a_resource() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let hv = hypervisor(1);
    store.insert_hypervisor(&hv, &Tags::new()).unwrap();
    let a = store
        .upsert_vm(
            &hv.arn,
            "uuid-1",
            "arn:aws:backup-gateway:us-east-1:1:vm/vm-1",
            |vm| vm.name = "a".into(),
        )
        .unwrap();
    let b = store
        .upsert_vm(
            &hv.arn,
            "uuid-1",
            "arn:aws:backup-gateway:us-east-1:1:vm/vm-2",
            |vm| vm.name = "b".into(),
        )
        .unwrap();
    assert_eq!(a.arn, b.arn);
    assert_eq!(store.get_vm(&a.arn).unwrap().name, "b");
    let mut tags = Tags::new();
    tags.insert("k".into(), "v".into());
    store.tag_resource(&a.arn, &tags, 50).unwrap();
    assert_eq!(store.get_tags(&a.arn).unwrap(), tags);
    assert!(store
        .tag_resource("arn:aws:backup-gateway:us-east-1:1:vm/vm-404", &tags, 50)
        .is_err());
}

#[test]
fn concurrent_activations_with_one_key_let_exactly_one_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    key(&store, "SHARED");
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let store = store.clone();
                s.spawn(move || {
                    store
                        .create_gateway("SHARED", now(), &gateway(n), &Tags::new())
                        .is_ok() as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    let (gateways, _) = store.list_gateways(None, 100).unwrap();
    assert_eq!(gateways.len(), 1);
}

#[test]
fn concurrent_associations_never_share_a_hypervisor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .insert_hypervisor(&hypervisor(1), &Tags::new())
        .unwrap();
    for n in 0..6 {
        key(&store, &format!("K{n}"));
        store
            .create_gateway(&format!("K{n}"), now(), &gateway(n), &Tags::new())
            .unwrap();
    }
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|n| {
                let store = store.clone();
                s.spawn(move || {
                    store.associate(&gateway(n).arn, &hypervisor(1).arn).is_ok() as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(winners, 1);
    let owner = store
        .get_hypervisor(&hypervisor(1).arn)
        .unwrap()
        .gateway_arn
        .unwrap();
    let (gateways, _) = store.list_gateways(None, 100).unwrap();
    let linked: Vec<_> = gateways
        .iter()
        .filter(|g| g.hypervisor_arn.is_some())
        .collect();
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0].arn, owner);
}

#[test]
fn a_record_that_cannot_be_decoded_keeps_the_decoding_error() {
    use std::error::Error as _;
    let err = decode::<GatewayRecord>(b"gw-1", b"{not json").unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { key, .. } if key == "gw-1"),
        "{err}"
    );
    assert!(err.source().unwrap().is::<serde_json::Error>(), "{err:?}");
}
