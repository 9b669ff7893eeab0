//! 6: Hypervisor, 7: Bandwidth, 8: Software — what the agent's status shows.

use super::{agent_line, AgentView};

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// A bit rate for people: `null` is unlimited.
pub fn rate(bps: Option<u64>) -> String {
    match bps {
        None => "unlimited".into(),
        Some(b) if b >= 1_000_000 => format!("{:.1} Mbit/s", b as f64 / 1e6),
        Some(b) if b >= 1_000 => format!("{:.1} kbit/s", b as f64 / 1e3),
        Some(b) => format!("{b} bit/s"),
    }
}

/// A UTC RFC 3339 time in the gateway's time zone.
pub fn gateway_time(t: &Option<String>, tz: &str) -> String {
    let Some(t) = t else { return "-".into() };
    let parsed = chrono::DateTime::parse_from_rfc3339(t);
    match (parsed, tz.parse::<chrono_tz::Tz>()) {
        (Ok(at), Ok(zone)) => at
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        _ => t.clone(),
    }
}

fn header(title: &str, agent: &AgentView) -> Vec<String> {
    let mut out = vec![title.to_string(), String::new()];
    if agent.status().is_none() {
        out.push(agent_line(agent));
        out.push(String::new());
        out.push("Start it with: systemctl start bgw-agent".into());
        out.push("Its log is under 9: Logs.".into());
    }
    out
}

pub fn hypervisor(agent: &AgentView) -> Vec<String> {
    let mut out = header("6: Hypervisor", agent);
    if let Some(s) = agent.status() {
        let h = &s.hypervisor;
        out.push(format!("State:          {}", h.state));
        if let Some(m) = &h.message {
            out.push(format!("                {m}"));
        }
        out.push(format!("vCenter:        {}", or_dash(&h.host)));
        out.push(format!("Hypervisor ARN: {}", or_dash(&h.arn)));
        out.push(format!(
            "Last sync:      {} ({})",
            gateway_time(&s.sync.last_success, &s.timezone),
            s.sync.last_status.map_or("-", |s| s.as_str())
        ));
        if let Some(m) = &s.sync.last_message {
            out.push(format!("                {m}"));
        }
        out.push(format!(
            "VMs:            {}",
            s.sync.vms.map_or("-".into(), |v| v.to_string())
        ));
        out.push(format!("Tag mappings:   {}", h.property_mappings));
        out.push(String::new());
        out.push("1: Re-trust the vCenter certificate (after a legitimate replacement:".into());
        out.push("   forgets the recorded thumbprint, trusts the certificate seen next)".into());
    }
    out
}

pub fn bandwidth(agent: &AgentView) -> Vec<String> {
    let mut out = header("7: Bandwidth", agent);
    if let Some(s) = agent.status() {
        let b = &s.bandwidth;
        out.push(format!("Time zone:      {}", s.timezone));
        out.push(format!("Limit now:      {}", rate(b.current_limit_bps)));
        match &b.next_change_at {
            Some(_) => out.push(format!(
                "Next change:    {} to {}",
                gateway_time(&b.next_change_at, &s.timezone),
                rate(b.next_limit_bps)
            )),
            None => out.push("Next change:    none".into()),
        }
        out.push(format!("Intervals:      {}", b.intervals));
        out.push(String::new());
        out.push("The whole schedule in gateway time:".into());
        out.push("  bgw-agent schedule explain --timezone ZONE --schedule FILE".into());
    }
    out
}

pub fn software(agent: &AgentView) -> Vec<String> {
    let mut out = header("8: Software", agent);
    out.push(format!(
        "Console version:      {}",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(s) = agent.status() {
        out.push(format!("Agent version:        {}", s.version));
        out.push(format!(
            "Next maintenance:     {}",
            gateway_time(&s.maintenance.next_window_start, &s.timezone)
        ));
        out.push(format!(
            "Configuration:        version {}",
            s.config_version
        ));
        out.push(format!("Agent up for:         {} s", s.uptime_seconds));
    }
    out
}

pub fn not_available(n: u8) -> Vec<String> {
    let (title, instead) = match n {
        2 => (
            "2: Network configuration",
            "Edit /etc/systemd/network/*.network, then: networkctl reload",
        ),
        3 => (
            "3: Test network connectivity",
            "Run: bgw-agent status (shows the last cloud error)",
        ),
        5 => ("5: System time", "Run: timedatectl"),
        _ => ("0: Command prompt", "Log in on another console (Alt+F2)"),
    };
    vec![
        title.to_string(),
        String::new(),
        "Not offered by this version of the console.".into(),
        instead.to_string(),
    ]
}
