//! `openstack.NotificationListener`: oslo.messaging notifications off
//! RabbitMQ as `openstack.notification` trigger instances, written with
//! the Rust SDK (`crates/sdk`).
//!
//! It declares what oslo's listener declares — the topic exchange
//! (`exchange`, oslo's `control_exchange`) and per topic and priority the
//! queue `<topic>.<priority>` (or one `pool` queue bound to all of them)
//! — and consumes with `prefetch` messages in flight. Each message is
//! decoded ([`envelope`]: messaging v2 or v1), filtered ([`filter`]),
//! de-duplicated on its `_unique_id` ([`dedupe`]) and dispatched; it is
//! acked to RabbitMQ only once the container says its instance is durable
//! (oslo's own delivery is at-most-once). A dispatch the container refuses
//! (validation) is acked and counted; with the container gone nothing more
//! is acked, and RabbitMQ redelivers. A lost broker is reconnected with
//! backoff, URL by URL.
//!
//! Built by `cargo build -p openstack-notification-listener`; the
//! container runs it through `../sensors/notification_listener.sh`.

mod config;
mod dedupe;
mod envelope;
mod filter;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{select_all, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use sdk::{BoxError, Error, Sensor, SensorService};
use serde::Serialize;
use serde_json::{json, Value};

use config::{redact, Config};
use dedupe::Dedupe;

/// The trigger type this sensor declares.
const TRIGGER: &str = "openstack.notification";
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Deadline of the connection and its set-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The payload of `openstack.notification`.
#[derive(Serialize)]
struct Event<'a> {
    priority: &'a str,
    publisher_id: &'a str,
    event_type: &'a str,
    payload: &'a Value,
    context: &'a serde_json::Map<String, Value>,
    message_id: &'a str,
    timestamp: &'a str,
}

/// What happened to the messages (logged at exit and every minute).
#[derive(Default)]
struct Counters {
    dispatched: AtomicU64,
    filtered: AtomicU64,
    duplicates: AtomicU64,
    undecodable: AtomicU64,
    refused: AtomicU64,
}

impl Counters {
    fn line(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} dispatched, {} filtered out, {} duplicates, {} undecodable, {} refused by the container",
            g(&self.dispatched),
            g(&self.filtered),
            g(&self.duplicates),
            g(&self.undecodable),
            g(&self.refused)
        )
    }
}

struct Listener {
    counters: Arc<Counters>,
}

/// Why a session ended.
enum Ended {
    /// The broker connection broke (or could not be made): reconnect.
    Broker(String),
    /// The container connection closed: exit, acking nothing more.
    Container,
}

impl Sensor for Listener {
    async fn run(&self, svc: &SensorService) -> Result<(), BoxError> {
        let cfg = Config::from_value(svc.config())?;
        tracing::info!(
            "NotificationListener: exchange {}, {} queue binding(s), brokers {}",
            cfg.exchange,
            cfg.bindings().len(),
            cfg.urls.iter().map(|u| redact(u)).collect::<Vec<_>>().join(", ")
        );
        let dedupe = Arc::new(Mutex::new(Dedupe::new(cfg.dedupe_window)));
        let mut backoff = Duration::from_millis(250);
        let mut next = 0usize;
        loop {
            let url = cfg.urls[next % cfg.urls.len()].clone();
            match session(&cfg, &url, svc, &dedupe, &self.counters).await {
                Ended::Container => {
                    return Err("the connection to the container closed".into());
                }
                Ended::Broker(why) => {
                    tracing::warn!(
                        "NotificationListener: {}: {why}; reconnecting in {backoff:?} ({})",
                        redact(&url),
                        self.counters.line()
                    );
                    next += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn cleanup(&self, _svc: &SensorService) -> Result<(), BoxError> {
        tracing::info!("NotificationListener: {}", self.counters.line());
        Ok(())
    }
}

/// Connect, declare, consume until something breaks.
async fn session(
    cfg: &Config,
    url: &str,
    svc: &SensorService,
    dedupe: &Arc<Mutex<Dedupe>>,
    counters: &Arc<Counters>,
) -> Ended {
    let setup = async {
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current())
            .with_connection_name("openstack.NotificationListener".into());
        let mut uri: lapin::uri::AMQPUri = url
            .parse()
            .map_err(|e| format!("not an AMQP URL: {e}"))?;
        if uri.vhost.is_empty() {
            // kombu's and oslo's reading of amqp://host:5672/.
            uri.vhost = "/".into();
        }
        let conn = Connection::connect_uri(uri, props)
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        ch.basic_qos(cfg.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        ch.exchange_declare(
            &cfg.exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: cfg.durable,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("exchange {}: {e} (durable_queues must match oslo's amqp_durable_queues)", cfg.exchange))?;
        let mut args = FieldTable::default();
        if cfg.quorum {
            args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        }
        let mut queues: Vec<String> = Vec::new();
        for (queue, key) in cfg.bindings() {
            if !queues.contains(&queue) {
                ch.queue_declare(
                    &queue,
                    QueueDeclareOptions {
                        durable: cfg.durable,
                        ..QueueDeclareOptions::default()
                    },
                    args.clone(),
                )
                .await
                .map_err(|e| format!("queue {queue}: {e}"))?;
                queues.push(queue.clone());
            }
            ch.queue_bind(&queue, &cfg.exchange, &key, QueueBindOptions::default(), FieldTable::default())
                .await
                .map_err(|e| format!("bind {queue} to {} as {key}: {e}", cfg.exchange))?;
        }
        let mut consumers = Vec::new();
        for q in &queues {
            let c = ch
                .basic_consume(
                    q,
                    &format!("{}-{q}", svc.sensor_ref()),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("consume {q}: {e}"))?;
            consumers.push(c);
        }
        Ok::<_, String>((conn, queues, consumers))
    };
    let (conn, queues, consumers) = match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Ended::Broker(e),
        Err(_) => return Ended::Broker(format!("no answer within {CONNECT_TIMEOUT:?}")),
    };
    tracing::info!(
        "NotificationListener: consuming {} on {}",
        queues.join(", "),
        redact(url)
    );
    let mut deliveries = select_all(consumers);
    let ended = loop {
        let Some(next) = deliveries.next().await else {
            break Ended::Broker("the consumers were cancelled".into());
        };
        let delivery = match next {
            Ok(d) => d,
            Err(e) => break Ended::Broker(e.to_string()),
        };
        if svc.is_closed() {
            break Ended::Container;
        }
        if let Err(Ended::Container) = handle(cfg, svc, dedupe, counters, delivery).await {
            break Ended::Container;
        }
    };
    drop(conn);
    ended
}

/// One message: decode, filter, dedupe, dispatch; the ack waits for the
/// instance to be durable (in a task, so messages keep flowing).
async fn handle(
    cfg: &Config,
    svc: &SensorService,
    dedupe: &Arc<Mutex<Dedupe>>,
    counters: &Arc<Counters>,
    delivery: Delivery,
) -> Result<(), Ended> {
    let ack = |d: Delivery| async move {
        let _ = d.ack(BasicAckOptions::default()).await;
    };
    let n = match envelope::decode(&delivery.data) {
        Ok(n) => n,
        Err(why) => {
            counters.undecodable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "NotificationListener: message on {} dropped (acked): {why}",
                delivery.routing_key
            );
            ack(delivery).await;
            return Ok(());
        }
    };
    let metadata = json!({"message_id": n.message_id, "timestamp": n.timestamp});
    if !cfg
        .filter
        .matches(&n.event_type, &n.publisher_id, &n.context, &metadata, &n.payload)
    {
        counters.filtered.fetch_add(1, Ordering::Relaxed);
        ack(delivery).await;
        return Ok(());
    }
    if let Some(id) = &n.unique_id {
        if lock(dedupe).seen(id) {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
            ack(delivery).await;
            return Ok(());
        }
    }
    let event = Event {
        priority: &n.priority,
        publisher_id: &n.publisher_id,
        event_type: &n.event_type,
        payload: &n.payload,
        context: &n.context,
        message_id: &n.message_id,
        timestamp: &n.timestamp,
    };
    let pending = match svc.dispatch(TRIGGER, &event).await {
        Ok(h) => h,
        Err(Error::Closed) => return Err(Ended::Container),
        Err(e) => {
            // Too large or not encodable: it will never be stored.
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("NotificationListener: {} not dispatched (acked): {e}", n.event_type);
            ack(delivery).await;
            return Ok(());
        }
    };
    let (dedupe, counters) = (dedupe.clone(), counters.clone());
    tokio::spawn(async move {
        match pending.ack().await {
            Ok(_) => {
                counters.dispatched.fetch_add(1, Ordering::Relaxed);
                if let Some(id) = n.unique_id {
                    lock(&dedupe).insert(id);
                }
                ack(delivery).await;
            }
            Err(Error::Closed) => {
                // Not known to be stored: leave it to the broker to
                // redeliver (the connection closes with the sensor).
            }
            Err(e) if matches!(e.code(), Some(-32010) | Some(-32011) | Some(-32602)) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "NotificationListener: {} refused by the container (acked): {e}",
                    n.event_type
                );
                ack(delivery).await;
            }
            Err(e) => {
                // Storage failing: try it again later.
                tracing::warn!(
                    "NotificationListener: {} not stored, requeued: {e}",
                    n.event_type
                );
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await;
            }
        }
    });
    Ok(())
}

fn lock(d: &Mutex<Dedupe>) -> std::sync::MutexGuard<'_, Dedupe> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

fn main() -> ExitCode {
    sdk::run(Listener {
        counters: Arc::new(Counters::default()),
    })
}
