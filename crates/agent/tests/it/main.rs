//! The agent against a fake server in process: registration, the control channel, and
//! real shells on real PTYs driven through the Session Manager protocol.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod client;
mod control;
mod fake;
mod register;
mod sessions;

use std::path::PathBuf;
use std::time::Duration;

use portcullis_agent::pty::shell_command;
use portcullis_agent::{AgentConfig, Registration};
use serde_json::json;
use tokio::sync::oneshot;

use crate::client::Client;
use crate::fake::{Control, Fake, CREDENTIAL, NODE_ID};

/// A running agent, the fake server it talks to, and its current control channel.
pub struct Harness {
    pub fake: Fake,
    pub control: Control,
    /// The `hello` of the current control channel.
    pub hello: serde_json::Value,
    shutdown: Option<oneshot::Sender<()>>,
    agent: Option<tokio::task::JoinHandle<()>>,
    _home: tempfile::TempDir,
}

impl Harness {
    /// A fake server and an agent connected to it (with short timers), `tweak`ed.
    pub async fn start(tweak: impl FnOnce(&mut AgentConfig)) -> Harness {
        init_logging();
        let mut fake = Fake::start().await;
        let home = tempfile::tempdir().unwrap();
        let mut config = AgentConfig::new(Registration {
            server: fake.url(),
            node_id: NODE_ID.to_owned(),
            credential: CREDENTIAL.to_owned(),
            ca_certificates: None,
        });
        config.backoff_initial = Duration::from_millis(100);
        config.backoff_cap = Duration::from_secs(1);
        config.session.kill_grace = Duration::from_millis(500);
        // bash as a login shell, in an empty home, so no one's dotfiles are involved.
        config.session.shell = Some(shell_command(
            PathBuf::from("/bin/bash"),
            home.path().to_owned(),
            "tester",
        ));
        tweak(&mut config);
        let (shutdown, stop) = oneshot::channel::<()>();
        let agent = tokio::spawn(async move {
            portcullis_agent::run(config, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        let mut control = fake.control().await;
        let hello = control.recv_type("hello").await;
        Harness {
            fake,
            control,
            hello,
            shutdown: Some(shutdown),
            agent: Some(agent),
            _home: home,
        }
    }

    /// The server starts a session: `open`, the agent dials its data channel, a client
    /// attaches and completes the handshake, and the shell answers.
    pub async fn open(&mut self, session_id: &str) -> Client {
        self.control.send(json!({
            "type": "open",
            "session_id": session_id,
            "document": "SSM-SessionManagerRunShell",
        }));
        let ws = self.fake.data_channel(session_id).await;
        let mut client = Client::attach(ws).await;
        client.run("true", "ready").await;
        client
    }

    /// SIGTERM, as far as the library is concerned: waits for the agent to finish.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(agent) = self.agent.take() {
            tokio::time::timeout(Duration::from_secs(20), agent)
                .await
                .expect("the agent stopped within 20 s")
                .unwrap();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The agent's logs in each test's captured output (shown when it fails); RUST_LOG to
/// change the level (default: debug for the agent).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("portcullis_agent=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A number for this run, so markers are not constants baked into the test.
pub fn run_number() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    10_000 + (nanos ^ std::process::id()) % 80_000
}
