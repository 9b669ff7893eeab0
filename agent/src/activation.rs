//! Activation: obtaining a key bound to this installation, and collecting the gateway
//! credentials once `CreateGateway` consumes it.
//!
//! The operator-facing HTTP endpoint lives in [`crate::endpoints::activation`]; this module
//! holds the logic it and the admin endpoint share.

use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::activation::{ActivationRequest, ActivationStatus, ActivationWait, GatewayType};
use chrono::Utc;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::clock::CloudTime;
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::error::Error;
use crate::state::{Activated, Identity, PendingActivation, Store};

/// The only gateway type the API knows.
pub const GATEWAY_TYPE: &str = "BACKUP_VM";
/// A held key is handed out again only if it stays valid at least this long.
const MIN_REMAINING: chrono::Duration = chrono::Duration::minutes(2);
/// Bound on how long the operator waits for a key while the cloud is slow.
const KEY_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Long-poll duration of `activation/wait`.
const WAIT_SECONDS: u32 = 20;

/// Why no key could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("this gateway is already activated as {0}")]
    AlreadyActivated(String),
    #[error("activationRegion is missing; valid regions: {}", valid.join(", "))]
    MissingRegion { valid: Vec<String> },
    #[error("activationRegion {given:?} is not served by this gateway's cloud endpoint; valid regions: {}", valid.join(", "))]
    UnknownRegion { given: String, valid: Vec<String> },
    #[error("gatewayType {0:?} is not supported; the only valid type is BACKUP_VM")]
    BadGatewayType(String),
    #[error("the gateway cannot reach the cloud to obtain an activation key: {0}")]
    CloudUnavailable(String),
    #[error("the cloud refused to issue an activation key: {0}")]
    Refused(String),
}

impl KeyError {
    /// HTTP status for the activation and admin endpoints.
    pub fn status(&self) -> u16 {
        match self {
            KeyError::AlreadyActivated(_) => 409,
            KeyError::MissingRegion { .. }
            | KeyError::UnknownRegion { .. }
            | KeyError::BadGatewayType(_) => 400,
            KeyError::CloudUnavailable(_) => 503,
            KeyError::Refused(_) => 502,
        }
    }
}

pub struct Activation {
    link: Arc<CloudLink>,
    /// Holds the pending key.
    store: Store,
    time: CloudTime,
    cloud: CloudClient,
    identity: Identity,
    hostname: String,
    /// One key request at a time: concurrent browsers get the same key.
    request_lock: Mutex<()>,
    /// Wakes the waiter when a new key is held.
    key_held: Notify,
}

impl Activation {
    pub fn new(
        link: Arc<CloudLink>,
        store: Store,
        time: CloudTime,
        cloud: CloudClient,
        identity: Identity,
        hostname: String,
    ) -> Self {
        Self {
            link,
            store,
            time,
            cloud,
            identity,
            hostname,
            request_lock: Mutex::new(()),
            key_held: Notify::new(),
        }
    }

    pub fn valid_regions(&self) -> Vec<String> {
        vec![self.cloud.region().to_string()]
    }

    /// A key for `region`: the one already held if it is still fresh, else a new one.
    pub async fn key(
        &self,
        region: Option<&str>,
        gateway_type: Option<&str>,
    ) -> Result<PendingActivation, KeyError> {
        if let Some(a) = self.link.activated() {
            return Err(KeyError::AlreadyActivated(a.gateway_arn));
        }
        let valid = self.valid_regions();
        let region = match region.map(str::trim) {
            None | Some("") => return Err(KeyError::MissingRegion { valid }),
            Some(r) if !valid.iter().any(|v| v == r) => {
                return Err(KeyError::UnknownRegion {
                    given: r.to_string(),
                    valid,
                })
            }
            Some(r) => r.to_string(),
        };
        if let Some(t) = gateway_type {
            if t != GATEWAY_TYPE {
                return Err(KeyError::BadGatewayType(t.to_string()));
            }
        }
        let _guard = self.request_lock.lock().await;
        let now = self.time.now_utc();
        if let Ok(Some(held)) = self.store.pending_activation() {
            if held.region == region && held.expires_at - now > MIN_REMAINING {
                return Ok(held);
            }
        }
        let request = ActivationRequest {
            agent_id: self.identity.agent_id.clone(),
            agent_secret_sha256: self.identity.secret_sha256(),
            agent_version: crate::version().to_string(),
            hostname: self.hostname.clone(),
            region: region.clone(),
            gateway_type: GatewayType::BackupVm,
        };
        let issued = match tokio::time::timeout(
            KEY_REQUEST_TIMEOUT,
            self.cloud.request_activation_key(&request),
        )
        .await
        {
            Err(_) => {
                return Err(KeyError::CloudUnavailable(format!(
                    "no answer from {} within {} s",
                    self.cloud.endpoint(),
                    KEY_REQUEST_TIMEOUT.as_secs()
                )))
            }
            Ok(Err(e)) if e.is_transient() => {
                self.link.failed(&e);
                return Err(KeyError::CloudUnavailable(e.to_string()));
            }
            Ok(Err(e)) => {
                self.link.failed(&e);
                return Err(KeyError::Refused(e.to_string()));
            }
            Ok(Ok(issued)) => issued,
        };
        self.link.ok();
        let held = PendingActivation {
            activation_key: issued.activation_key,
            region,
            expires_at: issued.expires_at,
        };
        self.store
            .set_pending_activation(Some(&held))
            .map_err(|e| KeyError::Refused(format!("cannot record the key: {e}")))?;
        tracing::info!(expires_at = %held.expires_at, "activation key issued");
        self.key_held.notify_one();
        Ok(held)
    }

    /// Long-polls the cloud for the key held until `CreateGateway` consumes it, then stores the
    /// gateway's identity and credentials. Returns once activated or on shutdown.
    pub async fn run_waiter(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut rng = rand::rngs::StdRng::from_entropy();
        loop {
            if self.link.activated().is_some() {
                return;
            }
            let held = self.store.pending_activation().ok().flatten();
            let Some(held) =
                held.filter(|h| h.expires_at > Utc::now() - chrono::Duration::minutes(1))
            else {
                // Nothing to wait for until someone asks for a key.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.key_held.notified() => continue,
                    _ = tokio::time::sleep(Duration::from_secs(30)) => continue,
                }
            };
            let wait = ActivationWait {
                agent_id: self.identity.agent_id.clone(),
                agent_secret: self.identity.agent_secret.clone(),
                activation_key: held.activation_key.clone(),
                wait_seconds: WAIT_SECONDS,
            };
            let answer = tokio::select! {
                _ = shutdown.cancelled() => return,
                answer = self.cloud.wait_activation(&wait) => answer,
            };
            match answer {
                Ok(ActivationStatus::Pending { .. }) => {
                    backoff.reset();
                    self.link.ok();
                }
                Ok(ActivationStatus::Activated {
                    gateway_arn,
                    region,
                    credentials,
                }) => {
                    let activated = Activated {
                        gateway_arn,
                        region,
                        credentials,
                        activated_at: self.time.now_utc(),
                    };
                    let gateway_arn = activated.gateway_arn.clone();
                    if let Err(e) = self.link.set_activated(activated, &self.cloud) {
                        tracing::error!(error = %e, "cannot store the gateway credentials; retrying");
                        sleep_or_cancel(&shutdown, backoff.next_delay(&mut rng)).await;
                        continue;
                    }
                    self.link.ok();
                    tracing::info!(%gateway_arn, "gateway activated");
                    return;
                }
                Err(Error::CloudRefused {
                    status: 404 | 410,
                    message,
                    ..
                }) => {
                    tracing::warn!(reason = %message, "activation key no longer valid; dropping it");
                    let still_same = self.store.pending_activation().ok().flatten();
                    if still_same.as_ref() == Some(&held) {
                        let _ = self.store.set_pending_activation(None);
                    }
                }
                Err(e) => {
                    self.link.failed(&e);
                    let delay = backoff.next_delay(&mut rng);
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "waiting for activation failed");
                    if sleep_or_cancel(&shutdown, delay).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Sleeps; true when shutdown was requested meanwhile.
pub async fn sleep_or_cancel(shutdown: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

use rand::SeedableRng;
