//! Delivery out of the trigger-instance log (`crates/sinks`) by the real
//! `sensorcontainer`, beside what the destination takes from a bare client
//! with the same settings, measured in the same run:
//!
//! - *Drains.* The log is filled first (the Rust SDK sensor dispatches N
//!   with every sink paused), then each sink in turn is resumed and timed
//!   until `sensorctl sink list`'s `delivered` reaches N or a time limit
//!   passes: `http` with `batch_max: 1` and `batch_max: 100` to an HTTP
//!   server in this process, `nats` (`batch_max: 1024`) to a nats-server.
//!   The limits afterwards replay the very bodies the sinks sent: serial
//!   keep-alive POSTs from one hyper-util pooled client (what `HttpSink`
//!   uses) in a child process of this program (the sink, too, is in
//!   another process than the server), and raw async-nats JetStream
//!   publishes with `Nats-Msg-Id`, in windows of 1024 (publish them, then
//!   await their acks in order, as `NatsSink` does) and, as a diagnostic,
//!   with a sliding window of 1024 in flight.
//! - *Latency.* One sink at a time while the SDK sensor dispatches at a
//!   paced rate: dispatch (the instance's `occurrence_time`) → the
//!   destination has it (the HTTP server's receive time; the JetStream
//!   message's stored time), beside the destination's own round trip (one
//!   POST, one publish → ack).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream;
use axum::extract::State;
use axum::serve::ListenerExt;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

use crate::live::{self, Bins, Running, Workspace};
use crate::stats::Summary;

/// The trigger every bench instance goes to.
pub(crate) const TRIGGER: &str = "bench.event";
/// The class of the Rust SDK sensor that fills the log.
const FEEDER: &str = "SinkFeeder";
/// `batch_max` of the batched HTTP sink.
pub const HTTP_BATCH: usize = 100;
/// The `nats` sink's default `batch_max`, its publish window.
pub const NATS_WINDOW: usize = 1024;
/// The sink's defaults (`sink_config.rs`), used by the limits too.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const ACK_TIMEOUT: Duration = Duration::from_secs(10);
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Subjects are `<subject_prefix>.<trigger>`; the default prefix.
const SUBJECT: &str = "sensorcontainer.bench.event";
/// Before each measured limit phase (connection, stream, caches).
pub(crate) const WARM_UP: Duration = Duration::from_millis(300);
/// How often `sink.list` is asked while a sink drains.
const POLL: Duration = Duration::from_millis(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Microseconds since the epoch, now.
fn epoch_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Microseconds since the epoch of an RFC 3339 UTC time as the container
/// writes `occurrence_time` (`2026-12-01T10:11:12.123456Z`).
pub fn rfc3339_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let t = s.get(from..to)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let rest = s.get(19..)?;
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    if !matches!(zone, "Z" | "z" | "+00:00") || !(1..=12).contains(&mo) {
        return None;
    }
    let mut us = 0i64;
    for (i, c) in frac.bytes().take(6).enumerate() {
        us += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + us)
}

// --- the HTTP destination -------------------------------------------------

/// What the test server saw.
#[derive(Default)]
struct Received {
    requests: AtomicU64,
    /// The longest body per path (what the limits replay).
    longest: Mutex<BTreeMap<String, Bytes>>,
    /// Keep (receive time in epoch µs, body) of every request.
    recording: AtomicBool,
    log: Mutex<Vec<(i64, Bytes)>>,
}

/// Any method, any path: count, remember, answer 200 `{}`.
async fn ingest(
    State(rec): State<Arc<Received>>,
    uri: Uri,
    body: Bytes,
) -> ([(hyper::header::HeaderName, &'static str); 1], &'static str) {
    let at = epoch_us();
    rec.requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut longest = lock(&rec.longest);
        if longest.get(uri.path()).is_none_or(|b| b.len() < body.len()) {
            longest.insert(uri.path().to_string(), body.clone());
        }
    }
    if rec.recording.load(Ordering::Relaxed) {
        lock(&rec.log).push((at, body));
    }
    ([(CONTENT_TYPE, "application/json")], "{}")
}

/// An HTTP/1.1 server (axum) on 127.0.0.1 in this process, on the bench's
/// runtime; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    rec: Arc<Received>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub fn start(rt: &Runtime) -> Result<TestServer> {
        let rec = Arc::new(Received::default());
        let app = axum::Router::new().fallback(ingest).with_state(rec.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("bind the test HTTP server")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = listener.tap_io(|s| {
            let _ = s.set_nodelay(true);
        });
        let task = rt.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(TestServer {
            addr,
            rec,
            stop: Some(stop),
            task,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> u64 {
        self.rec.requests.load(Ordering::Relaxed)
    }

    fn longest(&self, path: &str) -> Result<Bytes> {
        lock(&self.rec.longest)
            .get(path)
            .cloned()
            .with_context(|| format!("the test server got no request on {path}"))
    }

    fn record(&self, on: bool) {
        self.rec.recording.store(on, Ordering::Relaxed);
    }

    fn take_log(&self) -> Vec<(i64, Bytes)> {
        std::mem::take(&mut *lock(&self.rec.log))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled keep-alive client as `HttpSink` builds it (without the TLS
/// layer, which an `http://` URL passes through).
fn http_client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(http)
}

/// One POST as the sink sends it; fails on a non-2xx answer.
async fn post(client: &HttpClient, uri: &Uri, body: &Bytes) -> Result<()> {
    let req = Request::post(uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body.clone()))
        .context("build the request")?;
    let exchange = async {
        let resp = client.request(req).await?;
        let status = resp.status();
        let _ = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    };
    let status = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .with_context(|| format!("POST {uri}: no answer within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("POST {uri}"))?;
    if !status.is_success() {
        bail!("POST {uri}: answered {status}");
    }
    Ok(())
}

/// Serial POSTs of one body: a limit phase.
#[derive(Debug, Clone)]
pub struct HttpLimit {
    pub requests: u64,
    pub secs: f64,
    /// Send → answer read, µs.
    pub lat: Summary,
    pub body_bytes: usize,
    /// CPU over the phase of the client (a child process) and of the
    /// server (this process).
    pub client_cpu: f64,
    pub server_cpu: f64,
}

impl HttpLimit {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// The flag of the child process that runs the HTTP limit's client.
pub const HTTP_LIMIT_CHILD_FLAG: &str = "--http-limit-child";

/// What the client child reports.
#[derive(Debug, Serialize, Deserialize)]
struct ClientReport {
    requests: u64,
    secs: f64,
    /// p50, p99, p99.9, max in µs.
    lat: [f64; 4],
    /// The child's CPU over the measured part.
    cpu: f64,
}

/// One client, one connection, one request at a time: `WARM_UP`, then
/// `dur` measured; `runs` times, the fastest run kept. The client runs in a
/// child process of this program (`--http-limit-child`), on a
/// multi-threaded tokio runtime as the container's, so that like the sink
/// it is in another process than the server.
fn http_serial(url: &str, body: Bytes, dur: Duration, runs: usize) -> Result<HttpLimit> {
    let dir = tempfile::tempdir().context("temp dir for the HTTP limit")?;
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, &body)?;
    let report = dir.path().join("report.json");
    let me = std::process::id();
    let mut best: Option<HttpLimit> = None;
    for _ in 0..runs.max(1) {
        let _ = std::fs::remove_file(&report);
        let cpu0 = live::cpu_secs(me)?;
        // This very program, even if cargo has replaced the file meanwhile.
        let exe = Path::new("/proc/self/exe");
        let mut child = Command::new(exe)
            .arg(HTTP_LIMIT_CHILD_FLAG)
            .arg(url)
            .arg(&body_path)
            .arg(dur.as_secs_f64().to_string())
            .arg(&report)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("run {} {HTTP_LIMIT_CHILD_FLAG}", exe.display()))?;
        let timeout = dur + WARM_UP + Duration::from_secs(60);
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = child.try_wait()? {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the HTTP limit's client did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !status.success() {
            bail!("the HTTP limit's client failed: {status}");
        }
        let server_cpu = live::cpu_secs(me)? - cpu0;
        let r: ClientReport = serde_json::from_slice(
            &std::fs::read(&report).context("the HTTP limit's client wrote no report")?,
        )
        .context("the HTTP limit's client report")?;
        let run = HttpLimit {
            requests: r.requests,
            secs: r.secs,
            lat: Summary {
                p50: r.lat[0],
                p99: r.lat[1],
                p999: r.lat[2],
                max: r.lat[3],
            },
            body_bytes: body.len(),
            client_cpu: r.cpu,
            server_cpu,
        };
        eprintln!(
            "  limit run: serial POSTs of {} B: {} in {:.2} s = {:.0}/s; CPU per request: client {:.1} µs, server (sc-bench) {:.1} µs",
            run.body_bytes,
            run.requests,
            run.secs,
            run.rate(),
            1e6 * run.client_cpu / run.requests.max(1) as f64,
            1e6 * run.server_cpu / run.requests.max(1) as f64
        );
        if best.as_ref().is_none_or(|b| run.rate() > b.rate()) {
            best = Some(run);
        }
    }
    best.context("no HTTP limit run")
}

/// The child's side of [`http_serial`]: `URL BODY_FILE SECS REPORT_FILE`.
pub fn http_limit_child(args: &[String]) -> Result<()> {
    let [url, body, secs, report] = args else {
        bail!("{HTTP_LIMIT_CHILD_FLAG} URL BODY_FILE SECS REPORT_FILE");
    };
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    let body = Bytes::from(std::fs::read(body).with_context(|| format!("read {body}"))?);
    let dur = Duration::from_secs_f64(secs.parse().context("SECS")?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let me = std::process::id();
    let r = rt
        .block_on(rt.spawn(async move {
            let client = http_client();
            let warm = Instant::now() + WARM_UP;
            while Instant::now() < warm {
                post(&client, &uri, &body).await?;
            }
            let cpu0 = live::cpu_secs(me)?;
            let mut lat = Vec::with_capacity(64 * 1024);
            let start = Instant::now();
            let deadline = start + dur;
            while Instant::now() < deadline {
                let t = Instant::now();
                post(&client, &uri, &body).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let secs = start.elapsed().as_secs_f64();
            let cpu = live::cpu_secs(me)? - cpu0;
            let requests = lat.len() as u64;
            let s = Summary::of(lat);
            Ok::<_, anyhow::Error>(ClientReport {
                requests,
                secs,
                lat: [s.p50, s.p99, s.p999, s.max],
                cpu,
            })
        }))
        .context("the HTTP limit task panicked")??;
    let tmp = format!("{report}.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&r)?)?;
    std::fs::rename(&tmp, report)?;
    Ok(())
}

// --- the NATS destination -------------------------------------------------

/// `$SC_NATS_SERVER`, `target/peers/venv/bin/nats-server` (where
/// `scripts/install-peers.sh` puts it), or `nats-server` on `PATH`.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SC_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    // target/release/sc-bench → target/peers/venv/bin/nats-server
    let peers = exe.parent()?.parent()?.join("peers/venv/bin/nats-server");
    if peers.is_file() {
        return Some(peers);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("nats-server"))
        .find(|p| p.is_file())
}

/// A `nats-server -js` on a free port with its store in a temp dir;
/// killed and reaped on drop.
pub struct NatsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start(bin: &Path) -> Result<NatsServer> {
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().context("temp dir for nats-server")?;
            // Free now; another process may take it meanwhile (then retry).
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let log = dir.path().join("nats-server.log");
            let out = std::fs::File::create(&log)?;
            let mut child = Command::new(bin)
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(dir.path().join("store"))
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .with_context(|| format!("start {}", bin.display()))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let up = loop {
                if child.try_wait()?.is_some() {
                    break false;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if up {
                return Ok(NatsServer {
                    child,
                    port,
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            last = live::tail(&std::fs::read_to_string(&log).unwrap_or_default(), 10);
        }
        bail!(
            "nats-server {} did not start (3 tries): {last}",
            bin.display()
        )
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JetStream context as `NatsSink` builds it.
async fn jetstream(url: &str, window: usize) -> Result<jetstream::Context> {
    let client = tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .name("sc-bench")
            .connect(url),
    )
    .await
    .with_context(|| format!("connect to {url}: no answer within {CONNECT_TIMEOUT:?}"))?
    .with_context(|| format!("connect to {url}"))?;
    Ok(jetstream::ContextBuilder::new()
        .ack_timeout(ACK_TIMEOUT)
        .timeout(ACK_TIMEOUT)
        .max_ack_inflight(window * 2)
        .backpressure_on_inflight(true)
        .build(client))
}

/// A stream `name` on `sensorcontainer.>`, configured as the sink's
/// `create_stream: {name, duplicate_window: 2m}` creates it, after deleting
/// any stream of that name.
async fn fresh_stream(js: &jetstream::Context, name: &str) -> Result<jetstream::stream::Stream> {
    let _ = js.delete_stream(name).await;
    js.get_or_create_stream(jetstream::stream::Config {
        name: name.into(),
        subjects: vec!["sensorcontainer.>".into()],
        max_age: Duration::ZERO,
        max_bytes: -1,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .with_context(|| format!("create the JetStream stream {name}"))
}

/// A `Nats-Msg-Id` as long as an instance id (36 characters), unique per
/// phase and message.
fn msg_id(phase: u32, k: u64) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert(
        "Nats-Msg-Id",
        format!("{phase:08x}-0000-7000-8000-{k:012x}").as_str(),
    );
    h
}

/// How the raw publisher keeps acks in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Publish `n`, then await their acks in order, repeat (the sink's way).
    Batches(usize),
    /// Keep `n` unacknowledged: await the oldest before each new publish.
    Sliding(usize),
}

/// Raw JetStream publishes of `payload` to [`SUBJECT`] until `until`, ids
/// from `k`; returns (acked messages, the next id).
async fn publish_until(
    js: &jetstream::Context,
    payload: &Bytes,
    window: Window,
    until: Instant,
    phase: u32,
    mut k: u64,
) -> Result<(u64, u64)> {
    let mut acked = 0u64;
    let publish = |k: u64| js.publish_with_headers(SUBJECT, msg_id(phase, k), payload.clone());
    match window {
        Window::Batches(n) => {
            while Instant::now() < until {
                let mut acks = Vec::with_capacity(n);
                for _ in 0..n {
                    acks.push(publish(k).await.context("JetStream publish")?);
                    k += 1;
                }
                for a in acks {
                    a.await.context("JetStream publish ack")?;
                    acked += 1;
                }
            }
        }
        Window::Sliding(n) => {
            let mut acks: VecDeque<jetstream::context::PublishAckFuture> =
                VecDeque::with_capacity(n);
            while Instant::now() < until {
                if acks.len() == n {
                    if let Some(a) = acks.pop_front() {
                        a.await.context("JetStream publish ack")?;
                        acked += 1;
                    }
                }
                acks.push_back(publish(k).await.context("JetStream publish")?);
                k += 1;
            }
            for a in acks {
                a.await.context("JetStream publish ack")?;
                acked += 1;
            }
        }
    }
    Ok((acked, k))
}

/// [`publish_until`] for a warm-up, then for `dur`: (acked messages,
/// seconds, CPU of this process over the measured part).
async fn publish_for(
    js: &jetstream::Context,
    payload: &Bytes,
    window: Window,
    dur: Duration,
    phase: u32,
) -> Result<(u64, f64, f64)> {
    let me = std::process::id();
    let (_, k) = publish_until(js, payload, window, Instant::now() + WARM_UP, phase, 0).await?;
    let cpu0 = live::cpu_secs(me)?;
    let start = Instant::now();
    let (acked, _) = publish_until(js, payload, window, start + dur, phase, k).await?;
    let secs = start.elapsed().as_secs_f64();
    Ok((acked, secs, live::cpu_secs(me)? - cpu0))
}

/// One publish, then its ack, one after another for `dur` (after a
/// warm-up): µs per round trip.
async fn publish_round_trips(
    js: &jetstream::Context,
    payload: &Bytes,
    dur: Duration,
    phase: u32,
) -> Result<Vec<f64>> {
    let mut k = 0u64;
    let mut lat = Vec::with_capacity(32 * 1024);
    let warm = Instant::now() + WARM_UP;
    let deadline = warm + dur;
    while Instant::now() < deadline {
        let t = Instant::now();
        js.publish_with_headers(SUBJECT, msg_id(phase, k), payload.clone())
            .await
            .context("JetStream publish")?
            .await
            .context("JetStream publish ack")?;
        if t >= warm {
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        k += 1;
    }
    Ok(lat)
}

/// Every message of `stream` as (stored time in epoch µs, payload), 64
/// `STREAM.MSG.GET` requests in flight.
async fn stored_messages(stream: &jetstream::stream::Stream) -> Result<Vec<(i64, Bytes)>> {
    let mut s = stream.clone();
    let state = s
        .info()
        .await
        .context("JetStream stream info")?
        .state
        .clone();
    let mut out = Vec::with_capacity(state.messages as usize);
    if state.messages == 0 {
        return Ok(out);
    }
    let mut set = tokio::task::JoinSet::new();
    let mut next = state.first_sequence;
    loop {
        while set.len() < 64 && next <= state.last_sequence {
            let (s, seq) = (stream.clone(), next);
            set.spawn(async move {
                tokio::time::timeout(REQUEST_TIMEOUT, s.get_raw_message(seq))
                    .await
                    .with_context(|| format!("get message {seq}: no answer"))?
                    .with_context(|| format!("get message {seq}"))
            });
            next += 1;
        }
        let Some(r) = set.join_next().await else {
            break;
        };
        let m = r.context("a message fetch task panicked")??;
        out.push(((m.time.unix_timestamp_nanos() / 1000) as i64, m.payload));
    }
    Ok(out)
}

// --- the container ----------------------------------------------------------

/// A workspace whose `bench` pack holds the Rust SDK sensor (declaring
/// `bench.event`), with `sinks_yaml` as the config's `sinks:`.
fn workspace(bins: &Bins, sinks_yaml: &str) -> Result<Workspace> {
    workspace_with(bins, "", sinks_yaml)
}

/// [`workspace`] with `top_yaml` (more top-level sections of the config,
/// e.g. `st2:`, each line ending in a newline) before `sinks:`.
pub(crate) fn workspace_with(
    bins: &Bins,
    top_yaml: &str,
    sinks_yaml: &str,
) -> Result<Workspace> {
    let ws = Workspace::new(
        bins,
        &format!("sensorcontainer:\n  stop_grace_seconds: 10\n{top_yaml}sinks:\n{sinks_yaml}"),
    )?;
    ws.write_rust_sensor_pack(bins, FEEDER)?;
    ws.register()?;
    Ok(ws)
}

/// Wait until the feeder sensor says it is up.
pub(crate) fn wait_feeder_up(ws: &Workspace, c: &mut Running) -> Result<()> {
    let ready = ws.marker(&format!("ready.{FEEDER}"));
    live::wait_for(
        "the feeder sensor to be up",
        Duration::from_secs(60),
        || c.check_alive(),
        || ready.exists(),
    )
}

/// Fill the log with `count` instances from the feeder while the sinks are
/// paused (`paused` says which, for the progress line): (n, instances/s).
pub(crate) fn fill_log(
    ws: &Workspace,
    c: &mut Running,
    count: u64,
    paused: &str,
) -> Result<(u64, f64)> {
    wait_feeder_up(ws, c)?;
    let (n, t0, t1) = feed(ws, c, &format!("count {count}"), Duration::from_secs(600))?;
    let fill_rate = n as f64 / (t1 - t0);
    eprintln!(
        "  log filled: {n} `{TRIGGER}` instances in {:.2} s ({fill_rate:.0}/s), {paused}",
        t1 - t0
    );
    Ok((n, fill_rate))
}

/// Start the feeder with `go` (`count N` or `rate R SECS`) and wait for its
/// result: (n, t0, t1), every dispatch acknowledged durable.
pub(crate) fn feed(
    ws: &Workspace,
    c: &mut Running,
    go: &str,
    timeout: Duration,
) -> Result<(u64, f64, f64)> {
    let tmp = ws.marker(".go.tmp");
    std::fs::write(&tmp, go)?;
    std::fs::rename(&tmp, ws.marker("go"))?;
    let result = ws.marker(&format!("result.{FEEDER}"));
    live::wait_for(
        "the feeder sensor's result",
        timeout,
        || c.check_alive(),
        || result.exists(),
    )?;
    let text = std::fs::read_to_string(&result)?;
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() != 5 {
        bail!("bad result from {FEEDER}: {text:?}");
    }
    if f[3] != "0" {
        bail!(
            "{FEEDER}: {} dispatch errors or missing acks; log:\n{}",
            f[3],
            live::tail(&c.log_text(), 30)
        );
    }
    Ok((f[0].parse()?, f[1].parse()?, f[2].parse()?))
}

/// One sink of `sink.list`.
struct SinkNow {
    delivered: u64,
    lag: u64,
    retries: u64,
    dead_letters: u64,
    last_error: Option<String>,
}

fn sink_now(c: &Running, name: &str) -> Result<SinkNow> {
    let list = c.api("sink.list", &json!({}))?;
    let s = list
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .with_context(|| format!("sink.list has no sink '{name}': {list}"))?;
    let n = |k: &str| {
        s[k].as_u64()
            .with_context(|| format!("sink.list: no number `{k}` in {s}"))
    };
    let now = SinkNow {
        delivered: n("delivered")?,
        lag: n("lag")?,
        retries: n("retries")?,
        dead_letters: n("dead_letters")?,
        last_error: s["last_error"].as_str().map(str::to_string),
    };
    if now.dead_letters > 0 {
        bail!(
            "sink '{name}' dead-lettered {} instance(s): {:?}",
            now.dead_letters,
            now.last_error
        );
    }
    Ok(now)
}

/// Poll `sink.list` until sink `name` satisfies `done` or `timeout`
/// passed; returns the last look and whether `done` held.
fn poll_sink(
    c: &mut Running,
    name: &str,
    timeout: Duration,
    mut done: impl FnMut(&SinkNow) -> bool,
) -> Result<(SinkNow, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = sink_now(c, name)?;
        if done(&now) {
            return Ok((now, true));
        }
        c.check_alive()?;
        if Instant::now() > deadline {
            return Ok((now, false));
        }
        std::thread::sleep(POLL);
    }
}

/// [`poll_sink`], failing at the deadline.
fn wait_sink(
    c: &mut Running,
    name: &str,
    timeout: Duration,
    done: impl FnMut(&SinkNow) -> bool,
) -> Result<SinkNow> {
    let (now, ok) = poll_sink(c, name, timeout, done)?;
    if !ok {
        bail!(
            "sink '{name}' did not get there within {timeout:?}: delivered {}, lag {}, retries {}, last error {:?}",
            now.delivered,
            now.lag,
            now.retries,
            now.last_error
        );
    }
    Ok(now)
}

/// One sink's drain.
#[derive(Debug, Clone)]
pub struct Drain {
    pub delivered: u64,
    /// `sink.resume` sent → the first `sink.list` showing `delivered` ≥ the
    /// count, or the last one before the time limit (then `delivered` is
    /// what that one showed).
    pub secs: f64,
    pub retries: u64,
    /// CPU over the drain: the container, this process (the HTTP server
    /// and the polling), the destination's server ([`Peer`]; 0 without).
    pub container_cpu: f64,
    pub bench_cpu: f64,
    pub peer_cpu: f64,
    /// Requests the test server answered meanwhile (HTTP sinks; 0 without
    /// a test server).
    pub requests: u64,
}

impl Drain {
    pub fn rate(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

/// The destination's server process(es), whose CPU a [`drain`] reports.
pub(crate) struct Peer<'a> {
    /// As the progress output names it (`nats-server`).
    pub name: &'a str,
    /// CPU seconds it has used so far.
    pub cpu: &'a dyn Fn() -> Result<f64>,
}

/// Resume sink `name`, wait until it delivered `count` or `max` passed,
/// pause it again. `server` counts the requests of HTTP sinks; `peer` is
/// the destination's server, for its CPU.
pub(crate) fn drain(
    c: &mut Running,
    name: &str,
    count: u64,
    max: Duration,
    server: Option<&TestServer>,
    peer: Option<Peer<'_>>,
) -> Result<Drain> {
    let (pid, me) = (c.pid(), std::process::id());
    let peer_cpu = || peer.as_ref().map_or(Ok(0.0), |p| (p.cpu)());
    let requests = || server.map_or(0, TestServer::requests);
    let (c0, b0, p0, r0) = (
        live::cpu_secs(pid)?,
        live::cpu_secs(me)?,
        peer_cpu()?,
        requests(),
    );
    let t0 = Instant::now();
    c.api("sink.resume", &json!({ "name": name }))?;
    let (now, _) = poll_sink(c, name, max, |s| s.delivered >= count)?;
    let secs = t0.elapsed().as_secs_f64();
    let d = Drain {
        delivered: now.delivered,
        secs,
        retries: now.retries,
        container_cpu: live::cpu_secs(pid)? - c0,
        bench_cpu: live::cpu_secs(me)? - b0,
        peer_cpu: peer_cpu()? - p0,
        requests: requests() - r0,
    };
    c.api("sink.pause", &json!({ "name": name }))?;
    if d.delivered == 0 {
        bail!(
            "sink '{name}' delivered nothing in {max:?}: lag {}, retries {}, last error {:?}",
            now.lag,
            now.retries,
            now.last_error
        );
    }
    let n = d.delivered as f64;
    let requests = match server {
        Some(_) => format!("{} requests to the test server, ", d.requests),
        None => String::new(),
    };
    let peer_text = match &peer {
        Some(p) => format!(", {} {:.1} µs", p.name, 1e6 * d.peer_cpu / n),
        None => String::new(),
    };
    eprintln!(
        "  sink {name}: {} delivered in {:.2} s = {:.0}/s{} ({requests}{} retries); CPU per instance: container {:.1} µs, sc-bench {:.1} µs{peer_text} ({:.2} cores busy)",
        d.delivered,
        d.secs,
        d.rate(),
        if d.delivered < count { " (stopped at the time limit)" } else { "" },
        d.retries,
        1e6 * d.container_cpu / n,
        1e6 * d.bench_cpu / n,
        (d.container_cpu + d.bench_cpu + d.peer_cpu) / d.secs
    );
    Ok(d)
}

/// How much the drains deliver, and how long each limit runs.
#[derive(Debug, Clone, Copy)]
pub struct DrainPlan {
    /// Instances stored before the drains (every sink has them all).
    pub fill: u64,
    /// Each drain stops once it delivered them all or after this long.
    pub max: Duration,
    pub limit_secs: Duration,
}

/// A NATS drain with its limits.
pub struct NatsDrain {
    pub drain: Drain,
    pub payload_bytes: usize,
    /// Acked publishes, seconds, CPU of this process.
    pub batches: (u64, f64, f64),
    pub sliding: (u64, f64, f64),
}

/// The drain rows' outcome.
pub struct Drains {
    pub fill: u64,
    pub fill_rate: f64,
    pub http_one: Drain,
    pub http_one_limit: HttpLimit,
    pub http_batch: Drain,
    pub http_batch_limit: HttpLimit,
    pub nats: Option<NatsDrain>,
}

pub fn drains(
    bins: &Bins,
    rt: &Runtime,
    plan: DrainPlan,
    nats_bin: Option<&Path>,
) -> Result<Drains> {
    let server = TestServer::start(rt)?;
    let nats = nats_bin.map(NatsServer::start).transpose()?;
    let common = format!("start: earliest, triggers: ['{TRIGGER}']");
    let mut yaml = format!(
        "  - {{name: http1, type: http, url: '{}', {common}}}\n  - {{name: http{HTTP_BATCH}, type: http, url: '{}', batch_max: {HTTP_BATCH}, {common}}}\n",
        server.url("/one"),
        server.url("/batch"),
    );
    if let Some(n) = &nats {
        yaml += &format!(
            "  - {{name: nats, type: nats, url: '{}', {common}, create_stream: {{name: SC, duplicate_window: 2m}}}}\n",
            n.url()
        );
    }
    let ws = workspace(bins, &yaml)?;
    let mut names = vec!["http1".to_string(), format!("http{HTTP_BATCH}")];
    if nats.is_some() {
        names.push("nats".into());
    }
    // Through the embedded backend: the container is not running yet.
    for n in &names {
        ws.sensorctl(&["sink", "pause", n])?;
    }
    let mut c = ws.start(&[], &[])?;
    c.wait_api(Duration::from_secs(30))?;
    let (n, fill_rate) = fill_log(&ws, &mut c, plan.fill, "every sink paused")?;
    let http_one = drain(&mut c, "http1", n, plan.max, Some(&server), None)?;
    let http_batch = drain(
        &mut c,
        &format!("http{HTTP_BATCH}"),
        n,
        plan.max,
        Some(&server),
        None,
    )?;
    let nats_drain = match &nats {
        Some(srv) => {
            let pid = srv.pid();
            let peer = Peer {
                name: "nats-server",
                cpu: &move || live::cpu_secs(pid),
            };
            Some(drain(&mut c, "nats", n, plan.max, Some(&server), Some(peer))?)
        }
        None => None,
    };
    c.stop(Duration::from_secs(30))?;

    // The limits replay what the sinks sent.
    let one = server.longest("/one")?;
    let batch = server.longest("/batch")?;
    let batch_items = serde_json::from_slice::<Value>(&batch)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .context("the batched sink's body is not a JSON array")?;
    let http_one_limit = http_serial(&server.url("/limit"), one, plan.limit_secs, 2)?;
    eprintln!(
        "  limit: serial POSTs of the {} B body: {:.0}/s (faster run); latency p50 {:.0} µs, p99 {:.0} µs",
        http_one_limit.body_bytes,
        http_one_limit.rate(),
        http_one_limit.lat.p50,
        http_one_limit.lat.p99,
    );
    let mut http_batch_limit = http_serial(&server.url("/limit"), batch, plan.limit_secs, 2)?;
    // Count instances, not requests.
    http_batch_limit.requests *= batch_items as u64;
    eprintln!(
        "  limit: serial POSTs of the {} B array of {batch_items}: {:.0} instances/s ({:.0} requests/s, faster run); latency p50 {:.0} µs, p99 {:.0} µs",
        http_batch_limit.body_bytes,
        http_batch_limit.rate(),
        http_batch_limit.rate() / batch_items as f64,
        http_batch_limit.lat.p50,
        http_batch_limit.lat.p99
    );

    let nats = match (nats, nats_drain) {
        (Some(srv), Some(drain)) => {
            let url = srv.url();
            let pid = srv.pid();
            let d = drain;
            let out = rt.block_on(async move {
                let js = jetstream(&url, NATS_WINDOW).await?;
                let mut sc = js
                    .get_stream("SC")
                    .await
                    .context("the sink's stream SC")?;
                let state = sc.info().await.context("stream SC info")?.state.clone();
                if state.messages < d.delivered {
                    bail!(
                        "stream SC holds {} messages, the sink said it delivered {}",
                        state.messages,
                        d.delivered
                    );
                }
                let payload = sc
                    .get_raw_message(state.last_sequence)
                    .await
                    .context("read the sink's last message")?
                    .payload;
                let mut phase = 0;
                let mut limit = |w: Window| {
                    phase += 1;
                    let (js, payload, phase) = (js.clone(), payload.clone(), phase);
                    async move {
                        let mut best = (0, 1.0, 0.0);
                        for run in 0..2 {
                            fresh_stream(&js, "SC").await?;
                            let p0 = live::cpu_secs(pid)?;
                            let (js2, p2) = (js.clone(), payload.clone());
                            let r = tokio::spawn(async move {
                                publish_for(&js2, &p2, w, plan.limit_secs, phase * 2 + run).await
                            })
                            .await
                            .context("the NATS limit task panicked")??;
                            let peer = live::cpu_secs(pid)? - p0;
                            eprintln!(
                                "  limit: raw JetStream publish of the {} B payload, {w:?}: {:.0}/s; CPU per message: sc-bench {:.1} µs, nats-server {:.1} µs (nats-server's includes the warm-up)",
                                payload.len(),
                                r.0 as f64 / r.1,
                                1e6 * r.2 / r.0.max(1) as f64,
                                1e6 * peer / r.0.max(1) as f64
                            );
                            if r.0 as f64 / r.1 > best.0 as f64 / best.1 {
                                best = r;
                            }
                        }
                        Ok::<_, anyhow::Error>(best)
                    }
                };
                let batches = limit(Window::Batches(NATS_WINDOW)).await?;
                let sliding = limit(Window::Sliding(NATS_WINDOW)).await?;
                Ok(NatsDrain {
                    drain: d,
                    payload_bytes: payload.len(),
                    batches,
                    sliding,
                })
            })?;
            drop(srv);
            Some(out)
        }
        _ => None,
    };
    Ok(Drains {
        fill: n,
        fill_rate,
        http_one,
        http_one_limit,
        http_batch,
        http_batch_limit,
        nats,
    })
}

// --- latency -----------------------------------------------------------------

/// Which sink the latency row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `http`, `batch_max: 1`.
    Http,
    /// `http`, `batch_max: 100` (JSON arrays).
    HttpBatch,
    /// `nats`, `batch_max: 1024`.
    Nats,
}

/// `sensorcontainer_sink_delivery_latency_seconds` of one sink.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// (upper bound in seconds, cumulative count), ascending.
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// The upper bound of the bucket holding quantile `q`.
    pub fn quantile_le(&self, q: f64) -> f64 {
        let want = (q * self.count as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, c)| *c >= want.max(1))
            .map(|(le, _)| *le)
            .unwrap_or(f64::INFINITY)
    }

    /// Quantile `q` as "≤ X", or "> X" past the last finite bucket.
    pub fn bound(&self, q: f64) -> String {
        let le = self.quantile_le(q);
        if le.is_finite() {
            return format!("≤ {}", secs_text(le));
        }
        let top = self
            .buckets
            .iter()
            .map(|b| b.0)
            .filter(|b| b.is_finite())
            .fold(0.0, f64::max);
        format!("> {}", secs_text(top))
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    /// From the Prometheus text of `/metrics`, for `sink="NAME"`.
    pub fn parse(text: &str, sink: &str) -> Result<Histogram> {
        const NAME: &str = "sink_delivery_latency_seconds";
        let mut h = Histogram::default();
        let label = format!("sink=\"{sink}\"");
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            if line.starts_with('#') || !series.contains(&label) {
                continue;
            }
            let name = series.split('{').next().unwrap_or("");
            if name.ends_with(&format!("{NAME}_bucket")) {
                let le = series
                    .split("le=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .context("a bucket without le")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().context("bucket le")?
                };
                h.buckets.push((le, value.parse().context("bucket count")?));
            } else if name.ends_with(&format!("{NAME}_sum")) {
                h.sum = value.parse().context("histogram sum")?;
            } else if name.ends_with(&format!("{NAME}_count")) {
                h.count = value.parse().context("histogram count")?;
            }
        }
        if h.buckets.is_empty() {
            bail!("/metrics has no {NAME} for sink '{sink}'");
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(h)
    }
}

/// Seconds as "1.23 ms" below a second, else "1.23 s".
pub fn secs_text(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    }
}

/// GET `http://addr/metrics`.
fn metrics(rt: &Runtime, addr: SocketAddr) -> Result<String> {
    let uri: Uri = format!("http://{addr}/metrics").parse()?;
    rt.block_on(async {
        let client: Client<HttpConnector, http_body_util::Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let req = Request::get(uri)
            .body(http_body_util::Empty::new())
            .context("build GET /metrics")?;
        let exchange = async {
            let resp = client.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .context("GET /metrics: no answer")??;
        if !status.is_success() {
            bail!("GET /metrics: {status}");
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    })
}

/// The latency row of one sink.
pub struct LatencyRun {
    pub dispatched: u64,
    /// Dispatches / (first dispatch → last ack), in the sensor.
    pub dispatch_rate: f64,
    /// Dispatch → the destination has it, µs, one per dispatched instance.
    /// Those not delivered by the end of the wait count as delivered then
    /// (a lower bound), so with `late > 0` the upper percentiles are lower
    /// bounds.
    pub lat: Summary,
    /// Instances the destination did not have when the wait ended.
    pub late: u64,
    /// The wait after the last dispatch.
    pub catch_up: Duration,
    /// The sink's own histogram (append → confirmed, ms clocks).
    pub histogram: Histogram,
    /// The destination's round trip from a bare client, µs.
    pub limit: Summary,
    pub limit_what: String,
    pub container_cpu: f64,
}

/// Dispatch → destination, µs, of each delivered `bench.event` instance
/// (a body is one instance or a JSON array of them); and the longest body
/// that held one.
fn delivered_latencies(got: &[(i64, Bytes)]) -> Result<(Vec<f64>, Option<Bytes>)> {
    let mut lat = Vec::with_capacity(got.len());
    let mut sample: Option<Bytes> = None;
    for (at, body) in got {
        let v: Value = serde_json::from_slice(body).context("a delivered body is not JSON")?;
        let instances = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        let mut any = false;
        for v in instances.iter().filter(|v| v["trigger"] == TRIGGER) {
            let occ = v["occurrence_time"]
                .as_str()
                .and_then(rfc3339_us)
                .with_context(|| format!("no occurrence_time in {v}"))?;
            lat.push((at - occ) as f64);
            any = true;
        }
        if any && sample.as_ref().is_none_or(|s| s.len() < body.len()) {
            sample = Some(body.clone());
        }
    }
    Ok((lat, sample))
}

/// How the latency row runs.
#[derive(Debug, Clone, Copy)]
pub struct LatencyPlan {
    /// The sensor dispatches `rate` per second for `secs`.
    pub rate: f64,
    pub secs: f64,
    /// Longest wait after the last dispatch for the sink to catch up.
    pub catch_up: Duration,
    /// The destination's own round trips.
    pub limit_secs: Duration,
}

/// Dispatch → delivered while the SDK sensor dispatches at a paced rate
/// with one sink of `kind`; then the destination's own round trip.
pub fn latency(
    bins: &Bins,
    rt: &Runtime,
    kind: Kind,
    nats_bin: Option<&Path>,
    plan: LatencyPlan,
) -> Result<LatencyRun> {
    let LatencyPlan {
        rate,
        secs,
        catch_up,
        limit_secs,
    } = plan;
    let server = TestServer::start(rt)?;
    let nats = match kind {
        Kind::Http | Kind::HttpBatch => None,
        Kind::Nats => Some(NatsServer::start(
            nats_bin.context("the NATS latency row needs nats-server")?,
        )?),
    };
    // `start: earliest` and no filter: the sensor's `process_spawn`
    // instance is delivered before the run, so the connection (and the
    // stream) exist when it starts.
    let batch = if kind == Kind::HttpBatch {
        HTTP_BATCH
    } else {
        1
    };
    let yaml = match &nats {
        None => format!(
            "  - {{name: lat, type: http, url: '{}', batch_max: {batch}, start: earliest}}\n",
            server.url("/lat")
        ),
        Some(n) => format!(
            "  - {{name: lat, type: nats, url: '{}', start: earliest, create_stream: {{name: LAT, duplicate_window: 2m}}}}\n",
            n.url()
        ),
    };
    let ws = workspace(bins, &yaml)?;
    let mut c = ws.start(
        &[],
        &[("SENSORCONTAINER_API_LISTEN", "127.0.0.1:0".to_string())],
    )?;
    c.wait_api(Duration::from_secs(30))?;
    let addr = c.wait_http_addr(Duration::from_secs(30))?;
    wait_feeder_up(&ws, &mut c)?;
    let warm = wait_sink(&mut c, "lat", Duration::from_secs(30), |s| {
        s.delivered >= 1 && s.lag == 0
    })?;
    server.record(true);
    let cpu0 = live::cpu_secs(c.pid())?;
    let (n, t0, t1) = feed(
        &ws,
        &mut c,
        &format!("rate {rate} {secs}"),
        Duration::from_secs_f64(secs + 120.0),
    )?;
    let (settled, _) = poll_sink(&mut c, "lat", catch_up, |s| {
        s.lag == 0 && s.delivered >= warm.delivered + n
    })?;
    let end_us = epoch_us();
    let container_cpu = live::cpu_secs(c.pid())? - cpu0;
    server.record(false);
    let histogram = Histogram::parse(&metrics(rt, addr)?, "lat")?;
    c.stop(Duration::from_secs(30))?;

    let (mut lat, limit, limit_what) = match &nats {
        None => {
            let (lat, body) = delivered_latencies(&server.take_log())?;
            let body = body.context("the test server got no `bench.event` instance")?;
            let items = match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(a)) => Some(a.len()),
                _ => None,
            };
            let l = http_serial(&server.url("/limit"), body, limit_secs, 1)?;
            let what = match items {
                None => format!(
                    "one POST of the same {} B body, serial (the drain limit's client)",
                    l.body_bytes
                ),
                Some(k) => format!(
                    "one POST of the longest array the sink sent ({k} instances, {} B), serial (the drain limit's client)",
                    l.body_bytes
                ),
            };
            (lat, l.lat, what)
        }
        Some(srv) => {
            let url = srv.url();
            rt.block_on(async move {
                let js = jetstream(&url, NATS_WINDOW).await?;
                let stream = js
                    .get_stream("LAT")
                    .await
                    .context("the sink's stream LAT")?;
                let (lat, payload) = delivered_latencies(&stored_messages(&stream).await?)?;
                let payload = payload.context("stream LAT holds no `bench.event` instance")?;
                js.delete_stream("LAT").await.context("delete stream LAT")?;
                fresh_stream(&js, "LIMIT").await?;
                let (js2, p2) = (js.clone(), payload.clone());
                let trips =
                    tokio::spawn(
                        async move { publish_round_trips(&js2, &p2, limit_secs, 9).await },
                    )
                    .await
                    .context("the NATS round-trip task panicked")??;
                let what = format!(
                    "one JetStream publish → ack of the same {} B payload, serial",
                    payload.len()
                );
                Ok::<_, anyhow::Error>((lat, Summary::of(trips), what))
            })?
        }
    };
    let samples = lat.len() as u64;
    let late = n.saturating_sub(samples);
    if late > 0 {
        // Not there when the wait ended: at least that late.
        let bound = (end_us as f64 - t1 * 1e6).max(0.0);
        lat.extend(std::iter::repeat_n(bound, late as usize));
    }
    let run = LatencyRun {
        dispatched: n,
        dispatch_rate: n as f64 / (t1 - t0),
        lat: Summary::of(lat),
        late,
        catch_up: plan.catch_up,
        histogram,
        limit,
        limit_what,
        container_cpu,
    };
    let h = &run.histogram;
    eprintln!(
        "  {kind:?} sink: {n} dispatched at {:.0}/s; {} at the destination within {:.1} s of the last dispatch (sink delivered {}, lag {}); dispatch → delivered p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs{}; sink histogram (append → confirmed, ms clocks): {} observations, mean {}, p50 {}, p99 {}; container CPU per instance {:.1} µs; limit {}: p50 {:.0} µs, p99 {:.0} µs",
        run.dispatch_rate,
        samples,
        end_us as f64 / 1e6 - t1,
        settled.delivered - warm.delivered,
        settled.lag,
        run.lat.p50,
        run.lat.p99,
        run.lat.p999,
        run.lat.max,
        if late > 0 { " (lower bounds: the late ones count as delivered when the wait ended)" } else { "" },
        h.count,
        secs_text(h.mean()),
        h.bound(0.5),
        h.bound(0.99),
        1e6 * run.container_cpu / n.max(1) as f64,
        run.limit_what,
        run.limit.p50,
        run.limit.p99
    );
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_the_container_writes_it() {
        assert_eq!(rfc3339_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_us("2000-03-01T00:00:01.5Z"),
            Some(11_017 * 86_400_000_000 + 1_500_000)
        );
        for _ in 0..3 {
            let s = eventlog::instance::now_rfc3339();
            let ms = eventlog::instance::rfc3339_ms(&s).unwrap() as i64;
            assert_eq!(rfc3339_us(&s).unwrap() / 1000, ms, "{s}");
        }
        assert_eq!(rfc3339_us("2026-12-01 10:00:00Z"), None);
        assert_eq!(rfc3339_us("2026-12-01T10:00:00+02:00"), None);
    }

    #[test]
    fn histogram_from_metrics_text() {
        let text = "# TYPE sensorcontainer_sink_delivery_latency_seconds histogram\n\
            sensorcontainer_sink_delivery_latency_seconds_sum{sink=\"lat\"} 2.5\n\
            sensorcontainer_sink_delivery_latency_seconds_count{sink=\"lat\"} 100\n\
            sensorcontainer_sink_delivery_latency_seconds_bucket{le=\"0.001\",sink=\"lat\"} 40\n\
            sensorcontainer_sink_delivery_latency_seconds_bucket{le=\"0.002\",sink=\"lat\"} 98\n\
            sensorcontainer_sink_delivery_latency_seconds_bucket{le=\"+Inf\",sink=\"lat\"} 100\n\
            sensorcontainer_sink_delivery_latency_seconds_bucket{le=\"0.001\",sink=\"other\"} 7\n";
        let h = Histogram::parse(text, "lat").unwrap();
        assert_eq!(h.count, 100);
        assert_eq!(h.buckets.len(), 3);
        assert_eq!(h.quantile_le(0.5), 0.002);
        assert_eq!(h.quantile_le(0.99), f64::INFINITY);
        assert!((h.mean() - 0.025).abs() < 1e-12);
    }
}
