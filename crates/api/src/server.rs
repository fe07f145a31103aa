//! Listeners: the Unix control socket and TCP, each with a connection
//! limit, a header read timeout, and (in [`read_body`]) a body limit and a
//! body read timeout, so a slow or greedy client cannot stall the server or
//! take the file descriptors sensors need.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::fault::fault;
use crate::ApiContext;

/// Which listener a request came in on (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The control socket: authenticated by file permissions.
    Unix,
    /// TCP: needs an API key.
    Tcp,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0} is served by another running sensorcontainer")]
    InUse(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("api.tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// The running listeners; dropping it stops accepting.
pub struct Listeners {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    socket: Option<PathBuf>,
    /// The TCP addresses actually bound (port 0 resolved).
    pub tcp: Vec<std::net::SocketAddr>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Bind the control socket (replacing a stale one) and every TCP address
/// of the settings, and serve them until the returned value is dropped.
pub async fn start(ctx: Arc<ApiContext>, socket: &Path) -> Result<Listeners, ServeError> {
    raise_fd_limit();
    let tls = match &ctx.settings.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => None,
    };
    let router = crate::router(ctx.clone());
    let mut tasks = Vec::new();
    if UnixStream::connect(socket).await.is_ok() {
        return Err(ServeError::InUse(socket.display().to_string()));
    }
    let _ = std::fs::remove_file(socket);
    let bind_err = |addr: String| move |source| ServeError::Bind { addr, source };
    let unix = UnixListener::bind(socket).map_err(bind_err(socket.display().to_string()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(bind_err(socket.display().to_string()))?;
    tracing::info!("control API on {}", socket.display());
    let unix_router = router.clone().layer(axum::Extension(Transport::Unix));
    // Each listener has its own connection limit: TCP clients can never
    // lock sensorctl out of the control socket.
    tasks.push(tokio::spawn(accept_loop(
        unix,
        unix_router,
        Limits::of(&ctx),
        "control socket",
        None,
    )));
    let mut bound = Vec::new();
    for addr in &ctx.settings.listen {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(bind_err(addr.to_string()))?;
        let local = tcp.local_addr().map_err(bind_err(addr.to_string()))?;
        bound.push(local);
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("HTTP API on {scheme}://{local}");
        let tcp_router = router.clone().layer(axum::Extension(Transport::Tcp));
        tasks.push(tokio::spawn(accept_loop(
            tcp,
            tcp_router,
            Limits::of(&ctx),
            "HTTP API",
            tls.clone(),
        )));
    }
    Ok(Listeners {
        tasks,
        socket: Some(socket.to_path_buf()),
        tcp: bound,
    })
}

#[derive(Clone)]
struct Limits {
    connections: Arc<Semaphore>,
    read_timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Limits {
    fn of(ctx: &ApiContext) -> Limits {
        Limits {
            connections: Arc::new(Semaphore::new(ctx.settings.max_connections.max(1))),
            read_timeout: ctx.settings.read_timeout,
            metrics: ctx.metrics.clone(),
        }
    }
}

/// A listener the accept loop can take connections from.
trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(&self) -> impl std::future::Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for UnixListener {
    type Io = UnixStream;
    async fn accept_one(&self) -> std::io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Accept for TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<tokio::net::TcpStream> {
        let (s, _) = self.accept().await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

async fn accept_loop<L: Accept>(
    listener: L,
    router: Router,
    limits: Limits,
    what: &'static str,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut last_error: Option<std::time::Instant> = None;
    loop {
        let stream = match listener.accept_one().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning, and say
                // so once a second at most.
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::error!("{what}: accept failed: {e}");
                    last_error = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
            // Over the limit: refuse (close) at once rather than queue.
            limits.metrics.connection_refused();
            drop(stream);
            continue;
        };
        let router = router.clone();
        let read_timeout = limits.read_timeout;
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, router, read_timeout, what).await,
                // The handshake runs here, under the read timeout, never in
                // the accept loop: a stalled client stalls only itself.
                Some(acceptor) => {
                    match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_connection(s, router, read_timeout, what).await,
                        Ok(Err(e)) => tracing::debug!("{what}: TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(
                            "{what}: TLS handshake not done within {read_timeout:?}"
                        ),
                    }
                }
            }
        });
    }
}

async fn serve_connection<IO>(io: IO, router: Router, read_timeout: Duration, what: &'static str)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    if let Err(e) = conn.await {
        tracing::debug!("{what}: connection ended: {e}");
    }
}

/// Middleware: refuse bodies over `api.max_body_bytes` (413) and bodies
/// that do not arrive within `api.read_timeout` (408); hand the handler the
/// whole body.
pub async fn read_body(State(ctx): State<Arc<ApiContext>>, req: Request, next: Next) -> Response {
    let max = ctx.settings.max_body_bytes;
    let too_large = || {
        fault(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than api.max_body_bytes ({max} bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, max);
    let bytes: Bytes =
        match tokio::time::timeout(ctx.settings.read_timeout, limited.collect()).await {
            Err(_) => {
                return fault(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not received within api.read_timeout ({:?})",
                        ctx.settings.read_timeout
                    ),
                )
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Ok(Err(e)) => {
                return fault(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Let the process use as many descriptors as its hard limit allows: idle
/// HTTP clients must not take the descriptors a restarting sensor needs.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
