//! The agent's persistent state, in sled under `state_dir`.
//!
//! What lives here: the installation identity, a pending activation key, the gateway ARN and
//! credentials, the applied cloud configuration, sync cursors, the outbox of results not yet
//! delivered, and the ids of commands already run. Every write that the agent acknowledges to
//! someone else is flushed before the acknowledgement, so `kill -9` loses nothing acknowledged;
//! sled's log makes torn writes impossible.
//!
//! Only the daemon opens the store (sled holds a lock on it); the directory is 0700 and the
//! files 0600 because they hold credentials and the hypervisor password.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bgw_protocol::activation::GatewayCredentials;
use bgw_protocol::commands::CommandResult;
use bgw_protocol::config::GatewayConfig;
use bgw_protocol::Secret;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who this installation is, generated once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub agent_id: String,
    pub agent_secret: Secret,
}

impl Identity {
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        Self {
            agent_id: uuid::Builder::from_random_bytes(id)
                .into_uuid()
                .hyphenated()
                .to_string(),
            agent_secret: Secret::new(hex::encode(secret)),
        }
    }

    pub fn secret_sha256(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.agent_secret.expose().as_bytes()))
    }
}

/// An activation key handed out and not yet consumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingActivation {
    pub activation_key: String,
    pub region: String,
    pub expires_at: DateTime<Utc>,
}

/// The gateway this agent became at activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activated {
    pub gateway_arn: String,
    pub region: String,
    pub credentials: GatewayCredentials,
    pub activated_at: DateTime<Utc>,
}

/// Something to deliver to the cloud once it is reachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OutboxItem {
    CommandResult(CommandResult),
    SyncStatus(bgw_protocol::metadata::SyncStatusReport),
    Metadata(bgw_protocol::metadata::MetadataBatch),
    /// The end of a backup or restore job.
    JobComplete(bgw_protocol::backup::JobComplete),
}

const IDENTITY: &str = "identity";
const PENDING_ACTIVATION: &str = "activation";
const ACTIVATED: &str = "gateway";
const CONFIG: &str = "config";

/// The store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    outbox: sled::Tree,
    cursors: sled::Tree,
    commands: sled::Tree,
    values: sled::Tree,
}

impl Store {
    /// Opens (or creates) the store in `dir`, with owner-only permissions.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir_err = |what: &'static str| {
            move |source| Error::StateDir {
                path: dir.to_path_buf(),
                what,
                source,
            }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(dir_err("create"))?;
        let db_path = dir.join("db");
        let db = sled::Config::new()
            .path(&db_path)
            .mode(sled::Mode::HighThroughput)
            // The agent's state is small: a small page cache keeps the idle footprint low.
            .cache_capacity(2 * 1024 * 1024)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|source| Error::StateOpen {
                path: dir.to_path_buf(),
                source,
            })?;
        restrict_permissions(dir).map_err(dir_err("set the permissions of"))?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| Error::State {
                what: "open tree",
                source,
            })
        };
        Ok(Self {
            path: dir.to_path_buf(),
            outbox: tree("outbox")?,
            cursors: tree("cursors")?,
            commands: tree("commands")?,
            values: tree("values")?,
            db,
        })
    }

    /// Opens another tree of the store, for a component that keeps its own records
    /// (the job runner's `jobs`).
    pub fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(|source| Error::State {
            what: "open tree",
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|source| Error::State {
            what: "flush",
            source,
        })?;
        Ok(())
    }

    fn get<T: DeserializeOwned>(&self, tree: &sled::Tree, key: &str) -> Result<Option<T>> {
        let Some(bytes) = tree.get(key).map_err(|source| Error::State {
            what: "read",
            source,
        })?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::StateCorrupt {
                key: key.to_string(),
                source,
            })
    }

    /// Writes and flushes: the value is durable when this returns.
    fn put<T: Serialize>(&self, tree: &sled::Tree, key: &str, value: Option<&T>) -> Result<()> {
        let result = match value {
            Some(v) => tree
                .insert(key, serde_json::to_vec(v).expect("state values serialise"))
                .map(|_| ()),
            None => tree.remove(key).map(|_| ()),
        };
        result.map_err(|source| Error::State {
            what: "write",
            source,
        })?;
        self.flush()
    }

    /// The installation identity, created on first use.
    pub fn identity(&self, rng: &mut impl RngCore) -> Result<Identity> {
        if let Some(identity) = self.get(&self.values, IDENTITY)? {
            return Ok(identity);
        }
        let identity = Identity::generate(rng);
        self.put(&self.values, IDENTITY, Some(&identity))?;
        Ok(identity)
    }

    pub fn pending_activation(&self) -> Result<Option<PendingActivation>> {
        self.get(&self.values, PENDING_ACTIVATION)
    }

    pub fn set_pending_activation(&self, value: Option<&PendingActivation>) -> Result<()> {
        self.put(&self.values, PENDING_ACTIVATION, value)
    }

    pub fn activated(&self) -> Result<Option<Activated>> {
        self.get(&self.values, ACTIVATED)
    }

    /// Records the activation and drops the pending key, atomically.
    pub fn set_activated(&self, value: &Activated) -> Result<()> {
        let mut batch = sled::Batch::default();
        batch.insert(
            ACTIVATED,
            serde_json::to_vec(value).expect("state values serialise"),
        );
        batch.remove(PENDING_ACTIVATION);
        self.values
            .apply_batch(batch)
            .map_err(|source| Error::State {
                what: "write activation",
                source,
            })?;
        self.flush()
    }

    /// The applied cloud configuration (version 0 = nothing configured yet).
    pub fn config(&self) -> Result<GatewayConfig> {
        Ok(self.get(&self.values, CONFIG)?.unwrap_or_default())
    }

    pub fn set_config(&self, config: &GatewayConfig) -> Result<()> {
        self.put(&self.values, CONFIG, Some(config))
    }

    /// A value stored by another component (sync status, trusted thumbprints, ...).
    pub fn value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(&self.values, key)
    }

    pub fn set_value<T: Serialize>(&self, key: &str, value: Option<&T>) -> Result<()> {
        self.put(&self.values, key, value)
    }

    /// A sync cursor (e.g. the vCenter `WaitForUpdatesEx` version).
    pub fn cursor(&self, name: &str) -> Result<Option<String>> {
        self.get(&self.cursors, name)
    }

    pub fn set_cursor(&self, name: &str, value: Option<&str>) -> Result<()> {
        self.put(&self.cursors, name, value.map(str::to_string).as_ref())
    }

    /// Queues an item for delivery; durable when this returns.
    pub fn push_outbox(&self, item: &OutboxItem) -> Result<u64> {
        let id = self.db.generate_id().map_err(|source| Error::State {
            what: "generate id",
            source,
        })?;
        self.outbox
            .insert(
                id.to_be_bytes(),
                serde_json::to_vec(item).expect("state values serialise"),
            )
            .map_err(|source| Error::State {
                what: "queue",
                source,
            })?;
        self.flush()?;
        Ok(id)
    }

    /// Queued items, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxItem)>> {
        let mut out = Vec::new();
        for entry in self.outbox.iter() {
            let (k, v) = entry.map_err(|source| Error::State {
                what: "read outbox",
                source,
            })?;
            let id = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]));
            match serde_json::from_slice(&v) {
                Ok(item) => out.push((id, item)),
                Err(e) => {
                    // An entry written by a newer agent: keep it, but do not block the rest.
                    tracing::warn!(id, error = %e, "skipping unreadable outbox entry");
                }
            }
        }
        Ok(out)
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    pub fn remove_outbox(&self, id: u64) -> Result<()> {
        self.outbox
            .remove(id.to_be_bytes())
            .map_err(|source| Error::State {
                what: "dequeue",
                source,
            })?;
        self.flush()
    }

    /// The result of a command already run, if any (commands are delivered at least once).
    pub fn command_result(&self, id: &str) -> Result<Option<CommandResult>> {
        self.get(&self.commands, id)
    }

    pub fn record_command(&self, result: &CommandResult) -> Result<()> {
        // Keep the most recent ids only: ids are unique, a few thousand is plenty.
        if self.commands.len() > 4096 {
            if let Some(Ok((k, _))) = self.commands.iter().next() {
                let _ = self.commands.remove(k);
            }
        }
        self.put(&self.commands, &result.command_id, Some(result))
    }
}

fn restrict_permissions(dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            restrict_permissions(&entry.path())?;
        } else {
            // Staged agent versions (versions/VERSION/bgw-agent) stay executable.
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o700
            } else {
                0o600
            };
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn identity_is_created_once_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let first = {
            let store = Store::open(dir.path()).unwrap();
            store.identity(&mut rng).unwrap()
        };
        let store = Store::open(dir.path()).unwrap();
        let again = store.identity(&mut rng).unwrap();
        assert_eq!(first.agent_id, again.agent_id);
        assert_eq!(first.agent_secret, again.agent_secret);
    }

    #[test]
    fn files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let store = Store::open(&state).unwrap();
        store
            .set_activated(&Activated {
                gateway_arn: "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-1".into(),
                region: "us-east-1".into(),
                credentials: GatewayCredentials {
                    access_key_id: "AK".into(),
                    secret_access_key: Secret::new("s"),
                },
                activated_at: Utc::now(),
            })
            .unwrap();
        drop(store);
        let _ = Store::open(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for entry in std::fs::read_dir(state.join("db")).unwrap() {
            let meta = entry.unwrap().metadata().unwrap();
            if meta.is_file() {
                assert_eq!(meta.permissions().mode() & 0o077, 0);
            }
        }
    }

    #[test]
    fn outbox_is_fifo_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let result = |id: &str| {
            OutboxItem::CommandResult(CommandResult {
                command_id: id.into(),
                outcome: bgw_protocol::commands::CommandOutcome::Succeeded,
            })
        };
        let a = store.push_outbox(&result("a")).unwrap();
        store.push_outbox(&result("b")).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let items = store.outbox().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].1, result("a"));
        store.remove_outbox(a).unwrap();
        assert_eq!(store.outbox().unwrap()[0].1, result("b"));
    }
}
