//! The backup service on the in-memory catalogue and inventory, a directory chunk store and
//! the real command hub (a test plays the gateway by taking its commands).

use std::sync::Arc;
use std::time::Duration;

use bgw_chunks::{ChunkHash, ChunkStore, DirChunkStore};
use bgw_protocol::backup::{
    AgentJobState, DiskManifest, JobComplete, JobOutcome, JobProgress, MissingChunksRequest,
};
use bgw_protocol::commands::{Command, CommandKind};
use bgw_protocol::ErrorCode;
use bytes::Bytes;

use super::*;
use crate::api::error::ErrorKind;
use crate::clock::SystemClock;
use crate::gateway::GatewayHub;
use crate::store::backup::BackupJobState;
use crate::store::backup_memory::{MemoryCatalog, MemoryInventory};

const GW: &str = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0000000000000001";
const HV: &str = "arn:aws:backup-gateway:us-east-1:123456789012:hypervisor/hype-0000000000000001";

fn vm_arn(i: usize) -> String {
    format!("arn:aws:backup-gateway:us-east-1:123456789012:vm/vm-{i:016X}")
}

struct Fixture {
    service: Arc<BackupService>,
    hub: GatewayHub,
    inventory: Arc<MemoryInventory>,
    chunks: Arc<DirChunkStore>,
    _dir: tempfile::TempDir,
}

async fn fixture(vms: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let chunks = Arc::new(DirChunkStore::open(dir.path()).await.unwrap());
    let inventory = Arc::new(MemoryInventory::default());
    for i in 0..vms {
        inventory.add_vm(VmTarget {
            vm_arn: vm_arn(i),
            name: format!("vm-{i}"),
            hypervisor_arn: HV.into(),
            instance_uuid: format!("uuid-{i}"),
            gateway_arn: Some(GW.into()),
            path: Some(format!("/DC0/vm/prod/vm-{i}")),
            host_name: Some("esx-1".into()),
        });
    }
    let hub = GatewayHub::default();
    let service = BackupService::new(
        Arc::new(MemoryCatalog::default()),
        inventory.clone(),
        chunks.clone(),
        hub.clone(),
        Arc::new(SystemClock),
        BackupArns {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        },
    );
    service
        .create_vault("vault-1", None, None, Default::default())
        .unwrap();
    Fixture {
        service,
        hub,
        inventory,
        chunks,
        _dir: dir,
    }
}

async fn commands(hub: &GatewayHub) -> Vec<Command> {
    hub.take(GW, Duration::from_millis(10)).await
}

fn start(f: &Fixture, vm: usize, token: Option<&str>) -> crate::store::backup::BackupJobRecord {
    f.service
        .start_backup(StartBackup {
            vault_name: "vault-1".into(),
            resource_arn: vm_arn(vm),
            iam_role_arn: "arn:aws:iam::123456789012:role/backup".into(),
            idempotency_token: token.map(str::to_owned),
        })
        .unwrap()
}

fn frame(raw: &[u8]) -> Bytes {
    Bytes::from(zstd::bulk::compress(raw, 1).unwrap())
}

/// Uploads `raw` as chunks of 4 bytes through the service, as the gateway would.
async fn back_up(f: &Fixture, job_id: &str, raw: &[u8]) -> DiskManifest {
    let chunk_size = 4;
    let pieces: Vec<&[u8]> = raw.chunks(chunk_size).collect();
    let hashes: Vec<ChunkHash> = pieces.iter().map(|p| ChunkHash::of(p)).collect();
    let missing = f
        .service
        .missing_chunks(
            GW,
            &MissingChunksRequest {
                job_id: job_id.into(),
                hashes: hashes.clone(),
            },
        )
        .await
        .unwrap()
        .missing;
    let job = f.service.live_job(GW, job_id).unwrap();
    for (piece, hash) in pieces.iter().zip(&hashes) {
        if missing.contains(hash) {
            let body = frame(piece);
            job.bytes
                .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
            f.service
                .accept_chunk(&job, hash, piece.len() as u64, body)
                .await
                .unwrap();
        }
    }
    DiskManifest {
        key: "2000".into(),
        label: "Hard disk 1".into(),
        capacity_bytes: raw.len() as u64,
        chunk_size: chunk_size as u64,
        chunks: hashes,
        change_id: None,
    }
}

async fn succeed(f: &Fixture, job_id: &str, disks: Vec<DiskManifest>) {
    f.service
        .complete(
            GW,
            &JobComplete {
                job_id: job_id.into(),
                outcome: JobOutcome::Succeeded {
                    disks,
                    vm_name: None,
                    created_instance_uuid: None,
                },
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_backup_runs_from_start_to_recovery_point() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    assert_eq!(job.state, BackupJobState::Pending);
    let sent = commands(&f.hub).await;
    let [Command {
        kind: CommandKind::BackupVm(cmd),
        ..
    }] = sent.as_slice()
    else {
        panic!("one BACKUP_VM expected, got {sent:?}");
    };
    assert_eq!(cmd.job_id, job.job_id);
    assert_eq!(cmd.instance_uuid, "uuid-0");
    assert!(cmd.previous.is_none());

    f.service
        .progress(
            GW,
            &JobProgress {
                job_id: job.job_id.clone(),
                state: AgentJobState::Running,
                percent_done: 10.0,
                bytes_read: 4,
                backup_size_bytes: Some(10),
            },
        )
        .unwrap();
    let disk = back_up(&f, &job.job_id, b"0123456789").await;
    let running = f.service.backup_job(&job.job_id).unwrap();
    assert_eq!(running.state, BackupJobState::Running);
    assert!(
        running.bytes_transferred > 0,
        "bytes received are shown at once"
    );
    succeed(&f, &job.job_id, vec![disk.clone()]).await;

    let done = f.service.backup_job(&job.job_id).unwrap();
    assert_eq!(done.state, BackupJobState::Completed);
    assert_eq!(done.percent_done, 100.0);
    assert!(done.completed.is_some());
    let point = f
        .service
        .recovery_point("vault-1", &job.recovery_point_arn)
        .unwrap();
    assert_eq!(point.disks, vec![disk]);
    assert_eq!(point.backup_size_bytes, 10);
    assert!(f.inventory.last_backup(&vm_arn(0)).is_some());
    // Completing again changes nothing.
    succeed(&f, &job.job_id, vec![]).await;
    assert_eq!(f.service.recovery_points_of(&vm_arn(0)).unwrap().len(), 1);

    let metadata = f.service.restore_metadata("vault-1", &point.arn).unwrap();
    assert_eq!(metadata["vmName"], "vm-0");
    assert_eq!(metadata["folder"], "/DC0/vm/prod");
    assert_eq!(metadata["host"], "esx-1");
}

#[tokio::test]
async fn a_second_backup_is_incremental_and_sends_only_new_chunks() {
    let f = fixture(1).await;
    let first = start(&f, 0, None);
    commands(&f.hub).await;
    let disk = back_up(&f, &first.job_id, b"aaaabbbbcccc").await;
    succeed(&f, &first.job_id, vec![disk]).await;

    let second = start(&f, 0, None);
    let sent = commands(&f.hub).await;
    let CommandKind::BackupVm(cmd) = &sent[0].kind else {
        panic!("BACKUP_VM expected");
    };
    let previous = cmd
        .previous
        .as_ref()
        .expect("the previous recovery point is passed");
    assert_eq!(previous.recovery_point_arn, first.recovery_point_arn);
    assert_eq!(previous.disks[0].chunks.len(), 3);
    let missing = f
        .service
        .missing_chunks(
            GW,
            &MissingChunksRequest {
                job_id: second.job_id.clone(),
                hashes: vec![
                    ChunkHash::of(b"aaaa"),
                    ChunkHash::of(b"XXXX"),
                    ChunkHash::of(b"cccc"),
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(missing.missing, vec![ChunkHash::of(b"XXXX")]);
}

#[tokio::test]
async fn a_corrupted_chunk_is_refused_by_name() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    let live = f.service.live_job(GW, &job.job_id).unwrap();
    let claimed = ChunkHash::of(b"good");
    let err = f
        .service
        .accept_chunk(&live, &claimed, 4, frame(b"evil"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ChunkCorrupt);
    assert!(
        err.0.message.contains(claimed.as_str()),
        "{}",
        err.0.message
    );
    assert!(!f.chunks.has(&claimed).await.unwrap(), "nothing stored");
    // Wrong raw length, and not zstd at all.
    let err = f
        .service
        .accept_chunk(&live, &claimed, 5, frame(b"good"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ChunkCorrupt);
    let err = f
        .service
        .accept_chunk(&live, &claimed, 4, Bytes::from_static(b"good"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ChunkCorrupt);
    // The right one is stored.
    let stored = f
        .service
        .accept_chunk(&live, &claimed, 4, frame(b"good"))
        .await
        .unwrap();
    assert!(!stored.already_present);
    assert!(f.chunks.has(&claimed).await.unwrap());
}

#[tokio::test]
async fn completing_with_a_chunk_never_uploaded_is_refused() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    let mut disk = back_up(&f, &job.job_id, b"00001111").await;
    disk.chunks[1] = ChunkHash::of(b"never sent");
    let err = f
        .service
        .complete(
            GW,
            &JobComplete {
                job_id: job.job_id.clone(),
                outcome: JobOutcome::Succeeded {
                    disks: vec![disk],
                    vm_name: None,
                    created_instance_uuid: None,
                },
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidRequest);
    assert!(err
        .0
        .message
        .contains(ChunkHash::of(b"never sent").as_str()));
    assert!(f.service.recovery_points_of(&vm_arn(0)).unwrap().is_empty());
}

#[tokio::test]
async fn at_most_four_jobs_run_per_gateway_and_the_rest_wait() {
    let f = fixture(6).await;
    let jobs: Vec<_> = (0..6).map(|i| start(&f, i, None)).collect();
    let states: Vec<_> = jobs
        .iter()
        .map(|j| f.service.backup_job(&j.job_id).unwrap().state)
        .collect();
    assert_eq!(
        states,
        [
            BackupJobState::Pending,
            BackupJobState::Pending,
            BackupJobState::Pending,
            BackupJobState::Pending,
            BackupJobState::Created,
            BackupJobState::Created
        ]
    );
    assert_eq!(commands(&f.hub).await.len(), 4);
    // One ends: the oldest waiting one is sent.
    f.service
        .complete(
            GW,
            &JobComplete {
                job_id: jobs[1].job_id.clone(),
                outcome: JobOutcome::Failed {
                    message: "vCenter unreachable".into(),
                },
            },
        )
        .await
        .unwrap();
    let failed = f.service.backup_job(&jobs[1].job_id).unwrap();
    assert_eq!(failed.state, BackupJobState::Failed);
    assert_eq!(
        failed.status_message.as_deref(),
        Some("vCenter unreachable")
    );
    let sent = commands(&f.hub).await;
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0].kind, CommandKind::BackupVm(c) if c.job_id == jobs[4].job_id));
}

#[tokio::test]
async fn the_idempotency_token_returns_the_first_job() {
    let f = fixture(1).await;
    let a = start(&f, 0, Some("token-1"));
    let b = start(&f, 0, Some("token-1"));
    assert_eq!(a.job_id, b.job_id);
    let c = start(&f, 0, Some("token-2"));
    assert_ne!(a.job_id, c.job_id);
}

#[tokio::test]
async fn stopping_a_job_cancels_it_on_the_gateway_and_refuses_its_uploads() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    commands(&f.hub).await;
    f.service.stop_backup(&job.job_id).unwrap();
    assert_eq!(
        f.service.backup_job(&job.job_id).unwrap().state,
        BackupJobState::Aborting
    );
    let sent = commands(&f.hub).await;
    assert!(matches!(&sent[0].kind, CommandKind::CancelJob(c) if c.job_id == job.job_id));
    let refused = f.service.live_job(GW, &job.job_id).err().unwrap();
    assert_eq!(refused.code(), ErrorCode::JobNotRunning);
    f.service
        .complete(
            GW,
            &JobComplete {
                job_id: job.job_id.clone(),
                outcome: JobOutcome::Aborted {
                    message: "stopped; snapshot removed".into(),
                },
            },
        )
        .await
        .unwrap();
    assert_eq!(
        f.service.backup_job(&job.job_id).unwrap().state,
        BackupJobState::Aborted
    );
    let err = f.service.stop_backup(&job.job_id).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn a_vault_with_recovery_points_cannot_be_deleted() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    let disk = back_up(&f, &job.job_id, b"abcd").await;
    succeed(&f, &job.job_id, vec![disk]).await;
    let err = f.service.delete_vault("vault-1").unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
    assert!(err.message.contains("1 recovery points"), "{}", err.message);
    f.service
        .delete_recovery_point("vault-1", &job.recovery_point_arn)
        .unwrap();
    f.service.delete_vault("vault-1").unwrap();
    let err = f.service.delete_vault("vault-1").unwrap_err();
    assert_eq!(err.kind, ErrorKind::ResourceNotFound);
    let err = f
        .service
        .create_vault("v2", None, None, Default::default())
        .and_then(|_| f.service.create_vault("v2", None, None, Default::default()))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
}

#[tokio::test]
async fn garbage_collection_frees_only_unreferenced_chunks_and_spares_running_jobs() {
    let f = fixture(2).await;
    let zero = chrono::Duration::zero();
    // Two recovery points sharing the chunk "shrd".
    let a = start(&f, 0, None);
    let disk_a = back_up(&f, &a.job_id, b"shrdAAAA").await;
    succeed(&f, &a.job_id, vec![disk_a]).await;
    let b = start(&f, 1, None);
    let disk_b = back_up(&f, &b.job_id, b"shrdBBBB").await;
    succeed(&f, &b.job_id, vec![disk_b]).await;

    // A running job has uploaded one chunk and been told another one (old, about to be
    // unreferenced) is present.
    let running = start(&f, 0, None);
    let live = f.service.live_job(GW, &running.job_id).unwrap();
    f.service
        .accept_chunk(&live, &ChunkHash::of(b"NEW!"), 4, frame(b"NEW!"))
        .await
        .unwrap();

    // An orphan chunk nobody references.
    f.chunks
        .put(&ChunkHash::of(b"orph"), frame(b"orph"))
        .await
        .unwrap();
    // Young chunks are kept by a sweep with the default margin.
    let report = f.service.collect_garbage().await.unwrap();
    assert_eq!(report.deleted, 0);
    assert!(f.chunks.has(&ChunkHash::of(b"orph")).await.unwrap());

    f.service
        .delete_recovery_point("vault-1", &a.recovery_point_arn)
        .unwrap();
    let report = f.service.collect_garbage_with_margin(zero).await.unwrap();
    let has = |raw: &'static [u8]| {
        let store = f.chunks.clone();
        async move { store.has(&ChunkHash::of(raw)).await.unwrap() }
    };
    assert!(!has(b"orph").await, "unreferenced chunk freed");
    assert!(
        has(b"shrd").await,
        "still referenced by the other recovery point"
    );
    assert!(has(b"BBBB").await);
    assert!(has(b"NEW!").await, "uploaded by a running job");
    // The running job backs up VM 0 again: a's point is its previous backup, whose chunks
    // it may reuse, so they are kept while it runs although the point is gone.
    assert!(
        has(b"AAAA").await,
        "part of the running job's previous backup"
    );
    assert_eq!(report.deleted, 1);

    // Once the running job ends without a recovery point, its chunks go too.
    f.service
        .complete(
            GW,
            &JobComplete {
                job_id: running.job_id.clone(),
                outcome: JobOutcome::Failed {
                    message: "x".into(),
                },
            },
        )
        .await
        .unwrap();
    f.service.collect_garbage_with_margin(zero).await.unwrap();
    assert!(!has(b"NEW!").await);
    assert!(!has(b"AAAA").await);
    assert!(has(b"shrd").await);
}

#[tokio::test]
async fn restores_send_the_disks_and_serve_only_their_chunks() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    let disk = back_up(&f, &job.job_id, b"restore!").await;
    succeed(&f, &job.job_id, vec![disk.clone()]).await;
    commands(&f.hub).await;

    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("vmName".to_string(), "copy".to_string());
    let err = f
        .service
        .start_restore(StartRestore {
            recovery_point_arn: job.recovery_point_arn.clone(),
            metadata: metadata.clone(),
            iam_role_arn: None,
            idempotency_token: None,
        })
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingParameterValue);
    assert!(err.message.contains("datastore"));
    metadata.insert("datastore".into(), "LocalDS_0".into());
    metadata.insert("colour".into(), "blue".into());
    let err = f
        .service
        .start_restore(StartRestore {
            recovery_point_arn: job.recovery_point_arn.clone(),
            metadata: metadata.clone(),
            iam_role_arn: None,
            idempotency_token: None,
        })
        .unwrap_err();
    assert!(err.message.contains("colour"), "{}", err.message);
    metadata.remove("colour");
    let restore = f
        .service
        .start_restore(StartRestore {
            recovery_point_arn: job.recovery_point_arn.clone(),
            metadata,
            iam_role_arn: None,
            idempotency_token: None,
        })
        .unwrap();
    let sent = commands(&f.hub).await;
    let CommandKind::RestoreVm(cmd) = &sent[0].kind else {
        panic!("RESTORE_VM expected, got {sent:?}");
    };
    assert_eq!(cmd.disks, vec![disk.clone()]);
    assert_eq!(cmd.metadata["datastore"], "LocalDS_0");
    let data = f.service.read_chunk(GW, &disk.chunks[0]).await.unwrap();
    assert_eq!(zstd::bulk::decompress(&data, 4).unwrap(), b"rest");
    let err = f
        .service
        .read_chunk(GW, &ChunkHash::of(b"other"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    f.service
        .complete(
            GW,
            &JobComplete {
                job_id: restore.job_id.clone(),
                outcome: JobOutcome::Succeeded {
                    disks: vec![],
                    vm_name: Some("copy".into()),
                    created_instance_uuid: Some("uuid-new".into()),
                },
            },
        )
        .await
        .unwrap();
    let done = f.service.restore_job(&restore.job_id).unwrap();
    assert_eq!(done.state.as_str(), "COMPLETED");
    assert!(done.created_resource_arn.is_some());
    assert_eq!(f.inventory.vm_count(), 2);
}

#[tokio::test]
async fn a_job_of_another_gateway_is_not_found() {
    let f = fixture(1).await;
    let job = start(&f, 0, None);
    let other = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0000000000000002";
    let err = f.service.live_job(other, &job.job_id).err().unwrap();
    assert_eq!(err.code(), ErrorCode::NotFound);
}
