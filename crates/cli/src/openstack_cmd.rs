//! `sensorctl receiver` and `sensorctl notification`: Senlin receivers
//! and Masakari notifications from the command line, with the fields and
//! rules of their HTTP APIs.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::output::print_json;
use crate::sensorctl::{s, table_or_json, Backend, JsonFlag};

#[derive(Debug, Subcommand)]
pub enum ReceiverCmd {
    /// Create a receiver; a webhook receiver's `alarm_url` triggers it
    Create {
        /// Name: 1–255 letters, digits, CJK or ._~-
        name: String,
        /// webhook (triggered by POSTing its alarm_url) or message (by /notify)
        #[arg(long = "type", default_value = "webhook")]
        kind: String,
        /// The target (required for webhook receivers)
        #[arg(long)]
        cluster_id: Option<String>,
        /// The preset operation (required for webhook receivers)
        #[arg(long)]
        action: Option<String>,
        /// A preset parameter KEY=VALUE (repeatable; a trigger's body overrides it)
        #[arg(long = "param", short = 'P', value_name = "KEY=VALUE")]
        params: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Receivers, sorted (default name); filters may repeat
    List(ReceiverListArgs),
    /// One receiver, by id, name or short id
    Get {
        /// Id, name or id prefix
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change a receiver's name, action or params (params are replaced whole)
    Update {
        /// Id, name or id prefix
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// KEY=VALUE (repeatable): the new params, replacing the old ones
        #[arg(long = "param", short = 'P', value_name = "KEY=VALUE")]
        params: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a receiver: its alarm_url answers 404 from then on
    Delete {
        /// Id, name or id prefix
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ReceiverListArgs {
    #[arg(long)]
    name: Vec<String>,
    #[arg(long = "type")]
    kind: Vec<String>,
    #[arg(long)]
    cluster_id: Vec<String>,
    #[arg(long)]
    action: Vec<String>,
    #[arg(long)]
    user: Vec<String>,
    /// key[:asc|desc],... over name, type, action, cluster_id, created_at, user
    #[arg(long)]
    sort: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    /// The id of the last receiver of the previous page
    #[arg(long)]
    marker: Option<String>,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum NotificationCmd {
    /// Notifications, newest first; filters are exact matches
    List {
        /// new, running, error, failed, ignored or finished
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long)]
        source_host_uuid: Option<String>,
        /// Only those generated at or after this ISO 8601 time
        #[arg(long)]
        generated_since: Option<String>,
        /// At most this many (≤ 1000)
        #[arg(long)]
        limit: Option<usize>,
        /// The id of the last notification of the previous page
        #[arg(long)]
        marker: Option<String>,
        /// Sort key (repeatable): created_at, type, generated_time, status, ...
        #[arg(long)]
        sort_key: Vec<String>,
        /// asc or desc (repeatable, one per --sort-key)
        #[arg(long)]
        sort_dir: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One notification, by uuid
    Get {
        uuid: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Move a notification along its lifecycle
    /// (new → running → finished | ignored | error; error → running once; → failed)
    SetStatus {
        uuid: String,
        /// running, finished, ignored, error or failed
        status: String,
        /// Why (stored as the notification's message)
        #[arg(long)]
        message: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

fn params_map(items: &[String]) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            bail!("--param {item:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--param {item:?}: the key is empty");
        }
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

fn receiver_table(json: JsonFlag, v: &Value) -> Result<()> {
    table_or_json(
        json,
        v,
        &["ID", "NAME", "TYPE", "CLUSTER", "ACTION", "CREATED"],
        |r| {
            vec![
                s(&r["id"]),
                s(&r["name"]),
                s(&r["type"]),
                s(&r["cluster_id"]),
                s(&r["action"]),
                s(&r["created_at"]),
            ]
        },
    )
}

fn receiver_detail(json: JsonFlag, v: &Value) -> Result<()> {
    if json.json {
        return print_json(v);
    }
    for k in [
        "id",
        "name",
        "type",
        "cluster_id",
        "action",
        "user",
        "created_at",
        "updated_at",
    ] {
        println!("{:<16} {}", format!("{k}:"), s(&v[k]));
    }
    println!("{:<16} {}", "params:", v["params"]);
    for (k, val) in v["channel"].as_object().into_iter().flatten() {
        println!("{:<16} {}", format!("{k}:"), s(val));
    }
    Ok(())
}

fn notification_detail(json: JsonFlag, v: &Value) -> Result<()> {
    if json.json {
        return print_json(v);
    }
    for k in [
        "notification_uuid",
        "id",
        "type",
        "status",
        "generated_time",
        "source_host_uuid",
        "failover_segment_uuid",
        "message",
        "created_at",
        "updated_at",
    ] {
        println!("{:<24} {}", format!("{k}:"), s(&v[k]));
    }
    println!("{:<24} {}", "payload:", v["payload"]);
    Ok(())
}

/// Run one `sensorctl receiver` command.
pub async fn receiver(backend: &Backend, cmd: ReceiverCmd) -> Result<()> {
    match cmd {
        ReceiverCmd::Create {
            name,
            kind,
            cluster_id,
            action,
            params,
            json,
        } => {
            let body = json!({"receiver": {
                "name": name, "type": kind, "cluster_id": cluster_id,
                "action": action, "params": params_map(&params)?,
            }});
            let v = backend.call("receiver.create", body).await?;
            receiver_detail(json, &v)?;
        }
        ReceiverCmd::List(a) => {
            let mut query: Vec<(String, String)> = Vec::new();
            for (k, vals) in [
                ("name", &a.name),
                ("type", &a.kind),
                ("cluster_id", &a.cluster_id),
                ("action", &a.action),
                ("user", &a.user),
            ] {
                query.extend(vals.iter().map(|v| (k.to_string(), v.clone())));
            }
            if let Some(sort) = a.sort {
                query.push(("sort".into(), sort));
            }
            if let Some(l) = a.limit {
                query.push(("limit".into(), l.to_string()));
            }
            if let Some(m) = a.marker {
                query.push(("marker".into(), m));
            }
            let v = backend
                .call("receiver.list", json!({"query": query}))
                .await?;
            receiver_table(a.json, &v)?;
        }
        ReceiverCmd::Get { id, json } => {
            let v = backend.call("receiver.get", json!({"id": id})).await?;
            receiver_detail(json, &v)?;
        }
        ReceiverCmd::Update {
            id,
            name,
            action,
            params,
            json,
        } => {
            let mut r = Map::new();
            if let Some(n) = name {
                r.insert("name".into(), json!(n));
            }
            if let Some(a) = action {
                r.insert("action".into(), json!(a));
            }
            if !params.is_empty() {
                r.insert("params".into(), Value::Object(params_map(&params)?));
            }
            if r.is_empty() {
                bail!("nothing to change: give --name, --action or --param");
            }
            let v = backend
                .call("receiver.update", json!({"id": id, "receiver": r}))
                .await?;
            receiver_detail(json, &v)?;
        }
        ReceiverCmd::Delete { id } => {
            let v = backend.call("receiver.delete", json!({"id": id})).await?;
            println!("Receiver '{}' ({}) deleted.", s(&v["name"]), s(&v["id"]));
        }
    }
    Ok(())
}

/// Run one `sensorctl notification` command.
pub async fn notification(backend: &Backend, cmd: NotificationCmd) -> Result<()> {
    match cmd {
        NotificationCmd::List {
            status,
            kind,
            source_host_uuid,
            generated_since,
            limit,
            marker,
            sort_key,
            sort_dir,
            json,
        } => {
            let mut query: Vec<(String, String)> = Vec::new();
            for (k, v) in [
                ("status", status),
                ("type", kind),
                ("source_host_uuid", source_host_uuid),
                ("generated-since", generated_since),
                ("limit", limit.map(|l| l.to_string())),
                ("marker", marker),
            ] {
                if let Some(v) = v {
                    query.push((k.into(), v));
                }
            }
            query.extend(sort_key.into_iter().map(|k| ("sort_key".to_string(), k)));
            query.extend(sort_dir.into_iter().map(|d| ("sort_dir".to_string(), d)));
            let v = backend
                .call("notification.list", json!({"query": query}))
                .await?;
            table_or_json(
                json,
                &v,
                &[
                    "UUID",
                    "TYPE",
                    "STATUS",
                    "GENERATED",
                    "SOURCE HOST",
                    "MESSAGE",
                ],
                |n| {
                    vec![
                        s(&n["notification_uuid"]),
                        s(&n["type"]),
                        s(&n["status"]),
                        s(&n["generated_time"]),
                        s(&n["source_host_uuid"]),
                        s(&n["message"]),
                    ]
                },
            )?;
        }
        NotificationCmd::Get { uuid, json } => {
            let v = backend
                .call("notification.get", json!({"id": uuid}))
                .await?;
            notification_detail(json, &v)?;
        }
        NotificationCmd::SetStatus {
            uuid,
            status,
            message,
            json,
        } => {
            let v = backend
                .call(
                    "notification.set-status",
                    json!({"id": uuid, "status": status, "message": message}),
                )
                .await?;
            if json.json {
                return print_json(&v);
            }
            println!(
                "Notification {} is {}.",
                s(&v["notification_uuid"]),
                s(&v["status"])
            );
        }
    }
    Ok(())
}
