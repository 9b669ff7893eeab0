//! The gateway's link to VMware vCenter: the [`HypervisorLink`] built on `vsphere-client`.
//!
//! * **Connection.** Trust on first use: the first connection records the certificate's
//!   SHA-256 thumbprint, later ones pin it; a changed certificate puts the hypervisor in
//!   `ERROR` with both thumbprints in the message until `bgw-agent vcenter retrust`.
//! * **State.** `ONLINE` while connected, `OFFLINE` when vCenter cannot be reached over the
//!   network, `ERROR` for TLS, authentication and privilege failures (see [`diagnose`]).
//! * **Metadata sync.** After each (re)connection, on `StartVirtualMachinesMetadataSync` and
//!   periodically: every VM and its tags, mapped to AWS tags, uploaded in batches through the
//!   store's outbox ([`sync`]). Between syncs the change watch pushes additions, renames,
//!   moves and removals within seconds ([`watch`]).
//!
//! ```no_run
//! # async fn example(config: bgw_agent::Config) -> bgw_agent::Result<()> {
//! use std::sync::Arc;
//! use bgw_agent::daemon::{run_with, Components};
//! use bgw_agent::vcenter_link::VcenterLink;
//!
//! let components = Components {
//!     hypervisor: Arc::new(VcenterLink::default()),
//!     ..Components::default()
//! };
//! run_with(config, components, tokio_util::sync::CancellationToken::new()).await
//! # }
//! ```

pub mod diagnose;
pub mod known;
pub mod records;
pub mod session;
pub mod sync;
pub mod trust;
pub mod watch;

use std::sync::Mutex;
use std::time::Duration;

use bgw_protocol::commands::{CommandOutcome, TestStage};
use bgw_protocol::config::HypervisorConfig;
use bgw_protocol::heartbeat::HypervisorStatus;
use bgw_protocol::Secret;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hypervisor::{HypervisorEnv, HypervisorLink};
use crate::hypervisor_board::Generation;
use crate::jobs::JobRunner;
use session::Request;
use trust::TrustStore;

/// Tunables of the link; the defaults suit production.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// VMs per uploaded batch.
    pub batch_size: usize,
    /// VMs per page of the vCenter listing.
    pub page_size: usize,
    /// A full sync runs this long after the previous one even without a request.
    pub periodic_sync: Duration,
    /// vCenter drops idle sessions after ~30 minutes; a cheap call this often keeps the
    /// session and notices a vCenter that went away.
    pub keepalive: Duration,
    /// Changes arriving within this time are uploaded together.
    pub watch_debounce: Duration,
    /// Tag attachments are compared with what was uploaded this often; tags are not in
    /// vCenter's change feed.
    pub tag_check: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
}

impl LinkOptions {
    /// The defaults with the intervals of the `[vcenter]` configuration section.
    pub fn from_config(c: &crate::config::VcenterConfig) -> Self {
        Self {
            periodic_sync: c.sync_interval,
            tag_check: c.tag_check_interval,
            ..Self::default()
        }
    }
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            page_size: 1000,
            periodic_sync: Duration::from_secs(3600),
            keepalive: Duration::from_secs(15),
            watch_debounce: Duration::from_millis(250),
            tag_check: Duration::from_secs(300),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// What a sync or the watch works with: where it reports, the hypervisor and the options.
#[derive(Clone)]
pub struct Ctx {
    pub env: HypervisorEnv,
    pub hv: HypervisorConfig,
    pub opts: LinkOptions,
    /// The connection generation this context reports under (see [`HypervisorBoard`]).
    ///
    /// [`HypervisorBoard`]: crate::hypervisor_board::HypervisorBoard
    pub generation: Generation,
    /// Where full syncs run.
    pub jobs: JobRunner,
}

/// How long a replaced connection gets to stop (log out of vCenter) before its successor
/// connects anyway. Its state reports are fenced either way.
pub const STOP_BOUND: Duration = Duration::from_secs(10);

struct Running {
    hypervisor_arn: String,
    requests: mpsc::Sender<Request>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Waits for a replaced connection to end, at most [`STOP_BOUND`].
async fn await_stopped(task: JoinHandle<()>) {
    if tokio::time::timeout(STOP_BOUND, task).await.is_err() {
        tracing::warn!(
            bound_s = STOP_BOUND.as_secs(),
            "the previous vCenter connection did not stop in time; connecting anyway"
        );
    }
}

/// The vCenter [`HypervisorLink`]: one connection task per associated hypervisor.
#[derive(Default)]
pub struct VcenterLink {
    opts: LinkOptions,
    running: Mutex<Option<Running>>,
    /// The current configuration, for tests that leave out the credentials.
    config: Mutex<Option<HypervisorConfig>>,
    trust: Mutex<Option<TrustStore>>,
    jobs: Mutex<Option<JobRunner>>,
}

impl VcenterLink {
    pub fn new(opts: LinkOptions) -> Self {
        Self {
            opts,
            running: Mutex::new(None),
            config: Mutex::new(None),
            trust: Mutex::new(None),
            jobs: Mutex::new(None),
        }
    }

    /// Cancels the running connection and hands back its task, to be awaited.
    fn stop_running(&self) -> Option<JoinHandle<()>> {
        let old = self.running.lock().expect("link lock").take()?;
        old.cancel.cancel();
        Some(old.task)
    }
}

impl Drop for VcenterLink {
    fn drop(&mut self) {
        let _ = self.stop_running();
    }
}

impl HypervisorLink for VcenterLink {
    fn apply(
        &self,
        env: HypervisorEnv,
        jobs: JobRunner,
        config: Option<HypervisorConfig>,
    ) -> BoxFuture<'static, ()> {
        let previous = self.stop_running();
        let trust = TrustStore::new(env.store.clone());
        *self.trust.lock().expect("link lock") = Some(trust.clone());
        *self.config.lock().expect("link lock") = config.clone();
        *self.jobs.lock().expect("link lock") = Some(jobs.clone());
        // From here on the replaced connection's reports are dropped.
        let Some(hv) = config else {
            env.board.begin(HypervisorStatus::default());
            return Box::pin(async move {
                if let Some(previous) = previous {
                    await_stopped(previous).await;
                }
            });
        };
        tracing::info!(hypervisor = %hv.hypervisor_arn, host = %hv.host, "hypervisor configured");
        let generation = env.board.begin(HypervisorStatus {
            hypervisor_arn: Some(hv.hypervisor_arn.clone()),
            state: bgw_protocol::heartbeat::HypervisorState::Pending,
            message: Some("connecting".into()),
        });
        let (tx, rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let ctx = Ctx {
            env,
            hv: hv.clone(),
            opts: self.opts.clone(),
            generation,
            jobs: jobs.clone(),
        };
        // The new connection starts once the old one has logged out; requests sent
        // meanwhile wait in the channel.
        let task = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                if let Some(previous) = previous {
                    await_stopped(previous).await;
                }
                session::run(ctx, trust, rx, cancel).await
            }
        });
        *self.running.lock().expect("link lock") = Some(Running {
            hypervisor_arn: hv.hypervisor_arn,
            requests: tx,
            cancel,
            task,
        });
        Box::pin(async {})
    }

    fn test(
        &self,
        host: String,
        username: Option<String>,
        password: Option<Secret>,
    ) -> BoxFuture<'static, CommandOutcome> {
        let trust = self.trust.lock().expect("link lock").clone();
        // Without credentials, test with those of the associated hypervisor on the same host.
        let current = self.config.lock().expect("link lock").clone();
        let (username, password) = match (username, password) {
            (Some(u), Some(p)) => (Some(u), Some(p)),
            (u, p) => match current.filter(|c| c.host.eq_ignore_ascii_case(&host)) {
                Some(c) => (u.or(c.username), p.or(c.password)),
                None => (u, p),
            },
        };
        Box::pin(async move {
            let Some(trust) = trust else {
                return CommandOutcome::Failed {
                    stage: TestStage::Unavailable,
                    message: "the gateway is still starting; try again".into(),
                };
            };
            tracing::info!(%host, "testing hypervisor configuration");
            diagnose::test(
                &host,
                username.as_deref(),
                password.as_ref().map(|p| p.expose()),
                &trust,
            )
            .await
        })
    }

    fn open_session(
        &self,
        hypervisor_arn: Option<String>,
    ) -> BoxFuture<'static, Result<vsphere_client::Client, vsphere_client::Error>> {
        let config = self.config.lock().expect("link lock").clone();
        let trust = self.trust.lock().expect("link lock").clone();
        let page_size = self.opts.page_size;
        Box::pin(async move {
            let not_ready = |what: String| vsphere_client::Error::InvalidInput { what };
            let hv = config
                .ok_or_else(|| not_ready("no hypervisor is associated with this gateway".into()))?;
            if let Some(arn) = hypervisor_arn.filter(|a| *a != hv.hypervisor_arn) {
                return Err(not_ready(format!(
                    "hypervisor {arn} is not the one associated with this gateway ({})",
                    hv.hypervisor_arn
                )));
            }
            let trust = trust.ok_or_else(|| not_ready("the gateway is still starting".into()))?;
            session::connect_to(&hv, page_size, &trust).await
        })
    }

    fn sync_now(
        &self,
        env: HypervisorEnv,
        hypervisor_arn: String,
    ) -> BoxFuture<'static, CommandOutcome> {
        let running = self.running.lock().expect("link lock");
        let outcome = match running.as_ref() {
            Some(r) if r.hypervisor_arn == hypervisor_arn => {
                match r.requests.try_send(Request::Sync) {
                    Ok(()) => CommandOutcome::Succeeded,
                    // A sync is already queued: it will cover this request too.
                    Err(mpsc::error::TrySendError::Full(_)) => CommandOutcome::Succeeded,
                    Err(mpsc::error::TrySendError::Closed(_)) => CommandOutcome::Failed {
                        stage: TestStage::Sync,
                        message: "the hypervisor connection is restarting; try again".into(),
                    },
                }
            }
            _ => {
                let message =
                    format!("hypervisor {hypervisor_arn} is not associated with this gateway");
                let Some(jobs) = self.jobs.lock().expect("link lock").clone() else {
                    return Box::pin(async {
                        CommandOutcome::Failed {
                            stage: TestStage::Unavailable,
                            message: "the gateway is still starting; try again".into(),
                        }
                    });
                };
                let ctx = Ctx {
                    env,
                    hv: HypervisorConfig {
                        hypervisor_arn,
                        host: String::new(),
                        username: None,
                        password: None,
                        property_mappings: vec![],
                    },
                    opts: self.opts.clone(),
                    generation: Generation::DETACHED,
                    jobs,
                };
                sync::report_not_run(&ctx, message.clone());
                CommandOutcome::Failed {
                    stage: TestStage::Sync,
                    message,
                }
            }
        };
        Box::pin(async move { outcome })
    }
}
