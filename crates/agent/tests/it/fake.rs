//! A fake Portcullis server: the three endpoints the agent uses, in process, on port 0.
//! Control channels are pumped by a task (so pings are answered) and handed to the test as
//! channels of JSON; agent data channels are handed over raw, and the test plays relay and
//! client on them ([`crate::client::Client`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const NODE_ID: &str = "mi-0123456789abcdef0";
pub const CREDENTIAL: &str = "s3cr3t-credential";

struct Shared {
    controls: mpsc::UnboundedSender<Control>,
    data: mpsc::UnboundedSender<(String, WebSocket)>,
    /// Session ids whose agent data channel is refused with 404.
    refused: Mutex<HashSet<String>>,
    /// The next answer to a registration.
    register_reply: Mutex<(StatusCode, Value)>,
    registrations: mpsc::UnboundedSender<Value>,
}

pub struct Fake {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    controls: mpsc::UnboundedReceiver<Control>,
    data: mpsc::UnboundedReceiver<(String, WebSocket)>,
    pub registrations: mpsc::UnboundedReceiver<Value>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One control channel, as the server sees it.
pub struct Control {
    pub authorization: String,
    incoming: mpsc::UnboundedReceiver<Value>,
    outgoing: mpsc::UnboundedSender<Option<Value>>,
}

impl Control {
    /// The next JSON message from the agent.
    pub async fn recv(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(20), self.incoming.recv())
            .await
            .expect("a control message within 20 s")
            .expect("the control channel is open")
    }

    /// The next message of this type, skipping others (heartbeats).
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self.recv().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    pub fn send(&self, message: Value) {
        self.outgoing
            .send(Some(message))
            .expect("control pump alive");
    }

    /// Closes the socket from the server's side.
    pub fn close(&self) {
        let _ = self.outgoing.send(None);
    }

    /// Waits until the agent closes the channel (or 20 s).
    pub async fn closed(&mut self) {
        let wait = async { while self.incoming.recv().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("the control channel closed within 20 s");
    }
}

/// The `Authorization` header, if it is the node's credential.
fn authorized(headers: &HeaderMap) -> Option<String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (auth == format!("Bearer {NODE_ID}:{CREDENTIAL}")).then_some(auth)
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "unknown node or wrong credential").into_response()
}

async fn control(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(authorization) = authorized(&headers) else {
        return forbidden();
    };
    upgrade.on_upgrade(move |mut socket| async move {
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let (outgoing, mut out_rx) = mpsc::unbounded_channel::<Option<Value>>();
        let _ = shared.controls.send(Control {
            authorization,
            incoming,
            outgoing,
        });
        loop {
            tokio::select! {
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        let value: Value = serde_json::from_str(text.as_str()).expect("JSON from the agent");
                        let _ = in_tx.send(value);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                out = out_rx.recv() => match out {
                    Some(Some(value)) => {
                        if socket.send(Message::Text(value.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                    Some(None) | None => {
                        let _ = socket.send(Message::Close(None)).await;
                        break;
                    }
                },
            }
        }
    })
}

async fn agent_data(
    State(shared): State<Arc<Shared>>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if authorized(&headers).is_none() {
        return forbidden();
    }
    if shared.refused.lock().unwrap().contains(&session_id) {
        return (StatusCode::NOT_FOUND, "no such session").into_response();
    }
    upgrade.on_upgrade(move |socket| async move {
        let _ = shared.data.send((session_id, socket));
    })
}

async fn register(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let _ = shared.registrations.send(body);
    let (status, reply) = shared.register_reply.lock().unwrap().clone();
    (status, Json(reply)).into_response()
}

impl Fake {
    pub async fn start() -> Fake {
        Fake::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Fake {
        let (controls_tx, controls) = mpsc::unbounded_channel();
        let (data_tx, data) = mpsc::unbounded_channel();
        let (reg_tx, registrations) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            controls: controls_tx,
            data: data_tx,
            refused: Mutex::new(HashSet::new()),
            register_reply: Mutex::new((
                StatusCode::OK,
                json!({"NodeId": NODE_ID, "Credential": CREDENTIAL}),
            )),
            registrations: reg_tx,
        });
        let app = Router::new()
            .route("/v1/control", get(control))
            .route("/v1/agent-data/{session_id}", get(agent_data))
            .route("/v1/nodes/register", post(register))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake {
            addr,
            shared,
            controls,
            data,
            registrations,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next control channel the agent opens.
    pub async fn control(&mut self) -> Control {
        tokio::time::timeout(Duration::from_secs(20), self.controls.recv())
            .await
            .expect("a control channel within 20 s")
            .unwrap()
    }

    /// The next agent data channel, which must be for `session_id`.
    pub async fn data_channel(&mut self, session_id: &str) -> WebSocket {
        let (id, socket) = tokio::time::timeout(Duration::from_secs(20), self.data.recv())
            .await
            .expect("an agent data channel within 20 s")
            .unwrap();
        assert_eq!(id, session_id);
        socket
    }

    pub fn refuse_data_channel(&self, session_id: &str) {
        self.shared
            .refused
            .lock()
            .unwrap()
            .insert(session_id.to_owned());
    }

    pub fn set_register_reply(&self, status: StatusCode, reply: Value) {
        *self.shared.register_reply.lock().unwrap() = (status, reply);
    }
}
