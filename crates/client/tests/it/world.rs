//! The real server in-process (SQLite in a temp dir), a user allowed to run sessions, a
//! registered node, and helpers to read what a client wrote.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use portcullis_client::config::{Credentials, ResolvedConfig};
use portcullis_client::SsmClient;
use portcullis_core::model::Tag;
use portcullis_core::ops_ssm::{NewActivation, RegisterNode};
use portcullis_core::{Caller, Service};
use portcullis_store::SqliteStore;
use tokio::io::AsyncWrite;

pub const REGION: &str = "us-east-1";
pub const NODE: &str = "i-0123456789abcdef0";

const POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["ssm:StartSession", "ssm:ResumeSession", "ssm:TerminateSession", "ssm:DescribeSessions"], "Resource": "*"}
  ]
}"#;

pub struct World {
    pub addr: SocketAddr,
    pub key: (String, String),
    pub node: String,
    pub node_credential: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl World {
    pub async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("portcullis.db"))
            .await
            .unwrap();
        let boot = Service::start(Arc::new(store), Some("123456789012"), REGION)
            .await
            .unwrap();
        let service = Arc::new(boot.service);
        let root_key = boot.new_root_key.unwrap();
        let identity = service.authenticate(&root_key.id).await.unwrap().unwrap();
        let root = Caller::new(identity, &root_key.id, "127.0.0.1", false);
        service
            .create_user(&root, "alice", None, &[Tag::new("Team", "ops")], None)
            .await
            .unwrap();
        let policy = service
            .create_policy(&root, "sessions", None, POLICY, None)
            .await
            .unwrap();
        service
            .attach_user_policy(&root, "alice", &policy.arn)
            .await
            .unwrap();
        let key = service
            .create_access_key(&root, Some("alice"))
            .await
            .unwrap();
        let new = NewActivation {
            iam_role: "SSMServiceRole".into(),
            ..NewActivation::default()
        };
        let (activation, code) = service.create_activation(&root, &new).await.unwrap();
        let reg = service
            .register_node(&RegisterNode {
                activation_id: activation.id,
                activation_code: code,
                instance_id: Some(NODE.into()),
                hostname: "node-1".into(),
                platform: "Linux".into(),
                ..RegisterNode::default()
            })
            .await
            .unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut state = portcullis_server::AppState::new(service.clone(), false);
        state.session_logs = Some(
            portcullis_server::session_log::SessionLogs::new(dir.path().join("session-logs"))
                .unwrap(),
        );
        let state = Arc::new(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(portcullis_server::serve(listener, state, async {
            let _ = rx.await;
        }));
        World {
            addr,
            key: (key.id, key.secret),
            node: reg.node_id,
            node_credential: reg.credential,
            dir,
            stop: Some(tx),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A resolved configuration for alice against `endpoint`.
    pub fn config(&self, endpoint: &str) -> ResolvedConfig {
        ResolvedConfig {
            profile: "default".into(),
            credentials: Credentials {
                access_key_id: self.key.0.clone(),
                secret_access_key: self.key.1.clone(),
                session_token: None,
                source: "test".into(),
            },
            region: REGION.into(),
            endpoint_url: endpoint.to_owned(),
            ca_bundle: None,
        }
    }

    pub fn client(&self) -> SsmClient {
        SsmClient::new(&self.config(&self.endpoint())).unwrap()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// What the server logged of `session` so far (empty: nothing yet).
    pub fn session_log(&self, session: &str) -> String {
        let path = self
            .dir
            .path()
            .join("session-logs")
            .join(format!("{session}.log"));
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An `AsyncWrite` into shared memory, for a client's stdout/stderr.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// How many bytes were written.
    pub fn written(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Waits until the output contains `needle`.
    pub async fn wait_for(&self, needle: &str) {
        self.wait_for_within(needle, Duration::from_secs(15)).await;
    }

    /// Waits until the output contains `needle`, at most `limit`.
    pub async fn wait_for_within(&self, needle: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.text().contains(needle) {
            if tokio::time::Instant::now() >= deadline {
                let text = self.text();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!(
                    "timed out waiting for {needle:?}; {} bytes of output, ending {tail:?}",
                    text.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl AsyncWrite for Captured {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `target/debug/portcullis`, next to this test's own binary, when it has been built.
pub fn portcullis_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    let bin = dir.join("portcullis");
    if bin.exists() {
        Some(bin)
    } else {
        eprintln!(
            "skipping the subprocess part: {} not built (cargo build -p portcullis-cli)",
            bin.display()
        );
        None
    }
}
