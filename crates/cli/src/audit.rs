//! `portcullis audit tail`: the last API calls, allowed or refused, from the store;
//! `portcullis audit session-log ID`: what a session's terminal showed, from its log file.

use std::path::PathBuf;

use anyhow::Context as _;
use portcullis_core::store::Store;
use portcullis_iam::iso8601;
use serde_json::json;

use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print the most recent audit events, oldest first.
    ///
    /// Each event is one API call: time, principal, action, resource, decision
    /// (allow, explicit_deny, implicit_deny or error), the deciding statement, source IP and
    /// request id. Reads the store directly, so it works while the server runs.
    Tail(TailArgs),
    /// Print what a session's terminal showed, as the server logged it: every byte of its
    /// output once, in order (the shell's echo of what was typed included), written to
    /// stdout as it was sent. Works while the session runs.
    SessionLog(SessionLogArgs),
}

#[derive(Debug, clap::Args)]
pub struct SessionLogArgs {
    /// The session id (`aws ssm describe-sessions`, `portcullis session list`).
    session_id: String,
    /// The server's data directory.
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = ".portcullis")]
    data_dir: PathBuf,
    /// Keep printing what the session shows, as the server logs it, until the session ends
    /// (or Ctrl-C): watch a live session.
    #[arg(long, short = 'f')]
    follow: bool,
}

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// The server's data directory.
    #[arg(long, env = "PORTCULLIS_DATA_DIR", default_value = ".portcullis")]
    data_dir: PathBuf,
    /// How many events.
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: u32,
    /// One JSON object per line, for scripts.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<u8> {
    let args = match cmd {
        AuditCommand::Tail(args) => args,
        AuditCommand::SessionLog(args) => return session_log(&args),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let store = crate::server::open_existing_store(&args.data_dir).await?;
        for e in store
            .audit_tail(args.lines)
            .await
            .context("reading the audit log")?
        {
            if args.json {
                let line = json!({
                    "time": iso8601(e.time),
                    "request_id": e.request_id,
                    "principal": e.principal,
                    "action": e.action,
                    "resource": e.resource,
                    "decision": e.decision,
                    "statement": e.statement,
                    "source_ip": e.source_ip,
                    "error": e.error,
                });
                println!("{line}");
            } else {
                let statement = e.statement.map(|s| format!(" by {s}")).unwrap_or_default();
                let error = e.error.map(|c| format!(" ({c})")).unwrap_or_default();
                println!(
                    "{} {} {} {} on {}{statement}{error} from {} [{}]",
                    iso8601(e.time),
                    e.decision,
                    e.principal,
                    e.action,
                    if e.resource.is_empty() {
                        "-"
                    } else {
                        &e.resource
                    },
                    e.source_ip,
                    e.request_id
                );
            }
        }
        Ok(exit::OK)
    })
}

fn session_log(args: &SessionLogArgs) -> anyhow::Result<u8> {
    let dir = args.data_dir.join(crate::server::SESSION_LOGS);
    let path = portcullis_server::session_log::log_path(&dir, &args.session_id)
        .with_context(|| format!("{:?} is not a session id", args.session_id))?;
    if args.follow {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        return runtime.block_on(follow(args, &path));
    }
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "no log for session {} in {} (no output yet, another --data-dir, or the server runs with --no-session-logs)",
                args.session_id,
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    std::io::copy(&mut file, &mut std::io::stdout().lock())
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(exit::OK)
}

/// `session-log --follow`: what is logged, then what is added, until the store says the
/// session ended and the log has stopped growing (the server writes up to 50 ms late).
async fn follow(args: &SessionLogArgs, path: &std::path::Path) -> anyhow::Result<u8> {
    use std::io::{Read as _, Write as _};
    let store = crate::server::open_existing_store(&args.data_dir).await?;
    let mut file: Option<std::fs::File> = None;
    let mut quiet_since_end = 0;
    let mut stdout = std::io::stdout();
    loop {
        let session = store
            .session(&args.session_id)
            .await
            .context("reading the session from the store")?
            .with_context(|| {
                format!(
                    "no session {} in {} (`portcullis session list --state History` lists them)",
                    args.session_id,
                    args.data_dir.display()
                )
            })?;
        // The log appears with the session's first output; once open, it is read on from
        // where the last read ended.
        if file.is_none() {
            file = std::fs::File::open(path).ok();
        }
        let mut added = Vec::new();
        if let Some(file) = file.as_mut() {
            file.read_to_end(&mut added)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        if !added.is_empty() {
            stdout.write_all(&added)?;
            stdout.flush()?;
            quiet_since_end = 0;
        } else if session.ended.is_some() {
            quiet_since_end += 1;
            if quiet_since_end >= 5 {
                return Ok(exit::OK);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
