//! The console's state machine, driven key by key without a terminal.

use super::activation::{EndpointType, IpVersion, IssuedKey, Step};
use super::input::Input;
use super::resources::{Level, Report};
use super::*;
use crate::admin::types::UpdateReport;
use crate::status::*;

pub(super) fn status(activated: bool) -> StatusReport {
    StatusReport {
        version: "9.9.9".into(),
        agent_id: None,
        activated,
        gateway_arn: activated.then(|| "arn:aws:backup-gateway:us-east-1:1:gateway/bgw-1".into()),
        pending_activation_key: None,
        last_heartbeat: None,
        timezone: "Europe/Paris".into(),
        uptime_seconds: 5,
        config_version: 3,
        cloud: CloudStatus {
            endpoint: "https://cloud".into(),
            region: "us-east-1".into(),
            last_error: None,
            clock_offset_ms: 0,
            queued_results: 0,
        },
        hypervisor: HypervisorReport {
            arn: None,
            host: Some("vcenter.example".into()),
            state: bgw_protocol::heartbeat::HypervisorState::Online,
            message: None,
            property_mappings: 0,
            thumbprint: Some(
                (0..32)
                    .map(|i| format!("{i:02X}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
        },
        sync: SyncReport {
            last_status: Some(bgw_protocol::metadata::SyncStatus::Succeeded),
            last_success: Some("2026-01-01T12:00:00Z".into()),
            last_message: None,
            vms: Some(42),
            esxi_hosts: vec!["esx-1.example".into()],
        },
        bandwidth: BandwidthReport {
            current_limit_bps: Some(8_000_000),
            next_change_at: Some("2026-01-01T17:00:00Z".into()),
            next_limit_bps: None,
            intervals: 2,
            schedule: vec![
                ScheduleInterval {
                    days_of_week: vec![1, 2, 3, 4, 5],
                    start: "08:00".into(),
                    end: "17:59".into(),
                    limit_bps: Some(8_000_000),
                },
                ScheduleInterval {
                    days_of_week: vec![0, 6],
                    start: "00:00".into(),
                    end: "23:59".into(),
                    limit_bps: Some(50_000_000),
                },
            ],
        },
        maintenance: MaintenanceReport {
            next_window_start: None,
        },
        update: Default::default(),
    }
}

pub(super) fn console() -> Console {
    let mut c = Console::new(
        "eu-west-1",
        Report::from_values(Some(2), Some(16 << 30), Some(100 << 30)),
    );
    c.event(Event::Agent(AgentView::Running(Box::new(status(false)))));
    c
}

pub(super) fn typed(c: &mut Console, text: &str) -> Action {
    let mut last = Action::Redraw;
    for ch in text.chars() {
        last = c.handle(match ch {
            '\n' => Input::Enter,
            '\u{1b}' => Input::Esc,
            ch => Input::Char(ch),
        });
    }
    last
}

pub(super) fn screen_text(c: &Console) -> String {
    let lines = c.render();
    assert_eq!(lines.len(), HEIGHT);
    assert!(
        lines.iter().all(|l| l.chars().count() <= WIDTH),
        "{lines:#?}"
    );
    lines.join("\n")
}

/// Every way of typing something wrong at the current prompt: each gets a message, leaves the
/// screen as it was and the prompt empty.
pub(super) fn refuses_wrong_input(c: &mut Console) {
    let before = c.screen.clone();
    if let Prompt::Text { max, .. } = c.prompt() {
        typed(c, "\n");
        assert!(c.message.as_deref().unwrap().contains("Nothing typed"));
        typed(c, &"x".repeat(max + 5));
        assert!(c.message.as_deref().unwrap().contains("too long"));
        assert_eq!(c.line.chars().count(), max);
        c.line.clear();
        c.handle(Input::Char('\u{7}'));
        assert!(c.message.as_deref().unwrap().contains("Control character"));
        assert!(c.line.is_empty());
        assert_eq!(c.screen, before);
        return;
    }
    let Prompt::Number { min, max } = c.prompt() else {
        // Information screens: anything typed but q is refused.
        typed(c, "7\n");
        assert!(c.message.as_deref().unwrap().contains("Nothing to choose"));
        assert_eq!(c.screen, before);
        return;
    };
    for (wrong, says) in [
        ("abc\n", "not a number"),
        ("\n", "Type a number"),
        (&format!("{}\n", max + 1), "out of range"),
        ("-1\n", "not a number"),
    ] {
        typed(c, wrong);
        let message = c.message.clone().unwrap_or_default();
        assert!(message.contains(says), "{wrong:?} at {before:?}: {message}");
        assert_eq!(c.screen, before, "{wrong:?}");
        assert!(c.line.is_empty());
    }
    if min > 0 {
        typed(c, &format!("{}\n", min - 1));
        assert!(c.message.as_deref().unwrap().contains("out of range"));
    }
    typed(c, "99999999");
    assert!(c.message.as_deref().unwrap().contains("too long"));
    assert_eq!(c.line.chars().count(), c.prompt().max_len());
    for _ in 0..10 {
        c.handle(Input::Backspace);
    }
    c.handle(Input::Char('\u{7}'));
    assert!(c.message.as_deref().unwrap().contains("Control character"));
    assert!(c.line.is_empty());
    assert_eq!(c.screen, before);
}

#[test]
fn main_menu_shows_status_on_the_lines() {
    let c = console();
    let text = screen_text(&c);
    assert!(
        text.contains("1: Activation                  NOT ACTIVATED"),
        "{text}"
    );
    assert!(text.contains("(0 Errors, 1 Warning)"), "{text}");
    assert!(
        text.contains("6: Hypervisor                  ONLINE"),
        "{text}"
    );
    assert!(text.contains("8.0 Mbit/s now"), "{text}");
    assert!(text.contains("Europe/Paris"), "{text}");
}

#[test]
fn a_dead_agent_is_shown_not_waited_on() {
    let mut c = console();
    c.event(Event::Agent(AgentView::NotRunning("no answer".into())));
    assert!(screen_text(&c).contains("agent not running"));
    typed(&mut c, "6\n");
    assert!(screen_text(&c).contains("agent not running"));
    typed(&mut c, "q");
    typed(&mut c, "1\n");
    assert!(screen_text(&c).contains("State:        unknown: agent not running"));
}

#[test]
fn wrong_input_at_every_prompt_is_answered_and_asked_again() {
    let mut c = console();
    refuses_wrong_input(&mut c);
    for entry in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"] {
        typed(&mut c, &format!("{entry}\n"));
        assert_ne!(c.screen, Screen::Main, "{entry}");
        refuses_wrong_input(&mut c);
        c.handle(Input::Esc);
        assert_eq!(c.screen, Screen::Main, "{entry}");
    }
    // The activation steps.
    typed(&mut c, "1\n1\n");
    assert_eq!(c.screen, Screen::Activation(Step::Region));
    refuses_wrong_input(&mut c);
    typed(&mut c, "1\n");
    refuses_wrong_input(&mut c);
    typed(&mut c, "2\n");
    refuses_wrong_input(&mut c);
    // The logs menu.
    c.handle(Input::Esc);
    c.handle(Input::Esc);
    c.handle(Input::Esc);
    c.handle(Input::Esc);
    assert_eq!(c.screen, Screen::Main);
    typed(&mut c, "9\n");
    refuses_wrong_input(&mut c);
}

#[test]
fn esc_and_q_go_back_x_leaves_only_from_the_main_menu() {
    let mut c = console();
    typed(&mut c, "4\n");
    assert_eq!(c.screen, Screen::Resources);
    assert_eq!(typed(&mut c, "x"), Action::Redraw);
    c.handle(Input::Backspace);
    typed(&mut c, "q");
    assert_eq!(c.screen, Screen::Main);
    typed(&mut c, "1\n1\n");
    c.handle(Input::Esc);
    assert_eq!(c.screen, Screen::Activation(Step::Overview));
    c.handle(Input::Esc);
    assert_eq!(c.screen, Screen::Main);
    c.handle(Input::Esc);
    assert_eq!(c.screen, Screen::Main);
    assert_eq!(typed(&mut c, "x"), Action::Quit);
}

#[test]
fn activation_key_flow_asks_region_endpoint_and_ip_then_shows_key_and_command() {
    let mut c = console();
    typed(&mut c, "1\n");
    assert!(screen_text(&c).contains("NOT ACTIVATED"));
    typed(&mut c, "1\n");
    assert!(screen_text(&c).contains("1: eu-west-1  (configured)"));
    typed(&mut c, "1\n2\n");
    assert_eq!(
        c.screen,
        Screen::Activation(Step::Ip {
            region: "eu-west-1".into(),
            endpoint: EndpointType::Fips
        })
    );
    let action = typed(&mut c, "1\n");
    assert_eq!(
        action,
        Action::RequestActivationKey {
            region: "eu-west-1".into()
        }
    );
    assert!(screen_text(&c).contains("Asking the agent"));
    c.event(Event::ActivationKey(Ok(IssuedKey {
        key: "ABCDE-12345".into(),
        expires_at: Some("2026-01-01T00:30:00Z".into()),
    })));
    let text = screen_text(&c);
    assert!(text.contains("A B C D E - 1 2 3 4 5"), "{text}");
    assert!(text.contains("--activation-key ABCDE-12345"), "{text}");
    assert!(
        text.contains("--endpoint-url https://backup-gateway-fips.eu-west-1.amazonaws.com"),
        "{text}"
    );
    assert_eq!(
        super::activation::command(
            &super::activation::Choice {
                region: "us-east-2".into(),
                endpoint: EndpointType::Public,
                ip: IpVersion::DualStack
            },
            "K"
        )
        .join(" "),
        "aws backup-gateway create-gateway \\   --activation-key K \\   --gateway-display-name my-gateway --gateway-type BACKUP_VM \\   --endpoint-url https://backup-gateway.us-east-2.api.aws \\   --region us-east-2"
    );
}

#[test]
fn a_refused_key_says_why_and_what_to_do() {
    let mut c = console();
    typed(&mut c, "1\n1\n3\n1\n1\n");
    c.event(Event::ActivationKey(Err(
        "region eu-west-3 is not served".into()
    )));
    let text = screen_text(&c);
    assert!(text.contains("region eu-west-3 is not served"), "{text}");
    assert!(text.contains("Test network connectivity"), "{text}");
}

#[test]
fn an_activated_gateway_shows_its_arn_and_needs_no_key() {
    let mut c = console();
    c.event(Event::Agent(AgentView::Running(Box::new(status(true)))));
    typed(&mut c, "1\n");
    assert!(screen_text(&c).contains("gateway/bgw-1"));
    typed(&mut c, "1\n");
    assert_eq!(c.screen, Screen::Activation(Step::Overview));
    assert!(c.message.as_deref().unwrap().contains("already activated"));
}

#[test]
fn resource_levels_and_counts() {
    assert_eq!(Level::of(Some(4), 4), Level::Ok);
    assert_eq!(Level::of(Some(2), 4), Level::Warning);
    assert_eq!(Level::of(Some(1), 4), Level::Fail);
    assert_eq!(Level::of(None, 4), Level::Fail);
    let r = Report::from_values(Some(8), Some(10 << 30), Some(20 << 30));
    assert_eq!(r.summary(), "(1 Error, 1 Warning)");
    let text = super::resources::render(&r).join("\n");
    assert!(
        text.contains("RAM         16 GiB      10.0 GiB        WARNING"),
        "{text}"
    );
    assert!(
        text.contains("Root disk   80 GiB      20.0 GiB        FAIL"),
        "{text}"
    );
    let measured = Report::measure(std::path::Path::new("/"));
    assert!(
        measured.checks.iter().all(|c| c.found != "unknown"),
        "{measured:?}"
    );
}

#[test]
fn info_screens_show_the_status_in_gateway_time() {
    let mut c = console();
    typed(&mut c, "6\n");
    let text = screen_text(&c);
    assert!(text.contains("2026-01-01 13:00 CET (SUCCEEDED)"), "{text}");
    assert!(text.contains("VMs:            42"), "{text}");
    assert!(
        text.contains("Certificate:    SHA-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F"),
        "{text}"
    );
    assert!(
        text.contains("10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F"),
        "{text}"
    );
    assert_eq!(typed(&mut c, "1\n"), Action::Retrust);
    c.event(Event::Retrusted(Ok("Forgot the thumbprint of vc".into())));
    assert!(screen_text(&c).contains("Forgot the thumbprint"));
    c.handle(Input::Esc);
    typed(&mut c, "7\n");
    let text = screen_text(&c);
    assert!(
        text.contains("Next change:    2026-01-01 18:00 CET to unlimited"),
        "{text}"
    );
    assert!(text.contains("Mon-Fri    "), "{text}");
    assert!(text.contains("08:00-17:59  8.0 Mbit/s"), "{text}");
    assert!(text.contains("Sat Sun"), "{text}");
    c.handle(Input::Esc);
    typed(&mut c, "8\n");
    assert!(screen_text(&c).contains("Agent version:        9.9.9 (running)"));
    assert!(screen_text(&c).contains("Last update:          none yet"));
    use chrono::TimeZone;
    let mut s = status(true);
    s.update = UpdateReport {
        running_version: "1.0.0".into(),
        state: bgw_protocol::heartbeat::UpdateState::Staged,
        staged_version: Some("1.1.0".into()),
        available_version: Some("1.1.0".into()),
        next_window_start: Some("2026-01-03T01:00:00Z".into()),
        apply_now: false,
        last_attempt: Some(bgw_protocol::heartbeat::UpdateAttempt {
            version: "1.0.1".into(),
            started_at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap(),
            ended_at: None,
            result: bgw_protocol::heartbeat::UpdateResult::RolledBack,
            reason: Some("HEALTH: no heartbeat within 180 s".into()),
        }),
    };
    c.event(Event::Agent(AgentView::Running(Box::new(s))));
    let text = screen_text(&c);
    for want in [
        "Agent version:        1.0.0 (running)",
        "Update state:         STAGED",
        "Staged:               1.1.0",
        "Next maintenance:     2026-01-03 02:00 CET",
        "Last update:          1.0.1 ROLLED_BACK (2026-01-01 02:00 CET)",
        "HEALTH: no heartbeat within 180 s",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn logs_and_the_support_bundle_without_secrets() {
    let root = tempfile::tempdir().unwrap();
    let log = under_root(root.path(), logs::LOG_FILE);
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let lines: Vec<String> = (0..30).map(|i| format!("line {i}\x1b[31m")).collect();
    std::fs::write(&log, lines.join("\n")).unwrap();
    let config = root.path().join("agent.toml");
    std::fs::write(
        &config,
        "[vcenter]\npassword = \"hunter2\"\nhost = \"vc\"\n",
    )
    .unwrap();

    let mut c = console();
    assert_eq!(typed(&mut c, "9\n"), Action::LoadLogs);
    c.event(Event::Logs(logs::recent(root.path(), 100)));
    let text = screen_text(&c);
    assert!(
        text.contains("line 29 [31m") && !text.contains("line 17"),
        "{text}"
    );
    assert!(!text.contains('\x1b'));
    assert_eq!(typed(&mut c, "2\n"), Action::ExportBundle);
    let mut s = status(true);
    s.pending_activation_key = Some("SECRETKEY".into());
    let path = logs::export(
        root.path(),
        &config,
        Some(&s),
        &c.resources,
        chrono::Utc::now(),
    );
    c.event(Event::Exported(path.clone()));
    let path = path.unwrap();
    assert!(path.starts_with(root.path().join("var/tmp")));
    assert!(screen_text(&c).contains(&path.display().to_string()));
    let bundle = std::fs::read_to_string(&path).unwrap();
    assert!(
        !bundle.contains("hunter2") && !bundle.contains("SECRETKEY"),
        "{bundle}"
    );
    assert!(
        bundle.contains("host = \"vc\"") && bundle.contains("line 29"),
        "{bundle}"
    );
    assert!(bundle.contains("RAM"));
}

#[test]
fn days_of_the_week_for_people() {
    use super::info::days;
    assert_eq!(days(&[1, 2, 3, 4, 5]), "Mon-Fri");
    assert_eq!(days(&[0, 6]), "Sat Sun");
    assert_eq!(days(&[0, 1, 2, 3, 4, 5, 6]), "every day");
    assert_eq!(days(&[1, 3, 4, 5, 0]), "Mon Wed-Fri Sun");
}

#[test]
fn key_bytes_become_inputs() {
    use super::term::keys;
    assert_eq!(keys(b"\x1b"), vec![Input::Esc]);
    assert_eq!(keys(b"\x1b[A1\r"), vec![Input::Char('1'), Input::Enter]);
    assert_eq!(keys(b"q\x7f"), vec![Input::Char('q'), Input::Backspace]);
    assert_eq!(keys(b"\x03"), vec![Input::Char('\x03')]);
}
