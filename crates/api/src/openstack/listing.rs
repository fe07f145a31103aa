//! Sorting and paging of list answers, over the records' API views.
//!
//! Senlin: `sort=key[:dir],...`; `asc` puts nulls first and `desc` last
//! (its `asc-nullsfirst` / `desc-nullslast`), `id asc` breaks ties.
//! Masakari: `sort_key`/`sort_dir` pairs, `created_at desc` by default,
//! `created_at, id` as tie-breakers. Both page with `limit` and a
//! `marker` (the last item seen): the page is what follows the marker in
//! that order.

use std::cmp::Ordering;

use serde_json::Value;

use super::OsError;

/// One sort key and its direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field of the API view.
    pub key: String,
    /// Descending.
    pub desc: bool,
}

impl SortKey {
    /// Ascending on `key`.
    pub fn asc(key: &str) -> SortKey {
        SortKey {
            key: key.into(),
            desc: false,
        }
    }
}

/// Parse Senlin's `sort=key[:dir],...` against the allowed keys.
pub fn parse_senlin_sort(sort: &str, allowed: &[&str]) -> Result<Vec<SortKey>, OsError> {
    let mut keys = Vec::new();
    for part in sort.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, dir) = match part.split_once(':') {
            Some((k, d)) => (k.trim(), d.trim()),
            None => (part, "asc"),
        };
        if !allowed.contains(&key) {
            return Err(OsError::bad_request(format!(
                "Unsupported sort key '{key}' (one of: {})",
                allowed.join(", ")
            )));
        }
        let desc = match dir {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(OsError::bad_request(format!(
                    "Unsupported sort dir '{other}' for '{key}' (asc or desc)"
                )))
            }
        };
        keys.push(SortKey {
            key: key.into(),
            desc,
        });
    }
    Ok(keys)
}

/// Order JSON values: nulls (and missing) before everything, then bools,
/// numbers, strings (byte order), anything else by its JSON text.
fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) if rank(a) == 4 && rank(b) == 4 => x.to_string().cmp(&y.to_string()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Sort `items` by `keys`: nulls first ascending, last descending.
pub fn sort(items: &mut [Value], keys: &[SortKey]) {
    items.sort_by(|a, b| {
        for k in keys {
            let o = cmp_values(a.get(&k.key), b.get(&k.key));
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// The page after `marker` (matched on any of `id_fields`) of at most
/// `limit`, and whether more followed it. An unknown marker is refused:
/// silently restarting from the top would make a pager loop for ever.
pub fn page(
    items: Vec<Value>,
    id_fields: &[&str],
    marker: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<Value>, bool), OsError> {
    let start = match marker {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|i| {
                    id_fields.iter().any(|f| match i.get(*f) {
                        Some(Value::String(s)) => s == m,
                        Some(Value::Number(n)) => n.to_string() == m,
                        _ => false,
                    })
                })
                .ok_or_else(|| OsError::bad_request(format!("Marker {m} could not be found.")))?
                + 1
        }
    };
    let limit = limit.unwrap_or(usize::MAX);
    let more = items.len().saturating_sub(start) > limit;
    Ok((items.into_iter().skip(start).take(limit).collect(), more))
}

/// A non-negative integer query parameter.
pub fn non_negative(name: &str, v: &str) -> Result<usize, OsError> {
    v.trim().parse::<usize>().map_err(|_| {
        OsError::bad_request(format!(
            "Invalid value '{v}' specified for '{name}': must be a non-negative integer"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn senlin_sort_nulls_first_ascending_last_descending_and_paging() {
        let mut items = vec![
            json!({"id": "c", "name": "b", "action": null}),
            json!({"id": "a", "name": "a", "action": "X"}),
            json!({"id": "b", "name": "b", "action": "A"}),
        ];
        let mut keys = parse_senlin_sort("action", &["name", "action"]).unwrap();
        keys.push(SortKey::asc("id"));
        sort(&mut items, &keys);
        let ids: Vec<_> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        let mut keys = parse_senlin_sort("action:desc", &["name", "action"]).unwrap();
        keys.push(SortKey::asc("id"));
        sort(&mut items, &keys);
        let ids: Vec<_> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let (p, more) = page(items.clone(), &["id"], Some("a"), Some(1)).unwrap();
        assert_eq!(p, vec![items[1].clone()]);
        assert!(more);
        let (p, more) = page(items.clone(), &["id"], Some("b"), Some(1)).unwrap();
        assert_eq!((p.len(), more), (1, false));
        assert!(page(items, &["id"], Some("zz"), None).is_err());
        assert!(parse_senlin_sort("nope", &["name"]).is_err());
        assert!(parse_senlin_sort("name:up", &["name"]).is_err());
    }
}
