//! The client library against the real server and the test agent: a session start to end,
//! terminate, list, resume after a cut with no loss, and resume from a new process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_client::channel::{Channel, ChannelOptions, End, Input, ReadyHook, SavedState};
use portcullis_client::{SsmClient, StartSession, StreamGrant};
use portcullis_stream::SizeData;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::agent::{AgentCommand, AgentEvent, TestAgent};
use crate::proxy::Proxy;
use crate::world::{Captured, World, NODE};

const SIZE: SizeData = SizeData { cols: 80, rows: 24 };

async fn start(api: &SsmClient) -> StreamGrant {
    api.start_session(&StartSession {
        target: NODE.into(),
        reason: Some("testing".into()),
        ..StartSession::default()
    })
    .await
    .unwrap()
}

fn options() -> ChannelOptions {
    ChannelOptions {
        reconnect_attempts: 20,
        reconnect_initial_delay: Duration::from_millis(50),
        reconnect_max_delay: Duration::from_millis(400),
        // Short, so a broken keepalive (no pong from the server) would show as a reconnect.
        keepalive: Duration::from_millis(400),
        ..ChannelOptions::default()
    }
}

async fn status(api: &SsmClient, state: &str, id: &str) -> Option<String> {
    let sessions = api.describe_sessions(state, &[]).await.unwrap();
    sessions
        .iter()
        .find(|s| s["SessionId"] == id)
        .map(|s| s["Status"].as_str().unwrap().to_owned())
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_type_echo_exit() {
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let api = world.client();
    let grant = start(&api).await;
    let id = grant.session_id.clone();
    agent.wait(|e| *e == AgentEvent::Opened(id.clone())).await;

    let (tx, mut rx) = mpsc::channel(64);
    let (out, err) = (Captured::default(), Captured::default());
    let (mut o, mut e) = (out.clone(), err.clone());
    // The ready hook (raw mode in the CLI) fires once, when the handshake is done.
    let ready = Arc::new(AtomicUsize::new(0));
    let counter = ready.clone();
    let opts = ChannelOptions {
        on_ready: Some(ReadyHook(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }))),
        ..options()
    };
    let channel = Channel::new(grant.clone(), Some(&api), api.tls().clone(), opts);
    let script = async {
        tx.send(Input::Size(SIZE)).await.unwrap();
        out.wait_for("$ ").await;
        assert_eq!(ready.load(Ordering::SeqCst), 1);
        tx.send(Input::Data(b"hello there\n".to_vec()))
            .await
            .unwrap();
        out.wait_for("hello there\n").await;
        // Listed while it runs, attached.
        assert_eq!(
            status(&api, "Active", &id).await.as_deref(),
            Some("Connected")
        );
        // Idle for several keepalive periods: the server answers pings, nothing reconnects.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        agent
            .wait(|e| matches!(e, AgentEvent::ClientConnected { .. }))
            .await;
        tx.send(Input::Data(b"exit\n".to_vec())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.end,
        End::Closed {
            output: String::new()
        }
    );
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(
        outcome.closing_message().unwrap(),
        format!("\n\nExiting session with sessionId: {id}.\n\n")
    );
    assert_eq!(out.text(), "$ hello there\nexit\n");
    assert_eq!(ready.load(Ordering::SeqCst), 1);
    assert_eq!(err.text(), "");
    // No reconnect happened: the agent saw exactly one client.
    while let Ok(e) = agent.events.try_recv() {
        assert!(
            !matches!(
                e,
                AgentEvent::ClientConnected { first: false, .. }
                    | AgentEvent::ClientDisconnected(_)
            ),
            "unexpected {e:?}"
        );
    }
    // Gone from the active list, in the history as Terminated.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(status(&api, "Active", &id).await, None);
    assert_eq!(
        status(&api, "History", &id).await.as_deref(),
        Some("Terminated")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_and_terminate() {
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let api = world.client();

    // The remote shell's exit code comes back.
    let grant = start(&api).await;
    agent.wait(|e| matches!(e, AgentEvent::Opened(_))).await;
    let (tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), options());
    let script = async {
        out.wait_for("$ ").await;
        tx.send(Input::Data(b"exit 7\r".to_vec())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    assert_eq!(outcome.unwrap().exit_code, Some(7));

    // TerminateSession from elsewhere: the client sees channel_closed and ends cleanly.
    let grant = start(&api).await;
    let id = grant.session_id.clone();
    agent.wait(|e| *e == AgentEvent::Opened(id.clone())).await;
    let (_tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), options());
    let other = world.client();
    let script = async {
        out.wait_for("$ ").await;
        other.terminate_session(&id).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.end,
        End::Closed {
            output: String::new()
        }
    );
    assert_eq!(outcome.exit_code, None);
    assert_eq!(
        status(&api, "History", &outcome.session_id)
            .await
            .as_deref(),
        Some("Terminated")
    );
}

/// The client's socket is cut mid-session. Input sent just before the cut is swallowed (it
/// never reaches the server), and the agent sends output while the client is away (the
/// relay drops it). After ResumeSession and a new socket, both arrive, once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_cut_loses_nothing() {
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let proxy = Proxy::start(world.addr).await;
    // API and data channel both go through the proxy (the stream URL is built from Host).
    let api = SsmClient::new(&world.config(&proxy.endpoint())).unwrap();
    let grant = start(&api).await;
    assert!(
        grant
            .stream_url
            .starts_with(&format!("ws://{}/", proxy.addr)),
        "{}",
        grant.stream_url
    );
    let id = grant.session_id.clone();
    agent.wait(|e| *e == AgentEvent::Opened(id.clone())).await;
    *agent.on_disconnect.lock().unwrap() = Some(b"while-away\r\n".to_vec());

    let (tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), options());
    let script = async {
        out.wait_for("$ ").await;
        tx.send(Input::Data(b"one\n".to_vec())).await.unwrap();
        out.wait_for("one\n").await;

        // What the client sends now is lost on the way.
        proxy.blackhole(true);
        tx.send(Input::Data(b"two\n".to_vec())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Cut, and keep the client out until the agent has sent output into the void.
        proxy.refuse(true);
        proxy.cut();
        agent
            .wait(|e| *e == AgentEvent::ClientDisconnected(id.clone()))
            .await;
        agent.wait(|e| matches!(e, AgentEvent::OutputSent(_))).await;
        tx.send(Input::Data(b"three\n".to_vec())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            status(&world.client(), "Active", &id).await.as_deref(),
            Some("Disconnected")
        );
        proxy.blackhole(false);
        proxy.refuse(false);

        agent
            .wait(|e| matches!(e, AgentEvent::ClientConnected { first: false, .. }))
            .await;
        out.wait_for("three\n").await;
        out.wait_for("while-away").await;
        tx.send(Input::Data(b"exit\n".to_vec())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.end,
        End::Closed {
            output: String::new()
        }
    );
    let text = out.text();
    for word in ["one\n", "two\n", "three\n", "while-away", "exit\n"] {
        assert_eq!(count(&text, word), 1, "{word:?} in {text:?}");
    }
    // Input order is kept: the agent echoed two before three.
    assert!(text.find("two\n") < text.find("three\n"), "{text:?}");
}

/// Detached (SIGTERM/SIGHUP in the CLI), then resumed by a new client from the saved state:
/// the agent's output from the gap arrives, nothing from before is repeated, input flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_resume_from_saved_state() {
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let api = world.client();
    let grant = start(&api).await;
    let id = grant.session_id.clone();
    agent.wait(|e| *e == AgentEvent::Opened(id.clone())).await;
    let state_file = world.state_dir().join(format!("{id}.json"));

    let (tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let opts = ChannelOptions {
        state_file: Some(state_file.clone()),
        ..options()
    };
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), opts.clone());
    let script = async {
        out.wait_for("$ ").await;
        tx.send(Input::Data(b"first\n".to_vec())).await.unwrap();
        out.wait_for("first\n").await;
        tx.send(Input::Detach("SIGTERM".into())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    assert_eq!(
        outcome.unwrap().end,
        End::Detached {
            reason: "SIGTERM".into()
        }
    );
    let saved = SavedState::load(&state_file).expect("state saved on detach");
    assert_eq!(saved.session_id, id);
    assert!(saved.expected >= 3, "{saved:?}");

    agent
        .wait(|e| *e == AgentEvent::ClientDisconnected(id.clone()))
        .await;
    agent.command(&id, AgentCommand::Output(b"while-away\r\n".to_vec()));
    agent.wait(|e| matches!(e, AgentEvent::OutputSent(_))).await;
    assert_eq!(
        status(&api, "Active", &id).await.as_deref(),
        Some("Disconnected")
    );

    // A new client (as `portcullis session resume ID` builds it).
    let grant = api.resume_session(&id).await.unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let out2 = Captured::default();
    let (mut o, mut e) = (out2.clone(), Captured::default());
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), opts).restore(&saved, SIZE);
    let script = async {
        out2.wait_for("while-away").await;
        tx.send(Input::Data(b"second\n".to_vec())).await.unwrap();
        out2.wait_for("second\n").await;
        tx.send(Input::Data(b"exit 3\n".to_vec())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.end,
        End::Closed {
            output: String::new()
        }
    );
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(out2.text(), "while-away\r\nsecond\nexit 3\n");
    assert!(
        !state_file.exists(),
        "the state file goes when the session closes"
    );
}

/// A session that ends while the client is away cannot be resumed: the client says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_of_an_ended_session_is_refused() {
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let proxy = Proxy::start(world.addr).await;
    let api = SsmClient::new(&world.config(&proxy.endpoint())).unwrap();
    let grant = start(&api).await;
    let id = grant.session_id.clone();
    agent.wait(|e| *e == AgentEvent::Opened(id.clone())).await;
    let (_tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), options());
    let direct = world.client();
    let script = async {
        out.wait_for("$ ").await;
        proxy.refuse(true);
        proxy.cut();
        agent
            .wait(|e| *e == AgentEvent::ClientDisconnected(id.clone()))
            .await;
        direct.terminate_session(&id).await.unwrap();
        agent.wait(|e| *e == AgentEvent::Closed(id.clone())).await;
        proxy.refuse(false);
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    match outcome.unwrap().end {
        End::Lost { reason } => assert!(
            reason.starts_with("An error occurred (")
                && reason.contains("when calling the ResumeSession operation"),
            "{reason}"
        ),
        other => panic!("expected Lost, got {other:?}"),
    }
    let listed: Vec<Value> = direct.describe_sessions("History", &[]).await.unwrap();
    assert!(listed.iter().any(|s| s["SessionId"] == id));
}
