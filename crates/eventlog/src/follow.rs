//! Following the log: every instance from a seq on, as it becomes durable,
//! in order — what `trigger-instance tail`, the SSE stream and the NDJSON
//! stream are made of.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::LogError;
use crate::query::{decode, InstanceFilter};
use crate::{EventLog, TriggerInstance};

/// Records read per step.
const STEP: usize = 512;

/// Instances from seq `from` on that match `filter` (its trigger, sensor
/// and status fields), sent as they become durable, until the receiver is
/// dropped. `buffer` bounds what waits for a slow receiver. An error ends
/// the stream after it is sent.
pub fn follow(
    log: Arc<dyn EventLog>,
    from: u64,
    filter: InstanceFilter,
    buffer: usize,
) -> mpsc::Receiver<Result<TriggerInstance, LogError>> {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    tokio::spawn(async move {
        let mut progress = log.subscribe();
        let mut next = from;
        loop {
            let reader = log.clone();
            let recs = match tokio::task::spawn_blocking(move || reader.read(next, STEP)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(LogError::Invalid(format!("log reader failed: {e}"))))
                        .await;
                    return;
                }
            };
            if recs.is_empty() {
                // Caught up: wait for more, or for the receiver to leave.
                tokio::select! {
                    changed = progress.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
                continue;
            }
            for r in recs {
                next = r.seq + 1;
                let Some(i) = decode(r.seq, &r.body) else {
                    continue;
                };
                if filter.matches(&i) && tx.send(Ok(i)).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}
