//! Chunks as files under a directory: `ROOT/ab/cd/abcd…` (two levels of 256 fan-out
//! directories keep every directory small up to hundreds of millions of chunks).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use crate::{ChunkHash, ChunkInfo, ChunkStore, Error};

/// Temporary files being written live here, then are renamed into place.
const TMP_DIR: &str = "tmp";

#[derive(Debug, Clone)]
pub struct DirChunkStore {
    root: PathBuf,
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
        })
    }

    fn path_of(&self, hash: &ChunkHash) -> PathBuf {
        let h = hash.as_str();
        self.root.join(&h[0..2]).join(&h[2..4]).join(h)
    }

    async fn write(&self, hash: &ChunkHash, data: Bytes) -> Result<bool, Error> {
        let path = self.path_of(hash);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(false);
        }
        let dir = path.parent().expect("a chunk path has a parent");
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Error::io(dir, e))?;
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(format!("{hash}.{}", uuid::Uuid::new_v4().simple()));
        let written = async {
            use tokio::io::AsyncWriteExt;
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(&data).await?;
            file.sync_data().await?;
            drop(file);
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::io(&path, e));
        }
        Ok(true)
    }
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
