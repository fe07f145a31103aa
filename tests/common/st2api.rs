//! A stand-in for StackStorm's API, written from its documented contract:
//! `GET /api/v1/<resource>?limit=N&offset=M` lists (a JSON array, paged),
//! authenticated by `St2-Api-Key` (401 without a right one); resources are
//! whatever the test puts in. And st2's datastore, `/api/v1/keys`:
//! `GET /keys/{name}?scope=st2kv.system&decrypt=B` (404 when missing or
//! expired), `GET /keys?prefix=P&scope=..&offset&limit`, `PUT /keys/{name}`
//! with `{name, value, scope, secret, ttl}`, `DELETE /keys/{name}` (204, or
//! 404). A secret read without decrypt comes back "encrypted" (hex).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

#[derive(Default)]
struct State {
    key: String,
    resources: Mutex<HashMap<String, Vec<Value>>>,
    /// The datastore: name → (key object as stored, expiry).
    keys: Mutex<BTreeMap<String, (Value, Option<Instant>)>>,
    /// Every request: path and query.
    requests: Mutex<Vec<String>>,
}

/// The stand-in, on a free loopback port; stops with its runtime on drop.
pub struct St2Api {
    pub addr: SocketAddr,
    state: Arc<State>,
    _rt: tokio::runtime::Runtime,
}

impl St2Api {
    /// Serve with API key `key`.
    pub fn start(key: &str) -> St2Api {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State {
            key: key.into(),
            ..State::default()
        });
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let st = st.clone();
                        async move { Ok::<_, hyper::Error>(answer(&st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        St2Api {
            addr,
            state,
            _rt: rt,
        }
    }

    /// The public base URL (`http://127.0.0.1:PORT`; the API is under /api/v1).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replace the entries of `resource` (`triggertypes`, `triggers`, ...).
    pub fn set(&self, resource: &str, entries: Vec<Value>) {
        self.state
            .resources
            .lock()
            .unwrap()
            .insert(resource.into(), entries);
    }

    /// The live keys: name → the key object (with `secret`, `scope`, and
    /// the plain `value`).
    pub fn keys(&self) -> BTreeMap<String, Value> {
        let now = Instant::now();
        self.state
            .keys
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, exp))| exp.is_none_or(|e| e > now))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Requests so far (path?query).
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A key as st2 answers: the value "encrypted" unless decrypted.
fn shown(key: &Value, decrypt: bool) -> Value {
    let mut k = key.clone();
    if k["secret"] == true && !decrypt {
        let hex: String = k["value"].as_str().unwrap_or("").bytes().map(|b| format!("{:02X}", b ^ 0x5a)).collect();
        k["value"] = Value::String(format!("{hex}00112233445566778899AABBCCDDEEFF"));
    }
    k
}

async fn answer(st: &State, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    st.requests.lock().unwrap().push(format!("{path}?{query}"));
    let key = req
        .headers()
        .get("st2-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if key != st.key {
        return reply(
            401,
            &json!({"faultstring": "Unauthorized - One of Token or API key required."}),
        );
    }
    let Some(resource) = path.strip_prefix("/api/v1/") else {
        return reply(404, &json!({"faultstring": "not found"}));
    };
    let param = |name: &str| -> Option<usize> { query_param(&query, name)?.parse().ok() };
    let (limit, offset) = (param("limit").unwrap_or(50), param("offset").unwrap_or(0));
    if resource == "keys" || resource.starts_with("keys/") {
        if query_param(&query, "scope").is_some_and(|s| s != "st2kv.system") {
            return reply(400, &json!({"faultstring": "only st2kv.system here"}));
        }
        let decrypt = query_param(&query, "decrypt") == Some("true");
        let now = Instant::now();
        let mut keys = st.keys.lock().unwrap();
        keys.retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
        let name = resource.strip_prefix("keys/").map(unescape);
        return match (method.as_str(), name) {
            ("GET", None) => {
                let prefix = unescape(query_param(&query, "prefix").unwrap_or(""));
                let page: Vec<Value> = keys
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .skip(offset)
                    .take(limit)
                    .map(|(_, (v, _))| shown(v, decrypt))
                    .collect();
                reply(200, &Value::Array(page))
            }
            ("GET", Some(n)) => match keys.get(&n) {
                Some((v, _)) => reply(200, &shown(v, decrypt)),
                None => reply(404, &json!({"faultstring": format!("KeyValuePair with name: {n} and scope: st2kv.system not found in db.")})),
            },
            ("PUT", Some(n)) => {
                let Ok(b) = serde_json::from_slice::<Value>(&body) else {
                    return reply(400, &json!({"faultstring": "not JSON"}));
                };
                if b["name"] != n.as_str() || b["scope"] != "st2kv.system" || !b["value"].is_string() {
                    return reply(400, &json!({"faultstring": format!("bad key body {b}")}));
                }
                let exp = b["ttl"].as_u64().map(|t| now + Duration::from_secs(t));
                let obj = json!({
                    "id": format!("k-{n}"), "name": n, "value": b["value"], "scope": "st2kv.system",
                    "secret": b["secret"] == true, "encrypted": b["secret"] == true,
                    "expire_timestamp": b["ttl"].as_u64().map(|t| format!("in {t}s")),
                });
                keys.insert(n, (obj.clone(), exp));
                reply(200, &obj)
            }
            ("DELETE", Some(n)) => match keys.remove(&n) {
                Some(_) => Response::builder().status(204).body(Full::new(Bytes::new())).unwrap(),
                None => reply(404, &json!({"faultstring": "not found"})),
            },
            _ => reply(405, &json!({"faultstring": "method not allowed"})),
        };
    }
    let resources = st.resources.lock().unwrap();
    let Some(all) = resources.get(resource) else {
        return reply(404, &json!({"faultstring": format!("no resource {resource}")}));
    };
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    reply(200, &Value::Array(page))
}
