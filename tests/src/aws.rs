//! Unmodified AWS clients against `bgw-cloud`: the aws-cli and Python (boto3) from the venvs
//! that `scripts/test` creates.
//!
//! - [`Venv::Cbor`] (`$BGW_VENV`, default `<repo>/.tools/venv`): the current awscli and boto3,
//!   whose botocore model lists Smithy RPC v2 CBOR first (see `docs/control-plane-tests.md` for
//!   which protocol each client actually picks).
//! - [`Venv::Json`] (`$BGW_VENV_JSON`, default `<repo>/.tools/venv-json`): botocore 1.43.45,
//!   speaking AWS JSON 1.0.
//!
//! ```no_run
//! # fn demo(cloud: &bgw_tests::cloud::Cloud) -> bgw_tests::Result<()> {
//! use bgw_tests::aws::{AwsCli, Venv, python};
//! let gateways = AwsCli::new(cloud).run(&["list-gateways"])?.json()?;
//! let out = python(Venv::Json, cloud, "import boto3; print(boto3.client('backup-gateway').list_gateways())")?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cloud::Cloud;
use crate::error::{HarnessError, Result};
use crate::paths::repo_root;
use crate::process::{run_bounded, CommandOutput};

/// Which Python environment to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Venv {
    /// The current awscli + boto3 (model lists Smithy RPC v2 CBOR first).
    Cbor,
    /// botocore 1.43.45 + boto3 (AWS JSON 1.0).
    Json,
}

impl Venv {
    fn env_var(self) -> &'static str {
        match self {
            Venv::Cbor => "BGW_VENV",
            Venv::Json => "BGW_VENV_JSON",
        }
    }

    fn default_dir(self) -> PathBuf {
        let tools = repo_root().join(".tools");
        match self {
            Venv::Cbor => tools.join("venv"),
            Venv::Json => tools.join("venv-json"),
        }
    }

    /// The venv directory; fails naming `scripts/test` if it is not there.
    pub fn dir(self) -> Result<PathBuf> {
        let dir = std::env::var_os(self.env_var())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| self.default_dir());
        let python = dir.join("bin").join("python");
        if !python.exists() {
            return Err(HarnessError::ToolMissing {
                tool: format!("the Python venv {} (${})", dir.display(), self.env_var()),
                detail: format!("{} not found", python.display()),
            });
        }
        Ok(dir)
    }

    /// The venv's `python`.
    pub fn python(self) -> Result<PathBuf> {
        Ok(self.dir()?.join("bin").join("python"))
    }
}

/// How long one CLI or Python invocation may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The result of one `aws` invocation.
#[derive(Debug, Clone)]
pub struct AwsResult {
    pub args: Vec<String>,
    pub output: CommandOutput,
}

impl AwsResult {
    /// Whether the command succeeded.
    pub fn success(&self) -> bool {
        self.output.success()
    }

    /// The parsed JSON output of a successful command (`{}` for an empty output), or an error
    /// carrying the CLI's message.
    pub fn json(&self) -> Result<Value> {
        if !self.success() {
            return Err(HarnessError::Process {
                name: format!("aws {}", self.args.join(" ")),
                reason: format!("exited with {}", self.output.status),
                output: self.output.stderr.clone(),
            });
        }
        let text = self.output.stdout.trim();
        if text.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(text).map_err(|e| HarnessError::Response {
            url: format!("aws {}", self.args.join(" ")),
            reason: format!("output is not JSON ({e}): {text}"),
        })
    }

    /// The error code of a failed call: `ValidationException` from
    /// `An error occurred (ValidationException) when calling …`.
    pub fn error_code(&self) -> Option<String> {
        let stderr = &self.output.stderr;
        let start = stderr.find("An error occurred (")? + "An error occurred (".len();
        let end = stderr[start..].find(')')? + start;
        Some(stderr[start..end].to_string())
    }

    /// The CLI's error text.
    pub fn stderr(&self) -> &str {
        &self.output.stderr
    }
}

/// `aws backup-gateway …` against a [`Cloud`], with only the settings given here: no config
/// file, the cloud's admin credentials (unless replaced), `--endpoint-url`, `--ca-bundle`,
/// `--region` and `--output json`.
#[derive(Debug, Clone)]
pub struct AwsCli<'a> {
    cloud: &'a Cloud,
    credentials_file: PathBuf,
    env: Vec<(String, String)>,
    service: String,
}

impl<'a> AwsCli<'a> {
    pub fn new(cloud: &'a Cloud) -> Self {
        AwsCli {
            cloud,
            credentials_file: cloud.admin_credentials_file(),
            env: Vec::new(),
            service: "backup-gateway".into(),
        }
    }

    /// Uses another shared-credentials file (e.g. one with a wrong secret).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = path.into();
        self
    }

    /// Runs another service's commands, e.g. `backup` for `aws backup …`.
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.into();
        self
    }

    /// Adds an environment variable (e.g. `AWS_MAX_ATTEMPTS=1`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `aws backup-gateway <args>` (or the service set with [`AwsCli::service`]).
    pub fn run(&self, args: &[&str]) -> Result<AwsResult> {
        let venv = Venv::Cbor.dir()?;
        let aws = venv.join("bin").join("aws");
        if !aws.exists() {
            return Err(HarnessError::ToolMissing {
                tool: "aws-cli".into(),
                detail: format!("{} not found", aws.display()),
            });
        }
        let mut command = Command::new(venv.join("bin").join("python"));
        command.arg(&aws);
        client_env(&mut command, self.cloud, &self.credentials_file);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
            .arg("--region")
            .arg(self.cloud.region())
            .arg("--endpoint-url")
            .arg(self.cloud.endpoint())
            .arg("--output")
            .arg("json");
        if self.cloud.endpoint().starts_with("https://") {
            command.arg("--ca-bundle").arg(self.cloud.ca_file());
        }
        command.arg(&self.service).args(args);
        let output = run_bounded("aws", command, CLIENT_TIMEOUT)?;
        Ok(AwsResult {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        })
    }
}

/// Runs a Python snippet in `venv` with the environment pointing boto3 at `cloud`:
/// `AWS_ENDPOINT_URL`, `AWS_CA_BUNDLE`, `AWS_DEFAULT_REGION`, `AWS_SHARED_CREDENTIALS_FILE`,
/// and the same values as `BGW_ENDPOINT`, `BGW_CA_BUNDLE`, `BGW_REGION` for explicit use.
/// `boto3.client("backup-gateway")` then needs no arguments.
pub fn python(venv: Venv, cloud: &Cloud, script: &str) -> Result<CommandOutput> {
    python_with_env(venv, cloud, script, &[])
}

/// Like [`python`] with extra environment variables.
pub fn python_with_env(
    venv: Venv,
    cloud: &Cloud,
    script: &str,
    env: &[(&str, &str)],
) -> Result<CommandOutput> {
    let mut command = Command::new(venv.python()?);
    command.arg("-c").arg(script);
    client_env(&mut command, cloud, &cloud.admin_credentials_file());
    command
        .env("AWS_ENDPOINT_URL", cloud.endpoint())
        .env("BGW_ENDPOINT", cloud.endpoint())
        .env("BGW_REGION", cloud.region());
    if cloud.endpoint().starts_with("https://") {
        command
            .env("AWS_CA_BUNDLE", cloud.ca_file())
            .env("BGW_CA_BUNDLE", cloud.ca_file());
    }
    command.envs(env.iter().copied());
    run_bounded("python", command, CLIENT_TIMEOUT)
}

/// Runs a Python snippet in `venv` with no cloud settings (e.g. to inspect botocore itself).
pub fn python_plain(venv: Venv, script: &str) -> Result<CommandOutput> {
    let mut command = Command::new(venv.python()?);
    command.arg("-c").arg(script);
    run_bounded("python", command, CLIENT_TIMEOUT)
}

/// Clears inherited AWS settings so only what the harness sets applies.
fn client_env(command: &mut Command, cloud: &Cloud, credentials: &Path) {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
        "AWS_REGION",
    ] {
        command.env_remove(var);
    }
    command
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("AWS_CONFIG_FILE", cloud.data_dir().join("no-aws-config"))
        .env("AWS_DEFAULT_REGION", cloud.region())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "")
        .env("PYTHONDONTWRITEBYTECODE", "1");
}
