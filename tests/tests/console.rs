//! `bgw-agent console` driven in tmux (80×24) as an administrator would: keys in, screen out.

mod agent_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agent_support::{Agent, AgentOptions};
use bgw_tests::cloud::{Cloud, CloudOptions};
use bgw_tests::paths::workspace_binary;

/// One console in its own tmux server, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(config: &Path, root: &Path) -> Tmux {
        let binary = workspace_binary("bgw-agent", "BGW_AGENT_BIN").expect("bgw-agent is built");
        let socket = format!("bgw-console-{}-{}", std::process::id(), rand_suffix());
        let command = format!(
            "'{}' console --config '{}' --root '{}'; echo CONSOLE-EXITED $?; sleep 600",
            binary.display(),
            config.display(),
            root.display()
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "80", "-y", "24"])
            .arg(command)
            .status()
            .expect("tmux runs");
        assert!(status.success());
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys as tmux names them (`Enter`, `Escape`) or literal text (`-l`).
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let mut cmd = Command::new("tmux");
            cmd.args(["-L", &self.socket, "send-keys"]);
            if matches!(*k, "Enter" | "Escape" | "BSpace" | "C-g" | "C-u" | "Up") {
                cmd.arg(k);
            } else {
                cmd.args(["-l", k]);
            }
            assert!(cmd.status().unwrap().success());
        }
    }

    /// Types `text` and Enter.
    fn line(&self, text: &str) {
        if !text.is_empty() {
            self.keys(&[text]);
        }
        self.keys(&["Enter"]);
    }

    /// Waits until the screen shows `what`; returns the screen.
    fn expect(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the console never showed {what:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Wrong input at a number prompt: each is answered and the same screen asked again.
fn wrong_numbers(t: &Tmux, title: &str) {
    t.line("abc");
    let s = t.expect("\"abc\" is not a number");
    assert!(s.contains(title), "{s}");
    t.line("77");
    t.expect("77 is out of range");
    t.keys(&["123456"]);
    t.expect("Input too long");
    t.keys(&["BSpace", "BSpace", "BSpace", "BSpace", "C-g"]);
    let s = t.expect("Control character");
    assert!(s.contains(title), "{s}");
}

/// Wrong input at a text prompt of at most `max` characters.
fn wrong_text(t: &Tmux, title: &str, max: usize) {
    t.line("");
    let s = t.expect("Nothing typed");
    assert!(s.contains(title), "{s}");
    t.keys(&[&"a".repeat(max + 3)]);
    t.expect("Input too long");
    for _ in 0..max {
        t.keys(&["BSpace"]);
    }
    t.keys(&["C-g"]);
    let s = t.expect("Control character");
    assert!(s.contains(title), "{s}");
}

/// A system tree for `--root`: two network adapters, a default route, a resolver.
fn fake_system(root: &Path) {
    for (name, state, mac) in [
        ("ens192", "up", "00:50:56:aa:bb:01"),
        ("ens224", "down", "00:50:56:aa:bb:02"),
    ] {
        let dir = root.join("sys/class/net").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("operstate"), format!("{state}\n")).unwrap();
        std::fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
    }
    std::fs::create_dir_all(root.join("proc/net")).unwrap();
    std::fs::write(
        root.join("proc/net/route"),
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
         ens192\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("etc/systemd")).unwrap();
    std::fs::write(root.join("etc/resolv.conf"), "nameserver 10.0.0.2\n").unwrap();
}

/// An SNTP server on a loopback UDP port that answers with the time now; returns the port.
fn sntp_server() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || loop {
        let mut buf = [0u8; 48];
        let Ok((_, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let mut answer = [0u8; 48];
        answer[0] = 0x1c;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        answer[40..44].copy_from_slice(&((now + 2_208_988_800) as u32).to_be_bytes());
        let _ = socket.send_to(&answer, from);
    });
    port
}

#[test]
fn every_menu_with_a_running_agent() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let agent = Agent::start(&cloud, AgentOptions::default());
    let root = tempfile::tempdir().unwrap();
    fake_system(root.path());
    let ntp = sntp_server();
    std::fs::write(
        root.path().join("etc/systemd/timesyncd.conf"),
        format!("[Time]\nNTP=127.0.0.1:{ntp}\n"),
    )
    .unwrap();
    let t = Tmux::start(&agent.config, root.path());

    let s = t.expect("Agent: agent running");
    assert!(
        s.contains("1: Activation                  NOT ACTIVATED"),
        "{s}"
    );
    assert!(s.contains("4: System resource check"), "{s}");
    wrong_numbers(&t, "Backup Gateway console");

    // Every entry opens and Esc or q goes back.
    for (n, title) in [
        ("2", "Cloud proxy:   none"),
        ("3", "PASSED, "),
        ("4", "Root disk"),
        ("5", "NTP servers:"),
        ("6", "6: Hypervisor"),
        ("7", "Limit now:      unlimited"),
        ("8", "Update state:"),
        ("9", "Recent agent log lines"),
        ("0", "0: Command prompt"),
    ] {
        t.line(n);
        t.expect(title);
        match n {
            "4" | "7" | "8" => {
                t.line("7");
                t.expect("Nothing to choose");
            }
            "0" => wrong_text(&t, title, 60),
            _ => wrong_numbers(&t, title),
        }
        t.keys(&[if n == "4" { "q" } else { "Escape" }]);
        t.expect("x: Exit");
    }

    // 6 and 7 in detail: no hypervisor yet, no schedule.
    t.line("6");
    t.expect("Certificate:    no thumbprint recorded yet");
    t.keys(&["Escape"]);
    t.line("7");
    t.expect("Schedule:       none: uploads are unlimited at all times");
    t.keys(&["Escape"]);
    t.expect("x: Exit");

    // An activation key through every step, with wrong input at each.
    t.line("1");
    t.expect("State:        NOT ACTIVATED");
    wrong_numbers(&t, "1: Activation");
    t.line("1");
    t.expect("1: us-east-1  (configured)");
    wrong_numbers(&t, "Choose the region");
    t.line("1");
    t.expect("Choose the endpoint type");
    wrong_numbers(&t, "Choose the endpoint type");
    t.line("1");
    t.expect("Choose the IP version");
    wrong_numbers(&t, "Choose the IP version");
    t.line("1");
    let s = t.expect("--activation-key ");
    let key = agent.status()["pending_activation_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(s.contains(&format!("--activation-key {key}")), "{s}");
    t.keys(&["Escape", "Escape"]);
    t.expect("x: Exit");

    network_entry(&t, root.path(), &agent.config);
    connectivity_entry(&t);
    time_entry(&t, root.path(), &agent);
    command_prompt(&t);

    // A support bundle, written under the root.
    t.line("9");
    t.expect("Recent agent log lines");
    t.line("2");
    t.expect("Support bundle written");
    let bundles: Vec<_> = std::fs::read_dir(root.path().join("var/tmp"))
        .unwrap()
        .collect();
    assert_eq!(bundles.len(), 1);
    t.keys(&["Escape", "Escape"]);

    t.keys(&["x"]);
    t.expect("CONSOLE-EXITED 0");
}

#[test]
fn a_dead_agent_is_shown_and_the_menu_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    // Nothing listens on the discard port.
    std::fs::write(
        &config,
        format!(
            "[cloud]\nendpoint = \"https://127.0.0.1:9\"\nregion = \"us-east-1\"\n\n\
             [gateway]\nstate_dir = \"{}\"\ntimezone = \"UTC\"\nactivation_listen = \"127.0.0.1:0\"\n\n\
             [admin]\nlisten = \"127.0.0.1:9\"\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let t = Tmux::start(&config, dir.path());
    t.expect("Agent: agent not running");
    t.line("6");
    t.expect("Start it with: systemctl start bgw-agent");
    t.keys(&["Escape"]);
    t.line("1");
    t.expect("State:        unknown: agent not running");
    t.keys(&["q"]);
    t.line("abc");
    t.expect("\"abc\" is not a number");

    // The connectivity test says what failed; the menu answers meanwhile.
    t.line("3");
    let s = t.expect("PASSED, ");
    assert!(s.contains("agent not running"), "{s}");
    let row = s.lines().find(|l| l.starts_with("Cloud TCP")).unwrap();
    assert!(row.contains("FAILED  connection refused"), "{s}");
    t.keys(&["Escape"]);

    // The time zone is saved for the next start.
    t.line("5");
    t.expect("(configured; agent not running");
    t.line("1");
    t.line("tokyo");
    t.line("1");
    t.expect("Time zone Asia/Tokyo saved; the agent (not answering) uses it when it starts");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("timezone = \"Asia/Tokyo\""), "{text}");
    t.keys(&["Escape"]);
    t.keys(&["x"]);
    t.expect("CONSOLE-EXITED 0");
}

/// 2: a static address with wrong input at each prompt, DNS, the default adapter, the proxy.
fn network_entry(t: &Tmux, root: &Path, config: &Path) {
    t.line("2");
    let s = t.expect("Cloud proxy:   none");
    assert!(s.contains("1: ens192     up    appliance"), "{s}");
    assert!(s.contains("Default route: via 10.0.0.1 on ens192"), "{s}");
    assert!(s.contains("DNS servers:   10.0.0.2"), "{s}");
    t.line("1");
    t.expect("Choose the interface to configure");
    wrong_numbers(t, "Choose the interface");
    t.line("2");
    t.expect("Interface ens224: appliance");
    wrong_numbers(t, "Interface ens224");
    t.line("2");
    t.expect("Static IPv4 address of ens224");
    wrong_text(t, "Static IPv4 address", 18);
    t.line("10.0.0.7");
    t.expect("has no prefix length");
    t.line("10.0.0.0/24");
    t.expect("is the network address");
    t.line("10.0.0.7/24");
    t.expect("Gateway in 10.0.0.0/24");
    wrong_text(t, "Gateway in", 15);
    t.line("10.9.9.1");
    t.expect("not in the subnet 10.0.0.0/24");
    t.line("10.0.0.1");
    t.expect("Saved 05-console-ens192.network, 05-console-ens224.network");
    // The adapter that holds the default route stays the default one; the other's gateway is
    // a fallback route.
    let s = t.expect("static           10.0.0.7/24");
    assert!(s.contains("1: ens192     up    DHCP, default"), "{s}");
    let file = root.join("etc/systemd/network/05-console-ens224.network");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("Name=ens224")
            && text.contains("Address=10.0.0.7/24\n")
            && text.contains("[Route]\nGateway=10.0.0.1\nMetric=2048"),
        "{text}"
    );
    let first = root.join("etc/systemd/network/05-console-ens192.network");

    t.line("2");
    t.expect("Type 1 to 3 server addresses");
    wrong_text(t, "DNS servers now", 60);
    t.line("10.0.0.2 resolver");
    t.expect("\"resolver\" is not an IP address");
    t.line("10.0.0.2 1.1.1.1");
    t.expect("Saved 05-console-ens192.network");
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(
        text.contains("DHCP=ipv4\nDNS=10.0.0.2\nDNS=1.1.1.1"),
        "{text}"
    );

    t.line("3");
    t.expect("Choose the default adapter");
    wrong_numbers(t, "Choose the default adapter");
    t.line("2");
    t.expect("static, default");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("Address=10.0.0.7/24\nGateway=10.0.0.1\nDNS=10.0.0.2"),
        "{text}"
    );
    let text = std::fs::read_to_string(&first).unwrap();
    assert!(text.contains("RouteMetric=2048"), "{text}");

    t.line("4");
    t.expect("Cloud proxy now: none");
    wrong_text(t, "Cloud proxy now", 120);
    t.line("proxy.example:3128");
    t.expect("has no scheme; write http://proxy.example:3128");
    t.line("http://proxy.example:3128");
    t.expect("Cloud proxy:   http://proxy.example:3128");
    t.expect("the agent uses it once restarted");
    let text = std::fs::read_to_string(config).unwrap();
    assert!(
        text.contains("proxy = \"http://proxy.example:3128\""),
        "{text}"
    );
    t.line("4");
    t.line("none");
    t.expect("Cloud proxy removed");
    assert!(!std::fs::read_to_string(config).unwrap().contains("proxy"));
    t.keys(&["Escape"]);
    t.expect("x: Exit");
}

/// 3 against the real cloud: DNS, TCP and TLS pass; the NTP server answers.
fn connectivity_entry(t: &Tmux) {
    t.line("3");
    let s = t.expect("PASSED, ");
    for line in ["Cloud TCP", "Cloud TLS", "NTP        127.0.0.1"] {
        let row = s.lines().find(|l| l.starts_with(line)).unwrap_or_default();
        assert!(row.contains("PASSED"), "{line}:\n{s}");
    }
    assert!(s.contains("certificate trusted"), "{s}");
    assert!(s.contains("no hypervisor associated yet"), "{s}");
    t.line("1");
    t.expect("PASSED, ");
    t.keys(&["Escape"]);
    t.expect("x: Exit");
}

/// 5: the time zone changes in the running agent and in its configuration; NTP servers.
fn time_entry(t: &Tmux, root: &Path, agent: &Agent) {
    t.line("5");
    let s = t.expect("NTP servers:        127.0.0.1:");
    assert!(s.contains("Gateway time zone:  UTC"), "{s}");
    t.line("1");
    t.expect("Type part of the new zone's name");
    wrong_text(t, "Time zone now: UTC", 32);
    t.line("zzzz");
    t.expect("No time zone contains \"zzzz\"");
    t.line("paris");
    t.expect("1: Europe/Paris");
    wrong_numbers(t, "Time zones containing \"paris\"");
    t.line("1");
    t.expect("Time zone Europe/Paris: in use now");
    assert_eq!(agent.status()["timezone"], "Europe/Paris");
    let text = std::fs::read_to_string(&agent.config).unwrap();
    assert!(text.contains("timezone = \"Europe/Paris\""), "{text}");
    t.expect("Gateway time zone:  Europe/Paris");

    t.line("2");
    t.expect("Type 1 to 4 servers");
    wrong_text(t, "NTP servers now", 120);
    t.line("ntp..example");
    t.expect("not a host name");
    t.line("ntp1.example ntp2.example");
    t.expect("NTP servers:        ntp1.example ntp2.example");
    let conf = std::fs::read_to_string(root.join("etc/systemd/timesyncd.conf")).unwrap();
    assert!(conf.contains("NTP=ntp1.example ntp2.example"), "{conf}");
    t.keys(&["Escape"]);
    t.expect("x: Exit");
}

/// 0: diagnostics run, everything else is refused.
fn command_prompt(t: &Tmux) {
    t.line("0");
    t.expect("Type help for the list of commands");
    t.line("help");
    t.expect("ping HOST [COUNT]");
    t.line("bash");
    t.expect("\"bash\": not available here");
    t.line("ping 127.0.0.1; reboot");
    t.expect("';' refused");
    t.line("ping 127.0.0.1 50");
    t.expect("a number from 1 to 10");
    t.line("status");
    t.expect("time zone:  Europe/Paris");
    t.keys(&["C-u"]);
    t.expect("Control character");
    t.line("ping 127.0.0.1 1");
    let s = t.expect("gateway> ping 127.0.0.1 1");
    if Path::new("/usr/bin/ping").exists() || Path::new("/bin/ping").exists() {
        t.expect("1 packets transmitted");
    } else {
        t.expect("ping is not installed");
    }
    drop(s);
    t.expect("Type a command (help lists them); Enter");
    t.line("ip addr");
    t.expect("gateway> ip addr");
    t.expect("Type a command (help lists them); Enter");
    t.line("testconn");
    t.expect("Cloud TLS");
    t.expect("Type a command (help lists them); Enter");
    t.line("exit");
    t.expect("x: Exit");
}
