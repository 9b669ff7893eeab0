//! Persistent state of the control plane, in sled under the data directory.
//!
//! One tree per record kind, keyed by ARN so that scans come out ordered by ARN (which is the
//! order every List operation returns). Changes that touch several trees run in one sled
//! transaction; checks that guard them (a key not yet consumed, a gateway without a
//! hypervisor) run inside the same transaction, so concurrent requests cannot both win. A
//! metadata batch from a gateway is one transaction too ([`domain::MetadataStore`]).
//!
//! ```no_run
//! # fn main() -> Result<(), bgw_cloud::error::StoreError> {
//! let store = bgw_cloud::store::Store::open(std::path::Path::new("/var/lib/bgw-cloud/store"))?;
//! let (gateways, _next) = store.list_gateways(None, 100)?;
//! # Ok(()) }
//! ```

pub mod backup;
pub mod backup_memory;
pub mod domain;
pub(crate) mod gateway_ops;
pub mod memory;
pub(crate) mod ops;
pub mod records;
pub mod releases;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

use crate::error::BoxError;
pub use crate::error::StoreError;
pub use gateway_ops::{ConfigVersion, GatewayAgent, GatewayCredential, KeyBinding};
pub use records::*;

const FORMAT_KEY: &[u8] = b"format";
const FORMAT_VALUE: &[u8] = b"bgw-cloud-store/1";

/// The store. Cheap to clone (sled handles are reference counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    gateways: Tree,
    hypervisors: Tree,
    vms: Tree,
    /// `hypervisor ARN \0 instance UUID` -> VM ARN.
    vm_index: Tree,
    keys: Tree,
    tags: Tree,
    schedules: Tree,
    /// `sync id \0 instance UUID`: the VMs a running metadata sync mentioned.
    sync_seen: Tree,
    /// Sync ids of the metadata syncs that completed.
    syncs_done: Tree,
}

/// The trees inside one transaction.
pub(crate) struct Tx<'a> {
    pub gateways: &'a TransactionalTree,
    pub hypervisors: &'a TransactionalTree,
    pub vms: &'a TransactionalTree,
    pub vm_index: &'a TransactionalTree,
    pub keys: &'a TransactionalTree,
    pub tags: &'a TransactionalTree,
    pub schedules: &'a TransactionalTree,
    pub sync_seen: &'a TransactionalTree,
    pub syncs_done: &'a TransactionalTree,
}

pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Why a step of a transaction the caller drives ([`domain::MetadataStore`]) failed.
#[derive(Debug)]
pub enum TxError {
    /// Another writer changed what the transaction read: it is run again from the start.
    Retry,
    /// The transaction is abandoned with this error; nothing it wrote is kept.
    Abort(StoreError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Abort(e)
    }
}

impl From<ConflictableTransactionError<StoreError>> for TxError {
    fn from(e: ConflictableTransactionError<StoreError>) -> Self {
        match e {
            ConflictableTransactionError::Abort(e) => TxError::Abort(e),
            ConflictableTransactionError::Conflict => TxError::Retry,
            ConflictableTransactionError::Storage(e) => TxError::Abort(StoreError::Engine(e)),
        }
    }
}

impl From<TxError> for ConflictableTransactionError<StoreError> {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Retry => ConflictableTransactionError::Conflict,
            TxError::Abort(e) => ConflictableTransactionError::Abort(e),
        }
    }
}

/// Aborts a transaction with a store error.
pub(crate) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

impl Store {
    /// Opens (or creates) the store in `path`. A directory holding something else is refused.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source: BoxError| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if path.exists() && !path.is_dir() {
            return Err(open_err("it exists and is not a directory".into()));
        }
        if path.is_dir() {
            // A sled directory has a `conf` and a `db` file; anything else is not ours.
            let entries = std::fs::read_dir(path).map_err(|e| open_err(e.into()))?;
            let names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if !names.is_empty() && !names.iter().any(|n| n == "conf" || n == "db") {
                return Err(StoreError::Foreign {
                    path: path.to_owned(),
                    found: format!("files: {}", names.join(", ")),
                });
            }
        }
        let config = sled::Config::new().path(path);
        // sled can panic on some corrupt inputs; turn that into an error, never a crash.
        let db = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
            .map_err(|_| open_err("the storage engine could not read it (corrupt?)".into()))?
            .map_err(|e| open_err(e.into()))?;
        let meta = db.open_tree("meta")?;
        match meta.get(FORMAT_KEY)? {
            Some(v) if v.as_ref() == FORMAT_VALUE => {}
            Some(v) => {
                return Err(StoreError::Foreign {
                    path: path.to_owned(),
                    found: format!("format marker {:?}", String::from_utf8_lossy(&v)),
                })
            }
            None => {
                let user_trees = db
                    .tree_names()
                    .into_iter()
                    .filter(|n| n.as_ref() != b"__sled__default" && n.as_ref() != b"meta")
                    .count();
                if user_trees > 0 || !db.is_empty() {
                    return Err(StoreError::Foreign {
                        path: path.to_owned(),
                        found: "a sled database without the bgw-cloud format marker".into(),
                    });
                }
                meta.insert(FORMAT_KEY, FORMAT_VALUE)?;
            }
        }
        Ok(Store {
            gateways: db.open_tree("gateways")?,
            hypervisors: db.open_tree("hypervisors")?,
            vms: db.open_tree("vms")?,
            vm_index: db.open_tree("vm_index")?,
            keys: db.open_tree("activation_keys")?,
            tags: db.open_tree("tags")?,
            schedules: db.open_tree("bandwidth_schedules")?,
            sync_seen: db.open_tree("gw_sync_seen")?,
            syncs_done: db.open_tree("gw_syncs_done")?,
            db,
        })
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    pub(crate) fn tx<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let trees = (
            &self.gateways,
            &self.hypervisors,
            &self.vms,
            &self.vm_index,
            &self.keys,
            &self.tags,
            &self.schedules,
            &self.sync_seen,
            &self.syncs_done,
        );
        trees
            .transaction(
                |(
                    gateways,
                    hypervisors,
                    vms,
                    vm_index,
                    keys,
                    tags,
                    schedules,
                    sync_seen,
                    syncs_done,
                )| {
                    f(&Tx {
                        gateways,
                        hypervisors,
                        vms,
                        vm_index,
                        keys,
                        tags,
                        schedules,
                        sync_seen,
                        syncs_done,
                    })
                },
            )
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Engine(e),
            })
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise to JSON")
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source: e.into(),
    })
}

/// Reads and decodes a record inside a transaction.
pub(crate) fn tx_get<T: DeserializeOwned>(
    tree: &TransactionalTree,
    key: &str,
) -> TxResult<Option<T>> {
    match tree.get(key.as_bytes())? {
        Some(bytes) => match decode(key.as_bytes(), &bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => abort(e),
        },
        None => Ok(None),
    }
}

pub(crate) fn tx_put<T: Serialize>(tree: &TransactionalTree, key: &str, value: &T) -> TxResult<()> {
    tree.insert(key.as_bytes(), encode(value))?;
    Ok(())
}

/// Reads one page of a tree in key order, starting after `after`.
pub(crate) fn page<T: DeserializeOwned>(
    tree: &Tree,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), StoreError> {
    use std::ops::Bound;
    let start = match after {
        Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    let mut items = Vec::new();
    let mut last_key = None;
    let mut more = false;
    for entry in tree.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
        let (k, v) = entry?;
        let record: T = decode(&k, &v)?;
        if !keep(&record) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        last_key = Some(String::from_utf8_lossy(&k).into_owned());
        items.push(record);
    }
    Ok((items, if more { last_key } else { None }))
}

#[cfg(test)]
mod tests;
