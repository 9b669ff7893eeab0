//! The reference control plane `bgw-cloud` as a child process of a test.
//!
//! ```no_run
//! # fn main() -> bgw_tests::Result<()> {
//! use bgw_tests::cloud::{Cloud, CloudOptions};
//! let cloud = Cloud::start(CloudOptions::default())?;
//! println!("{} (CA {}, credentials {})", cloud.endpoint(), cloud.ca_file().display(),
//!          cloud.admin_credentials_file().display());
//! # Ok(()) }
//! ```
//!
//! The binary is `target/<profile>/bgw-cloud` next to the test executable (run
//! `cargo build --workspace --bins` first), or `$BGW_CLOUD_BIN`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{HarnessError, Result};
use crate::paths::workspace_binary;
use crate::process::ChildProcess;

/// Environment variable overriding the path of the `bgw-cloud` binary.
pub const CLOUD_BIN_ENV: &str = "BGW_CLOUD_BIN";

/// How to start `bgw-cloud serve`.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    pub region: String,
    pub account_id: String,
    /// Serve plain HTTP instead of TLS with a generated certificate.
    pub plain_http: bool,
    /// Use this data directory instead of a fresh temporary one (it is not deleted).
    pub data_dir: Option<PathBuf>,
    /// Arguments appended to `serve …`.
    pub extra_args: Vec<String>,
    /// Extra environment for the process (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// How long to wait for `listening on …`.
    pub start_timeout: Duration,
}

impl Default for CloudOptions {
    fn default() -> Self {
        CloudOptions {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            plain_http: false,
            data_dir: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            start_timeout: Duration::from_secs(60),
        }
    }
}

/// A running `bgw-cloud`; stopped when dropped (its temporary data directory is then removed).
pub struct Cloud {
    options: CloudOptions,
    binary: PathBuf,
    data_dir: PathBuf,
    _owned_data: Option<TempDir>,
    logs: TempDir,
    process: Option<ChildProcess>,
    endpoint: String,
    addr: SocketAddr,
    starts: u32,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud")
            .field("endpoint", &self.endpoint)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl Cloud {
    /// Starts `bgw-cloud serve --listen 127.0.0.1:0 --data DIR` and waits for its
    /// `listening on` line.
    pub fn start(options: CloudOptions) -> Result<Cloud> {
        let binary = workspace_binary("bgw-cloud", CLOUD_BIN_ENV)?;
        let logs = temp_dir("bgw-cloud-logs-")?;
        let (data_dir, owned) = match &options.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = temp_dir("bgw-cloud-data-")?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let mut cloud = Cloud {
            options,
            binary,
            data_dir,
            _owned_data: owned,
            logs,
            process: None,
            endpoint: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            starts: 0,
        };
        cloud.launch()?;
        Ok(cloud)
    }

    fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        let mut command = Command::new(&self.binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--region")
            .arg(&self.options.region)
            .arg("--account-id")
            .arg(&self.options.account_id);
        if self.options.plain_http {
            command.arg("--plain-http");
        }
        command.args(&self.options.extra_args);
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        let name = format!("bgw-cloud-{}", self.starts);
        let mut process = ChildProcess::spawn(&name, command, self.logs.path())?;
        let endpoint = process.wait_for_line(self.options.start_timeout, parse_listening_line)?;
        let addr = endpoint
            .split_once("://")
            .and_then(|(_, hp)| hp.trim_end_matches('/').parse::<SocketAddr>().ok())
            .ok_or_else(|| HarnessError::Process {
                name: name.clone(),
                reason: format!("cannot parse the address in {endpoint:?}"),
                output: process.output_tail(),
            })?;
        self.endpoint = endpoint;
        self.addr = addr;
        self.process = Some(process);
        Ok(())
    }

    /// `https://127.0.0.1:PORT` (or `http://` with `plain_http`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn region(&self) -> &str {
        &self.options.region
    }

    pub fn account_id(&self) -> &str {
        &self.options.account_id
    }

    /// The `--data` directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `DIR/admin-credentials` (AWS shared-credentials format, profile `default`).
    pub fn admin_credentials_file(&self) -> PathBuf {
        self.data_dir.join("admin-credentials")
    }

    /// The admin access key id and secret from [`Cloud::admin_credentials_file`].
    pub fn admin_credentials(&self) -> Result<(String, String)> {
        let path = self.admin_credentials_file();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| HarnessError::io("reading admin credentials", &path, e))?;
        let find = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_string())
        };
        match (find("aws_access_key_id"), find("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(HarnessError::Response {
                url: path.display().to_string(),
                reason: "no aws_access_key_id / aws_secret_access_key in the default profile"
                    .into(),
            }),
        }
    }

    /// `DIR/tls/cert.pem`, the generated self-signed certificate (the CA bundle for clients).
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    /// An HTTP client trusting the cloud's certificate only.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        let wrap = |source| HarnessError::Http {
            url: self.endpoint.clone(),
            source,
        };
        if self.options.plain_http {
            return reqwest::Client::builder().build().map_err(wrap);
        }
        let path = self.ca_file();
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| HarnessError::io("reading the cloud's certificate", &path, e))?;
        crate::tls::http_client_trusting(&pem).map_err(wrap)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ChildProcess::is_running)
    }

    /// The captured output, for failure messages.
    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(ChildProcess::output_tail)
            .unwrap_or_default()
    }

    /// Stops it (SIGTERM, then SIGKILL after a grace period); the data directory stays.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.process.take().and_then(|mut p| p.stop())
    }

    /// Kills it at once (a crash); the data directory stays.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops and starts it again on the same address with the same data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Extracts `https://ADDR` from a line containing `listening on https://ADDR`.
pub fn parse_listening_line(line: &str) -> Option<String> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let url = rest
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| c == '"' || c == ',');
    (url.starts_with("https://") || url.starts_with("http://")).then(|| url.to_string())
}

pub(crate) fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| HarnessError::io("creating a temp dir", std::env::temp_dir(), e))
}

#[cfg(test)]
mod tests {
    use super::parse_listening_line;

    #[test]
    fn finds_the_endpoint_in_plain_and_tracing_lines() {
        assert_eq!(
            parse_listening_line("listening on https://127.0.0.1:4443").as_deref(),
            Some("https://127.0.0.1:4443")
        );
        assert_eq!(
            parse_listening_line(
                "2026-01-01T00:00:00Z  INFO bgw_cloud: listening on http://127.0.0.1:80 region=x"
            )
            .as_deref(),
            Some("http://127.0.0.1:80")
        );
        assert_eq!(parse_listening_line("listening on port 80"), None);
        assert_eq!(parse_listening_line("starting"), None);
    }
}
