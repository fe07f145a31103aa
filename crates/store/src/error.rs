//! Store errors.

use std::path::{Path, PathBuf};

/// What can go wrong in the database layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (normally a running `sensorcontainer`) holds the database.
    #[error("the database {path} is in use by another process (is sensorcontainer running?)")]
    Locked { path: PathBuf },
    /// A filesystem error around the database directory.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be decoded (corruption or an incompatible version).
    #[error("corrupt record in tree '{tree}' at key '{key}': {reason}")]
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    /// A record was asked for by a key that does not exist.
    #[error("{kind} '{key}' not found")]
    NotFound { kind: &'static str, key: String },
    /// The group-commit flush failed: the write is not durable.
    #[error("flush failed, data not durable: {0}")]
    NotDurable(String),
    /// Encryption key missing, unreadable, or a ciphertext that does not decrypt.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// A bad argument from the caller (filter, id format...).
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn from_open(path: &Path, e: sled::Error) -> StoreError {
        match &e {
            // sled wraps the flock failure in an `Other` error whose text
            // carries the original WouldBlock.
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                StoreError::Locked {
                    path: path.to_path_buf(),
                }
            }
            _ => StoreError::Sled(e),
        }
    }
}
