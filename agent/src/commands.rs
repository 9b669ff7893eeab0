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
use crate::hypervisor::HypervisorLink;
use crate::runtime::Runtime;
use crate::state::OutboxItem;

/// Long-poll wait asked of the cloud.
const POLL_SECONDS: u32 = 20;

pub async fn run(
    rt: Arc<Runtime>,
    cloud: CloudClient,
    link: Arc<dyn HypervisorLink>,
    backups: Arc<BackupService>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
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
                    let (rt, link, backups) = (rt.clone(), link.clone(), backups.clone());
                    tracker.spawn(async move { execute(rt, link, backups, command).await });
                }
            }
            Err(e) => {
                rt.cloud_failed(&e);
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
async fn execute(
    rt: Arc<Runtime>,
    link: Arc<dyn HypervisorLink>,
    backups: Arc<BackupService>,
    command: Command,
) {
    rt.metrics.command();
    if let Ok(Some(done)) = rt.store.command_result(&command.id) {
        tracing::info!("command already run; sending its result again");
        queue(&rt, done);
        return;
    }
    tracing::info!(kind = kind_name(&command.kind), "running command");
    let outcome = match command.kind {
        CommandKind::SyncMetadata { hypervisor_arn } => {
            link.sync_now(rt.clone(), hypervisor_arn).await
        }
        CommandKind::TestHypervisor {
            host,
            username,
            password,
        } => link.test(host, username, password).await,
        CommandKind::ConfigChanged { .. } => {
            rt.config_changed.notify_one();
            CommandOutcome::Succeeded
        }
        CommandKind::UpdateNow => {
            // No newer software is published for this build: nothing to apply.
            CommandOutcome::Succeeded
        }
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
    if let Err(e) = rt.store.record_command(&result) {
        tracing::error!(error = %e, "cannot record the command result");
    }
    queue(&rt, result);
}

fn queue(rt: &Runtime, result: CommandResult) {
    match rt.store.push_outbox(&OutboxItem::CommandResult(result)) {
        Ok(_) => rt.outbox_changed.notify_one(),
        Err(e) => tracing::error!(error = %e, "cannot queue the command result"),
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
