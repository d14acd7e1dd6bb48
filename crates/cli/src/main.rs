//! `portcullis`: a self-hosted Session Manager authorized by the AWS IAM policy language.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in its own file.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod access;
mod agent;
mod audit;
mod config_file;
mod policy;
mod server;
mod session;

/// Portcullis: shell access without SSH keys or open ports, authorized by IAM policies.
///
/// `portcullis server` runs the AWS-compatible API (IAM, STS, EC2, SSM) that the AWS CLI and
/// boto3 talk to with `--endpoint-url`; `portcullis policy` validates, simulates and tests IAM
/// policies offline.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, propagate_version = true)]
struct Cli {
    /// Log format on stderr. The level comes from RUST_LOG (default: info).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "PORTCULLIS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with IAM policy documents: validate, simulate, test.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run the server: the AWS-compatible API, node endpoints, /healthz and /metrics.
    Server(server::Args),
    /// Who can reach which node: the access matrix over the store, with the deciding statement.
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Read the audit log: every API call, allowed or refused.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The node agent: register this machine once, then run it (usually under systemd).
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Open a shell on a node; resume, terminate and list sessions. Also the AWS CLI's
    /// session-manager-plugin (see `portcullis session --help`).
    #[command(subcommand)]
    Session(session::SessionCommand),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Success; for `simulate`, the request is allowed.
    pub const OK: u8 = 0;
    /// The answer is no: an invalid document, a denied request, a failed test.
    pub const NO: u8 = 1;
    /// The command could not run: bad arguments, unreadable files.
    pub const ERROR: u8 = 2;
}

/// Every session holds sockets (and, on the agent, a PTY), so the server and the agent lift
/// their soft limit on open files to the hard one, as Go programs such as AWS's agent do.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "raising the open-file limit");
        }
    }
}

fn main() -> ExitCode {
    // Run as `session-manager-plugin` (a symlink) or `portcullis session-manager-plugin`:
    // the AWS CLI's argument contract, not clap's.
    if let Some(code) = session::plugin_entry() {
        return ExitCode::from(code);
    }
    let argv = match config_file::with_config_file(&Cli::command(), std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let cli = Cli::parse_from(argv);
    init_logging(cli.log_format);
    if matches!(cli.command, Command::Server(_) | Command::Agent(_)) {
        raise_open_file_limit();
    }
    let result = match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Server(args) => server::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Access(cmd) => access::run(cmd),
        Command::Agent(cmd) => agent::run(cmd),
        Command::Session(cmd) => session::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
