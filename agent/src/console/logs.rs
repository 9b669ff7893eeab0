//! 9: Logs — recent agent log lines, and a support bundle with secrets removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::input::{Answer, Prompt};
use super::{under_root, Action, Console, Screen};

/// The agent's log file when it does not log to the journal (tests, containers).
pub const LOG_FILE: &str = "/var/log/bgw-agent/agent.log";
/// Where support bundles are written (under the root).
pub const BUNDLE_DIR: &str = "/var/tmp";
/// Lines shown on the screen.
pub const SHOWN: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Menu,
    Exporting,
    Exported(PathBuf),
    ExportFailed(String),
}

impl Step {
    pub fn prompt(&self) -> Prompt {
        match self {
            Step::Menu => Prompt::Number { min: 1, max: 2 },
            _ => Prompt::BackOnly,
        }
    }
}

pub fn answer(console: &mut Console, answer: Answer) -> Action {
    match answer {
        Answer::Number(1) => {
            console.screen = Screen::Logs(Step::Menu);
            Action::LoadLogs
        }
        Answer::Number(_) => {
            console.screen = Screen::Logs(Step::Exporting);
            Action::ExportBundle
        }
        Answer::Back => console.back(),
        Answer::Text(_) => Action::Redraw,
    }
}

pub fn exported(console: &mut Console, result: Result<PathBuf, String>) {
    if console.screen == Screen::Logs(Step::Exporting) {
        console.screen = Screen::Logs(match result {
            Ok(path) => Step::Exported(path),
            Err(why) => Step::ExportFailed(why),
        });
    }
}

pub fn render(console: &Console, step: &Step) -> Vec<String> {
    let mut out = vec!["9: Logs".to_string(), String::new()];
    match step {
        Step::Menu => {
            out.push("Recent agent log lines:".into());
            if console.logs.is_empty() {
                out.push("  (none found)".into());
            }
            let skip = console.logs.len().saturating_sub(SHOWN);
            for line in &console.logs[skip..] {
                out.push(format!("  {}", printable(line)));
            }
            out.push(String::new());
            out.push("1: Refresh   2: Export a support bundle (secrets removed)".into());
        }
        Step::Exporting => out.push(format!(
            "Writing the support bundle {}",
            super::spinner(console.ticks)
        )),
        Step::Exported(path) => {
            out.push("Support bundle written:".into());
            out.push(format!("  {}", path.display()));
            out.push(String::new());
            out.push("Copy it off the gateway (scp) and attach it to your support case.".into());
        }
        Step::ExportFailed(why) => {
            out.push("The support bundle could not be written:".into());
            out.push(format!("  {why}"));
        }
    }
    out
}

/// A log line without control characters (a terminal escape in a log must not reach the screen).
pub fn printable(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The last `n` agent log lines: the log file under the root, else (on a real system) the journal.
pub fn recent(root: &Path, n: usize) -> Vec<String> {
    let file = under_root(root, LOG_FILE);
    if let Ok(text) = std::fs::read_to_string(&file) {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let skip = lines.len().saturating_sub(n);
        return lines[skip..].to_vec();
    }
    if root != Path::new("/") {
        return Vec::new();
    }
    journal(n)
}

fn journal(n: usize) -> Vec<String> {
    let child = std::process::Command::new("journalctl")
        .args(["-u", "bgw-agent", "--no-pager", "-o", "short-iso", "-n"])
        .arg(n.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return vec!["journalctl is not available".into()];
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return vec!["journalctl did not answer within 3 s".into()];
            }
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    out.lines().map(str::to_string).collect()
}

/// Configuration keys whose values never leave the gateway.
const SECRET_WORDS: &[&str] = &["password", "secret", "token", "key", "credential"];

/// The configuration text with every secret-looking value replaced.
pub fn redact(config: &str) -> String {
    config
        .lines()
        .map(|line| {
            let Some((key, _)) = line.split_once('=') else {
                return line.to_string();
            };
            let lower = key.to_ascii_lowercase();
            if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                format!("{}= \"<removed>\"", key)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the support bundle: configuration (secrets removed), status, resource check, logs.
pub fn export(
    root: &Path,
    config_path: &Path,
    status: Option<&crate::status::StatusReport>,
    resources: &super::resources::Report,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PathBuf, String> {
    let dir = under_root(root, BUNDLE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("bgw-support-{}.txt", now.format("%Y%m%dT%H%M%SZ")));
    let mut text = format!("# bgw-agent support bundle, {}\n\n", now.to_rfc3339());
    text.push_str(&format!("## Configuration ({})\n", config_path.display()));
    match std::fs::read_to_string(config_path) {
        Ok(c) => text.push_str(&redact(&c)),
        Err(e) => text.push_str(&format!("(not readable: {e})")),
    }
    text.push_str("\n\n## Status\n");
    match status {
        Some(s) => {
            let mut s = s.clone();
            s.pending_activation_key = s.pending_activation_key.map(|_| "<removed>".into());
            text.push_str(&serde_json::to_string_pretty(&s).unwrap_or_default())
        }
        None => text.push_str("agent not running"),
    }
    text.push_str("\n\n## Resource check\n");
    for c in &resources.checks {
        text.push_str(&format!(
            "{}: {} (needed {}) {}\n",
            c.name,
            c.found,
            c.need,
            c.level.as_str()
        ));
    }
    text.push_str("\n## Recent log lines\n");
    for line in recent(root, 500) {
        text.push_str(&line);
        text.push('\n');
    }
    write_private(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}
