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
