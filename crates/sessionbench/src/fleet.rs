//! `portcullis-sessionbench fleet`: many concurrent sessions through the real binaries.
//!
//! Starts `portcullis server --seed` and a `portcullis agent` registered as the seed's
//! node (both as child processes, so their memory can be read from `/proc`), opens
//! `--sessions` shells as TestUserA, and measures:
//! 1. server and agent resident memory per idle session (RSS with every session open and
//!    idle, minus RSS before, over the count; the shells are their own processes and are
//!    not counted);
//! 2. for `--hold` seconds, every session runs `seq` rounds at random intervals and each
//!    round's output is compared byte for byte with what `seq` prints (every line, in
//!    order, CRLF from the PTY); any difference, lost session or timeout is a failure;
//! 3. every session then `exit`s and must be Terminated in History.
//!
//! Run: `cargo build --release -p portcullis-cli -p portcullis-sessionbench &&
//! target/release/portcullis-sessionbench fleet --sessions 1000 --hold 300`.
//! The `portcullis` binary is taken from `PORTCULLIS_BIN` or next to this one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use portcullis_client::config::{Credentials, ResolvedConfig};
use portcullis_client::{SsmClient, StartSession};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use crate::{find, open, Seen, Term};

/// The seed's node (tag Project=test), where TestUserA may open shells.
pub const NODE: &str = "i-0885b2e35926f1fb3";
const REGION: &str = "ap-northeast-1";
/// Sessions being opened at the same time.
const OPENING: usize = 32;
/// Longest wait for one round's output.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

pub struct FleetOptions {
    sessions: usize,
    hold: Duration,
    /// Mean pause between a session's rounds.
    interval: Duration,
    /// Most lines one round prints.
    lines: u64,
    /// Open-idle-exit cycles after the first, in the same processes: whether memory comes
    /// back or grows with each.
    cycles: usize,
}

pub fn options(args: impl Iterator<Item = String>) -> anyhow::Result<FleetOptions> {
    let mut opts = FleetOptions {
        sessions: 1000,
        hold: Duration::from_secs(300),
        interval: Duration::from_secs(10),
        lines: 2000,
        cycles: 1,
    };
    let mut args = args;
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<u64> {
            Ok(args
                .next()
                .with_context(|| format!("{arg} needs a value"))?
                .parse()?)
        };
        match arg.as_str() {
            "--sessions" => opts.sessions = usize::try_from(value()?)?,
            "--hold" => opts.hold = Duration::from_secs(value()?),
            "--interval" => opts.interval = Duration::from_secs(value()?),
            "--lines" => opts.lines = value()?,
            "--cycles" => opts.cycles = usize::try_from(value()?)?,
            "--help" | "-h" => {
                println!(
                    "portcullis-sessionbench fleet [--sessions 1000] [--hold 300] [--interval 10] [--lines 2000] [--cycles 1]\n\
                     Opens SESSIONS shells through the real server and agent, measures their memory per idle\n\
                     session, runs `seq` rounds in each every ~INTERVAL seconds for HOLD seconds and compares\n\
                     every byte of output, then exits them all.\n\
                     --cycles N: N-1 more open/idle/exit cycles in the same processes, with their memory."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    if opts.sessions == 0 || opts.lines == 0 || opts.interval.is_zero() || opts.cycles == 0 {
        bail!("--sessions, --lines, --interval and --cycles must be > 0");
    }
    Ok(opts)
}

/// `portcullis server --seed` and a registered `portcullis agent run`, as child processes
/// in a temp dir, and TestUserA's client.
pub struct World {
    server: Process,
    agent: Process,
    pub api: Arc<SsmClient>,
    /// The server's data directory.
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn start() -> anyhow::Result<World> {
        let bin = portcullis_bin()?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let (server, endpoint) = server(&bin, &data).await?;
        let agent = agent(&bin, &data, &endpoint).await?;
        let api = Arc::new(client(&data, &endpoint)?);
        Ok(World {
            server,
            agent,
            api,
            data,
            _dir: dir,
        })
    }

    /// Opens a session and `exit`s it as soon as the agent's control channel is up.
    pub async fn wait_online(&self) -> anyhow::Result<()> {
        close(wait_for_agent(&self.api, u64::from(u32::MAX)).await?).await?;
        Ok(())
    }

    pub async fn stop(self) {
        self.agent.stop().await;
        self.server.stop().await;
    }
}

/// A child process killed when dropped.
struct Process {
    child: Child,
    pid: u32,
}

impl Process {
    fn spawn(cmd: &mut Command) -> anyhow::Result<Process> {
        let child = cmd.kill_on_drop(true).spawn()?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Process { child, pid })
    }

    /// Resident memory and thread count from `/proc/PID/status`.
    fn usage(&self) -> anyhow::Result<Usage> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .context(name.to_owned())?
                .parse()
                .context(name.to_owned())
        };
        Ok(Usage {
            rss_kib: field("VmRSS:")?,
            threads: field("Threads:")?,
        })
    }

    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    threads: u64,
}

fn portcullis_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("PORTCULLIS_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("portcullis");
    if !bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p portcullis-cli) or set PORTCULLIS_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// `portcullis server --seed` on a free port; returns it and its endpoint.
async fn server(bin: &Path, data: &Path) -> anyhow::Result<(Process, String)> {
    let mut process = Process::spawn(
        Command::new(bin)
            .args(["server", "--seed", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let stdout = process.child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let endpoint = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let endpoint = rest.split_whitespace().next().unwrap_or_default();
                return Ok(endpoint.to_owned());
            }
        }
        bail!("the server exited before listening")
    })
    .await
    .context("the server did not start in 60 s")??;
    // Keep draining its stdout.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((process, endpoint))
}

/// Registers the agent with the seed's activation and runs it.
async fn agent(bin: &Path, data: &Path, endpoint: &str) -> anyhow::Result<Process> {
    let activation: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("seed-activation.json"))?)?;
    let field = |name: &str| {
        activation
            .get(name)
            .and_then(|v| v.as_str())
            .with_context(|| format!("seed-activation.json has no {name}"))
    };
    let state = data.join("agent");
    let status = Command::new(bin)
        .args(["agent", "register", "--server", endpoint, "--id"])
        .arg(field("ActivationId")?)
        .arg("--code")
        .arg(field("ActivationCode")?)
        .args(["--instance-id", NODE, "--state-dir"])
        .arg(&state)
        .stdout(Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("agent register: {status}");
    }
    Process::spawn(
        Command::new(bin)
            .args(["agent", "run", "--state-dir"])
            .arg(&state)
            .env("RUST_LOG", "warn")
            // A plain shell: the machine's login scripts are not what is measured.
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    )
}

/// TestUserA's client, from the credentials file the seeded server wrote.
fn client(data: &Path, endpoint: &str) -> anyhow::Result<SsmClient> {
    let text = std::fs::read_to_string(data.join("credentials"))?;
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_profile = line == "[testusera]";
        } else if in_profile {
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.trim().to_owned()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
    }
    Ok(SsmClient::new(&ResolvedConfig {
        profile: "testusera".into(),
        credentials: Credentials {
            access_key_id: id.context("no testusera key")?,
            secret_access_key: secret.context("no testusera secret")?,
            session_token: None,
            source: "sessionbench".into(),
        },
        region: REGION.into(),
        endpoint_url: endpoint.to_owned(),
        ca_bundle: None,
    })?)
}

/// One open session and the rounds it has run.
struct Shell {
    id: String,
    term: Term,
    index: u64,
}

async fn open_shell(api: &SsmClient, index: u64) -> anyhow::Result<Shell> {
    let grant = api
        .start_session(&StartSession {
            target: NODE.into(),
            ..StartSession::default()
        })
        .await?;
    let id = grant.session_id.clone();
    let mut term = open(api, grant);
    // The first output (the prompt) says the shell is up.
    let first = tokio::time::timeout(ROUND_TIMEOUT, term.chunk())
        .await
        .context("no prompt")??;
    term.pending.extend_from_slice(&first);
    Ok(Shell { id, term, index })
}

/// What `seq FIRST LAST` prints through a PTY.
fn expected(first: u64, last: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for n in first..=last {
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs round `round`: `seq` between markers the typed line cannot contain (it has
/// `$((...))` where the output has digits); checks every byte between them.
async fn run_round(shell: &mut Shell, round: u64, lines: u64) -> anyhow::Result<usize> {
    let first = shell.index * 10_000_000 + round * 10_000;
    let last = first + (shell.index * 7919 + round * 104_729) % lines;
    let tag = shell.index * 100_000 + round;
    let command = format!("echo B-$(({tag}+0)); seq {first} {last}; echo E-$(({tag}+0))\n");
    shell.term.send(command.as_bytes()).await?;
    let begin = format!("B-{tag}\r\n");
    let end = format!("E-{tag}\r\n");
    tokio::time::timeout(ROUND_TIMEOUT, shell.term.wait_for(begin.as_bytes()))
        .await
        .context("round start timed out")??;
    let got = tokio::time::timeout(
        ROUND_TIMEOUT,
        capture_until(&mut shell.term, end.as_bytes()),
    )
    .await
    .context("round end timed out")??;
    let want = expected(first, last);
    if got != want {
        bail!(
            "round {round} of {}: {} bytes differ from the {} expected",
            shell.id,
            got.len(),
            want.len()
        );
    }
    Ok(got.len())
}

/// Everything before `needle`; drops the needle, keeps what follows it.
async fn capture_until(term: &mut Term, needle: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut searched = 0;
    loop {
        if let Some(at) = find(term.pending.get(searched..).unwrap_or_default(), needle) {
            let at = searched + at;
            let got = term.pending.drain(..at).collect();
            term.pending.drain(..needle.len());
            return Ok(got);
        }
        searched = term.pending.len().saturating_sub(needle.len());
        let chunk = term.chunk().await?;
        term.pending.extend_from_slice(&chunk);
    }
}

#[derive(Default)]
struct Totals {
    rounds: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
    /// Round latencies in microseconds, one per round.
    latencies: std::sync::Mutex<Vec<u64>>,
}

pub async fn run(opts: FleetOptions) -> anyhow::Result<()> {
    let world = World::start().await?;
    let (server, agent, api) = (&world.server, &world.agent, world.api.clone());

    // Warm up: the first session brings the agent's control channel and both caches up.
    world.wait_online().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (server_before, agent_before) = (server.usage()?, agent.usage()?);

    // Open them all.
    eprintln!("opening {} sessions", opts.sessions);
    let opened = Instant::now();
    let shells = open_all(&api, opts.sessions).await?;
    let open_secs = opened.elapsed().as_secs_f64();
    eprintln!("{} sessions open in {open_secs:.1} s", shells.len());

    // Idle: the shells have printed their prompts; let the processes settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (server_idle, agent_idle) = (server.usage()?, agent.usage()?);
    let per_session = |before: Usage, after: Usage| {
        after.rss_kib.saturating_sub(before.rss_kib) as f64 / opts.sessions as f64
    };
    let server_per = per_session(server_before, server_idle);
    let agent_per = per_session(agent_before, agent_idle);

    // Hold: rounds at random intervals until the deadline.
    eprintln!("holding for {} s", opts.hold.as_secs());
    let totals = Arc::new(Totals::default());
    let deadline = Instant::now() + opts.hold;
    let mut tasks = Vec::new();
    for mut shell in shells {
        let totals = totals.clone();
        let (interval, lines) = (opts.interval, opts.lines);
        tasks.push(tokio::spawn(async move {
            let mut round = 0;
            loop {
                let pause = interval.mul_f64(2.0 * rand_fraction(shell.index, round));
                if Instant::now() + pause >= deadline {
                    break;
                }
                tokio::time::sleep(pause).await;
                let begin = Instant::now();
                match run_round(&mut shell, round, lines).await {
                    Ok(bytes) => {
                        totals.rounds.fetch_add(1, Ordering::Relaxed);
                        totals.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                        if let Ok(mut l) = totals.latencies.lock() {
                            l.push(u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX));
                        }
                    }
                    Err(e) => {
                        eprintln!("{e:#}");
                        totals.failures.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                }
                round += 1;
            }
            Some(shell)
        }));
    }
    let mut peak = (server_idle, agent_idle);
    let mut sampler = tokio::time::interval(Duration::from_secs(5));
    let waiting = futures_join(tasks);
    tokio::pin!(waiting);
    let finished = loop {
        tokio::select! {
            done = &mut waiting => break done,
            _ = sampler.tick() => {
                let (s, a) = (server.usage()?, agent.usage()?);
                peak.0.rss_kib = peak.0.rss_kib.max(s.rss_kib);
                peak.1.rss_kib = peak.1.rss_kib.max(a.rss_kib);
            }
        }
    };
    let mut shells = Vec::new();
    let mut lost = 0;
    for result in finished {
        match result {
            Ok(Some(shell)) => shells.push(shell),
            _ => lost += 1,
        }
    }

    // End them all with `exit`; each must be Terminated in History.
    eprintln!("exiting {} sessions", shells.len());
    let ids: Vec<String> = shells.iter().map(|s| s.id.clone()).collect();
    let exiting = Instant::now();
    let (lost_at_exit, closed) = close_all(shells).await;
    lost += lost_at_exit;
    let terminated = terminated_count(&api, &ids).await?;
    let exit_secs = exiting.elapsed().as_secs_f64();
    let (server_end, agent_end) = (server.usage()?, agent.usage()?);
    let logged = logs_matching(&world.data, &closed).await;
    let logged_mib = closed.iter().map(|(_, s)| s.len).sum::<u64>() as f64 / 1048576.0;

    // More cycles in the same processes: open all, idle, exit all; RSS after each.
    let mut cycles = Vec::new();
    for cycle in 2..=opts.cycles {
        eprintln!(
            "cycle {cycle}: opening and exiting {} sessions",
            opts.sessions
        );
        let shells = open_all(&api, opts.sessions).await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let idle = (server.usage()?, agent.usage()?);
        lost += close_all(shells).await.0;
        tokio::time::sleep(Duration::from_secs(2)).await;
        cycles.push((cycle, idle, (server.usage()?, agent.usage()?)));
    }
    world.stop().await;

    let rounds = totals.rounds.load(Ordering::Relaxed);
    let failures = totals.failures.load(Ordering::Relaxed);
    let mut latencies = totals
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let pick = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(i).copied().unwrap_or_default() as f64 / 1000.0
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "| fleet: {} sessions held {} s | figure |",
        opts.sessions,
        opts.hold.as_secs()
    );
    println!("| --- | --- |");
    println!("| opened (StartSession → prompt, {OPENING} at a time) | {open_secs:.1} s |");
    println!("| ended (`exit` typed in all → all Terminated in History) | {exit_secs:.1} s |");
    println!(
        "| server RSS: before / all idle / peak / after exit | {:.1} / {:.1} / {:.1} / {:.1} MiB |",
        mib(server_before.rss_kib),
        mib(server_idle.rss_kib),
        mib(peak.0.rss_kib),
        mib(server_end.rss_kib)
    );
    println!(
        "| agent RSS: before / all idle / peak / after exit | {:.1} / {:.1} / {:.1} / {:.1} MiB |",
        mib(agent_before.rss_kib),
        mib(agent_idle.rss_kib),
        mib(peak.1.rss_kib),
        mib(agent_end.rss_kib)
    );
    println!("| server memory per idle session | {server_per:.0} KiB |");
    println!(
        "| agent memory per idle session (shell excluded; {} threads for {} sessions) | {agent_per:.0} KiB |",
        agent_idle.threads, opts.sessions
    );
    println!(
        "| rounds compared byte for byte | {rounds} ({:.1} MiB) |",
        totals.bytes.load(Ordering::Relaxed) as f64 / 1048576.0
    );
    println!(
        "| round latency p50 / p99 | {:.1} / {:.1} ms |",
        pick(0.5),
        pick(0.99)
    );
    println!("| failed rounds / lost sessions | {failures} / {lost} |");
    println!(
        "| Terminated in History after `exit` | {terminated} of {} |",
        opts.sessions
    );
    println!(
        "| server session logs equal to what each client received (FNV-1a) | {logged} of {} ({logged_mib:.1} MiB) |",
        closed.len()
    );
    for (cycle, idle, end) in &cycles {
        println!(
            "| cycle {cycle}: server RSS all idle / after exit; agent RSS all idle / after exit | {:.1} / {:.1}; {:.1} / {:.1} MiB |",
            mib(idle.0.rss_kib),
            mib(end.0.rss_kib),
            mib(idle.1.rss_kib),
            mib(end.1.rss_kib)
        );
    }
    if failures > 0 || lost > 0 || terminated != opts.sessions || logged != closed.len() {
        bail!("the fleet run failed");
    }
    Ok(())
}

/// A deterministic fraction in [0, 1) per (session, round): spreads rounds out without a
/// random number generator.
fn rand_fraction(index: u64, round: u64) -> f64 {
    let mut x = index
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(round.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Awaits every task, in order.
async fn futures_join<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await);
    }
    out
}

/// Opens `n` sessions, [`OPENING`] at a time.
async fn open_all(api: &Arc<SsmClient>, n: usize) -> anyhow::Result<Vec<Shell>> {
    let gate = Arc::new(Semaphore::new(OPENING));
    let mut tasks = Vec::new();
    for index in 0..n as u64 {
        let (api, gate) = (api.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            open_shell(&api, index).await
        }));
    }
    let mut shells = Vec::with_capacity(tasks.len());
    for task in tasks {
        shells.push(task.await??);
    }
    Ok(shells)
}

/// `exit` in every shell: how many did not end, and what the others received.
async fn close_all(shells: Vec<Shell>) -> (usize, Vec<(String, Seen)>) {
    let mut closing = Vec::new();
    for shell in shells {
        closing.push(tokio::spawn(close(shell)));
    }
    let (mut lost, mut closed) = (0, Vec::new());
    for task in closing {
        match task.await {
            Ok(Ok(seen)) => closed.push(seen),
            _ => lost += 1,
        }
    }
    (lost, closed)
}

/// Opens a session as soon as the agent's control channel is up.
async fn wait_for_agent(api: &SsmClient, index: u64) -> anyhow::Result<Shell> {
    let started = Instant::now();
    loop {
        match open_shell(api, index).await {
            Ok(shell) => return Ok(shell),
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.context("the agent never came online")),
        }
    }
}

/// `exit`, then everything until the output ends: the session's id and what its client
/// received in all.
async fn close(mut shell: Shell) -> anyhow::Result<(String, Seen)> {
    shell.term.send(b"exit\n").await?;
    tokio::time::timeout(ROUND_TIMEOUT, async {
        while let Some(chunk) = shell.term.output.recv().await {
            shell.term.seen.add(&chunk);
        }
    })
    .await
    .context("the session did not end after exit")?;
    Ok((shell.id, shell.term.seen))
}

/// How many of `sessions` have a server log equal to what their client received (polled:
/// the server writes a session's log up to 50 ms after its output).
async fn logs_matching(data: &Path, sessions: &[(String, Seen)]) -> usize {
    let mut matching = 0;
    for (id, seen) in sessions {
        let path = data.join("session-logs").join(format!("{id}.log"));
        for _ in 0..50 {
            if Seen::of(&std::fs::read(&path).unwrap_or_default()) == *seen {
                matching += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    matching
}

/// How many of `ids` are Terminated in History (polled: the status is written as each
/// agent's report arrives).
async fn terminated_count(api: &SsmClient, ids: &[String]) -> anyhow::Result<usize> {
    let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut count = 0;
    for _ in 0..60 {
        let history = api.describe_sessions("History", &[]).await?;
        count = history
            .iter()
            .filter(|s| {
                s.get("SessionId")
                    .and_then(|v| v.as_str())
                    .is_some_and(|id| wanted.contains(id))
                    && s.get("Status").and_then(|v| v.as_str()) == Some("Terminated")
            })
            .count();
        if count == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(count)
}
