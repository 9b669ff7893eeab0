//! Per-gateway command queues, liveness and synchronous command results.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgw_protocol::commands::{Command, CommandKind, CommandOutcome};
use bgw_protocol::heartbeat::MISSED_HEARTBEATS_OFFLINE;
use futures::future::BoxFuture;
use tokio::sync::{oneshot, Notify};

use crate::api::error::{ApiError, ErrorKind};
use crate::link::{GatewayLink, HypervisorTest};

/// How long `TestHypervisorConfiguration` waits for the gateway's answer.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Heartbeat interval assumed until a gateway reports its own.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Channel {
    queue: VecDeque<Command>,
    notify: Arc<Notify>,
    last_contact: Option<Instant>,
    interval: Option<Duration>,
    waiters: HashMap<String, oneshot::Sender<CommandOutcome>>,
    /// Commands delivered whose result the API wants to record (sync id per command).
    pending_syncs: HashMap<String, String>,
}

/// Cheap to clone; all clones share the same queues.
#[derive(Clone, Default)]
pub struct GatewayHub {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl GatewayHub {
    fn with<T>(&self, gateway_arn: &str, f: impl FnOnce(&mut Channel) -> T) -> T {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        f(channels.entry(gateway_arn.to_string()).or_default())
    }

    fn with_all<T>(&self, f: impl FnOnce(&HashMap<String, Channel>) -> T) -> T {
        f(&self.channels.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The gateway talked to us (heartbeat or poll).
    pub fn contact(&self, gateway_arn: &str, interval: Option<Duration>) {
        self.with(gateway_arn, |c| {
            c.last_contact = Some(Instant::now());
            if interval.is_some() {
                c.interval = interval;
            }
        });
    }

    /// Online: heard from within `MISSED_HEARTBEATS_OFFLINE` heartbeat intervals.
    pub fn is_online(&self, gateway_arn: &str) -> bool {
        self.with(gateway_arn, |c| {
            let limit = c.interval.unwrap_or(DEFAULT_INTERVAL) * MISSED_HEARTBEATS_OFFLINE;
            c.last_contact.is_some_and(|t| t.elapsed() <= limit)
        })
    }

    /// Queues a command and wakes the gateway's long-poll. Returns the command id.
    pub fn push(&self, gateway_arn: &str, kind: CommandKind) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let command = Command {
            id: id.clone(),
            issued_at: chrono::Utc::now(),
            kind,
        };
        let notify = self.with(gateway_arn, |c| {
            c.queue.push_back(command);
            c.notify.clone()
        });
        notify.notify_one();
        id
    }

    /// Queues a command like [`Self::push`] and returns a receiver of its result, whenever the
    /// gateway sends it (the receiver is dropped unanswered if the gateway never does).
    pub fn push_watched(
        &self,
        gateway_arn: &str,
        kind: CommandKind,
    ) -> (String, oneshot::Receiver<CommandOutcome>) {
        let (tx, rx) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        let command = Command {
            id: id.clone(),
            issued_at: chrono::Utc::now(),
            kind,
        };
        let notify = self.with(gateway_arn, |c| {
            c.waiters.insert(id.clone(), tx);
            c.queue.push_back(command);
            c.notify.clone()
        });
        notify.notify_one();
        (id, rx)
    }

    /// Takes the queued commands, or waits up to `wait` for one. Returns early, possibly
    /// with nothing, when the gateway's configuration may have changed, so that the caller
    /// looks at it.
    pub async fn take(&self, gateway_arn: &str, wait: Duration) -> Vec<Command> {
        let (commands, notify) = self.with(gateway_arn, |c| {
            (c.queue.drain(..).collect::<Vec<_>>(), c.notify.clone())
        });
        if !commands.is_empty() {
            return commands;
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            // A change made by another instance of the store's users is seen within a second.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        self.with(gateway_arn, |c| c.queue.drain(..).collect())
    }

    /// The configuration of some gateways may have changed: wakes every waiting long-poll.
    pub fn wake_all(&self) {
        let notifies: Vec<Arc<Notify>> =
            self.with_all(|channels| channels.values().map(|c| c.notify.clone()).collect());
        for notify in notifies {
            notify.notify_one();
        }
    }

    /// A result arrived; wakes whoever waits for it. Returns true if someone did.
    pub fn complete(&self, gateway_arn: &str, command_id: &str, outcome: CommandOutcome) -> bool {
        let waiter = self.with(gateway_arn, |c| c.waiters.remove(command_id));
        match waiter {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Queues a command and waits for its result, bounded by `timeout`.
    pub async fn call(
        &self,
        gateway_arn: &str,
        kind: CommandKind,
        timeout: Duration,
    ) -> Result<CommandOutcome, ApiError> {
        if !self.is_online(gateway_arn) {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "gateway {gateway_arn} is offline (no heartbeat for {MISSED_HEARTBEATS_OFFLINE} intervals); \
                     check that the gateway VM is running and can reach the cloud"
                ),
            ));
        }
        let (tx, rx) = oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        let command = Command {
            id: id.clone(),
            issued_at: chrono::Utc::now(),
            kind,
        };
        let notify = self.with(gateway_arn, |c| {
            c.waiters.insert(id.clone(), tx);
            c.queue.push_back(command);
            c.notify.clone()
        });
        notify.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => {
                self.with(gateway_arn, |c| {
                    c.waiters.remove(&id);
                    c.queue.retain(|q| q.id != id);
                });
                Err(ApiError::new(
                    ErrorKind::InternalServer,
                    format!(
                        "gateway {gateway_arn} did not answer within {} s; try again",
                        timeout.as_secs()
                    ),
                ))
            }
        }
    }

    /// Remembers which hypervisor a sync command was for, to record a failure result.
    pub fn note_sync(&self, gateway_arn: &str, command_id: &str, hypervisor_arn: &str) {
        self.with(gateway_arn, |c| {
            c.pending_syncs
                .insert(command_id.to_string(), hypervisor_arn.to_string())
        });
    }

    pub fn take_sync(&self, gateway_arn: &str, command_id: &str) -> Option<String> {
        self.with(gateway_arn, |c| c.pending_syncs.remove(command_id))
    }
}

impl GatewayLink for GatewayHub {
    fn test_hypervisor(&self, test: HypervisorTest) -> BoxFuture<'static, Result<(), ApiError>> {
        let hub = self.clone();
        Box::pin(async move {
            let kind = CommandKind::TestHypervisor {
                host: test.host.clone(),
                username: test.username.map(|u| u.expose().to_string()),
                password: test.password,
            };
            match hub.call(&test.gateway_arn, kind, TEST_TIMEOUT).await? {
                CommandOutcome::Succeeded => Ok(()),
                CommandOutcome::Failed { stage, message } => Err(ApiError::validation(format!(
                    "the gateway could not use hypervisor {}: {stage} check failed: {message}",
                    test.host
                ))),
            }
        })
    }

    fn metadata_sync_requested(&self, gateway_arn: Option<&str>, hypervisor_arn: &str) {
        if let Some(gateway_arn) = gateway_arn {
            let id = self.push(
                gateway_arn,
                CommandKind::SyncMetadata {
                    hypervisor_arn: hypervisor_arn.to_string(),
                },
            );
            self.note_sync(gateway_arn, &id, hypervisor_arn);
        }
    }

    fn software_update_requested(&self, gateway_arn: &str) {
        self.push(gateway_arn, CommandKind::UpdateNow);
    }

    fn configuration_changed(&self) {
        self.wake_all();
    }

    fn gateway_hub(&self) -> Option<GatewayHub> {
        Some(self.clone())
    }
}
