//! The sinks' part of `/metrics`: per sink delivered, retries, dead
//! letters (counted and held), lag, and the append → delivered latency
//! histogram. A `prometheus-client` collector, read at each scrape.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::shared::Shared;
use crate::Sinks;

/// The collector to register with the API's registry.
#[derive(Debug)]
pub struct SinkCollector(Arc<Sinks>);

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").finish_non_exhaustive()
    }
}

/// A collector over `sinks`.
pub fn collector(sinks: Arc<Sinks>) -> Box<dyn Collector> {
    Box::new(SinkCollector(sinks))
}

impl Collector for SinkCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all = self.0.all_shared();
        let last = self.0.log().last_seq();
        type Pick = fn(&Shared) -> u64;
        let counters: [(&str, &str, Pick); 3] = [
            ("sink_delivered", "Instances each sink delivered", |s| {
                s.delivered.load(Ordering::Relaxed)
            }),
            (
                "sink_retries",
                "Retried delivery attempts of each sink",
                |s| s.retries.load(Ordering::Relaxed),
            ),
            (
                "sink_dead_lettered",
                "Instances each sink dead-lettered",
                |s| s.dead_lettered.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, pick) in counters {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &all {
                ConstCounter::new(pick(s))
                    .encode(m.encode_family(&[("sink", s.name.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "sink_lag",
                "Log records after each sink's cursor",
                None,
                MetricType::Gauge,
            )?;
            for s in &all {
                ConstGauge::new(last.saturating_sub(s.cursor()) as i64)
                    .encode(m.encode_family(&[("sink", s.name.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "sink_dead_letters",
                "Dead letters each sink holds",
                None,
                MetricType::Gauge,
            )?;
            for s in &all {
                let run = s.run();
                ConstGauge::new((run.dead.len() + run.requeued.len()) as i64)
                    .encode(m.encode_family(&[("sink", s.name.as_str())])?)?;
            }
        }
        let mut m = enc.encode_descriptor(
            "sink_delivery_latency_seconds",
            "Time from append to the destination's confirmation",
            None,
            MetricType::Histogram,
        )?;
        for s in &all {
            s.latency
                .encode(m.encode_family(&[("sink", s.name.as_str())])?)?;
        }
        Ok(())
    }
}
