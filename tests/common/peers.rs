//! Real peers for the sink tests: an HTTP server in this process (hyper on
//! 127.0.0.1) that can be told how to answer and records what it got, and
//! a `nats-server` with JetStream (installed by scripts/install-peers.sh).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{repo, wait_until};

/// How the HTTP peer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 with `{}`.
    Ok,
    /// This status (503 gets `Retry-After: 0`).
    Status(u16),
    /// Never answer.
    Hang,
    /// Close the connection without answering.
    Close,
}

/// One request the peer received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

#[derive(Default)]
struct PeerState {
    mode: Mutex<Option<Mode>>,
    /// Statuses to give before falling back to `mode`.
    script: Mutex<VecDeque<u16>>,
    received: Mutex<Vec<Received>>,
}

/// The HTTP peer. Stop it and start it again on the same port with
/// [`HttpPeer::stop`] / [`HttpPeer::restart`].
pub struct HttpPeer {
    pub addr: SocketAddr,
    state: Arc<PeerState>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl HttpPeer {
    /// Start on a free port, answering 200.
    pub fn start() -> HttpPeer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(PeerState::default());
        *state.mode.lock().unwrap() = Some(Mode::Ok);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut peer = HttpPeer {
            addr,
            state,
            rt,
            stop: None,
        };
        peer.serve(listener);
        peer
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        self.stop = Some(tx);
        let state = self.state.clone();
        self.rt.spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                    _ = rx.changed() => return,
                };
                let state = state.clone();
                let mut conn_stop = rx.clone();
                tokio::spawn(async move {
                    if *state.mode.lock().unwrap() == Some(Mode::Close) {
                        drop(stream);
                        return;
                    }
                    let st = state.clone();
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let st = st.clone();
                        async move { Ok::<_, hyper::Error>(answer(&st, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_stop.changed() => {}
                    }
                });
            }
        });
    }

    /// Answer with `mode` from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
    }

    /// Answer the next requests with these statuses, then with the mode.
    pub fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Instance ids of requests answered 2xx, in arrival order (bodies that
    /// are an instance or an array of them).
    pub fn delivered_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for r in self
            .received()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
        {
            let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let items = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            for i in items {
                if let Some(id) = i["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }

    /// Stop listening and drop open connections.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        // Let the accept loop see it and release the port.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Listen again on the same port.
    pub fn restart(&mut self) {
        let addr = self.addr;
        let mut listener = None;
        assert!(wait_until(Duration::from_secs(10), || {
            listener = self.rt.block_on(tokio::net::TcpListener::bind(addr)).ok();
            listener.is_some()
        }));
        self.serve(listener.unwrap());
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(st: &PeerState, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let scripted = st.script.lock().unwrap().pop_front();
    let mode = st.mode.lock().unwrap().unwrap_or(Mode::Ok);
    let status = match (scripted, mode) {
        (Some(s), _) => s,
        (None, Mode::Ok) => 200,
        (None, Mode::Status(s)) => s,
        (None, Mode::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            200
        }
        (None, Mode::Close) => 200,
    };
    st.received.lock().unwrap().push(Received {
        path,
        headers,
        body,
        status,
    });
    let mut resp = Response::builder().status(status);
    if status == 503 {
        resp = resp.header("Retry-After", "0");
    }
    resp.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
}

/// Where nats-server is: $SC_NATS_SERVER, scripts/install-peers.sh's
/// venv, or PATH.
pub fn nats_server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SC_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let venv = repo().join("target/peers/venv/bin/nats-server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    })
}

/// A nats-server with JetStream on a free loopback port, killed on drop.
pub struct NatsServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// A free loopback TCP port (bound and released), never the same one
/// twice in this test process: parallel tests start brokers with several
/// ports each, and a port released by one pick could otherwise be handed
/// to another test before the first broker binds it (seen in CI: a TLS
/// listener's port taken by another test's node).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl NatsServer {
    /// Start one, or `None` (printing why) when nats-server is missing
    /// outside CI. Under CI=true a missing or failing server fails the test.
    pub fn start() -> Option<NatsServer> {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        let Some(bin) = nats_server_binary() else {
            let why = "nats-server not found: run scripts/install-peers.sh (or set SC_NATS_SERVER)";
            assert!(!ci, "{why}");
            eprintln!("SKIP: {why}");
            return None;
        };
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let up = wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || child.try_wait().ok().flatten().is_some()
            });
            if up && child.try_wait().ok().flatten().is_none() {
                return Some(NatsServer {
                    child,
                    port,
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nats-server {} did not start (3 tries)", bin.display());
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The `Nats-Msg-Id` of every message in `stream`, in stream order.
    pub fn stream_ids(&self, stream: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let mut s = match js.get_stream(stream).await {
                Ok(s) => s,
                Err(_) => return Vec::new(),
            };
            let info = s.info().await.unwrap().state.clone();
            let mut ids = Vec::new();
            if info.messages == 0 {
                return ids;
            }
            for seq in info.first_sequence..=info.last_sequence {
                if let Ok(m) = s.get_raw_message(seq).await {
                    if let Some(id) = m.headers.get("Nats-Msg-Id") {
                        ids.push(id.as_str().to_string());
                    }
                }
            }
            ids
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
