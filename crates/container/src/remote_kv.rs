//! A datastore kept elsewhere for the sensors' `kv.*` calls: StackStorm's
//! own (`st2.datastore: st2`), so `st2 key list` and st2's rules see what
//! sensors store. The container only knows this interface; the binary
//! plugs in an implementation (the cli's st2 client).
//!
//! Names arrive as the sensor service computes them (`pack.Class:name`
//! for local keys, as st2 names them); values come back in the shape of
//! the local datastore's answers (`name`, `value`, `secret`, `encrypted`,
//! `scope: "system"`, `expire_timestamp`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

/// What a remote datastore call returns.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RemoteKvError>> + Send + 'a>>;

/// Why a remote datastore call failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteKvError {
    /// The datastore refused the request (bad name, no key to decrypt
    /// with, ...): a caller's mistake, `DATASTORE_ERROR` to the sensor.
    #[error("{0}")]
    Refused(String),
    /// It could not be reached or failed: `STORAGE_ERROR`, as a failing
    /// local database would be.
    #[error("{0}")]
    Unavailable(String),
}

/// The operations sensors have on the datastore (scope `system` only).
pub trait RemoteDatastore: Send + Sync {
    /// The key, or `None` when it does not exist (or expired).
    fn get(&self, name: &str, decrypt: bool) -> KvFuture<'_, Option<Value>>;
    /// Keys whose names start with `prefix`, from `offset`, at most `limit`.
    fn list(
        &self,
        prefix: &str,
        offset: usize,
        limit: Option<usize>,
        decrypt: bool,
    ) -> KvFuture<'_, Vec<Value>>;
    /// Set a key (`ttl` seconds; `encrypt`: stored as a secret).
    fn set(&self, name: &str, value: &str, ttl: Option<u64>, encrypt: bool) -> KvFuture<'_, ()>;
    /// Delete a key; whether it existed.
    fn delete(&self, name: &str) -> KvFuture<'_, bool>;
}

/// A shared remote datastore, as the settings hold it.
#[derive(Clone)]
pub struct RemoteKv(pub Arc<dyn RemoteDatastore>);

impl std::fmt::Debug for RemoteKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteKv(..)")
    }
}
