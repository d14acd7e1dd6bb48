//! One session against the real agent (`portcullis-agent`: a PTY shell) instead of the test
//! agent: a command runs, the window size reaches the PTY, the client's socket is cut and
//! resumed, and the shell's exit code comes back.

use std::time::Duration;

use portcullis_agent::{AgentConfig, Registration, SessionConfig, ShellCommand};
use portcullis_client::channel::{Channel, ChannelOptions, End, Input};
use portcullis_client::{ApiError, SsmClient, StartSession, StreamGrant};
use portcullis_stream::SizeData;
use tokio::sync::mpsc;

use crate::proxy::Proxy;
use crate::world::{Captured, World, NODE};

/// StartSession, retried while the agent's control channel comes up.
pub async fn start_when_online(api: &SsmClient) -> StreamGrant {
    let input = StartSession {
        target: NODE.into(),
        ..StartSession::default()
    };
    for _ in 0..200 {
        match api.start_session(&input).await {
            Ok(grant) => return grant,
            Err(ApiError::Aws { code, .. }) if code == "TargetNotConnected" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the agent never came online");
}

/// The real agent (`portcullis_agent::run`) in this process, registered as the world's
/// node, giving each session `/bin/sh` on a real PTY (`PS1='$ '`, `TERM=dumb`).
pub struct RealAgent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), portcullis_agent::AgentError>>>,
    _home: tempfile::TempDir,
}

impl RealAgent {
    pub fn start(world: &World) -> RealAgent {
        let home = tempfile::tempdir().unwrap();
        let mut config = AgentConfig::new(Registration {
            server: world.endpoint(),
            node_id: world.node.clone(),
            credential: world.node_credential.clone(),
            ca_certificates: None,
        });
        config.session = SessionConfig {
            shell: Some(ShellCommand {
                program: "/bin/sh".into(),
                home: home.path().to_owned(),
                env: vec![
                    ("PATH".into(), "/usr/bin:/bin".into()),
                    ("HOME".into(), home.path().display().to_string()),
                    ("TERM".into(), "dumb".into()),
                    ("PS1".into(), "$ ".into()),
                    ("ENV".into(), String::new()),
                ],
            }),
            ..SessionConfig::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(portcullis_agent::run(config, async {
            let _ = stopped.await;
        }));
        RealAgent {
            stop: Some(stop),
            task: Some(task),
            _home: home,
        }
    }

    /// Whether the agent's task is still running (it has not crashed or returned).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Shuts the agent down (every session ended cleanly) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_on_the_real_agent() {
    let world = World::start().await;
    let agent = RealAgent::start(&world);

    let proxy = Proxy::start(world.addr).await;
    let api = SsmClient::new(&world.config(&proxy.endpoint())).unwrap();
    let grant = start_when_online(&api).await;
    let (tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let options = ChannelOptions {
        reconnect_attempts: 20,
        reconnect_initial_delay: Duration::from_millis(50),
        reconnect_max_delay: Duration::from_millis(400),
        ..ChannelOptions::default()
    };
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), options);
    let script = async {
        tx.send(Input::Size(SizeData {
            cols: 101,
            rows: 33,
        }))
        .await
        .unwrap();
        tx.send(Input::Data(b"echo sum=$((6*7))\n".to_vec()))
            .await
            .unwrap();
        out.wait_for("sum=42").await;
        tx.send(Input::Data(b"stty size\n".to_vec())).await.unwrap();
        out.wait_for("33 101").await;

        proxy.refuse(true);
        proxy.cut();
        // Typed while disconnected; the shell's answer comes after the resume.
        tx.send(Input::Data(b"echo after-$((1+1))-cut\n".to_vec()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.refuse(false);
        out.wait_for("after-2-cut").await;
        tx.send(Input::Data(b"exit 3\n".to_vec())).await.unwrap();
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    let outcome = outcome.unwrap();
    assert_eq!(
        outcome.end,
        End::Closed {
            output: String::new()
        },
        "{}",
        out.text()
    );
    assert_eq!(outcome.exit_code, Some(3), "{}", out.text());
    assert_eq!(
        out.text().matches("after-2-cut").count(),
        1,
        "{}",
        out.text()
    );
    agent.stop().await;
}
