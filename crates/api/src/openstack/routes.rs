//! The HTTP routes of the OpenStack front doors: parse the request, call
//! [`OpenStack`](super::OpenStack), answer in the service's own shapes
//! (Senlin's error body under `/v1/receivers` and `/v1/webhooks`,
//! Masakari's under `/v1/segments` and `/v1/notifications`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::segments::Page;
use super::trigger::{clustering_microversion, TriggerRequest, SIGNATURE_HEADER};
use super::{Caller, OsError, OsResult};
use crate::auth::KeyId;
use crate::ApiContext;

type Ctx = State<Arc<ApiContext>>;

/// Which service's error body to answer with.
#[derive(Clone, Copy)]
enum Style {
    Senlin,
    Masakari,
}

fn answer(style: Style, r: OsResult<Response>) -> Response {
    match r {
        Ok(resp) => resp,
        Err(e) => match style {
            Style::Senlin => e.senlin(),
            Style::Masakari => e.masakari(),
        },
    }
}

fn query(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn json_body(body: &Bytes) -> OsResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(OsError::bad_request(
            "The request body is empty; a JSON object was expected.",
        ));
    }
    crate::json_body::parse(body)
        .map_err(|e| OsError::bad_request(format!("The request body is not valid JSON: {e}")))
}

fn ok(status: StatusCode, key: &str, v: Value) -> Response {
    (status, Json(json!({ key: v }))).into_response()
}

/// A Masakari list answer: `{"<key>": [...]}`, plus `<key>_links` with
/// a `next` link when the 1000-item cap cut it.
fn page(key: &str, path: &str, query: &[(String, String)], p: Page) -> Response {
    let mut body = json!({ key: p.items });
    if let Some(marker) = p.next_marker {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(k, _)| k != "marker") {
            q.append_pair(k, v);
        }
        q.append_pair("marker", &marker);
        body[format!("{key}_links")] =
            json!([{"rel": "next", "href": format!("{path}?{}", q.finish())}]);
    }
    (StatusCode::OK, Json(body)).into_response()
}

fn caller(key: Option<Extension<KeyId>>) -> Caller {
    match key {
        Some(Extension(KeyId(id))) => Caller { user: id },
        None => Caller::operator(),
    }
}

/// The routes, to be merged into the main router.
pub fn router() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1", get(discovery))
        .route("/v1/", get(discovery))
        .route("/v1/receivers", get(receiver_list).post(receiver_create))
        .route(
            "/v1/receivers/{id}",
            get(receiver_get)
                .patch(receiver_update)
                .delete(receiver_delete),
        )
        .route("/v1/receivers/{id}/notify", post(receiver_notify))
        .route("/v1/webhooks/{id}/trigger", post(webhook_trigger))
        .route("/v1/segments", get(segment_list).post(segment_create))
        .route(
            "/v1/segments/{id}",
            get(segment_get).put(segment_update).delete(segment_delete),
        )
        .route("/v1/segments/{id}/hosts", get(host_list).post(host_create))
        .route(
            "/v1/segments/{id}/hosts/{host}",
            get(host_get).put(host_update).delete(host_delete),
        )
        .route(
            "/v1/notifications",
            get(notification_list).post(notification_create),
        )
        .route(
            "/v1/notifications/{id}",
            get(notification_get).patch(notification_patch),
        )
}

async fn discovery(State(ctx): Ctx, headers: HeaderMap) -> Response {
    super::discovery::document(&headers, ctx.settings.tls.is_some())
}

// ---- Senlin ----

async fn receiver_list(State(ctx): Ctx, RawQuery(q): RawQuery) -> Response {
    answer(
        Style::Senlin,
        ctx.openstack
            .receiver_list(&query(&q))
            .map(|l| ok(StatusCode::OK, "receivers", json!(l))),
    )
}

async fn receiver_create(State(ctx): Ctx, key: Option<Extension<KeyId>>, body: Bytes) -> Response {
    let r = json_body(&body).and_then(|b| ctx.openstack.receiver_create(&caller(key), &b));
    answer(
        Style::Senlin,
        r.map(|v| ok(StatusCode::CREATED, "receiver", v)),
    )
}

async fn receiver_get(State(ctx): Ctx, Path(id): Path<String>) -> Response {
    let r = ctx
        .openstack
        .receiver_find(&id)
        .map(|r| ok(StatusCode::OK, "receiver", ctx.openstack.receiver_view(&r)));
    answer(Style::Senlin, r)
}

async fn receiver_update(State(ctx): Ctx, Path(id): Path<String>, body: Bytes) -> Response {
    let r = json_body(&body).and_then(|b| ctx.openstack.receiver_update(&id, &b));
    answer(Style::Senlin, r.map(|v| ok(StatusCode::OK, "receiver", v)))
}

async fn receiver_delete(State(ctx): Ctx, Path(id): Path<String>) -> Response {
    let r = ctx
        .openstack
        .receiver_delete(&id)
        .map(|()| StatusCode::NO_CONTENT.into_response());
    answer(Style::Senlin, r)
}

async fn receiver_notify(State(ctx): Ctx, Path(id): Path<String>, body: Bytes) -> Response {
    let r = ctx.openstack.receiver_notify(&id, &body).await;
    answer(
        Style::Senlin,
        r.map(|ids| {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(&ids.join(",")) {
                resp.headers_mut()
                    .insert(crate::webhooks::INSTANCE_HEADER, v);
            }
            resp
        }),
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn webhook_trigger(
    State(ctx): Ctx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = query(&q);
    let v = q.iter().find(|(k, _)| k == "V").map(|(_, v)| v.as_str());
    let microversion = clustering_microversion(
        header_str(&headers, "openstack-api-version")
            .or_else(|| header_str(&headers, "x-openstack-clustering-api-version")),
    );
    let req = TriggerRequest {
        v,
        microversion,
        body: &body,
        signature: header_str(&headers, SIGNATURE_HEADER),
        trace_tag: header_str(&headers, "st2-trace-tag").map(str::to_string),
    };
    let r = ctx
        .openstack
        .receiver_trigger(&id, req)
        .await
        .map(|instance| {
            let location = format!("/actions/{instance}");
            let mut resp = (
                StatusCode::ACCEPTED,
                Json(json!({"action": instance, "location": location})),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/v1{location}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&instance) {
                resp.headers_mut()
                    .insert(crate::webhooks::INSTANCE_HEADER, v);
            }
            resp
        });
    answer(Style::Senlin, r)
}

// ---- Masakari ----

async fn segment_list(State(ctx): Ctx, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let r = ctx
        .openstack
        .segment_list(&q)
        .map(|p| page("segments", "/v1/segments", &q, p));
    answer(Style::Masakari, r)
}

async fn segment_create(State(ctx): Ctx, body: Bytes) -> Response {
    let r = json_body(&body).and_then(|b| ctx.openstack.segment_create(&b));
    answer(
        Style::Masakari,
        r.map(|v| ok(StatusCode::CREATED, "segment", v)),
    )
}

async fn segment_get(State(ctx): Ctx, Path(id): Path<String>) -> Response {
    answer(
        Style::Masakari,
        ctx.openstack
            .segment_get(&id)
            .map(|v| ok(StatusCode::OK, "segment", v)),
    )
}

async fn segment_update(State(ctx): Ctx, Path(id): Path<String>, body: Bytes) -> Response {
    let r = json_body(&body).and_then(|b| ctx.openstack.segment_update(&id, &b));
    answer(Style::Masakari, r.map(|v| ok(StatusCode::OK, "segment", v)))
}

async fn segment_delete(State(ctx): Ctx, Path(id): Path<String>) -> Response {
    answer(
        Style::Masakari,
        ctx.openstack
            .segment_delete(&id)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    )
}

async fn host_list(State(ctx): Ctx, Path(seg): Path<String>, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let path = format!("/v1/segments/{seg}/hosts");
    let r = ctx
        .openstack
        .host_list(&seg, &q)
        .map(|p| page("hosts", &path, &q, p));
    answer(Style::Masakari, r)
}

async fn host_create(State(ctx): Ctx, Path(seg): Path<String>, body: Bytes) -> Response {
    let r = json_body(&body).and_then(|b| ctx.openstack.host_create(&seg, &b));
    answer(
        Style::Masakari,
        r.map(|v| ok(StatusCode::CREATED, "host", v)),
    )
}

async fn host_get(State(ctx): Ctx, Path((seg, host)): Path<(String, String)>) -> Response {
    answer(
        Style::Masakari,
        ctx.openstack
            .host_get(&seg, &host)
            .map(|v| ok(StatusCode::OK, "host", v)),
    )
}

async fn host_update(
    State(ctx): Ctx,
    Path((seg, host)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let r = json_body(&body).and_then(|b| ctx.openstack.host_update(&seg, &host, &b));
    answer(Style::Masakari, r.map(|v| ok(StatusCode::OK, "host", v)))
}

async fn host_delete(State(ctx): Ctx, Path((seg, host)): Path<(String, String)>) -> Response {
    answer(
        Style::Masakari,
        ctx.openstack
            .host_delete(&seg, &host)
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    )
}

async fn notification_list(State(ctx): Ctx, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let r = ctx
        .openstack
        .notification_list(&q)
        .map(|p| page("notifications", "/v1/notifications", &q, p));
    answer(Style::Masakari, r)
}

async fn notification_create(State(ctx): Ctx, body: Bytes) -> Response {
    let r = match json_body(&body) {
        Ok(b) => ctx.openstack.notification_create(&b).await,
        Err(e) => Err(e),
    };
    answer(
        Style::Masakari,
        r.map(|v| ok(StatusCode::ACCEPTED, "notification", v)),
    )
}

async fn notification_get(State(ctx): Ctx, Path(id): Path<String>) -> Response {
    answer(
        Style::Masakari,
        ctx.openstack
            .notification_get(&id)
            .map(|v| ok(StatusCode::OK, "notification", v)),
    )
}

async fn notification_patch(State(ctx): Ctx, Path(id): Path<String>, body: Bytes) -> Response {
    let r = match json_body(&body) {
        Ok(b) => ctx.openstack.notification_patch(&id, &b).await,
        Err(e) => Err(e),
    };
    answer(
        Style::Masakari,
        r.map(|v| ok(StatusCode::OK, "notification", v)),
    )
}
