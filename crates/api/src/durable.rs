//! Validate trigger instances, append them in one batch and wait until
//! the log made them durable: what every HTTP front door does before it
//! answers 2xx.

use std::time::Duration;

use container::dispatcher::{DispatchParams, Dispatcher};
use eventlog::{RecordBatch, TriggerInstance};
use protocol::codes;

/// Longest wait for the group commit before giving up.
pub const DURABLE_DEADLINE: Duration = Duration::from_secs(30);
/// Longest wait for room in a log that is behind.
const ROOM_DEADLINE: Duration = Duration::from_secs(5);

/// Why instances were not stored.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// An instance failed validation (unknown trigger, payload schema).
    #[error("{0}")]
    Invalid(String),
    /// The dispatcher broke.
    #[error("{0}")]
    Internal(String),
    /// The log could not make them durable in time (try again).
    #[error("{0}")]
    Unavailable(String),
}

impl DurableError {
    /// The HTTP status of this error.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            DurableError::Invalid(_) => StatusCode::BAD_REQUEST,
            DurableError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DurableError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Validate every dispatch (all or nothing), append them as one batch and
/// wait until durable; the instances come back with their seqs.
pub async fn store(
    dispatcher: &Dispatcher,
    dispatches: Vec<DispatchParams>,
) -> Result<Vec<TriggerInstance>, DurableError> {
    let mut instances = Vec::with_capacity(dispatches.len());
    for d in dispatches {
        match dispatcher.prepare(None, d) {
            Ok(i) => instances.push(i),
            Err(e) if e.code == codes::INTERNAL_ERROR => {
                return Err(DurableError::Internal(e.message))
            }
            Err(e) => return Err(DurableError::Invalid(e.message)),
        }
    }
    let log = dispatcher.log();
    if !log.wait_for_room(ROOM_DEADLINE).await {
        return Err(DurableError::Unavailable(
            "the trigger-instance log is too far behind (disk stalled?); try again".into(),
        ));
    }
    // Each trigger type is its own source for the log's fair share.
    let mut batch =
        RecordBatch::from_source_name(instances.first().map_or("", |i| i.trigger.as_str()));
    for i in &instances {
        batch.push_with(|b| i.encode_into(b));
    }
    let completion = log.append(batch);
    match tokio::time::timeout(DURABLE_DEADLINE, completion.wait()).await {
        Ok(Ok(first)) => {
            for (k, i) in instances.iter_mut().enumerate() {
                i.seq = first + k as u64;
            }
            Ok(instances)
        }
        Ok(Err(e)) => Err(DurableError::Unavailable(format!(
            "could not store the trigger instance: {e}"
        ))),
        Err(_) => Err(DurableError::Unavailable(format!(
            "the trigger instance was not durable within {DURABLE_DEADLINE:?}"
        ))),
    }
}
