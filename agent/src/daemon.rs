//! The daemon: builds every component, runs the long-lived tasks, stops them on request.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activation::Activation;
use crate::clock::{Clock, CloudTime, SystemClock};
use crate::cloud::CloudClient;
use crate::config::Config;
use crate::endpoints::{self, BoundEndpoints, ENDPOINTS_FILE};
use crate::error::{Error, Result};
use crate::host::HostFacts;
use crate::hypervisor::HypervisorLink;
use crate::jobs::{JobRunner, JobStore};
use crate::runtime::Runtime;
use crate::state::Store;
use crate::vcenter_link::VcenterLink;
use crate::{commands, config_pull, heartbeat, outbox, systemd};

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
    let rt = Runtime::new(
        store.clone(),
        time,
        config.gateway.timezone,
        config.gateway.heartbeat_interval,
    )?;
    if let Some(activated) = rt.activated() {
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
        rt.clone(),
        cloud.clone(),
        identity.clone(),
        host.hostname.clone(),
    ));

    let jobs = JobRunner::start(
        JobStore::new(store.tree("jobs")?),
        rt.time.clone(),
        shutdown.child_token(),
    )?;
    let backups = crate::backup::BackupService::new(
        rt.clone(),
        cloud.clone(),
        jobs.clone(),
        components.hypervisor.clone(),
        &identity.agent_id,
        shutdown.clone(),
    );
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
            rt: rt.clone(),
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
            endpoints::metrics::router(rt.clone()),
            shutdown.clone(),
        ));
    }
    write_endpoints(&config, &bound)?;

    tracker.spawn(activation.clone().run_waiter(shutdown.clone()));
    tracker.spawn(crate::bandwidth::run(rt.clone(), shutdown.clone()));
    tracker.spawn(crate::memory::trim_periodically(shutdown.clone()));
    {
        let (rt, cloud, shutdown, tracker2) =
            (rt.clone(), cloud.clone(), shutdown.clone(), tracker.clone());
        let link = components.hypervisor.clone();
        let jobs = jobs.clone();
        let backups = backups.clone();
        tracker.spawn(async move {
            let mut activated = rt.activated.subscribe();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = activated.wait_for(Option::is_some) => if r.is_err() { return },
            }
            tracing::info!("starting heartbeat, commands, configuration and outbox tasks");
            tracker2.spawn(heartbeat::run(
                rt.clone(),
                cloud.clone(),
                host,
                shutdown.clone(),
            ));
            tracker2.spawn(commands::run(
                rt.clone(),
                cloud.clone(),
                link.clone(),
                backups,
                tracker2.clone(),
                shutdown.clone(),
            ));
            tracker2.spawn(config_pull::run(
                rt.clone(),
                cloud.clone(),
                link,
                jobs,
                shutdown.clone(),
            ));
            tracker2.spawn(outbox::run(rt.clone(), cloud.clone(), shutdown.clone()));
        });
    }
    if let Some(period) = systemd::watchdog_interval() {
        tracker.spawn(systemd::run_watchdog(period, shutdown.clone()));
    }

    tracing::info!(
        agent_id = %identity.agent_id,
        activated = rt.activated().is_some(),
        activation = ?bound.activation,
        admin = ?bound.admin,
        metrics = ?bound.metrics,
        "bgw-agent ready"
    );
    systemd::ready(match rt.activated() {
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
