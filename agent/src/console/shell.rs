//! 0: Command prompt — a restricted shell with diagnostic commands only. There is no general
//! shell: a line is split on spaces, never given to `sh`, and shell metacharacters are refused
//! outright so that nobody is led to believe a pipe or a redirection ran. The two programs it
//! starts (`ip`, `ping`) are run by absolute path with checked arguments and a deadline.

use std::time::Duration;

use super::input::{Answer, Prompt};
use super::{Action, Console};

/// Lines kept in the scroll-back.
pub const SCROLLBACK: usize = 200;
/// Lines shown.
pub const SHOWN: usize = 16;
pub const MAX_PING: u32 = 10;
/// Characters a shell would interpret.
const METACHARACTERS: &[char] = &[
    ';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', '*', '?', '[', ']', '~', '!', '\\',
    '\'', '"', '#', '=',
];

/// A program the prompt starts: found in one of `DIRS`, never through `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub name: &'static str,
    pub args: Vec<String>,
    pub deadline: Duration,
}

const DIRS: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

impl Program {
    pub fn path(&self) -> Option<std::path::PathBuf> {
        DIRS.iter()
            .map(|d| std::path::Path::new(d).join(self.name))
            .find(|p| p.is_file())
    }
}

/// A host name or an IP address, as ping and NTP take them.
pub fn valid_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub const HELP: &[&str] = &[
    "Commands:",
    "  ip addr | ip route | ip link [IFACE]   addresses, routes, links",
    "  ping HOST [COUNT]                      ICMP echo, COUNT 1-10 (default 4)",
    "  testconn                               the connectivity test of entry 3",
    "  status                                 the agent's state",
    "  clear                                  empty the screen",
    "  help                                   this list",
    "  exit                                   back to the main menu (or Esc)",
];

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Exit,
    Clear,
    Status,
    TestConn,
    Run(Program),
}

/// Checks a line; `Err` is the refusal to print.
pub fn parse(line: &str) -> Result<Command, String> {
    if let Some(c) = line.chars().find(|c| METACHARACTERS.contains(c)) {
        return Err(format!(
            "'{c}' refused: this prompt runs single diagnostic commands, not a shell"
        ));
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Err("type a command; help lists them".into());
    };
    match (cmd, args) {
        ("help", []) => Ok(Command::Help),
        ("exit" | "quit" | "logout", []) => Ok(Command::Exit),
        ("clear", []) => Ok(Command::Clear),
        ("status", []) => Ok(Command::Status),
        ("testconn", []) => Ok(Command::TestConn),
        ("ip", args) => ip(args),
        ("ping", args) => ping(args),
        ("help" | "exit" | "clear" | "status" | "testconn", _) => {
            Err(format!("{cmd} takes no arguments"))
        }
        _ => Err(format!(
            "{}: not available here (help lists the commands; there is no general shell)",
            super::input::shown(cmd)
        )),
    }
}

fn ip(args: &[&str]) -> Result<Command, String> {
    let object = match args.first().copied() {
        Some("a" | "addr" | "address") => "address",
        Some("r" | "route") => "route",
        Some("l" | "link") => "link",
        Some("n" | "neigh") => "neigh",
        None => return Err("ip what? ip addr, ip route, ip link or ip neigh".into()),
        Some(other) => {
            return Err(format!(
                "ip {}: only addr, route, link and neigh can be shown here",
                super::input::shown(other)
            ))
        }
    };
    let mut rest = &args[1..];
    if rest.first() == Some(&"show") {
        rest = &rest[1..];
    }
    let mut out = vec!["-brief".to_string(), object.to_string(), "show".to_string()];
    if object == "route" {
        out.remove(0);
    }
    match rest {
        [] => {}
        [iface] if object != "route" && super::netconf::valid_ifname(iface) => {
            out.push("dev".into());
            out.push(iface.to_string());
        }
        _ => {
            return Err(format!(
                "ip {object}: takes at most an interface name (e.g. ip addr ens192)"
            ))
        }
    }
    Ok(Command::Run(Program {
        name: "ip",
        args: out,
        deadline: Duration::from_secs(5),
    }))
}

fn ping(args: &[&str]) -> Result<Command, String> {
    let (host, count) = match args {
        [host] => (*host, None),
        [host, count] | ["-c", count, host] => (*host, Some(*count)),
        [] => return Err("ping what? ping HOST [COUNT]".into()),
        _ => return Err("ping takes HOST and an optional COUNT (1-10)".into()),
    };
    if !valid_host(host) {
        return Err(format!(
            "{} is not a host name or IP address",
            super::input::shown(host)
        ));
    }
    let count = match count {
        None => 4,
        Some(count) => count
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PING).contains(n))
            .ok_or_else(|| {
                format!(
                    "ping count {}: a number from 1 to {MAX_PING}",
                    super::input::shown(count)
                )
            })?,
    };
    Ok(Command::Run(Program {
        name: "ping",
        args: vec![
            "-c".into(),
            count.to_string(),
            "-W".into(),
            "2".into(),
            "-w".into(),
            (count * 2 + 2).to_string(),
            "--".into(),
            host.to_string(),
        ],
        deadline: Duration::from_secs(u64::from(count) * 2 + 4),
    }))
}

pub fn prompt(console: &Console) -> Prompt {
    if console.shell_busy {
        Prompt::BackOnly
    } else {
        Prompt::Text {
            max: 60,
            what: "a command (help lists them)",
        }
    }
}

pub fn print(console: &mut Console, line: impl Into<String>) {
    console.shell.push(super::logs::printable(&line.into()));
    let extra = console.shell.len().saturating_sub(SCROLLBACK);
    console.shell.drain(..extra);
}

pub fn answer(console: &mut Console, answer: Answer) -> Action {
    let line = match answer {
        Answer::Back => return console.back(),
        Answer::Text(line) => line,
        Answer::Number(n) => n.to_string(),
    };
    print(console, format!("gateway> {line}"));
    match parse(&line) {
        Err(why) => {
            print(console, why);
            Action::Redraw
        }
        Ok(Command::Help) => {
            for l in HELP {
                print(console, *l);
            }
            Action::Redraw
        }
        Ok(Command::Exit) => console.back(),
        Ok(Command::Clear) => {
            console.shell.clear();
            Action::Redraw
        }
        Ok(Command::Status) => {
            for l in status_lines(console) {
                print(console, l);
            }
            Action::Redraw
        }
        Ok(Command::TestConn) => {
            print(console, "Testing connectivity...");
            console.shell_busy = true;
            Action::TestConnectivity
        }
        Ok(Command::Run(program)) => {
            console.shell_busy = true;
            Action::RunProgram(program)
        }
    }
}

fn status_lines(console: &Console) -> Vec<String> {
    let Some(s) = console.agent.status() else {
        return vec![super::agent_line(&console.agent)];
    };
    vec![
        format!(
            "agent {}  {}  up {} s",
            s.version,
            if s.activated {
                "activated"
            } else {
                "not activated"
            },
            s.uptime_seconds
        ),
        format!("gateway:    {}", s.gateway_arn.as_deref().unwrap_or("-")),
        format!("cloud:      {} ({})", s.cloud.endpoint, s.cloud.region),
        format!(
            "last error: {}",
            s.cloud.last_error.as_deref().unwrap_or("none")
        ),
        format!(
            "hypervisor: {} {}",
            s.hypervisor.state,
            s.hypervisor.host.as_deref().unwrap_or("")
        ),
        format!("time zone:  {}", s.timezone),
    ]
}

/// A program or the connectivity test finished.
pub fn done(console: &mut Console, result: Result<(), String>) {
    if let Err(why) = result {
        print(console, why);
    }
    console.shell_busy = false;
}

pub fn render(console: &Console) -> Vec<String> {
    let mut out = vec![
        "0: Command prompt (diagnostic commands only; help lists them)".to_string(),
        String::new(),
    ];
    let skip = console.shell.len().saturating_sub(SHOWN);
    out.extend(console.shell[skip..].iter().cloned());
    if console.shell_busy {
        out.push(format!(
            "running {} (Esc stops waiting)",
            super::spinner(console.ticks)
        ));
    }
    out
}
