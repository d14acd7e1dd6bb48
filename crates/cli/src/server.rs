//! `portcullis server`: the AWS-compatible API on one port, with its store in a data dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use portcullis_core::model::{AccessKey, Tag};
use portcullis_core::ops_ssm::NewActivation;
use portcullis_core::{Caller, Service};
use portcullis_server::session_log::SessionLogs;
use portcullis_server::AppState;
use portcullis_store::SqliteStore;

use crate::exit;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
On first start the server creates the account and writes the administrator's access key to
DATA_DIR/credentials (profile portcullis-admin, mode 0600). Then, for example:

  AWS_SHARED_CREDENTIALS_FILE=.portcullis/credentials AWS_CONFIG_FILE=.portcullis/config \\
    aws --profile portcullis-admin sts get-caller-identity")]
pub struct Args {
    /// Read settings from this TOML file's `[server]` table: the long options below by name
    /// (`listen = "0.0.0.0:8066"`, `data-dir = "/var/lib/portcullis"`, `seed = true`). The
    /// command line and the environment win over the file.
    #[arg(long, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on. The default accepts local connections only.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = "127.0.0.1:8066")]
    listen: SocketAddr,
    /// Where the store (SQLite) and the first credentials live.
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = ".portcullis")]
    data_dir: PathBuf,
    /// The account id to create on first start (default: 12 random digits).
    #[arg(long, env = "PORTCULLIS_ACCOUNT_ID")]
    account_id: Option<String>,
    /// The region the account lives in (used in ARNs) [default: us-east-1, or
    /// ap-northeast-1 with --seed].
    #[arg(long, env = "PORTCULLIS_REGION")]
    region: Option<String>,
    /// On first start, also create the seed article's world: IAM user TestUserA (tag
    /// Project=test, ReadOnlyAccess, an access key in profile `testusera`) and its three
    /// Session Manager policies, with the ABAC one attached. Implies account 123456789012 in
    /// ap-northeast-1 unless given.
    #[arg(long, env = "PORTCULLIS_SEED", value_parser = clap::builder::BoolishValueParser::new())]
    seed: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(
        long,
        env = "PORTCULLIS_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(
        long,
        env = "PORTCULLIS_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM"
    )]
    tls_key: Option<PathBuf>,
    /// How long a session whose agent dropped its data channel without ending the session
    /// (agent killed, node down) waits for the agent to come back before it is terminated
    /// and its client told.
    #[arg(
        long,
        env = "PORTCULLIS_AGENT_GRACE_SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..),
        value_name = "SECONDS"
    )]
    agent_grace_seconds: u64,
    /// A session whose client went away (and did not resume it) is terminated after this
    /// many seconds: Session Manager's idle session timeout (AWS: 20 minutes by default,
    /// 1 to 60).
    #[arg(
        long,
        env = "PORTCULLIS_IDLE_SESSION_SECONDS",
        default_value_t = 1200,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        value_name = "SECONDS"
    )]
    idle_session_seconds: u64,
    /// Terminate every session this many seconds after it started, in use or not: Session
    /// Manager's maximum session duration (AWS: none by default, 1 minute to 24 hours).
    #[arg(
        long,
        env = "PORTCULLIS_MAX_SESSION_SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        value_name = "SECONDS"
    )]
    max_session_seconds: Option<u64>,
    /// How long a web console sign-in lasts, in seconds (AWS's console: 12 hours).
    #[arg(
        long,
        env = "PORTCULLIS_CONSOLE_SESSION_SECONDS",
        default_value_t = 43_200,
        value_parser = clap::value_parser!(i64).range(1..=604_800),
        value_name = "SECONDS"
    )]
    console_session_seconds: i64,
    /// Threads that serve connections and API calls (default: one per CPU). 1 runs
    /// everything on one thread: the lowest keystroke latency through the session relay
    /// (BENCHMARKS.md), with API calls sharing that thread.
    #[arg(
        long,
        env = "PORTCULLIS_WORKER_THREADS",
        value_parser = clap::value_parser!(u16).range(1..=1024),
        value_name = "N"
    )]
    worker_threads: Option<u16>,
    /// Do not write session logs. By default the server writes what each session's terminal
    /// showed to `<data-dir>/session-logs/<session-id>.log` (mode 0600); `portcullis audit
    /// session-log ID` prints one.
    #[arg(
        long,
        env = "PORTCULLIS_NO_SESSION_LOGS",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_session_logs: bool,
}

/// Session logs' directory, under the data directory.
pub const SESSION_LOGS: &str = "session-logs";
/// The store, under the data directory.
const STORE_FILE: &str = "portcullis.db";

/// The store a server keeps in `data_dir`, for commands that read it beside the server
/// (`access`, `audit`); an error that says so if there is none.
pub async fn open_existing_store(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    let db = data_dir.join(STORE_FILE);
    anyhow::ensure!(
        db.exists(),
        "no store at {} (is --data-dir right?)",
        db.display()
    );
    SqliteStore::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))
}

/// The account and region the seed article's policies name.
const SEED_ACCOUNT: &str = "123456789012";
const SEED_REGION: &str = "ap-northeast-1";
const SEED_POLICIES: [(&str, &str); 3] = [
    (
        "SessionManager-Pattern1-InstanceArn",
        include_str!("../../../examples/seed/pattern-1-arn.json"),
    ),
    (
        "SessionManager-Pattern2-FixedTag",
        include_str!("../../../examples/seed/pattern-2-fixed-tag.json"),
    ),
    (
        "SessionManager-Pattern3-Abac",
        include_str!("../../../examples/seed/pattern-3-abac.json"),
    ),
];

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut builder = match args.worker_threads {
        // No hand-offs between threads: a relayed frame is read and written by one thread.
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n.into());
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<u8> {
    if let Some(id) = &args.account_id {
        anyhow::ensure!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
            "--account-id must be 12 digits, not `{id}`"
        );
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(portcullis_server::tls::load_config(cert, key).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    create_private_dir(&args.data_dir)?;
    let db = args.data_dir.join(STORE_FILE);
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("opening the store at {}", db.display()))?;
    let (account_id, region) = if args.seed {
        (
            Some(args.account_id.as_deref().unwrap_or(SEED_ACCOUNT)),
            args.region.as_deref().unwrap_or(SEED_REGION),
        )
    } else {
        (
            args.account_id.as_deref(),
            args.region.as_deref().unwrap_or("us-east-1"),
        )
    };
    let boot = Service::start(Arc::new(store), account_id, region)
        .await
        .context("starting the service")?;
    let service = Arc::new(boot.service);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = format!("{scheme}://{local}");
    if let Some(key) = &boot.new_root_key {
        write_admin_profile(&args.data_dir, key, &service.account().region, &endpoint)?;
        println!(
            "Created account {} in {}.",
            service.account().id,
            service.account().region
        );
        println!(
            "The administrator's credentials are in {} (profile portcullis-admin).",
            args.data_dir.join("credentials").display()
        );
        if args.seed {
            let user_key = seed(&service, key, &args.data_dir).await?;
            append_profile(
                &args.data_dir,
                "testusera",
                &user_key,
                &service.account().region,
                &endpoint,
            )?;
            println!("Seeded TestUserA (profile testusera) with ReadOnlyAccess and SessionManager-Pattern3-Abac.");
        }
    }
    let dir = args.data_dir.display();
    println!(
        "Portcullis is listening on {endpoint} (account {}).",
        service.account().id
    );
    println!("Try: AWS_SHARED_CREDENTIALS_FILE={dir}/credentials AWS_CONFIG_FILE={dir}/config aws --profile portcullis-admin sts get-caller-identity");
    tracing::info!(%endpoint, account = %service.account().id, "listening");
    service.set_console_session_seconds(args.console_session_seconds);
    let mut state = AppState::new(service, tls.is_some());
    state.agent_grace = std::time::Duration::from_secs(args.agent_grace_seconds);
    state.idle_timeout = std::time::Duration::from_secs(args.idle_session_seconds);
    state.max_session = args.max_session_seconds.map(std::time::Duration::from_secs);
    if !args.no_session_logs {
        let dir = args.data_dir.join(SESSION_LOGS);
        state.session_logs = Some(
            SessionLogs::new(dir.clone()).with_context(|| format!("creating {}", dir.display()))?,
        );
    }
    let state = Arc::new(state);
    match tls {
        Some(config) => {
            portcullis_server::tls::serve_tls(listener, state, config, shutdown_signal()).await
        }
        None => portcullis_server::serve(listener, state, shutdown_signal()).await,
    }
    .context("serving")?;
    tracing::info!("stopped");
    Ok(exit::OK)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// Creates the seed article's user and policies, as the account root would through the API,
/// and an activation (tag `Project=test`) for a local agent, written to
/// `DATA_DIR/seed-activation.json` (0600) for `scripts/run`.
async fn seed(
    service: &Service,
    root_key: &AccessKey,
    data_dir: &Path,
) -> anyhow::Result<AccessKey> {
    let identity = service
        .authenticate(&root_key.id)
        .await?
        .context("the new root key does not authenticate")?;
    let root = Caller::new(identity, &root_key.id, "127.0.0.1", false);
    let user = "TestUserA";
    service
        .create_user(&root, user, None, &[Tag::new("Project", "test")], None)
        .await?;
    service
        .attach_user_policy(&root, user, "arn:aws:iam::aws:policy/ReadOnlyAccess")
        .await?;
    for (name, document) in SEED_POLICIES {
        let policy = service
            .create_policy(&root, name, None, document, None)
            .await?;
        if name.ends_with("Abac") {
            service.attach_user_policy(&root, user, &policy.arn).await?;
        }
    }
    let new = NewActivation {
        iam_role: "SSMServiceRole".into(),
        description: "local agent for the seed".into(),
        registration_limit: Some(1),
        tags: vec![Tag::new("Project", "test")],
        ..NewActivation::default()
    };
    let (activation, code) = service.create_activation(&root, &new).await?;
    let activation = serde_json::json!({"ActivationId": activation.id, "ActivationCode": code});
    write_private(
        &data_dir.join("seed-activation.json"),
        &activation.to_string(),
    )?;
    Ok(service.create_access_key(&root, Some(user)).await?)
}

/// Writes `credentials` (the secret, mode 0600) and `config` (region and endpoint) in the AWS
/// shared-file formats, profile `portcullis-admin`.
fn write_admin_profile(
    dir: &Path,
    key: &AccessKey,
    region: &str,
    endpoint: &str,
) -> anyhow::Result<()> {
    let credentials = format!(
        "[portcullis-admin]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.id, key.secret
    );
    write_private(&dir.join("credentials"), &credentials)?;
    let config =
        format!("[profile portcullis-admin]\nregion = {region}\nendpoint_url = {endpoint}\n");
    write_private(&dir.join("config"), &config)?;
    Ok(())
}

/// Adds a profile to the `credentials` and `config` files written at first start.
fn append_profile(
    dir: &Path,
    profile: &str,
    key: &AccessKey,
    region: &str,
    endpoint: &str,
) -> anyhow::Result<()> {
    let credentials = dir.join("credentials");
    let mut text = std::fs::read_to_string(&credentials).unwrap_or_default();
    text.push_str(&format!(
        "\n[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.id, key.secret
    ));
    write_private(&credentials, &text)?;
    let config = dir.join("config");
    let mut text = std::fs::read_to_string(&config).unwrap_or_default();
    text.push_str(&format!(
        "\n[profile {profile}]\nregion = {region}\nendpoint_url = {endpoint}\n"
    ));
    write_private(&config, &text)?;
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
