//! `sc-bench`: measures the sensor container beside the limits it is built
//! on, all in one run on this machine, and prints a markdown table.
//!
//! ```text
//! cargo run --release -p sc-bench -- [--events N] [--log-records N] [--http-concurrency N] [--quick] [--python PATH] [--no-build] [--only ROWS]
//! ```
//!
//! The container rows run the real release binaries (`sensorcontainer`,
//! `sensorctl` next to this program in `target/release`; built first when
//! run through cargo) on a generated `bench` pack in a temp dir. See
//! docs/BENCHMARKS.md for what each row measures and the results. The
//! trigger-instance log rows run `eventlog::Log` in this process (the
//! retention row in a child process of this program, for its memory). The
//! webhook row drives the container's HTTP API with a hyper client in this
//! process. The sink rows deliver to an HTTP server in this process and to
//! a nats-server this program starts; the st2 row to a private RabbitMQ
//! node it starts. The openstack row runs the openstack pack's notification
//! listener (`target/release/openstack-notification-listener`) off such a
//! node, beside a lapin consumer in this process.

mod limits;
mod live;
mod rows;
mod stats;
mod table;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use rows::throughput::Mode;
use stats::{median, Summary};
use table::{int, mib, ms, Better, Row};

struct Args {
    events: u64,
    log_records: u64,
    http_concurrency: usize,
    python: String,
    quick: bool,
    no_build: bool,
    only: Option<Vec<String>>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        events: 0,
        log_records: 1_000_000,
        http_concurrency: 32,
        python: "python3".into(),
        quick: false,
        no_build: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => args.events = it.next().context("--events needs a number")?.parse()?,
            "--log-records" => {
                args.log_records = it
                    .next()
                    .context("--log-records needs a number")?
                    .parse()
                    .context("--log-records needs a number")?
            }
            "--http-concurrency" => {
                args.http_concurrency = it
                    .next()
                    .context("--http-concurrency needs a number")?
                    .parse()
                    .context("--http-concurrency needs a number")?;
                if args.http_concurrency == 0 {
                    bail!("--http-concurrency must be at least 1");
                }
            }
            "--python" => args.python = it.next().context("--python needs a path")?,
            "--quick" => args.quick = true,
            "--no-build" => args.no_build = true,
            "--only" => {
                let v = it.next().context("--only needs a list")?;
                args.only = Some(v.split(',').map(str::to_string).collect());
            }
            "-h" | "--help" => {
                println!(
                    "usage: sc-bench [--events N] [--log-records N] [--http-concurrency N] [--quick] [--python PATH] [--no-build] [--only ROWS]\n\n\
                     --events N       events per throughput row and instances the sink drains store\n\
                     \x20                (default 200000, 50000 with --quick)\n\
                     --log-records N  records the log retention row appends (default 1000000; the\n\
                     \x20                issue's figure uses 10000000; at least 776730)\n\
                     --http-concurrency N  keep-alive connections of the webhook row's HTTP client (default 32)\n\
                     --quick          fewer events, samples and repetitions (about a third of the time)\n\
                     --python         interpreter for the sensors and the baselines (default python3)\n\
                     --no-build       do not run `cargo build --release -p sc-cli -p sc-bench --bins` first\n\
                     --only ROWS      comma-separated subset of\n\
                     \x20                log,retention,python1,rust,python10,fairness,latency,startup,restart,webhooks,\n\
                     \x20                sinks (= sink-drain,sink-latency; --events instances per drain),\n\
                     \x20                st2 (the `st2` sink into a private RabbitMQ node; at most 100000 instances,\n\
                     \x20                20000 with --quick),\n\
                     \x20                openstack (openstack.NotificationListener off a private RabbitMQ node beside a\n\
                     \x20                raw lapin consumer; at most 100000 notifications, 20000 with --quick; needs\n\
                     \x20                `cargo build --release -p openstack-notification-listener`)\n\
                     \x20                (the limits are always measured; the disk limits run with `log`)"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}' (see --help)"),
        }
    }
    if args.log_records < rows::log::min_records() {
        bail!(
            "--log-records {}: the retention row needs at least {} (max_bytes = a tenth of them must hold 1.5 segments of 16 MiB)",
            args.log_records,
            rows::log::min_records()
        );
    }
    if args.events == 0 {
        args.events = if args.quick { 50_000 } else { 200_000 };
    }
    Ok(args)
}

fn main() -> Result<()> {
    // The retention row runs in a child process of this program.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(rows::log::RETENTION_CHILD_FLAG) {
        let n = argv
            .get(2)
            .context("retention child: records")?
            .parse()
            .context("retention child: records")?;
        return rows::log::retention_child(n);
    }
    // The sink rows' HTTP limit runs its client in a child process.
    if argv.get(1).map(String::as_str) == Some(rows::sinks::HTTP_LIMIT_CHILD_FLAG) {
        return rows::sinks::http_limit_child(&argv[2..]);
    }
    let args = parse_args()?;
    let started = Instant::now();
    let bins = live::Bins::locate(args.no_build)?;
    let python = container::runtime::resolve_python(&args.python)?;
    let q = args.quick;
    let n = args.events;
    let latency_samples = if q { 5_000 } else { 20_000 };
    let startup_runs = if q { 1 } else { 3 };
    let crashes = if q { 5 } else { 20 };
    // Per measured phase of the webhook row (after a 0.3 s warm-up).
    let http_secs = Duration::from_secs_f64(if q { 1.0 } else { 2.0 });
    let many_secs = (n as f64 / 40_000.0).clamp(1.0, 10.0);
    // Per round of the disk rows (raw appends, log), 3 rounds.
    let disk_secs = Duration::from_secs_f64(if q { 0.3 } else { 0.5 });
    let (appenders, log_batch) = (4, 256);
    // The most records one group commit of the log row can hold.
    let raw_batch = appenders * log_batch;
    eprintln!(
        "sc-bench: {n} events per throughput row, python {}, binaries in {}, {} CPUs",
        python.display(),
        bins.container.parent().unwrap().display(),
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let want = |row: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|r| r == row))
    };
    let mut out: Vec<Row> = vec![];

    // --- limits -------------------------------------------------------------
    eprintln!("limits:");
    let sled_rate = limits::sled_limit(n)?;
    let pipe_rate = rt.block_on(limits::raw_pipe(&python, n))?;
    let disp_rate = limits::dispatcher_inprocess(n)?;
    let echo = limits::echo_latency(&python, latency_samples)?;
    let echo_py = limits::echo_latency_python_client(&python, latency_samples)?;
    eprintln!(
        "  python echo client: p50 {:.1} µs, p99 {:.1} µs",
        echo_py.p50, echo_py.p99
    );
    // Warm up, then the median of a few runs.
    limits::bare_python_parallel(&python, 100)?;
    let bare_runs = (0..startup_runs.max(3))
        .map(|_| limits::bare_python_parallel(&python, 100))
        .collect::<Result<Vec<_>>>()?;
    let bare100 = median(bare_runs.iter().map(|r| r.0.as_secs_f64()).collect());
    let bare100_cpu = median(bare_runs.iter().map(|r| r.1).collect());
    eprintln!(
        "  100 × python -c pass in parallel: {} (CPU {:.2} s, {:.1} ms each)",
        ms(bare100),
        bare100_cpu,
        bare100_cpu * 10.0
    );
    let bare1 = median(
        (0..11)
            .map(|_| limits::bare_python_once(&python).map(|d| d.as_secs_f64()))
            .collect::<Result<Vec<_>>>()?,
    );
    eprintln!("  1 × python -c pass: {}", ms(bare1));
    let bare_rss = limits::bare_python_rss(&python)?;
    eprintln!("  idle bare python RSS: {}", mib(bare_rss));

    out.push(Row::new(
        format!(
            "raw one-way pipe, Python → Rust, {} B frames, parsed",
            limits::PAYLOAD_FRAME.len()
        ),
        format!("{} msg/s", int(pipe_rate)),
    ));
    out.push(Row::new(
        "sled insert + flush per 1000 (300 B values)",
        format!("{} /s", int(sled_rate)),
    ));
    out.push(
        Row::new(
            "(diagnostic) container dispatch path in-process, one thread: parse frame + validate + append, durable per 1000",
            format!("{} /s", int(disp_rate)),
        )
        .limit(format!("sled = {} /s", int(sled_rate)), disp_rate / sled_rate, Better::Higher),
    );

    // --- the trigger-instance log in-process ---------------------------------
    if want("log") {
        // The disk's speed drifts (a shared VM): the limits and the log
        // take turns, 3 rounds, and each figure is the median.
        eprintln!("raw append + fdatasync and log append (group commit), in-process, 3 rounds:");
        let (mut small, mut mid, mut big) = (vec![], vec![], vec![]);
        let (mut runs, mut async_runs) = (vec![], vec![]);
        for _ in 0..3 {
            small.push(limits::raw_append_fdatasync(log_batch, disk_secs)?);
            mid.push(limits::raw_append_fdatasync(raw_batch / 2, disk_secs)?);
            big.push(limits::raw_append_fdatasync(raw_batch, disk_secs)?);
            runs.push(rows::log::append_group_commit(
                appenders,
                log_batch,
                disk_secs * 3 / 2,
                rows::log::Wait::Blocking,
            )?);
            async_runs.push(rows::log::append_group_commit(
                appenders,
                log_batch,
                disk_secs * 3 / 2,
                rows::log::Wait::Async,
            )?);
        }
        let raw_small = median(small);
        let raw_mid = median(mid);
        let raw_rate = median(big);
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let a = &runs[runs.len() / 2];
        async_runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let aa = &async_runs[async_runs.len() / 2];
        let ratio = a.rate / raw_rate;
        out.push(Row::new(
            format!(
                "raw append + fdatasync, one thread, {log_batch} records of {} B per `sync_data` (median of 3)",
                limits::RAW_RECORD_BYTES
            ),
            format!("{} /s", int(raw_small)),
        ));
        out.push(Row::new(
            format!(
                "raw append + fdatasync, one thread, {raw_batch} records of {} B per `sync_data` (median of 3)",
                limits::RAW_RECORD_BYTES
            ),
            format!("{} /s", int(raw_rate)),
        ));
        out.push(
            Row::new(
                format!(
                    "log append (group commit), in-process: `eventlog::Log` default options, {appenders} threads × batches of {log_batch} × {} B bodies, each waits for its `Completion` (median of 3 runs; that run: {} records in {:.1} s, {:.0} per fdatasync)",
                    rows::log::BODY_BYTES,
                    a.records,
                    a.secs,
                    a.records as f64 / a.commits.max(1) as f64
                ),
                format!("{} /s", int(a.rate)),
            )
            .limit(
                format!("raw append + fdatasync, {raw_batch} per sync = {} /s", int(raw_rate)),
                ratio,
                Better::Higher,
            )
            .target(format!("≥ 70% of raw append, {raw_batch} per sync"), ratio >= 0.7),
        );
        out.push(
            Row::new(
                format!(
                    "(diagnostic) the same log append beside raw append + fdatasync at {} per sync (about what its commits held)",
                    raw_batch / 2
                ),
                format!("{} /s", int(a.rate)),
            )
            .limit(
                format!("raw append + fdatasync, {} per sync = {} /s", raw_batch / 2, int(raw_mid)),
                a.rate / raw_mid,
                Better::Higher,
            ),
        );
        out.push(
            Row::new(
                format!(
                    "(diagnostic) the same log append, each thread waiting with `Completion::wait().await` (as the container does) instead of `wait_blocking()` (median of 3 runs; that run: {:.0} per fdatasync)",
                    aa.records as f64 / aa.commits.max(1) as f64
                ),
                format!("{} /s", int(aa.rate)),
            )
            .limit(
                format!("raw append + fdatasync, {raw_batch} per sync = {} /s", int(raw_rate)),
                aa.rate / raw_rate,
                Better::Higher,
            ),
        );
    }
    if want("retention") {
        let lr = args.log_records;
        eprintln!(
            "log retention, {lr} records (the issue's figure uses 10,000,000), in a child process:"
        );
        let run = rows::log::retention(lr)?;
        let all = &run.all;
        let (lo, hi) = (all.ratio_min, all.ratio_max);
        let flat = all.checks > 0 && hi - lo <= 0.1;
        let deciles: Vec<String> = run
            .checks
            .iter()
            .map(|c| format!("{:.3}", c.ratio()))
            .collect();
        eprintln!(
            "  {:.1} s ({:.0}/s, {} commits), {} segments deleted; bytes on disk / retained over {} checks: {lo:.4}–{hi:.4}× (at each tenth of the last half: {}); VmHWM {} VmRSS max {} (before opening the log {})",
            run.secs,
            run.records as f64 / run.secs,
            run.commits,
            run.deleted_segments,
            all.checks,
            deciles.join(", "),
            mib(run.hwm_end),
            mib(all.rss_max.max(run.rss_end)),
            mib(run.rss_before)
        );
        let what = format!(
            "log under retention ({lr} records × {} B bodies; the issue's figure uses 10,000,000: `--log-records 10000000`), segments 16 MiB, `max_bytes` {}",
            rows::log::BODY_BYTES,
            mib(run.max_bytes)
        );
        out.push(
            Row::new(
                format!(
                    "{what}: bytes on disk / bytes of the retained records, after each of the last half's {} rounds of 1024",
                    all.checks
                ),
                format!(
                    "{lo:.3}–{hi:.3}× ({}–{} records retained, at most {} on disk)",
                    int(all.retained_min as f64),
                    int(all.retained_max as f64),
                    mib(all.disk_max)
                ),
            )
            .limit(
                format!("retained records × {} B framed", rows::log::FRAMED_BYTES),
                hi,
                Better::Lower,
            )
            .target("≤ 1.3× and flat (max − min ≤ 0.1)", hi <= 1.3 && flat),
        );
        out.push(
            Row::new(
                "log under retention, same run: VmHWM / max VmRSS of the process running it (a child of sc-bench with only the log in it)",
                format!("{} / {}", mib(run.hwm_end), mib(all.rss_max.max(run.rss_end))),
            )
            .limit(
                format!("the same process before opening the log = {}", mib(run.rss_before)),
                run.hwm_end as f64 / run.rss_before as f64,
                Better::Lower,
            )
            .target("≤ 64 MiB", run.hwm_end <= 64 << 20),
        );
    }

    // --- one Python sensor --------------------------------------------------
    if want("python1") {
        eprintln!("1 Python sensor, {n} dispatches:");
        let one = rows::throughput::python_sensors(&bins, 1, Mode::Count(n))?;
        let s1 = one.sensors[0];
        let r1 = s1.n as f64 / (s1.t1 - s1.t0);
        eprintln!(
            "  {r1:.0}/s; CPU per dispatch: sensor {:.1} µs, container {:.1} µs (over {:.2} s: sensor {:.0}%, container {:.0}% of one core)",
            1e6 * s1.cpu / s1.n as f64,
            1e6 * one.container_cpu / s1.n as f64,
            s1.t1 - s1.t0,
            100.0 * s1.cpu / (s1.t1 - s1.t0),
            100.0 * one.container_cpu / (s1.t1 - s1.t0)
        );
        let limit = pipe_rate.min(sled_rate);
        out.push(
            Row::new(
                format!("1 Python sensor → durable trigger instances ({n} dispatches)"),
                format!("{} /s", int(r1)),
            )
            .limit(
                format!("min(raw pipe, sled) = {} /s", int(limit)),
                r1 / limit,
                Better::Higher,
            )
            .target("≥ 30,000 /s", r1 >= 30_000.0),
        );
    }

    // --- Rust SDK sensor ----------------------------------------------------------------
    if want("rust") {
        eprintln!("1 Rust SDK sensor, {n} dispatches:");
        let rs = rows::throughput::rust_sensor(&bins, n)?;
        let s = rs.sensors[0];
        let rr = s.n as f64 / (s.t1 - s.t0);
        eprintln!(
            "  {rr:.0}/s; CPU per dispatch: sensor {:.1} µs, container {:.1} µs (over {:.2} s: sensor {:.0}%, container {:.0}% of one core)",
            1e6 * s.cpu / s.n as f64,
            1e6 * rs.container_cpu / s.n as f64,
            s.t1 - s.t0,
            100.0 * s.cpu / (s.t1 - s.t0),
            100.0 * rs.container_cpu / (s.t1 - s.t0)
        );
        out.push(
            Row::new(
                format!("1 Rust SDK sensor (`runner_type: exec`) → durable trigger instances ({n} dispatches)"),
                format!("{} /s", int(rr)),
            )
            .limit(format!("sled = {} /s", int(sled_rate)), rr / sled_rate, Better::Higher)
            .target(
                "≥ 100,000 /s and ≥ 70% of sled",
                rr >= 100_000.0 && rr >= 0.7 * sled_rate,
            ),
        );
    }

    // --- ten Python sensors ------------------------------------------------------
    if want("python10") {
        eprintln!("10 Python sensors for {many_secs:.1} s:");
        let run = rows::throughput::python_sensors(
            &bins,
            10,
            Mode::For(Duration::from_secs_f64(many_secs)),
        )?;
        let (go, many) = (run.go, &run.sensors);
        let total: u64 = many.iter().map(|r| r.n).sum();
        let end = many.iter().map(|r| r.t1).fold(0.0, f64::max);
        let agg = total as f64 / (end - go);
        let rates: Vec<f64> = many.iter().map(|r| r.n as f64 / (r.t1 - go)).collect();
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let fairness = min / mean;
        let sensors_cpu: f64 = many.iter().map(|r| r.cpu).sum();
        eprintln!(
            "  aggregate {agg:.0}/s, per sensor {:?}, fairness {fairness:.2}; CPU per dispatch: sensors {:.1} µs, container {:.1} µs; {:.2} of 2 cores busy",
            rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
            1e6 * sensors_cpu / total as f64,
            1e6 * run.container_cpu / total as f64,
            (sensors_cpu + run.container_cpu) / (end - go)
        );
        out.push(
            Row::new(
                format!(
                    "10 Python sensors at once → durable, aggregate ({total} in {:.1} s)",
                    end - go
                ),
                format!("{} /s", int(agg)),
            )
            .limit(
                format!("sled = {} /s", int(sled_rate)),
                agg / sled_rate,
                Better::Higher,
            ),
        );
        out.push(
            Row::new(
                "10 Python sensors: fairness = slowest sensor's rate / mean rate",
                format!("{fairness:.2} (min {} /s, mean {} /s)", int(min), int(mean)),
            )
            .limit("1.00 (equal shares)", fairness, Better::Higher),
        );
    }

    // --- fairness -------------------------------------------------------------
    if want("fairness") {
        let fair_samples = if q { 500 } else { 2000 };
        eprintln!("fairness: a quiet sensor's acked dispatch every 10 ms, alone then beside a flooder ({fair_samples} each):");
        let lat = |s: &Summary| format!("{:.0} / {:.0} µs", s.p50, s.p99);
        let f = rows::fairness::quiet_beside_flooder(&bins, fair_samples, &std::env::temp_dir())?;
        let ratio = f.loaded.p99 / f.alone.p99;
        eprintln!(
            "  alone p50 {:.0} p99 {:.0} µs; with the flooder ({:.0}/s) p50 {:.0} p99 {:.0} µs; p99 ratio {ratio:.2}",
            f.alone.p50, f.alone.p99, f.flood_rate, f.loaded.p50, f.loaded.p99
        );
        out.push(Row::new(
            "fairness: quiet Python sensor alone, one acked `dispatch` every 10 ms, p50 / p99",
            lat(&f.alone),
        ));
        out.push(
            Row::new(
                format!(
                    "fairness: the same quiet sensor while a flooding Python sensor stores {} /s, p50 / p99",
                    int(f.flood_rate)
                ),
                lat(&f.loaded),
            )
            .limit(
                format!("quiet alone, same run: p99 = {:.0} µs", f.alone.p99),
                ratio,
                Better::Lower,
            )
            .target("p99 ≤ 2× alone", ratio <= 2.0),
        );
        // Without the disk's jitter (which also widens the alone p99),
        // what is left is the two cores' scheduling.
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            let f = rows::fairness::quiet_beside_flooder(&bins, fair_samples, shm)?;
            let ratio = f.loaded.p99 / f.alone.p99;
            eprintln!(
                "  tmpfs: alone p50 {:.0} p99 {:.0} µs; with the flooder p50 {:.0} p99 {:.0} µs; p99 ratio {ratio:.2}",
                f.alone.p50, f.alone.p99, f.loaded.p50, f.loaded.p99
            );
            out.push(
                Row::new(
                    format!(
                        "(diagnostic) the fairness pair with the data dir on tmpfs (no disk): alone {}; with the flooder ({} /s)",
                        lat(&f.alone),
                        int(f.flood_rate)
                    ),
                    lat(&f.loaded),
                )
                .limit(
                    format!("quiet alone on tmpfs: p99 = {:.0} µs", f.alone.p99),
                    ratio,
                    Better::Lower,
                ),
            );
        }
    }

    // --- latency --------------------------------------------------------------
    if want("latency") {
        eprintln!("kv.get round trips from Python ({latency_samples}):");
        let (call, get_value) = rows::latency::kv_get(&bins, latency_samples)?;
        let plain = rows::latency::kv_get_plain(&bins, &python, latency_samples)?;
        let stub = rows::latency::kv_get_shim_stub(&python, latency_samples)?;
        let echo_after = limits::echo_latency(&python, latency_samples)?;
        eprintln!(
            "  _client.call: p50 {:.1} p99 {:.1} p99.9 {:.1} µs; get_value p50 {:.1} p99 {:.1}",
            call.p50, call.p99, call.p999, get_value.p50, get_value.p99
        );
        let lat = |s: &Summary| format!("{:.0} / {:.0} / {:.0} µs", s.p50, s.p99, s.p999);
        out.push(Row::new(
            format!(
                "raw socketpair echo, Rust ⇄ Python echo peer, {} B, p50 / p99 / p99.9",
                limits::KV_GET_FRAME.len() + 1
            ),
            lat(&echo),
        ));
        out.push(
            Row::new(
                "sync call `kv.get` from Python (shim `_client.call`) → container, p50 / p99 / p99.9",
                lat(&call),
            )
            .limit(
                format!("raw echo p99 = {:.0} µs", echo.p99),
                call.p99 / echo.p99,
                Better::Lower,
            )
            .target("p99 ≤ 2× echo p99", call.p99 <= 2.0 * echo.p99),
        );
        out.push(
            Row::new(
                "same through `sensor_service.get_value`, p50 / p99 / p99.9",
                lat(&get_value),
            )
            .limit(
                format!("raw echo p99 = {:.0} µs", echo.p99),
                get_value.p99 / echo.p99,
                Better::Lower,
            ),
        );
        out.push(Row::new(
            "(diagnostic) echo the other way: Python client (plain socket) ⇄ Rust echo thread, p50 / p99 / p99.9",
            lat(&echo_py),
        ));
        out.push(Row::new(
            "(diagnostic) raw echo again, right after the `kv.get` rows, p50 / p99 / p99.9",
            lat(&echo_after),
        ));
        out.push(
            Row::new(
                "(diagnostic) `kv.get` from a plain-socket Python sensor (no shim, `runner_type: exec`) → container",
                lat(&plain),
            )
            .limit(
                format!("raw echo p99 = {:.0} µs", echo.p99),
                plain.p99 / echo.p99,
                Better::Lower,
            ),
        );
        out.push(
            Row::new(
                "(diagnostic) `kv.get` through the shim's `_client.call` → stub responder thread (no container)",
                lat(&stub),
            )
            .limit(
                format!("raw echo p99 = {:.0} µs", echo.p99),
                stub.p99 / echo.p99,
                Better::Lower,
            ),
        );
    }

    // --- start-up and memory -------------------------------------------------------
    if want("startup") {
        eprintln!("100 Python sensors: start-up ({startup_runs} runs after a warm-up) and memory:");
        let st = rows::startup::hundred_sensors(&bins, 100, startup_runs)?;
        let up = median(st.runs.clone());
        eprintln!(
            "  start to all setup() done: {:?} s; container RSS {}, sensor RSS median {} max {}",
            st.runs,
            mib(st.container_rss),
            mib(st.sensor_rss_median),
            mib(st.sensor_rss_max)
        );
        eprintln!(
            "  CPU until all up (last run): sensors {:.2} s ({:.1} ms each), container {:.2} s; bare python {:.1} ms each",
            st.sensors_cpu,
            st.sensors_cpu * 10.0,
            st.container_cpu,
            bare100_cpu * 10.0
        );
        eprintln!(
            "  sensor processes started from {} to {} after the container",
            ms(st.first_spawn),
            ms(st.last_spawn)
        );
        out.push(
            Row::new(
                "`sensorcontainer` start → all 100 Python sensors' `setup()` done (median)",
                ms(up),
            )
            .limit(
                format!("100 × `python3 -c pass` in parallel = {}", ms(bare100)),
                up / bare100,
                Better::Lower,
            )
            .target("≤ 1.5× bare", up <= 1.5 * bare100),
        );
        out.push(
            Row::new(
                "container RSS with 100 sensors running",
                mib(st.container_rss),
            )
            .target("≤ 40 MB", st.container_rss as f64 <= 40e6),
        );
        out.push(
            Row::new(
                "idle Python sensor process RSS (median of 100)",
                format!(
                    "{} (max {})",
                    mib(st.sensor_rss_median),
                    mib(st.sensor_rss_max)
                ),
            )
            .limit(
                format!("idle bare `python3` = {}", mib(bare_rss)),
                st.sensor_rss_median as f64 / bare_rss as f64,
                Better::Lower,
            )
            .target("≤ 2× bare", st.sensor_rss_median <= 2 * bare_rss),
        );
    }

    // --- restart ------------------------------------------------------------------
    if want("restart") {
        eprintln!("restart latency ({crashes} crashes, zero backoff):");
        let (rl, rl_cpu) = rows::startup::restart_latency(&bins, crashes)?;
        let rl = Summary::of(rl);
        let rl_cpu = median(rl_cpu);
        eprintln!(
            "  p50 {} max {}; the replacement's own CPU until setup() done: median {}",
            ms(rl.p50),
            ms(rl.max),
            ms(rl_cpu)
        );
        out.push(
            Row::new(
                format!("restart: sensor crash → replacement's `setup()` done, zero backoff (median of {crashes}, max)"),
                format!("{} (max {})", ms(rl.p50), ms(rl.max)),
            )
            .limit(
                format!("one `python3 -c pass` = {}", ms(bare1)),
                rl.p50 / bare1,
                Better::Lower,
            ),
        );
    }

    // --- webhooks over the HTTP API ------------------------------------------------
    if want("webhooks") {
        let conc = args.http_concurrency;
        eprintln!(
            "webhooks over the HTTP API ({conc} connections, {:.0} s per phase: healthz, webhooks, healthz):",
            http_secs.as_secs_f64()
        );
        let w = rows::webhooks::run(&bins, &rt, conc, http_secs)?;
        let [h0, h1] = &w.healthz;
        let h = if h0.rate() >= h1.rate() { h0 } else { h1 };
        let wh = &w.webhooks;
        let ratio = wh.rate() / h.rate();
        eprintln!(
            "  {} answered 202 (warm-up included), {} `{}` instances stored ({} records in the log); {} records over {} commits in the measured phase ({:.1} per fdatasync)",
            w.accepted,
            w.stored,
            rows::webhooks::TRIGGER,
            w.records,
            w.appended,
            w.commits,
            w.appended as f64 / w.commits.max(1) as f64
        );
        let lat = |s: &Summary| format!("{:.2} / {:.2} ms", s.p50 / 1e3, s.p99 / 1e3);
        out.push(Row::new(
            format!(
                "`GET /healthz` on the container's HTTP API, hyper HTTP/1.1 client in sc-bench, {conc} keep-alive connections, {:.0} s (faster of 2 runs, before and after the webhooks: {} and {} /s; p50 / p99 {})",
                http_secs.as_secs_f64(),
                int(h0.rate()),
                int(h1.rate()),
                lat(&h.lat)
            ),
            format!("{} /s", int(h.rate())),
        ));
        out.push(
            Row::new(
                format!(
                    "`POST /api/v1/webhooks/st2` (`{}`, small payload) → 202 once durable, same client, {conc} connections, {:.0} s ({} answered 202 in the run, warm-up included; {} stored)",
                    rows::webhooks::TRIGGER,
                    http_secs.as_secs_f64(),
                    w.accepted,
                    w.stored
                ),
                format!("{} /s", int(wh.rate())),
            )
            .limit(
                format!("`GET /healthz`, same server, client and concurrency = {} /s", int(h.rate())),
                ratio,
                Better::Higher,
            )
            .target("≥ 50% of healthz", ratio >= 0.5),
        );
        out.push(
            Row::new(
                "same webhooks: latency send → 202 read, p50 / p99",
                lat(&wh.lat),
            )
            .limit(
                format!("`GET /healthz` p99 = {:.2} ms", h.lat.p99 / 1e3),
                wh.lat.p99 / h.lat.p99,
                Better::Lower,
            ),
        );
    }

    // --- sinks ------------------------------------------------------------------------
    let want_drain = want("sinks") || want("sink-drain");
    let want_latency = want("sinks") || want("sink-latency");
    let nats_bin = if want_drain || want_latency {
        let b = rows::sinks::nats_server_binary();
        if b.is_none() {
            eprintln!("sinks: nats-server not found ($SC_NATS_SERVER, target/peers/venv/bin, PATH): the NATS rows are skipped; run scripts/install-peers.sh");
        }
        b
    } else {
        None
    };
    if want_drain {
        let plan = rows::sinks::DrainPlan {
            fill: n,
            max: Duration::from_secs(if q { 2 } else { 5 }),
            limit_secs: http_secs,
        };
        eprintln!(
            "sinks: drain {} pre-stored instances (each sink until all or {:.0} s), limits {:.0} s each:",
            plan.fill,
            plan.max.as_secs_f64(),
            http_secs.as_secs_f64()
        );
        let d = rows::sinks::drains(&bins, &rt, plan, nats_bin.as_deref())?;
        let (one, lim) = (&d.http_one, &d.http_one_limit);
        let ratio = one.rate() / lim.rate();
        out.push(
            Row::new(
                format!(
                    "`http` sink, `batch_max: 1`: pre-stored instances ({} B JSON each) POSTed to an HTTP server in sc-bench (axum, 200 `{{}}`), `sink.resume` → `delivered` = {} (of {} stored by the Rust SDK sensor at {} /s with every sink paused)",
                    lim.body_bytes,
                    int(one.delivered as f64),
                    int(d.fill as f64),
                    int(d.fill_rate)
                ),
                format!("{} /s", int(one.rate())),
            )
            .limit(
                format!(
                    "serial keep-alive POSTs of the same body, one hyper-util pooled client (http1, one connection, one request at a time), {:.0} s = {} /s",
                    lim.secs,
                    int(lim.rate())
                ),
                ratio,
                Better::Higher,
            )
            .target("≥ 70% of the limit", ratio >= 0.7),
        );
        let (b, bl) = (&d.http_batch, &d.http_batch_limit);
        let ratio = b.rate() / bl.rate();
        out.push(
            Row::new(
                format!(
                    "`http` sink, `batch_max: {}` (JSON arrays): {} pre-stored instances, resume → delivered ({} requests)",
                    rows::sinks::HTTP_BATCH,
                    int(b.delivered as f64),
                    int(b.requests as f64)
                ),
                format!("{} /s", int(b.rate())),
            )
            .limit(
                format!(
                    "serial POSTs of the same {}-instance array ({:.1} KiB), same client = {} instances/s",
                    rows::sinks::HTTP_BATCH,
                    bl.body_bytes as f64 / 1024.0,
                    int(bl.rate())
                ),
                ratio,
                Better::Higher,
            )
            .target("≥ 70% of the limit", ratio >= 0.7),
        );
        if let Some(nd) = &d.nats {
            let dr = &nd.drain;
            let lim = nd.batches.0 as f64 / nd.batches.1;
            let sliding = nd.sliding.0 as f64 / nd.sliding.1;
            let ratio = dr.rate() / lim;
            out.push(
                Row::new(
                    format!(
                        "`nats` sink, `batch_max: {}`: {} pre-stored instances ({} B payload) published to JetStream (nats-server, file storage, `Nats-Msg-Id`), resume → delivered",
                        rows::sinks::NATS_WINDOW,
                        int(dr.delivered as f64),
                        nd.payload_bytes
                    ),
                    format!("{} /s", int(dr.rate())),
                )
                .limit(
                    format!(
                        "raw async-nats JetStream publish of the same payload and subject with `Nats-Msg-Id`, windows of {} (publish {}, then await their acks in order), {:.0} s = {} /s",
                        rows::sinks::NATS_WINDOW,
                        rows::sinks::NATS_WINDOW,
                        nd.batches.1,
                        int(lim)
                    ),
                    ratio,
                    Better::Higher,
                )
                .target("≥ 70% of the limit", ratio >= 0.7),
            );
            out.push(
                Row::new(
                    "(diagnostic) the same `nats` drain beside raw publishes with a sliding window (1024 unacknowledged: await the oldest before each publish)",
                    format!("{} /s", int(dr.rate())),
                )
                .limit(
                    format!("sliding window of {} = {} /s", rows::sinks::NATS_WINDOW, int(sliding)),
                    dr.rate() / sliding,
                    Better::Higher,
                ),
            );
        }
    }
    if want_latency {
        let plan = rows::sinks::LatencyPlan {
            rate: 10_000.0,
            secs: if q { 2.0 } else { 5.0 },
            catch_up: Duration::from_secs(if q { 5 } else { 15 }),
            limit_secs: Duration::from_secs(1),
        };
        let (rate, secs) = (plan.rate, plan.secs);
        let mut kinds = vec![rows::sinks::Kind::Http, rows::sinks::Kind::HttpBatch];
        if nats_bin.is_some() {
            kinds.push(rows::sinks::Kind::Nats);
        }
        eprintln!("sinks: dispatch → delivered latency, Rust SDK sensor at {rate:.0}/s for {secs:.0} s, one sink at a time (each waits at most {:.0} s after the last dispatch):", plan.catch_up.as_secs_f64());
        for kind in kinds {
            let l = rows::sinks::latency(&bins, &rt, kind, nats_bin.as_deref(), plan)?;
            let (sink, how) = match kind {
                rows::sinks::Kind::Http => (
                    "`http` sink (`batch_max: 1`)".to_string(),
                    "the test server's receive time − the instance's `occurrence_time`",
                ),
                rows::sinks::Kind::HttpBatch => (
                    format!(
                        "(diagnostic) `http` sink with `batch_max: {}` (JSON arrays)",
                        rows::sinks::HTTP_BATCH
                    ),
                    "the test server's receive time − each instance's `occurrence_time`",
                ),
                rows::sinks::Kind::Nats => (
                    "`nats` sink (`batch_max: 1024`)".to_string(),
                    "the JetStream message's stored time − the instance's `occurrence_time`",
                ),
            };
            let h = &l.histogram;
            let late = if l.late > 0 {
                format!(
                    "; **{} of them not delivered {:.0} s after the last dispatch**, counted as delivered then, so the figures are lower bounds",
                    int(l.late as f64),
                    l.catch_up.as_secs_f64()
                )
            } else {
                String::new()
            };
            let ge = if l.late > 0 { "≥ " } else { "" };
            let (p50, p99) = (l.lat.p50 / 1e6, l.lat.p99 / 1e6);
            let value = if p99 >= 1.0 {
                format!("{ge}{p50:.2} / {ge}{p99:.2} s")
            } else {
                format!("{ge}{:.2} / {ge}{:.2} ms", p50 * 1e3, p99 * 1e3)
            };
            out.push(
                Row::new(
                    format!(
                        "{sink}: dispatch → delivered while the Rust SDK sensor dispatches {} /s for {secs:.0} s ({} instances; {how}{late}), p50 / p99 (the sink's own histogram, append → confirmed, ms clocks: mean {}, p50 {}, p99 {})",
                        int(l.dispatch_rate),
                        int(l.dispatched as f64),
                        rows::sinks::secs_text(h.mean()),
                        h.bound(0.5),
                        h.bound(0.99)
                    ),
                    value,
                )
                .limit(
                    format!(
                        "{}, p50 / p99 = {:.2} / {:.2} ms",
                        l.limit_what,
                        l.limit.p50 / 1e3,
                        l.limit.p99 / 1e3
                    ),
                    l.lat.p99 / l.limit.p99,
                    Better::Lower,
                ),
            );
        }
    }

    // --- the st2 sink (StackStorm's bus) --------------------------------------------
    if want("st2") {
        match rows::rabbit::rabbitmq_binary() {
            None => {
                let why = "st2: rabbitmq-server not found ($SC_RABBITMQ_SERVER, /usr/lib/rabbitmq/bin/rabbitmq-server): install rabbitmq-server: scripts/install-peers.sh as root";
                // Named in --only: the row was asked for and cannot run.
                if args.only.is_some() {
                    bail!("{why}");
                }
                eprintln!("{why}; the st2 row is skipped");
            }
            Some(bin) => {
                let w = rows::st2::ST2_WINDOW;
                let plan = rows::st2::St2Plan {
                    fill: n.min(if q { 20_000 } else { 100_000 }),
                    max: Duration::from_secs(if q { 15 } else { 30 }),
                    limit_secs: http_secs,
                    limit_runs: 2,
                    path_secs: http_secs,
                };
                eprintln!(
                    "st2: drain {} pre-stored instances into a private RabbitMQ node (until all or {:.0} s), then raw lapin publishes, {:.0} s per phase:",
                    plan.fill,
                    plan.max.as_secs_f64(),
                    http_secs.as_secs_f64()
                );
                let s = rows::st2::run(&bins, &rt, &bin, plan)?;
                let (d, lim, path) = (&s.drain, &s.limit, &s.path);
                let ratio = d.rate() / lim.rate();
                out.push(
                    Row::new(
                        format!(
                            "`st2` sink, `batch_max: {w}` (its publisher-confirm window): pre-stored instances ({} B pickled body) published to a private RabbitMQ node (exchange `{}`, routing key `trigger_instance`, persistent, `mandatory`, publisher confirms; one durable queue bound with `#`, holding {} after), `sink.resume` → `delivered` = {} (of {} stored by the Rust SDK sensor at {} /s with the sink paused)",
                            s.body_bytes,
                            rows::st2::EXCHANGE,
                            int(s.queued as f64),
                            int(d.delivered as f64),
                            int(s.fill as f64),
                            int(s.fill_rate)
                        ),
                        format!("{} /s", int(d.rate())),
                    )
                    .limit(
                        format!(
                            "raw lapin publishes of the same body, exchange, routing key, properties and `mandatory`, one connection, one confirm-mode channel, windows of {w} (publish {w}, then await their confirms in order), {:.0} s = {} /s",
                            lim.secs,
                            int(lim.rate())
                        ),
                        ratio,
                        Better::Higher,
                    )
                    .target("≥ 70% of the limit", ratio >= 0.7),
                );
                out.push(
                    Row::new(
                        format!(
                            "(for scale) st2's path shape (channel per message, no confirms), lapin: per message open a channel, publish the same body (persistent, not `mandatory`), close the channel, one after another, {:.0} s ({} publishes; {} in the queue after, warm-up included)",
                            path.secs,
                            int(path.messages as f64),
                            int(s.path_queued as f64)
                        ),
                        format!("{} /s", int(path.rate())),
                    )
                    .limit(
                        format!(
                            "the confirmed windows of {w} above = {} /s",
                            int(lim.rate())
                        ),
                        path.rate() / lim.rate(),
                        Better::Higher,
                    ),
                );
            }
        }
    }

    // --- the openstack pack's notification listener (oslo.messaging) ------------------
    if want("openstack") {
        let ready = match rows::rabbit::rabbitmq_binary() {
            None => Err("openstack: rabbitmq-server not found ($SC_RABBITMQ_SERVER, /usr/lib/rabbitmq/bin/rabbitmq-server): install rabbitmq-server: scripts/install-peers.sh as root".to_string()),
            Some(rabbit_bin) => match rows::openstack::listener_binary(&bins) {
                Ok(listener_bin) => Ok((rabbit_bin, listener_bin)),
                Err(e) => Err(format!("openstack: {e:#}")),
            },
        };
        match ready {
            Err(why) => {
                // Named in --only: the row was asked for and cannot run.
                if args.only.is_some() {
                    bail!("{why}");
                }
                eprintln!("{why}; the openstack row is skipped");
            }
            Ok((rabbit_bin, listener_bin)) => {
                let plan = rows::openstack::OpenstackPlan {
                    notifications: n.min(if q { 20_000 } else { 100_000 }),
                    max: Duration::from_secs(if q { 60 } else { 120 }),
                };
                eprintln!(
                    "openstack: {} notifications through {} ({}) off a private RabbitMQ node, then a raw lapin consumer of the same bodies (each at most {:.0} s):",
                    plan.notifications,
                    rows::openstack::SENSOR_REF,
                    listener_bin.display(),
                    plan.max.as_secs_f64()
                );
                let o = rows::openstack::run(&bins, &rt, &rabbit_bin, &listener_bin, plan)?;
                let (e, l) = (&o.listener, &o.limit);
                let ratio = e.rate() / l.rate();
                out.push(
                    Row::new(
                        format!(
                            "(diagnostic) `{}` (the openstack pack's oslo.messaging listener, Rust SDK, `runner_type: exec`, run with `--sensor-ref`): {} `{}` notifications ({} B messaging v2 bodies) pre-filled with publisher confirms (at {} /s) into a private RabbitMQ node's non-durable queue `{}` (topic exchange `{}`) → {} durable `{}` instances, each message acked once its instance is durable, prefetch {}; from its `consuming` log line ({:.2} s after the container's start) to the last instance durable ({} records in the log after); CPU per notification: container {:.1} µs, listener {:.1} µs, rabbitmq-server {:.1} µs",
                            rows::openstack::SENSOR_REF,
                            int(o.notifications as f64),
                            rows::openstack::EVENT_TYPE,
                            o.body_bytes,
                            int(o.fill_rate),
                            rows::openstack::QUEUE,
                            rows::openstack::EXCHANGE,
                            int(e.stored as f64),
                            rows::openstack::TRIGGER,
                            rows::openstack::PREFETCH,
                            e.consuming_after,
                            int(o.records as f64),
                            e.per(e.container_cpu),
                            e.per(e.listener_cpu),
                            e.per(e.broker_cpu)
                        ),
                        format!("{} /s", int(e.rate())),
                    )
                    .limit(
                        format!(
                            "raw lapin consumer in sc-bench of the same {} bodies (queue filled again): one connection, one channel, `basic.qos` {}, both JSON layers parsed (`serde_json::Value`), each message acked on its own, {:.2} s = {} /s (CPU per message: sc-bench {:.1} µs, rabbitmq-server {:.1} µs)",
                            int(l.messages as f64),
                            rows::openstack::PREFETCH,
                            l.secs,
                            int(l.rate()),
                            1e6 * l.bench_cpu / l.messages.max(1) as f64,
                            1e6 * l.broker_cpu / l.messages.max(1) as f64
                        ),
                        ratio,
                        Better::Higher,
                    ),
                );
            }
        }
    }

    println!();
    table::print(&out);
    println!();
    println!(
        "sc-bench: {} CPUs, python {}, total {:.0} s",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0),
        python.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
