//! The `session-manager-plugin` contract, as the AWS CLI invokes it
//! (`awscli/customizations/sessionmanager.py`) and as AWS's plugin reads it
//! (`ValidateInputAndStartSession` in `src/sessionmanagerplugin/session/session.go`):
//!
//! ```text
//! session-manager-plugin                      → "installed successfully" text
//! session-manager-plugin --version            → the version (> 1.2.497.0: env-var handoff)
//! session-manager-plugin RESPONSE REGION StartSession PROFILE PARAMETERS ENDPOINT
//! ```
//!
//! `RESPONSE` is the `StartSession` answer (`SessionId`, `TokenValue`, `StreamUrl`) as JSON,
//! or (CLI versions that saw a plugin newer than 1.2.497.0) the *name* of an environment
//! variable starting `AWS_SSM_START_SESSION_RESPONSE` that holds it. `PROFILE` may be empty;
//! `PARAMETERS` is the `StartSession` request as JSON (its `Target` is read); `ENDPOINT` is
//! the SSM endpoint the CLI used, for `ResumeSession` and `TerminateSession`. The legacy form
//! has only the first three arguments.

use serde_json::Value;

use crate::api::StreamGrant;

/// The operation the AWS CLI names.
pub const START_SESSION: &str = "StartSession";
/// The prefix of the environment variable the response is handed over in.
pub const RESPONSE_ENV_PREFIX: &str = "AWS_SSM_START_SESSION_RESPONSE";

/// What the plugin was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginCommand {
    /// No arguments: say the plugin is installed.
    Installed,
    /// `--version`.
    Version,
    /// One or two arguments that are not `--version`.
    UnknownOperation(String),
    /// An operation other than `StartSession`.
    InvalidOperation(String),
    /// Run a session.
    Start(Box<PluginStart>),
}

impl PluginCommand {
    /// The text the plugin prints for the commands that only print.
    pub fn message(&self) -> Option<String> {
        match self {
            PluginCommand::Installed => Some(
                "\nThe Session Manager plugin was installed successfully. Use the AWS CLI to start a session.\n\n"
                    .to_owned(),
            ),
            PluginCommand::Version => Some(format!("{}\n", crate::PLUGIN_VERSION)),
            PluginCommand::UnknownOperation(op) => Some(format!(
                "\nUnknown operation {op}. \nUse session-manager-plugin --version to check the version.\n\n"
            )),
            PluginCommand::InvalidOperation(_) => Some("Invalid Operation".to_owned()),
            PluginCommand::Start(_) => None,
        }
    }
}

/// A session to run, from the CLI's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginStart {
    /// `SessionId`, `TokenValue`, `StreamUrl`.
    pub grant: StreamGrant,
    /// The region the CLI used.
    pub region: String,
    /// The profile the CLI used (`None` when it passed an empty one, or in the legacy form).
    pub profile: Option<String>,
    /// The `StartSession` request.
    pub parameters: Value,
    /// `Target` from the request.
    pub target: String,
    /// The SSM endpoint the CLI used.
    pub endpoint_url: Option<String>,
    /// The four-argument form (a CLI too old to pass the profile).
    pub legacy: bool,
    /// The environment variable the response came from (the plugin unsets it).
    pub response_env: Option<String>,
}

/// Arguments that do not make a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The response is not a `StartSession` answer.
    #[error("Cannot perform start session: {0}")]
    Response(String),
}

/// Reads the arguments (`args[0]` is the program). `getenv` reads the environment.
pub fn parse(
    args: &[String],
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<PluginCommand, PluginError> {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    match args.len() {
        0 | 1 => return Ok(PluginCommand::Installed),
        2 if arg(1) == "--version" => return Ok(PluginCommand::Version),
        2 | 3 => return Ok(PluginCommand::UnknownOperation(arg(1).to_owned())),
        _ => {}
    }
    let legacy = args.len() == 4;
    let (response, response_env) = if arg(1).starts_with(RESPONSE_ENV_PREFIX) {
        (getenv(arg(1)).unwrap_or_default(), Some(arg(1).to_owned()))
    } else {
        (arg(1).to_owned(), None)
    };
    let operation = arg(3);
    if operation != START_SESSION {
        return Ok(PluginCommand::InvalidOperation(operation.to_owned()));
    }
    let value: Value =
        serde_json::from_str(&response).map_err(|e| PluginError::Response(e.to_string()))?;
    let grant = StreamGrant::from_json(&value)
        .filter(|g| !g.stream_url.is_empty())
        .ok_or_else(|| {
            PluginError::Response("the response has no SessionId or StreamUrl".to_owned())
        })?;
    let parameters: Value = serde_json::from_str(arg(5)).unwrap_or(Value::Null);
    let target = parameters
        .get("Target")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(PluginCommand::Start(Box::new(PluginStart {
        grant,
        region: arg(2).to_owned(),
        profile: if legacy { None } else { nonempty(arg(4)) },
        parameters,
        target,
        endpoint_url: nonempty(arg(6)),
        legacy,
        response_env,
    })))
}

/// Whether a program name (`argv[0]`) means plugin mode.
pub fn is_plugin_name(argv0: &str) -> bool {
    let base = std::path::Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(argv0);
    base == "session-manager-plugin" || base == "session-manager-plugin.exe"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn printing_commands() {
        let none = |_: &str| None;
        assert_eq!(parse(&args(&["p"]), none), Ok(PluginCommand::Installed));
        assert_eq!(
            parse(&args(&["p", "--version"]), none),
            Ok(PluginCommand::Version)
        );
        assert_eq!(
            parse(&args(&["p", "help"]), none),
            Ok(PluginCommand::UnknownOperation("help".into()))
        );
        let version = PluginCommand::Version.message().unwrap();
        assert_eq!(version, format!("{}\n", crate::PLUGIN_VERSION));
    }

    #[test]
    fn names() {
        assert!(is_plugin_name("/usr/local/bin/session-manager-plugin"));
        assert!(is_plugin_name("session-manager-plugin"));
        assert!(!is_plugin_name("/usr/bin/portcullis"));
    }
}
