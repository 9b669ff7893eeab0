//! What went wrong with vCenter, in the operator's terms: the hypervisor state it means
//! (`OFFLINE` for the network, `ERROR` for TLS, authentication and privileges) and the stage of
//! `TestHypervisorConfiguration` that failed (DNS, TCP, TLS, AUTHENTICATION, PRIVILEGES).

use std::net::SocketAddr;
use std::time::Duration;

use bgw_protocol::commands::{CommandOutcome, TestStage};
use bgw_protocol::heartbeat::HypervisorState;
use vsphere_client::{Client, ConnectOptions, ErrorKind, Secret, Trust};

use super::trust::TrustStore;

/// How long each network step of a test may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on the whole test, below the cloud's 20 s wait for the answer.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The hypervisor state an error from vCenter means.
pub fn state_for(error: &vsphere_client::Error) -> HypervisorState {
    match error.kind() {
        ErrorKind::Network => HypervisorState::Offline,
        _ => HypervisorState::Error,
    }
}

/// The test stage an error from vCenter belongs to.
pub fn stage_for(error: &vsphere_client::Error) -> TestStage {
    match error.kind() {
        ErrorKind::Network => TestStage::Tcp,
        ErrorKind::Tls => TestStage::Tls,
        ErrorKind::Authentication => TestStage::Authentication,
        ErrorKind::Privilege => TestStage::Privileges,
        ErrorKind::InvalidInput => TestStage::Dns,
        _ => TestStage::Vcenter,
    }
}

/// Splits `host`, `host:port`, `[v6]:port` or a bare IPv6 address into name and port
/// (default 443).
pub fn split_host(host: &str) -> Result<(String, u16), String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((host.to_string(), 443));
    }
    let authority = format!("https://{host}/");
    let url = url::Url::parse(&authority)
        .map_err(|e| format!("{host:?} is not a host name or address: {e}"))?;
    if url.path() != "/" || url.username() != "" || url.query().is_some() {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let name = url
        .host_str()
        .ok_or_else(|| format!("{host:?} has no host name"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((name, url.port().unwrap_or(443)))
}

fn failed(stage: TestStage, message: impl Into<String>) -> CommandOutcome {
    CommandOutcome::Failed {
        stage,
        message: message.into(),
    }
}

/// Runs `TestHypervisorConfiguration`: resolves the name, opens a TCP connection, checks the
/// certificate (against the recorded thumbprint when there is one), logs in, and reads the VM
/// inventory and its tags. Bounded by [`TEST_TIMEOUT`]. Never records a thumbprint.
pub async fn test(
    host: &str,
    username: Option<&str>,
    password: Option<&str>,
    trust: &TrustStore,
) -> CommandOutcome {
    match tokio::time::timeout(TEST_TIMEOUT, test_steps(host, username, password, trust)).await {
        Ok(outcome) => outcome,
        Err(_) => failed(
            TestStage::Timeout,
            format!(
                "vCenter at {host} did not answer within {} s",
                TEST_TIMEOUT.as_secs()
            ),
        ),
    }
}

async fn test_steps(
    host: &str,
    username: Option<&str>,
    password: Option<&str>,
    trust: &TrustStore,
) -> CommandOutcome {
    let (name, port) = match split_host(host) {
        Ok(v) => v,
        Err(e) => return failed(TestStage::Dns, e),
    };
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((name.as_str(), port)))
            .await
        {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return failed(TestStage::Dns, format!("cannot resolve {name}: {e}")),
            Err(_) => return failed(TestStage::Dns, format!("resolving {name} timed out")),
        };
    if addrs.is_empty() {
        return failed(TestStage::Dns, format!("{name} resolves to no address"));
    }
    let mut last_error = String::new();
    let mut connected = false;
    for addr in &addrs {
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {
                connected = true;
                break;
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => last_error = format!("{addr}: timed out"),
        }
    }
    if !connected {
        return failed(
            TestStage::Tcp,
            format!("cannot open a TCP connection to {name} port {port} ({last_error})"),
        );
    }
    let (Some(username), Some(password)) = (username, password) else {
        return failed(
            TestStage::Authentication,
            format!("no user name and password to log in to {host} with"),
        );
    };
    let pinned = trust.pinned(host);
    let trust_mode = match pinned {
        Some(pin) => Trust::Thumbprint(pin),
        None => Trust::TrustOnFirstUse,
    };
    let options = ConnectOptions::new(host, username, Secret::new(password), trust_mode);
    let client = match Client::connect(options).await {
        Ok((client, _info)) => client,
        Err(e) => return failed(stage_for(&e), e.to_string()),
    };
    let outcome = check_privileges(&client).await;
    if let Err(e) = client.logout().await {
        tracing::debug!(error = %e, "logout after a hypervisor test failed");
    }
    outcome
}

/// The gateway needs to read the VM inventory and the tags attached to VMs.
async fn check_privileges(client: &Client) -> CommandOutcome {
    let mut first: Option<String> = None;
    if let Err(e) = client
        .inventory(|page| {
            if first.is_none() {
                first = page.first().map(|vm| vm.moref.clone());
            }
        })
        .await
    {
        return failed(stage_for(&e), format!("cannot read the VM inventory: {e}"));
    }
    let sample: Vec<String> = first.into_iter().collect();
    if let Err(e) = client.tags_for(&sample).await {
        let stage = match e.kind() {
            ErrorKind::Authentication | ErrorKind::Privilege => TestStage::Privileges,
            _ => stage_for(&e),
        };
        return failed(stage, format!("cannot read vSphere tags: {e}"));
    }
    CommandOutcome::Succeeded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            split_host("vc.example.com").unwrap(),
            ("vc.example.com".into(), 443)
        );
        assert_eq!(split_host("vc:8443").unwrap(), ("vc".into(), 8443));
        assert_eq!(split_host("10.0.0.5").unwrap(), ("10.0.0.5".into(), 443));
        assert_eq!(
            split_host("10.0.0.5:9443").unwrap(),
            ("10.0.0.5".into(), 9443)
        );
        assert_eq!(split_host("fe80::1").unwrap(), ("fe80::1".into(), 443));
        assert_eq!(split_host("[::1]:8443").unwrap(), ("::1".into(), 8443));
        assert!(split_host("").is_err());
        assert!(split_host("vc/path").is_err());
        assert!(split_host("user@vc").is_err());
    }

    #[tokio::test]
    async fn unresolvable_name_fails_at_dns() {
        let dir = tempfile::tempdir().unwrap();
        let trust = TrustStore::new(crate::state::Store::open(dir.path()).unwrap());
        match test("no-such-host.invalid", Some("u"), Some("p"), &trust).await {
            CommandOutcome::Failed { stage, message } => {
                assert_eq!(stage, TestStage::Dns, "{message}");
                assert!(message.contains("no-such-host.invalid"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn closed_port_fails_at_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dir = tempfile::tempdir().unwrap();
        let trust = TrustStore::new(crate::state::Store::open(dir.path()).unwrap());
        match test(&format!("127.0.0.1:{port}"), Some("u"), Some("p"), &trust).await {
            CommandOutcome::Failed { stage, message } => {
                assert_eq!(stage, TestStage::Tcp, "{message}");
                assert!(message.contains(&port.to_string()));
            }
            other => panic!("{other:?}"),
        }
    }
}
