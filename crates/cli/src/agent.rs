//! `portcullis agent`: the node daemon. `register` once with an activation, then `run`
//! (normally under systemd: `packaging/portcullis-agent.service`).

use std::path::PathBuf;

use anyhow::Context as _;
use portcullis_agent::{state, AgentConfig, RegisterError, RegisterRequest};

use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Register this machine with a Portcullis server, using an activation (code and id
    /// from `aws ssm create-activation`). Stores the node's credential in
    /// STATE_DIR/registration.json (mode 0600).
    Register(RegisterArgs),
    /// Run the agent: keep a control channel open to the server and serve sessions until
    /// SIGTERM or SIGINT.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The server's URL, e.g. https://portcullis.example.com:8066.
    #[arg(long, env = "PORTCULLIS_SERVER", value_name = "URL")]
    server: String,
    /// The activation code (secret).
    #[arg(long, env = "PORTCULLIS_ACTIVATION_CODE", hide_env_values = true)]
    code: String,
    /// The activation id.
    #[arg(long, env = "PORTCULLIS_ACTIVATION_ID")]
    id: String,
    /// Claim this EC2-style instance id (i-...) instead of getting an mi-... id.
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Where the registration is stored.
    #[arg(long, env = state::STATE_DIR_ENV, default_value = state::DEFAULT_STATE_DIR, value_name = "DIR")]
    state_dir: PathBuf,
    /// Also trust these CA certificates (PEM) for an https server; kept with the
    /// registration for `run`.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// Register again even if this node already is (it becomes a new node).
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where the registration is read from.
    #[arg(long, env = state::STATE_DIR_ENV, default_value = state::DEFAULT_STATE_DIR, value_name = "DIR")]
    state_dir: PathBuf,
}

pub fn run(cmd: AgentCommand) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cmd {
        AgentCommand::Register(args) => runtime.block_on(register(args)),
        AgentCommand::Run(args) => runtime.block_on(serve(args)),
    }
}

async fn register(args: RegisterArgs) -> anyhow::Result<u8> {
    let ca_certificates = match &args.ca_cert {
        Some(path) => Some(portcullis_agent::net::read_ca_file(path)?),
        None => None,
    };
    let request = RegisterRequest {
        server: args.server,
        activation_id: args.id,
        activation_code: args.code,
        instance_id: args.instance_id,
        ca_certificates,
        force: args.force,
    };
    match portcullis_agent::register(&request, &args.state_dir).await {
        Ok((registration, path)) => {
            println!(
                "Registered as {} with {}; credential stored in {}.",
                registration.node_id,
                registration.server,
                path.display()
            );
            println!("Start the agent with `portcullis agent run` (or: systemctl enable --now portcullis-agent).");
            Ok(exit::OK)
        }
        Err(RegisterError::Refused { message, code, .. }) => {
            if code.is_empty() {
                eprintln!("registration refused: {message}");
            } else {
                eprintln!("registration refused: {message} ({code})");
            }
            Ok(exit::NO)
        }
        Err(e) => Err(e.into()),
    }
}

async fn serve(args: RunArgs) -> anyhow::Result<u8> {
    let registration = state::load(&args.state_dir)?;
    let config = AgentConfig::new(registration);
    portcullis_agent::run(config, terminated()).await?;
    Ok(exit::OK)
}

/// Completes on SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the agent");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
}
