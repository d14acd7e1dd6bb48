//! A session attached to this process's terminal: what `portcullis session start|resume`
//! and plugin mode run.
//!
//! Prints the plugin's `Starting session with SessionId: ID` line, puts a TTY in raw mode,
//! feeds stdin, the terminal size and signals to the channel, writes output to stdout
//! (stderr payloads to stderr), restores the terminal, then prints the plugin's closing line.
//! Without a TTY (scripts, tests), stdin is forwarded as it comes and its end sends Ctrl-D
//! once, so a remote shell exits when the script's input ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::api::{SsmClient, StreamGrant};
use crate::channel::{
    Channel, ChannelError, ChannelOptions, End, Input, OnEof, Outcome, ReadyHook, SavedState,
};
use crate::config::Env;
use crate::terminal;

/// How to attach.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Print neither the starting nor the closing line.
    pub quiet: bool,
    /// Continue from a saved state (`portcullis session resume`).
    pub restore: Option<SavedState>,
    /// The channel's options (its `on_eof` is set from whether stdin is a TTY).
    pub channel: ChannelOptions,
}

/// Where session state files live: `PORTCULLIS_STATE_DIR`, else
/// `$XDG_STATE_HOME/portcullis/sessions`, else `~/.local/state/portcullis/sessions`.
pub fn state_dir(env: &Env) -> Option<PathBuf> {
    if let Some(dir) = env.get("PORTCULLIS_STATE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = match env.get("XDG_STATE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env.get("HOME")?).join(".local").join("state"),
    };
    Some(base.join("portcullis").join("sessions"))
}

/// The state file of a session, under [`state_dir`].
pub fn state_file(env: &Env, session_id: &str) -> Option<PathBuf> {
    let safe: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    state_dir(env).map(|d| d.join(format!("{safe}.json")))
}

/// Runs the session on this terminal until it ends.
pub async fn attach(
    grant: StreamGrant,
    api: Option<&SsmClient>,
    tls: std::sync::Arc<rustls::ClientConfig>,
    mut options: AttachOptions,
) -> Result<Outcome, ChannelError> {
    use tokio::io::AsyncWriteExt;
    let tty = terminal::stdin_is_tty();
    let mut stdout = tokio::io::stdout();
    if !options.quiet {
        let verb = if options.restore.is_some() {
            "Resuming"
        } else {
            "Starting"
        };
        let line = format!("\n{verb} session with SessionId: {}\n", grant.session_id);
        let _ = stdout.write_all(line.as_bytes()).await;
        let _ = stdout.flush().await;
    }
    let (tx, mut rx) = mpsc::channel(256);
    let size = terminal::size();
    let _ = tx.send(Input::Size(size)).await;
    options.channel.on_eof = if tty { OnEof::Nothing } else { OnEof::SendEot };
    // Raw mode once the session is ready (until then Ctrl-C aborts), undone below.
    let ready = Arc::new(AtomicBool::new(false));
    let raw: Arc<Mutex<Option<terminal::RawMode>>> = Arc::default();
    let (ready_flag, raw_slot) = (ready.clone(), raw.clone());
    options.channel.on_ready = Some(ReadyHook(Arc::new(move || {
        ready_flag.store(true, Ordering::SeqCst);
        if tty {
            match terminal::RawMode::enable() {
                Ok(guard) => {
                    *raw_slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(guard);
                }
                Err(e) => tracing::warn!(error = %e, "could not put the terminal in raw mode"),
            }
        }
    })));
    let mut channel = Channel::new(grant, api, tls, options.channel);
    if let Some(saved) = &options.restore {
        channel = channel.restore(saved, size);
    }
    if let Err(e) = terminal::spawn_signal_forwarder(tx.clone(), ready) {
        tracing::warn!(error = %e, "could not watch signals");
    }
    terminal::spawn_stdin_reader(tx);
    let mut stderr = tokio::io::stderr();
    let result = channel.run(&mut rx, &mut stdout, &mut stderr).await;
    drop(
        raw.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(),
    );
    terminal::restore();
    let outcome = result?;
    if !options.quiet {
        if let Some(line) = outcome.closing_message() {
            let _ = stdout.write_all(line.as_bytes()).await;
            let _ = stdout.flush().await;
        }
    }
    match &outcome.end {
        End::Detached { reason } if reason == "SIGINT" => {}
        End::Detached { reason } => {
            let _ = stderr
                .write_all(
                    format!(
                        "\n\nDetached from session {} ({reason}); it is still running: portcullis session resume {}\n",
                        outcome.session_id, outcome.session_id
                    )
                    .as_bytes(),
                )
                .await;
        }
        End::Lost { reason } => {
            let _ = stderr
                .write_all(
                    format!(
                        "\n\nLost the connection to session {}: {reason}\n",
                        outcome.session_id
                    )
                    .as_bytes(),
                )
                .await;
        }
        End::Failed { reason } => {
            let _ = stderr
                .write_all(
                    format!("\n\nSession {} failed: {reason}\n", outcome.session_id).as_bytes(),
                )
                .await;
        }
        End::Closed { .. } | End::TimedOut => {}
    }
    let _ = stderr.flush().await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_paths() {
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(
            state_file(&env, "u-1/x"),
            Some(PathBuf::from(
                "/h/.local/state/portcullis/sessions/u-1_x.json"
            ))
        );
        let env = Env::from_pairs([("HOME", "/h"), ("XDG_STATE_HOME", "/s")]);
        assert_eq!(
            state_dir(&env),
            Some(PathBuf::from("/s/portcullis/sessions"))
        );
        let env = Env::from_pairs([("PORTCULLIS_STATE_DIR", "/p")]);
        assert_eq!(state_dir(&env), Some(PathBuf::from("/p")));
    }
}
