//! The data path of a backup: read, hash, ask, compress, upload, overlapping.
//!
//! ```text
//!  reader ──(≤ READ_AHEAD reads in flight, SHA-256 on the blocking pool)──► ch ──► batcher
//!  batcher ──(≤ ASKS asks of ≤ BATCH hashes in flight; known chunks dropped)──► ch ──► uploader
//!  uploader ──(≤ UPLOADS at once: zstd on the blocking pool, PUT through the throttle)
//! ```
//!
//! The three stages run concurrently in the job's task and are connected by small bounded
//! channels, so memory stays at a few dozen chunks whatever the disk size, and a slow upload
//! (the bandwidth schedule) slows the reads instead of filling memory. A chunk whose hash
//! the job has already sent or asked about is not asked about again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgw_protocol::backup::{ChunkHash, MissingChunksRequest, MAX_MISSING_BATCH};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use vsphere_client::disk_io::DiskReader;

use super::plan::{chunk_range, zero_hash, ChunkSource};
use crate::cloud::backup::is_job_not_running;
use crate::cloud::CloudClient;
use crate::error::{Error, Result};

/// Disk reads in flight per job.
pub const READ_AHEAD: usize = 6;
/// Hashes per `chunks/missing`, at most (fewer when the reads are slower than the asks).
pub const BATCH: usize = 8;
/// `chunks/missing` asks in flight per job.
pub const ASKS: usize = 2;
/// Chunk uploads in flight per job.
pub const UPLOADS: usize = 6;

/// Counters a job's progress reports read.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes of disk read (zeros not read are not counted).
    pub read: AtomicU64,
    /// Bytes of disk whose chunk is safely in the cloud (sent, already there, or reused).
    pub done: AtomicU64,
    /// Bytes sent to the cloud (compressed chunk bodies).
    pub sent: AtomicU64,
    pub chunks_sent: AtomicU64,
    /// Chunks the cloud already held.
    pub chunks_known: AtomicU64,
    /// Time spent in each stage, summed over chunks (µs): where a backup's time goes.
    pub read_us: AtomicU64,
    pub hash_us: AtomicU64,
    pub ask_us: AtomicU64,
    pub compress_us: AtomicU64,
    pub upload_us: AtomicU64,
}

/// Adds the time since `start` to a stage counter.
fn spent(counter: &AtomicU64, start: std::time::Instant) {
    counter.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
}

/// What a job's disks share: the cloud, the throttle, the counters and the chunks already
/// handled by this job.
pub struct Pipeline {
    pub cloud: CloudClient,
    pub job_id: String,
    pub throttle: bgw_scheduler::throttle::Throttle,
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    pub stats: Arc<Stats>,
    pub zstd_level: i32,
    /// Chunks this job has asked about (sent, or known to the cloud).
    handled: Mutex<HashSet<ChunkHash>>,
}

struct Chunk {
    index: usize,
    hash: ChunkHash,
    data: Bytes,
}

impl Pipeline {
    pub fn new(
        cloud: CloudClient,
        job_id: String,
        throttle: bgw_scheduler::throttle::Throttle,
        stats: Arc<Stats>,
    ) -> Self {
        Pipeline {
            cloud,
            job_id,
            throttle,
            metrics: None,
            stats,
            zstd_level: 1,
            handled: Mutex::new(HashSet::new()),
        }
    }

    /// Backs up one disk (`label`, as vCenter names it, for messages) by `plan` (one source
    /// per chunk) and returns its chunk list.
    pub async fn disk(
        &self,
        label: &str,
        reader: Arc<dyn DiskReader>,
        chunk_size: u64,
        mut plan: Vec<ChunkSource>,
    ) -> Result<Vec<ChunkHash>> {
        let capacity = reader.capacity();
        let mut hashes: Vec<Option<ChunkHash>> = vec![None; plan.len()];
        self.check_reused(&mut plan, capacity, chunk_size, &mut hashes)
            .await?;
        let to_read: Vec<usize> = plan
            .iter()
            .enumerate()
            .filter(|(_, s)| !matches!(s, ChunkSource::Reuse(_)))
            .map(|(i, _)| i)
            .collect();
        let (read_tx, read_rx) = mpsc::channel::<Chunk>(2);
        let (up_tx, up_rx) = mpsc::channel::<Chunk>(1);
        let hashes = Mutex::new(hashes);
        let read = self.read_stage(
            label, &reader, &plan, &to_read, capacity, chunk_size, read_tx,
        );
        let ask = self.ask_stage(read_rx, up_tx, &hashes, capacity, chunk_size);
        let upload = self.upload_stage(up_rx, capacity, chunk_size);
        futures::try_join!(read, ask, upload)?;
        let hashes = hashes.into_inner().unwrap_or_else(|e| e.into_inner());
        hashes
            .into_iter()
            .enumerate()
            .map(|(i, h)| h.ok_or_else(|| Error::Job(format!("chunk {i} was never hashed"))))
            .collect()
    }

    /// Reused chunks must still be in the cloud (a recovery point may have been deleted
    /// since): those it lacks are read again.
    async fn check_reused(
        &self,
        plan: &mut [ChunkSource],
        capacity: u64,
        chunk_size: u64,
        hashes: &mut [Option<ChunkHash>],
    ) -> Result<()> {
        let reused: Vec<ChunkHash> = {
            let mut seen = HashSet::new();
            plan.iter()
                .filter_map(|s| match s {
                    ChunkSource::Reuse(h) if seen.insert(h.clone()) => Some(h.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut missing = HashSet::new();
        for batch in reused.chunks(MAX_MISSING_BATCH) {
            missing.extend(self.missing(batch.to_vec()).await?);
        }
        for (i, s) in plan.iter_mut().enumerate() {
            if let ChunkSource::Reuse(h) = s {
                if missing.contains(h) {
                    *s = ChunkSource::Read;
                } else {
                    hashes[i] = Some(h.clone());
                    let r = chunk_range(i, capacity, chunk_size);
                    self.stats
                        .done
                        .fetch_add(r.end - r.start, Ordering::Relaxed);
                }
            }
        }
        self.handled
            .lock()
            .expect("handled lock")
            .extend(reused.into_iter().filter(|h| !missing.contains(h)));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_stage(
        &self,
        label: &str,
        reader: &Arc<dyn DiskReader>,
        plan: &[ChunkSource],
        to_read: &[usize],
        capacity: u64,
        chunk_size: u64,
        tx: mpsc::Sender<Chunk>,
    ) -> Result<()> {
        let mut chunks =
            futures::stream::iter(to_read.iter().copied())
                .map(|index| {
                    let reader = reader.clone();
                    let zero = matches!(plan[index], ChunkSource::Zero);
                    let stats = self.stats.clone();
                    async move {
                        let r = chunk_range(index, capacity, chunk_size);
                        let len = r.end - r.start;
                        if zero {
                            return Ok(Chunk {
                                index,
                                hash: zero_hash(len),
                                data: Bytes::from(vec![0u8; len as usize]),
                            });
                        }
                        let started = std::time::Instant::now();
                        let data = reader.read_at(r.start, len).await.map_err(|source| {
                            Error::Vcenter {
                                what: format!(
                                    "reading bytes {}..{} of disk '{label}'",
                                    r.start, r.end
                                ),
                                source,
                            }
                        })?;
                        if data.len() as u64 != len {
                            return Err(Error::Job(format!(
                                "short read of disk '{label}' at {}: {} of {len} bytes",
                                r.start,
                                data.len()
                            )));
                        }
                        stats.read.fetch_add(len, Ordering::Relaxed);
                        spent(&stats.read_us, started);
                        let hash_stats = stats.clone();
                        let (hash, data) = tokio::task::spawn_blocking(move || {
                            let started = std::time::Instant::now();
                            let hash = ChunkHash::from_digest(Sha256::digest(&data).into());
                            spent(&hash_stats.hash_us, started);
                            (hash, data)
                        })
                        .await
                        .map_err(|source| Error::Worker {
                            what: "hashing",
                            source,
                        })?;
                        Ok::<_, Error>(Chunk { index, hash, data })
                    }
                })
                .buffered(READ_AHEAD);
        while let Some(chunk) = chunks.next().await {
            if tx.send(chunk?).await.is_err() {
                break; // a later stage failed; its error is the job's
            }
        }
        Ok(())
    }

    async fn ask_stage(
        &self,
        rx: mpsc::Receiver<Chunk>,
        tx: mpsc::Sender<Chunk>,
        hashes: &Mutex<Vec<Option<ChunkHash>>>,
        capacity: u64,
        chunk_size: u64,
    ) -> Result<()> {
        // A batch is what has arrived by the time an ask can start: up to ASKS asks are in
        // flight, so one slow answer (it shares the connection with the uploads) does not
        // stop the reads behind it.
        let batches = futures::stream::unfold(rx, |mut rx| async {
            let first = rx.recv().await?;
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            Some((Ok::<_, Error>(batch), rx))
        });
        batches
            .try_for_each_concurrent(ASKS, |batch| {
                let tx = tx.clone();
                async move {
                    self.ask_batch(batch, &tx, hashes, capacity, chunk_size)
                        .await
                }
            })
            .await
    }

    /// Asks the cloud about the chunks of `batch` this job has not asked about, passes on those
    /// it lacks, and counts the rest as done.
    async fn ask_batch(
        &self,
        batch: Vec<Chunk>,
        tx: &mpsc::Sender<Chunk>,
        hashes: &Mutex<Vec<Option<ChunkHash>>>,
        capacity: u64,
        chunk_size: u64,
    ) -> Result<()> {
        let mut ask = Vec::new();
        let mut later = Vec::new();
        {
            let mut hs = hashes.lock().expect("hashes lock");
            let mut handled = self.handled.lock().expect("handled lock");
            for c in batch {
                hs[c.index] = Some(c.hash.clone());
                if handled.insert(c.hash.clone()) {
                    ask.push(c);
                } else {
                    later.push(c);
                }
            }
        }
        let started = std::time::Instant::now();
        let missing: HashSet<ChunkHash> = if ask.is_empty() {
            HashSet::new()
        } else {
            self.missing(ask.iter().map(|c| c.hash.clone()).collect())
                .await?
                .into_iter()
                .collect()
        };
        spent(&self.stats.ask_us, started);
        for c in ask {
            if missing.contains(&c.hash) {
                if tx.send(c).await.is_err() {
                    return Ok(()); // the upload stage failed; its error is the job's
                }
            } else {
                self.stats.chunks_known.fetch_add(1, Ordering::Relaxed);
                self.count_done(c.index, capacity, chunk_size);
            }
        }
        // Repeats of a chunk this job has sent or is sending.
        for c in later {
            self.count_done(c.index, capacity, chunk_size);
        }
        Ok(())
    }

    async fn upload_stage(
        &self,
        rx: mpsc::Receiver<Chunk>,
        capacity: u64,
        chunk_size: u64,
    ) -> Result<()> {
        let chunks = futures::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|c| (Ok::<_, Error>(c), rx))
        });
        chunks
            .try_for_each_concurrent(UPLOADS, |c| async move {
                let raw_len = c.data.len() as u64;
                let level = self.zstd_level;
                let data = c.data;
                let stats = self.stats.clone();
                let frame = tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let frame = zstd::bulk::compress(&data, level);
                    spent(&stats.compress_us, started);
                    frame
                })
                .await
                .map_err(|source| Error::Worker {
                    what: "compression",
                    source,
                })?
                .map_err(|source| Error::Io {
                    what: "compressing a chunk".into(),
                    source,
                })?;
                let frame = Bytes::from(frame);
                let n = frame.len() as u64;
                let started = std::time::Instant::now();
                self.put(&c.hash, raw_len, frame).await?;
                spent(&self.stats.upload_us, started);
                self.stats.sent.fetch_add(n, Ordering::Relaxed);
                self.stats.chunks_sent.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics.uploaded(n);
                }
                self.count_done(c.index, capacity, chunk_size);
                Ok(())
            })
            .await
    }

    fn count_done(&self, index: usize, capacity: u64, chunk_size: u64) {
        let r = chunk_range(index, capacity, chunk_size);
        self.stats
            .done
            .fetch_add(r.end - r.start, Ordering::Relaxed);
    }

    async fn missing(&self, hashes: Vec<ChunkHash>) -> Result<Vec<ChunkHash>> {
        let request = MissingChunksRequest {
            job_id: self.job_id.clone(),
            hashes,
        };
        retry("asking which chunks the cloud lacks", || {
            self.cloud.missing_chunks(&request)
        })
        .await
        .map(|m| m.missing)
    }

    async fn put(&self, hash: &ChunkHash, raw_len: u64, frame: Bytes) -> Result<()> {
        let mut corrupt = 0;
        loop {
            let sent = retry("uploading a chunk", || {
                self.cloud
                    .put_chunk(&self.job_id, hash, raw_len, frame.clone(), &self.throttle)
            })
            .await;
            match sent {
                Ok(_) => return Ok(()),
                // The chunk was damaged on the way: send it again, twice at most.
                Err(Error::CloudRefused { code, .. }) if code == "ChunkCorrupt" && corrupt < 2 => {
                    corrupt += 1;
                    tracing::warn!(chunk = %hash, "the cloud refused a chunk as corrupt; sending it again");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// How long a cloud call of a job is retried while the cloud is unreachable or busy.
const RETRY_FOR: Duration = Duration::from_secs(120);

/// Runs `call` again on transient errors (unreachable, 5xx, 429) with backoff, for up to
/// [`RETRY_FOR`]; a job the cloud says has ended stops.
pub async fn retry<T, F, Fut>(what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if is_job_not_running(&e) => {
                return Err(Error::JobStopped(format!(
                    "the cloud ended the job while {what}"
                )))
            }
            Err(e) if e.is_transient() && start.elapsed() < RETRY_FOR => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}
