//! The agent's standing with the cloud: whether (and as what) it is activated, when the
//! last heartbeat was answered, and the last error talking to the cloud.
//!
//! Tasks that need credentials wait on [`CloudLink::watch_activated`]; every task that talks
//! to the cloud reports its outcome with [`CloudLink::ok`] or [`CloudLink::failed`], which
//! `status` shows.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::cloud::CloudClient;
use crate::metrics::Metrics;
use crate::state::{Activated, Store};

pub struct CloudLink {
    store: Store,
    metrics: Arc<Metrics>,
    /// `Some` once activated.
    activated: watch::Sender<Option<Activated>>,
    last_heartbeat: RwLock<Option<DateTime<Utc>>>,
    last_error: RwLock<Option<String>>,
}

impl CloudLink {
    /// Starts from the activation the store holds.
    pub fn load(store: Store, metrics: Arc<Metrics>) -> crate::Result<Arc<Self>> {
        let activated = store.activated()?;
        Ok(Arc::new(Self {
            store,
            metrics,
            activated: watch::channel(activated).0,
            last_heartbeat: RwLock::new(None),
            last_error: RwLock::new(None),
        }))
    }

    pub fn activated(&self) -> Option<Activated> {
        self.activated.borrow().clone()
    }

    /// Sees every change of the activation (activated, credentials rotated).
    pub fn watch_activated(&self) -> watch::Receiver<Option<Activated>> {
        self.activated.subscribe()
    }

    /// Stores `activated`, has `cloud` sign with its credentials, then makes it the current
    /// activation (so tasks woken by it find the credentials in use). Nothing changes when it
    /// cannot be stored.
    pub fn set_activated(&self, activated: Activated, cloud: &CloudClient) -> crate::Result<()> {
        self.store.set_activated(&activated)?;
        cloud.set_credentials(Some(activated.credentials.clone()));
        self.activated.send_replace(Some(activated));
        Ok(())
    }

    /// The cloud answered a heartbeat at `at`.
    pub fn heartbeat_answered(&self, at: DateTime<Utc>) {
        *self.last_heartbeat.write().expect("cloud link lock") = Some(at);
        self.ok();
    }

    pub fn last_heartbeat(&self) -> Option<DateTime<Utc>> {
        *self.last_heartbeat.read().expect("cloud link lock")
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().expect("cloud link lock").clone()
    }

    /// A call to the cloud succeeded.
    pub fn ok(&self) {
        *self.last_error.write().expect("cloud link lock") = None;
    }

    /// A call to the cloud failed with `error`.
    pub fn failed(&self, error: &crate::Error) {
        self.metrics.error(error.kind());
        *self.last_error.write().expect("cloud link lock") = Some(error.to_string());
    }
}
