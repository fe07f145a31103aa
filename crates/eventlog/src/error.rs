//! Errors of the trigger-instance log.

use std::path::{Path, PathBuf};

/// Why a log operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{}: {message}", path.display())]
    Io {
        path: PathBuf,
        message: String,
        /// `ENOSPC`/`EDQUOT`: the disk is full.
        disk_full: bool,
    },
    /// A record or file failed its checks.
    #[error("{} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Appending is refused: `log.retention.max_bytes` is reached and a
    /// consumer holds the oldest segment (`on_full: reject`).
    #[error("{0}")]
    Full(String),
    /// The write failed; the message says why (disk full, I/O error).
    #[error("{0}")]
    NotDurable(String),
    /// Another process has the log open.
    #[error("{} is locked by another process (is a sensorcontainer running on this data directory?)", path.display())]
    Locked { path: PathBuf },
    /// Bad input from a caller (a cursor name, a query).
    #[error("{0}")]
    Invalid(String),
    /// The writer thread is gone (the log was closed).
    #[error("the trigger-instance log is closed")]
    Closed,
}

impl LogError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, e: std::io::Error) -> LogError {
        let disk_full = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
        LogError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
            disk_full,
        }
    }
}
