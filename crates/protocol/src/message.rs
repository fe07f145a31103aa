//! JSON-RPC 2.0 message types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes;

/// A request: has an `id` and expects exactly one [`Response`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub jsonrpc: String,
    pub id: Value,
    pub method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

/// A notification: no `id`, never answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    pub jsonrpc: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

impl Notification {
    /// A notification with the given method and params.
    pub fn new(method: impl Into<String>, params: Value) -> Self {
        Notification {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
        }
    }
}

/// The error object of a failed response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with no `data`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Attach structured `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// A response to a request: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub jsonrpc: String,
    /// `null` when the request could not be parsed far enough to know its id.
    pub id: Value,
    /// `Some(Null)` for a `"result": null` success; `None` when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A successful response.
    pub fn ok(id: Value, result: Value) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// A failed response.
    pub fn err(id: Value, error: RpcError) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }

    /// Serialize as one frame, newline included.
    pub fn to_frame(&self) -> Vec<u8> {
        to_frame(self)
    }
}

/// Serialize any message as one `\n`-terminated frame.
pub fn to_frame<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serializing our own message types cannot fail: keys are strings and
    // values are already JSON.
    let mut buf = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    buf.push(b'\n');
    buf
}

/// What a peer sent, classified. Responses are included so a sensor-side
/// reader can use the same parser.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

// The error is the reply to send: boxing it would only add an allocation
// on a path that already allocates the reply.
#[allow(clippy::result_large_err)]
impl Incoming {
    /// Parse one frame (without its newline). The error is the response to
    /// send back (with `id: null`, or the request's id when it was readable).
    pub fn parse(line: &[u8]) -> Result<Incoming, Response> {
        let msg = Self::parse_json(line)?;
        // Integers beyond 64 bits would have become floats: refuse them.
        if let Some(number) = crate::integers::oversized_integer(line) {
            let id = match &msg {
                Incoming::Request(r) => r.id.clone(),
                _ => Value::Null,
            };
            return Err(Response::err(
                id,
                RpcError::new(
                    codes::INVALID_PARAMS,
                    crate::integers::oversized_message(&number),
                ),
            ));
        }
        Ok(msg)
    }

    fn parse_json(line: &[u8]) -> Result<Incoming, Response> {
        // Fast path: one pass straight into the fields (no intermediate
        // `Value` tree to walk and clone); anything unusual falls back to
        // the careful path below, which produces the precise error.
        if let Ok(env) = serde_json::from_slice::<Envelope>(line) {
            if let Some(msg) = env.classify() {
                return Ok(msg);
            }
        }
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            Response::err(
                Value::Null,
                RpcError::new(codes::PARSE_ERROR, format!("parse error: {e}")),
            )
        })?;
        Self::from_value(value)
    }

    /// Classify an already parsed JSON value.
    pub fn from_value(value: Value) -> Result<Incoming, Response> {
        let invalid = |id: Value, why: &str| {
            Response::err(
                id,
                RpcError::new(codes::INVALID_REQUEST, format!("invalid request: {why}")),
            )
        };
        let Value::Object(obj) = &value else {
            return Err(invalid(
                Value::Null,
                "expected a JSON object (batches are not supported)",
            ));
        };
        let id = obj.get("id").cloned();
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(invalid(
                id.unwrap_or(Value::Null),
                "\"jsonrpc\" must be \"2.0\"",
            ));
        }
        if let Some(id) = &id {
            if !(id.is_string() || id.is_number() || id.is_null()) {
                return Err(invalid(Value::Null, "\"id\" must be a string or a number"));
            }
        }
        if obj.contains_key("method") {
            if !obj.get("method").is_some_and(Value::is_string) {
                return Err(invalid(
                    id.unwrap_or(Value::Null),
                    "\"method\" must be a string",
                ));
            }
            if let Some(p) = obj.get("params") {
                if !(p.is_object() || p.is_array() || p.is_null()) {
                    return Err(invalid(
                        id.unwrap_or(Value::Null),
                        "\"params\" must be an object or an array",
                    ));
                }
            }
            return if id.is_some() {
                serde_json::from_value(value)
                    .map(Incoming::Request)
                    .map_err(|e| invalid(Value::Null, &e.to_string()))
            } else {
                serde_json::from_value(value)
                    .map(Incoming::Notification)
                    .map_err(|e| invalid(Value::Null, &e.to_string()))
            };
        }
        if obj.contains_key("result") || obj.contains_key("error") {
            return serde_json::from_value(value)
                .map(Incoming::Response)
                .map_err(|e| invalid(Value::Null, &e.to_string()));
        }
        Err(invalid(
            id.unwrap_or(Value::Null),
            "no \"method\", \"result\" or \"error\"",
        ))
    }
}

/// Every field a message may have, for the one-pass parse. `id` is
/// `Some(Null)` when present as `null` and `None` when absent.
#[derive(Deserialize)]
struct Envelope {
    jsonrpc: String,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<String>,
    #[serde(default)]
    params: Value,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    error: Option<RpcError>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Envelope {
    /// The message, when it is an ordinary well-formed one.
    fn classify(self) -> Option<Incoming> {
        if self.jsonrpc != "2.0"
            || !(self.params.is_object() || self.params.is_array() || self.params.is_null())
        {
            return None;
        }
        let id_ok = |id: &Value| id.is_string() || id.is_number() || id.is_null();
        match (self.method, self.id) {
            (Some(method), Some(id)) if id_ok(&id) => Some(Incoming::Request(Request {
                jsonrpc: self.jsonrpc,
                id,
                method,
                params: self.params,
            })),
            (Some(method), None) => Some(Incoming::Notification(Notification {
                jsonrpc: self.jsonrpc,
                method,
                params: self.params,
            })),
            (None, Some(id)) if id_ok(&id) && (self.result.is_some() || self.error.is_some()) => {
                Some(Incoming::Response(Response {
                    jsonrpc: self.jsonrpc,
                    id,
                    result: self.result,
                    error: self.error,
                }))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_messages() {
        let r =
            Incoming::parse(br#"{"jsonrpc":"2.0","id":1,"method":"dispatch","params":{"a":1}}"#)
                .unwrap();
        assert!(matches!(r, Incoming::Request(Request { ref method, .. }) if method == "dispatch"));
        let n = Incoming::parse(br#"{"jsonrpc":"2.0","method":"ready"}"#).unwrap();
        assert!(matches!(n, Incoming::Notification(_)));
        let resp = Incoming::parse(br#"{"jsonrpc":"2.0","id":"x","result":true}"#).unwrap();
        assert!(matches!(resp, Incoming::Response(_)));
    }

    #[test]
    fn rejects_garbage_with_codes() {
        assert_eq!(
            Incoming::parse(b"not json")
                .unwrap_err()
                .error
                .unwrap()
                .code,
            codes::PARSE_ERROR
        );
        assert_eq!(
            Incoming::parse(b"[1,2]").unwrap_err().error.unwrap().code,
            codes::INVALID_REQUEST
        );
        let e = Incoming::parse(br#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).unwrap_err();
        assert_eq!(e.id, json!(7));
        assert_eq!(e.error.unwrap().code, codes::INVALID_REQUEST);
        let e =
            Incoming::parse(br#"{"jsonrpc":"2.0","id":7,"method":"x","params":3}"#).unwrap_err();
        assert_eq!(e.error.unwrap().code, codes::INVALID_REQUEST);
    }

    #[test]
    fn fast_and_careful_paths_agree() {
        for line in [
            &br#"{"jsonrpc":"2.0","id":null,"method":"m"}"#[..],
            br#"{"jsonrpc":"2.0","method":"m","params":[1]}"#,
            br#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}}"#,
            br#"{"jsonrpc":"2.0","id":3,"result":null}"#,
        ] {
            let fast = Incoming::parse(line).unwrap();
            let careful = Incoming::from_value(serde_json::from_slice(line).unwrap()).unwrap();
            assert_eq!(fast, careful, "{}", String::from_utf8_lossy(line));
        }
        // A request with a null id is a request, not a notification.
        assert!(matches!(
            Incoming::parse(br#"{"jsonrpc":"2.0","id":null,"method":"m"}"#),
            Ok(Incoming::Request(_))
        ));
        // Oddities still get the careful path's error.
        assert_eq!(
            Incoming::parse(br#"{"jsonrpc":"2.0","id":{},"method":"m"}"#)
                .unwrap_err()
                .error
                .unwrap()
                .code,
            codes::INVALID_REQUEST
        );
    }

    #[test]
    fn frames_end_with_newline() {
        let f = Response::ok(json!(1), json!({"id": "abc"})).to_frame();
        assert_eq!(f.last(), Some(&b'\n'));
        assert_eq!(f.iter().filter(|b| **b == b'\n').count(), 1);
    }
}
