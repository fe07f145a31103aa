//! Masakari failover segments and their hosts, as much of `/v1/segments`
//! and `/v1/segments/{id}/hosts` as notifications need: a host belongs to
//! one segment and has `name`, `uuid`, `type`, `control_attributes`,
//! `on_maintenance`, `reserved`; a segment has `enabled` (microversion
//! 1.2), and a disabled segment's notifications are `ignored` on arrival.
//! Segment and host names are unique (409 otherwise, as Masakari's unique
//! constraints answer).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::listing::{self, SortKey};
use super::{is_uuid_like, timefmt, wrapped, OpenStack, OsError, OsResult};

/// Recovery methods a segment may use.
pub const RECOVERY_METHODS: &[&str] = &["auto", "reserved_host", "auto_priority", "rh_priority"];
const SEGMENT_FIELDS: &[&str] = &[
    "name",
    "description",
    "recovery_method",
    "service_type",
    "enabled",
];
const HOST_FIELDS: &[&str] = &[
    "name",
    "type",
    "control_attributes",
    "reserved",
    "on_maintenance",
];

/// A failover segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Segment {
    pub id: u64,
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    pub recovery_method: String,
    pub service_type: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// A host of a segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Host {
    pub id: u64,
    pub uuid: String,
    pub name: String,
    pub failover_segment_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub control_attributes: String,
    pub reserved: bool,
    pub on_maintenance: bool,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl Segment {
    /// The API view.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["deleted"] = json!(false);
        v
    }
}

impl Host {
    /// The API view, with the segment it belongs to.
    pub fn view(&self, segment: Option<&Segment>) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["deleted"] = json!(false);
        v["failover_segment"] = segment.map(Segment::view).unwrap_or(Value::Null);
        v
    }
}

fn text(m: &Map<String, Value>, field: &str, min: usize, max: usize) -> OsResult<Option<String>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > max {
                return Err(OsError::bad_request(format!(
                    "Invalid input for field/attribute {field}. Value: '{s}'. Its length must be between {min} and {max}"
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(Value::Null) if min == 0 => Ok(None),
        Some(other) => Err(OsError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

fn flag(m: &Map<String, Value>, field: &str) -> OsResult<Option<bool>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        // Masakari's boolean parameter type takes these strings too.
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(OsError::bad_request(format!(
                "Invalid input for field/attribute {field}. Value: '{s}' is not a boolean"
            ))),
        },
        Some(other) => Err(OsError::bad_request(format!(
            "Invalid input for field/attribute {field}. Value: {other} is not a boolean"
        ))),
    }
}

fn required(field: &str, v: Option<String>) -> OsResult<String> {
    v.ok_or_else(|| {
        OsError::bad_request(format!(
            "Invalid input for field/attribute {field}. '{field}' is a required property"
        ))
    })
}

fn recovery_method(v: Option<String>) -> OsResult<Option<String>> {
    match v {
        Some(m) if !RECOVERY_METHODS.contains(&m.as_str()) => Err(OsError::bad_request(format!(
            "Invalid input for field/attribute recovery_method. Value: '{m}'. '{m}' is not one of {RECOVERY_METHODS:?}"
        ))),
        v => Ok(v),
    }
}

/// One page of a Masakari list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The items.
    pub items: Vec<Value>,
    /// Set when the 1000-item cap (not the caller's `limit`) cut the
    /// list: the marker of the next page, for a `<collection>_links`
    /// `next` link (openstacksdk stops after one page without it).
    pub next_marker: Option<String>,
}

/// Masakari's list parameters over API views: `limit` (≤ 1000, the
/// default), `marker` (the integer `id` or the uuid of the last item
/// seen), `sort_key`/`sort_dir` (repeatable; default `created_at desc`),
/// and exact-match `filters`; other parameters are ignored, as Masakari
/// ignores them.
pub(crate) fn masakari_list(
    mut items: Vec<Value>,
    query: &[(String, String)],
    filters: &[&str],
    sort_keys: &[&str],
    id_fields: &[&str],
) -> OsResult<Page> {
    let (mut keys, mut dirs) = (Vec::new(), Vec::new());
    let (mut limit, mut marker) = (None, None);
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "limit" => {
                let n = v.trim().parse::<i64>().map_err(|_| {
                    OsError::bad_request(format!("limit param must be an integer, got '{v}'"))
                })?;
                if n < 0 {
                    return Err(OsError::bad_request("limit param must be positive"));
                }
                limit = Some((n as usize).min(MAX_LIMIT));
            }
            "marker" => marker = Some(v.as_str()),
            "sort_key" => {
                if !sort_keys.contains(&v.as_str()) {
                    return Err(OsError::bad_request(format!(
                        "Invalid sort_key '{v}' (one of: {})",
                        sort_keys.join(", ")
                    )));
                }
                keys.push(v.as_str())
            }
            "sort_dir" => match v.as_str() {
                "asc" | "desc" => dirs.push(v.as_str() == "desc"),
                other => {
                    return Err(OsError::bad_request(format!(
                        "Invalid sort_dir '{other}' (asc or desc)"
                    )))
                }
            },
            f if filters.contains(&f) => wanted.push((f, v.as_str())),
            // Masakari reads the parameters it knows and ignores the rest
            // (openstacksdk filters on unknown ones itself, after the
            // fetch); so do we.
            _ => {}
        }
    }
    items.retain(|i| {
        wanted.iter().all(|(f, v)| match i.get(*f) {
            Some(Value::String(s)) => s == v,
            Some(Value::Bool(b)) => v.eq_ignore_ascii_case(&b.to_string()),
            Some(other) => serde_json::to_string(other).is_ok_and(|t| t == *v),
            None => false,
        })
    });
    if keys.is_empty() {
        keys.push("created_at");
    }
    let mut sort: Vec<SortKey> = keys
        .iter()
        .enumerate()
        .map(|(n, k)| SortKey {
            key: k.to_string(),
            desc: dirs.get(n).or(dirs.last()).copied().unwrap_or(true),
        })
        .collect();
    let last_desc = sort.last().map(|s| s.desc).unwrap_or(true);
    for tie in ["created_at", "id"] {
        if !sort.iter().any(|s| s.key == tie) {
            sort.push(SortKey {
                key: tie.into(),
                desc: last_desc,
            });
        }
    }
    listing::sort(&mut items, &sort);
    let capped = limit.is_none();
    let (items, more) = listing::page(items, id_fields, marker, limit.or(Some(MAX_LIMIT)))?;
    let next_marker = (capped && more)
        .then(|| {
            items.last().and_then(|i| i.get("id")).map(|id| match id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .flatten();
    Ok(Page { items, next_marker })
}

/// Masakari's `osapi_max_limit`.
pub const MAX_LIMIT: usize = 1000;

impl OpenStack {
    /// A segment by uuid, or by the integer `id` (openstacksdk puts a
    /// resource's `id` in the URL when it is handed an object).
    fn segment(&self, id: &str) -> OsResult<Segment> {
        let found = if is_uuid_like(id) {
            self.tables.segments.get(id.as_bytes())?
        } else if let Ok(n) = id.parse::<u64>() {
            self.segments()?.into_iter().find(|s| s.id == n)
        } else {
            None
        };
        found.ok_or_else(|| OsError::not_found(format!("No failover segment with id {id}.")))
    }

    /// Every segment.
    pub fn segments(&self) -> OsResult<Vec<Segment>> {
        Ok(self.tables.segments.all()?)
    }

    /// Every host.
    pub fn hosts(&self) -> OsResult<Vec<Host>> {
        Ok(self.tables.hosts.all()?)
    }

    /// `POST /v1/segments`.
    pub fn segment_create(&self, body: &Value) -> OsResult<Value> {
        let m = wrapped(body, "segment", SEGMENT_FIELDS)?;
        let name = required("name", text(m, "name", 1, 255)?)?;
        if self.segments()?.iter().any(|s| s.name == name) {
            return Err(OsError::conflict(format!(
                "Failover segment with name {name} already exists."
            )));
        }
        let seg = Segment {
            id: self.tables.segments.next_id()?,
            uuid: uuid::Uuid::new_v4().to_string(),
            name,
            description: text(m, "description", 0, 255)?,
            recovery_method: required(
                "recovery_method",
                recovery_method(text(m, "recovery_method", 1, 255)?)?,
            )?,
            service_type: required("service_type", text(m, "service_type", 1, 255)?)?,
            enabled: flag(m, "enabled")?.unwrap_or(true),
            created_at: timefmt::masakari(timefmt::now()),
            updated_at: None,
        };
        self.tables.segments.put(seg.uuid.as_bytes(), &seg)?;
        Ok(seg.view())
    }

    /// `GET /v1/segments/{id}`.
    pub fn segment_get(&self, uuid: &str) -> OsResult<Value> {
        Ok(self.segment(uuid)?.view())
    }

    /// `GET /v1/segments`.
    pub fn segment_list(&self, query: &[(String, String)]) -> OsResult<Page> {
        let items = self.segments()?.iter().map(Segment::view).collect();
        masakari_list(
            items,
            query,
            &["recovery_method", "service_type", "enabled", "name"],
            &[
                "created_at",
                "description",
                "name",
                "updated_at",
                "uuid",
                "recovery_method",
                "service_type",
            ],
            &["id", "uuid"],
        )
    }

    /// `PUT /v1/segments/{id}`.
    pub fn segment_update(&self, uuid: &str, body: &Value) -> OsResult<Value> {
        let m = wrapped(body, "segment", SEGMENT_FIELDS)?;
        let mut seg = self.segment(uuid)?;
        if let Some(n) = text(m, "name", 1, 255)? {
            if n != seg.name && self.segments()?.iter().any(|s| s.name == n) {
                return Err(OsError::conflict(format!(
                    "Failover segment with name {n} already exists."
                )));
            }
            seg.name = n;
        }
        if m.contains_key("description") {
            seg.description = text(m, "description", 0, 255)?;
        }
        if let Some(r) = recovery_method(text(m, "recovery_method", 1, 255)?)? {
            seg.recovery_method = r;
        }
        if let Some(s) = text(m, "service_type", 1, 255)? {
            seg.service_type = s;
        }
        if let Some(e) = flag(m, "enabled")? {
            seg.enabled = e;
        }
        seg.updated_at = Some(timefmt::masakari(timefmt::now()));
        self.tables.segments.put(seg.uuid.as_bytes(), &seg)?;
        Ok(seg.view())
    }

    /// `DELETE /v1/segments/{id}`: refused while it has hosts (Masakari
    /// deletes them with it; we make the operator say so).
    pub fn segment_delete(&self, uuid: &str) -> OsResult<()> {
        let seg = self.segment(uuid)?;
        let hosts = self
            .hosts()?
            .into_iter()
            .filter(|h| h.failover_segment_id == seg.uuid)
            .count();
        if hosts > 0 {
            return Err(OsError::conflict(format!(
                "Failover segment {} still has {hosts} host(s): delete them first.",
                seg.uuid
            )));
        }
        self.tables.segments.remove(seg.uuid.as_bytes())?;
        Ok(())
    }

    fn host(&self, segment: &Segment, id: &str) -> OsResult<Host> {
        let h: Option<Host> = if is_uuid_like(id) {
            self.tables.hosts.get(id.as_bytes())?
        } else if let Ok(n) = id.parse::<u64>() {
            self.hosts()?.into_iter().find(|h| h.id == n)
        } else {
            None
        };
        h.filter(|h| h.failover_segment_id == segment.uuid)
            .ok_or_else(|| {
                OsError::not_found(format!(
                    "Host {id} could not be found in failover segment {}.",
                    segment.uuid
                ))
            })
    }

    /// `POST /v1/segments/{id}/hosts`.
    pub fn host_create(&self, segment_id: &str, body: &Value) -> OsResult<Value> {
        let seg = self.segment(segment_id)?;
        let m = wrapped(body, "host", HOST_FIELDS)?;
        let name = required("name", text(m, "name", 1, 255)?)?;
        if self.hosts()?.iter().any(|h| h.name == name) {
            return Err(OsError::conflict(format!(
                "Host with name {name} already exists."
            )));
        }
        let host = Host {
            id: self.tables.hosts.next_id()?,
            uuid: uuid::Uuid::new_v4().to_string(),
            name,
            failover_segment_id: seg.uuid.clone(),
            kind: required("type", text(m, "type", 1, 255)?)?,
            control_attributes: required(
                "control_attributes",
                text(m, "control_attributes", 1, usize::MAX)?,
            )?,
            reserved: flag(m, "reserved")?.unwrap_or(false),
            on_maintenance: flag(m, "on_maintenance")?.unwrap_or(false),
            created_at: timefmt::masakari(timefmt::now()),
            updated_at: None,
        };
        self.tables.hosts.put(host.uuid.as_bytes(), &host)?;
        Ok(host.view(Some(&seg)))
    }

    /// `GET /v1/segments/{id}/hosts/{host_id}`.
    pub fn host_get(&self, segment_id: &str, id: &str) -> OsResult<Value> {
        let seg = self.segment(segment_id)?;
        Ok(self.host(&seg, id)?.view(Some(&seg)))
    }

    /// `GET /v1/segments/{id}/hosts`.
    pub fn host_list(&self, segment_id: &str, query: &[(String, String)]) -> OsResult<Page> {
        let seg = self.segment(segment_id)?;
        let items = self
            .hosts()?
            .iter()
            .filter(|h| h.failover_segment_id == seg.uuid)
            .map(|h| h.view(Some(&seg)))
            .collect();
        masakari_list(
            items,
            query,
            &[
                "type",
                "control_attributes",
                "on_maintenance",
                "reserved",
                "name",
            ],
            &[
                "created_at",
                "type",
                "name",
                "updated_at",
                "uuid",
                "reserved",
                "on_maintenance",
            ],
            &["id", "uuid"],
        )
    }

    /// `PUT /v1/segments/{id}/hosts/{host_id}`.
    pub fn host_update(&self, segment_id: &str, id: &str, body: &Value) -> OsResult<Value> {
        let seg = self.segment(segment_id)?;
        let m = wrapped(body, "host", HOST_FIELDS)?;
        let mut host = self.host(&seg, id)?;
        if let Some(n) = text(m, "name", 1, 255)? {
            if n != host.name && self.hosts()?.iter().any(|h| h.name == n) {
                return Err(OsError::conflict(format!(
                    "Host with name {n} already exists."
                )));
            }
            host.name = n;
        }
        if let Some(t) = text(m, "type", 1, 255)? {
            host.kind = t;
        }
        if let Some(c) = text(m, "control_attributes", 1, usize::MAX)? {
            host.control_attributes = c;
        }
        if let Some(r) = flag(m, "reserved")? {
            host.reserved = r;
        }
        if let Some(o) = flag(m, "on_maintenance")? {
            host.on_maintenance = o;
        }
        host.updated_at = Some(timefmt::masakari(timefmt::now()));
        self.tables.hosts.put(host.uuid.as_bytes(), &host)?;
        Ok(host.view(Some(&seg)))
    }

    /// `DELETE /v1/segments/{id}/hosts/{host_id}`.
    pub fn host_delete(&self, segment_id: &str, id: &str) -> OsResult<()> {
        let seg = self.segment(segment_id)?;
        let host = self.host(&seg, id)?;
        self.tables.hosts.remove(host.uuid.as_bytes())?;
        Ok(())
    }

    /// The host named `name` and its segment.
    pub(crate) fn host_by_name(&self, name: &str) -> OsResult<Option<(Host, Option<Segment>)>> {
        let Some(h) = self.hosts()?.into_iter().find(|h| h.name == name) else {
            return Ok(None);
        };
        let seg = self.tables.segments.get(h.failover_segment_id.as_bytes())?;
        Ok(Some((h, seg)))
    }
}
