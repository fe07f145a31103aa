//! `POST /v1/control/{op}`: the control operations, with the operation's
//! JSON params as the body. Answers are JSON; errors are `{"kind",
//! "message"}` with a 4xx/5xx status. Streaming operations
//! (`trigger-instance.list`, `trigger-instance.tail`) answer
//! `application/x-ndjson`: one JSON object per line as it is produced; an
//! error after the stream started is a last line `{"error": {"kind",
//! "message"}}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::ops::{OpError, OpErrorKind, OpStream};
use crate::ApiContext;

/// Content type of streaming answers.
pub const NDJSON: &str = "application/x-ndjson";

/// The route's handler.
pub async fn handle(
    State(ctx): State<Arc<ApiContext>>,
    Path(op): Path<String>,
    body: Bytes,
) -> Response {
    let params: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match crate::json_body::parse(&body) {
            Ok(v) => v,
            Err(e) => {
                return error_response(OpError::new(
                    OpErrorKind::Invalid,
                    format!("request body is not JSON: {e}"),
                ))
            }
        }
    };
    if let Some(stream) = ctx.ops.stream(&op, params.clone()) {
        return match stream {
            Ok(rx) => ndjson_response(rx),
            Err(e) => error_response(e),
        };
    }
    match ctx.ops.execute(&op, params).await {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => error_response(e),
    }
}

/// A stream of operation items as an NDJSON body.
pub fn ndjson_response(rx: OpStream) -> Response {
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

/// An [`OpError`] as its HTTP answer.
pub fn error_response(e: OpError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
}
