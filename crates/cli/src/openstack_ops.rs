//! The `receiver.*` and `notification.*` operations: the Senlin and
//! Masakari front doors from `sensorctl`, one implementation with the
//! HTTP routes ([`api::openstack`]), inside the container or without
//! one.

use serde::Deserialize;
use serde_json::{json, Value};

use api::openstack::Caller;

use crate::ops::{params, IdParam, OpError, OpErrorKind, Ops};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryParams {
    /// Query parameters, as the HTTP list routes take them.
    #[serde(default)]
    query: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    id: String,
    receiver: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusParams {
    id: String,
    status: String,
    message: Option<String>,
}

impl Ops {
    /// Run one `receiver.*` / `notification.*` operation.
    pub(crate) async fn openstack_op(&self, op: &str, p: Value) -> Result<Value, OpError> {
        let os = &self.openstack;
        match op {
            // `p` is the HTTP body: {"receiver": {...}}.
            "receiver.create" => Ok(os.receiver_create(&Caller::operator(), &p)?),
            "receiver.list" => {
                let QueryParams { query } = params(op, p)?;
                Ok(json!(os.receiver_list(&query)?))
            }
            "receiver.get" => {
                let IdParam { id } = params(op, p)?;
                Ok(os.receiver_view(&os.receiver_find(&id)?))
            }
            "receiver.update" => {
                let UpdateParams { id, receiver } = params(op, p)?;
                Ok(os.receiver_update(&id, &json!({ "receiver": receiver }))?)
            }
            "receiver.delete" => {
                let IdParam { id } = params(op, p)?;
                let rec = os.receiver_find(&id)?;
                os.receiver_delete(&rec.id)?;
                Ok(json!({"id": rec.id, "name": rec.name}))
            }
            "notification.list" => {
                let QueryParams { query } = params(op, p)?;
                Ok(json!(os.notification_list(&query)?.items))
            }
            "notification.get" => {
                let IdParam { id } = params(op, p)?;
                Ok(os.notification_get(&id)?)
            }
            "notification.set-status" => {
                let StatusParams {
                    id,
                    status,
                    message,
                } = params(op, p)?;
                Ok(os.notification_set_status(&id, &status, message).await?)
            }
            other => Err(OpError::new(
                OpErrorKind::NotFound,
                format!("unknown operation '{other}'"),
            )),
        }
    }
}
