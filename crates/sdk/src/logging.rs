//! The log bridge: a minimal `tracing` subscriber that forwards events to
//! the container as `log` notifications (so they appear in the container
//! log, tagged with the sensor ref). Spans are not tracked.
//!
//! Installed once per process as the global default (unless something else
//! already is); each connection [`attach`]es itself as the sink. With no
//! open connection, events go to stderr, which the container captures too.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::client::Client;

static SINK: Mutex<Option<Client>> = Mutex::new(None);
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Parse a level name as the Python wrapper's `SENSOR_LOG_LEVEL` does
/// (`debug`, `info`, `warning`/`warn`, `error`, `critical`; any case).
pub fn parse_level(text: &str) -> Option<Level> {
    match text.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warning" | "warn" => Some(Level::WARN),
        "error" | "critical" | "fatal" => Some(Level::ERROR),
        _ => None,
    }
}

/// The protocol's name for a `tracing` level.
pub(crate) fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        _ => "debug",
    }
}

/// Install the bridge as the global default subscriber (first call only).
/// Returns whether the bridge is the global subscriber.
pub(crate) fn install(level: Level) -> bool {
    *INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(Bridge {
            max: LevelFilter::from_level(level),
        })
        .is_ok()
    })
}

/// Route events to this connection (replacing the previous one).
pub(crate) fn attach(client: Option<Client>) {
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = client;
}

struct Bridge {
    max: LevelFilter,
}

/// Renders an event: its message, then ` key=value` for other fields.
#[derive(Default)]
pub(crate) struct Render {
    pub(crate) message: String,
    fields: String,
}

impl Render {
    pub(crate) fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(self.fields.trim_start());
        }
        self.message
    }
}

impl Visit for Render {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && self.max >= *metadata.level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut render = Render::default();
        event.record(&mut render);
        let message = render.finish();
        let level = level_name(meta.level());
        let client = SINK.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sent = client.is_some_and(|c| c.log(level, &message, Some(meta.target())));
        if !sent {
            let _ = writeln!(
                std::io::stderr(),
                "{} {}: {message}",
                level.to_ascii_uppercase(),
                meta.target()
            );
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// The bridge as a plain subscriber, for tests that scope it with
/// `tracing::subscriber::with_default`.
#[cfg(test)]
pub(crate) fn tests_bridge(level: Level) -> impl Subscriber {
    Bridge {
        max: LevelFilter::from_level(level),
    }
}
