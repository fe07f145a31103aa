//! `sensorcontainer`: runs every enabled sensor of every registered pack.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;
use container::{Container, Selection};
use sc_cli::config::{GlobalOpts, Settings};
use sc_cli::control;
use sc_cli::ops::Ops;
use sc_cli::reload::{self, ReloadMode};
use store::registrar::RegisterWhat;

/// Run StackStorm-style sensors as supervised child processes and store
/// every trigger instance they dispatch.
#[derive(Debug, Parser)]
#[command(
    name = "sensorcontainer",
    version,
    about = "Run StackStorm-style sensors as supervised child processes, store every trigger instance durably, and serve the HTTP API"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    /// Run only this sensor, <pack>.<ClassName> (even if disabled)
    #[arg(long, value_name = "REF")]
    sensor_ref: Option<String>,
    /// Exit when the sensor exits, with its exit code (requires --sensor-ref)
    #[arg(long)]
    single_sensor_mode: bool,
    /// TCP addresses of the HTTP API, comma-separated HOST:PORT; "none" disables TCP [config: api.listen; default: 127.0.0.1:9101]
    #[arg(long, env = "SENSORCONTAINER_API_LISTEN", value_name = "ADDRS")]
    api_listen: Option<String>,
    /// Python interpreter for Python sensors [config: sensorcontainer.python_binary; default: python3]
    #[arg(long, env = "SENSORCONTAINER_PYTHON", value_name = "PATH")]
    python: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    sc_cli::private_umask();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.single_sensor_mode && cli.sensor_ref.is_none() {
        bail!("--single-sensor-mode needs --sensor-ref=<pack>.<ClassName>: it runs exactly one sensor");
    }
    let mut settings = Settings::resolve(&cli.global)?;
    if let Some(p) = cli.python {
        settings.container.python_binary = p;
    }
    if let Some(l) = &cli.api_listen {
        settings.api.listen =
            sc_cli::config::listen_addrs("--api-listen", std::slice::from_ref(l))?;
    }
    sc_cli::logging::init(&settings.log_level);
    // Each sensor gets a cgroup under this run's, where the host allows.
    let run_id = sc_cli::reaper::run_id();
    match container::RunCgroup::create(&run_id) {
        Ok(run) => {
            tracing::info!("sensor cgroups under {}", run.dir().display());
            settings.container.cgroup_dir = Some(run.dir().to_path_buf());
        }
        Err(e) => tracing::info!(
            "sensors run without cgroups ({e}): a stopped sensor's leftovers are found by process group and environment"
        ),
    }
    // Before any thread: the reaper is forked from a single-threaded process.
    sc_cli::reaper::start(&run_id, settings.container.cgroup_dir.clone());
    settings.container.instance_id = Some(run_id);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let store = Arc::new(open_store_waiting(&settings).await?);
        let log = sc_cli::instances::open(&settings, &store, &|line| tracing::info!("{line}"))?;
        if store.registry.is_empty() {
            tracing::info!(
                "registry is empty: registering packs from {:?}",
                settings.packs_paths
            );
            let outcome = reload::reload(
                &settings,
                &store,
                ReloadMode {
                    what: RegisterWhat::all(),
                    no_fail: true,
                    fail_on_sensor_errors: false,
                },
            )?;
            for w in &outcome.warnings {
                tracing::warn!("{w}");
            }
            tracing::info!("{}", reload::describe(&outcome.summary));
        }
        let selection = match cli.sensor_ref {
            Some(r) => Selection::One(r),
            None => Selection::AllEnabled,
        };
        let mut container_settings = settings.container.clone();
        if settings.st2.datastore == sc_cli::st2_config::DatastoreChoice::St2 {
            container_settings.remote_datastore =
                Some(sc_cli::st2_datastore::St2Datastore::remote(&settings.st2)?);
            tracing::info!("sensors' kv.* go to st2's datastore (st2.datastore: st2)");
        }
        let container = Container::new(
            container_settings,
            store.clone(),
            log.clone(),
            selection,
            cli.single_sensor_mode,
        )?;
        let sinks = sinks::Sinks::new(log.clone(), store.sinks.clone());
        sinks
            .apply(settings.sinks.clone())
            .await
            .context("cannot start the sinks")?;
        let openstack = api::openstack::OpenStack::new(
            store.openstack.clone(),
            container.dispatcher().clone(),
            settings.openstack.clone(),
        );
        let ops = Arc::new(Ops::live(
            container.clone(),
            store.clone(),
            log.clone(),
            settings.clone(),
            sinks.clone(),
            openstack.clone(),
        ));
        let socket = control::socket_path(&settings.data_dir);
        let api_ctx = api::ApiContext::new(
            ops.clone(),
            container.dispatcher().clone(),
            log.clone(),
            store.api_keys.clone(),
            Some(container.clone()),
            settings.api.clone(),
            vec![sinks::metrics::collector(sinks.clone())],
            openstack.clone(),
        );
        let listeners = api::server::start(api_ctx, &socket).await?;
        if let Some(addr) = listeners.tcp.first() {
            openstack.set_listen_url(*addr, settings.api.tls.is_some());
        }
        let expiry = tokio::spawn(openstack.run_expiry());
        let mirror = sc_cli::st2_mirror::start(ops.clone(), &settings.st2);
        let hup = tokio::spawn(reload_on_sighup(ops));
        let code = container.run(shutdown_signal()).await?;
        hup.abort();
        expiry.abort();
        if let Some(m) = mirror {
            m.abort();
        }
        drop(listeners);
        sinks.stop().await;
        // Commit whatever is still queued (internal triggers of the stop).
        log.close();
        tracing::info!("sensorcontainer stopped");
        Ok(code)
    })
}

/// Open the database, waiting up to 10 s while another process holds it: a
/// `sensorctl` run without a container opens it briefly, and must not make
/// a starting container fail.
async fn open_store_waiting(settings: &Settings) -> Result<store::Store> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match store::Store::open(&settings.data_dir, &store::StoreOptions::default()) {
            Err(store::StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e @ store::StoreError::Locked { .. }) => {
                bail!(
                    "{e}: still locked after 10 s (another sensorcontainer on the same data dir?)"
                )
            }
            other => {
                return other.with_context(|| {
                    format!(
                        "cannot open the database in {}",
                        settings.data_dir.display()
                    )
                })
            }
        }
    }
}

/// SIGHUP: `reload --register-all` and the `sinks:` of the config file
/// (fail-fast: a bad file changes nothing).
async fn reload_on_sighup(ops: Arc<Ops>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP; reload with `sensorctl reload`");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading packs");
        match ops.execute("reload", serde_json::json!({})).await {
            Ok(v) => tracing::info!("{}", v["message"].as_str().unwrap_or_default()),
            Err(e) => tracing::error!("reload failed, nothing changed: {e}"),
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
}
