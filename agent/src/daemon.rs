//! The daemon: builds every component, runs the long-lived tasks, stops them on request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bgw_scheduler::throttle::Throttle;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activation::Activation;
use crate::backup::{BackupParts, BackupService};
use crate::clock::{Clock, CloudTime, SystemClock};
use crate::cloud::CloudClient;
use crate::cloud_link::CloudLink;
use crate::commands::CommandTask;
use crate::config::Config;
use crate::config_channel::ConfigChannel;
use crate::config_pull::ConfigPull;
use crate::endpoints::{self, BoundEndpoints, ENDPOINTS_FILE};
use crate::error::{Error, Result};
use crate::heartbeat::HeartbeatTask;
use crate::host::HostFacts;
use crate::hypervisor::{HypervisorEnv, HypervisorLink};
use crate::hypervisor_board::HypervisorBoard;
use crate::jobs::{JobRunner, JobStore};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxTask};
use crate::state::Store;
use crate::status::StatusSources;
use crate::sync_board::SyncBoard;
use crate::vcenter_link::VcenterLink;
use crate::{commands, config_pull, heartbeat, systemd};

/// How long tasks get to finish after shutdown is requested (systemd's stop timeout is 10 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// What can be swapped out, for tests and for the hypervisor integration.
pub struct Components {
    pub clock: Arc<dyn Clock>,
    pub hypervisor: Arc<dyn HypervisorLink>,
}

impl Default for Components {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            hypervisor: Arc::new(VcenterLink::default()),
        }
    }
}

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let components = Components {
        hypervisor: Arc::new(VcenterLink::new(
            crate::vcenter_link::LinkOptions::from_config(&config.vcenter),
        )),
        ..Components::default()
    };
    run_with(config, components, shutdown).await
}

pub async fn run_with(
    config: Config,
    components: Components,
    shutdown: CancellationToken,
) -> Result<()> {
    // Credentials and the hypervisor password are stored here: nothing the agent creates is
    // readable by other users.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let store = Store::open(&config.gateway.state_dir)?;
    let identity = store.identity(&mut rand::rngs::StdRng::from_entropy())?;
    let time = CloudTime::new(components.clock.clone());
    let cloud = CloudClient::new(&config.cloud, time.clone())?;
    let timezone = crate::gateway_zone::GatewayZone::new(config.gateway.timezone);
    let started = Instant::now();

    // What the tasks share; each task is handed the pieces it uses.
    let metrics = Arc::new(Metrics::new());
    let link = CloudLink::load(store.clone(), metrics.clone())?;
    let applied = ConfigChannel::new(store.config()?);
    let outbox = Outbox::new(store.clone());
    let sync = SyncBoard::load(store.clone())?;
    let board = Arc::new(HypervisorBoard::new());
    let throttle = Throttle::new(None);
    let hypervisor_env = HypervisorEnv {
        store: store.clone(),
        outbox: outbox.clone(),
        board: board.clone(),
        sync: sync.clone(),
        metrics: metrics.clone(),
        time: time.clone(),
    };

    if let Some(activated) = link.activated() {
        if activated.region != config.cloud.region {
            tracing::warn!(
                activated_in = %activated.region,
                configured = %config.cloud.region,
                "the gateway was activated in another region than cloud.region"
            );
        }
        cloud.set_credentials(Some(activated.credentials.clone()));
    }
    let host = tokio::task::spawn_blocking(HostFacts::gather)
        .await
        .unwrap_or_default();
    let activation = Arc::new(Activation::new(
        link.clone(),
        store.clone(),
        time.clone(),
        cloud.clone(),
        identity.clone(),
        host.hostname.clone(),
    ));

    let jobs = JobRunner::start(
        JobStore::new(store.tree("jobs")?),
        time.clone(),
        shutdown.child_token(),
    )?;
    let backups = BackupService::new(
        BackupParts {
            store: store.clone(),
            outbox: outbox.clone(),
            throttle: throttle.clone(),
            metrics: metrics.clone(),
            cloud: cloud.clone(),
            jobs: jobs.clone(),
            link: components.hypervisor.clone(),
        },
        &identity.agent_id,
        shutdown.clone(),
    );
    let updates = crate::updater::Updater::open(&config)?;
    let tracker = TaskTracker::new();
    tracker.spawn(backups.clone().run_cleanup());
    let mut bound = BoundEndpoints::default();

    let listener = endpoints::bind("activation", config.gateway.activation_listen).await?;
    bound.activation = listener.local_addr().ok();
    tracker.spawn(endpoints::serve(
        listener,
        endpoints::activation::router(activation.clone(), config.cloud.endpoint.clone()),
        shutdown.clone(),
    ));
    let listener = endpoints::bind("admin", config.admin.listen).await?;
    bound.admin = listener.local_addr().ok();
    tracker.spawn(endpoints::serve(
        listener,
        crate::admin::router(crate::admin::AdminState {
            status: StatusSources {
                store: store.clone(),
                link: link.clone(),
                config: applied.clone(),
                hypervisor: board.clone(),
                sync: sync.clone(),
                outbox: outbox.clone(),
                time: time.clone(),
                timezone: timezone.clone(),
                started,
                updates: updates.clone(),
            },
            activation: activation.clone(),
            jobs: jobs.clone(),
            trust: crate::vcenter_link::trust::TrustStore::new(store.clone()),
            endpoint: config.cloud.endpoint.to_string(),
            region: config.cloud.region.clone(),
        }),
        shutdown.clone(),
    ));
    if let Some(addr) = config.metrics.listen {
        let listener = endpoints::bind("metrics", addr).await?;
        bound.metrics = listener.local_addr().ok();
        tracker.spawn(endpoints::serve(
            listener,
            endpoints::metrics::router(metrics.clone(), outbox.clone()),
            shutdown.clone(),
        ));
    }
    write_endpoints(&config, &bound)?;
    tracker.spawn(updates.clone().run(
        crate::updater::Context {
            cloud: cloud.clone(),
            link: link.clone(),
            config: applied.clone(),
            time: time.clone(),
            timezone: timezone.clone(),
            jobs: jobs.clone(),
            admin: bound.admin,
        },
        shutdown.clone(),
    ));

    tracker.spawn(activation.clone().run_waiter(shutdown.clone()));
    tracker.spawn(crate::bandwidth::run(
        applied.clone(),
        throttle.clone(),
        time.clone(),
        timezone.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(crate::memory::trim_periodically(shutdown.clone()));
    {
        // The tasks that talk to the cloud as the gateway start once it is activated.
        let heartbeat = HeartbeatTask {
            cloud: cloud.clone(),
            link: link.clone(),
            config: applied.clone(),
            outbox: outbox.clone(),
            hypervisor: board.clone(),
            metrics: metrics.clone(),
            time: time.clone(),
            host,
            timezone: timezone.clone(),
            started,
            interval: config.gateway.heartbeat_interval,
            updates: updates.clone(),
        };
        let commands = CommandTask {
            cloud: cloud.clone(),
            link: link.clone(),
            store: store.clone(),
            outbox: outbox.clone(),
            config: applied.clone(),
            metrics: metrics.clone(),
            hypervisor: components.hypervisor.clone(),
            hypervisor_env: hypervisor_env.clone(),
            backups: backups.clone(),
            updates: updates.clone(),
            tracker: tracker.clone(),
        };
        let config_pull = ConfigPull {
            cloud: cloud.clone(),
            link: link.clone(),
            config: applied.clone(),
            store: store.clone(),
            hypervisor: components.hypervisor.clone(),
            hypervisor_env,
            jobs: jobs.clone(),
            timezone: timezone.clone(),
        };
        let delivery = OutboxTask {
            outbox: outbox.clone(),
            cloud: cloud.clone(),
            link: link.clone(),
            metrics: metrics.clone(),
            throttle: throttle.clone(),
        };
        let mut activated = link.watch_activated();
        let (shutdown, tracker2) = (shutdown.clone(), tracker.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = activated.wait_for(Option::is_some) => if r.is_err() { return },
            }
            tracing::info!("starting heartbeat, commands, configuration and outbox tasks");
            tracker2.spawn(heartbeat::run(heartbeat, shutdown.clone()));
            tracker2.spawn(commands::run(commands, shutdown.clone()));
            tracker2.spawn(config_pull::run(config_pull, shutdown.clone()));
            tracker2.spawn(delivery.run(shutdown.clone()));
        });
    }
    if let Some(period) = systemd::watchdog_interval() {
        tracker.spawn(systemd::run_watchdog(period, shutdown.clone()));
    }

    tracing::info!(
        agent_id = %identity.agent_id,
        activated = link.activated().is_some(),
        activation = ?bound.activation,
        admin = ?bound.admin,
        metrics = ?bound.metrics,
        "bgw-agent ready"
    );
    systemd::ready(match link.activated() {
        Some(_) => "activated",
        None => "waiting for activation",
    });

    shutdown.cancelled().await;
    tracing::info!("stopping");
    systemd::stopping();
    tracker.close();
    // Tasks, commands in flight and jobs share one grace period.
    let everything = async { tokio::join!(tracker.wait(), jobs.wait()) };
    if tokio::time::timeout(SHUTDOWN_GRACE, everything)
        .await
        .is_err()
    {
        tracing::warn!("some tasks or jobs did not stop in time");
    }
    store.flush()?;
    let _ = std::fs::remove_file(config.gateway.state_dir.join(ENDPOINTS_FILE));
    tracing::info!("stopped");
    Ok(())
}

fn write_endpoints(config: &Config, bound: &BoundEndpoints) -> Result<()> {
    let path = config.gateway.state_dir.join(ENDPOINTS_FILE);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(bound).expect("endpoints serialise");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|source| Error::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}
