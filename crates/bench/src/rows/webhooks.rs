//! StackStorm webhooks over the container's HTTP API: `POST
//! /api/v1/webhooks/st2` answered 202 once the instance is durable, against
//! `GET /healthz` of the same server with the same client and concurrency
//! (the HTTP limit on this machine).
//!
//! The load generator is a hyper HTTP/1.1 client (`hyper::client::conn::
//! http1` over `tokio::net::TcpStream`, as `api::client` does) on N
//! keep-alive connections, each sending one request at a time for a fixed
//! time. It runs in this process on the bench's tokio runtime, so it shares
//! the two cores with the container.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::live::{self, Bins, SensorSpec, Workspace};
use crate::stats::Summary;

/// The trigger the webhooks fire (declared by the bench pack's sensor).
pub const TRIGGER: &str = "bench.event";
/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Warm-up before each measured phase (connections, caches, the sensor).
const WARM_UP: Duration = Duration::from_millis(300);

/// An idle sensor that declares `bench.event` and says when it is up.
const IDLE_PY: &str = r#"

class WebhookIdle(BenchBase):
    def setup(self):
        marker("ready.WebhookIdle")
"#;

type Sender = SendRequest<Full<Bytes>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Healthz,
    Webhook,
}

struct Target {
    host: String,
    key: String,
}

impl Target {
    fn request(&self, kind: Kind, n: u64) -> Result<hyper::Request<Full<Bytes>>> {
        let req = match kind {
            Kind::Healthz => hyper::Request::get("/healthz")
                .header("host", &self.host)
                .body(Full::new(Bytes::new())),
            Kind::Webhook => {
                let body = format!(
                    r#"{{"trigger":"{TRIGGER}","payload":{{"n":{n},"source":"webhook"}}}}"#
                );
                hyper::Request::post("/api/v1/webhooks/st2")
                    .header("host", &self.host)
                    .header("st2-api-key", &self.key)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
            }
        };
        req.context("build the HTTP request")
    }
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Requests answered as expected (200 for healthz, 202 for webhooks).
    pub ok: u64,
    /// Start → the last connection's last answer.
    pub secs: f64,
    /// Latency of each request in µs: send → whole answer read.
    pub lat: Summary,
    /// CPU seconds over the phase: the container, and this process (the
    /// client; nothing else runs in it meanwhile).
    pub container_cpu: f64,
    pub client_cpu: f64,
    /// The part of `container_cpu` spent in the log's writer thread
    /// (`eventlog-writer`: framing, `pwrite`, `fdatasync`, waking waiters).
    pub writer_cpu: f64,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

/// The row's outcome.
pub struct Webhooks {
    /// `GET /healthz` before and after the webhooks.
    pub healthz: [Phase; 2],
    pub webhooks: Phase,
    /// Every 202 of the run, warm-up included.
    pub accepted: u64,
    /// `sensorctl log stats --json` → `records` after the run (the
    /// sensor's `core.st2.sensor.process_spawn` instance too).
    pub records: u64,
    /// `sensorctl trigger-instance list --trigger bench.event --limit 0
    /// --json`: lines, after the run.
    pub stored: u64,
    /// Log commits (fdatasyncs) and records appended over the measured
    /// webhook phase.
    pub commits: u64,
    pub appended: u64,
}

async fn connect(addr: SocketAddr) -> Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true).context("set TCP_NODELAY")?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // A broken connection shows up in the next `send_request`.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One connection: requests one after another until `deadline`.
async fn worker(
    mut sender: Sender,
    target: Arc<Target>,
    kind: Kind,
    deadline: Instant,
    seq: Arc<AtomicU64>,
) -> Result<(Sender, Vec<f64>)> {
    let expected = match kind {
        Kind::Healthz => StatusCode::OK,
        Kind::Webhook => StatusCode::ACCEPTED,
    };
    let mut lat = Vec::with_capacity(16 * 1024);
    while Instant::now() < deadline {
        let req = target.request(kind, seq.fetch_add(1, Ordering::Relaxed))?;
        sender
            .ready()
            .await
            .context("the keep-alive connection closed")?;
        let t0 = Instant::now();
        let exchange = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .with_context(|| format!("{kind:?}: no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("{kind:?}: request failed"))?;
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
        if status != expected {
            bail!(
                "{kind:?}: answered {status} (expected {expected}): {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    Ok((sender, lat))
}

/// Run every connection for `dur`; hands the connections back.
async fn phase(
    senders: Vec<Sender>,
    target: &Arc<Target>,
    kind: Kind,
    dur: Duration,
) -> Result<(Vec<Sender>, Vec<f64>, f64)> {
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + dur;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(worker(s, target.clone(), kind, deadline, seq.clone())))
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    let mut lat = Vec::new();
    let mut first_err = None;
    for t in tasks {
        match t.await.context("a load generator task panicked")? {
            Ok((s, l)) => {
                back.push(s);
                lat.extend(l);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok((back, lat, secs))
}

/// CPU seconds of the container's `eventlog-writer` thread(s) so far.
fn writer_cpu(pid: u32) -> Result<f64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0.0;
    for e in std::fs::read_dir(&dir).with_context(|| format!("read {dir}"))? {
        let tid = e.with_context(|| format!("read {dir}"))?.file_name();
        let Some(tid) = tid.to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        // A thread may end meanwhile: skip what cannot be read.
        let comm = std::fs::read_to_string(format!("{dir}/{tid}/comm")).unwrap_or_default();
        if comm.trim() == "eventlog-writer" {
            total += live::thread_cpu_secs(pid, tid).unwrap_or(0.0);
        }
    }
    Ok(total)
}

fn log_stats(ws: &Workspace) -> Result<Value> {
    let text = ws.sensorctl(&["log", "stats", "--json"])?;
    serde_json::from_str(&text).context("sensorctl log stats --json: not JSON")
}

fn field(v: &Value, k: &str) -> Result<u64> {
    v[k].as_u64()
        .with_context(|| format!("sensorctl log stats --json: no number `{k}` in {v}"))
}

/// Start a container with the HTTP API on a free port, then measure
/// healthz, webhooks, healthz again, `dur` each (after a warm-up), over
/// `concurrency` keep-alive connections.
pub fn run(
    bins: &Bins,
    rt: &tokio::runtime::Runtime,
    concurrency: usize,
    dur: Duration,
) -> Result<Webhooks> {
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 10\n")?;
    ws.write_pack(
        &[SensorSpec::python("WebhookIdle", "idle.py", true)],
        &[("idle.py".into(), format!("{}{IDLE_PY}", live::PY_HEADER))],
    )?;
    ws.register()?;
    // Through the embedded backend: the container is not running yet.
    let key = ws
        .sensorctl(&["apikey", "create", "--name", "bench"])?
        .trim()
        .to_string();
    if key.is_empty() || key.contains(char::is_whitespace) {
        bail!("sensorctl apikey create printed {key:?}, not a key");
    }
    let mut c = ws.start(
        &[],
        &[("SENSORCONTAINER_API_LISTEN", "127.0.0.1:0".to_string())],
    )?;
    c.wait_api(Duration::from_secs(30))?;
    let addr = c.wait_http_addr(Duration::from_secs(30))?;
    let ready = ws.marker("ready.WebhookIdle");
    live::wait_for(
        "the bench sensor to be up",
        Duration::from_secs(60),
        || c.check_alive(),
        || ready.exists(),
    )?;
    eprintln!("  HTTP API on http://{addr}, {concurrency} keep-alive connections");

    let target = Arc::new(Target {
        host: addr.to_string(),
        key,
    });
    let pid = c.pid();
    let me = std::process::id();
    // A warm-up, then the measured phase; returns the warm-up's count.
    let warm = |senders: Vec<Sender>, kind: Kind| -> Result<(Vec<Sender>, u64)> {
        let (senders, lat, _) = rt.block_on(phase(senders, &target, kind, WARM_UP))?;
        Ok((senders, lat.len() as u64))
    };
    let measure = |senders: Vec<Sender>, kind: Kind| -> Result<(Vec<Sender>, Phase)> {
        let (c0, m0, w0) = (live::cpu_secs(pid)?, live::cpu_secs(me)?, writer_cpu(pid)?);
        let (senders, lat, secs) = rt.block_on(phase(senders, &target, kind, dur))?;
        let (c1, m1, w1) = (live::cpu_secs(pid)?, live::cpu_secs(me)?, writer_cpu(pid)?);
        let p = Phase {
            ok: lat.len() as u64,
            secs,
            lat: Summary::of(lat),
            container_cpu: c1 - c0,
            client_cpu: m1 - m0,
            writer_cpu: w1 - w0,
        };
        eprintln!(
            "  {kind:?}: {} in {:.2} s = {:.0}/s; latency p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs; CPU per request: container {:.1} µs (log writer thread {:.1} µs of it), client {:.1} µs ({:.2} cores busy)",
            p.ok,
            p.secs,
            p.rate(),
            p.lat.p50,
            p.lat.p99,
            p.lat.p999,
            p.lat.max,
            1e6 * p.container_cpu / p.ok.max(1) as f64,
            1e6 * p.writer_cpu / p.ok.max(1) as f64,
            1e6 * p.client_cpu / p.ok.max(1) as f64,
            (p.container_cpu + p.client_cpu) / p.secs
        );
        Ok((senders, p))
    };

    let senders = rt.block_on(async {
        let mut v = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            v.push(connect(addr).await?);
        }
        Ok::<_, anyhow::Error>(v)
    })?;
    let (senders, _) = warm(senders, Kind::Healthz)?;
    let (senders, h0) = measure(senders, Kind::Healthz)?;
    let (senders, wh_warm) = warm(senders, Kind::Webhook)?;
    let before = log_stats(&ws)?;
    let (senders, wh) = measure(senders, Kind::Webhook)?;
    let after = log_stats(&ws)?;
    let (senders, h1) = measure(senders, Kind::Healthz)?;
    drop(senders);
    c.check_alive()?;

    // Every 202, the warm-up's too, must be stored as a `bench.event`.
    let records = field(&log_stats(&ws)?, "records")?;
    let stored = ws
        .sensorctl(&[
            "trigger-instance",
            "list",
            "--trigger",
            TRIGGER,
            "--limit",
            "0",
            "--json",
        ])?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let accepted = wh_warm + wh.ok;
    let commits = field(&after, "commits")?.saturating_sub(field(&before, "commits")?);
    let appended = field(&after, "appended")?.saturating_sub(field(&before, "appended")?);
    c.stop(Duration::from_secs(30))?;
    if stored < accepted {
        bail!(
            "only {stored} `{TRIGGER}` instances stored ({records} records in the log) of {accepted} webhooks answered 202"
        );
    }
    Ok(Webhooks {
        healthz: [h0, h1],
        webhooks: wh,
        accepted,
        records,
        stored,
        commits,
        appended,
    })
}
