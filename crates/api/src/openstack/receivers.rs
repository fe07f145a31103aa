//! Senlin receivers: create, list, find, update, delete, with Senlin's
//! validation and messages (`senlin/objects/requests/receivers.py`,
//! `conductor/service.py`), and the `alarm_url` of webhook receivers.
//!
//! Differences, on purpose: the id is 128 random bits (the URL is the
//! capability), `update` regenerates `alarm_url` from the new params and
//! keeps `created_at` (Senlin leaves the URL stale and overwrites
//! `created_at`), and an unknown `marker` is a 400 instead of the whole
//! list again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::listing::{self, SortKey};
use super::{is_uuid_like, random_id, timefmt, wrapped, Caller, OpenStack, OsError, OsResult};

/// Receiver types.
pub const TYPES: &[&str] = &["webhook", "message"];
/// Keys `sort` accepts (`RECEIVER_SORT_KEYS`).
pub const SORT_KEYS: &[&str] = &["name", "type", "action", "cluster_id", "created_at", "user"];
/// Filters `GET /v1/receivers` accepts (each may repeat).
pub const FILTERS: &[&str] = &["name", "type", "cluster_id", "user", "action"];
/// Create fields (`ReceiverCreateRequestBody`).
const CREATE_FIELDS: &[&str] = &["name", "type", "cluster_id", "action", "actor", "params"];
/// What an update may change.
const UPDATE_FIELDS: &[&str] = &["name", "action", "params"];

/// A stored receiver (`Receiver.to_dict` plus its signing secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Receiver {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub user: String,
    pub project: String,
    pub domain: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub cluster_id: Option<String>,
    pub actor: Value,
    pub action: Option<String>,
    pub params: Map<String, Value>,
    pub channel: Value,
    /// HMAC key of `api.receivers.require_signature`; never listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Receiver {
    /// The stored fields (`to_dict`) but the secret.
    fn fields(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(m) = &mut v {
            m.remove("secret");
        }
        v
    }
}

/// Senlin's `NameField`: 1–255 of letters, digits, CJK and `._~-`.
pub fn check_name(name: &Value) -> OsResult<String> {
    let Some(s) = name.as_str() else {
        return Err(OsError::bad_request(format!(
            "The value for the 'name' field must be a string, got {name}"
        )));
    };
    let n = s.chars().count();
    let ok_char = |c: char| {
        c.is_ascii_alphanumeric() || ('\u{4e00}'..='\u{9fa5}').contains(&c) || "._~-".contains(c)
    };
    if n == 0 || n > 255 {
        return Err(OsError::bad_request(format!(
            "The value for the 'name' field must have a length between 1 and 255, got {n}"
        )));
    }
    if let Some(bad) = s.chars().find(|c| !ok_char(*c)) {
        return Err(OsError::bad_request(format!(
            "The value '{s}' for the 'name' field is invalid: '{bad}' is not a letter, digit or one of ._~-"
        )));
    }
    Ok(s.to_string())
}

fn opt_string(field: &str, v: Option<&Value>) -> OsResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(OsError::bad_request(format!(
            "The value for the '{field}' field must be a string or null, got {other}"
        ))),
    }
}

fn object(field: &str, v: Option<&Value>) -> OsResult<Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(OsError::bad_request(format!(
            "The value for the '{field}' field must be a JSON object, got {other}"
        ))),
    }
}

/// Python's `urlencode(sorted(params.items()))` rendering of a value.
fn query_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

impl OpenStack {
    /// `<api.public_url>/v1` without a doubled `/v1`.
    fn v1_base(&self) -> String {
        let url = self.public_url();
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        format!("{base}/v1")
    }

    /// `<base>/v1/webhooks/<id>/trigger?V=2[&<sorted params>]` (Senlin's
    /// `Webhook.WEBHOOK_VERSION = 2` form).
    pub fn alarm_url(&self, id: &str, params: &Map<String, Value>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("V", "2");
        let sorted: BTreeMap<&String, &Value> = params.iter().collect();
        for (k, v) in sorted {
            q.append_pair(k, &query_value(v));
        }
        format!("{}/webhooks/{id}/trigger?{}", self.v1_base(), q.finish())
    }

    fn channel(&self, r: &Receiver) -> Value {
        match r.kind.as_str() {
            "webhook" => json!({"alarm_url": self.alarm_url(&r.id, &r.params)}),
            _ => json!({"queue_name": format!("senlin-receiver-{}", r.id)}),
        }
    }

    /// `POST /v1/receivers`: the new receiver's view (with
    /// `channel.signature_secret` once, when signatures are required).
    pub fn receiver_create(&self, caller: &Caller, body: &Value) -> OsResult<Value> {
        let r = wrapped(body, "receiver", CREATE_FIELDS)?;
        let name = check_name(r.get("name").unwrap_or(&Value::Null))?;
        let kind = match r.get("type") {
            None | Some(Value::Null) => "webhook".to_string(),
            Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.clone(),
            Some(other) => {
                return Err(OsError::bad_request(format!(
                    "Value '{}' is not acceptable for field 'type'.",
                    other
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or(other.to_string())
                )))
            }
        };
        let cluster_id = opt_string("cluster_id", r.get("cluster_id"))?;
        let action = opt_string("action", r.get("action"))?;
        let actor = object("actor", r.get("actor"))?;
        let params = object("params", r.get("params"))?;
        if kind == "webhook" {
            if cluster_id.as_deref().is_none_or(str::is_empty) {
                return Err(OsError::bad_request(
                    "Cluster identity is required for creating webhook receiver.",
                ));
            }
            if action.as_deref().is_none_or(str::is_empty) {
                return Err(OsError::bad_request(
                    "Action name is required for creating webhook receiver.",
                ));
            }
        }
        if action.as_deref() == Some("CLUSTER_CREATE") {
            return Err(OsError::bad_request(
                "Action name cannot be any of ['CLUSTER_CREATE'].",
            ));
        }
        let secret = match self.settings.require_signature && kind == "webhook" {
            // 256 bits from the OS CSPRNG, hex: the attach tokens' generator.
            true => {
                Some(container::attach::new_token().map_err(|e| OsError::internal(e.to_string()))?)
            }
            false => None,
        };
        let mut rec = Receiver {
            id: random_id()?,
            name,
            kind,
            user: caller.user.clone(),
            project: "default".into(),
            domain: None,
            created_at: timefmt::senlin(timefmt::now()),
            updated_at: None,
            cluster_id,
            actor: Value::Object(actor),
            action,
            params,
            channel: Value::Null,
            secret,
        };
        rec.channel = self.channel(&rec);
        self.tables.receivers.put(rec.id.as_bytes(), &rec)?;
        let mut view = self.receiver_view(&rec);
        if let (Some(s), Some(ch)) = (&rec.secret, view.get_mut("channel")) {
            ch["signature_secret"] = json!(s);
        }
        Ok(view)
    }

    /// A receiver's API view, its `channel` rendered with the public URL
    /// in force (so a receiver made while no container ran, or before
    /// `api.public_url` changed, shows the URL that works now).
    pub fn receiver_view(&self, r: &Receiver) -> Value {
        let mut v = r.fields();
        v["channel"] = self.channel(r);
        v
    }

    /// Every stored receiver.
    pub fn receivers(&self) -> OsResult<Vec<Receiver>> {
        Ok(self.tables.receivers.all()?)
    }

    /// `GET /v1/receivers`: `query` holds the (possibly repeated) query
    /// parameters, in order.
    pub fn receiver_list(&self, query: &[(String, String)]) -> OsResult<Vec<Value>> {
        let mut filters: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let (mut limit, mut marker, mut sort) = (None, None, None);
        for (k, v) in query {
            match k.as_str() {
                "limit" => limit = Some(listing::non_negative("limit", v)?),
                "marker" => {
                    if !is_uuid_like(v) {
                        return Err(OsError::bad_request(format!(
                            "Invalid value '{v}' specified for 'marker': must be a UUID"
                        )));
                    }
                    marker = Some(v.as_str())
                }
                "sort" => sort = Some(v.as_str()),
                "global_project" => match v.to_ascii_lowercase().as_str() {
                    "true" | "false" | "1" | "0" | "yes" | "no" => {}
                    _ => {
                        return Err(OsError::bad_request(format!(
                            "Invalid value '{v}' specified for 'global_project'"
                        )))
                    }
                },
                f if FILTERS.contains(&f) => filters.entry(f).or_default().push(v),
                other => return Err(OsError::bad_request(format!("Invalid parameter {other}"))),
            }
        }
        let mut keys = match sort {
            Some(s) => listing::parse_senlin_sort(s, SORT_KEYS)?,
            None => vec![SortKey::asc("name")],
        };
        keys.push(SortKey::asc("id"));
        let mut items: Vec<Value> = self
            .receivers()?
            .iter()
            .map(|r| self.receiver_view(r))
            .filter(|v| {
                filters.iter().all(|(f, wanted)| {
                    v.get(*f)
                        .and_then(Value::as_str)
                        .is_some_and(|have| wanted.contains(&have))
                })
            })
            .collect();
        listing::sort(&mut items, &keys);
        Ok(listing::page(items, &["id"], marker, limit)?.0)
    }

    /// Senlin's `Receiver.find`: a UUID-like identity by id then name,
    /// anything else by name then short id (an id prefix).
    pub fn receiver_find(&self, identity: &str) -> OsResult<Receiver> {
        let all = self.receivers()?;
        let one = |found: Vec<&Receiver>, how: &str| -> OsResult<Option<Receiver>> {
            match found.len() {
                0 => Ok(None),
                1 => Ok(Some(found[0].clone())),
                _ => Err(OsError::bad_request(format!(
                    "Multiple results found matching the query criteria '{identity}' ({how}). Please be more specific."
                ))),
            }
        };
        let by_id = || all.iter().filter(|r| r.id == identity).collect::<Vec<_>>();
        let by_name = || {
            all.iter()
                .filter(|r| r.name == identity)
                .collect::<Vec<_>>()
        };
        let by_short = || {
            all.iter()
                .filter(|r| r.id.starts_with(identity))
                .collect::<Vec<_>>()
        };
        let found = if is_uuid_like(identity) {
            match one(by_id(), "id")? {
                Some(r) => Some(r),
                None => one(by_name(), "name")?,
            }
        } else {
            match one(by_name(), "name")? {
                Some(r) => Some(r),
                None if identity.is_empty() => None,
                None => one(by_short(), "short id")?,
            }
        };
        found.ok_or_else(|| {
            OsError::not_found(format!("The receiver '{identity}' could not be found."))
        })
    }

    /// `PATCH /v1/receivers/{id}`: name, action and params (replaced
    /// whole); nothing different → 400.
    pub fn receiver_update(&self, identity: &str, body: &Value) -> OsResult<Value> {
        let r = wrapped(body, "receiver", UPDATE_FIELDS)?;
        let mut rec = self.receiver_find(identity)?;
        let mut changed = false;
        if let Some(n) = r.get("name").filter(|n| !n.is_null()) {
            let n = check_name(n)?;
            changed |= n != rec.name;
            rec.name = n;
        }
        if let Some(a) = r.get("action").filter(|a| !a.is_null()) {
            let a = opt_string("action", Some(a))?;
            if a.as_deref() == Some("CLUSTER_CREATE") {
                return Err(OsError::bad_request(
                    "Action name cannot be any of ['CLUSTER_CREATE'].",
                ));
            }
            changed |= a != rec.action;
            rec.action = a;
        }
        if let Some(p) = r.get("params").filter(|p| !p.is_null()) {
            let p = object("params", Some(p))?;
            changed |= p != rec.params;
            rec.params = p;
        }
        if !changed {
            return Err(OsError::bad_request("No property needs an update."));
        }
        rec.updated_at = Some(timefmt::senlin(timefmt::now()));
        rec.channel = self.channel(&rec);
        self.tables.receivers.put(rec.id.as_bytes(), &rec)?;
        Ok(self.receiver_view(&rec))
    }

    /// `DELETE /v1/receivers/{id}`.
    pub fn receiver_delete(&self, identity: &str) -> OsResult<()> {
        let rec = self.receiver_find(identity)?;
        self.tables.receivers.remove(rec.id.as_bytes())?;
        Ok(())
    }
}
