//! The main menu: one numbered line per entry, with its status on the line.

use super::{agent_line, info, AgentView, Console};

pub fn render(console: &Console) -> Vec<String> {
    let s = console.agent.status();
    let activation = match &console.agent {
        AgentView::Running(s) if s.activated => "ACTIVATED".to_string(),
        AgentView::Running(_) => "NOT ACTIVATED".to_string(),
        other => agent_line(other),
    };
    let hypervisor = s.map_or("-".to_string(), |s| s.hypervisor.state.to_string());
    let bandwidth = s.map_or("-".to_string(), |s| {
        format!("{} now", info::rate(s.bandwidth.current_limit_bps))
    });
    let time = s.map_or(
        format!("{} (configured)", console.configured_timezone),
        |s| s.timezone.clone(),
    );
    let software = s.map_or(format!("console {}", env!("CARGO_PKG_VERSION")), |s| {
        format!("agent {}", s.version)
    });
    let tested = match &console.connectivity {
        Some(run) if !run.running() => {
            let (passed, failed) = run.counts();
            format!("({passed} PASSED, {failed} FAILED)")
        }
        _ => String::new(),
    };
    let line = |n: &str, name: &str, status: &str| format!("  {n}: {name:<28}{status}");
    vec![
        format!(
            "Backup Gateway console{:>58}",
            format!("bgw-agent {}", env!("CARGO_PKG_VERSION"))
        ),
        format!("Agent: {}", agent_line(&console.agent)),
        String::new(),
        line("1", "Activation", &activation),
        line("2", "Network configuration", ""),
        line("3", "Test network connectivity", &tested),
        line("4", "System resource check", &console.resources.summary()),
        line("5", "System time", &time),
        line("6", "Hypervisor", &hypervisor),
        line("7", "Bandwidth", &bandwidth),
        line("8", "Software", &software),
        line("9", "Logs", ""),
        line("0", "Command prompt", ""),
        String::new(),
        line("x", "Exit", ""),
    ]
}
