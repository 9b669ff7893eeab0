//! The gateway's network as the console reads and writes it: the system's view (interfaces
//! from `/sys/class/net`, routes from `/proc/net/route`, DNS from `resolv.conf`, all under the
//! root), the checking of what the administrator types, and the systemd-networkd `.network`
//! files the console owns. Pure functions of their inputs except [`read_system`] and [`write`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::under_root;

/// Where systemd-networkd reads its files (under the root).
pub const NETWORK_DIR: &str = "/etc/systemd/network";
/// The console's files sort before the appliance's (`10-vapp-static`, `20-dhcp`): networkd
/// applies the first file that matches an interface.
pub const FILE_PREFIX: &str = "05-console-";
/// The route metric of adapters other than the default one: their default route is kept as a
/// fallback behind the default adapter's.
pub const FALLBACK_METRIC: u32 = 2048;
/// At most this many DNS servers.
pub const MAX_DNS: usize = 3;

/// An IPv4 address with its prefix length, `10.0.0.5/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Checks an interface address: a usable host address with a prefix of 8 to 32 bits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} has no prefix length: write ADDRESS/PREFIX, e.g. 192.168.1.20/24"
            ));
        };
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address (e.g. 192.168.1.20)"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=32).contains(p))
            .ok_or_else(|| format!("/{prefix} is not a prefix length from 8 to 32"))?;
        let cidr = Self { addr, prefix };
        if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.is_broadcast()
        {
            return Err(format!("{addr} cannot be an interface address"));
        }
        if prefix <= 30 && addr == cidr.network() {
            return Err(format!(
                "{addr} is the network address of {}/{prefix}: choose a host address",
                cidr.network()
            ));
        }
        if prefix <= 30 && addr == cidr.broadcast() {
            return Err(format!(
                "{addr} is the broadcast address of {}/{prefix}: choose a host address",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Checks a gateway typed for `address`: in its subnet, not the address itself.
pub fn parse_gateway(text: &str, address: &Ipv4Cidr) -> Result<Ipv4Addr, String> {
    let text = text.trim();
    let gw: Ipv4Addr = text
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 address (e.g. 192.168.1.1)"))?;
    if !address.contains(gw) {
        return Err(format!(
            "gateway {gw} is not in the subnet {}/{} of {}",
            address.network(),
            address.prefix,
            address.addr
        ));
    }
    if gw == address.addr {
        return Err(format!(
            "gateway {gw} is the interface's own address: type the router's address"
        ));
    }
    if address.prefix <= 30 && (gw == address.network() || gw == address.broadcast()) {
        return Err(format!(
            "gateway {gw} is the network or broadcast address of the subnet"
        ));
    }
    Ok(gw)
}

/// Checks a list of DNS servers separated by spaces or commas (IPv4 or IPv6, at most 3).
pub fn parse_dns(text: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for word in text.split([' ', ',']).filter(|w| !w.is_empty()) {
        let ip: IpAddr = word
            .parse()
            .map_err(|_| format!("{word:?} is not an IP address (e.g. 192.168.1.1)"))?;
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Err(format!("{ip} cannot be a DNS server"));
        }
        if out.contains(&ip) {
            return Err(format!("{ip} is listed twice"));
        }
        out.push(ip);
    }
    if out.is_empty() {
        return Err("no DNS server given: type one to three addresses".into());
    }
    if out.len() > MAX_DNS {
        return Err(format!(
            "{} DNS servers given: at most {MAX_DNS}",
            out.len()
        ));
    }
    Ok(out)
}

/// An interface name as the kernel allows it (and safe in a file name).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Dhcp,
    Static {
        address: Ipv4Cidr,
        gateway: Option<Ipv4Addr>,
    },
}

/// One interface the console configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub mode: Mode,
}

/// Everything the console's `.network` files say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub links: Vec<Link>,
    /// DNS servers set by hand (`[]`: those DHCP gives).
    pub dns: Vec<IpAddr>,
    /// The adapter whose default route is preferred.
    pub default_adapter: Option<String>,
}

impl Plan {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Sets how `name` is configured; the first interface configured becomes the default one.
    pub fn set_mode(&mut self, name: &str, mode: Mode) {
        match self.links.iter_mut().find(|l| l.name == name) {
            Some(l) => l.mode = mode,
            None => {
                self.links.push(Link {
                    name: name.to_string(),
                    mode,
                });
                self.links.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        if self.default_adapter.is_none() {
            self.default_adapter = Some(name.to_string());
        }
    }

    /// Makes `name` the default adapter (an interface not configured yet keeps DHCP).
    pub fn set_default(&mut self, name: &str) {
        if self.link(name).is_none() {
            self.set_mode(name, Mode::Dhcp);
        }
        self.default_adapter = Some(name.to_string());
    }

    fn is_default(&self, name: &str) -> bool {
        self.default_adapter.as_deref() == Some(name)
    }

    /// The file of each configured interface: (file name, contents).
    pub fn render(&self) -> Vec<(String, String)> {
        self.links
            .iter()
            .map(|l| {
                (
                    format!("{FILE_PREFIX}{}.network", l.name),
                    self.render_link(l),
                )
            })
            .collect()
    }

    fn render_link(&self, link: &Link) -> String {
        let default = self.is_default(&link.name);
        let mut out = String::from(
            "# Written by the backup gateway console (2: Network configuration); change it there.\n",
        );
        out.push_str(&format!("[Match]\nName={}\n\n[Network]\n", link.name));
        match &link.mode {
            Mode::Dhcp => out.push_str("DHCP=ipv4\n"),
            Mode::Static { address, gateway } => {
                out.push_str(&format!("Address={address}\n"));
                if let (Some(gw), true) = (gateway, default) {
                    out.push_str(&format!("Gateway={gw}\n"));
                }
            }
        }
        // DNS servers belong to the default adapter (to every adapter when none is chosen).
        if default || self.default_adapter.is_none() {
            for dns in &self.dns {
                out.push_str(&format!("DNS={dns}\n"));
            }
        }
        match &link.mode {
            Mode::Dhcp => {
                let mut dhcp = Vec::new();
                if !self.dns.is_empty() {
                    dhcp.push("UseDNS=false".to_string());
                }
                if !default {
                    dhcp.push(format!("RouteMetric={FALLBACK_METRIC}"));
                }
                if !dhcp.is_empty() {
                    out.push_str(&format!("\n[DHCPv4]\n{}\n", dhcp.join("\n")));
                }
            }
            Mode::Static {
                gateway: Some(gw), ..
            } if !default => {
                out.push_str(&format!(
                    "\n[Route]\nGateway={gw}\nMetric={FALLBACK_METRIC}\n"
                ));
            }
            Mode::Static { .. } => {}
        }
        out
    }

    /// Reads back the console's files (other files are the system's and left alone).
    pub fn parse_files(files: &[(String, String)]) -> Plan {
        let mut plan = Plan::default();
        let mut fallback_links = Vec::new();
        for (file, text) in files {
            let Some(name) = file
                .strip_prefix(FILE_PREFIX)
                .and_then(|n| n.strip_suffix(".network"))
            else {
                continue;
            };
            let mut section = String::new();
            let mut dhcp = false;
            let mut address = None;
            let mut gateway = None;
            let mut fallback = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with('#') || line.is_empty() {
                    continue;
                }
                if line.starts_with('[') {
                    section = line.trim_matches(['[', ']']).to_string();
                    continue;
                }
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                match (section.as_str(), key.trim(), value.trim()) {
                    ("Network", "DHCP", v) => dhcp = matches!(v, "ipv4" | "yes" | "true"),
                    ("Network", "Address", v) => address = Ipv4Cidr::parse(v).ok(),
                    ("Network", "Gateway", v) => gateway = v.parse().ok(),
                    ("Network", "DNS", v) => {
                        if let Ok(ip) = v.parse() {
                            if !plan.dns.contains(&ip) {
                                plan.dns.push(ip);
                            }
                        }
                    }
                    ("Route", "Gateway", v) => {
                        gateway = v.parse().ok();
                        fallback = true;
                    }
                    ("DHCPv4", "RouteMetric", v) => {
                        fallback = v.parse::<u32>().is_ok_and(|m| m >= FALLBACK_METRIC)
                    }
                    _ => {}
                }
            }
            let mode = match (dhcp, address) {
                (_, Some(address)) => Mode::Static { address, gateway },
                _ => Mode::Dhcp,
            };
            plan.links.push(Link {
                name: name.to_string(),
                mode,
            });
            if fallback {
                fallback_links.push(name.to_string());
            }
        }
        plan.links.sort_by(|a, b| a.name.cmp(&b.name));
        plan.default_adapter = plan
            .links
            .iter()
            .find(|l| !fallback_links.contains(&l.name))
            .map(|l| l.name.clone());
        plan
    }
}

/// One network interface as the system shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: Option<String>,
    /// `up`, `down`, ... (`operstate`).
    pub state: String,
    /// Addresses in use (`10.0.0.5/24`), when they can be read.
    pub addresses: Vec<String>,
}

/// A route from `/proc/net/route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub destination: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// What the system shows now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemView {
    pub ifaces: Vec<Iface>,
    pub routes: Vec<Route>,
    pub dns: Vec<String>,
    /// The console's own files.
    pub plan: Plan,
}

impl SystemView {
    pub fn default_route(&self) -> Option<&Route> {
        self.routes.iter().find(|r| r.prefix == 0)
    }
}

/// `/proc/net/route`: addresses in hexadecimal, in the kernel's (little-endian) byte order.
pub fn parse_routes(text: &str) -> Vec<Route> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_le_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let destination = hex(f[1])?;
            let gateway = hex(f[2])?;
            let mask = hex(f[7])?;
            Some(Route {
                iface: f[0].to_string(),
                destination,
                prefix: u32::from(mask).count_ones() as u8,
                gateway: (!gateway.is_unspecified()).then_some(gateway),
            })
        })
        .collect()
}

/// The `nameserver` lines of a resolv.conf.
pub fn parse_resolv(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Reads the system under `root`. The addresses in use are read from the kernel only when the
/// root is the real one (a test tree has no kernel behind it).
pub fn read_system(root: &Path) -> SystemView {
    let mut ifaces = Vec::new();
    if let Ok(dir) = std::fs::read_dir(under_root(root, "/sys/class/net")) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "lo" || !valid_ifname(&name) {
                continue;
            }
            let path = entry.path();
            ifaces.push(Iface {
                mac: read_trimmed(&path.join("address")).filter(|m| !m.is_empty()),
                state: read_trimmed(&path.join("operstate")).unwrap_or_else(|| "unknown".into()),
                addresses: Vec::new(),
                name,
            });
        }
    }
    ifaces.sort_by(|a, b| a.name.cmp(&b.name));
    if root == Path::new("/") {
        let networks = sysinfo::Networks::new_with_refreshed_list();
        for iface in &mut ifaces {
            if let Some(data) = networks.get(&iface.name) {
                iface.addresses = data
                    .ip_networks()
                    .iter()
                    .filter(|n| n.addr.is_ipv4())
                    .map(|n| format!("{}/{}", n.addr, n.prefix))
                    .collect();
            }
        }
    }
    let routes = std::fs::read_to_string(under_root(root, "/proc/net/route"))
        .map(|t| parse_routes(&t))
        .unwrap_or_default();
    // With systemd-resolved, /etc/resolv.conf names only its local stub.
    let dns = ["/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"]
        .iter()
        .find_map(|p| std::fs::read_to_string(under_root(root, p)).ok())
        .map(|t| parse_resolv(&t))
        .unwrap_or_default();
    SystemView {
        ifaces,
        routes,
        dns,
        plan: read_plan(root),
    }
}

/// The console's `.network` files under `root`.
pub fn read_plan(root: &Path) -> Plan {
    let mut files = Vec::new();
    if let Ok(dir) = std::fs::read_dir(under_root(root, NETWORK_DIR)) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(FILE_PREFIX) {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    files.push((name, text));
                }
            }
        }
    }
    Plan::parse_files(&files)
}

/// Writes the plan's files under `root` (each replaced whole); returns their paths.
pub fn write(root: &Path, plan: &Plan) -> Result<Vec<PathBuf>, String> {
    let dir = under_root(root, NETWORK_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "cannot create {}: {e}{}",
            dir.display(),
            super::config_file::AS_ROOT
        )
    })?;
    let mut written = Vec::new();
    for (name, text) in plan.render() {
        let path = dir.join(&name);
        super::config_file::replace(&path, text.as_bytes()).map_err(|e| {
            format!(
                "cannot write {}: {e}{}",
                path.display(),
                super::config_file::AS_ROOT
            )
        })?;
        written.push(path);
    }
    Ok(written)
}
