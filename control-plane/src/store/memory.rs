//! In-memory implementations of the domain stores, for tests of the services.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::domain::{ActivationKeys, Catalogue, GatewayAgents, SyncBookkeeping};
use super::{
    ActivationKeyRecord, BandwidthInterval, ConfigVersion, GatewayAgent, GatewayCredential,
    GatewayRecord, HypervisorRecord, KeyBinding, KeyState, StoreError, Tags, VmRecord,
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

#[derive(Default)]
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

impl Catalogue for MemoryCatalogue {
    fn get_gateway(&self, arn: &str) -> Result<GatewayRecord, StoreError> {
        locked(&self.inner, |r| {
            r.gateways
                .get(arn)
                .cloned()
                .ok_or_else(|| StoreError::not_found("gateway", arn))
        })
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
        locked(&self.inner, |r| {
            let stored = r
                .hypervisors
                .get_mut(arn)
                .ok_or_else(|| StoreError::not_found("hypervisor", arn))?;
            let mut hv = stored.clone();
            change(&mut hv)?;
            *stored = hv.clone();
            Ok(hv)
        })
    }

    fn upsert_vm(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
        new_arn: &str,
        change: &dyn Fn(&mut VmRecord),
    ) -> Result<VmRecord, StoreError> {
        locked(&self.inner, |r| {
            if !r.hypervisors.contains_key(hypervisor_arn) {
                return Err(StoreError::not_found("hypervisor", hypervisor_arn));
            }
            let index = (hypervisor_arn.to_string(), instance_uuid.to_string());
            let existing = r.vm_index.get(&index).and_then(|a| r.vms.get(a)).cloned();
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
            r.vm_index.insert(index, vm.arn.clone());
            r.vms.insert(vm.arn.clone(), vm.clone());
            Ok(vm)
        })
    }

    fn delete_vm_by_uuid(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
    ) -> Result<(), StoreError> {
        locked(&self.inner, |r| {
            let index = (hypervisor_arn.to_string(), instance_uuid.to_string());
            if let Some(arn) = r.vm_index.remove(&index) {
                r.vms.remove(&arn);
                r.tags.remove(&arn);
            }
        });
        Ok(())
    }

    fn vm_uuids(&self, hypervisor_arn: &str) -> Result<Vec<String>, StoreError> {
        Ok(locked(&self.inner, |r| {
            r.vm_index
                .keys()
                .filter(|(hv, _)| hv == hypervisor_arn)
                .map(|(_, uuid)| uuid.clone())
                .collect()
        }))
    }

    fn tag_resource(&self, arn: &str, add: &Tags, max_tags: usize) -> Result<(), StoreError> {
        locked(&self.inner, |r| {
            r.require(arn)?;
            let mut tags = r.tags.get(arn).cloned().unwrap_or_default();
            tags.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
            if tags.len() > max_tags {
                return Err(StoreError::Invalid(format!(
                    "a resource can have at most {max_tags} tags; {arn} would have {}",
                    tags.len()
                )));
            }
            r.tags.insert(arn.to_string(), tags);
            Ok(())
        })
    }

    fn untag_resource(&self, arn: &str, keys: &[String]) -> Result<(), StoreError> {
        locked(&self.inner, |r| {
            r.require(arn)?;
            let tags = r.tags.entry(arn.to_string()).or_default();
            for k in keys {
                tags.remove(k);
            }
            Ok(())
        })
    }
}

/// [`SyncBookkeeping`] in two collections behind one lock.
#[derive(Default)]
pub struct MemorySyncs {
    inner: Mutex<Syncs>,
}

#[derive(Default)]
struct Syncs {
    seen: HashMap<String, BTreeSet<String>>,
    done: HashSet<String>,
}

impl SyncBookkeeping for MemorySyncs {
    fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> Result<(), StoreError> {
        locked(&self.inner, |s| {
            s.seen
                .entry(sync_id.to_string())
                .or_default()
                .extend(uuids.iter().cloned())
        });
        Ok(())
    }

    fn take_sync_seen(&self, sync_id: &str) -> Result<BTreeSet<String>, StoreError> {
        Ok(locked(&self.inner, |s| {
            s.seen.remove(sync_id).unwrap_or_default()
        }))
    }

    fn complete_sync(&self, sync_id: &str) -> Result<bool, StoreError> {
        Ok(locked(&self.inner, |s| s.done.insert(sync_id.to_string())))
    }

    fn sync_completed(&self, sync_id: &str) -> Result<bool, StoreError> {
        Ok(locked(&self.inner, |s| s.done.contains(sync_id)))
    }
}
