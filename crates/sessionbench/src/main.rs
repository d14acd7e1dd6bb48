//! `portcullis-sessionbench`: shell sessions through Portcullis side by side with OpenSSH
//! `sshd` on 127.0.0.1, in the same run.
//!
//! Ours: the real `portcullis server --seed` and `portcullis agent run` binaries as child
//! processes ([`fleet::World`]; the agent's shell is `/bin/sh` on a PTY), driven by
//! `portcullis_client`'s data channel in this process as TestUserA. Theirs: a throwaway
//! `sshd -D` on a free port with a temp host key and a temp authorized key (the system's
//! sshd configuration is not touched), driven by the `ssh` client as a child process
//! (`ssh -tt`, the same `/bin/sh` on the remote PTY).
//!
//! Measured:
//! 1. time from StartSession to the first prompt byte, vs `ssh 127.0.0.1 true` wall time;
//! 2. keystroke echo round trip: one byte in, wait for its echo;
//! 3. bulk output of `head -c <N>M /dev/zero` through the PTY, MiB/s.
//!
//! Run (as root, `sshd` needs it): `cargo build --release -p portcullis-cli -p
//! portcullis-sessionbench && target/release/portcullis-sessionbench [--starts 20]
//! [--keys 500] [--bulk-mib 200] [--threads 1]`; `SESSIONBENCH_DEBUG=1` prints every output
//! chunk. `--threads` sizes this process's runtime (1: one thread, as our client runs);
//! the server inherits the environment, so `PORTCULLIS_WORKER_THREADS=1` runs it on one
//! thread.
//!
//! `portcullis-sessionbench fleet` is the other benchmark: many concurrent sessions through
//! the real binaries, their memory and every byte of their output ([`fleet`]).

use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use portcullis_client::channel::{Channel, ChannelOptions, Input};
use portcullis_client::{SsmClient, StartSession, StreamGrant};
use portcullis_stream::SizeData;
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

mod fleet;

/// What ssh's side runs on its PTY (ours: the agent's login environment with `/bin/sh`).
const SHELL_ENV: [(&str, &str); 3] = [("PS1", "$ "), ("TERM", "dumb"), ("ENV", "")];
const WAIT: Duration = Duration::from_secs(60);

struct Options {
    starts: usize,
    keys: usize,
    bulk_mib: usize,
    /// Threads of this process's runtime, which drives both terminals.
    threads: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut opts = Options {
        starts: 20,
        keys: 500,
        bulk_mib: 200,
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<usize> {
            Ok(args
                .next()
                .with_context(|| format!("{arg} needs a value"))?
                .parse()?)
        };
        match arg.as_str() {
            "--starts" => opts.starts = value()?,
            "--keys" => opts.keys = value()?,
            "--bulk-mib" => opts.bulk_mib = value()?,
            "--threads" => opts.threads = value()?,
            "--help" | "-h" => {
                println!(
                    "portcullis-sessionbench [--starts 20] [--keys 500] [--bulk-mib 200] [--threads 1]\n\
                          portcullis-sessionbench fleet --help"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    if opts.starts == 0 || opts.keys == 0 || opts.keys > 4000 || opts.bulk_mib == 0 {
        bail!("--starts and --bulk-mib must be > 0, --keys within 1..=4000 (one PTY line)");
    }
    if opts.threads == 0 {
        bail!("--threads must be > 0");
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------
// A terminal, either side: bytes in, chunks of output out.

/// Where typed bytes go: straight to our client's channel, or to the task that writes
/// ssh's stdin (one hand-off each).
enum TermInput {
    Bytes(mpsc::Sender<Vec<u8>>),
    Channel(mpsc::Sender<Input>),
}

struct Term {
    input: TermInput,
    output: mpsc::UnboundedReceiver<Vec<u8>>,
    /// Output read but not yet consumed by a `wait_*`.
    pending: Vec<u8>,
    /// Everything received so far, as a checksum.
    seen: Seen,
}

/// FNV-1a over a byte stream, and its length: what a session's client received, to compare
/// with the server's log of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    hash: u64,
    len: u64,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }
}

impl Seen {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.len += bytes.len() as u64;
    }

    fn of(bytes: &[u8]) -> Seen {
        let mut seen = Seen::default();
        seen.add(bytes);
        seen
    }
}

impl Term {
    async fn send(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let sent = match &self.input {
            TermInput::Bytes(tx) => tx.send(bytes.to_vec()).await.is_ok(),
            TermInput::Channel(tx) => tx.send(Input::Data(bytes.to_vec())).await.is_ok(),
        };
        if !sent {
            bail!("the session's input is closed");
        }
        Ok(())
    }

    async fn chunk(&mut self) -> anyhow::Result<Vec<u8>> {
        match tokio::time::timeout(WAIT, self.output.recv()).await {
            Ok(Some(chunk)) => {
                self.seen.add(&chunk);
                if std::env::var_os("SESSIONBENCH_DEBUG").is_some() {
                    eprintln!("{:?}", String::from_utf8_lossy(&chunk));
                }
                Ok(chunk)
            }
            Ok(None) => bail!("the session's output ended"),
            Err(_) => bail!("no output for {WAIT:?}"),
        }
    }

    /// Reads until `needle` appears; drops everything up to and including it.
    async fn wait_for(&mut self, needle: &[u8]) -> anyhow::Result<usize> {
        self.wait_any(&[needle]).await
    }

    /// The shell's prompt: `$ `, or `# ` as root (dash ignores `PS1` then).
    async fn wait_prompt(&mut self) -> anyhow::Result<usize> {
        self.wait_any(&[b"$ ", b"# "]).await
    }

    /// Reads until one of `needles` appears; drops everything up to and including it.
    async fn wait_any(&mut self, needles: &[&[u8]]) -> anyhow::Result<usize> {
        let longest = needles.iter().map(|n| n.len()).max().unwrap_or(0);
        let mut seen = 0;
        loop {
            if let Some(end) = needles
                .iter()
                .filter_map(|n| find(&self.pending, n).map(|at| at + n.len()))
                .min()
            {
                self.pending.drain(..end);
                return Ok(seen);
            }
            let keep = self.pending.len().saturating_sub(longest);
            self.pending.drain(..keep);
            let chunk = self.chunk().await?;
            seen += chunk.len();
            self.pending.extend_from_slice(&chunk);
        }
    }
}

/// Where `needle` first occurs in `hay`. Jumps between occurrences of its first byte, so
/// scanning megabytes of output costs the harness little on either side.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(at) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + at;
        if hay.get(at..)?.starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Output of our client, as chunks on a channel.
struct Chunks(mpsc::UnboundedSender<Vec<u8>>);

impl AsyncWrite for Chunks {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let _ = self.0.send(buf.to_vec());
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------------------------------
// Ours: the real `portcullis server` and `portcullis agent` ([`fleet::World`]).

async fn start_session(api: &SsmClient) -> anyhow::Result<StreamGrant> {
    let input = StartSession {
        target: fleet::NODE.into(),
        ..StartSession::default()
    };
    Ok(api.start_session(&input).await?)
}

/// Opens the data channel of `grant` and returns its terminal.
fn open(api: &SsmClient, grant: StreamGrant) -> Term {
    let (to_channel, mut from_term) = mpsc::channel::<Input>(64);
    let (out_tx, output) = mpsc::unbounded_channel();
    let tls = api.tls().clone();
    // Room for it: the channel is new.
    let _ = to_channel.try_send(Input::Size(SizeData { cols: 80, rows: 24 }));
    tokio::spawn(async move {
        let channel = Channel::new(grant, None, tls, ChannelOptions::default());
        let mut out = Chunks(out_tx.clone());
        let mut err = Chunks(out_tx);
        let result = channel.run(&mut from_term, &mut out, &mut err).await;
        if std::env::var_os("SESSIONBENCH_DEBUG").is_some() {
            eprintln!("channel: {result:?}");
        }
    });
    Term {
        input: TermInput::Channel(to_channel),
        output,
        pending: Vec::new(),
        seen: Seen::default(),
    }
}

/// `exit`, then waits for the session's output to end.
async fn close(mut term: Term) -> anyhow::Result<()> {
    term.send(b"exit\n").await?;
    while term.output.recv().await.is_some() {}
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Theirs: a throwaway sshd.

struct Sshd {
    child: tokio::process::Child,
    port: u16,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

async fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {args:?}: {status}");
    }
    Ok(())
}

async fn sshd() -> anyhow::Result<Sshd> {
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name).display().to_string();
    for name in ["host_key", "client_key"] {
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", &path(name)],
        )
        .await?;
    }
    std::fs::copy(path("client_key.pub"), path("authorized_keys"))?;
    // sshd's privilege separation directory; the package creates it only at boot.
    std::fs::create_dir_all("/run/sshd")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = format!(
        "ListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n\
         PrintLastLog no\nUseDNS no\nAcceptEnv none\n",
        path("host_key"),
        path("authorized_keys"),
    );
    std::fs::write(path("sshd_config"), config)?;
    let sshd = which("sshd", &["/usr/sbin/sshd", "/usr/bin/sshd"])?;
    let child = tokio::process::Command::new(sshd)
        .args([
            "-D",
            "-e",
            "-f",
            &path("sshd_config"),
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting sshd")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("sshd did not listen on {port}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Sshd {
        child,
        port,
        key: dir.path().join("client_key"),
        _dir: dir,
    })
}

fn which(name: &str, candidates: &[&str]) -> anyhow::Result<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .with_context(|| format!("{name} not found (apt-get install openssh-server)"))
}

impl Sshd {
    /// The options every `ssh` here gets: this server's port and key, no host checks.
    fn ssh_options(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-F", "/dev/null", "-p", &self.port.to_string(), "-i"]
            .map(str::to_owned)
            .into();
        args.push(self.key.display().to_string());
        for option in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "LogLevel=ERROR",
        ] {
            args.extend(["-o".to_owned(), option.to_owned()]);
        }
        args
    }

    fn ssh(&self, tty: bool) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.ssh_options());
        if tty {
            cmd.arg("-tt");
        }
        cmd.arg("127.0.0.1");
        cmd
    }

    /// `ssh -tt` through a jump host (the same sshd), as a bastion would be: the closest
    /// OpenSSH has to a relay in the middle.
    fn ssh_via_jump(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ssh");
        let proxy = format!("ssh {} -W %h:%p 127.0.0.1", self.ssh_options().join(" "));
        cmd.args(self.ssh_options()).args([
            "-o",
            &format!("ProxyCommand={proxy}"),
            "-tt",
            "127.0.0.1",
        ]);
        cmd
    }

    /// `ssh ... 127.0.0.1 true`, wall time.
    async fn true_once(&self) -> anyhow::Result<Duration> {
        let begin = Instant::now();
        let status = self
            .ssh(false)
            .arg("true")
            .stdin(Stdio::null())
            .status()
            .await?;
        let took = begin.elapsed();
        if !status.success() {
            bail!("ssh true: {status}");
        }
        Ok(took)
    }

    /// `ssh -tt` (directly, or through a jump host) to `/bin/sh` with the same environment
    /// as our agent's shell.
    fn open(&self, via_jump: bool) -> anyhow::Result<(Term, tokio::process::Child)> {
        let env: Vec<String> = SHELL_ENV
            .iter()
            .map(|(k, v)| format!("{k}='{v}'"))
            .collect();
        let mut command = if via_jump {
            self.ssh_via_jump()
        } else {
            self.ssh(true)
        };
        let mut child = command
            .arg(format!("exec env {} /bin/sh -i", env.join(" ")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().context("ssh stdin")?;
        let mut stdout = child.stdout.take().context("ssh stdout")?;
        let (input, mut bytes) = mpsc::channel::<Vec<u8>>(64);
        let (out_tx, output) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(b) = bytes.recv().await {
                if stdin.write_all(&b).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if out_tx
                            .send(buf.get(..n).unwrap_or_default().to_vec())
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        Ok((
            Term {
                input: TermInput::Bytes(input),
                output,
                pending: Vec::new(),
                seen: Seen::default(),
            },
            child,
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The measurements, the same on both terminals.

/// One byte in, wait for its echo; `n` times. Sorted round trips.
async fn echo(term: &mut Term, n: usize) -> anyhow::Result<Vec<Duration>> {
    term.wait_prompt().await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let begin = Instant::now();
        term.send(b"a").await?;
        term.wait_for(b"a").await?;
        times.push(begin.elapsed());
    }
    // Discard the typed line.
    term.send(b"\x15\n").await?;
    term.wait_prompt().await?;
    times.sort();
    Ok(times)
}

/// `head -c <mib>M /dev/zero` through the PTY; MiB/s from the command's Enter to the marker.
async fn bulk(term: &mut Term, mib: usize) -> anyhow::Result<f64> {
    let begin = Instant::now();
    term.send(format!("head -c {mib}M /dev/zero; echo END-$((40+2))\n").as_bytes())
        .await?;
    let seen = term.wait_for(b"END-42").await?;
    let secs = begin.elapsed().as_secs_f64();
    if seen < mib * 1024 * 1024 {
        bail!("only {seen} bytes arrived");
    }
    term.wait_prompt().await?;
    Ok(mib as f64 / secs)
}

fn median(sorted: &[Duration]) -> Duration {
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1);
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("fleet") {
        // A thousand sessions' checks run in parallel.
        let options = fleet::options(std::env::args().skip(2))?;
        return tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(fleet::run(options));
    }
    let opts = options()?;
    // By default one thread, as `portcullis session start` runs its client: no hand-offs
    // between threads in the harness, which drives both terminals alike.
    let runtime = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(opts.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(side_by_side(opts))
}

async fn side_by_side(opts: Options) -> anyhow::Result<()> {
    let world = fleet::World::start().await?;
    let api = world.api.clone();
    world.wait_online().await.context("agent online")?;
    eprintln!("agent online");
    let mut sshd = sshd().await?;
    eprintln!("sshd listening");

    // 1. Startup.
    let (mut our_starts, mut ssh_starts) = (Vec::new(), Vec::new());
    for _ in 0..opts.starts {
        let begin = Instant::now();
        let grant = start_session(&api).await?;
        let mut term = open(&api, grant);
        let first = term.chunk().await?;
        our_starts.push(begin.elapsed());
        term.pending.extend_from_slice(&first);
        term.wait_prompt().await?;
        close(term).await?;
        ssh_starts.push(sshd.true_once().await?);
    }
    eprintln!("startup measured");
    our_starts.sort();
    ssh_starts.sort();

    // 2. and 3. on one session each.
    let grant = start_session(&api).await?;
    let mut term = open(&api, grant);
    let our_echo = echo(&mut term, opts.keys).await.context("our echo")?;
    let our_bulk = bulk(&mut term, opts.bulk_mib).await.context("our bulk")?;
    close(term).await?;

    let (mut term, mut child) = sshd.open(false)?;
    let ssh_echo = echo(&mut term, opts.keys).await.context("ssh echo")?;
    let ssh_bulk = bulk(&mut term, opts.bulk_mib).await.context("ssh bulk")?;
    close(term).await?;
    let _ = child.wait().await;

    // Context, not a goal: ssh through a jump host has a hop in the middle, as we do.
    let (mut term, mut child) = sshd.open(true)?;
    let jump_echo = echo(&mut term, opts.keys)
        .await
        .context("ssh echo via a jump host")?;
    close(term).await?;
    let _ = child.wait().await;
    let _ = sshd.child.kill().await;

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("| measure | portcullis | OpenSSH | portcullis / OpenSSH |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| StartSession → first prompt byte vs `ssh true` (median of {}) | {} | {} | {:.2} |",
        opts.starts,
        ms(median(&our_starts)),
        ms(median(&ssh_starts)),
        ratio(median(&our_starts), median(&ssh_starts))
    );
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "| keystroke echo {name} ({} keys) | {} | {} | {:.2} |",
            opts.keys,
            ms(pct(&our_echo, p)),
            ms(pct(&ssh_echo, p)),
            ratio(pct(&our_echo, p), pct(&ssh_echo, p))
        );
    }
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "| keystroke echo {name}, ssh through a jump host (`ProxyCommand ssh -W`) | {} | {} | {:.2} |",
            ms(pct(&our_echo, p)),
            ms(pct(&jump_echo, p)),
            ratio(pct(&our_echo, p), pct(&jump_echo, p))
        );
    }
    println!(
        "| bulk `head -c {}M /dev/zero` | {:.0} MiB/s | {:.0} MiB/s | {:.2} |",
        opts.bulk_mib,
        our_bulk,
        ssh_bulk,
        our_bulk / ssh_bulk
    );
    println!(
        "(startup min/max: ours {} / {}, ssh {} / {})",
        ms(our_starts.first().copied().unwrap_or_default()),
        ms(our_starts.last().copied().unwrap_or_default()),
        ms(ssh_starts.first().copied().unwrap_or_default()),
        ms(ssh_starts.last().copied().unwrap_or_default()),
    );
    Ok(())
}
