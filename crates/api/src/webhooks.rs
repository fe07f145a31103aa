//! StackStorm's webhooks, answered as st2 answers them — except that the
//! 2xx is sent only once the instance is durable in the log (st2 answers
//! before its unconfirmed publish), and `Idempotency-Key` makes client
//! retries safe.
//!
//! - `POST /api/v1/webhooks/st2` with `{"trigger": REF, "payload": {...}}`:
//!   one instance of that trigger; 202 with the body echoed.
//! - `POST /api/v1/webhooks/<url>`: one instance per `core.st2.webhook`
//!   trigger whose `url` parameter is `<url>`, payload `{headers,
//!   headers_lower, body}` (without `St2-Api-Key`, `X-Auth-Token`,
//!   `Cookie`); JSON or form bodies.
//!
//! Every answer carries `X-Trigger-Instance-Id`. Invalid input is 400 with
//! a `faultstring` (webhooks reject, they never drop silently); a log that
//! cannot make the instance durable is 503 with the reason.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use container::dispatcher::DispatchParams;
use eventlog::TriggerInstance;
use serde_json::{json, Map, Value};

use crate::dedupe::Answer;
use crate::ApiContext;

/// The trigger type of custom webhooks.
pub const WEBHOOK_TYPE: &str = "core.st2.webhook";
/// Answer header naming the stored instance(s).
pub const INSTANCE_HEADER: &str = "x-trigger-instance-id";
/// Headers never copied into a custom webhook's payload.
const SECRET_HEADERS: &[&str] = &["st2-api-key", "x-auth-token", "cookie"];

fn answer(status: StatusCode, body: Value) -> Answer {
    Answer {
        status: status.as_u16(),
        body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        instance_ids: String::new(),
    }
}

fn fault_answer(status: StatusCode, message: impl Into<String>) -> Answer {
    answer(status, json!({ "faultstring": message.into() }))
}

fn respond(a: Answer, replayed: bool) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        a.body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&a.instance_ids) {
        resp.headers_mut().insert(INSTANCE_HEADER, v);
    }
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The dedupe key of a request on `route`, if it has one.
fn idempotency_key(ctx: &ApiContext, route: &str, headers: &HeaderMap) -> Option<String> {
    let key = header(headers, "idempotency-key").or_else(|| {
        ctx.settings
            .dedupe_on_trace_tag
            .then(|| header(headers, "st2-trace-tag"))
            .flatten()
    })?;
    Some(format!("{route}\n{key}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Validate, append in one batch and wait until durable.
async fn store(
    ctx: &ApiContext,
    dispatches: Vec<DispatchParams>,
) -> Result<Vec<TriggerInstance>, Answer> {
    crate::durable::store(&ctx.dispatcher, dispatches)
        .await
        .map_err(|e| fault_answer(e.status(), e.to_string()))
}

fn accepted(body: &Bytes, instances: &[TriggerInstance]) -> Answer {
    Answer {
        status: StatusCode::ACCEPTED.as_u16(),
        body: body.clone(),
        instance_ids: instances
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// `POST /api/v1/webhooks/st2`.
pub async fn st2(State(ctx): State<Arc<ApiContext>>, headers: HeaderMap, body: Bytes) -> Response {
    let key = idempotency_key(&ctx, "st2", &headers);
    let work = || async {
        let parsed: Value = match crate::json_body::parse(&body) {
            Ok(v) => v,
            Err(e) => {
                return fault_answer(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse request body: {e}"),
                )
            }
        };
        let Value::Object(obj) = &parsed else {
            return fault_answer(
                StatusCode::BAD_REQUEST,
                format!(
                    "Webhook body needs to be an object, got: {}",
                    type_name(&parsed)
                ),
            );
        };
        let Some(trigger) = obj.get("trigger").filter(|t| !t.is_null()) else {
            return fault_answer(StatusCode::BAD_REQUEST, "Trigger not specified.");
        };
        let trace_tag = header(&headers, "st2-trace-tag")
            .map(str::to_string)
            .or_else(|| {
                obj.get("trace_tag")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("webhook-st2-{}", uuid::Uuid::new_v4().simple()));
        let params = DispatchParams {
            trigger: trigger.clone(),
            payload: obj.get("payload").cloned().unwrap_or_else(|| json!({})),
            trace_tag: Some(trace_tag),
            trace_context: None,
        };
        match store(&ctx, vec![params]).await {
            Ok(instances) => accepted(&body, &instances),
            Err(a) => a,
        }
    };
    let (a, replayed) = ctx.dedupe.run(key, work).await;
    respond(a, replayed)
}

/// The payload of a custom webhook: headers (minus secrets) and the body.
fn custom_payload(headers: &HeaderMap, body: &Bytes) -> Result<Value, Answer> {
    let mut original = Map::new();
    let mut lower = Map::new();
    for (name, value) in headers {
        let n = name.as_str();
        if SECRET_HEADERS.contains(&n) {
            continue;
        }
        let v = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        // HTTP/1 header names arrive lower-cased by hyper; st2 shows them
        // capitalised per word (as WebOb does).
        let title = n
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-");
        original.insert(title, v.clone());
        lower.insert(n.to_string(), v);
    }
    let content_type = header(headers, "content-type").unwrap_or("");
    let body = if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut form: Map<String, Value> = Map::new();
        for (k, v) in form_urlencoded::parse(body) {
            let entry = form.entry(k.into_owned()).or_insert_with(|| json!([]));
            if let Value::Array(a) = entry {
                a.push(Value::String(v.into_owned()));
            }
        }
        Value::Object(form)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        crate::json_body::parse(body).map_err(|e| {
            fault_answer(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse request body: {e}"),
            )
        })?
    };
    Ok(json!({ "headers": original, "headers_lower": lower, "body": body }))
}

/// `POST /api/v1/webhooks/<url>`: the custom webhooks.
pub async fn custom(
    State(ctx): State<Arc<ApiContext>>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hook = hook.trim_start_matches('/').to_string();
    let key = idempotency_key(&ctx, &hook, &headers);
    let work = || async {
        let catalog = ctx.dispatcher.catalog();
        let triggers: Vec<String> = catalog
            .triggers_of(&[WEBHOOK_TYPE.to_string()])
            .into_iter()
            .filter(|t| {
                t.parameters
                    .get("url")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.trim_start_matches('/') == hook)
            })
            .map(|t| t.trigger_ref.clone())
            .collect();
        if triggers.is_empty() {
            return fault_answer(
                StatusCode::NOT_FOUND,
                format!("Webhook {hook} not registered with st2"),
            );
        }
        let payload = match custom_payload(&headers, &body) {
            Ok(p) => p,
            Err(a) => return a,
        };
        let trace_tag = header(&headers, "st2-trace-tag")
            .map(str::to_string)
            .unwrap_or_else(|| format!("webhook-{hook}-{}", uuid::Uuid::new_v4().simple()));
        let dispatches = triggers
            .into_iter()
            .map(|t| DispatchParams {
                trigger: json!(t),
                payload: payload.clone(),
                trace_tag: Some(trace_tag.clone()),
                trace_context: None,
            })
            .collect();
        match store(&ctx, dispatches).await {
            Ok(instances) => accepted(&body, &instances),
            Err(a) => a,
        }
    };
    let (a, replayed) = ctx.dedupe.run(key, work).await;
    respond(a, replayed)
}
