//! The control channel: hello, heartbeats, credentials, reconnection, `sessions`.

use std::time::Duration;

use serde_json::json;

use crate::fake::{CREDENTIAL, NODE_ID};
use crate::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_heartbeat_and_credential() {
    let mut h = Harness::start(|c| c.heartbeat_interval = Duration::from_millis(200)).await;
    assert_eq!(
        h.control.authorization,
        format!("Bearer {NODE_ID}:{CREDENTIAL}")
    );
    assert_eq!(h.hello["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h.hello["platform"], "Linux");
    assert_eq!(h.hello["ip_address"], "127.0.0.1");
    assert!(!h.hello["hostname"].as_str().unwrap().is_empty());
    assert_eq!(h.control.recv().await, json!({"type": "heartbeat"}));
    assert_eq!(h.control.recv().await, json!({"type": "heartbeat"}));
    // Unknown messages are ignored, and the channel lives on.
    h.control.send(json!({"type": "something-new", "x": 1}));
    h.control
        .send(json!({"type": "terminate", "session_id": "nobody"}));
    assert_eq!(h.control.recv().await, json!({"type": "heartbeat"}));
    h.stop().await;
    h.control.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_reconnects_and_sessions_survive_until_the_server_forgets_them() {
    let mut h = Harness::start(|_| {}).await;
    let session = "TestUserA-0000000000000c0de";
    let mut c = h.open(session).await;

    // The server drops the control channel; the agent comes back with a new hello.
    h.control.close();
    h.control.closed().await;
    h.control = h.fake.control().await;
    assert_eq!(h.control.recv_type("hello").await["type"], "hello");
    // Meanwhile the session never noticed.
    c.run("echo alive-$((3*3))", "during").await;
    assert!(c.text().contains("alive-9"));

    // The server still knows the session: nothing happens.
    h.control
        .send(json!({"type": "sessions", "active": [session]}));
    c.run("echo still-$((4*4))", "known").await;
    assert!(c.text().contains("still-16"));

    // Once more, and this time the server has forgotten it: the agent ends it.
    h.control.close();
    h.control = h.fake.control().await;
    h.control.recv_type("hello").await;
    h.control.send(json!({"type": "sessions", "active": []}));
    c.expect_closed().await;
    c.expect_socket_closed().await;
    h.stop().await;
}

/// The server reads its `sessions` list when `hello` arrives; a session started while it
/// does gets its `open` before a list that does not name it. The agent keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_after_hello_survives_a_list_read_before_it() {
    let mut h = Harness::start(|_| {}).await;
    let mut c = h.open("TestUserA-00000000000000b0b").await;
    h.control.send(json!({"type": "sessions", "active": []}));
    c.run("echo kept-$((5*5))", "kept").await;
    assert!(c.text().contains("kept-25"));
    assert!(c.closed.is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_waits_for_a_server_that_is_away() {
    // Point the agent at a port nobody listens on, then bring the server up there.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
    let mut config = portcullis_agent::AgentConfig::new(portcullis_agent::Registration {
        server: format!("http://{addr}"),
        node_id: NODE_ID.to_owned(),
        credential: CREDENTIAL.to_owned(),
        ca_certificates: None,
    });
    config.backoff_initial = Duration::from_millis(100);
    config.backoff_cap = Duration::from_millis(400);
    let agent = tokio::spawn(portcullis_agent::run(config, async {
        let _ = stop.await;
    }));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut fake = crate::fake::Fake::start_on(addr).await;
    let mut control = fake.control().await;
    assert_eq!(control.recv_type("hello").await["type"], "hello");
    stop_tx.send(()).unwrap();
    agent.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_data_channel_ends_the_session_on_the_agent() {
    let mut h = Harness::start(|_| {}).await;
    let session = "TestUserA-00000000000000404";
    h.fake.refuse_data_channel(session);
    h.control
        .send(json!({"type": "open", "session_id": session}));
    // The agent gives up on it (the fake never hands a socket over) and the control channel
    // stays healthy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.control
        .send(json!({"type": "open", "session_id": "TestUserA-00000000000000405"}));
    let ws = h.fake.data_channel("TestUserA-00000000000000405").await;
    let mut c = crate::client::Client::attach(ws).await;
    c.run("true", "ok").await;
    h.stop().await;
}
