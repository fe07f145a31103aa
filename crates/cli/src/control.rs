//! The control API: HTTP/1.1 + JSON on a Unix socket in the data
//! directory (`<data-dir>/control.sock`, mode 0600), served by the running
//! container. One route, `POST /v1/<operation>` with the operation's JSON
//! params as the body (see [`crate::ops`]); errors come back as
//! `{"kind", "message"}` with a 4xx/5xx status. Streaming operations
//! (`trigger-instance.list`, `trigger-instance.tail`) answer
//! `application/x-ndjson`: one JSON object per line as it is produced; an
//! error after the stream started is a last line `{"error": {"kind",
//! "message"}}`.
//!
//! sled lets one process open the database, so this is how `sensorctl`
//! reaches it while a container runs:
//! `curl --unix-socket data/control.sock -X POST localhost/v1/sensor.list`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};

use crate::ops::{OpError, OpErrorKind, Ops};

/// The socket's file name inside the data directory.
pub const SOCKET_NAME: &str = "control.sock";

/// Where the control socket of a data directory is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Bind the socket (replacing a stale one) and serve until the task is aborted.
pub async fn serve(ops: Arc<Ops>, path: PathBuf) -> Result<tokio::task::JoinHandle<()>> {
    if UnixStream::connect(&path).await.is_ok() {
        anyhow::bail!(
            "{} is served by another running sensorcontainer",
            path.display()
        );
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot bind the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod 600 {}", path.display()))?;
    let app = Router::new()
        .route("/v1/{op}", post(handle))
        .with_state(ops);
    tracing::info!("control API on {}", path.display());
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("control API stopped: {e}");
        }
    }))
}

async fn handle(
    State(ops): State<Arc<Ops>>,
    UrlPath(op): UrlPath<String>,
    body: Bytes,
) -> Response {
    let params: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let err = OpError {
                    kind: OpErrorKind::Invalid,
                    message: format!("request body is not JSON: {e}"),
                };
                return error_response(err);
            }
        }
    };
    if let Some(stream) = ops.stream(&op, params.clone()) {
        return match stream {
            Ok(rx) => ndjson(rx),
            Err(e) => error_response(e),
        };
    }
    match ops.execute(&op, params).await {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => error_response(e),
    }
}

/// Content type of streaming answers.
pub const NDJSON: &str = "application/x-ndjson";

fn ndjson(rx: crate::ops::OpStream) -> Response {
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let mut line = match item {
            Ok(v) => serde_json::to_vec(&v),
            Err(e) => serde_json::to_vec(&serde_json::json!({ "error": e })),
        }
        .unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), rx))
    });
    (
        [(axum::http::header::CONTENT_TYPE, NDJSON)],
        axum::body::Body::from_stream(lines),
    )
        .into_response()
}

fn error_response(e: OpError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
}

/// A connection-level failure (as opposed to an [`OpError`] answer).
#[derive(Debug, thiserror::Error)]
#[error("control API {path}: {message}")]
pub struct CallError {
    pub path: PathBuf,
    pub message: String,
}

/// Call a streaming operation: `each` gets every item as it arrives. The
/// timeout covers connecting and the answer's start, not the stream.
pub async fn call_stream(
    path: &Path,
    op: &str,
    params: &Value,
    timeout: Duration,
    mut each: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<Result<(), OpError>> {
    let fail = |message: String| CallError {
        path: path.to_path_buf(),
        message,
    };
    let start = async {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let body = serde_json::to_vec(params).map_err(|e| fail(e.to_string()))?;
        let req = hyper::Request::post(format!("/v1/{op}"))
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))
    };
    let resp = tokio::time::timeout(timeout, start)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))??;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = body
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        return match serde_json::from_slice::<OpError>(&bytes) {
            Ok(err) => Ok(Err(err)),
            Err(_) => Err(fail(format!("{status}: {}", String::from_utf8_lossy(&bytes))).into()),
        };
    }
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(format!("stream broke: {e}")))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let v: Value =
                serde_json::from_slice(&line).map_err(|e| fail(format!("bad stream line: {e}")))?;
            if let Some(err) = v.get("error") {
                if let Ok(err) = serde_json::from_value::<OpError>(err.clone()) {
                    return Ok(Err(err));
                }
            }
            each(v)?;
        }
    }
    Ok(Ok(()))
}

/// Call one operation on a running container.
pub async fn call(
    path: &Path,
    op: &str,
    params: &Value,
    timeout: Duration,
) -> Result<Result<Value, OpError>, CallError> {
    let fail = |message: String| CallError {
        path: path.to_path_buf(),
        message,
    };
    let work = async {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let body = serde_json::to_vec(params).map_err(|e| fail(e.to_string()))?;
        let req = hyper::Request::post(format!("/v1/{op}"))
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        if status.is_success() {
            serde_json::from_slice(&bytes)
                .map(Ok)
                .map_err(|e| fail(format!("bad answer: {e}")))
        } else {
            match serde_json::from_slice::<OpError>(&bytes) {
                Ok(err) => Ok(Err(err)),
                Err(_) => Err(fail(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes)
                ))),
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))?
}
