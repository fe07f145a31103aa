//! Masakari notifications: create (schema, host lookup, maintenance,
//! duplicate rule), list, get, status changes, expiry. Every accepted
//! notification is a durable `core.notification` instance and every
//! status change a `core.notification.status` instance, before the
//! caller hears 2xx.
//!
//! **Duplicate rule** (Masakari's `_is_duplicate_notification`): a new
//! notification is a duplicate (409) when a stored one has the same
//! `type`, the same source host and an equal payload, and its
//! `generated_time` is at or after the new one's `generated_time` minus
//! `notifications.duplicate_detection_interval` (default 180 s). The
//! window is measured against the **client-supplied `generated_time`**
//! of both notifications, never the server's clock, with no upper bound,
//! and whatever the stored one's status — exactly as Masakari does.
//!
//! **Order of writes**: the trigger instance is made durable first, the
//! record second, then the 202. A crash between the two leaves an
//! instance without a record; the client, never told 202, retries and
//! gets a second instance (at least once) rather than a 409 for an event
//! nobody saw.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use container::dispatcher::DispatchParams;

use super::lifecycle::{self, transition};
use super::schema::{check_create, NewNotification};
use super::segments::{masakari_list, Page};
use super::{
    is_uuid_like, timefmt, OpenStack, OsError, OsResult, NOTIFICATION, NOTIFICATION_STATUS,
};

/// Keys `sort_key` accepts.
pub const SORT_KEYS: &[&str] = &[
    "created_at",
    "type",
    "generated_time",
    "updated_at",
    "uuid",
    "notification_uuid",
    "payload",
    "status",
    "source_host_uuid",
    "id",
];
/// Exact-match filters.
pub const FILTERS: &[&str] = &["status", "source_host_uuid", "type"];

/// A stored notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    pub id: u64,
    pub notification_uuid: String,
    pub generated_time: String,
    pub source_host_uuid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub payload: Map<String, Value>,
    pub status: String,
    pub failover_segment_uuid: String,
    pub message: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    /// It has had its one `error → running` retry.
    #[serde(default)]
    pub retried: bool,
}

impl Notification {
    /// The API view (Masakari's fields).
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(m) = &mut v {
            m.remove("retried");
            m.insert("deleted".into(), json!(false));
            m.insert("deleted_at".into(), Value::Null);
        }
        v
    }

    fn generated(&self) -> Option<OffsetDateTime> {
        timefmt::parse(&self.generated_time)
    }

    fn status_payload(&self, old: &str) -> Value {
        json!({
            "notification_uuid": self.notification_uuid,
            "type": self.kind,
            "source_host_uuid": self.source_host_uuid,
            "failover_segment_uuid": self.failover_segment_uuid,
            "generated_time": self.generated_time,
            "old_status": old,
            "status": self.status,
            "message": self.message,
        })
    }
}

fn dispatch(trigger: &str, payload: Value, uuid: &str) -> DispatchParams {
    DispatchParams {
        trigger: json!(trigger),
        payload,
        trace_tag: Some(format!("notification-{uuid}")),
        trace_context: None,
    }
}

impl OpenStack {
    /// Every stored notification, oldest first.
    pub fn notifications(&self) -> OsResult<Vec<Notification>> {
        Ok(self.tables.notifications.all()?)
    }

    /// A notification by uuid, or by its integer `id` (what openstacksdk
    /// puts in the URL when handed an object). Anything else is 404.
    fn notification(&self, uuid: &str) -> OsResult<Notification> {
        let not_found = || OsError::not_found(format!("No notification with id {uuid}."));
        if let Ok(n) = uuid.parse::<u64>() {
            return self
                .tables
                .notifications
                .get(&n.to_be_bytes())?
                .ok_or_else(not_found);
        }
        if !is_uuid_like(uuid) {
            return Err(not_found());
        }
        self.notifications()?
            .into_iter()
            .find(|n| n.notification_uuid == uuid)
            .ok_or_else(not_found)
    }

    fn is_duplicate(&self, new: &NewNotification, host_uuid: &str) -> OsResult<bool> {
        let window = time::Duration::try_from(self.settings.duplicate_detection_interval)
            .unwrap_or(time::Duration::MAX);
        let since = new.generated_time.checked_sub(window);
        Ok(self.notifications()?.iter().any(|n| {
            n.kind == new.kind
                && n.source_host_uuid == host_uuid
                && n.payload == new.payload
                && match (since, n.generated()) {
                    (Some(since), Some(t)) => t >= since,
                    (None, _) => true,
                    (_, None) => false,
                }
        }))
    }

    /// `POST /v1/notifications`: the stored notification's view, once
    /// its instance is durable.
    pub async fn notification_create(&self, body: &Value) -> OsResult<Value> {
        let new = check_create(body)?;
        let _one_at_a_time = self.notification_lock.lock().await;
        let Some((host, segment)) = self.host_by_name(&new.hostname)? else {
            return Err(OsError::bad_request(format!(
                "Host with name {} could not be found.",
                new.hostname
            )));
        };
        if host.on_maintenance {
            return Err(OsError::conflict(format!(
                "Notification received from host {} of type '{}' is ignored as the host is already under maintenance.",
                new.hostname, new.kind
            )));
        }
        if self.is_duplicate(&new, &host.uuid)? {
            return Err(OsError::conflict(format!(
                "Notification received from host {} of type {} is duplicate.",
                new.hostname, new.kind
            )));
        }
        let now = timefmt::masakari(timefmt::now());
        let disabled = segment.as_ref().is_some_and(|s| !s.enabled);
        let mut n = Notification {
            id: self.tables.notifications.next_id()?,
            notification_uuid: uuid::Uuid::new_v4().to_string(),
            generated_time: timefmt::masakari(new.generated_time),
            source_host_uuid: host.uuid.clone(),
            kind: new.kind.clone(),
            payload: new.payload.clone(),
            status: "new".into(),
            failover_segment_uuid: host.failover_segment_id.clone(),
            message: None,
            created_at: now.clone(),
            updated_at: None,
            retried: false,
        };
        let mut dispatches = vec![dispatch(NOTIFICATION, n.view(), &n.notification_uuid)];
        if disabled {
            // Masakari's engine: a disabled segment's notification is
            // ignored at once.
            n.status = "ignored".into();
            n.message = Some("Recovery aborted: the segment HA is disabled.".into());
            n.updated_at = Some(now);
            dispatches.push(dispatch(
                NOTIFICATION_STATUS,
                n.status_payload("new"),
                &n.notification_uuid,
            ));
        }
        crate::durable::store(&self.dispatcher, dispatches).await?;
        self.tables.notifications.put(&n.id.to_be_bytes(), &n)?;
        Ok(n.view())
    }

    /// `GET /v1/notifications/{uuid}`.
    pub fn notification_get(&self, uuid: &str) -> OsResult<Value> {
        Ok(self.notification(uuid)?.view())
    }

    /// `GET /v1/notifications`: filters `status`, `source_host_uuid`,
    /// `type`, `generated-since` (or `generated_since`); `limit` ≤ 1000,
    /// `marker` (the integer `id`), `sort_key`/`sort_dir`.
    pub fn notification_list(&self, query: &[(String, String)]) -> OsResult<Page> {
        let mut since = None;
        let mut rest = Vec::with_capacity(query.len());
        for (k, v) in query {
            if k == "generated-since" || k == "generated_since" {
                since = Some(
                    timefmt::parse(v)
                        .ok_or_else(|| OsError::bad_request("Invalid generated-since value"))?,
                );
            } else {
                rest.push((k.clone(), v.clone()));
            }
        }
        let items = self
            .notifications()?
            .iter()
            .filter(|n| since.is_none_or(|s| n.generated().is_some_and(|t| t >= s)))
            .map(Notification::view)
            .collect();
        masakari_list(
            items,
            &rest,
            FILTERS,
            SORT_KEYS,
            &["id", "notification_uuid"],
        )
    }

    /// Move a notification to `status` (legal transitions only, 409
    /// otherwise), with an optional message; the new view once the
    /// `core.notification.status` instance is durable.
    pub async fn notification_set_status(
        &self,
        uuid: &str,
        status: &str,
        message: Option<String>,
    ) -> OsResult<Value> {
        let _one_at_a_time = self.notification_lock.lock().await;
        let mut n = self.notification(uuid)?;
        let t = transition(&n.status, status, n.retried)?;
        let old = std::mem::replace(&mut n.status, t.status.to_string());
        n.retried = t.retried;
        n.message = message.or(t.note.map(str::to_string)).or(n.message);
        n.updated_at = Some(timefmt::masakari(timefmt::now()));
        let d = dispatch(
            NOTIFICATION_STATUS,
            n.status_payload(&old),
            &n.notification_uuid,
        );
        crate::durable::store(&self.dispatcher, vec![d]).await?;
        self.tables.notifications.put(&n.id.to_be_bytes(), &n)?;
        Ok(n.view())
    }

    /// `PATCH /v1/notifications/{uuid}` with `{"status": S[, "message":
    /// M]}` (or the same wrapped in `{"notification": {...}}`).
    pub async fn notification_patch(&self, uuid: &str, body: &Value) -> OsResult<Value> {
        let inner = body.get("notification").unwrap_or(body);
        let Some(obj) = inner.as_object() else {
            return Err(OsError::bad_request(
                "The body must be {\"status\": \"running\"}",
            ));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["status", "message"].contains(&k.as_str()))
        {
            return Err(OsError::bad_request(format!(
                "Invalid input: additional properties are not allowed ('{k}' was unexpected; only status and message can change)"
            )));
        }
        let Some(status) = obj.get("status").and_then(Value::as_str) else {
            return Err(OsError::bad_request(
                "'status' is a required property (a string)",
            ));
        };
        let message = match obj.get("message") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) => Some(m.clone()),
            Some(other) => {
                return Err(OsError::bad_request(format!(
                    "'message' must be a string, got {other}"
                )))
            }
        };
        self.notification_set_status(uuid, status, message).await
    }

    /// Move every unfinished notification whose `generated_time` is older
    /// than `notifications.expired_interval` to `failed` (Masakari's
    /// `_check_expired_notifications`). How many moved.
    pub async fn expire_notifications(&self) -> OsResult<usize> {
        let limit =
            time::Duration::try_from(self.settings.expired_interval).unwrap_or(time::Duration::MAX);
        let Some(cutoff) = timefmt::now().checked_sub(limit) else {
            return Ok(0);
        };
        let stale: Vec<String> = self
            .notifications()?
            .into_iter()
            .filter(|n| lifecycle::UNFINISHED.contains(&n.status.as_str()))
            .filter(|n| n.generated().is_some_and(|t| t < cutoff))
            .map(|n| n.notification_uuid)
            .collect();
        let secs = self.settings.expired_interval.as_secs();
        let mut moved = 0;
        for uuid in stale {
            let why = format!("expired: not finished within notifications.expired_interval ({secs} s) of its generated_time");
            match self
                .notification_set_status(&uuid, "failed", Some(why))
                .await
            {
                Ok(_) => moved += 1,
                // Changed meanwhile (finished): nothing to expire.
                Err(e) if e.status == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }

    /// Run the expiry check every `notifications.check_expired_interval`
    /// until the task is dropped.
    pub async fn run_expiry(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(
            self.settings
                .check_expired_interval
                .max(std::time::Duration::from_secs(1)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.expire_notifications().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} notification(s) expired to failed"),
                Err(e) => tracing::warn!("notification expiry check failed: {e}"),
            }
        }
    }
}
