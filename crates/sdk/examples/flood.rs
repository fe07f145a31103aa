//! A throughput probe: dispatches `FLOOD_COUNT` (default 200 000) trigger
//! instances to `FLOOD_TRIGGER` (default `bench.flood`) as fast as the
//! window allows, waits for every ack, logs the rate and exits 0.
//!
//! Declare it as a `runner_type: exec` sensor whose `entry_point` is a
//! script exec'ing `target/release/examples/flood`, then run the container
//! with `--sensor-ref <pack>.<Class> --single-sensor-mode`.

use std::time::Instant;

use sdk::{BoxError, Sensor, SensorService};
use serde::Serialize;

#[derive(Serialize)]
struct Event {
    seq: u64,
    source: &'static str,
}

struct Flood {
    count: u64,
    trigger: String,
}

impl Sensor for Flood {
    async fn run(&self, svc: &SensorService) -> Result<(), BoxError> {
        let start = Instant::now();
        for seq in 0..self.count {
            svc.dispatch(
                &self.trigger,
                Event {
                    seq,
                    source: "flood",
                },
            )
            .await?;
        }
        svc.flush().await?;
        let secs = start.elapsed().as_secs_f64();
        let stats = svc.stats();
        let line = format!(
            "flood: {} dispatched, {} acked, {} failed in {secs:.3}s: {:.0} acked dispatches/s",
            stats.dispatched,
            stats.acked,
            stats.failed,
            stats.acked as f64 / secs
        );
        tracing::info!("{line}");
        println!("{line}");
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let count = std::env::var("FLOOD_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let trigger = std::env::var("FLOOD_TRIGGER").unwrap_or_else(|_| "bench.flood".into());
    sdk::run(Flood { count, trigger })
}
