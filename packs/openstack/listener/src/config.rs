//! The pack config (`conf/configs/openstack.yaml`, schema in
//! `config.schema.yaml`, defaults filled in by the container), checked:
//! errors name the key.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::filter::Filter;

/// The oslo priorities, as the dispatcher names its endpoint methods.
pub const PRIORITIES: [&str; 7] = ["audit", "debug", "info", "warn", "error", "critical", "sample"];

/// The listener's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// AMQP URLs in failover order.
    pub urls: Vec<String>,
    /// The topic exchange.
    pub exchange: String,
    /// `<topic>` of the `<topic>.<priority>` routing keys.
    pub topics: Vec<String>,
    /// Priorities listened to.
    pub priorities: Vec<String>,
    /// A named pool queue.
    pub pool: Option<String>,
    /// Durable exchange and queues.
    pub durable: bool,
    /// `x-queue-type: quorum`.
    pub quorum: bool,
    /// basic.qos prefetch.
    pub prefetch: u16,
    /// How long a `_unique_id` is remembered.
    pub dedupe_window: Duration,
    /// Which notifications are dispatched.
    pub filter: Filter,
}

#[derive(Deserialize)]
struct Raw {
    transport_url: String,
    exchange: String,
    topics: Vec<String>,
    priorities: Vec<String>,
    #[serde(default)]
    pool: String,
    durable_queues: bool,
    quorum_queues: bool,
    prefetch: u64,
    dedupe_window: u64,
    #[serde(default)]
    filters: Value,
}

impl Config {
    /// Read the pack config the container sent.
    pub fn from_value(v: &Value) -> Result<Config, String> {
        let raw: Raw = serde_json::from_value(v.clone())
            .map_err(|e| format!("pack config (conf/configs/openstack.yaml): {e}"))?;
        let urls = transport_urls(&raw.transport_url)?;
        if raw.topics.is_empty() {
            return Err("topics: at least one topic".into());
        }
        for p in &raw.priorities {
            if !PRIORITIES.contains(&p.as_str()) {
                return Err(format!("priorities: '{p}' is not one of {PRIORITIES:?}"));
            }
        }
        if raw.priorities.is_empty() {
            return Err("priorities: at least one priority".into());
        }
        let prefetch = u16::try_from(raw.prefetch)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("prefetch: 1 to 65535, got {}", raw.prefetch))?;
        Ok(Config {
            urls,
            exchange: raw.exchange,
            topics: raw.topics,
            priorities: raw.priorities,
            pool: (!raw.pool.is_empty()).then_some(raw.pool),
            durable: raw.durable_queues || raw.quorum_queues,
            quorum: raw.quorum_queues,
            prefetch,
            dedupe_window: Duration::from_secs(raw.dedupe_window),
            filter: Filter::from_config(&raw.filters).map_err(|e| format!("filters.{e}"))?,
        })
    }

    /// Every (queue, routing key) pair to declare and bind.
    pub fn bindings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for t in &self.topics {
            for p in &self.priorities {
                let key = format!("{t}.{p}");
                let queue = self.pool.clone().unwrap_or_else(|| key.clone());
                out.push((queue, key));
            }
        }
        out
    }
}

/// oslo's `rabbit://user:pass@h1:p1,user:pass@h2:p2/vhost` as one AMQP URL
/// per host (or `amqp(s)://` URLs as given, comma-separated).
pub fn transport_urls(url: &str) -> Result<Vec<String>, String> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("transport_url: '{}' is not a URL", redact(url)))?;
    let amqp_scheme = match scheme {
        "rabbit" | "amqp" => "amqp",
        "amqps" => "amqps",
        "kombu+rabbit" => "amqp",
        other => {
            return Err(format!(
                "transport_url: scheme '{other}' is not supported (rabbit://, amqp:// or amqps://)"
            ))
        }
    };
    if amqp_scheme != "amqp" || scheme == "amqp" {
        // Several whole URLs, comma-separated.
        if rest.contains("://") {
            return Ok(url.split(',').map(|u| u.trim().to_string()).collect());
        }
    }
    let (hosts, vhost) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let vhost = vhost.split('?').next().unwrap_or("");
    let vhost = if vhost.is_empty() { "%2f" } else { vhost };
    let urls: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{amqp_scheme}://{h}/{vhost}"))
        .collect();
    if urls.is_empty() {
        return Err(format!("transport_url: '{}' names no host", redact(url)));
    }
    Ok(urls)
}

/// A URL without its password.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (hosts, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|h| match h.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split_once(':').map_or(user, |(u, _)| u);
                format!("{user}:***@{host}")
            }
            None => h.to_string(),
        })
        .collect();
    format!("{scheme}://{}{path}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_transport_urls() {
        assert_eq!(
            transport_urls("rabbit://a:b@h1:5672,a:b@h2:5673/nova").unwrap(),
            ["amqp://a:b@h1:5672/nova", "amqp://a:b@h2:5673/nova"]
        );
        assert_eq!(
            transport_urls("rabbit://guest:guest@127.0.0.1:5672/").unwrap(),
            ["amqp://guest:guest@127.0.0.1:5672/%2f"]
        );
        assert_eq!(
            transport_urls("amqps://u:p@h:5671/v").unwrap(),
            ["amqps://u:p@h:5671/v"]
        );
        let e = transport_urls("kafka://h:9092").unwrap_err();
        assert!(e.contains("scheme 'kafka'"), "{e}");
        assert_eq!(redact("rabbit://a:pw@h1,b:pw2@h2/v"), "rabbit://a:***@h1,b:***@h2/v");
    }
}
