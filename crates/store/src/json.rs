//! JSON encoding of records, with errors that name the tree and key.

use serde::{de::DeserializeOwned, Serialize};

use crate::StoreError;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our record types serialize infallibly (string keys, plain data).
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}
