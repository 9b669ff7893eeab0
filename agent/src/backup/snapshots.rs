//! Backup snapshots are always removed: at the end of the job, or later.
//!
//! Before a backup takes its snapshot it records it in the store (tree `backup_snapshots`);
//! the record goes once the snapshot is removed. When a removal fails (vCenter unreachable)
//! or the agent is killed mid-job, the [`janitor`] removes the snapshot later: at start it
//! looks for every snapshot named `bgw-backup-*` whose description names this gateway, or
//! that the store records, and removes those no running job owns; then it retries recorded
//! ones every [`RETRY`] until vCenter lets it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vsphere_client::{Client, MoRef};

use super::{BackupService, SNAPSHOT_PREFIX};
use crate::jobs::JobId;

/// How often recorded snapshots are retried.
pub const RETRY: Duration = Duration::from_secs(30);
/// How often the first scan is tried until vCenter answers.
const FIRST_SCAN_RETRY: Duration = Duration::from_secs(2);

/// A snapshot a backup took (or is about to take).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub job_id: String,
    pub vm: String,
    /// Unknown until `CreateSnapshot_Task` answered.
    pub snapshot: Option<String>,
}

fn tree(svc: &BackupService) -> Option<sled::Tree> {
    svc.store
        .tree("backup_snapshots")
        .map_err(|e| tracing::error!(error = %e, "cannot open the snapshot records"))
        .ok()
}

/// The name of a job's snapshot.
pub fn name_for(job_id: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{job_id}")
}

pub fn record(svc: &BackupService, r: &Recorded) {
    if let Some(t) = tree(svc) {
        let value = serde_json::to_vec(r).expect("records serialise");
        if let Err(e) = t
            .insert(name_for(&r.job_id), value)
            .and_then(|_| t.flush().map(|_| ()))
        {
            tracing::error!(error = %e, "cannot record a backup snapshot");
        }
    }
}

pub fn forget(svc: &BackupService, job_id: &str) {
    if let Some(t) = tree(svc) {
        let _ = t.remove(name_for(job_id));
        let _ = t.flush();
    }
}

fn recorded(svc: &BackupService) -> Vec<Recorded> {
    tree(svc)
        .map(|t| {
            t.iter()
                .filter_map(|e| e.ok())
                .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a job's snapshot, and forgets it once removed. A snapshot already gone counts as
/// removed.
pub async fn remove(svc: &BackupService, client: &Client, job_id: &str, snapshot: &MoRef) -> bool {
    match client.remove_snapshot(snapshot).await {
        Ok(()) => {
            forget(svc, job_id);
            true
        }
        Err(e) if e.kind() == vsphere_client::ErrorKind::NotFound => {
            forget(svc, job_id);
            true
        }
        Err(e) => {
            tracing::warn!(job = job_id, snapshot = %snapshot.value, error = %e, "cannot remove the backup snapshot now; it is removed later");
            false
        }
    }
}

/// One pass: removes leftover snapshots of jobs not running. `scan` also looks for them by
/// name across the inventory. Returns whether recorded snapshots remain.
pub async fn sweep(svc: &BackupService, client: &Client, scan: bool) -> bool {
    let running = |job: &str| {
        svc.jobs
            .get(&JobId::from(job))
            .ok()
            .flatten()
            .is_some_and(|r| !r.state.is_final())
    };
    let records = recorded(svc);
    let mut targets: Vec<(String, MoRef)> = Vec::new();
    if scan {
        match client.snapshots_named(SNAPSHOT_PREFIX).await {
            Ok(found) => {
                for s in found {
                    let job = s.name.trim_start_matches(SNAPSHOT_PREFIX).to_string();
                    let ours = s.description.contains(&svc.marker)
                        || records.iter().any(|r| r.job_id == job);
                    if ours && !running(&job) {
                        targets.push((job, s.moref()));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for leftover backup snapshots"),
        }
    }
    for r in &records {
        if running(&r.job_id) || targets.iter().any(|(j, _)| *j == r.job_id) {
            continue;
        }
        match &r.snapshot {
            Some(s) => targets.push((
                r.job_id.clone(),
                MoRef::new("VirtualMachineSnapshot", s.clone()),
            )),
            // Never taken, or taken without an answer: found by name if it exists.
            None => {
                let found = client.snapshots(&r.vm).await;
                match found {
                    Ok(list) => match list.into_iter().find(|s| s.name == name_for(&r.job_id)) {
                        Some(s) => targets.push((r.job_id.clone(), s.moref())),
                        None => forget(svc, &r.job_id),
                    },
                    Err(e) if e.kind() == vsphere_client::ErrorKind::NotFound => {
                        forget(svc, &r.job_id)
                    }
                    Err(_) => {}
                }
            }
        }
    }
    for (job, snapshot) in targets {
        tracing::info!(job = %job, snapshot = %snapshot.value, "removing a snapshot a backup left behind");
        remove(svc, client, &job, &snapshot).await;
    }
    !recorded(svc).iter().all(|r| running(&r.job_id))
}

/// Runs until the daemon stops: one scan once vCenter answers (tried every 2 s until then),
/// then retries of recorded snapshots every [`RETRY`].
pub async fn janitor(svc: Arc<BackupService>) {
    let mut scanned = false;
    loop {
        // Until the first scan, try often: the hypervisor is configured shortly after start.
        let delay = if scanned { RETRY } else { FIRST_SCAN_RETRY };
        tokio::select! {
            _ = svc.shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let has_records = recorded(&svc).iter().any(|_| true);
        if scanned && !has_records {
            continue;
        }
        let client = match svc.link.open_session(None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "no vCenter session for the snapshot cleanup yet");
                continue;
            }
        };
        sweep(&svc, &client, !scanned).await;
        scanned = true;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.logout()).await;
    }
}
