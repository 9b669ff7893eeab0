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
        match &h.thumbprint {
            // 32 hex pairs do not fit one line: two of 16.
            Some(t) if t.len() > 48 => {
                out.push(format!(
                    "Certificate:    SHA-256 {}",
                    &t[..48].trim_end_matches(':')
                ));
                out.push(format!("                        {}", &t[48..]));
            }
            Some(t) => out.push(format!("Certificate:    SHA-256 {t}")),
            None => {
                out.push("Certificate:    no thumbprint recorded yet (first connection)".into())
            }
        }
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
        out.push(String::new());
        if b.schedule.is_empty() {
            out.push("Schedule:       none: uploads are unlimited at all times".into());
        } else {
            out.push(format!(
                "Schedule ({} intervals, gateway time; unlimited outside them):",
                b.intervals
            ));
            for i in b.schedule.iter().take(12) {
                out.push(format!(
                    "  {:<28} {}-{}  {}",
                    days(&i.days_of_week),
                    i.start,
                    i.end,
                    rate(i.limit_bps)
                ));
            }
            if b.schedule.len() > 12 {
                out.push(format!(
                    "  ... {} more: bgw-agent status --json shows them all",
                    b.schedule.len() - 12
                ));
            }
        }
    }
    out
}

/// Days of the week (0 = Sunday) for people: `Mon-Fri`, `Sat Sun`, `every day`.
pub fn days(list: &[u8]) -> String {
    const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let mut d: Vec<u8> = list.iter().copied().filter(|d| *d < 7).collect();
    d.sort_unstable();
    d.dedup();
    if d.len() == 7 {
        return "every day".into();
    }
    // Runs of consecutive days, Monday first (Sunday ends the week).
    let order: Vec<u8> = [1, 2, 3, 4, 5, 6, 0]
        .into_iter()
        .filter(|x| d.contains(x))
        .collect();
    let pos = |x: u8| (x + 6) % 7;
    let mut parts = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && pos(order[j + 1]) == pos(order[j]) + 1 {
            j += 1;
        }
        parts.push(if j - i >= 2 {
            format!("{}-{}", NAMES[order[i] as usize], NAMES[order[j] as usize])
        } else {
            order[i..=j]
                .iter()
                .map(|x| NAMES[*x as usize])
                .collect::<Vec<_>>()
                .join(" ")
        });
        i = j + 1;
    }
    parts.join(" ")
}

pub fn software(agent: &AgentView) -> Vec<String> {
    let mut out = header("8: Software", agent);
    out.push(format!(
        "Console version:      {}",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(s) = agent.status() {
        let u = &s.update;
        let running = if u.running_version.is_empty() {
            &s.version
        } else {
            &u.running_version
        };
        out.push(format!("Agent version:        {running} (running)"));
        out.push(format!(
            "Update state:         {}",
            // An agent that predates updates sends no update part at all.
            if u.running_version.is_empty() {
                "-"
            } else {
                u.state.as_str()
            }
        ));
        out.push(format!(
            "Offered by the cloud: {}",
            or_dash(&u.available_version)
        ));
        out.push(format!(
            "Staged:               {}",
            or_dash(&u.staged_version)
        ));
        let window = u
            .next_window_start
            .clone()
            .or_else(|| s.maintenance.next_window_start.clone());
        out.push(format!(
            "Next maintenance:     {}{}",
            gateway_time(&window, &s.timezone),
            if u.apply_now {
                " (applying now: asked by the cloud)"
            } else {
                ""
            }
        ));
        match &u.last_attempt {
            None => out.push("Last update:          none yet".into()),
            Some(a) => {
                out.push(format!(
                    "Last update:          {} {} ({})",
                    a.version,
                    a.result,
                    gateway_time(&Some(crate::status::rfc3339(a.started_at)), &s.timezone)
                ));
                if let Some(why) = &a.reason {
                    out.push(format!("                      {why}"));
                }
            }
        }
        out.push(String::new());
        out.push(format!(
            "Configuration:        version {}",
            s.config_version
        ));
        out.push(format!("Agent up for:         {} s", s.uptime_seconds));
        out.push(String::new());
        out.push("Updates are installed in the maintenance window (set it in the cloud:".into());
        out.push("aws backup-gateway put-maintenance-start-time ...).".into());
    }
    out
}
