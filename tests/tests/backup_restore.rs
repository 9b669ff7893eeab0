//! Backups and restores of a VM end to end: vcsim with real disk data, bgw-cloud, bgw-agent,
//! driven with `aws backup …`.

mod backup_support;
mod sync_support;

use std::time::{Duration, Instant};

use backup_support::{backup, bytes_transferred, BackupSetup, MIB};
use bgw_tests::vcsim_disks;
use bgw_tests::vcsim_soap::SoapSession;

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_is_bit_for_bit_and_later_backups_send_only_what_changed() {
    let mut b = BackupSetup::start(64 * MIB).await;

    let first = b.start_backup();
    let d = b.wait_done(&first, Duration::from_secs(120)).await;
    assert_eq!(d["State"], "COMPLETED", "{d:#}");
    let sent = bytes_transferred(&d);
    // 64 MiB of which an eighth is zeros and an eighth repeats: each distinct chunk once,
    // compressed.
    assert!(
        sent > 20 * MIB as u64 && sent < 56 * MIB as u64,
        "first backup sent {sent} bytes: {d:#}"
    );
    assert_eq!(d["BackupSizeInBytes"], 64 * MIB as u64, "{d:#}");
    assert!(b.snapshots().await.is_empty(), "the snapshot is removed");

    // Unchanged: every chunk is already in the cloud.
    let second = b.start_backup();
    let d = b.wait_done(&second, Duration::from_secs(120)).await;
    assert_eq!(d["State"], "COMPLETED", "{d:#}");
    assert!(
        bytes_transferred(&d) < 64 * 1024,
        "an unchanged VM sends almost nothing: {d:#}"
    );

    // 3 MiB changed inside one 4 MiB chunk: about that chunk is sent.
    b.image.scribble(12 * MIB + 512 * 1024, 3 * MIB, 99);
    b.rewrite_disk().await;
    let third = b.start_backup();
    let d = b.wait_done(&third, Duration::from_secs(120)).await;
    assert_eq!(d["State"], "COMPLETED", "{d:#}");
    let sent = bytes_transferred(&d);
    assert!(
        sent > 2 * MIB as u64 && sent < 5 * MIB as u64,
        "a change of 3 MiB sent {sent} bytes: {d:#}"
    );

    let recovery_point = d["RecoveryPointArn"].as_str().unwrap().to_string();
    let data = b.restore_disk(&recovery_point, "restored-1").await;
    b.assert_is_source(&data);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_backup_job_stops_within_a_second_and_removes_the_snapshot() {
    let b = BackupSetup::start(32 * MIB).await;
    // 100 kB/s: the backup would take minutes.
    b.limit(800_000).await;
    let (job, _) = b.start_backup_uploading(0).await;
    assert_eq!(b.snapshots().await.len(), 1, "the backup holds a snapshot");

    backup(&b.s, &["stop-backup-job", "--backup-job-id", &job]);
    let stopped = Instant::now();
    let mut soap = SoapSession::login(&b.s.vcsim).await.unwrap();
    loop {
        let left = vcsim_disks::snapshot_names(&mut soap, &b.vm.moref)
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(1),
            "the snapshot is still there {:?} after StopBackupJob: {left:?}",
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = b.wait_done(&job, Duration::from_secs(10)).await;
    assert_eq!(d["State"], "ABORTED", "{d:#}");
    let after = bytes_transferred(&d);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        bytes_transferred(&b.describe(&job)),
        after,
        "nothing is sent after the stop"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_killed_mid_backup_removes_its_snapshot_when_it_starts_again() {
    let mut b = BackupSetup::start(32 * MIB).await;
    b.limit(800_000).await;
    let (job, _) = b.start_backup_uploading(0).await;
    assert_eq!(b.snapshots().await.len(), 1);

    b.s.kill_and_restart_agent().await;
    let started = Instant::now();
    loop {
        if b.snapshots().await.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the leftover snapshot was not removed after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let d = b.wait_done(&job, Duration::from_secs(30)).await;
    assert_eq!(d["State"], "FAILED", "{d:#}");
    assert!(
        d["StatusMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{d:#}"
    );
}
