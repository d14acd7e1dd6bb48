//! The daemon: one control channel to the server, kept open across outages, and one task
//! per session.
//!
//! ```text
//! run ─▶ dial /v1/control (Bearer NODE_ID:CREDENTIAL) ─▶ hello ─▶ ┌ open      → spawn a session task
//!  ▲                                                              ├ terminate → end that session
//!  │     heartbeat + ping every 20 s; silence for 3 intervals     └ sessions  → end the others
//!  └──── lost: jittered exponential backoff (≤ 30 s) ◀────────── or the socket drops
//! shutdown (SIGTERM/SIGINT) ─▶ every session: SIGHUP, SIGKILL, channel_closed ─▶ close
//! ```
//!
//! Sessions do not depend on the control channel: they keep running while it is down, and
//! the `sessions` message after the next `hello` reconciles them with the server.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument as _;

use crate::backoff::Backoff;
use crate::net::{DialError, Dialer, WebSocket};
use crate::protocol::{AgentMessage, ServerMessage};
use crate::pty::{NativePtySystem, PtySystem};
use crate::register::{agent_version, hostname, platform};
use crate::session::{SessionCommand, SessionConfig, SessionTask};
use crate::state::Registration;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Who to talk to, as whom.
    pub registration: Registration,
    /// `heartbeat` (and a WebSocket ping) this often. CHANNELS.md: 20 s.
    pub heartbeat_interval: Duration,
    /// The control channel is considered dead after this long without hearing anything
    /// (the pings are answered, so a live server is never silent this long).
    pub silence_timeout: Duration,
    /// First reconnection delay.
    pub backoff_initial: Duration,
    /// Longest reconnection delay.
    pub backoff_cap: Duration,
    /// A control channel that lasted this long resets the backoff.
    pub stable_after: Duration,
    /// How long shutdown waits for the sessions to end cleanly.
    pub shutdown_timeout: Duration,
    /// Per-session tuning.
    pub session: SessionConfig,
    /// Where shells come from.
    pub pty: Arc<dyn PtySystem>,
}

impl AgentConfig {
    /// The defaults, for this registration.
    pub fn new(registration: Registration) -> AgentConfig {
        AgentConfig {
            registration,
            heartbeat_interval: Duration::from_secs(20),
            silence_timeout: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            session: SessionConfig::default(),
            pty: Arc::new(NativePtySystem),
        }
    }
}

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The registration's server URL or CA certificates are unusable.
    #[error(transparent)]
    Dial(#[from] DialError),
}

struct SessionHandle {
    commands: mpsc::Sender<SessionCommand>,
    task: JoinHandle<()>,
    /// The control connection whose `open` started it.
    opened_on: u64,
}

/// Why a control connection ended.
enum Served {
    Shutdown,
    Lost(String),
}

struct Daemon {
    config: AgentConfig,
    dialer: Dialer,
    session_config: Arc<SessionConfig>,
    sessions: HashMap<String, SessionHandle>,
    /// Counts control connections, so `sessions` can tell which sessions it is about.
    connection: u64,
}

/// Runs the agent until `shutdown` completes, then ends every session cleanly.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let registration = &config.registration;
    let dialer = Dialer::new(
        &registration.server,
        registration.ca_certificates.as_deref(),
    )?
    .with_credential(&registration.node_id, &registration.credential);
    let mut daemon = Daemon {
        session_config: Arc::new(config.session.clone()),
        dialer,
        sessions: HashMap::new(),
        connection: 0,
        config,
    };
    tracing::info!(
        server = %daemon.dialer.base(),
        node = %daemon.config.registration.node_id,
        version = agent_version(),
        "agent starting"
    );
    tokio::pin!(shutdown);
    daemon.control_loop(shutdown.as_mut()).await;
    daemon.shutdown().await;
    Ok(())
}

impl Daemon {
    async fn control_loop(&mut self, mut shutdown: Pin<&mut impl Future<Output = ()>>) {
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_cap);
        loop {
            let dialed = tokio::select! {
                () = shutdown.as_mut() => return,
                dialed = self.dialer.websocket(&["v1", "control"]) => dialed,
            };
            match dialed {
                Ok(ws) => {
                    tracing::info!("control channel open");
                    let since = Instant::now();
                    match self.serve(ws, shutdown.as_mut()).await {
                        Served::Shutdown => return,
                        Served::Lost(why) => {
                            tracing::warn!(reason = %why, "control channel lost");
                        }
                    }
                    if since.elapsed() >= self.config.stable_after {
                        backoff.reset();
                    }
                }
                Err(
                    e @ DialError::Refused {
                        status: 401 | 403, ..
                    },
                ) => {
                    tracing::error!(
                        error = %e,
                        "the server refused this node's credential (deregistered? register again)"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach the server"),
            }
            let delay = backoff.next_delay();
            tracing::debug!(?delay, "reconnecting after");
            tokio::select! {
                () = shutdown.as_mut() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn serve(
        &mut self,
        mut ws: WebSocket,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Served {
        self.connection += 1;
        let hello = AgentMessage::Hello {
            agent_version: agent_version().to_owned(),
            platform: platform(),
            hostname: hostname(),
            ip_address: self
                .dialer
                .local_ip()
                .await
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
        };
        if let Err(e) = ws.send(Message::text(hello.to_text())).await {
            return Served::Lost(e.to_string());
        }
        let every = self.config.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.as_mut() => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    return Served::Shutdown;
                }
                message = ws.next() => {
                    let message = match message {
                        Some(Ok(message)) => message,
                        Some(Err(e)) => return Served::Lost(e.to_string()),
                        None => return Served::Lost("closed".to_owned()),
                    };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            for reply in self.on_control(text.as_str()) {
                                if let Err(e) = ws.send(Message::text(reply.to_text())).await {
                                    return Served::Lost(e.to_string());
                                }
                            }
                        }
                        Message::Close(frame) => {
                            let why = frame.map_or_else(
                                || "closed by the server".to_owned(),
                                |f| format!("closed by the server: {}", f.reason),
                            );
                            return Served::Lost(why);
                        }
                        // Pings are answered by the WebSocket layer as we read.
                        Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() >= self.config.silence_timeout {
                        return Served::Lost(format!(
                            "nothing heard for {} s", last_heard.elapsed().as_secs()
                        ));
                    }
                    let sent = async {
                        ws.feed(Message::text(AgentMessage::Heartbeat.to_text())).await?;
                        ws.feed(Message::Ping(Default::default())).await?;
                        ws.flush().await
                    };
                    if let Err(e) = tokio::time::timeout(every, sent).await
                        .unwrap_or_else(|_| Err(std::io::Error::other("heartbeat timed out").into()))
                    {
                        return Served::Lost(e.to_string());
                    }
                }
            }
        }
    }

    /// Acts on a control message; returns what to answer.
    fn on_control(&mut self, text: &str) -> Vec<AgentMessage> {
        let message = match serde_json::from_str::<ServerMessage>(text) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable control message");
                return Vec::new();
            }
        };
        self.sessions.retain(|_, s| !s.task.is_finished());
        match message {
            ServerMessage::Open {
                session_id,
                document,
            } => self.open(session_id, document),
            ServerMessage::Terminate { session_id } => match self.sessions.get(&session_id) {
                Some(session) => {
                    tracing::info!(session = %session_id, "terminate");
                    let _ = session.commands.try_send(SessionCommand::Terminate);
                }
                None => tracing::debug!(session = %session_id, "terminate: not running here"),
            },
            ServerMessage::Sessions { active } => {
                // The list answers `hello`; a session opened on this connection may have been
                // started after the server read it, so only older ones are ended.
                let current = self.connection;
                for (id, session) in &self.sessions {
                    if !active.contains(id) && session.opened_on != current {
                        tracing::info!(session = %id, "the server no longer knows this session");
                        let _ = session.commands.try_send(SessionCommand::Terminate);
                    }
                }
                let lost: Vec<AgentMessage> = active
                    .into_iter()
                    .filter(|id| !self.sessions.contains_key(id))
                    .map(|session_id| {
                        tracing::warn!(session = %session_id, "the server thinks this session runs here; it does not");
                        AgentMessage::NotRunning { session_id }
                    })
                    .collect();
                return lost;
            }
            ServerMessage::Unknown => tracing::debug!(text, "ignored a control message"),
        }
        Vec::new()
    }

    fn open(&mut self, session_id: String, document: String) {
        if self.sessions.contains_key(&session_id) {
            tracing::debug!(session = %session_id, "open: already running");
            return;
        }
        let (commands, rx) = mpsc::channel(4);
        let span = tracing::info_span!("session", id = %session_id);
        let task = SessionTask {
            id: session_id.clone(),
            document,
            node_id: self.config.registration.node_id.clone(),
            dialer: self.dialer.clone(),
            config: Arc::clone(&self.session_config),
            pty: Arc::clone(&self.config.pty),
            commands: rx,
        };
        let task = tokio::spawn(task.run().instrument(span));
        self.sessions.insert(
            session_id,
            SessionHandle {
                commands,
                task,
                opened_on: self.connection,
            },
        );
    }

    async fn shutdown(&mut self) {
        let sessions: Vec<(String, SessionHandle)> = self.sessions.drain().collect();
        if sessions.is_empty() {
            tracing::info!("agent stopped");
            return;
        }
        tracing::info!(sessions = sessions.len(), "ending every session");
        for (_, session) in &sessions {
            let _ = session.commands.try_send(SessionCommand::Shutdown);
        }
        let deadline = Instant::now() + self.config.shutdown_timeout;
        for (id, mut session) in sessions {
            if tokio::time::timeout_at(deadline, &mut session.task)
                .await
                .is_err()
            {
                tracing::warn!(session = %id, "did not end in time; abandoning it");
                session.task.abort();
            }
        }
        tracing::info!("agent stopped");
    }
}
