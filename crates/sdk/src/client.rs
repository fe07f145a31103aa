//! The connection: one writer task coalescing queued frames into few
//! writes, one reader task matching responses to requests and forwarding the
//! container's notifications.
//!
//! Every outgoing frame is encoded by the caller and queued on an unbounded
//! channel with no `.await` between registering the request and queueing its
//! frame, so a cancelled caller never leaves a request that was registered
//! but not sent. Memory stays bounded anyway: dispatches are limited by the
//! window, calls by their callers waiting for the answer, and log frames by
//! [`MAX_LOG_BACKLOG`].

use std::collections::HashMap;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::{Frame, FrameReader, Incoming, Response, RpcError};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::error::Error;
use crate::types::{DispatchStats, Trigger};

/// Largest single write the writer task assembles.
const WRITE_BATCH: usize = 256 * 1024;
/// Log frames allowed to wait for the writer; more are dropped.
pub(crate) const MAX_LOG_BACKLOG: usize = 10_000;
/// Frames from the container are trusted; this only bounds a broken peer.
const INCOMING_LIMIT: usize = 1 << 30;

/// Why the sensor is asked to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The container sent `shutdown` (with its reason).
    Shutdown(String),
    /// A signal (SIGTERM, SIGINT) arrived.
    Signal(&'static str),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Shutdown(r) if r.is_empty() => {
                write!(f, "shutdown requested by the container")
            }
            StopReason::Shutdown(r) => write!(f, "shutdown requested by the container: {r}"),
            StopReason::Signal(s) => write!(f, "{s} received"),
        }
    }
}

/// What a trigger notification asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TriggerChange {
    Add,
    Update,
    Remove,
}

/// Events the reader hands to the lifecycle driver.
#[derive(Debug)]
pub(crate) enum Event {
    Trigger(TriggerChange, Trigger),
    /// The pipe closed (EOF or an error).
    Closed(String),
}

/// The result of a dispatch: the trigger instance id.
pub(crate) type AckResult = Result<String, Error>;

enum Pending {
    Dispatch(oneshot::Sender<AckResult>),
    Call {
        method: String,
        tx: oneshot::Sender<Result<Value, Error>>,
    },
}

struct PendingState {
    closed: bool,
    map: HashMap<u64, Pending>,
}

struct Outgoing {
    bytes: Vec<u8>,
    is_log: bool,
    /// Told once everything queued up to here has been written.
    written: Option<oneshot::Sender<()>>,
}

/// State shared by the handles, the reader and the writer.
pub(crate) struct Shared {
    out: mpsc::UnboundedSender<Outgoing>,
    pending: Mutex<PendingState>,
    next_id: AtomicU64,
    window: Semaphore,
    window_size: usize,
    max_frame: AtomicUsize,
    closed: AtomicBool,
    log_backlog: AtomicUsize,
    logs_dropped: AtomicU64,
    stop: watch::Sender<Option<StopReason>>,
    dispatched: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    lost: AtomicU64,
}

/// A cheap, clonable handle on a connection.
#[derive(Clone)]
pub(crate) struct Client {
    shared: Arc<Shared>,
}

#[derive(Serialize)]
struct RequestFrame<'a, P: Serialize + ?Sized> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a P,
}

#[derive(Serialize)]
struct NotificationFrame<'a, P: Serialize + ?Sized> {
    jsonrpc: &'static str,
    method: &'a str,
    params: &'a P,
}

/// Take ownership of the sensor pipe named by `SENSOR_RPC_FD` (default 3).
pub(crate) fn stream_from_env() -> Result<std::os::unix::net::UnixStream, Error> {
    let raw = std::env::var(protocol::RPC_FD_ENV).unwrap_or_else(|_| protocol::RPC_FD.to_string());
    let fd: RawFd = raw.trim().parse().map_err(|_| {
        Error::NotConnected(format!(
            "{}={raw:?} is not a file descriptor number",
            protocol::RPC_FD_ENV
        ))
    })?;
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    // SAFETY: only borrowed for the checks below while we look; an fd that
    // is not open makes them fail with EBADF, nothing else.
    let borrowed = (fd >= 0).then(|| unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) });
    let Some(borrowed) = borrowed.filter(|b| fcntl(b, FcntlArg::F_GETFD).is_ok()) else {
        return Err(Error::NotConnected(format!(
            "file descriptor {fd} ({}) is not open: this program must be started by sensorcontainer, with the sensor pipe as fd {fd}",
            protocol::RPC_FD_ENV
        )));
    };
    let stream = matches!(
        nix::sys::socket::getsockopt(&borrowed, nix::sys::socket::sockopt::SockType),
        Ok(nix::sys::socket::SockType::Stream)
    );
    if !stream {
        return Err(Error::NotConnected(format!(
            "file descriptor {fd} ({}) is not a stream socket: this program must be started by sensorcontainer",
            protocol::RPC_FD_ENV
        )));
    }
    // Keep the pipe out of the sensor's own child processes.
    let _ = fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    // SAFETY: the fd is open, is a socket, and nothing else in this process
    // owns it: the container handed it to us for exactly this.
    Ok(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
}

impl Client {
    /// Start the reader and writer tasks on `stream` (must be called within
    /// a tokio runtime). Returns the client and the reader's events.
    pub(crate) fn start(
        stream: UnixStream,
        window: usize,
    ) -> (Client, mpsc::UnboundedReceiver<Event>) {
        let window = window.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        let (rd, wr) = stream.into_split();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (stop, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            out: out_tx,
            pending: Mutex::new(PendingState {
                closed: false,
                map: HashMap::new(),
            }),
            next_id: AtomicU64::new(1),
            window: Semaphore::new(window),
            window_size: window,
            max_frame: AtomicUsize::new(protocol::DEFAULT_MAX_FRAME_BYTES),
            closed: AtomicBool::new(false),
            log_backlog: AtomicUsize::new(0),
            logs_dropped: AtomicU64::new(0),
            stop,
            dispatched: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        });
        tokio::spawn(write_loop(wr, out_rx, shared.clone()));
        tokio::spawn(read_loop(rd, shared.clone(), ev_tx));
        (Client { shared }, ev_rx)
    }

    pub(crate) fn set_max_frame_bytes(&self, limit: usize) {
        self.shared.max_frame.store(limit.max(1), Ordering::Relaxed);
    }

    pub(crate) fn max_frame_bytes(&self) -> usize {
        self.shared.max_frame.load(Ordering::Relaxed)
    }

    pub(crate) fn window_size(&self) -> usize {
        self.shared.window_size
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    pub(crate) fn stop_watch(&self) -> watch::Receiver<Option<StopReason>> {
        self.shared.stop.subscribe()
    }

    /// Record a stop request (the first one wins).
    pub(crate) fn request_stop(&self, reason: StopReason) {
        self.shared.request_stop(reason);
    }

    pub(crate) fn logs_dropped(&self) -> u64 {
        self.shared.logs_dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self) -> DispatchStats {
        let s = &self.shared;
        let dispatched = s.dispatched.load(Ordering::Relaxed);
        let acked = s.acked.load(Ordering::Relaxed);
        let failed = s.failed.load(Ordering::Relaxed);
        let lost = s.lost.load(Ordering::Relaxed);
        DispatchStats {
            dispatched,
            acked,
            failed,
            lost,
            in_flight: dispatched.saturating_sub(acked + failed + lost),
        }
    }

    fn encode<T: Serialize>(&self, method: &str, msg: &T) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::with_capacity(256);
        serde_json::to_writer(&mut bytes, msg).map_err(|source| Error::Encode {
            method: method.to_string(),
            source,
        })?;
        let limit = self.max_frame_bytes();
        if bytes.len() > limit {
            return Err(Error::FrameTooLarge {
                method: method.to_string(),
                size: bytes.len(),
                limit,
            });
        }
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Queue a dispatch request once a window slot is free; the receiver
    /// gets its answer.
    pub(crate) async fn dispatch<P: Serialize + ?Sized>(
        &self,
        params: &P,
    ) -> Result<(u64, oneshot::Receiver<AckResult>), Error> {
        let shared = &self.shared;
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = self.encode(
            "dispatch",
            &RequestFrame {
                jsonrpc: "2.0",
                id,
                method: "dispatch",
                params,
            },
        )?;
        // Cancel-safe: nothing is registered until the permit is ours, and
        // from there on nothing awaits.
        match shared.window.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(Error::Closed),
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = shared.lock_pending();
            if pending.closed {
                drop(pending);
                shared.window.add_permits(1);
                return Err(Error::Closed);
            }
            pending.map.insert(id, Pending::Dispatch(tx));
        }
        shared.dispatched.fetch_add(1, Ordering::Relaxed);
        if shared
            .out
            .send(Outgoing {
                bytes,
                is_log: false,
                written: None,
            })
            .is_err()
        {
            shared.close("the writer stopped");
        }
        Ok((id, rx))
    }

    /// Send a request and wait for its answer.
    pub(crate) async fn call<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<Value, Error> {
        let shared = &self.shared;
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = self.encode(
            method,
            &RequestFrame {
                jsonrpc: "2.0",
                id,
                method,
                params,
            },
        )?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = shared.lock_pending();
            if pending.closed {
                return Err(Error::Closed);
            }
            pending.map.insert(
                id,
                Pending::Call {
                    method: method.to_string(),
                    tx,
                },
            );
        }
        if shared
            .out
            .send(Outgoing {
                bytes,
                is_log: false,
                written: None,
            })
            .is_err()
        {
            shared.close("the writer stopped");
        }
        rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Send a notification (no answer).
    pub(crate) fn notify<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let bytes = self.encode(
            method,
            &NotificationFrame {
                jsonrpc: "2.0",
                method,
                params,
            },
        )?;
        self.shared
            .out
            .send(Outgoing {
                bytes,
                is_log: false,
                written: None,
            })
            .map_err(|_| Error::Closed)
    }

    /// Queue a `log` notification unless too many are already waiting.
    /// Returns whether it was queued.
    pub(crate) fn log(&self, level: &str, message: &str, logger: Option<&str>) -> bool {
        #[derive(Serialize)]
        struct LogParams<'a> {
            level: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            logger: Option<&'a str>,
        }
        if self.is_closed() {
            return false;
        }
        let shared = &self.shared;
        if shared.log_backlog.load(Ordering::Relaxed) >= MAX_LOG_BACKLOG {
            shared.logs_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let params = LogParams {
            level,
            message,
            logger,
        };
        let frame = NotificationFrame {
            jsonrpc: "2.0",
            method: "log",
            params: &params,
        };
        let bytes = match self.encode("log", &frame) {
            Ok(b) => b,
            Err(Error::FrameTooLarge { limit, .. }) => {
                // Keep the start of a huge message rather than nothing.
                let mut cut = limit.saturating_sub(512).min(message.len());
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                let short = format!(
                    "{}... [truncated, {} bytes]",
                    &message[..cut],
                    message.len()
                );
                let params = LogParams {
                    level,
                    message: &short,
                    logger,
                };
                match self.encode(
                    "log",
                    &NotificationFrame {
                        jsonrpc: "2.0",
                        method: "log",
                        params: &params,
                    },
                ) {
                    Ok(b) => b,
                    Err(_) => return false,
                }
            }
            Err(_) => return false,
        };
        shared.log_backlog.fetch_add(1, Ordering::Relaxed);
        if shared
            .out
            .send(Outgoing {
                bytes,
                is_log: true,
                written: None,
            })
            .is_err()
        {
            shared.log_backlog.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Wait until every frame queued so far has been written (or the
    /// connection broke).
    pub(crate) async fn drain(&self) {
        let (tx, rx) = oneshot::channel();
        let queued = self.shared.out.send(Outgoing {
            bytes: Vec::new(),
            is_log: false,
            written: Some(tx),
        });
        if queued.is_ok() {
            let _ = rx.await;
        }
    }

    /// Wait until every dispatch sent before this call is answered (or lost
    /// to a closed connection).
    pub(crate) async fn flush(&self) -> Result<(), Error> {
        let shared = &self.shared;
        // The semaphore is fair: taking every permit waits for each
        // dispatch in flight, and dispatches issued later queue behind us.
        let n = shared.window_size as u32;
        match shared.window.acquire_many(n).await {
            Ok(permits) => drop(permits),
            Err(_) => return Err(Error::Closed),
        }
        if self.is_closed() && shared.lost.load(Ordering::Relaxed) > 0 {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl Shared {
    fn lock_pending(&self) -> MutexGuard<'_, PendingState> {
        // A panic while holding this lock leaves the map consistent (every
        // critical section is a single insert or remove).
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request_stop(&self, reason: StopReason) {
        self.stop.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Mark the connection closed and fail everything still waiting.
    fn close(&self, reason: &str) {
        let drained = {
            let mut pending = self.lock_pending();
            if pending.closed {
                return;
            }
            pending.closed = true;
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut pending.map)
        };
        tracing::debug!(target: "sdk", "sensor pipe closed: {reason}");
        for (_, p) in drained {
            match p {
                Pending::Dispatch(tx) => {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                    self.window.add_permits(1);
                    let _ = tx.send(Err(Error::Closed));
                }
                Pending::Call { tx, .. } => {
                    let _ = tx.send(Err(Error::Closed));
                }
            }
        }
    }

    /// Match a response to its request.
    fn complete(&self, resp: Response) {
        let Some(id) = resp.id.as_u64() else {
            match resp.error {
                // A frame the container could not attribute to a request
                // (not JSON, too large...). We never send such frames.
                Some(e) => {
                    tracing::warn!(target: "sdk", "the sensor container rejected a frame: {e}")
                }
                None => {
                    tracing::warn!(target: "sdk", "response with an unknown id {} ignored", resp.id)
                }
            }
            return;
        };
        let entry = self.lock_pending().map.remove(&id);
        match entry {
            Some(Pending::Dispatch(tx)) => {
                let result = match (resp.result, resp.error) {
                    (_, Some(error)) => Err(Error::Rpc {
                        method: "dispatch".into(),
                        error,
                    }),
                    (Some(v), None) => match v.get("id") {
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(other) => Ok(other.to_string()),
                        None => Err(Error::Protocol {
                            method: "dispatch".into(),
                            detail: format!("expected {{\"id\": ...}}, got {v}"),
                        }),
                    },
                    (None, None) => Err(Error::Protocol {
                        method: "dispatch".into(),
                        detail: "no result and no error".into(),
                    }),
                };
                match &result {
                    Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
                    Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
                };
                self.window.add_permits(1);
                if let Err(Err(e)) = tx.send(result) {
                    // Nobody waits for this ack: say why the event was not stored.
                    tracing::warn!(target: "sdk", "{e}");
                }
            }
            Some(Pending::Call { method, tx }) => {
                let result = match (resp.result, resp.error) {
                    (_, Some(error)) => Err(Error::Rpc { method, error }),
                    (Some(v), None) => Ok(v),
                    (None, None) => Ok(Value::Null),
                };
                let _ = tx.send(result);
            }
            None => tracing::warn!(target: "sdk", "response to unknown request id {id} ignored"),
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let mut batch: Vec<Outgoing> = Vec::with_capacity(1024);
    loop {
        if rx.recv_many(&mut batch, 1024).await == 0 {
            break;
        }
        let mut logs = 0;
        let mut barriers = Vec::new();
        // Coalesce everything already queued into one write.
        loop {
            for item in batch.drain(..) {
                logs += usize::from(item.is_log);
                buf.extend_from_slice(&item.bytes);
                barriers.extend(item.written);
            }
            if buf.len() >= WRITE_BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        if logs > 0 {
            shared.log_backlog.fetch_sub(logs, Ordering::Relaxed);
        }
        if !buf.is_empty() {
            if let Err(e) = wr.write_all(&buf).await {
                shared.close(&format!("writing failed: {e}"));
                break;
            }
        }
        buf.clear();
        for b in barriers {
            let _ = b.send(());
        }
    }
}

async fn read_loop(rd: OwnedReadHalf, shared: Arc<Shared>, events: mpsc::UnboundedSender<Event>) {
    let mut frames = FrameReader::new(BufReader::with_capacity(64 * 1024, rd), INCOMING_LIMIT);
    let reason = loop {
        match frames.next_frame().await {
            Ok(Some(Frame::Line(line))) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                handle_frame(&line, &shared, &events);
            }
            Ok(Some(Frame::TooLarge { len })) => {
                tracing::warn!(target: "sdk", "ignored a {len}-byte frame from the container");
            }
            Ok(None) => break "end of file".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break "connection reset".to_string()
            }
            Err(e) => break format!("reading failed: {e}"),
        }
    };
    shared.close(&reason);
    let _ = events.send(Event::Closed(reason));
}

fn handle_frame(line: &[u8], shared: &Shared, events: &mpsc::UnboundedSender<Event>) {
    match Incoming::parse(line) {
        Ok(Incoming::Response(resp)) => shared.complete(resp),
        Ok(Incoming::Notification(n)) => match n.method.as_str() {
            "trigger.add" | "trigger.update" | "trigger.remove" => {
                let change = match n.method.as_str() {
                    "trigger.add" => TriggerChange::Add,
                    "trigger.update" => TriggerChange::Update,
                    _ => TriggerChange::Remove,
                };
                match n
                    .params
                    .get("trigger")
                    .cloned()
                    .map(serde_json::from_value::<Trigger>)
                {
                    Some(Ok(trigger)) => {
                        let _ = events.send(Event::Trigger(change, trigger));
                    }
                    _ => {
                        tracing::warn!(target: "sdk", "ignoring {} without a trigger object", n.method)
                    }
                }
            }
            "shutdown" => {
                let reason = n
                    .params
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                shared.request_stop(StopReason::Shutdown(reason));
            }
            other => {
                tracing::debug!(target: "sdk", "ignoring unknown notification '{other}' from the container")
            }
        },
        Ok(Incoming::Request(r)) => {
            // The container sends no requests (PROTOCOL.md); answering would
            // be guessing.
            tracing::warn!(target: "sdk", "ignoring unexpected request '{}' from the container", r.method);
        }
        Err(resp) => {
            let why = resp.error.map(|e: RpcError| e.message).unwrap_or_default();
            tracing::warn!(target: "sdk", "unreadable frame from the container: {why}");
        }
    }
}
