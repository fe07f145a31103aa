//! What a sink is, as configured under `sinks:` in
//! `conf/sensorcontainer.yaml` (every key is documented there; the `cli`
//! crate parses the file into these types).

use std::path::PathBuf;
use std::time::Duration;

use crate::filter::Selector;

/// One configured sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSpec {
    /// Unique name (`[A-Za-z0-9_-]`, 1-64): the cursor is `sink.<name>`.
    pub name: String,
    /// Which instances it takes (`triggers:`, `sensors:` globs).
    pub selector: Selector,
    /// Instances per delivery (a JSON array for `http` when > 1; the
    /// publish window for `nats`).
    pub batch_max: usize,
    /// Retries of a failing delivery.
    pub retry: RetryPolicy,
    /// Where a new sink's cursor starts.
    pub start: Start,
    /// The destination.
    pub kind: SinkKind,
}

impl SinkSpec {
    /// The log cursor of this sink.
    pub fn cursor_name(&self) -> String {
        cursor_name(&self.name)
    }
}

/// The log cursor of the sink named `name`.
pub fn cursor_name(name: &str) -> String {
    format!("{}{name}", eventlog::cursor::SINK_PREFIX)
}

/// Whether `name` can name a sink.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Where a new sink starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// After the newest instance (`start: latest`, the default).
    #[default]
    Latest,
    /// At the oldest instance the log still holds.
    Earliest,
}

/// Exponential backoff between attempts of one delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the first retry.
    pub initial_delay: Duration,
    /// Each wait is this many times the previous one.
    pub multiplier: f64,
    /// Longest wait (a `Retry-After` may ask for more).
    pub max_delay: Duration,
    /// Attempts (the first one included) before an instance is
    /// dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            max_attempts: 10,
        }
    }
}

/// The destinations.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// JSON Lines in a local file.
    File(FileSpec),
    /// POST to an HTTP endpoint.
    Http(HttpSpec),
    /// Publish to NATS JetStream.
    Nats(NatsSpec),
    /// Publish onto StackStorm's RabbitMQ exchange.
    St2(St2Spec),
}

impl SinkKind {
    /// The `type:` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::File(_) => "file",
            SinkKind::Http(_) => "http",
            SinkKind::Nats(_) => "nats",
            SinkKind::St2(_) => "st2",
        }
    }

    /// `batch_max` when the config gives none.
    pub fn default_batch(type_name: &str) -> usize {
        match type_name {
            "http" => 1,
            "nats" => 1024,
            "st2" => 256,
            _ => 512,
        }
    }
}

/// `type: file`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    /// The JSON Lines file (created 0600).
    pub path: PathBuf,
    /// Rotate before the file would grow past this.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` newest … `path.<keep>`).
    pub keep: usize,
}

/// How the `http` sink shapes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpFormat {
    /// The instance as JSON (an array of them when `batch_max` > 1).
    #[default]
    Json,
    /// StackStorm's webhook: `{"trigger", "payload"}` to
    /// `<url>/api/v1/webhooks/st2`, one instance per request.
    St2,
}

/// `type: http`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// `http://` or `https://` URL (the st2 API base for `format: st2`).
    pub url: String,
    /// Request shape.
    pub format: HttpFormat,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// `St2-Api-Key` for `format: st2`.
    pub api_key: Option<String>,
    /// TCP (+ TLS) connect deadline.
    pub connect_timeout: Duration,
    /// Whole-request deadline.
    pub request_timeout: Duration,
    /// Extra PEM CA certificates to trust (beside the system's).
    pub ca_cert: Option<PathBuf>,
}

/// `type: nats`.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsSpec {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Subjects are `<subject_prefix>.<trigger ref>`.
    pub subject_prefix: String,
    /// Connect deadline.
    pub connect_timeout: Duration,
    /// Deadline of each publish acknowledgement.
    pub ack_timeout: Duration,
    /// Create (or update) this stream before publishing.
    pub create_stream: Option<StreamSpec>,
}

/// `create_stream:` of a `nats` sink.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// Stream name.
    pub name: String,
    /// Subjects it captures (default `<subject_prefix>.>`).
    pub subjects: Vec<String>,
    /// Discard messages older than this (zero = keep).
    pub max_age: Duration,
    /// Keep at most this many bytes (0 = no limit).
    pub max_bytes: u64,
    /// The server drops a repeated `Nats-Msg-Id` within this window.
    pub duplicate_window: Duration,
}

/// `type: st2`: StackStorm's bus. The broker comes from the `st2:` section
/// (its st2.conf's `[messaging]`, or set there directly).
#[derive(Debug, Clone, PartialEq)]
pub struct St2Spec {
    /// AMQP URLs (`amqp://` or `amqps://`) in failover order.
    pub urls: Vec<String>,
    /// Exchange prefix: instances go to `<prefix>.trigger_instances_dispatch`.
    pub prefix: String,
    /// TCP + AMQP handshake deadline per URL.
    pub connect_timeout: Duration,
    /// Deadline of each publisher confirm.
    pub ack_timeout: Duration,
    /// Extra PEM CA certificates to trust for `amqps://`.
    pub ca_cert: Option<PathBuf>,
}

impl St2Spec {
    /// The exchange st2's rules engine reads trigger instances from.
    pub fn exchange(&self) -> String {
        format!("{}.trigger_instances_dispatch", self.prefix)
    }
}
