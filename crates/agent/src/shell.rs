//! A shell on a PTY, bridged to tokio: blocking reads, writes and the wait each run on a
//! dedicated thread.
//!
//! Output flows through a small bounded channel, so when the session stops taking output
//! (its buffer is full while the client is away) the reader thread blocks, the PTY fills,
//! and the shell blocks on its next write: nothing is lost, nothing grows without bound.

use std::io::{self, Read as _, Write as _};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::pty::{KillSignal, Pty, PtySystem, ShellCommand, WindowSize};

/// Reads the reader thread may be ahead of the session by. A PTY read returns at most a
/// page (Linux's line discipline buffer), so bulk output arrives as many small reads that
/// [`Shell::next_event`] joins into one message.
const OUTPUT_CHANNEL_CHUNKS: usize = 16;

/// The reader thread's buffer: more than a PTY read ever returns.
const READ_BUFFER: usize = 16 * 1024;

/// What [`Shell::next_event`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellEvent {
    /// A chunk of output.
    Output(Vec<u8>),
    /// No more output: every holder of the terminal is gone.
    OutputEnd,
    /// The shell exited (and was reaped) with this code.
    Exited(i32),
}

/// A running shell.
pub struct Shell {
    pty: Box<dyn Pty>,
    input: mpsc::UnboundedSender<Vec<u8>>,
    output: mpsc::Receiver<Vec<u8>>,
    /// Waiting reads are joined until a chunk reaches this size.
    chunk: usize,
    output_done: bool,
    exit: Option<oneshot::Receiver<i32>>,
    exit_code: Option<i32>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("pid", &self.pty.pid())
            .field("exit_code", &self.exit_code)
            .finish_non_exhaustive()
    }
}

fn thread(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
}

impl Shell {
    /// Starts `command` on a new PTY of `size`; output comes in chunks of about `chunk`
    /// bytes (reads already waiting are joined until one reaches that size).
    pub fn start(
        system: &dyn PtySystem,
        command: &ShellCommand,
        size: WindowSize,
        chunk: usize,
    ) -> io::Result<Shell> {
        let spawned = system.spawn(command, size)?;
        let pty = spawned.pty;
        let (output_tx, output) = mpsc::channel(OUTPUT_CHANNEL_CHUNKS);
        let (input, mut input_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (exit_tx, exit) = oneshot::channel();

        let mut reader = spawned.reader;
        let chunk = chunk.max(1);
        let started = (|| {
            let mut buf = vec![0; chunk.min(READ_BUFFER)];
            thread("pty-reader", move || loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let read = buf.get(..n).unwrap_or_default().to_vec();
                        if output_tx.blocking_send(read).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "reading the PTY");
                        break;
                    }
                }
            })?;
            let mut writer = spawned.writer;
            thread("pty-writer", move || {
                while let Some(data) = input_rx.blocking_recv() {
                    if let Err(e) = writer.write_all(&data).and_then(|()| writer.flush()) {
                        tracing::debug!(error = %e, "writing to the PTY");
                        break;
                    }
                }
            })?;
            let mut process = spawned.process;
            thread("pty-wait", move || {
                let code = match process.wait() {
                    Ok(code) => code,
                    Err(e) => {
                        tracing::warn!(error = %e, "waiting for the shell");
                        1
                    }
                };
                let _ = exit_tx.send(code);
            })
        })();
        if let Err(e) = started {
            // No thread to wait for it: end it now rather than leave it unreaped forever.
            pty.kill(KillSignal::Kill);
            return Err(e);
        }
        Ok(Shell {
            pty,
            input,
            output,
            chunk,
            output_done: false,
            exit: Some(exit),
            exit_code: None,
        })
    }

    /// The shell's pid.
    pub fn pid(&self) -> u32 {
        self.pty.pid()
    }

    /// Queues input for the PTY (never blocks; the writer thread does).
    pub fn write(&self, data: Vec<u8>) {
        if !data.is_empty() {
            let _ = self.input.send(data);
        }
    }

    /// Resizes the terminal.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        self.pty.resize(size)
    }

    /// The next thing that happens: output (only if `read`), the end of output, or the
    /// shell's exit. Each of the last two is reported once; then only the rest can come.
    pub async fn next_event(&mut self, read: bool) -> ShellEvent {
        let read = read && !self.output_done;
        let output = &mut self.output;
        let limit = self.chunk;
        let exit = &mut self.exit;
        let event = tokio::select! {
            chunk = output.recv(), if read => match chunk {
                Some(mut chunk) => {
                    // The last read joined may overshoot `chunk`; the session cuts its
                    // messages to the payload limit anyway.
                    while chunk.len() < limit {
                        match output.try_recv() {
                            Ok(more) => chunk.extend(more),
                            Err(_) => break,
                        }
                    }
                    ShellEvent::Output(chunk)
                }
                None => ShellEvent::OutputEnd,
            },
            code = async {
                match exit.as_mut() {
                    Some(exit) => exit.await.unwrap_or(1),
                    None => std::future::pending().await,
                }
            } => ShellEvent::Exited(code),
        };
        match event {
            ShellEvent::OutputEnd => self.output_done = true,
            ShellEvent::Exited(code) => {
                self.exit = None;
                self.exit_code = Some(code);
            }
            ShellEvent::Output(_) => {}
        }
        event
    }

    /// Whether the PTY reached its end (every holder of the terminal is gone).
    pub fn output_done(&self) -> bool {
        self.output_done
    }

    /// Whether output is waiting in the channel right now.
    pub fn output_pending(&self) -> bool {
        !self.output.is_empty()
    }

    /// The exit code, if the shell exited and [`Shell::next_event`] (or a kill) saw it.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    fn poll_exit(&mut self) {
        if let Some(exit) = self.exit.as_mut() {
            match exit.try_recv() {
                Ok(code) => {
                    self.exit_code = Some(code);
                    self.exit = None;
                }
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.exit_code = Some(1);
                    self.exit = None;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
    }

    /// Hangs up on what is left of the session after the shell exited by itself (jobs it
    /// left behind get SIGHUP, as a terminal hangup does; `nohup` ones live on).
    pub fn hang_up(&self) {
        let n = self.pty.kill(KillSignal::Hangup);
        if n > 0 {
            tracing::debug!(processes = n, "hung up on processes left by the shell");
        }
    }

    /// Ends the shell and everything in its session: SIGHUP (and SIGCONT), then SIGKILL to
    /// whatever is left after `grace`; waits until the shell is reaped.
    pub async fn terminate(&mut self, grace: Duration) {
        const POLL: Duration = Duration::from_millis(25);
        let pid = self.pid();
        self.pty.kill(KillSignal::Hangup);
        let deadline = Instant::now() + grace;
        loop {
            self.poll_exit();
            if self.exit_code.is_some() && self.pty.survivors() == 0 {
                tracing::debug!(pid, "shell and its processes ended on SIGHUP");
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let killed = self.pty.kill(KillSignal::Kill);
        tracing::debug!(pid, killed, "sent SIGKILL to what was left of the session");
        let reap_deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < reap_deadline {
            self.poll_exit();
            if self.exit_code.is_some() && self.pty.survivors() == 0 {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::warn!(pid, "processes of the session survived SIGKILL");
    }
}
