//! Keys, prompts and the checking of what is typed at a prompt.

/// One key as the console sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Char(char),
    Enter,
    Backspace,
    Esc,
}

/// What a line typed at the current prompt must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// A number from `min` to `max`.
    Number { min: u32, max: u32 },
    /// A line of text of at most `max` characters (addresses, names, commands). A line that is
    /// exactly `q` goes back; what the text must be is checked by the screen that asked.
    Text { max: usize, what: &'static str },
    /// Nothing to choose: the screen only shows information.
    BackOnly,
}

/// A line that passed its prompt's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Number(u32),
    Text(String),
    Back,
}

impl Prompt {
    /// The longest line the prompt takes; typing more is refused.
    pub fn max_len(self) -> usize {
        match self {
            Prompt::Number { .. } => 4,
            Prompt::Text { max, .. } => max,
            Prompt::BackOnly => 1,
        }
    }

    /// The help line above the prompt.
    pub fn footer(self, main: bool) -> String {
        match self {
            Prompt::Number { min, max } if main => {
                format!("Type a number ({min}-{max}) and Enter; x leaves.")
            }
            Prompt::Number { min, max } => {
                format!("Type a number ({min}-{max}) and Enter; Esc or q goes back.")
            }
            Prompt::Text { what, .. } => format!("Type {what}; Enter confirms, Esc goes back."),
            Prompt::BackOnly => "Press Esc or q to go back.".into(),
        }
    }

    /// Checks a typed line. `Err` is the message to show before asking again.
    pub fn parse(self, line: &str) -> Result<Answer, String> {
        let line = line.trim();
        match self {
            Prompt::Text { .. } if line == "q" => Ok(Answer::Back),
            Prompt::Text { what, .. } if line.is_empty() => {
                Err(format!("Nothing typed: type {what}, or Esc to go back."))
            }
            Prompt::Text { .. } => Ok(Answer::Text(line.to_string())),
            Prompt::BackOnly if line.is_empty() || line == "q" => Ok(Answer::Back),
            Prompt::BackOnly => Err(format!(
                "Nothing to choose here ({}): press Esc or q to go back.",
                shown(line)
            )),
            Prompt::Number { min, max } => {
                if line.is_empty() {
                    return Err(format!("Type a number from {min} to {max}, then Enter."));
                }
                if line == "q" {
                    return Ok(Answer::Back);
                }
                match line.parse::<u32>() {
                    Err(_) => Err(format!(
                        "{} is not a number: type a number from {min} to {max}.",
                        shown(line)
                    )),
                    Ok(n) if n < min || n > max => Err(format!(
                        "{n} is out of range: type a number from {min} to {max}."
                    )),
                    Ok(n) => Ok(Answer::Number(n)),
                }
            }
        }
    }
}

/// A typed line quoted for a message, cut short.
pub fn shown(line: &str) -> String {
    let cut: String = line.chars().take(20).collect();
    format!("\"{cut}\"")
}
