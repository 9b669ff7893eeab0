//! State the daemon's tasks share while running (not persisted: the store holds what must
//! survive a restart).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use bgw_protocol::config::GatewayConfig;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::clock::CloudTime;
use crate::hypervisor_board::HypervisorBoard;
use crate::metrics::Metrics;
use crate::state::{Activated, Store};

/// The last metadata sync, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// `CREATED`, `RUNNING`, `SUCCEEDED`, `PARTIALLY_FAILED` or `FAILED`; `None` before any sync.
    pub last_status: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_message: Option<String>,
    pub vms: Option<u64>,
}

/// Store key of the persisted [`SyncSummary`].
pub const SYNC_SUMMARY_KEY: &str = "sync_summary";

/// Everything the daemon's tasks share.
pub struct Runtime {
    pub store: Store,
    pub time: CloudTime,
    pub timezone: chrono_tz::Tz,
    pub metrics: Metrics,
    pub started: Instant,
    pub heartbeat_interval: std::time::Duration,
    /// `Some` once activated; tasks that need credentials wait on it.
    pub activated: watch::Sender<Option<Activated>>,
    /// The configuration applied last.
    pub config: watch::Sender<GatewayConfig>,
    /// Wakes the configuration task (heartbeat saw a newer version, or a command said so).
    pub config_changed: Notify,
    /// Wakes the outbox task (something was queued).
    pub outbox_changed: Notify,
    pub last_heartbeat: RwLock<Option<DateTime<Utc>>>,
    pub last_cloud_error: RwLock<Option<String>>,
    /// The hypervisor state, fenced by connection generation.
    pub hypervisor: HypervisorBoard,
    pub sync: RwLock<SyncSummary>,
    /// The upload throttle every upload draws from (see `bandwidth`).
    pub throttle: bgw_scheduler::throttle::Throttle,
}

impl Runtime {
    pub fn new(
        store: Store,
        time: CloudTime,
        timezone: chrono_tz::Tz,
        heartbeat_interval: std::time::Duration,
    ) -> crate::Result<Arc<Self>> {
        let activated = store.activated()?;
        let config = store.config()?;
        let sync = store
            .value::<SyncSummary>(SYNC_SUMMARY_KEY)?
            .unwrap_or_default();
        Ok(Arc::new(Self {
            store,
            time,
            timezone,
            metrics: Metrics::new(),
            started: Instant::now(),
            heartbeat_interval,
            activated: watch::channel(activated).0,
            config: watch::channel(config).0,
            config_changed: Notify::new(),
            outbox_changed: Notify::new(),
            last_heartbeat: RwLock::new(None),
            last_cloud_error: RwLock::new(None),
            hypervisor: HypervisorBoard::new(),
            sync: RwLock::new(sync),
            throttle: bgw_scheduler::throttle::Throttle::new(None),
        }))
    }

    pub fn activated(&self) -> Option<Activated> {
        self.activated.borrow().clone()
    }

    /// Records the outcome of a sync (used by the metadata sync) and persists it.
    pub fn set_sync(&self, summary: SyncSummary) -> crate::Result<()> {
        self.store.set_value(SYNC_SUMMARY_KEY, Some(&summary))?;
        *self.sync.write().expect("runtime lock") = summary;
        Ok(())
    }

    pub fn cloud_ok(&self) {
        *self.last_cloud_error.write().expect("runtime lock") = None;
    }

    pub fn cloud_failed(&self, error: &crate::Error) {
        self.metrics.error(error.kind());
        *self.last_cloud_error.write().expect("runtime lock") = Some(error.to_string());
    }
}
