//! The command loop: long-polls the cloud and runs what it asks.

use std::sync::Arc;
use std::time::Duration;

use bgw_protocol::commands::{Command, CommandKind, CommandOutcome, CommandResult};
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activation::sleep_or_cancel;
use crate::backoff::Backoff;
use crate::backup::BackupService;
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::config_channel::ConfigChannel;
use crate::hypervisor::{HypervisorEnv, HypervisorLink};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::state::{OutboxItem, Store};
use crate::updater::Updater;

/// Long-poll wait asked of the cloud.
const POLL_SECONDS: u32 = 20;

/// What commands need: where to poll, whom to hand each command to, where results go.
pub struct CommandTask {
    pub cloud: CloudClient,
    pub link: Arc<CloudLink>,
    /// Results of commands already run, so a command sent again is not run twice.
    pub store: Store,
    pub outbox: Arc<Outbox>,
    /// Woken by `CONFIG_CHANGED`.
    pub config: Arc<ConfigChannel>,
    pub metrics: Arc<Metrics>,
    pub hypervisor: Arc<dyn HypervisorLink>,
    pub hypervisor_env: HypervisorEnv,
    pub backups: Arc<BackupService>,
    /// Told about `UPDATE_NOW`.
    pub updates: Arc<Updater>,
    /// Commands in flight, which the daemon waits for at shutdown.
    pub tracker: TaskTracker,
}

pub async fn run(task: CommandTask, shutdown: CancellationToken) {
    let task = Arc::new(task);
    let cloud = &task.cloud;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            b = cloud.poll_commands(POLL_SECONDS) => b,
        };
        match batch {
            Ok(batch) => {
                backoff.reset();
                for command in batch.commands {
                    // Each command runs on its own task so a slow one does not delay the
                    // next; the daemon waits for them at shutdown.
                    let task2 = task.clone();
                    task.tracker
                        .spawn(async move { execute(&task2, command).await });
                }
            }
            Err(e) => {
                task.link.failed(&e);
                let delay = backoff.next_delay(&mut rng);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "command poll failed");
                if sleep_or_cancel(&shutdown, delay).await {
                    return;
                }
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(command = %command.id))]
async fn execute(task: &CommandTask, command: Command) {
    let (link, backups) = (&task.hypervisor, &task.backups);
    task.metrics.command();
    if let Ok(Some(done)) = task.store.command_result(&command.id) {
        tracing::info!("command already run; sending its result again");
        queue(task, done);
        return;
    }
    tracing::info!(kind = kind_name(&command.kind), "running command");
    let outcome = match command.kind {
        CommandKind::SyncMetadata { hypervisor_arn } => {
            link.sync_now(task.hypervisor_env.clone(), hypervisor_arn)
                .await
        }
        CommandKind::TestHypervisor {
            host,
            username,
            password,
        } => link.test(host, username, password).await,
        CommandKind::ConfigChanged { .. } => {
            task.config.wake();
            CommandOutcome::Succeeded
        }
        CommandKind::UpdateNow => match task.updates.update_now() {
            Ok(()) => CommandOutcome::Succeeded,
            Err(e) => CommandOutcome::Failed {
                stage: bgw_protocol::commands::TestStage::Unavailable,
                message: e.to_string(),
            },
        },
        CommandKind::BackupVm(cmd) => backups.start_backup(cmd),
        CommandKind::RestoreVm(cmd) => backups.start_restore(cmd),
        CommandKind::CancelJob(cmd) => backups.cancel(cmd),
    };
    if let CommandOutcome::Failed { stage, message } = &outcome {
        tracing::warn!(%stage, %message, "command failed");
    }
    let result = CommandResult {
        command_id: command.id,
        outcome,
    };
    if let Err(e) = task.store.record_command(&result) {
        tracing::error!(error = %e, "cannot record the command result");
    }
    queue(task, result);
}

fn queue(task: &CommandTask, result: CommandResult) {
    if let Err(e) = task.outbox.push(&OutboxItem::CommandResult(result)) {
        tracing::error!(error = %e, "cannot queue the command result");
    }
}

fn kind_name(kind: &CommandKind) -> &'static str {
    match kind {
        CommandKind::SyncMetadata { .. } => "SYNC_METADATA",
        CommandKind::TestHypervisor { .. } => "TEST_HYPERVISOR",
        CommandKind::UpdateNow => "UPDATE_NOW",
        CommandKind::ConfigChanged { .. } => "CONFIG_CHANGED",
        CommandKind::BackupVm(_) => "BACKUP_VM",
        CommandKind::RestoreVm(_) => "RESTORE_VM",
        CommandKind::CancelJob(_) => "CANCEL_JOB",
    }
}
