//! The versions directory: artifacts are downloaded into `versions/incoming/` (resumed with
//! `Range` after an interruption or a restart), checked against their signed manifest, and
//! unpacked side by side as `versions/VERSION/` with a rename, so a version directory is
//! either whole or absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bgw_update::{Manifest, Refusal, Version};
use tokio::io::AsyncWriteExt;

use crate::cloud::CloudClient;
use crate::error::{Error, Result};

/// A read that delivers nothing for this long counts as an interruption.
const READ_STALL: Duration = Duration::from_secs(60);

/// `state_dir/versions`.
#[derive(Debug, Clone)]
pub struct Versions {
    root: PathBuf,
}

/// How one download attempt ended.
#[derive(Debug)]
pub enum Fetched {
    /// The file has as many bytes as the manifest says (not yet checked).
    Complete,
    /// The transfer stopped early; `progressed` says whether it delivered anything new.
    Interrupted { progressed: bool, detail: String },
    /// The cloud sent more bytes than the manifest says.
    TooLong { got: u64 },
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

impl Versions {
    pub fn new(state_dir: &Path) -> Self {
        Versions {
            root: state_dir.join("versions"),
        }
    }

    pub fn dir(&self, version: Version) -> PathBuf {
        self.root.join(version.to_string())
    }

    pub fn binary(&self, version: Version) -> PathBuf {
        self.dir(version).join("bgw-agent")
    }

    pub fn is_staged(&self, version: Version) -> bool {
        self.binary(version).is_file()
    }

    /// Where the artifact of `version` is downloaded to.
    pub fn incoming(&self, version: Version) -> PathBuf {
        self.root
            .join("incoming")
            .join(format!("bgw-agent-{version}.tar.gz"))
    }

    /// Bytes of the artifact of `version` downloaded so far.
    pub fn downloaded(&self, version: Version) -> u64 {
        std::fs::metadata(self.incoming(version)).map_or(0, |m| m.len())
    }

    /// One attempt to complete the download, from where the previous one stopped.
    pub async fn fetch(&self, cloud: &CloudClient, manifest: &Manifest) -> Result<Fetched> {
        let version = manifest.version;
        let path = self.incoming(version);
        let parent = path.parent().expect("incoming has a parent").to_owned();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(io(format!("creating {}", parent.display())))?;
        let mut offset = self.downloaded(version);
        if offset > manifest.size {
            offset = 0;
        }
        if offset == manifest.size {
            return Ok(Fetched::Complete);
        }
        if offset > 0 {
            tracing::info!(%version, offset, size = manifest.size, "resuming the artifact download");
        }
        let mut response = cloud.update_artifact(&version.to_string(), offset).await?;
        if offset > 0 && response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            // The whole artifact came back: start over.
            offset = 0;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(offset == 0)
            .append(offset > 0)
            .open(&path)
            .await
            .map_err(io(format!("opening {}", path.display())))?;
        let write_err = || format!("writing {}", path.display());
        let mut size = offset;
        let ended = loop {
            match tokio::time::timeout(READ_STALL, response.chunk()).await {
                Err(_) => break Some(format!("no data for {} s", READ_STALL.as_secs())),
                Ok(Err(e)) => break Some(e.to_string()),
                Ok(Ok(None)) => break None,
                Ok(Ok(Some(chunk))) => {
                    size += chunk.len() as u64;
                    if size > manifest.size {
                        drop(file);
                        let _ = tokio::fs::remove_file(&path).await;
                        return Ok(Fetched::TooLong { got: size });
                    }
                    file.write_all(&chunk).await.map_err(io(write_err()))?;
                }
            }
        };
        file.flush().await.map_err(io(write_err()))?;
        file.sync_all().await.map_err(io(write_err()))?;
        if size == manifest.size {
            return Ok(Fetched::Complete);
        }
        Ok(Fetched::Interrupted {
            progressed: size > offset,
            detail: ended.unwrap_or_else(|| "the answer ended early".into()),
        })
    }

    /// Checks the downloaded artifact against `manifest` and unpacks it as
    /// `versions/VERSION/`. A refusal removes the download.
    pub async fn stage(&self, manifest: &Manifest) -> Result<Result<(), Refusal>> {
        let version = manifest.version;
        let artifact = self.incoming(version);
        let checked = {
            let (m, a) = (manifest.clone(), artifact.clone());
            tokio::task::spawn_blocking(move || m.check_file(&a))
                .await
                .unwrap_or_else(|e| Err(Refusal::Malformed(e.to_string())))
        };
        if let Err(refusal) = checked {
            let _ = std::fs::remove_file(&artifact);
            return Ok(Err(refusal));
        }
        let partial = self.root.join(format!("{version}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(io(format!("creating {}", partial.display())))?;
        let unpacked = unpack(&artifact, &partial, version).await;
        if let Err(refusal) = unpacked {
            let _ = std::fs::remove_dir_all(&partial);
            let _ = std::fs::remove_file(&artifact);
            return Ok(Err(refusal));
        }
        let target = self.dir(version);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&partial, &target).map_err(io(format!(
            "renaming {} to {}",
            partial.display(),
            target.display()
        )))?;
        sync_dir(&self.root);
        let _ = std::fs::remove_file(&artifact);
        Ok(Ok(()))
    }

    /// Removes every staged version but `keep`, and downloads of other versions.
    pub fn prune(&self, keep: &[Version]) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let version = name.strip_suffix(".partial").unwrap_or(&name);
            match Version::parse(version) {
                Ok(v) if keep.contains(&v) && !name.ends_with(".partial") => {}
                Ok(_) => {
                    tracing::info!(version = %name, "removing an old staged version");
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                Err(_) => {}
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join("incoming")) {
            for entry in entries.flatten() {
                let keep_it = keep.iter().any(|v| entry.path() == self.incoming(*v));
                if !keep_it {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Unpacks the tarball into `dir` and checks that it holds an agent of `version`.
async fn unpack(artifact: &Path, dir: &Path, version: Version) -> Result<(), Refusal> {
    let malformed = |what: String| Refusal::Malformed(what);
    let out = tokio::process::Command::new("tar")
        .arg("-xzf")
        .arg(artifact)
        .arg("-C")
        .arg(dir)
        .arg("--no-same-owner")
        .output()
        .await
        .map_err(|e| malformed(format!("cannot run tar to unpack the artifact: {e}")))?;
    if !out.status.success() {
        return Err(malformed(format!(
            "the artifact is not a gzip tarball: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let named = std::fs::read_to_string(dir.join("VERSION")).unwrap_or_default();
    if named.trim() != version.to_string() {
        return Err(malformed(format!(
            "the artifact's VERSION file says {:?}, its manifest says {version}",
            named.trim()
        )));
    }
    let binary = dir.join("bgw-agent");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| malformed(format!("the artifact holds no bgw-agent binary: {e}")))?;
    }
    let run = tokio::process::Command::new(&binary)
        .arg("--version")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .map_err(|_| malformed("its bgw-agent --version did not answer within 20 s".into()))?
        .map_err(|e| malformed(format!("its bgw-agent does not run on this gateway: {e}")))?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if printed != format!("bgw-agent {version}") {
        return Err(malformed(format!(
            "its bgw-agent --version prints {printed:?}, not bgw-agent {version}"
        )));
    }
    for file in ["bgw-agent", "VERSION"] {
        if let Ok(f) = std::fs::File::open(dir.join(file)) {
            let _ = f.sync_all();
        }
    }
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
