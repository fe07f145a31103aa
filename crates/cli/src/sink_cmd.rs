//! `sensorctl sink`: the delivery side from the command line.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::json;

use crate::output::print_json;
use crate::sensorctl::{s, table_or_json, Backend, JsonFlag};

#[derive(Debug, Subcommand)]
pub enum SinkCmd {
    /// Sinks: type, state (ok, retrying, paused, stopped), cursor, lag,
    /// delivered, retries, dead letters, last error
    List(JsonFlag),
    /// Instances a sink gave up on, oldest first, with the reason
    DeadLetters {
        /// Sink name
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Deliver dead letters again, in log order, before anything new
    Retry {
        /// Sink name
        name: String,
        /// A dead letter's instance id or seq (repeatable)
        #[arg(long = "id", value_name = "ID", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every dead letter of the sink
        #[arg(long)]
        all: bool,
    },
    /// Stop delivering (the cursor stays; remembered across restarts)
    Pause {
        /// Sink name
        name: String,
    },
    /// Deliver again after `pause`
    Resume {
        /// Sink name
        name: String,
    },
}

/// Run one `sensorctl sink` command.
pub async fn run(backend: &Backend, cmd: SinkCmd) -> Result<()> {
    match cmd {
        SinkCmd::List(f) => {
            let v = backend.call("sink.list", json!({})).await?;
            table_or_json(
                f,
                &v,
                &[
                    "NAME",
                    "TYPE",
                    "STATE",
                    "CURSOR",
                    "LAG",
                    "DELIVERED",
                    "RETRIES",
                    "DEAD",
                    "LAST ERROR",
                ],
                |k| {
                    vec![
                        s(&k["name"]),
                        s(&k["type"]),
                        s(&k["state"]),
                        s(&k["cursor"]),
                        s(&k["lag"]),
                        s(&k["delivered"]),
                        s(&k["retries"]),
                        s(&k["dead_letters"]),
                        s(&k["last_error"]),
                    ]
                },
            )?;
        }
        SinkCmd::DeadLetters { name, json } => {
            let v = backend
                .call("sink.dead-letters", json!({"name": name}))
                .await?;
            table_or_json(
                json,
                &v,
                &[
                    "SEQ",
                    "ID",
                    "TRIGGER",
                    "REASON",
                    "ATTEMPTS",
                    "AT",
                    "REQUEUED",
                    "LAST ERROR",
                ],
                |l| {
                    vec![
                        s(&l["seq"]),
                        s(&l["id"]),
                        s(&l["trigger"]),
                        s(&l["reason"]),
                        s(&l["attempts"]),
                        s(&l["at"]),
                        s(&l["requeued"]),
                        s(&l["last_error"]),
                    ]
                },
            )?;
        }
        SinkCmd::Retry { name, ids, all } => {
            if ids.is_empty() && !all {
                bail!("give --id ID (one or more) or --all");
            }
            let v = backend
                .call("sink.retry", json!({"name": name, "ids": ids, "all": all}))
                .await?;
            println!("{}", s(&v["message"]));
        }
        SinkCmd::Pause { name } => {
            let v = backend.call("sink.pause", json!({"name": name})).await?;
            println!(
                "Sink '{}' paused (state: {}).",
                s(&v["name"]),
                s(&v["state"])
            );
        }
        SinkCmd::Resume { name } => {
            let v = backend.call("sink.resume", json!({"name": name})).await?;
            println!(
                "Sink '{}' resumed (state: {}).",
                s(&v["name"]),
                s(&v["state"])
            );
        }
    }
    Ok(())
}

/// `trigger-instance re-emit`.
pub async fn re_emit(backend: &Backend, id: &str, json: JsonFlag) -> Result<()> {
    let v = backend
        .call("trigger-instance.re-emit", json!({"id": id}))
        .await?;
    if json.json {
        return print_json(&v);
    }
    println!(
        "Re-emitted {} as {} (seq {}, trace tag {}).",
        s(&v["re_emit_of"]),
        s(&v["id"]),
        s(&v["seq"]),
        s(&v["trace_tag"])
    );
    Ok(())
}
