//! The local terminal: raw mode (restored on every exit path: normal return, error, panic,
//! signal), its size, standard input and the signals, all turned into [`Input`].
//!
//! - On a TTY, standard input goes raw (no echo, no line editing, no signals from keys), so
//!   Ctrl-C arrives as byte 0x03 and goes to the remote shell, as with the plugin.
//! - SIGINT, SIGQUIT and SIGTSTP sent to the process are forwarded as 0x03, 0x1c and 0x1a
//!   (the plugin's `SignalsByteMap`) once the session is ready; before that (waiting for
//!   the agent), SIGINT aborts. SIGWINCH sends the new size; SIGTERM and SIGHUP detach (the
//!   session stays resumable).
//! - Without a TTY the size is the plugin's fallback, 300 × 100.

use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use portcullis_stream::SizeData;
use rustix::termios::{self, OptionalActions, Termios};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::channel::Input;

/// The plugin's size when the terminal's cannot be read.
pub const FALLBACK_SIZE: SizeData = SizeData {
    cols: 300,
    rows: 100,
};

/// The terminal settings to put back, while raw mode is on.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// The terminal's size (from stdout, else stdin), or [`FALLBACK_SIZE`].
pub fn size() -> SizeData {
    let read = termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| termios::tcgetwinsize(std::io::stdin()));
    match read {
        Ok(ws) if ws.ws_col > 0 && ws.ws_row > 0 => SizeData {
            cols: u32::from(ws.ws_col),
            rows: u32::from(ws.ws_row),
        },
        _ => FALLBACK_SIZE,
    }
}

/// Puts the terminal back as it was before [`RawMode::enable`], if raw mode is on. Safe to
/// call any number of times, from a panic hook or a signal path.
pub fn restore() {
    let saved = SAVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &saved);
    }
}

/// Raw mode on standard input; restored when dropped (and by the panic hook).
#[derive(Debug)]
pub struct RawMode {
    _private: (),
}

impl RawMode {
    /// Switches standard input (a TTY) to raw mode and installs a panic hook that restores
    /// it before the panic message is printed.
    pub fn enable() -> std::io::Result<RawMode> {
        let stdin = std::io::stdin();
        let original = termios::tcgetattr(&stdin)?;
        let mut raw = original.clone();
        raw.make_raw();
        *SAVED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(original);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        if let Err(e) = termios::tcsetattr(&stdin, OptionalActions::Now, &raw) {
            restore();
            return Err(e.into());
        }
        Ok(RawMode { _private: () })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Reads standard input on its own thread (blocking reads cannot be cancelled, so it is
/// never joined: the process exits around it), sending [`Input::Data`] up to 1024 bytes at a
/// time and [`Input::Eof`] at the end.
pub fn spawn_stdin_reader(tx: mpsc::Sender<Input>) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0_u8; 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Input::Eof);
                        return;
                    }
                    Ok(n) => {
                        let data = buf.get(..n).unwrap_or_default().to_vec();
                        if tx.blocking_send(Input::Data(data)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        let _ = tx.blocking_send(Input::Eof);
                        return;
                    }
                }
            }
        });
    if spawned.is_err() {
        tracing::error!("could not start the stdin reader");
    }
}

/// Turns signals into [`Input`] (see the module documentation); `ready` tells whether the
/// session has started (SIGINT is forwarded) or not (SIGINT aborts, as [`Input::Detach`]
/// with reason `SIGINT`). Needs a Tokio runtime.
pub fn spawn_signal_forwarder(
    tx: mpsc::Sender<Input>,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut winch = signal(SignalKind::window_change())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut tstp = signal(SignalKind::from_raw(libc::SIGTSTP))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let input = tokio::select! {
                Some(()) = winch.recv() => Input::Size(size()),
                Some(()) = int.recv() => if ready.load(Ordering::SeqCst) {
                    Input::Data(vec![0x03])
                } else {
                    Input::Detach("SIGINT".into())
                },
                Some(()) = quit.recv() => Input::Data(vec![0x1c]),
                Some(()) = tstp.recv() => Input::Data(vec![0x1a]),
                Some(()) = term.recv() => Input::Detach("SIGTERM".into()),
                Some(()) = hup.recv() => Input::Detach("SIGHUP".into()),
                else => return,
            };
            if tx.send(input).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}
