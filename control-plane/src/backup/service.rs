//! The backup service: everything the AWS Backup API and the gateway's job reports do,
//! callable without HTTP.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bgw_chunks::{ChunkHash, ChunkStore};
use bgw_protocol::backup::{
    restore_metadata, AgentJobState, BackupVm, CancelJob, ChunkStored, DiskManifest, JobComplete,
    JobOutcome, JobProgress, MissingChunks, MissingChunksRequest, PreviousBackup, RestoreVm,
    MAX_CHUNK_BYTES, MAX_MISSING_BATCH,
};
use bgw_protocol::commands::{CommandKind, CommandOutcome, TestStage};
use bgw_protocol::ErrorCode;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::RwLock;

use crate::api::error::{ApiError, ErrorKind};
use crate::clock::Clock;
use crate::gateway::service::Refusal;
use crate::gateway::GatewayHub;
use crate::store::backup::{
    BackupCatalog, BackupJobRecord, BackupJobState, RecoveryPointRecord, RecoveryPointStatus,
    RestoreJobRecord, RestoreJobState, VaultRecord, VmInventory,
};
use crate::store::StoreError;

/// Jobs (backups and restores) a gateway runs at once; the rest wait in the cloud.
pub const MAX_JOBS_PER_GATEWAY: usize = 4;

/// Lookups of chunk existence run this many at a time.
const PARALLEL_LOOKUPS: usize = 32;

/// ARNs of AWS Backup resources in one region and account.
#[derive(Debug, Clone)]
pub struct BackupArns {
    pub region: String,
    pub account_id: String,
}

impl BackupArns {
    pub fn vault(&self, name: &str) -> String {
        format!(
            "arn:aws:backup:{}:{}:backup-vault:{name}",
            self.region, self.account_id
        )
    }

    pub fn recovery_point(&self, id: &str) -> String {
        format!(
            "arn:aws:backup:{}:{}:recovery-point:{id}",
            self.region, self.account_id
        )
    }

    /// A VM created by a restore, before a metadata sync names it.
    pub fn restored_vm(&self) -> String {
        let mut id = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        format!(
            "arn:aws:backup-gateway:{}:{}:vm/vm-{}",
            self.region,
            self.account_id,
            hex::encode_upper(id)
        )
    }
}

/// A job the gateway works on now: the bytes it sent and the chunks it relies on.
pub struct LiveJob {
    pub job_id: String,
    pub gateway_arn: String,
    pub restore: bool,
    /// Chunk bytes received (backups) or sent (restores).
    pub bytes: AtomicU64,
    /// Chunks the job uploaded, was told the cloud holds, or reads: the garbage collector
    /// keeps them.
    pins: Mutex<HashSet<ChunkHash>>,
}

impl LiveJob {
    fn pin(&self, hash: ChunkHash) {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash);
    }

    pub fn pins(&self, hash: &ChunkHash) -> bool {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(hash)
    }

    pub(crate) fn pinned(&self) -> Vec<ChunkHash> {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// `StartBackupJob`'s input.
#[derive(Debug, Clone)]
pub struct StartBackup {
    pub vault_name: String,
    pub resource_arn: String,
    pub iam_role_arn: String,
    pub idempotency_token: Option<String>,
}

/// `StartRestoreJob`'s input.
#[derive(Debug, Clone)]
pub struct StartRestore {
    pub recovery_point_arn: String,
    pub metadata: BTreeMap<String, String>,
    pub iam_role_arn: Option<String>,
    pub idempotency_token: Option<String>,
}

/// `ListBackupJobs` filters.
#[derive(Debug, Clone, Default)]
pub struct BackupJobFilter {
    pub resource_arn: Option<String>,
    pub state: Option<String>,
    pub vault_name: Option<String>,
    pub created_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub resource_type: Option<String>,
    pub complete_before: Option<DateTime<Utc>>,
    pub complete_after: Option<DateTime<Utc>>,
}

/// `ListRestoreJobs` filters.
#[derive(Debug, Clone, Default)]
pub struct RestoreJobFilter {
    pub status: Option<String>,
    pub created_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub complete_before: Option<DateTime<Utc>>,
    pub complete_after: Option<DateTime<Utc>>,
    pub resource_type: Option<String>,
}

/// The resource type of every job and recovery point here.
pub const RESOURCE_TYPE: &str = "VirtualMachine";

pub struct BackupService {
    pub(crate) catalog: Arc<dyn BackupCatalog>,
    inventory: Arc<dyn VmInventory>,
    pub(crate) chunks: Arc<dyn ChunkStore>,
    hub: GatewayHub,
    clock: Arc<dyn Clock>,
    pub arns: BackupArns,
    live: Mutex<HashMap<String, Arc<LiveJob>>>,
    /// Held shared while chunks are checked, stored or referenced; exclusively while the
    /// garbage collector deletes.
    pub(crate) gc_lock: RwLock<()>,
    /// One dispatch decision at a time, so a gateway never gets more than its slots.
    dispatch_lock: Mutex<()>,
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::from(e)
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::ResourceNotFound,
        format!("{what} {id} does not exist"),
    )
}

fn refusal(e: StoreError) -> Refusal {
    Refusal::from(e)
}

fn chunk_count(disk: &DiskManifest) -> u64 {
    if disk.chunk_size == 0 {
        return 0;
    }
    disk.capacity_bytes.div_ceil(disk.chunk_size)
}

impl BackupService {
    pub fn new(
        catalog: Arc<dyn BackupCatalog>,
        inventory: Arc<dyn VmInventory>,
        chunks: Arc<dyn ChunkStore>,
        hub: GatewayHub,
        clock: Arc<dyn Clock>,
        arns: BackupArns,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            inventory,
            chunks,
            hub,
            clock,
            arns,
            live: Mutex::new(HashMap::new()),
            gc_lock: RwLock::new(()),
            dispatch_lock: Mutex::new(()),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn chunk_store(&self) -> &dyn ChunkStore {
        self.chunks.as_ref()
    }

    fn live_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveJob>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn live_jobs(&self) -> Vec<Arc<LiveJob>> {
        self.live_map().values().cloned().collect()
    }

    fn go_live(
        &self,
        job_id: &str,
        gateway_arn: &str,
        restore: bool,
        bytes: u64,
        pins: impl IntoIterator<Item = ChunkHash>,
    ) -> Arc<LiveJob> {
        let job = Arc::new(LiveJob {
            job_id: job_id.to_owned(),
            gateway_arn: gateway_arn.to_owned(),
            restore,
            bytes: AtomicU64::new(bytes),
            pins: Mutex::new(pins.into_iter().collect()),
        });
        self.live_map().insert(job_id.to_owned(), job.clone());
        job
    }

    fn end_live(&self, job_id: &str) {
        self.live_map().remove(job_id);
    }

    /// After a restart: the jobs the gateways still run get their live state back, and jobs
    /// still waiting are dispatched.
    pub fn resume(self: &Arc<Self>) -> Result<(), StoreError> {
        let mut gateways = HashSet::new();
        for job in self.catalog.backup_jobs()? {
            if job.state.holds_slot() {
                let pins = self.previous_chunks(job.previous_recovery_point_arn.as_deref());
                self.go_live(
                    &job.job_id,
                    &job.gateway_arn,
                    false,
                    job.bytes_transferred,
                    pins,
                );
            }
            if !job.state.is_final() {
                gateways.insert(job.gateway_arn);
            }
        }
        for job in self.catalog.restore_jobs()? {
            if job.dispatched && !job.state.is_final() {
                let pins = self.previous_chunks(Some(&job.recovery_point_arn));
                self.go_live(
                    &job.job_id,
                    &job.gateway_arn,
                    true,
                    job.bytes_transferred,
                    pins,
                );
            }
            if !job.state.is_final() {
                gateways.insert(job.gateway_arn);
            }
        }
        for gateway in gateways {
            self.dispatch(&gateway);
        }
        Ok(())
    }

    fn previous_chunks(&self, point_arn: Option<&str>) -> Vec<ChunkHash> {
        point_arn
            .and_then(|arn| self.catalog.recovery_point(arn).ok().flatten())
            .map(|p| {
                p.disks
                    .into_iter()
                    .flat_map(|d| d.chunks.into_iter())
                    .collect()
            })
            .unwrap_or_default()
    }

    // ---- vaults ----------------------------------------------------------------------

    pub fn create_vault(
        &self,
        name: &str,
        encryption_key_arn: Option<String>,
        creator_request_id: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> Result<VaultRecord, ApiError> {
        let vault = VaultRecord {
            name: name.to_owned(),
            arn: self.arns.vault(name),
            created: self.now(),
            encryption_key_arn,
            creator_request_id,
            tags,
        };
        match self.catalog.create_vault(&vault) {
            Ok(()) => {
                tracing::info!(vault = %name, "backup vault created");
                Ok(vault)
            }
            Err(StoreError::Conflict(m)) => Err(ApiError::new(ErrorKind::AlreadyExists, m)),
            Err(e) => Err(store_err(e)),
        }
    }

    pub fn vault(&self, name: &str) -> Result<VaultRecord, ApiError> {
        self.catalog
            .vault(name)
            .map_err(store_err)?
            .ok_or_else(|| not_found("backup vault", name))
    }

    /// Vaults with the number of recovery points in each.
    pub fn vaults(&self) -> Result<Vec<(VaultRecord, usize)>, ApiError> {
        let points = self.catalog.recovery_points().map_err(store_err)?;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for p in &points {
            *counts.entry(p.vault_name.as_str()).or_default() += 1;
        }
        Ok(self
            .catalog
            .vaults()
            .map_err(store_err)?
            .into_iter()
            .map(|v| {
                let n = counts.get(v.name.as_str()).copied().unwrap_or(0);
                (v, n)
            })
            .collect())
    }

    pub fn recovery_point_count(&self, vault: &str) -> Result<usize, ApiError> {
        Ok(self
            .catalog
            .recovery_points()
            .map_err(store_err)?
            .iter()
            .filter(|p| p.vault_name == vault)
            .count())
    }

    pub fn delete_vault(&self, name: &str) -> Result<(), ApiError> {
        match self.catalog.delete_vault(name) {
            Ok(()) => {
                tracing::info!(vault = %name, "backup vault deleted");
                Ok(())
            }
            Err(StoreError::Conflict(m)) => Err(ApiError::new(ErrorKind::InvalidRequest, m)),
            Err(StoreError::NotFound { .. }) => Err(not_found("backup vault", name)),
            Err(e) => Err(store_err(e)),
        }
    }

    // ---- backup jobs -----------------------------------------------------------------

    pub fn start_backup(self: &Arc<Self>, start: StartBackup) -> Result<BackupJobRecord, ApiError> {
        let vault = self.vault(&start.vault_name)?;
        if !start.resource_arn.starts_with("arn:aws:backup-gateway:")
            || !start.resource_arn.contains(":vm/")
        {
            return Err(ApiError::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "ResourceArn {} is not a Backup Gateway virtual machine ARN \
                     (arn:aws:backup-gateway:REGION:ACCOUNT:vm/vm-ID); this service backs up \
                     gateway VMs only",
                    start.resource_arn
                ),
            ));
        }
        let vm = self
            .inventory
            .vm_target(&start.resource_arn)
            .map_err(store_err)?
            .ok_or_else(|| not_found("virtual machine", &start.resource_arn))?;
        let Some(gateway_arn) = vm.gateway_arn.clone() else {
            return Err(ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "virtual machine {} is on hypervisor {}, which no gateway serves; associate a \
                     gateway with the hypervisor first",
                    vm.vm_arn, vm.hypervisor_arn
                ),
            ));
        };
        let previous = self
            .catalog
            .recovery_points()
            .map_err(store_err)?
            .into_iter()
            .filter(|p| {
                p.vault_name == vault.name
                    && p.resource_arn == vm.vm_arn
                    && p.status == RecoveryPointStatus::Completed
            })
            .max_by_key(|p| p.completed)
            .map(|p| p.arn);
        let job_id = uuid::Uuid::new_v4().to_string().to_uppercase();
        let job = BackupJobRecord {
            job_id: job_id.clone(),
            vault_name: vault.name.clone(),
            vault_arn: vault.arn.clone(),
            resource_arn: vm.vm_arn.clone(),
            resource_name: vm.name.clone(),
            hypervisor_arn: vm.hypervisor_arn.clone(),
            gateway_arn: gateway_arn.clone(),
            instance_uuid: vm.instance_uuid.clone(),
            iam_role_arn: start.iam_role_arn,
            recovery_point_arn: self.arns.recovery_point(&uuid::Uuid::new_v4().to_string()),
            idempotency_token: start.idempotency_token,
            previous_recovery_point_arn: previous,
            state: BackupJobState::Created,
            status_message: None,
            percent_done: 0.0,
            bytes_transferred: 0,
            backup_size_bytes: None,
            created: self.now(),
            started: None,
            completed: None,
        };
        let stored = self.catalog.create_backup_job(&job).map_err(store_err)?;
        if stored.job_id != job_id {
            tracing::info!(job = %stored.job_id, "StartBackupJob repeated with the same idempotency token");
            return Ok(stored);
        }
        tracing::info!(job = %job_id, vm = %vm.vm_arn, vault = %vault.name, gateway = %gateway_arn, "backup job created");
        self.dispatch(&gateway_arn);
        Ok(self
            .catalog
            .backup_job(&job_id)
            .map_err(store_err)?
            .unwrap_or(stored))
    }

    /// Sends waiting jobs to the gateway while it has free slots, oldest first.
    pub fn dispatch(self: &Arc<Self>, gateway_arn: &str) {
        let _one_at_a_time = self.dispatch_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self.dispatch_locked(gateway_arn) {
            tracing::error!(gateway = %gateway_arn, error = %e, "cannot dispatch jobs");
        }
    }

    fn dispatch_locked(self: &Arc<Self>, gateway_arn: &str) -> Result<(), StoreError> {
        let backups: Vec<BackupJobRecord> = self
            .catalog
            .backup_jobs()?
            .into_iter()
            .filter(|j| j.gateway_arn == gateway_arn)
            .collect();
        let restores: Vec<RestoreJobRecord> = self
            .catalog
            .restore_jobs()?
            .into_iter()
            .filter(|j| j.gateway_arn == gateway_arn)
            .collect();
        let busy = backups.iter().filter(|j| j.state.holds_slot()).count()
            + restores
                .iter()
                .filter(|j| j.dispatched && !j.state.is_final())
                .count();
        let mut free = MAX_JOBS_PER_GATEWAY.saturating_sub(busy);
        // Oldest first across both kinds.
        let mut waiting: Vec<(DateTime<Utc>, Result<&BackupJobRecord, &RestoreJobRecord>)> =
            backups
                .iter()
                .filter(|j| j.state == BackupJobState::Created)
                .map(|j| (j.created, Ok(j)))
                .chain(
                    restores
                        .iter()
                        .filter(|j| !j.dispatched && !j.state.is_final())
                        .map(|j| (j.created, Err(j))),
                )
                .collect();
        waiting.sort_by_key(|(t, _)| *t);
        for (_, job) in waiting {
            if free == 0 {
                break;
            }
            match job {
                Ok(backup) => self.send_backup(backup)?,
                Err(restore) => self.send_restore(restore)?,
            }
            free -= 1;
        }
        Ok(())
    }

    fn send_backup(self: &Arc<Self>, job: &BackupJobRecord) -> Result<(), StoreError> {
        let previous = match &job.previous_recovery_point_arn {
            Some(arn) => self.catalog.recovery_point(arn)?.map(|p| PreviousBackup {
                recovery_point_arn: p.arn,
                disks: p.disks,
            }),
            None => None,
        };
        let pins: Vec<ChunkHash> = previous
            .iter()
            .flat_map(|p| p.disks.iter().flat_map(|d| d.chunks.iter().cloned()))
            .collect();
        let updated = self.catalog.update_backup_job(&job.job_id, &mut |j| {
            if j.state == BackupJobState::Created {
                j.state = BackupJobState::Pending;
            }
            Ok(())
        })?;
        if updated.state != BackupJobState::Pending {
            return Ok(());
        }
        self.go_live(&job.job_id, &job.gateway_arn, false, 0, pins);
        let command = CommandKind::BackupVm(BackupVm {
            job_id: job.job_id.clone(),
            vm_arn: job.resource_arn.clone(),
            hypervisor_arn: job.hypervisor_arn.clone(),
            instance_uuid: job.instance_uuid.clone(),
            vault_name: job.vault_name.clone(),
            previous,
        });
        self.send_watched(&job.gateway_arn, &job.job_id, false, command);
        tracing::info!(job = %job.job_id, gateway = %job.gateway_arn, "backup job sent to the gateway");
        Ok(())
    }

    fn send_restore(self: &Arc<Self>, job: &RestoreJobRecord) -> Result<(), StoreError> {
        let Some(point) = self.catalog.recovery_point(&job.recovery_point_arn)? else {
            self.catalog.update_restore_job(&job.job_id, &mut |j| {
                j.state = RestoreJobState::Failed;
                j.status_message =
                    Some("the recovery point was deleted before the restore started".into());
                Ok(())
            })?;
            return Ok(());
        };
        self.catalog.update_restore_job(&job.job_id, &mut |j| {
            j.dispatched = true;
            Ok(())
        })?;
        let pins = point.disks.iter().flat_map(|d| d.chunks.iter().cloned());
        self.go_live(&job.job_id, &job.gateway_arn, true, 0, pins);
        let command = CommandKind::RestoreVm(RestoreVm {
            job_id: job.job_id.clone(),
            recovery_point_arn: point.arn.clone(),
            metadata: job.metadata.clone(),
            disks: point.disks.clone(),
        });
        self.send_watched(&job.gateway_arn, &job.job_id, true, command);
        tracing::info!(job = %job.job_id, gateway = %job.gateway_arn, "restore job sent to the gateway");
        Ok(())
    }

    /// Queues the command; if the gateway refuses it, the job fails with its reason.
    fn send_watched(
        self: &Arc<Self>,
        gateway_arn: &str,
        job_id: &str,
        restore: bool,
        kind: CommandKind,
    ) {
        let (_, answer) = self.hub.push_watched(gateway_arn, kind);
        let this = Arc::downgrade(self);
        let job_id = job_id.to_owned();
        tokio::spawn(async move {
            let Ok(CommandOutcome::Failed { stage, message }) = answer.await else {
                return;
            };
            let Some(this) = this.upgrade() else { return };
            let message = if stage == TestStage::Unsupported {
                format!("the gateway cannot run this job (its software is too old?): {message}")
            } else {
                format!("the gateway refused the job ({stage}): {message}")
            };
            let outcome = JobOutcome::Failed { message };
            let report = JobComplete {
                job_id: job_id.clone(),
                outcome,
            };
            let gateway = this.live_map().get(&job_id).map(|j| j.gateway_arn.clone());
            if let Some(gateway) = gateway {
                let done = if restore {
                    this.complete_restore(&gateway, &report).await
                } else {
                    this.complete_backup(&gateway, &report).await
                };
                if let Err(e) = done {
                    tracing::warn!(job = %job_id, error = ?e.0, "cannot record the refused job");
                }
            }
        });
    }

    /// The job with its bytes received so far.
    pub fn backup_job(&self, job_id: &str) -> Result<BackupJobRecord, ApiError> {
        let mut job = self
            .catalog
            .backup_job(job_id)
            .map_err(store_err)?
            .ok_or_else(|| not_found("backup job", job_id))?;
        self.refresh(&mut job);
        Ok(job)
    }

    fn refresh(&self, job: &mut BackupJobRecord) {
        if let Some(live) = self.live_map().get(&job.job_id) {
            job.bytes_transferred = job
                .bytes_transferred
                .max(live.bytes.load(Ordering::Relaxed));
        }
    }

    pub fn backup_jobs(&self, filter: &BackupJobFilter) -> Result<Vec<BackupJobRecord>, ApiError> {
        let mut jobs: Vec<BackupJobRecord> = self
            .catalog
            .backup_jobs()
            .map_err(store_err)?
            .into_iter()
            .filter(|j| {
                filter
                    .resource_arn
                    .as_ref()
                    .is_none_or(|r| &j.resource_arn == r)
                    && filter.state.as_ref().is_none_or(|s| j.state.as_str() == s)
                    && filter
                        .vault_name
                        .as_ref()
                        .is_none_or(|v| &j.vault_name == v)
                    && filter.created_before.is_none_or(|t| j.created < t)
                    && filter.created_after.is_none_or(|t| j.created > t)
                    && filter
                        .resource_type
                        .as_ref()
                        .is_none_or(|t| t == RESOURCE_TYPE)
                    && filter
                        .complete_before
                        .is_none_or(|t| j.completed.is_some_and(|c| c < t))
                    && filter
                        .complete_after
                        .is_none_or(|t| j.completed.is_some_and(|c| c > t))
            })
            .collect();
        for job in &mut jobs {
            self.refresh(job);
        }
        Ok(jobs)
    }

    pub fn stop_backup(self: &Arc<Self>, job_id: &str) -> Result<(), ApiError> {
        let now = self.now();
        let mut cancel = false;
        let job = self
            .catalog
            .update_backup_job(job_id, &mut |j| {
                cancel = false;
                match j.state {
                    BackupJobState::Created => {
                        j.state = BackupJobState::Aborted;
                        j.status_message =
                            Some("stopped by StopBackupJob before it started".into());
                        j.completed = Some(now);
                    }
                    BackupJobState::Pending | BackupJobState::Running => {
                        j.state = BackupJobState::Aborting;
                        j.status_message = Some("stopping: StopBackupJob".into());
                        cancel = true;
                    }
                    BackupJobState::Aborting => cancel = true,
                    state => {
                        return Err(StoreError::Invalid(format!(
                            "backup job {job_id} is {} and cannot be stopped",
                            state.as_str()
                        )))
                    }
                }
                Ok(())
            })
            .map_err(|e| match e {
                StoreError::Invalid(m) => ApiError::new(ErrorKind::InvalidRequest, m),
                StoreError::NotFound { .. } => not_found("backup job", job_id),
                e => store_err(e),
            })?;
        if cancel {
            self.hub.push(
                &job.gateway_arn,
                CommandKind::CancelJob(CancelJob {
                    job_id: job_id.to_owned(),
                }),
            );
            tracing::info!(job = %job_id, gateway = %job.gateway_arn, "backup job cancelled; the gateway is stopping it");
        } else {
            tracing::info!(job = %job_id, "backup job stopped before it was sent");
        }
        Ok(())
    }

    // ---- reports from the gateway ----------------------------------------------------

    /// The live state of a job of `gateway_arn` that may still receive chunks.
    pub fn live_job(&self, gateway_arn: &str, job_id: &str) -> Result<Arc<LiveJob>, Refusal> {
        let live = self.live_map().get(job_id).cloned();
        match live {
            Some(job) if job.gateway_arn == gateway_arn => {
                if !job.restore {
                    if let Some(stored) = self.catalog.backup_job(job_id).map_err(refusal)? {
                        if stored.state == BackupJobState::Aborting {
                            return Err(Refusal::new(
                                ErrorCode::JobNotRunning,
                                format!("backup job {job_id} is being stopped; stop sending"),
                            ));
                        }
                    }
                }
                Ok(job)
            }
            _ => {
                let known = self.catalog.backup_job(job_id).map_err(refusal)?;
                match known {
                    Some(j) if j.gateway_arn == gateway_arn => Err(Refusal::new(
                        ErrorCode::JobNotRunning,
                        format!("backup job {job_id} is {}", j.state.as_str()),
                    )),
                    _ => match self.catalog.restore_job(job_id).map_err(refusal)? {
                        Some(j) if j.gateway_arn == gateway_arn => Err(Refusal::new(
                            ErrorCode::JobNotRunning,
                            format!("restore job {job_id} is {}", j.state.as_str()),
                        )),
                        _ => Err(Refusal::new(
                            ErrorCode::NotFound,
                            format!("this gateway has no job {job_id}"),
                        )),
                    },
                }
            }
        }
    }

    pub async fn missing_chunks(
        &self,
        gateway_arn: &str,
        request: &MissingChunksRequest,
    ) -> Result<MissingChunks, Refusal> {
        if request.hashes.len() > MAX_MISSING_BATCH {
            return Err(Refusal::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{} hashes in one request; at most {MAX_MISSING_BATCH}",
                    request.hashes.len()
                ),
            ));
        }
        let job = self.live_job(gateway_arn, &request.job_id)?;
        let _no_sweep = self.gc_lock.read().await;
        let found: Vec<(ChunkHash, bool)> = futures::stream::iter(request.hashes.iter().cloned())
            .map(|hash| {
                let job = job.clone();
                async move {
                    if job.pins(&hash) {
                        return Ok((hash, true));
                    }
                    let present = self.chunks.has(&hash).await?;
                    Ok::<_, bgw_chunks::Error>((hash, present))
                }
            })
            .buffered(PARALLEL_LOOKUPS)
            .try_collect()
            .await
            .map_err(chunk_refusal)?;
        let mut missing = Vec::new();
        for (hash, present) in found {
            if present {
                job.pin(hash);
            } else {
                missing.push(hash);
            }
        }
        Ok(MissingChunks { missing })
    }

    /// Checks a received chunk (a zstd frame that must decompress to `raw_length` bytes
    /// whose SHA-256 is `hash`) and stores it.
    pub async fn accept_chunk(
        &self,
        job: &LiveJob,
        hash: &ChunkHash,
        raw_length: u64,
        frame: Bytes,
    ) -> Result<ChunkStored, Refusal> {
        if raw_length > MAX_CHUNK_BYTES {
            return Err(Refusal::new(
                ErrorCode::PayloadTooLarge,
                format!("chunk {hash}: raw length {raw_length} is over the {MAX_CHUNK_BYTES}-byte limit"),
            ));
        }
        let checked = {
            let frame = frame.clone();
            let hash = hash.clone();
            tokio::task::spawn_blocking(move || verify_frame(&hash, raw_length, &frame))
                .await
                .map_err(|e| {
                    Refusal::new(ErrorCode::Internal, format!("chunk check failed: {e}"))
                })?
        };
        checked?;
        let _no_sweep = self.gc_lock.read().await;
        let written = self.chunks.put(hash, frame).await.map_err(chunk_refusal)?;
        job.pin(hash.clone());
        Ok(ChunkStored {
            hash: hash.clone(),
            already_present: !written,
        })
    }

    /// A chunk a restore job of `gateway_arn` reads.
    pub async fn read_chunk(&self, gateway_arn: &str, hash: &ChunkHash) -> Result<Bytes, Refusal> {
        let reader = self
            .live_jobs()
            .into_iter()
            .find(|j| j.restore && j.gateway_arn == gateway_arn && j.pins(hash));
        let Some(job) = reader else {
            return Err(Refusal::new(
                ErrorCode::NotFound,
                format!("no running restore job of this gateway reads chunk {hash}"),
            ));
        };
        let data = self
            .chunks
            .get(hash)
            .await
            .map_err(chunk_refusal)?
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NotFound,
                    format!("chunk {hash} is missing from the chunk store"),
                )
            })?;
        job.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    pub fn progress(&self, gateway_arn: &str, report: &JobProgress) -> Result<(), Refusal> {
        let live = self.live_job(gateway_arn, &report.job_id);
        let live = match live {
            Ok(l) => l,
            // A late report of a job that is being stopped is fine; nothing to record.
            Err(r) if r.code() == ErrorCode::JobNotRunning => {
                if let Some(job) = self.catalog.backup_job(&report.job_id).map_err(refusal)? {
                    if job.state == BackupJobState::Aborting {
                        return Ok(());
                    }
                }
                return Err(r);
            }
            Err(r) => return Err(r),
        };
        let now = self.now();
        let percent = report.percent_done.clamp(0.0, 100.0);
        let bytes = live.bytes.load(Ordering::Relaxed);
        if live.restore {
            self.catalog
                .update_restore_job(&report.job_id, &mut |j| {
                    if report.state == AgentJobState::Running {
                        j.state = RestoreJobState::Running;
                    }
                    j.percent_done = percent;
                    j.bytes_transferred = j.bytes_transferred.max(bytes);
                    Ok(())
                })
                .map_err(refusal)?;
            return Ok(());
        }
        self.catalog
            .update_backup_job(&report.job_id, &mut |j| {
                match (j.state, report.state) {
                    (BackupJobState::Pending, AgentJobState::Running) => {
                        j.state = BackupJobState::Running;
                        j.started.get_or_insert(now);
                    }
                    (
                        BackupJobState::Pending | BackupJobState::Running,
                        AgentJobState::Aborting,
                    ) => {
                        j.state = BackupJobState::Aborting;
                    }
                    _ => {}
                }
                j.percent_done = percent;
                j.bytes_transferred = j.bytes_transferred.max(bytes);
                if report.backup_size_bytes.is_some() {
                    j.backup_size_bytes = report.backup_size_bytes;
                }
                Ok(())
            })
            .map_err(refusal)?;
        Ok(())
    }

    /// `jobs/complete` for either kind of job.
    pub async fn complete(
        self: &Arc<Self>,
        gateway_arn: &str,
        report: &JobComplete,
    ) -> Result<(), Refusal> {
        if self
            .catalog
            .restore_job(&report.job_id)
            .map_err(refusal)?
            .is_some()
        {
            self.complete_restore(gateway_arn, report).await
        } else {
            self.complete_backup(gateway_arn, report).await
        }
    }

    async fn complete_backup(
        self: &Arc<Self>,
        gateway_arn: &str,
        report: &JobComplete,
    ) -> Result<(), Refusal> {
        let job = self
            .catalog
            .backup_job(&report.job_id)
            .map_err(refusal)?
            .filter(|j| j.gateway_arn == gateway_arn)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NotFound,
                    format!("this gateway has no job {}", report.job_id),
                )
            })?;
        if job.state.is_final() {
            return Ok(());
        }
        let now = self.now();
        let live = self.live_map().get(&job.job_id).cloned();
        let bytes = live.as_ref().map_or(0, |l| l.bytes.load(Ordering::Relaxed));
        let (state, message, point) = match &report.outcome {
            JobOutcome::Succeeded { disks, vm_name, .. } => {
                let _no_sweep = self.gc_lock.read().await;
                self.check_disks(live.as_deref(), disks).await?;
                let size = disks.iter().map(|d| d.capacity_bytes).sum();
                let vm = self
                    .inventory
                    .vm_target(&job.resource_arn)
                    .map_err(refusal)?;
                let point = RecoveryPointRecord {
                    arn: job.recovery_point_arn.clone(),
                    vault_name: job.vault_name.clone(),
                    vault_arn: job.vault_arn.clone(),
                    resource_arn: job.resource_arn.clone(),
                    resource_name: vm_name.clone().unwrap_or_else(|| job.resource_name.clone()),
                    hypervisor_arn: job.hypervisor_arn.clone(),
                    instance_uuid: job.instance_uuid.clone(),
                    job_id: job.job_id.clone(),
                    iam_role_arn: job.iam_role_arn.clone(),
                    status: RecoveryPointStatus::Completed,
                    created: job.created,
                    completed: now,
                    backup_size_bytes: size,
                    disks: disks.clone(),
                    vm_path: vm.as_ref().and_then(|v| v.path.clone()),
                    host_name: vm.as_ref().and_then(|v| v.host_name.clone()),
                };
                self.catalog.put_recovery_point(&point).map_err(refusal)?;
                (BackupJobState::Completed, None, Some(point))
            }
            JobOutcome::Failed { message } => (BackupJobState::Failed, Some(message.clone()), None),
            JobOutcome::Aborted { message } => {
                (BackupJobState::Aborted, Some(message.clone()), None)
            }
        };
        self.catalog
            .update_backup_job(&job.job_id, &mut |j| {
                j.state = state;
                j.status_message = message.clone();
                j.completed = Some(now);
                j.bytes_transferred = j.bytes_transferred.max(bytes);
                if let Some(p) = &point {
                    j.percent_done = 100.0;
                    j.backup_size_bytes = Some(p.backup_size_bytes);
                }
                Ok(())
            })
            .map_err(refusal)?;
        self.end_live(&job.job_id);
        if point.is_some() {
            if let Err(e) = self.inventory.record_backup(&job.resource_arn, now) {
                tracing::warn!(vm = %job.resource_arn, error = %e, "cannot set the VM's last backup date");
            }
        }
        tracing::info!(job = %job.job_id, state = state.as_str(), bytes, "backup job ended");
        self.dispatch(gateway_arn);
        Ok(())
    }

    /// Every disk's chunk list is whole and every chunk is stored.
    async fn check_disks(
        &self,
        live: Option<&LiveJob>,
        disks: &[DiskManifest],
    ) -> Result<(), Refusal> {
        let bad = |m: String| Refusal::new(ErrorCode::InvalidRequest, m);
        for disk in disks {
            if disk.chunk_size == 0 || disk.chunk_size > MAX_CHUNK_BYTES {
                return Err(bad(format!(
                    "disk {}: chunk size {} must be between 1 and {MAX_CHUNK_BYTES}",
                    disk.key, disk.chunk_size
                )));
            }
            if disk.chunks.len() as u64 != chunk_count(disk) {
                return Err(bad(format!(
                    "disk {}: {} chunks listed, but {} bytes in chunks of {} take {}",
                    disk.key,
                    disk.chunks.len(),
                    disk.capacity_bytes,
                    disk.chunk_size,
                    chunk_count(disk)
                )));
            }
        }
        let mut unknown: Vec<ChunkHash> = disks
            .iter()
            .flat_map(|d| d.chunks.iter())
            .filter(|h| !live.is_some_and(|l| l.pins(h)))
            .cloned()
            .collect();
        unknown.sort();
        unknown.dedup();
        let absent: Vec<ChunkHash> = futures::stream::iter(unknown)
            .map(|hash| async move {
                let present = self.chunks.has(&hash).await?;
                Ok::<_, bgw_chunks::Error>((!present).then_some(hash))
            })
            .buffered(PARALLEL_LOOKUPS)
            .try_filter_map(|h| async move { Ok(h) })
            .try_collect()
            .await
            .map_err(chunk_refusal)?;
        if let Some(first) = absent.first() {
            return Err(bad(format!(
                "{} chunks of the backup are not stored, the first {first}: upload them before completing",
                absent.len()
            )));
        }
        Ok(())
    }

    // ---- recovery points -------------------------------------------------------------

    pub fn recovery_points_in(&self, vault: &str) -> Result<Vec<RecoveryPointRecord>, ApiError> {
        self.vault(vault)?;
        Ok(self
            .catalog
            .recovery_points()
            .map_err(store_err)?
            .into_iter()
            .filter(|p| p.vault_name == vault)
            .collect())
    }

    pub fn recovery_points_of(
        &self,
        resource_arn: &str,
    ) -> Result<Vec<RecoveryPointRecord>, ApiError> {
        Ok(self
            .catalog
            .recovery_points()
            .map_err(store_err)?
            .into_iter()
            .filter(|p| p.resource_arn == resource_arn)
            .collect())
    }

    pub fn recovery_point(&self, vault: &str, arn: &str) -> Result<RecoveryPointRecord, ApiError> {
        self.vault(vault)?;
        self.catalog
            .recovery_point(arn)
            .map_err(store_err)?
            .filter(|p| p.vault_name == vault)
            .ok_or_else(|| not_found(&format!("recovery point in vault {vault}:"), arn))
    }

    /// Deletes the recovery point; its chunks that nothing else references are freed by the
    /// next garbage collection (started here, in the background).
    pub fn delete_recovery_point(self: &Arc<Self>, vault: &str, arn: &str) -> Result<(), ApiError> {
        self.recovery_point(vault, arn)?;
        self.catalog.delete_recovery_point(arn).map_err(store_err)?;
        tracing::info!(recovery_point = %arn, "recovery point deleted");
        let this = self.clone();
        tokio::spawn(async move {
            match this.collect_garbage().await {
                Ok(report) => tracing::info!(
                    deleted = report.deleted,
                    kept = report.kept,
                    "chunk garbage collection done"
                ),
                Err(e) => tracing::warn!(error = %e, "chunk garbage collection failed"),
            }
        });
        Ok(())
    }

    /// What a restore of this recovery point can start from: the VM's name, folder and host
    /// as they were, and `powerOn: false`. A restore must add `datastore`.
    pub fn restore_metadata(
        &self,
        vault: &str,
        arn: &str,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let point = self.recovery_point(vault, arn)?;
        let mut m = BTreeMap::new();
        m.insert(
            restore_metadata::VM_NAME.to_owned(),
            point.resource_name.clone(),
        );
        if let Some(path) = &point.vm_path {
            let folder = path.rsplit_once('/').map_or(path.as_str(), |(dir, _)| dir);
            if !folder.is_empty() {
                m.insert(restore_metadata::FOLDER.to_owned(), folder.to_owned());
            }
        }
        if let Some(host) = &point.host_name {
            m.insert(restore_metadata::HOST.to_owned(), host.clone());
        }
        m.insert(restore_metadata::POWER_ON.to_owned(), "false".to_owned());
        Ok(m)
    }

    // ---- restore jobs ----------------------------------------------------------------

    pub fn start_restore(
        self: &Arc<Self>,
        start: StartRestore,
    ) -> Result<RestoreJobRecord, ApiError> {
        let invalid = |m: String| ApiError::new(ErrorKind::InvalidParameterValue, m);
        for key in start.metadata.keys() {
            if !restore_metadata::ALL.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "unknown restore metadata key {key:?}; known keys: {}",
                    restore_metadata::ALL.join(", ")
                )));
            }
        }
        for required in [restore_metadata::VM_NAME, restore_metadata::DATASTORE] {
            if start.metadata.get(required).is_none_or(|v| v.is_empty()) {
                return Err(ApiError::new(
                    ErrorKind::MissingParameterValue,
                    format!("restore metadata must name {required:?}"),
                ));
            }
        }
        if let Some(v) = start.metadata.get(restore_metadata::POWER_ON) {
            if v != "true" && v != "false" {
                return Err(invalid(format!(
                    "restore metadata powerOn must be true or false, not {v:?}"
                )));
            }
        }
        if start.metadata.contains_key(restore_metadata::HOST)
            && start.metadata.contains_key(restore_metadata::CLUSTER)
        {
            return Err(invalid(
                "restore metadata names a host and a cluster; give one".into(),
            ));
        }
        let point = self
            .catalog
            .recovery_point(&start.recovery_point_arn)
            .map_err(store_err)?
            .ok_or_else(|| not_found("recovery point", &start.recovery_point_arn))?;
        let gateway_arn = self
            .inventory
            .gateway_of(&point.hypervisor_arn)
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "hypervisor {} of the recovery point is served by no gateway",
                        point.hypervisor_arn
                    ),
                )
            })?;
        let job_id = uuid::Uuid::new_v4().to_string().to_uppercase();
        let job = RestoreJobRecord {
            job_id: job_id.clone(),
            recovery_point_arn: point.arn.clone(),
            gateway_arn: gateway_arn.clone(),
            hypervisor_arn: point.hypervisor_arn.clone(),
            metadata: start.metadata,
            iam_role_arn: start.iam_role_arn,
            idempotency_token: start.idempotency_token,
            state: RestoreJobState::Pending,
            dispatched: false,
            status_message: None,
            percent_done: 0.0,
            bytes_transferred: 0,
            backup_size_bytes: point.backup_size_bytes,
            created_resource_arn: None,
            created: self.now(),
            completed: None,
        };
        let stored = self.catalog.create_restore_job(&job).map_err(store_err)?;
        if stored.job_id != job_id {
            return Ok(stored);
        }
        tracing::info!(job = %job_id, recovery_point = %point.arn, "restore job created");
        self.dispatch(&gateway_arn);
        Ok(stored)
    }

    pub fn restore_job(&self, job_id: &str) -> Result<RestoreJobRecord, ApiError> {
        let mut job = self
            .catalog
            .restore_job(job_id)
            .map_err(store_err)?
            .ok_or_else(|| not_found("restore job", job_id))?;
        if let Some(live) = self.live_map().get(job_id) {
            job.bytes_transferred = job
                .bytes_transferred
                .max(live.bytes.load(Ordering::Relaxed));
        }
        Ok(job)
    }

    pub fn restore_jobs(
        &self,
        filter: &RestoreJobFilter,
    ) -> Result<Vec<RestoreJobRecord>, ApiError> {
        Ok(self
            .catalog
            .restore_jobs()
            .map_err(store_err)?
            .into_iter()
            .filter(|j| {
                filter.status.as_ref().is_none_or(|s| j.state.as_str() == s)
                    && filter.created_before.is_none_or(|t| j.created < t)
                    && filter.created_after.is_none_or(|t| j.created > t)
                    && filter
                        .resource_type
                        .as_ref()
                        .is_none_or(|t| t == RESOURCE_TYPE)
                    && filter
                        .complete_before
                        .is_none_or(|t| j.completed.is_some_and(|c| c < t))
                    && filter
                        .complete_after
                        .is_none_or(|t| j.completed.is_some_and(|c| c > t))
            })
            .collect())
    }

    async fn complete_restore(
        self: &Arc<Self>,
        gateway_arn: &str,
        report: &JobComplete,
    ) -> Result<(), Refusal> {
        let job = self
            .catalog
            .restore_job(&report.job_id)
            .map_err(refusal)?
            .filter(|j| j.gateway_arn == gateway_arn)
            .ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NotFound,
                    format!("this gateway has no job {}", report.job_id),
                )
            })?;
        if job.state.is_final() {
            return Ok(());
        }
        let now = self.now();
        let bytes = self
            .live_map()
            .get(&job.job_id)
            .map_or(0, |l| l.bytes.load(Ordering::Relaxed));
        let (state, message, created) = match &report.outcome {
            JobOutcome::Succeeded {
                created_instance_uuid,
                vm_name,
                ..
            } => {
                let created = match created_instance_uuid {
                    Some(uuid) => {
                        let name = vm_name
                            .clone()
                            .or_else(|| job.metadata.get(restore_metadata::VM_NAME).cloned())
                            .unwrap_or_default();
                        Some(
                            self.inventory
                                .record_restored_vm(
                                    &job.hypervisor_arn,
                                    uuid,
                                    &name,
                                    &self.arns.restored_vm(),
                                )
                                .map_err(refusal)?,
                        )
                    }
                    None => None,
                };
                (RestoreJobState::Completed, None, created)
            }
            JobOutcome::Failed { message } => {
                (RestoreJobState::Failed, Some(message.clone()), None)
            }
            JobOutcome::Aborted { message } => {
                (RestoreJobState::Aborted, Some(message.clone()), None)
            }
        };
        self.catalog
            .update_restore_job(&job.job_id, &mut |j| {
                j.state = state;
                j.status_message = message.clone();
                j.completed = Some(now);
                j.bytes_transferred = j.bytes_transferred.max(bytes);
                j.created_resource_arn = created.clone();
                if state == RestoreJobState::Completed {
                    j.percent_done = 100.0;
                }
                Ok(())
            })
            .map_err(refusal)?;
        self.end_live(&job.job_id);
        tracing::info!(job = %job.job_id, state = state.as_str(), "restore job ended");
        self.dispatch(gateway_arn);
        Ok(())
    }
}

fn chunk_refusal(e: bgw_chunks::Error) -> Refusal {
    tracing::error!(error = %e, "chunk store failure");
    Refusal::new(
        ErrorCode::Unavailable,
        format!("the chunk store failed: {e}; retry"),
    )
}

/// Decompresses `frame` (at most `raw_length` bytes) and checks length and hash.
pub fn verify_frame(hash: &ChunkHash, raw_length: u64, frame: &[u8]) -> Result<(), Refusal> {
    let corrupt =
        |why: String| Refusal::new(ErrorCode::ChunkCorrupt, format!("chunk {hash}: {why}"));
    let capacity = usize::try_from(raw_length).unwrap_or(usize::MAX);
    let raw = zstd::bulk::decompress(frame, capacity).map_err(|e| {
        corrupt(format!(
            "not a zstd frame of at most {raw_length} bytes: {e}"
        ))
    })?;
    if raw.len() as u64 != raw_length {
        return Err(corrupt(format!(
            "decompresses to {} bytes, {RAW_LENGTH} says {raw_length}",
            raw.len(),
            RAW_LENGTH = bgw_protocol::backup::RAW_LENGTH_HEADER
        )));
    }
    let actual = ChunkHash::of(&raw);
    if &actual != hash {
        return Err(corrupt(format!(
            "its content hashes to {actual}; the data is corrupt"
        )));
    }
    Ok(())
}
