//! A full metadata sync: list every VM and its tags, apply the property mappings, queue the
//! records for upload in batches, and report the outcome.
//!
//! The listing is streamed: each page of VMs from vCenter has its tags read (one call), becomes
//! records and is queued for upload before the next page is handled, so the agent holds about a
//! page at a time rather than the whole inventory.
//!
//! Status: `RUNNING` is queued first; a last (empty) batch carries the final outcome
//! (`SUCCEEDED`, or `PARTIALLY_FAILED` listing which VMs or tags failed), after which the cloud
//! removes the VMs the sync did not mention. A sync that cannot list the VMs reports `FAILED`
//! with the reason; VMs already uploaded by it are updated, none is removed.

use std::time::Instant;

use bgw_protocol::metadata::{MetadataBatch, SyncOutcome, SyncStatus, SyncStatusReport, VmRecord};
use vsphere_client::{Client, Vm};

use super::records::{self, Problem};
use super::Ctx;
use crate::state::OutboxItem;

pub use super::known::Known;

/// What a sync has done so far.
struct Progress {
    sync_id: String,
    /// Batches queued so far (the next batch's number).
    batches: u32,
    vms: usize,
    problems: Vec<Problem>,
    notes: Vec<String>,
    /// Once the tags could not be read, the remaining pages keep the previous tags too.
    tags_failed: bool,
    next_known: Known,
    /// The ESXi hosts the VMs run on (the console tests the connection to each).
    esxi_hosts: std::collections::BTreeSet<String>,
}

/// Runs one full sync and returns the outcome it reported.
#[tracing::instrument(skip_all, fields(hypervisor = %ctx.hv.hypervisor_arn, sync = tracing::field::Empty))]
pub async fn full_sync(ctx: &Ctx, client: &Client, known: &mut Known) -> SyncOutcome {
    let sync_id = uuid::Uuid::new_v4().to_string();
    tracing::Span::current().record("sync", sync_id.as_str());
    let started = Instant::now();
    report_status(ctx, &sync_id, SyncStatus::Running, None);

    let mut progress = Progress {
        sync_id: sync_id.clone(),
        batches: 0,
        vms: 0,
        problems: Vec::new(),
        notes: Vec::new(),
        tags_failed: false,
        next_known: Known::with_capacity(known.len()),
        esxi_hosts: Default::default(),
    };
    let (pages_tx, mut pages) = tokio::sync::mpsc::unbounded_channel::<Vec<Vm>>();
    let listing = client.inventory(move |page| {
        let _ = pages_tx.send(page);
    });
    let handling = async {
        while let Some(page) = pages.recv().await {
            handle_page(ctx, client, known, page, &mut progress).await?;
        }
        Ok::<(), crate::Error>(())
    };
    let (listed, handled) = tokio::join!(listing, handling);

    let failure = match (listed, handled) {
        (Err(e), _) => {
            tracing::warn!(error = %e, "metadata sync failed");
            Some(format!("cannot list the VMs of {}: {e}", ctx.hv.host))
        }
        (Ok(_), Err(e)) => Some(format!("cannot queue the metadata for upload: {e}")),
        (Ok(_), Ok(())) => None,
    };
    if let Some(message) = failure {
        let outcome = SyncOutcome::Failed {
            message: message.clone(),
        };
        // Close the sync in the cloud: with batches queued, through a last batch (so the
        // cloud removes nothing); without, through the status report alone.
        if progress.batches == 0
            || queue_batch(ctx, &mut progress, Vec::new(), Some(outcome.clone())).is_err()
        {
            report_status(ctx, &sync_id, SyncStatus::Failed, Some(message.clone()));
        }
        finish(ctx, SyncStatus::Failed, Some(message), None, started);
        crate::memory::release_free();
        return outcome;
    }

    let outcome = if progress.problems.is_empty() && progress.notes.is_empty() {
        SyncOutcome::Succeeded
    } else {
        SyncOutcome::PartiallyFailed {
            message: records::summarize(&progress.problems, &progress.notes),
        }
    };
    if let Err(e) = queue_batch(ctx, &mut progress, Vec::new(), Some(outcome.clone())) {
        let message = format!("cannot queue the metadata for upload: {e}");
        report_status(ctx, &sync_id, SyncStatus::Failed, Some(message.clone()));
        finish(
            ctx,
            SyncStatus::Failed,
            Some(message.clone()),
            None,
            started,
        );
        return SyncOutcome::Failed { message };
    }
    let count = progress.vms;
    *known = progress.next_known;
    let (status, message) = match &outcome {
        SyncOutcome::Succeeded => (SyncStatus::Succeeded, None),
        SyncOutcome::PartiallyFailed { message } => {
            (SyncStatus::PartiallyFailed, Some(message.clone()))
        }
        SyncOutcome::Failed { message } => (SyncStatus::Failed, Some(message.clone())),
    };
    tracing::info!(
        vms = count,
        status = status.as_str(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "metadata sync queued for upload"
    );
    let hosts = std::mem::take(&mut progress.esxi_hosts)
        .into_iter()
        .collect();
    finish_with_hosts(
        ctx,
        status,
        message,
        Some(count as u64),
        started,
        Some(hosts),
    );
    crate::memory::release_free();
    outcome
}

/// One page of the listing: its tags (one call), its records, queued in batches.
async fn handle_page(
    ctx: &Ctx,
    client: &Client,
    known: &Known,
    page: Vec<Vm>,
    progress: &mut Progress,
) -> crate::Result<()> {
    let tags = if progress.tags_failed {
        None
    } else {
        let morefs: Vec<String> = page.iter().map(|v| v.moref.clone()).collect();
        match client.tags_for(&morefs).await {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read tags; keeping the tags of the previous sync");
                progress.notes.push(format!(
                    "tags could not be read ({e}); VMs keep the tags of the previous sync"
                ));
                progress.tags_failed = true;
                None
            }
        }
    };
    let mut records = Vec::with_capacity(page.len());
    for vm in &page {
        if let Some(host) = vm.esxi_host.as_deref().filter(|h| !h.is_empty()) {
            if !progress.esxi_hosts.contains(host) {
                progress.esxi_hosts.insert(host.to_string());
            }
        }
        let attached = match &tags {
            Some(t) => t.of_vm(&vm.moref),
            None => known.tags(&vm.moref),
        };
        if let Some(r) = records::vm_record(
            vm,
            &attached,
            &ctx.hv.property_mappings,
            &mut progress.problems,
        ) {
            progress.next_known.insert(&vm.moref, &r);
            records.push(r);
        }
    }
    drop(page);
    progress.vms += records.len();
    let size = ctx.opts.batch_size.max(1);
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let vms: Vec<VmRecord> = records.by_ref().take(size).collect();
        queue_batch(ctx, progress, vms, None)?;
    }
    Ok(())
}

/// Queues one batch of the sync; durable once this returns.
fn queue_batch(
    ctx: &Ctx,
    progress: &mut Progress,
    vms: Vec<VmRecord>,
    complete: Option<SyncOutcome>,
) -> crate::Result<()> {
    let item = MetadataBatch {
        hypervisor_arn: ctx.hv.hypervisor_arn.clone(),
        sync_id: progress.sync_id.clone(),
        batch: progress.batches,
        vms,
        removed: Vec::new(),
        complete,
    };
    ctx.env.outbox.push(&OutboxItem::Metadata(item))?;
    progress.batches += 1;
    Ok(())
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

/// Queues a status report (`RUNNING`, or `FAILED` when no batch will follow).
fn report_status(ctx: &Ctx, sync_id: &str, status: SyncStatus, message: Option<String>) {
    let report = SyncStatusReport {
        hypervisor_arn: ctx.hv.hypervisor_arn.clone(),
        sync_id: sync_id.to_string(),
        status,
        message,
        at: ctx.env.time.now_utc(),
    };
    if let Err(e) = ctx.env.outbox.push(&OutboxItem::SyncStatus(report)) {
        tracing::error!(error = %e, "cannot queue the sync status");
    }
    if status == SyncStatus::Running {
        let recorded = ctx.env.sync.update(|summary| {
            summary.last_status = Some(SyncStatus::Running);
            summary.last_message = None;
        });
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "cannot record the sync status");
        }
    }
}

/// Reports a sync that cannot run at all (vCenter unreachable, not associated): `FAILED` with
/// the reason, so the cloud does not show it `CREATED` forever.
pub fn report_not_run(ctx: &Ctx, message: String) {
    let sync_id = uuid::Uuid::new_v4().to_string();
    report_status(ctx, &sync_id, SyncStatus::Failed, Some(message.clone()));
    finish(ctx, SyncStatus::Failed, Some(message), None, Instant::now());
}

fn finish(
    ctx: &Ctx,
    status: SyncStatus,
    message: Option<String>,
    vms: Option<u64>,
    started: Instant,
) {
    finish_with_hosts(ctx, status, message, vms, started, None)
}

/// `esxi_hosts`: the hosts the listing saw (`None` keeps those of the previous sync).
fn finish_with_hosts(
    ctx: &Ctx,
    status: SyncStatus,
    message: Option<String>,
    vms: Option<u64>,
    started: Instant,
    esxi_hosts: Option<Vec<String>>,
) {
    let env = &ctx.env;
    env.metrics
        .sync_finished(status.as_str(), started.elapsed());
    if let Some(n) = vms {
        env.metrics.set_vms(n);
    }
    let now = env.time.now_utc();
    let recorded = env.sync.update(|summary| {
        summary.last_status = Some(status);
        if status == SyncStatus::Succeeded {
            summary.last_success = Some(now);
        }
        summary.last_message = message;
        summary.vms = vms.or(summary.vms);
        if let Some(hosts) = esxi_hosts {
            summary.esxi_hosts = hosts;
        }
    });
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot record the sync outcome");
    }
}
