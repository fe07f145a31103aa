//! `sinks:` of `conf/sensorcontainer.yaml` (every key documented there),
//! parsed into [`sinks::SinkSpec`]s. Errors name the entry and the key:
//! `sinks[1] ('alerts').retry.max_attempts: ...`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Deserialize;
use sinks::spec::{FileSpec, HttpFormat, HttpSpec, NatsSpec, St2Spec, StreamSpec};
use sinks::{RetryPolicy, Selector, SinkKind, SinkSpec, Start};

use crate::config::{duration, size};
use crate::st2_config::St2Settings;

/// One entry of `sinks:`, as written. Keys of the other types are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub triggers: Vec<String>,
    #[serde(default)]
    pub sensors: Vec<String>,
    pub batch_max: Option<usize>,
    #[serde(default)]
    pub retry: RetrySection,
    pub start: Option<String>,
    // file
    pub path: Option<PathBuf>,
    pub max_bytes: Option<serde_yaml::Value>,
    pub keep: Option<usize>,
    // http and nats
    pub url: Option<String>,
    pub connect_timeout: Option<serde_yaml::Value>,
    // http
    pub format: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub api_key: Option<String>,
    pub request_timeout: Option<serde_yaml::Value>,
    pub ca_cert: Option<PathBuf>,
    // nats (and st2: ack_timeout)
    pub subject_prefix: Option<String>,
    pub ack_timeout: Option<serde_yaml::Value>,
    pub create_stream: Option<StreamSection>,
}

/// `retry:` of a sink.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    pub initial_delay: Option<serde_yaml::Value>,
    pub multiplier: Option<f64>,
    pub max_delay: Option<serde_yaml::Value>,
    pub max_attempts: Option<u32>,
}

/// `create_stream:` of a nats sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    pub name: String,
    #[serde(default)]
    pub subjects: Vec<String>,
    pub max_age: Option<serde_yaml::Value>,
    pub max_bytes: Option<serde_yaml::Value>,
    pub duplicate_window: Option<serde_yaml::Value>,
}

/// Every sink of the file, checked; `st2` is the resolved `st2:` section
/// (the broker of a `type: st2` sink).
pub fn sink_specs(sections: &[SinkSection], st2: &St2Settings) -> Result<Vec<SinkSpec>> {
    let specs = sections
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let key = format!("sinks[{n}] ('{}')", s.name);
            spec(&key, s, st2)
        })
        .collect::<Result<Vec<_>>>()?;
    sinks::check_specs(&specs)?;
    Ok(specs)
}

fn forbid(key: &str, kind: &str, set: &[(&str, bool)]) -> Result<()> {
    for (field, is_set) in set {
        if *is_set {
            bail!("{key}.{field}: not a key of a '{kind}' sink");
        }
    }
    Ok(())
}

fn spec(key: &str, s: &SinkSection, st2: &St2Settings) -> Result<SinkSpec> {
    let selector =
        Selector::new(&s.triggers, &s.sensors).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    let d = |k: &str, v: &Option<serde_yaml::Value>, default: Duration| -> Result<Duration> {
        Ok(duration(&format!("{key}.{k}"), v)?.unwrap_or(default))
    };
    let base = RetryPolicy::default();
    let retry = RetryPolicy {
        initial_delay: d(
            "retry.initial_delay",
            &s.retry.initial_delay,
            base.initial_delay,
        )?,
        multiplier: s.retry.multiplier.unwrap_or(base.multiplier),
        max_delay: d("retry.max_delay", &s.retry.max_delay, base.max_delay)?,
        max_attempts: s.retry.max_attempts.unwrap_or(base.max_attempts),
    };
    anyhow::ensure!(
        retry.multiplier >= 1.0,
        "{key}.retry.multiplier: must be at least 1, got {}",
        retry.multiplier
    );
    anyhow::ensure!(
        retry.max_attempts >= 1,
        "{key}.retry.max_attempts: must be at least 1"
    );
    let start = match s.start.as_deref() {
        None | Some("latest") => Start::Latest,
        Some("earliest") => Start::Earliest,
        Some(other) => bail!("{key}.start: expected 'latest' or 'earliest', got '{other}'"),
    };
    let file_keys = [
        ("path", s.path.is_some()),
        ("max_bytes", s.max_bytes.is_some()),
        ("keep", s.keep.is_some()),
    ];
    let http_keys = [
        ("format", s.format.is_some()),
        ("headers", !s.headers.is_empty()),
        ("api_key", s.api_key.is_some()),
        ("request_timeout", s.request_timeout.is_some()),
        ("ca_cert", s.ca_cert.is_some()),
    ];
    let nats_keys = [
        ("subject_prefix", s.subject_prefix.is_some()),
        ("ack_timeout", s.ack_timeout.is_some()),
        ("create_stream", s.create_stream.is_some()),
    ];
    let url = || -> Result<String> {
        s.url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("{key}.url: required for a '{}' sink", s.kind))
    };
    let kind = match s.kind.as_str() {
        "file" => {
            forbid(key, "file", &http_keys)?;
            forbid(key, "file", &nats_keys)?;
            forbid(
                key,
                "file",
                &[
                    ("url", s.url.is_some()),
                    ("connect_timeout", s.connect_timeout.is_some()),
                ],
            )?;
            let path = s
                .path
                .clone()
                .ok_or_else(|| anyhow::anyhow!("{key}.path: required for a 'file' sink"))?;
            SinkKind::File(FileSpec {
                path,
                max_bytes: size(&format!("{key}.max_bytes"), &s.max_bytes)?.unwrap_or(100 << 20),
                keep: s.keep.unwrap_or(5),
            })
        }
        "http" => {
            forbid(key, "http", &file_keys)?;
            forbid(key, "http", &nats_keys)?;
            let format = match s.format.as_deref() {
                None | Some("json") => HttpFormat::Json,
                Some("st2") => HttpFormat::St2,
                Some(other) => bail!("{key}.format: expected 'json' or 'st2', got '{other}'"),
            };
            if format == HttpFormat::St2 && s.batch_max.is_some_and(|b| b > 1) {
                bail!("{key}.batch_max: StackStorm's webhook takes one instance per request; leave batch_max at 1 with format: st2");
            }
            SinkKind::Http(HttpSpec {
                url: url()?,
                format,
                headers: s.headers.clone().into_iter().collect(),
                api_key: s.api_key.clone(),
                connect_timeout: d(
                    "connect_timeout",
                    &s.connect_timeout,
                    Duration::from_secs(5),
                )?,
                request_timeout: d(
                    "request_timeout",
                    &s.request_timeout,
                    Duration::from_secs(30),
                )?,
                ca_cert: s.ca_cert.clone(),
            })
        }
        "nats" => {
            forbid(key, "nats", &file_keys)?;
            forbid(key, "nats", &http_keys)?;
            let subject_prefix = s
                .subject_prefix
                .clone()
                .unwrap_or_else(|| "sensorcontainer".into());
            anyhow::ensure!(
                !subject_prefix.is_empty()
                    && !subject_prefix.contains(['*', '>', ' '])
                    && !subject_prefix.ends_with('.'),
                "{key}.subject_prefix: '{subject_prefix}' is not a plain NATS subject (no spaces, '*', '>' or trailing '.')"
            );
            let create_stream = s
                .create_stream
                .as_ref()
                .map(|c| -> Result<StreamSpec> {
                    Ok(StreamSpec {
                        name: c.name.clone(),
                        subjects: c.subjects.clone(),
                        max_age: d("create_stream.max_age", &c.max_age, Duration::ZERO)?,
                        max_bytes: size(&format!("{key}.create_stream.max_bytes"), &c.max_bytes)?
                            .unwrap_or(0),
                        duplicate_window: d(
                            "create_stream.duplicate_window",
                            &c.duplicate_window,
                            Duration::from_secs(120),
                        )?,
                    })
                })
                .transpose()?;
            SinkKind::Nats(NatsSpec {
                url: url()?,
                subject_prefix,
                connect_timeout: d(
                    "connect_timeout",
                    &s.connect_timeout,
                    Duration::from_secs(5),
                )?,
                ack_timeout: d("ack_timeout", &s.ack_timeout, Duration::from_secs(10))?,
                create_stream,
            })
        }
        "st2" => {
            forbid(key, "st2", &file_keys)?;
            forbid(key, "st2", &http_keys)?;
            forbid(
                key,
                "st2",
                &[
                    ("url", s.url.is_some()),
                    ("connect_timeout", s.connect_timeout.is_some()),
                    ("subject_prefix", s.subject_prefix.is_some()),
                    ("create_stream", s.create_stream.is_some()),
                ],
            )
            .map_err(|e| anyhow::anyhow!("{e} (the broker is set under st2:)"))?;
            anyhow::ensure!(
                !st2.urls.is_empty(),
                "{key}: a 'st2' sink needs a broker: set st2.url, or st2.config_path to an st2.conf with [messaging] url"
            );
            SinkKind::St2(St2Spec {
                urls: st2.urls.clone(),
                prefix: st2.prefix.clone(),
                connect_timeout: st2.connect_timeout,
                ack_timeout: d("ack_timeout", &s.ack_timeout, Duration::from_secs(10))?,
                ca_cert: st2.ca_cert.clone(),
            })
        }
        other => bail!("{key}.type: expected file, http, nats or st2, got '{other}'"),
    };
    Ok(SinkSpec {
        name: s.name.clone(),
        selector,
        batch_max: s
            .batch_max
            .unwrap_or_else(|| SinkKind::default_batch(&s.kind)),
        retry,
        start,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<SinkSpec>> {
        let sections: Vec<SinkSection> = serde_yaml::from_str(yaml)?;
        sink_specs(&sections, &St2Settings::default())
    }

    #[test]
    fn three_kinds_with_defaults_and_units() {
        let specs = parse(
            "- {name: f, type: file, path: /tmp/x.jsonl, max_bytes: 1MiB}\n\
             - {name: h, type: http, url: 'http://127.0.0.1:1/x', triggers: ['a.*'], retry: {initial_delay: 250ms, max_attempts: 3}}\n\
             - {name: n, type: nats, url: 'nats://127.0.0.1:4222', start: earliest, create_stream: {name: S, duplicate_window: 2m}}\n",
        )
        .unwrap();
        assert_eq!(specs[0].batch_max, 512);
        let SinkKind::File(f) = &specs[0].kind else {
            panic!()
        };
        assert_eq!((f.max_bytes, f.keep), (1 << 20, 5));
        assert_eq!(specs[1].batch_max, 1);
        assert_eq!(specs[1].retry.initial_delay, Duration::from_millis(250));
        assert_eq!(specs[1].retry.max_attempts, 3);
        assert_eq!(specs[2].start, Start::Earliest);
        let SinkKind::Nats(n) = &specs[2].kind else {
            panic!()
        };
        assert_eq!(n.subject_prefix, "sensorcontainer");
        assert_eq!(
            n.create_stream.as_ref().unwrap().duplicate_window,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn errors_name_entry_and_key() {
        let e = format!("{:#}", parse("- {name: h, type: http}\n").unwrap_err());
        assert!(e.contains("sinks[0] ('h').url"), "{e}");
        let e = format!(
            "{:#}",
            parse("- {name: h, type: http, url: 'http://x', path: /tmp/a}\n").unwrap_err()
        );
        assert!(
            e.contains("sinks[0] ('h').path: not a key of a 'http' sink"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            parse("- {name: a, type: file, path: /tmp/a}\n- {name: a, type: file, path: /tmp/b}\n")
                .unwrap_err()
        );
        assert!(e.contains("used by two sinks"), "{e}");
        let e = format!("{:#}", parse("- {name: a, type: kafka}\n").unwrap_err());
        assert!(e.contains("sinks[0] ('a').type"), "{e}");
        let e = format!(
            "{:#}",
            parse("- {name: a, type: file, path: /tmp/a, retry: {max_delay: soon}}\n").unwrap_err()
        );
        assert!(e.contains("retry.max_delay") && e.contains("soon"), "{e}");
        let e = format!(
            "{:#}",
            parse("- {name: a, type: file, path: /tmp/a, colour: red}\n").unwrap_err()
        );
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn st2_sink_takes_its_broker_from_the_st2_section() {
        let sections: Vec<SinkSection> =
            serde_yaml::from_str("- {name: st2, type: st2, ack_timeout: 3s}
").unwrap();
        let e = format!("{:#}", sink_specs(&sections, &St2Settings::default()).unwrap_err());
        assert!(e.contains("sinks[0] ('st2'): a 'st2' sink needs a broker: set st2.url"), "{e}");
        let st2 = crate::st2_config::st2_settings(
            &serde_yaml::from_str("url: amqp://g:g@127.0.0.1:5672/
prefix: dev
").unwrap(),
        )
        .unwrap();
        let specs = sink_specs(&sections, &st2).unwrap();
        assert_eq!(specs[0].batch_max, 256);
        let SinkKind::St2(spec) = &specs[0].kind else {
            panic!()
        };
        assert_eq!(spec.exchange(), "dev.trigger_instances_dispatch");
        assert_eq!(spec.ack_timeout, Duration::from_secs(3));
        assert_eq!(spec.urls, ["amqp://g:g@127.0.0.1:5672/"]);
        let sections: Vec<SinkSection> =
            serde_yaml::from_str("- {name: st2, type: st2, url: 'amqp://h/'}
").unwrap();
        let e = format!("{:#}", sink_specs(&sections, &st2).unwrap_err());
        assert!(
            e.contains("sinks[0] ('st2').url: not a key of a 'st2' sink (the broker is set under st2:)"),
            "{e}"
        );
    }
}
