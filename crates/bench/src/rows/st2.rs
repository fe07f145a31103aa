//! Delivery onto StackStorm's own bus (`type: st2`, `crates/sinks/src/st2`)
//! by the real `sensorcontainer`, beside what RabbitMQ takes from a bare
//! client publishing the same way, measured in the same run:
//!
//! - *Drain.* A private RabbitMQ node (Debian's `rabbitmq-server`, run as
//!   this user, see [`RabbitServer`]) with the exchange
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

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use sinks::st2::message;
use tokio::runtime::Runtime;

use super::sinks::{
    self as sink_rows, Drain, Peer, ACK_TIMEOUT, CONNECT_TIMEOUT, TRIGGER, WARM_UP,
};
use crate::live::{self, Bins};

/// The exchange st2's rules engine reads trigger instances from (the
/// default prefix `st2`).
pub const EXCHANGE: &str = "st2.trigger_instances_dispatch";
/// The queue standing in for st2's rules engine's.
pub const QUEUE: &str = "sc_bench.rules_engine";
/// The `st2` sink's default `batch_max`: its publisher-confirm window.
pub const ST2_WINDOW: usize = 256;
/// Deadline of every broker operation of the bench's own (declare, purge,
/// get, channel open and close, a publish written).
const BROKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a private node to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

// --- the broker ---------------------------------------------------------------

/// `$SC_RABBITMQ_SERVER`, else Debian's `/usr/lib/rabbitmq/bin/rabbitmq-server`
/// (the start script that runs as the calling user, unlike the
/// `/usr/sbin` wrapper, which switches to the `rabbitmq` user).
pub fn rabbitmq_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SC_RABBITMQ_SERVER") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    p.is_file().then_some(p)
}

/// `epmd` of the Erlang runtime the broker runs on.
fn epmd_binary() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/erlang")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/epmd"))
        .find(|p| p.is_file())
        .or_else(|| Some(PathBuf::from("/usr/bin/epmd")).filter(|p| p.is_file()))
}

/// A loopback port free now (another process may take it meanwhile).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Have the child get `signal` when the thread that spawns it exits (so
/// an interrupted bench leaves no broker behind).
fn die_with_parent(cmd: &mut Command, signal: nix::sys::signal::Signal) {
    // SAFETY: between fork and exec the closure only calls prctl(2)
    // (through nix), which is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)
        });
    }
}

/// CPU seconds (user + system) of the live processes of process group
/// `pgid`.
fn group_cpu_secs(pgid: u32) -> Result<f64> {
    let mut total = 0.0;
    if pgid == 0 {
        // Kernel threads are in group 0; no broker is.
        return Ok(total);
    }
    for e in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // Gone meanwhile: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // After the command: state, ppid, pgrp, ...
        if rest.split_whitespace().nth(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        if let Ok(c) = live::cpu_secs(pid) {
            total += c;
        }
    }
    Ok(total)
}

/// A private RabbitMQ node: `rabbitmq-server` started as this user on free
/// loopback ports, with its own epmd, cookie (`HOME`), database and logs
/// in a temp dir; nothing system-wide is used or touched. On drop its
/// process group is killed and our child reaped, then the epmd. Start it
/// from a thread that outlives it (the main thread): both get a signal
/// when the thread that started them exits.
pub struct RabbitServer {
    /// The start script (a shell that runs the Erlang VM), leader of its
    /// own process group; `None` only while starting.
    broker: Option<Child>,
    epmd: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RabbitServer {
    /// Start a node with `bin` (see [`rabbitmq_binary`]) and wait until it
    /// listens (at most a minute; it takes 5–15 s).
    pub fn start(bin: &Path) -> Result<RabbitServer> {
        if !bin.is_file() {
            bail!(
                "{} not found: install rabbitmq-server: scripts/install-peers.sh as root (or set SC_RABBITMQ_SERVER)",
                bin.display()
            );
        }
        let epmd_bin = epmd_binary().context(
            "no epmd (/usr/lib/erlang/*/bin/epmd, /usr/bin/epmd): install rabbitmq-server: scripts/install-peers.sh as root",
        )?;
        let dir = tempfile::tempdir().context("temp dir for rabbitmq-server")?;
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")?;
        let (epmd_port, port, dist_port) = (free_port()?, free_port()?, free_port()?);
        let mut cmd = Command::new(&epmd_bin);
        cmd.args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGKILL);
        let epmd = cmd
            .spawn()
            .with_context(|| format!("start {}", epmd_bin.display()))?;
        // From here on, an error drops `s`: whatever runs is stopped.
        let mut s = RabbitServer {
            broker: None,
            epmd,
            port,
            dir,
        };
        let epmd_up = wait_listening(epmd_port, Duration::from_secs(10), || {
            Ok(s.epmd.try_wait()?.is_some())
        })?;
        if !epmd_up {
            bail!("epmd did not listen on 127.0.0.1:{epmd_port} within 10 s");
        }
        let d = s.dir.path().to_path_buf();
        let out = std::fs::File::create(d.join("out.txt"))?;
        let mut cmd = Command::new(bin);
        cmd.current_dir(&d)
            .env("HOME", &d)
            .env("RABBITMQ_NODENAME", format!("sc{port}@localhost"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        // SIGTERM: the script's trap stops the VM.
        die_with_parent(&mut cmd, nix::sys::signal::Signal::SIGTERM);
        s.broker = Some(
            cmd.spawn()
                .with_context(|| format!("start {}", bin.display()))?,
        );
        let up = wait_listening(port, START_TIMEOUT, || match s.broker.as_mut() {
            Some(b) => Ok(b.try_wait()?.is_some()),
            None => Ok(true),
        })?;
        if !up {
            bail!(
                "rabbitmq-server {} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:?} (or exited); its output:\n{}",
                bin.display(),
                live::tail(
                    &std::fs::read_to_string(d.join("out.txt")).unwrap_or_default(),
                    20
                )
            );
        }
        Ok(s)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/` (guest may log in over
    /// loopback), as an st2.conf's `[messaging] url` would say.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/", self.port)
    }

    /// The broker's process group (the start script leads it).
    pub fn pgid(&self) -> u32 {
        self.broker.as_ref().map_or(0, Child::id)
    }

    /// CPU seconds the node's processes have used so far.
    pub fn cpu_secs(&self) -> Result<f64> {
        group_cpu_secs(self.pgid())
    }
}

/// Poll until 127.0.0.1:`port` accepts a connection (true), `exited` says
/// the process is gone or `timeout` passed (false).
fn wait_listening(
    port: u16,
    timeout: Duration,
    mut exited: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(true);
        }
        if exited()? || Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        if let Some(mut b) = self.broker.take() {
            // The process group our child leads (`process_group(0)`): the
            // script, the Erlang VM, its helpers.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(b.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = b.wait();
        }
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}

// --- the bench's AMQP client ------------------------------------------------------

/// `fut` within `limit`, its error (or the timeout) naming `what`.
async fn within<T>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = lapin::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow!("{what}: no answer within {limit:?}")),
    }
}

/// A connection as the sink opens its own: `parse_uri` (kombu's empty vhost
/// is `/`), lapin on the current tokio runtime.
async fn connect(url: &str, name: &str) -> Result<Connection> {
    let uri =
        sinks::st2::publisher::parse_uri(url, CONNECT_TIMEOUT).map_err(anyhow::Error::msg)?;
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current())
        .with_connection_name(name.into());
    within(
        "connect to RabbitMQ",
        CONNECT_TIMEOUT + Duration::from_secs(1),
        Connection::connect_uri(uri, props),
    )
    .await
}

/// [`connect`], again every 200 ms until `timeout` (a node that just
/// started listening may still refuse the login for a moment).
async fn connect_retrying(url: &str, name: &str, timeout: Duration) -> Result<Connection> {
    let deadline = Instant::now() + timeout;
    loop {
        match connect(url, name).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!(
                    "RabbitMQ did not accept a connection within {timeout:?}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

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
    sink_rows::wait_feeder_up(&ws, &mut c)?;
    let (n, t0, t1) = sink_rows::feed(
        &ws,
        &mut c,
        &format!("count {}", plan.fill),
        Duration::from_secs(600),
    )?;
    let fill_rate = n as f64 / (t1 - t0);
    eprintln!(
        "  log filled: {n} `{TRIGGER}` instances in {:.2} s ({fill_rate:.0}/s), the sink paused",
        t1 - t0
    );
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
