//! The interface every destination module implements: deliver a batch,
//! say how much of it the destination confirmed and whether the rest is
//! worth retrying.

use std::borrow::Cow;
use std::time::Duration;

use eventlog::TriggerInstance;

use crate::spec::{SinkKind, SinkSpec};
use crate::{file::FileSink, http::HttpSink, nats::NatsSink, st2::St2Sink, SinkError};

/// One instance on its way out.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its log sequence number.
    pub seq: u64,
    /// The instance id.
    pub id: String,
    /// Its trigger ref.
    pub trigger: String,
    /// The instance as JSON (with `seq`), encoded once.
    pub json: Vec<u8>,
    /// When the log accepted it (epoch ms), for the latency histogram.
    pub ts_ms: u64,
}

/// The fields a sink looks at, borrowed from a stored body: selecting and
/// addressing an instance needs no decoding of its payload.
#[derive(Debug, serde::Deserialize)]
pub struct Head<'a> {
    /// Instance id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Trigger ref.
    #[serde(borrow)]
    pub trigger: Cow<'a, str>,
    /// Trigger type ref.
    #[serde(borrow)]
    pub trigger_type: Cow<'a, str>,
    /// Dispatching sensor.
    #[serde(borrow, default)]
    pub sensor: Option<Cow<'a, str>>,
}

impl Item {
    /// An item from a stored record whose [`Head`] was read: its JSON is
    /// the body with `"seq"` spliced in, not a second serialization.
    pub fn from_record(seq: u64, head: &Head<'_>, body: &[u8], ts_ms: u64) -> Item {
        let mut json = Vec::with_capacity(body.len() + 28);
        json.extend_from_slice(b"{\"seq\":");
        json.extend_from_slice(seq.to_string().as_bytes());
        if body[1..].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
            json.push(b',');
        }
        json.extend_from_slice(&body[1..]);
        Item {
            seq,
            id: head.id.to_string(),
            trigger: head.trigger.to_string(),
            json,
            ts_ms,
        }
    }

    /// An item for a decoded `instance`, accepted at `ts_ms`.
    pub fn new(instance: &TriggerInstance, ts_ms: u64) -> Item {
        Item {
            seq: instance.seq,
            id: instance.id.clone(),
            trigger: instance.trigger.clone(),
            // Plain owned data serializes infallibly.
            json: serde_json::to_vec(instance).unwrap_or_default(),
            ts_ms,
        }
    }

    /// The whole instance as a JSON value (dead letters, StackStorm's body).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_json_is_the_instance_with_its_seq() {
        let mut i = TriggerInstance::new(
            "p.t".into(),
            "p.t".into(),
            serde_json::json!({"a": 1}),
            Some("p.S".into()),
        );
        let mut body = Vec::new();
        i.encode_into(&mut body);
        i.seq = 42;
        let head: Head = serde_json::from_slice(&body).unwrap();
        assert_eq!(head.sensor.as_deref(), Some("p.S"));
        let it = Item::from_record(42, &head, &body, 0);
        assert_eq!(
            (it.id.as_str(), it.trigger.as_str()),
            (i.id.as_str(), "p.t")
        );
        let back: TriggerInstance = serde_json::from_slice(&it.json).unwrap();
        assert_eq!(back, i);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&it.json).unwrap(),
            serde_json::to_value(&i).unwrap()
        );
    }
}

/// A delivery that did not fully succeed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Items at the head of the batch the destination did confirm.
    pub delivered: usize,
    /// Items after those that this failure covers (≥ 1): one for a
    /// per-message destination, the rest of the batch for an all-or-nothing one.
    pub failed: usize,
    /// Worth trying again (timeouts, 5xx, 429, connection errors).
    pub retryable: bool,
    /// The destination itself is unreachable (connection refused or lost):
    /// nothing is wrong with the instance, so it is retried until the
    /// destination is back and never dead-lettered for it.
    pub unavailable: bool,
    /// The peer asked to wait this long (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// What went wrong, for `sink list`, the dead letter and the log.
    pub message: String,
}

impl Failure {
    /// A retryable failure of the whole batch.
    pub fn retry(batch: usize, message: impl Into<String>) -> Failure {
        Failure {
            delivered: 0,
            failed: batch.max(1),
            retryable: true,
            unavailable: false,
            retry_after: None,
            message: message.into(),
        }
    }

    /// The destination cannot be reached: retried without counting
    /// towards `max_attempts`.
    pub fn unavailable(batch: usize, message: impl Into<String>) -> Failure {
        Failure {
            unavailable: true,
            ..Failure::retry(batch, message)
        }
    }

    /// A permanent failure of the whole batch.
    pub fn permanent(batch: usize, message: impl Into<String>) -> Failure {
        Failure {
            retryable: false,
            ..Failure::retry(batch, message)
        }
    }
}

/// A destination, one per destination module.
pub enum Destination {
    /// `type: file`.
    File(FileSink),
    /// `type: http`.
    Http(HttpSink),
    /// `type: nats`.
    Nats(NatsSink),
    /// `type: st2`.
    St2(St2Sink),
}

impl Destination {
    /// Build the destination (checks the settings; connects lazily).
    pub fn new(spec: &SinkSpec) -> Result<Destination, SinkError> {
        Ok(match &spec.kind {
            SinkKind::File(s) => Destination::File(FileSink::new(s.clone())?),
            SinkKind::Http(s) => Destination::Http(HttpSink::new(s.clone(), spec.batch_max)?),
            SinkKind::Nats(s) => Destination::Nats(NatsSink::new(s.clone(), spec.batch_max)),
            SinkKind::St2(s) => Destination::St2(St2Sink::new(s.clone())?),
        })
    }

    /// Deliver `items` in order; `Ok` once the destination confirmed all.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), Failure> {
        match self {
            Destination::File(d) => d.deliver(items).await,
            Destination::Http(d) => d.deliver(items).await,
            Destination::Nats(d) => d.deliver(items).await,
            Destination::St2(d) => d.deliver(items).await,
        }
    }
}
