//! Dispatch throughput into durable trigger instances in the real
//! `sensorcontainer`: Python sensors (one, then ten at once) and a Rust SDK
//! sensor (`sc-bench-rust-sensor`, run as `runner_type: exec`).

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::live::{self, Bins, SensorSpec, Workspace};

/// Each sensor: reports `ready.<Class>`, waits for the `go` file, dispatches
/// (a count, or until a deadline), waits for every ack (= every instance
/// durable) and reports `result.<Class>`: `n t0 t1 errors cpu_seconds`.
const THROUGHPUT_PY: &str = r#"

class Throughput(BenchBase):
    def run(self):
        name = type(self).__name__
        marker("ready." + name)
        go = os.path.join(OUT, "go")
        while not os.path.exists(go):
            time.sleep(0.001)
        mode, arg = open(go).read().split()
        dispatch = self.sensor_service.dispatch
        client = self.sensor_service._client
        n = 0
        c0 = time.process_time()
        t0 = time.time()
        if mode == "count":
            n = int(arg)
            for i in range(n):
                dispatch("bench.event", {"n": i, "source": "bench"})
        else:
            deadline = float(arg)
            now = time.time
            while True:
                for _ in range(256):
                    dispatch("bench.event", {"n": n, "source": "bench"})
                    n += 1
                if now() >= deadline:
                    break
        ok = client.wait_acks(600)
        t1 = time.time()
        cpu = time.process_time() - c0
        errors = client.dispatch_errors + (0 if ok else 1)
        marker("result." + name, "%d %.6f %.6f %d %.6f" % (n, t0, t1, errors, cpu))
        BenchBase.run(self)
"#;

/// One sensor's outcome.
#[derive(Debug, Clone, Copy)]
pub struct SensorResult {
    pub n: u64,
    pub t0: f64,
    pub t1: f64,
    /// CPU seconds the sensor process used from t0 to t1.
    pub cpu: f64,
}

/// A throughput run.
pub struct Run {
    /// When the bench released the sensors (epoch seconds).
    pub go: f64,
    pub sensors: Vec<SensorResult>,
    /// CPU seconds the container used from the go signal to the last result.
    pub container_cpu: f64,
}

pub enum Mode {
    /// Each sensor dispatches this many.
    Count(u64),
    /// Each sensor dispatches until this long after the go signal.
    For(Duration),
}

/// Run `k` Python sensors.
pub fn python_sensors(bins: &Bins, k: usize, mode: Mode) -> Result<Run> {
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 10\n")?;
    let classes: Vec<String> = (0..k).map(|i| format!("Throughput{i:02}")).collect();
    let mut py = String::from(live::PY_HEADER);
    py += THROUGHPUT_PY;
    for c in &classes {
        py += &format!("\n\nclass {c}(Throughput):\n    pass\n");
    }
    let specs: Vec<SensorSpec> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| SensorSpec::python(c, "throughput.py", i == 0))
        .collect();
    ws.write_pack(&specs, &[("throughput.py".into(), py)])?;
    measure(&ws, &classes, mode)
}

/// Run one Rust SDK sensor (the `sc-bench-rust-sensor` binary) dispatching `n`.
pub fn rust_sensor(bins: &Bins, n: u64) -> Result<Run> {
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 10\n")?;
    let class = "RustThroughput".to_string();
    ws.write_rust_sensor_pack(bins, &class)?;
    measure(&ws, &[class], Mode::Count(n))
}

fn measure(ws: &Workspace, classes: &[String], mode: Mode) -> Result<Run> {
    ws.register()?;
    let mut c = ws.start(&[], &[])?;
    c.wait_api(Duration::from_secs(30))?;
    let ready = |cl: &String| ws.marker(&format!("ready.{cl}")).exists();
    live::wait_for(
        "the throughput sensors to be ready",
        Duration::from_secs(120),
        || c.check_alive(),
        || classes.iter().all(ready),
    )?;
    let cpu0 = live::cpu_secs(c.pid())?;
    let go_time = live::now_epoch();
    let (text, timeout) = match mode {
        Mode::Count(n) => (format!("count {n}"), Duration::from_secs(600)),
        Mode::For(d) => (
            format!("until {:.6}", go_time + d.as_secs_f64()),
            d + Duration::from_secs(120),
        ),
    };
    let tmp = ws.marker(".go.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, ws.marker("go"))?;
    let done = |cl: &String| ws.marker(&format!("result.{cl}")).exists();
    live::wait_for(
        "the throughput results",
        timeout,
        || c.check_alive(),
        || classes.iter().all(done),
    )?;
    let container_cpu = live::cpu_secs(c.pid())? - cpu0;
    let mut results = vec![];
    for cl in classes {
        let text = std::fs::read_to_string(ws.marker(&format!("result.{cl}")))?;
        let f: Vec<&str> = text.split_whitespace().collect();
        if f.len() != 5 {
            bail!("bad result from {cl}: {text:?}");
        }
        if f[3] != "0" {
            bail!(
                "{cl}: {} dispatch errors or missing acks; log:\n{}",
                f[3],
                live::tail(&c.log_text(), 30)
            );
        }
        results.push(SensorResult {
            n: f[0].parse()?,
            t0: f[1].parse()?,
            t1: f[2].parse()?,
            cpu: f[4].parse()?,
        });
    }
    c.stop(Duration::from_secs(60))?;
    // Every acknowledged dispatch must be in the log.
    let log = eventlog::Log::open(&ws.data.join("log"), eventlog::LogOptions::default())
        .context("open the bench trigger-instance log after the run")?;
    let stored = log.stats().records;
    let acked: u64 = results.iter().map(|r| r.n).sum();
    if stored < acked {
        bail!("only {stored} instances stored of {acked} acknowledged");
    }
    Ok(Run {
        go: go_time,
        sensors: results,
        container_cpu,
    })
}
