//! The connection to one vCenter: connect (trust on first use, then pinned), report the
//! hypervisor state, run a full sync after every (re)connection, on request and periodically,
//! push changes from the change watch, keep the session alive, and reconnect with backoff.

use std::time::Duration;

use bgw_protocol::heartbeat::{HypervisorState, HypervisorStatus};
use futures::StreamExt;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vsphere_client::{Change, Client, ConnectOptions, Trust};

use super::diagnose::state_for;
use super::sync::{self, Known};
use super::trust::TrustStore;
use super::{watch, Ctx};
use crate::backoff::Backoff;
use crate::jobs::{JobHandle, JobKind, JobOutcome, JobRunner};
use bgw_protocol::metadata::SyncOutcome;

/// Something asked of a running connection.
#[derive(Debug)]
pub enum Request {
    /// `StartVirtualMachinesMetadataSync`.
    Sync,
}

/// Why [`connected`] returned.
enum Ended {
    Stopped,
    Lost(vsphere_client::Error),
}

/// Runs until `cancel` fires or the request channel closes.
pub async fn run(
    ctx: Ctx,
    trust: TrustStore,
    mut requests: mpsc::Receiver<Request>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), ctx.opts.reconnect_max);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut known = Known::new();
    let mut sync_waiting = false;
    loop {
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return,
            r = connect(&ctx, &trust) => r,
        };
        match attempt {
            Ok(client) => {
                backoff.reset();
                set_state(&ctx, HypervisorState::Online, None);
                tracing::info!(host = %ctx.hv.host, "connected to vCenter");
                sync_waiting = false;
                let ended = connected(&ctx, &client, &mut known, &mut requests, &cancel).await;
                // Leaked sessions exhaust vCenter's session limit: always log out.
                let _ = tokio::time::timeout(Duration::from_secs(5), client.logout()).await;
                match ended {
                    Ended::Stopped => return,
                    Ended::Lost(e) => {
                        tracing::warn!(error = %e, "lost the vCenter connection");
                        set_state(&ctx, state_for(&e), Some(explain(&ctx, &e)));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(host = %ctx.hv.host, error = %e, "cannot connect to vCenter");
                let message = explain(&ctx, &e);
                set_state(&ctx, state_for(&e), Some(message.clone()));
                if std::mem::take(&mut sync_waiting) {
                    sync::report_not_run(&ctx, format!("cannot connect to vCenter: {message}"));
                }
            }
        }
        let delay = backoff.next_delay(&mut rng);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
            request = requests.recv() => match request {
                // Try again at once; if that fails too the sync is reported FAILED.
                Some(Request::Sync) => sync_waiting = true,
                None => return,
            },
        }
    }
}

/// The operator-facing description of a connection error.
fn explain(ctx: &Ctx, e: &vsphere_client::Error) -> String {
    match e {
        vsphere_client::Error::Tls {
            expected: Some(_),
            seen: Some(_),
            ..
        } => format!(
            "{e}. If the new certificate is legitimate, trust it with `bgw-agent vcenter retrust`"
        ),
        _ => format!("{} ({})", e, ctx.hv.host),
    }
}

/// Reports the connection's state; dropped once this connection has been replaced.
fn set_state(ctx: &Ctx, state: HypervisorState, message: Option<String>) {
    let status = HypervisorStatus {
        hypervisor_arn: Some(ctx.hv.hypervisor_arn.clone()),
        state,
        message,
    };
    if !ctx.env.board.report(ctx.generation, status) {
        return;
    }
    if state != HypervisorState::Online {
        ctx.env.metrics.error(match state {
            HypervisorState::Offline => "hypervisor_offline",
            _ => "hypervisor_error",
        });
    }
}

/// Connects with the recorded thumbprint, or on first use records the thumbprint seen and
/// reconnects pinned to it, so the session never runs on an unpinned connection.
async fn connect(ctx: &Ctx, trust: &TrustStore) -> Result<Client, vsphere_client::Error> {
    connect_to(&ctx.hv, ctx.opts.page_size, trust).await
}

/// [`connect`] for any configured hypervisor: also used by backup and restore jobs, which
/// work on a session of their own.
pub(crate) async fn connect_to(
    hv: &bgw_protocol::config::HypervisorConfig,
    page_size: usize,
    trust: &TrustStore,
) -> Result<Client, vsphere_client::Error> {
    let (Some(username), Some(password)) = (hv.username.as_deref(), hv.password.as_ref()) else {
        return Err(vsphere_client::Error::Authentication {
            message: "no user name and password are configured for this hypervisor".into(),
        });
    };
    let options = |t: Trust| {
        let mut o = ConnectOptions::new(&hv.host, username, password.clone(), t);
        o.page_size = page_size;
        o
    };
    let mode = trust.trust_for(&hv.host);
    let first_use = matches!(mode, Trust::TrustOnFirstUse);
    let (client, info) = Client::connect(options(mode)).await?;
    if !first_use {
        return Ok(client);
    }
    let Some(seen) = info.seen_thumbprint else {
        return Ok(client);
    };
    tracing::info!(host = %hv.host, thumbprint = %seen, "trusting the vCenter certificate on first use");
    if let Err(e) = trust.record(&hv.host, seen) {
        tracing::error!(error = %e, "cannot record the vCenter thumbprint");
    }
    let _ = client.logout().await;
    let (client, _) = Client::connect(options(Trust::Thumbprint(seen))).await?;
    Ok(client)
}

/// A full sync running as a job. It owns what was uploaded last ([`Known`]) while it runs
/// and hands it back, updated, when it ends.
struct RunningSync {
    handle: JobHandle<Known>,
    jobs: JobRunner,
}

impl Drop for RunningSync {
    /// A sync does not outlive its connection.
    fn drop(&mut self) {
        self.jobs.cancel(&self.handle.id);
    }
}

/// Starts a full sync job with `known`. `None` if the job cannot be recorded.
fn start_sync(ctx: &Ctx, client: &Client, known: &mut Known) -> Option<RunningSync> {
    let (job_ctx, client, mut known) = (ctx.clone(), client.clone(), std::mem::take(known));
    let submitted = ctx.jobs.submit(
        JobKind::MetadataSync,
        &ctx.hv.hypervisor_arn,
        move |_job| async move {
            let outcome = match sync::full_sync(&job_ctx, &client, &mut known).await {
                SyncOutcome::Succeeded => JobOutcome::Succeeded(None),
                SyncOutcome::PartiallyFailed { message } => JobOutcome::Succeeded(Some(message)),
                SyncOutcome::Failed { message } => JobOutcome::Failed(message),
            };
            (outcome, known)
        },
    );
    match submitted {
        Ok(handle) => Some(RunningSync {
            handle,
            jobs: ctx.jobs.clone(),
        }),
        Err(e) => {
            tracing::error!(error = %e, "cannot start a metadata sync job");
            None
        }
    }
}

/// The end of the running sync, if any: what it uploaded (empty if it was cancelled).
async fn sync_done(sync: &mut Option<RunningSync>) -> Known {
    match sync.as_mut() {
        Some(s) => (&mut s.handle.done).await.unwrap_or_default(),
        None => std::future::pending().await,
    }
}

async fn connected(
    ctx: &Ctx,
    client: &Client,
    known: &mut Known,
    requests: &mut mpsc::Receiver<Request>,
    cancel: &CancellationToken,
) -> Ended {
    let opts = &ctx.opts;
    let watch_cancel = cancel.child_token();
    let _stop_watch = watch_cancel.clone().drop_guard();

    // A (re)connection may follow missed changes: start from a full sync. Syncs run as
    // jobs, so keepalive and the change watch go on meanwhile; changes seen during a sync
    // are held and compared with its result.
    let mut running = start_sync(ctx, client, known);
    let mut sync_again = false;

    let mut feed = client.watch(watch_cancel.clone());
    let mut keepalive = tokio::time::interval_at(Instant::now() + opts.keepalive, opts.keepalive);
    let mut periodic =
        tokio::time::interval_at(Instant::now() + opts.periodic_sync, opts.periodic_sync);
    let mut tag_check = tokio::time::interval_at(Instant::now() + opts.tag_check, opts.tag_check);
    let mut pending: Vec<Change> = Vec::new();
    let mut flush_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ended::Stopped,
            request = requests.recv() => match request {
                Some(Request::Sync) => {
                    if running.is_some() {
                        sync_again = true;
                    } else {
                        running = start_sync(ctx, client, known);
                    }
                }
                None => return Ended::Stopped,
            },
            synced = sync_done(&mut running) => {
                *known = synced;
                running = None;
                periodic.reset();
                if std::mem::take(&mut sync_again) {
                    running = start_sync(ctx, client, known);
                } else if !pending.is_empty() {
                    flush_at = Some(Instant::now());
                }
            }
            _ = periodic.tick() => {
                if running.is_none() {
                    tracing::info!("periodic metadata sync");
                    running = start_sync(ctx, client, known);
                }
            }
            _ = tag_check.tick(), if running.is_none() => match sync::tags_changed(client, known).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(vms = n, "VMware tags changed; syncing");
                    running = start_sync(ctx, client, known);
                }
                Err(e) => tracing::warn!(error = %e, "cannot compare VMware tags"),
            },
            _ = keepalive.tick() => {
                if let Err(e) = client.keepalive().await {
                    return Ended::Lost(e);
                }
            }
            item = feed.next() => match item {
                Some(Ok(change)) => {
                    pending.push(change);
                    flush_at.get_or_insert_with(|| Instant::now() + opts.watch_debounce);
                }
                Some(Err(e)) if e.kind() == vsphere_client::ErrorKind::Cancelled => {}
                Some(Err(e)) => return Ended::Lost(e),
                None => {
                    return Ended::Lost(vsphere_client::Error::Network {
                        url: ctx.hv.host.clone(),
                        reason: "the change watch ended".into(),
                        source: None,
                    })
                }
            },
            _ = sleep_until(flush_at), if flush_at.is_some() && running.is_none() => {
                flush_at = None;
                let delta = watch::delta(&ctx.hv.property_mappings, known, std::mem::take(&mut pending));
                if let Err(e) = watch::push(ctx, client, known, delta).await {
                    tracing::error!(error = %e, "cannot queue VM changes");
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
