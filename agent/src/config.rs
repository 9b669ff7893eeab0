//! The agent's TOML configuration: parsing, defaults and validation.
//!
//! ```toml
//! [cloud]
//! endpoint = "https://cloud.example.com:8443"
//! region = "us-east-1"
//! ca_file = "/etc/bgw-agent/cloud-ca.pem"   # optional: system roots otherwise
//! proxy = "http://proxy.example.com:3128"   # optional: HTTP(S) proxy for the cloud traffic
//!
//! [gateway]
//! state_dir = "/var/lib/bgw-agent"
//! timezone = "Europe/Paris"
//! activation_listen = "0.0.0.0:80"
//! heartbeat_interval = "60s"
//!
//! [admin]
//! listen = "127.0.0.1:8470"
//!
//! [metrics]
//! listen = "127.0.0.1:9470"
//!
//! [updates]
//! trusted_keys = ["/etc/bgw-agent/release.pub"]
//! trial_deadline = "120s"
//! job_wait_limit = "2h"
//! apply_missed_after = "14d"
//! ```
//!
//! Unknown keys and invalid values are refused with the key named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{BoxError, Error, Result};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub cloud: CloudConfig,
    pub gateway: GatewayConfig,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
    pub vcenter: VcenterConfig,
    pub updates: UpdatesConfig,
}

/// Software updates: whom to trust, how long a new version's trial lasts, how long to wait.
#[derive(Debug, Clone)]
pub struct UpdatesConfig {
    /// Release keys trusted besides those built in (read and checked at load).
    pub trusted_keys: Vec<bgw_update::keys::PublicKey>,
    /// A new version must pass its self-check and heartbeat the cloud within this long.
    pub trial_deadline: Duration,
    /// Running backup or restore jobs delay an update at most this long.
    pub job_wait_limit: Duration,
    /// A release published longer ago than this applies at once instead of waiting for the
    /// next maintenance window (the windows it should have used were missed).
    pub apply_missed_after: Duration,
}

#[derive(Debug, Clone)]
pub struct CloudConfig {
    pub endpoint: url::Url,
    pub region: String,
    pub ca_file: Option<PathBuf>,
    /// The proxy every request to the cloud goes through (HTTPS is tunnelled with CONNECT).
    pub proxy: Option<ProxyUrl>,
}

/// An `http://` or `https://` proxy URL, optionally with `user:password@`; its `Debug` and
/// `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(url::Url);

impl ProxyUrl {
    /// Checks a proxy URL as written in the configuration or typed at the console.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        if !text.contains("://") {
            return Err(format!(
                "{:?} has no scheme; write http://{}",
                text.trim(),
                text.trim()
            ));
        }
        let url = url::Url::parse(text.trim()).map_err(|e| {
            format!(
                "{:?} is not a URL ({e}); write http://HOST:PORT",
                text.trim()
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{}: the proxy must be an http:// or https:// URL",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the proxy URL has no host; write http://HOST:PORT".into());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("the proxy URL takes no path or query; write http://HOST:PORT".into());
        }
        Ok(Self(url))
    }

    /// The URL with its password, for the HTTP client only.
    pub fn expose(&self) -> &url::Url {
        &self.0
    }
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        write!(f, "{}", shown.as_str().trim_end_matches('/'))
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub state_dir: PathBuf,
    pub timezone: chrono_tz::Tz,
    pub activation_listen: SocketAddr,
    pub heartbeat_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
}

/// How often the agent looks at vCenter beyond its change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcenterConfig {
    /// A full metadata sync runs this long after the previous one.
    pub sync_interval: Duration,
    /// VMware tag attachments are compared this often (a few calls for all VMs; tags are not
    /// in vCenter's change feed); a difference starts a full sync.
    pub tag_check_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `None` disables the metrics endpoint.
    pub listen: Option<SocketAddr>,
}

pub const DEFAULT_ACTIVATION_LISTEN: &str = "0.0.0.0:80";
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8470";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9470";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bgw-agent";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cloud: RawCloud,
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    vcenter: RawVcenter,
    #[serde(default)]
    updates: RawUpdates,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpdates {
    #[serde(default)]
    trusted_keys: Vec<PathBuf>,
    trial_deadline: Option<String>,
    job_wait_limit: Option<String>,
    apply_missed_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVcenter {
    sync_interval: Option<String>,
    tag_check_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    endpoint: String,
    region: String,
    ca_file: Option<PathBuf>,
    proxy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    state_dir: Option<PathBuf>,
    timezone: Option<String>,
    activation_listen: Option<String>,
    heartbeat_interval: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    /// An address, or `"off"`.
    listen: Option<String>,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` only labels errors (and anchors relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let invalid = |message: String| Error::ConfigInvalid {
            path: path.to_path_buf(),
            message,
        };
        let bad_value = |key: &str, value: &str, expected: String| {
            let (key, value) = (key.to_string(), value.to_string());
            move |source: BoxError| Error::ConfigValue {
                path: path.to_path_buf(),
                key,
                value,
                expected,
                source,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|source| Error::ConfigSyntax {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let absolute = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };

        let endpoint = url::Url::parse(&raw.cloud.endpoint).map_err(|e| {
            bad_value(
                "cloud.endpoint",
                &raw.cloud.endpoint,
                "an https:// URL".into(),
            )(e.into())
        })?;
        if endpoint.scheme() != "https" {
            return Err(invalid(format!(
                "cloud.endpoint {:?}: must be an https:// URL (credentials travel over it)",
                raw.cloud.endpoint
            )));
        }
        if endpoint.host_str().is_none() {
            return Err(invalid("cloud.endpoint: the URL has no host".into()));
        }
        let region = raw.cloud.region.trim().to_string();
        if region.is_empty()
            || !region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(format!(
                "cloud.region {:?}: expected a region name such as us-east-1",
                raw.cloud.region
            )));
        }
        let ca_file = raw.cloud.ca_file.map(absolute);
        if let Some(ca) = &ca_file {
            if !ca.is_file() {
                return Err(invalid(format!(
                    "cloud.ca_file {}: no such file",
                    ca.display()
                )));
            }
        }
        let proxy = match raw.cloud.proxy.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                Some(ProxyUrl::parse(text).map_err(|why| invalid(format!("cloud.proxy: {why}")))?)
            }
        };

        let tz_name = raw.gateway.timezone.unwrap_or_else(|| "UTC".into());
        let timezone: chrono_tz::Tz = tz_name.parse().map_err(|_| {
            invalid(format!(
                "gateway.timezone {tz_name:?}: not an IANA time zone (e.g. Europe/Paris, UTC)"
            ))
        })?;
        let addr = |key: &str, value: Option<String>, default: &str| -> Result<SocketAddr> {
            let value = value.unwrap_or_else(|| default.to_string());
            value.parse().map_err(|e: std::net::AddrParseError| {
                bad_value(
                    key,
                    &value,
                    format!("an IP address and port, e.g. {default}"),
                )(e.into())
            })
        };
        let activation_listen = addr(
            "gateway.activation_listen",
            raw.gateway.activation_listen,
            DEFAULT_ACTIVATION_LISTEN,
        )?;
        let duration = |key: &str, value: Option<String>, default: &str, min: u64, max: u64| {
            let text = value.unwrap_or_else(|| default.to_string());
            let d = humantime::parse_duration(&text).map_err(|e| {
                bad_value(key, &text, format!("a duration such as {default:?}"))(e.into())
            })?;
            if d < Duration::from_secs(min) || d > Duration::from_secs(max) {
                return Err(invalid(format!(
                    "{key} {text:?}: must be between {} and {}",
                    humantime::format_duration(Duration::from_secs(min)),
                    humantime::format_duration(Duration::from_secs(max))
                )));
            }
            Ok(d)
        };
        let heartbeat_interval = duration(
            "gateway.heartbeat_interval",
            raw.gateway.heartbeat_interval,
            "60s",
            1,
            3600,
        )?;
        let state_dir = absolute(
            raw.gateway
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        );
        let admin_listen = addr("admin.listen", raw.admin.listen, DEFAULT_ADMIN_LISTEN)?;
        if !admin_listen.ip().is_loopback() {
            return Err(invalid(format!(
                "admin.listen {admin_listen}: the admin endpoint must listen on a loopback address"
            )));
        }
        let metrics_listen = match raw.metrics.listen.as_deref() {
            Some("off") => None,
            other => Some(addr(
                "metrics.listen",
                other.map(str::to_string),
                DEFAULT_METRICS_LISTEN,
            )?),
        };
        let vcenter = VcenterConfig {
            sync_interval: duration(
                "vcenter.sync_interval",
                raw.vcenter.sync_interval,
                "1h",
                60,
                7 * 86400,
            )?,
            tag_check_interval: duration(
                "vcenter.tag_check_interval",
                raw.vcenter.tag_check_interval,
                "5m",
                1,
                86400,
            )?,
        };
        let mut trusted_keys = Vec::new();
        for key in raw.updates.trusted_keys {
            let key = absolute(key);
            trusted_keys.push(
                bgw_update::keys::PublicKey::read(&key)
                    .map_err(|e| invalid(format!("updates.trusted_keys: {e}")))?,
            );
        }
        let updates = UpdatesConfig {
            trusted_keys,
            trial_deadline: duration(
                "updates.trial_deadline",
                raw.updates.trial_deadline,
                "120s",
                1,
                3600,
            )?,
            job_wait_limit: duration(
                "updates.job_wait_limit",
                raw.updates.job_wait_limit,
                "2h",
                0,
                7 * 86400,
            )?,
            apply_missed_after: duration(
                "updates.apply_missed_after",
                raw.updates.apply_missed_after,
                "14d",
                0,
                366 * 86400,
            )?,
        };
        Ok(Config {
            updates,
            vcenter,
            cloud: CloudConfig {
                endpoint,
                region,
                ca_file,
                proxy,
            },
            gateway: GatewayConfig {
                state_dir,
                timezone,
                activation_listen,
                heartbeat_interval,
            },
            admin: AdminConfig {
                listen: admin_listen,
            },
            metrics: MetricsConfig {
                listen: metrics_listen,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/bgw-agent/agent.toml"))
    }

    const MINIMAL: &str = "[cloud]\nendpoint = \"https://cloud:8443\"\nregion = \"us-east-1\"\n";

    #[test]
    fn defaults_fill_the_rest() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.gateway.activation_listen.to_string(), "0.0.0.0:80");
        assert_eq!(c.gateway.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(c.gateway.timezone, chrono_tz::UTC);
        assert_eq!(c.gateway.state_dir, PathBuf::from("/var/lib/bgw-agent"));
        assert_eq!(c.metrics.listen.unwrap().to_string(), "127.0.0.1:9470");
        assert_eq!(c.vcenter.sync_interval, Duration::from_secs(3600));
        assert_eq!(c.vcenter.tag_check_interval, Duration::from_secs(300));
        assert!(c.updates.trusted_keys.is_empty());
        assert_eq!(c.updates.trial_deadline, Duration::from_secs(120));
        assert_eq!(c.updates.job_wait_limit, Duration::from_secs(7200));
        assert_eq!(
            c.updates.apply_missed_after,
            Duration::from_secs(14 * 86400)
        );
        let c = parse(&format!(
            "{MINIMAL}[vcenter]\nsync_interval = \"6h\"\ntag_check_interval = \"30s\"\n"
        ))
        .unwrap();
        assert_eq!(c.vcenter.sync_interval, Duration::from_secs(6 * 3600));
        assert_eq!(c.vcenter.tag_check_interval, Duration::from_secs(30));
    }

    #[test]
    fn a_proxy_is_optional_and_its_password_never_shown() {
        assert!(parse(MINIMAL).unwrap().cloud.proxy.is_none());
        let c = parse(&format!(
            "{MINIMAL}proxy = \"http://ops:hunter2@proxy.example:3128\"\n"
        ))
        .unwrap();
        let proxy = c.cloud.proxy.clone().unwrap();
        assert_eq!(proxy.expose().password(), Some("hunter2"));
        assert_eq!(proxy.to_string(), "http://ops:***@proxy.example:3128");
        assert!(!format!("{:?}", c.cloud).contains("hunter2"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(&format!("{MINIMAL}[gateway]\nheartbeat = \"5s\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (extra, key) in [
            (
                "[gateway]\ntimezone = \"Mars/Olympus\"\n",
                "gateway.timezone",
            ),
            (
                "[gateway]\nheartbeat_interval = \"soon\"\n",
                "gateway.heartbeat_interval",
            ),
            (
                "[gateway]\nactivation_listen = \"port 80\"\n",
                "gateway.activation_listen",
            ),
            ("[admin]\nlisten = \"0.0.0.0:1\"\n", "admin.listen"),
            (
                "[vcenter]\nsync_interval = \"10s\"\n",
                "vcenter.sync_interval",
            ),
            (
                "[vcenter]\ntag_check_interval = \"often\"\n",
                "vcenter.tag_check_interval",
            ),
            (
                "[updates]\ntrusted_keys = [\"/nonexistent/release.pub\"]\n",
                "updates.trusted_keys",
            ),
            (
                "[updates]\ntrial_deadline = \"0s\"\n",
                "updates.trial_deadline",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        for proxy in [
            "socks5://p:1080",
            "proxy:3128",
            "http://p:3128/path",
            "http://:3128",
        ] {
            let err = parse(&format!("{MINIMAL}proxy = \"{proxy}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("cloud.proxy"), "{proxy}: {err}");
        }
        let err = parse("[cloud]\nendpoint = \"http://x\"\nregion = \"us-east-1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cloud.endpoint"), "{err}");
    }
}
