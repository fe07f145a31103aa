//! Hints that st2's triggers changed: st2 publishes every trigger create,
//! update and delete on the topic exchange `<prefix>.trigger` (pickled
//! mongoengine documents). We consume it on an exclusive auto-delete queue
//! and take any message only as "read the triggers again now"; the
//! documents themselves are never decoded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Notify;

use super::publisher::{parse_uri, redact};

/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Watch `<prefix>.trigger` on the first broker of `urls` that answers,
/// waking `hint` on every message; reconnects with backoff for ever (run it
/// as a task and abort it to stop).
pub async fn trigger_hints(
    urls: Vec<String>,
    prefix: String,
    connect_timeout: Duration,
    hint: Arc<Notify>,
) {
    let exchange = format!("{prefix}.trigger");
    let mut backoff = Duration::from_millis(500);
    let mut next = 0usize;
    let mut reported = false;
    loop {
        for i in 0..urls.len() {
            let url = &urls[(next + i) % urls.len()];
            match watch_once(url, &exchange, connect_timeout, &hint).await {
                Ok(()) => {
                    // It was up and then went away: start over quickly.
                    next = (next + i) % urls.len();
                    backoff = Duration::from_millis(500);
                    reported = false;
                    // A change may have gone by unseen while disconnected.
                    hint.notify_one();
                }
                Err(e) if !reported => {
                    tracing::warn!(
                        "st2 trigger hints: {}: {e}; st2's triggers are still read every poll interval",
                        redact(url)
                    );
                    reported = true;
                }
                Err(_) => {}
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: set up, then consume until it breaks. `Ok` when it was
/// consuming (and then lost), `Err` when it could not get that far.
async fn watch_once(
    url: &str,
    exchange: &str,
    connect_timeout: Duration,
    hint: &Notify,
) -> Result<(), String> {
    let setup = async {
        let uri = parse_uri(url, connect_timeout)?;
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current())
            .with_connection_name("sensorcontainer st2 trigger hints".into());
        let conn = Connection::connect_uri(uri, props)
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        // st2 declares it this way (kombu: topic, durable).
        ch.exchange_declare(
            exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("exchange {exchange}: {e}"))?;
        let q = ch
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("queue: {e}"))?;
        let name = q.name().as_str().to_string();
        ch.queue_bind(&name, exchange, "#", QueueBindOptions::default(), FieldTable::default())
            .await
            .map_err(|e| format!("bind {name} to {exchange}: {e}"))?;
        let consumer = ch
            .basic_consume(
                &name,
                "sensorcontainer-trigger-hints",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("consume {name}: {e}"))?;
        Ok::<_, String>((conn, consumer))
    };
    let (conn, mut consumer) = tokio::time::timeout(connect_timeout, setup)
        .await
        .map_err(|_| format!("no answer within {connect_timeout:?}"))??;
    tracing::info!("st2 trigger hints: watching {exchange} on {}", redact(url));
    while let Some(d) = consumer.next().await {
        let Ok(d) = d else { break };
        hint.notify_one();
        let _ = d.ack(BasicAckOptions::default()).await;
    }
    drop(conn);
    Ok(())
}
