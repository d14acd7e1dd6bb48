//! Reproductions of misbehaviour in the server's channels, at the WebSocket level (no
//! client library involved), kept so the fixed bugs stay fixed.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portcullis_client::{StartSession, StreamGrant};
use portcullis_stream::message::{ClientMessage, MessageId, MessageType};
use portcullis_stream::{ChannelClosed, OpenDataChannel};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::agent::connect;
use crate::world::{World, NODE};

/// The agent ends a session (`channel_closed`, then closes its data channel) while the
/// client hangs up at the same moment, as AWS's plugin does (`os.Exit(0)` on
/// `channel_closed`). The client's detach used to be able to overwrite the agent's
/// Terminated with Disconnected; the store now never changes an ended session's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_stay_ended_when_both_ends_hang_up_together() {
    let world = World::start().await;
    let mut control = connect(&world, "/v1/control").await;
    control
        .send(Message::Text(json!({"type": "hello"}).to_string().into()))
        .await
        .unwrap();
    while !matches!(control.next().await, Some(Ok(Message::Text(t))) if t.contains("sessions")) {}
    let api = world.client();
    for _ in 0..30 {
        let StreamGrant {
            session_id,
            token_value,
            stream_url,
        } = api
            .start_session(&StartSession {
                target: NODE.into(),
                ..StartSession::default()
            })
            .await
            .unwrap();
        let mut agent = connect(&world, &format!("/v1/agent-data/{session_id}")).await;
        let tcp = tokio::net::TcpStream::connect(world.addr).await.unwrap();
        let (mut client, _) = tokio_tungstenite::client_async(stream_url.as_str(), tcp)
            .await
            .unwrap();
        let open = OpenDataChannel::client("r", &token_value, "c", "1.2.764.0");
        client
            .send(Message::Text(open.to_json().into()))
            .await
            .unwrap();
        while !matches!(agent.next().await, Some(Ok(Message::Text(t))) if t.contains("client_connected"))
        {
        }
        let closed = ChannelClosed {
            session_id: session_id.clone(),
            ..ChannelClosed::default()
        };
        let frame = ClientMessage::control(
            MessageType::ChannelClosed,
            MessageId::NIL,
            1,
            closed.to_json(),
        );
        agent
            .send(Message::Binary(frame.encode().into()))
            .await
            .unwrap();
        let _ = tokio::join!(agent.close(None), client.close(None));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let active = api.describe_sessions("Active", &[]).await.unwrap();
    let stuck: Vec<String> = active
        .iter()
        .map(|s| format!("{} {}", s["SessionId"], s["Status"]))
        .collect();
    assert!(stuck.is_empty(), "ended sessions still active: {stuck:#?}");
}

/// The agent's data channel drops for a moment (a network blip between node and server).
/// The server used to treat any end of the agent's socket as the end of the session, so the
/// agent's redial got 404 and the client's ResumeSession was refused. Now the session ends
/// only on `channel_closed`, or when the agent has not come back within `agent_grace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_on_the_agents_side_does_not_end_the_session() {
    use portcullis_agent::{AgentConfig, Registration};
    use portcullis_client::channel::{Channel, ChannelOptions, End, Input};

    let world = World::start().await;
    let proxy = crate::proxy::Proxy::start(world.addr).await;
    let config = AgentConfig::new(Registration {
        server: proxy.endpoint(),
        node_id: world.node.clone(),
        credential: world.node_credential.clone(),
        ca_certificates: None,
    });
    tokio::spawn(portcullis_agent::run(config, std::future::pending()));
    let api = world.client();
    let mut grant = None;
    for _ in 0..200 {
        if let Ok(g) = api
            .start_session(&StartSession {
                target: NODE.into(),
                ..StartSession::default()
            })
            .await
        {
            grant = Some(g);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let out = crate::world::Captured::default();
    let (mut o, mut e) = (out.clone(), crate::world::Captured::default());
    let channel = Channel::new(
        grant.unwrap(),
        Some(&api),
        api.tls().clone(),
        ChannelOptions::default(),
    );
    let script = async {
        tx.send(Input::Data(b"echo one-$((1))\n".to_vec()))
            .await
            .unwrap();
        out.wait_for("one-1").await;
        proxy.cut(); // the agent's control and data channels drop; it redials at once
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.send(Input::Data(b"echo two-$((2))\n".to_vec()))
            .await
            .unwrap();
        out.wait_for("two-2").await;
        tx.send(Input::Data(b"exit\n".to_vec())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    assert_eq!(
        outcome.unwrap().end,
        End::Closed {
            output: String::new()
        }
    );
}
