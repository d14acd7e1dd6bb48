//! A small agent for the tests: the control channel of CHANNELS.md, and per session an agent
//! data channel driving `Session<Agent>` that echoes input back as output. A line `exit [N]`
//! (or Ctrl-D on an empty line) ends the session like a shell: exit code N, then
//! `channel_closed`. It reports what it sees on a channel, and takes commands per session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use portcullis_stream::{
    session_type, Agent, Config, Event, HandshakeRequest, PayloadType, Session, WallClock,
};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::world::World;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    Opened(String),
    ClientConnected {
        session: String,
        first: bool,
    },
    ClientDisconnected(String),
    /// Output sent on command (`AgentCommand::Output`).
    OutputSent(String),
    Closed(String),
}

#[derive(Debug)]
pub enum AgentCommand {
    /// Send this output now (whether or not a client is there).
    Output(Vec<u8>),
    /// End the session as a terminate from the server does.
    Close,
}

type Ws = WebSocketStream<TcpStream>;

pub struct TestAgent {
    pub events: mpsc::UnboundedReceiver<AgentEvent>,
    commands: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<AgentCommand>>>>,
    /// Output the agent sends while no client is attached (then dropped by the relay).
    pub on_disconnect: Arc<Mutex<Option<Vec<u8>>>>,
}

pub async fn connect(world: &World, path: &str) -> Ws {
    let mut request = format!("ws://{}{path}", world.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}:{}", world.node, world.node_credential)
            .parse()
            .unwrap(),
    );
    let tcp = TcpStream::connect(world.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    ws
}

impl TestAgent {
    /// Connects the control channel and waits until the server counts the node online.
    pub async fn start(world: &World) -> TestAgent {
        let (tx, events) = mpsc::unbounded_channel();
        let commands: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<AgentCommand>>>> =
            Arc::default();
        let on_disconnect: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let mut control = connect(world, "/v1/control").await;
        control
            .send(Message::Text(
                json!({"type": "hello", "agent_version": "0.1.0", "platform": "Linux",
                       "hostname": "node-1", "ip_address": "127.0.0.1"})
                .to_string()
                .into(),
            ))
            .await
            .unwrap();
        // `sessions` answers `hello` once the node is recorded as connected.
        loop {
            match control.next().await.unwrap().unwrap() {
                Message::Text(t) if t.contains("\"sessions\"") => break,
                _ => {}
            }
        }
        let (addr, node, credential) = (
            world.addr,
            world.node.clone(),
            world.node_credential.clone(),
        );
        let world_for_sessions = AgentTarget {
            addr,
            node,
            credential,
        };
        let cmds = commands.clone();
        let away = on_disconnect.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = control.next().await {
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(&t).unwrap();
                let id = v["session_id"].as_str().unwrap_or_default().to_owned();
                match v["type"].as_str() {
                    Some("open") => {
                        let (ctx, crx) = mpsc::unbounded_channel();
                        cmds.lock().unwrap().insert(id.clone(), ctx);
                        let _ = tx.send(AgentEvent::Opened(id.clone()));
                        tokio::spawn(run_session(
                            world_for_sessions.clone(),
                            id,
                            tx.clone(),
                            crx,
                            away.clone(),
                        ));
                    }
                    Some("terminate") => {
                        if let Some(c) = cmds.lock().unwrap().get(&id) {
                            let _ = c.send(AgentCommand::Close);
                        }
                    }
                    _ => {}
                }
            }
        });
        TestAgent {
            events,
            commands,
            on_disconnect,
        }
    }

    pub fn command(&self, session: &str, command: AgentCommand) {
        let commands = self.commands.lock().unwrap();
        commands.get(session).unwrap().send(command).unwrap();
    }

    /// Waits for an event matching `want`, skipping others.
    pub async fn wait(&mut self, want: impl Fn(&AgentEvent) -> bool) -> AgentEvent {
        let deadline = Duration::from_secs(15);
        tokio::time::timeout(deadline, async {
            loop {
                let e = self.events.recv().await.unwrap();
                if want(&e) {
                    return e;
                }
            }
        })
        .await
        .expect("agent event")
    }
}

#[derive(Clone)]
struct AgentTarget {
    addr: std::net::SocketAddr,
    node: String,
    credential: String,
}

async fn run_session(
    target: AgentTarget,
    session_id: String,
    events: mpsc::UnboundedSender<AgentEvent>,
    mut commands: mpsc::UnboundedReceiver<AgentCommand>,
    on_disconnect: Arc<Mutex<Option<Vec<u8>>>>,
) {
    let mut request = format!("ws://{}/v1/agent-data/{session_id}", target.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}:{}", target.node, target.credential)
            .parse()
            .unwrap(),
    );
    let tcp = TcpStream::connect(target.addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    let config = Config {
        max_resend_attempts: u32::MAX,
        ..Config::default()
    };
    let mut session = Session::<Agent>::new(config, WallClock::system());
    let mut started = false;
    let mut line: Vec<u8> = Vec::new();
    let mut closing: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        let mut out: Vec<Vec<u8>> = Vec::new();
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["type"].as_str() {
                        Some("client_connected") => {
                            let now = Instant::now();
                            if started {
                                out.extend(session.on_reconnect(now).frames);
                            } else {
                                let request = HandshakeRequest::new(
                                    "3.3.987.0",
                                    session_type::STANDARD_STREAM,
                                    Value::Null,
                                )
                                .unwrap();
                                out.extend(session.start(&request, "", now).unwrap().frames);
                                out.extend(session.send_output(b"$ ", now).unwrap().frames);
                            }
                            let _ = events.send(AgentEvent::ClientConnected {
                                session: session_id.clone(),
                                first: !started,
                            });
                            started = true;
                        }
                        Some("client_disconnected") => {
                            let _ = events.send(AgentEvent::ClientDisconnected(session_id.clone()));
                            let away = on_disconnect.lock().unwrap().take();
                            if let Some(data) = away {
                                out.extend(session.send_output(&data, Instant::now()).unwrap().frames);
                                let _ = events.send(AgentEvent::OutputSent(
                                    String::from_utf8_lossy(&data).into_owned(),
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Binary(frame))) => {
                    let now = Instant::now();
                    let Ok(step) = session.on_frame(&frame, now) else { continue };
                    out.extend(step.frames);
                    for event in step.events {
                        let Event::Data(data) = event else { continue };
                        if data.payload_type != PayloadType::Output || closing.is_some() {
                            continue;
                        }
                        // Echo, as a terminal does.
                        out.extend(session.send_output(&data.payload, now).unwrap().frames);
                        for &b in &data.payload {
                            match b {
                                b'\r' | b'\n' => {
                                    let text = String::from_utf8_lossy(&line).trim().to_owned();
                                    line.clear();
                                    if let Some(rest) = text.strip_prefix("exit") {
                                        let code = rest.trim().parse().unwrap_or(0);
                                        out.extend(session.send_exit_code(code, now).unwrap().frames);
                                        closing = Some(now);
                                        break;
                                    }
                                }
                                0x04 if line.is_empty() => {
                                    closing = Some(now);
                                    break;
                                }
                                b => line.push(b),
                            }
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            cmd = commands.recv() => match cmd {
                Some(AgentCommand::Output(data)) => {
                    out.extend(session.send_output(&data, Instant::now()).unwrap().frames);
                    let _ = events.send(AgentEvent::OutputSent(String::from_utf8_lossy(&data).into_owned()));
                }
                Some(AgentCommand::Close) => closing = Some(Instant::now()),
                None => {}
            },
            _ = tick.tick() => {
                let now = Instant::now();
                out.extend(session.poll_timers(now).frames);
                if let Some(since) = closing {
                    // Close once everything is acknowledged (or after a grace period).
                    if session.unacknowledged() == 0 || since.elapsed() > Duration::from_secs(3) {
                        out.extend(session.close(&session_id, &target.node, "", now).frames);
                        for f in out.drain(..) {
                            let _ = ws.send(Message::Binary(f.into())).await;
                        }
                        let _ = ws.close(None).await;
                        let _ = events.send(AgentEvent::Closed(session_id.clone()));
                        return;
                    }
                }
            }
        }
        for f in out {
            if ws.send(Message::Binary(f.into())).await.is_err() {
                break;
            }
        }
    }
    let _ = events.send(AgentEvent::Closed(session_id));
}
