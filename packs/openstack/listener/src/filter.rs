//! oslo.messaging's `NotificationFilter`: every configured field must
//! match; regexes match at the start of the value (Python's `re.match`);
//! in the `context`, `metadata` and `payload` maps a missing key or a
//! non-string value is a mismatch.

use regex::Regex;
use serde_json::{Map, Value};

/// The compiled filter (empty = everything matches).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    event_type: Option<Regex>,
    publisher_id: Option<Regex>,
    context: Vec<(String, Regex)>,
    metadata: Vec<(String, Regex)>,
    payload: Vec<(String, Regex)>,
}

/// `re.match`: anchored at the start only.
fn anchored(key: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})")).map_err(|e| format!("{key}: bad regex '{pattern}': {e}"))
}

fn map(key: &str, v: &Value) -> Result<Vec<(String, Regex)>, String> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Object(m) => m
            .iter()
            .map(|(k, p)| {
                let p = p
                    .as_str()
                    .ok_or_else(|| format!("{key}.{k}: a regex string, got {p}"))?;
                Ok((k.clone(), anchored(&format!("{key}.{k}"), p)?))
            })
            .collect(),
        other => Err(format!("{key}: a map of key: regex, got {other}")),
    }
}

impl Filter {
    /// From the pack config's `filters:` (errors name the key below it).
    pub fn from_config(v: &Value) -> Result<Filter, String> {
        let one = |key: &str| -> Result<Option<Regex>, String> {
            match &v[key] {
                Value::Null => Ok(None),
                Value::String(p) => anchored(key, p).map(Some),
                other => Err(format!("{key}: a regex string, got {other}")),
            }
        };
        Ok(Filter {
            event_type: one("event_type")?,
            publisher_id: one("publisher_id")?,
            context: map("context", &v["context"])?,
            metadata: map("metadata", &v["metadata"])?,
            payload: map("payload", &v["payload"])?,
        })
    }

    /// Whether a notification passes.
    pub fn matches(
        &self,
        event_type: &str,
        publisher_id: &str,
        context: &Map<String, Value>,
        metadata: &Value,
        payload: &Value,
    ) -> bool {
        let in_map = |rules: &[(String, Regex)], m: Option<&Map<String, Value>>| {
            rules.iter().all(|(k, re)| {
                m.and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .is_some_and(|s| re.is_match(s))
            })
        };
        self.event_type.as_ref().is_none_or(|re| re.is_match(event_type))
            && self.publisher_id.as_ref().is_none_or(|re| re.is_match(publisher_id))
            && in_map(&self.context, Some(context))
            && in_map(&self.metadata, metadata.as_object())
            && in_map(&self.payload, payload.as_object())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oslo_semantics() {
        let f = Filter::from_config(&json!({
            "event_type": "compute\\.instance\\.", "payload": {"state": "act"}
        }))
        .unwrap();
        let ctx = Map::new();
        let md = json!({});
        assert!(f.matches("compute.instance.create.end", "p", &ctx, &md, &json!({"state": "active"})));
        // Anchored at the start only.
        assert!(!f.matches("x.compute.instance.create", "p", &ctx, &md, &json!({"state": "active"})));
        // Missing key, non-string value: no match.
        assert!(!f.matches("compute.instance.a", "p", &ctx, &md, &json!({})));
        assert!(!f.matches("compute.instance.a", "p", &ctx, &md, &json!({"state": 1})));
        assert!(Filter::default().matches("any", "p", &ctx, &md, &json!(null)));
        let e = Filter::from_config(&json!({"context": {"user": "("}})).unwrap_err();
        assert!(e.starts_with("context.user: bad regex"), "{e}");
    }
}
