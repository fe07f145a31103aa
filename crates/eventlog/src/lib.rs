//! The trigger-instance log.
//!
//! Every source (sensor dispatches, webhooks, internal triggers) appends
//! trigger instances here; every consumer (queries, tails, sinks) reads
//! them back by sequence number. [`Log`] keeps them in append-only segment
//! files under `<data-dir>/log/`, the way Kafka, NATS JetStream and
//! Vector's disk buffer do:
//!
//! - records framed with length + CRC32C and a gapless u64 sequence
//!   ([`record`]);
//! - segments rolled by size and age, each with a sparse seq/time index
//!   ([`segment`]);
//! - group commit: one writer thread, one `pwrite` + `fdatasync` per batch
//!   of batches, and nothing is acknowledged before it is durable;
//! - recovery that cuts a torn tail and skips (and reports) bad records;
//! - retention by age and size that never deletes what a durable consumer
//!   cursor has not passed ([`options::OnFull`] says what happens then);
//! - durable consumer cursors ([`Log::set_cursor`]).
//!
//! [`EventLog`] is the interface the rest of the container uses, so a
//! distributed log can stand in for [`Log`].

pub mod cursor;
pub mod error;
pub mod follow;
pub mod instance;
mod log;
pub mod options;
pub mod query;
pub mod record;
mod recover;
mod retention;
pub mod segment;
#[cfg(test)]
mod tests;
mod writer;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use error::LogError;
pub use instance::TriggerInstance;
pub use log::{
    CommitObserver, Completion, CursorStats, Log, LogStats, Progress, RecordBatch, SegmentStats,
    SOURCE_SHARE,
};
pub use options::{LogOptions, OnFull, Retention};
pub use query::{InstanceFilter, Order};
pub use record::StoredRecord;

/// The trigger-instance log as the container sees it: append a batch and
/// learn when it is durable; read by sequence; find by id; cursors; stats.
pub trait EventLog: Send + Sync {
    /// Queue a batch for the next group commit (never blocks).
    fn append(&self, batch: RecordBatch) -> Completion;
    /// Wait up to `deadline` while the writer is too far behind; false if
    /// it still is.
    fn wait_for_room(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
    /// Changes whenever records become durable.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Progress>;
    /// Newest durable seq (0 = none yet).
    fn last_seq(&self) -> u64;
    /// Oldest kept seq (`last_seq + 1` when empty).
    fn first_seq(&self) -> u64;
    /// Up to `max` records with seq ≥ `from`, oldest first.
    fn read(&self, from: u64, max: usize) -> Result<Vec<StoredRecord>, LogError>;
    /// Up to `max` records with seq < `before`, newest first.
    fn read_back(&self, before: u64, max: usize) -> Result<Vec<StoredRecord>, LogError>;
    /// First seq appended at or after `ms` (epoch milliseconds).
    fn seq_at_time(&self, ms: u64) -> Result<u64, LogError>;
    /// The record of a UUIDv7 trigger-instance id.
    fn find_id(&self, id: &uuid::Uuid) -> Result<Option<StoredRecord>, LogError>;
    /// A consumer's cursor (last seq it finished).
    fn cursor(&self, name: &str) -> Option<u64>;
    /// Create a cursor at `seq` unless it exists; its value.
    fn open_cursor(&self, name: &str, seq: u64) -> Result<u64, LogError>;
    /// Durably move a cursor.
    fn set_cursor(&self, name: &str, seq: u64) -> Result<(), LogError>;
    /// Move a cursor, durable against a process crash at once and against
    /// power loss within the log's `check_interval` (losing it only
    /// makes the consumer redo work).
    fn advance_cursor(&self, name: &str, seq: u64) -> Result<(), LogError>;
    /// Remove a cursor.
    fn delete_cursor(&self, name: &str) -> Result<(), LogError>;
    /// Why appends are refused, if they are (readiness).
    fn refusing(&self) -> Option<String>;
    /// Segments, bytes, seqs, retention, cursors.
    fn stats(&self) -> LogStats;
    /// Be told about every successful group commit.
    fn set_commit_observer(&self, f: CommitObserver);
}

impl EventLog for Log {
    fn append(&self, batch: RecordBatch) -> Completion {
        Log::append(self, batch)
    }
    fn wait_for_room(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(Log::wait_for_room(self, deadline))
    }
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Progress> {
        Log::subscribe(self)
    }
    fn last_seq(&self) -> u64 {
        Log::last_seq(self)
    }
    fn first_seq(&self) -> u64 {
        Log::first_seq(self)
    }
    fn read(&self, from: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        Log::read(self, from, max)
    }
    fn read_back(&self, before: u64, max: usize) -> Result<Vec<StoredRecord>, LogError> {
        Log::read_back(self, before, max)
    }
    fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
        Log::seq_at_time(self, ms)
    }
    fn find_id(&self, id: &uuid::Uuid) -> Result<Option<StoredRecord>, LogError> {
        let want = id.to_string();
        Log::find_id(self, id, |body| instance::body_has_id(body, &want))
    }
    fn cursor(&self, name: &str) -> Option<u64> {
        Log::cursor(self, name)
    }
    fn open_cursor(&self, name: &str, seq: u64) -> Result<u64, LogError> {
        Log::open_cursor(self, name, seq)
    }
    fn set_cursor(&self, name: &str, seq: u64) -> Result<(), LogError> {
        Log::set_cursor(self, name, seq)
    }
    fn advance_cursor(&self, name: &str, seq: u64) -> Result<(), LogError> {
        Log::advance_cursor(self, name, seq)
    }
    fn delete_cursor(&self, name: &str) -> Result<(), LogError> {
        Log::delete_cursor(self, name)
    }
    fn refusing(&self) -> Option<String> {
        Log::refusing(self)
    }
    fn stats(&self) -> LogStats {
        Log::stats(self)
    }
    fn set_commit_observer(&self, f: CommitObserver) {
        Log::set_commit_observer(self, f)
    }
}
