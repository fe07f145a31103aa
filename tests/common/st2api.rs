//! A stand-in for StackStorm's API, written from its documented contract:
//! `GET /api/v1/<resource>?limit=N&offset=M` lists (a JSON array, paged),
//! authenticated by `St2-Api-Key` (401 without a right one). Resources are
//! whatever the test puts in.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

#[derive(Default)]
struct State {
    key: String,
    resources: Mutex<HashMap<String, Vec<Value>>>,
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
                        async move { Ok::<_, hyper::Error>(answer(&st, &req)) }
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

fn answer(st: &State, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    st.requests.lock().unwrap().push(format!("{path}?{query}"));
    let key = req
        .headers()
        .get("st2-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if key != st.key {
        return reply(
            401,
            &json!({"faultstring": "Unauthorized - One of Token or API key required."}),
        );
    }
    let Some(resource) = path.strip_prefix("/api/v1/") else {
        return reply(404, &json!({"faultstring": "not found"}));
    };
    let param = |name: &str| -> Option<usize> {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    let (limit, offset) = (param("limit").unwrap_or(50), param("offset").unwrap_or(0));
    let resources = st.resources.lock().unwrap();
    let Some(all) = resources.get(resource) else {
        return reply(404, &json!({"faultstring": format!("no resource {resource}")}));
    };
    let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
    reply(200, &Value::Array(page))
}
