//! The entries that change the gateway's settings (network, time) and the command prompt and
//! connectivity test: what they accept and refuse, and the files they write.

use std::net::Ipv4Addr;
use std::path::Path;

use super::connectivity::{self, Check, Outcome};
use super::netconf::{self, Ipv4Cidr, Link, Mode, Plan};
use super::tests::{console, refuses_wrong_input, screen_text, status, typed};
use super::*;

fn cidr(s: &str) -> Ipv4Cidr {
    Ipv4Cidr::parse(s).unwrap()
}

#[test]
fn addresses_gateways_and_dns_servers_are_checked() {
    assert_eq!(
        cidr("192.168.1.20/24").network(),
        Ipv4Addr::new(192, 168, 1, 0)
    );
    for (bad, says) in [
        ("192.168.1.20", "no prefix length"),
        ("192.168.1.300/24", "not an IPv4 address"),
        ("192.168.1.20/33", "prefix length from 8 to 32"),
        ("192.168.1.20/abc", "prefix length"),
        ("192.168.1.0/24", "network address"),
        ("192.168.1.255/24", "broadcast address"),
        ("127.0.0.1/8", "cannot be an interface address"),
        ("0.0.0.0/24", "cannot be an interface address"),
    ] {
        let err = Ipv4Cidr::parse(bad).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
    assert_eq!(cidr("10.0.0.5/32").to_string(), "10.0.0.5/32");
    let a = cidr("10.0.0.5/24");
    assert_eq!(
        netconf::parse_gateway("10.0.0.1", &a),
        Ok(Ipv4Addr::new(10, 0, 0, 1))
    );
    for (bad, says) in [
        ("10.0.1.1", "not in the subnet 10.0.0.0/24"),
        ("10.0.0.5", "own address"),
        ("10.0.0.255", "broadcast"),
        ("router", "not an IPv4 address"),
    ] {
        let err = netconf::parse_gateway(bad, &a).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
    assert_eq!(
        netconf::parse_dns("10.0.0.2, 1.1.1.1 2606:4700::1111")
            .unwrap()
            .len(),
        3
    );
    for (bad, says) in [
        ("1.1.1.1 8.8.8.8 9.9.9.9 8.8.4.4", "at most 3"),
        ("dns.example", "not an IP address"),
        ("1.1.1.1 1.1.1.1", "twice"),
        ("0.0.0.0", "cannot be a DNS server"),
        (" , ", "no DNS server"),
    ] {
        let err = netconf::parse_dns(bad).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
    assert!(netconf::valid_ifname("ens192") && !netconf::valid_ifname("../etc"));
}

fn two_links() -> Plan {
    let mut plan = Plan::default();
    plan.set_mode(
        "ens192",
        Mode::Static {
            address: cidr("10.0.0.5/24"),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
        },
    );
    plan.set_mode("ens224", Mode::Dhcp);
    plan.dns = netconf::parse_dns("10.0.0.2 1.1.1.1").unwrap();
    plan
}

#[test]
fn networkd_files_render_and_read_back() {
    let plan = two_links();
    assert_eq!(plan.default_adapter.as_deref(), Some("ens192"));
    let files = plan.render();
    assert_eq!(files[0].0, "05-console-ens192.network");
    assert_eq!(
        files[0].1,
        "# Written by the backup gateway console (2: Network configuration); change it there.\n\
         [Match]\nName=ens192\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\n\
         DNS=10.0.0.2\nDNS=1.1.1.1\n"
    );
    assert_eq!(
        files[1].1,
        "# Written by the backup gateway console (2: Network configuration); change it there.\n\
         [Match]\nName=ens224\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nUseDNS=false\nRouteMetric=2048\n"
    );
    assert_eq!(Plan::parse_files(&files), plan);

    // The other adapter becomes the default: the static one keeps its gateway as a fallback.
    let mut plan = plan;
    plan.set_default("ens224");
    let files = plan.render();
    assert!(
        files[0]
            .1
            .contains("[Route]\nGateway=10.0.0.1\nMetric=2048\n"),
        "{}",
        files[0].1
    );
    assert!(!files[0].1.contains("DNS="));
    assert!(
        files[1].1.contains("DHCP=ipv4\nDNS=10.0.0.2"),
        "{}",
        files[1].1
    );
    assert_eq!(Plan::parse_files(&files), plan);
    // Files that are not the console's are not read.
    assert_eq!(
        Plan::parse_files(&[("20-dhcp.network".into(), "[Network]\nDHCP=ipv4\n".into())]),
        Plan::default()
    );
}

fn fake_system(root: &Path) {
    for (name, state, mac) in [
        ("ens192", "up", "00:50:56:aa:bb:01"),
        ("ens224", "down", "00:50:56:aa:bb:02"),
        ("lo", "unknown", "00:00:00:00:00:00"),
    ] {
        let dir = under_root(root, &format!("/sys/class/net/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("operstate"), format!("{state}\n")).unwrap();
        std::fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
    }
    let proc = under_root(root, "/proc/net");
    std::fs::create_dir_all(&proc).unwrap();
    std::fs::write(
        proc.join("route"),
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         ens192\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
         ens192\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    )
    .unwrap();
    let etc = under_root(root, "/etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("resolv.conf"),
        "search example\nnameserver 10.0.0.2\n",
    )
    .unwrap();
}

#[test]
fn the_system_is_read_under_the_root_and_the_files_written_there() {
    let root = tempfile::tempdir().unwrap();
    fake_system(root.path());
    let sys = netconf::read_system(root.path());
    let names: Vec<&str> = sys.ifaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["ens192", "ens224"]);
    assert_eq!(sys.ifaces[1].state, "down");
    assert_eq!(sys.ifaces[0].mac.as_deref(), Some("00:50:56:aa:bb:01"));
    let default = sys.default_route().unwrap();
    assert_eq!(
        (default.gateway, default.iface.as_str()),
        (Some(Ipv4Addr::new(10, 0, 0, 1)), "ens192")
    );
    assert_eq!(sys.routes[1].prefix, 24);
    assert_eq!(sys.dns, ["10.0.0.2"]);
    assert_eq!(sys.plan, Plan::default());

    // A file that cannot be written says why and what to do.
    let blocked = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(blocked.path().join("etc/systemd")).unwrap();
    std::fs::write(
        blocked.path().join("etc/systemd/network"),
        "not a directory",
    )
    .unwrap();
    let err = netconf::write(blocked.path(), &two_links()).unwrap_err();
    assert!(
        err.contains("cannot create") && err.contains("log in as root"),
        "{err}"
    );

    let written = netconf::write(root.path(), &two_links()).unwrap();
    assert_eq!(written.len(), 2);
    assert!(written[0].starts_with(root.path().join("etc/systemd/network")));
    assert_eq!(netconf::read_plan(root.path()), two_links());
}

fn network_console(root: &Path) -> Console {
    let mut c = console();
    assert_eq!(typed(&mut c, "2\n"), Action::LoadNetwork);
    assert!(screen_text(&c).contains("Reading the network configuration"));
    c.event(Event::Network(network::Snapshot {
        system: netconf::read_system(root),
        proxy: None,
    }));
    c
}

#[test]
fn an_interface_is_set_static_with_every_wrong_answer_asked_again() {
    let root = tempfile::tempdir().unwrap();
    fake_system(root.path());
    let mut c = network_console(root.path());
    let text = screen_text(&c);
    assert!(text.contains("1: ens192     up    appliance"), "{text}");
    assert!(
        text.contains("Default route: via 10.0.0.1 on ens192"),
        "{text}"
    );
    assert!(
        text.contains("Other routes:  10.0.0.0/24 on ens192"),
        "{text}"
    );
    assert!(text.contains("Cloud proxy:   none"), "{text}");
    refuses_wrong_input(&mut c);
    typed(&mut c, "1\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "2\n");
    assert!(screen_text(&c).contains("Interface ens224"));
    refuses_wrong_input(&mut c);
    typed(&mut c, "2\n");
    refuses_wrong_input(&mut c);
    for (bad, says) in [
        ("10.0.0.0/24", "network address"),
        ("hello", "no prefix length"),
        ("a.b/24", "not an IPv4"),
    ] {
        typed(&mut c, &format!("{}\n", bad.trim_end()));
        assert!(
            c.message.as_deref().unwrap().contains(says),
            "{bad}: {:?}",
            c.message
        );
        assert!(matches!(
            c.screen,
            Screen::Network(network::Step::Address { .. })
        ));
    }
    typed(&mut c, "10.0.0.7/24\n");
    assert!(screen_text(&c).contains("Gateway in 10.0.0.0/24"));
    refuses_wrong_input(&mut c);
    typed(&mut c, "10.9.0.1\n");
    assert!(c.message.as_deref().unwrap().contains("not in the subnet"));
    let action = typed(&mut c, "10.0.0.1\n");
    let Action::WriteNetwork(plan) = action else {
        panic!("{action:?}")
    };
    // The adapter holding the default route now stays the default one, with DHCP.
    assert_eq!(
        plan.links,
        [
            Link {
                name: "ens192".into(),
                mode: Mode::Dhcp
            },
            Link {
                name: "ens224".into(),
                mode: Mode::Static {
                    address: cidr("10.0.0.7/24"),
                    gateway: Some(Ipv4Addr::new(10, 0, 0, 1))
                }
            }
        ]
    );
    assert_eq!(plan.default_adapter.as_deref(), Some("ens192"));
    assert!(screen_text(&c).contains("Saving |"));
    assert_eq!(
        c.event(Event::NetworkSaved(Ok(
            "Saved 05-console-ens224.network".into()
        ))),
        Action::LoadNetwork
    );
    assert_eq!(c.screen, Screen::Network(network::Step::Menu));
    assert!(screen_text(&c).contains("Saved 05-console-ens224.network"));
}

#[test]
fn dns_default_adapter_and_proxy() {
    let root = tempfile::tempdir().unwrap();
    fake_system(root.path());
    let mut c = network_console(root.path());
    typed(&mut c, "2\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "1.1.1.1 nope\n");
    assert!(c
        .message
        .as_deref()
        .unwrap()
        .contains("\"nope\" is not an IP address"));
    let Action::WriteNetwork(plan) = typed(&mut c, "10.0.0.2 1.1.1.1\n") else {
        panic!()
    };
    // No interface was configured yet: the first one keeps DHCP and carries the servers.
    assert_eq!(plan.default_adapter.as_deref(), Some("ens192"));
    assert_eq!(plan.dns.len(), 2);
    c.event(Event::NetworkSaved(Err("cannot write /etc: denied".into())));
    assert!(screen_text(&c).contains("Not saved: cannot write /etc: denied"));
    // A message wider than the screen is wrapped, so its end (applied or not) stays readable.
    c.event(Event::NetworkSaved(Ok(
        "Saved 05-console-ens192.network, \
        05-console-ens224.network in /etc/systemd/network; applied (networkctl reload)."
            .into(),
    )));
    let text = screen_text(&c);
    assert!(
        text.contains("\nSaved 05-console-ens192.network,"),
        "{text}"
    );
    assert!(text.contains("applied (networkctl reload)."), "{text}");

    typed(&mut c, "3\n");
    refuses_wrong_input(&mut c);
    let Action::WriteNetwork(plan) = typed(&mut c, "2\n") else {
        panic!()
    };
    assert_eq!(plan.default_adapter.as_deref(), Some("ens224"));
    c.event(Event::NetworkSaved(Ok("ok".into())));

    typed(&mut c, "4\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "socks5://proxy:1080\n");
    assert!(c
        .message
        .as_deref()
        .unwrap()
        .contains("http:// or https://"));
    let action = typed(&mut c, "http://proxy.example:3128\n");
    assert_eq!(
        action,
        Action::SaveProxy(Some(
            crate::config::ProxyUrl::parse("http://proxy.example:3128").unwrap()
        ))
    );
}

const AGENT_TOML: &str = "# The agent.\n[cloud]\n# where\nendpoint = \"https://cloud:8443\"\nregion = \"us-east-1\"\n\n[gateway]\ntimezone = \"UTC\" # zone\n";

#[test]
fn the_configuration_file_keeps_its_comments_and_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, AGENT_TOML).unwrap();
    config_file::set_key(&path, "cloud", "proxy", Some("http://p:3128")).unwrap();
    config_file::set_key(&path, "gateway", "timezone", Some("Europe/Paris")).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# where\nendpoint"), "{text}");
    assert!(text.contains("proxy = \"http://p:3128\""), "{text}");
    let config = crate::config::Config::load(&path).unwrap();
    assert_eq!(config.gateway.timezone, chrono_tz::Europe::Paris);
    assert_eq!(config.cloud.proxy.unwrap().to_string(), "http://p:3128");
    // A value the agent would refuse is not written.
    let err = config_file::set_key(&path, "gateway", "timezone", Some("Mars/Olympus")).unwrap_err();
    assert!(err.contains("gateway.timezone"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    config_file::set_key(&path, "cloud", "proxy", None).unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains("proxy"));
}

#[test]
fn time_zone_search_and_ntp_servers() {
    let mut c = console();
    assert_eq!(typed(&mut c, "5\n"), Action::LoadTime);
    c.event(Event::Time(systime::NtpView::default(), Some("UTC".into())));
    let text = screen_text(&c);
    assert!(text.contains("Gateway time zone:  Europe/Paris"), "{text}");
    assert!(text.contains("0.debian.pool.ntp.org"), "{text}");
    refuses_wrong_input(&mut c);
    typed(&mut c, "1\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "zzzz\n");
    assert!(c
        .message
        .as_deref()
        .unwrap()
        .contains("No time zone contains"));
    typed(&mut c, "pa;ris\n");
    assert!(c
        .message
        .as_deref()
        .unwrap()
        .contains("characters no zone name has"));
    typed(&mut c, "america\n");
    assert!(screen_text(&c).contains("more: Esc and type more letters"));
    c.handle(Input::Esc);
    typed(&mut c, "new york\n");
    assert!(
        screen_text(&c).contains("1: America/New_York"),
        "{}",
        screen_text(&c)
    );
    refuses_wrong_input(&mut c);
    assert_eq!(
        typed(&mut c, "1\n"),
        Action::SetTimezone("America/New_York".into())
    );
    c.event(Event::TimeSaved(Ok(
        "Time zone America/New_York: in use now".into(),
    )));
    assert_eq!(c.screen, Screen::Time(systime::Step::Menu));

    typed(&mut c, "2\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "ntp..example\n");
    assert!(c.message.as_deref().unwrap().contains("not a host name"));
    typed(&mut c, "a b c d e\n");
    assert!(c.message.as_deref().unwrap().contains("at most 4"));
    assert_eq!(
        typed(&mut c, "ntp1.example 10.0.0.1\n"),
        Action::SaveNtp(vec!["ntp1.example".into(), "10.0.0.1".into()])
    );
}

#[test]
fn timesyncd_conf_gets_its_ntp_line() {
    let debian =
        "#  This file is part of systemd.\n[Time]\n#NTP=\n#FallbackNTP=0.debian.pool.ntp.org\n";
    let text = systime::render_timesyncd(debian, &["ntp1".into(), "ntp2".into()]);
    assert_eq!(
        text,
        "#  This file is part of systemd.\n[Time]\n#NTP=\n#FallbackNTP=0.debian.pool.ntp.org\nNTP=ntp1 ntp2\n"
    );
    assert_eq!(systime::parse_timesyncd(&text), ["ntp1", "ntp2"]);
    let again = systime::render_timesyncd(&text, &["ntp3".into()]);
    assert_eq!(systime::parse_timesyncd(&again), ["ntp3"]);
    assert_eq!(again.matches("NTP=ntp").count(), 1);
    assert!(systime::parse_timesyncd(&systime::render_timesyncd(&again, &[])).is_empty());
    assert_eq!(
        systime::render_timesyncd("", &["a".into()]),
        "[Time]\nNTP=a\n"
    );

    let root = tempfile::tempdir().unwrap();
    systime::write_ntp(root.path(), &["ntp.example".into()]).unwrap();
    std::fs::create_dir_all(root.path().join("run/systemd/timesync")).unwrap();
    std::fs::write(root.path().join("run/systemd/timesync/synchronized"), "").unwrap();
    let view = systime::read_ntp(root.path());
    assert_eq!(view.servers, ["ntp.example"]);
    assert!(view.synchronized);
}

#[test]
fn the_command_prompt_runs_diagnostics_only() {
    use super::shell::{parse, Command};
    for (line, says) in [
        ("ls; rm -rf /", "';' refused"),
        ("ping 1.1.1.1 | tee x", "'|' refused"),
        ("echo $HOME", "'$' refused"),
        ("bash", "not available here"),
        ("sh -c id", "not available here"),
        ("ping", "ping what?"),
        ("ping host 11", "a number from 1 to 10"),
        ("ping host 0", "a number from 1 to 10"),
        ("ping host abc", "a number from 1 to 10"),
        ("ping -f host", "not a host name"),
        ("ping host 1 2", "ping takes HOST"),
        ("ip", "ip what?"),
        ("ip rule add", "only addr, route, link"),
        ("ip addr add 1.2.3.4/24", "at most an interface name"),
        ("help me", "takes no arguments"),
    ] {
        let err = parse(line).unwrap_err();
        assert!(err.contains(says), "{line}: {err}");
    }
    let Ok(Command::Run(p)) = parse("ping 10.0.0.1 3") else {
        panic!()
    };
    assert_eq!(p.name, "ping");
    assert_eq!(p.args, ["-c", "3", "-W", "2", "-w", "8", "--", "10.0.0.1"]);
    let Ok(Command::Run(p)) = parse("ip a ens192") else {
        panic!()
    };
    assert_eq!(p.args, ["-brief", "address", "show", "dev", "ens192"]);
    assert_eq!(parse("exit"), Ok(Command::Exit));

    let mut c = console();
    typed(&mut c, "0\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "cat /etc/shadow\n");
    assert!(screen_text(&c).contains("\"cat\": not available here"));
    typed(&mut c, "status\n");
    assert!(screen_text(&c).contains("time zone:  Europe/Paris"));
    assert!(matches!(
        typed(&mut c, "ping 127.0.0.1 1\n"),
        Action::RunProgram(_)
    ));
    assert!(c.busy());
    c.event(Event::Output("64 bytes from 127.0.0.1: icmp_seq=1".into()));
    c.event(Event::ProgramDone(Ok(())));
    assert!(!c.busy());
    assert!(screen_text(&c).contains("64 bytes from 127.0.0.1"));
    assert_eq!(typed(&mut c, "testconn\n"), Action::TestConnectivity);
    c.event(Event::Connectivity(connectivity::Run {
        rows: vec![connectivity::Row {
            label: "Cloud TCP  cloud:443".into(),
            check: Some(Check::Tcp {
                host: "cloud".into(),
                port: 443,
            }),
            outcome: Outcome::Pending,
        }],
    }));
    c.event(Event::Checked {
        index: 0,
        outcome: Outcome::Failed("connection refused".into()),
    });
    assert!(screen_text(&c).contains("FAILED  connection refused"));
    assert!(!c.busy());
    typed(&mut c, "exit\n");
    assert_eq!(c.screen, Screen::Main);
}

fn test_config(extra: &str) -> crate::config::Config {
    crate::config::Config::parse(
        &format!(
            "[cloud]\nendpoint = \"https://cloud.example:8443\"\nregion = \"us-east-1\"\n{extra}"
        ),
        Path::new("/etc/bgw-agent/agent.toml"),
    )
    .unwrap()
}

#[test]
fn the_connectivity_plan_follows_the_configuration_and_the_agent() {
    let run = connectivity::plan(&test_config(""), None, &[]);
    let labels: Vec<&str> = run.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Cloud DNS  cloud.example",
            "Cloud TCP  cloud.example:8443",
            "Cloud TLS  cloud.example:8443",
            "vCenter",
            "ESXi hosts",
            "NTP"
        ]
    );
    let mut s = status(true);
    s.hypervisor.host = Some("vc.example:8989".into());
    let run = connectivity::plan(
        &test_config("proxy = \"http://proxy:3128\"\n"),
        Some(&s),
        &["ntp.example".into()],
    );
    let labels: Vec<&str> = run.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Proxy DNS  proxy",
            "Proxy TCP  proxy:3128",
            "Cloud TLS  cloud.example:8443",
            "vCenter    vc.example:8989",
            "ESXi       esx-1.example:443",
            "ESXi       esx-1.example:902",
            "NTP        ntp.example"
        ]
    );
    assert!(run.running());
    assert_eq!(connectivity::host_port("[::1]:443", 1), ("::1".into(), 443));
    assert_eq!(connectivity::host_port("vc", 443), ("vc".into(), 443));
}

#[tokio::test]
async fn checks_pass_and_fail_against_real_sockets() {
    let config = test_config("");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let open = Check::Tcp {
        host: "127.0.0.1".into(),
        port,
    };
    assert!(matches!(
        connectivity::check(&open, &config).await,
        Outcome::Passed(_)
    ));
    drop(listener);
    let Outcome::Failed(why) = connectivity::check(&open, &config).await else {
        panic!()
    };
    assert!(why.contains("refused"), "{why}");
    let dns = Check::Dns {
        host: "name.invalid".into(),
    };
    assert!(matches!(
        connectivity::check(&dns, &config).await,
        Outcome::Failed(_)
    ));

    // An SNTP server on loopback answers with the time now.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 48];
        let (_, from) = udp.recv_from(&mut buf).await.unwrap();
        let mut answer = [0u8; 48];
        answer[0] = 0x1c; // version 3, mode 4 (server)
        let secs = (chrono::Utc::now().timestamp() + 2_208_988_800) as u32;
        answer[40..44].copy_from_slice(&secs.to_be_bytes());
        udp.send_to(&answer, from).await.unwrap();
    });
    let ntp = Check::Ntp {
        server: addr.to_string(),
    };
    let Outcome::Passed(said) = connectivity::check(&ntp, &config).await else {
        panic!()
    };
    assert!(said.contains("clock offset"), "{said}");
}
