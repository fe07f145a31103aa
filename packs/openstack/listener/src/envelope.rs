//! The two wire forms of an oslo.messaging notification: messaging v2
//! `{"oslo.version": "2.0", "oslo.message": "<json>"}` and v1 (the
//! `messaging` driver), the message itself. Either way the message is
//! `{message_id, publisher_id, event_type, priority, payload, timestamp}`
//! plus the request context flattened as `_context_<key>` fields and a
//! `_unique_id`.

use serde_json::{json, Map, Value};

/// A decoded notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Lowercase priority.
    pub priority: String,
    pub publisher_id: String,
    pub event_type: String,
    pub payload: Value,
    /// `_context_*` fields without the prefix, secrets redacted.
    pub context: Map<String, Value>,
    pub message_id: String,
    pub timestamp: String,
    /// oslo's `_unique_id` (dedupe), if any.
    pub unique_id: Option<String>,
}

/// What a redacted context value becomes.
pub const REDACTED: &str = "***";

/// Context keys whose values are secrets.
fn secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "password", "secret", "credential"]
        .iter()
        .any(|s| k.contains(s))
}

/// Decode a message body.
pub fn decode(body: &[u8]) -> Result<Notification, String> {
    let outer: Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let msg = match outer.get("oslo.version") {
        None => outer,
        Some(Value::String(v)) if v.split('.').next() == Some("2") => {
            let inner = outer["oslo.message"]
                .as_str()
                .ok_or("oslo.message is not a JSON string")?;
            serde_json::from_str(inner).map_err(|e| format!("oslo.message is not JSON: {e}"))?
        }
        Some(v) => return Err(format!("unsupported oslo.version {v} (this listener reads 2.x and v1)")),
    };
    let obj = msg.as_object().ok_or("the message is not a JSON object")?;
    let text = |k: &str| -> Result<String, String> {
        match obj.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
            None => Err(format!("no {k}")),
        }
    };
    let mut context = Map::new();
    for (k, v) in obj {
        if let Some(name) = k.strip_prefix("_context_") {
            let v = if secret(name) && !v.is_null() {
                json!(REDACTED)
            } else {
                v.clone()
            };
            context.insert(name.to_string(), v);
        }
    }
    Ok(Notification {
        priority: text("priority")?.to_ascii_lowercase(),
        publisher_id: text("publisher_id")?,
        event_type: text("event_type")?,
        payload: obj.get("payload").cloned().unwrap_or(Value::Null),
        context,
        message_id: text("message_id")?,
        timestamp: text("timestamp")?,
        unique_id: obj.get("_unique_id").and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Value {
        json!({
            "message_id": "m1", "publisher_id": "compute.host1", "event_type": "compute.instance.create.end",
            "priority": "INFO", "payload": {"instance_id": "i-1"}, "timestamp": "2026-12-01 10:00:00.000001",
            "_context_user": "u1", "_context_auth_token": "tok", "_unique_id": "abc"
        })
    }

    #[test]
    fn both_versions_and_a_bad_one() {
        let v1 = decode(message().to_string().as_bytes()).unwrap();
        let v2 = decode(
            json!({"oslo.version": "2.0", "oslo.message": message().to_string()})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(v1, v2);
        assert_eq!(v1.priority, "info");
        assert_eq!(v1.context["user"], "u1");
        assert_eq!(v1.context["auth_token"], REDACTED);
        assert_eq!(v1.unique_id.as_deref(), Some("abc"));
        let e = decode(br#"{"oslo.version": "3.0", "oslo.message": "{}"}"#).unwrap_err();
        assert!(e.contains("unsupported oslo.version"), "{e}");
        assert!(decode(b"not json").is_err());
    }
}
