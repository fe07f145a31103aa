//! `sensorctl`: register content, inspect and control sensors, trigger
//! instances and the datastore.
//!
//! While a `sensorcontainer` runs it owns the database (sled allows one
//! process), so `sensorctl` talks to its control API; otherwise it opens
//! the database itself. Both run the same operations ([`crate::ops`]), so
//! the output is the same either way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use store::{Store, StoreOptions};

use crate::config::{GlobalOpts, Settings};
use crate::control;
use crate::key::KeyCmd;
use crate::ops::Ops;
use crate::output::{or_dash, print_json, Table};

/// Manage the sensor container's registry, sensors and trigger instances.
#[derive(Debug, Parser)]
#[command(
    name = "sensorctl",
    version,
    about = "Manage a sensor container: register packs, control sensors, query and tail trigger instances, the datastore and API keys",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    /// Run the command against the container at this URL (http://HOST:PORT,
    /// its api.listen) instead of the local data directory
    #[arg(long, global = true, env = "SENSORCTL_URL", value_name = "URL")]
    pub url: Option<String>,
    /// API key for --url (see `sensorctl apikey create`)
    #[arg(
        long,
        global = true,
        env = "SENSORCTL_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// For an https:// --url: the CA certificate (PEM) that signed the server's
    #[arg(long, global = true, env = "SENSORCTL_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register pack content (StackStorm's register flags; default: everything)
    Reload(ReloadArgs),
    /// Registered packs
    #[command(subcommand)]
    Pack(PackCmd),
    /// Registered sensors and, while a container runs, their state
    #[command(subcommand)]
    Sensor(SensorCmd),
    /// Registered trigger types
    #[command(subcommand, name = "trigger-type")]
    TriggerType(TriggerTypeCmd),
    /// Triggers: a trigger type plus parameters (e.g. a file to watch)
    #[command(subcommand)]
    Trigger(TriggerCmd),
    /// Stored trigger instances: list, get, tail, re-emit
    #[command(subcommand, name = "trigger-instance")]
    TriggerInstance(TriggerInstanceCmd),
    /// The trigger-instance log: segments, bytes, retention, consumer cursors
    #[command(subcommand)]
    Log(LogCmd),
    /// Sinks: where instances are delivered; state, lag, dead letters, retry, pause
    #[command(subcommand)]
    Sink(crate::sink_cmd::SinkCmd),
    /// Senlin-style receivers: capability URLs that dispatch a preset action
    #[command(subcommand)]
    Receiver(crate::openstack_cmd::ReceiverCmd),
    /// Masakari-style notifications: list, get, move along their lifecycle
    #[command(subcommand)]
    Notification(crate::openstack_cmd::NotificationCmd),
    /// The datastore: keys, values, secrets, TTLs
    #[command(subcommand)]
    Key(KeyCmd),
    /// API keys for the TCP API (shown once when created, stored hashed)
    #[command(subcommand)]
    Apikey(ApikeyCmd),
    /// StackStorm beside us: `st2 check` (broker, API, trigger types, st2sensorcontainer)
    #[command(subcommand)]
    St2(crate::st2_cmd::St2Cmd),
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCmd {
    /// Create a key and print it (the only time it is shown)
    Create {
        /// A name to recognise it by
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Keys: id, name, created, last used (never the key)
    List(JsonFlag),
    /// Delete a key: requests using it get 401 from then on
    Delete {
        /// The key's id (from `apikey list`)
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Register everything: sensors, trigger types and configs
    #[arg(long)]
    pub register_all: bool,
    /// Register sensors (and the trigger types they declare)
    #[arg(long)]
    pub register_sensors: bool,
    /// Register trigger types
    #[arg(long)]
    pub register_triggers: bool,
    /// Register pack configs
    #[arg(long)]
    pub register_configs: bool,
    /// Report bad files as warnings and register the rest (exit 0)
    #[arg(long)]
    pub register_no_fail_on_failure: bool,
    /// A Python sensor whose file does not compile or does not define its
    /// class stops the registration (default: a warning, as StackStorm
    /// registers such sensors and fails only when they run)
    #[arg(long)]
    pub register_fail_on_sensor_errors: bool,
    /// First create or update the virtualenv of every pack with a requirements.txt
    #[arg(long)]
    pub register_setup_virtualenvs: bool,
}

/// `--json` for list/get commands.
#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PackCmd {
    /// List packs
    List(JsonFlag),
    /// Create <data-dir>/virtualenvs/<pack> and pip install the pack's requirements.txt
    SetupVirtualenv {
        /// Pack ref
        pack: String,
        /// Delete and rebuild it even if it is up to date
        #[arg(long)]
        recreate: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SensorCmd {
    /// List sensors
    List(JsonFlag),
    /// Show one sensor
    Get {
        /// Sensor ref, <pack>.<ClassName>
        sensor_ref: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Enable a sensor (survives re-registration)
    Enable {
        /// Sensor ref, <pack>.<ClassName>
        sensor_ref: String,
    },
    /// Disable a sensor (survives re-registration)
    Disable {
        /// Sensor ref, <pack>.<ClassName>
        sensor_ref: String,
    },
    /// Restart a sensor in the running container (fresh process and counters)
    Restart {
        /// Sensor ref, <pack>.<ClassName>
        sensor_ref: String,
    },
    /// Check a Python sensor's code: its file compiles and defines the class
    /// (parsed, not run), then import it in a subprocess (exit 1 on a problem)
    Check {
        /// Sensor ref, <pack>.<ClassName>
        sensor_ref: String,
        /// Seconds the import may take before it is killed
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum TriggerTypeCmd {
    /// List trigger types
    List(JsonFlag),
    /// Show one trigger type
    Get {
        /// Trigger type ref, <pack>.<name>
        type_ref: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum TriggerCmd {
    /// Create a trigger (an identical type + parameters trigger is reused)
    Create {
        /// Trigger type ref, <pack>.<name>
        #[arg(long = "type", value_name = "REF")]
        type_ref: String,
        /// Parameters as a JSON object, checked against the type's parameters_schema
        #[arg(long, value_name = "JSON")]
        parameters: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List triggers
    List {
        /// Only triggers of this type
        #[arg(long = "type", value_name = "REF")]
        type_ref: Option<String>,
        /// At most this many (0 = all)
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one trigger
    Get {
        /// Trigger id
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Replace a trigger's parameters (running sensors get update_trigger)
    Update {
        /// Trigger id
        id: String,
        /// Parameters as a JSON object
        #[arg(long, value_name = "JSON")]
        parameters: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a trigger (running sensors get remove_trigger)
    Delete {
        /// Trigger id
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TriggerInstanceCmd {
    /// List trigger instances, newest first (oldest first with --after);
    /// streamed, so --limit 0 lists everything in constant memory
    List {
        /// Only this trigger or trigger type ref
        #[arg(long)]
        trigger: Option<String>,
        /// Only instances dispatched by this sensor ref
        #[arg(long)]
        sensor: Option<String>,
        /// Only instances with this status (pending, processing, processed, processing_failed)
        #[arg(long)]
        status: Option<String>,
        /// Only instances at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z)
        #[arg(long)]
        since: Option<String>,
        /// Only seqs after SEQ, oldest first (page forward from the last seq you saw)
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// Only seqs before SEQ (page back from the last seq you saw)
        #[arg(long, value_name = "SEQ")]
        before: Option<u64>,
        /// At most this many; 0 = all
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line (NDJSON), printed as it is read
        #[arg(long)]
        json: bool,
    },
    /// Show one trigger instance
    Get {
        /// Trigger instance id (UUID) or seq (a number)
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Dispatch a new instance with the same trigger and payload (a new id,
    /// and a trace tag naming the original)
    ReEmit {
        /// Trigger instance id (UUID) or seq (a number)
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print instances as they become durable, in order, until interrupted
    Tail {
        /// Only this trigger or trigger type ref
        #[arg(long)]
        trigger: Option<String>,
        /// Only instances dispatched by this sensor ref
        #[arg(long)]
        sensor: Option<String>,
        /// Start with the first instance stored at or after this time (RFC 3339)
        #[arg(long, conflicts_with = "from")]
        since: Option<String>,
        /// Start with this seq (default: only instances stored from now on)
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// One JSON object per line (NDJSON)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCmd {
    /// Segments, bytes on disk, first/last seq and time, retention settings,
    /// each consumer cursor with its lag
    Stats {
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Where operations run: the container's control API, or this process.
pub enum Backend {
    /// A running container, through its control socket or over TCP.
    Remote(api::client::Endpoint),
    /// No container: the database, opened here.
    Local(Box<Ops>),
}

impl Backend {
    /// Use the control API if a container answers on the data dir's socket,
    /// else open the database.
    pub async fn connect(
        settings: &Settings,
        remote: Option<api::client::Endpoint>,
    ) -> Result<Backend> {
        if let Some(ep) = remote {
            return Ok(Backend::Remote(ep));
        }
        let sock = control::socket_path(&settings.data_dir);
        if tokio::net::UnixStream::connect(&sock).await.is_ok() {
            return Ok(Backend::Remote(api::client::Endpoint::Unix(sock)));
        }
        let store = Arc::new(open_store(settings)?);
        let log = crate::instances::open(settings, &store, &|line| eprintln!("{line}"))?;
        let ops = Ops::local(store, log, settings.clone()).map_err(|e| anyhow::anyhow!(e))?;
        Ok(Backend::Local(Box::new(ops)))
    }

    /// Run a streaming operation, handing each item to `each` as it comes.
    pub async fn stream(
        &self,
        op: &str,
        params: Value,
        mut each: impl FnMut(Value) -> Result<()>,
    ) -> Result<()> {
        let result = match self {
            Backend::Local(ops) => match ops.stream(op, params) {
                None => bail!("{op} is not a streaming operation"),
                Some(Err(e)) => Err(e),
                Some(Ok(mut rx)) => {
                    let mut out = Ok(());
                    while let Some(item) = rx.recv().await {
                        match item {
                            Ok(v) => each(v)?,
                            Err(e) => {
                                out = Err(e);
                                break;
                            }
                        }
                    }
                    out
                }
            },
            Backend::Remote(ep) => {
                api::client::call_stream(ep, op, &params, Duration::from_secs(60), each).await?
            }
        };
        result.map_err(|e| anyhow::anyhow!(e.message))
    }

    /// Run one operation.
    pub async fn call(&self, op: &str, params: Value) -> Result<Value> {
        let result = match self {
            Backend::Local(ops) => ops.execute(op, params).await,
            Backend::Remote(ep) => {
                // Operations that stop sensors wait up to their grace periods.
                let slow = matches!(
                    op,
                    "reload" | "sensor.enable" | "sensor.disable" | "sensor.restart"
                );
                let timeout = Duration::from_secs(if slow { 600 } else { 60 });
                api::client::call(ep, op, &params, timeout).await?
            }
        };
        result.map_err(|e| anyhow::anyhow!(e.message))
    }
}

/// Open the database, explaining the single-process limit when it bites.
pub fn open_store(settings: &Settings) -> Result<Store> {
    match Store::open(&settings.data_dir, &StoreOptions::default()) {
        Ok(s) => Ok(s),
        Err(e @ store::StoreError::Locked { .. }) => Err(anyhow::anyhow!(
            "{e}\nIts control socket {} does not answer (the container may be starting or stopping); try again.",
            control::socket_path(&settings.data_dir).display()
        )),
        Err(e) => Err(e).with_context(|| format!("cannot open the database in {}", settings.data_dir.display())),
    }
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let settings = Settings::resolve(&cli.global)?;
    if let Command::Key(cmd @ KeyCmd::GenerateCryptoKey { .. }) = cli.command {
        // Needs no database, so it works while a container runs.
        return crate::key::generate(&settings, cmd);
    }
    if let Command::Pack(PackCmd::SetupVirtualenv { pack, recreate }) = &cli.command {
        // Needs no database; then restarts the pack's running sensors.
        let dir = crate::venv::pack_dir(&settings, pack)?;
        crate::venv::setup(&settings, pack, &dir, *recreate)?;
        return restart_pack_sensors(&settings, pack).await;
    }
    if let Command::Reload(args) = &cli.command {
        if args.register_setup_virtualenvs {
            for (pack, dir) in crate::venv::packs_with_requirements(&settings) {
                crate::venv::setup(&settings, &pack, &dir, false)?;
            }
        }
    }
    let remote = match &cli.url {
        Some(url) => Some(api::client::Endpoint::http(
            url,
            cli.api_key.clone(),
            cli.ca_cert.as_deref(),
        )?),
        None => None,
    };
    let backend = Backend::connect(&settings, remote).await?;
    match cli.command {
        Command::Pack(PackCmd::SetupVirtualenv { .. }) => unreachable!("handled above"),
        Command::Reload(args) => {
            let v = backend
                .call(
                    "reload",
                    json!({
                        "sensors": args.register_sensors || args.register_all,
                        "triggers": args.register_triggers || args.register_all,
                        "configs": args.register_configs || args.register_all,
                        "no_fail": args.register_no_fail_on_failure,
                        "fail_on_sensor_errors": args.register_fail_on_sensor_errors,
                    }),
                )
                .await?;
            for w in v["warnings"].as_array().into_iter().flatten() {
                eprintln!("warning: {}", w.as_str().unwrap_or_default());
            }
            println!("{}", v["message"].as_str().unwrap_or_default());
            if let Some(a) = v["applied"].as_object() {
                let names = |k: &str| a[k].as_array().map(|l| l.len()).unwrap_or(0);
                println!(
                    "Container: started {}, stopped {}, restarted {}, unchanged {}.",
                    names("started"),
                    names("stopped"),
                    names("restarted"),
                    a["unchanged"]
                );
            }
            if let Some(r) = v["sinks"].as_object() {
                let list = |k: &str| {
                    r[k].as_array()
                        .map(|l| l.iter().map(s).collect::<Vec<_>>().join(" "))
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| "-".into())
                };
                println!(
                    "Sinks: added {}, removed {}, changed {}, unchanged {}.",
                    list("added"),
                    list("removed"),
                    list("changed"),
                    r["unchanged"]
                );
            }
        }
        Command::Pack(PackCmd::List(f)) => {
            let v = backend.call("pack.list", json!({})).await?;
            table_or_json(f, &v, &["REF", "VERSION", "AUTHOR", "DESCRIPTION"], |p| {
                vec![
                    s(&p["ref"]),
                    s(&p["version"]),
                    s(&p["author"]),
                    s(&p["description"]),
                ]
            })?;
        }
        Command::Sensor(SensorCmd::List(f)) => {
            let v = backend.call("sensor.list", json!({})).await?;
            table_or_json(
                f,
                &v,
                &[
                    "REF",
                    "ENABLED",
                    "STATE",
                    "PID",
                    "UPTIME",
                    "RESTARTS",
                    "LAST EXIT",
                    "DISPATCHED",
                    "INVALID",
                ],
                |x| {
                    vec![
                        s(&x["ref"]),
                        x["enabled"].to_string(),
                        s(&x["state"]),
                        or_dash(x["pid"].as_u64()),
                        or_dash(x["uptime_seconds"].as_u64().map(|u| format!("{u}s"))),
                        x["restarts"].to_string(),
                        exit_text(&x["last_exit"]),
                        x["dispatched"].to_string(),
                        x["validation_failures"].to_string(),
                    ]
                },
            )?;
        }
        Command::Sensor(SensorCmd::Get { sensor_ref, json }) => {
            let v = backend
                .call("sensor.get", json!({"ref": sensor_ref}))
                .await?;
            if json.json {
                return print_json(&v);
            }
            for (k, label) in [
                ("ref", "ref"),
                ("enabled", "enabled"),
                ("state", "state"),
                ("pid", "pid"),
                ("restarts", "restarts"),
                ("class_name", "class_name"),
                ("description", "description"),
                ("poll_interval", "poll_interval"),
                ("entry_point", "entry_point"),
                ("metadata_file", "metadata_file"),
            ] {
                println!("{:<15} {}", format!("{label}:"), s(&v[k]));
            }
            println!("{:<15} {}", "last_exit:", exit_text(&v["last_exit"]));
            println!("{:<15} {}", "trigger_types:", list(&v["trigger_types"]));
        }
        Command::Sensor(
            cmd
            @ (SensorCmd::Enable { .. } | SensorCmd::Disable { .. } | SensorCmd::Restart { .. }),
        ) => {
            let (op, r, done) = match cmd {
                SensorCmd::Enable { sensor_ref } => ("sensor.enable", sensor_ref, "enabled"),
                SensorCmd::Disable { sensor_ref } => ("sensor.disable", sensor_ref, "disabled"),
                SensorCmd::Restart { sensor_ref } => ("sensor.restart", sensor_ref, "restarted"),
                _ => unreachable!("matched above"),
            };
            let v = backend.call(op, json!({"ref": r})).await?;
            println!("sensor {r} {done} (state: {})", s(&v["state"]));
        }
        Command::Sensor(SensorCmd::Check {
            sensor_ref,
            timeout,
            json,
        }) => {
            let v = backend
                .call(
                    "sensor.check",
                    json!({"ref": sensor_ref, "timeout": timeout}),
                )
                .await?;
            if json.json {
                print_json(&v)?;
            } else {
                for p in v["problems"].as_array().into_iter().flatten() {
                    eprintln!("error: {}", s(p));
                }
                if v["ok"] == true {
                    println!("sensor {sensor_ref}: ok (compiles, defines its class, imports)");
                }
            }
            if v["ok"] != true {
                std::process::exit(1);
            }
        }
        Command::TriggerType(TriggerTypeCmd::List(f)) => {
            let v = backend.call("trigger-type.list", json!({})).await?;
            table_or_json(f, &v, &["REF", "PARAMETERS", "DESCRIPTION"], |t| {
                let params = if t["parameters_schema"].is_null() {
                    "no"
                } else {
                    "yes"
                };
                vec![s(&t["ref"]), params.into(), s(&t["description"])]
            })?;
        }
        Command::TriggerType(TriggerTypeCmd::Get { type_ref, json }) => {
            let v = backend
                .call("trigger-type.get", json!({"ref": type_ref}))
                .await?;
            if json.json {
                return print_json(&v);
            }
            println!("ref:               {}", s(&v["ref"]));
            println!("description:       {}", s(&v["description"]));
            println!("tags:              {}", list(&v["tags"]));
            println!("file:              {}", s(&v["metadata_file"]));
            println!("payload_schema:    {}", pretty(&v["payload_schema"]));
            println!("parameters_schema: {}", pretty(&v["parameters_schema"]));
        }
        Command::TriggerInstance(TriggerInstanceCmd::List {
            trigger,
            sensor,
            status,
            since,
            after,
            before,
            limit,
            json,
        }) => {
            let params = json!({"trigger": trigger, "sensor": sensor, "status": status,
                "since": since, "after": after, "before": before, "limit": limit});
            print_instances(&backend, "trigger-instance.list", params, json, false).await?;
        }
        Command::TriggerInstance(TriggerInstanceCmd::Tail {
            trigger,
            sensor,
            since,
            from,
            json,
        }) => {
            let params =
                json!({"trigger": trigger, "sensor": sensor, "since": since, "from": from});
            print_instances(&backend, "trigger-instance.tail", params, json, true).await?;
        }
        Command::Log(LogCmd::Stats { json }) => {
            let v = backend.call("log.stats", json!({})).await?;
            if json.json {
                return print_json(&v);
            }
            print_log_stats(&v);
        }
        Command::TriggerInstance(TriggerInstanceCmd::Get { id, json }) => {
            let v = backend
                .call("trigger-instance.get", json!({"id": id}))
                .await?;
            if json.json {
                return print_json(&v);
            }
            for k in [
                "id",
                "seq",
                "trigger",
                "trigger_type",
                "sensor",
                "occurrence_time",
                "status",
                "trace_tag",
            ] {
                println!("{:<16} {}", format!("{k}:"), s(&v[k]));
            }
            println!("{:<16} {}", "payload:", pretty(&v["payload"]));
            if let Some(d) = v["delivery"].as_object().filter(|d| !d.is_empty()) {
                let sinks: Vec<String> = d.iter().map(|(k, st)| format!("{k}={}", s(st))).collect();
                println!("{:<16} {}", "sinks:", sinks.join(", "));
            }
        }
        Command::TriggerInstance(TriggerInstanceCmd::ReEmit { id, json }) => {
            crate::sink_cmd::re_emit(&backend, &id, json).await?
        }
        Command::Sink(cmd) => crate::sink_cmd::run(&backend, cmd).await?,
        Command::St2(cmd) => crate::st2_cmd::run(&settings, &backend, cmd).await?,
        Command::Receiver(cmd) => crate::openstack_cmd::receiver(&backend, cmd).await?,
        Command::Notification(cmd) => crate::openstack_cmd::notification(&backend, cmd).await?,
        Command::Key(cmd) => crate::key::run(&backend, cmd).await?,
        Command::Apikey(ApikeyCmd::Create { name, json }) => {
            let v = backend.call("apikey.create", json!({"name": name})).await?;
            if json.json {
                return print_json(&v);
            }
            println!("{}", s(&v["key"]));
            eprintln!(
                "API key {} created. It is shown only now: store it (only its SHA-256 is kept).",
                s(&v["id"])
            );
        }
        Command::Apikey(ApikeyCmd::List(f)) => {
            let v = backend.call("apikey.list", json!({})).await?;
            table_or_json(f, &v, &["ID", "NAME", "CREATED", "LAST USED"], |k| {
                vec![
                    s(&k["id"]),
                    s(&k["name"]),
                    s(&k["created"]),
                    s(&k["last_used"]),
                ]
            })?;
        }
        Command::Apikey(ApikeyCmd::Delete { id }) => {
            let v = backend.call("apikey.delete", json!({"id": id})).await?;
            println!("Deleted API key {}.", s(&v["id"]));
        }
        Command::Trigger(cmd) => trigger(&backend, cmd).await?,
    }
    Ok(())
}

/// Print a stream of instances: NDJSON, or fixed-width rows (a stream has
/// no end to measure columns at). A tail prints the whole payload.
async fn print_instances(
    backend: &Backend,
    op: &str,
    params: Value,
    json: bool,
    full_payload: bool,
) -> Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut header = !json;
    let mut write = |v: Value| -> Result<()> {
        let mut out = stdout.lock();
        if header {
            writeln!(out, "{}", instance_header())?;
            header = false;
        }
        let line = if json {
            serde_json::to_string(&v)?
        } else {
            let mut payload = v["payload"].to_string();
            if !full_payload && payload.chars().count() > 60 {
                payload = payload.chars().take(57).collect::<String>() + "...";
            }
            format!(
                "{:>8}  {:<36}  {:<27}  {:<32}  {:<28}  {payload}",
                s(&v["seq"]),
                s(&v["id"]),
                s(&v["occurrence_time"]),
                s(&v["trigger"]),
                s(&v["sensor"]),
            )
        };
        // A closed pipe (`| head`) ends the command quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
        Ok(())
    };
    backend.stream(op, params, &mut write).await?;
    if header {
        // Nothing matched: still show the columns.
        println!("{}", instance_header());
    }
    Ok(())
}

fn instance_header() -> String {
    format!(
        "{:>8}  {:<36}  {:<27}  {:<32}  {:<28}  PAYLOAD",
        "SEQ", "ID", "OCCURRED", "TRIGGER", "SENSOR"
    )
}

fn print_log_stats(v: &Value) {
    let n = |k: &str| s(&v[k]);
    println!("directory:   {}", s(&v["dir"]));
    println!(
        "records:     {} (seq {} .. {})",
        n("records"),
        n("first_seq"),
        n("last_seq")
    );
    println!("time:        {} .. {}", n("first_time"), n("last_time"));
    println!(
        "bytes:       {} in {} segments",
        n("bytes"),
        n("segment_count")
    );
    let r = &v["retention"];
    println!(
        "retention:   max_age {}s, max_bytes {}, on_full {}; segments roll at {} bytes or {}s",
        s(&r["max_age_seconds"]),
        s(&r["max_bytes"]),
        s(&r["on_full"]),
        s(&r["segment_bytes"]),
        s(&r["segment_max_age_seconds"])
    );
    if let Some(why) = v["refusing"].as_str() {
        println!("REFUSING APPENDS: {why}");
    }
    println!(
        "since open:  appended {}, commits {}, failed commits {}, rejected {}, dropped {}, deleted segments {}",
        n("appended"), n("commits"), n("failed_commits"), n("rejected"), n("dropped_records"), n("deleted_segments")
    );
    let mut t = Table::new(&["CURSOR", "SEQ", "LAG"]);
    for c in v["cursors"].as_array().into_iter().flatten() {
        t.row(vec![s(&c["name"]), s(&c["seq"]), s(&c["lag"])]);
    }
    print!("{}", t.render());
}

/// After a virtualenv change, restart the pack's running sensors so they
/// use it (nothing to do when no container runs).
async fn restart_pack_sensors(settings: &Settings, pack: &str) -> Result<()> {
    let sock = control::socket_path(&settings.data_dir);
    if tokio::net::UnixStream::connect(&sock).await.is_err() {
        return Ok(());
    }
    let backend = Backend::Remote(api::client::Endpoint::Unix(sock));
    let sensors = backend.call("sensor.list", json!({})).await?;
    for s in sensors.as_array().into_iter().flatten() {
        let live = !matches!(s["state"].as_str(), Some("disabled" | "not_assigned"));
        if s["pack"] == pack && live {
            backend
                .call("sensor.restart", json!({"ref": s["ref"]}))
                .await?;
            println!(
                "restarted {} with the new virtualenv",
                s["ref"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn parse_parameters(text: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| format!("--parameters is not JSON: {text}"))
}

fn print_trigger(v: &Value, json: JsonFlag) -> Result<()> {
    if json.json {
        return print_json(v);
    }
    for k in ["id", "ref", "type", "uid"] {
        println!("{:<11} {}", format!("{k}:"), s(&v[k]));
    }
    println!("{:<11} {}", "parameters:", v["parameters"]);
    Ok(())
}

async fn trigger(backend: &Backend, cmd: TriggerCmd) -> Result<()> {
    match cmd {
        TriggerCmd::Create {
            type_ref,
            parameters,
            json,
        } => {
            let v = backend
                .call(
                    "trigger.create",
                    json!({"type": type_ref, "parameters": parse_parameters(&parameters)?}),
                )
                .await?;
            print_trigger(&v, json)
        }
        TriggerCmd::List {
            type_ref,
            limit,
            json,
        } => {
            let row = |t: &Value| {
                vec![
                    s(&t["id"]),
                    s(&t["ref"]),
                    s(&t["type"]),
                    t["parameters"].to_string(),
                ]
            };
            const HEADERS: &[&str] = &["ID", "REF", "TYPE", "PARAMETERS"];
            if limit == 0 {
                let params = json!({"type": type_ref, "limit": 0});
                return crate::output::print_stream(
                    backend,
                    "trigger.list",
                    params,
                    json.json,
                    HEADERS,
                    row,
                )
                .await;
            }
            let mut v = backend
                .call(
                    "trigger.list",
                    json!({"type": type_ref, "limit": limit + 1}),
                )
                .await?;
            crate::output::trim_to_limit(&mut v, limit, "triggers");
            table_or_json(json, &v, HEADERS, row)
        }
        TriggerCmd::Get { id, json } => {
            print_trigger(&backend.call("trigger.get", json!({"id": id})).await?, json)
        }
        TriggerCmd::Update {
            id,
            parameters,
            json,
        } => {
            let v = backend
                .call(
                    "trigger.update",
                    json!({"id": id, "parameters": parse_parameters(&parameters)?}),
                )
                .await?;
            print_trigger(&v, json)
        }
        TriggerCmd::Delete { id } => {
            let v = backend.call("trigger.delete", json!({"id": id})).await?;
            println!("deleted trigger {} ({})", s(&v["id"]), s(&v["ref"]));
            Ok(())
        }
    }
}

/// A JSON value as table text: strings bare, null as `-`.
pub fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn list(v: &Value) -> String {
    v.as_array()
        .map(|l| l.iter().map(s).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn pretty(v: &Value) -> String {
    if v.is_null() {
        return "-".into();
    }
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn exit_text(v: &Value) -> String {
    if let Some(c) = v.get("code") {
        format!("exit {c}")
    } else if let Some(sig) = v.get("signal") {
        format!("signal {sig}")
    } else {
        "-".into()
    }
}

/// Print a list as JSON or as a table built row by row.
pub fn table_or_json(
    f: JsonFlag,
    v: &Value,
    headers: &[&'static str],
    row: impl Fn(&Value) -> Vec<String>,
) -> Result<()> {
    if f.json {
        return print_json(v);
    }
    let Some(items) = v.as_array() else {
        bail!("expected a list from the server, got {v}")
    };
    let mut t = Table::new(headers);
    for item in items {
        t.row(row(item));
    }
    print!("{}", t.render());
    Ok(())
}
