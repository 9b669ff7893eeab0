//! Chunks as files under a directory: `ROOT/ab/cd/abcd…` (two levels of 256 fan-out
//! directories keep every directory small up to hundreds of millions of chunks).
//!
//! Chunks are written with direct I/O (`O_DIRECT`) where the filesystem takes it: backup data
//! is written once and rarely read soon, so copying it into the page cache only costs CPU
//! (on a 2-core machine, that copy was a third of the control plane's time per chunk) and
//! evicts what is worth caching. A filesystem that refuses direct I/O (tmpfs on older
//! kernels, some network filesystems) gets ordinary buffered writes.

use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use crate::{ChunkHash, ChunkInfo, ChunkStore, Error};

/// Temporary files being written live here, then are renamed into place.
const TMP_DIR: &str = "tmp";

/// Direct I/O transfers are whole, aligned blocks of this size (4 KiB covers the logical
/// block sizes of the disks and filesystems in use).
const DIRECT_ALIGN: usize = 4096;

#[derive(Debug, Clone)]
pub struct DirChunkStore {
    root: PathBuf,
    /// Whether chunks are still written with direct I/O (cleared by the first refusal).
    direct: Arc<AtomicBool>,
}

impl DirChunkStore {
    /// Opens (creating) the directory. Leftover temporary files of an interrupted write are
    /// removed.
    pub async fn open(root: &Path) -> Result<Self, Error> {
        let tmp = root.join(TMP_DIR);
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        let mut entries = tokio::fs::read_dir(&tmp)
            .await
            .map_err(|e| Error::io(&tmp, e))?;
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(&tmp, e))? {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
        Ok(Self {
            root: root.to_owned(),
            direct: Arc::new(AtomicBool::new(true)),
        })
    }

    fn path_of(&self, hash: &ChunkHash) -> PathBuf {
        let h = hash.as_str();
        self.root.join(&h[0..2]).join(&h[2..4]).join(h)
    }

    /// Writes a chunk unless it is there: to a temporary file, synced, then renamed into
    /// place, so a chunk file is either whole or absent. One blocking call does it all; the
    /// only copy of the body is into the aligned staging buffer of a direct write.
    async fn write(&self, hash: &ChunkHash, data: Bytes) -> Result<bool, Error> {
        let path = self.path_of(hash);
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(format!("{hash}.{}", uuid::Uuid::new_v4().simple()));
        let direct = self.direct.clone();
        tokio::task::spawn_blocking(move || write_file(&path, &tmp, &data, &direct))
            .await
            .map_err(|e| Error::io(&self.root, std::io::Error::other(e)))?
    }
}

fn write_file(path: &Path, tmp: &Path, data: &[u8], direct: &AtomicBool) -> Result<bool, Error> {
    if path.try_exists().unwrap_or(false) {
        return Ok(false);
    }
    let dir = path.parent().expect("a chunk path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let written = (|| {
        if direct.load(Ordering::Relaxed) {
            match write_direct(tmp, data) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    direct.store(false, Ordering::Relaxed);
                    tracing::info!(dir = %dir.display(), "the chunk directory's filesystem refuses direct I/O; writing chunks through the page cache");
                    let _ = std::fs::remove_file(tmp);
                }
                done => return done,
            }
        }
        write_buffered(tmp, data)
    })()
    .and_then(|()| std::fs::rename(tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::io(path, e));
    }
    Ok(true)
}

fn write_buffered(tmp: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create_new(tmp)?;
    file.write_all(data)?;
    file.sync_data()
}

thread_local! {
    /// Each blocking thread's staging buffer for direct writes (kept, so a chunk costs no
    /// allocation or page faults).
    static STAGING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes `data` with `O_DIRECT`: staged in an aligned buffer, padded with zeros to whole
/// blocks, then cut back to its length.
fn write_direct(tmp: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(tmp)?;
    let padded = data.len().div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
    STAGING.with(|staging| {
        let mut staging = staging.borrow_mut();
        staging.resize(padded + DIRECT_ALIGN, 0);
        let start = staging.as_ptr().align_offset(DIRECT_ALIGN);
        let block = &mut staging[start..start + padded];
        block[..data.len()].copy_from_slice(data);
        block[data.len()..].fill(0);
        file.write_all(block)
    })?;
    file.set_len(data.len() as u64)?;
    file.sync_data()
}

impl ChunkStore for DirChunkStore {
    fn put(&self, hash: &ChunkHash, data: Bytes) -> BoxFuture<'_, Result<bool, Error>> {
        let hash = hash.clone();
        async move { self.write(&hash, data).await }.boxed()
    }

    fn get(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<Option<Bytes>, Error>> {
        let path = self.path_of(hash);
        async move {
            match tokio::fs::read(&path).await {
                Ok(data) => Ok(Some(Bytes::from(data))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(path, e)),
            }
        }
        .boxed()
    }

    fn has(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<bool, Error>> {
        let path = self.path_of(hash);
        async move {
            tokio::fs::try_exists(&path)
                .await
                .map_err(|e| Error::io(path, e))
        }
        .boxed()
    }

    fn list(&self) -> BoxStream<'_, Result<ChunkInfo, Error>> {
        // Two levels of fan-out directories, then the chunk files; anything else is skipped.
        let root = self.root.clone();
        futures::stream::once(async move { list_all(&root).await })
            .flat_map(|found| match found {
                Ok(items) => futures::stream::iter(items.into_iter().map(Ok)).boxed(),
                Err(e) => futures::stream::iter([Err(e)]).boxed(),
            })
            .boxed()
    }

    fn delete(&self, hash: &ChunkHash) -> BoxFuture<'_, Result<(), Error>> {
        let path = self.path_of(hash);
        async move {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(path, e)),
            }
        }
        .boxed()
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

fn is_fan_out(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn list_all(root: &Path) -> Result<Vec<ChunkInfo>, Error> {
    let mut out = Vec::new();
    for first in sub_dirs(root).await? {
        for second in sub_dirs(&first).await? {
            let mut entries = tokio::fs::read_dir(&second)
                .await
                .map_err(|e| Error::io(&second, e))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| Error::io(&second, e))?
            {
                let Some(hash) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<ChunkHash>().ok())
                else {
                    continue;
                };
                let meta = match entry.metadata().await {
                    Ok(m) => m,
                    // Deleted between the listing and now.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(entry.path(), e)),
                };
                let modified = meta
                    .modified()
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .map_err(|e| Error::io(entry.path(), e))?;
                out.push(ChunkInfo {
                    hash,
                    size: meta.len(),
                    modified,
                });
            }
        }
    }
    Ok(out)
}

async fn sub_dirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| Error::io(dir, e))?;
    while let Some(entry) = entries.next_entry().await.map_err(|e| Error::io(dir, e))? {
        let name = entry.file_name();
        if name.to_str().is_some_and(is_fan_out)
            && entry.file_type().await.is_ok_and(|t| t.is_dir())
        {
            out.push(entry.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn direct_writes_keep_every_length_exact() {
        let dir = tempfile::tempdir().unwrap();
        let direct = AtomicBool::new(true);
        for (n, len) in [0, 1, 4095, 4096, 4097, 3 * 1024 * 1024 + 17]
            .into_iter()
            .enumerate()
        {
            let data = sample(len);
            let path = dir.path().join(format!("c{n}"));
            let tmp = dir.path().join(format!("t{n}"));
            assert!(write_file(&path, &tmp, &data, &direct).unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), data, "length {len}");
            assert!(!tmp.exists());
        }
    }

    #[test]
    fn buffered_writes_when_direct_io_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let direct = AtomicBool::new(false);
        let data = sample(5000);
        let path = dir.path().join("c");
        assert!(write_file(&path, &dir.path().join("t"), &data, &direct).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // A chunk already there is not written again.
        assert!(!write_file(&path, &dir.path().join("t"), b"other", &direct).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
