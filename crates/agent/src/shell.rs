//! A shell on a PTY, on the async runtime: the master is read and written non-blocking
//! (readiness from the runtime's poller), in the session's own task, so a keystroke and its
//! echo cross no thread. The shell's exit is noticed through its pidfd on the same poller;
//! only where the kernel has no pidfds does a thread per shell block in `wait`.
//!
//! Output is read only when the session asks for it (its buffer has room), so when the
//! client is away the PTY fills and the shell blocks on its next write: nothing is lost,
//! nothing grows without bound. Input the PTY cannot take yet waits here, in order.

use std::io::{self, Write as _};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::pty::{
    KillSignal, MasterFd, PidFd, Pty, PtySystem, ShellCommand, ShellProcess, WindowSize,
};

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
    master: AsyncFd<MasterFd>,
    writer: Box<dyn io::Write + Send>,
    /// Input the PTY has not taken yet (it was full).
    input: Vec<u8>,
    /// Output read by [`Shell::output_pending`] and not handed out yet.
    read_ahead: Vec<u8>,
    /// Largest chunk [`Shell::next_event`] hands out.
    chunk: usize,
    output_done: bool,
    /// Until the exit is seen.
    exit: Option<ExitWatch>,
    exit_code: Option<i32>,
    /// When the shell's exit was seen: what it left behind existed by then.
    exit_seen: Option<std::time::Instant>,
}

/// How the shell's exit is noticed.
enum ExitWatch {
    /// The pidfd, readable once the shell has exited; then `try_wait` reaps it.
    Pidfd {
        fd: AsyncFd<PidFd>,
        process: Box<dyn ShellProcess>,
    },
    /// A thread blocked in `wait` (kernels without `pidfd_open`).
    Thread(oneshot::Receiver<i32>),
}

impl ExitWatch {
    fn start(mut process: Box<dyn ShellProcess>, pid: u32) -> io::Result<ExitWatch> {
        // The same reasoning as for the master in `Shell::start`: `PidFd` owns its
        // descriptor and closes it only when dropped, after `AsyncFd` deregistered it.
        #[allow(deprecated)]
        match PidFd::open(pid).and_then(AsyncFd::new) {
            Ok(fd) => return Ok(ExitWatch::Pidfd { fd, process }),
            Err(e) => tracing::debug!(error = %e, "no pidfd; a thread waits for the shell"),
        }
        let (exit_tx, exit) = oneshot::channel();
        std::thread::Builder::new()
            .name("pty-wait".to_owned())
            .spawn(move || {
                let code = match process.wait() {
                    Ok(code) => code,
                    Err(e) => {
                        tracing::warn!(error = %e, "waiting for the shell");
                        1
                    }
                };
                let _ = exit_tx.send(code);
            })?;
        Ok(ExitWatch::Thread(exit))
    }

    /// Waits for the shell's exit; its code.
    async fn exited(&mut self) -> i32 {
        match self {
            ExitWatch::Pidfd { fd, process } => loop {
                let Ok(mut ready) = fd.readable().await else {
                    return 1;
                };
                match process.try_wait() {
                    Ok(Some(code)) => return code,
                    Ok(None) => ready.clear_ready(),
                    Err(e) => {
                        tracing::warn!(error = %e, "waiting for the shell");
                        return 1;
                    }
                }
            },
            ExitWatch::Thread(exit) => exit.await.unwrap_or(1),
        }
    }

    /// The exit code if the shell has exited, without waiting.
    fn try_exited(&mut self) -> Option<i32> {
        match self {
            ExitWatch::Pidfd { process, .. } => match process.try_wait() {
                Ok(code) => code,
                Err(_) => Some(1),
            },
            ExitWatch::Thread(exit) => match exit.try_recv() {
                Ok(code) => Some(code),
                Err(oneshot::error::TryRecvError::Closed) => Some(1),
                Err(oneshot::error::TryRecvError::Empty) => None,
            },
        }
    }
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("pid", &self.pty.pid())
            .field("exit_code", &self.exit_code)
            .finish_non_exhaustive()
    }
}

impl Shell {
    /// Starts `command` on a new PTY of `size`; output comes in chunks of at most `chunk`
    /// bytes (whatever the terminal holds, up to that size). Must run on the runtime.
    pub fn start(
        system: &dyn PtySystem,
        command: &ShellCommand,
        size: WindowSize,
        chunk: usize,
    ) -> io::Result<Shell> {
        let spawned = system.spawn(command, size)?;
        let pty = spawned.pty;
        // `new` is deprecated for types that might close their descriptor while registered
        // (the safe way, `register`, is `unsafe`, which this workspace forbids). `MasterFd`
        // owns its duplicate exclusively and closes it only when dropped, after `AsyncFd`
        // has deregistered it, which is what `register` asks.
        #[allow(deprecated)]
        let registered = AsyncFd::new(spawned.master);
        let master = match registered {
            Ok(master) => master,
            Err(e) => {
                // Nothing would ever read it or wait for it: end it now.
                pty.kill(KillSignal::Kill, std::time::Instant::now());
                return Err(e);
            }
        };
        let exit = match ExitWatch::start(spawned.process, pty.pid()) {
            Ok(exit) => exit,
            Err(e) => {
                // Nothing would reap it: end it now rather than leave a zombie for good.
                pty.kill(KillSignal::Kill, std::time::Instant::now());
                return Err(e);
            }
        };
        Ok(Shell {
            pty,
            master,
            writer: spawned.writer,
            input: Vec::new(),
            read_ahead: Vec::new(),
            chunk: chunk.max(1),
            output_done: false,
            exit: Some(exit),
            exit_code: None,
            exit_seen: None,
        })
    }

    /// The shell's pid.
    pub fn pid(&self) -> u32 {
        self.pty.pid()
    }

    /// Sends input to the PTY (never blocks: what it cannot take yet is kept, in order,
    /// and written as it makes room).
    pub fn write(&mut self, data: Vec<u8>) {
        if self.input.is_empty() {
            self.input = data;
        } else {
            self.input.extend_from_slice(&data);
        }
        self.flush_input();
    }

    /// Writes as much pending input as the PTY takes now.
    fn flush_input(&mut self) {
        while !self.input.is_empty() {
            match self.writer.write(&self.input) {
                Ok(0) => break,
                Ok(n) => {
                    self.input.drain(..n.min(self.input.len()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "writing to the PTY");
                    self.input.clear();
                }
            }
        }
    }

    /// Resizes the terminal.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        self.pty.resize(size)
    }

    /// Reads whatever the terminal holds now, up to `self.chunk` in all, into `out`.
    /// Returns false once the output has ended.
    fn read_now(&mut self, out: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; 4096];
        while out.len() < self.chunk {
            let want = buf.len().min(self.chunk - out.len());
            // A WouldBlock clears the readiness, and the runtime wakes `readable` again when
            // there is more.
            let result = self.master.try_io(Interest::READABLE, |fd| {
                fd.read(buf.get_mut(..want).unwrap_or_default())
            });
            match result {
                Ok(0) => return false,
                Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // `EIO`: Linux's answer once the last holder of the terminal is gone.
                Err(_) => return false,
            }
        }
        true
    }

    /// The next thing that happens: output (only if `read`), the end of output, or the
    /// shell's exit. Each of the last two is reported once; then only the rest can come.
    pub async fn next_event(&mut self, read: bool) -> ShellEvent {
        loop {
            if read && !self.read_ahead.is_empty() {
                return ShellEvent::Output(std::mem::take(&mut self.read_ahead));
            }
            let read = read && !self.output_done;
            let writing = !self.input.is_empty();
            let event = tokio::select! {
                ready = self.master.readable(), if read => match ready {
                    Ok(guard) => {
                        drop(guard);
                        let mut out = Vec::new();
                        let open = self.read_now(&mut out);
                        // Output first; an end found with it is found again by the next
                        // read (nothing cleared the readiness) and reported then.
                        if !out.is_empty() {
                            Some(ShellEvent::Output(out))
                        } else if !open {
                            Some(ShellEvent::OutputEnd)
                        } else {
                            None
                        }
                    }
                    Err(_) => Some(ShellEvent::OutputEnd),
                },
                ready = self.master.writable(), if writing => {
                    if ready.is_ok() {
                        self.flush_input();
                    } else {
                        self.input.clear();
                    }
                    None
                },
                code = async {
                    match self.exit.as_mut() {
                        Some(exit) => exit.exited().await,
                        None => std::future::pending().await,
                    }
                } => Some(ShellEvent::Exited(code)),
            };
            match event {
                Some(ShellEvent::OutputEnd) => {
                    self.output_done = true;
                    return ShellEvent::OutputEnd;
                }
                Some(ShellEvent::Exited(code)) => {
                    self.exit = None;
                    self.exit_code = Some(code);
                    self.exit_seen = Some(std::time::Instant::now());
                    return ShellEvent::Exited(code);
                }
                Some(output) => return output,
                None => {}
            }
        }
    }

    /// Whether the PTY reached its end (every holder of the terminal is gone).
    pub fn output_done(&self) -> bool {
        self.output_done
    }

    /// Whether output is waiting in the terminal right now (it is read ahead, and handed
    /// out by the next [`Shell::next_event`]).
    pub fn output_pending(&mut self) -> bool {
        if self.read_ahead.is_empty() && !self.output_done {
            let mut out = Vec::new();
            if !self.read_now(&mut out) {
                self.output_done = out.is_empty();
            }
            self.read_ahead = out;
        }
        !self.read_ahead.is_empty()
    }

    /// The exit code, if the shell exited and [`Shell::next_event`] (or a kill) saw it.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    fn poll_exit(&mut self) {
        if let Some(code) = self.exit.as_mut().and_then(ExitWatch::try_exited) {
            self.exit_code = Some(code);
            self.exit = None;
            self.exit_seen = Some(std::time::Instant::now());
        }
    }

    /// Hangs up on what is left of the session after the shell exited by itself (jobs it
    /// left behind get SIGHUP, as a terminal hangup does; `nohup` ones live on).
    pub fn hang_up(&self) {
        // Everything it left behind existed when its exit was seen: a scan of the processes
        // begun since then (perhaps for another session) finds it all.
        let since = self.exit_seen.unwrap_or_else(std::time::Instant::now);
        let n = self.pty.kill(KillSignal::Hangup, since);
        if n > 0 {
            tracing::debug!(processes = n, "hung up on processes left by the shell");
        }
    }

    /// Ends the shell and everything in its session: SIGHUP (and SIGCONT), then SIGKILL to
    /// whatever is left after `grace`; waits until the shell is reaped.
    pub async fn terminate(&mut self, grace: Duration) {
        const POLL: Duration = Duration::from_millis(25);
        // A scan of the processes up to one poll old will do for the hangup and the polls
        // (sessions ending together share it): a process it misses is found by a later poll,
        // and the SIGKILL below, if it comes to that, takes a fresh scan.
        let recent = || {
            std::time::Instant::now()
                .checked_sub(POLL)
                .unwrap_or_else(std::time::Instant::now)
        };
        let pid = self.pid();
        self.pty.kill(KillSignal::Hangup, recent());
        let deadline = Instant::now() + grace;
        loop {
            self.poll_exit();
            if self.exit_code.is_some() && self.pty.survivors(recent()) == 0 {
                tracing::debug!(pid, "shell and its processes ended on SIGHUP");
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let killed = self.pty.kill(KillSignal::Kill, std::time::Instant::now());
        tracing::debug!(pid, killed, "sent SIGKILL to what was left of the session");
        let reap_deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < reap_deadline {
            self.poll_exit();
            if self.exit_code.is_some() && self.pty.survivors(recent()) == 0 {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        tracing::warn!(pid, "processes of the session survived SIGKILL");
    }
}
