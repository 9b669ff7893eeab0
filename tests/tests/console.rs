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
            if matches!(*k, "Enter" | "Escape" | "BSpace" | "C-g" | "Up") {
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

#[test]
fn every_menu_with_a_running_agent() {
    let cloud = Cloud::start(CloudOptions::default()).unwrap();
    let agent = Agent::start(&cloud, AgentOptions::default());
    let root = tempfile::tempdir().unwrap();
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
        ("2", "2: Network configuration"),
        ("3", "3: Test network connectivity"),
        ("4", "Root disk"),
        ("5", "5: System time"),
        ("6", "6: Hypervisor"),
        ("7", "Limit now:      unlimited"),
        ("8", "Agent version:"),
        ("9", "Recent agent log lines"),
        ("0", "0: Command prompt"),
    ] {
        t.line(n);
        t.expect(title);
        if n == "9" || n == "6" {
            wrong_numbers(&t, title);
        } else {
            t.line("7");
            t.expect("Nothing to choose");
        }
        t.keys(&[if n == "4" { "q" } else { "Escape" }]);
        t.expect("x: Exit");
    }

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
    t.keys(&["x"]);
    t.expect("CONSOLE-EXITED 0");
}
