//! Shared by the `sync_*` tests: a vCenter simulator with tagged VMs, bgw-cloud, and a
//! bgw-agent activated through its activation endpoint and `aws backup-gateway create-gateway`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bgw_tests::aws::AwsCli;
use bgw_tests::cloud::{Cloud, CloudOptions};
use bgw_tests::paths::workspace_binary;
use bgw_tests::process::ChildProcess;
use bgw_tests::vcsim::{Vcsim, VcsimOptions};
use bgw_tests::vcsim_soap::SoapSession;
use bgw_tests::vcsim_tags::{Cardinality, TagClient};
use serde_json::Value;

pub struct Setup {
    pub vcsim: Vcsim,
    pub cloud: Cloud,
    pub agent: ChildProcess,
    pub agent_dir: tempfile::TempDir,
    pub admin: String,
    pub gateway_arn: String,
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `timeout`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn small_inventory() -> VcsimOptions {
    VcsimOptions {
        clusters: 2,
        hosts_per_cluster: 1,
        standalone_hosts: 1,
        vms_per_pool: 4,
        ..Default::default()
    }
}

/// Tags every VM: `env/prod` on even ones, `env/dev` on odd ones, `tier/gold` on all.
pub async fn tag_vms(vcsim: &Vcsim) -> Vec<String> {
    let mut soap = SoapSession::login(vcsim).await.expect("SOAP login");
    let mut vms = soap.list_vms().await.expect("list VMs");
    vms.sort();
    let tags = TagClient::login(vcsim).await.expect("REST login");
    let env = tags
        .create_category("env", Cardinality::Single)
        .await
        .unwrap();
    let tier = tags
        .create_category("tier", Cardinality::Single)
        .await
        .unwrap();
    let prod = tags.create_tag(&env, "prod").await.unwrap();
    let dev = tags.create_tag(&env, "dev").await.unwrap();
    let gold = tags.create_tag(&tier, "gold").await.unwrap();
    let morefs: Vec<&str> = vms.iter().map(|v| v.moref.as_str()).collect();
    let even: Vec<&str> = morefs.iter().copied().step_by(2).collect();
    let odd: Vec<&str> = morefs.iter().copied().skip(1).step_by(2).collect();
    tags.attach_tag_to_vms(&prod, &even).await.unwrap();
    tags.attach_tag_to_vms(&dev, &odd).await.unwrap();
    tags.attach_tag_to_vms(&gold, &morefs).await.unwrap();
    vms.iter().map(|v| v.moref.clone()).collect()
}

pub fn aws(cloud: &Cloud, args: &[&str]) -> Value {
    let r = AwsCli::new(cloud).run(args).expect("run aws-cli");
    assert!(r.success(), "aws {args:?} failed: {}", r.stderr());
    r.json().unwrap_or(Value::Null)
}

/// Runs aws-cli and returns its stderr when it fails (`None` on success).
pub fn aws_error(cloud: &Cloud, args: &[&str]) -> Option<String> {
    let r = AwsCli::new(cloud).run(args).expect("run aws-cli");
    (!r.success()).then(|| r.stderr().to_string())
}

impl Setup {
    pub async fn start(options: VcsimOptions) -> Setup {
        let vcsim = Vcsim::start(options).expect("start vcsim");
        tag_vms(&vcsim).await;
        let cloud = Cloud::start(CloudOptions::default()).expect("start bgw-cloud");
        let agent_dir = tempfile::tempdir().unwrap();
        let config = agent_dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[cloud]\nendpoint = \"{}\"\nregion = \"{}\"\nca_file = \"{}\"\n\n\
                 [gateway]\nstate_dir = \"{}\"\ntimezone = \"Europe/Paris\"\n\
                 activation_listen = \"127.0.0.1:0\"\nheartbeat_interval = \"1s\"\n\n\
                 [admin]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"off\"\n\n\
                 [vcenter]\ntag_check_interval = \"2s\"\n",
                cloud.endpoint(),
                cloud.region(),
                cloud.ca_file().display(),
                agent_dir.path().join("state").display()
            ),
        )
        .unwrap();
        let (agent, endpoints) = start_agent(&config, agent_dir.path()).await;
        let activation = endpoints["activation"].as_str().unwrap().to_string();
        let admin = endpoints["admin"].as_str().unwrap().to_string();
        let http = reqwest::Client::new();
        let url = format!(
            "http://{activation}/?activationRegion={}&gatewayType=BACKUP_VM&no_redirect",
            cloud.region()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let key = loop {
            let r = http.get(&url).send().await.expect("activation endpoint");
            if r.status().is_success() {
                break r.text().await.unwrap().trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no activation key: {}",
                r.status()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let created = aws(
            &cloud,
            &[
                "create-gateway",
                "--activation-key",
                &key,
                "--gateway-display-name",
                "sync-test",
                "--gateway-type",
                "BACKUP_VM",
            ],
        );
        let gateway_arn = created["GatewayArn"].as_str().unwrap().to_string();
        let setup = Setup {
            vcsim,
            cloud,
            agent,
            agent_dir,
            admin,
            gateway_arn,
        };
        let _ = setup
            .wait_status("activation", |s| (s["activated"] == true).then_some(()))
            .await;
        setup
    }

    /// Kills the agent at once (like a crash or power loss) and starts it again on the same
    /// state directory.
    pub async fn kill_and_restart_agent(&mut self) {
        self.agent.kill();
        let state = self.agent_dir.path().join("state");
        let _ = std::fs::remove_file(state.join("endpoints.json"));
        let config = self.agent_dir.path().join("agent.toml");
        let (agent, endpoints) = start_agent(&config, self.agent_dir.path()).await;
        self.agent = agent;
        self.admin = endpoints["admin"].as_str().unwrap().to_string();
    }

    pub async fn status(&self) -> Value {
        reqwest::get(format!("http://{}/status", self.admin))
            .await
            .expect("admin endpoint")
            .json()
            .await
            .expect("status JSON")
    }

    pub async fn wait_status<T>(&self, what: &str, mut f: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status().await;
            if let Some(v) = f(&s) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn aws(&self, args: &[&str]) -> Value {
        aws(&self.cloud, args)
    }

    /// Imports the simulator as a hypervisor and associates it with the gateway.
    pub fn import_and_associate(&self) -> String {
        self.import_and_associate_at(&self.vcsim.host_port())
    }

    /// Imports the simulator as reached at `host` (a proxy in front of it, say) and associates
    /// it with the gateway.
    pub fn import_and_associate_at(&self, host: &str) -> String {
        let hv = self.aws(&[
            "import-hypervisor-configuration",
            "--name",
            "vcsim",
            "--host",
            host,
            "--username",
            self.vcsim.username(),
            "--password",
            self.vcsim.password(),
        ]);
        let arn = hv["HypervisorArn"].as_str().unwrap().to_string();
        self.aws(&[
            "associate-gateway-to-server",
            "--gateway-arn",
            &self.gateway_arn,
            "--server-arn",
            &arn,
        ]);
        arn
    }

    pub fn hypervisor(&self, arn: &str) -> Value {
        self.aws(&["get-hypervisor", "--hypervisor-arn", arn])["Hypervisor"].clone()
    }

    pub async fn wait_hypervisor<T>(
        &self,
        arn: &str,
        what: &str,
        mut f: impl FnMut(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let h = self.hypervisor(arn);
            if let Some(v) = f(&h) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; hypervisor: {h:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn vms(&self, arn: &str) -> Vec<Value> {
        let out = self.aws(&["list-virtual-machines", "--hypervisor-arn", arn]);
        out["VirtualMachines"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Starts `bgw-agent run` and waits for the endpoints file it writes when ready.
async fn start_agent(config: &std::path::Path, dir: &std::path::Path) -> (ChildProcess, Value) {
    let bin = workspace_binary("bgw-agent", "BGW_AGENT_BIN").expect("bgw-agent binary");
    let mut command = Command::new(bin);
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("BGW_LOG", "info,bgw_agent=debug");
    let agent = ChildProcess::spawn("bgw-agent", command, dir).expect("spawn bgw-agent");
    let endpoints: PathBuf = dir.join("state").join("endpoints.json");
    let value = eventually(
        "the agent's endpoints file",
        Duration::from_secs(30),
        || {
            std::fs::read(&endpoints)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        },
    )
    .await;
    (agent, value)
}
