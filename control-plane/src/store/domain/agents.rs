//! Protocol state of activated gateways.

use crate::store::{ConfigVersion, GatewayAgent, GatewayCredential, Store, StoreError};

/// Protocol state of activated gateways: their record, their access keys and the version of
/// their configuration.
pub trait GatewayAgents: Send + Sync {
    fn gateway_agent(&self, gateway_arn: &str) -> Result<Option<GatewayAgent>, StoreError>;

    /// Stores `agent` unless the gateway has one already; returns the stored record.
    fn create_gateway_agent(&self, agent: &GatewayAgent) -> Result<GatewayAgent, StoreError>;

    /// Read-modify-write of the stored record; `change` may run more than once.
    fn update_gateway_agent(
        &self,
        gateway_arn: &str,
        change: &mut dyn FnMut(&mut GatewayAgent),
    ) -> Result<Option<GatewayAgent>, StoreError>;

    fn gateway_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<GatewayCredential>, StoreError>;

    fn put_gateway_credential(
        &self,
        access_key_id: &str,
        credential: &GatewayCredential,
    ) -> Result<(), StoreError>;

    fn delete_gateway_credential(&self, access_key_id: &str) -> Result<(), StoreError>;

    fn config_version(&self, gateway_arn: &str) -> Result<Option<ConfigVersion>, StoreError>;

    /// Replaces `seen` by `next` if nobody changed it since; false otherwise.
    fn swap_config_version(
        &self,
        gateway_arn: &str,
        seen: Option<&ConfigVersion>,
        next: &ConfigVersion,
    ) -> Result<bool, StoreError>;

    /// Makes what was written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

impl GatewayAgents for Store {
    fn gateway_agent(&self, gateway_arn: &str) -> Result<Option<GatewayAgent>, StoreError> {
        Store::gateway_agent(self, gateway_arn)
    }

    fn create_gateway_agent(&self, agent: &GatewayAgent) -> Result<GatewayAgent, StoreError> {
        Store::create_gateway_agent(self, agent)
    }

    fn update_gateway_agent(
        &self,
        gateway_arn: &str,
        change: &mut dyn FnMut(&mut GatewayAgent),
    ) -> Result<Option<GatewayAgent>, StoreError> {
        Store::update_gateway_agent(self, gateway_arn, change)
    }

    fn gateway_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<GatewayCredential>, StoreError> {
        Store::gateway_credential(self, access_key_id)
    }

    fn put_gateway_credential(
        &self,
        access_key_id: &str,
        credential: &GatewayCredential,
    ) -> Result<(), StoreError> {
        Store::put_gateway_credential(self, access_key_id, credential)
    }

    fn delete_gateway_credential(&self, access_key_id: &str) -> Result<(), StoreError> {
        Store::delete_gateway_credential(self, access_key_id)
    }

    fn config_version(&self, gateway_arn: &str) -> Result<Option<ConfigVersion>, StoreError> {
        Store::config_version(self, gateway_arn)
    }

    fn swap_config_version(
        &self,
        gateway_arn: &str,
        seen: Option<&ConfigVersion>,
        next: &ConfigVersion,
    ) -> Result<bool, StoreError> {
        Store::swap_config_version(self, gateway_arn, seen, next)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Store::flush(self)
    }
}
