//! Live streams of trigger instances as they become durable:
//! `GET /api/v1/stream` as Server-Sent Events (StackStorm's stream service
//! speaks SSE: `event: st2.trigger_instance__create`, `id:` the seq, `data:`
//! the instance), resumable with `Last-Event-ID`; and
//! `GET /v1/trigger-instances/stream` as NDJSON. Both take `?trigger=` and
//! `?sensor=` filters and `?from=SEQ`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use eventlog::InstanceFilter;

use crate::fault::fault;
use crate::ApiContext;

/// SSE event name of a new instance (StackStorm's).
pub const EVENT: &str = "st2.trigger_instance__create";
/// Instances buffered for a slow client.
const BUFFER: usize = 256;

struct Query {
    filter: InstanceFilter,
    from: Option<u64>,
}

fn query(uri: &Uri) -> Result<Query, Box<Response>> {
    let mut q = Query {
        filter: InstanceFilter::default(),
        from: None,
    };
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "trigger" => q.filter.trigger = Some(v.into_owned()),
            "sensor" => q.filter.sensor = Some(v.into_owned()),
            "from" => {
                q.from = Some(v.parse().map_err(|_| {
                    fault(
                        StatusCode::BAD_REQUEST,
                        format!("from={v}: not a sequence number"),
                    )
                })?)
            }
            _ => {}
        }
    }
    Ok(q)
}

/// `GET /api/v1/stream`.
pub async fn sse(State(ctx): State<Arc<ApiContext>>, headers: HeaderMap, uri: Uri) -> Response {
    let q = match query(&uri) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let from = resume
        .map(|last| last + 1)
        .or(q.from)
        .unwrap_or_else(|| ctx.log.last_seq() + 1);
    let rx = eventlog::follow::follow(ctx.log.clone(), from, q.filter, BUFFER);
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let event = match item {
            Ok(i) => Event::default()
                .event(EVENT)
                .id(i.seq.to_string())
                .json_data(&i)
                .unwrap_or_else(|_| Event::default().comment("unencodable instance")),
            Err(e) => Event::default().event("error").data(e.to_string()),
        };
        Some((Ok::<_, Infallible>(event), rx))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /v1/trigger-instances/stream`.
pub async fn ndjson(State(ctx): State<Arc<ApiContext>>, uri: Uri) -> Response {
    let q = match query(&uri) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let params = serde_json::json!({
        "trigger": q.filter.trigger,
        "sensor": q.filter.sensor,
        "from": q.from,
    });
    match ctx.ops.stream("trigger-instance.tail", params) {
        Some(Ok(rx)) => crate::control::ndjson_response(rx),
        Some(Err(e)) => crate::control::error_response(e),
        None => fault(StatusCode::INTERNAL_SERVER_ERROR, "no tail operation"),
    }
}
