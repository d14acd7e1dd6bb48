//! Session logs: what each session's terminal showed, kept by the server in
//! `<dir>/<session-id>.log` (Session Manager's "session data" logging, to a local file).
//!
//! The relay hands every `output_stream_data` frame from the agent to the session's
//! [`Recorder`]; its writer task decodes the frame (a bad digest is not logged) and appends
//! the output in sequence order, each message once: an agent resends what its client has
//! not acknowledged, after a lost acknowledgement, a redial or a resume, and the log must
//! not show it twice. The server keeps the log, not the agent: the node's own root cannot
//! rewrite what it showed.
//!
//! Output is gathered for up to 50 ms (or 256 KiB) and the file opened, appended to and
//! closed per batch (no descriptor held per idle session, one write per burst of typing),
//! created with mode 0600 in a 0700 directory: a terminal shows secrets. A server that
//! stops writes what it had gathered; one killed outright loses up to those 50 ms.
//! When the writer falls behind, the relay waits for it rather than lose output.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use portcullis_stream::message::{ClientMessage, MessageType, PayloadType};
use tokio::sync::mpsc;

/// Frames queued per session before the relay waits for the writer.
const QUEUE: usize = 256;
/// How long output gathers before it is written, unless [`WRITE_SIZE`] is reached first.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);
const WRITE_SIZE: usize = 256 * 1024;
/// Messages held while an earlier one is missing, before the log notes a gap and goes on.
const MAX_HELD: usize = 1024;

/// Where session logs are written.
#[derive(Debug, Clone)]
pub struct SessionLogs {
    dir: PathBuf,
    counts: Arc<Counts>,
}

/// What the writers have done since the server started (for `/metrics`).
#[derive(Debug, Default)]
struct Counts {
    bytes: AtomicU64,
    failures: AtomicU64,
}

impl SessionLogs {
    /// Logs in `dir`, created (mode 0700) if missing.
    pub fn new(dir: PathBuf) -> io::Result<SessionLogs> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(SessionLogs {
            dir,
            counts: Arc::default(),
        })
    }

    /// Bytes written to session logs, and writes that failed (each stops its session's
    /// log), since the server started.
    pub fn figures(&self) -> (u64, u64) {
        (
            self.counts.bytes.load(Ordering::Relaxed),
            self.counts.failures.load(Ordering::Relaxed),
        )
    }

    /// The log file of `session`, or `None` for an id that is not a file name.
    pub fn path(&self, session: &str) -> Option<PathBuf> {
        log_path(&self.dir, session)
    }

    /// Starts the writer of `session`'s log. It runs until every [`Recorder`] clone is
    /// dropped (the session's relay is gone), then writes what is left.
    pub fn recorder(&self, session: &str) -> Option<Recorder> {
        let path = self.path(session)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            path,
            counts: Arc::clone(&self.counts),
            order: InOrder::default(),
            frames: rx,
            pending: Vec::new(),
            arrived: None,
            failed: false,
        };
        tokio::spawn(writer.run());
        Some(Recorder(tx))
    }
}

/// `dir/<session>.log`, if `session` is a plain file name (session ids are a user name, a
/// dash and hex digits; nothing here may climb out of `dir`).
pub fn log_path(dir: &Path, session: &str) -> Option<PathBuf> {
    let plain = !session.is_empty()
        && !session.starts_with('.')
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    plain.then(|| dir.join(format!("{session}.log")))
}

/// Feeds one session's log.
#[derive(Debug, Clone)]
pub struct Recorder(mpsc::Sender<Bytes>);

impl Recorder {
    /// Logs `frame` if it carries output (other frames are ignored). Waits while the
    /// writer is a full queue behind.
    pub async fn record(&self, frame: &Bytes) {
        if MessageType::peek(frame) == Some(MessageType::OutputStreamData) {
            // A closed writer has already reported why.
            let _ = self.0.send(frame.clone()).await;
        }
    }
}

/// One session's log writer. If its task is cancelled (the server's runtime shutting down)
/// while output waits to be written, `Drop` writes it, with whatever is still queued.
struct Writer {
    path: PathBuf,
    counts: Arc<Counts>,
    order: InOrder,
    frames: mpsc::Receiver<Bytes>,
    /// Output accepted and not yet handed to a write.
    pending: Vec<u8>,
    /// When the first of `pending` arrived (milliseconds since the epoch): the event's time.
    arrived: Option<i64>,
    failed: bool,
}

impl Writer {
    async fn run(mut self) {
        // A log begun by an earlier run of the server: its messages went on counting while
        // the server was down, so it goes on from the first one it is sent. (Looked at here,
        // not where the recorder is made: that is under the relay's lock.)
        if tokio::fs::metadata(&self.path)
            .await
            .is_ok_and(|meta| meta.len() > 0)
        {
            self.order = InOrder::continuing();
        }
        let mut batch = Vec::new();
        let mut open = true;
        while open {
            if self.frames.recv_many(&mut batch, QUEUE).await == 0 {
                break;
            }
            // Typing sends a frame per keystroke: gather a moment's worth into one write.
            let until = tokio::time::Instant::now() + GATHER;
            loop {
                for frame in batch.drain(..) {
                    self.take(&frame);
                }
                if self.pending.len() >= WRITE_SIZE {
                    break;
                }
                match tokio::time::timeout_at(until, self.frames.recv_many(&mut batch, QUEUE)).await
                {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            // A character split between two frames waits for its end: events are text.
            let keep = unfinished_char(&self.pending);
            let rest = self.pending.split_off(self.pending.len() - keep);
            let out = std::mem::replace(&mut self.pending, rest);
            let Some(arrived) = self.arrived.take() else {
                continue;
            };
            if !self.pending.is_empty() {
                self.arrived = Some(arrived);
            }
            if out.is_empty() || self.failed {
                continue;
            }
            let path = self.path.clone();
            let len = out.len() as u64;
            let written = tokio::task::spawn_blocking(move || append(&path, &out, arrived)).await;
            self.check(written.map_err(io::Error::other).and_then(|r| r), len);
        }
    }

    fn take(&mut self, frame: &[u8]) {
        if let Ok(message) = ClientMessage::decode(frame) {
            self.order.accept(
                message.sequence_number,
                message.payload_type,
                message.payload,
                &mut self.pending,
            );
            if !self.pending.is_empty() && self.arrived.is_none() {
                self.arrived = Some(now_ms());
            }
        }
    }

    fn check(&mut self, written: io::Result<()>, len: u64) {
        match written {
            Ok(()) => {
                self.counts.bytes.fetch_add(len, Ordering::Relaxed);
            }
            Err(e) => {
                // Once: the session goes on, its log does not.
                tracing::error!(path = %self.path.display(), error = %e, "session log not written");
                self.counts.failures.fetch_add(1, Ordering::Relaxed);
                self.failed = true;
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        while let Ok(frame) = self.frames.try_recv() {
            self.take(&frame);
        }
        if !self.pending.is_empty() && !self.failed {
            let arrived = self.arrived.unwrap_or_else(now_ms);
            let written = append(&self.path, &self.pending, arrived);
            self.check(written, self.pending.len() as u64);
        }
    }
}

/// Appends `bytes` to the log and one record to its index: where the log now ends, when
/// the bytes arrived and when they were written. The log is written first: an index that
/// lost its last record after a crash still describes a prefix of the log.
fn append(log: &Path, bytes: &[u8], arrived: i64) -> io::Result<()> {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
    };
    let mut file = open(log)?;
    file.write_all(bytes)?;
    let end = file.metadata()?.len();
    let mut record = [0u8; INDEX_RECORD];
    for (at, value) in [end, arrived as u64, now_ms() as u64]
        .into_iter()
        .enumerate()
    {
        if let Some(slot) = record.get_mut(at * 8..at * 8 + 8) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
    }
    open(&log.with_extension("idx"))?.write_all(&record)
}

/// An index record: the log's length after a write, the write's arrival and ingestion
/// times (milliseconds since the epoch), little-endian.
const INDEX_RECORD: usize = 24;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How many bytes at the end of `bytes` begin a UTF-8 character they do not finish.
fn unfinished_char(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let Some(&b) = bytes.get(bytes.len() - back) else {
            return 0;
        };
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: its lead is further back
        }
        let needs = match b {
            0xF0..=0xF4 => 4,
            0xE0..=0xEF => 3,
            0xC2..=0xDF => 2,
            _ => 1, // ASCII, or a byte no character starts with
        };
        return if needs > back { back } else { 0 };
    }
    0
}

/// One write of a session's log: what CloudWatch Logs calls an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Where its bytes are in the log.
    pub start: u64,
    pub end: u64,
    /// When its output arrived, milliseconds since the epoch.
    pub timestamp: i64,
    /// When it was written.
    pub ingestion_time: i64,
}

impl SessionLogs {
    /// The events of `session`'s log, oldest first; `None` if it has no log.
    pub fn events(&self, session: &str) -> io::Result<Option<Vec<Event>>> {
        let Some(path) = self.path(session) else {
            return Ok(None);
        };
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = meta.len();
        let index = match std::fs::read(path.with_extension("idx")) {
            Ok(index) => index,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut events = Vec::new();
        let mut start = 0;
        for record in index.chunks_exact(INDEX_RECORD) {
            let field = |at: usize| {
                record
                    .get(at * 8..at * 8 + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_le_bytes)
            };
            let end = field(0).min(len);
            if end > start {
                events.push(Event {
                    start,
                    end,
                    timestamp: field(1) as i64,
                    ingestion_time: field(2) as i64,
                });
                start = end;
            }
        }
        if len > start {
            // Written, not indexed (a crash between the two): the rest, at the log's time.
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            events.push(Event {
                start,
                end: len,
                timestamp: modified,
                ingestion_time: modified,
            });
        }
        Ok(Some(events))
    }

    /// The bytes of `events` (consecutive, from [`SessionLogs::events`]), each on its own.
    pub fn read(&self, session: &str, events: &[Event]) -> io::Result<Vec<Vec<u8>>> {
        use std::io::{Read as _, Seek as _};
        let (Some(path), Some(first)) = (self.path(session), events.first()) else {
            return Ok(Vec::new());
        };
        let mut file = std::fs::File::open(path)?;
        file.seek(io::SeekFrom::Start(first.start))?;
        events
            .iter()
            .map(|e| {
                let mut bytes = vec![0; usize::try_from(e.end - e.start).unwrap_or(0)];
                file.read_exact(&mut bytes)?;
                Ok(bytes)
            })
            .collect()
    }

    /// The sessions that have a log, by name.
    pub fn sessions(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let session = name.strip_suffix(".log")?;
                log_path(&self.dir, session).map(|_| session.to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Puts an agent's messages back in sequence order, each once. The agent numbers every
/// message it sends from 0 (handshake and exit code included), so only output and
/// standard error are written, but every number counts.
#[derive(Debug, Default)]
struct InOrder {
    next: i64,
    held: BTreeMap<i64, (PayloadType, Vec<u8>)>,
    /// Take the next message's number as the start (see [`InOrder::continuing`]).
    continuing: bool,
}

impl InOrder {
    /// For a log an earlier server wrote: the first message accepted sets the count. What
    /// that server logged and the client had not acknowledged comes again, and is logged
    /// again: the one case where output appears twice.
    fn continuing() -> InOrder {
        InOrder {
            continuing: true,
            ..InOrder::default()
        }
    }

    fn accept(&mut self, seq: i64, kind: PayloadType, payload: Vec<u8>, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.continuing) {
            self.next = seq;
        }
        if seq < self.next {
            return;
        }
        self.held.insert(seq, (kind, payload));
        if self.held.len() > MAX_HELD {
            // The missing message is not coming (its sender gave up on it): say so, go on.
            if let Some(&first) = self.held.keys().next() {
                let note = format!(
                    "\r\n[portcullis: messages {}..{} of this session are missing from its log]\r\n",
                    self.next,
                    first - 1
                );
                out.extend_from_slice(note.as_bytes());
                self.next = first;
            }
        }
        while let Some((kind, payload)) = self.held.remove(&self.next) {
            if matches!(kind, PayloadType::Output | PayloadType::StdErr) {
                out.extend_from_slice(&payload);
            }
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(order: &mut InOrder, seqs: &[i64]) -> String {
        let mut out = Vec::new();
        for &seq in seqs {
            order.accept(
                seq,
                PayloadType::Output,
                format!("{seq};").into_bytes(),
                &mut out,
            );
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn repeats_are_dropped_and_late_messages_take_their_place() {
        let mut order = InOrder::default();
        assert_eq!(feed(&mut order, &[0, 1, 1, 0, 3, 4]), "0;1;");
        assert_eq!(feed(&mut order, &[2, 3]), "2;3;4;");
        assert_eq!(feed(&mut order, &[5]), "5;");
    }

    #[test]
    fn only_terminal_bytes_are_written_but_every_message_counts() {
        let mut order = InOrder::default();
        let mut out = Vec::new();
        order.accept(0, PayloadType::HandshakeRequest, b"{}".to_vec(), &mut out);
        order.accept(1, PayloadType::Output, b"$ ".to_vec(), &mut out);
        order.accept(2, PayloadType::StdErr, b"oops".to_vec(), &mut out);
        order.accept(3, PayloadType::ExitCode, b"0".to_vec(), &mut out);
        assert_eq!(out, b"$ oops");
        assert_eq!(order.next, 4);
    }

    #[test]
    fn a_log_from_an_earlier_server_goes_on_from_the_first_message() {
        let mut order = InOrder::continuing();
        assert_eq!(feed(&mut order, &[500, 502, 501, 500]), "500;501;502;");
    }

    #[test]
    fn a_gap_that_never_fills_is_noted() {
        let mut order = InOrder::default();
        let later: Vec<i64> = (2..=(MAX_HELD as i64 + 2)).collect();
        let out = feed(&mut order, &[0]) + &feed(&mut order, &later);
        assert!(out.starts_with("0;\r\n[portcullis: messages 1..1 of this session are missing"));
        assert!(out.ends_with(&format!("{};", MAX_HELD + 2)));
    }

    fn output(seq: i64, text: &str) -> Bytes {
        ClientMessage {
            message_type: MessageType::OutputStreamData,
            schema_version: 1,
            created_date: 1,
            sequence_number: seq,
            flags: 0,
            message_id: portcullis_stream::message::MessageId::NIL,
            payload_type: PayloadType::Output,
            payload: text.as_bytes().to_vec(),
        }
        .encode()
        .into()
    }

    #[test]
    fn the_log_is_written_when_the_session_ends_and_when_the_server_stops() {
        let dir = tempfile::tempdir().unwrap();
        let logs = SessionLogs::new(dir.path().join("logs")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Ended: every recorder dropped, the writer finishes.
        runtime.block_on(async {
            let recorder = logs.recorder("ended-1").unwrap();
            for (seq, text) in [(0, "a"), (1, "b"), (1, "b"), (2, "c")] {
                recorder.record(&output(seq, text)).await;
            }
            drop(recorder);
            let path = logs.path("ended-1").unwrap();
            for _ in 0..200 {
                if std::fs::read(&path).unwrap_or_default() == b"abc" {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("not written: {:?}", std::fs::read(&path));
        });
        assert_eq!(logs.figures(), (3, 0));
        let events = logs.events("ended-1").unwrap().unwrap();
        let bytes: Vec<u8> = logs.read("ended-1", &events).unwrap().concat();
        assert_eq!(bytes, b"abc");
        assert!(events.iter().all(|e| e.timestamp <= e.ingestion_time));
        assert_eq!(logs.events("never-1").unwrap(), None);
        // Stopped: the runtime goes away while output gathers; nothing is lost.
        let recorder = runtime.block_on(async {
            let recorder = logs.recorder("stopped-1").unwrap();
            recorder.record(&output(0, "typed")).await;
            tokio::task::yield_now().await;
            recorder.record(&output(1, " and shown")).await;
            recorder
        });
        drop(runtime);
        drop(recorder);
        let path = logs.path("stopped-1").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"typed and shown");
        assert_eq!(logs.sessions().unwrap(), ["ended-1", "stopped-1"]);
        // A log whose index lost its last record (a crash between the writes) still reads
        // whole.
        std::fs::write(path.with_extension("idx"), b"").unwrap();
        let events = logs.events("stopped-1").unwrap().unwrap();
        assert_eq!(
            logs.read("stopped-1", &events).unwrap(),
            [b"typed and shown"]
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("logs")), 0o700);
    }

    #[test]
    fn a_log_that_cannot_be_written_is_counted_and_the_session_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let logs = SessionLogs::new(dir.path().to_owned()).unwrap();
        // Where the file should be, a directory: every write fails.
        std::fs::create_dir(logs.path("broken-1").unwrap()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let recorder = logs.recorder("broken-1").unwrap();
            recorder.record(&output(0, "lost")).await;
            recorder.record(&output(1, " and more")).await;
            drop(recorder);
            for _ in 0..200 {
                if logs.figures() == (0, 1) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("figures: {:?}", logs.figures());
        });
    }

    #[test]
    fn a_character_cut_in_two_waits_for_its_end() {
        assert_eq!(unfinished_char(b""), 0);
        assert_eq!(unfinished_char(b"abc"), 0);
        let e_acute = "é".as_bytes(); // 2 bytes
        let kanji = "門".as_bytes(); // 3 bytes
        let emoji = "🚪".as_bytes(); // 4 bytes
        assert_eq!(unfinished_char(e_acute), 0);
        assert_eq!(unfinished_char(e_acute.get(..1).unwrap()), 1);
        assert_eq!(unfinished_char(kanji.get(..2).unwrap()), 2);
        assert_eq!(unfinished_char(kanji), 0);
        assert_eq!(unfinished_char(emoji.get(..3).unwrap()), 3);
        assert_eq!(unfinished_char(emoji), 0);
        assert_eq!(
            unfinished_char(&[b'a', 0xFF]),
            0,
            "not UTF-8: nothing to wait for"
        );
    }

    #[test]
    fn ids_that_are_not_plain_names_have_no_log() {
        let dir = Path::new("/logs");
        assert_eq!(
            log_path(dir, "TestUserA-0123abcd"),
            Some(PathBuf::from("/logs/TestUserA-0123abcd.log"))
        );
        for bad in ["", "../x", "a/b", ".hidden", "a\0b", "a b"] {
            assert_eq!(log_path(dir, bad), None, "{bad:?}");
        }
    }
}
