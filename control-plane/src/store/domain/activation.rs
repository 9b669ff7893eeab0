//! One-time activation keys.

use chrono::{DateTime, Utc};

use crate::store::{ActivationKeyRecord, KeyBinding, Store, StoreError};

/// Activation keys a gateway asked for, and the agent each one is handed to.
pub trait ActivationKeys: Send + Sync {
    fn insert_activation_key(&self, record: &ActivationKeyRecord) -> Result<(), StoreError>;

    fn get_activation_key(&self, key: &str) -> Result<Option<ActivationKeyRecord>, StoreError>;

    fn bind_activation_key(&self, key: &str, binding: &KeyBinding) -> Result<(), StoreError>;

    fn activation_key_binding(&self, key: &str) -> Result<Option<KeyBinding>, StoreError>;

    /// Forgets the keys that expired unused more than `grace` before `now`, with their
    /// bindings; returns how many. Consumed keys stay.
    fn prune_expired_activation_keys(
        &self,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<usize, StoreError>;
}

impl ActivationKeys for Store {
    fn insert_activation_key(&self, record: &ActivationKeyRecord) -> Result<(), StoreError> {
        Store::insert_activation_key(self, record)
    }

    fn get_activation_key(&self, key: &str) -> Result<Option<ActivationKeyRecord>, StoreError> {
        Store::get_activation_key(self, key)
    }

    fn bind_activation_key(&self, key: &str, binding: &KeyBinding) -> Result<(), StoreError> {
        Store::bind_activation_key(self, key, binding)
    }

    fn activation_key_binding(&self, key: &str) -> Result<Option<KeyBinding>, StoreError> {
        Store::activation_key_binding(self, key)
    }

    fn prune_expired_activation_keys(
        &self,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<usize, StoreError> {
        Store::prune_expired_activation_keys(self, now, grace)
    }
}
