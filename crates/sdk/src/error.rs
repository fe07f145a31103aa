//! Errors of the SDK.

use protocol::RpcError;

/// What a sensor's own methods return on failure: any error type works with
/// `?` (`Box<dyn Error>` converts from `String`, `&str` and every error type).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error talking to the sensor container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process was not started by `sensorcontainer` (no usable sensor
    /// pipe on `SENSOR_RPC_FD`).
    #[error("{0}")]
    NotConnected(String),
    /// Reading or writing the sensor pipe failed.
    #[error("I/O error on the sensor pipe: {0}")]
    Io(#[from] std::io::Error),
    /// The pipe to the container is closed (the container is gone or the
    /// connection broke); nothing more can be sent or answered.
    #[error("the connection to the sensor container is closed")]
    Closed,
    /// The container answered the request with a JSON-RPC error (see
    /// `PROTOCOL.md`, "Error codes", and [`Error::code`]).
    #[error("{method} failed: {error}")]
    Rpc {
        /// The method of the failed request (`dispatch`, `kv.set`, ...).
        method: String,
        /// The error object the container sent.
        error: RpcError,
    },
    /// The frame would exceed the container's `max_frame_bytes`; it was not
    /// sent (the container would discard it without naming the request).
    #[error("{method}: the frame is {size} bytes, more than the container's limit of {limit} bytes (max_frame_bytes); not sent")]
    FrameTooLarge {
        /// The method of the request that was not sent.
        method: String,
        /// Size of the encoded frame, without its newline.
        size: usize,
        /// The container's limit.
        limit: usize,
    },
    /// A value could not be encoded as JSON (for example a map with
    /// non-string keys).
    #[error("{method}: cannot encode the params as JSON: {source}")]
    Encode {
        /// The method of the request that was not sent.
        method: String,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// The container's answer did not have the documented shape.
    #[error("{method}: unexpected answer from the container: {detail}")]
    Protocol {
        /// The method of the request.
        method: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// No answer arrived in time.
    #[error("{0}: no answer from the container in time")]
    Timeout(String),
}

impl Error {
    /// The JSON-RPC error code when the container rejected the request
    /// (`protocol::codes`), else `None`.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Rpc { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// Whether the connection is gone (nothing more can be sent).
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed)
    }
}
