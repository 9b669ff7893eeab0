//! A child process owned by a test: its output is captured to files for failure messages, and it
//! is stopped when the guard is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};

/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How much of a process's output a failure message quotes.
const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

/// A running child process: killed on drop, stdout and stderr captured under `log_dir`.
///
/// Stdout lines are also handed to [`ChildProcess::wait_for_line`], which is how tests learn
/// the address a server bound.
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    lines: Receiver<String>,
}

impl ChildProcess {
    /// Spawns `command` with stdout piped (and teed to `<log_dir>/<name>.stdout`) and stderr written
    /// to `<log_dir>/<name>.stderr`. Stdin is a pipe the guard holds, so a child can notice
    /// that the test process died.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> Result<Self> {
        let stdout_log = log_dir.join(format!("{name}.stdout"));
        let stderr_log = log_dir.join(format!("{name}.stderr"));
        let stderr_file = File::options()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .map_err(|e| HarnessError::io("creating stderr log", &stderr_log, e))?;
        let mut stdout_file = File::options()
            .create(true)
            .append(true)
            .open(&stdout_log)
            .map_err(|e| HarnessError::io("creating stdout log", &stdout_log, e))?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        let mut child = command.spawn().map_err(|source| HarnessError::Spawn {
            name: name.to_string(),
            source,
        })?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(stdout_file, "{line}");
                    let _ = tx.send(line);
                }
            })
            .map_err(|source| HarnessError::Spawn {
                name: name.to_string(),
                source,
            })?;

        Ok(ChildProcess {
            name: name.to_string(),
            child: Some(child),
            stdout_log,
            stderr_log,
            lines,
        })
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits (bounded) for a stdout line for which `extract` returns `Some`, and returns that value.
    /// Fails with the process's output if it exits first or the time runs out.
    pub fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        mut extract: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(value) = extract(&line) {
                        return Ok(value);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.not_ready(timeout, "no readiness line on stdout".into()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(2));
                    let reason = match status {
                        Some(s) => format!("it exited with {s} before it was ready"),
                        None => "it closed stdout before it was ready".to_string(),
                    };
                    return Err(self.not_ready(timeout, reason));
                }
            }
        }
    }

    fn not_ready(&self, timeout: Duration, reason: String) -> HarnessError {
        HarnessError::NotReady {
            name: self.name.clone(),
            seconds: timeout.as_secs(),
            reason,
            output: self.output_tail(),
        }
    }

    /// The process's exit status if it has exited (non-blocking).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_status().is_none()
    }

    /// The last few KiB of stderr and stdout, for failure messages.
    pub fn output_tail(&self) -> String {
        format!(
            "[stderr {}]\n{}\n[stdout {}]\n{}",
            self.stderr_log.display(),
            tail(&self.stderr_log),
            self.stdout_log.display(),
            tail(&self.stdout_log)
        )
    }

    /// Path of the captured stderr.
    pub fn stderr_log(&self) -> &Path {
        &self.stderr_log
    }

    /// Path of the captured stdout.
    pub fn stdout_log(&self) -> &Path {
        &self.stdout_log
    }

    /// Sends SIGTERM, waits up to a few seconds, then SIGKILLs. Returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        if let Some(status) = self.wait_exit(STOP_GRACE) {
            self.child = None;
            return Some(status);
        }
        self.kill()
    }

    /// Kills the process at once with SIGKILL (a crash, as far as its peers can tell).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// Sends a signal (e.g. `libc::SIGHUP`) to the running process.
    pub fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            let pid = child.id() as libc::pid_t;
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Waits for exit up to `timeout`, polling (the child is reaped by `try_wait`).
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// Output of a command run to completion by [`run_bounded`].
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `command` to completion with piped output, killing it if it takes longer than `timeout`.
pub fn run_bounded(name: &str, mut command: Command, timeout: Duration) -> Result<CommandOutput> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| HarnessError::Spawn {
        name: name.to_string(),
        source,
    })?;
    let stdout = read_in_thread(child.stdout.take().expect("stdout is piped"));
    let stderr = read_in_thread(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::Process {
                    name: name.to_string(),
                    reason: format!("still running after {}s, killed", timeout.as_secs()),
                    output: format!(
                        "{}\n{}",
                        stderr.join().unwrap_or_default(),
                        stdout.join().unwrap_or_default()
                    ),
                });
            }
            Err(source) => {
                return Err(HarnessError::Spawn {
                    name: name.to_string(),
                    source,
                })
            }
        }
    };
    Ok(CommandOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn read_in_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn tail(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::from("(unreadable)");
    };
    let start = bytes.len().saturating_sub(OUTPUT_TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}
