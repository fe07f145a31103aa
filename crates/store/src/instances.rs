//! The trigger-instance log: every accepted dispatch, keyed by its UUIDv7 id
//! so that key order is time order.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commit::{GroupCommit, Ticket};
use crate::json::{decode, encode};
use crate::StoreError;

const TREE: &str = "trigger_instances";

/// A stored trigger instance (StackStorm's TriggerInstanceDB, plus the sensor).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TriggerInstance {
    /// UUIDv7, also the key.
    pub id: String,
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

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Only instances whose trigger ref or trigger type ref equals this.
    pub trigger: Option<String>,
    /// Only instances from this sensor.
    pub sensor: Option<String>,
    /// Only instances at or after this time (RFC 3339).
    pub since: Option<String>,
    /// At most this many (newest first).
    pub limit: Option<usize>,
}

/// The trigger-instance log.
#[derive(Clone)]
pub struct InstanceLog {
    tree: sled::Tree,
    commit: Arc<GroupCommit>,
}

impl InstanceLog {
    pub(crate) fn open(db: &sled::Db, commit: Arc<GroupCommit>) -> Result<InstanceLog, StoreError> {
        Ok(InstanceLog {
            tree: db.open_tree(TREE)?,
            commit,
        })
    }

    /// Insert an instance. It is in the database but not yet durable: wait
    /// on the returned ticket (through [`InstanceLog::commit`]) before acking.
    pub fn append(&self, instance: &TriggerInstance) -> Result<Ticket, StoreError> {
        let id = Uuid::parse_str(&instance.id)
            .map_err(|e| StoreError::Invalid(format!("bad instance id: {e}")))?;
        self.tree.insert(id.as_bytes(), encode(instance))?;
        Ok(self.commit.ticket())
    }

    /// Insert several instances with one sled batch (cheaper than one
    /// insert each) and one ticket covering them all.
    pub fn append_batch<'a>(
        &self,
        instances: impl IntoIterator<Item = &'a TriggerInstance>,
    ) -> Result<Ticket, StoreError> {
        let mut batch = sled::Batch::default();
        for instance in instances {
            let id = Uuid::parse_str(&instance.id)
                .map_err(|e| StoreError::Invalid(format!("bad instance id: {e}")))?;
            batch.insert(id.as_bytes(), encode(instance));
        }
        self.tree.apply_batch(batch)?;
        Ok(self.commit.ticket())
    }

    /// Insert and wait until durable.
    pub async fn append_durable(&self, instance: &TriggerInstance) -> Result<(), StoreError> {
        let t = self.append(instance)?;
        self.commit.wait(t).await
    }

    /// The group committer this log acks through.
    pub fn commit(&self) -> &Arc<GroupCommit> {
        &self.commit
    }

    /// One instance by id.
    pub fn get(&self, id: &str) -> Result<TriggerInstance, StoreError> {
        let uuid = Uuid::parse_str(id).map_err(|_| {
            StoreError::Invalid(format!("'{id}' is not a trigger instance id (a UUID)"))
        })?;
        match self.tree.get(uuid.as_bytes())? {
            Some(bytes) => decode(TREE, id.as_bytes(), &bytes),
            None => Err(StoreError::NotFound {
                kind: "trigger instance",
                key: id.into(),
            }),
        }
    }

    /// Instances matching `filter`, newest first.
    pub fn list(&self, filter: &InstanceFilter) -> Result<Vec<TriggerInstance>, StoreError> {
        let since = match &filter.since {
            Some(s) => Some(
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(
                    |e| StoreError::Invalid(format!("--since '{s}' is not an RFC 3339 time: {e}")),
                )?,
            ),
            None => None,
        };
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        for item in self.tree.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (key, bytes) = item?;
            let inst: TriggerInstance = decode(TREE, &key, &bytes)?;
            if let Some(since) = since {
                let at = OffsetDateTime::parse(
                    &inst.occurrence_time,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| StoreError::Corrupt {
                    tree: TREE,
                    key: inst.id.clone(),
                    reason: e.to_string(),
                })?;
                if at < since {
                    // Keys are time-ordered: everything further is older.
                    break;
                }
            }
            if filter
                .trigger
                .as_ref()
                .is_some_and(|t| *t != inst.trigger && *t != inst.trigger_type)
            {
                continue;
            }
            if filter
                .sensor
                .as_ref()
                .is_some_and(|s| Some(s) != inst.sensor.as_ref())
            {
                continue;
            }
            out.push(inst);
        }
        Ok(out)
    }

    /// How many instances are stored.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreOptions};
    use serde_json::json;

    #[tokio::test]
    async fn append_list_get_newest_first_with_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let log = &store.instances;
        for i in 0..5 {
            let sensor = if i % 2 == 0 { "p.A" } else { "p.B" };
            let inst = TriggerInstance::new(
                "p.t".into(),
                "p.t".into(),
                json!({"i": i}),
                Some(sensor.into()),
            );
            log.append_durable(&inst).await.unwrap();
        }
        let all = log.list(&InstanceFilter::default()).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].payload, json!({"i": 4}));
        assert_eq!(all[4].payload, json!({"i": 0}));
        let b = log
            .list(&InstanceFilter {
                sensor: Some("p.B".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            b.iter()
                .map(|i| i.payload["i"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            vec![3, 1]
        );
        let lim = log
            .list(&InstanceFilter {
                limit: Some(2),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(lim.len(), 2);
        let none = log
            .list(&InstanceFilter {
                trigger: Some("p.other".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(none.is_empty());
        let got = log.get(&all[2].id).unwrap();
        assert_eq!(got, all[2]);
        assert!(got.trace_tag.starts_with("trigger_instance-"));
        assert!(matches!(log.get("nope"), Err(StoreError::Invalid(_))));
        let future = log.list(&InstanceFilter {
            since: Some("2999-01-01T00:00:00Z".into()),
            ..Default::default()
        });
        assert!(future.unwrap().is_empty());
        assert!(matches!(
            log.list(&InstanceFilter {
                since: Some("yesterday".into()),
                ..Default::default()
            }),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn second_opener_gets_locked_error() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        // sled's lock is a per-process advisory lock; a second open in the
        // same process is detected by sled too.
        match Store::open(dir.path(), &StoreOptions::default()) {
            Err(StoreError::Locked { .. }) => {}
            Err(other) => panic!("expected Locked, got {other}"),
            Ok(_) => {} // some platforms allow same-process reopen; the CLI test covers cross-process
        }
    }
}
