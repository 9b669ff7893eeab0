//! `bgw-agent` as a child process of a whole-system test, with bounded waits on conditions.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bgw_tests::aws::AwsCli;
use bgw_tests::cloud::Cloud;
use bgw_tests::paths::workspace_binary;
use bgw_tests::process::{run_bounded, ChildProcess};
use serde_json::Value;
use tempfile::TempDir;

pub struct AgentOptions {
    pub timezone: String,
    pub heartbeat: String,
    /// `None` = the cloud's endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    /// TOML appended to the configuration file (e.g. an `[updates]` section).
    pub extra_config: String,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            heartbeat: "1s".into(),
            endpoint: None,
            region: "us-east-1".into(),
            extra_config: String::new(),
        }
    }
}

pub struct Agent {
    pub dir: TempDir,
    pub config: PathBuf,
    binary: PathBuf,
    process: Option<ChildProcess>,
    starts: u32,
}

impl Agent {
    pub fn start(cloud: &Cloud, options: AgentOptions) -> Agent {
        let binary = workspace_binary("bgw-agent", "BGW_AGENT_BIN").expect("bgw-agent is built");
        let dir = tempfile::Builder::new()
            .prefix("bgw-agent-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("agent.toml");
        let endpoint = options
            .endpoint
            .clone()
            .unwrap_or_else(|| cloud.endpoint().to_string());
        std::fs::write(
            &config,
            format!(
                "[cloud]\nendpoint = \"{endpoint}\"\nregion = \"{}\"\nca_file = \"{}\"\n\n\
                 [gateway]\nstate_dir = \"{}\"\ntimezone = \"{}\"\nactivation_listen = \"127.0.0.1:0\"\n\
                 heartbeat_interval = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
                 [metrics]\nlisten = \"127.0.0.1:0\"\n{}",
                options.region,
                cloud.ca_file().display(),
                dir.path().join("state").display(),
                options.timezone,
                options.heartbeat,
                options.extra_config,
            ),
        )
        .unwrap();
        let mut agent = Agent {
            dir,
            config,
            binary,
            process: None,
            starts: 0,
        };
        agent.launch();
        agent
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn endpoints_file(&self) -> PathBuf {
        self.state_dir().join("endpoints.json")
    }

    pub fn launch(&mut self) {
        let _ = std::fs::remove_file(self.endpoints_file());
        self.starts += 1;
        let mut command = Command::new(&self.binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("BGW_LOG", "info,bgw_agent=debug");
        let name = format!("bgw-agent-{}", self.starts);
        let mut process = ChildProcess::spawn(&name, command, self.dir.path()).unwrap();
        let file = self.endpoints_file();
        wait_until(
            Duration::from_secs(30),
            "the agent writes endpoints.json",
            || {
                assert!(
                    process.is_running(),
                    "bgw-agent exited:\n{}",
                    process.output_tail()
                );
                file.exists().then_some(())
            },
        );
        self.process = Some(process);
    }

    pub fn endpoint(&self, which: &str) -> String {
        let v: Value =
            serde_json::from_slice(&std::fs::read(self.endpoints_file()).unwrap()).unwrap();
        v[which].as_str().unwrap().to_string()
    }

    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(ChildProcess::output_tail)
            .unwrap_or_default()
    }

    /// `bgw-agent status --json`, through the real command.
    pub fn status(&self) -> Value {
        let mut command = Command::new(&self.binary);
        command
            .arg("status")
            .arg("--json")
            .arg("--config")
            .arg(&self.config);
        let out = run_bounded("bgw-agent status", command, Duration::from_secs(20)).unwrap();
        assert!(
            out.success(),
            "status failed: {}\n{}",
            out.stderr,
            self.output()
        );
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// `GET /?...` on the activation endpoint, without following redirects.
    pub fn activation_get(&self, query: &str) -> (u16, Vec<(String, String)>, String) {
        let url = format!("http://{}/?{query}", self.endpoint("activation"));
        let out = Command::new("curl")
            .args(["-s", "-i", "--max-time", "20", &url])
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, body.to_string())
    }

    /// A key through the activation endpoint, as the operator's browser gets it.
    pub fn activation_key(&self) -> String {
        let (status, headers, body) =
            self.activation_get("activationRegion=us-east-1&gatewayType=BACKUP_VM");
        assert_eq!(status, 302, "{body}\n{}", self.output());
        let location = headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone())
            .expect("a Location header");
        location
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("activationKey="))
            .expect("activationKey in Location")
            .to_string()
    }

    /// Activates through the endpoint and aws-cli; returns the gateway ARN.
    pub fn activate(&self, cloud: &Cloud) -> String {
        let key = self.activation_key();
        let out = AwsCli::new(cloud)
            .run(&[
                "create-gateway",
                "--activation-key",
                &key,
                "--gateway-display-name",
                "test-gateway",
                "--gateway-type",
                "BACKUP_VM",
            ])
            .unwrap();
        assert!(out.success(), "create-gateway: {}", out.stderr());
        let arn = out.json().unwrap()["GatewayArn"]
            .as_str()
            .unwrap()
            .to_string();
        wait_until(
            Duration::from_secs(20),
            "the agent reports itself activated",
            || (self.status()["gateway_arn"].as_str() == Some(arn.as_str())).then_some(()),
        );
        arn
    }

    /// The pid of the process the test started (`bgw-agent run`).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildProcess::id)
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.process.take().and_then(|mut p| p.stop())
    }

    pub fn signal_term(&self) {
        if let Some(p) = &self.process {
            p.signal(libc::SIGTERM);
        }
    }

    pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
        self.process.as_mut().and_then(|p| p.try_status())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` until it returns `Some`, failing after `limit`.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn get_gateway(cloud: &Cloud, arn: &str) -> Value {
    let out = AwsCli::new(cloud)
        .run(&["get-gateway", "--gateway-arn", arn])
        .unwrap();
    assert!(out.success(), "get-gateway: {}", out.stderr());
    out.json().unwrap()["Gateway"].clone()
}

pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
