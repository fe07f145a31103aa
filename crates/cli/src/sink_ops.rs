//! The `sink.*` operations and `trigger-instance.re-emit`, inside the
//! container (the running sinks) or without one (what the database and
//! log hold: `sink retry` and `pause` are then carried out when the
//! container next starts).

use serde::Deserialize;
use serde_json::{json, Value};
use sinks::SinkError;

use crate::ops::{OpError, OpErrorKind, Ops};

/// The statuses `trigger-instance list --status` knows.
pub const STATUSES: &[&str] = &["pending", "processing", "processed", "processing_failed"];

/// A sink error as an operation error.
pub fn sink_error(e: SinkError) -> OpError {
    let kind = match &e {
        SinkError::NotFound(_) => OpErrorKind::NotFound,
        SinkError::Config(_) => OpErrorKind::Invalid,
        _ => OpErrorKind::Internal,
    };
    OpError::new(kind, e.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameParam {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryParams {
    name: String,
    /// Instance ids or seqs.
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
}

fn bad(op: &str, e: serde_json::Error) -> OpError {
    OpError::new(OpErrorKind::Invalid, format!("{op}: bad parameters: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, OpError> {
    serde_json::to_value(v).map_err(|e| OpError::new(OpErrorKind::Internal, e.to_string()))
}

impl Ops {
    /// Statuses as the sinks see them now.
    pub(crate) fn resolver(&self) -> Result<sinks::Resolver, OpError> {
        match &self.sinks {
            Some(s) => Ok(s.resolver()),
            None => sinks::offline_resolver(&self.settings.sinks, &*self.log, &self.store.sinks)
                .map_err(sink_error),
        }
    }

    /// A configured sink's name, or NotFound (no container running).
    fn configured(&self, name: &str) -> Result<(), OpError> {
        if self.settings.sinks.iter().any(|s| s.name == name) {
            Ok(())
        } else {
            Err(sink_error(SinkError::NotFound(name.to_string())))
        }
    }

    /// `sink.list`, `sink.dead-letters`, `sink.retry`, `sink.pause`,
    /// `sink.resume`.
    pub(crate) async fn sink_op(&self, op: &str, p: Value) -> Result<Value, OpError> {
        let p = if p.is_null() { json!({}) } else { p };
        let live = self.sinks.as_ref();
        match op {
            "sink.list" => match live {
                Some(s) => to_json(&s.list()),
                None => to_json(
                    &sinks::offline_views(&self.settings.sinks, &*self.log, &self.store.sinks)
                        .map_err(sink_error)?,
                ),
            },
            "sink.dead-letters" => {
                let q: NameParam = serde_json::from_value(p).map_err(|e| bad(op, e))?;
                let letters = match live {
                    Some(s) => s.dead_letters(&q.name).map_err(sink_error)?,
                    None => {
                        self.configured(&q.name)?;
                        self.store.sinks.dead_letters(&q.name)?
                    }
                };
                to_json(&letters)
            }
            "sink.retry" => {
                let q: RetryParams = serde_json::from_value(p).map_err(|e| bad(op, e))?;
                // Both or neither is an error.
                if q.all != q.ids.is_empty() {
                    return Err(OpError::new(
                        OpErrorKind::Invalid,
                        "give --id ID (one or more) or --all",
                    ));
                }
                let which = (!q.all).then_some(q.ids.as_slice());
                let n = match live {
                    Some(s) => s.retry(&q.name, which).map_err(sink_error)?,
                    None => {
                        self.configured(&q.name)?;
                        self.store.sinks.requeue(&q.name, which)?.len()
                    }
                };
                if n == 0 && !q.all {
                    return Err(OpError::new(
                        OpErrorKind::NotFound,
                        format!(
                            "sink '{}' holds no dead letter with id or seq {:?} (see `sensorctl sink dead-letters {}`)",
                            q.name, q.ids, q.name
                        ),
                    ));
                }
                Ok(json!({
                    "sink": q.name,
                    "requeued": n,
                    "message": format!(
                        "{n} dead letter(s) of sink '{}' queued for re-delivery{}",
                        q.name,
                        if live.is_some() { "" } else { " (when the container starts)" }
                    ),
                }))
            }
            "sink.pause" | "sink.resume" => {
                let q: NameParam = serde_json::from_value(p).map_err(|e| bad(op, e))?;
                let paused = op == "sink.pause";
                match live {
                    Some(s) => to_json(&s.set_paused(&q.name, paused).map_err(sink_error)?),
                    None => {
                        self.configured(&q.name)?;
                        self.store
                            .sinks
                            .set_flags(&q.name, &store::SinkFlags { paused })?;
                        let views = sinks::offline_views(
                            &self.settings.sinks,
                            &*self.log,
                            &self.store.sinks,
                        )
                        .map_err(sink_error)?;
                        to_json(&views.into_iter().find(|v| v.name == q.name))
                    }
                }
            }
            other => Err(OpError::new(
                OpErrorKind::Invalid,
                format!("unknown operation '{other}'"),
            )),
        }
    }

    /// `trigger-instance.re-emit`: a new instance with the original's
    /// trigger and payload, a new id, and a trace tag naming the original.
    pub(crate) async fn re_emit(&self, id: &str) -> Result<Value, OpError> {
        let log = self.log.clone();
        let key = id.to_string();
        let found = tokio::task::spawn_blocking(move || eventlog::query::get(&*log, &key))
            .await
            .map_err(|e| OpError::new(OpErrorKind::Internal, e.to_string()))??;
        let Some(orig) = found else {
            return Err(OpError::new(
                OpErrorKind::NotFound,
                format!("trigger instance '{id}' not found (it may have been removed by retention; see `sensorctl log stats`)"),
            ));
        };
        let tag = format!("re-emit-of-{}", orig.id);
        let params = container::dispatcher::DispatchParams {
            trigger: Value::String(orig.trigger.clone()),
            payload: orig.payload.clone(),
            trace_tag: Some(tag.clone()),
            trace_context: Some(json!({"trace_tag": tag, "re_emit_of": orig.id})),
        };
        let accepted = self
            .dispatcher
            .dispatch(orig.sensor.as_deref(), params)
            .map_err(|e| {
                OpError::new(
                    OpErrorKind::Invalid,
                    format!("cannot re-emit {}: {}", orig.id, e.message),
                )
            })?;
        let seq = accepted.completion.wait().await?;
        Ok(json!({
            "id": accepted.id,
            "seq": seq,
            "trigger": orig.trigger,
            "trace_tag": tag,
            "re_emit_of": orig.id,
        }))
    }
}
