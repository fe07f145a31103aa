//! `sc-bench`: measures the container's dispatch path beside the physical
//! limits it is built on, all in one run on this machine.
//!
//! ```text
//! cargo run --release -p sc-bench -- [--events N] [--python python3]
//! ```
//!
//! Rows:
//! - raw pipe: a Python child writes N dispatch-sized frames to fd 3
//!   (batched writes), the container side reads and parses them;
//! - sled: insert N instance-sized records, flush every 1000;
//! - Python sensor: one real StackStorm-style sensor in the real container
//!   dispatching N small payloads, counted once every ack (= durable) is in.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use protocol::{Frame, FrameReader, Incoming};
use tokio::io::BufReader;

const PAYLOAD_FRAME: &str = r#"{"jsonrpc":"2.0","id":123456,"method":"dispatch","params":{"trigger":"bench.event","payload":{"n":123456,"source":"bench"}}}"#;

struct Args {
    events: u64,
    python: String,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        events: 200_000,
        python: "python3".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => args.events = it.next().context("--events needs a number")?.parse()?,
            "--python" => args.python = it.next().context("--python needs a path")?,
            "-h" | "--help" => {
                println!("usage: sc-bench [--events N (default 200000)] [--python PATH (default python3)]");
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}' (see --help)"),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let python = container::runtime::resolve_python(&args.python)?;
    eprintln!(
        "sc-bench: {} events per row, python {}",
        args.events,
        python.display()
    );

    let sled_rate = sled_limit(args.events)?;
    let pipe_rate = rt.block_on(raw_pipe(&python, args.events))?;
    let sensor_rate = rt.block_on(python_sensor(&args.python, args.events))?;

    println!();
    println!("| measurement | rate (msg/s) | limit it is measured against | ratio |");
    println!("|---|---:|---|---:|");
    println!(
        "| raw one-way pipe, Python → container (frame {} B, parsed) | {:.0} | — | — |",
        PAYLOAD_FRAME.len(),
        pipe_rate
    );
    println!(
        "| sled insert + flush per 1000 | {:.0} | — | — |",
        sled_rate
    );
    let limit = pipe_rate.min(sled_rate);
    println!(
        "| Python sensor → durable trigger instances | {:.0} | min(pipe, sled) = {:.0} | {:.0}% |",
        sensor_rate,
        limit,
        100.0 * sensor_rate / limit
    );
    Ok(())
}

/// sled's own batched insert + flush rate with instance-sized values.
fn sled_limit(n: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(64 << 20)
        .open()?;
    let tree = db.open_tree("bench")?;
    let value = vec![b'x'; 300];
    let start = Instant::now();
    for i in 0..n {
        tree.insert(i.to_be_bytes(), value.as_slice())?;
        if i % 1000 == 999 {
            db.flush()?;
        }
    }
    db.flush()?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    eprintln!("sled: {rate:.0}/s");
    Ok(rate)
}

/// The raw pipe: Python writes frames as fast as it can (1000 per write),
/// we read and parse them through the same reader the container uses.
async fn raw_pipe(python: &Path, n: u64) -> Result<f64> {
    let script = format!(
        r#"
import json, os
fd = int(os.environ["SENSOR_RPC_FD"])
n = {n}
batch = []
for i in range(n):
    batch.append(json.dumps({{"jsonrpc": "2.0", "id": i, "method": "dispatch", "params": {{"trigger": "bench.event", "payload": {{"n": i, "source": "bench"}}}}}}, separators=(",", ":")))
    if len(batch) == 1000:
        data = ("\n".join(batch) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        batch = []
if batch:
    os.write(fd, ("\n".join(batch) + "\n").encode())
"#
    );
    let spec = container::spawn::SpawnSpec {
        sensor_ref: "bench.pipe".into(),
        program: python.to_path_buf(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
        cwd: None,
    };
    let status = Arc::new(container::status::SensorStatus::default());
    let mut spawned = container::spawn::spawn(&spec, status)?;
    let mut reader = FrameReader::new(
        BufReader::with_capacity(64 * 1024, spawned.conn),
        protocol::DEFAULT_MAX_FRAME_BYTES,
    );
    let mut count = 0u64;
    let mut start = None;
    while let Some(frame) = reader.next_frame().await? {
        start.get_or_insert_with(Instant::now);
        if let Frame::Line(line) = frame {
            if Incoming::parse(&line).is_ok() {
                count += 1;
            }
        }
    }
    let elapsed = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    spawned.child.wait().await?;
    if count != n {
        bail!("raw pipe: read {count} frames, expected {n}");
    }
    let rate = n as f64 / elapsed;
    eprintln!("raw pipe: {rate:.0}/s");
    Ok(rate)
}

const BENCH_SENSOR: &str = r#"
import os
import time

from st2reactor.sensor.base import Sensor


class BenchSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        n = int(os.environ["BENCH_EVENTS"])
        dispatch = self.sensor_service.dispatch
        start = time.perf_counter()
        for i in range(n):
            dispatch("bench.event", {"n": i, "source": "bench"})
        # Every ack in = every instance durable.
        self.sensor_service._client.wait_acks(600)
        elapsed = time.perf_counter() - start
        with open(os.environ["BENCH_RESULT"], "w") as f:
            f.write("%d %.6f\n" % (n, elapsed))

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
"#;

/// One Python sensor in the real container, single-sensor mode.
async fn python_sensor(python: &str, n: u64) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let pack = dir.path().join("packs/bench");
    std::fs::create_dir_all(pack.join("sensors"))?;
    std::fs::write(
        pack.join("pack.yaml"),
        "name: bench\ndescription: bench\nversion: 1.0.0\nauthor: bench\n",
    )?;
    std::fs::write(pack.join("sensors/bench.py"), BENCH_SENSOR)?;
    std::fs::write(
        pack.join("sensors/bench.yaml"),
        "class_name: BenchSensor\nentry_point: bench.py\ntrigger_types:\n  - name: event\n    payload_schema:\n      type: object\n      properties:\n        n: {type: integer, required: true}\n        source: {type: string}\n",
    )?;
    let data = dir.path().join("data");
    let store = Arc::new(store::Store::open(&data, &store::StoreOptions::default())?);
    let report = content::load_packs(&content::LoadOptions {
        packs_paths: vec![dir.path().join("packs")],
        configs_dir: dir.path().join("configs"),
    });
    if let Some(e) = report.errors.first() {
        bail!("bench pack: {e}");
    }
    store::registrar::register(
        &store.registry,
        &report,
        store::registrar::RegisterWhat::all(),
    )?;
    let result = dir.path().join("result");
    // The sensor reads these from its environment (inherited).
    std::env::set_var("BENCH_EVENTS", n.to_string());
    std::env::set_var("BENCH_RESULT", &result);
    let mut settings = container::ContainerSettings::new(data.clone());
    settings.python_binary = python.into();
    let c = container::Container::new(
        settings,
        store.clone(),
        container::Selection::One("bench.BenchSensor".into()),
        true,
    )?;
    let code = c.run(std::future::pending()).await?;
    if code != 0 {
        bail!("bench sensor exited {code}");
    }
    let text = std::fs::read_to_string(&result).context("bench sensor wrote no result")?;
    let mut parts = text.split_whitespace();
    let count: u64 = parts.next().context("count")?.parse()?;
    let secs: f64 = parts.next().context("seconds")?.parse()?;
    let stored = store.instances.len() as u64;
    if stored < count {
        bail!("only {stored} instances stored of {count} acknowledged");
    }
    let rate = count as f64 / secs;
    eprintln!("python sensor: {rate:.0}/s ({count} in {secs:.2}s, {stored} stored)");
    Ok(rate)
}
