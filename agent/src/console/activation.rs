//! 1: Activation — state, gateway ARN, and getting an activation key.

use super::input::{Answer, Prompt};
use super::{agent_line, Action, AgentView, Console, Screen};

/// Regions offered (the configured one comes first).
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-south-1",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointType {
    Public,
    Fips,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    DualStack,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub region: String,
    pub endpoint: EndpointType,
    pub ip: IpVersion,
}

/// A key the agent handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedKey {
    pub key: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Overview,
    Region,
    Endpoint {
        region: String,
    },
    Ip {
        region: String,
        endpoint: EndpointType,
    },
    Waiting(Choice),
    Key(Choice, IssuedKey),
    Failed(Choice, String),
}

impl Step {
    pub fn prompt(&self) -> Prompt {
        match self {
            Step::Overview => Prompt::Number { min: 1, max: 1 },
            Step::Region => Prompt::Number {
                min: 1,
                max: REGIONS.len() as u32,
            },
            Step::Endpoint { .. } | Step::Ip { .. } => Prompt::Number { min: 1, max: 2 },
            Step::Waiting(_) | Step::Key(..) | Step::Failed(..) => Prompt::BackOnly,
        }
    }

    /// Where Esc goes; `None` is the main menu.
    pub fn parent(&self) -> Option<Step> {
        match self {
            Step::Overview => None,
            Step::Region => Some(Step::Overview),
            Step::Endpoint { .. } => Some(Step::Region),
            Step::Ip { region, .. } => Some(Step::Endpoint {
                region: region.clone(),
            }),
            Step::Waiting(_) | Step::Key(..) | Step::Failed(..) => Some(Step::Overview),
        }
    }
}

/// The regions in the order shown: the configured one first.
pub fn regions(default: &str) -> Vec<String> {
    let mut all: Vec<String> = vec![default.to_string()];
    all.extend(
        REGIONS
            .iter()
            .filter(|r| **r != default)
            .map(|r| r.to_string()),
    );
    all.truncate(REGIONS.len());
    all
}

pub fn answer(console: &mut Console, answer: Answer) -> Action {
    let Screen::Activation(step) = &console.screen else {
        return Action::Redraw;
    };
    let Answer::Number(n) = answer else {
        return Action::Redraw;
    };
    let next = match step.clone() {
        Step::Overview => {
            if console.agent.status().is_some_and(|s| s.activated) {
                console.message =
                    Some("The gateway is already activated: no key is needed.".into());
                return Action::Redraw;
            }
            Step::Region
        }
        Step::Region => Step::Endpoint {
            region: regions(&console.default_region)[n as usize - 1].clone(),
        },
        Step::Endpoint { region } => Step::Ip {
            region,
            endpoint: if n == 1 {
                EndpointType::Public
            } else {
                EndpointType::Fips
            },
        },
        Step::Ip { region, endpoint } => {
            let choice = Choice {
                region: region.clone(),
                endpoint,
                ip: if n == 1 {
                    IpVersion::V4
                } else {
                    IpVersion::DualStack
                },
            };
            console.screen = Screen::Activation(Step::Waiting(choice));
            return Action::RequestActivationKey { region };
        }
        other => other,
    };
    console.screen = Screen::Activation(next);
    Action::Redraw
}

pub fn issued(console: &mut Console, result: Result<IssuedKey, String>) {
    if let Screen::Activation(Step::Waiting(choice)) = &console.screen {
        let choice = choice.clone();
        console.screen = Screen::Activation(match result {
            Ok(key) => Step::Key(choice, key),
            Err(why) => Step::Failed(choice, why),
        });
    }
}

/// The AWS CLI command that activates the gateway with `key`.
pub fn command(choice: &Choice, key: &str) -> Vec<String> {
    let mut lines = vec![
        "aws backup-gateway create-gateway \\".to_string(),
        format!("  --activation-key {key} \\"),
        "  --gateway-display-name my-gateway --gateway-type BACKUP_VM \\".to_string(),
    ];
    let host = match (choice.endpoint, choice.ip) {
        (EndpointType::Public, IpVersion::V4) => None,
        (EndpointType::Fips, IpVersion::V4) => Some(format!(
            "backup-gateway-fips.{}.amazonaws.com",
            choice.region
        )),
        (EndpointType::Public, IpVersion::DualStack) => {
            Some(format!("backup-gateway.{}.api.aws", choice.region))
        }
        (EndpointType::Fips, IpVersion::DualStack) => {
            Some(format!("backup-gateway-fips.{}.api.aws", choice.region))
        }
    };
    match host {
        Some(host) => {
            lines.push(format!("  --endpoint-url https://{host} \\"));
            lines.push(format!("  --region {}", choice.region));
        }
        None => lines.push(format!("  --region {}", choice.region)),
    }
    lines
}

/// The key spaced out in a box, large enough to copy by hand.
pub fn large(key: &str) -> Vec<String> {
    let spaced: String = key
        .chars()
        .map(|c| format!("{c} "))
        .collect::<String>()
        .trim_end()
        .to_string();
    let width = spaced.chars().count() + 4;
    vec![
        format!("  +{}+", "-".repeat(width)),
        format!("  |  {spaced}  |"),
        format!("  +{}+", "-".repeat(width)),
    ]
}

pub fn render(console: &Console, step: &Step) -> Vec<String> {
    let mut out = vec!["1: Activation".to_string(), String::new()];
    match step {
        Step::Overview => {
            match &console.agent {
                AgentView::Running(s) => {
                    out.push(format!(
                        "State:        {}",
                        if s.activated {
                            "ACTIVATED"
                        } else {
                            "NOT ACTIVATED"
                        }
                    ));
                    out.push(format!(
                        "Gateway ARN:  {}",
                        s.gateway_arn.as_deref().unwrap_or("-")
                    ));
                    if let Some(key) = &s.pending_activation_key {
                        out.push(format!("Key issued:   {key} (not used yet)"));
                    }
                    out.push(format!("Cloud region: {}", s.cloud.region));
                }
                other => out.push(format!("State:        unknown: {}", agent_line(other))),
            }
            out.push(String::new());
            out.push("1: Get an activation key".into());
        }
        Step::Region => {
            out.push("Choose the region to activate in:".into());
            for (i, r) in regions(&console.default_region).iter().enumerate() {
                let note = if i == 0 { "  (configured)" } else { "" };
                out.push(format!("{:>3}: {r}{note}", i + 1));
            }
        }
        Step::Endpoint { region } => {
            out.push(format!("Region: {region}"));
            out.push("Choose the endpoint type:".into());
            out.push("  1: Public".into());
            out.push("  2: FIPS".into());
        }
        Step::Ip { region, endpoint } => {
            out.push(format!("Region: {region}   Endpoint: {endpoint:?}"));
            out.push("Choose the IP version:".into());
            out.push("  1: IPv4".into());
            out.push("  2: Dual stack (IPv4 and IPv6)".into());
        }
        Step::Waiting(choice) => {
            out.push(format!(
                "Asking the agent for an activation key for {}... {}",
                choice.region,
                super::spinner(console.ticks)
            ));
        }
        Step::Key(choice, key) => {
            out.push(format!("Activation key for {}:", choice.region));
            out.push(String::new());
            out.extend(large(&key.key));
            out.push(String::new());
            if let Some(at) = &key.expires_at {
                out.push(format!("Valid until {at}. Activate the gateway with:"));
            } else {
                out.push("Activate the gateway with:".into());
            }
            out.extend(command(choice, &key.key));
        }
        Step::Failed(choice, why) => {
            out.push(format!("No activation key for {}:", choice.region));
            out.push(format!("  {why}"));
            out.push(String::new());
            out.push("Check that the agent runs (main menu) and that the cloud endpoint".into());
            out.push("is reachable (3: Test network connectivity), then try again.".into());
        }
    }
    out
}
