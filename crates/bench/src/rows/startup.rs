//! Start-up of 100 Python sensors and the memory they (and the container)
//! take once running; restart latency after a crash.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::live::{self, Bins, SensorSpec, Workspace};
use crate::stats::median;

/// One file per sensor, as packs have: `setup()` writes `up.<Class>` with
/// the time, its pid and the CPU time it used so far, then the sensor idles.
fn up_sensor(class: &str) -> String {
    format!(
        r#"{header}

class {class}(BenchBase):
    def setup(self):
        marker("up.{class}", "%.6f %d %.6f" % (time.time(), os.getpid(), time.process_time()))
"#,
        header = live::PY_HEADER
    )
}

pub struct Startup {
    /// Seconds from spawning `sensorcontainer` to the last `setup()` done,
    /// one per measured run.
    pub runs: Vec<f64>,
    /// Container RSS with every sensor running (last run).
    pub container_rss: u64,
    /// Median RSS of the idle sensor processes (last run).
    pub sensor_rss_median: u64,
    pub sensor_rss_max: u64,
    /// CPU seconds until every sensor was up (last run): all sensors'
    /// own (to the end of `setup()`), and the container's.
    pub sensors_cpu: f64,
    pub container_cpu: f64,
    /// Seconds from spawning the container to its first and its last
    /// sensor process start (last run; `/proc` start times, 10 ms ticks).
    pub first_spawn: f64,
    pub last_spawn: f64,
}

pub fn hundred_sensors(bins: &Bins, n: usize, runs: usize) -> Result<Startup> {
    let ws = Workspace::new(bins, "sensorcontainer:\n  stop_grace_seconds: 10\n")?;
    let classes: Vec<String> = (0..n).map(|i| format!("Up{i:03}")).collect();
    let specs: Vec<SensorSpec> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| SensorSpec::python(c, &format!("{}.py", c.to_lowercase()), i == 0))
        .collect();
    let files: Vec<(String, String)> = classes
        .iter()
        .map(|c| (format!("{}.py", c.to_lowercase()), up_sensor(c)))
        .collect();
    ws.write_pack(&specs, &files)?;
    ws.register()?;
    let mut out = Startup {
        runs: vec![],
        container_rss: 0,
        sensor_rss_median: 0,
        sensor_rss_max: 0,
        sensors_cpu: 0.0,
        container_cpu: 0.0,
        first_spawn: 0.0,
        last_spawn: 0.0,
    };
    // Run 0 warms up: the runtime files and Python's bytecode caches get
    // written, the page cache holds the interpreter.
    for run in 0..=runs {
        for c in &classes {
            let _ = std::fs::remove_file(ws.marker(&format!("up.{c}")));
        }
        let t0 = live::now_epoch();
        let mut c = ws.start(&[], &[])?;
        let up = |cl: &String| ws.marker(&format!("up.{cl}")).exists();
        live::wait_for(
            "100 sensors to finish setup()",
            Duration::from_secs(300),
            || c.check_alive(),
            || classes.iter().all(up),
        )?;
        let container_cpu = live::cpu_secs(c.pid())?;
        let mut last = 0f64;
        let mut pids = vec![];
        let mut sensors_cpu = 0.0;
        for cl in &classes {
            let text = std::fs::read_to_string(ws.marker(&format!("up.{cl}")))?;
            let mut f = text.split_whitespace();
            let t: f64 = f.next().context("time")?.parse()?;
            let pid: u32 = f.next().context("pid")?.parse()?;
            let cpu: f64 = f.next().context("cpu")?.parse()?;
            sensors_cpu += cpu;
            last = last.max(t);
            pids.push(pid);
        }
        if run > 0 {
            out.runs.push(last - t0);
        }
        if run == runs {
            out.sensors_cpu = sensors_cpu;
            let starts = pids
                .iter()
                .map(|p| live::start_epoch(*p))
                .collect::<Result<Vec<_>>>()?;
            let c0 = live::start_epoch(c.pid())?;
            out.first_spawn = starts.iter().copied().fold(f64::INFINITY, f64::min) - c0;
            out.last_spawn = starts.iter().copied().fold(0.0, f64::max) - c0;
            out.container_cpu = container_cpu;
            // Let the container log every `ready` and settle.
            std::thread::sleep(Duration::from_millis(500));
            out.container_rss = live::rss_bytes(c.pid())?;
            let mut rss = vec![];
            for p in &pids {
                rss.push(live::rss_bytes(*p)? as f64);
            }
            let list = c.api("sensor.list", &serde_json::json!({}))?;
            let running = list
                .as_array()
                .map(|a| a.iter().filter(|s| s["state"] == "running").count())
                .unwrap_or(0);
            if running != n {
                bail!("{running} of {n} sensors running");
            }
            out.sensor_rss_max = rss.iter().copied().fold(0.0, f64::max) as u64;
            out.sensor_rss_median = median(rss) as u64;
        }
        c.stop(Duration::from_secs(60))?;
    }
    Ok(out)
}

/// Crashes (`os._exit(1)` in `run()`) `crashes` times; each start's
/// `setup()` writes `up.<k>`, each crash `crash.<k>`, with the time.
const CRASHER_PY: &str = r#"

class Crasher(BenchBase):
    def setup(self):
        path = os.path.join(OUT, "starts")
        k = int(open(path).read()) + 1 if os.path.exists(path) else 1
        with open(path, "w") as f:
            f.write(str(k))
        self.k = k
        marker("up.%d" % k, "%.6f %.6f" % (time.time(), time.process_time()))

    def run(self):
        if self.k <= int(os.environ["BENCH_CRASHES"]):
            t = time.time()
            with open(os.path.join(OUT, "crash.%d" % self.k), "w") as f:
                f.write("%.6f" % t)
            os._exit(1)
        BenchBase.run(self)
"#;

/// Seconds from each crash to the replacement's `setup()` done, zero
/// backoff; and the CPU seconds each replacement used until then.
pub fn restart_latency(bins: &Bins, crashes: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let ws = Workspace::new(
        bins,
        "sensorcontainer:\n  stop_grace_seconds: 5\n  restart:\n    initial_delay_seconds: 0\n    max_restarts: 0\n",
    )?;
    ws.write_pack(
        &[SensorSpec::python("Crasher", "crasher.py", true)],
        &[(
            "crasher.py".into(),
            format!("{}{CRASHER_PY}", live::PY_HEADER),
        )],
    )?;
    ws.register()?;
    let mut c = ws.start(&[], &[("BENCH_CRASHES", crashes.to_string())])?;
    let last = ws.marker(&format!("up.{}", crashes + 1));
    live::wait_for(
        "the crashing sensor's restarts",
        Duration::from_secs(120),
        || c.check_alive(),
        || last.exists(),
    )?;
    let read = |name: String, i: usize| -> Result<f64> {
        let text = std::fs::read_to_string(ws.marker(&name))?;
        Ok(text.split_whitespace().nth(i).context("field")?.parse()?)
    };
    let (mut lat, mut cpu) = (vec![], vec![]);
    for k in 1..=crashes {
        lat.push(read(format!("up.{}", k + 1), 0)? - read(format!("crash.{k}"), 0)?);
        cpu.push(read(format!("up.{}", k + 1), 1)?);
    }
    c.stop(Duration::from_secs(30))?;
    Ok((lat, cpu))
}
