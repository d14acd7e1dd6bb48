//! The loss test: `seq 1 200000` on the real agent's PTY, the client's connection cut in the
//! middle of it and kept out for a while (the agent's output meanwhile is dropped by the
//! relay), then ResumeSession: the client has every line exactly once, in order, and so has the
//! server's session log, which saw the agent's resends as well.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use portcullis_client::channel::{Channel, ChannelOptions, End, Input};
use portcullis_client::SsmClient;
use portcullis_stream::SizeData;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

use crate::proxy::Proxy;
use crate::real_agent::{start_when_online, RealAgent};
use crate::world::{Captured, World};

const LINES: u32 = 200_000;

/// The client's output: captured, and the proxy cut (and new connections refused) the
/// moment `threshold` bytes have been written, from inside the client's own write, so the
/// cut falls in the middle of the output however fast it flows.
struct CutAt {
    out: Captured,
    proxy: Proxy,
    threshold: usize,
    /// Bytes written when the cut was made (0: not yet).
    at_cut: Arc<AtomicUsize>,
}

impl AsyncWrite for CutAt {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.out).poll_write(cx, buf);
        let total = self.out.written();
        if total >= self.threshold && self.at_cut.load(Ordering::SeqCst) == 0 {
            self.proxy.refuse(true);
            self.proxy.cut();
            self.at_cut.store(total, Ordering::SeqCst);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.out).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.out).poll_shutdown(cx)
    }
}

/// FNV-1a over the bytes, as a checksum that is cheap to print.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_in_the_middle_of_seq_loses_and_repeats_nothing() {
    let world = World::start().await;
    let agent = RealAgent::start(&world);
    let proxy = Proxy::start(world.addr).await;
    let api = SsmClient::new(&world.config(&proxy.endpoint())).unwrap();
    let grant = start_when_online(&api).await;
    let session = grant.session_id.clone();
    let (tx, mut rx) = mpsc::channel(64);
    let out = Captured::default();
    let expected: String = (1..=LINES).map(|n| format!("{n}\r\n")).collect();
    let at_cut = Arc::new(AtomicUsize::new(0));
    // Cut when a fifth of the output has arrived, and keep the client out for a while.
    let mut o = CutAt {
        out: out.clone(),
        proxy: proxy.clone(),
        threshold: expected.len() / 5,
        at_cut: at_cut.clone(),
    };
    let mut e = Captured::default();
    let options = ChannelOptions {
        reconnect_attempts: 40,
        reconnect_initial_delay: Duration::from_millis(50),
        reconnect_max_delay: Duration::from_millis(400),
        ..ChannelOptions::default()
    };
    let channel = Channel::new(grant, Some(&api), api.tls().clone(), options);
    let script = async {
        tx.send(Input::Size(SizeData {
            cols: 120,
            rows: 40,
        }))
        .await
        .unwrap();
        tx.send(Input::Data(
            format!("seq 1 {LINES}; echo seq-done-$((6*7))\n").into_bytes(),
        ))
        .await
        .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while at_cut.load(Ordering::SeqCst) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "no output");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let at_cut = at_cut.load(Ordering::SeqCst);
        assert!(at_cut < expected.len(), "the cut fell after the output");
        // The server saw the client go (the agent keeps producing; the relay drops it).
        let direct = world.client();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let active = direct.describe_sessions("Active", &[]).await.unwrap();
            if active.iter().any(|s| s["Status"] == "Disconnected") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{active:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        proxy.refuse(false);
        out.wait_for_within("seq-done-42", Duration::from_secs(120))
            .await;
        assert!(out.written() > at_cut);
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

    assert_every_line_once(&out.text(), &expected);

    // The server's log of the session saw the agent resend what the client had missed, and
    // kept each line once too. Its writer may still be finishing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !world.session_log(&session).contains("seq-done-42") {
        assert!(tokio::time::Instant::now() < deadline, "the session log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_every_line_once(&world.session_log(&session), &expected);
    agent.stop().await;
}

/// `seq 1 LINES` once, in order, byte for byte, then `seq-done-42` once.
fn assert_every_line_once(text: &str, expected: &str) {
    // The shell may print its prompt after echoing the typed command and before the first
    // number ("# 1"): that is the PTY's ordering, not output, so prompts are taken out.
    let text = text.replace("\r\n# ", "\r\n").replace("\r\n$ ", "\r\n");
    let numbers: Vec<&str> = text
        .split("\r\n")
        .filter(|line| !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(numbers.len(), LINES as usize, "line count");
    let in_order = numbers
        .iter()
        .zip(1..=LINES)
        .position(|(line, n)| line.parse::<u32>().ok() != Some(n));
    assert_eq!(in_order, None, "first line out of place");
    // And as one block, byte for byte, exactly once.
    let start = text.find("\r\n1\r\n2\r\n").expect("the first lines") + 2;
    let got = text.get(start..start + expected.len()).unwrap_or_default();
    assert_eq!(
        fnv1a(got.as_bytes()),
        fnv1a(expected.as_bytes()),
        "checksum of the {} bytes of seq output",
        expected.len()
    );
    assert_eq!(text.matches("seq-done-42").count(), 1);
}
