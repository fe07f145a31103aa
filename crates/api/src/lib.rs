//! Every HTTP route of the sensor container.
//!
//! One router, served on two kinds of listener ([`server`]):
//! - the Unix socket `<data-dir>/control.sock` (mode 0600: file permissions
//!   are the authentication), which `sensorctl` uses;
//! - TCP (`api.listen`, default `127.0.0.1:9101`), where every route but
//!   the health probes (and `/metrics` unless `api.metrics_auth`) needs an
//!   API key ([`auth`]).
//!
//! Routes:
//! - `POST /v1/control/{op}`: the control operations ([`control`]);
//! - `POST /api/v1/webhooks/st2` and `POST /api/v1/webhooks/{hook}`:
//!   StackStorm's webhooks, answered 2xx only once the instance is durable
//!   ([`webhooks`], with [`dedupe`] for `Idempotency-Key`);
//! - `GET /api/v1/stream` (Server-Sent Events) and
//!   `GET /v1/trigger-instances/stream` (NDJSON) ([`stream`]);
//! - `GET /metrics` ([`metrics`]), `GET /healthz`, `GET /readyz` ([`health`]);
//! - under `/v1`: Senlin receivers and webhook triggers, Masakari
//!   segments, hosts and notifications, and their version document
//!   ([`openstack`]).

pub mod auth;
pub mod client;
pub mod control;
pub mod dedupe;
pub mod durable;
pub mod fault;
pub mod health;
pub mod json_body;
pub mod metrics;
pub mod openstack;
pub mod ops;
pub mod server;
pub mod stream;
pub mod tls;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use container::dispatcher::Dispatcher;
use container::Container;
use eventlog::EventLog;

pub use ops::{OpError, OpErrorKind, OpStream, Operations};

/// The `api:` settings (documented in conf/sensorcontainer.yaml).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// TCP addresses to listen on; empty disables TCP.
    pub listen: Vec<SocketAddr>,
    /// `(cert, key)` PEM files: TLS on every TCP address.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `/metrics` needs an API key too.
    pub metrics_auth: bool,
    /// How long an `Idempotency-Key` is remembered.
    pub dedupe_window: Duration,
    /// Treat `St2-Trace-Tag` as an idempotency key.
    pub dedupe_on_trace_tag: bool,
    /// Longest wait for a request's headers or body.
    pub read_timeout: Duration,
    /// Open connections per listener beyond which new ones are refused.
    pub max_connections: usize,
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 9101))],
            tls: None,
            metrics_auth: false,
            dedupe_window: Duration::from_secs(300),
            dedupe_on_trace_tag: false,
            read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// What the routes need.
pub struct ApiContext {
    /// The control operations.
    pub ops: Arc<dyn Operations>,
    /// Resolve, validate and build trigger instances (shared with sensors).
    pub dispatcher: Arc<Dispatcher>,
    /// The trigger-instance log.
    pub log: Arc<dyn EventLog>,
    /// API keys (TCP auth).
    pub keys: store::ApiKeys,
    /// The running container, for sensor metrics.
    pub container: Option<Arc<Container>>,
    /// Settings.
    pub settings: ApiSettings,
    /// Request and commit metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Idempotency keys seen recently.
    pub dedupe: dedupe::Dedupe,
    /// Throttles `last_used` writes of API keys.
    pub key_touch: auth::TouchThrottle,
    /// Senlin receivers and Masakari notifications.
    pub openstack: Arc<openstack::OpenStack>,
}

impl ApiContext {
    /// A context with fresh metrics and dedupe state; `collectors` add
    /// other crates' metrics (the sinks') to `/metrics`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ops: Arc<dyn Operations>,
        dispatcher: Arc<Dispatcher>,
        log: Arc<dyn EventLog>,
        keys: store::ApiKeys,
        container: Option<Arc<Container>>,
        settings: ApiSettings,
        collectors: Vec<Box<dyn prometheus_client::collector::Collector>>,
        openstack: Arc<openstack::OpenStack>,
    ) -> Arc<ApiContext> {
        let metrics = Arc::new(metrics::Metrics::with_collectors(collectors));
        metrics::observe_commits(&metrics, log.as_ref());
        Arc::new(ApiContext {
            dedupe: dedupe::Dedupe::new(settings.dedupe_window),
            ops,
            dispatcher,
            log,
            keys,
            container,
            settings,
            metrics,
            key_touch: auth::TouchThrottle::default(),
            openstack,
        })
    }
}

/// The router with every route; `server` adds the transport marker.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/v1/control/{op}", post(control::handle))
        .route("/api/v1/webhooks/st2", post(webhooks::st2))
        .route("/api/v1/webhooks/{*hook}", post(webhooks::custom))
        .route("/api/v1/stream", get(stream::sse))
        .route("/v1/trigger-instances/stream", get(stream::ndjson))
        .route("/metrics", get(metrics::handle))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(openstack::routes::router())
        .fallback(fault::not_found)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            server::read_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            metrics::track,
        ))
        .with_state(ctx)
}
