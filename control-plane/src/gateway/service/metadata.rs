//! Metadata syncs: reconciling the VMs a gateway reports with the catalogue, and the sync's
//! status.
//!
//! A batch is applied in one store transaction ([`MetadataStore`]): its VMs, their tags, the
//! removals, the sync's bookkeeping and, for the final batch, the removal of the VMs the sync
//! did not mention and the hypervisor's sync status, all or none. Each step is idempotent (an
//! upsert keyed by instance UUID, tag changes computed from what the VM record held, removal
//! by UUID), so a batch the gateway retries after a lost answer ends in the same state; the
//! final batch completes the sync at most once.

use std::cell::RefCell;

use bgw_protocol::metadata::{
    MetadataAck, MetadataBatch, SyncOutcome, SyncStatus as Reported, SyncStatusReport,
};
use chrono::{DateTime, Utc};

use super::Refusal;
use crate::arn::{ArnFactory, ResourceKind};
use crate::store::domain::{MetadataScope, MetadataStore, MetadataTx, TxStep};
use crate::store::{StoreError, SyncStatus, Tags, VmwareTag};

/// At most this many tags on a VM (the API's limit).
const MAX_TAGS: usize = 50;

/// Refuses reports about a hypervisor the gateway does not serve.
fn owned_hypervisor(tx: &dyn MetadataTx, gateway_arn: &str, hypervisor_arn: &str) -> TxStep<()> {
    let gw = tx.gateway(gateway_arn)?;
    if gw.hypervisor_arn.as_deref() != Some(hypervisor_arn) {
        return Err(StoreError::Invalid(format!(
            "hypervisor {hypervisor_arn} is not associated with gateway {gateway_arn}"
        ))
        .into());
    }
    Ok(())
}

/// Applies one batch of a sync (or of the change watch) from `gateway_arn`.
pub fn apply_batch(
    store: &dyn MetadataStore,
    arns: &ArnFactory,
    now: DateTime<Utc>,
    gateway_arn: &str,
    batch: &MetadataBatch,
) -> Result<MetadataAck, Refusal> {
    // What the committed transaction did, for the log (the transaction may run twice).
    let finished = RefCell::new(None);
    let scope = MetadataScope {
        hypervisor_arn: &batch.hypervisor_arn,
        sync_id: &batch.sync_id,
        completes: batch.complete.is_some(),
    };
    store.metadata_transaction(scope, &|tx| {
        *finished.borrow_mut() = None;
        owned_hypervisor(tx, gateway_arn, &batch.hypervisor_arn)?;
        if tx.sync_completed(&batch.sync_id)? {
            return Ok(());
        }
        *finished.borrow_mut() = apply_in(tx, arns, now, batch)?;
        Ok(())
    })?;
    if let Some((status, vms)) = finished.into_inner() {
        tracing::info!(hypervisor = %batch.hypervisor_arn, sync = %batch.sync_id, status = status.as_str(), vms, "metadata sync finished");
    }
    Ok(MetadataAck {
        accepted: batch.vms.len() as u32,
    })
}

/// The batch's changes, inside its transaction. Returns the sync's status and VM count if
/// this batch completed it.
fn apply_in(
    tx: &dyn MetadataTx,
    arns: &ArnFactory,
    now: DateTime<Utc>,
    batch: &MetadataBatch,
) -> TxStep<Option<(SyncStatus, usize)>> {
    let hv = &batch.hypervisor_arn;
    for vm in &batch.vms {
        let new_arn = arns.mint(ResourceKind::VirtualMachine, &mut rand::thread_rng());
        let mapped: Tags = vm
            .aws_tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        let mapped_keys: Vec<String> = mapped.keys().cloned().collect();
        // The keys the previous sync mapped.
        let previous = RefCell::new(Vec::new());
        let record = tx.upsert_vm(hv, &vm.instance_uuid, &new_arn, &|r| {
            *previous.borrow_mut() = r.mapped_tag_keys.clone();
            r.name = vm.name.clone();
            r.path = Some(vm.path.clone());
            r.host_name = Some(vm.host_name.clone());
            r.vmware_tags = vm
                .vmware_tags
                .iter()
                .map(|t| VmwareTag {
                    category: t.category.clone(),
                    name: t.name.clone(),
                    description: (!t.description.is_empty()).then(|| t.description.clone()),
                })
                .collect();
            r.mapped_tag_keys = mapped_keys.clone();
        })?;
        // A VMware tag detached (or a mapping removed) takes its AWS tag away too.
        let stale: Vec<String> = previous
            .into_inner()
            .into_iter()
            .filter(|k| !mapped.contains_key(k))
            .collect();
        if !stale.is_empty() {
            tx.untag_resource(&record.arn, &stale)?;
        }
        if !mapped.is_empty() {
            tx.tag_resource(&record.arn, &mapped, MAX_TAGS)?;
        }
    }
    for uuid in &batch.removed {
        tx.delete_vm_by_uuid(hv, uuid)?;
    }
    if !batch.is_watch() {
        let uuids: Vec<String> = batch.vms.iter().map(|v| v.instance_uuid.clone()).collect();
        tx.sync_seen(&batch.sync_id, &uuids)?;
    }
    let Some(outcome) = &batch.complete else {
        return Ok(None);
    };
    if !tx.complete_sync(&batch.sync_id)? {
        return Ok(None);
    }
    let seen = tx.take_sync_seen(&batch.sync_id)?;
    if !matches!(outcome, SyncOutcome::Failed { .. }) {
        for uuid in tx.vm_uuids(hv)? {
            if !seen.contains(&uuid) {
                tx.delete_vm_by_uuid(hv, &uuid)?;
            }
        }
    }
    let (status, message) = match outcome {
        SyncOutcome::Succeeded => (SyncStatus::Succeeded, None),
        SyncOutcome::PartiallyFailed { message } => {
            (SyncStatus::PartiallyFailed, Some(message.clone()))
        }
        SyncOutcome::Failed { message } => (SyncStatus::Failed, Some(message.clone())),
    };
    tx.update_hypervisor(hv, &|h| {
        h.sync_status = Some(status);
        h.sync_message = message.clone();
        if status != SyncStatus::Failed {
            h.last_successful_sync = Some(now);
        }
        Ok(())
    })?;
    Ok(Some((status, seen.len())))
}

/// Records a status the gateway reports for a running sync; ignored once the sync completed.
pub fn report_status(
    store: &dyn MetadataStore,
    gateway_arn: &str,
    report: &SyncStatusReport,
) -> Result<(), Refusal> {
    let status = match report.status {
        Reported::Created => SyncStatus::Created,
        Reported::Running => SyncStatus::Running,
        Reported::Failed => SyncStatus::Failed,
        Reported::PartiallyFailed => SyncStatus::PartiallyFailed,
        Reported::Succeeded => SyncStatus::Succeeded,
    };
    let scope = MetadataScope {
        hypervisor_arn: &report.hypervisor_arn,
        sync_id: &report.sync_id,
        completes: false,
    };
    store.metadata_transaction(scope, &|tx| {
        owned_hypervisor(tx, gateway_arn, &report.hypervisor_arn)?;
        if tx.sync_completed(&report.sync_id)? {
            return Ok(());
        }
        tx.update_hypervisor(&report.hypervisor_arn, &|h| {
            h.sync_status = Some(status);
            h.sync_message = report.message.clone();
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use bgw_protocol::metadata::{AwsTag, VmRecord as WireVm, VmwareTag as ReportedTag};

    use super::*;
    use crate::gateway::service::fixtures::{associated, gateway, now, GW, HV};
    use crate::store::domain::Catalogue;
    use crate::store::memory::{MemoryCatalogue, MemoryMetadata, MemorySyncs};
    use bgw_protocol::ErrorCode;

    fn arns() -> ArnFactory {
        ArnFactory::new("us-east-1", "123456789012")
    }

    fn vm(uuid: &str, name: &str, tags: &[(&str, &str)]) -> WireVm {
        WireVm {
            instance_uuid: uuid.into(),
            name: name.into(),
            path: "/DC0/vm".into(),
            host_name: "esx-1".into(),
            vmware_tags: tags
                .iter()
                .map(|(k, _)| ReportedTag {
                    category: "backup".into(),
                    name: (*k).into(),
                    description: String::new(),
                })
                .collect(),
            aws_tags: tags
                .iter()
                .map(|(k, v)| AwsTag {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    fn batch(sync: &str, n: u32, vms: Vec<WireVm>, complete: Option<SyncOutcome>) -> MetadataBatch {
        MetadataBatch {
            hypervisor_arn: HV.into(),
            sync_id: sync.into(),
            batch: n,
            vms,
            removed: Vec::new(),
            complete,
        }
    }

    fn names(catalogue: &MemoryCatalogue) -> Vec<String> {
        let mut names: Vec<String> = catalogue.vms(HV).into_iter().map(|v| v.name).collect();
        names.sort();
        names
    }

    fn memory<'a>(catalogue: &'a MemoryCatalogue, syncs: &'a MemorySyncs) -> MemoryMetadata<'a> {
        MemoryMetadata { catalogue, syncs }
    }

    fn apply(c: &MemoryCatalogue, s: &MemorySyncs, b: &MetadataBatch) -> MetadataAck {
        apply_batch(&memory(c, s), &arns(), now(), GW, b).unwrap()
    }

    #[test]
    fn a_full_sync_removes_the_vms_it_did_not_mention_and_completes_once() {
        let (c, s) = (associated(), MemorySyncs::default());
        apply(
            &c,
            &s,
            &batch(
                "s1",
                0,
                vec![vm("u1", "a", &[]), vm("u2", "b", &[]), vm("u3", "c", &[])],
                Some(SyncOutcome::Succeeded),
            ),
        );
        assert_eq!(names(&c), ["a", "b", "c"]);
        // The next sync no longer sees u2, in two batches.
        apply(&c, &s, &batch("s2", 0, vec![vm("u1", "a2", &[])], None));
        assert_eq!(
            names(&c),
            ["a2", "b", "c"],
            "nothing removed before the end"
        );
        let last = batch(
            "s2",
            1,
            vec![vm("u3", "c", &[])],
            Some(SyncOutcome::Succeeded),
        );
        assert_eq!(apply(&c, &s, &last).accepted, 1);
        assert_eq!(names(&c), ["a2", "c"]);
        let hv = c.get_hypervisor(HV).unwrap();
        assert_eq!(hv.sync_status, Some(SyncStatus::Succeeded));
        assert_eq!(hv.last_successful_sync, Some(now()));
        // The final batch retried after a lost answer changes nothing, even if the VMs changed
        // in between (a watch batch added one).
        let mut watch = batch("watch-1", 0, vec![vm("u4", "d", &[])], None);
        watch.removed = vec!["u3".into()];
        apply(&c, &s, &watch);
        assert_eq!(
            names(&c),
            ["a2", "d"],
            "the watch adds and removes, and removes nothing else"
        );
        c.update_hypervisor(HV, &|h| {
            h.sync_status = Some(SyncStatus::Running);
            Ok(())
        })
        .unwrap();
        assert_eq!(apply(&c, &s, &last).accepted, 1);
        assert_eq!(
            names(&c),
            ["a2", "d"],
            "the retried final batch removed nothing"
        );
        assert_eq!(
            c.get_hypervisor(HV).unwrap().sync_status,
            Some(SyncStatus::Running),
            "a completed sync is not completed again"
        );
    }

    #[test]
    fn a_failed_sync_removes_nothing() {
        let (c, s) = (associated(), MemorySyncs::default());
        apply(
            &c,
            &s,
            &batch(
                "s1",
                0,
                vec![vm("u1", "a", &[]), vm("u2", "b", &[])],
                Some(SyncOutcome::Succeeded),
            ),
        );
        let failed = SyncOutcome::Failed {
            message: "vCenter went away".into(),
        };
        apply(
            &c,
            &s,
            &batch("s2", 0, vec![vm("u1", "a", &[])], Some(failed)),
        );
        assert_eq!(names(&c), ["a", "b"]);
        let hv = c.get_hypervisor(HV).unwrap();
        assert_eq!(hv.sync_status, Some(SyncStatus::Failed));
        assert_eq!(hv.sync_message.as_deref(), Some("vCenter went away"));
    }

    #[test]
    fn mapped_tags_no_longer_derived_are_removed_and_others_kept() {
        let (c, s) = (associated(), MemorySyncs::default());
        apply(
            &c,
            &s,
            &batch(
                "s1",
                0,
                vec![vm("u1", "a", &[("tier", "gold"), ("team", "db")])],
                None,
            ),
        );
        let arn = c.vms(HV)[0].arn.clone();
        // A tag the customer set through the API is not the sync's to remove.
        c.tag_resource(&arn, &[("owner".to_string(), "ops".to_string())].into(), 50)
            .unwrap();
        apply(
            &c,
            &s,
            &batch(
                "watch-1",
                0,
                vec![vm("u1", "a", &[("tier", "silver")])],
                None,
            ),
        );
        let tags = c.tags(&arn);
        assert_eq!(tags.get("tier").map(String::as_str), Some("silver"));
        assert_eq!(tags.get("team"), None, "the stale mapped tag is removed");
        assert_eq!(tags.get("owner").map(String::as_str), Some("ops"));
        assert_eq!(c.vms(HV)[0].mapped_tag_keys, ["tier"]);
    }

    #[test]
    fn reports_about_a_hypervisor_the_gateway_does_not_serve_are_refused() {
        let c = MemoryCatalogue::default();
        c.put_gateway(gateway(None));
        let s = MemorySyncs::default();
        let refused = apply_batch(
            &memory(&c, &s),
            &arns(),
            now(),
            GW,
            &batch("s1", 0, vec![], None),
        )
        .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidRequest);
        let report = SyncStatusReport {
            hypervisor_arn: HV.into(),
            sync_id: "s1".into(),
            status: Reported::Running,
            message: None,
            at: now(),
        };
        assert!(report_status(&memory(&c, &s), GW, &report).is_err());
    }

    /// What a test reads back from a store after a batch.
    struct View<'a> {
        store: &'a dyn MetadataStore,
        catalogue: &'a dyn Catalogue,
        syncs: &'a dyn crate::store::domain::SyncBookkeeping,
        vms: &'a dyn Fn() -> Vec<crate::store::VmRecord>,
        tags: &'a dyn Fn(&str) -> Tags,
    }

    /// A batch that fails part-way (its third VM would carry more tags than allowed) leaves
    /// the catalogue and the sync's bookkeeping as they were; the batch sent again, fixed,
    /// applies whole.
    fn a_failing_batch_changes_nothing(v: View<'_>) {
        let apply = |b: &MetadataBatch| apply_batch(v.store, &arns(), now(), GW, b);
        apply(&batch(
            "s1",
            0,
            vec![vm("u1", "a", &[("tier", "gold")])],
            Some(SyncOutcome::Succeeded),
        ))
        .unwrap();
        let before_vms = (v.vms)();
        let u1 = before_vms[0].arn.clone();
        let before_tags = (v.tags)(&u1);
        let before_hv = v.catalogue.get_hypervisor(HV).unwrap();

        let many: Vec<(String, String)> = (0..=MAX_TAGS)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut failing = batch(
            "s2",
            0,
            vec![
                vm("u1", "a-renamed", &[("tier", "silver")]),
                vm("u2", "b", &[("team", "db")]),
                vm("u3", "c", &many),
            ],
            Some(SyncOutcome::Succeeded),
        );
        let refused = apply(&failing).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidRequest, "{refused:?}");
        assert_eq!((v.vms)(), before_vms, "no VM added, changed or removed");
        assert_eq!((v.tags)(&u1), before_tags, "no tag changed");
        assert_eq!(v.catalogue.get_hypervisor(HV).unwrap(), before_hv);
        assert!(
            !v.syncs.sync_completed("s2").unwrap(),
            "the sync is not completed"
        );
        assert!(
            v.syncs.take_sync_seen("s2").unwrap().is_empty(),
            "no VM recorded as seen"
        );

        failing.vms[2] = vm("u3", "c", &[("tier", "bronze")]);
        apply(&failing).unwrap();
        let mut names: Vec<String> = (v.vms)().into_iter().map(|vm| vm.name).collect();
        names.sort();
        assert_eq!(names, ["a-renamed", "b", "c"]);
        assert_eq!(
            (v.tags)(&u1).get("tier").map(String::as_str),
            Some("silver")
        );
        assert!(v.syncs.sync_completed("s2").unwrap());
    }

    #[test]
    fn a_failing_batch_changes_nothing_in_memory() {
        let (c, s) = (associated(), MemorySyncs::default());
        a_failing_batch_changes_nothing(View {
            store: &memory(&c, &s),
            catalogue: &c,
            syncs: &s,
            vms: &|| c.vms(HV),
            tags: &|arn| c.tags(arn),
        });
    }

    #[test]
    fn a_failing_batch_changes_nothing_in_sled() {
        use crate::store::{ActivationKeyRecord, KeyState, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .insert_activation_key(&ActivationKeyRecord {
                key: "KEY".into(),
                created: now(),
                expires: now() + chrono::Duration::minutes(30),
                state: KeyState::Available,
            })
            .unwrap();
        store
            .create_gateway("KEY", now(), &gateway(None), &Tags::new())
            .unwrap();
        let mut hv = associated().get_hypervisor(HV).unwrap();
        hv.gateway_arn = None;
        store.insert_hypervisor(&hv, &Tags::new()).unwrap();
        store.associate(GW, HV).unwrap();
        a_failing_batch_changes_nothing(View {
            store: &store,
            catalogue: &store,
            syncs: &store,
            vms: &|| store.list_vms(Some(HV), None, 100).unwrap().0,
            tags: &|arn| store.get_tags(arn).unwrap(),
        });
    }
}
