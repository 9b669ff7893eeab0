//! In-memory implementations of the domain stores, for tests of the services.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::domain::{
    ActivationKeys, Catalogue, GatewayAgents, MetadataScope, MetadataStore, MetadataTx,
    SyncBookkeeping, TxStep,
};
use super::{
    ActivationKeyRecord, BandwidthInterval, ConfigVersion, GatewayAgent, GatewayCredential,
    GatewayRecord, HypervisorRecord, KeyBinding, KeyState, StoreError, Tags, TxError, VmRecord,
};

fn locked<S, T>(m: &Mutex<S>, f: impl FnOnce(&mut S) -> T) -> T {
    f(&mut m.lock().unwrap_or_else(|e| e.into_inner()))
}

/// [`GatewayAgents`] in a few maps behind one lock.
#[derive(Default)]
pub struct MemoryAgents {
    inner: Mutex<Agents>,
}

#[derive(Default)]
struct Agents {
    agents: HashMap<String, GatewayAgent>,
    credentials: HashMap<String, GatewayCredential>,
    versions: HashMap<String, ConfigVersion>,
}

impl MemoryAgents {
    fn with<T>(&self, f: impl FnOnce(&mut Agents) -> T) -> T {
        locked(&self.inner, f)
    }

    /// Access keys stored, in no order.
    pub fn credential_ids(&self) -> Vec<String> {
        self.with(|a| a.credentials.keys().cloned().collect())
    }
}

impl GatewayAgents for MemoryAgents {
    fn gateway_agent(&self, gateway_arn: &str) -> Result<Option<GatewayAgent>, StoreError> {
        Ok(self.with(|a| a.agents.get(gateway_arn).cloned()))
    }

    fn create_gateway_agent(&self, agent: &GatewayAgent) -> Result<GatewayAgent, StoreError> {
        Ok(self.with(|a| {
            a.agents
                .entry(agent.gateway_arn.clone())
                .or_insert_with(|| agent.clone())
                .clone()
        }))
    }

    fn update_gateway_agent(
        &self,
        gateway_arn: &str,
        change: &mut dyn FnMut(&mut GatewayAgent),
    ) -> Result<Option<GatewayAgent>, StoreError> {
        Ok(self.with(|a| {
            a.agents.get_mut(gateway_arn).map(|agent| {
                change(agent);
                agent.clone()
            })
        }))
    }

    fn gateway_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<GatewayCredential>, StoreError> {
        Ok(self.with(|a| a.credentials.get(access_key_id).cloned()))
    }

    fn put_gateway_credential(
        &self,
        access_key_id: &str,
        credential: &GatewayCredential,
    ) -> Result<(), StoreError> {
        self.with(|a| {
            a.credentials
                .insert(access_key_id.to_string(), credential.clone())
        });
        Ok(())
    }

    fn delete_gateway_credential(&self, access_key_id: &str) -> Result<(), StoreError> {
        self.with(|a| a.credentials.remove(access_key_id));
        Ok(())
    }

    fn config_version(&self, gateway_arn: &str) -> Result<Option<ConfigVersion>, StoreError> {
        Ok(self.with(|a| {
            a.versions.get(gateway_arn).cloned().or_else(|| {
                a.agents.get(gateway_arn).map(|g| ConfigVersion {
                    version: g.config_version,
                    hash: g.config_hash.clone(),
                })
            })
        }))
    }

    fn swap_config_version(
        &self,
        gateway_arn: &str,
        seen: Option<&ConfigVersion>,
        next: &ConfigVersion,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|a| {
            let stored = a.versions.get(gateway_arn);
            let ok = match stored {
                None => true,
                Some(s) => seen == Some(s) && next.version > s.version,
            };
            if ok {
                a.versions.insert(gateway_arn.to_string(), next.clone());
            }
            ok
        }))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// [`ActivationKeys`] in two maps behind one lock.
#[derive(Default)]
pub struct MemoryKeys {
    inner: Mutex<Keys>,
}

#[derive(Default)]
struct Keys {
    keys: BTreeMap<String, ActivationKeyRecord>,
    bindings: HashMap<String, KeyBinding>,
}

impl MemoryKeys {
    /// Marks a key used by `gateway_arn`, as `CreateGateway` does.
    pub fn consume(&self, key: &str, gateway_arn: &str) {
        locked(&self.inner, |k| {
            if let Some(record) = k.keys.get_mut(key) {
                record.state = KeyState::Consumed {
                    gateway_arn: gateway_arn.to_string(),
                };
            }
        })
    }

    /// Keys stored (with or without a binding), in key order.
    pub fn keys(&self) -> Vec<String> {
        locked(&self.inner, |k| k.keys.keys().cloned().collect())
    }

    /// Keys that have a binding, in no order.
    pub fn bound_keys(&self) -> Vec<String> {
        locked(&self.inner, |k| k.bindings.keys().cloned().collect())
    }
}

impl ActivationKeys for MemoryKeys {
    fn insert_activation_key(&self, record: &ActivationKeyRecord) -> Result<(), StoreError> {
        locked(&self.inner, |k| {
            k.keys.insert(record.key.clone(), record.clone())
        });
        Ok(())
    }

    fn get_activation_key(&self, key: &str) -> Result<Option<ActivationKeyRecord>, StoreError> {
        Ok(locked(&self.inner, |k| k.keys.get(key).cloned()))
    }

    fn bind_activation_key(&self, key: &str, binding: &KeyBinding) -> Result<(), StoreError> {
        locked(&self.inner, |k| {
            k.bindings.insert(key.to_string(), binding.clone())
        });
        Ok(())
    }

    fn activation_key_binding(&self, key: &str) -> Result<Option<KeyBinding>, StoreError> {
        Ok(locked(&self.inner, |k| k.bindings.get(key).cloned()))
    }

    fn prune_expired_activation_keys(
        &self,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<usize, StoreError> {
        Ok(locked(&self.inner, |k| {
            let expired: Vec<String> = k
                .keys
                .values()
                .filter(|r| r.state == KeyState::Available && r.expires + grace <= now)
                .map(|r| r.key.clone())
                .collect();
            for key in &expired {
                k.keys.remove(key);
                k.bindings.remove(key);
            }
            expired.len()
        }))
    }
}

/// [`Catalogue`] in ordered maps behind one lock, with the sled store's checks (a VM needs its
/// hypervisor, tags need their resource).
#[derive(Default)]
pub struct MemoryCatalogue {
    inner: Mutex<Records>,
}

#[derive(Default, Clone)]
struct Records {
    gateways: BTreeMap<String, GatewayRecord>,
    hypervisors: BTreeMap<String, HypervisorRecord>,
    vms: BTreeMap<String, VmRecord>,
    /// (hypervisor ARN, instance UUID) -> VM ARN.
    vm_index: BTreeMap<(String, String), String>,
    tags: HashMap<String, Tags>,
    schedules: HashMap<String, Vec<BandwidthInterval>>,
}

impl Records {
    fn require(&self, arn: &str) -> Result<(), StoreError> {
        if self.gateways.contains_key(arn)
            || self.hypervisors.contains_key(arn)
            || self.vms.contains_key(arn)
        {
            return Ok(());
        }
        Err(StoreError::not_found("resource", arn))
    }
}

impl MemoryCatalogue {
    pub fn put_gateway(&self, gateway: GatewayRecord) {
        locked(&self.inner, |r| {
            r.gateways.insert(gateway.arn.clone(), gateway)
        });
    }

    pub fn put_hypervisor(&self, hypervisor: HypervisorRecord) {
        locked(&self.inner, |r| {
            r.hypervisors.insert(hypervisor.arn.clone(), hypervisor)
        });
    }

    /// The VMs under a hypervisor, ordered by ARN.
    pub fn vms(&self, hypervisor_arn: &str) -> Vec<VmRecord> {
        locked(&self.inner, |r| {
            r.vms
                .values()
                .filter(|v| v.hypervisor_arn == hypervisor_arn)
                .cloned()
                .collect()
        })
    }

    /// Tags of a resource (empty if it has none).
    pub fn tags(&self, arn: &str) -> Tags {
        locked(&self.inner, |r| {
            r.tags.get(arn).cloned().unwrap_or_default()
        })
    }
}

impl Records {
    fn get_gateway(&self, arn: &str) -> Result<GatewayRecord, StoreError> {
        self.gateways
            .get(arn)
            .cloned()
            .ok_or_else(|| StoreError::not_found("gateway", arn))
    }

    fn update_hypervisor(
        &mut self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> Result<HypervisorRecord, StoreError> {
        let stored = self
            .hypervisors
            .get_mut(arn)
            .ok_or_else(|| StoreError::not_found("hypervisor", arn))?;
        let mut hv = stored.clone();
        change(&mut hv)?;
        *stored = hv.clone();
        Ok(hv)
    }

    fn upsert_vm(
        &mut self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> Result<VmRecord, StoreError> {
        if !self.hypervisors.contains_key(hypervisor_arn) {
            return Err(StoreError::not_found("hypervisor", hypervisor_arn));
        }
        let index = (hypervisor_arn.to_string(), instance_uuid.to_string());
        let existing = self
            .vm_index
            .get(&index)
            .and_then(|a| self.vms.get(a))
            .cloned();
        let mut vm = existing.unwrap_or_else(|| VmRecord {
            arn: new_arn.to_string(),
            hypervisor_arn: hypervisor_arn.to_string(),
            instance_uuid: instance_uuid.to_string(),
            name: String::new(),
            path: None,
            host_name: None,
            last_backup: None,
            vmware_tags: Vec::new(),
            mapped_tag_keys: Vec::new(),
        });
        change(&mut vm);
        self.vm_index.insert(index, vm.arn.clone());
        self.vms.insert(vm.arn.clone(), vm.clone());
        Ok(vm)
    }

    fn delete_vm_by_uuid(&mut self, hypervisor_arn: &str, instance_uuid: &str) {
        let index = (hypervisor_arn.to_string(), instance_uuid.to_string());
        if let Some(arn) = self.vm_index.remove(&index) {
            self.vms.remove(&arn);
            self.tags.remove(&arn);
        }
    }

    fn vm_uuids(&self, hypervisor_arn: &str) -> Vec<String> {
        self.vm_index
            .keys()
            .filter(|(hv, _)| hv == hypervisor_arn)
            .map(|(_, uuid)| uuid.clone())
            .collect()
    }

    fn tag_resource(&mut self, arn: &str, add: &Tags, max_tags: usize) -> Result<(), StoreError> {
        self.require(arn)?;
        let mut tags = self.tags.get(arn).cloned().unwrap_or_default();
        tags.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
        if tags.len() > max_tags {
            return Err(StoreError::Invalid(format!(
                "a resource can have at most {max_tags} tags; {arn} would have {}",
                tags.len()
            )));
        }
        self.tags.insert(arn.to_string(), tags);
        Ok(())
    }

    fn untag_resource(&mut self, arn: &str, keys: &[String]) -> Result<(), StoreError> {
        self.require(arn)?;
        let tags = self.tags.entry(arn.to_string()).or_default();
        for k in keys {
            tags.remove(k);
        }
        Ok(())
    }
}

impl Catalogue for MemoryCatalogue {
    fn get_gateway(&self, arn: &str) -> Result<GatewayRecord, StoreError> {
        locked(&self.inner, |r| r.get_gateway(arn))
    }

    fn update_gateway(
        &self,
        arn: &str,
        change: &dyn Fn(&mut GatewayRecord) -> Result<(), StoreError>,
    ) -> Result<GatewayRecord, StoreError> {
        locked(&self.inner, |r| {
            let stored = r
                .gateways
                .get_mut(arn)
                .ok_or_else(|| StoreError::not_found("gateway", arn))?;
            let mut gw = stored.clone();
            change(&mut gw)?;
            *stored = gw.clone();
            Ok(gw)
        })
    }

    fn get_bandwidth_schedule(
        &self,
        gateway_arn: &str,
    ) -> Result<Vec<BandwidthInterval>, StoreError> {
        locked(&self.inner, |r| {
            r.require(gateway_arn)?;
            Ok(r.schedules.get(gateway_arn).cloned().unwrap_or_default())
        })
    }

    fn get_hypervisor(&self, arn: &str) -> Result<HypervisorRecord, StoreError> {
        locked(&self.inner, |r| {
            r.hypervisors
                .get(arn)
                .cloned()
                .ok_or_else(|| StoreError::not_found("hypervisor", arn))
        })
    }

    fn update_hypervisor(
        &self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> Result<HypervisorRecord, StoreError> {
        locked(&self.inner, |r| r.update_hypervisor(arn, change))
    }

    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> Result<VmRecord, StoreError> {
        locked(&self.inner, |r| {
            r.upsert_vm(hypervisor_arn, instance_uuid, new_arn, change)
        })
    }

    fn delete_vm_by_uuid(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
    ) -> Result<(), StoreError> {
        locked(&self.inner, |r| {
            r.delete_vm_by_uuid(hypervisor_arn, instance_uuid)
        });
        Ok(())
    }

    fn vm_uuids(&self, hypervisor_arn: &str) -> Result<Vec<String>, StoreError> {
        Ok(locked(&self.inner, |r| r.vm_uuids(hypervisor_arn)))
    }

    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> Result<(), StoreError> {
        locked(&self.inner, |r| r.tag_resource(arn, add, max_tags))
    }

    fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), StoreError> {
        locked(&self.inner, |r| r.untag_resource(arn, keys))
    }
}

/// [`SyncBookkeeping`] in two collections behind one lock.
#[derive(Default)]
pub struct MemorySyncs {
    inner: Mutex<Syncs>,
}

#[derive(Default, Clone)]
struct Syncs {
    seen: HashMap<String, BTreeSet<String>>,
    done: HashSet<String>,
}

impl Syncs {
    fn sync_seen(&mut self, sync_id: &str, uuids: &[String]) {
        self.seen
            .entry(sync_id.to_string())
            .or_default()
            .extend(uuids.iter().cloned())
    }

    fn take_sync_seen(&mut self, sync_id: &str) -> BTreeSet<String> {
        self.seen.remove(sync_id).unwrap_or_default()
    }

    fn complete_sync(&mut self, sync_id: &str) -> bool {
        self.done.insert(sync_id.to_string())
    }
}

impl SyncBookkeeping for MemorySyncs {
    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> Result<(), StoreError> {
        locked(&self.inner, |s| s.sync_seen(sync_id, uuids));
        Ok(())
    }

    fn take_sync_seen(&self, sync_id: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(locked(&self.inner, |s| s.take_sync_seen(sync_id)))
    }

    fn complete_sync(&self, sync_id: &str) -> Result<bool, StoreError> {
        Ok(locked(&self.inner, |s| s.complete_sync(sync_id)))
    }

    fn sync_completed(&self, sync_id: &str) -> Result<bool, StoreError> {
        Ok(locked(&self.inner, |s| s.done.contains(sync_id)))
    }
}

/// [`MetadataStore`] over an in-memory catalogue and sync bookkeeping: the batch works on
/// copies of both, which replace the originals only if it succeeds.
pub struct MemoryMetadata<'a> {
    pub catalogue: &'a MemoryCatalogue,
    pub syncs: &'a MemorySyncs,
}

struct MemoryTx<'a> {
    scope: MetadataScope<'a>,
    records: RefCell<Records>,
    syncs: RefCell<Syncs>,
}

impl MemoryTx<'_> {
    /// The same rule as the sled store's: only the final batch lists, for its own scope.
    fn may_list(&self, asked: &str, own: &str) -> Result<(), StoreError> {
        if self.scope.completes && asked == own {
            return Ok(());
        }
        Err(StoreError::Invalid(format!(
            "{asked}: only the final batch of a sync lists its VMs, for its own sync and \
             hypervisor"
        )))
    }
}

impl MetadataTx for MemoryTx<'_> {
    fn gateway(&self, arn: &str) -> TxStep<GatewayRecord> {
        Ok(self.records.borrow().get_gateway(arn)?)
    }

    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> TxStep<VmRecord> {
        Ok(self
            .records
            .borrow_mut()
            .upsert_vm(hypervisor_arn, instance_uuid, new_arn, change)?)
    }

    fn delete_vm_by_uuid(&self, hypervisor_arn: &str, instance_uuid: &str) -> TxStep<()> {
        self.records
            .borrow_mut()
            .delete_vm_by_uuid(hypervisor_arn, instance_uuid);
        Ok(())
    }

    fn vm_uuids(&self, hypervisor_arn: &str) -> TxStep<Vec<String>> {
        self.may_list(hypervisor_arn, self.scope.hypervisor_arn)?;
        Ok(self.records.borrow().vm_uuids(hypervisor_arn))
    }

    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> TxStep<()> {
        Ok(self.records.borrow_mut().tag_resource(arn, add, max_tags)?)
    }

    fn untag_resource(&self, arn: &str, keys: &[String]) -> TxStep<()> {
        Ok(self.records.borrow_mut().untag_resource(arn, keys)?)
    }

    fn update_hypervisor(
        &self,
        arn: &str,
        change: &dyn Fn(&mut HypervisorRecord) -> Result<(), StoreError>,
    ) -> TxStep<HypervisorRecord> {
        Ok(self.records.borrow_mut().update_hypervisor(arn, change)?)
    }

    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> TxStep<()> {
        self.syncs.borrow_mut().sync_seen(sync_id, uuids);
        Ok(())
    }

    fn take_sync_seen(&self, sync_id: &str) -> TxStep<BTreeSet<String>> {
        self.may_list(sync_id, self.scope.sync_id)?;
        Ok(self.syncs.borrow_mut().take_sync_seen(sync_id))
    }

    fn complete_sync(&self, sync_id: &str) -> TxStep<bool> {
        Ok(self.syncs.borrow_mut().complete_sync(sync_id))
    }

    fn sync_completed(&self, sync_id: &str) -> TxStep<bool> {
        Ok(self.syncs.borrow().done.contains(sync_id))
    }
}

impl MetadataStore for MemoryMetadata<'_> {
    fn metadata_transaction(
        &self,
        scope: MetadataScope<'_>,
        batch: &dyn Fn(&dyn MetadataTx) -> TxStep<()>,
    ) -> Result<(), StoreError> {
        locked(&self.catalogue.inner, |records| {
            locked(&self.syncs.inner, |syncs| {
                let tx = MemoryTx {
                    scope,
                    records: RefCell::new(records.clone()),
                    syncs: RefCell::new(syncs.clone()),
                };
                match batch(&tx) {
                    Ok(()) => {
                        *records = tx.records.into_inner();
                        *syncs = tx.syncs.into_inner();
                        Ok(())
                    }
                    Err(TxError::Abort(e)) => Err(e),
                    Err(TxError::Retry) => Err(StoreError::Conflict(
                        "an in-memory transaction cannot conflict".into(),
                    )),
                }
            })
        })
    }
}
