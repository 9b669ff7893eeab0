//! Store operations of the gateway protocol: activation-key bindings, gateway credentials,
//! per-gateway protocol state, VM removal and sync bookkeeping.
//!
//! These live in their own trees next to the API's (the sync bookkeeping's are opened with
//! the store, so a metadata batch's transaction spans them; the others on first use).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ops::vm_index_key;
use super::{decode, encode, ActivationKeyRecord, KeyState, Store, StoreError, Tx, TxResult};
use crate::secret::Secret;

/// Who asked for an activation key: the key is handed to nobody else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    pub agent_id: String,
    pub agent_secret_sha256: String,
    pub hostname: String,
    pub agent_version: String,
}

/// One access key of a gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayCredential {
    pub gateway_arn: String,
    pub secret_access_key: Secret,
    pub created: DateTime<Utc>,
}

/// Protocol state of one gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayAgent {
    pub gateway_arn: String,
    pub agent_id: String,
    pub access_key_id: String,
    /// The key before the last rotation; valid until the new one is first used.
    #[serde(default)]
    pub previous_access_key_id: Option<String>,
    /// The configuration version as data directories before `gw_config_versions` kept it;
    /// read once to seed that record, never written again.
    #[serde(default)]
    pub config_version: u64,
    #[serde(default)]
    pub config_hash: String,
    #[serde(default)]
    pub heartbeat_interval_secs: u64,
}

/// The configuration version of one gateway and the hash of the content it numbers.
///
/// Only ever replaced by compare-and-swap with a greater version, so a version number stands
/// for one content for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVersion {
    pub version: u64,
    pub hash: String,
}

fn tree(store: &Store, name: &str) -> Result<sled::Tree, StoreError> {
    Ok(store.db.open_tree(name)?)
}

fn get<T: serde::de::DeserializeOwned>(t: &sled::Tree, key: &str) -> Result<Option<T>, StoreError> {
    t.get(key.as_bytes())?
        .map(|v| decode(key.as_bytes(), &v))
        .transpose()
}

impl Store {
    pub fn bind_activation_key(&self, key: &str, binding: &KeyBinding) -> Result<(), StoreError> {
        tree(self, "gw_key_bindings")?.insert(key.as_bytes(), encode(binding))?;
        Ok(())
    }

    /// Forgets the activation keys that expired unused more than `grace` ago, with their
    /// bindings to an agent; returns how many. Consumed keys stay, so that reusing one is
    /// answered with the gateway it activated.
    pub fn prune_expired_activation_keys(
        &self,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<usize, StoreError> {
        let bindings = tree(self, "gw_key_bindings")?;
        let mut pruned = 0;
        for entry in self.keys.iter() {
            let (key, value) = entry?;
            let record: ActivationKeyRecord = decode(&key, &value)?;
            if record.state != KeyState::Available || record.expires + grace > now {
                continue;
            }
            // Unless CreateGateway consumed it in the meantime.
            if self
                .keys
                .compare_and_swap(&key, Some(&value), None as Option<&[u8]>)?
                .is_ok()
            {
                bindings.remove(&key)?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    pub fn activation_key_binding(&self, key: &str) -> Result<Option<KeyBinding>, StoreError> {
        get(&tree(self, "gw_key_bindings")?, key)
    }

    pub fn gateway_agent(&self, gateway_arn: &str) -> Result<Option<GatewayAgent>, StoreError> {
        get(&tree(self, "gw_agents")?, gateway_arn)
    }

    /// Records the protocol state of a newly activated gateway, unless one exists already;
    /// returns the record that is stored afterwards.
    pub fn create_gateway_agent(&self, agent: &GatewayAgent) -> Result<GatewayAgent, StoreError> {
        let t = tree(self, "gw_agents")?;
        match t.compare_and_swap(
            agent.gateway_arn.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(agent)),
        )? {
            Ok(()) => Ok(agent.clone()),
            Err(current) => match current.current {
                Some(bytes) => decode(agent.gateway_arn.as_bytes(), &bytes),
                None => Ok(agent.clone()),
            },
        }
    }

    /// Changes a gateway's protocol state with `change`, atomically: `change` runs on the
    /// stored record and runs again if another writer got there first. `None` if the gateway
    /// has no protocol state.
    pub fn update_gateway_agent(
        &self,
        gateway_arn: &str,
        change: &mut dyn FnMut(&mut GatewayAgent),
    ) -> Result<Option<GatewayAgent>, StoreError> {
        let t = tree(self, "gw_agents")?;
        let key = gateway_arn.as_bytes();
        loop {
            let Some(old) = t.get(key)? else {
                return Ok(None);
            };
            let mut agent: GatewayAgent = decode(key, &old)?;
            let before = agent.clone();
            change(&mut agent);
            if agent == before {
                return Ok(Some(agent));
            }
            if t.compare_and_swap(key, Some(&old), Some(encode(&agent)))?
                .is_ok()
            {
                return Ok(Some(agent));
            }
        }
    }

    /// The configuration version of a gateway as last numbered; for a gateway whose version
    /// was kept in its protocol state by an older release, that one.
    pub fn config_version(&self, gateway_arn: &str) -> Result<Option<ConfigVersion>, StoreError> {
        if let Some(v) = get(&tree(self, "gw_config_versions")?, gateway_arn)? {
            return Ok(Some(v));
        }
        Ok(self.gateway_agent(gateway_arn)?.map(|a| ConfigVersion {
            version: a.config_version,
            hash: a.config_hash,
        }))
    }

    /// Replaces the configuration version `seen` (as [`Store::config_version`] returned it)
    /// by `next`. False if another writer changed it since: read again and rebuild.
    pub fn swap_config_version(
        &self,
        gateway_arn: &str,
        seen: Option<&ConfigVersion>,
        next: &ConfigVersion,
    ) -> Result<bool, StoreError> {
        let t = tree(self, "gw_config_versions")?;
        let key = gateway_arn.as_bytes();
        let swapped = match t.get(key)? {
            // Not yet in its own record: `seen` came from the protocol state.
            None => t.compare_and_swap(key, None as Option<&[u8]>, Some(encode(next)))?,
            Some(bytes) => {
                let stored: ConfigVersion = decode(key, &bytes)?;
                if seen != Some(&stored) || next.version <= stored.version {
                    return Ok(false);
                }
                t.compare_and_swap(key, Some(bytes), Some(encode(next)))?
            }
        };
        Ok(swapped.is_ok())
    }

    pub fn gateway_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<GatewayCredential>, StoreError> {
        get(&tree(self, "gw_credentials")?, access_key_id)
    }

    pub fn put_gateway_credential(
        &self,
        access_key_id: &str,
        credential: &GatewayCredential,
    ) -> Result<(), StoreError> {
        tree(self, "gw_credentials")?.insert(access_key_id.as_bytes(), encode(credential))?;
        Ok(())
    }

    pub fn delete_gateway_credential(&self, access_key_id: &str) -> Result<(), StoreError> {
        tree(self, "gw_credentials")?.remove(access_key_id.as_bytes())?;
        Ok(())
    }

    /// Removes the VM with this instance UUID (a VM deleted in vCenter). Absent is fine.
    pub fn delete_vm_by_uuid(
        &self,
        hypervisor_arn: &str,
        instance_uuid: &str,
    ) -> Result<(), StoreError> {
        self.tx(|tx| delete_vm_by_uuid_in(tx, hypervisor_arn, instance_uuid))
    }

    /// Instance UUIDs of every VM recorded under a hypervisor.
    pub fn vm_uuids(&self, hypervisor_arn: &str) -> Result<Vec<String>, StoreError> {
        let prefix = vm_index_key(hypervisor_arn, "");
        let mut out = Vec::new();
        for entry in self.vm_index.scan_prefix(prefix.as_bytes()) {
            let (k, _) = entry?;
            out.push(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Records that a sync mentioned these VMs.
    pub fn sync_seen(&self, sync_id: &str, uuids: &[String]) -> Result<(), StoreError> {
        self.tx(|tx| sync_seen_in(tx, sync_id, uuids))
    }

    /// The VMs a sync mentioned (read outside any transaction: sled transactions cannot
    /// scan).
    pub(crate) fn sync_seen_keys(&self, sync_id: &str) -> Result<Vec<sled::IVec>, StoreError> {
        let prefix = sync_seen_key(sync_id, "");
        let mut out = Vec::new();
        for entry in self.sync_seen.scan_prefix(prefix.as_bytes()) {
            out.push(entry?.0);
        }
        Ok(out)
    }

    /// The VMs a sync mentioned, and forgets them.
    pub fn take_sync_seen(&self, sync_id: &str) -> Result<BTreeSet<String>, StoreError> {
        let keys = self.sync_seen_keys(sync_id)?;
        let prefix_len = sync_seen_key(sync_id, "").len();
        self.tx(|tx| {
            for k in &keys {
                tx.sync_seen.remove(k)?;
            }
            Ok(())
        })?;
        Ok(keys
            .iter()
            .map(|k| String::from_utf8_lossy(&k[prefix_len..]).into_owned())
            .collect())
    }

    /// Marks a sync completed; false if it already was (a retried final batch).
    pub fn complete_sync(&self, sync_id: &str) -> Result<bool, StoreError> {
        self.tx(|tx| complete_sync_in(tx, sync_id))
    }

    pub fn sync_completed(&self, sync_id: &str) -> Result<bool, StoreError> {
        Ok(self.syncs_done.contains_key(sync_id.as_bytes())?)
    }
}

pub(crate) fn sync_seen_key(sync_id: &str, instance_uuid: &str) -> String {
    format!("{sync_id}\0{instance_uuid}")
}

pub(crate) fn delete_vm_by_uuid_in(
    tx: &Tx<'_>,
    hypervisor_arn: &str,
    instance_uuid: &str,
) -> TxResult<()> {
    let index_key = vm_index_key(hypervisor_arn, instance_uuid);
    if let Some(vm_arn) = tx.vm_index.remove(index_key.as_bytes())? {
        tx.vms.remove(vm_arn.as_ref())?;
        tx.tags.remove(vm_arn.as_ref())?;
    }
    Ok(())
}

pub(crate) fn sync_seen_in(tx: &Tx<'_>, sync_id: &str, uuids: &[String]) -> TxResult<()> {
    for uuid in uuids {
        tx.sync_seen
            .insert(sync_seen_key(sync_id, uuid).as_bytes(), &[])?;
    }
    Ok(())
}

pub(crate) fn sync_completed_in(tx: &Tx<'_>, sync_id: &str) -> TxResult<bool> {
    Ok(tx.syncs_done.get(sync_id.as_bytes())?.is_some())
}

pub(crate) fn complete_sync_in(tx: &Tx<'_>, sync_id: &str) -> TxResult<bool> {
    if sync_completed_in(tx, sync_id)? {
        return Ok(false);
    }
    tx.syncs_done.insert(sync_id.as_bytes(), &[1u8][..])?;
    Ok(true)
}
