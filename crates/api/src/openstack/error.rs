//! Errors of the OpenStack front doors, with the status they answer and
//! the two error bodies: Senlin's (`{code, title, explanation, error:
//! {code, message, type}}`) and Masakari's (`{"badRequest": {code,
//! message}}` and friends, as nova-style WSGI faults are).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ops::{OpError, OpErrorKind};

/// A refused or failed request: its HTTP status and a message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct OsError {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, naming the field or the record.
    pub message: String,
}

/// Results of the front doors' operations.
pub type OsResult<T> = Result<T, OsError>;

impl OsError {
    fn new(status: StatusCode, message: impl Into<String>) -> OsError {
        OsError {
            status: status.as_u16(),
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> OsError {
        OsError::new(StatusCode::BAD_REQUEST, m)
    }
    /// 403.
    pub fn forbidden(m: impl Into<String>) -> OsError {
        OsError::new(StatusCode::FORBIDDEN, m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> OsError {
        OsError::new(StatusCode::NOT_FOUND, m)
    }
    /// 409.
    pub fn conflict(m: impl Into<String>) -> OsError {
        OsError::new(StatusCode::CONFLICT, m)
    }
    /// 500.
    pub fn internal(m: impl Into<String>) -> OsError {
        OsError::new(StatusCode::INTERNAL_SERVER_ERROR, m)
    }
    /// 503.
    pub fn unavailable(m: impl Into<String>) -> OsError {
        OsError::new(StatusCode::SERVICE_UNAVAILABLE, m)
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Senlin's error answer.
    pub fn senlin(&self) -> Response {
        let status = self.status_code();
        let (title, explanation, kind) = match self.status {
            400 => (
                "Bad Request",
                "The server could not comply with the request since it is either malformed or otherwise incorrect.",
                "BadRequest",
            ),
            401 => ("Unauthorized", "This server could not verify that you are authorized to access the document you requested.", "Unauthorized"),
            403 => ("Forbidden", "Access was denied to this resource.", "Forbidden"),
            404 => ("Not Found", "The resource could not be found.", "ResourceNotFound"),
            409 => ("Conflict", "There was a conflict when trying to complete your request.", "Conflict"),
            503 => ("Service Unavailable", "The server is currently unavailable. Please try again at a later time.", "ServiceUnavailable"),
            _ => ("Internal Server Error", "The server has either erred or is incapable of performing the requested operation.", "InternalError"),
        };
        let body = json!({
            "code": self.status,
            "title": title,
            "explanation": explanation,
            "error": {"code": self.status, "message": self.message, "type": kind},
        });
        (status, axum::Json(body)).into_response()
    }

    /// Masakari's error answer.
    pub fn masakari(&self) -> Response {
        let status = self.status_code();
        let name = match self.status {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 => "overLimit",
            503 => "serviceUnavailable",
            _ => "computeFault",
        };
        let body = json!({ name: {"code": self.status, "message": self.message} });
        (status, axum::Json(body)).into_response()
    }
}

impl From<store::StoreError> for OsError {
    fn from(e: store::StoreError) -> OsError {
        OsError::internal(format!("database: {e}"))
    }
}

impl From<crate::durable::DurableError> for OsError {
    fn from(e: crate::durable::DurableError) -> OsError {
        OsError::new(e.status(), e.to_string())
    }
}

impl From<OsError> for OpError {
    fn from(e: OsError) -> OpError {
        let kind = match e.status {
            404 => OpErrorKind::NotFound,
            409 => OpErrorKind::Conflict,
            400..=499 => OpErrorKind::Invalid,
            _ => OpErrorKind::Internal,
        };
        OpError::new(kind, e.message)
    }
}
