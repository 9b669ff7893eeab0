//! The agent's cloud client against an in-process `bgw-cloud` with its real gateway protocol
//! routes: a gateway whose clock is hours off still talks to the cloud (the cloud refuses the
//! skewed signature with its own time, the agent corrects and retries), and rotated
//! credentials replace the old pair once used; the unauthenticated activation calls are
//! rate-limited per client address.

use std::sync::Arc;

use bgw_agent::clock::{CloudTime, OffsetClock, SystemClock};
use bgw_agent::cloud::CloudClient;
use bgw_agent::config::CloudConfig;
use bgw_protocol::activation::{ActivationRequest, ActivationStatus, ActivationWait};
use bgw_protocol::heartbeat::{Heartbeat, HypervisorStatus, ResourceSummary, UpdateStatus};
use bgw_protocol::Secret;

fn heartbeat() -> Heartbeat {
    Heartbeat {
        agent_version: "test".into(),
        hostname: "gw".into(),
        ip_addresses: vec![],
        mac_addresses: vec![],
        timezone: "UTC".into(),
        uptime_seconds: 1,
        interval_seconds: 60,
        resources: ResourceSummary::default(),
        hypervisor: HypervisorStatus::default(),
        bandwidth_limit_bps: None,
        update: UpdateStatus::default(),
        config_version: 0,
    }
}

/// bgw-cloud in this process, on a free loopback port, until `stop`.
struct InProcessCloud {
    _data: tempfile::TempDir,
    state: Arc<bgw_cloud::server::AppState>,
    config: CloudConfig,
    stop: tokio_util::sync::CancellationToken,
    serving: tokio::task::JoinHandle<Result<(), bgw_cloud::error::Error>>,
}

impl InProcessCloud {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let server = bgw_cloud::server::bind(bgw_cloud::ServeConfig::new(
            "127.0.0.1:0",
            data.path().join("cloud"),
        ))
        .await
        .unwrap();
        let state = server.state();
        let config = CloudConfig {
            endpoint: server.url().parse().unwrap(),
            region: "us-east-1".into(),
            ca_file: Some(data.path().join("cloud/tls/cert.pem")),
            proxy: None,
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let server_stop = stop.clone();
        let serving = tokio::spawn(server.run(async move { server_stop.cancelled().await }));
        InProcessCloud {
            _data: data,
            state,
            config,
            stop,
            serving,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.serving.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_gateway_clock_is_corrected_from_the_cloud_answer() {
    let cloud = InProcessCloud::start().await;
    let state = cloud.state.clone();
    let config = cloud.config.clone();
    let good = CloudClient::new(&config, CloudTime::new(Arc::new(SystemClock))).unwrap();

    // Activation, with the operator's CreateGateway done directly in the cloud's store.
    let secret = Secret::new("0123456789abcdef");
    let secret_sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(secret.expose().as_bytes()))
    };
    let issued = good
        .request_activation_key(&ActivationRequest {
            agent_id: "agent-1".into(),
            agent_secret_sha256: secret_sha256,
            agent_version: "test".into(),
            hostname: "gw".into(),
            region: "us-east-1".into(),
            gateway_type: bgw_protocol::activation::GatewayType::BackupVm,
        })
        .await
        .unwrap();
    let arn = "arn:aws:backup-gateway:us-east-1:123456789012:gateway/bgw-0000000000000001";
    let gateway = serde_json::from_value(serde_json::json!({
        "arn": arn, "display_name": "skewed", "gateway_type": "BACKUP_VM",
        "created": chrono::Utc::now(),
    }))
    .unwrap();
    state
        .api
        .store
        .create_gateway(
            &issued.activation_key,
            chrono::Utc::now(),
            &gateway,
            &Default::default(),
        )
        .unwrap();
    let answer = good
        .wait_activation(&ActivationWait {
            agent_id: "agent-1".into(),
            agent_secret: secret,
            activation_key: issued.activation_key,
            wait_seconds: 0,
        })
        .await
        .unwrap();
    let ActivationStatus::Activated { credentials, .. } = answer else {
        panic!("not activated: {answer:?}");
    };

    // Two hours behind: SigV4 alone would refuse every request.
    let skewed_time = CloudTime::new(Arc::new(OffsetClock(-2 * 3600 * 1000)));
    let skewed = CloudClient::new(&config, skewed_time.clone()).unwrap();
    skewed.set_credentials(Some(credentials));
    let ack = skewed.heartbeat(&heartbeat()).await.unwrap();
    let offset = skewed_time.offset_ms();
    assert!(
        (offset - 2 * 3600 * 1000).abs() < 5_000,
        "offset learnt: {offset} ms"
    );
    assert!((ack.server_time - chrono::Utc::now()).num_seconds().abs() < 5);
    // And the next request goes through directly.
    skewed.heartbeat(&heartbeat()).await.unwrap();

    // Rotation: the new pair works, and once used the old pair stops working.
    let old = skewed.clone();
    let rotated = skewed.rotate_credentials().await.unwrap();
    let fresh = CloudClient::new(&config, CloudTime::new(Arc::new(SystemClock))).unwrap();
    fresh.set_credentials(Some(rotated.credentials));
    old.heartbeat(&heartbeat()).await.unwrap();
    fresh.heartbeat(&heartbeat()).await.unwrap();
    let refused = old.heartbeat(&heartbeat()).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");

    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_activation_calls_are_rate_limited_per_address() {
    let cloud = InProcessCloud::start().await;
    let config = cloud.config.clone();
    let client = CloudClient::new(&config, CloudTime::new(Arc::new(SystemClock))).unwrap();
    let request = ActivationRequest {
        agent_id: "agent-flood".into(),
        agent_secret_sha256: "0".repeat(64),
        agent_version: "test".into(),
        hostname: "gw".into(),
        region: "us-east-1".into(),
        gateway_type: bgw_protocol::activation::GatewayType::BackupVm,
    };
    let burst = bgw_cloud::server::ACTIVATION_REQUEST_BURST as usize;
    for i in 0..burst {
        client
            .request_activation_key(&request)
            .await
            .unwrap_or_else(|e| panic!("request {i} of the burst refused: {e}"));
    }
    let refused = client.request_activation_key(&request).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        matches!(
            refused,
            bgw_agent::error::Error::CloudRefused { status: 429, .. }
        ),
        "{refused:?}"
    );
    assert!(text.contains("too many activation requests"), "{text}");
    cloud.stop().await;
}

/// An HTTP CONNECT proxy on a free loopback port: tunnels every CONNECT and records its target.
struct ConnectProxy {
    url: String,
    targets: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let targets = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = targets.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut client = BufReader::new(socket);
                    let mut request_line = String::new();
                    client.read_line(&mut request_line).await.unwrap();
                    loop {
                        let mut header = String::new();
                        client.read_line(&mut header).await.unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                    }
                    let mut words = request_line.split_whitespace();
                    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                        let _ = client
                            .get_mut()
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    };
                    seen.lock().unwrap().push(target.to_string());
                    let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                    client
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        ConnectProxy { url, targets }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_proxy_carries_the_cloud_traffic() {
    let cloud = InProcessCloud::start().await;
    let proxy = ConnectProxy::start().await;
    let mut config = cloud.config.clone();
    config.proxy = Some(bgw_agent::config::ProxyUrl::parse(&proxy.url).unwrap());
    let client = CloudClient::new(&config, CloudTime::new(Arc::new(SystemClock))).unwrap();
    let request = ActivationRequest {
        agent_id: "agent-behind-proxy".into(),
        agent_secret_sha256: "0".repeat(64),
        agent_version: "test".into(),
        hostname: "gw".into(),
        region: "us-east-1".into(),
        gateway_type: bgw_protocol::activation::GatewayType::BackupVm,
    };
    client.request_activation_key(&request).await.unwrap();
    let cloud_addr = format!(
        "{}:{}",
        config.endpoint.host_str().unwrap(),
        config.endpoint.port().unwrap()
    );
    assert_eq!(*proxy.targets.lock().unwrap(), vec![cloud_addr]);

    // A proxy that is down stops the traffic although the cloud itself is up.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    config.proxy = Some(bgw_agent::config::ProxyUrl::parse(&dead_url).unwrap());
    let client = CloudClient::new(&config, CloudTime::new(Arc::new(SystemClock))).unwrap();
    let err = client.request_activation_key(&request).await.unwrap_err();
    assert!(
        matches!(err, bgw_agent::error::Error::CloudUnreachable { .. }),
        "{err:?}"
    );
    cloud.stop().await;
}
