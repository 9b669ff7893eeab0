//! Support for the `bgw-cloud` integration tests: start the real binary on a
//! free loopback port, run the Python conformance scripts with the tool venvs'
//! interpreters, and send raw SigV4-signed requests from Rust.
//!
//! ```no_run
//! let server = CloudServer::start(&[]);
//! run_suite(&server, Client::Boto3Current, Protocol::Cbor, "operations.py", &[]);
//! ```

#![allow(dead_code)] // each test file uses a different part of this module

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";
pub const SERVICE: &str = "backup-gateway";
pub const CBOR_PREFIX: &str = "/service/BackupOnPremises_v20210101/operation/";
pub const TARGET_PREFIX: &str = "BackupOnPremises_v20210101.";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("control-plane sits inside the workspace")
        .to_path_buf()
}

pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

pub fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("model/service-2.json")
}

/// A running `bgw-cloud serve`, stopped when dropped.
pub struct CloudServer {
    child: Option<Child>,
    /// `https://127.0.0.1:PORT` as printed by the server.
    pub endpoint: String,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    // Keeps the temporary directory alive as long as the server; None when the
    // caller owns the directory.
    _tmp: Option<TempDir>,
}

impl CloudServer {
    /// Starts a server on a fresh data directory.
    pub fn start(extra_args: &[&str]) -> CloudServer {
        let tmp = tempfile::Builder::new()
            .prefix("bgw-cloud-test-")
            .tempdir()
            .expect("temporary directory");
        let data = tmp.path().join("data");
        let mut server = Self::start_on(&data, tmp.path(), extra_args);
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server on `data_dir`, writing its log next to it in `log_dir`.
    pub fn start_on(data_dir: &Path, log_dir: &Path, extra_args: &[&str]) -> CloudServer {
        match Self::try_start_on(data_dir, log_dir, extra_args) {
            Ok(server) => server,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Like `start_on`, but returns the exit status and log when the server
    /// stops before it is ready.
    pub fn try_start_on(
        data_dir: &Path,
        log_dir: &Path,
        extra_args: &[&str],
    ) -> Result<CloudServer, StartFailure> {
        let log_path = unique_path(log_dir, "server", "log");
        let log = fs::File::create(&log_path).expect("server log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_bgw-cloud"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data_dir)
            .args(["--region", REGION, "--account-id", ACCOUNT_ID])
            .args(extra_args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn bgw-cloud");

        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        // Keep draining stdout for the whole life of the server so it never
        // blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep reading to drain the pipe.
                }
            }
        });

        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("listening on ") {
                        return Ok(CloudServer {
                            child: Some(child),
                            endpoint: url.trim().trim_end_matches('/').to_string(),
                            data_dir: data_dir.to_path_buf(),
                            log_path,
                            _tmp: None,
                        });
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for bgw-cloud");
                    return Err(StartFailure {
                        status: Some(status),
                        stdout: seen.join("\n"),
                        log: fs::read_to_string(&log_path).unwrap_or_default(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(StartFailure {
                        status: None,
                        stdout: seen.join("\n"),
                        log: fs::read_to_string(&log_path).unwrap_or_default(),
                    });
                }
            }
        }
    }

    pub fn ca_bundle(&self) -> PathBuf {
        self.data_dir.join("tls/cert.pem")
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.data_dir.join("admin-credentials")
    }

    pub fn admin_credentials(&self) -> (String, String) {
        parse_credentials(&self.credentials_file())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        // SAFETY: plain kill(2) on the pid of a child we own and have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bgw-cloud did not exit within 20 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for CloudServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub log: String,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "bgw-cloud exited ({status}) before it was ready")?,
            None => write!(f, "bgw-cloud printed no `listening on` line within 60 s")?,
        }
        write!(
            f,
            "\n--- stdout ---\n{}\n--- log ---\n{}",
            self.stdout, self.log
        )
    }
}

fn unique_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    (0..)
        .map(|i| dir.join(format!("{stem}-{i}.{ext}")))
        .find(|p| !p.exists())
        .expect("a free file name")
}

/// Reads the `default` profile of an AWS shared-credentials file.
pub fn parse_credentials(path: &Path) -> (String, String) {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut in_default = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !in_default {
            continue;
        }
        match key.trim() {
            "aws_access_key_id" => id = Some(value.trim().to_string()),
            "aws_secret_access_key" => secret = Some(value.trim().to_string()),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) => (id, secret),
        _ => panic!(
            "{} has no [default] profile with aws_access_key_id and aws_secret_access_key",
            path.display()
        ),
    }
}

// --- Python suites ------------------------------------------------------------

/// Which installed AWS client runs a suite.
#[derive(Clone, Copy, Debug)]
pub enum Client {
    /// The current awscli and boto3 in `.tools/venv` (BGW_VENV).
    Current,
    /// botocore 1.43.45 in `.tools/venv-json` (BGW_VENV_JSON).
    Botocore14345,
}

/// The wire protocol a suite must see the client use.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    Json,
    Cbor,
}

impl Protocol {
    fn as_env(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::Cbor => "cbor",
        }
    }
}

/// The interpreter of a tool venv; fails the test with instructions when the
/// venv is missing.
pub fn venv_python(client: Client) -> PathBuf {
    let (var, default) = match client {
        Client::Current => ("BGW_VENV", repo_root().join(".tools/venv")),
        Client::Botocore14345 => ("BGW_VENV_JSON", repo_root().join(".tools/venv-json")),
    };
    let venv = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} not found ({var} = {}): run scripts/test, which installs the AWS client venvs",
        python.display(),
        venv.display()
    );
    python
}

/// Environment variables that would point a client elsewhere than the server under test.
const FOREIGN_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_DATA_PATH",
    "AWS_CA_BUNDLE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BACKUP_GATEWAY",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "PYTHONPATH",
];

/// Runs one Python suite against `server` and asserts that every check passed
/// and that at least `min_checks` ran. Returns the suite's output.
pub fn run_suite(
    server: &CloudServer,
    client: Client,
    protocol: Protocol,
    script: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
    min_checks: usize,
) -> String {
    let python = venv_python(client);
    let mut cmd = Command::new(&python);
    cmd.arg(python_dir().join(script))
        .args(args)
        .current_dir(python_dir());
    for var in FOREIGN_ENV {
        cmd.env_remove(var);
    }
    cmd.env("BGW_ENDPOINT", &server.endpoint)
        .env("BGW_CA_BUNDLE", server.ca_bundle())
        .env("BGW_DATA_DIR", &server.data_dir)
        .env("BGW_REGION", REGION)
        .env("BGW_ACCOUNT_ID", ACCOUNT_ID)
        .env("BGW_PROTOCOL", protocol.as_env())
        .env("BGW_MODEL", model_path())
        .env("AWS_SHARED_CREDENTIALS_FILE", server.credentials_file())
        .env(
            "AWS_CONFIG_FILE",
            server.data_dir.join("no-such-aws-config"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {} {script}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!(
        "--- {script} ({client:?}, {protocol:?}) in {:.1?} ---\n{stdout}",
        started.elapsed()
    );
    if !stderr.trim().is_empty() {
        println!("--- stderr ---\n{stderr}");
    }
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .map(str::to_string);
    let Some(summary) = summary else {
        panic!(
            "{script} ended without a SUMMARY line (exit {}); server log:\n{}",
            output.status,
            tail(&server.log(), 60)
        );
    };
    let count = |name: &str| -> usize {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (passed, failed) = (count("passed"), count("failed"));
    let failed_names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .collect();
    assert!(
        failed == 0 && output.status.success(),
        "{script} ({client:?}, {protocol:?}): {failed} of {} checks failed:\n  {}\nserver log (tail):\n{}",
        passed + failed,
        failed_names.join("\n  "),
        tail(&server.log(), 40)
    );
    assert!(
        passed >= min_checks,
        "{script}: only {passed} checks ran, expected at least {min_checks}"
    );
    assert_log_clean(server);
    stdout
}

/// Hypervisor passwords the Python suites send; none may reach the server log.
const SUITE_PASSWORDS: &[&str] = &[
    "s3cret-Passw0rd",
    "not-a-real-secret",
    "another-one",
    "cli-secret",
];

/// The server log holds no panic, no admin secret and no hypervisor password.
pub fn assert_log_clean(server: &CloudServer) {
    let log = server.log();
    assert!(
        !log.contains("panicked"),
        "the server panicked:\n{}",
        tail(&log, 60)
    );
    if server.credentials_file().exists() {
        let (_, secret) = server.admin_credentials();
        assert!(
            !log.contains(&secret),
            "the admin secret key appears in the server log"
        );
    }
    for password in SUITE_PASSWORDS {
        assert!(
            !log.contains(password),
            "a hypervisor password ({password}) appears in the server log"
        );
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// --- raw signed requests --------------------------------------------------------

/// An HTTP client trusting the server's certificate.
pub fn http_client(server: &CloudServer) -> reqwest::Client {
    let pem = fs::read(server.ca_bundle()).expect("server certificate");
    let cert = reqwest::Certificate::from_pem(&pem).expect("PEM certificate");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// How a raw request is signed.
#[derive(Clone, Debug)]
pub enum Signing {
    /// With the given key pair, at the given time.
    Key {
        access_key: String,
        secret_key: String,
        time: SystemTime,
    },
    /// Not signed at all.
    None,
}

impl Signing {
    pub fn admin(server: &CloudServer) -> Signing {
        let (access_key, secret_key) = server.admin_credentials();
        Signing::Key {
            access_key,
            secret_key,
            time: SystemTime::now(),
        }
    }
}

/// Builds a request to `path` whose signature covers `signed_body`; the
/// request carries `body`, which differs from it only in tampering tests.
pub fn build_request(
    server: &CloudServer,
    path: &str,
    headers: &[(&str, &str)],
    signed_body: &[u8],
    body: &[u8],
    signing: &Signing,
) -> reqwest::Request {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    let url = format!("{}{}", server.endpoint, path);
    let mut builder = http::Request::builder().method("POST").uri(&url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut request = builder.body(body.to_vec()).expect("HTTP request");
    if let Signing::Key {
        access_key,
        secret_key,
        time,
    } = signing
    {
        let identity = aws_credential_types::Credentials::new(
            access_key.clone(),
            secret_key.clone(),
            None,
            None,
            "bgw-cloud-tests",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(SERVICE)
            .time(*time)
            .settings(SigningSettings::default())
            .build()
            .expect("signing parameters")
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(signed_body),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params)
            .expect("SigV4 signature")
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
    }
    reqwest::Request::try_from(request).expect("reqwest request")
}

/// A decoded response: status, content type and the body as JSON (CBOR bodies
/// are converted).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub raw: Vec<u8>,
    pub body: serde_json::Value,
}

impl Reply {
    /// The `__type` of an error body, without any namespace prefix.
    pub fn error_type(&self) -> String {
        let full = self.body["__type"].as_str().unwrap_or_default();
        let short = full.rsplit('#').next().unwrap_or(full);
        short.split(':').next().unwrap_or(short).to_string()
    }

    pub fn message(&self) -> String {
        ["Message", "message"]
            .iter()
            .find_map(|k| self.body[*k].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

pub async fn send(client: &reqwest::Client, request: reqwest::Request) -> Reply {
    let response = client.execute(request).await.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let raw = response.bytes().await.expect("response body").to_vec();
    let body = decode_body(&content_type, &raw);
    Reply {
        status,
        content_type,
        raw,
        body,
    }
}

pub fn decode_body(content_type: &str, raw: &[u8]) -> serde_json::Value {
    if raw.is_empty() {
        return serde_json::Value::Null;
    }
    if content_type.starts_with("application/cbor") {
        let value: ciborium::Value = match ciborium::from_reader(raw) {
            Ok(v) => v,
            Err(e) => panic!("response is not CBOR ({e}): {raw:02x?}"),
        };
        return cbor_to_json(value);
    }
    serde_json::from_slice(raw).unwrap_or(serde_json::Value::Null)
}

fn cbor_to_json(value: ciborium::Value) -> serde_json::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    match value {
        C::Integer(i) => J::from(i128::from(i) as i64),
        C::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        C::Text(s) => J::String(s),
        C::Bool(b) => J::Bool(b),
        C::Null => J::Null,
        C::Tag(_, inner) => cbor_to_json(*inner),
        C::Array(items) => J::Array(items.into_iter().map(cbor_to_json).collect()),
        C::Map(entries) => J::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        C::Text(s) => s,
                        other => format!("{other:?}"),
                    };
                    (key, cbor_to_json(v))
                })
                .collect(),
        ),
        C::Bytes(b) => J::String(hex::encode(b)),
        _ => J::Null,
    }
}

pub fn cbor(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR encoding");
    out
}

pub const CBOR_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/cbor"),
    ("accept", "application/cbor"),
    ("smithy-protocol", "rpc-v2-cbor"),
];

pub fn json_headers(operation: &str) -> [(&'static str, String); 2] {
    [
        ("content-type", "application/x-amz-json-1.0".to_string()),
        ("x-amz-target", format!("{TARGET_PREFIX}{operation}")),
    ]
}

// --- named checks in Rust tests ---------------------------------------------------

/// Collects named checks so one test reports every failing check, not just the first.
#[derive(Default)]
pub struct Checks {
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    pub fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Err(why) => {
                println!("FAIL {name}: {why}");
                self.failed.push(format!("{name}: {why}"));
            }
        }
    }

    pub fn finish(self, server: &CloudServer) {
        println!(
            "SUMMARY passed={} failed={}",
            self.passed,
            self.failed.len()
        );
        assert!(
            self.failed.is_empty(),
            "{} checks failed:\n  {}\nserver log (tail):\n{}",
            self.failed.len(),
            self.failed.join("\n  "),
            tail(&server.log(), 40)
        );
    }
}

/// `Ok` when the reply is the error `expected` with `status`, a `Message`
/// (and, for modeled errors, an `ErrorCode`).
pub fn expect_error(reply: &Reply, status: u16, expected: &[&str]) -> Result<(), String> {
    let kind = reply.error_type();
    if reply.status != status || !expected.contains(&kind.as_str()) {
        return Err(format!(
            "expected HTTP {status} {expected:?}, got HTTP {} {kind:?}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.raw)
        ));
    }
    if reply.message().is_empty() {
        return Err(format!("{kind} without a Message: {}", reply.body));
    }
    Ok(())
}

/// `Ok` for a 4xx answer with an error type and a message: a clear client error.
pub fn expect_client_error(reply: &Reply) -> Result<(), String> {
    if !(400..500).contains(&reply.status)
        || reply.error_type().is_empty()
        || reply.message().is_empty()
    {
        return Err(format!(
            "expected a 4xx error with __type and Message, got HTTP {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.raw)
        ));
    }
    Ok(())
}
