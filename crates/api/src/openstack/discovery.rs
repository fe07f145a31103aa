//! `GET /v1` and `GET /v1/`: the version-discovery document keystoneauth
//! (inside openstacksdk) fetches before its first call to a service
//! whose endpoint it was given. Without a document carrying `id`,
//! `status` and a `self` link, the client fails with `DiscoveryFailure`.
//! Senlin and Masakari share our `/v1`, so one document serves both:
//! `min_version`/`max_version` bound the microversions the client may ask
//! for (`OpenStack-API-Version: clustering 1.x` / `instance-ha 1.x`).
//! It is public, as the services' own version documents are: it tells
//! nothing but versions.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Highest microversion we answer for: Senlin's receivers need 1.7
/// (PATCH) and change at 1.10 (webhook params in the body), Senlin's own
/// maximum is 1.14; Masakari's segments got `enabled` at 1.2.
pub const MAX_VERSION: &str = "1.14";

/// The document, with the `self` link on the request's `Host` (`tls`:
/// the listener speaks https).
pub fn document(headers: &HeaderMap, tls: bool) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if tls { "https" } else { "http" };
    // Exactly the endpoint the client was given (`BASE/v1`): another
    // self link makes keystoneauth fetch the document a second time there.
    let href = format!("{scheme}://{host}/v1");
    let body = json!({
        "version": {
            "id": "v1.0",
            "status": "CURRENT",
            "min_version": "1.0",
            "max_version": MAX_VERSION,
            "version": MAX_VERSION,
            "updated": "2026-12-01T00:00:00Z",
            "links": [{"rel": "self", "href": href}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.clustering-v1+json"}],
        }
    });
    axum::Json(body).into_response()
}
