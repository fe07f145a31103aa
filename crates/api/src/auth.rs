//! API-key authentication for TCP connections.
//!
//! A key is accepted as header `St2-Api-Key`, query `?st2-api-key=`,
//! header `X-Auth-Token` (or query `?x-auth-token=`), or
//! `Authorization: Bearer`. Keys are stored as SHA-256 digests and compared
//! in constant time ([`store::ApiKeys::check`]). Unix-socket connections
//! are authenticated by the socket's file permissions and skip this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::fault::fault;
use crate::server::Transport;
use crate::ApiContext;

/// The id of the API key a TCP request was authenticated with (a request
/// extension; absent on the control socket and on public routes).
#[derive(Debug, Clone)]
pub struct KeyId(pub String);

/// Routes that need no key on TCP: health probes, `/metrics` unless
/// `api.metrics_auth`, the version document under `/v1` (it tells only
/// versions), and Senlin webhook triggers (their URL is the credential).
fn is_public(path: &str, ctx: &ApiContext) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/v1" | "/v1/")
        || path == "/metrics" && !ctx.settings.metrics_auth
        || is_webhook_trigger(path)
}

/// `/v1/webhooks/{id}/trigger`.
fn is_webhook_trigger(path: &str) -> bool {
    path.strip_prefix("/v1/webhooks/")
        .and_then(|rest| rest.strip_suffix("/trigger"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// The key a request presents, from any of the accepted places.
pub fn presented_key(req: &Request) -> Option<String> {
    let h = req.headers();
    let header = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(k) = header("st2-api-key").or_else(|| header("x-auth-token")) {
        return Some(k);
    }
    if let Some(auth) = header("authorization") {
        if let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
        {
            return Some(token.trim().to_string());
        }
    }
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "st2-api-key" || k == "x-auth-token")
        .map(|(_, v)| v.into_owned())
}

/// Writes a key's `last_used` at most once a minute.
#[derive(Default)]
pub struct TouchThrottle(Mutex<HashMap<String, Instant>>);

impl TouchThrottle {
    fn due(&self, id: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get(id) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(60) => false,
            _ => {
                seen.insert(id.to_string(), now);
                true
            }
        }
    }
}

/// Middleware: refuse TCP requests without a valid key (401).
pub async fn require_key(
    State(ctx): State<Arc<ApiContext>>,
    mut req: Request,
    next: Next,
) -> Response {
    let unix = matches!(req.extensions().get::<Transport>(), Some(Transport::Unix));
    if unix || is_public(req.uri().path(), &ctx) {
        return next.run(req).await;
    }
    let Some(key) = presented_key(&req) else {
        return fault(
            StatusCode::UNAUTHORIZED,
            "One of Token or API key required.",
        );
    };
    match ctx.keys.check(&key) {
        Ok(Some(record)) => {
            if ctx.key_touch.due(&record.id) {
                if let Err(e) = ctx.keys.touch(&record, eventlog::instance::now_rfc3339()) {
                    tracing::warn!("could not record the use of API key {}: {e}", record.id);
                }
            }
            req.extensions_mut().insert(KeyId(record.id.clone()));
            next.run(req).await
        }
        Ok(None) => fault(
            StatusCode::UNAUTHORIZED,
            "Unauthorized - API key is invalid or was deleted.",
        ),
        Err(e) => fault(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot check the API key: {e}"),
        ),
    }
}
