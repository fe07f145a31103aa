//! `sensorctl`: register content and inspect the registry and the
//! trigger-instance log.
//!
//! While a `sensorcontainer` runs it holds the database (sled allows one
//! process); until the control API exists, `sensorctl` then reports that
//! clearly instead of reading stale data.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::Value;
use store::registrar::RegisterWhat;
use store::{InstanceFilter, SensorRecord, Store, StoreOptions};

use crate::config::{GlobalOpts, Settings};
use crate::output::{or_dash, print_json, Table};
use crate::reload::{self, ReloadMode};

/// Manage the sensor container's registry, sensors and trigger instances.
#[derive(Debug, Parser)]
#[command(name = "sensorctl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
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
    /// Registered sensors
    #[command(subcommand)]
    Sensor(SensorCmd),
    /// Registered trigger types
    #[command(subcommand, name = "trigger-type")]
    TriggerType(TriggerTypeCmd),
    /// Stored trigger instances (newest first)
    #[command(subcommand, name = "trigger-instance")]
    TriggerInstance(TriggerInstanceCmd),
    /// The datastore: keys, values, secrets, TTLs
    #[command(subcommand)]
    Key(crate::key::KeyCmd),
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
pub enum TriggerInstanceCmd {
    /// List trigger instances, newest first
    List {
        /// Only this trigger or trigger type ref
        #[arg(long)]
        trigger: Option<String>,
        /// Only instances dispatched by this sensor ref
        #[arg(long)]
        sensor: Option<String>,
        /// Only instances at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z)
        #[arg(long)]
        since: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one trigger instance
    Get {
        /// Trigger instance id (UUID)
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// A sensor as `sensorctl` shows it. Field names are a stable interface.
#[derive(Debug, Serialize)]
pub struct SensorView {
    #[serde(rename = "ref")]
    pub sensor_ref: String,
    pub pack: String,
    pub class_name: String,
    pub description: Option<String>,
    /// Effective: the operator's choice if made, else the metadata's.
    pub enabled: bool,
    pub enabled_in_metadata: bool,
    pub operator_enabled: Option<bool>,
    pub poll_interval: Option<u64>,
    pub trigger_types: Vec<String>,
    pub runner_type: content::RunnerType,
    pub entry_point: String,
    pub metadata_file: String,
    pub content_hash: String,
}

impl From<&SensorRecord> for SensorView {
    fn from(r: &SensorRecord) -> Self {
        let s = &r.sensor;
        SensorView {
            sensor_ref: s.sensor_ref.clone(),
            pack: s.pack.clone(),
            class_name: s.class_name.clone(),
            description: s.description.clone(),
            enabled: r.enabled(),
            enabled_in_metadata: s.enabled,
            operator_enabled: r.operator_enabled,
            poll_interval: s.poll_interval,
            trigger_types: s.trigger_types.clone(),
            runner_type: s.runner_type,
            entry_point: s.entry_point.display().to_string(),
            metadata_file: s.metadata_file.display().to_string(),
            content_hash: s.content_hash.clone(),
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let settings = Settings::resolve(&cli.global)?;
    if let Command::Key(cmd @ crate::key::KeyCmd::GenerateCryptoKey { .. }) = cli.command {
        // Needs no database, so it works while a container runs.
        return crate::key::generate(&settings, cmd);
    }
    let store = open_store(&settings)?;
    match cli.command {
        Command::Reload(args) => {
            let any = args.register_sensors || args.register_triggers || args.register_configs;
            let what = if args.register_all || !any {
                RegisterWhat::all()
            } else {
                RegisterWhat {
                    sensors: args.register_sensors,
                    triggers: args.register_triggers,
                    configs: args.register_configs,
                }
            };
            let summary = reload::reload(&settings, &store, ReloadMode { what, no_fail: args.register_no_fail_on_failure })?;
            println!("{}", reload::describe(&summary));
        }
        Command::Pack(PackCmd::List(f)) => {
            let packs = store.registry.packs()?;
            if f.json {
                return print_json(&packs);
            }
            let mut t = Table::new(&["REF", "VERSION", "AUTHOR", "DESCRIPTION"]);
            for p in &packs {
                t.row(vec![p.pack_ref.clone(), p.version.clone(), p.author.clone(), p.description.clone()]);
            }
            print!("{}", t.render());
        }
        Command::Sensor(cmd) => sensor(&store, cmd)?,
        Command::TriggerType(TriggerTypeCmd::List(f)) => {
            let types = store.registry.trigger_types()?;
            if f.json {
                return print_json(&types);
            }
            let mut t = Table::new(&["REF", "PARAMETERS", "DESCRIPTION"]);
            for tt in &types {
                t.row(vec![
                    tt.type_ref.clone(),
                    if tt.parameters_schema.is_some() { "yes".into() } else { "no".into() },
                    tt.description.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", t.render());
        }
        Command::TriggerType(TriggerTypeCmd::Get { type_ref, json }) => {
            let Some(tt) = store.registry.trigger_type(&type_ref)? else {
                bail!("trigger type '{type_ref}' not found (see `sensorctl trigger-type list`)");
            };
            if json.json {
                return print_json(&tt);
            }
            println!("ref:               {}", tt.type_ref);
            println!("description:       {}", tt.description.as_deref().unwrap_or("-"));
            println!("tags:              {}", tt.tags.join(", "));
            println!("file:              {}", tt.metadata_file.display());
            println!("payload_schema:    {}", serde_json::to_string_pretty(&tt.payload_schema)?);
            println!("parameters_schema: {}", or_dash(tt.parameters_schema.as_ref().map(pretty)));
        }
        Command::TriggerInstance(cmd) => trigger_instance(&store, cmd)?,
        Command::Key(cmd) => crate::key::run(&settings, &store, cmd)?,
    }
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Open the database, explaining the single-process limit when it bites.
pub fn open_store(settings: &Settings) -> Result<Store> {
    match Store::open(&settings.data_dir, &StoreOptions::default()) {
        Ok(s) => Ok(s),
        Err(e @ store::StoreError::Locked { .. }) => Err(anyhow::anyhow!(
            "{e}\nA running sensorcontainer owns the database; stop it to use sensorctl on {} \
             (sensorctl talking to a running container comes with the control API).",
            settings.data_dir.display()
        )),
        Err(e) => Err(e).with_context(|| format!("cannot open the database in {}", settings.data_dir.display())),
    }
}

fn sensor(store: &Store, cmd: SensorCmd) -> Result<()> {
    match cmd {
        SensorCmd::List(f) => {
            let sensors: Vec<SensorView> = store.registry.sensors()?.iter().map(SensorView::from).collect();
            if f.json {
                return print_json(&sensors);
            }
            let mut t = Table::new(&["REF", "ENABLED", "POLL", "TRIGGER TYPES"]);
            for s in &sensors {
                t.row(vec![
                    s.sensor_ref.clone(),
                    s.enabled.to_string(),
                    or_dash(s.poll_interval),
                    s.trigger_types.join(","),
                ]);
            }
            print!("{}", t.render());
        }
        SensorCmd::Get { sensor_ref, json } => {
            let Some(record) = store.registry.sensor(&sensor_ref)? else {
                bail!("sensor '{sensor_ref}' not found (see `sensorctl sensor list`)");
            };
            let view = SensorView::from(&record);
            if json.json {
                return print_json(&view);
            }
            println!("ref:            {}", view.sensor_ref);
            println!("enabled:        {}", view.enabled);
            println!("class_name:     {}", view.class_name);
            println!("description:    {}", view.description.as_deref().unwrap_or("-"));
            println!("poll_interval:  {}", or_dash(view.poll_interval));
            println!("trigger_types:  {}", view.trigger_types.join(", "));
            println!("entry_point:    {}", view.entry_point);
            println!("metadata_file:  {}", view.metadata_file);
        }
        SensorCmd::Enable { sensor_ref } => set_enabled(store, &sensor_ref, true)?,
        SensorCmd::Disable { sensor_ref } => set_enabled(store, &sensor_ref, false)?,
    }
    Ok(())
}

fn set_enabled(store: &Store, sensor_ref: &str, enabled: bool) -> Result<()> {
    match store.registry.set_operator_enabled(sensor_ref, enabled) {
        Ok(_) => {
            store.flush()?;
            println!("sensor {sensor_ref} {}", if enabled { "enabled" } else { "disabled" });
            Ok(())
        }
        Err(store::StoreError::NotFound { .. }) => bail!("sensor '{sensor_ref}' not found (see `sensorctl sensor list`)"),
        Err(e) => Err(e.into()),
    }
}

fn trigger_instance(store: &Store, cmd: TriggerInstanceCmd) -> Result<()> {
    match cmd {
        TriggerInstanceCmd::List { trigger, sensor, since, limit, json } => {
            let list = store.instances.list(&InstanceFilter { trigger, sensor, since, limit: Some(limit) })?;
            if json.json {
                return print_json(&list);
            }
            let mut t = Table::new(&["ID", "OCCURRED", "TRIGGER", "SENSOR", "PAYLOAD"]);
            for i in &list {
                let mut payload = i.payload.to_string();
                if payload.chars().count() > 60 {
                    payload = payload.chars().take(57).collect::<String>() + "...";
                }
                t.row(vec![i.id.clone(), i.occurrence_time.clone(), i.trigger.clone(), or_dash(i.sensor.as_ref()), payload]);
            }
            print!("{}", t.render());
        }
        TriggerInstanceCmd::Get { id, json } => {
            let inst = match store.instances.get(&id) {
                Ok(i) => i,
                Err(store::StoreError::NotFound { .. }) => bail!("trigger instance '{id}' not found"),
                Err(e) => return Err(e.into()),
            };
            if json.json {
                return print_json(&inst);
            }
            println!("id:              {}", inst.id);
            println!("trigger:         {}", inst.trigger);
            println!("trigger_type:    {}", inst.trigger_type);
            println!("sensor:          {}", or_dash(inst.sensor.as_ref()));
            println!("occurrence_time: {}", inst.occurrence_time);
            println!("status:          {}", inst.status);
            println!("trace_tag:       {}", inst.trace_tag);
            println!("payload:         {}", pretty(&inst.payload));
        }
    }
    Ok(())
}
