//! The trigger instance: what every source appends and every reader gets.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored trigger instance (StackStorm's TriggerInstanceDB, plus the
/// sensor and the log sequence number).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TriggerInstance {
    /// UUIDv7: its first 48 bits are the millisecond it was created.
    pub id: String,
    /// Position in the log (1, 2, ...), assigned when appended; 0 before.
    /// Not part of the stored body: the record header carries it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// The trigger ref dispatched to (`pack.name` or `pack.<uuid>`).
    pub trigger: String,
    /// The trigger type ref.
    pub trigger_type: String,
    /// The payload exactly as the sensor sent it.
    pub payload: Value,
    /// The trace tag (default `trigger_instance-<id>`).
    pub trace_tag: String,
    /// The trace context, when the sensor gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<Value>,
    /// The sensor that dispatched it (`None` for container-internal triggers).
    pub sensor: Option<String>,
    /// When the container accepted it, RFC 3339 with microseconds, UTC.
    pub occurrence_time: String,
    /// Processing status; `pending` until a consumer takes it.
    pub status: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TriggerInstance {
    /// A new pending instance with a fresh UUIDv7 id and the current time.
    pub fn new(
        trigger: String,
        trigger_type: String,
        payload: Value,
        sensor: Option<String>,
    ) -> Self {
        let id = Uuid::now_v7();
        TriggerInstance {
            id: id.to_string(),
            seq: 0,
            trigger,
            trigger_type,
            payload,
            trace_tag: format!("trigger_instance-{id}"),
            trace_context: None,
            sensor,
            occurrence_time: now_rfc3339(),
            status: "pending".into(),
        }
    }

    /// Decode a record's body, taking `seq` from its header.
    pub fn from_record(seq: u64, body: &[u8]) -> Result<TriggerInstance, serde_json::Error> {
        let mut inst: TriggerInstance = serde_json::from_slice(body)?;
        inst.seq = seq;
        Ok(inst)
    }

    /// The body to append (JSON without `seq`).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Serializing plain owned data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &WithoutSeq(self));
    }
}

/// Serializes an instance as stored: `seq` lives in the record header.
struct WithoutSeq<'a>(&'a TriggerInstance);

impl Serialize for WithoutSeq<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.seq == 0 {
            return self.0.serialize(s);
        }
        let mut copy = self.0.clone();
        copy.seq = 0;
        copy.serialize(s)
    }
}

/// The millisecond a UUIDv7 was made (`None` for other UUID versions).
pub fn uuid_v7_ms(id: &Uuid) -> Option<u64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let b = id.as_bytes();
    Some(u64::from_be_bytes([
        0, 0, b[0], b[1], b[2], b[3], b[4], b[5],
    ]))
}

/// Current UTC time as RFC 3339 with microsecond precision.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.microsecond() * 1000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch of an RFC 3339 time.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An RFC 3339 UTC time for milliseconds since the epoch.
pub fn ms_rfc3339(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether a stored body is the instance with this id: bodies start with
/// `{"id":"<uuid>"` (the field order of [`TriggerInstance`]), checked
/// without parsing; anything else is parsed.
pub fn body_has_id(body: &[u8], id: &str) -> bool {
    const PREFIX: &[u8] = b"{\"id\":\"";
    if let Some(rest) = body.strip_prefix(PREFIX) {
        return rest.starts_with(id.as_bytes()) && rest.get(id.len()) == Some(&b'"');
    }
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(body).is_ok_and(|i| i.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_no_seq_and_reads_back_with_it() {
        let mut i = TriggerInstance::new("p.t".into(), "p.t".into(), json!({"a": 1}), None);
        i.seq = 42;
        let mut body = Vec::new();
        i.encode_into(&mut body);
        assert!(!String::from_utf8_lossy(&body).contains("\"seq\""));
        let back = TriggerInstance::from_record(42, &body).unwrap();
        assert_eq!(back, i);
        let shown = serde_json::to_value(&back).unwrap();
        assert_eq!(shown["seq"], 42);
    }

    #[test]
    fn uuid_time_matches_creation() {
        let before = now_ms();
        let id = Uuid::now_v7();
        let ms = uuid_v7_ms(&id).unwrap();
        assert!(ms >= before && ms <= now_ms());
        assert_eq!(uuid_v7_ms(&Uuid::new_v4()), None);
        assert_eq!(rfc3339_ms(&ms_rfc3339(ms)), Some(ms));
    }
}
