//! How the log is sized and kept (the `log:` section of the config file).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What to do when `max_bytes` is reached and a consumer's cursor holds the
/// oldest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// New appends fail with a storage error naming the lagging consumer.
    #[default]
    Reject,
    /// Delete the oldest segment anyway; the dropped records are counted and
    /// logged at ERROR.
    DropOldest,
}

impl OnFull {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFull::Reject => "reject",
            OnFull::DropOldest => "drop_oldest",
        }
    }
}

/// Retention: whole closed segments are deleted, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Delete segments whose newest record is older than this.
    pub max_age: Duration,
    /// Keep the log's files at most this big (bytes).
    pub max_bytes: u64,
    /// When `max_bytes` is reached and a cursor holds the oldest segment.
    pub on_full: OnFull,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 10 * 1024 * 1024 * 1024,
            on_full: OnFull::Reject,
        }
    }
}

/// Options for opening a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Roll the active segment once it holds this many bytes.
    pub segment_bytes: u64,
    /// Roll the active segment once its first record is this old.
    pub segment_max_age: Duration,
    /// What to keep.
    pub retention: Retention,
    /// How often retention and age rolls are checked (besides every roll).
    pub check_interval: Duration,
    /// Appends queued for the writer beyond this many bytes make
    /// [`crate::Log::wait_for_room`] wait: the bound on queued memory.
    pub max_queued_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 * 1024 * 1024,
            segment_max_age: Duration::from_secs(3600),
            retention: Retention::default(),
            check_interval: Duration::from_secs(1),
            max_queued_bytes: 64 * 1024 * 1024,
        }
    }
}
