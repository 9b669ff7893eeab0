//! A real vCenter for tests: govmomi's simulator (vcsim) built from `tests/vcsim/main.go`.
//!
//! ```no_run
//! # fn main() -> bgw_tests::Result<()> {
//! use bgw_tests::vcsim::{Vcsim, VcsimOptions};
//! let vc = Vcsim::start(VcsimOptions { clusters: 2, vms_per_pool: 10, ..Default::default() })?;
//! println!("{} as {} (thumbprint {})", vc.url(), vc.username(), vc.thumbprint_sha256());
//! # Ok(()) }
//! ```
//!
//! The simulator's inventory is deterministic: the same options give the same names and morefs,
//! also after [`Vcsim::restart`]. Its tags live in memory and are lost on restart. SOAP `Login`
//! checks the user name and password; the simulator's REST session endpoint accepts any
//! non-empty credentials.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::error::{HarnessError, Result};
use crate::paths::{repo_root, target_dir};
use crate::process::ChildProcess;
use crate::tls::TestPki;

/// Environment variable naming a prebuilt simulator binary (set by `scripts/test`).
pub const VCSIM_BIN_ENV: &str = "BGW_VCSIM_BIN";

/// GOPATH holding Debian's govmomi (package `golang-github-vmware-govmomi-dev`).
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// The inventory and credentials of a simulated vCenter.
///
/// Defaults match vcsim's own: 1 datacenter with 1 cluster of 3 hosts and 1 standalone host,
/// 2 VMs per resource pool (4 VMs in all).
#[derive(Debug, Clone)]
pub struct VcsimOptions {
    pub datacenters: u32,
    /// Clusters per datacenter.
    pub clusters: u32,
    /// Hosts in each cluster.
    pub hosts_per_cluster: u32,
    /// Standalone hosts per datacenter (each has its own resource pool, hence its own VMs).
    pub standalone_hosts: u32,
    /// VMs per resource pool (each cluster and each standalone host has one pool).
    pub vms_per_pool: u32,
    /// Number of datacenters placed inside a folder (and whose children live in sub-folders).
    pub folders: u32,
    pub username: String,
    pub password: String,
    /// Expire idle SOAP and REST sessions after this long (vcsim's default: never).
    pub session_idle_timeout: Option<Duration>,
    /// How long to wait for the simulator to listen (10,000 VMs take about 30 s).
    pub start_timeout: Duration,
}

impl Default for VcsimOptions {
    fn default() -> Self {
        VcsimOptions {
            datacenters: 1,
            clusters: 1,
            hosts_per_cluster: 3,
            standalone_hosts: 1,
            vms_per_pool: 2,
            folders: 0,
            username: "administrator@vsphere.local".to_string(),
            password: "Vcsim-Test-Passw0rd!".to_string(),
            session_idle_timeout: None,
            start_timeout: Duration::from_secs(180),
        }
    }
}

impl VcsimOptions {
    /// How many VMs the simulator creates with these options.
    pub fn expected_vm_count(&self) -> u32 {
        self.datacenters * (self.clusters + self.standalone_hosts) * self.vms_per_pool
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("-dc={}", self.datacenters),
            format!("-cluster={}", self.clusters),
            format!("-cluster-host={}", self.hosts_per_cluster),
            format!("-host={}", self.standalone_hosts),
            format!("-vm={}", self.vms_per_pool),
            format!("-folder={}", self.folders),
            format!("-username={}", self.username),
            format!("-password={}", self.password),
            "-exit-on-stdin-eof".to_string(),
        ];
        if let Some(idle) = self.session_idle_timeout {
            args.push(format!("-session-idle-timeout={}ms", idle.as_millis()));
        }
        args
    }
}

/// A running simulator; stopped when dropped.
pub struct Vcsim {
    options: VcsimOptions,
    pki: TestPki,
    dir: TempDir,
    binary: PathBuf,
    addr: SocketAddr,
    url: String,
    process: Option<ChildProcess>,
    starts: u32,
}

impl std::fmt::Debug for Vcsim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vcsim")
            .field("url", &self.url)
            .field("username", &self.options.username)
            .field("password", &"***")
            .finish()
    }
}

impl Vcsim {
    /// Builds the simulator if needed, starts it on a free loopback port and waits until it
    /// answers.
    pub fn start(options: VcsimOptions) -> Result<Vcsim> {
        let binary = vcsim_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("bgw-vcsim-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temp dir", std::env::temp_dir(), e))?;
        let pki = TestPki::generate("vcsim")?;
        let mut vcsim = Vcsim {
            options,
            pki,
            dir,
            binary,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
            process: None,
            starts: 0,
        };
        vcsim.write_certificate()?;
        vcsim.launch()?;
        Ok(vcsim)
    }

    fn write_certificate(&self) -> Result<()> {
        for (name, content) in [
            ("ca.pem", &self.pki.ca_pem),
            ("cert.pem", &self.pki.cert_pem),
            ("key.pem", &self.pki.key_pem),
        ] {
            let path = self.dir.path().join(name);
            std::fs::write(&path, content)
                .map_err(|e| HarnessError::io("writing certificate", &path, e))?;
        }
        Ok(())
    }

    fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        let scratch = self.dir.path().join("datastores");
        std::fs::create_dir_all(&scratch)
            .map_err(|e| HarnessError::io("creating datastore dir", &scratch, e))?;
        let mut command = Command::new(&self.binary);
        command
            .args(self.options.args())
            .arg(format!("-listen={}", self.addr))
            .arg(format!(
                "-tls-cert={}",
                self.dir.path().join("cert.pem").display()
            ))
            .arg(format!(
                "-tls-key={}",
                self.dir.path().join("key.pem").display()
            ))
            // vcsim creates a directory per datastore under TMPDIR: keep them in our temp dir.
            .env("TMPDIR", &scratch);
        let name = format!("vcsim-{}", self.starts);
        let mut process = ChildProcess::spawn(&name, command, self.dir.path())?;
        let url = process.wait_for_line(self.options.start_timeout, |line| {
            line.strip_prefix("VCSIM_URL=").map(str::to_string)
        })?;
        let addr = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|hp| hp.parse::<SocketAddr>().ok())
            .ok_or_else(|| HarnessError::Process {
                name: name.clone(),
                reason: format!("unexpected URL line {url:?}"),
                output: process.output_tail(),
            })?;
        self.addr = addr;
        self.url = url;
        self.process = Some(process);
        Ok(())
    }

    /// SOAP endpoint, `https://127.0.0.1:PORT/sdk`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `https://127.0.0.1:PORT`, the base of `/sdk` and `/rest`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, what an operator types as the vCenter host.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn username(&self) -> &str {
        &self.options.username
    }

    pub fn password(&self) -> &str {
        &self.options.password
    }

    /// The directory under which the simulator keeps its datastores' files.
    pub fn datastore_root(&self) -> PathBuf {
        self.dir.path().join("datastores")
    }

    /// The options the simulator was started with.
    pub fn options(&self) -> &VcsimOptions {
        &self.options
    }

    /// SHA-256 thumbprint of the served certificate as vSphere shows it (`AB:CD:…`).
    pub fn thumbprint_sha256(&self) -> String {
        self.pki.thumbprint_sha256()
    }

    /// PEM of the CA that signed the served certificate.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_pem
    }

    /// File holding [`Vcsim::ca_pem`], for clients that take a CA bundle path.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// DER of the served certificate.
    pub fn cert_der(&self) -> &[u8] {
        &self.pki.cert_der
    }

    /// An HTTP client trusting the simulator's CA only.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        self.pki.http_client().map_err(|source| HarnessError::Http {
            url: self.base_url(),
            source,
        })
    }

    /// Whether the simulator process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ChildProcess::is_running)
    }

    /// The simulator's captured output, for failure messages.
    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(ChildProcess::output_tail)
            .unwrap_or_default()
    }

    /// Stops the simulator (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Kills the simulator at once, like a crashed or unplugged vCenter.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Stops and starts the simulator on the same port with the same certificate and inventory.
    /// Sessions and tags do not survive.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.launch()
    }

    /// Like [`Vcsim::restart`], but serving a newly generated certificate (a different thumbprint),
    /// as after a vCenter certificate replacement.
    pub fn restart_with_new_certificate(&mut self) -> Result<()> {
        self.stop();
        self.pki = TestPki::generate("vcsim")?;
        self.write_certificate()?;
        self.launch()
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Path of the simulator binary: `$BGW_VCSIM_BIN`, else built once per source version under
/// `<target>/vcsim/<hash>/vcsim` (a file lock keeps parallel test processes from building twice).
pub fn vcsim_binary() -> Result<PathBuf> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);

    if let Some(path) = std::env::var_os(VCSIM_BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::ToolMissing {
                tool: "the vCenter simulator".into(),
                detail: format!("{VCSIM_BIN_ENV}={} does not exist", path.display()),
            })
        };
    }

    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return Ok(path.clone());
    }
    let path = build_vcsim(&target_dir().join("vcsim"))?;
    *built = Some(path.clone());
    Ok(path)
}

/// Builds `tests/vcsim` into `<cache>/<source hash>/vcsim` unless it is already there.
pub fn build_vcsim(cache: &Path) -> Result<PathBuf> {
    let source_dir = repo_root().join("tests").join("vcsim");
    let source_file = source_dir.join("main.go");
    let source = std::fs::read(&source_file)
        .map_err(|e| HarnessError::io("reading simulator source", &source_file, e))?;
    let hash = hex::encode(&Sha256::digest(&source)[..8]);
    let out_dir = cache.join(&hash);
    let binary = out_dir.join("vcsim");
    if binary.is_file() {
        return Ok(binary);
    }

    std::fs::create_dir_all(&out_dir)
        .map_err(|e| HarnessError::io("creating simulator cache", &out_dir, e))?;
    let lock_path = cache.join("build.lock");
    let _lock = FileLock::acquire(&lock_path)?;
    if binary.is_file() {
        return Ok(binary); // another process built it while we waited
    }
    check_go_toolchain()?;

    let partial = out_dir.join(format!("vcsim.partial-{}", std::process::id()));
    let mut command = Command::new("go");
    command
        .current_dir(repo_root())
        .args(["build", "-o"])
        .arg(&partial)
        .arg("./tests/vcsim")
        .env("GO111MODULE", "off")
        .env("GOPATH", DEBIAN_GOPATH)
        .env("GOFLAGS", "");
    if std::env::var_os("GOCACHE").is_none() {
        command.env("GOCACHE", cache.join("gocache"));
    }
    let output = command.output().map_err(|e| HarnessError::ToolMissing {
        tool: "Go".into(),
        detail: format!("running `go build`: {e}"),
    })?;
    if !output.status.success() {
        return Err(HarnessError::VcsimBuild {
            status: output.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    std::fs::rename(&partial, &binary)
        .map_err(|e| HarnessError::io("installing simulator binary", &binary, e))?;
    Ok(binary)
}

fn check_go_toolchain() -> Result<()> {
    let govmomi = Path::new(DEBIAN_GOPATH).join("src/github.com/vmware/govmomi/simulator");
    if !govmomi.is_dir() {
        return Err(HarnessError::ToolMissing {
            tool: "govmomi".into(),
            detail: format!(
                "{} is missing (Debian package golang-github-vmware-govmomi-dev)",
                govmomi.display()
            ),
        });
    }
    match Command::new("go").arg("version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(HarnessError::ToolMissing {
            tool: "Go".into(),
            detail: format!(
                "`go version` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }),
        Err(e) => Err(HarnessError::ToolMissing {
            tool: "Go".into(),
            detail: format!("`go` is not on PATH ({e}); Debian package golang-go"),
        }),
    }
}

/// An exclusive `flock(2)` held until dropped.
struct FileLock {
    _file: File,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock> {
        use std::os::fd::AsRawFd;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| HarnessError::io("opening lock file", path, e))?;
        // SAFETY: flock on a file descriptor we own; released when the file is closed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(HarnessError::io(
                "locking",
                path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(FileLock { _file: file })
    }
}
