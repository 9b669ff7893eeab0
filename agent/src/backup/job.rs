//! One backup: snapshot, read every disk of the snapshot, upload what the cloud lacks, remove
//! the snapshot, report the disks' chunk lists.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::backup::{
    AgentJobState, BackupVm, DiskManifest, JobOutcome as WireOutcome, DEFAULT_CHUNK_SIZE,
};
use vsphere_client::disk_io::DiskLocation;
use vsphere_client::{Client, Disk, MoRef, ALL_ALLOCATED};

use super::pipeline::{Pipeline, Stats};
use super::plan::{plan, Changes, ChunkSource};
use super::progress::{self, Progress};
use super::snapshots::{self, Recorded};
use super::BackupService;
use crate::error::{Error, Result};
use crate::jobs::JobContext;

/// How long the snapshot removal may take after a cancellation or failure before the
/// janitor takes over.
const REMOVE_BOUND: Duration = Duration::from_secs(30);

/// Runs a backup to its end and says how it ended.
pub async fn run(svc: &Arc<BackupService>, cmd: BackupVm, ctx: &JobContext) -> WireOutcome {
    let stats = Arc::new(Stats::default());
    let progress = Progress::new(stats.clone(), false);
    let client = match svc
        .link
        .open_session(Some(cmd.hypervisor_arn.clone()))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            return WireOutcome::Failed {
                message: format!("cannot connect to vCenter: {e}"),
            }
        }
    };
    let outcome = with_session(svc, &cmd, ctx, &client, &progress).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.logout()).await;
    let s = &progress.stats;
    let ms = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) / 1000;
    tracing::info!(
        read = s.read.load(Ordering::Relaxed),
        sent = s.sent.load(Ordering::Relaxed),
        chunks_sent = s.chunks_sent.load(Ordering::Relaxed),
        chunks_known = s.chunks_known.load(Ordering::Relaxed),
        read_ms = ms(&s.read_us),
        hash_ms = ms(&s.hash_us),
        ask_ms = ms(&s.ask_us),
        compress_ms = ms(&s.compress_us),
        upload_ms = ms(&s.upload_us),
        "backup ended"
    );
    outcome
}

async fn with_session(
    svc: &Arc<BackupService>,
    cmd: &BackupVm,
    ctx: &JobContext,
    client: &Client,
    progress: &Arc<Progress>,
) -> WireOutcome {
    let vm = match client.find_vm_by_instance_uuid(&cmd.instance_uuid).await {
        Ok(Some(vm)) => vm,
        Ok(None) => {
            return WireOutcome::Failed {
                message: format!(
                    "no VM with instance UUID {} on the hypervisor ({})",
                    cmd.instance_uuid, cmd.vm_arn
                ),
            }
        }
        Err(e) => {
            return WireOutcome::Failed {
                message: format!("cannot find the VM {}: {e}", cmd.vm_arn),
            }
        }
    };
    let quiesce = client.tools_running(&vm).await.unwrap_or(false);
    let name = snapshots::name_for(&cmd.job_id);
    let mut record = Recorded {
        job_id: cmd.job_id.clone(),
        vm: vm.clone(),
        snapshot: None,
    };
    snapshots::record(svc, &record);
    let description = format!("Taken by {} for backup job {}", svc.marker, cmd.job_id);
    let taken = tokio::select! {
        r = client.create_snapshot(&vm, &name, &description, quiesce) => r,
        _ = ctx.cancel.cancelled() => return stopped(svc, ctx, "before the snapshot was taken"),
    };
    let snapshot = match taken {
        Ok(s) => s,
        Err(e) => {
            return WireOutcome::Failed {
                message: format!("cannot take a snapshot of {vm}: {e}"),
            }
        }
    };
    record.snapshot = Some(snapshot.value.clone());
    snapshots::record(svc, &record);

    let work = back_up(svc, cmd, ctx, client, &vm, &snapshot, progress);
    let result = tokio::select! {
        r = progress::while_running(ctx, &svc.cloud, progress, work) => Some(r),
        _ = ctx.cancel.cancelled() => None,
    };
    // The snapshot goes whatever happened; the janitor retries what fails here.
    if result.is_none() {
        progress::report_once(&svc.cloud, &cmd.job_id, progress, AgentJobState::Aborting).await;
    }
    let removed = tokio::time::timeout(
        REMOVE_BOUND,
        snapshots::remove(svc, client, &cmd.job_id, &snapshot),
    )
    .await
    .unwrap_or(false);
    match result {
        None => stopped(svc, ctx, "the snapshot was removed"),
        Some(Ok((disks, vm_name))) => WireOutcome::Succeeded {
            disks,
            vm_name: Some(vm_name),
            created_instance_uuid: None,
        },
        Some(Err(Error::JobStopped(m))) => WireOutcome::Aborted { message: m },
        Some(Err(e)) => WireOutcome::Failed {
            message: if removed {
                format!("{e}")
            } else {
                format!("{e}; the snapshot {name} is removed once vCenter answers")
            },
        },
    }
}

/// The outcome of a job stopped by `CancelJob` or by the agent's shutdown.
fn stopped(svc: &BackupService, _ctx: &JobContext, what: &str) -> WireOutcome {
    if svc.shutdown.is_cancelled() {
        WireOutcome::Failed {
            message: format!("interrupted: the agent stopped ({what})"),
        }
    } else {
        WireOutcome::Aborted {
            message: format!("stopped on request; {what}"),
        }
    }
}

async fn back_up(
    svc: &Arc<BackupService>,
    cmd: &BackupVm,
    ctx: &JobContext,
    client: &Client,
    vm: &str,
    snapshot: &MoRef,
    progress: &Arc<Progress>,
) -> Result<(Vec<DiskManifest>, String)> {
    let vc = |what: &str| {
        let what = what.to_string();
        move |source| Error::Vcenter { what, source }
    };
    let hw = client
        .hardware_of(snapshot)
        .await
        .map_err(vc("reading the snapshot's disks"))?;
    let dc_path = client
        .datacenter_of(vm)
        .await
        .map_err(vc("finding the VM's datacenter"))?;
    let total: u64 = hw.disks.iter().map(|d| d.capacity_bytes).sum();
    progress.total.store(total, Ordering::Relaxed);
    let transport = (svc.transport)(client.clone());
    let mut pipeline = Pipeline::new(
        svc.cloud.clone(),
        cmd.job_id.clone(),
        svc.throttle.clone(),
        progress.stats.clone(),
    );
    pipeline.metrics = Some(svc.metrics.clone());
    pipeline.zstd_level = svc.zstd_level;
    let mut manifests = Vec::with_capacity(hw.disks.len());
    for disk in &hw.disks {
        let chunk_size = DEFAULT_CHUNK_SIZE;
        let previous = cmd.previous.as_ref().and_then(|p| {
            p.disks.iter().find(|d| {
                d.key == disk.key.to_string()
                    && d.capacity_bytes == disk.capacity_bytes
                    && d.chunk_size == chunk_size
            })
        });
        let sources = plan_disk(client, vm, snapshot, disk, chunk_size, previous).await;
        let to_read = sources.iter().filter(|s| **s == ChunkSource::Read).count();
        tracing::info!(disk = disk.key, label = %disk.label, capacity = disk.capacity_bytes, chunks = sources.len(), to_read, transport = transport.name(), "backing up a disk");
        let reader = transport
            .open(&DiskLocation {
                dc_path: dc_path.clone(),
                disk: disk.clone(),
            })
            .await
            .map_err(vc(&format!(
                "opening disk {} ({})",
                disk.label, disk.file_name
            )))?;
        let chunks = pipeline
            .disk(&disk.label, reader, chunk_size, sources)
            .await?;
        manifests.push(DiskManifest {
            key: disk.key.to_string(),
            label: disk.label.clone(),
            capacity_bytes: disk.capacity_bytes,
            chunk_size,
            chunks,
            change_id: disk.change_id.clone(),
        });
        if ctx.cancel.is_cancelled() {
            return Err(Error::JobStopped("stopped on request".into()));
        }
    }
    Ok((manifests, hw.name))
}

/// What to read of a disk: with changed-block tracking, only what changed since the previous
/// backup (or what is allocated, for a first backup); without, everything.
async fn plan_disk(
    client: &Client,
    vm: &str,
    snapshot: &MoRef,
    disk: &Disk,
    chunk_size: u64,
    previous: Option<&DiskManifest>,
) -> Vec<ChunkSource> {
    let capacity = disk.capacity_bytes;
    if disk.change_id.is_none() {
        return plan(capacity, chunk_size, Changes::Unknown);
    }
    if let Some(prev) = previous {
        if let Some(since) = prev.change_id.as_deref() {
            match client
                .changed_disk_areas(vm, snapshot, disk.key, capacity, since)
                .await
            {
                Ok(changed) => {
                    return plan(
                        capacity,
                        chunk_size,
                        Changes::Since {
                            changed: &changed,
                            previous: &prev.chunks,
                        },
                    )
                }
                Err(e) => {
                    tracing::warn!(disk = disk.key, error = %e, "changed areas unavailable since the previous backup; reading the allocated areas")
                }
            }
        }
    }
    match client
        .changed_disk_areas(vm, snapshot, disk.key, capacity, ALL_ALLOCATED)
        .await
    {
        Ok(allocated) => plan(capacity, chunk_size, Changes::Allocated(&allocated)),
        Err(e) => {
            tracing::warn!(disk = disk.key, error = %e, "allocated areas unavailable; reading the whole disk");
            plan(capacity, chunk_size, Changes::Unknown)
        }
    }
}
