//! Triggering receivers: `POST /v1/webhooks/{id}/trigger?V=...` (webhook
//! receivers; the URL is the credential) and `POST
//! /v1/receivers/{id}/notify` (message receivers, Zaqar-style messages in
//! the body). Each trigger is one durable `core.receiver.trigger`
//! instance with payload `{receiver_id, receiver_name, cluster_id,
//! action, params, type}`.
//!
//! Params (Senlin's `webhook_trigger`): `V=1` under a microversion below
//! 1.10 takes `body.params`; any other `V`, or microversion ≥ 1.10, takes
//! the whole body; the result is merged shallowly over the receiver's
//! params, the body winning. Query parameters besides `V` are ignored, as
//! Senlin ignores them (they only render the stored params).

use container::dispatcher::DispatchParams;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::receivers::Receiver;
use super::{OpenStack, OsError, OsResult, RECEIVER_TRIGGER};

/// The header carrying the body's HMAC when
/// `api.receivers.require_signature` is on: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-receiver-signature";

/// What a trigger request brought.
pub struct TriggerRequest<'a> {
    /// The `V` query parameter, if present.
    pub v: Option<&'a str>,
    /// The `OpenStack-API-Version: clustering 1.N` minor, if sent.
    pub microversion: Option<u32>,
    /// The raw body.
    pub body: &'a [u8],
    /// The `X-Receiver-Signature` header.
    pub signature: Option<&'a str>,
    /// `St2-Trace-Tag`, if sent.
    pub trace_tag: Option<String>,
}

/// The minor of `OpenStack-API-Version: clustering 1.N` (or of the old
/// `X-OpenStack-Clustering-API-Version: 1.N`).
pub fn clustering_microversion(header: Option<&str>) -> Option<u32> {
    let h = header?.trim();
    let v = h.strip_prefix("clustering").map(str::trim).unwrap_or(h);
    v.strip_prefix("1.")?.parse().ok()
}

fn verify_signature(secret: &str, body: &[u8], presented: Option<&str>) -> OsResult<()> {
    let refused = || {
        OsError::forbidden(format!(
            "this receiver needs a {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body> header made with its secret"
        ))
    };
    let hex_sig = presented
        .and_then(|p| p.trim().strip_prefix("sha256="))
        .ok_or_else(refused)?;
    let sig = hex::decode(hex_sig.trim()).map_err(|_| refused())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| OsError::internal(format!("bad receiver secret: {e}")))?;
    mac.update(body);
    // Constant-time comparison (hmac's verify_slice).
    mac.verify_slice(&sig).map_err(|_| refused())
}

/// The params a trigger body carries.
fn body_params(
    v: Option<&str>,
    microversion: Option<u32>,
    body: &[u8],
) -> OsResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let parsed: Value = crate::json_body::parse(body)
        .map_err(|e| OsError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let params_only = v == Some("1") && microversion.is_none_or(|m| m < 10);
    let params = if params_only {
        match &parsed {
            Value::Object(m) => m.get("params").cloned().unwrap_or(Value::Null),
            _ => parsed.clone(),
        }
    } else {
        parsed
    };
    match params {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m),
        other => Err(OsError::bad_request(format!(
            "The trigger params must be a JSON object{}, got {other}",
            if params_only {
                " in 'params' (V=1)"
            } else {
                ""
            }
        ))),
    }
}

fn payload(
    r: &Receiver,
    cluster_id: Option<&str>,
    action: Option<&str>,
    params: Map<String, Value>,
) -> Value {
    json!({
        "receiver_id": r.id,
        "receiver_name": r.name,
        "cluster_id": cluster_id,
        "action": action,
        "params": params,
        "type": r.kind,
    })
}

impl OpenStack {
    /// A webhook trigger: the stored instance's id once it is durable.
    pub async fn receiver_trigger(&self, id: &str, req: TriggerRequest<'_>) -> OsResult<String> {
        let Some(v) = req.v else {
            return Err(OsError::bad_request(
                "V query parameter is required in webhook trigger URL",
            ));
        };
        let rec: Receiver = self.tables.receivers.get(id.as_bytes())?.ok_or_else(|| {
            OsError::not_found(format!("The receiver '{id}' could not be found."))
        })?;
        if rec.kind != "webhook" {
            return Err(OsError::bad_request(format!(
                "Receiver '{id}' is a '{}' receiver: use POST /v1/receivers/{id}/notify",
                rec.kind
            )));
        }
        if let Some(secret) = &rec.secret {
            verify_signature(secret, req.body, req.signature)?;
        } else if self.settings.require_signature {
            return Err(OsError::forbidden(format!(
                "api.receivers.require_signature is on, and receiver '{id}' was created without a secret: create it again"
            )));
        }
        let mut params = rec.params.clone();
        params.extend(body_params(Some(v), req.microversion, req.body)?);
        let trace_tag = req.trace_tag.unwrap_or_else(|| {
            format!(
                "receiver-{}-{}",
                &rec.id[..8],
                uuid::Uuid::new_v4().simple()
            )
        });
        let d = DispatchParams {
            trigger: json!(RECEIVER_TRIGGER),
            payload: payload(
                &rec,
                rec.cluster_id.as_deref(),
                rec.action.as_deref(),
                params,
            ),
            trace_tag: Some(trace_tag),
            trace_context: None,
        };
        let stored = crate::durable::store(&self.dispatcher, vec![d]).await?;
        Ok(stored.first().map(|i| i.id.clone()).unwrap_or_default())
    }

    /// `notify` of a message receiver: every message of `{"messages":
    /// [{"body": {cluster, action, params}}]}` checked first (all or
    /// nothing, unlike Senlin, which drops bad messages silently), then
    /// stored in one batch. The instances' ids.
    pub async fn receiver_notify(&self, identity: &str, body: &[u8]) -> OsResult<Vec<String>> {
        let rec = self.receiver_find(identity)?;
        if rec.kind != "message" {
            return Err(OsError::bad_request(format!(
                "Receiver '{identity}' is a '{}' receiver; only message receivers can be notified",
                rec.kind
            )));
        }
        let parsed: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({"messages": []})
        } else {
            crate::json_body::parse(body).map_err(|e| {
                OsError::bad_request(format!("The request body is not valid JSON: {e}"))
            })?
        };
        let Some(messages) = parsed.get("messages").and_then(Value::as_array) else {
            return Err(OsError::bad_request(
                "The body must be {\"messages\": [{\"body\": {\"cluster\": ..., \"action\": ..., \"params\": {...}}}]}",
            ));
        };
        let mut dispatches = Vec::with_capacity(messages.len());
        for (n, m) in messages.iter().enumerate() {
            let b = m
                .get("body")
                .filter(|b| b.as_object().is_some_and(|o| !o.is_empty()));
            let Some(b) = b else {
                return Err(OsError::bad_request(format!(
                    "messages[{n}].body: empty or missing"
                )));
            };
            let text = |k: &str| -> OsResult<String> {
                b.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        OsError::bad_request(format!("messages[{n}].body.{k}: required (a string)"))
                    })
            };
            let (cluster, action) = (text("cluster")?, text("action")?);
            let params = match b.get("params") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(p)) => p.clone(),
                Some(other) => {
                    return Err(OsError::bad_request(format!(
                        "messages[{n}].body.params: must be a JSON object, got {other}"
                    )))
                }
            };
            dispatches.push(DispatchParams {
                trigger: json!(RECEIVER_TRIGGER),
                payload: payload(&rec, Some(&cluster), Some(&action), params),
                trace_tag: Some(format!(
                    "receiver-{}-{}",
                    &rec.id[..8],
                    uuid::Uuid::new_v4().simple()
                )),
                trace_context: None,
            });
        }
        if dispatches.is_empty() {
            return Ok(Vec::new());
        }
        let stored = crate::durable::store(&self.dispatcher, dispatches).await?;
        Ok(stored.into_iter().map(|i| i.id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_takes_body_params_v2_the_whole_body_and_microversion_10_overrides() {
        let body = br#"{"params": {"a": 1}, "b": 2}"#;
        assert_eq!(
            Value::Object(body_params(Some("1"), None, body).unwrap()),
            json!({"a": 1})
        );
        assert_eq!(
            Value::Object(body_params(Some("2"), None, body).unwrap()),
            json!({"params": {"a": 1}, "b": 2})
        );
        assert_eq!(
            Value::Object(body_params(Some("1"), Some(10), body).unwrap()),
            json!({"params": {"a": 1}, "b": 2})
        );
        assert!(body_params(Some("2"), None, b"[1]").is_err());
        assert!(body_params(Some("2"), None, b"").unwrap().is_empty());
        assert_eq!(clustering_microversion(Some("clustering 1.12")), Some(12));
        assert_eq!(clustering_microversion(Some("1.7")), Some(7));
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"{}");
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(verify_signature("k", b"{}", Some(&good)).is_ok());
        assert_eq!(
            verify_signature("k", b"{ }", Some(&good))
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(verify_signature("k", b"{}", None).unwrap_err().status, 403);
    }
}
