//! `aws-ssm-bridge` (crates.io), an independent client of the Session Manager data channel,
//! against our server and the real agent: it calls StartSession itself (through the AWS SDK,
//! endpoint set to our server), opens the stream URL we return (endpoint policy `AllowAny`:
//! `ws://` on 127.0.0.1), runs commands on the agent's PTY and reads their output; then its
//! socket is cut (twice) and it resumes the same session with ResumeSession.

use std::time::Duration;

use aws_ssm_bridge::{
    EndpointPolicy, ReconnectConfig, ReconnectEvent, ReconnectingSession, SessionConfig,
    SessionManager,
};
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::proxy::Proxy;
use crate::real_agent::RealAgent;
use crate::world::{Captured, World, NODE, REGION};

/// A bridge `SessionManager` for alice, its API calls going to `endpoint`.
async fn manager(world: &World, endpoint: &str) -> SessionManager {
    let credentials = aws_credential_types::Credentials::new(
        world.key.0.clone(),
        world.key.1.clone(),
        None,
        None,
        "test",
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .load()
        .await;
    SessionManager::from_conf(&config)
}

/// `ReconnectingSession::connect_with`, retried while the agent's control channel comes up.
async fn connect(manager: &SessionManager) -> ReconnectingSession {
    let config = ReconnectConfig {
        max_attempts: 40,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        session: SessionConfig {
            endpoint_policy: EndpointPolicy::AllowAny,
            ready_timeout: Duration::from_secs(20),
            ..SessionConfig::new(NODE)
        },
    };
    let mut last = String::new();
    for _ in 0..200 {
        match ReconnectingSession::connect_with(NODE, config.clone(), manager.clone()).await {
            Ok(session) => return session,
            // TargetNotConnected until the agent is online.
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("the bridge could not start a session: {last}");
}

/// The next event that `pick` accepts, within 20 s.
async fn next_event<T>(
    what: &str,
    events: &mut broadcast::Receiver<ReconnectEvent>,
    mut pick: impl FnMut(&ReconnectEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    eprintln!("bridge event: {e:?}");
                    if let Some(found) = pick(&e) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("no more events"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn resumed(events: &mut broadcast::Receiver<ReconnectEvent>) -> String {
    next_event("the resume", events, |e| match e {
        ReconnectEvent::Resumed { session_id, .. } => Some(session_id.clone()),
        ReconnectEvent::Reconnected { session_id, .. } => {
            panic!("a new session ({session_id}) replaced the old one instead of a resume")
        }
        ReconnectEvent::GaveUp { reason, .. } => panic!("the bridge gave up: {reason}"),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_ssm_bridge_runs_a_shell_and_resumes_after_a_cut() {
    let world = World::start().await;
    let agent = RealAgent::start(&world);
    // API calls and the data channel both go through the proxy (the stream URL is built
    // from the Host the StartSession request named).
    let proxy = Proxy::start(world.addr).await;
    let manager = manager(&world, &proxy.endpoint()).await;
    let session = connect(&manager).await;
    let mut events = session.events();
    let out = Captured::default();
    let mut output = session.output();
    let sink = out.clone();
    let reader = tokio::spawn(async move {
        while let Some(chunk) = output.next().await {
            sink.0.lock().unwrap().extend_from_slice(&chunk);
        }
    });
    let first = session.current().await.expect("a session");
    first.wait_ready().await.unwrap();
    let id = first.id().to_owned();
    assert!(id.starts_with("alice-"), "{id}");
    assert!(first.agent_version().is_some());
    drop(first);

    // A command on the PTY, and its output.
    session.send(&b"echo bridge-$((6*7))\r"[..]).await.unwrap();
    out.wait_for("bridge-42").await;

    // Cut 1: what the bridge sends just before the cut is swallowed, so only its own
    // retransmission over the resumed channel can deliver it.
    proxy.blackhole(true);
    session.send(&b"echo lost-$((3+4))\r"[..]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.cut();
    proxy.blackhole(false);
    next_event("the first disconnection", &mut events, |e| {
        matches!(e, ReconnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    assert_eq!(resumed(&mut events).await, id);
    out.wait_for("lost-7").await;

    // Cut 2, with nothing in flight either way: after the resume the bridge may send again
    // (it holds input until the service or the agent lets it), and the shell answers.
    proxy.cut();
    next_event("the second disconnection", &mut events, |e| {
        matches!(e, ReconnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    assert_eq!(resumed(&mut events).await, id);
    session
        .send(&b"echo after-$((1+1))-cuts\r"[..])
        .await
        .unwrap();
    out.wait_for("after-2-cuts").await;

    session.send(&b"exit 5\r"[..]).await.unwrap();
    let reason = next_event("the end", &mut events, |e| match e {
        ReconnectEvent::Disconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, aws_ssm_bridge::CloseReason::AgentClosed { .. }),
        "{reason:?}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let text = out.text();
    for (word, times) in [("bridge-42", 1), ("lost-7", 1), ("after-2-cuts", 1)] {
        assert_eq!(text.matches(word).count(), times, "{word} in {text:?}");
    }

    // One session, never replaced, now in the history as Terminated.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let history = world
        .client()
        .describe_sessions("History", &[])
        .await
        .unwrap();
    let statuses: Vec<(String, String)> = history
        .iter()
        .map(|s| {
            (
                s["SessionId"].as_str().unwrap().to_owned(),
                s["Status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(statuses, vec![(id, "Terminated".to_owned())]);
    agent.stop().await;
}
