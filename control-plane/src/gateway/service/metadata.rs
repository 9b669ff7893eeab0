//! Metadata syncs: reconciling the VMs a gateway reports with the catalogue, and the sync's
//! status.
//!
//! A batch is applied in steps that are each one store transaction and each idempotent (an
//! upsert keyed by instance UUID, tag changes computed from what the VM record held, removal
//! by UUID), so a batch the gateway retries after a lost answer ends in the same state; the
//! final batch completes the sync at most once.

use bgw_protocol::metadata::{
    MetadataAck, MetadataBatch, SyncOutcome, SyncStatus as Reported, SyncStatusReport,
};
use bgw_protocol::ErrorCode;
use chrono::{DateTime, Utc};

use super::Refusal;
use crate::arn::{ArnFactory, ResourceKind};
use crate::store::domain::{Catalogue, SyncBookkeeping};
use crate::store::{SyncStatus, Tags, VmwareTag};

/// Refuses reports about a hypervisor the gateway does not serve.
pub fn owned_hypervisor(
    catalogue: &dyn Catalogue,
    gateway_arn: &str,
    hypervisor_arn: &str,
) -> Result<(), Refusal> {
    let gw = catalogue.get_gateway(gateway_arn)?;
    if gw.hypervisor_arn.as_deref() != Some(hypervisor_arn) {
        return Err(Refusal::new(
            ErrorCode::InvalidRequest,
            format!("hypervisor {hypervisor_arn} is not associated with gateway {gateway_arn}"),
        ));
    }
    Ok(())
}

/// Applies one batch of a sync (or of the change watch) from `gateway_arn`.
pub fn apply_batch(
    catalogue: &dyn Catalogue,
    syncs: &dyn SyncBookkeeping,
    arns: &ArnFactory,
    now: DateTime<Utc>,
    gateway_arn: &str,
    batch: &MetadataBatch,
) -> Result<MetadataAck, Refusal> {
    owned_hypervisor(catalogue, gateway_arn, &batch.hypervisor_arn)?;
    let hv = &batch.hypervisor_arn;
    if syncs.sync_completed(&batch.sync_id)? {
        return Ok(MetadataAck {
            accepted: batch.vms.len() as u32,
        });
    }
    for vm in &batch.vms {
        let new_arn = arns.mint(ResourceKind::VirtualMachine, &mut rand::thread_rng());
        let mapped: Tags = vm
            .aws_tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        let mapped_keys: Vec<String> = mapped.keys().cloned().collect();
        // The keys the previous sync mapped, read inside the same transaction.
        let previous = std::cell::RefCell::new(Vec::new());
        let record = catalogue.upsert_vm(hv, &vm.instance_uuid, &new_arn, &|r| {
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
            catalogue.untag_resource(&record.arn, &stale)?;
        }
        if !mapped.is_empty() {
            catalogue.tag_resource(&record.arn, &mapped, 50)?;
        }
    }
    for uuid in &batch.removed {
        catalogue.delete_vm_by_uuid(hv, uuid)?;
    }
    let uuids: Vec<String> = batch.vms.iter().map(|v| v.instance_uuid.clone()).collect();
    if !batch.is_watch() {
        syncs.sync_seen(&batch.sync_id, &uuids)?;
    }
    if let Some(outcome) = &batch.complete {
        if syncs.complete_sync(&batch.sync_id)? {
            let seen = syncs.take_sync_seen(&batch.sync_id)?;
            if !matches!(outcome, SyncOutcome::Failed { .. }) {
                for uuid in catalogue.vm_uuids(hv)? {
                    if !seen.contains(&uuid) {
                        catalogue.delete_vm_by_uuid(hv, &uuid)?;
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
            catalogue.update_hypervisor(hv, &|h| {
                h.sync_status = Some(status);
                h.sync_message = message.clone();
                if status != SyncStatus::Failed {
                    h.last_successful_sync = Some(now);
                }
                Ok(())
            })?;
            tracing::info!(hypervisor = %hv, sync = %batch.sync_id, status = status.as_str(), vms = seen.len(), "metadata sync finished");
        }
    }
    Ok(MetadataAck {
        accepted: batch.vms.len() as u32,
    })
}

/// Records a status the gateway reports for a running sync; ignored once the sync completed.
pub fn report_status(
    catalogue: &dyn Catalogue,
    syncs: &dyn SyncBookkeeping,
    gateway_arn: &str,
    report: &SyncStatusReport,
) -> Result<(), Refusal> {
    owned_hypervisor(catalogue, gateway_arn, &report.hypervisor_arn)?;
    let status = match report.status {
        Reported::Created => SyncStatus::Created,
        Reported::Running => SyncStatus::Running,
        Reported::Failed => SyncStatus::Failed,
        Reported::PartiallyFailed => SyncStatus::PartiallyFailed,
        Reported::Succeeded => SyncStatus::Succeeded,
    };
    if syncs.sync_completed(&report.sync_id)? {
        return Ok(());
    }
    catalogue.update_hypervisor(&report.hypervisor_arn, &|h| {
        h.sync_status = Some(status);
        h.sync_message = report.message.clone();
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use bgw_protocol::metadata::{AwsTag, VmRecord as WireVm, VmwareTag as ReportedTag};

    use super::*;
    use crate::gateway::service::fixtures::{associated, gateway, now, GW, HV};
    use crate::store::memory::{MemoryCatalogue, MemorySyncs};

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

    fn apply(c: &MemoryCatalogue, s: &MemorySyncs, b: &MetadataBatch) -> MetadataAck {
        apply_batch(c, s, &arns(), now(), GW, b).unwrap()
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
        let refused =
            apply_batch(&c, &s, &arns(), now(), GW, &batch("s1", 0, vec![], None)).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidRequest);
        let report = SyncStatusReport {
            hypervisor_arn: HV.into(),
            sync_id: "s1".into(),
            status: Reported::Running,
            message: None,
            at: now(),
        };
        assert!(report_status(&c, &s, GW, &report).is_err());
    }
}
