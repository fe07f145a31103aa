//! `st2:` of `conf/sensorcontainer.yaml` (every key documented there): the
//! StackStorm deployment the `type: st2` sink and `sensorctl st2 check`
//! talk to. The broker comes from `url`, else from the st2.conf at
//! `config_path` (`[messaging] cluster_urls | url`, `prefix`, `ssl`,
//! `ssl_ca_certs`), so one file configures both st2 and us.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::config::{duration, string_list};

/// `st2:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct St2Section {
    pub config_path: Option<PathBuf>,
    pub url: Option<serde_yaml::Value>,
    pub prefix: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub connect_timeout: Option<serde_yaml::Value>,
    pub api_url: Option<String>,
    pub api_key: Option<String>,
    pub management_url: Option<String>,
    pub trigger_poll_interval: Option<serde_yaml::Value>,
    pub datastore: Option<String>,
}

/// `st2:` resolved (with the st2.conf it names read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct St2Settings {
    /// The st2.conf read, if any.
    pub config_path: Option<PathBuf>,
    /// Broker URLs in failover order (empty: no broker configured).
    pub urls: Vec<String>,
    /// Exchange prefix (`st2`).
    pub prefix: String,
    /// Extra PEM CA certificates for `amqps://`.
    pub ca_cert: Option<PathBuf>,
    /// Connect deadline per broker URL.
    pub connect_timeout: Duration,
    /// st2.conf's `[messaging] compression`, if set (our bodies go out
    /// uncompressed; st2's consumers read both).
    pub compression: Option<String>,
    /// st2's API base URL (`https://st2.example.com`).
    pub api_url: Option<String>,
    /// `St2-Api-Key` for it.
    pub api_key: Option<String>,
    /// RabbitMQ's management API (`http://host:15672`), which lists the
    /// queues `sensorctl st2 check` looks at.
    pub management_url: Option<String>,
    /// With `api_url`: how often st2's triggers are read again even when
    /// no hint came on `<prefix>.trigger`.
    pub trigger_poll_interval: Duration,
    /// Where sensors' `kv.*` go.
    pub datastore: DatastoreChoice,
}

/// `st2.datastore`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatastoreChoice {
    /// This container's own datastore (`sensorctl key`).
    #[default]
    Local,
    /// st2's, through its API (`st2 key`).
    St2,
}

/// Resolve `st2:` (reads `config_path`; errors name the key or the file).
pub fn st2_settings(s: &St2Section) -> Result<St2Settings> {
    let conf = match &s.config_path {
        Some(p) => Some(
            sinks::st2::conf::read_messaging(p)
                .map_err(anyhow::Error::new)
                .context("st2.config_path")?,
        ),
        None => None,
    };
    let mut urls: Vec<String> = match &s.url {
        Some(v) => string_list("st2.url", "amqp:// URL", v)?
            .iter()
            .flat_map(|u| u.split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect(),
        None => conf.as_ref().map(|c| c.urls.clone()).unwrap_or_default(),
    };
    if conf.as_ref().is_some_and(|c| c.ssl) && s.url.is_none() {
        // st2's `ssl = True` turns TLS on whatever the URL says.
        for u in &mut urls {
            if let Some(rest) = u.strip_prefix("amqp://") {
                *u = format!("amqps://{rest}");
            }
        }
    }
    let connect_timeout =
        duration("st2.connect_timeout", &s.connect_timeout)?.unwrap_or(Duration::from_secs(5));
    for u in &urls {
        sinks::st2::publisher::parse_uri(u, connect_timeout)
            .map_err(|e| anyhow::anyhow!("st2.url: {e}"))?;
    }
    let prefix = s
        .prefix
        .clone()
        .or_else(|| conf.as_ref().and_then(|c| c.prefix.clone()))
        .unwrap_or_else(|| "st2".into());
    anyhow::ensure!(
        !prefix.is_empty() && !prefix.contains(char::is_whitespace),
        "st2.prefix: '{prefix}' cannot name an exchange (empty or with spaces)"
    );
    for (key, v) in [("api_url", &s.api_url), ("management_url", &s.management_url)] {
        if let Some(a) = v {
            anyhow::ensure!(
                a.starts_with("http://") || a.starts_with("https://"),
                "st2.{key}: expected an http:// or https:// URL, got '{a}'"
            );
        }
    }
    Ok(St2Settings {
        config_path: s.config_path.clone(),
        urls,
        prefix,
        ca_cert: s
            .ca_cert
            .clone()
            .or_else(|| conf.as_ref().and_then(|c| c.ssl_ca_certs.clone())),
        connect_timeout,
        compression: conf.and_then(|c| c.compression),
        api_url: s.api_url.clone(),
        api_key: s.api_key.clone(),
        management_url: s.management_url.clone(),
        datastore: match s.datastore.as_deref() {
            None | Some("local") => DatastoreChoice::Local,
            Some("st2") => {
                anyhow::ensure!(
                    s.api_url.is_some(),
                    "st2.datastore: 'st2' needs st2.api_url (and st2.api_key) to reach st2's /api/v1/keys"
                );
                DatastoreChoice::St2
            }
            Some(other) => anyhow::bail!("st2.datastore: expected 'local' or 'st2', got '{other}'"),
        },
        trigger_poll_interval: {
            let d = duration("st2.trigger_poll_interval", &s.trigger_poll_interval)?
                .unwrap_or(Duration::from_secs(30));
            anyhow::ensure!(
                d >= Duration::from_secs(1),
                "st2.trigger_poll_interval: must be at least 1s, got {d:?}"
            );
            d
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> St2Section {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn broker_from_st2_conf_unless_set_here() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("st2.conf");
        std::fs::write(
            &conf,
            "[messaging]\nurl = amqp://st2:pw@rmq:5672/\nprefix = prod\nssl = True\nssl_ca_certs = /etc/ca.pem\n",
        )
        .unwrap();
        let s = st2_settings(&section(&format!("config_path: {}\n", conf.display()))).unwrap();
        assert_eq!(s.urls, ["amqps://st2:pw@rmq:5672/"]);
        assert_eq!(s.prefix, "prod");
        assert_eq!(s.ca_cert, Some(PathBuf::from("/etc/ca.pem")));
        let s = st2_settings(&section(&format!(
            "config_path: {}\nurl: 'amqp://a@h1/, amqp://a@h2/'\nprefix: st2\n",
            conf.display()
        )))
        .unwrap();
        assert_eq!(s.urls, ["amqp://a@h1/", "amqp://a@h2/"]);
        assert_eq!(s.prefix, "st2");
        let s = st2_settings(&St2Section::default()).unwrap();
        assert!(s.urls.is_empty());
        assert_eq!((s.prefix.as_str(), s.connect_timeout), ("st2", Duration::from_secs(5)));
    }

    #[test]
    fn errors_name_the_key_or_the_file() {
        let e = format!(
            "{:#}",
            st2_settings(&section("config_path: /nonexistent/st2.conf\n")).unwrap_err()
        );
        assert!(
            e.starts_with("st2.config_path: /nonexistent/st2.conf: cannot read"),
            "{e}"
        );
        let e = format!("{:#}", st2_settings(&section("url: 'http://h/'\n")).unwrap_err());
        assert!(e.starts_with("st2.url: http://h/: not an AMQP URL"), "{e}");
        let e = format!("{:#}", st2_settings(&section("url: [1]\n")).unwrap_err());
        assert!(e.contains("st2.url: every entry must be"), "{e}");
        let e = format!("{:#}", st2_settings(&section("api_url: st2.local\n")).unwrap_err());
        assert!(e.starts_with("st2.api_url"), "{e}");
    }
}
