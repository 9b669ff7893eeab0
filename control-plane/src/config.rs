//! Server configuration, as the `serve` subcommand builds it.

use std::path::PathBuf;
use std::time::Duration;

use crate::tls::TlsFiles;

/// How the server offers TLS.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// A self-signed certificate under `DATA/tls/`, created on first start.
    SelfSigned,
    /// Operator-supplied certificate chain and key.
    Files(TlsFiles),
    /// No TLS (local testing only).
    PlainHttp,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `host:port`; port 0 picks a free port.
    pub listen: String,
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    pub tls: TlsMode,
    /// Sustained requests per second allowed per access key.
    pub throttle_rps: u32,
    /// Requests an access key may burst above the sustained rate.
    pub throttle_burst: u32,
    /// How long a new activation key stays usable.
    pub activation_key_ttl: Duration,
    /// Where backup chunks are kept; `None`: the directory `DATA/chunks`.
    pub chunks: Option<bgw_chunks::ChunkStoreSpec>,
}

impl ServeConfig {
    /// Defaults for everything but the listen address and data directory.
    pub fn new(listen: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            listen: listen.into(),
            data_dir: data_dir.into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            tls: TlsMode::SelfSigned,
            throttle_rps: 50,
            throttle_burst: 100,
            activation_key_ttl: Duration::from_secs(30 * 60),
            chunks: None,
        }
    }

    /// Path of the admin credentials file.
    pub fn admin_credentials_path(&self) -> PathBuf {
        self.data_dir.join("admin-credentials")
    }

    /// Where backup chunks are kept.
    pub fn chunk_store(&self) -> bgw_chunks::ChunkStoreSpec {
        self.chunks
            .clone()
            .unwrap_or_else(|| bgw_chunks::ChunkStoreSpec::Dir(self.data_dir.join("chunks")))
    }

    /// Path of the store.
    /// Artifacts of published releases.
    pub fn releases_path(&self) -> PathBuf {
        self.data_dir.join("releases")
    }

    /// The URL of the server running on this data directory, written when it starts.
    pub fn server_url_path(&self) -> PathBuf {
        self.data_dir.join("server.url")
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("store")
    }
}
