//! Control operations as the API sees them: `(name, JSON) -> JSON`, or a
//! stream of JSON items. The binaries implement [`Operations`] (they own
//! registration and settings); the API serves them on the Unix socket and
//! on TCP.

use std::future::Future;
use std::pin::Pin;

use container::ContainerError;
use eventlog::LogError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::StoreError;
use tokio::sync::mpsc;

/// The items of a streaming operation, in order.
pub type OpStream = mpsc::Receiver<Result<Value, OpError>>;

/// What the control API executes.
pub trait Operations: Send + Sync + 'static {
    /// Run one operation.
    fn execute<'a>(
        &'a self,
        op: &'a str,
        params: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Value, OpError>> + Send + 'a>>;
    /// Start a streaming operation; `None` when `op` does not stream.
    fn stream(&self, op: &str, params: Value) -> Option<Result<OpStream, OpError>>;
}

/// Why an operation failed; maps to an HTTP status on the control API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OpError {
    pub kind: OpErrorKind,
    pub message: String,
}

/// The class of an [`OpError`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OpErrorKind {
    /// The named thing does not exist (404).
    NotFound,
    /// Bad input (400).
    Invalid,
    /// Not possible in this state, e.g. restart with no container (409).
    Conflict,
    /// Something broke (500).
    Internal,
}

impl OpError {
    /// An error of this kind.
    pub fn new(kind: OpErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            OpErrorKind::NotFound => 404,
            OpErrorKind::Invalid => 400,
            OpErrorKind::Conflict => 409,
            OpErrorKind::Internal => 500,
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        let kind = match &e {
            StoreError::NotFound { .. } => OpErrorKind::NotFound,
            StoreError::Invalid(_) | StoreError::Crypto(_) => OpErrorKind::Invalid,
            _ => OpErrorKind::Internal,
        };
        OpError::new(kind, e.to_string())
    }
}

impl From<LogError> for OpError {
    fn from(e: LogError) -> OpError {
        let kind = match &e {
            LogError::Invalid(_) => OpErrorKind::Invalid,
            _ => OpErrorKind::Internal,
        };
        OpError::new(kind, e.to_string())
    }
}

impl From<ContainerError> for OpError {
    fn from(e: ContainerError) -> OpError {
        let kind = match &e {
            ContainerError::UnknownSensor(_) => OpErrorKind::NotFound,
            ContainerError::NotAssigned(_) => OpErrorKind::Conflict,
            _ => OpErrorKind::Internal,
        };
        OpError::new(kind, e.to_string())
    }
}
