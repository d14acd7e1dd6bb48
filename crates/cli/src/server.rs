//! `portcullis server`: the AWS-compatible API on one port, with its store in a data dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use portcullis_core::model::AccessKey;
use portcullis_core::Service;
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
    /// Address to listen on. The default accepts local connections only.
    #[arg(long, env = "PORTCULLIS_LISTEN", default_value = "127.0.0.1:8066")]
    listen: SocketAddr,
    /// Where the store (SQLite) and the first credentials live.
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = ".portcullis")]
    data_dir: PathBuf,
    /// The account id to create on first start (default: 12 random digits).
    #[arg(long, env = "PORTCULLIS_ACCOUNT_ID")]
    account_id: Option<String>,
    /// The region the account lives in (used in ARNs).
    #[arg(long, env = "PORTCULLIS_REGION", default_value = "us-east-1")]
    region: String,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<u8> {
    if let Some(id) = &args.account_id {
        anyhow::ensure!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
            "--account-id must be 12 digits, not `{id}`"
        );
    }
    create_private_dir(&args.data_dir)?;
    let db = args.data_dir.join("portcullis.db");
    let store = SqliteStore::open(&db)
        .await
        .with_context(|| format!("opening the store at {}", db.display()))?;
    let boot = Service::start(Arc::new(store), args.account_id.as_deref(), &args.region)
        .await
        .context("starting the service")?;
    let service = Arc::new(boot.service);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    let endpoint = format!("http://{local}");
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
    }
    let dir = args.data_dir.display();
    println!(
        "Portcullis is listening on {endpoint} (account {}).",
        service.account().id
    );
    println!("Try: AWS_SHARED_CREDENTIALS_FILE={dir}/credentials AWS_CONFIG_FILE={dir}/config aws --profile portcullis-admin sts get-caller-identity");
    tracing::info!(%endpoint, account = %service.account().id, "listening");
    let state = Arc::new(AppState::new(service, false));
    portcullis_server::serve(listener, state, shutdown_signal())
        .await
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
