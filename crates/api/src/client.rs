//! The control API client `sensorctl` uses: over the Unix socket of a
//! local container, or over TCP to a remote one (`--url`, with an API key).

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpStream, UnixStream};

use crate::ops::OpError;

/// Where a container's control API is.
#[derive(Clone)]
pub enum Endpoint {
    /// `<data-dir>/control.sock`.
    Unix(PathBuf),
    /// `http(s)://HOST:PORT` with an API key (and for https, the
    /// connector trusting `--ca-cert`).
    Http {
        url: hyper::Uri,
        key: Option<String>,
        tls: Option<tokio_rustls::TlsConnector>,
    },
}

impl Endpoint {
    /// An HTTP endpoint from a `--url`; https needs the CA certificate
    /// (PEM) that signed the server's certificate.
    pub fn http(
        url: &str,
        key: Option<String>,
        ca: Option<&std::path::Path>,
    ) -> Result<Endpoint, CallError> {
        let fail = |message: String| CallError {
            target: url.to_string(),
            message,
        };
        let uri: hyper::Uri = url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| fail(format!("not a URL: {e}")))?;
        let tls = match (uri.scheme_str(), ca) {
            (Some("http"), _) => None,
            (Some("https"), Some(ca)) => Some(crate::tls::connector(ca).map_err(|e| fail(e.to_string()))?),
            (Some("https"), None) => {
                return Err(fail(
                    "https:// needs --ca-cert PEM (the CA that signed the server's certificate; no system trust store is bundled)".into(),
                ))
            }
            _ => return Err(fail("the URL must start with http:// or https://".into())),
        };
        if uri.host().is_none() {
            return Err(CallError {
                target: url.to_string(),
                message: "the URL has no host".into(),
            });
        }
        Ok(Endpoint::Http { url: uri, key, tls })
    }

    fn target(&self) -> String {
        match self {
            Endpoint::Unix(p) => p.display().to_string(),
            Endpoint::Http { url, .. } => url.to_string(),
        }
    }
}

/// A connection-level failure (as opposed to an [`OpError`] answer).
#[derive(Debug, thiserror::Error)]
#[error("control API {target}: {message}")]
pub struct CallError {
    pub target: String,
    pub message: String,
}

async fn send(
    ep: &Endpoint,
    op: &str,
    params: &Value,
) -> Result<hyper::Response<Incoming>, CallError> {
    let fail = |message: String| CallError {
        target: ep.target(),
        message,
    };
    let body = serde_json::to_vec(params).map_err(|e| fail(e.to_string()))?;
    let mut req = hyper::Request::post(format!("/v1/control/{op}"))
        .header("content-type", "application/json");
    macro_rules! go {
        ($stream:expr) => {{
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new($stream))
                .await
                .map_err(|e| fail(e.to_string()))?;
            tokio::spawn(conn);
            let req = req
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| fail(e.to_string()))?;
            sender
                .send_request(req)
                .await
                .map_err(|e| fail(e.to_string()))
        }};
    }
    match ep {
        Endpoint::Unix(path) => {
            req = req.header("host", "localhost");
            let stream = UnixStream::connect(path)
                .await
                .map_err(|e| fail(e.to_string()))?;
            go!(stream)
        }
        Endpoint::Http { url, key, tls } => {
            let host = url.host().unwrap_or("localhost");
            let port = url
                .port_u16()
                .unwrap_or(if tls.is_some() { 443 } else { 80 });
            req = req.header("host", format!("{host}:{port}"));
            if let Some(k) = key {
                req = req.header("st2-api-key", k.as_str());
            }
            let stream = TcpStream::connect((host, port))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            match tls {
                None => go!(stream),
                Some(connector) => {
                    let name = rustls::pki_types::ServerName::try_from(host.to_string())
                        .map_err(|e| fail(format!("bad host name: {e}")))?;
                    let stream = connector
                        .connect(name, stream)
                        .await
                        .map_err(|e| fail(format!("TLS: {e}")))?;
                    go!(stream)
                }
            }
        }
    }
}

/// The whole body of an answer.
async fn body_of(ep: &Endpoint, resp: hyper::Response<Incoming>) -> Result<Bytes, CallError> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CallError {
            target: ep.target(),
            message: e.to_string(),
        })?
        .to_bytes())
}

async fn error_of(ep: &Endpoint, resp: hyper::Response<Incoming>) -> Result<OpError, CallError> {
    let status = resp.status();
    let bytes = body_of(ep, resp).await?;
    if let Ok(err) = serde_json::from_slice::<OpError>(&bytes) {
        return Ok(err);
    }
    // Auth failures and the like come as StackStorm faults.
    let text = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["faultstring"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    Err(CallError {
        target: ep.target(),
        message: format!("{status}: {text}"),
    })
}

/// Call one operation.
pub async fn call(
    ep: &Endpoint,
    op: &str,
    params: &Value,
    timeout: Duration,
) -> Result<Result<Value, OpError>, CallError> {
    let work = async {
        let resp = send(ep, op, params).await?;
        if !resp.status().is_success() {
            return error_of(ep, resp).await.map(Err);
        }
        let bytes = body_of(ep, resp).await?;
        serde_json::from_slice(&bytes)
            .map(Ok)
            .map_err(|e| CallError {
                target: ep.target(),
                message: format!("bad answer: {e}"),
            })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| CallError {
            target: ep.target(),
            message: format!("no answer within {timeout:?}"),
        })?
}

/// Call a streaming operation: `each` gets every item as it arrives. The
/// timeout covers connecting and the answer's start, not the stream.
pub async fn call_stream<E: From<CallError>>(
    ep: &Endpoint,
    op: &str,
    params: &Value,
    timeout: Duration,
    mut each: impl FnMut(Value) -> Result<(), E>,
) -> Result<Result<(), OpError>, E> {
    let fail = |message: String| CallError {
        target: ep.target(),
        message,
    };
    let resp = tokio::time::timeout(timeout, send(ep, op, params))
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))??;
    if !resp.status().is_success() {
        return Ok(Err(error_of(ep, resp).await?));
    }
    let mut body = resp.into_body();
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
