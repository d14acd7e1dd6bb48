//! Shell sessions end to end: the protocol, the PTY, the process tree.

use std::time::Duration;

use serde_json::json;

use crate::client::{numbers_after, try_numbers_after, wait_gone, Client};
use crate::{run_number, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_command_echoes_and_answers() {
    let mut h = Harness::start(|_| {}).await;
    let mut c = h.open("TestUserA-0123456789abcdef0").await;
    assert_eq!(
        c.session.agent_version(),
        Some(portcullis_agent::HANDSHAKE_AGENT_VERSION)
    );
    let n = run_number();
    let from = c.output.len();
    c.type_text(&format!("echo hello-$(({n}+1))\r")).await;
    // The terminal echoes the line as typed, then the shell answers with the sum.
    let echoed = c.expect_from(from, &format!("echo hello-$(({n}+1))")).await;
    c.expect_from(echoed, &format!("hello-{}", n + 1)).await;
    // The environment a login shell should have.
    c.run(
        "echo term=$TERM login=$(shopt -q login_shell && echo yes)",
        "env",
    )
    .await;
    let text = c.text();
    assert!(text.contains("term=xterm-256color login=yes"), "{text}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_reports_the_code_and_closes_the_channel() {
    let mut h = Harness::start(|_| {}).await;
    for (session, command, code) in [
        ("TestUserA-00000000000000e00", "exit", 0),
        ("TestUserA-00000000000000e07", "exit 7", 7),
    ] {
        let mut c = h.open(session).await;
        c.run("echo pid=$$,", "pid").await;
        let pid = numbers_after(&c.text(), "pid=")[0];
        // The exit is watched through the shell's pidfd, not by a thread per shell; only a
        // kernel (or a sandbox) without `pidfd_open` gets the waiting thread.
        let pidfds = rustix::process::pidfd_open(
            rustix::process::getpid(),
            rustix::process::PidfdFlags::empty(),
        )
        .is_ok();
        assert_eq!(threads_named("pty-wait") == 0, pidfds);
        c.type_text(&format!("{command}\r")).await;
        let closed = c.expect_closed().await;
        assert_eq!(c.exit_code, Some(code), "{command}");
        assert_eq!(closed.session_id, session);
        assert_eq!(closed.output, "");
        assert_eq!(c.session.unacknowledged(), 0);
        c.expect_socket_closed().await;
        assert_eq!(
            wait_gone(&[pid], Duration::from_secs(5)).await,
            Vec::<u32>::new()
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_kills_the_shell_and_everything_it_started() {
    let mut h = Harness::start(|_| {}).await;
    let session = "TestUserA-0000000000000dead";
    let mut c = h.open(session).await;
    // Two background jobs (one ignoring SIGHUP, so only SIGKILL ends it) and a foreground
    // job, each in its own process group under job control.
    c.type_text(concat!(
        "sleep 1001 & A=$!; (trap '' HUP; exec sleep 1002) & B=$!; ",
        "echo pids=$$,$A,$B,; sh -c 'echo fg=$$,; exec sleep 1003'\r"
    ))
    .await;
    c.wait("the pids", Duration::from_secs(20), |c| {
        try_numbers_after(&c.text(), "fg=").is_some()
    })
    .await;
    let mut pids = numbers_after(&c.text(), "pids=");
    pids.extend(numbers_after(&c.text(), "fg="));
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert!(wait_gone(&pids, Duration::ZERO).await.len() == 4);

    h.control
        .send(json!({"type": "terminate", "session_id": session}));
    let closed = c.expect_closed().await;
    assert_eq!(closed.session_id, session);
    c.expect_socket_closed().await;
    assert_eq!(
        wait_gone(&pids, Duration::from_secs(5)).await,
        Vec::<u32>::new()
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_interrupts_the_foreground_job() {
    let mut h = Harness::start(|_| {}).await;
    let mut c = h.open("TestUserA-00000000000000c03").await;
    let from = c.output.len();
    c.type_text("sleep 100\r").await;
    c.expect_from(from, "sleep 100").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.type_text("\x03").await;
    // Without the interrupt this would wait 100 s.
    let at = c.run("echo rc=$?,", "after").await;
    let text = c.text();
    assert!(text[from..at].contains("rc=130,"), "{text}");
    // And the shell is still ours.
    c.run("echo still-$((1+1))", "usable").await;
    assert!(c.text().contains("still-2"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_changes_stty_size() {
    let mut h = Harness::start(|_| {}).await;
    let mut c = h.open("TestUserA-00000000000005123").await;
    let from = c.output.len();
    c.run("stty size", "before").await;
    assert!(c.text()[from..].contains("24 80"), "{}", c.text());
    c.resize(132, 43).await;
    let from = c.output.len();
    c.run("stty size", "after").await;
    assert!(c.text()[from..].contains("43 132"), "{}", c.text());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_drop_mid_output_loses_nothing() {
    // A small window: while the client is away the agent stops reading the PTY after 16
    // messages, and `seq` blocks instead of output being lost.
    let mut h = Harness::start(|c| c.session.stream.outgoing_capacity = 16).await;
    let mut c = h.open("TestUserA-000000000000dr0b5").await;
    let from = c.output.len();
    c.type_text("seq 1 20000; echo seq-done-$((40+2))\r").await;
    c.expect_from(from, "\r\n1000\r\n").await;
    let expected_at_drop = c.session.expected_sequence_number();
    c.disconnect().await;
    // Let the agent fill its window and resend into the void for a while.
    let until = std::time::Instant::now() + Duration::from_millis(800);
    c.wait("time to pass", Duration::from_secs(5), |_| {
        std::time::Instant::now() >= until
    })
    .await;
    assert!(!c.text().contains("seq-done-42"));
    // The agent went on (resending into the void) but never beyond its window: it stopped
    // reading the PTY instead.
    let dropped = c
        .dropped_max_seq
        .expect("the agent kept sending while the client was away");
    assert!(
        dropped < expected_at_drop + 16,
        "sequence {dropped} sent with only {expected_at_drop} acknowledged"
    );
    c.reconnect().await;
    c.expect_from(from, "seq-done-42").await;
    // Lines end in \r\n; readline's own sequences end in \r.
    let text = c.text()[from..].to_owned();
    let numbers: Vec<u32> = text
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .map(|l| l.parse().unwrap())
        .collect();
    let expected: Vec<u32> = (1..=20_000).collect();
    if numbers != expected {
        let first_bad = numbers
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(numbers.len().min(expected.len()));
        panic!(
            "{} lines, first difference at index {first_bad}: {:?}",
            numbers.len(),
            numbers.get(first_bad.saturating_sub(2)..first_bad + 3)
        );
    }
    // Still a working session afterwards.
    c.run("echo fine", "later").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_terminate_flag_and_channel_closed_end_the_session() {
    let mut h = Harness::start(|_| {}).await;
    // The client's own channel_closed ends the session on the agent.
    let mut c = h.open("TestUserA-00000000000000cc1").await;
    c.run("echo pid=$$,", "pid").await;
    let pid = numbers_after(&c.text(), "pid=")[0];
    let closed = portcullis_stream::ClientMessage::control(
        portcullis_stream::MessageType::ChannelClosed,
        portcullis_stream::MessageId::from_random([7; 16]),
        1_700_000_000_000,
        b"{}".to_vec(),
    );
    c.send_raw(closed.encode()).await;
    c.expect_socket_closed().await;
    assert_eq!(
        wait_gone(&[pid], Duration::from_secs(5)).await,
        Vec::<u32>::new()
    );

    // Flag TerminateSession does too, and the agent says channel_closed.
    let mut c = h.open("TestUserA-00000000000000cc2").await;
    c.run("echo pid=$$,", "pid").await;
    let pid = numbers_after(&c.text(), "pid=")[0];
    c.flag(portcullis_stream::Flag::TerminateSession).await;
    c.expect_closed().await;
    assert_eq!(
        wait_gone(&[pid], Duration::from_secs(5)).await,
        Vec::<u32>::new()
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_session_cleanly() {
    let mut h = Harness::start(|_| {}).await;
    let mut clients = Vec::new();
    for id in ["TestUserA-000000000000005d1", "TestUserA-000000000000005d2"] {
        let mut c = h.open(id).await;
        c.run("echo pid=$$,", "pid").await;
        let pid = numbers_after(&c.text(), "pid=")[0];
        clients.push((c, pid));
    }
    let stopping = tokio::spawn({
        let mut h = h;
        async move {
            h.stop().await;
            h
        }
    });
    // Both clients are read as they go, as the server's relay would.
    async fn closes(c: &mut Client) -> portcullis_stream::ChannelClosed {
        let closed = c.expect_closed().await;
        c.expect_socket_closed().await;
        closed
    }
    let [(c1, pid1), (c2, pid2)] = &mut clients[..] else {
        unreachable!()
    };
    let (closed1, closed2) = tokio::join!(closes(c1), closes(c2));
    for closed in [closed1, closed2] {
        assert!(closed.output.contains("stopping"), "{closed:?}");
    }
    assert_eq!(
        wait_gone(&[*pid1, *pid2], Duration::from_secs(5)).await,
        Vec::<u32>::new()
    );
    let mut h = stopping.await.unwrap();
    h.control.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_document_is_refused_with_a_message() {
    let mut h = Harness::start(|_| {}).await;
    let session = "TestUserA-0000000000000port";
    h.control.send(json!({
        "type": "open",
        "session_id": session,
        "document": "AWS-StartPortForwardingSession",
    }));
    let ws = h.fake.data_channel(session).await;
    let mut c = Client::attach_raw(ws).await;
    let closed = c.expect_closed().await;
    assert!(
        closed.output.contains("AWS-StartPortForwardingSession"),
        "{closed:?}"
    );
    h.stop().await;
}

/// CPU time (user + system), in clock ticks, of this process's threads named `name`.
fn cpu_ticks(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with(&format!("({name}")) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15; the state after the `)` is field 3.
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total
}

/// The agent's tasks run on this test's own runtime threads, so their CPU time can be told
/// apart from the other tests'.
#[test]
fn the_shell_exits_while_the_client_is_away_and_nothing_is_lost() {
    const THREADS: &str = "exit-away";
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREADS)
        .enable_all()
        .build()
        .unwrap()
        .block_on(exit_while_away(THREADS));
}

async fn exit_while_away(threads: &str) {
    // A 4-message window: the shell's output outruns it, the shell exits with output
    // still queued, and the agent must wait (idle) for the client to come back.
    let mut h = Harness::start(|c| c.session.stream.outgoing_capacity = 4).await;
    let mut c = h.open("TestUserA-0000000000000a3a7").await;
    c.run("echo pid=$$,", "pid").await;
    let pid = numbers_after(&c.text(), "pid=")[0];
    let from = c.output.len();
    c.type_text("sleep 0.3; seq 1 2000; exit 5\r").await;
    c.expect_from(from, "exit 5").await;
    c.disconnect().await;
    // The shell finishes and exits with its output still queued in the agent.
    c.wait("the shell's exit", Duration::from_secs(10), |_| {
        crate::client::is_gone(pid)
    })
    .await;
    let before = cpu_ticks(threads);
    let until = std::time::Instant::now() + Duration::from_secs(1);
    c.wait("time to pass", Duration::from_secs(5), |_| {
        std::time::Instant::now() >= until
    })
    .await;
    let used = cpu_ticks(threads) - before;
    // 100 ticks a second: a spinning loop would use about 100.
    assert!(
        used < 30,
        "the agent used {used} ticks of CPU in 1 s while waiting"
    );
    assert!(c.closed.is_none());
    c.reconnect().await;
    c.expect_closed().await;
    assert_eq!(c.exit_code, Some(5));
    let numbers: Vec<u32> = c.text()[from..]
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(numbers, (1..=2000).collect::<Vec<u32>>());
    h.stop().await;
}

/// A client like AWS's plugin never acknowledges a message twice, so one whose
/// acknowledgement was lost with a socket stays unacknowledged for good. After `exit` the
/// agent must not hold `channel_closed` for the whole drain timeout (30 s) waiting for it:
/// the exit code's acknowledgement, which comes after every resend on the same connection,
/// shows the client has everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_after_a_lost_acknowledgement_ends_promptly() {
    let mut h = Harness::start(|config| {
        config.session.drain_timeout = Duration::from_secs(30);
    })
    .await;
    let mut c = h.open("TestUserA-00000000000000ac0").await;
    // Everything the agent sends now is delivered, but the acknowledgements are lost...
    c.lose_acks_up_to = Some(i64::MAX);
    c.run("echo unacknowledged", "lost").await;
    // ...and never repeated, even when the agent resends after a reconnect.
    c.lose_acks_up_to = Some(c.session.expected_sequence_number() - 1);
    c.disconnect().await;
    c.reconnect().await;
    c.run("echo after", "back").await;
    let started = std::time::Instant::now();
    c.type_text("exit 4\r").await;
    c.wait("channel_closed", Duration::from_secs(10), |c| {
        c.closed.is_some()
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.exit_code, Some(4));
    c.expect_socket_closed().await;
    h.stop().await;
}

/// Threads of this process with this name (`/proc/self/task/*/comm`).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}
