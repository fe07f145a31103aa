//! Reading StackStorm's HTTP API (`St2-Api-Key`, lists paged with
//! `limit`/`offset`) and RabbitMQ's management API, for `sensorctl st2
//! check`: which trigger types st2 knows, and whether st2's own sensor
//! container consumes its trigger watch queues.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
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
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
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

    /// One request; the status and the body, whatever the status. Errors
    /// are transport failures (no answer, a broken connection, a timeout).
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(HeaderName, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), String> {
        let uri: Uri = url.parse().map_err(|e| format!("{url}: not a URL: {e}"))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(ACCEPT, "application/json");
        for (k, v) in headers {
            let v = HeaderValue::from_str(v).map_err(|_| format!("{k}: not a header value"))?;
            req = req.header(k, v);
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("{method} {url}: {}", chain(&e)))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("{method} {url}: reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("{method} {url}: no answer within {:?}", self.timeout))?
    }

    /// GET `url` with `headers`: the JSON body of a 2xx, else an error
    /// quoting the answer.
    pub async fn get(&self, url: &str, headers: &[(HeaderName, String)]) -> Result<Value, String> {
        let (status, body) = self.request(Method::GET, url, headers, None).await?;
        if !status.is_success() {
            return Err(format!("GET {url}: {}", quote(status, &body)));
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

/// `HTTP <status>: <the start of the body>`.
fn quote(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    format!("HTTP {status}: {}", text.trim())
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

    fn headers(&self) -> Vec<(HeaderName, String)> {
        self.key
            .iter()
            .map(|k| (HeaderName::from_static("st2-api-key"), k.clone()))
            .collect()
    }

    /// Every entry of a listed resource, page by page.
    pub async fn list(&self, resource: &str) -> Result<Vec<Value>, String> {
        let headers = self.headers();
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

/// A failed call of st2's API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status st2 answered with; `None` when it did not answer.
    pub status: Option<u16>,
    /// What happened, with the URL and st2's `faultstring` if any.
    pub message: String,
}

impl ApiError {
    fn transport(message: String) -> ApiError {
        ApiError {
            status: None,
            message,
        }
    }

    /// st2 refused the request itself (a 4xx other than 408/429): the
    /// caller's mistake, not an outage.
    pub fn is_refusal(&self) -> bool {
        self.status
            .is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429)
    }
}

/// st2's datastore scope for system keys.
const SYSTEM_SCOPE: &str = "st2kv.system";

impl St2Api {
    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Result<(u16, Value), ApiError> {
        let body = body.map(|b| b.to_string().into_bytes());
        let (status, bytes) = self
            .http
            .request(method.clone(), &url, &self.headers(), body)
            .await
            .map_err(ApiError::transport)?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok((status.as_u16(), v));
        }
        let why = v["faultstring"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| quote(status, &bytes));
        Err(ApiError {
            status: Some(status.as_u16()),
            message: format!("{method} {url}: HTTP {}: {why}", status.as_u16()),
        })
    }

    fn key_url(&self, name: &str) -> String {
        format!("{}/{}", self.url("keys"), form_path_segment(name))
    }

    /// `GET /keys/{name}` in the system scope; `None` on 404.
    pub async fn key_get(&self, name: &str, decrypt: bool) -> Result<Option<Value>, ApiError> {
        let url = format!("{}?scope={SYSTEM_SCOPE}&decrypt={decrypt}", self.key_url(name));
        match self.call(Method::GET, url, None).await? {
            (404, _) => Ok(None),
            (_, v) => Ok(Some(v)),
        }
    }

    /// `GET /keys?prefix=` in the system scope: `limit` keys from
    /// `offset`, or every one from there (page by page) without a limit.
    pub async fn key_list(
        &self,
        prefix: &str,
        offset: usize,
        limit: Option<usize>,
        decrypt: bool,
    ) -> Result<Vec<Value>, ApiError> {
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let want = limit.map_or(PAGE, |l| (l - all.len()).min(PAGE));
            if want == 0 {
                break;
            }
            let url = format!(
                "{}?scope={SYSTEM_SCOPE}&decrypt={decrypt}&prefix={}&offset={}&limit={want}",
                self.url("keys"),
                form_path_segment(prefix),
                offset + page * PAGE
            );
            let items = match self.call(Method::GET, url, None).await? {
                (_, Value::Array(items)) => items,
                (404, _) => vec![],
                (_, other) => {
                    return Err(ApiError::transport(format!(
                        "GET {}: expected a JSON list, got {other}",
                        self.url("keys")
                    )))
                }
            };
            let n = items.len();
            all.extend(items);
            if n < want {
                break;
            }
        }
        Ok(all)
    }

    /// `PUT /keys/{name}` in the system scope.
    pub async fn key_put(
        &self,
        name: &str,
        value: &str,
        ttl: Option<u64>,
        secret: bool,
    ) -> Result<(), ApiError> {
        let mut body = serde_json::json!({
            "name": name, "value": value, "scope": SYSTEM_SCOPE, "secret": secret,
        });
        if let Some(t) = ttl {
            body["ttl"] = t.into();
        }
        match self.call(Method::PUT, self.key_url(name), Some(body)).await? {
            (404, v) => Err(ApiError {
                status: Some(404),
                message: format!("PUT {}: HTTP 404: {v}", self.key_url(name)),
            }),
            _ => Ok(()),
        }
    }

    /// `DELETE /keys/{name}` in the system scope; whether it existed.
    pub async fn key_delete(&self, name: &str) -> Result<bool, ApiError> {
        let url = format!("{}?scope={SYSTEM_SCOPE}", self.key_url(name));
        Ok(self.call(Method::DELETE, url, None).await?.0 != 404)
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
