//! `openstack.NotificationListener` (the openstack pack's oslo.messaging
//! notification listener, `packs/openstack/listener`, a Rust SDK sensor run
//! as `runner_type: exec`) in the real `sensorcontainer`, beside a bare
//! lapin consumer of the same messages, measured in the same run:
//!
//! - *End to end.* A private RabbitMQ node ([`RabbitServer`]) with what
//!   oslo's notifier declares: the topic exchange `openstack` and the queue
//!   `notifications.info` bound to it with `notifications.info`, both
//!   non-durable (oslo's default `amqp_durable_queues = False`). N
//!   notifications are published into it first (publisher confirms, so
//!   they are all there before anything is timed), each the body
//!   oslo.messaging's `messagingv2` driver sends for Nova's
//!   `compute.instance.create.end`. Then the container starts with only
//!   the listener (`--sensor-ref`), which consumes, dispatches each
//!   notification as `openstack.notification` and acks each message once
//!   its instance is durable; timed from its `NotificationListener:
//!   consuming` log line until N instances are durable.
//! - *Limit.* The queue is filled again with the same N bodies, and a lapin
//!   consumer in this process takes them: one connection, one channel,
//!   `basic.qos` 64 (the listener's default prefetch), both JSON layers of
//!   each body parsed (the listener must parse both), each message acked on
//!   its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueuePurgeOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use uuid::Uuid;

use super::rabbit::{
    connect, connect_retrying, group_cpu_secs, within, RabbitServer, BROKER_TIMEOUT,
};
use super::sinks::ACK_TIMEOUT;
use crate::live::{self, Bins, Running, Workspace};

/// The sensor under test.
pub const SENSOR_REF: &str = "openstack.NotificationListener";
/// The trigger it dispatches every notification to.
pub const TRIGGER: &str = "openstack.notification";
/// Its binary (the `openstack-notification-listener` package).
pub const LISTENER_BIN: &str = "openstack-notification-listener";
/// oslo's `control_exchange` default, the listener's `exchange` default.
pub const EXCHANGE: &str = "openstack";
/// `<topic>.<priority>` for the default topic `notifications` and the
/// priority `info`: the queue oslo's notifier declares, and its binding key.
pub const QUEUE: &str = "notifications.info";
/// The listener's default `prefetch` (`config.schema.yaml`), the limit's
/// `basic.qos`.
pub const PREFETCH: u16 = 64;
/// The notifications' `event_type`.
pub const EVENT_TYPE: &str = "compute.instance.create.end";
/// Publishes in flight (then their confirms awaited) while filling.
const FILL_WINDOW: usize = 1024;
/// The log line the listener writes once its consumers are set up.
const CONSUMING: &str = "NotificationListener: consuming ";
/// How often `sensor.list` is asked while the listener works.
const POLL: Duration = Duration::from_millis(5);
/// The log's durable count must stay put this long to count as settled.
const SETTLE: Duration = Duration::from_millis(200);

/// `openstack-notification-listener` next to this program's binaries
/// (`target/release`); an error saying how to build it when missing.
pub fn listener_binary(bins: &Bins) -> Result<PathBuf> {
    let dir = bins
        .container
        .parent()
        .context("no directory of sensorcontainer")?;
    let bin = dir.join(LISTENER_BIN);
    if !bin.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p openstack-notification-listener`",
            bin.display()
        );
    }
    Ok(bin)
}

/// The repository's `packs/openstack` (from this crate's source dir, else
/// from `target/release/sc-bench`).
fn pack_source() -> Result<PathBuf> {
    let mut tried = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packs/openstack")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            tried.push(root.join("packs/openstack"));
        }
    }
    let found = tried.iter().find(|p| p.join("pack.yaml").is_file()).cloned();
    found.with_context(|| {
        format!(
            "the openstack pack (pack.yaml) is in none of {}",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The pack's files (its top-level files and `sensors/`; not the
/// listener's source) into `dst` (`fs::copy` keeps the script executable).
fn copy_pack(src: &Path, dst: &Path) -> Result<()> {
    for sub in [src.to_path_buf(), src.join("sensors")] {
        let to = match sub.strip_prefix(src) {
            Ok(rel) => dst.join(rel),
            Err(_) => dst.to_path_buf(),
        };
        std::fs::create_dir_all(&to).with_context(|| format!("create {}", to.display()))?;
        for e in std::fs::read_dir(&sub).with_context(|| format!("read {}", sub.display()))? {
            let e = e.with_context(|| format!("read {}", sub.display()))?;
            if e.file_type()?.is_file() {
                let from = e.path();
                std::fs::copy(&from, to.join(e.file_name()))
                    .with_context(|| format!("copy {}", from.display()))?;
            }
        }
    }
    Ok(())
}

// --- the notifications ---------------------------------------------------------

/// Python's `json.dumps` separators (`", "` and `": "`), as kombu's JSON
/// serializer writes (ASCII only here, so `ensure_ascii` changes nothing).
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W>(&mut self, writer: &mut W) -> std::io::Result<()>
    where
        W: ?Sized + std::io::Write,
    {
        writer.write_all(b": ")
    }
}

/// `json.dumps(v)`.
fn py_dumps(v: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(2048);
    {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
        v.serialize(&mut ser).context("serialize a notification")?;
    }
    Ok(out)
}

/// Notification `k`: Nova's (unversioned) `compute.instance.create.end`
/// payload, in the message oslo's notifier builds (`_context_*` fields,
/// `_unique_id` = `uuid4().hex`), in the messaging v2 envelope the
/// `messagingv2` driver sends.
fn notification(k: u64) -> Result<Vec<u8>> {
    let instance_id = Uuid::new_v4().to_string();
    let image = Uuid::new_v4().to_string();
    let host = format!("compute-{:02}", k % 16 + 1);
    let name = format!("web-{k:06}");
    let ip = format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255);
    let mac = format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        (k >> 16) & 255,
        (k >> 8) & 255,
        k & 255
    );
    // Built pair by pair: one `json!` this long would pass the macro's
    // recursion limit.
    let payload: serde_json::Map<String, Value> = [
        ("tenant_id", json!("7c150a59fe714e6f9263774af9688f0e")),
        ("user_id", json!("e4b0a3f1c2d84b5e9f6a7b8c9d0e1f2a")),
        ("instance_id", json!(instance_id)),
        ("display_name", json!(name)),
        ("hostname", json!(name)),
        ("reservation_id", json!(format!("r-{:08x}", k))),
        ("instance_type", json!("m1.small")),
        ("instance_type_id", json!(2)),
        ("instance_flavor_id", json!("2")),
        ("memory_mb", json!(2048)),
        ("disk_gb", json!(20)),
        ("root_gb", json!(20)),
        ("ephemeral_gb", json!(0)),
        ("vcpus", json!(1)),
        ("architecture", json!("x86_64")),
        ("os_type", json!("linux")),
        ("availability_zone", json!("nova")),
        ("host", json!(host)),
        ("node", json!(format!("{host}.example.org"))),
        ("cell_name", json!("")),
        ("kernel_id", json!("")),
        ("ramdisk_id", json!("")),
        ("state", json!("active")),
        ("state_description", json!("")),
        ("progress", json!("")),
        ("created_at", json!("2026-12-01 09:59:41+00:00")),
        ("launched_at", json!("2026-12-01T10:00:00.000000")),
        ("terminated_at", json!("")),
        ("deleted_at", json!("")),
        (
            "image_ref_url",
            json!(format!("http://192.0.2.10:9292/images/{image}")),
        ),
        (
            "image_meta",
            json!({
                "base_image_ref": image,
                "container_format": "bare",
                "disk_format": "qcow2",
                "min_disk": "20",
                "min_ram": "0"
            }),
        ),
        ("metadata", json!({})),
        ("access_ip_v4", Value::Null),
        ("access_ip_v6", Value::Null),
        (
            "fixed_ips",
            json!([{
                "address": ip,
                "floating_ips": [],
                "label": "private",
                "meta": {},
                "type": "fixed",
                "version": 4,
                "vif_mac": mac
            }]),
        ),
        ("message", json!("Success")),
        ("audit_period_beginning", json!("2026-12-01T00:00:00.000000")),
        ("audit_period_ending", json!("2026-12-01T10:00:00.000000")),
    ]
    .into_iter()
    .map(|(key, v)| (key.to_string(), v))
    .collect();
    let message = json!({
        "message_id": Uuid::new_v4().to_string(),
        "publisher_id": "compute.host1",
        "event_type": EVENT_TYPE,
        "priority": "INFO",
        "payload": payload,
        "timestamp": "2026-12-01 10:00:00.000000",
        "_context_user": "alice",
        "_context_request_id": format!("req-{}", Uuid::new_v4()),
        "_unique_id": Uuid::new_v4().simple().to_string()
    });
    let inner = String::from_utf8(py_dumps(&message)?).context("a notification is not UTF-8")?;
    py_dumps(&json!({"oslo.version": "2.0", "oslo.message": inner}))
}

/// What kombu's producer sets for oslo's notifier: the JSON serializer's
/// content type and encoding, and its default delivery mode, persistent
/// (which does not make a message outlive a non-durable queue).
fn properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
}

/// What the listener does to each body before anything else: both JSON
/// layers parsed.
fn parse(body: &[u8]) -> Result<()> {
    let outer: Value = serde_json::from_slice(body).context("a message is not JSON")?;
    let inner = outer
        .get("oslo.message")
        .and_then(Value::as_str)
        .context("a message has no `oslo.message` string")?;
    let message: Value = serde_json::from_str(inner).context("`oslo.message` is not JSON")?;
    std::hint::black_box(&message);
    Ok(())
}

// --- the broker side -------------------------------------------------------------

/// What oslo's notifier declares (non-durable, not auto-delete, no
/// arguments, as the listener declares them too).
async fn declare(ch: &Channel) -> Result<()> {
    within(
        "declare the exchange",
        BROKER_TIMEOUT,
        ch.exchange_declare(
            EXCHANGE,
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    within(
        "declare the queue",
        BROKER_TIMEOUT,
        ch.queue_declare(QUEUE, QueueDeclareOptions::default(), FieldTable::default()),
    )
    .await?;
    within(
        "bind the queue",
        BROKER_TIMEOUT,
        ch.queue_bind(
            QUEUE,
            EXCHANGE,
            QUEUE,
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
}

/// The queue's (ready messages, consumers).
async fn queue_state(ch: &Channel) -> Result<(u64, u64)> {
    let q = within(
        "look at the queue",
        BROKER_TIMEOUT,
        ch.queue_declare(
            QUEUE,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await?;
    Ok((u64::from(q.message_count()), u64::from(q.consumer_count())))
}

async fn purge(ch: &Channel) -> Result<u64> {
    let n = within(
        "purge the queue",
        BROKER_TIMEOUT,
        ch.queue_purge(QUEUE, QueuePurgeOptions::default()),
    )
    .await?;
    Ok(u64::from(n))
}

/// Publish every body to the exchange with the queue's routing key,
/// `mandatory`, on a confirm-mode channel, in windows of [`FILL_WINDOW`]
/// (publish them, then await their confirms); the seconds it took.
async fn fill(conn: &Connection, bodies: &[Vec<u8>]) -> Result<f64> {
    let channel = within("open a channel", BROKER_TIMEOUT, conn.create_channel()).await?;
    within(
        "confirm.select",
        BROKER_TIMEOUT,
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    let opts = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let props = properties();
    let t = Instant::now();
    for window in bodies.chunks(FILL_WINDOW) {
        let mut confirms = Vec::with_capacity(window.len());
        for body in window {
            confirms.push(
                within(
                    "publish",
                    BROKER_TIMEOUT,
                    channel.basic_publish(EXCHANGE, QUEUE, opts, body, props.clone()),
                )
                .await?,
            );
        }
        for c in confirms {
            match tokio::time::timeout(ACK_TIMEOUT, c).await {
                Ok(Ok(Confirmation::Ack(None))) => {}
                Ok(Ok(Confirmation::Ack(Some(ret)))) => bail!(
                    "no queue took a notification: {EXCHANGE} returned it ({})",
                    ret.reply_text
                ),
                Ok(Ok(other)) => bail!("the broker did not ack a publish: {other:?}"),
                Ok(Err(e)) => bail!("confirm from {EXCHANGE}: {e}"),
                Err(_) => bail!("no confirm within {ACK_TIMEOUT:?}"),
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = within("close the channel", BROKER_TIMEOUT, channel.close(200, "done")).await;
    Ok(secs)
}

/// The raw consumer's run.
#[derive(Debug, Clone, Copy)]
pub struct Consumed {
    pub messages: u64,
    /// `basic.consume` answered → the last ack sent.
    pub secs: f64,
    /// CPU over that time: this process, the broker's processes.
    pub bench_cpu: f64,
    pub broker_cpu: f64,
}

impl Consumed {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
}

/// One ack task's outcome: 1 when acked.
fn ack_result(r: Result<lapin::Result<bool>, tokio::task::JoinError>) -> Result<u64> {
    match r {
        Ok(Ok(true)) => Ok(1),
        Ok(Ok(false)) => bail!("a delivery could not be acked (its channel is gone)"),
        Ok(Err(e)) => bail!("ack: {e}"),
        Err(e) => bail!("an ack task failed: {e}"),
    }
}

/// Consume `n` messages from [`QUEUE`] on one channel with prefetch
/// [`PREFETCH`]: parse each body (both layers), ack each on its own (in a
/// task of its own, as the listener acks, so acks do not hold up the next
/// delivery); at most `max`.
async fn consume_on(conn: &Connection, n: u64, max: Duration, pgid: u32) -> Result<Consumed> {
    let channel = within("open a channel", BROKER_TIMEOUT, conn.create_channel()).await?;
    within(
        "basic.qos",
        BROKER_TIMEOUT,
        channel.basic_qos(PREFETCH, BasicQosOptions::default()),
    )
    .await?;
    let mut consumer = within(
        "basic.consume",
        BROKER_TIMEOUT,
        channel.basic_consume(
            QUEUE,
            "sc-bench-limit",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    let me = std::process::id();
    let (b0, r0) = (live::cpu_secs(me)?, group_cpu_secs(pgid)?);
    let t0 = Instant::now();
    let deadline = t0 + max;
    let mut acks = tokio::task::JoinSet::new();
    let (mut got, mut acked) = (0u64, 0u64);
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let delivery = match tokio::time::timeout(left.min(BROKER_TIMEOUT), consumer.next()).await
        {
            Ok(Some(Ok(d))) => d,
            Ok(Some(Err(e))) => bail!("consuming {QUEUE}: {e}"),
            Ok(None) => bail!("the consumer of {QUEUE} was cancelled after {got} of {n} messages"),
            Err(_) => bail!(
                "the raw consumer got {got} of {n} messages from {QUEUE} in {:.1} s and no more came",
                t0.elapsed().as_secs_f64()
            ),
        };
        parse(&delivery.data)?;
        got += 1;
        acks.spawn(async move { delivery.ack(BasicAckOptions::default()).await });
        while let Some(r) = acks.try_join_next() {
            acked += ack_result(r)?;
        }
    }
    while acked < n {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        match tokio::time::timeout(left, acks.join_next()).await {
            Ok(Some(r)) => acked += ack_result(r)?,
            Ok(None) => bail!("{acked} of {n} messages acked, no ack left to wait for"),
            Err(_) => bail!("{acked} of {n} acks sent within {max:?}"),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = Consumed {
        messages: acked,
        secs,
        bench_cpu: live::cpu_secs(me)? - b0,
        broker_cpu: group_cpu_secs(pgid)? - r0,
    };
    let _ = within("close the channel", BROKER_TIMEOUT, channel.close(200, "done")).await;
    Ok(out)
}

/// [`consume_on`] on a connection of its own, closed after.
async fn consume(url: String, n: u64, max: Duration, pgid: u32) -> Result<Consumed> {
    let conn = connect(&url, "sc-bench openstack limit").await?;
    let r = consume_on(&conn, n, max, pgid).await;
    let _ = within("close", BROKER_TIMEOUT, conn.close(200, "done")).await;
    r
}

// --- the container side ------------------------------------------------------------

/// The listener in `sensor.list`.
struct ListenerNow {
    dispatched: u64,
    restarts: u64,
    pid: Option<u32>,
    state: String,
}

fn listener_now(c: &Running) -> Result<ListenerNow> {
    let list = c.api("sensor.list", &json!({}))?;
    let s = list
        .as_array()
        .and_then(|a| a.iter().find(|s| s["ref"] == SENSOR_REF))
        .with_context(|| format!("sensor.list has no {SENSOR_REF}: {list}"))?;
    Ok(ListenerNow {
        dispatched: s["dispatched"]
            .as_u64()
            .with_context(|| format!("sensor.list: no number `dispatched` in {s}"))?,
        restarts: s["restarts"].as_u64().unwrap_or(0),
        pid: s["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
        state: s["state"].as_str().unwrap_or("").to_string(),
    })
}

/// Records the log has made durable since the container opened it.
fn log_appended(c: &Running) -> Result<u64> {
    let st = c.api("log.stats", &json!({}))?;
    st["appended"]
        .as_u64()
        .with_context(|| format!("log.stats: no number `appended` in {st}"))
}

// --- the row -----------------------------------------------------------------------

/// How many notifications, and the longest each phase may take.
#[derive(Debug, Clone, Copy)]
pub struct OpenstackPlan {
    pub notifications: u64,
    /// The listener's run and the raw consumer's each fail past this.
    pub max: Duration,
}

/// The listener's run.
#[derive(Debug, Clone, Copy)]
pub struct EndToEnd {
    /// The listener's dispatches (`sensor.list` → `dispatched`), all durable.
    pub stored: u64,
    /// Its `consuming` log line seen → the last of them durable.
    pub secs: f64,
    /// The container's start → that log line.
    pub consuming_after: f64,
    /// Other records in the log (the sensor's `process_spawn`).
    pub extra_records: u64,
    /// CPU from the log line to the look that showed every dispatch: the
    /// container, the listener, the broker's processes, this process.
    pub container_cpu: f64,
    pub listener_cpu: f64,
    pub broker_cpu: f64,
    pub bench_cpu: f64,
    /// Messages in the queue once the listener was gone (acks still on
    /// their way when the container stopped come back; 0 if none).
    pub left: u64,
}

impl EndToEnd {
    pub fn rate(&self) -> f64 {
        self.stored as f64 / self.secs
    }

    /// µs of `cpu` per notification.
    pub fn per(&self, cpu: f64) -> f64 {
        1e6 * cpu / self.stored.max(1) as f64
    }
}

/// The row's outcome.
pub struct OpenstackRun {
    pub notifications: u64,
    /// Mean body size.
    pub body_bytes: usize,
    /// Confirmed publishes/s of the first fill.
    pub fill_rate: f64,
    pub listener: EndToEnd,
    pub limit: Consumed,
    /// Instances in the log after the run (read with the container
    /// stopped).
    pub records: u64,
}

/// The listener end to end, then the raw consumer, against one private
/// RabbitMQ node.
pub fn run(
    bins: &Bins,
    rt: &Runtime,
    rabbit_bin: &Path,
    listener_bin: &Path,
    plan: OpenstackPlan,
) -> Result<OpenstackRun> {
    let n = plan.notifications;
    if n == 0 {
        bail!("the openstack row needs at least one notification");
    }
    // Where the pack's script finds the listener: exactly this binary.
    let profile_dir = listener_bin
        .parent()
        .context("no directory of the listener binary")?;
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .context("the listener binary's directory has no name")?
        .to_string();
    let target_dir = profile_dir
        .parent()
        .context("no target directory above the listener binary")?
        .to_string_lossy()
        .into_owned();

    let t = Instant::now();
    let rabbit = RabbitServer::start(rabbit_bin)?;
    let url = rabbit.url();
    let pgid = rabbit.pgid();
    let (admin_conn, admin, publisher) = rt.block_on(async {
        let conn = connect_retrying(&url, "sc-bench admin", Duration::from_secs(30)).await?;
        let ch = within("open a channel", BROKER_TIMEOUT, conn.create_channel()).await?;
        declare(&ch).await?;
        let publisher = connect(&url, "sc-bench openstack notifier").await?;
        Ok::<_, anyhow::Error>((conn, ch, publisher))
    })?;
    eprintln!(
        "  RabbitMQ node up on 127.0.0.1:{} in {:.1} s; exchange {EXCHANGE} (topic), queue {QUEUE} bound with {QUEUE}, both non-durable",
        rabbit.port(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let bodies = (0..n).map(notification).collect::<Result<Vec<_>>>()?;
    let total: usize = bodies.iter().map(Vec::len).sum();
    let body_bytes = total / bodies.len().max(1);
    eprintln!(
        "  {n} `{EVENT_TYPE}` notifications built in {:.2} s (messaging v2, {body_bytes} B per body on average)",
        t.elapsed().as_secs_f64()
    );

    // The container's side, registered before anything is timed.
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 10\n")?;
    copy_pack(&pack_source()?, &ws.packs.join("openstack"))?;
    std::fs::write(
        ws.configs.join("openstack.yaml"),
        format!(
            "transport_url: 'rabbit://guest:guest@127.0.0.1:{}/'\n",
            rabbit.port()
        ),
    )?;
    ws.register()?;

    let fill_secs = rt.block_on(async {
        purge(&admin).await?;
        let secs = fill(&publisher, &bodies).await?;
        let (ready, consumers) = queue_state(&admin).await?;
        if ready != n || consumers != 0 {
            bail!("{QUEUE} holds {ready} messages ({consumers} consumers) after publishing {n}");
        }
        Ok::<_, anyhow::Error>(secs)
    })?;
    let fill_rate = n as f64 / fill_secs;
    eprintln!("  {QUEUE} filled: {n} confirmed publishes in {fill_secs:.2} s ({fill_rate:.0}/s)");

    // --- end to end ---
    let env = [
        ("RUST_SENSOR_TARGET_DIR", target_dir),
        ("RUST_SENSOR_PROFILE", profile),
    ];
    let t_start = Instant::now();
    let mut c = ws.start(&["--sensor-ref", SENSOR_REF], &env)?;
    c.wait_api(Duration::from_secs(30))?;
    let log_path = c.log.clone();
    live::wait_for(
        "the listener's `NotificationListener: consuming` log line",
        Duration::from_secs(60),
        || c.check_alive(),
        || std::fs::read_to_string(&log_path).is_ok_and(|t| t.contains(CONSUMING)),
    )
    .with_context(|| format!("container log:\n{}", live::tail(&c.log_text(), 30)))?;
    let t0 = Instant::now();
    let me = std::process::id();
    let (c0, r0, b0) = (
        live::cpu_secs(c.pid())?,
        rabbit.cpu_secs()?,
        live::cpu_secs(me)?,
    );
    let first = listener_now(&c)?;
    let pid = first
        .pid
        .with_context(|| format!("{SENSOR_REF} has no pid (state {})", first.state))?;
    let l0 = live::cpu_secs(pid)?;
    let deadline = t0 + plan.max;
    let last = loop {
        let now = listener_now(&c)?;
        if now.restarts != first.restarts || now.pid != Some(pid) {
            bail!(
                "{SENSOR_REF} restarted during the run (restarts {}, state {}); log:\n{}",
                now.restarts,
                now.state,
                live::tail(&c.log_text(), 30)
            );
        }
        if now.dispatched >= n {
            break now;
        }
        c.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "{SENSOR_REF} dispatched {} of {n} notifications within {:?} (state {}); log:\n{}",
                now.dispatched,
                plan.max,
                now.state,
                live::tail(&c.log_text(), 30)
            );
        }
        std::thread::sleep(POLL);
    };
    let container_cpu = live::cpu_secs(c.pid())? - c0;
    let listener_cpu = live::cpu_secs(pid)? - l0;
    let broker_cpu = rabbit.cpu_secs()? - r0;
    let bench_cpu = live::cpu_secs(me)? - b0;
    // Every dispatch is queued for the log now (`dispatched` counts at
    // append); the instances are stored once the log's durable count holds
    // them all. The log also holds the sensor's `process_spawn` (queued
    // before the listener's first dispatch), so rather than guess the
    // total, wait until the count is at least the dispatches and has not
    // moved for SETTLE: stored = the first look that showed that count.
    let settle_deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = log_appended(&c)?;
    let mut seen_at = Instant::now();
    loop {
        if seen >= last.dispatched && seen_at.elapsed() >= SETTLE {
            break;
        }
        c.check_alive()?;
        if Instant::now() > settle_deadline {
            bail!(
                "the log made {seen} records durable, the listener dispatched {}: not settled within 30 s",
                last.dispatched
            );
        }
        std::thread::sleep(Duration::from_millis(1));
        let a = log_appended(&c)?;
        if a != seen {
            seen = a;
            seen_at = Instant::now();
        }
    }
    let secs = seen_at.duration_since(t0).as_secs_f64();
    let consuming_after = t0.duration_since(t_start).as_secs_f64();
    c.stop(Duration::from_secs(30))?;
    let records = {
        let log = eventlog::Log::open(&ws.data.join("log"), eventlog::LogOptions::default())
            .context("open the openstack row's trigger-instance log after the run")?;
        log.stats().records
    };
    if records < last.dispatched {
        bail!(
            "only {records} instances in the log after the run; the listener dispatched {}",
            last.dispatched
        );
    }

    // --- the limit: the same bodies, a bare consumer ---
    let (left, limit) = rt.block_on(async {
        // The listener's consumer goes with its process.
        let gone = Instant::now() + Duration::from_secs(10);
        let left = loop {
            let (ready, consumers) = queue_state(&admin).await?;
            if consumers == 0 {
                break ready;
            }
            if Instant::now() > gone {
                bail!("{QUEUE} still has {consumers} consumer(s) 10 s after the container stopped");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        purge(&admin).await?;
        let secs = fill(&publisher, &bodies).await?;
        let (ready, _) = queue_state(&admin).await?;
        if ready != n {
            bail!("{QUEUE} holds {ready} messages after publishing {n} again");
        }
        eprintln!(
            "  {QUEUE} filled again with the same {n} bodies in {secs:.2} s ({:.0}/s)",
            n as f64 / secs
        );
        let limit = tokio::spawn(consume(url.clone(), n, plan.max, pgid))
            .await
            .context("the openstack limit task panicked")??;
        let (after, _) = queue_state(&admin).await?;
        if after != 0 {
            bail!("{QUEUE} holds {after} messages after the raw consumer acked {n}");
        }
        Ok::<_, anyhow::Error>((left, limit))
    })?;

    let listener = EndToEnd {
        stored: last.dispatched,
        secs,
        consuming_after,
        extra_records: seen.saturating_sub(last.dispatched),
        container_cpu,
        listener_cpu,
        broker_cpu,
        bench_cpu,
        left,
    };
    eprintln!(
        "  {SENSOR_REF}: `consuming` {:.2} s after the container's start; {} `{TRIGGER}` instances durable {:.2} s later = {:.0}/s ({} other record(s) in the log, {records} in all; {} message(s) back in {QUEUE} after it stopped); CPU per notification: container {:.1} µs, listener {:.1} µs, rabbitmq-server {:.1} µs, sc-bench {:.1} µs ({:.2} cores busy)",
        listener.consuming_after,
        listener.stored,
        listener.secs,
        listener.rate(),
        listener.extra_records,
        listener.left,
        listener.per(listener.container_cpu),
        listener.per(listener.listener_cpu),
        listener.per(listener.broker_cpu),
        listener.per(listener.bench_cpu),
        (listener.container_cpu + listener.listener_cpu + listener.broker_cpu + listener.bench_cpu)
            / listener.secs
    );
    eprintln!(
        "  limit: raw lapin consumer, prefetch {PREFETCH}, both JSON layers parsed, each message acked: {} in {:.2} s = {:.0}/s; CPU per message: sc-bench {:.1} µs, rabbitmq-server {:.1} µs",
        limit.messages,
        limit.secs,
        limit.rate(),
        1e6 * limit.bench_cpu / limit.messages.max(1) as f64,
        1e6 * limit.broker_cpu / limit.messages.max(1) as f64
    );

    rt.block_on(async {
        let _ = purge(&admin).await;
        let _ = within("close", BROKER_TIMEOUT, publisher.close(200, "done")).await;
        let _ = within("close", BROKER_TIMEOUT, admin_conn.close(200, "done")).await;
    });
    drop(ws);
    drop(rabbit);
    Ok(OpenstackRun {
        notifications: n,
        body_bytes,
        fill_rate,
        listener,
        limit,
        records,
    })
}
