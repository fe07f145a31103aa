//! Delivery onto StackStorm's own bus (`type: st2`, `crates/sinks/src/st2`)
//! by the real `sensorcontainer`, beside what RabbitMQ takes from a bare
//! client publishing the same way, measured in the same run:
//!
//! - *Drain.* A private RabbitMQ node (Debian's `rabbitmq-server`, run as
//!   this user, see [`RabbitServer`] in `rows/rabbit.rs`) with the exchange
//!   `st2.trigger_instances_dispatch` (durable topic) and one durable queue
//!   bound to it with `#` (standing in for st2's rules engine's: without a
//!   queue the sink's `mandatory` messages come back and are retried). The
//!   log is filled first (the Rust SDK sensor dispatches N with the sink
//!   paused), then the sink is resumed and timed until `sink.list`'s
//!   `delivered` reaches N or a time limit passes.
//! - *Limit.* One message the sink stored is taken back from the queue and
//!   its body published again by lapin in this process: one connection,
//!   one confirm-mode channel, the sink's exchange, routing key, properties
//!   and `mandatory`, in windows of 256 (publish them, then await their
//!   confirms in order, as `St2Sink::deliver` does with one batch).
//! - *For scale: st2's path shape.* st2's own publisher (`PoolPublisher`)
//!   takes a channel per message and asks for no confirm. The same body by
//!   lapin that way: open a channel, publish, close the channel, one after
//!   another. The shape of st2's path, not st2's Python code.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use sinks::st2::message;
use tokio::runtime::Runtime;

use super::rabbit::{
    connect, connect_retrying, group_cpu_secs, within, RabbitServer, BROKER_TIMEOUT,
};
use super::sinks::{self as sink_rows, Drain, Peer, ACK_TIMEOUT, TRIGGER, WARM_UP};
use crate::live::{self, Bins};

/// The exchange st2's rules engine reads trigger instances from (the
/// default prefix `st2`).
pub const EXCHANGE: &str = "st2.trigger_instances_dispatch";
/// The queue standing in for st2's rules engine's.
pub const QUEUE: &str = "sc_bench.rules_engine";
/// The `st2` sink's default `batch_max`: its publisher-confirm window.
pub const ST2_WINDOW: usize = 256;

// --- the bench's AMQP client ------------------------------------------------------

/// The bench's own channel (no confirms): the topology, the queue's
/// count, purges.
struct Admin {
    conn: Connection,
    channel: Channel,
}

impl Admin {
    async fn open(url: &str) -> Result<Admin> {
        let conn = connect_retrying(url, "sc-bench admin", Duration::from_secs(30)).await?;
        let channel = within("open a channel", BROKER_TIMEOUT, conn.create_channel()).await?;
        Ok(Admin { conn, channel })
    }

    /// The exchange as st2 (and the sink) declares it, and the stand-in
    /// for the rules engine's queue, bound with `#`.
    async fn declare(&self) -> Result<()> {
        within(
            "declare the exchange",
            BROKER_TIMEOUT,
            self.channel.exchange_declare(
                EXCHANGE,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        within(
            "declare the queue",
            BROKER_TIMEOUT,
            self.channel.queue_declare(
                QUEUE,
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        within(
            "bind the queue",
            BROKER_TIMEOUT,
            self.channel.queue_bind(
                QUEUE,
                EXCHANGE,
                "#",
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
    }

    /// Messages ready in the queue.
    async fn queued(&self) -> Result<u64> {
        let q = within(
            "count the queue's messages",
            BROKER_TIMEOUT,
            self.channel.queue_declare(
                QUEUE,
                QueueDeclareOptions {
                    passive: true,
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(u64::from(q.message_count()))
    }

    /// Take one message off the queue: its body, checked to be what the
    /// sink sends (pickle content type).
    async fn take_one(&self) -> Result<Vec<u8>> {
        let mut m = within(
            "get a message",
            BROKER_TIMEOUT,
            self.channel
                .basic_get(QUEUE, BasicGetOptions { no_ack: true }),
        )
        .await?
        .with_context(|| format!("queue {QUEUE} is empty"))?;
        let ct = m
            .delivery
            .properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str().to_string());
        if ct.as_deref() != Some(message::CONTENT_TYPE) {
            bail!(
                "the sink's message has content type {ct:?}, not {}",
                message::CONTENT_TYPE
            );
        }
        Ok(std::mem::take(&mut m.delivery.data))
    }

    async fn purge(&self) -> Result<u64> {
        let n = within(
            "purge the queue",
            BROKER_TIMEOUT,
            self.channel.queue_purge(QUEUE, QueuePurgeOptions::default()),
        )
        .await?;
        Ok(u64::from(n))
    }

    async fn close(self) {
        let _ = within("close", BROKER_TIMEOUT, self.conn.close(200, "done")).await;
    }
}

/// The sink's message properties (`St2Sink::deliver`).
fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type(message::CONTENT_TYPE.into())
        .with_content_encoding(message::CONTENT_ENCODING.into())
        .with_delivery_mode(2)
}

/// How the raw publisher sends.
enum Publisher {
    /// One confirm-mode channel; publish `window`, then await their
    /// confirms in order, repeat (the sink's way), `mandatory`.
    Confirmed { channel: Channel, window: usize },
    /// st2's shape: per message, open a channel, publish (no confirm mode,
    /// not `mandatory`, as kombu's default), close the channel.
    ChannelPerMessage { conn: Connection },
}

impl Publisher {
    /// Publish `body` until `until`; returns the messages sent (confirmed,
    /// for [`Publisher::Confirmed`]).
    async fn until(&self, body: &[u8], until: Instant) -> Result<u64> {
        let mut sent = 0u64;
        match self {
            Publisher::Confirmed { channel, window } => {
                let opts = BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                };
                let props = properties();
                while Instant::now() < until {
                    let mut confirms = Vec::with_capacity(*window);
                    for _ in 0..*window {
                        confirms.push(
                            within(
                                "publish",
                                BROKER_TIMEOUT,
                                channel.basic_publish(
                                    EXCHANGE,
                                    message::ROUTING_KEY,
                                    opts,
                                    body,
                                    props.clone(),
                                ),
                            )
                            .await?,
                        );
                    }
                    for c in confirms {
                        match tokio::time::timeout(ACK_TIMEOUT, c).await {
                            Ok(Ok(Confirmation::Ack(None))) => sent += 1,
                            Ok(Ok(Confirmation::Ack(Some(ret)))) => bail!(
                                "no queue took a message: {EXCHANGE} returned it ({})",
                                ret.reply_text
                            ),
                            Ok(Ok(other)) => bail!("the broker did not ack a publish: {other:?}"),
                            Ok(Err(e)) => bail!("confirm from {EXCHANGE}: {e}"),
                            Err(_) => bail!("no confirm within {ACK_TIMEOUT:?}"),
                        }
                    }
                }
            }
            Publisher::ChannelPerMessage { conn } => {
                let props = properties();
                while Instant::now() < until {
                    let channel =
                        within("open a channel", BROKER_TIMEOUT, conn.create_channel()).await?;
                    let unconfirmed = within(
                        "publish",
                        BROKER_TIMEOUT,
                        channel.basic_publish(
                            EXCHANGE,
                            message::ROUTING_KEY,
                            BasicPublishOptions::default(),
                            body,
                            props.clone(),
                        ),
                    )
                    .await?;
                    // Not in confirm mode: `NotRequested`, ready at once (no
                    // broker round trip); taken so that lapin does not keep
                    // it as a dropped confirm.
                    match unconfirmed.await {
                        Ok(Confirmation::NotRequested) => {}
                        Ok(other) => bail!("a channel without confirms answered {other:?}"),
                        Err(e) => bail!("publish to {EXCHANGE}: {e}"),
                    }
                    within("close the channel", BROKER_TIMEOUT, channel.close(200, "done"))
                        .await?;
                    sent += 1;
                }
            }
        }
        Ok(sent)
    }

    /// Close what the publisher holds; errors ignored (the run is over).
    async fn close(self) {
        match self {
            Publisher::Confirmed { channel, .. } => {
                let _ = within("close", BROKER_TIMEOUT, channel.close(200, "done")).await;
            }
            Publisher::ChannelPerMessage { conn } => {
                let _ = within("close", BROKER_TIMEOUT, conn.close(200, "done")).await;
            }
        }
    }
}

/// One publishing phase of the raw client.
#[derive(Debug, Clone, Copy)]
pub struct Publishes {
    /// Sent in the warm-up (in the queue too).
    pub warm: u64,
    /// Sent (for the limit: confirmed) in the measured part.
    pub messages: u64,
    pub secs: f64,
    /// CPU over the measured part: this process, the broker's processes.
    pub bench_cpu: f64,
    pub broker_cpu: f64,
}

impl Publishes {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

/// [`Publisher::until`] for a warm-up, then for `dur`.
async fn publish_for(p: &Publisher, body: &[u8], dur: Duration, pgid: u32) -> Result<Publishes> {
    let warm = p.until(body, Instant::now() + WARM_UP).await?;
    let me = std::process::id();
    let (b0, r0) = (live::cpu_secs(me)?, group_cpu_secs(pgid)?);
    let start = Instant::now();
    let messages = p.until(body, start + dur).await?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Publishes {
        warm,
        messages,
        secs,
        bench_cpu: live::cpu_secs(me)? - b0,
        broker_cpu: group_cpu_secs(pgid)? - r0,
    })
}

/// [`publish_for`] in a task of the runtime (on a worker thread, as the
/// sink's deliveries run in the container), then the publisher closed.
async fn publish_task(
    p: Publisher,
    body: Arc<Vec<u8>>,
    dur: Duration,
    pgid: u32,
) -> Result<Publishes> {
    tokio::spawn(async move {
        let r = publish_for(&p, &body, dur, pgid).await;
        p.close().await;
        r
    })
    .await
    .context("the st2 limit task panicked")?
}

// --- the row -----------------------------------------------------------------------

/// How much the drain delivers, and how long the raw publishers run.
#[derive(Debug, Clone, Copy)]
pub struct St2Plan {
    /// Instances stored before the drain.
    pub fill: u64,
    /// The drain stops once it delivered them all or after this long.
    pub max: Duration,
    /// Each run of the limit (after a warm-up), and how many runs (the
    /// fastest is kept).
    pub limit_secs: Duration,
    pub limit_runs: usize,
    /// The st2-shaped publisher (after a warm-up), one run.
    pub path_secs: Duration,
}

/// The row's outcome.
pub struct St2Run {
    pub fill: u64,
    pub fill_rate: f64,
    pub drain: Drain,
    /// Messages in the queue after the drain (≥ `drain.delivered`).
    pub queued: u64,
    /// The pickled body the sink sent (the one the raw publishers send).
    pub body_bytes: usize,
    /// Confirmed windows of [`ST2_WINDOW`]: the fastest run.
    pub limit: Publishes,
    /// Channel per message, no confirms.
    pub path: Publishes,
    /// Messages in the queue after that phase (warm-up included).
    pub path_queued: u64,
}

/// The `st2` sink's drain into a private RabbitMQ node, then the raw
/// publishers against the same node.
pub fn run(bins: &Bins, rt: &Runtime, rabbit_bin: &Path, plan: St2Plan) -> Result<St2Run> {
    let t = Instant::now();
    let rabbit = RabbitServer::start(rabbit_bin)?;
    let url = rabbit.url();
    let pgid = rabbit.pgid();
    let admin = rt.block_on(async {
        let admin = Admin::open(&url).await?;
        admin.declare().await?;
        Ok::<_, anyhow::Error>(admin)
    })?;
    eprintln!(
        "  RabbitMQ node up on {} in {:.1} s; exchange {EXCHANGE}, queue {QUEUE} bound with #",
        sinks::st2::publisher::redact(&url),
        t.elapsed().as_secs_f64()
    );

    let ws = sink_rows::workspace_with(
        bins,
        &format!("st2:\n  url: '{url}'\n"),
        &format!("  - {{name: st2, type: st2, start: earliest, triggers: ['{TRIGGER}']}}\n"),
    )?;
    // Through the embedded backend: the container is not running yet.
    ws.sensorctl(&["sink", "pause", "st2"])?;
    let mut c = ws.start(&[], &[])?;
    c.wait_api(Duration::from_secs(30))?;
    let (n, fill_rate) = sink_rows::fill_log(&ws, &mut c, plan.fill, "the sink paused")?;
    let broker_cpu = || rabbit.cpu_secs();
    let drain = sink_rows::drain(
        &mut c,
        "st2",
        n,
        plan.max,
        None,
        Some(Peer {
            name: "rabbitmq-server",
            cpu: &broker_cpu,
        }),
    )?;
    c.stop(Duration::from_secs(30))?;

    let out = rt.block_on(async {
        let queued = admin.queued().await?;
        if queued < drain.delivered {
            bail!(
                "queue {QUEUE} holds {queued} messages, the sink said it delivered {}",
                drain.delivered
            );
        }
        let body = Arc::new(admin.take_one().await?);
        let purged = admin.purge().await?;
        eprintln!(
            "  queue {QUEUE} held {queued} messages after the drain; one taken back (a {} B pickled body, what the limits send), {purged} purged",
            body.len()
        );

        let conn = connect(&url, "sc-bench st2 limit").await?;
        let mut best: Option<Publishes> = None;
        for _ in 0..plan.limit_runs.max(1) {
            admin.purge().await?;
            let channel = within("open a channel", BROKER_TIMEOUT, conn.create_channel()).await?;
            within(
                "confirm.select",
                BROKER_TIMEOUT,
                channel.confirm_select(ConfirmSelectOptions::default()),
            )
            .await?;
            let p = Publisher::Confirmed {
                channel,
                window: ST2_WINDOW,
            };
            let r = publish_task(p, body.clone(), plan.limit_secs, pgid).await?;
            eprintln!(
                "  limit: raw lapin confirmed publishes of the {} B body, windows of {ST2_WINDOW}: {} in {:.2} s = {:.0}/s; CPU per message: sc-bench {:.1} µs, rabbitmq-server {:.1} µs",
                body.len(),
                r.messages,
                r.secs,
                r.rate(),
                1e6 * r.bench_cpu / r.messages.max(1) as f64,
                1e6 * r.broker_cpu / r.messages.max(1) as f64
            );
            if best.as_ref().is_none_or(|b| r.rate() > b.rate()) {
                best = Some(r);
            }
        }
        let _ = within("close", BROKER_TIMEOUT, conn.close(200, "done")).await;
        let limit = best.context("no st2 limit run")?;

        admin.purge().await?;
        let conn = connect(&url, "sc-bench st2 path shape").await?;
        let path = publish_task(
            Publisher::ChannelPerMessage { conn },
            body.clone(),
            plan.path_secs,
            pgid,
        )
        .await?;
        let path_queued = admin.queued().await?;
        eprintln!(
            "  st2's path shape (channel per message, no confirms), lapin: {} in {:.2} s = {:.0}/s; CPU per message: sc-bench {:.1} µs, rabbitmq-server {:.1} µs; the queue then held {path_queued} of the {} sent (warm-up included)",
            path.messages,
            path.secs,
            path.rate(),
            1e6 * path.bench_cpu / path.messages.max(1) as f64,
            1e6 * path.broker_cpu / path.messages.max(1) as f64,
            path.warm + path.messages
        );
        admin.purge().await?;
        admin.close().await;
        Ok::<_, anyhow::Error>(St2Run {
            fill: n,
            fill_rate,
            drain,
            queued,
            body_bytes: body.len(),
            limit,
            path,
            path_queued,
        })
    })?;
    drop(rabbit);
    Ok(out)
}
