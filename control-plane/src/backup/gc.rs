//! Freeing chunks that no recovery point references: mark and sweep, safe against backups
//! running at the same time.
//!
//! 1. The sweep notes its start time and lists the chunk store (no lock: uploads go on).
//! 2. It then takes the collector lock exclusively — chunk lookups, uploads and job
//!    completions hold it shared — and marks every chunk of every recovery point and every
//!    chunk a running job relies on (uploaded by it, reported present to it, taken from its
//!    previous recovery point, or read by a restore).
//! 3. Under the same lock it deletes the listed chunks that are unmarked and older than the
//!    sweep's start (less a minute's margin). A chunk written after the listing began is not in the listing; one a
//!    job was told about before the lock is marked; after the lock, a job asking about a
//!    deleted chunk is told it is missing and uploads it again.

use std::collections::HashSet;
use std::sync::Arc;

use bgw_chunks::{ChunkHash, ChunkInfo};
use futures::TryStreamExt;

use super::BackupService;
use crate::error::Error;

/// Chunks written less than this long before a sweep started are kept by it.
pub const YOUNG_MARGIN_SECS: i64 = 60;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Chunks listed in the store.
    pub listed: usize,
    /// Chunks deleted, and their stored bytes.
    pub deleted: usize,
    pub deleted_bytes: u64,
    /// Chunks kept: referenced, relied on by a running job, or younger than the sweep.
    pub kept: usize,
}

impl BackupService {
    /// One mark-and-sweep pass over the chunk store.
    pub async fn collect_garbage(self: &Arc<Self>) -> Result<GcReport, Error> {
        self.collect_garbage_with_margin(chrono::Duration::seconds(YOUNG_MARGIN_SECS))
            .await
    }

    /// A sweep that keeps chunks written less than `margin` before it started.
    pub async fn collect_garbage_with_margin(
        self: &Arc<Self>,
        margin: chrono::Duration,
    ) -> Result<GcReport, Error> {
        // Compared with the chunk store's own write times, which are wall-clock times; the
        // margin covers stores that keep whole seconds and small clock steps.
        let started = chrono::Utc::now() - margin;
        let listed: Vec<ChunkInfo> = self.chunks.list().try_collect().await?;
        let _exclusive = self.gc_lock.write().await;
        let mut marked: HashSet<ChunkHash> = HashSet::new();
        for point in self.catalog.recovery_points()? {
            for disk in point.disks {
                marked.extend(disk.chunks);
            }
        }
        for job in self.live_jobs() {
            marked.extend(job.pinned());
        }
        let mut report = GcReport {
            listed: listed.len(),
            ..GcReport::default()
        };
        for chunk in listed {
            if marked.contains(&chunk.hash) || chunk.modified >= started {
                report.kept += 1;
                continue;
            }
            self.chunks.delete(&chunk.hash).await?;
            report.deleted += 1;
            report.deleted_bytes += chunk.size;
        }
        tracing::info!(
            listed = report.listed,
            deleted = report.deleted,
            deleted_bytes = report.deleted_bytes,
            kept = report.kept,
            store = %self.chunks.location(),
            "chunk sweep done"
        );
        Ok(report)
    }
}
