//! Exit codes of `bgw-agent`, as `bgw-agent --help` and docs/agent.md list them.

use std::process::ExitCode;

use crate::error::Error;

/// Success.
pub const OK: u8 = 0;
/// Any failure without a code of its own.
pub const FAILURE: u8 = 1;
/// Bad command-line arguments (clap's code).
pub const USAGE: u8 = 2;
/// The agent is not running or not reachable on its admin endpoint.
pub const AGENT_UNREACHABLE: u8 = 69;
/// A temporary failure worth retrying: the cloud is unreachable or busy.
pub const TEMPORARY: u8 = 75;
/// The gateway is not activated yet.
pub const NOT_ACTIVATED: u8 = 77;
/// The configuration file is missing, unreadable or invalid.
pub const CONFIG: u8 = 78;

/// The help text's table (kept next to the codes it describes).
pub const HELP: &str = "\
Exit codes:
  0   success
  1   any other failure
  2   bad command-line arguments
  69  the agent is not running or not reachable (status, jobs, activation-key, vcenter retrust)
  75  temporary failure, retry: the cloud is unreachable or busy (activation-key)
  77  the gateway is not activated yet
  78  the configuration file is missing, unreadable or invalid
  `vcenter inventory` also exits 2 when vCenter is unreachable, 3 when its certificate is
  not trusted, 4 when the login is refused.";

/// The code for an error that reached the binary.
pub fn code(err: &anyhow::Error) -> u8 {
    match err.chain().find_map(|e| e.downcast_ref::<Error>()) {
        Some(e) => code_of(e),
        None => FAILURE,
    }
}

/// The code for an agent error.
pub fn code_of(err: &Error) -> u8 {
    match err {
        Error::ConfigRead { .. }
        | Error::ConfigInvalid { .. }
        | Error::ConfigSyntax { .. }
        | Error::ConfigValue { .. } => CONFIG,
        Error::AdminUnreachable { .. } => AGENT_UNREACHABLE,
        Error::NotActivated => NOT_ACTIVATED,
        e if e.is_transient() => TEMPORARY,
        _ => FAILURE,
    }
}

/// Prints `err` on stderr and turns it into its exit code.
pub fn report(err: anyhow::Error) -> ExitCode {
    eprintln!("error: {}", describe(&err));
    ExitCode::from(code(&err))
}

/// `err` and its causes, `: `-separated, leaving out a cause whose text the message before
/// it already shows (most of the agent's messages name their cause).
pub fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_documented_codes() {
        let config = anyhow::Error::from(Error::ConfigInvalid {
            path: "agent.toml".into(),
            message: "bad".into(),
        });
        assert_eq!(code(&config), CONFIG);
        // Every way a configuration file can be wrong exits with the configuration code.
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "[cloud",                                                    // not TOML
            "[cloud]\nendpoint = \"not a url\"\nregion = \"us-east-1\"", // a bad value
            "[cloud]\nendpoint = \"http://x\"\nregion = \"us-east-1\"",  // breaks a rule
        ] {
            let path = dir.path().join("agent.toml");
            std::fs::write(&path, text).unwrap();
            let err = crate::Config::load(&path).unwrap_err();
            assert_eq!(code_of(&err), CONFIG, "{err}");
        }
        let missing = crate::Config::load(&dir.path().join("missing.toml")).unwrap_err();
        assert_eq!(code_of(&missing), CONFIG, "{missing}");
        // The cause travels with the error (`{err:#}` prints it).
        let read_failed =
            anyhow::Error::from(crate::Config::load(&dir.path().join("missing.toml")).unwrap_err());
        assert!(read_failed.chain().count() > 1, "{read_failed:#}");
        // ... and is printed once.
        let io = std::io::Error::from_raw_os_error(2).to_string(); // ENOENT
        let shown = describe(&read_failed.context("starting"));
        assert_eq!(shown.matches(&io).count(), 1, "{shown}");
        assert!(
            shown.starts_with("starting: cannot read configuration file"),
            "{shown}"
        );
        assert_eq!(
            code(&anyhow::Error::from(Error::NotActivated)),
            NOT_ACTIVATED
        );
        let wrapped = anyhow::Error::from(Error::NotActivated).context("asking");
        assert_eq!(code(&wrapped), NOT_ACTIVATED);
        assert_eq!(code(&anyhow::anyhow!("something else")), FAILURE);
        let busy = Error::CloudRefused {
            path: "/x",
            status: 503,
            code: "ServiceUnavailable".into(),
            message: String::new(),
        };
        assert_eq!(code_of(&busy), TEMPORARY);
        for c in [
            FAILURE,
            USAGE,
            AGENT_UNREACHABLE,
            TEMPORARY,
            NOT_ACTIVATED,
            CONFIG,
        ] {
            assert!(HELP.contains(&format!("\n  {c:<3} ")), "{c} is documented");
        }
    }
}
