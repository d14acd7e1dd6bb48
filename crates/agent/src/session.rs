//! One session: its agent data channel (`/v1/agent-data/{id}`), the Session Manager
//! protocol ([`portcullis_stream::Session<Agent>`]) and the shell on its PTY.
//!
//! ```text
//!  server ──text client_connected──▶ first: start the handshake; later: on_reconnect (resend)
//!         ──binary frames──────────▶ Session::on_frame ─▶ HandshakeResponse: spawn the shell
//!                                                       ─▶ input → PTY, Size → resize,
//!                                                          Flag TerminateSession → end
//!         ◀─binary frames──────────  Session::send_output ◀─ PTY output (only while the
//!                                                            session has room: backpressure)
//!  shell exits → output drained → ExitCode → ExitCode acknowledged (or drain timeout)
//!             → channel_closed → close the data channel
//!  terminate / shutdown / client's channel_closed → SIGHUP, SIGKILL after a grace period,
//!             reap → channel_closed → close
//! ```
//!
//! The data channel outlives socket drops: if it breaks, the agent redials it with backoff
//! (the shell keeps running and its output stays buffered) until the server refuses (the
//! session is over) or [`SessionConfig::reconnect_window`] passes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use portcullis_stream::{
    session_type, Agent, Config, Event, Flag, HandshakeRequest, PayloadType, SendError, Session,
    WallClock, ACK_DELAY,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::Backoff;
use crate::net::{DialError, Dialer, WebSocket};
use crate::protocol::{DataNotice, RUN_SHELL_DOCUMENT};
use crate::pty::{login_shell, PtySystem, ShellCommand, WindowSize};
use crate::shell::{Shell, ShellEvent};

/// The `AgentVersion` of the handshake. The plugin compares it part by part with four-part
/// versions (`2.3.722.0`: TerminateSession flag; `3.0.196.0`: smux; `3.1.1511.0`: no smux
/// keepalive), so it must have four numeric parts and claim the features we behave like.
pub const HANDSHAKE_AGENT_VERSION: &str = "3.3.0.0";

/// Tuning of sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The protocol's settings. The agent's defaults: AWS's, except no resend limit (AWS's
    /// agent has none; a dead client is the server's idle timeout's business) and output
    /// messages of up to 32 KiB instead of 1 KiB (clients read any payload length; with
    /// 1 KiB, per-message costs held bulk output to a third of ssh's), so the outgoing
    /// buffer holds 1,024 of them (32 MiB at most while a client is away).
    pub stream: Config,
    /// Between SIGHUP and SIGKILL when a session is ended.
    pub kill_grace: Duration,
    /// After the shell exits, how long to wait for the rest of its output when something
    /// else still holds the terminal.
    pub exit_output_grace: Duration,
    /// After the exit code is sent, how long to wait for the client to acknowledge it (and
    /// so all output before it) before `channel_closed` (the plugin exits as soon as it
    /// reads it).
    pub drain_timeout: Duration,
    /// How long to keep redialling a broken data channel.
    pub reconnect_window: Duration,
    /// First redial delay (doubles, jittered, up to 5 s).
    pub reconnect_initial: Duration,
    /// The shell to run; `None`: the agent user's login shell ([`login_shell`]).
    pub shell: Option<ShellCommand>,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            stream: Config {
                max_resend_attempts: u32::MAX,
                max_payload_size: 32 * 1024,
                outgoing_capacity: 1024,
                id_seed: rand::random(),
                ack_delay: ACK_DELAY,
                ..Config::default()
            },
            kill_grace: Duration::from_secs(2),
            exit_output_grace: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            reconnect_window: Duration::from_secs(60),
            reconnect_initial: Duration::from_millis(250),
            shell: None,
        }
    }
}

/// What the agent can tell a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    /// The server ended it (`terminate`, or not in `sessions`).
    Terminate,
    /// The agent is stopping.
    Shutdown,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    ShellExited,
    Terminated,
    Shutdown,
    ClientClosed,
    ClientTerminated,
    Failed(String),
    SpawnFailed(String),
    Unsupported(String),
    DataChannelGone(String),
}

impl End {
    /// The `Output` of the `channel_closed` (the plugin prints it; empty: its usual
    /// "Exiting session with sessionId" line).
    fn output(&self) -> String {
        match self {
            End::ShellExited
            | End::Terminated
            | End::ClientClosed
            | End::ClientTerminated
            | End::DataChannelGone(_) => String::new(),
            End::Shutdown => "The Portcullis agent on this node is stopping.".to_owned(),
            End::Failed(why) => format!("Session failed: {why}"),
            End::SpawnFailed(why) => format!("Could not start a shell: {why}"),
            End::Unsupported(document) => {
                format!("This agent does not support the session document `{document}`.")
            }
        }
    }
}

/// Everything a session task needs.
#[derive(Debug)]
pub(crate) struct SessionTask {
    pub id: String,
    pub document: String,
    pub node_id: String,
    pub dialer: Dialer,
    pub config: Arc<SessionConfig>,
    pub pty: Arc<dyn PtySystem>,
    pub commands: mpsc::Receiver<SessionCommand>,
}

impl SessionTask {
    pub async fn run(self) {
        let now = Instant::now();
        let unsupported = (!self.document.is_empty() && self.document != RUN_SHELL_DOCUMENT)
            .then(|| self.document.clone());
        let mut stream = self.config.stream.clone();
        stream.id_seed ^= rand::random::<u64>();
        let runner = Runner {
            session: Session::new(stream, WallClock::system()),
            backoff: Backoff::new(self.config.reconnect_initial, Duration::from_secs(5)),
            id: self.id,
            node_id: self.node_id,
            unsupported,
            dialer: self.dialer,
            config: self.config,
            pty: self.pty,
            commands: self.commands,
            ws: None,
            lost_since: Some(now),
            redial_at: Some(now),
            client_seen: false,
            shell: None,
            size: WindowSize::default(),
            stalled: None,
            exited_at: None,
            exit_sent: None,
        };
        runner.run().await;
    }
}

struct Runner {
    id: String,
    node_id: String,
    unsupported: Option<String>,
    dialer: Dialer,
    config: Arc<SessionConfig>,
    pty: Arc<dyn PtySystem>,
    commands: mpsc::Receiver<SessionCommand>,
    session: Session<Agent>,
    ws: Option<WebSocket>,
    /// When the data channel went away (or since when it never was).
    lost_since: Option<Instant>,
    redial_at: Option<Instant>,
    backoff: Backoff,
    client_seen: bool,
    shell: Option<Shell>,
    size: WindowSize,
    /// Output read from the PTY that the session had no room for.
    stalled: Option<Vec<u8>>,
    exited_at: Option<Instant>,
    exit_sent: Option<Instant>,
}

async fn next_message(
    ws: &mut Option<WebSocket>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn shell_event(shell: &mut Option<Shell>, read: bool) -> ShellEvent {
    match shell {
        Some(shell) => shell.next_event(read).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn std_now() -> std::time::Instant {
    std::time::Instant::now()
}

impl Runner {
    async fn run(mut self) {
        tracing::info!("session opened");
        let end = self.serve().await;
        self.finish(end).await;
    }

    async fn serve(&mut self) -> End {
        loop {
            if let Some(end) = self.progress().await {
                return end;
            }
            let timer = self.session.poll_timeout().map(Instant::from_std);
            let room = self.has_room() && self.stalled.is_none();
            let deadline = self.next_deadline();
            let redial = if self.ws.is_none() {
                self.redial_at
            } else {
                None
            };
            tokio::select! {
                command = self.commands.recv() => {
                    return match command {
                        Some(SessionCommand::Terminate) => End::Terminated,
                        Some(SessionCommand::Shutdown) | None => End::Shutdown,
                    };
                }
                message = next_message(&mut self.ws) => {
                    if let Some(end) = self.on_message(message).await {
                        return end;
                    }
                }
                event = shell_event(&mut self.shell, room) => match event {
                    ShellEvent::Output(chunk) => self.send_output(chunk).await,
                    ShellEvent::OutputEnd => tracing::debug!("end of the terminal's output"),
                    ShellEvent::Exited(code) => {
                        tracing::info!(code, "shell exited");
                        self.exited_at = Some(Instant::now());
                    }
                },
                () = sleep_until(timer) => {
                    let step = self.session.poll_timers(std_now());
                    if let Some(end) = self.handle(step).await {
                        return end;
                    }
                }
                () = sleep_until(redial) => {
                    if let Some(end) = self.redial().await {
                        return end;
                    }
                }
                () = sleep_until(deadline) => {}
            }
        }
    }

    /// Whether the outgoing buffer can take another message.
    fn has_room(&self) -> bool {
        self.session
            .unacknowledged()
            .saturating_add(self.session.held())
            < self.session.config().outgoing_capacity
    }

    fn next_deadline(&self) -> Option<Instant> {
        // Once past, the grace gives way to the output channel and acknowledgements (which
        // wake the loop themselves): waiting on a past deadline would spin.
        let output_grace = match (self.exited_at, self.exit_sent) {
            (Some(at), None) => Some(at + self.config.exit_output_grace)
                .filter(|deadline| *deadline > Instant::now()),
            _ => None,
        };
        let drain = self.exit_sent.map(|at| at + self.config.drain_timeout);
        let gone = match (&self.ws, self.lost_since) {
            (None, Some(at)) => Some(at + self.config.reconnect_window),
            _ => None,
        };
        [output_grace, drain, gone].into_iter().flatten().min()
    }

    /// Checks whether the session is over or the shell's end can be reported.
    async fn progress(&mut self) -> Option<End> {
        let now = Instant::now();
        match self.session.finished() {
            Some(portcullis_stream::Finished::Failed(failure)) => {
                return Some(End::Failed(failure.to_string()))
            }
            Some(portcullis_stream::Finished::Closed { .. }) => return Some(End::ClientClosed),
            None => {}
        }
        if let (None, Some(lost)) = (&self.ws, self.lost_since) {
            if now >= lost + self.config.reconnect_window {
                return Some(End::DataChannelGone(format!(
                    "no data channel for {} s",
                    self.config.reconnect_window.as_secs()
                )));
            }
        }
        if let (Some(exited), None, Some(shell)) =
            (self.exited_at, self.exit_sent, self.shell.as_mut())
        {
            let drained = shell.output_done()
                || (now >= exited + self.config.exit_output_grace && !shell.output_pending());
            if drained && self.stalled.is_none() {
                let code = shell.exit_code().unwrap_or(1);
                match self.session.send_exit_code(code, std_now()) {
                    Ok(step) => {
                        self.exit_sent = Some(now);
                        if let Some(end) = self.handle(step).await {
                            return Some(end);
                        }
                    }
                    Err(SendError::BufferFull { .. }) => {}
                    Err(e) => return Some(End::Failed(e.to_string())),
                }
            }
        }
        if let Some(sent) = self.exit_sent {
            // The exit code is the newest message; once it is acknowledged the client has
            // everything (every older unacknowledged message went before it on the same
            // connection), even a message whose acknowledgement a plugin lost with a socket
            // and will never repeat.
            let delivered = self.session.held() == 0 && self.session.is_newest_acknowledged();
            if delivered || now >= sent + self.config.drain_timeout {
                return Some(End::ShellExited);
            }
        }
        None
    }

    async fn send_output(&mut self, chunk: Vec<u8>) {
        match self.session.send_output(&chunk, std_now()) {
            Ok(step) => {
                // Output events are impossible here; frames only.
                self.write(step.frames).await;
            }
            Err(SendError::BufferFull { .. }) => self.stalled = Some(chunk),
            Err(e) => tracing::debug!(error = %e, "output after the session finished"),
        }
    }

    /// Retries output that found the buffer full, now that acknowledgements made room.
    async fn unstall(&mut self) {
        if self.has_room() {
            if let Some(chunk) = self.stalled.take() {
                self.send_output(chunk).await;
            }
        }
    }

    async fn on_message(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Option<End> {
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                self.lost(&e.to_string());
                return None;
            }
            None => {
                self.lost("closed");
                return None;
            }
        };
        match message {
            Message::Binary(frame) => match self.session.on_frame(&frame, std_now()) {
                Ok(step) => {
                    let end = self.handle(step).await;
                    self.unstall().await;
                    end
                }
                Err(e) => {
                    tracing::debug!(error = %e, "refused a frame");
                    None
                }
            },
            Message::Text(text) => {
                match serde_json::from_str::<DataNotice>(text.as_str()) {
                    Ok(DataNotice::ClientConnected) => return self.client_connected().await,
                    Ok(DataNotice::ClientDisconnected) => {
                        tracing::info!("client disconnected; the shell keeps running");
                    }
                    Ok(DataNotice::Unknown) | Err(_) => {
                        tracing::debug!(text = %text.as_str(), "ignored a text frame");
                    }
                }
                None
            }
            Message::Close(frame) => {
                let why = frame.map_or_else(|| "closed".to_owned(), |f| f.reason.to_string());
                self.lost(&why);
                None
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    async fn client_connected(&mut self) -> Option<End> {
        if self.client_seen {
            tracing::info!("client reconnected; resending what it has not acknowledged");
            let step = self.session.on_reconnect(std_now());
            return self.handle(step).await;
        }
        self.client_seen = true;
        if let Some(document) = &self.unsupported {
            return Some(End::Unsupported(document.clone()));
        }
        tracing::info!("client connected; starting the handshake");
        let request = match HandshakeRequest::new(
            HANDSHAKE_AGENT_VERSION,
            session_type::STANDARD_STREAM,
            serde_json::Value::Null,
        ) {
            Ok(request) => request,
            Err(e) => return Some(End::Failed(e.to_string())),
        };
        match self.session.start(&request, "", std_now()) {
            Ok(step) => self.handle(step).await,
            Err(e) => Some(End::Failed(e.to_string())),
        }
    }

    /// Writes a step's frames, then acts on its events.
    async fn handle(&mut self, step: portcullis_stream::Step) -> Option<End> {
        self.write(step.frames).await;
        for event in step.events {
            match event {
                Event::HandshakeResponse(response) => {
                    tracing::info!(client = %response.client_version, "handshake complete");
                    if let Err(why) = self.spawn_shell() {
                        return Some(End::SpawnFailed(why));
                    }
                }
                Event::Data(data) => match data.payload_type {
                    PayloadType::Output => {
                        if let Some(shell) = self.shell.as_mut() {
                            shell.write(data.payload);
                        }
                    }
                    PayloadType::Size => match data.size() {
                        Ok(size) => self.resize(size.cols, size.rows),
                        Err(e) => tracing::debug!(error = %e, "unreadable terminal size"),
                    },
                    PayloadType::Flag => match data.flag() {
                        Ok(Flag::TerminateSession) => return Some(End::ClientTerminated),
                        Ok(flag) => tracing::debug!(?flag, "ignored a flag"),
                        Err(e) => tracing::debug!(error = %e, "unreadable flag"),
                    },
                    other => tracing::debug!(payload_type = ?other, "ignored a message"),
                },
                Event::ChannelClosed(_) => return Some(End::ClientClosed),
                Event::Failed(failure) => return Some(End::Failed(failure.to_string())),
                Event::PublicationPaused => tracing::debug!("publication paused"),
                Event::PublicationResumed => tracing::debug!("publication resumed"),
                Event::HandshakeRequest(_) | Event::HandshakeComplete(_) => {}
            }
        }
        None
    }

    fn spawn_shell(&mut self) -> Result<(), String> {
        if self.shell.is_some() {
            return Ok(());
        }
        let command = self.config.shell.clone().unwrap_or_else(login_shell);
        let chunk = self.session.config().max_payload_size;
        let shell = Shell::start(self.pty.as_ref(), &command, self.size, chunk)
            .map_err(|e| format!("`{}`: {e}", command.program.display()))?;
        tracing::info!(pid = shell.pid(), shell = %command.program.display(), "shell started");
        self.shell = Some(shell);
        Ok(())
    }

    fn resize(&mut self, cols: u32, rows: u32) {
        let Some(size) = WindowSize::from_cells(cols, rows) else {
            tracing::debug!(cols, rows, "ignored a terminal size");
            return;
        };
        self.size = size;
        if let Some(shell) = &self.shell {
            if let Err(e) = shell.resize(size) {
                tracing::debug!(error = %e, "resizing the PTY");
            }
        }
    }

    async fn write(&mut self, frames: Vec<Vec<u8>>) {
        if frames.is_empty() {
            return;
        }
        let Some(ws) = self.ws.as_mut() else {
            // Kept in the session's buffer; resent on reconnect.
            return;
        };
        let mut result = Ok(());
        for frame in frames {
            result = ws.feed(Message::binary(frame)).await;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = ws.flush().await;
        }
        if let Err(e) = result {
            self.lost(&e.to_string());
        }
    }

    fn lost(&mut self, why: &str) {
        if self.ws.take().is_some() {
            tracing::warn!(reason = why, "data channel lost; redialling");
            let now = Instant::now();
            self.lost_since = Some(now);
            self.redial_at = Some(now + self.backoff.next_delay());
        }
    }

    async fn redial(&mut self) -> Option<End> {
        match self.dialer.websocket(&["v1", "agent-data", &self.id]).await {
            Ok(ws) => {
                tracing::debug!("data channel open");
                self.ws = Some(ws);
                self.lost_since = None;
                self.redial_at = None;
                self.backoff.reset();
                None
            }
            Err(DialError::Refused { status, body }) if matches!(status, 401 | 403 | 404 | 410) => {
                Some(End::DataChannelGone(format!(
                    "the server refused the data channel (HTTP {status}): {body}"
                )))
            }
            Err(e) => {
                tracing::warn!(error = %e, "data channel");
                self.redial_at = Some(Instant::now() + self.backoff.next_delay());
                None
            }
        }
    }

    async fn finish(mut self, end: End) {
        match &end {
            End::ShellExited => {
                if let Some(shell) = &self.shell {
                    shell.hang_up();
                }
            }
            _ => {
                if let Some(shell) = self.shell.as_mut() {
                    shell.terminate(self.config.kill_grace).await;
                }
            }
        }
        let step = self
            .session
            .close(&self.id, &self.node_id, &end.output(), std_now());
        self.write(step.frames).await;
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
        }
        match end {
            End::Failed(why) | End::SpawnFailed(why) | End::DataChannelGone(why) => {
                tracing::warn!(reason = %why, "session ended");
            }
            End::Unsupported(document) => {
                tracing::warn!(%document, "session refused: unsupported document");
            }
            other => tracing::info!(reason = ?other, "session ended"),
        }
    }
}
