//! Parsing a JSON request body: `serde_json`, plus the refusal of integers
//! beyond 64 bits (they would silently become floats; see
//! `protocol::integers`).

use serde_json::Value;

/// Parse `body` as JSON; the error is the reason, for the caller's answer.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match protocol::integers::oversized_integer(body) {
        Some(n) => Err(protocol::integers::oversized_message(&n)),
        None => Ok(v),
    }
}
