//! Probes: `GET /healthz` is 200 while the process serves requests;
//! `GET /readyz` is 200 when the log accepts writes and the registry is
//! open, else 503 with the reasons.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ApiContext;

/// `GET /healthz`.
pub async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

/// `GET /readyz`.
pub async fn readyz(State(ctx): State<Arc<ApiContext>>) -> Response {
    let mut reasons = Vec::new();
    let stats = ctx.log.stats();
    if let Some(why) = &stats.refusing {
        reasons.push(format!("log: {why}"));
    }
    if let Some(err) = &stats.last_error {
        reasons.push(format!("log: the last write failed: {err}"));
    }
    if let Err(e) = ctx.keys.list() {
        reasons.push(format!("registry: {e}"));
    }
    if reasons.is_empty() {
        (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "reasons": reasons})),
        )
            .into_response()
    }
}
