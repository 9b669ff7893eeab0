//! `bgw-agent console`: the appliance's menu at the VM console (tty1) or a serial line.
//!
//! 80×24, keyboard only. The menu is a pure state machine: [`Console::handle`] takes an
//! [`Input`] and answers an [`Action`]; [`Console::render`] gives the 24 lines to show. The
//! terminal layer ([`term`]) only turns key bytes into inputs, draws the lines and runs the
//! requests an action asks for, in the background, with short timeouts: a dead agent is shown,
//! never waited on.

pub mod activation;
pub mod info;
pub mod input;
pub mod logs;
pub mod menu;
pub mod resources;
pub mod term;
#[cfg(test)]
mod tests;

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
    Resources,
    Hypervisor,
    Bandwidth,
    Software,
    Logs(logs::Step),
    /// An entry this build does not offer yet; says what to use instead.
    NotAvailable(u8),
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
}

/// A result of background work, fed back with [`Console::event`].
#[derive(Debug, Clone)]
pub enum Event {
    Agent(AgentView),
    ActivationKey(Result<activation::IssuedKey, String>),
    Logs(Vec<String>),
    Exported(Result<PathBuf, String>),
    Retrusted(Result<String, String>),
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
        }
    }

    /// The prompt of the current screen: what a line typed there must be.
    pub fn prompt(&self) -> Prompt {
        match &self.screen {
            Screen::Main => Prompt::Number { min: 0, max: 9 },
            Screen::Activation(step) => step.prompt(),
            Screen::Logs(step) => step.prompt(),
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
                self.message = Some(format!(
                    "Control character {} ignored: type a number, or q to go back.",
                    c.escape_unicode()
                ));
                Action::Redraw
            }
            Input::Char(c) => {
                if self.line.is_empty() && c == 'q' && self.screen != Screen::Main {
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
            4 => Screen::Resources,
            6 => Screen::Hypervisor,
            7 => Screen::Bandwidth,
            8 => Screen::Software,
            9 => {
                self.screen = Screen::Logs(logs::Step::Menu);
                return Action::LoadLogs;
            }
            other => Screen::NotAvailable(other as u8),
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
            _ => Screen::Main,
        };
        Action::Redraw
    }

    /// Background work finished.
    pub fn event(&mut self, event: Event) {
        match event {
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
            Screen::NotAvailable(n) => info::not_available(*n),
        };
        let footer = self.prompt().footer(self.screen == Screen::Main);
        body.truncate(HEIGHT - 3);
        while body.len() < HEIGHT - 3 {
            body.push(String::new());
        }
        body.push(self.message.clone().unwrap_or_default());
        body.push(footer);
        body.push(format!("> {}", self.line));
        body.into_iter().map(|l| fit(&l)).collect()
    }
}

/// Cuts a line to the screen width.
pub fn fit(line: &str) -> String {
    line.chars().take(WIDTH).collect()
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
