//! 2: Network configuration — interfaces, routes and DNS; DHCP or static IPv4 per interface,
//! DNS servers and the default adapter (systemd-networkd files, see [`netconf`]); the HTTP(S)
//! proxy the agent uses for the cloud (`cloud.proxy` in its configuration).

use super::input::{Answer, Prompt};
use super::netconf::{self, Ipv4Cidr, Mode, Plan, SystemView};
use super::{Action, Console, Screen};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Menu,
    Interface,
    Mode {
        iface: String,
    },
    Address {
        iface: String,
    },
    Gateway {
        iface: String,
        address: Ipv4Cidr,
    },
    Dns,
    DefaultAdapter,
    Proxy,
    /// Waiting for the files to be written.
    Saving,
}

/// What the console read last: the system and the configured proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub system: SystemView,
    pub proxy: Option<String>,
}

impl Step {
    pub fn prompt(&self, console: &Console) -> Prompt {
        let ifaces = console
            .network
            .as_ref()
            .map_or(0, |n| n.system.ifaces.len()) as u32;
        match self {
            Step::Menu => Prompt::Number { min: 1, max: 4 },
            Step::Interface | Step::DefaultAdapter => Prompt::Number {
                min: 1,
                max: ifaces.max(1),
            },
            Step::Mode { .. } => Prompt::Number { min: 1, max: 2 },
            Step::Address { .. } => Prompt::Text {
                max: 18,
                what: "ADDRESS/PREFIX (e.g. 192.168.1.20/24)",
            },
            Step::Gateway { .. } => Prompt::Text {
                max: 15,
                what: "the gateway's address, or none",
            },
            Step::Dns => Prompt::Text {
                max: 60,
                what: "1 to 3 DNS servers, or dhcp",
            },
            Step::Proxy => Prompt::Text {
                max: 120,
                what: "http://HOST:PORT, or none",
            },
            Step::Saving => Prompt::BackOnly,
        }
    }

    pub fn parent(&self) -> Option<Step> {
        match self {
            Step::Menu => None,
            Step::Address { iface } => Some(Step::Mode {
                iface: iface.clone(),
            }),
            Step::Gateway { iface, .. } => Some(Step::Address {
                iface: iface.clone(),
            }),
            Step::Mode { .. } => Some(Step::Interface),
            _ => Some(Step::Menu),
        }
    }
}

/// The console's files as they are. When none chooses a default adapter yet, the adapter that
/// holds the default route now stays the default one (configuring a second adapter must not
/// take the route away from the first).
fn plan(console: &Console) -> Plan {
    let Some(net) = console.network.as_ref() else {
        return Plan::default();
    };
    let mut plan = net.system.plan.clone();
    if plan.default_adapter.is_none() {
        if let Some(route) = net.system.default_route() {
            if net.system.ifaces.iter().any(|i| i.name == route.iface) {
                plan.set_default(&route.iface);
            }
        }
    }
    plan
}

fn iface_at(console: &Console, n: u32) -> Option<String> {
    let net = console.network.as_ref()?;
    net.system
        .ifaces
        .get(n as usize - 1)
        .map(|i| i.name.clone())
}

fn go(console: &mut Console, step: Step) -> Action {
    console.screen = Screen::Network(step);
    Action::Redraw
}

fn save(console: &mut Console, plan: Plan) -> Action {
    console.screen = Screen::Network(Step::Saving);
    Action::WriteNetwork(plan)
}

pub fn answer(console: &mut Console, answer: Answer) -> Action {
    let Screen::Network(step) = console.screen.clone() else {
        return Action::Redraw;
    };
    if console.network.is_none() && step != Step::Saving {
        console.message = Some("Still reading the network configuration: wait a moment.".into());
        return Action::Redraw;
    }
    let no_ifaces = console
        .network
        .as_ref()
        .is_some_and(|n| n.system.ifaces.is_empty());
    match (step, answer) {
        (_, Answer::Back) => console.back(),
        (Step::Menu, Answer::Number(1 | 3)) if no_ifaces => {
            console.message = Some(
                "No network interface found (/sys/class/net): check the VM's adapters in vSphere."
                    .into(),
            );
            Action::Redraw
        }
        (Step::Menu, Answer::Number(1)) => go(console, Step::Interface),
        (Step::Menu, Answer::Number(2)) => go(console, Step::Dns),
        (Step::Menu, Answer::Number(3)) => go(console, Step::DefaultAdapter),
        (Step::Menu, Answer::Number(_)) => go(console, Step::Proxy),
        (Step::Interface, Answer::Number(n)) => match iface_at(console, n) {
            Some(iface) => go(console, Step::Mode { iface }),
            None => Action::Redraw,
        },
        (Step::DefaultAdapter, Answer::Number(n)) => match iface_at(console, n) {
            Some(iface) => {
                let mut plan = plan(console);
                plan.set_default(&iface);
                save(console, plan)
            }
            None => Action::Redraw,
        },
        (Step::Mode { iface }, Answer::Number(1)) => {
            let mut plan = plan(console);
            plan.set_mode(&iface, Mode::Dhcp);
            save(console, plan)
        }
        (Step::Mode { iface }, Answer::Number(_)) => go(console, Step::Address { iface }),
        (Step::Address { iface }, Answer::Text(text)) => match Ipv4Cidr::parse(&text) {
            Ok(address) => go(console, Step::Gateway { iface, address }),
            Err(why) => retry(console, why),
        },
        (Step::Gateway { iface, address }, Answer::Text(text)) => {
            let gateway = if text.eq_ignore_ascii_case("none") {
                None
            } else {
                match netconf::parse_gateway(&text, &address) {
                    Ok(gw) => Some(gw),
                    Err(why) => return retry(console, why),
                }
            };
            let mut plan = plan(console);
            plan.set_mode(&iface, Mode::Static { address, gateway });
            save(console, plan)
        }
        (Step::Dns, Answer::Text(text)) => {
            let dns = if text.eq_ignore_ascii_case("dhcp") {
                Vec::new()
            } else {
                match netconf::parse_dns(&text) {
                    Ok(dns) => dns,
                    Err(why) => return retry(console, why),
                }
            };
            let mut plan = plan(console);
            if plan.links.is_empty() {
                // DNS servers need a file: the first adapter's, keeping DHCP.
                if let Some(first) = iface_at(console, 1) {
                    plan.set_default(&first);
                }
            }
            plan.dns = dns;
            save(console, plan)
        }
        (Step::Proxy, Answer::Text(text)) => {
            let proxy = if text.eq_ignore_ascii_case("none") {
                None
            } else {
                match crate::config::ProxyUrl::parse(&text) {
                    Ok(p) => Some(p),
                    Err(why) => return retry(console, why),
                }
            };
            console.screen = Screen::Network(Step::Saving);
            Action::SaveProxy(proxy)
        }
        _ => Action::Redraw,
    }
}

/// Wrong text at a prompt: say why, ask again.
fn retry(console: &mut Console, why: String) -> Action {
    console.message = Some(format!("{why}. Try again."));
    Action::Redraw
}

/// The files were written (or not): back to the overview, which is read again.
pub fn saved(console: &mut Console, result: Result<String, String>) -> Action {
    console.message = Some(match result {
        Ok(done) => done,
        Err(why) => format!("Not saved: {why}"),
    });
    if matches!(console.screen, Screen::Network(_)) {
        console.screen = Screen::Network(Step::Menu);
    }
    Action::LoadNetwork
}

fn mode_of(plan: &Plan, iface: &str) -> String {
    let default = if plan.default_adapter.as_deref() == Some(iface) {
        ", default"
    } else {
        ""
    };
    match plan.link(iface).map(|l| &l.mode) {
        None => "appliance".into(),
        Some(Mode::Dhcp) => format!("DHCP{default}"),
        Some(Mode::Static { .. }) => format!("static{default}"),
    }
}

fn address_of(system: &SystemView, iface: &netconf::Iface) -> String {
    if !iface.addresses.is_empty() {
        return iface.addresses.join(" ");
    }
    match system.plan.link(&iface.name).map(|l| &l.mode) {
        Some(Mode::Static { address, .. }) => format!("{address} (set)"),
        _ => "-".into(),
    }
}

pub fn render(console: &Console, step: &Step) -> Vec<String> {
    let mut out = vec!["2: Network configuration".to_string(), String::new()];
    let Some(net) = &console.network else {
        out.push("Reading the network configuration...".into());
        return out;
    };
    let sys = &net.system;
    let list = |out: &mut Vec<String>| {
        for (i, iface) in sys.ifaces.iter().enumerate() {
            out.push(format!(
                "{:>3}: {:<10} {:<5} {:<16} {:<19} {}",
                i + 1,
                iface.name,
                iface.state,
                mode_of(&sys.plan, &iface.name),
                address_of(sys, iface),
                iface.mac.as_deref().unwrap_or("")
            ));
        }
        if sys.ifaces.is_empty() {
            out.push("  No network interface found (/sys/class/net).".into());
        }
    };
    match step {
        Step::Menu | Step::Saving => {
            out.push(format!(
                "     {:<10} {:<5} {:<16} {:<19} {}",
                "Interface", "Link", "Configured", "Address", "MAC"
            ));
            list(&mut out);
            out.push(String::new());
            out.push(match sys.default_route() {
                Some(r) => format!(
                    "Default route: via {} on {}",
                    r.gateway.map_or("-".into(), |g| g.to_string()),
                    r.iface
                ),
                None => "Default route: none".into(),
            });
            let others: Vec<String> = sys
                .routes
                .iter()
                .filter(|r| r.prefix > 0)
                .take(3)
                .map(|r| match r.gateway {
                    Some(gw) => format!("{}/{} via {gw} on {}", r.destination, r.prefix, r.iface),
                    None => format!("{}/{} on {}", r.destination, r.prefix, r.iface),
                })
                .collect();
            if !others.is_empty() {
                out.push(format!("Other routes:  {}", others.join(", ")));
            }
            let dns = if sys.dns.is_empty() {
                "none found".to_string()
            } else {
                sys.dns.join(" ")
            };
            out.push(format!("DNS servers:   {dns}"));
            out.push(format!(
                "Cloud proxy:   {}",
                net.proxy.as_deref().unwrap_or("none (direct connection)")
            ));
            out.push(String::new());
            if *step == Step::Saving {
                out.push(format!("Saving {}", super::spinner(console.ticks)));
            } else {
                out.push("1: Configure an interface (DHCP or static IPv4)".into());
                out.push("2: DNS servers     3: Default adapter     4: Cloud proxy".into());
            }
        }
        Step::Interface | Step::DefaultAdapter => {
            out.push(if *step == Step::Interface {
                "Choose the interface to configure:".into()
            } else {
                "Choose the default adapter (the one whose default route is used):".into()
            });
            list(&mut out);
        }
        Step::Mode { iface } => {
            out.push(format!("Interface {iface}: {}", mode_of(&sys.plan, iface)));
            out.push("  1: DHCP (address from the network)".into());
            out.push("  2: Static IPv4 address".into());
        }
        Step::Address { iface } => {
            out.push(format!(
                "Static IPv4 address of {iface}, with its prefix length,"
            ));
            out.push("e.g. 192.168.1.20/24 (a /24 netmask is 255.255.255.0).".into());
        }
        Step::Gateway { iface, address } => {
            out.push(format!("Interface {iface}: {address}"));
            out.push(format!(
                "Gateway in {}/{} (the router), or none.",
                address.network(),
                address.prefix
            ));
        }
        Step::Dns => {
            out.push(format!("DNS servers now: {}", sys.dns.join(" ")));
            out.push(
                "Type 1 to 3 server addresses separated by spaces, e.g. 10.0.0.2 1.1.1.1,".into(),
            );
            out.push("or dhcp to use those the DHCP server gives.".into());
        }
        Step::Proxy => {
            out.push(format!(
                "Cloud proxy now: {}",
                net.proxy.as_deref().unwrap_or("none")
            ));
            out.push(
                "The agent sends its cloud traffic through this HTTP(S) proxy (HTTPS is".into(),
            );
            out.push(
                "tunnelled with CONNECT). Type http://HOST:PORT (http://USER:PASSWORD@".into(),
            );
            out.push("HOST:PORT for a proxy that asks for a login), or none.".into());
        }
    }
    out
}
