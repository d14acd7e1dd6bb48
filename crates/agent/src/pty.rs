//! The operating system behind a small trait: spawn a shell on a PTY, resize it, write to
//! it, signal everything it started.
//!
//! [`NativePtySystem`] uses `portable-pty` (openpty, then fork with `setsid` and `TIOCSCTTY`,
//! so the shell is a session leader with the PTY as its controlling terminal and a `0x03`
//! written to the master interrupts the foreground process group). The master is read and
//! written non-blocking, on the async runtime ([`MasterFd`]); only the wait for the shell's
//! exit blocks, on a thread of its own.
//!
//! "Everything it started" is the shell's *session*: an interactive shell puts each job in
//! its own process group, but they all stay in the session the shell leads, so signals go
//! to every process whose session id is the shell's pid (found in `/proc`), plus the
//! shell's process group for systems without `/proc`. A process that left the session
//! (`setsid`, a daemon) is out of reach, as with a terminal hangup; systemd's
//! `KillMode=mixed` catches those when the agent itself stops.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use portable_pty::{CommandBuilder, MasterPty, PtySize};
use rustix::process::{Pid, Signal};

/// The terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Default for WindowSize {
    fn default() -> WindowSize {
        WindowSize { cols: 80, rows: 24 }
    }
}

impl WindowSize {
    /// From a client's `{"cols","rows"}`; `None` for a zero or absurd size.
    pub fn from_cells(cols: u32, rows: u32) -> Option<WindowSize> {
        let cols = u16::try_from(cols).ok().filter(|c| *c > 0)?;
        let rows = u16::try_from(rows).ok().filter(|r| *r > 0)?;
        Some(WindowSize { cols, rows })
    }
}

/// What to run: a login shell, in a home directory, with a clean environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// The shell's path. It runs as a login shell (`argv[0]` is `-NAME`).
    pub program: PathBuf,
    /// The working directory.
    pub home: PathBuf,
    /// The whole environment (nothing of the agent's own leaks in).
    pub env: Vec<(String, String)>,
}

/// The agent's own user, as far as a shell needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Home directory.
    pub home: PathBuf,
    /// Login shell (from the password database).
    pub shell: PathBuf,
}

/// The password database entry of the agent's user (`/etc/passwd`; no NSS).
pub fn current_user() -> Option<UserInfo> {
    let uid = rustix::process::getuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [name, _, id, _, _, home, shell, ..] if id.parse::<u32>().ok() == Some(uid) => {
                Some(UserInfo {
                    name: (*name).to_owned(),
                    home: PathBuf::from(home),
                    shell: PathBuf::from(shell),
                })
            }
            _ => None,
        }
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_real_shell(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    path.is_absolute() && !matches!(name, "nologin" | "false" | "true") && is_executable(path)
}

/// The user's login shell: `$SHELL`, else the password database's, else `/bin/bash`, else
/// `/bin/sh`; started in the home directory with `TERM=xterm-256color`.
pub fn login_shell() -> ShellCommand {
    let user = current_user();
    let env_shell = std::env::var_os("SHELL").map(PathBuf::from);
    let program = env_shell
        .into_iter()
        .chain(user.as_ref().map(|u| u.shell.clone()))
        .chain([PathBuf::from("/bin/bash")])
        .find(|p| is_real_shell(p))
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let home = user
        .as_ref()
        .map(|u| u.home.clone())
        .filter(|h| h.is_dir())
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .filter(|h| h.is_dir())
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = user
        .as_ref()
        .map(|u| u.name.clone())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    shell_command(program, home, &name)
}

/// A login shell `program` for user `name` in `home`, with the environment a login gives.
pub fn shell_command(program: PathBuf, home: PathBuf, name: &str) -> ShellCommand {
    let mut env = vec![
        ("TERM".to_owned(), "xterm-256color".to_owned()),
        ("HOME".to_owned(), home.to_string_lossy().into_owned()),
        ("SHELL".to_owned(), program.to_string_lossy().into_owned()),
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
    ];
    if !name.is_empty() {
        env.push(("USER".to_owned(), name.to_owned()));
        env.push(("LOGNAME".to_owned(), name.to_owned()));
    }
    for key in ["LANG", "LC_ALL", "TZ"] {
        if let Ok(value) = std::env::var(key) {
            env.push((key.to_owned(), value));
        }
    }
    ShellCommand { program, home, env }
}

/// Which signal [`Pty::kill`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSignal {
    /// SIGHUP (with SIGCONT, so stopped jobs can act on it): the terminal went away.
    Hangup,
    /// SIGKILL.
    Kill,
}

/// A running shell's terminal and process tree.
pub trait Pty: Send {
    /// The shell's pid (also its session and process group id).
    fn pid(&self) -> u32;
    /// Tells the kernel, and so the foreground job (SIGWINCH), the new size.
    fn resize(&self, size: WindowSize) -> io::Result<()>;
    /// Signals every live process of the shell's session that a scan of the system's
    /// processes begun at or after `since` found; returns how many were signalled.
    fn kill(&self, signal: KillSignal, since: Instant) -> usize;
    /// How many processes of the shell's session a scan begun at or after `since` found
    /// alive (zombies do not count).
    fn survivors(&self, since: Instant) -> usize;
}

/// The shell's exit, as the blocking waiter sees it.
pub trait ShellProcess: Send {
    /// Blocks until the shell exits (reaping it); its exit code (128 + n for signal n is
    /// the shell convention; here, a killed shell reports 1 as `portable-pty` does).
    fn wait(&mut self) -> io::Result<i32>;
    /// The exit code if the shell has exited (reaping it), without blocking.
    fn try_wait(&mut self) -> io::Result<Option<i32>>;
}

/// The PTY master's descriptor (a duplicate of it, closed on drop), switched to
/// non-blocking, for reading output on the async runtime. The writer shares its open file,
/// so it does not block either (it returns `WouldBlock` when the terminal's input is full).
#[derive(Debug)]
pub struct MasterFd(RawFd);

impl MasterFd {
    /// Duplicates `fd` (close-on-exec: shells never inherit it) and makes the file
    /// non-blocking.
    fn duplicate(fd: RawFd) -> io::Result<MasterFd> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let dup = MasterFd(fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(0)).map_err(io::Error::from)?);
        let flags = fcntl(dup.0, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(dup.0, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        Ok(dup)
    }

    /// One non-blocking read. `Ok(0)` or an `EIO` error: every holder of the terminal is
    /// gone.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        nix::unistd::read(self.0, buf).map_err(io::Error::from)
    }
}

impl AsRawFd for MasterFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Drop for MasterFd {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.0);
    }
}

/// A shell just started.
pub struct Spawned {
    /// Control of the terminal and the processes.
    pub pty: Box<dyn Pty>,
    /// The PTY's output, non-blocking.
    pub master: MasterFd,
    /// The PTY's input, non-blocking (see [`MasterFd`]).
    pub writer: Box<dyn Write + Send>,
    /// The shell's exit (blocking).
    pub process: Box<dyn ShellProcess>,
}

/// Starts shells on PTYs.
pub trait PtySystem: Send + Sync + std::fmt::Debug {
    /// Opens a PTY of `size` and starts `command` on it as a session leader with the PTY as
    /// its controlling terminal.
    fn spawn(&self, command: &ShellCommand, size: WindowSize) -> io::Result<Spawned>;
}

/// The real thing, with `portable-pty`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativePtySystem;

fn pty_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn pty_size(size: WindowSize) -> PtySize {
    PtySize {
        rows: size.rows,
        cols: size.cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl PtySystem for NativePtySystem {
    fn spawn(&self, command: &ShellCommand, size: WindowSize) -> io::Result<Spawned> {
        let pair = portable_pty::native_pty_system()
            .openpty(pty_size(size))
            .map_err(pty_error)?;
        // Before the shell starts, so a failure here leaves nothing running.
        let fd = pair
            .master
            .as_raw_fd()
            .ok_or_else(|| io::Error::other("the PTY master has no descriptor"))?;
        let master = MasterFd::duplicate(fd)?;
        let writer = pair.master.take_writer().map_err(pty_error)?;
        // The default program is the login shell: `argv[0]` = `-NAME`, program = `$SHELL`
        // of the builder's environment.
        let mut builder = CommandBuilder::new_default_prog();
        builder.env_clear();
        for (key, value) in &command.env {
            builder.env(key, value);
        }
        builder.env("SHELL", &command.program);
        builder.cwd(&command.home);
        let child = pair.slave.spawn_command(builder).map_err(pty_error)?;
        // Only the shell may hold the slave side, or the reader never sees EOF.
        drop(pair.slave);
        let pid = child
            .process_id()
            .ok_or_else(|| io::Error::other("the shell has no process id"))?;
        Ok(Spawned {
            pty: Box::new(NativePty {
                pid,
                master: pair.master,
            }),
            master,
            writer,
            process: Box::new(NativeProcess(child)),
        })
    }
}

struct NativePty {
    pid: u32,
    master: Box<dyn MasterPty + Send>,
}

impl Pty for NativePty {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn resize(&self, size: WindowSize) -> io::Result<()> {
        self.master.resize(pty_size(size)).map_err(pty_error)
    }

    fn kill(&self, signal: KillSignal, since: Instant) -> usize {
        let sig = match signal {
            KillSignal::Hangup => Signal::HUP,
            KillSignal::Kill => Signal::KILL,
        };
        let Some(sid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else {
            return 0;
        };
        let mut signalled = 0;
        for pid in session_members(sid, since) {
            // The scan may be a few milliseconds old: make sure the pid is still one of ours.
            let still = read_stat(pid.as_raw_nonzero().get()).is_some_and(|stat| {
                stat.session == sid.as_raw_nonzero().get() && !matches!(stat.state, 'Z' | 'X')
            });
            if still && rustix::process::kill_process(pid, sig).is_ok() {
                signalled += 1;
            }
            if signal == KillSignal::Hangup {
                let _ = rustix::process::kill_process(pid, Signal::CONT);
            }
        }
        // Without /proc, at least the shell's own process group.
        let _ = rustix::process::kill_process_group(sid, sig);
        signalled
    }

    fn survivors(&self, since: Instant) -> usize {
        i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .map_or(0, |sid| session_members(sid, since).len())
    }
}

struct NativeProcess(Box<dyn portable_pty::Child + Send + Sync>);

impl ShellProcess for NativeProcess {
    fn wait(&mut self) -> io::Result<i32> {
        let status = self.0.wait()?;
        Ok(i32::try_from(status.exit_code()).unwrap_or(i32::MAX))
    }

    fn try_wait(&mut self) -> io::Result<Option<i32>> {
        Ok(self
            .0
            .try_wait()?
            .map(|status| i32::try_from(status.exit_code()).unwrap_or(i32::MAX)))
    }
}

/// A process's pidfd (Linux 5.3+): readable once the process has exited, so the runtime's
/// poller can wait for it instead of a thread per shell. Close-on-exec, as `pidfd_open`
/// makes it.
#[derive(Debug)]
pub struct PidFd(std::os::fd::OwnedFd);

impl PidFd {
    /// The pidfd of `pid`, a child of ours not yet reaped; an error where the kernel has no
    /// `pidfd_open`.
    pub fn open(pid: u32) -> io::Result<PidFd> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("not a process id"))?;
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
        Ok(PidFd(fd))
    }
}

impl std::os::fd::AsRawFd for PidFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// Every live (not zombie) process by session id, from one scan of `/proc`.
struct ProcessTable {
    /// When the scan began: it saw every process that existed then and still did when read.
    begun: Instant,
    by_session: HashMap<i32, Vec<Pid>>,
}

/// The last scan, shared: a scan reads every process's `stat` (tens of milliseconds with
/// thousands of processes), and when many sessions end together, each scanning on its own
/// made ending them quadratic.
static PROCESS_TABLE: Mutex<Option<Arc<ProcessTable>>> = Mutex::new(None);

/// The live (not zombie) processes whose session id is `sid`, from a scan of `/proc` begun
/// at or after `since`: a scan made for another session serves this one if it is recent
/// enough, and a new scan is made (and shared) otherwise.
pub fn session_members(sid: Pid, since: Instant) -> Vec<Pid> {
    let mut shared = PROCESS_TABLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let table = match shared.as_ref().filter(|t| t.begun >= since) {
        Some(table) => Arc::clone(table),
        None => {
            let table = Arc::new(scan_processes());
            *shared = Some(Arc::clone(&table));
            table
        }
    };
    table
        .by_session
        .get(&sid.as_raw_nonzero().get())
        .cloned()
        .unwrap_or_default()
}

fn scan_processes() -> ProcessTable {
    let begun = Instant::now();
    let mut by_session: HashMap<i32, Vec<Pid>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for raw in entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        {
            let Some(stat) = read_stat(raw) else { continue };
            if matches!(stat.state, 'Z' | 'X') {
                continue;
            }
            if let Some(pid) = Pid::from_raw(raw) {
                by_session.entry(stat.session).or_default().push(pid);
            }
        }
    }
    ProcessTable { begun, by_session }
}

/// The fields of `/proc/PID/stat` the agent needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `D`, `Z`, ...
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgrp: i32,
    /// Session.
    pub session: i32,
}

/// Reads `/proc/PID/stat`; `None` if the process is gone.
pub fn read_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/PID/stat` line (the command name may hold spaces and parentheses, so
/// the fields start after the *last* `)`).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = text.get(text.rfind(')')?.saturating_add(1)..)?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(ProcStat {
        state,
        ppid,
        pgrp,
        session,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_begun() -> Instant {
        PROCESS_TABLE
            .lock()
            .unwrap()
            .as_ref()
            .map(|t| t.begun)
            .unwrap()
    }

    #[test]
    fn one_scan_of_the_processes_serves_every_session_that_asked_before_it_began() {
        // A session of our own: the test's may be led from outside this PID namespace
        // (session id 0, as in CI's container), which no scan can name.
        let mut leader = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        let raw = i32::try_from(leader.id()).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while read_stat(raw).map(|s| s.session) != Some(raw) {
            assert!(Instant::now() < deadline, "setsid did not make a session");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let sid = Pid::from_raw(raw).unwrap();
        let asked = Instant::now();
        assert!(session_members(sid, asked).contains(&sid));
        let begun = scan_begun();
        assert!(begun >= asked);
        // Asked before that scan began: it serves again, no new scan.
        assert!(session_members(sid, asked).contains(&sid));
        assert_eq!(scan_begun(), begun);
        // Asked after it: a new one.
        let later = Instant::now();
        assert!(session_members(sid, later).contains(&sid));
        assert!(scan_begun() >= later);
        leader.kill().unwrap();
        leader.wait().unwrap();
    }

    #[test]
    fn stat_lines() {
        let s = parse_stat("1234 (a (weird) name) S 1 1234 1234 34816 1234 4194560 0").unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 1,
                pgrp: 1234,
                session: 1234
            }
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(
            WindowSize::from_cells(120, 40),
            Some(WindowSize {
                cols: 120,
                rows: 40
            })
        );
        assert_eq!(WindowSize::from_cells(0, 40), None);
        assert_eq!(WindowSize::from_cells(70_000, 40), None);
    }

    #[test]
    fn the_login_shell_exists() {
        let shell = login_shell();
        assert!(shell.program.is_absolute());
        assert!(shell
            .env
            .iter()
            .any(|(k, v)| k == "TERM" && v == "xterm-256color"));
    }
}
