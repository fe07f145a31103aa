//! `GET /metrics` in the Prometheus text format, produced by
//! `prometheus-client` (never hand-formatted).
//!
//! Kept as they happen: HTTP requests by route, method and status, their
//! latency, refused connections, group-commit batch sizes and latencies.
//! Read at each scrape: every sensor's state, restarts, dispatched,
//! validation failures and rejections; the log's bytes, segments, records
//! and cursor lags; the process's RSS and open file descriptors.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use container::status::StatusSnapshot;
use eventlog::{EventLog, LogStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::ApiContext;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// What a scrape reads fresh.
#[derive(Debug, Default)]
struct Snapshot {
    sensors: Vec<(String, StatusSnapshot)>,
    log: Option<LogStats>,
    rss_bytes: u64,
    open_fds: u64,
}

#[derive(Debug, Default)]
struct Scraped(Arc<Mutex<Snapshot>>);

/// The metrics of one container.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    refused: Counter,
    commit_records: Histogram,
    commit_seconds: Histogram,
    snapshot: Arc<Mutex<Snapshot>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Metrics {
        Metrics::with_collectors(Vec::new())
    }

    /// Fresh metrics, plus collectors of other crates (the sinks') read
    /// at each scrape.
    pub fn with_collectors(extra: Vec<Box<dyn Collector>>) -> Metrics {
        let mut registry = Registry::with_prefix("sensorcontainer");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let refused = Counter::default();
        let commit_records = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        let commit_seconds = Histogram::new(exponential_buckets(0.00005, 2.0, 18));
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed at once because api.max_connections were open",
            refused.clone(),
        );
        registry.register(
            "log_commit_records",
            "Records per group commit (one write + one fdatasync)",
            commit_records.clone(),
        );
        registry.register(
            "log_commit_duration_seconds",
            "Time of one group commit's write + fdatasync",
            commit_seconds.clone(),
        );
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        registry.register_collector(Box::new(Scraped(snapshot.clone())));
        for c in extra {
            registry.register_collector(c);
        }
        Metrics {
            registry,
            requests,
            latency,
            refused,
            commit_records,
            commit_seconds,
            snapshot,
        }
    }

    /// A connection was refused over the limit.
    pub fn connection_refused(&self) {
        self.refused.inc();
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Feed the log's group commits into the histograms.
pub fn observe_commits(metrics: &Arc<Metrics>, log: &dyn EventLog) {
    let m = Arc::downgrade(metrics);
    log.set_commit_observer(Box::new(move |records, took| {
        if let Some(m) = m.upgrade() {
            m.commit_records.observe(records as f64);
            m.commit_seconds.observe(took.as_secs_f64());
        }
    }));
}

impl Collector for Scraped {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let states = [
            "starting", "running", "backoff", "failed", "stopped", "disabled",
        ];
        {
            let mut m = enc.encode_descriptor(
                "sensor_state",
                "1 for the state each supervised sensor is in",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (sensor, st) in &snap.sensors {
                let current = serde_json::to_value(st.state).ok();
                for s in states {
                    let v = i64::from(current.as_ref().and_then(|c| c.as_str()) == Some(s));
                    let labels = [("sensor", sensor.as_str()), ("state", s)];
                    ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        type Pick = fn(&StatusSnapshot) -> u64;
        let counters: [(&str, &str, Pick); 4] = [
            ("sensor_restarts", "Restarts of each sensor", |s| {
                s.restarts as u64
            }),
            (
                "sensor_dispatched",
                "Trigger instances accepted from each sensor",
                |s| s.dispatched,
            ),
            (
                "sensor_validation_failures",
                "Dispatches refused by payload validation",
                |s| s.validation_failures,
            ),
            (
                "sensor_rejected",
                "Dispatches refused for any other reason (unknown trigger, bad params)",
                |s| s.rejected,
            ),
        ];
        for (name, help, pick) in counters {
            let mut m = enc.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (sensor, st) in &snap.sensors {
                ConstCounter::new(pick(st))
                    .encode(m.encode_family(&[("sensor", sensor.as_str())])?)?;
            }
        }
        let mut gauges: Vec<(&str, &str, u64)> = vec![
            (
                "process_resident_memory_bytes",
                "Resident set size",
                snap.rss_bytes,
            ),
            ("process_open_fds", "Open file descriptors", snap.open_fds),
        ];
        if let Some(log) = &snap.log {
            gauges.extend([
                (
                    "log_bytes",
                    "Bytes of the trigger-instance log's segments",
                    log.bytes,
                ),
                (
                    "log_segments",
                    "Segment files of the trigger-instance log",
                    log.segment_count as u64,
                ),
                (
                    "log_records",
                    "Trigger instances kept in the log",
                    log.records,
                ),
                (
                    "log_last_seq",
                    "Newest durable sequence number",
                    log.last_seq.unwrap_or(0),
                ),
            ]);
            let mut m = enc.encode_descriptor(
                "log_cursor_lag",
                "Records appended after each consumer cursor",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for c in &log.cursors {
                ConstGauge::new(c.lag as i64)
                    .encode(m.encode_family(&[("cursor", c.name.as_str())])?)?;
            }
        }
        for (name, help, v) in gauges {
            let m = enc.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            ConstGauge::new(v as i64).encode(m)?;
        }
        Ok(())
    }
}

fn process_stats() -> (u64, u64) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (rss, fds)
}

/// `GET /metrics`.
pub async fn handle(State(ctx): State<Arc<ApiContext>>) -> Response {
    let sensors = match &ctx.container {
        Some(c) => c.statuses().await.into_iter().collect(),
        None => Vec::new(),
    };
    let (rss_bytes, open_fds) = process_stats();
    {
        let mut snap = ctx
            .metrics
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *snap = Snapshot {
            sensors,
            log: Some(ctx.log.stats()),
            rss_bytes,
            open_fds,
        };
    }
    match ctx.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
            .into_response(),
    }
}

/// The route label of a path: the route template, so label values stay few.
fn route_of(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/api/v1/webhooks/st2" => "/api/v1/webhooks/st2",
        "/api/v1/stream" => "/api/v1/stream",
        "/v1/trigger-instances/stream" => "/v1/trigger-instances/stream",
        p if p.starts_with("/api/v1/webhooks/") => "/api/v1/webhooks/{hook}",
        p if p.starts_with("/v1/control/") => "/v1/control/{op}",
        _ => "other",
    }
}

/// Middleware: count every request and time it.
pub async fn track(State(ctx): State<Arc<ApiContext>>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = &ctx.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            route: route.into(),
            method,
            status: resp.status().as_u16().to_string(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels {
            route: route.into(),
        })
        .observe(started.elapsed().as_secs_f64());
    resp
}
