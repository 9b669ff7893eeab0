//! The HTTPS server: data directory set-up, the listener and the connection loop.
//!
//! ```no_run
//! # async fn run() -> Result<(), bgw_cloud::error::Error> {
//! let config = bgw_cloud::ServeConfig::new("127.0.0.1:0", "/tmp/bgw-cloud");
//! let server = bgw_cloud::server::bind(config).await?;
//! println!("listening on {}", server.url());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod admin;
pub mod admin_releases;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;

/// HTTP/2 receive window of one request body (a whole compressed chunk and then some).
const H2_STREAM_WINDOW: u32 = 8 << 20;
/// HTTP/2 receive window of a connection (a few chunk uploads at once).
const H2_CONNECTION_WINDOW: u32 = 32 << 20;
/// Largest HTTP/2 frame a client may send.
const H2_MAX_FRAME: u32 = 1 << 20;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use bgw_sigv4::Verifier;

use crate::api::ApiContext;
use crate::arn::ArnFactory;
use crate::auth::{credentials, KeyRing, Role};
use crate::clock::{Clock, SystemClock};
use crate::config::{ServeConfig, TlsMode};
use crate::error::Error;
use crate::link::GatewayLink;
use crate::registry::{backup_gateway, AwsService, Registry};
use crate::store::backup::SledCatalog;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::tls::{self, TlsFiles};

pub use routes::{router, BodyLimit, Transport};

/// How long open connections may finish their requests after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Unauthenticated activation calls allowed per client address: a gateway makes a few an hour
/// (one key per 28 minutes, one long-poll at a time).
pub const ACTIVATION_REQUESTS_PER_MINUTE: u32 = 30;
/// Activation calls a client address may make at once before the rate applies.
pub const ACTIVATION_REQUEST_BURST: u32 = 20;

/// Shared state of all requests.
pub struct AppState {
    pub api: ApiContext,
    /// Vaults, backup and restore jobs, recovery points and the chunk store.
    pub backup: Arc<crate::backup::BackupService>,
    /// The AWS services served, each with its signature verifier.
    pub registry: Registry,
    /// Verifies the admin paths (signed as the Backup Gateway API).
    pub admin_verifier: Verifier,
    /// Verifies the gateway protocol (signed with the gateways' own credentials).
    pub gateway_verifier: Verifier,
    pub keys: KeyRing,
    pub region: String,
    pub throttle: Throttle,
    /// Activation requests and waits per client address (they carry no signature).
    pub activation_throttle: Throttle,
    pub activation_key_ttl: Duration,
    /// Published software releases and the gateways' update history.
    pub releases: crate::release::ReleaseShelf,
}

/// The address of the client of a connection, as request extension.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// A server bound to its port, not yet serving.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    local_addr: SocketAddr,
}

impl Server {
    /// `https://ADDR` or `http://ADDR` with the actual port.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (store, key ring), e.g. for the gateway protocol to use.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Registers one more AWS service. Services are registered before [`Server::run`] and
    /// before the state is shared through [`Server::state`].
    pub fn register(&mut self, service: AwsService) -> Result<(), Error> {
        let state = Arc::get_mut(&mut self.state).ok_or_else(|| {
            Error::Registry(format!(
                "{} must be registered before the server state is shared",
                service.title()
            ))
        })?;
        state.registry.register(service);
        Ok(())
    }

    /// Serves until `shutdown` completes, then lets open connections finish for a bounded time.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let app = router(self.state.clone());
        let tracker = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let tls = self.tls.clone();
            let app = app
                .clone()
                .layer(axum::Extension(Peer(peer)))
                .layer(axum::Extension(Transport { tls: tls.is_some() }));
            tracker.spawn(async move {
                let service = TowerToHyperService::new(app);
                let mut builder = auto::Builder::new(TokioExecutor::new());
                // Chunk uploads are 4 MiB bodies, several at once on one connection: windows
                // that hold them and large frames keep the sender from stalling on
                // WINDOW_UPDATEs and cut the per-frame work.
                builder
                    .http2()
                    .initial_stream_window_size(H2_STREAM_WINDOW)
                    .initial_connection_window_size(H2_CONNECTION_WINDOW)
                    .max_frame_size(H2_MAX_FRAME);
                let result = match tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls_stream) => {
                            builder
                                .serve_connection(TokioIo::new(tls_stream), service)
                                .await
                        }
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    },
                    None => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        tracing::info!("shutting down");
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period; closing them");
        }
        self.state.api.store.flush()?;
        Ok(())
    }
}

/// Prepares the data directory, store, credentials and TLS, and binds the listener.
pub async fn bind(config: ServeConfig) -> Result<Server, Error> {
    bind_with(
        config,
        Arc::new(SystemClock),
        Arc::new(crate::gateway::GatewayHub::default()),
    )
    .await
}

/// [`bind`] with a given clock and gateway link.
pub async fn bind_with(
    config: ServeConfig,
    clock: Arc<dyn Clock>,
    link: Arc<dyn GatewayLink>,
) -> Result<Server, Error> {
    prepare_data_dir(&config)?;
    let store = Store::open(&config.store_path())?;
    let admin =
        credentials::load_or_create(&config.admin_credentials_path(), &mut rand::thread_rng())?;
    let keys = KeyRing::default();
    keys.insert(
        &admin.access_key_id,
        admin.secret_access_key.clone(),
        Role::Admin,
    );

    let listen_host = config
        .listen
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&config.listen)
        .to_owned();
    let tls = match &config.tls {
        TlsMode::PlainHttp => None,
        TlsMode::SelfSigned => {
            let files = TlsFiles::in_data_dir(&config.data_dir);
            tls::ensure_self_signed(&files, &listen_host)?;
            Some(TlsAcceptor::from(tls::server_config(&files)?))
        }
        TlsMode::Files(files) => Some(TlsAcceptor::from(tls::server_config(files)?)),
    };

    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen.clone(),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let releases = crate::release::ReleaseShelf::new(
        Arc::new(crate::store::releases::SledReleases::open(&store)?),
        config.releases_path(),
    );
    let api = ApiContext {
        store,
        arns: ArnFactory::new(config.region.clone(), config.account_id.clone()),
        clock,
        link,
    };
    let chunks = config.chunk_store().open().await?;
    tracing::info!(chunks = %chunks.location(), "chunk store opened");
    let hub = api.link.gateway_hub().unwrap_or_default();
    let backup = crate::backup::BackupService::new(
        Arc::new(SledCatalog::open(&api.store)?),
        Arc::new(api.store.clone()),
        chunks,
        hub,
        api.clock.clone(),
        crate::backup::BackupArns {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        },
    );
    backup.resume()?;
    let mut registry = Registry::new(config.region.clone());
    registry.register(backup_gateway::service(api.clone()));
    registry.register(crate::registry::backup::service(backup.clone()).map_err(Error::Registry)?);
    let state = Arc::new(AppState {
        api,
        backup,
        registry,
        admin_verifier: Verifier::new(backup_gateway::SIGNING_NAME, &config.region),
        gateway_verifier: Verifier::new(bgw_protocol::sigv4::SERVICE, &config.region),
        keys,
        region: config.region.clone(),
        throttle: Throttle::new(config.throttle_rps, config.throttle_burst),
        activation_throttle: Throttle::per_minute(
            ACTIVATION_REQUESTS_PER_MINUTE,
            ACTIVATION_REQUEST_BURST,
        ),
        activation_key_ttl: config.activation_key_ttl,
        releases,
    });
    tracing::info!(addr = %local_addr, region = %config.region, "bound");
    Ok(Server {
        listener,
        tls,
        state,
        local_addr,
    })
}

/// Binds, prints `listening on URL` to stdout once ready, and serves until `shutdown`.
pub async fn serve(config: ServeConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    use std::io::Write;
    let url_file = config.server_url_path();
    let region = config.region.clone();
    let server = bind(config).await?;
    // `bgw-cloud release` finds the running server here (sled admits one process).
    if let Err(e) = std::fs::write(&url_file, format!("{}\n{region}\n", server.url())) {
        tracing::warn!(path = %url_file.display(), error = %e, "cannot record the server URL");
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.url());
    let _ = out.flush();
    drop(out);
    server.run(shutdown).await
}

fn prepare_data_dir(config: &ServeConfig) -> Result<(), Error> {
    let dir = &config.data_dir;
    let bad = |what: &'static str| {
        move |source| Error::DataDir {
            path: dir.clone(),
            what,
            source,
        }
    };
    if dir.exists() && !dir.is_dir() {
        return Err(Error::DataDirNotDir { path: dir.clone() });
    }
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(bad("create"))?;
    }
    std::fs::read_dir(dir).map_err(bad("read"))?;
    Ok(())
}
