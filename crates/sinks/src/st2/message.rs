//! The body st2's rules engine accepts: a pickled dict with exactly
//! `trigger`, `payload` and `trace_context` (st2's
//! `TriggerInstancePublisher` / `TriggerDispatcher` send
//! `{"trigger": ref, "payload": {...}, "trace_context": ...}`), published
//! with `content_type application/x-python-serialize` and
//! `content_encoding binary`. A JSON body would be acked and dropped by
//! st2's consumer, which accepts only pickle.

use eventlog::TriggerInstance;
use serde::Serialize;
use serde_json::Value;

/// `content_type` of the published message (kombu's name for pickle).
pub const CONTENT_TYPE: &str = "application/x-python-serialize";
/// `content_encoding` of the published message.
pub const CONTENT_ENCODING: &str = "binary";
/// The routing key st2 publishes trigger instances with.
pub const ROUTING_KEY: &str = "trigger_instance";

/// Why an instance could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot pickle trigger instance {id}: {source}")]
pub struct EncodeError {
    id: String,
    #[source]
    source: serde_pickle::Error,
}

#[derive(Serialize)]
struct TraceContext<'a> {
    trace_tag: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    trigger: &'a str,
    payload: &'a Value,
    trace_context: Option<TraceContext<'a>>,
}

/// The pickled body of `instance`: `trace_context` carries its trace tag
/// (`None` when it has none), so st2 traces continue from ours.
pub fn encode(instance: &TriggerInstance) -> Result<Vec<u8>, EncodeError> {
    let body = Body {
        trigger: &instance.trigger,
        payload: &instance.payload,
        trace_context: (!instance.trace_tag.is_empty()).then_some(TraceContext {
            trace_tag: &instance.trace_tag,
        }),
    };
    serde_pickle::to_vec(&body, serde_pickle::SerOptions::new()).map_err(|source| EncodeError {
        id: instance.id.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn instance(payload: Value, trace_tag: &str) -> TriggerInstance {
        let mut i = TriggerInstance::new(
            "examples.event".into(),
            "examples.event".into(),
            payload,
            Some("examples.Sample".into()),
        );
        i.trace_tag = trace_tag.into();
        i
    }

    /// Python's `pickle.loads` of our bytes must equal, type for type
    /// (True is not 1, 1.0 is not 1), the dict st2 builds.
    const CHECK_PY: &str = r#"
import json, pickle, sys
raw = sys.stdin.buffer.read()
n = int.from_bytes(raw[:4], "big")
got = pickle.loads(raw[4:4 + n])
want = json.loads(raw[4 + n:].decode())
def same(a, b, path):
    if type(a) is not type(b):
        sys.exit("%s: %r (%s) != %r (%s)" % (path, a, type(a).__name__, b, type(b).__name__))
    if isinstance(a, dict):
        if list(sorted(a)) != list(sorted(b)):
            sys.exit("%s: keys %r != %r" % (path, sorted(a), sorted(b)))
        for k in a:
            same(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        if len(a) != len(b):
            sys.exit("%s: %d items != %d" % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (path, i))
    elif a != b:
        sys.exit("%s: %r != %r" % (path, a, b))
same(got, want, "body")
print("ok")
"#;

    fn python_agrees(bytes: &[u8], want: &Value) -> Result<(), String> {
        let mut child = Command::new("python3")
            .args(["-c", CHECK_PY])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut input = (bytes.len() as u32).to_be_bytes().to_vec();
        input.extend_from_slice(bytes);
        input.extend_from_slice(want.to_string().as_bytes());
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(&input)
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() && out.stdout.starts_with(b"ok") {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    #[test]
    fn python_unpickles_exactly_the_dict_st2_builds() {
        let payload = json!({
            "text": "héllo ✓ \u{1F600} \"quoted\" \\ \n",
            "empty": "",
            "ints": [0, -1, 1, i64::MIN, i64::MAX, u64::MAX],
            "floats": [0.5, -1.25e300, 1e-300, 3.0],
            "bools": [true, false],
            "none": null,
            "nested": {"list": [[1, [2, [3]]], {"k": {"deeper": ["x"]}}], "obj": {}},
        });
        let bytes = encode(&instance(payload.clone(), "trigger_instance-abc")).unwrap();
        let want = json!({
            "trigger": "examples.event",
            "payload": payload,
            "trace_context": {"trace_tag": "trigger_instance-abc"},
        });
        python_agrees(&bytes, &want).unwrap();
        // No trace tag: trace_context is None.
        let bytes = encode(&instance(json!({}), "")).unwrap();
        python_agrees(
            &bytes,
            &json!({"trigger": "examples.event", "payload": {}, "trace_context": null}),
        )
        .unwrap();
    }

    #[test]
    fn a_wrong_expectation_is_caught() {
        // The checker can fail: 1 (int) is not 1.0 (float), True is not 1.
        let bytes = encode(&instance(json!({"n": 1, "b": true}), "t")).unwrap();
        let want = json!({"trigger": "examples.event", "payload": {"n": 1.0, "b": true}, "trace_context": {"trace_tag": "t"}});
        assert!(python_agrees(&bytes, &want).is_err());
        let want = json!({"trigger": "examples.event", "payload": {"n": 1, "b": 1}, "trace_context": {"trace_tag": "t"}});
        assert!(python_agrees(&bytes, &want).is_err());
    }
}
