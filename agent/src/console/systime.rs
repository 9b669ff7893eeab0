//! 5: System time — the gateway's time zone (the one its bandwidth schedules and maintenance
//! windows follow, reported to the cloud), NTP status and servers (systemd-timesyncd).

use std::path::Path;

use super::input::{Answer, Prompt};
use super::{agent_line, under_root, Action, Console, Screen};

/// systemd-timesyncd's configuration (under the root).
pub const TIMESYNCD_CONF: &str = "/etc/systemd/timesyncd.conf";
/// Present once timesyncd has synchronised the clock (systemd ≥ 239).
pub const SYNCHRONIZED_FLAG: &str = "/run/systemd/timesync/synchronized";
/// Debian's built-in servers, used when the file names none.
pub const DEBIAN_DEFAULT_NTP: &[&str] = &[
    "0.debian.pool.ntp.org",
    "1.debian.pool.ntp.org",
    "2.debian.pool.ntp.org",
    "3.debian.pool.ntp.org",
];
/// Zones listed at once; more matches ask for more letters.
pub const SHOWN_ZONES: usize = 14;
pub const MAX_NTP: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Menu,
    Search,
    Pick { query: String, zones: Vec<String> },
    Ntp,
    Saving,
}

impl Step {
    pub fn prompt(&self) -> Prompt {
        match self {
            Step::Menu => Prompt::Number { min: 1, max: 2 },
            Step::Search => Prompt::Text {
                max: 32,
                what: "part of a zone name (e.g. paris)",
            },
            Step::Pick { zones, .. } => Prompt::Number {
                min: 1,
                max: zones.len().min(SHOWN_ZONES) as u32,
            },
            Step::Ntp => Prompt::Text {
                max: 120,
                what: "1 to 4 NTP servers, or default",
            },
            Step::Saving => Prompt::BackOnly,
        }
    }

    pub fn parent(&self) -> Option<Step> {
        match self {
            Step::Menu => None,
            Step::Pick { .. } => Some(Step::Search),
            _ => Some(Step::Menu),
        }
    }
}

/// What timesyncd is set to and whether it has synchronised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NtpView {
    /// `NTP=` of the configuration file (`[]`: Debian's defaults are used).
    pub servers: Vec<String>,
    pub synchronized: bool,
}

impl NtpView {
    /// The servers actually asked.
    pub fn effective(&self) -> Vec<String> {
        if self.servers.is_empty() {
            DEBIAN_DEFAULT_NTP.iter().map(|s| s.to_string()).collect()
        } else {
            self.servers.clone()
        }
    }
}

/// `NTP=` of the `[Time]` section.
pub fn parse_timesyncd(text: &str) -> Vec<String> {
    let mut section = "";
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[Time]" {
            if let Some(v) = line.strip_prefix("NTP=") {
                out = v.split_whitespace().map(str::to_string).collect();
            }
        }
    }
    out
}

/// The file with `NTP=` set to `servers` (removed when empty), the rest kept.
pub fn render_timesyncd(text: &str, servers: &[String]) -> String {
    let mut out = Vec::new();
    let mut in_time = false;
    let mut done = false;
    let ntp_line = (!servers.is_empty()).then(|| format!("NTP={}", servers.join(" ")));
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            if in_time && !done {
                out.extend(ntp_line.clone());
                done = true;
            }
            in_time = t == "[Time]";
        } else if in_time && t.starts_with("NTP=") {
            if !done {
                out.extend(ntp_line.clone());
                done = true;
            }
            continue;
        }
        out.push(line.to_string());
    }
    if !done {
        if !in_time {
            out.push("[Time]".into());
        }
        out.extend(ntp_line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Checks a list of NTP servers (names or addresses, at most 4).
pub fn parse_servers(text: &str) -> Result<Vec<String>, String> {
    let servers: Vec<String> = text
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if servers.is_empty() {
        return Err("no server given".into());
    }
    if servers.len() > MAX_NTP {
        return Err(format!(
            "{} servers given: at most {MAX_NTP}",
            servers.len()
        ));
    }
    for s in &servers {
        if !super::shell::valid_host(s) {
            return Err(format!(
                "{:?} is not a host name or IP address",
                super::input::shown(s)
            ));
        }
    }
    Ok(servers)
}

pub fn read_ntp(root: &Path) -> NtpView {
    NtpView {
        servers: std::fs::read_to_string(under_root(root, TIMESYNCD_CONF))
            .map(|t| parse_timesyncd(&t))
            .unwrap_or_default(),
        synchronized: under_root(root, SYNCHRONIZED_FLAG).exists(),
    }
}

/// Writes the servers into timesyncd.conf under `root`.
pub fn write_ntp(root: &Path, servers: &[String]) -> Result<String, String> {
    let path = under_root(root, TIMESYNCD_CONF);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create {}: {e}{}",
                dir.display(),
                super::config_file::AS_ROOT
            )
        })?;
    }
    super::config_file::replace(&path, render_timesyncd(&text, servers).as_bytes()).map_err(
        |e| {
            format!(
                "cannot write {}: {e}{}",
                path.display(),
                super::config_file::AS_ROOT
            )
        },
    )?;
    Ok(format!("Saved in {}.", path.display()))
}

/// IANA zones whose name contains `query` (case and `_`/space insensitive), sorted.
pub fn search(query: &str) -> Vec<String> {
    let q = query.trim().to_ascii_lowercase().replace(' ', "_");
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| z.name())
        .filter(|n| n.to_ascii_lowercase().contains(&q))
        .map(str::to_string)
        .collect()
}

/// The zone the gateway uses: what the agent reports, else its configuration.
pub fn zone(console: &Console) -> String {
    console
        .agent
        .status()
        .map_or(console.configured_timezone.clone(), |s| s.timezone.clone())
}

pub fn answer(console: &mut Console, answer: Answer) -> Action {
    let Screen::Time(step) = console.screen.clone() else {
        return Action::Redraw;
    };
    match (step, answer) {
        (_, Answer::Back) => console.back(),
        (Step::Menu, Answer::Number(1)) => go(console, Step::Search),
        (Step::Menu, Answer::Number(_)) => go(console, Step::Ntp),
        (Step::Search, Answer::Text(query)) => {
            if !query
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_- +".contains(c))
            {
                console.message = Some(format!(
                    "{} has characters no zone name has: type letters (e.g. paris). Try again.",
                    super::input::shown(&query)
                ));
                return Action::Redraw;
            }
            let zones = search(&query);
            if zones.is_empty() {
                console.message = Some(format!(
                    "No time zone contains {}: try a city (Paris) or a region (Europe).",
                    super::input::shown(&query)
                ));
                return Action::Redraw;
            }
            go(console, Step::Pick { query, zones })
        }
        (Step::Pick { zones, .. }, Answer::Number(n)) => {
            let zone = zones[n as usize - 1].clone();
            console.screen = Screen::Time(Step::Saving);
            Action::SetTimezone(zone)
        }
        (Step::Ntp, Answer::Text(text)) => {
            let servers = if text.eq_ignore_ascii_case("default") {
                Vec::new()
            } else {
                match parse_servers(&text) {
                    Ok(s) => s,
                    Err(why) => {
                        console.message = Some(format!("{why}. Try again."));
                        return Action::Redraw;
                    }
                }
            };
            console.screen = Screen::Time(Step::Saving);
            Action::SaveNtp(servers)
        }
        _ => Action::Redraw,
    }
}

fn go(console: &mut Console, step: Step) -> Action {
    console.screen = Screen::Time(step);
    Action::Redraw
}

/// A save finished: back to the overview with what happened.
pub fn saved(console: &mut Console, result: Result<String, String>) -> Action {
    console.message = Some(match result {
        Ok(done) => done,
        Err(why) => format!("Not changed: {why}"),
    });
    if matches!(console.screen, Screen::Time(_)) {
        console.screen = Screen::Time(Step::Menu);
    }
    Action::LoadTime
}

/// The servers in one line: as many as fit, then how many more.
fn servers_line(ntp: &NtpView) -> String {
    let all = ntp.effective();
    let mut line = String::new();
    for (i, s) in all.iter().enumerate() {
        let more = all.len() - i;
        if !line.is_empty() && line.len() + s.len() + 12 > 56 {
            line.push_str(&format!(" and {more} more"));
            break;
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(s);
    }
    if ntp.servers.is_empty() {
        line.push_str(" (Debian)");
    }
    line
}

pub fn render(console: &Console, step: &Step) -> Vec<String> {
    let mut out = vec!["5: System time".to_string(), String::new()];
    let zone = zone(console);
    match step {
        Step::Menu | Step::Saving => {
            let now = console.now;
            let local = zone
                .parse::<chrono_tz::Tz>()
                .map(|tz| {
                    now.with_timezone(&tz)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_else(|_| "-".into());
            out.push(format!("Gateway time zone:  {zone}"));
            if console.agent.status().is_none() {
                out.push(format!(
                    "                    (configured; {})",
                    agent_line(&console.agent)
                ));
            }
            out.push(format!("Gateway time:       {local}"));
            out.push(format!(
                "UTC:                {}",
                now.format("%Y-%m-%d %H:%M")
            ));
            out.push(
                "Bandwidth schedules and maintenance windows follow the gateway time zone.".into(),
            );
            out.push(String::new());
            match &console.ntp {
                None => out.push("NTP:                reading...".into()),
                Some(ntp) => {
                    out.push(format!(
                        "NTP:                {}",
                        if ntp.synchronized {
                            "synchronized (systemd-timesyncd)"
                        } else {
                            "not synchronized yet: test the servers with 3"
                        }
                    ));
                    out.push(format!("NTP servers:        {}", servers_line(ntp)));
                }
            }
            out.push(String::new());
            if *step == Step::Saving {
                out.push(format!("Saving {}", super::spinner(console.ticks)));
            } else {
                out.push("1: Change the time zone   2: NTP servers".into());
            }
        }
        Step::Search => {
            out.push(format!("Time zone now: {zone}"));
            out.push("Type part of the new zone's name: a city (paris, new york) or a".into());
            out.push("region (europe); the matching IANA zones are listed.".into());
        }
        Step::Pick { query, zones } => {
            out.push(format!("Time zones containing \"{query}\":"));
            for (i, z) in zones.iter().take(SHOWN_ZONES).enumerate() {
                out.push(format!("{:>3}: {z}", i + 1));
            }
            if zones.len() > SHOWN_ZONES {
                out.push(format!(
                    "  ... {} more: Esc and type more letters.",
                    zones.len() - SHOWN_ZONES
                ));
            }
        }
        Step::Ntp => {
            if let Some(ntp) = &console.ntp {
                out.push(format!("NTP servers now: {}", servers_line(ntp)));
            }
            out.push("Type 1 to 4 servers (names or addresses) separated by spaces, or".into());
            out.push("default for Debian's pool servers.".into());
        }
    }
    out
}
