//! `type: http`: POST each instance as JSON (an array of them when
//! `batch_max` > 1), or StackStorm's webhook body with `format: st2`.
//!
//! 2xx = delivered. 408, 429, 5xx, timeouts and connection errors are
//! retried (honouring `Retry-After`); any other status is permanent and
//! dead-letters the batch. Connections are pooled and kept alive; TLS is
//! rustls, trusting the system's roots or `ca_cert`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{HeaderMap, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;

use crate::destination::{Failure, Item};
use crate::spec::{HttpFormat, HttpSpec};
use crate::SinkError;

/// The path StackStorm's API takes `format: st2` posts on.
pub const ST2_WEBHOOK_PATH: &str = "/api/v1/webhooks/st2";

/// Most of an error body quoted in a failure message.
const QUOTE: usize = 300;

/// The HTTP sink.
pub struct HttpSink {
    spec: HttpSpec,
    /// `batch_max` > 1: always a JSON array (even of one), so a receiver
    /// sees one shape.
    array: bool,
    uri: Uri,
    headers: HeaderMap,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// TLS settings: `ca_cert`, else the system's roots (read only for an
/// https:// URL; a plain-HTTP client needs none).
pub(crate) fn tls_config(
    ca_cert: Option<&std::path::Path>,
    https: bool,
) -> Result<rustls::ClientConfig, SinkError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config(format!("TLS: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            let bad = |e: String| SinkError::Config(format!("ca_cert: {}: {e}", path.display()));
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("cannot read certificates: {e}")))?;
            for c in certs {
                let c = c.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("holds no PEM certificate".into()));
            }
        }
        None if !https => {}
        None => {
            // Certificates the system store holds but rustls cannot parse
            // are skipped, as browsers do.
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The request target: the URL, or `<url>/api/v1/webhooks/st2` for st2.
fn target(spec: &HttpSpec) -> Result<Uri, SinkError> {
    let url = match spec.format {
        HttpFormat::Json => spec.url.clone(),
        HttpFormat::St2 if spec.url.trim_end_matches('/').ends_with(ST2_WEBHOOK_PATH) => {
            spec.url.clone()
        }
        HttpFormat::St2 => format!("{}{ST2_WEBHOOK_PATH}", spec.url.trim_end_matches('/')),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| SinkError::Config(format!("url: '{url}' is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some() => Ok(uri),
        _ => Err(SinkError::Config(format!(
            "url: '{url}' must be an http:// or https:// URL with a host"
        ))),
    }
}

impl HttpSink {
    /// A sink posting to `spec.url` (checks the URL, headers and TLS
    /// files); `batch_max` > 1 posts JSON arrays.
    pub fn new(spec: HttpSpec, batch_max: usize) -> Result<HttpSink, SinkError> {
        let uri = target(&spec)?;
        let mut headers = HeaderMap::new();
        for (k, v) in &spec.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SinkError::Config(format!("headers: '{k}' is not a header name")))?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                SinkError::Config(format!(
                    "headers: the value of '{k}' is not a valid header value"
                ))
            })?;
            headers.insert(name, value);
        }
        if spec.format == HttpFormat::St2 {
            let key = spec.api_key.as_deref().unwrap_or_default();
            if !key.is_empty() {
                let v = HeaderValue::from_str(key)
                    .map_err(|_| SinkError::Config("api_key: not a valid header value".into()))?;
                headers.insert(HeaderName::from_static("st2-api-key"), v);
            }
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(spec.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(
                spec.ca_cert.as_deref(),
                uri.scheme_str() == Some("https"),
            )?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(HttpSink {
            spec,
            array: batch_max > 1,
            uri,
            headers,
            client,
        })
    }

    /// Deliver the batch: one request per instance for `format: st2`, the
    /// instance itself with `batch_max: 1`, else one JSON array.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), Failure> {
        if self.spec.format == HttpFormat::St2 {
            for (n, it) in items.iter().enumerate() {
                let body = json!({
                    "trigger": it.trigger,
                    "payload": it.value()["payload"],
                });
                // A Value of plain data serializes infallibly.
                let body = serde_json::to_vec(&body).unwrap_or_default();
                self.post(body, Some(&it.id), 1)
                    .await
                    .map_err(|f| Failure { delivered: n, ..f })?;
            }
            return Ok(());
        }
        if !self.array {
            for (n, it) in items.iter().enumerate() {
                self.post(it.json.clone(), None, 1)
                    .await
                    .map_err(|f| Failure { delivered: n, ..f })?;
            }
            return Ok(());
        }
        let mut body =
            Vec::with_capacity(items.iter().map(|i| i.json.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (n, it) in items.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&it.json);
        }
        body.push(b']');
        self.post(body, None, items.len()).await
    }

    async fn post(&self, body: Vec<u8>, trace_tag: Option<&str>, n: usize) -> Result<(), Failure> {
        let mut req = Request::post(self.uri.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::permanent(n, format!("cannot build the request: {e}")))?;
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        if let Some(tag) = trace_tag.and_then(|t| HeaderValue::from_str(t).ok()) {
            h.insert(HeaderName::from_static("st2-trace-tag"), tag);
        }
        let timeout = self.spec.request_timeout;
        let exchange = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // Read the body so the connection can be reused (and to quote
            // an error), but never more than a little of it.
            let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, body))
        };
        let (status, retry_after, body) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return Err(Failure::retry(
                    n,
                    format!("POST {}: no answer within {timeout:?}", self.uri),
                ))
            }
            Ok(Err(e)) => {
                let message = format!("POST {}: {}", self.uri, chain(&e));
                return Err(if e.is_connect() {
                    Failure::unavailable(n, message)
                } else {
                    Failure::retry(n, message)
                });
            }
            Ok(Ok(r)) => r,
        };
        if status.is_success() {
            return Ok(());
        }
        let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTE)]).into_owned();
        let message = format!("POST {}: HTTP {status}: {}", self.uri, quoted.trim());
        if retryable(status) {
            Err(Failure {
                retry_after,
                ..Failure::retry(n, message)
            })
        } else {
            Err(Failure::permanent(n, message))
        }
    }
}

/// 408, 429 and 5xx are worth retrying.
pub fn retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An error with its causes ("connection refused" hides two levels down).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_classes() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 301] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn st2_target_and_bad_urls() {
        let mut spec = HttpSpec {
            url: "http://st2.example:9101/".into(),
            format: HttpFormat::St2,
            headers: vec![],
            api_key: Some("k".into()),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            ca_cert: None,
        };
        assert_eq!(
            target(&spec).unwrap().to_string(),
            "http://st2.example:9101/api/v1/webhooks/st2"
        );
        spec.url = "http://h/api/v1/webhooks/st2".into();
        assert_eq!(
            target(&spec).unwrap().to_string(),
            "http://h/api/v1/webhooks/st2"
        );
        spec.url = "ftp://h/x".into();
        assert!(target(&spec).unwrap_err().to_string().contains("http://"));
    }
}
