//! The WebSocket channels of `docs/CHANNELS.md`: each agent's control channel, each session's
//! agent data channel and client data channel, and the relay between the last two.
//!
//! The relay forwards Session Manager frames unchanged. It reads just enough of them (the
//! message type) to notice `channel_closed`, the end of a session, and hands the agent's
//! output frames to the session's log ([`crate::session_log`]). Frames that arrive while
//! the other side is absent are dropped: the sender's retransmission recovers them, which is
//! what makes `ResumeSession` lose nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use portcullis_core::model::Node;
use portcullis_stream::message::{ClientMessage, MessageId, MessageType};
use portcullis_stream::open::OpenDataChannel;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::session_log::Recorder;
use crate::AppState;

/// How long a client has to send `OpenDataChannel` after connecting.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Outgoing frames queued per socket before the sender waits.
const QUEUE: usize = 256;
/// Each socket reads this many bytes at a time (frames may be larger). The WebSocket
/// library's default, 128 KiB allocated up front, was most of an idle session's memory
/// (two sockets per session).
const READ_BUFFER: usize = 16 * 1024;

type Outbox = mpsc::Sender<Message>;

/// One session's two ends.
#[derive(Default)]
struct Relay {
    /// The agent's data channel, with the connection id that owns the slot.
    agent: Option<(u64, Outbox)>,
    client: Option<(u64, Outbox)>,
    /// Whether a client has ever attached (the first attach starts the handshake).
    client_seen: bool,
    /// Whether the agent has ever attached its data channel (it got the `open`).
    agent_seen: bool,
    /// The session's log, across the agent's reconnections.
    recorder: Option<Recorder>,
}

/// Live channels, by node and by session.
#[derive(Default)]
pub struct Hub {
    agents: Mutex<HashMap<String, (u64, Outbox)>>,
    relays: Mutex<HashMap<String, Relay>>,
    next_id: std::sync::atomic::AtomicU64,
    counts: RelayCounts,
}

/// What the relay has carried and refused since the server started (for `/metrics`).
#[derive(Default)]
struct RelayCounts {
    frames_to_agent: AtomicU64,
    bytes_to_agent: AtomicU64,
    frames_to_client: AtomicU64,
    bytes_to_client: AtomicU64,
    refused_data_channels: AtomicU64,
}

/// The channels' figures at one moment, for `/metrics`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChannelFigures {
    /// Nodes with a control channel open.
    pub agents_connected: u64,
    /// Sessions with a client data channel attached.
    pub clients_attached: u64,
    /// Sessions with the agent's data channel attached.
    pub agent_channels_attached: u64,
    pub frames_to_agent: u64,
    pub bytes_to_agent: u64,
    pub frames_to_client: u64,
    pub bytes_to_client: u64,
    /// Client data channels closed at once: no, a used, an expired or another session's
    /// token.
    pub refused_data_channels: u64,
    /// Bytes written to session logs, and failed writes (filled in from
    /// [`crate::session_log::SessionLogs::figures`]).
    pub session_log_bytes: u64,
    pub session_log_failures: u64,
}

impl Hub {
    /// The figures `/metrics` shows.
    pub fn figures(&self) -> ChannelFigures {
        let agents_connected = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len() as u64;
        let (clients_attached, agent_channels_attached) = self
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .fold((0, 0), |(c, a), r| {
                (
                    c + u64::from(r.client.is_some()),
                    a + u64::from(r.agent.is_some()),
                )
            });
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        ChannelFigures {
            agents_connected,
            clients_attached,
            agent_channels_attached,
            frames_to_agent: load(&self.counts.frames_to_agent),
            bytes_to_agent: load(&self.counts.bytes_to_agent),
            frames_to_client: load(&self.counts.frames_to_client),
            bytes_to_client: load(&self.counts.bytes_to_client),
            refused_data_channels: load(&self.counts.refused_data_channels),
            session_log_bytes: 0,
            session_log_failures: 0,
        }
    }

    fn count(frames: &AtomicU64, bytes: &AtomicU64, len: usize) {
        frames.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn with_relay<R>(&self, session: &str, f: impl FnOnce(&mut Relay) -> R) -> R {
        let mut relays = self
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(relays.entry(session.to_owned()).or_default())
    }

    fn drop_relay(&self, session: &str) -> Option<Relay> {
        let mut relays = self
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        relays.remove(session)
    }

    fn agent(&self, node: &str) -> Option<Outbox> {
        let agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        agents.get(node).map(|(_, tx)| tx.clone())
    }

    fn relay_agent(&self, session: &str) -> Option<Outbox> {
        let relays = self
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        relays
            .get(session)
            .and_then(|r| r.agent.as_ref().map(|(_, tx)| tx.clone()))
    }

    /// Whether an agent data channel has ever attached to this session here.
    fn agent_seen(&self, session: &str) -> bool {
        let relays = self
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        relays.get(session).is_some_and(|r| r.agent_seen)
    }

    /// Tells a node's agent to open its data channel for a new session.
    pub fn open_session(&self, node: &str, session: &str, document: &str) {
        if let Some(tx) = self.agent(node) {
            let msg = json!({"type": "open", "session_id": session, "document": document});
            let _ = tx.try_send(Message::Text(msg.to_string().into()));
        }
    }

    /// Tells the agent to end a session; the client hears `channel_closed` through the relay.
    pub fn terminate_session(&self, node: &str, session: &str) {
        if let Some(tx) = self.agent(node) {
            let msg = json!({"type": "terminate", "session_id": session});
            let _ = tx.try_send(Message::Text(msg.to_string().into()));
        }
    }
}

fn node_credential(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (node, credential) = value.strip_prefix("Bearer ")?.split_once(':')?;
    Some((node.to_owned(), credential.to_owned()))
}

async fn authenticate_node(state: &AppState, headers: &HeaderMap) -> Result<Node, Response> {
    let Some((node, credential)) = node_credential(headers) else {
        return Err((StatusCode::UNAUTHORIZED, "a node credential is required\n").into_response());
    };
    match state.service.authenticate_node(&node, &credential).await {
        Ok(Some(node)) => Ok(node),
        Ok(None) => {
            Err((StatusCode::FORBIDDEN, "unknown node or wrong credential\n").into_response())
        }
        Err(e) => {
            tracing::error!(error = %e, "node authentication failed");
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// Writes queued messages to the socket until the queue closes or the socket fails. What is
/// queued together goes out in one write (a keystroke's echo and its acknowledgement
/// arrive together; two writes would wake the reader twice).
fn spawn_writer(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
) {
    tokio::spawn(async move {
        let mut batch = Vec::new();
        'write: while rx.recv_many(&mut batch, QUEUE).await > 0 {
            for msg in batch.drain(..) {
                let close = matches!(msg, Message::Close(_));
                if sink.feed(msg).await.is_err() || close {
                    break 'write;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

// --- Control channel -------------------------------------------------------------------

/// `GET /v1/control`: one per node, authenticated with the node's credential.
pub async fn control(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let node = match authenticate_node(&state, &headers).await {
        Ok(node) => node,
        Err(resp) => return resp,
    };
    ws.read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| control_loop(state, node, socket))
}

async fn control_loop(state: Arc<AppState>, node: Node, socket: WebSocket) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    spawn_writer(sink, rx);
    let id = state.hub.next_id();
    {
        let mut agents = state
            .hub
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, old)) = agents.insert(node.id.clone(), (id, tx.clone())) {
            let _ = old.try_send(Message::Close(None));
        }
    }
    if let Err(e) = state.service.set_node_connected(&node.id, true).await {
        tracing::error!(node = %node.id, error = %e, "could not record the node as connected");
    }
    tracing::info!(node = %node.id, "agent connected");
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    match v.get("type").and_then(Value::as_str) {
                        Some("hello") => {
                            let active = state.service.active_sessions_on(&node.id).await.unwrap_or_default();
                            // Sessions started while this agent was away (StartSession needs
                            // only a recent heartbeat, e.g. just after a server restart) never
                            // reached it: open them now, before the list that names them.
                            for s in active.iter().filter(|s| !state.hub.agent_seen(&s.id)) {
                                let open = json!({"type": "open", "session_id": s.id, "document": s.document});
                                let _ = tx.send(text(open)).await;
                            }
                            let ids: Vec<&str> = active.iter().map(|s| s.id.as_str()).collect();
                            let _ = tx.send(text(json!({"type": "sessions", "active": ids}))).await;
                            let _ = state.service.node_heartbeat(&node.id).await;
                        }
                        Some("heartbeat") => {
                            let _ = state.service.node_heartbeat(&node.id).await;
                        }
                        Some("not_running") => {
                            // The agent restarted and lost this session. A node can only
                            // end its own sessions.
                            let id = v.get("session_id").and_then(Value::as_str).unwrap_or_default();
                            let active = state.service.active_sessions_on(&node.id).await.unwrap_or_default();
                            if active.iter().any(|s| s.id == id) {
                                end_session(&state, id).await;
                                tracing::info!(session = %id, node = %node.id, "the agent lost this session: ended");
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let still_ours = {
        let mut agents = state
            .hub
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if agents.get(&node.id).is_some_and(|(i, _)| *i == id) {
            agents.remove(&node.id);
            true
        } else {
            false
        }
    };
    if still_ours {
        let _ = state.service.set_node_connected(&node.id, false).await;
        tracing::info!(node = %node.id, "agent disconnected");
    }
}

// --- Agent data channel ----------------------------------------------------------------

/// `GET /v1/agent-data/{session_id}`: the agent's end of one session.
pub async fn agent_data(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let node = match authenticate_node(&state, &headers).await {
        Ok(node) => node,
        Err(resp) => return resp,
    };
    match state.service.active_session_on(&session_id, &node.id).await {
        Ok(Some(_)) => ws
            .read_buffer_size(READ_BUFFER)
            .on_upgrade(move |socket| agent_loop(state, session_id, socket)),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no such active session on this node\n",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn agent_loop(state: Arc<AppState>, session: String, socket: WebSocket) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    spawn_writer(sink, rx);
    let id = state.hub.next_id();
    let (client_present, recorder) = state.hub.with_relay(&session, |r| {
        r.agent_seen = true;
        if let Some((_, old)) = r.agent.replace((id, tx.clone())) {
            let _ = old.try_send(Message::Close(None));
        }
        if r.recorder.is_none() {
            r.recorder = state
                .session_logs
                .as_ref()
                .and_then(|l| l.recorder(&session));
        }
        (r.client.is_some(), r.recorder.clone())
    });
    if client_present {
        let _ = tx.send(text(json!({"type": "client_connected"}))).await;
    }
    let mut closed_by_agent = false;
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Binary(frame)) => {
                // Only the type is read (no digest over every byte of output); a frame that
                // says `channel_closed` must also decode to end the session.
                let is_close = MessageType::peek(&frame) == Some(MessageType::ChannelClosed)
                    && ClientMessage::decode(&frame).is_ok();
                let client = state
                    .hub
                    .with_relay(&session, |r| r.client.as_ref().map(|(_, c)| c.clone()));
                if let Some(client) = client {
                    let c = &state.hub.counts;
                    Hub::count(&c.frames_to_client, &c.bytes_to_client, frame.len());
                    let _ = client.send(Message::Binary(frame.clone())).await;
                }
                // Logged whether or not a client is there to see it.
                if let Some(recorder) = &recorder {
                    recorder.record(&frame).await;
                }
                if is_close {
                    closed_by_agent = true;
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if closed_by_agent {
        end_session(&state, &session).await;
        tracing::info!(%session, "session ended by the agent");
        return;
    }
    // The socket dropped without `channel_closed`: the agent redials (its shell keeps
    // running), unless it is gone for good. Give it `agent_grace` to come back.
    let detached = {
        let mut relays = state
            .hub
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match relays.get_mut(&session) {
            Some(r) if r.agent.as_ref().is_some_and(|(i, _)| *i == id) => {
                r.agent = None;
                true
            }
            _ => false,
        }
    };
    if !detached {
        return;
    }
    tracing::info!(%session, "agent data channel dropped; waiting for it to come back");
    let grace = state.agent_grace;
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let gone = {
            let relays = state
                .hub
                .relays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            relays.get(&session).is_some_and(|r| r.agent.is_none())
        };
        if gone {
            end_session(&state, &session).await;
            tracing::info!(%session, "the agent did not come back: session ended");
        }
    });
}

/// A session was started: its node's agent is told to open the data channel, and under a
/// maximum duration ([`AppState::max_session`]) the session is ended when it is reached,
/// connected or not, by the server itself (a node cannot keep a session open past it).
pub fn session_started(state: &Arc<AppState>, node: &str, session: &str, document: &str) {
    state.hub.open_session(node, session, document);
    let Some(max) = state.max_session else {
        return;
    };
    let (state, node, session) = (Arc::clone(state), node.to_owned(), session.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(max).await;
        if state
            .service
            .session_is_active(&session)
            .await
            .unwrap_or(false)
        {
            end_by_server(&state, &node, &session, "maximum session duration reached").await;
        }
    });
}

/// Ends a session on the server's own authority (one of its timers ran out): the agent is
/// told to end it (shell killed, client told through the relay), and the end is recorded
/// even if the agent is gone.
async fn end_by_server(state: &AppState, node: &str, session: &str, why: &str) {
    tracing::info!(%session, why, "terminating the session");
    state.hub.terminate_session(node, session);
    if let Err(e) = state.service.session_ended(session).await {
        tracing::error!(%session, error = %e, "could not record the end of the session");
    }
}

/// Records the end of a session and closes its client's socket.
async fn end_session(state: &AppState, session: &str) {
    if let Err(e) = state.service.session_ended(session).await {
        tracing::error!(%session, error = %e, "could not record the end of the session");
    }
    if let Some(relay) = state.hub.drop_relay(session) {
        if let Some((_, client)) = relay.client {
            let _ = client.send(Message::Close(None)).await;
        }
    }
}

// --- Client data channel ---------------------------------------------------------------

/// A `start_publication` frame from the service, in AWS's control-message shape.
fn start_publication(connection: u64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Unique enough for a message nobody acknowledges: the time and this connection's id.
    let seed = now.as_nanos() ^ (u128::from(connection) << 64);
    ClientMessage::control(
        MessageType::StartPublication,
        MessageId::from_random(seed.to_be_bytes()),
        u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
        Vec::new(),
    )
    .encode()
}

/// `GET /v1/data-channel/{session_id}?role=publish_subscribe`: the client's end, opened with
/// AWS's `OpenDataChannel` frame and a one-time token. An `Authorization` header on the
/// upgrade (newer plugins sign it) is accepted and ignored: the token is the credential.
pub async fn client_data(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| client_loop(state, session_id, socket))
}

async fn client_loop(state: Arc<AppState>, session: String, socket: WebSocket) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    spawn_writer(sink, rx);
    // The first frame must be OpenDataChannel with a live token for this very session.
    let opened = tokio::time::timeout(OPEN_TIMEOUT, stream.next()).await;
    let token_ok = match opened {
        Ok(Some(Ok(Message::Text(t)))) => OpenDataChannel::parse(&t)
            .ok()
            .and_then(|open| state.service.redeem_stream_token(&open.token_value))
            .is_some_and(|granted_for| granted_for == session),
        _ => false,
    };
    if !token_ok {
        state
            .hub
            .counts
            .refused_data_channels
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(%session, "data channel refused: missing, used, expired or foreign token");
        let _ = tx.send(Message::Close(None)).await;
        return;
    }
    let id = state.hub.next_id();
    let (agent, first) = state.hub.with_relay(&session, |r| {
        let first = !r.client_seen;
        r.client_seen = true;
        if let Some((_, old)) = r.client.replace((id, tx.clone())) {
            let _ = old.try_send(Message::Close(None));
        }
        (r.agent.as_ref().map(|(_, tx)| tx.clone()), first)
    });
    let _ = state.service.session_client(&session, true).await;
    if !first {
        // A resumed client may publish again. No new handshake will say so, and some clients
        // (aws-ssm-bridge) hold their input until the service or the agent does; the plugin
        // ignores the message, our client resends what is unacknowledged (harmless copies).
        let _ = tx.send(Message::Binary(start_publication(id).into())).await;
    }
    if let Some(agent) = &agent {
        let _ = agent.send(text(json!({"type": "client_connected"}))).await;
    }
    tracing::info!(%session, first, "client attached");
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Binary(frame)) => {
                if let Some(agent) = state.hub.relay_agent(&session) {
                    let c = &state.hub.counts;
                    Hub::count(&c.frames_to_agent, &c.bytes_to_agent, frame.len());
                    let _ = agent.send(Message::Binary(frame)).await;
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Detach, unless a newer connection (a resume) has already taken over.
    let agent = {
        let mut relays = state
            .hub
            .relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match relays.get_mut(&session) {
            Some(r) if r.client.as_ref().is_some_and(|(i, _)| *i == id) => {
                r.client = None;
                Some(r.agent.as_ref().map(|(_, tx)| tx.clone()))
            }
            _ => None,
        }
    };
    let Some(agent) = agent else { return };
    let _ = state.service.session_client(&session, false).await;
    if let Some(agent) = agent {
        let _ = agent
            .send(text(json!({"type": "client_disconnected"})))
            .await;
    }
    tracing::info!(%session, "client detached");
    // Nobody resumes within the idle timeout: end it.
    let idle = state.idle_timeout;
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(idle).await;
        let still_detached = {
            let relays = state
                .hub
                .relays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            relays.get(&session).is_none_or(|r| r.client.is_none())
        };
        if still_detached
            && state
                .service
                .session_is_disconnected(&session)
                .await
                .unwrap_or(false)
        {
            let node = state
                .service
                .store()
                .session(&session)
                .await
                .ok()
                .flatten()
                .map(|s| s.target)
                .unwrap_or_default();
            end_by_server(&state, &node, &session, "idle timeout").await;
        }
    });
}
