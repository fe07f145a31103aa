//! Masakari's notification create schema, checked field by field
//! (`api/openstack/ha/schemas/notifications.py` and `payload.py`): both
//! levels `additionalProperties: false`, `type` ∈ COMPUTE_HOST | VM |
//! PROCESS, `hostname` 1–255 of `[a-zA-Z0-9-._]`, `generated_time` an
//! ISO 8601 time, `payload` string values (≤ 255) under keys of
//! `[a-zA-Z0-9-_:. ]{1,255}`, then the type's own payload schema.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{timefmt, wrapped, OsError, OsResult};

/// Notification types.
pub const TYPES: &[&str] = &["COMPUTE_HOST", "VM", "PROCESS"];
const FIELDS: &[&str] = &["type", "hostname", "generated_time", "payload"];

/// A create request that passed the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub kind: String,
    pub hostname: String,
    pub generated_time: OffsetDateTime,
    pub payload: Map<String, Value>,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> OsError {
    OsError::bad_request(format!("Invalid input for field/attribute {field}. {why}"))
}

fn string<'a>(n: &'a Map<String, Value>, field: &str) -> OsResult<&'a str> {
    match n.get(field) {
        None => Err(invalid(field, format!("'{field}' is a required property"))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(invalid(
            field,
            format!("Value: {other}. {other} is not of type 'string'"),
        )),
    }
}

fn length(field: &str, s: &str, min: usize, max: usize) -> OsResult<()> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(invalid(
            field,
            format!("Value: '{s}'. Its length must be between {min} and {max}"),
        ));
    }
    Ok(())
}

fn one_of(field: &str, s: &str, allowed: &[&str]) -> OsResult<()> {
    if !allowed.contains(&s) {
        return Err(invalid(
            field,
            format!("Value: '{s}'. '{s}' is not one of {allowed:?}"),
        ));
    }
    Ok(())
}

/// Check a `POST /v1/notifications` body.
pub fn check_create(body: &Value) -> OsResult<NewNotification> {
    let n = wrapped(body, "notification", FIELDS)?;
    let kind = string(n, "type")?;
    one_of("type", kind, TYPES)?;
    let hostname = string(n, "hostname")?;
    length("hostname", hostname, 1, 255)?;
    if let Some(c) = hostname
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._".contains(*c)))
    {
        return Err(invalid(
            "hostname",
            format!("Value: '{hostname}'. '{c}' does not match '^[a-zA-Z0-9-._]*$'"),
        ));
    }
    let gt = string(n, "generated_time")?;
    let generated_time = timefmt::parse(gt).ok_or_else(|| {
        invalid(
            "generated_time",
            format!("Value: '{gt}'. '{gt}' is not a 'date-time'"),
        )
    })?;
    let payload = match n.get("payload") {
        None => return Err(invalid("payload", "'payload' is a required property")),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            return Err(invalid(
                "payload",
                format!("Value: {other}. {other} is not of type 'object'"),
            ))
        }
    };
    for (k, v) in &payload {
        let key_ok = !k.is_empty()
            && k.chars().count() <= 255
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        if !key_ok {
            return Err(invalid("payload", format!("Additional properties are not allowed ('{k}' does not match '^[a-zA-Z0-9-_:. ]{{1,255}}$')")));
        }
        match v {
            Value::String(s) if s.chars().count() <= 255 => {}
            Value::String(_) => {
                return Err(invalid(
                    &format!("payload/{k}"),
                    "Its length must be at most 255",
                ))
            }
            other => {
                return Err(invalid(
                    &format!("payload/{k}"),
                    format!("Value: {other}. {other} is not of type 'string'"),
                ))
            }
        }
    }
    check_payload(kind, &payload)?;
    Ok(NewNotification {
        kind: kind.into(),
        hostname: hostname.into(),
        generated_time,
        payload,
    })
}

/// The type's payload schema (`schemas/payload.py`).
fn check_payload(kind: &str, p: &Map<String, Value>) -> OsResult<()> {
    // (field, required, allowed values or length bounds)
    enum Rule {
        OneOf(&'static [&'static str]),
        Len(usize, usize),
        Uuid,
    }
    let rules: &[(&str, bool, Rule)] = match kind {
        "COMPUTE_HOST" => &[
            ("event", true, Rule::OneOf(&["STARTED", "STOPPED"])),
            ("host_status", false, Rule::OneOf(&["NORMAL", "UNKNOWN"])),
            ("cluster_status", false, Rule::OneOf(&["ONLINE", "OFFLINE"])),
        ],
        "PROCESS" => &[
            ("process_name", true, Rule::Len(1, 4096)),
            ("event", true, Rule::OneOf(&["STARTED", "STOPPED"])),
        ],
        _ => &[
            ("instance_uuid", true, Rule::Uuid),
            ("vir_domain_event", true, Rule::Len(1, 255)),
            ("event", true, Rule::Len(1, 255)),
        ],
    };
    for k in p.keys() {
        if !rules.iter().any(|(f, _, _)| f == k) {
            let known: Vec<&str> = rules.iter().map(|(f, _, _)| *f).collect();
            return Err(invalid("payload", format!("Additional properties are not allowed ('{k}' was unexpected for a {kind} notification; allowed: {})", known.join(", "))));
        }
    }
    for (field, required, rule) in rules {
        let Some(v) = p.get(*field).and_then(Value::as_str) else {
            if *required {
                return Err(invalid(
                    "payload",
                    format!("'{field}' is a required property of a {kind} notification's payload"),
                ));
            }
            continue;
        };
        let path = format!("payload/{field}");
        match rule {
            Rule::OneOf(allowed) => one_of(&path, v, allowed)?,
            Rule::Len(min, max) => length(&path, v, *min, *max)?,
            Rule::Uuid => {
                if !super::is_uuid_like(v) {
                    return Err(invalid(
                        &path,
                        format!("Value: '{v}'. '{v}' is not a 'uuid'"),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(kind: &str, payload: Value) -> Value {
        json!({"notification": {"type": kind, "hostname": "host-1", "generated_time": "2026-12-01T10:00:00", "payload": payload}})
    }

    #[test]
    fn the_schema_accepts_each_type_and_refuses_what_masakari_refuses() {
        let ok = check_create(&body(
            "PROCESS",
            json!({"process_name": "nova-compute", "event": "STOPPED"}),
        ))
        .unwrap();
        assert_eq!(ok.kind, "PROCESS");
        check_create(&body(
            "COMPUTE_HOST",
            json!({"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}),
        ))
        .unwrap();
        check_create(&body("VM", json!({"instance_uuid": "4b1ea2a8-9b7a-4b1d-8ba3-4f1e2d1c2b3a", "vir_domain_event": "STOPPED_FAILED", "event": "LIFECYCLE"}))).unwrap();
        let refused = |b: Value, needle: &str| {
            let e = check_create(&b).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(
                e.message.contains(needle),
                "{} does not name {needle}",
                e.message
            );
        };
        refused(
            body("PROCESS", json!({"process_name": "x", "event": "stopped"})),
            "payload/event",
        );
        refused(body("PROCESS", json!({"event": "STOPPED"})), "process_name");
        refused(body("DISK", json!({})), "type");
        refused(
            body(
                "VM",
                json!({"instance_uuid": "nope", "vir_domain_event": "a", "event": "b"}),
            ),
            "uuid",
        );
        refused(
            body(
                "PROCESS",
                json!({"process_name": "x", "event": "STOPPED", "extra": "1"}),
            ),
            "extra",
        );
        refused(
            body("PROCESS", json!({"process_name": 1, "event": "STOPPED"})),
            "string",
        );
        let mut b = body("PROCESS", json!({"process_name": "x", "event": "STOPPED"}));
        b["notification"]["hostname"] = json!("bad host");
        refused(b.clone(), "hostname");
        b["notification"]["hostname"] = json!("h");
        b["notification"]["generated_time"] = json!("soon");
        refused(b.clone(), "generated_time");
        b["notification"]["generated_time"] = json!("2026-12-01T10:00:00");
        b["notification"]["host_name"] = json!("h");
        refused(b, "host_name");
        refused(json!({"notification": 1}), "notification");
    }
}
