//! The backup catalogue: vaults, backup and restore jobs, recovery points and their chunk
//! lists. Its own trait ([`BackupCatalog`]) with a sled implementation ([`SledCatalog`], trees
//! beside the other domains' in the same database) and an in-memory one
//! ([`super::backup_memory::MemoryCatalog`]) for tests of the service.
//!
//! The chunks themselves are in the chunk store (`bgw-chunks`); the catalogue holds only
//! their names.

use std::collections::BTreeMap;

use bgw_protocol::backup::DiskManifest;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

use super::{decode, encode, Store, StoreError};

/// A backup vault (`CreateBackupVault`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaultRecord {
    pub name: String,
    pub arn: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub encryption_key_arn: Option<String>,
    #[serde(default)]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `BackupJobState` as the AWS Backup API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupJobState {
    /// Accepted, waiting for one of the gateway's job slots.
    Created,
    /// Sent to the gateway, not yet running there.
    Pending,
    Running,
    /// `StopBackupJob` asked the gateway to stop; it is cleaning up.
    Aborting,
    Aborted,
    Completed,
    Failed,
}

impl BackupJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Aborting => "ABORTING",
            Self::Aborted => "ABORTED",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// Completed, failed or aborted: nothing changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Aborted | Self::Completed | Self::Failed)
    }

    /// Holding one of the gateway's job slots.
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Pending | Self::Running | Self::Aborting)
    }
}

/// A backup job (`StartBackupJob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupJobRecord {
    pub job_id: String,
    pub vault_name: String,
    pub vault_arn: String,
    /// The gateway VM's ARN.
    pub resource_arn: String,
    pub resource_name: String,
    pub hypervisor_arn: String,
    pub gateway_arn: String,
    pub instance_uuid: String,
    pub iam_role_arn: String,
    /// The recovery point this job creates once it completes.
    pub recovery_point_arn: String,
    #[serde(default)]
    pub idempotency_token: Option<String>,
    /// The VM's latest recovery point in the vault when the job started (incremental base).
    #[serde(default)]
    pub previous_recovery_point_arn: Option<String>,
    pub state: BackupJobState,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub percent_done: f64,
    /// Bytes of chunk data received from the gateway.
    #[serde(default)]
    pub bytes_transferred: u64,
    #[serde(default)]
    pub backup_size_bytes: Option<u64>,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub started: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed: Option<DateTime<Utc>>,
}

/// `RecoveryPointStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryPointStatus {
    Completed,
    Deleting,
}

impl RecoveryPointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Deleting => "DELETING",
        }
    }
}

/// A recovery point: one completed backup of one VM, with its disks' chunk lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryPointRecord {
    pub arn: String,
    pub vault_name: String,
    pub vault_arn: String,
    pub resource_arn: String,
    pub resource_name: String,
    pub hypervisor_arn: String,
    pub instance_uuid: String,
    pub job_id: String,
    pub iam_role_arn: String,
    pub status: RecoveryPointStatus,
    pub created: DateTime<Utc>,
    pub completed: DateTime<Utc>,
    pub backup_size_bytes: u64,
    pub disks: Vec<DiskManifest>,
    /// Where the VM was when it was backed up (folder path, host), for restore metadata.
    #[serde(default)]
    pub vm_path: Option<String>,
    #[serde(default)]
    pub host_name: Option<String>,
}

/// `RestoreJobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreJobState {
    Pending,
    Running,
    Completed,
    Aborted,
    Failed,
}

impl RestoreJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Aborted => "ABORTED",
            Self::Failed => "FAILED",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Aborted | Self::Failed)
    }
}

/// A restore job (`StartRestoreJob`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreJobRecord {
    pub job_id: String,
    pub recovery_point_arn: String,
    pub gateway_arn: String,
    pub hypervisor_arn: String,
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub iam_role_arn: Option<String>,
    #[serde(default)]
    pub idempotency_token: Option<String>,
    pub state: RestoreJobState,
    /// Sent to the gateway (a `PENDING` job may still wait for a job slot).
    #[serde(default)]
    pub dispatched: bool,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub percent_done: f64,
    #[serde(default)]
    pub bytes_transferred: u64,
    pub backup_size_bytes: u64,
    #[serde(default)]
    pub created_resource_arn: Option<String>,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub completed: Option<DateTime<Utc>>,
}

/// A change to a record, applied inside the store's read-modify-write; may run more than
/// once. An `Err` leaves the record as it was and is returned.
pub type Change<'a, T> = &'a mut dyn FnMut(&mut T) -> Result<(), StoreError>;

/// The backup catalogue.
pub trait BackupCatalog: Send + Sync {
    /// Stores a new vault; `Conflict` if one of that name exists.
    fn create_vault(&self, vault: &VaultRecord) -> Result<(), StoreError>;
    fn vault(&self, name: &str) -> Result<Option<VaultRecord>, StoreError>;
    /// All vaults, by name.
    fn vaults(&self) -> Result<Vec<VaultRecord>, StoreError>;
    /// Deletes an empty vault; `Conflict` while it holds recovery points, `NotFound` if absent.
    fn delete_vault(&self, name: &str) -> Result<(), StoreError>;

    /// Stores a new job unless its idempotency token is known: then returns the job the token
    /// started first.
    fn create_backup_job(&self, job: &BackupJobRecord) -> Result<BackupJobRecord, StoreError>;
    fn backup_job(&self, job_id: &str) -> Result<Option<BackupJobRecord>, StoreError>;
    fn update_backup_job(
        &self,
        job_id: &str,
        change: Change<'_, BackupJobRecord>,
    ) -> Result<BackupJobRecord, StoreError>;
    /// All backup jobs, oldest first.
    fn backup_jobs(&self) -> Result<Vec<BackupJobRecord>, StoreError>;

    /// Stores a recovery point; `NotFound` if its vault is gone.
    fn put_recovery_point(&self, point: &RecoveryPointRecord) -> Result<(), StoreError>;
    fn recovery_point(&self, arn: &str) -> Result<Option<RecoveryPointRecord>, StoreError>;
    /// All recovery points, by ARN.
    fn recovery_points(&self) -> Result<Vec<RecoveryPointRecord>, StoreError>;
    fn delete_recovery_point(&self, arn: &str) -> Result<(), StoreError>;

    fn create_restore_job(&self, job: &RestoreJobRecord) -> Result<RestoreJobRecord, StoreError>;
    fn restore_job(&self, job_id: &str) -> Result<Option<RestoreJobRecord>, StoreError>;
    fn update_restore_job(
        &self,
        job_id: &str,
        change: Change<'_, RestoreJobRecord>,
    ) -> Result<RestoreJobRecord, StoreError>;
    fn restore_jobs(&self) -> Result<Vec<RestoreJobRecord>, StoreError>;
}

/// Key of a job: creation time first, so that a scan comes out oldest first.
fn job_key(created: DateTime<Utc>, job_id: &str) -> String {
    format!("{:020}\0{job_id}", created.timestamp_micros())
}

fn read_count(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn finish<T>(result: Result<T, TransactionError<StoreError>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Engine(e),
    })
}

/// [`BackupCatalog`] in sled trees of the control plane's store.
#[derive(Clone)]
pub struct SledCatalog {
    vaults: Tree,
    /// job key -> backup job; `backup_job_ids`: job id -> job key.
    backup_jobs: Tree,
    backup_job_ids: Tree,
    /// idempotency token -> job id (backup and restore jobs, prefixed `b:` / `r:`).
    tokens: Tree,
    points: Tree,
    /// vault name -> number of recovery points in it (u64, big endian).
    point_counts: Tree,
    restore_jobs: Tree,
    restore_job_ids: Tree,
}

type JobTrees<'a> = (&'a Tree, &'a Tree);

impl SledCatalog {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let db = &store.db;
        Ok(Self {
            vaults: db.open_tree("backup_vaults")?,
            backup_jobs: db.open_tree("backup_jobs")?,
            backup_job_ids: db.open_tree("backup_job_ids")?,
            tokens: db.open_tree("backup_idempotency")?,
            points: db.open_tree("recovery_points")?,
            point_counts: db.open_tree("vault_point_counts")?,
            restore_jobs: db.open_tree("restore_jobs")?,
            restore_job_ids: db.open_tree("restore_job_ids")?,
        })
    }

    fn all<T: DeserializeOwned>(tree: &Tree) -> Result<Vec<T>, StoreError> {
        tree.iter()
            .map(|entry| {
                let (k, v) = entry?;
                decode(&k, &v)
            })
            .collect()
    }

    fn get<T: DeserializeOwned>(tree: &Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
        tree.get(key)?.map(|v| decode(key, &v)).transpose()
    }

    fn create_job<T: Serialize + DeserializeOwned + Clone>(
        &self,
        (jobs, ids): JobTrees<'_>,
        token: Option<String>,
        key: String,
        job_id: &str,
        job: &T,
    ) -> Result<T, StoreError> {
        let result = (jobs, ids, &self.tokens).transaction(|(jobs, ids, tokens)| {
            if let Some(token) = &token {
                if let Some(existing_id) = tokens.get(token.as_bytes())? {
                    let Some(existing_key) = ids.get(&existing_id)? else {
                        return Ok(None);
                    };
                    let Some(bytes) = jobs.get(&existing_key)? else {
                        return Ok(None);
                    };
                    return match decode::<T>(&existing_key, &bytes) {
                        Ok(found) => Ok(Some(found)),
                        Err(e) => Err(ConflictableTransactionError::Abort(e)),
                    };
                }
                tokens.insert(token.as_bytes(), job_id.as_bytes())?;
            }
            ids.insert(job_id.as_bytes(), key.as_bytes())?;
            jobs.insert(key.as_bytes(), encode(job))?;
            Ok(Some(job.clone()))
        });
        finish(result)?.ok_or_else(|| StoreError::Corrupt {
            key: job_id.to_owned(),
            source: "an idempotency token names a job that is not stored".into(),
        })
    }

    fn update_job<T: Serialize + DeserializeOwned>(
        (jobs, ids): JobTrees<'_>,
        what: &'static str,
        job_id: &str,
        change: Change<'_, T>,
    ) -> Result<T, StoreError> {
        let key = ids
            .get(job_id.as_bytes())?
            .ok_or_else(|| StoreError::not_found(what, job_id))?;
        loop {
            let old = jobs
                .get(&key)?
                .ok_or_else(|| StoreError::not_found(what, job_id))?;
            let mut record: T = decode(&key, &old)?;
            change(&mut record)?;
            let new = encode(&record);
            if jobs.compare_and_swap(&key, Some(old), Some(new))?.is_ok() {
                return Ok(record);
            }
        }
    }

    fn job_by_id<T: DeserializeOwned>(
        (jobs, ids): JobTrees<'_>,
        job_id: &str,
    ) -> Result<Option<T>, StoreError> {
        match ids.get(job_id.as_bytes())? {
            Some(key) => Self::get(jobs, &key),
            None => Ok(None),
        }
    }
}

impl BackupCatalog for SledCatalog {
    fn create_vault(&self, vault: &VaultRecord) -> Result<(), StoreError> {
        let swapped = self.vaults.compare_and_swap(
            vault.name.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(vault)),
        )?;
        swapped.map_err(|_| {
            StoreError::Conflict(format!("backup vault {:?} already exists", vault.name))
        })
    }

    fn vault(&self, name: &str) -> Result<Option<VaultRecord>, StoreError> {
        Self::get(&self.vaults, name.as_bytes())
    }

    fn vaults(&self) -> Result<Vec<VaultRecord>, StoreError> {
        Self::all(&self.vaults)
    }

    fn delete_vault(&self, name: &str) -> Result<(), StoreError> {
        let result = (&self.vaults, &self.point_counts).transaction(|(vaults, counts)| {
            if vaults.get(name.as_bytes())?.is_none() {
                return Err(ConflictableTransactionError::Abort(StoreError::not_found(
                    "backup vault",
                    name,
                )));
            }
            let held = counts.get(name.as_bytes())?.map_or(0, |c| read_count(&c));
            if held > 0 {
                return Err(ConflictableTransactionError::Abort(StoreError::Conflict(
                    format!(
                        "backup vault {name:?} holds {held} recovery points; delete them first"
                    ),
                )));
            }
            vaults.remove(name.as_bytes())?;
            counts.remove(name.as_bytes())?;
            Ok(())
        });
        finish(result)
    }

    fn create_backup_job(&self, job: &BackupJobRecord) -> Result<BackupJobRecord, StoreError> {
        self.create_job(
            (&self.backup_jobs, &self.backup_job_ids),
            job.idempotency_token.as_ref().map(|t| format!("b:{t}")),
            job_key(job.created, &job.job_id),
            &job.job_id,
            job,
        )
    }

    fn backup_job(&self, job_id: &str) -> Result<Option<BackupJobRecord>, StoreError> {
        Self::job_by_id((&self.backup_jobs, &self.backup_job_ids), job_id)
    }

    fn update_backup_job(
        &self,
        job_id: &str,
        change: Change<'_, BackupJobRecord>,
    ) -> Result<BackupJobRecord, StoreError> {
        Self::update_job(
            (&self.backup_jobs, &self.backup_job_ids),
            "backup job",
            job_id,
            change,
        )
    }

    fn backup_jobs(&self) -> Result<Vec<BackupJobRecord>, StoreError> {
        Self::all(&self.backup_jobs)
    }

    fn put_recovery_point(&self, point: &RecoveryPointRecord) -> Result<(), StoreError> {
        let result = (&self.vaults, &self.points, &self.point_counts).transaction(
            |(vaults, points, counts)| {
                if vaults.get(point.vault_name.as_bytes())?.is_none() {
                    return Err(ConflictableTransactionError::Abort(StoreError::not_found(
                        "backup vault",
                        &point.vault_name,
                    )));
                }
                if points
                    .insert(point.arn.as_bytes(), encode(point))?
                    .is_none()
                {
                    let held = counts
                        .get(point.vault_name.as_bytes())?
                        .map_or(0, |c| read_count(&c));
                    counts.insert(point.vault_name.as_bytes(), &(held + 1).to_be_bytes())?;
                }
                Ok(())
            },
        );
        finish(result)
    }

    fn recovery_point(&self, arn: &str) -> Result<Option<RecoveryPointRecord>, StoreError> {
        Self::get(&self.points, arn.as_bytes())
    }

    fn recovery_points(&self) -> Result<Vec<RecoveryPointRecord>, StoreError> {
        Self::all(&self.points)
    }

    fn delete_recovery_point(&self, arn: &str) -> Result<(), StoreError> {
        let result = (&self.points, &self.point_counts).transaction(|(points, counts)| {
            let Some(old) = points.remove(arn.as_bytes())? else {
                return Err(ConflictableTransactionError::Abort(StoreError::not_found(
                    "recovery point",
                    arn,
                )));
            };
            let point: RecoveryPointRecord = match decode(arn.as_bytes(), &old) {
                Ok(p) => p,
                Err(e) => return Err(ConflictableTransactionError::Abort(e)),
            };
            let held = counts
                .get(point.vault_name.as_bytes())?
                .map_or(0, |c| read_count(&c));
            counts.insert(
                point.vault_name.as_bytes(),
                &held.saturating_sub(1).to_be_bytes(),
            )?;
            Ok(())
        });
        finish(result)
    }

    fn create_restore_job(&self, job: &RestoreJobRecord) -> Result<RestoreJobRecord, StoreError> {
        self.create_job(
            (&self.restore_jobs, &self.restore_job_ids),
            job.idempotency_token.as_ref().map(|t| format!("r:{t}")),
            job_key(job.created, &job.job_id),
            &job.job_id,
            job,
        )
    }

    fn restore_job(&self, job_id: &str) -> Result<Option<RestoreJobRecord>, StoreError> {
        Self::job_by_id((&self.restore_jobs, &self.restore_job_ids), job_id)
    }

    fn update_restore_job(
        &self,
        job_id: &str,
        change: Change<'_, RestoreJobRecord>,
    ) -> Result<RestoreJobRecord, StoreError> {
        Self::update_job(
            (&self.restore_jobs, &self.restore_job_ids),
            "restore job",
            job_id,
            change,
        )
    }

    fn restore_jobs(&self) -> Result<Vec<RestoreJobRecord>, StoreError> {
        Self::all(&self.restore_jobs)
    }
}

/// A VM as a backup needs it: where it is and which gateway reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmTarget {
    pub vm_arn: String,
    pub name: String,
    pub hypervisor_arn: String,
    pub instance_uuid: String,
    /// The gateway associated with the VM's hypervisor, if any.
    pub gateway_arn: Option<String>,
    pub path: Option<String>,
    pub host_name: Option<String>,
}

/// The part of the VM inventory (written by metadata syncs) that backups read and update.
pub trait VmInventory: Send + Sync {
    fn vm_target(&self, vm_arn: &str) -> Result<Option<VmTarget>, StoreError>;
    /// The gateway associated with a hypervisor now.
    fn gateway_of(&self, hypervisor_arn: &str) -> Result<Option<String>, StoreError>;
    /// Sets the VM's `LastBackupDate`.
    fn record_backup(&self, vm_arn: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records a VM a restore created (until the next metadata sync describes it fully);
    /// returns its ARN. `new_arn` is used if the VM is not known yet.
    fn record_restored_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        name: &str,
        new_arn: &str,
    ) -> Result<String, StoreError>;
}

impl VmInventory for Store {
    fn vm_target(&self, vm_arn: &str) -> Result<Option<VmTarget>, StoreError> {
        let vm = match self.get_vm(vm_arn) {
            Ok(vm) => vm,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let gateway_arn = self.gateway_of(&vm.hypervisor_arn)?;
        Ok(Some(VmTarget {
            vm_arn: vm.arn,
            name: vm.name,
            hypervisor_arn: vm.hypervisor_arn,
            instance_uuid: vm.instance_uuid,
            gateway_arn,
            path: vm.path,
            host_name: vm.host_name,
        }))
    }

    fn gateway_of(&self, hypervisor_arn: &str) -> Result<Option<String>, StoreError> {
        match self.get_hypervisor(hypervisor_arn) {
            Ok(hv) => Ok(hv.gateway_arn),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn record_backup(&self, vm_arn: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let vm = self.get_vm(vm_arn)?;
        self.upsert_vm(&vm.hypervisor_arn, &vm.instance_uuid, vm_arn, |vm| {
            vm.last_backup = Some(at)
        })?;
        Ok(())
    }

    fn record_restored_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        name: &str,
        new_arn: &str,
    ) -> Result<String, StoreError> {
        let vm = self.upsert_vm(hypervisor_arn, instance_uuid, new_arn, |vm| {
            if vm.name.is_empty() {
                vm.name = name.to_owned();
            }
        })?;
        Ok(vm.arn)
    }
}
