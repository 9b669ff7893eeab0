//! A full metadata sync: list every VM and its tags, apply the property mappings, queue the
//! records for upload in batches, and report the outcome.
//!
//! Status: `RUNNING` is queued first; the last batch carries the final outcome (`SUCCEEDED`,
//! or `PARTIALLY_FAILED` listing which VMs or tags failed), after which the cloud removes the
//! VMs the sync did not mention. A sync that cannot list the VMs reports `FAILED` with the
//! reason and uploads nothing, so the cloud keeps what it had.

use std::time::Instant;

use bgw_protocol::metadata::{MetadataBatch, SyncOutcome, SyncStatusReport, VmRecord};
use vsphere_client::{Client, Tags};

use super::records::{self, Problem};
use super::Ctx;
use crate::runtime::SyncSummary;
use crate::state::OutboxItem;

pub use super::known::Known;

/// Runs one full sync and returns the outcome it reported.
#[tracing::instrument(skip_all, fields(hypervisor = %ctx.hv.hypervisor_arn, sync = tracing::field::Empty))]
pub async fn full_sync(ctx: &Ctx, client: &Client, known: &mut Known) -> SyncOutcome {
    let sync_id = uuid::Uuid::new_v4().to_string();
    tracing::Span::current().record("sync", sync_id.as_str());
    let started = Instant::now();
    report_status(ctx, &sync_id, "RUNNING", None);

    let vms = match client.list_vms().await {
        Ok(vms) => vms,
        Err(e) => {
            let message = format!("cannot list the VMs of {}: {e}", ctx.hv.host);
            tracing::warn!(error = %e, "metadata sync failed");
            report_status(ctx, &sync_id, "FAILED", Some(message.clone()));
            finish(ctx, "FAILED", Some(message.clone()), None, started);
            return SyncOutcome::Failed { message };
        }
    };
    let morefs: Vec<String> = vms.iter().map(|v| v.moref.clone()).collect();
    let mut notes = Vec::new();
    let tags: Option<Tags> = match client.tags_for(&morefs).await {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read tags; keeping the tags of the previous sync");
            notes.push(format!(
                "tags could not be read ({e}); VMs keep the tags of the previous sync"
            ));
            None
        }
    };

    let mut problems: Vec<Problem> = Vec::new();
    let mut next_known = Known::with_capacity(vms.len());
    let mut records = Vec::with_capacity(vms.len());
    for vm in &vms {
        let record = match &tags {
            Some(t) => records::vm_record(
                vm,
                &t.of_vm(&vm.moref),
                &ctx.hv.property_mappings,
                &mut problems,
            ),
            None => records::vm_record(
                vm,
                &known.tags(&vm.moref),
                &ctx.hv.property_mappings,
                &mut problems,
            ),
        };
        if let Some(r) = record {
            next_known.insert(&vm.moref, &r);
            records.push(r);
        }
    }
    drop(vms);
    drop(tags);

    let outcome = if problems.is_empty() && notes.is_empty() {
        SyncOutcome::Succeeded
    } else {
        SyncOutcome::PartiallyFailed {
            message: records::summarize(&problems, &notes),
        }
    };
    let count = records.len();
    if let Err(e) = queue_batches(ctx, &sync_id, records, outcome.clone()) {
        let message = format!("cannot queue the metadata for upload: {e}");
        report_status(ctx, &sync_id, "FAILED", Some(message.clone()));
        finish(ctx, "FAILED", Some(message.clone()), None, started);
        return SyncOutcome::Failed { message };
    }
    *known = next_known;
    let (status, message) = match &outcome {
        SyncOutcome::Succeeded => ("SUCCEEDED", None),
        SyncOutcome::PartiallyFailed { message } => ("PARTIALLY_FAILED", Some(message.clone())),
        SyncOutcome::Failed { message } => ("FAILED", Some(message.clone())),
    };
    tracing::info!(
        vms = count,
        status,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "metadata sync queued for upload"
    );
    finish(ctx, status, message, Some(count as u64), started);
    crate::memory::release_free();
    outcome
}

/// How many VMs have VMware tags other than those last uploaded: one batched read of the
/// attachments of every known VM (vCenter's change feed does not carry tags).
pub async fn tags_changed(client: &Client, known: &Known) -> vsphere_client::Result<usize> {
    if known.is_empty() {
        return Ok(0);
    }
    let morefs = known.morefs();
    let tags = client.tags_for(&morefs).await?;
    Ok(morefs
        .iter()
        .filter(|m| !known.same_tags(m, &tags.of_vm(m)))
        .count())
}

/// Queues the records in batches; the last one carries the outcome. Durable once this returns.
fn queue_batches(
    ctx: &Ctx,
    sync_id: &str,
    records: Vec<VmRecord>,
    outcome: SyncOutcome,
) -> crate::Result<()> {
    let size = ctx.opts.batch_size.max(1);
    let total = records.len().div_ceil(size).max(1);
    let mut records = records.into_iter();
    for batch in 0..total {
        let vms: Vec<VmRecord> = records.by_ref().take(size).collect();
        let item = MetadataBatch {
            hypervisor_arn: ctx.hv.hypervisor_arn.clone(),
            sync_id: sync_id.to_string(),
            batch: batch as u32,
            vms,
            removed: Vec::new(),
            complete: (batch + 1 == total).then(|| outcome.clone()),
        };
        ctx.rt.store.push_outbox(&OutboxItem::Metadata(item))?;
        ctx.rt.outbox_changed.notify_one();
    }
    Ok(())
}

/// Queues a status report (`RUNNING`, or `FAILED` when no batch will follow).
fn report_status(ctx: &Ctx, sync_id: &str, status: &str, message: Option<String>) {
    let report = SyncStatusReport {
        hypervisor_arn: ctx.hv.hypervisor_arn.clone(),
        sync_id: sync_id.to_string(),
        status: status.to_string(),
        message,
        at: ctx.rt.time.now_utc(),
    };
    match ctx.rt.store.push_outbox(&OutboxItem::SyncStatus(report)) {
        Ok(_) => ctx.rt.outbox_changed.notify_one(),
        Err(e) => tracing::error!(error = %e, "cannot queue the sync status"),
    }
    if status == "RUNNING" {
        let mut summary = ctx.rt.sync.read().expect("runtime lock").clone();
        summary.last_status = Some("RUNNING".into());
        summary.last_message = None;
        if let Err(e) = ctx.rt.set_sync(summary) {
            tracing::warn!(error = %e, "cannot record the sync status");
        }
    }
}

/// Reports a sync that cannot run at all (vCenter unreachable, not associated): `FAILED` with
/// the reason, so the cloud does not show it `CREATED` forever.
pub fn report_not_run(ctx: &Ctx, message: String) {
    let sync_id = uuid::Uuid::new_v4().to_string();
    report_status(ctx, &sync_id, "FAILED", Some(message.clone()));
    finish(ctx, "FAILED", Some(message), None, Instant::now());
}

fn finish(
    ctx: &Ctx,
    status: &'static str,
    message: Option<String>,
    vms: Option<u64>,
    started: Instant,
) {
    let rt = &ctx.rt;
    rt.metrics.sync_finished(status, started.elapsed());
    if let Some(n) = vms {
        rt.metrics.set_vms(n);
    }
    let previous = rt.sync.read().expect("runtime lock").clone();
    let summary = SyncSummary {
        last_status: Some(status.to_string()),
        last_success: if status == "SUCCEEDED" {
            Some(rt.time.now_utc())
        } else {
            previous.last_success
        },
        last_message: message,
        vms: vms.or(previous.vms),
    };
    if let Err(e) = rt.set_sync(summary) {
        tracing::warn!(error = %e, "cannot record the sync outcome");
    }
}
