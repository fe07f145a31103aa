//! The OpenStack front doors: Senlin receivers ([`receivers`],
//! [`trigger`]) and Masakari segments, hosts and notifications
//! ([`segments`], [`notifications`], with [`schema`] and [`lifecycle`]),
//! served under `/v1` beside a version-discovery document
//! ([`discovery`]) so the real `openstacksdk` client works against us.
//!
//! The logic is here, free of HTTP types, so `sensorctl` (through the
//! control operations) and the routes ([`routes`]) share one
//! implementation. Records live in the store's [`store::OpenStackTables`];
//! every accepted event becomes a durable trigger instance before the
//! caller hears 2xx.

pub mod discovery;
pub mod error;
pub mod lifecycle;
pub mod listing;
pub mod notifications;
pub mod receivers;
pub mod routes;
pub mod schema;
pub mod segments;
pub mod timefmt;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use container::dispatcher::Dispatcher;

pub use error::{OsError, OsResult};

/// `core.receiver.trigger`: a receiver was triggered.
pub const RECEIVER_TRIGGER: &str = "core.receiver.trigger";
/// `core.notification`: a Masakari notification was accepted.
pub const NOTIFICATION: &str = "core.notification";
/// `core.notification.status`: a notification's status changed.
pub const NOTIFICATION_STATUS: &str = "core.notification.status";

/// `api.receivers` and `notifications:` settings (documented in
/// conf/sensorcontainer.yaml).
#[derive(Debug, Clone)]
pub struct OpenStackSettings {
    /// `api.public_url`: the base of every receiver's `alarm_url`; `None`
    /// = `http(s)://` + the first TCP address actually bound (see
    /// [`OpenStack::set_listen_url`]).
    pub public_url: Option<String>,
    /// `api.receivers.require_signature`: a webhook trigger must carry
    /// `X-Receiver-Signature: sha256=<hex HMAC-SHA256 of the body>` made
    /// with the receiver's secret.
    pub require_signature: bool,
    /// `notifications.duplicate_detection_interval` (default 180 s).
    pub duplicate_detection_interval: Duration,
    /// `notifications.expired_interval` (default 24 h): unfinished
    /// notifications whose `generated_time` is older become `failed`.
    pub expired_interval: Duration,
    /// `notifications.check_expired_interval` (default 600 s): how often
    /// that is checked.
    pub check_expired_interval: Duration,
}

impl Default for OpenStackSettings {
    fn default() -> Self {
        OpenStackSettings {
            public_url: None,
            require_signature: false,
            duplicate_detection_interval: Duration::from_secs(180),
            expired_interval: Duration::from_secs(86_400),
            check_expired_interval: Duration::from_secs(600),
        }
    }
}

/// Who asked: the API key's id on TCP, `sensorctl` on the control socket.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Stored as the receiver's `user`.
    pub user: String,
}

impl Caller {
    /// The operator on the control socket.
    pub fn operator() -> Caller {
        Caller {
            user: "sensorctl".into(),
        }
    }
}

/// The front doors' state: tables, dispatcher, settings, and the lock
/// that makes a notification's duplicate check and its insert one step.
pub struct OpenStack {
    pub(crate) tables: store::OpenStackTables,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) settings: OpenStackSettings,
    /// Held across duplicate check → instance durable → record stored of
    /// one notification (and across status changes). The awaits under it
    /// are on our own log only, never on a client.
    pub(crate) notification_lock: tokio::sync::Mutex<()>,
    /// The base of `alarm_url`s in force.
    public_url: std::sync::RwLock<String>,
}

impl OpenStack {
    /// The front doors over the store's tables.
    pub fn new(
        tables: store::OpenStackTables,
        dispatcher: Arc<Dispatcher>,
        settings: OpenStackSettings,
    ) -> Arc<OpenStack> {
        let url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:9101".into());
        Arc::new(OpenStack {
            tables,
            dispatcher,
            settings,
            notification_lock: tokio::sync::Mutex::new(()),
            public_url: std::sync::RwLock::new(url),
        })
    }

    /// Where the TCP API listens (`http(s)://HOST:PORT`): the base of
    /// `alarm_url`s unless `api.public_url` is set. An unspecified
    /// address (`0.0.0.0`, `[::]`) is named by the host's name, as Senlin
    /// falls back to `socket.gethostname()`.
    pub fn set_listen_url(&self, addr: std::net::SocketAddr, tls: bool) {
        if self.settings.public_url.is_some() {
            return;
        }
        let host = if addr.ip().is_unspecified() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let scheme = if tls { "https" } else { "http" };
        let mut url = self.public_url.write().unwrap_or_else(|p| p.into_inner());
        *url = format!("{scheme}://{host}:{}", addr.port());
    }

    /// The base of `alarm_url`s in force.
    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .map(|u| u.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The settings in force.
    pub fn settings(&self) -> &OpenStackSettings {
        &self.settings
    }
}

/// 16 bytes from the operating system's CSPRNG, as a UUID-shaped string:
/// all 128 bits random (a v4 UUID has 122), because a receiver's id is
/// the capability its `alarm_url` grants.
pub fn random_id() -> Result<String, OsError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| OsError::internal(format!("no randomness: {e}")))?;
    Ok(uuid::Uuid::from_bytes(b).hyphenated().to_string())
}

/// Whether `s` looks like a UUID (Senlin's and Masakari's `is_uuid_like`).
pub fn is_uuid_like(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok()
}

/// The object under `key` of a request body (`{"receiver": {...}}`,
/// `{"notification": {...}}`), refusing fields not in `allowed` (the
/// services' `additionalProperties: false`).
pub(crate) fn wrapped<'a>(
    body: &'a serde_json::Value,
    key: &str,
    allowed: &[&str],
) -> OsResult<&'a serde_json::Map<String, serde_json::Value>> {
    let Some(serde_json::Value::Object(r)) = body.get(key) else {
        return Err(OsError::bad_request(format!(
            "Malformed request data, missing '{key}' key in request body."
        )));
    };
    if let Some(k) = r.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(OsError::bad_request(format!(
            "Invalid input for field/attribute {key}: additional properties are not allowed ('{k}' was unexpected; allowed: {})",
            allowed.join(", ")
        )));
    }
    if let Some(extra) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != key))
    {
        return Err(OsError::bad_request(format!(
            "Invalid input: additional properties are not allowed ('{extra}' was unexpected; the body is {{\"{key}\": {{...}}}})"
        )));
    }
    Ok(r)
}
