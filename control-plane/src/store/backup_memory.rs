//! [`BackupCatalog`] and [`VmInventory`] in memory, for tests of the backup service.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::backup::{
    BackupCatalog, BackupJobRecord, Change, RecoveryPointRecord, RestoreJobRecord, VaultRecord,
    VmInventory, VmTarget,
};
use super::StoreError;

#[derive(Default)]
pub struct MemoryCatalog {
    inner: Mutex<Catalog>,
}

#[derive(Default)]
struct Catalog {
    vaults: BTreeMap<String, VaultRecord>,
    backup_jobs: Vec<BackupJobRecord>,
    restore_jobs: Vec<RestoreJobRecord>,
    tokens: HashMap<String, String>,
    points: BTreeMap<String, RecoveryPointRecord>,
}

impl MemoryCatalog {
    fn with<T>(&self, f: impl FnOnce(&mut Catalog) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn update<T: Clone>(
    items: &mut [T],
    id_of: impl Fn(&T) -> &str,
    what: &'static str,
    job_id: &str,
    change: Change<'_, T>,
) -> Result<T, StoreError> {
    let item = items
        .iter_mut()
        .find(|j| id_of(j) == job_id)
        .ok_or_else(|| StoreError::not_found(what, job_id))?;
    let mut copy = item.clone();
    change(&mut copy)?;
    *item = copy.clone();
    Ok(copy)
}

impl BackupCatalog for MemoryCatalog {
    fn create_vault(&self, vault: &VaultRecord) -> Result<(), StoreError> {
        self.with(|c| {
            if c.vaults.contains_key(&vault.name) {
                return Err(StoreError::Conflict(format!(
                    "backup vault {:?} already exists",
                    vault.name
                )));
            }
            c.vaults.insert(vault.name.clone(), vault.clone());
            Ok(())
        })
    }

    fn vault(&self, name: &str) -> Result<Option<VaultRecord>, StoreError> {
        Ok(self.with(|c| c.vaults.get(name).cloned()))
    }

    fn vaults(&self) -> Result<Vec<VaultRecord>, StoreError> {
        Ok(self.with(|c| c.vaults.values().cloned().collect()))
    }

    fn delete_vault(&self, name: &str) -> Result<(), StoreError> {
        self.with(|c| {
            if !c.vaults.contains_key(name) {
                return Err(StoreError::not_found("backup vault", name));
            }
            let held = c.points.values().filter(|p| p.vault_name == name).count();
            if held > 0 {
                return Err(StoreError::Conflict(format!(
                    "backup vault {name:?} holds {held} recovery points; delete them first"
                )));
            }
            c.vaults.remove(name);
            Ok(())
        })
    }

    fn create_backup_job(&self, job: &BackupJobRecord) -> Result<BackupJobRecord, StoreError> {
        self.with(|c| {
            if let Some(token) = &job.idempotency_token {
                let key = format!("b:{token}");
                if let Some(id) = c.tokens.get(&key) {
                    return Ok(c
                        .backup_jobs
                        .iter()
                        .find(|j| &j.job_id == id)
                        .cloned()
                        .unwrap());
                }
                c.tokens.insert(key, job.job_id.clone());
            }
            c.backup_jobs.push(job.clone());
            Ok(job.clone())
        })
    }

    fn backup_job(&self, job_id: &str) -> Result<Option<BackupJobRecord>, StoreError> {
        Ok(self.with(|c| c.backup_jobs.iter().find(|j| j.job_id == job_id).cloned()))
    }

    fn update_backup_job(
        &self,
        job_id: &str,
        change: Change<'_, BackupJobRecord>,
    ) -> Result<BackupJobRecord, StoreError> {
        self.with(|c| {
            update(
                &mut c.backup_jobs,
                |j| &j.job_id,
                "backup job",
                job_id,
                change,
            )
        })
    }

    fn backup_jobs(&self) -> Result<Vec<BackupJobRecord>, StoreError> {
        Ok(self.with(|c| c.backup_jobs.clone()))
    }

    fn put_recovery_point(&self, point: &RecoveryPointRecord) -> Result<(), StoreError> {
        self.with(|c| {
            if !c.vaults.contains_key(&point.vault_name) {
                return Err(StoreError::not_found("backup vault", &point.vault_name));
            }
            c.points.insert(point.arn.clone(), point.clone());
            Ok(())
        })
    }

    fn recovery_point(&self, arn: &str) -> Result<Option<RecoveryPointRecord>, StoreError> {
        Ok(self.with(|c| c.points.get(arn).cloned()))
    }

    fn recovery_points(&self) -> Result<Vec<RecoveryPointRecord>, StoreError> {
        Ok(self.with(|c| c.points.values().cloned().collect()))
    }

    fn delete_recovery_point(&self, arn: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.points
                .remove(arn)
                .map(|_| ())
                .ok_or_else(|| StoreError::not_found("recovery point", arn))
        })
    }

    fn create_restore_job(&self, job: &RestoreJobRecord) -> Result<RestoreJobRecord, StoreError> {
        self.with(|c| {
            if let Some(token) = &job.idempotency_token {
                let key = format!("r:{token}");
                if let Some(id) = c.tokens.get(&key) {
                    return Ok(c
                        .restore_jobs
                        .iter()
                        .find(|j| &j.job_id == id)
                        .cloned()
                        .unwrap());
                }
                c.tokens.insert(key, job.job_id.clone());
            }
            c.restore_jobs.push(job.clone());
            Ok(job.clone())
        })
    }

    fn restore_job(&self, job_id: &str) -> Result<Option<RestoreJobRecord>, StoreError> {
        Ok(self.with(|c| c.restore_jobs.iter().find(|j| j.job_id == job_id).cloned()))
    }

    fn update_restore_job(
        &self,
        job_id: &str,
        change: Change<'_, RestoreJobRecord>,
    ) -> Result<RestoreJobRecord, StoreError> {
        self.with(|c| {
            update(
                &mut c.restore_jobs,
                |j| &j.job_id,
                "restore job",
                job_id,
                change,
            )
        })
    }

    fn restore_jobs(&self) -> Result<Vec<RestoreJobRecord>, StoreError> {
        Ok(self.with(|c| c.restore_jobs.clone()))
    }
}

/// [`VmInventory`] in memory: VMs and hypervisor-to-gateway associations set by the test.
#[derive(Default)]
pub struct MemoryInventory {
    inner: Mutex<Inventory>,
}

#[derive(Default)]
struct Inventory {
    vms: BTreeMap<String, VmTarget>,
    gateways: HashMap<String, String>,
    last_backup: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

impl MemoryInventory {
    fn with<T>(&self, f: impl FnOnce(&mut Inventory) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds a VM; its hypervisor is served by `gateway_arn`.
    pub fn add_vm(&self, vm: VmTarget) {
        self.with(|i| {
            if let Some(gw) = &vm.gateway_arn {
                i.gateways.insert(vm.hypervisor_arn.clone(), gw.clone());
            }
            i.vms.insert(vm.vm_arn.clone(), vm);
        })
    }

    pub fn last_backup(&self, vm_arn: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.with(|i| i.last_backup.get(vm_arn).copied())
    }

    pub fn vm_count(&self) -> usize {
        self.with(|i| i.vms.len())
    }
}

impl VmInventory for MemoryInventory {
    fn vm_target(&self, vm_arn: &str) -> Result<Option<VmTarget>, StoreError> {
        Ok(self.with(|i| {
            i.vms.get(vm_arn).cloned().map(|mut vm| {
                vm.gateway_arn = i.gateways.get(&vm.hypervisor_arn).cloned();
                vm
            })
        }))
    }

    fn gateway_of(&self, hypervisor_arn: &str) -> Result<Option<String>, StoreError> {
        Ok(self.with(|i| i.gateways.get(hypervisor_arn).cloned()))
    }

    fn record_backup(
        &self,
        vm_arn: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.with(|i| {
            if !i.vms.contains_key(vm_arn) {
                return Err(StoreError::not_found("virtual machine", vm_arn));
            }
            i.last_backup.insert(vm_arn.to_owned(), at);
            Ok(())
        })
    }

    fn record_restored_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        name: &str,
        new_arn: &str,
    ) -> Result<String, StoreError> {
        Ok(self.with(|i| {
            if let Some(vm) = i
                .vms
                .values()
                .find(|v| v.hypervisor_arn == hypervisor_arn && v.instance_uuid == instance_uuid)
            {
                return vm.vm_arn.clone();
            }
            i.vms.insert(
                new_arn.to_owned(),
                VmTarget {
                    vm_arn: new_arn.to_owned(),
                    name: name.to_owned(),
                    hypervisor_arn: hypervisor_arn.to_owned(),
                    instance_uuid: instance_uuid.to_owned(),
                    gateway_arn: None,
                    path: None,
                    host_name: None,
                },
            );
            new_arn.to_owned()
        }))
    }
}
