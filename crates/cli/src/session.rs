//! `portcullis session start|resume|terminate|list`, and the `session-manager-plugin` face of
//! the binary (`portcullis_client` does the work).
//!
//! Exit codes of `start`/`resume` (and plugin mode): the remote command's exit code when the
//! agent reports one, else 0 when the session closes; 254 when the service refuses a call
//! (the message is the AWS CLI's `An error occurred (CODE) when calling ...`); 255 when the
//! connection is lost for good or the protocol fails; 129/143 when detached by SIGHUP/SIGTERM
//! (the session stays resumable); 130 on Ctrl-C before the session started.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use portcullis_client::api::{ApiError, SsmClient, StartSession};
use portcullis_client::attach::{self, AttachOptions};
use portcullis_client::channel::{ChannelOptions, End, Outcome, SavedState};
use portcullis_client::config::{self, Env, Overrides};
use portcullis_client::plugin::{self, PluginCommand};
use serde_json::Value;

/// Exit code when the service refuses a call (the AWS CLI's).
const EXIT_SERVICE_ERROR: u8 = 254;
/// Exit code when the connection is lost or the protocol fails.
const EXIT_CONNECTION: u8 = 255;

/// What `portcullis session --help` adds below the commands.
const SESSION_HELP: &str = "\
Credentials, region and endpoint come from the AWS CLI's places: --profile, --region,
--endpoint-url; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL_SSM/AWS_ENDPOINT_URL; the profile in AWS_SHARED_CREDENTIALS_FILE
and AWS_CONFIG_FILE (`portcullis server` writes both in its data directory, with endpoint_url).

The AWS CLI can use this binary as its Session Manager plugin: link it under that name
somewhere on PATH and `aws ssm start-session` runs it (`portcullis session-manager-plugin
ARGS...` does the same without the link):

  ln -s \"$(command -v portcullis)\" /usr/local/bin/session-manager-plugin
  session-manager-plugin --version
  aws --endpoint-url http://127.0.0.1:8080 ssm start-session --target i-0123456789abcdef0

Exit codes of start and resume: the remote command's when the agent reports one, else 0 when
the session closes; 254 the service refused a call; 255 the connection was lost; 129/143
detached by SIGHUP/SIGTERM (resume it with `portcullis session resume ID`); 130 Ctrl-C
before the session started (start then terminates it).";

/// Sessions on nodes: start (and attach), resume, terminate, list.
#[derive(Debug, Subcommand)]
#[command(after_help = SESSION_HELP)]
pub enum SessionCommand {
    /// Start a session on a node and attach this terminal to it.
    ///
    /// On a terminal, keys go to the remote shell raw (Ctrl-C included) and the window size
    /// follows yours. Without one (a script, a pipe), standard input is forwarded as it comes,
    /// its end sends Ctrl-D once, and the exit code is the remote shell's when the agent
    /// reports it. A dropped connection is resumed (ResumeSession) with nothing lost.
    Start(StartArgs),
    /// Reattach to a session this machine's client was detached from (SIGHUP, SIGTERM) or lost.
    Resume(ResumeArgs),
    /// End a session (TerminateSession); its client sees it close.
    Terminate(TerminateArgs),
    /// List sessions (DescribeSessions): active ones, or the history.
    List(ListArgs),
}

/// Where and as whom to call the SSM API.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Use this profile from the shared credentials and config files.
    #[arg(long)]
    profile: Option<String>,
    /// The region (for signing, and AWS's own endpoint).
    #[arg(long)]
    region: Option<String>,
    /// The SSM endpoint, e.g. http://127.0.0.1:8080.
    #[arg(long = "endpoint-url", value_name = "URL")]
    endpoint_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The node: an instance id (i-...) or managed node id (mi-...).
    #[arg(long)]
    target: String,
    /// The session document [default: the server's, SSM-SessionManagerRunShell].
    #[arg(long, value_name = "NAME")]
    document: Option<String>,
    /// Why you are connecting (kept with the session).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Document parameters as JSON, e.g. '{"command":["uptime"]}'.
    #[arg(long, value_name = "JSON")]
    parameters: Option<String>,
    /// Print neither the starting nor the exiting line.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The session id.
    session_id: String,
    /// Print neither the resuming nor the exiting line.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    /// The session id.
    session_id: String,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum State {
    #[value(name = "Active", alias = "active")]
    Active,
    #[value(name = "History", alias = "history")]
    History,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Active sessions (connected or disconnected), or the history (ended ones).
    #[arg(long, value_enum, default_value = "Active")]
    state: State,
    /// Only sessions on this node.
    #[arg(long)]
    target: Option<String>,
    /// Print DescribeSessions' JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    aws: AwsArgs,
}

fn client(aws: &AwsArgs, env: &Env) -> anyhow::Result<SsmClient> {
    let overrides = Overrides {
        profile: aws.profile.clone(),
        region: aws.region.clone(),
        endpoint_url: aws.endpoint_url.clone(),
    };
    let resolved = config::resolve(&overrides, env)?;
    Ok(SsmClient::new(&resolved)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn service_error(e: &ApiError) -> u8 {
    eprintln!("\n{e}");
    match e {
        ApiError::Aws { .. } => EXIT_SERVICE_ERROR,
        _ => EXIT_CONNECTION,
    }
}

fn exit_code(outcome: &Outcome) -> u8 {
    match &outcome.end {
        End::Closed { .. } => outcome
            .exit_code
            .map_or(0, |c| u8::try_from(c.rem_euclid(256)).unwrap_or(1)),
        End::TimedOut => 0,
        End::Detached { reason } if reason == "SIGHUP" => 129,
        End::Detached { reason } if reason == "SIGINT" => 130,
        End::Detached { .. } => 143,
        End::Lost { .. } | End::Failed { .. } => EXIT_CONNECTION,
    }
}

pub fn run(cmd: SessionCommand) -> anyhow::Result<u8> {
    let env = Env::from_process();
    let rt = runtime()?;
    match cmd {
        SessionCommand::Start(args) => rt.block_on(start(args, &env)),
        SessionCommand::Resume(args) => rt.block_on(resume(args, &env)),
        SessionCommand::Terminate(args) => rt.block_on(terminate(args, &env)),
        SessionCommand::List(args) => rt.block_on(list(args, &env)),
    }
}

async fn start(args: StartArgs, env: &Env) -> anyhow::Result<u8> {
    let api = client(&args.aws, env)?;
    let parameters = match &args.parameters {
        None => Vec::new(),
        Some(text) => parse_parameters(text)?,
    };
    let input = StartSession {
        target: args.target,
        document_name: args.document,
        reason: args.reason,
        parameters,
    };
    let grant = match api.start_session(&input).await {
        Ok(grant) => grant,
        Err(e) => return Ok(service_error(&e)),
    };
    let options = AttachOptions {
        quiet: args.quiet,
        restore: None,
        channel: ChannelOptions {
            state_file: attach::state_file(env, &grant.session_id),
            ..ChannelOptions::default()
        },
    };
    let tls = api.tls().clone();
    let outcome = attach::attach(grant, Some(&api), tls, options).await?;
    abandon_if_aborted(&outcome, Some(&api), env).await;
    Ok(exit_code(&outcome))
}

/// Ctrl-C before the session was ready (the agent never answered): end it rather than
/// leave it waiting for the idle timeout.
async fn abandon_if_aborted(outcome: &Outcome, api: Option<&SsmClient>, env: &Env) {
    if matches!(&outcome.end, End::Detached { reason } if reason == "SIGINT") {
        if let Some(api) = api {
            let _ = api.terminate_session(&outcome.session_id).await;
        }
        if let Some(path) = attach::state_file(env, &outcome.session_id) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `{"name": ["value", ...]}` (a single string is taken as a one-value list).
fn parse_parameters(text: &str) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let value: Value = serde_json::from_str(text).context("--parameters is not JSON")?;
    let object = value
        .as_object()
        .ok_or_else(|| anyhow!("--parameters must be a JSON object of lists of strings"))?;
    object
        .iter()
        .map(|(name, v)| {
            let values = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("--parameters: `{name}` must be a list of strings"))?,
                _ => return Err(anyhow!("--parameters: `{name}` must be a list of strings")),
            };
            Ok((name.clone(), values))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(|mut parameters| {
            // By name, whatever order serde_json's map keeps (a feature other crates may turn on).
            parameters.sort_by(|a, b| a.0.cmp(&b.0));
            parameters
        })
}

async fn resume(args: ResumeArgs, env: &Env) -> anyhow::Result<u8> {
    let path = attach::state_file(env, &args.session_id)
        .ok_or_else(|| anyhow!("no state directory (set HOME or PORTCULLIS_STATE_DIR)"))?;
    let saved = SavedState::load(&path).ok_or_else(|| {
        anyhow!(
            "no saved state for session {} on this machine ({}). Only a session this client \
             ran here and was detached from or lost can be resumed: the data channel's \
             sequence numbers are kept by the client.",
            args.session_id,
            path.display()
        )
    })?;
    let api = client(&args.aws, env)?;
    let grant = match api.resume_session(&args.session_id).await {
        Ok(grant) => grant,
        Err(e) => {
            if matches!(e, ApiError::Aws { status, .. } if status < 500) {
                // Ended (or never ours): the saved state is of no further use.
                let _ = std::fs::remove_file(&path);
            }
            return Ok(service_error(&e));
        }
    };
    if grant.token_value.is_empty() {
        println!("Session: {} timed out.", args.session_id);
        let _ = std::fs::remove_file(&path);
        return Ok(0);
    }
    let options = AttachOptions {
        quiet: args.quiet,
        restore: Some(saved),
        channel: ChannelOptions {
            state_file: Some(path),
            ..ChannelOptions::default()
        },
    };
    let tls = api.tls().clone();
    let outcome = attach::attach(grant, Some(&api), tls, options).await?;
    Ok(exit_code(&outcome))
}

async fn terminate(args: TerminateArgs, env: &Env) -> anyhow::Result<u8> {
    let api = client(&args.aws, env)?;
    match api.terminate_session(&args.session_id).await {
        Ok(()) => {
            if let Some(path) = attach::state_file(env, &args.session_id) {
                let _ = std::fs::remove_file(path);
            }
            println!("Session {} terminated.", args.session_id);
            Ok(0)
        }
        Err(e) => Ok(service_error(&e)),
    }
}

async fn list(args: ListArgs, env: &Env) -> anyhow::Result<u8> {
    let api = client(&args.aws, env)?;
    let state = match args.state {
        State::Active => "Active",
        State::History => "History",
    };
    let filters: Vec<(String, String)> = args
        .target
        .iter()
        .map(|t| ("Target".to_owned(), t.clone()))
        .collect();
    let sessions = match api.describe_sessions(state, &filters).await {
        Ok(sessions) => sessions,
        Err(e) => return Ok(service_error(&e)),
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let body = serde_json::json!({ "Sessions": sessions });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&body)?)?;
    } else {
        write!(stdout, "{}", table(&sessions))?;
    }
    Ok(0)
}

/// Sessions as an aligned text table.
fn table(sessions: &[Value]) -> String {
    let text = |s: &Value, k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let date = |s: &Value, k: &str| {
        s.get(k)
            .and_then(Value::as_f64)
            .map(iso8601)
            .unwrap_or_default()
    };
    let header = [
        "SESSION ID",
        "TARGET",
        "STATUS",
        "STARTED",
        "ENDED",
        "OWNER",
        "REASON",
    ];
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            [
                text(s, "SessionId"),
                text(s, "Target"),
                text(s, "Status"),
                date(s, "StartDate"),
                date(s, "EndDate"),
                text(s, "Owner"),
                text(s, "Reason"),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(cell);
            let pad = w.saturating_sub(cell.chars().count());
            l.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    if rows.is_empty() {
        out.push_str("(no sessions)\n");
    }
    out
}

/// Epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(seconds: f64) -> String {
    let secs = seconds.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Plugin mode: when the binary runs as `session-manager-plugin` (its name, e.g. a symlink)
/// or as `portcullis session-manager-plugin ...`, the AWS CLI's contract; `None` otherwise.
pub fn plugin_entry() -> Option<u8> {
    let mut args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let argv0 = args.first().map(String::as_str).unwrap_or_default();
    if !plugin::is_plugin_name(argv0) {
        if args.get(1).map(String::as_str) != Some("session-manager-plugin") {
            return None;
        }
        args.remove(0);
    }
    Some(run_plugin(&args))
}

fn run_plugin(args: &[String]) -> u8 {
    let command = match plugin::parse(args, |name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(e) => {
            println!("{e}");
            return 1;
        }
    };
    let start = match command {
        PluginCommand::Start(start) => start,
        other => {
            print!("{}", other.message().unwrap_or_default());
            let _ = std::io::stdout().flush();
            return 0;
        }
    };
    if let Some(name) = &start.response_env {
        // As the plugin does: the token should not linger in the environment. Nothing else
        // runs yet, so changing the environment is safe.
        std::env::remove_var(name);
    }
    let env = Env::from_process();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            println!("Cannot perform start session: {e:#}");
            return 1;
        }
    };
    rt.block_on(async move {
        // For ResumeSession and TerminateSession, through what the AWS CLI used. Without
        // credentials the session still runs; it just cannot resume.
        let overrides = Overrides {
            profile: start.profile.clone(),
            region: Some(start.region.clone()).filter(|r| !r.is_empty()),
            endpoint_url: start.endpoint_url.clone(),
        };
        let api = match config::resolve(&overrides, &env).map(|c| SsmClient::new(&c)) {
            Ok(Ok(api)) => Some(api),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "no SSM client; resume disabled");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "no credentials; resume disabled");
                None
            }
        };
        let tls = match &api {
            Some(api) => api.tls().clone(),
            None => {
                let bundle = env.get("AWS_CA_BUNDLE").map(std::path::PathBuf::from);
                match portcullis_client::net::tls_config(bundle.as_deref()) {
                    Ok(tls) => tls,
                    Err(e) => {
                        println!("Cannot perform start session: {e}");
                        return 1;
                    }
                }
            }
        };
        let tls: Arc<_> = tls;
        let options = AttachOptions {
            quiet: false,
            restore: None,
            channel: ChannelOptions {
                state_file: attach::state_file(&env, &start.grant.session_id),
                ..ChannelOptions::default()
            },
        };
        match attach::attach(start.grant.clone(), api.as_ref(), tls, options).await {
            Ok(outcome) => {
                abandon_if_aborted(&outcome, api.as_ref(), &env).await;
                exit_code(&outcome)
            }
            Err(e) => {
                println!("Cannot perform start session: {e}");
                EXIT_CONNECTION
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000.5), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(951_782_400.0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn tables_align() {
        let sessions = vec![serde_json::json!({
            "SessionId": "TestUserA-0123456789abcdef0", "Target": "i-1", "Status": "Connected",
            "StartDate": 1_700_000_000, "Owner": "arn:aws:iam::1:user/TestUserA"
        })];
        let t = table(&sessions);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("SESSION ID                   TARGET  STATUS"));
        assert!(lines[1]
            .starts_with("TestUserA-0123456789abcdef0  i-1     Connected  2023-11-14T22:13:20Z"));
        assert_eq!(
            table(&[]),
            "SESSION ID  TARGET  STATUS  STARTED  ENDED  OWNER  REASON\n(no sessions)\n"
        );
    }

    #[test]
    fn parameters() {
        assert_eq!(
            parse_parameters(r#"{"portNumber":["22"],"command":"ls"}"#).unwrap(),
            vec![
                ("command".to_owned(), vec!["ls".to_owned()]),
                ("portNumber".to_owned(), vec!["22".to_owned()])
            ]
        );
        assert!(parse_parameters("[1]").is_err());
    }
}
