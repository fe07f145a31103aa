//! Reading StackStorm's HTTP API (`St2-Api-Key`, lists paged with
//! `limit`/`offset`) and RabbitMQ's management API, for `sensorctl st2
//! check`: which trigger types st2 knows, and whether st2's own sensor
//! container consumes its trigger watch queues.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::SinkError;

/// Entries asked for per page.
const PAGE: usize = 100;
/// Pages read at most (100,000 entries): a misbehaving server that ignores
/// `offset` cannot keep us reading forever.
const MAX_PAGES: usize = 1000;
/// Largest answer read.
const MAX_BODY: usize = 32 << 20;

/// A small JSON-over-HTTP(S) GET client (rustls, ring).
pub struct JsonClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl JsonClient {
    /// A client trusting `ca_cert` (else the system's roots, loaded only
    /// when `https`); `timeout` bounds each request.
    pub fn new(ca_cert: Option<&Path>, https: bool, timeout: Duration) -> Result<Self, SinkError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::http::tls_config(ca_cert, https)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(JsonClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    /// GET `url` with `headers`; the status and the JSON body of a 2xx,
    /// else an error quoting the answer.
    pub async fn get(&self, url: &str, headers: &[(HeaderName, String)]) -> Result<Value, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url}: not a URL: {e}"))?;
        let mut req = Request::get(uri).header(ACCEPT, "application/json");
        for (k, v) in headers {
            let v = HeaderValue::from_str(v).map_err(|_| format!("{k}: not a header value"))?;
            req = req.header(k, v);
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| format!("GET {url}: {e}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("GET {url}: {}", chain(&e)))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("GET {url}: reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("GET {url}: no answer within {:?}", self.timeout))??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("GET {url}: HTTP {status}: {}", text.trim()));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// StackStorm's API at a base URL, with an API key.
pub struct St2Api {
    http: JsonClient,
    base: String,
    key: Option<String>,
}

impl St2Api {
    /// `api_url` is st2's public base (`https://st2.example.com`, whose
    /// API is under `/api/v1`) or st2api itself (`http://host:9101/v1`).
    pub fn new(
        api_url: &str,
        api_key: Option<&str>,
        ca_cert: Option<&Path>,
        timeout: Duration,
    ) -> Result<St2Api, SinkError> {
        let trimmed = api_url.trim_end_matches('/');
        let base = if trimmed.ends_with("/v1") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/api/v1")
        };
        Ok(St2Api {
            http: JsonClient::new(ca_cert, base.starts_with("https://"), timeout)?,
            base,
            key: api_key.map(str::to_string),
        })
    }

    /// The URL of `resource` (`triggertypes`).
    pub fn url(&self, resource: &str) -> String {
        format!("{}/{resource}", self.base)
    }

    /// Every entry of a listed resource, page by page.
    pub async fn list(&self, resource: &str) -> Result<Vec<Value>, String> {
        let headers: Vec<(HeaderName, String)> = self
            .key
            .iter()
            .map(|k| (HeaderName::from_static("st2-api-key"), k.clone()))
            .collect();
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let url = format!("{}?limit={PAGE}&offset={}", self.url(resource), page * PAGE);
            let v = self.http.get(&url, &headers).await?;
            let Value::Array(items) = v else {
                return Err(format!("GET {url}: expected a JSON list"));
            };
            let n = items.len();
            all.extend(items);
            if n < PAGE {
                return Ok(all);
            }
        }
        Err(format!(
            "{}: more than {} pages of {PAGE}",
            self.url(resource),
            MAX_PAGES
        ))
    }
}

/// One queue as RabbitMQ's management API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Consumers on it now.
    pub consumers: u64,
}

/// The queues of the broker at `amqp_url` (its vhost), from the management
/// API at `management_url` (`http://host:15672`), with the AMQP URL's
/// credentials.
pub async fn management_queues(
    amqp_url: &str,
    management_url: &str,
    timeout: Duration,
) -> Result<Vec<QueueInfo>, String> {
    use base64::Engine as _;
    let uri = super::publisher::parse_uri(amqp_url, timeout)?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        uri.authority.userinfo.username, uri.authority.userinfo.password
    ));
    let vhost: String = form_path_segment(&uri.vhost);
    let base = management_url.trim_end_matches('/');
    let url = format!("{base}/api/queues/{vhost}?columns=name,consumers");
    let http = JsonClient::new(None, base.starts_with("https://"), timeout)
        .map_err(|e| e.to_string())?;
    let v = http
        .get(&url, &[(AUTHORIZATION, format!("Basic {auth}"))])
        .await?;
    let Value::Array(items) = v else {
        return Err(format!("GET {url}: expected a JSON list"));
    };
    Ok(items
        .iter()
        .filter_map(|q| {
            Some(QueueInfo {
                name: q["name"].as_str()?.to_string(),
                consumers: q["consumers"].as_u64().unwrap_or(0),
            })
        })
        .collect())
}

/// A vhost as one URL path segment (`/` → `%2F`).
fn form_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a queue looks like one of st2's sensor container or sensor
/// wrapper trigger watchers (`st2.trigger.watch.<Class>-<uuid>`).
pub fn is_st2_sensor_watch_queue(name: &str) -> bool {
    name.strip_prefix("st2.trigger.watch.")
        .is_some_and(|rest| rest.contains("Sensor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_and_vhost_segments() {
        let t = Duration::from_secs(1);
        let a = St2Api::new("https://st2.example.com/", None, None, t).unwrap();
        assert_eq!(a.url("triggertypes"), "https://st2.example.com/api/v1/triggertypes");
        let a = St2Api::new("http://127.0.0.1:9101/v1", None, None, t).unwrap();
        assert_eq!(a.url("triggers"), "http://127.0.0.1:9101/v1/triggers");
        assert_eq!(form_path_segment("/"), "%2F");
        assert!(is_st2_sensor_watch_queue("st2.trigger.watch.SensorWrapper_examples_Sample-1f2e"));
        assert!(!is_st2_sensor_watch_queue("st2.trigger.watch.TimersController-1f2e"));
        assert!(!is_st2_sensor_watch_queue("st2.trigger_instances_dispatch.rules_engine"));
    }
}
