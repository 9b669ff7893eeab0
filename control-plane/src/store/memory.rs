//! In-memory implementations of the domain stores, for tests of the services.

use std::collections::HashMap;
use std::sync::Mutex;

use super::domain::GatewayAgents;
use super::{ConfigVersion, GatewayAgent, GatewayCredential, StoreError};

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
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
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
