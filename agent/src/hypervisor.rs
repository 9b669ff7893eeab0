//! The seam between the daemon core and the hypervisor (vCenter) integration.
//!
//! The daemon calls a [`HypervisorLink`] when the configuration changes and when the cloud
//! sends a hypervisor command. Results travel back through the [`HypervisorEnv`]: the
//! hypervisor board and the sync board (what `status` shows) and the outbox (metadata batches,
//! sync status), so they survive a restart and reach the cloud once it is reachable.

use std::sync::Arc;

use bgw_protocol::commands::{CommandOutcome, TestStage};
use bgw_protocol::config::HypervisorConfig;
use bgw_protocol::Secret;
use futures::future::BoxFuture;

use crate::clock::CloudTime;
use crate::hypervisor_board::HypervisorBoard;
use crate::jobs::JobRunner;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::state::Store;
use crate::sync_board::SyncBoard;

/// What a hypervisor integration reports into.
#[derive(Clone)]
pub struct HypervisorEnv {
    /// For what the integration keeps of its own (trusted certificates, cursors).
    pub store: Store,
    /// Metadata batches and sync status for the cloud.
    pub outbox: Arc<Outbox>,
    /// The connection state, fenced by generation.
    pub board: Arc<HypervisorBoard>,
    /// The last sync, as `status` shows it.
    pub sync: Arc<SyncBoard>,
    pub metrics: Arc<Metrics>,
    pub time: CloudTime,
}

/// What the daemon needs from a hypervisor integration.
pub trait HypervisorLink: Send + Sync + 'static {
    /// The hypervisor configuration changed (`None` = disassociated). Called once at start
    /// with the stored configuration.
    /// Long work (full syncs) runs on `jobs`.
    fn apply(
        &self,
        env: HypervisorEnv,
        jobs: JobRunner,
        config: Option<HypervisorConfig>,
    ) -> BoxFuture<'static, ()>;

    /// Tries a configuration (`TestHypervisorConfiguration`): DNS, TCP, TLS, login, privileges.
    fn test(
        &self,
        host: String,
        username: Option<String>,
        password: Option<Secret>,
    ) -> BoxFuture<'static, CommandOutcome>;

    /// Starts a metadata sync now. Returns once the sync is accepted; progress is reported
    /// through `env`.
    fn sync_now(
        &self,
        env: HypervisorEnv,
        hypervisor_arn: String,
    ) -> BoxFuture<'static, CommandOutcome>;

    /// A vCenter session of its own for a backup or restore job, on the associated
    /// hypervisor; the job logs it out. `hypervisor_arn` must be the associated one.
    fn open_session(
        &self,
        hypervisor_arn: Option<String>,
    ) -> BoxFuture<'static, Result<vsphere_client::Client, vsphere_client::Error>> {
        let _ = hypervisor_arn;
        Box::pin(async {
            Err(vsphere_client::Error::InvalidInput {
                what: "this gateway build has no hypervisor support".into(),
            })
        })
    }
}

/// Used when no hypervisor integration is compiled in: every hypervisor command fails with a
/// clear message instead of hanging.
pub struct NoHypervisor;

impl HypervisorLink for NoHypervisor {
    fn apply(
        &self,
        _env: HypervisorEnv,
        _jobs: JobRunner,
        _config: Option<HypervisorConfig>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn test(
        &self,
        _host: String,
        _username: Option<String>,
        _password: Option<Secret>,
    ) -> BoxFuture<'static, CommandOutcome> {
        Box::pin(async {
            CommandOutcome::Failed {
                stage: TestStage::Unsupported,
                message: "this gateway build has no hypervisor support".into(),
            }
        })
    }

    fn sync_now(&self, _env: HypervisorEnv, _arn: String) -> BoxFuture<'static, CommandOutcome> {
        Box::pin(async {
            CommandOutcome::Failed {
                stage: TestStage::Unsupported,
                message: "this gateway build has no hypervisor support".into(),
            }
        })
    }
}
