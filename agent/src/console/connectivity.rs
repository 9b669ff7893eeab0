//! 3: Test network connectivity — the cloud endpoint (DNS, TCP, TLS), vCenter (443), each ESXi
//! host the agent has seen (443 and 902) and the NTP servers: PASSED or FAILED per line, with
//! the reason. The checks run at the same time in the background, each with a short timeout,
//! and each line changes as its answer arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{input::Prompt, spinner, Console};
use crate::config::Config;
use crate::status::StatusReport;

/// Width of the label column.
const LABEL: usize = 32;

/// How long one check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Dns {
        host: String,
    },
    Tcp {
        host: String,
        port: u16,
    },
    /// An HTTPS request to the cloud endpoint with the agent's trust roots and proxy.
    Tls,
    Ntp {
        server: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Passed(String),
    Failed(String),
    /// Nothing to test (no vCenter associated yet, ...).
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: String,
    pub check: Option<Check>,
    pub outcome: Outcome,
}

/// One run of the test.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Run {
    pub rows: Vec<Row>,
}

impl Run {
    pub fn running(&self) -> bool {
        self.rows.iter().any(|r| r.outcome == Outcome::Pending)
    }

    pub fn counts(&self) -> (usize, usize) {
        let passed = self
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Passed(_)))
            .count();
        let failed = self
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count();
        (passed, failed)
    }

    /// The result lines, as the screen and the command prompt show them; a long reason goes
    /// on to a second line.
    pub fn lines(&self, spin: char) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.rows {
            let (word, why) = match &r.outcome {
                Outcome::Pending => ("testing", spin.to_string()),
                Outcome::Passed(why) => ("PASSED", why.clone()),
                Outcome::Failed(why) => ("FAILED", why.clone()),
                Outcome::Skipped(why) => ("-", why.clone()),
            };
            let room = super::WIDTH - LABEL - 9;
            let chars: Vec<char> = why.chars().collect();
            let cut = if chars.len() <= room {
                chars.len()
            } else {
                chars[..room]
                    .iter()
                    .rposition(|c| *c == ' ')
                    .unwrap_or(room)
            };
            let first: String = chars[..cut].iter().collect();
            let label: String = r.label.chars().take(LABEL).collect();
            out.push(format!("{label:<LABEL$} {word:<7} {first}"));
            let rest: String = chars[cut..].iter().collect();
            if !rest.trim().is_empty() {
                out.push(format!("{:<w$}{}", "", rest.trim(), w = LABEL + 9));
            }
        }
        out
    }
}

/// `host` or `host:port` (IPv6 in brackets) split, with `default` as the port.
pub fn host_port(text: &str, default: u16) -> (String, u16) {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.ip().to_string(), addr.port());
    }
    match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h.to_string(), port),
            Err(_) => (text.to_string(), default),
        },
        _ => (text.trim_matches(['[', ']']).to_string(), default),
    }
}

fn row(label: String, check: Check) -> Row {
    Row {
        label,
        check: Some(check),
        outcome: Outcome::Pending,
    }
}

fn skipped(label: &str, why: &str) -> Row {
    Row {
        label: label.to_string(),
        check: None,
        outcome: Outcome::Skipped(why.to_string()),
    }
}

/// The checks for this gateway: its configuration, what the agent reports, its NTP servers.
pub fn plan(config: &Config, status: Option<&StatusReport>, ntp: &[String]) -> Run {
    let mut rows = Vec::new();
    let endpoint = &config.cloud.endpoint;
    let host = endpoint.host_str().unwrap_or_default().to_string();
    let port = endpoint.port_or_known_default().unwrap_or(443);
    match &config.cloud.proxy {
        Some(proxy) => {
            let url = proxy.expose();
            let phost = url.host_str().unwrap_or_default().to_string();
            let pport = url.port_or_known_default().unwrap_or(80);
            rows.push(row(
                format!("Proxy DNS  {phost}"),
                Check::Dns {
                    host: phost.clone(),
                },
            ));
            rows.push(row(
                format!("Proxy TCP  {phost}:{pport}"),
                Check::Tcp {
                    host: phost,
                    port: pport,
                },
            ));
        }
        None => {
            rows.push(row(
                format!("Cloud DNS  {host}"),
                Check::Dns { host: host.clone() },
            ));
            rows.push(row(
                format!("Cloud TCP  {host}:{port}"),
                Check::Tcp {
                    host: host.clone(),
                    port,
                },
            ));
        }
    }
    rows.push(row(format!("Cloud TLS  {host}:{port}"), Check::Tls));
    match status {
        None => rows.push(skipped(
            "vCenter",
            "agent not running: it knows the vCenter",
        )),
        Some(s) => match &s.hypervisor.host {
            None => rows.push(skipped("vCenter", "no hypervisor associated yet")),
            Some(vc) => {
                let (vhost, vport) = host_port(vc, 443);
                rows.push(row(
                    format!("vCenter    {vhost}:{vport}"),
                    Check::Tcp {
                        host: vhost,
                        port: vport,
                    },
                ));
            }
        },
    }
    let esxi = status
        .map(|s| s.sync.esxi_hosts.clone())
        .unwrap_or_default();
    if esxi.is_empty() {
        rows.push(skipped("ESXi hosts", "none known yet (learned at a sync)"));
    }
    for h in esxi.iter().take(6) {
        for p in [443, 902] {
            rows.push(row(
                format!("ESXi       {h}:{p}"),
                Check::Tcp {
                    host: h.clone(),
                    port: p,
                },
            ));
        }
    }
    for server in ntp.iter().take(4) {
        rows.push(row(
            format!("NTP        {server}"),
            Check::Ntp {
                server: server.clone(),
            },
        ));
    }
    if ntp.is_empty() {
        rows.push(skipped("NTP", "no NTP server configured (5: System time)"));
    }
    Run { rows }
}

/// Runs one check; the answer is the outcome line.
pub async fn check(check: &Check, config: &Config) -> Outcome {
    match tokio::time::timeout(CHECK_TIMEOUT, run_check(check, config)).await {
        Ok(Ok(done)) => Outcome::Passed(done),
        Ok(Err(why)) => Outcome::Failed(why),
        Err(_) => Outcome::Failed(format!(
            "no answer within {} s (blocked by a firewall?)",
            CHECK_TIMEOUT.as_secs()
        )),
    }
}

async fn run_check(check: &Check, config: &Config) -> Result<String, String> {
    let started = Instant::now();
    match check {
        Check::Dns { host } => {
            if host.parse::<std::net::IpAddr>().is_ok() {
                return Ok("an IP address: nothing to resolve".into());
            }
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| "does not resolve: check the DNS servers".to_string())?
                .collect();
            match addrs.first() {
                Some(a) => Ok(format!("resolves to {}", a.ip())),
                None => Err("no address: check the DNS servers".into()),
            }
        }
        Check::Tcp { host, port } => {
            tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|e| io_reason(&e))?;
            Ok(format!("connected in {} ms", started.elapsed().as_millis()))
        }
        Check::Tls => {
            let time = crate::clock::CloudTime::new(std::sync::Arc::new(crate::clock::SystemClock));
            let client =
                crate::cloud::CloudClient::new(&config.cloud, time).map_err(|e| e.to_string())?;
            let status = client.probe(CHECK_TIMEOUT).await.map_err(|text| {
                if text.to_ascii_lowercase().contains("certificate") {
                    format!("{text} (check cloud.ca_file)")
                } else {
                    text
                }
            })?;
            Ok(format!("certificate trusted, HTTP {status}"))
        }
        Check::Ntp { server } => ntp_query(server).await,
    }
}

/// A socket error in a few words, with what to look at.
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        TimedOut => "timed out: check firewalls".into(),
        NetworkUnreachable => "network unreachable: check the default route".into(),
        HostUnreachable => "host unreachable: check routes".into(),
        _ => e.to_string(),
    }
}

/// One SNTP request (RFC 4330): the server answers with its time.
async fn ntp_query(server: &str) -> Result<String, String> {
    let (host, port) = host_port(server, 123);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| "does not resolve: check the DNS servers".to_string())?
        .next()
        .ok_or("no address")?;
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = [0u8; 48];
    request[0] = 0x1b; // leap 0, version 3, mode 3 (client)
    socket
        .send_to(&request, addr)
        .await
        .map_err(|e| io_reason(&e))?;
    let mut answer = [0u8; 48];
    let (n, _) = socket
        .recv_from(&mut answer)
        .await
        .map_err(|e| io_reason(&e))?;
    if n < 48 || answer[0] & 0x07 != 4 {
        return Err("not an NTP answer".into());
    }
    let seconds = u32::from_be_bytes([answer[40], answer[41], answer[42], answer[43]]);
    let unix = i64::from(seconds) - 2_208_988_800;
    let offset = unix - chrono::Utc::now().timestamp();
    Ok(format!(
        "answered from {}, clock offset {offset:+} s",
        addr.ip()
    ))
}

pub fn prompt(console: &Console) -> Prompt {
    match &console.connectivity {
        Some(run) if run.running() => Prompt::BackOnly,
        _ => Prompt::Number { min: 1, max: 1 },
    }
}

pub fn render(console: &Console) -> Vec<String> {
    let mut out = vec!["3: Test network connectivity".to_string(), String::new()];
    match &console.connectivity {
        None => out.push("Starting...".into()),
        Some(run) => {
            out.extend(run.lines(spinner(console.ticks)));
            out.push(String::new());
            if run.running() {
                out.push(format!(
                    "Testing (each check gives up after {} s)...",
                    CHECK_TIMEOUT.as_secs()
                ));
            } else {
                let (passed, failed) = run.counts();
                out.push(format!("{passed} PASSED, {failed} FAILED.   1: Test again"));
                if failed > 0 {
                    out.push(
                        "Fix what FAILED (2: Network configuration: address, DNS, proxy;".into(),
                    );
                    out.push(
                        "the firewall between the gateway and that endpoint), then test again."
                            .into(),
                    );
                }
            }
        }
    }
    out
}
