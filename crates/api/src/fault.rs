//! Error answers in StackStorm's shape: `{"faultstring": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer with StackStorm's `faultstring` body.
pub fn fault(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "faultstring": message.into() }))).into_response()
}

/// The answer for a path no route serves.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    fault(
        StatusCode::NOT_FOUND,
        format!("The resource could not be found: {}", uri.path()),
    )
}
