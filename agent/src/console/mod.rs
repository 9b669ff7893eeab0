//! `bgw-agent console`: the appliance's menu at the VM console (tty1) or a serial line.
//!
//! 80×24, keyboard only. The menu is a pure state machine: [`Console::handle`] takes an
//! [`Input`] and answers an [`Action`]; [`Console::render`] gives the 24 lines to show. The
//! terminal layer ([`term`]) only turns key bytes into inputs, draws the lines and runs the
//! requests an action asks for, in the background, with short timeouts: a dead agent is shown,
//! never waited on.

pub mod activation;
pub mod config_file;
pub mod connectivity;
pub mod info;
pub mod input;
pub mod logs;
pub mod menu;
pub mod netconf;
pub mod network;
pub mod resources;
#[cfg(test)]
mod settings_tests;
pub mod shell;
pub mod systime;
pub mod term;
#[cfg(test)]
mod tests;
pub mod work;

use std::path::PathBuf;

use crate::status::StatusReport;

pub use input::{Input, Prompt};

/// Screen width and height the console is laid out for.
pub const WIDTH: usize = 80;
pub const HEIGHT: usize = 24;

/// What the console knows about the running agent.
#[derive(Debug, Clone)]
pub enum AgentView {
    /// Not asked yet.
    Unknown,
    /// The admin API did not answer; the message says why.
    NotRunning(String),
    Running(Box<StatusReport>),
}

impl AgentView {
    pub fn status(&self) -> Option<&StatusReport> {
        match self {
            AgentView::Running(s) => Some(s),
            _ => None,
        }
    }
}

/// The screen being shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Main,
    Activation(activation::Step),
    Network(network::Step),
    Connectivity,
    Resources,
    Time(systime::Step),
    Hypervisor,
    Bandwidth,
    Software,
    Logs(logs::Step),
    Shell,
}

/// What the terminal layer must do after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Redraw the screen.
    Redraw,
    /// Leave the console.
    Quit,
    /// Ask the agent for an activation key (in the background).
    RequestActivationKey { region: String },
    /// Read the recent log lines (in the background).
    LoadLogs,
    /// Write a support bundle (in the background).
    ExportBundle,
    /// Make the agent forget the recorded vCenter thumbprint (in the background).
    Retrust,
    /// Read the network configuration and the cloud proxy.
    LoadNetwork,
    /// Write the console's systemd-networkd files.
    WriteNetwork(netconf::Plan),
    /// Set (or remove) `cloud.proxy` in the agent's configuration.
    SaveProxy(Option<crate::config::ProxyUrl>),
    /// Run the connectivity checks.
    TestConnectivity,
    /// Read the NTP configuration and state.
    LoadTime,
    /// Set the gateway's time zone (configuration file and running agent).
    SetTimezone(String),
    /// Write the NTP servers.
    SaveNtp(Vec<String>),
    /// Run a diagnostic program of the command prompt.
    RunProgram(shell::Program),
}

/// A result of background work, fed back with [`Console::event`].
#[derive(Debug, Clone)]
pub enum Event {
    Agent(AgentView),
    ActivationKey(Result<activation::IssuedKey, String>),
    Logs(Vec<String>),
    Exported(Result<PathBuf, String>),
    Retrusted(Result<String, String>),
    Network(network::Snapshot),
    NetworkSaved(Result<String, String>),
    /// The checks about to run.
    Connectivity(connectivity::Run),
    /// The outcome of the check at `index`.
    Checked {
        index: usize,
        outcome: connectivity::Outcome,
    },
    /// The NTP state and the time zone in the configuration file.
    Time(systime::NtpView, Option<String>),
    TimeSaved(Result<String, String>),
    /// A line a program of the command prompt printed.
    Output(String),
    /// The program ended (`Err`: why it could not run or was stopped).
    ProgramDone(Result<(), String>),
    /// Time passes: progress indicators move, clocks advance.
    Tick(chrono::DateTime<chrono::Utc>),
}

/// The console's whole state.
#[derive(Debug, Clone)]
pub struct Console {
    pub screen: Screen,
    pub agent: AgentView,
    pub resources: resources::Report,
    /// The configured cloud region, offered first when asking for an activation key.
    pub default_region: String,
    /// The text typed at the prompt so far.
    pub line: String,
    /// The answer to the last input (an error or a confirmation), shown above the prompt.
    pub message: Option<String>,
    pub logs: Vec<String>,
    /// The configured time zone, shown while the agent does not answer.
    pub configured_timezone: String,
    pub network: Option<network::Snapshot>,
    pub connectivity: Option<connectivity::Run>,
    pub ntp: Option<systime::NtpView>,
    /// The command prompt's scroll-back.
    pub shell: Vec<String>,
    /// A command of the prompt is running.
    pub shell_busy: bool,
    /// Ticks seen (moves the progress spinner).
    pub ticks: usize,
    /// The time of the last tick.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The progress spinner at tick `n`.
pub fn spinner(n: usize) -> char {
    ['|', '/', '-', '\\'][n % 4]
}

impl Console {
    pub fn new(default_region: &str, resources: resources::Report) -> Self {
        Self {
            screen: Screen::Main,
            agent: AgentView::Unknown,
            resources,
            default_region: default_region.to_string(),
            line: String::new(),
            message: None,
            logs: Vec::new(),
            configured_timezone: "UTC".into(),
            network: None,
            connectivity: None,
            ntp: None,
            shell: vec!["Type help for the list of commands.".into()],
            shell_busy: false,
            ticks: 0,
            now: chrono::Utc::now(),
        }
    }

    /// Something runs in the background: progress is drawn on every tick.
    pub fn busy(&self) -> bool {
        self.shell_busy
            || self.connectivity.as_ref().is_some_and(|r| r.running())
            || matches!(
                self.screen,
                Screen::Activation(activation::Step::Waiting(_))
                    | Screen::Network(network::Step::Saving)
                    | Screen::Time(systime::Step::Saving)
                    | Screen::Logs(logs::Step::Exporting)
            )
    }

    /// The prompt of the current screen: what a line typed there must be.
    pub fn prompt(&self) -> Prompt {
        match &self.screen {
            Screen::Main => Prompt::Number { min: 0, max: 9 },
            Screen::Activation(step) => step.prompt(),
            Screen::Logs(step) => step.prompt(),
            Screen::Network(step) => step.prompt(self),
            Screen::Connectivity => connectivity::prompt(self),
            Screen::Time(step) => step.prompt(),
            Screen::Shell => shell::prompt(self),
            Screen::Hypervisor if self.agent.status().is_some() => {
                Prompt::Number { min: 1, max: 1 }
            }
            _ => Prompt::BackOnly,
        }
    }

    /// One key.
    pub fn handle(&mut self, input: Input) -> Action {
        match input {
            Input::Esc => self.back(),
            Input::Backspace => {
                self.line.pop();
                Action::Redraw
            }
            Input::Char(c) if c.is_control() => {
                let what = match self.prompt() {
                    Prompt::Text { what, .. } => what.to_string(),
                    Prompt::Number { .. } => "a number".into(),
                    Prompt::BackOnly => "q to go back".into(),
                };
                self.message = Some(format!(
                    "Control character {} ignored: type {what}.",
                    c.escape_unicode()
                ));
                Action::Redraw
            }
            Input::Char(c) => {
                let text = matches!(self.prompt(), Prompt::Text { .. });
                if self.line.is_empty() && c == 'q' && self.screen != Screen::Main && !text {
                    return self.back();
                }
                if self.line.is_empty() && c == 'x' && self.screen == Screen::Main {
                    return Action::Quit;
                }
                let max = self.prompt().max_len();
                if self.line.chars().count() >= max {
                    self.message = Some(format!(
                        "Input too long (at most {max} characters): press Backspace or Enter."
                    ));
                } else {
                    self.line.push(c);
                }
                Action::Redraw
            }
            Input::Enter => {
                let line = std::mem::take(&mut self.line);
                match self.prompt().parse(&line) {
                    Err(why) => {
                        self.message = Some(why);
                        Action::Redraw
                    }
                    Ok(answer) => {
                        self.message = None;
                        self.answer(answer)
                    }
                }
            }
        }
    }

    fn answer(&mut self, answer: input::Answer) -> Action {
        use input::Answer;
        match (&self.screen, answer) {
            (_, Answer::Back) => self.back(),
            (Screen::Main, Answer::Number(n)) => self.open(n),
            (Screen::Activation(_), answer) => activation::answer(self, answer),
            (Screen::Logs(_), answer) => logs::answer(self, answer),
            (Screen::Network(_), answer) => network::answer(self, answer),
            (Screen::Time(_), answer) => systime::answer(self, answer),
            (Screen::Shell, answer) => shell::answer(self, answer),
            (Screen::Connectivity, Answer::Number(1)) => Action::TestConnectivity,
            (Screen::Hypervisor, Answer::Number(1)) => {
                self.message = Some("Asking the agent to forget the vCenter thumbprint...".into());
                Action::Retrust
            }
            _ => Action::Redraw,
        }
    }

    fn open(&mut self, n: u32) -> Action {
        self.screen = match n {
            1 => Screen::Activation(activation::Step::Overview),
            2 => {
                self.screen = Screen::Network(network::Step::Menu);
                return Action::LoadNetwork;
            }
            3 => {
                self.screen = Screen::Connectivity;
                if self.connectivity.as_ref().is_some_and(|r| r.running()) {
                    return Action::Redraw;
                }
                return Action::TestConnectivity;
            }
            4 => Screen::Resources,
            5 => {
                self.screen = Screen::Time(systime::Step::Menu);
                return Action::LoadTime;
            }
            6 => Screen::Hypervisor,
            7 => Screen::Bandwidth,
            8 => Screen::Software,
            9 => {
                self.screen = Screen::Logs(logs::Step::Menu);
                return Action::LoadLogs;
            }
            _ => Screen::Shell,
        };
        Action::Redraw
    }

    /// Esc or `q`: one level up; on the main menu, nothing (`x` leaves).
    pub fn back(&mut self) -> Action {
        self.line.clear();
        self.message = None;
        self.screen = match &self.screen {
            Screen::Main => {
                self.message = Some("Type x to leave the console.".into());
                Screen::Main
            }
            Screen::Activation(step) => match step.parent() {
                Some(parent) => Screen::Activation(parent),
                None => Screen::Main,
            },
            Screen::Logs(step) if *step != logs::Step::Menu => Screen::Logs(logs::Step::Menu),
            Screen::Network(step) => match step.parent() {
                Some(parent) => Screen::Network(parent),
                None => Screen::Main,
            },
            Screen::Time(step) => match step.parent() {
                Some(parent) => Screen::Time(parent),
                None => Screen::Main,
            },
            _ => Screen::Main,
        };
        Action::Redraw
    }

    /// Background work finished (or time passed). Some results ask for more work: reading
    /// the settings again after they were saved.
    pub fn event(&mut self, event: Event) -> Action {
        match event {
            Event::Network(snapshot) => self.network = Some(snapshot),
            Event::NetworkSaved(result) => return network::saved(self, result),
            Event::Connectivity(run) => self.connectivity = Some(run),
            Event::Checked { index, outcome } => {
                if let Some(run) = &mut self.connectivity {
                    if let Some(row) = run.rows.get_mut(index) {
                        row.outcome = outcome;
                    }
                    if !run.running() && self.shell_busy {
                        let lines = run.lines(' ');
                        for line in lines {
                            shell::print(self, line);
                        }
                        shell::done(self, Ok(()));
                    }
                }
            }
            Event::Time(ntp, zone) => {
                self.ntp = Some(ntp);
                if let Some(zone) = zone {
                    self.configured_timezone = zone;
                }
            }
            Event::TimeSaved(result) => return systime::saved(self, result),
            Event::Output(line) => shell::print(self, line),
            Event::ProgramDone(result) => shell::done(self, result),
            Event::Tick(now) => {
                self.ticks = self.ticks.wrapping_add(1);
                self.now = now;
            }
            Event::Agent(view) => self.agent = view,
            Event::ActivationKey(result) => activation::issued(self, result),
            Event::Logs(lines) => self.logs = lines,
            Event::Exported(result) => logs::exported(self, result),
            Event::Retrusted(result) => {
                self.message = Some(match result {
                    Ok(done) => done,
                    Err(why) => format!("Re-trust failed: {why}"),
                })
            }
        }
        Action::Redraw
    }

    /// The screen as exactly [`HEIGHT`] lines of at most [`WIDTH`] characters.
    pub fn render(&self) -> Vec<String> {
        let mut body = match &self.screen {
            Screen::Main => menu::render(self),
            Screen::Activation(step) => activation::render(self, step),
            Screen::Resources => resources::render(&self.resources),
            Screen::Hypervisor => info::hypervisor(&self.agent),
            Screen::Bandwidth => info::bandwidth(&self.agent),
            Screen::Software => info::software(&self.agent),
            Screen::Logs(step) => logs::render(self, step),
            Screen::Network(step) => network::render(self, step),
            Screen::Connectivity => connectivity::render(self),
            Screen::Time(step) => systime::render(self, step),
            Screen::Shell => shell::render(self),
        };
        let footer = self.prompt().footer(self.screen == Screen::Main);
        let message = wrap(self.message.as_deref().unwrap_or_default(), MESSAGE_LINES);
        body.truncate(HEIGHT - 2 - message.len());
        while body.len() < HEIGHT - 2 - message.len() {
            body.push(String::new());
        }
        body.extend(message);
        body.push(footer);
        body.push(format!("> {}", self.line));
        body.into_iter().map(|l| fit(&l)).collect()
    }
}

/// Cuts a line to the screen width.
pub fn fit(line: &str) -> String {
    line.chars().take(WIDTH).collect()
}

/// A message longer than the screen is wide takes up to this many lines (above the prompt), so
/// that what it ends with (applied or not, and what to do) is not cut off.
pub const MESSAGE_LINES: usize = 3;

/// `text` broken at spaces into at most `max` lines of [`WIDTH`] characters (always one line,
/// empty for an empty text); a word longer than a line is cut.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split(' ') {
        let full = lines.len() >= max;
        let last = lines.last_mut().expect("one line at least");
        let len = last.chars().count();
        if len == 0 || len + 1 + word.chars().count() <= WIDTH {
            if len > 0 {
                last.push(' ');
            }
            last.push_str(word);
        } else if !full {
            lines.push(word.to_string());
        } else {
            last.push(' ');
            last.push_str(word);
            break;
        }
    }
    lines
}

/// The agent-not-running line every screen that needs the agent shows instead of its data.
pub fn agent_line(agent: &AgentView) -> String {
    match agent {
        AgentView::Unknown => "Asking the agent...".into(),
        AgentView::NotRunning(why) => format!("agent not running ({why})"),
        AgentView::Running(_) => "agent running".into(),
    }
}

/// A root-prefixed path: `--root` prefixes every system file the console reads or writes.
pub fn under_root(root: &std::path::Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}
