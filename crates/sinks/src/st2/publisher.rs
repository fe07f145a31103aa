//! `type: st2`: publish each instance onto st2's exchange
//! `<prefix>.trigger_instances_dispatch` (durable topic), routing key
//! `trigger_instance`, as the pickled body st2's rules engine accepts,
//! persistent, on a channel in confirm mode. The batch is the confirm
//! window: publish all of it, then await each confirm in order; an
//! instance counts as delivered only on its broker ack.
//!
//! Unlike st2's own publishers (fire-and-forget, a channel per message),
//! a broker restart never loses an instance here: its confirm fails, the
//! connection is dropped, and the next attempt connects again (to the next
//! URL, for a cluster) and publishes what was not confirmed. Messages are
//! `mandatory`: one no queue took (st2's rules engine never declared its
//! queue) comes back and is retried, not silently dropped by the broker.

use std::time::Duration;

use eventlog::TriggerInstance;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::message;
use crate::destination::{Failure, Item};
use crate::spec::St2Spec;
use crate::SinkError;

/// An open connection and its confirm-mode channel.
struct Link {
    conn: Connection,
    channel: Channel,
}

/// The st2 sink.
pub struct St2Sink {
    spec: St2Spec,
    exchange: String,
    /// `ca_cert` read once (PEM).
    ca_pem: Option<String>,
    link: Option<Link>,
    /// The URL to try first: the last one that worked.
    next_url: usize,
}

impl St2Sink {
    /// A sink for `spec` (reads `ca_cert`; connects at the first delivery).
    pub fn new(spec: St2Spec) -> Result<St2Sink, SinkError> {
        if spec.urls.is_empty() {
            return Err(SinkError::Config(
                "st2 sink: no broker URL (set st2.url, or st2.config_path to an st2.conf with [messaging] url)".into(),
            ));
        }
        for u in &spec.urls {
            parse_uri(u, spec.connect_timeout).map_err(SinkError::Config)?;
        }
        let ca_pem = spec
            .ca_cert
            .as_ref()
            .map(|p| {
                std::fs::read_to_string(p).map_err(|e| {
                    SinkError::Config(format!("st2.ca_cert: cannot read {}: {e}", p.display()))
                })
            })
            .transpose()?;
        Ok(St2Sink {
            exchange: spec.exchange(),
            spec,
            ca_pem,
            link: None,
            next_url: 0,
        })
    }

    /// The exchange published to.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The open channel, connecting (URL by URL from the last good one)
    /// when there is none or it broke.
    async fn channel(&mut self, batch: usize) -> Result<Channel, Failure> {
        if let Some(l) = &self.link {
            if l.conn.status().connected() && l.channel.status().connected() {
                return Ok(l.channel.clone());
            }
            self.drop_link();
        }
        let n = self.spec.urls.len();
        let mut errors = Vec::with_capacity(n);
        for i in 0..n {
            let at = (self.next_url + i) % n;
            let url = &self.spec.urls[at];
            match tokio::time::timeout(self.spec.connect_timeout, self.open(url, false)).await {
                Ok(Ok(link)) => {
                    tracing::info!(
                        "st2 sink: connected to {} (exchange {}){}",
                        redact(url),
                        self.exchange,
                        if errors.is_empty() {
                            String::new()
                        } else {
                            format!(" after: {}", errors.join("; "))
                        }
                    );
                    let channel = link.channel.clone();
                    self.link = Some(link);
                    self.next_url = at;
                    return Ok(channel);
                }
                Ok(Err(e)) => errors.push(format!("{}: {e}", redact(url))),
                Err(_) => errors.push(format!(
                    "{}: no answer within {:?}",
                    redact(url),
                    self.spec.connect_timeout
                )),
            }
        }
        Err(Failure::unavailable(
            batch,
            format!("cannot connect to RabbitMQ: {}", errors.join("; ")),
        ))
    }

    /// Connect to `url`, open a confirm-mode channel and declare the
    /// exchange (`passive`: only check that it exists).
    async fn open(&self, url: &str, passive: bool) -> Result<Link, String> {
        let uri = parse_uri(url, self.spec.connect_timeout)?;
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current())
            .with_connection_name("sensorcontainer st2 sink".into());
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: self.ca_pem.clone(),
        };
        let conn = Connection::connect_uri_with_config(uri, props, tls)
            .await
            .map_err(|e| e.to_string())?;
        let setup = async {
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            // st2 declares it the same way (kombu: topic, durable).
            channel
                .exchange_declare(
                    &self.exchange,
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        passive,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>(channel)
        };
        match setup.await {
            Ok(channel) => Ok(Link { conn, channel }),
            Err(e) => {
                let _ = conn.close(320, "sensorcontainer: set-up failed").await;
                let hint = if passive && e.to_string().contains("NOT_FOUND") {
                    " (it does not exist: has st2 never run against this broker?)"
                } else {
                    ""
                };
                Err(format!("exchange {}: {e}{hint}", self.exchange))
            }
        }
    }

    /// `sensorctl st2 check`: for every URL, whether it accepts us and
    /// already has the exchange (declared passively: nothing is created).
    /// Each entry is the URL without its password and the outcome.
    pub async fn probe(&self) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::with_capacity(self.spec.urls.len());
        for url in &self.spec.urls {
            let r = match tokio::time::timeout(self.spec.connect_timeout, self.open(url, true)).await
            {
                Ok(Ok(link)) => {
                    let _ = tokio::time::timeout(
                        self.spec.connect_timeout,
                        link.conn.close(200, "sensorctl st2 check"),
                    )
                    .await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {:?}", self.spec.connect_timeout)),
            };
            out.push((redact(url), r));
        }
        out
    }

    fn drop_link(&mut self) {
        if let Some(l) = self.link.take() {
            // Closing politely would wait on a broker that may be gone;
            // lapin tears the socket down when the last handle drops.
            drop(l);
        }
    }

    /// Publish the batch, then await every confirm in order.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), Failure> {
        let channel = self.channel(items.len()).await?;
        let props = BasicProperties::default()
            .with_content_type(message::CONTENT_TYPE.into())
            .with_content_encoding(message::CONTENT_ENCODING.into())
            .with_delivery_mode(2);
        let opts = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let mut confirms = Vec::with_capacity(items.len());
        let mut stop: Option<Failure> = None;
        for (n, it) in items.iter().enumerate() {
            let body = match body(it) {
                Ok(b) => b,
                Err(message) => {
                    stop = Some(Failure {
                        delivered: n,
                        ..Failure::permanent(1, message)
                    });
                    break;
                }
            };
            match channel
                .basic_publish(
                    &self.exchange,
                    message::ROUTING_KEY,
                    opts,
                    &body,
                    props.clone(),
                )
                .await
            {
                Ok(c) => confirms.push(c),
                Err(e) => {
                    self.drop_link();
                    stop = Some(Failure {
                        delivered: n,
                        ..Failure::unavailable(1, format!("publish to {}: {e}", self.exchange))
                    });
                    break;
                }
            }
        }
        // Confirms of what was sent are worth having even when the batch
        // stopped early: they move the cursor past it.
        for (n, c) in confirms.into_iter().enumerate() {
            let failed = |f: Failure| Failure { delivered: n, ..f };
            match tokio::time::timeout(self.spec.ack_timeout, c).await {
                Ok(Ok(Confirmation::Ack(None))) => {}
                Ok(Ok(Confirmation::Ack(Some(ret)))) => {
                    return Err(failed(Failure::unavailable(
                        1,
                        format!(
                            "no queue took it: exchange {} routed it nowhere ({}); is st2's rules engine's queue declared?",
                            self.exchange, ret.reply_text
                        ),
                    )))
                }
                Ok(Ok(Confirmation::Nack(_))) => {
                    return Err(failed(Failure::retry(
                        1,
                        format!("the broker refused it (nack) on {}", self.exchange),
                    )))
                }
                Ok(Ok(Confirmation::NotRequested)) => {
                    self.drop_link();
                    return Err(failed(Failure::retry(
                        1,
                        "the channel is not in confirm mode".to_string(),
                    )));
                }
                Ok(Err(e)) => {
                    self.drop_link();
                    return Err(failed(Failure::unavailable(
                        1,
                        format!("confirm from {}: {e}", self.exchange),
                    )));
                }
                Err(_) => {
                    // Whether the broker has it is unknown: publish again
                    // on a fresh channel (at-least-once).
                    self.drop_link();
                    return Err(failed(Failure::retry(
                        1,
                        format!("no confirm within {:?}", self.spec.ack_timeout),
                    )));
                }
            }
        }
        match stop {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}

/// The pickled st2 body of a stored item.
fn body(it: &Item) -> Result<Vec<u8>, String> {
    let inst: TriggerInstance = serde_json::from_slice(&it.json)
        .map_err(|e| format!("instance {} is not a trigger instance: {e}", it.id))?;
    message::encode(&inst).map_err(|e| e.to_string())
}

/// `url` as lapin's URI, read the way kombu reads it: an empty vhost
/// (`amqp://host:5672/`, st2.conf's usual form) is `/`.
pub fn parse_uri(url: &str, connect_timeout: Duration) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e| format!("{}: not an AMQP URL: {e}", redact(url)))?;
    if uri.vhost.is_empty() {
        uri.vhost = "/".into();
    }
    uri.query.connection_timeout = Some(connect_timeout.as_millis().try_into().unwrap_or(u64::MAX));
    Ok(uri)
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    format!("{scheme}://{user}:***@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("amqp://guest:s3cr%40t@10.0.0.1:5672/"),
            "amqp://guest:***@10.0.0.1:5672/"
        );
        assert_eq!(redact("amqp://h:5672//"), "amqp://h:5672//");
        let e = parse_uri("http://u:pw@h/", Duration::from_secs(1)).unwrap_err();
        assert!(!e.contains("pw") && e.contains("u:***@h"), "{e}");
    }

    #[test]
    fn kombu_style_urls_mean_the_default_vhost() {
        let t = Duration::from_secs(3);
        assert_eq!(parse_uri("amqp://g:g@127.0.0.1:5672/", t).unwrap().vhost, "/");
        assert_eq!(parse_uri("amqp://g:g@127.0.0.1:5672", t).unwrap().vhost, "/");
        assert_eq!(parse_uri("amqp://g:g@127.0.0.1:5672/%2f", t).unwrap().vhost, "/");
        let u = parse_uri("amqps://g:g@h:5671/prod", t).unwrap();
        assert_eq!((u.vhost.as_str(), u.query.connection_timeout), ("prod", Some(3000)));
    }
}
