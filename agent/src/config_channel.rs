//! The configuration applied last, and the doorbell of the task that pulls a newer one.
//!
//! The configuration task publishes what it applied; readers (heartbeat, bandwidth, status)
//! borrow or watch it. The heartbeat and the `CONFIG_CHANGED` command ring [`wake`] when the
//! cloud holds a newer version.
//!
//! [`wake`]: ConfigChannel::wake

use std::sync::Arc;

use bgw_protocol::config::GatewayConfig;
use tokio::sync::{watch, Notify};

pub struct ConfigChannel {
    applied: watch::Sender<GatewayConfig>,
    changed: Notify,
}

impl ConfigChannel {
    pub fn new(applied: GatewayConfig) -> Arc<Self> {
        Arc::new(Self {
            applied: watch::channel(applied).0,
            changed: Notify::new(),
        })
    }

    /// The configuration applied last.
    pub fn current(&self) -> GatewayConfig {
        self.applied.borrow().clone()
    }

    /// Reads the applied configuration without copying it; do not hold it across an await.
    pub fn borrow(&self) -> watch::Ref<'_, GatewayConfig> {
        self.applied.borrow()
    }

    /// Sees every configuration applied from now on.
    pub fn subscribe(&self) -> watch::Receiver<GatewayConfig> {
        self.applied.subscribe()
    }

    /// Makes `config` the applied configuration.
    pub fn publish(&self, config: GatewayConfig) {
        self.applied.send_replace(config);
    }

    /// The cloud holds a newer configuration: wakes the configuration task.
    pub fn wake(&self) {
        self.changed.notify_one();
    }

    /// Returns when [`Self::wake`] was called (also for a call made before this one).
    pub async fn woken(&self) {
        self.changed.notified().await
    }
}
