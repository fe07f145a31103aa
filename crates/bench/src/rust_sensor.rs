//! `sc-bench-rust-sensor`: the sensor of sc-bench's "Rust SDK sensor" row,
//! written with the SDK (`crates/sdk`) and run by the container as a
//! `runner_type: exec` sensor.
//!
//! Like the Python throughput sensor: writes `ready.<Class>` into
//! `$BENCH_OUT`, waits for the `go` file (`count N`), dispatches N events
//! to `bench.event` (pipelined), waits for every ack (= every instance
//! durable), writes `result.<Class>` (`n t0 t1 errors cpu_seconds`), then
//! idles until stopped.
//!
//! With `rate R SECS` in the `go` file (the sink latency row) it paces
//! instead: R × SECS events, each sent once its time has come (R per
//! second from t0, checked every half millisecond, so at most a timer
//! tick's worth go out together), then waits for the acks the same way.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sdk::{BoxError, Sensor, SensorService};
use serde::Serialize;

#[derive(Serialize)]
struct Payload {
    n: u64,
    source: &'static str,
}

struct Bench {
    out: PathBuf,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

impl Bench {
    fn marker(&self, name: &str, text: &str) -> std::io::Result<()> {
        let tmp = self.out.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, self.out.join(name))
    }
}

impl Sensor for Bench {
    async fn run(&self, svc: &SensorService) -> Result<(), BoxError> {
        let class = svc.class_name().to_string();
        self.marker(&format!("ready.{class}"), "")?;
        let go = self.out.join("go");
        while !go.exists() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let spec = std::fs::read_to_string(&go)?;
        let (n, rate): (u64, Option<f64>) = match spec.split_whitespace().collect::<Vec<_>>()[..] {
            ["count", n] => (n.parse()?, None),
            ["rate", r, secs] => {
                let (r, secs): (f64, f64) = (r.parse()?, secs.parse()?);
                if !(r > 0.0 && secs > 0.0) {
                    return Err(format!("bad go spec {spec:?}").into());
                }
                ((r * secs).round() as u64, Some(r))
            }
            _ => return Err(format!("unsupported go spec {spec:?}").into()),
        };
        let (c0, t0) = (cpu(), now());
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let due = match rate {
                None => n,
                Some(r) => ((start.elapsed().as_secs_f64() * r) as u64).min(n),
            };
            while i < due {
                // The handle is dropped: flush() below waits for every ack.
                drop(
                    svc.dispatch(
                        "bench.event",
                        Payload {
                            n: i,
                            source: "bench",
                        },
                    )
                    .await?,
                );
                i += 1;
            }
            if i < n {
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
        let flushed = svc.flush().await;
        let (t1, c1) = (now(), cpu());
        let stats = svc.stats();
        let errors = stats.failed + stats.lost + u64::from(flushed.is_err());
        self.marker(
            &format!("result.{class}"),
            &format!("{n} {t0:.6} {t1:.6} {errors} {:.6}", c1 - c0),
        )?;
        svc.stopping().await;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let out = std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_default();
    sdk::run(Bench { out })
}
