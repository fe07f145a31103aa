//! Fairness between sensors: the ack latency of a quiet Python sensor (one
//! `dispatch` every 10 ms, each waited for) alone, then while a flooding
//! Python sensor dispatches as fast as it can, in the same container run
//! (interleaved rounds).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::live::{self, Bins, SensorSpec, Workspace};
use crate::stats::Summary;

/// `ROUNDS` rounds, so a drift of the shared machine falls on both sides:
/// `Quiet` measures `BENCH_SAMPLES / ROUNDS` acked dispatches alone,
/// releases the flooder (`go.R`), measures as many again while it floods,
/// stops it (`stop.R`) and waits until its acks are in (`paused.R`).
/// `Flooder` dispatches pipelined while released and reports its count and
/// flooding seconds.
const FAIRNESS_PY: &str = r#"

ROUNDS = 4


def wait_file(name):
    path = os.path.join(OUT, name)
    while not os.path.exists(path):
        time.sleep(0.001)


class Quiet(BenchBase):
    def run(self):
        n = int(os.environ["BENCH_SAMPLES"]) // ROUNDS
        client = self.sensor_service._client
        pc = time.perf_counter_ns

        def measure(out):
            for i in range(n + 20):
                t = pc()
                client.call("dispatch", {"trigger": "bench.event",
                                         "payload": {"n": i, "source": "quiet"}})
                if i >= 20:
                    out.append((pc() - t) / 1000.0)
                # One dispatch every 10 ms, whatever the last one took.
                time.sleep(max(0.0, 0.01 - (pc() - t) / 1e9))

        marker("ready.Quiet")
        wait_file("ready.Flooder")
        alone, loaded = [], []
        for r in range(ROUNDS):
            measure(alone)
            marker("go.%d" % r)
            wait_file("flooding.%d" % r)
            time.sleep(0.3)
            measure(loaded)
            marker("stop.%d" % r)
            wait_file("paused.%d" % r)
        marker("fair.alone", "\n".join("%.3f" % x for x in alone))
        marker("fair.loaded", "\n".join("%.3f" % x for x in loaded))
        BenchBase.run(self)


class Flooder(BenchBase):
    def run(self):
        marker("ready.Flooder")
        dispatch = self.sensor_service.dispatch
        client = self.sensor_service._client
        n, secs, errors = 0, 0.0, 0
        for r in range(ROUNDS):
            wait_file("go.%d" % r)
            stop = os.path.join(OUT, "stop.%d" % r)
            t0 = time.time()
            marker("flooding.%d" % r)
            while True:
                for _ in range(256):
                    dispatch("bench.event", {"n": n, "source": "flooder"})
                    n += 1
                if os.path.exists(stop):
                    break
            if not client.wait_acks(600):
                errors += 1
            secs += time.time() - t0
            marker("paused.%d" % r)
        errors += client.dispatch_errors
        marker("result.Flooder", "%d %.6f %d" % (n, secs, errors))
        BenchBase.run(self)
"#;

/// Rounds of the fairness run (as in `FAIRNESS_PY`).
const ROUNDS: usize = 4;

/// The fairness run's figures (latencies in µs).
pub struct Fairness {
    pub alone: Summary,
    pub loaded: Summary,
    /// The flooder's acked dispatches per second while it ran.
    pub flood_rate: f64,
}

fn samples(ws: &Workspace, name: &str, want: usize) -> Result<Vec<f64>> {
    let v = super::latency::read_samples(&ws.marker(name))?;
    if v.len() != want {
        bail!("{name}: {} samples, expected {want}", v.len());
    }
    Ok(v)
}

/// Run the quiet sensor alone and beside the flooder, `n` samples each,
/// with the data dir under `parent`.
pub fn quiet_beside_flooder(bins: &Bins, n: usize, parent: &Path) -> Result<Fairness> {
    let ws = Workspace::new_in(bins, "sensorcontainer:\n  stop_grace_seconds: 10\n", parent)?;
    let py = format!("{}{FAIRNESS_PY}", live::PY_HEADER);
    ws.write_pack(
        &[
            SensorSpec::python("Quiet", "fairness.py", true),
            SensorSpec::python("Flooder", "fairness.py", false),
        ],
        &[("fairness.py".into(), py)],
    )?;
    ws.register()?;
    let mut c = ws.start(&[], &[("BENCH_SAMPLES", n.to_string())])?;
    c.wait_api(Duration::from_secs(30))?;
    let n = n / ROUNDS * ROUNDS;
    let result = ws.marker("fair.loaded");
    // 2 × n dispatches 10 ms apart, plus start-up and the flooder's drain.
    let budget = Duration::from_millis(30 * n as u64) + Duration::from_secs(120);
    live::wait_for(
        "the fairness run",
        budget,
        || c.check_alive(),
        || result.exists() && ws.marker("result.Flooder").exists(),
    )?;
    let alone = Summary::of(samples(&ws, "fair.alone", n)?);
    let loaded = Summary::of(samples(&ws, "fair.loaded", n)?);
    let text = std::fs::read_to_string(ws.marker("result.Flooder"))?;
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() != 3 || f[2] != "0" {
        bail!(
            "flooder: bad result {text:?}; log:\n{}",
            live::tail(&c.log_text(), 30)
        );
    }
    let count: f64 = f[0].parse()?;
    let secs: f64 = f[1].parse()?;
    c.stop(Duration::from_secs(60))?;
    Ok(Fairness {
        alone,
        loaded,
        flood_rate: count / secs.max(1e-9),
    })
}
