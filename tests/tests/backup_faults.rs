//! Backups when a peer fails mid-job: the cloud restarted during the upload, vCenter
//! unreachable during the read. Real vcsim, bgw-cloud and bgw-agent, driven with `aws backup`.

mod backup_support;
mod sync_support;

use std::path::Path;
use std::time::{Duration, Instant};

use backup_support::{bytes_transferred, BackupSetup, MIB};

/// Bytes of every file under `dir` (the cloud's chunk directory: each chunk stored once).
fn stored_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => stored_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cloud_restarted_mid_upload_resumes_without_resending_confirmed_chunks() {
    let mut b = BackupSetup::start(64 * MIB).await;
    // 5 MB/s: the upload takes about ten seconds, long enough to restart the cloud inside it.
    b.limit(40_000_000).await;
    let (job, before) = b.start_backup_uploading(24 * MIB as u64).await;

    let restarted = Instant::now();
    b.s.cloud.restart().expect("restart bgw-cloud");
    let d = b.wait_done(&job, Duration::from_secs(180)).await;
    assert_eq!(d["State"], "COMPLETED", "{d:#}");
    eprintln!(
        "restart after {before} bytes; completed {:?} after the restart",
        restarted.elapsed()
    );

    // Every distinct chunk is stored once; what was sent beyond that is what was resent. Only
    // the chunks in flight at the restart (3 at a time, 4 MiB before compression) may be.
    let stored = stored_bytes(&b.s.cloud.data_dir().join("chunks"));
    let sent = bytes_transferred(&d);
    eprintln!("sent {sent} bytes, stored {stored} bytes");
    assert!(stored > 32 * MIB as u64, "the chunks are stored: {stored}");
    assert!(
        sent <= stored + 3 * 4 * MIB as u64 + 64 * 1024,
        "the backup sent {sent} bytes for {stored} stored: confirmed chunks were sent again"
    );

    // And the recovery point restores the disk as it was.
    let point = d["RecoveryPointArn"].as_str().unwrap().to_string();
    let data = b.restore_disk(&point, "restored-after-restart").await;
    b.assert_is_source(&data);
}

#[tokio::test(flavor = "multi_thread")]
async fn vcenter_unreachable_mid_backup_fails_the_job_and_the_snapshot_goes_when_it_is_back() {
    // Larger than what a job's pipeline holds (reads, asks and uploads in flight, about 30
    // chunks): after the cut the backup still has disk to read.
    let b = BackupSetup::start_via_proxy(256 * MIB).await;
    let proxy = b.proxy.as_ref().expect("started through a proxy");
    // 1 MB/s: the backup would take minutes, and it reads a chunk every few seconds.
    b.limit(8_000_000).await;
    let (job, _) = b.start_backup_uploading(2 * MIB as u64).await;
    assert_eq!(b.snapshots().await.len(), 1, "the backup holds a snapshot");

    proxy.cut();
    let cut = Instant::now();
    let d = b.wait_done(&job, Duration::from_secs(120)).await;
    eprintln!("failed {:?} after vCenter went away: {d:#}", cut.elapsed());
    assert_eq!(d["State"], "FAILED", "{d:#}");
    let message = d["StatusMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("removed once vCenter answers") && message.contains("of disk '"),
        "the message says what happened, to which disk, and what happens next: {message}"
    );
    assert_eq!(
        b.snapshots().await.len(),
        1,
        "vCenter was unreachable: the snapshot is still there"
    );

    proxy.restore();
    let back = Instant::now();
    loop {
        if b.snapshots().await.is_empty() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(90),
            "the snapshot was not removed {:?} after vCenter came back",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "snapshot removed {:?} after vCenter came back",
        back.elapsed()
    );
}
