//! The `portcullis` binary as a subprocess: `session start|terminate|list` without a TTY,
//! and the `session-manager-plugin` argument contract (env-var handoff and inline JSON).
//! The argument parsing itself is tested directly too, so it is covered even when the binary
//! has not been built.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use portcullis_client::channel::{Channel, End, Input};
use portcullis_client::plugin::{self, PluginCommand};
use portcullis_client::{StartSession, StreamGrant};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::agent::{AgentEvent, TestAgent};
use crate::world::{portcullis_binary, Captured, World, NODE, REGION};

/// A command with alice's credentials in the environment, and nothing from the real HOME.
fn command(program: &Path, world: &World) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", world.dir.path())
        .env("AWS_ACCESS_KEY_ID", &world.key.0)
        .env("AWS_SECRET_ACCESS_KEY", &world.key.1)
        .env("AWS_REGION", REGION)
        .env("PORTCULLIS_STATE_DIR", world.state_dir())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(mut cmd: Command, stdin: &[u8]) -> Ran {
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the command finished")
        .unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const RESPONSE: &str = r#"{"SessionId":"alice-0123456789abcdef0","TokenValue":"tok","StreamUrl":"ws://127.0.0.1:9/v1/data-channel/alice-0123456789abcdef0?role=publish_subscribe"}"#;

#[test]
fn plugin_arguments_env_var_handoff() {
    let params = json!({"Target": NODE}).to_string();
    let argv = args(&[
        "session-manager-plugin",
        "AWS_SSM_START_SESSION_RESPONSE",
        "eu-west-1",
        "StartSession",
        "",
        &params,
        "http://127.0.0.1:8080",
    ]);
    let cmd = plugin::parse(&argv, |name| {
        (name == "AWS_SSM_START_SESSION_RESPONSE").then(|| RESPONSE.to_owned())
    })
    .unwrap();
    let PluginCommand::Start(start) = cmd else {
        panic!("{cmd:?}")
    };
    assert_eq!(start.grant.session_id, "alice-0123456789abcdef0");
    assert_eq!(start.grant.token_value, "tok");
    assert!(start
        .grant
        .stream_url
        .starts_with("ws://127.0.0.1:9/v1/data-channel/"));
    assert_eq!(start.region, "eu-west-1");
    assert_eq!(start.profile, None, "an empty profile is no profile");
    assert_eq!(start.target, NODE);
    assert_eq!(start.endpoint_url.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(
        start.response_env.as_deref(),
        Some("AWS_SSM_START_SESSION_RESPONSE")
    );
    assert!(!start.legacy);
}

#[test]
fn plugin_arguments_inline_json_and_legacy() {
    let params = json!({"Target": NODE, "DocumentName": "AWS-StartSSHSession"}).to_string();
    let argv = args(&[
        "session-manager-plugin",
        RESPONSE,
        "us-east-1",
        "StartSession",
        "dev",
        &params,
        "https://ssm.us-east-1.amazonaws.com",
    ]);
    let PluginCommand::Start(start) = plugin::parse(&argv, |_| None).unwrap() else {
        panic!()
    };
    assert_eq!(start.profile.as_deref(), Some("dev"));
    assert_eq!(start.response_env, None);
    assert_eq!(start.parameters["DocumentName"], "AWS-StartSSHSession");

    // The four-argument form of old CLIs.
    let argv = args(&[
        "session-manager-plugin",
        RESPONSE,
        "us-east-1",
        "StartSession",
    ]);
    let PluginCommand::Start(start) = plugin::parse(&argv, |_| None).unwrap() else {
        panic!()
    };
    assert!(start.legacy);
    assert_eq!((start.profile, start.endpoint_url), (None, None));

    // Other operations and bad responses.
    let argv = args(&["p", RESPONSE, "us-east-1", "ResumeSession", "", "{}", "x"]);
    assert_eq!(
        plugin::parse(&argv, |_| None).unwrap().message().as_deref(),
        Some("Invalid Operation")
    );
    let argv = args(&[
        "p",
        "{\"SessionId\":1}",
        "us-east-1",
        "StartSession",
        "",
        "{}",
        "x",
    ]);
    let e = plugin::parse(&argv, |_| None).unwrap_err();
    assert!(
        e.to_string().starts_with("Cannot perform start session: "),
        "{e}"
    );
    // The variable named but unset: an empty response.
    let argv = args(&[
        "p",
        "AWS_SSM_START_SESSION_RESPONSE_X",
        "r",
        "StartSession",
        "",
        "{}",
        "x",
    ]);
    assert!(plugin::parse(&argv, |_| None).is_err());
}

async fn start_session(world: &World) -> StreamGrant {
    world
        .client()
        .start_session(&StartSession {
            target: NODE.into(),
            ..StartSession::default()
        })
        .await
        .unwrap()
}

fn grant_json(grant: &StreamGrant) -> String {
    json!({"SessionId": grant.session_id, "TokenValue": grant.token_value, "StreamUrl": grant.stream_url})
        .to_string()
}

/// `session-manager-plugin` (a symlink to the binary) as the AWS CLI runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_mode_subprocess() {
    let Some(bin) = portcullis_binary() else {
        return;
    };
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let links = tempfile::tempdir().unwrap();
    let plugin_path: PathBuf = links.path().join("session-manager-plugin");
    std::os::unix::fs::symlink(&bin, &plugin_path).unwrap();

    let mut cmd = command(&plugin_path, &world);
    cmd.arg("--version");
    let ran = run(cmd, b"").await;
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "1.2.764.0\n"));

    // The env-var handoff (what a current AWS CLI does with this version).
    let grant = start_session(&world).await;
    agent
        .wait(|e| *e == AgentEvent::Opened(grant.session_id.clone()))
        .await;
    let mut cmd = command(&plugin_path, &world);
    cmd.env("AWS_SSM_START_SESSION_RESPONSE", grant_json(&grant))
        .args([
            "AWS_SSM_START_SESSION_RESPONSE",
            REGION,
            "StartSession",
            "",
            &json!({"Target": NODE}).to_string(),
            &world.endpoint(),
        ]);
    let ran = run(cmd, b"echo hi\nexit 4\n").await;
    let id = &grant.session_id;
    assert_eq!(ran.code, 4, "{} / {}", ran.stdout, ran.stderr);
    assert_eq!(
        ran.stdout,
        format!("\nStarting session with SessionId: {id}\n$ echo hi\nexit 4\n\n\nExiting session with sessionId: {id}.\n\n")
    );

    // Inline JSON, through `portcullis session-manager-plugin`, with a named profile for
    // ResumeSession read from the files under HOME.
    let aws = world.dir.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[dev]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            world.key.0, world.key.1
        ),
    )
    .unwrap();
    let grant = start_session(&world).await;
    agent
        .wait(|e| *e == AgentEvent::Opened(grant.session_id.clone()))
        .await;
    let mut cmd = command(&bin, &world);
    cmd.args([
        "session-manager-plugin",
        &grant_json(&grant),
        REGION,
        "StartSession",
        "dev",
        &json!({"Target": NODE}).to_string(),
        &world.endpoint(),
    ]);
    // End of input sends Ctrl-D: the remote shell exits 0.
    let ran = run(cmd, b"ls\n").await;
    assert_eq!(ran.code, 0, "{} / {}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("$ ls\n"), "{}", ran.stdout);
    assert!(ran.stdout.ends_with(&format!(
        "Exiting session with sessionId: {}.\n\n",
        grant.session_id
    )));
}

/// `portcullis session start|list|terminate` without a TTY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_commands_subprocess() {
    let Some(bin) = portcullis_binary() else {
        return;
    };
    let world = World::start().await;
    let mut agent = TestAgent::start(&world).await;
    let endpoint = world.endpoint();

    let mut cmd = command(&bin, &world);
    cmd.args([
        "session",
        "start",
        "--target",
        NODE,
        "--endpoint-url",
        &endpoint,
        "--reason",
        "ci",
    ]);
    let ran = run(cmd, b"whoami\nexit 5\n").await;
    assert_eq!(ran.code, 5, "{} / {}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .starts_with("\nStarting session with SessionId: alice-"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("$ whoami\nexit 5\n"), "{}", ran.stdout);
    let id = ran
        .stdout
        .split("SessionId: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(ran
        .stdout
        .ends_with(&format!("\n\nExiting session with sessionId: {id}.\n\n")));

    // --quiet: just the remote output.
    let mut cmd = command(&bin, &world);
    cmd.args([
        "session",
        "start",
        "-q",
        "--target",
        NODE,
        "--endpoint-url",
        &endpoint,
    ]);
    let ran = run(cmd, b"exit\n").await;
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "$ exit\n"));

    // A refusal: the AWS CLI's words, exit 254.
    let mut cmd = command(&bin, &world);
    cmd.args([
        "session",
        "start",
        "--target",
        "i-00000000000000000",
        "--endpoint-url",
        &endpoint,
    ]);
    let ran = run(cmd, b"").await;
    assert_eq!(ran.code, 254);
    assert!(
        ran.stderr.contains("An error occurred (TargetNotConnected) when calling the StartSession operation: i-00000000000000000 is not connected."),
        "{}",
        ran.stderr
    );

    // A running session (this process's client): list it, terminate it from the CLI.
    let api = world.client();
    let grant = api
        .start_session(&StartSession {
            target: NODE.into(),
            ..StartSession::default()
        })
        .await
        .unwrap();
    let running = grant.session_id.clone();
    agent
        .wait(|e| *e == AgentEvent::Opened(running.clone()))
        .await;
    let (_tx, mut rx) = mpsc::channel::<Input>(8);
    let out = Captured::default();
    let (mut o, mut e) = (out.clone(), Captured::default());
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), Default::default());
    let script = async {
        out.wait_for("$ ").await;
        let mut cmd = command(&bin, &world);
        cmd.args(["session", "list", "--endpoint-url", &endpoint]);
        let ran = run(cmd, b"").await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let lines: Vec<&str> = ran.stdout.lines().collect();
        assert!(lines[0].starts_with("SESSION ID"), "{}", ran.stdout);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&running) && l.contains(" Connected ")),
            "{}",
            ran.stdout
        );
        assert!(!ran.stdout.contains(&id), "an ended session is not active");

        let mut cmd = command(&bin, &world);
        cmd.args([
            "session",
            "terminate",
            &running,
            "--endpoint-url",
            &endpoint,
        ]);
        let ran = run(cmd, b"").await;
        assert_eq!(
            (ran.code, ran.stdout.trim()),
            (0, format!("Session {running} terminated.").as_str())
        );
    };
    let (outcome, ()) = tokio::join!(channel.run(&mut rx, &mut o, &mut e), script);
    assert_eq!(
        outcome.unwrap().end,
        End::Closed {
            output: String::new()
        }
    );

    let mut cmd = command(&bin, &world);
    cmd.args([
        "session",
        "list",
        "--state",
        "History",
        "--json",
        "--endpoint-url",
        &endpoint,
    ]);
    let ran = run(cmd, b"").await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let listed: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let sessions = listed["Sessions"].as_array().unwrap();
    for want in [&id, &running] {
        let s = sessions.iter().find(|s| s["SessionId"] == **want).unwrap();
        assert_eq!(s["Status"], "Terminated");
    }
    let reasons: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["Reason"].as_str())
        .collect();
    assert_eq!(reasons, ["ci"]);
}
