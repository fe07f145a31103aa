//! `type: nats`: publish each instance to JetStream subject
//! `<subject_prefix>.<trigger ref>` with `Nats-Msg-Id: <instance id>`, so
//! the stream's duplicate window drops what a crash makes us publish
//! twice. The whole batch is published before its acks are awaited (the
//! batch is the publish window); delivered = acknowledged, in order.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::HeaderMap;
use bytes::Bytes;

use crate::destination::{Failure, Item};
use crate::spec::NatsSpec;

/// The NATS JetStream sink.
pub struct NatsSink {
    spec: NatsSpec,
    /// Most publishes awaiting their ack (the batch size).
    window: usize,
    js: Option<jetstream::Context>,
    stream_ready: bool,
}

impl NatsSink {
    /// A sink publishing to `spec.url` (connects at the first delivery).
    pub fn new(spec: NatsSpec, window: usize) -> NatsSink {
        NatsSink {
            spec,
            window: window.max(1),
            js: None,
            stream_ready: false,
        }
    }

    /// The subject of an instance.
    pub fn subject(&self, trigger: &str) -> String {
        format!("{}.{trigger}", self.spec.subject_prefix)
    }

    async fn connect(&mut self, batch: usize) -> Result<jetstream::Context, Failure> {
        if let Some(js) = &self.js {
            return Ok(js.clone());
        }
        let opts = async_nats::ConnectOptions::new()
            .connection_timeout(self.spec.connect_timeout)
            .name("sensorcontainer sink");
        let client = tokio::time::timeout(
            self.spec.connect_timeout + Duration::from_secs(1),
            opts.connect(self.spec.url.as_str()),
        )
        .await
        .map_err(|_| {
            Failure::unavailable(
                batch,
                format!(
                    "cannot connect to {}: no answer within {:?}",
                    self.spec.url, self.spec.connect_timeout
                ),
            )
        })?
        .map_err(|e| {
            Failure::unavailable(batch, format!("cannot connect to {}: {e}", self.spec.url))
        })?;
        let js = jetstream::ContextBuilder::new()
            .ack_timeout(self.spec.ack_timeout)
            .timeout(self.spec.ack_timeout)
            // Room for a whole batch: its acks are awaited only after all
            // of it was sent.
            .max_ack_inflight(self.window * 2)
            .backpressure_on_inflight(true)
            .build(client);
        self.js = Some(js.clone());
        Ok(js)
    }

    async fn ensure_stream(
        &mut self,
        js: &jetstream::Context,
        batch: usize,
    ) -> Result<(), Failure> {
        let Some(s) = &self.spec.create_stream else {
            return Ok(());
        };
        if self.stream_ready {
            return Ok(());
        }
        let subjects = if s.subjects.is_empty() {
            vec![format!("{}.>", self.spec.subject_prefix)]
        } else {
            s.subjects.clone()
        };
        let config = jetstream::stream::Config {
            name: s.name.clone(),
            subjects,
            max_age: s.max_age,
            max_bytes: if s.max_bytes == 0 {
                -1
            } else {
                s.max_bytes as i64
            },
            duplicate_window: s.duplicate_window,
            ..Default::default()
        };
        js.get_or_create_stream(config).await.map_err(|e| {
            Failure::retry(
                batch,
                format!("cannot create JetStream stream '{}': {e}", s.name),
            )
        })?;
        self.stream_ready = true;
        Ok(())
    }

    /// Publish the batch, then wait for every ack in order.
    pub async fn deliver(&mut self, items: &[Item]) -> Result<(), Failure> {
        let js = self.connect(items.len()).await?;
        self.ensure_stream(&js, items.len()).await?;
        let mut acks = Vec::with_capacity(items.len());
        for (n, it) in items.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", it.id.as_str());
            let subject = self.subject(&it.trigger);
            match js
                .publish_with_headers(subject, headers, Bytes::copy_from_slice(&it.json))
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    // Acks of what was sent are still worth having.
                    return Err(match wait_acks(acks).await {
                        Err((k, kind, msg)) => self.failure(k, kind, msg),
                        Ok(()) => self.failure(n, e.kind(), e.to_string()),
                    });
                }
            }
        }
        match wait_acks(acks).await {
            Ok(()) => Ok(()),
            Err((n, kind, msg)) => Err(self.failure(n, kind, msg)),
        }
    }

    fn failure(&mut self, delivered: usize, kind: PublishErrorKind, msg: String) -> Failure {
        let message = format!("publish to {}: {msg}", self.spec.url);
        match kind {
            PublishErrorKind::MaxPayloadExceeded => Failure {
                delivered,
                ..Failure::permanent(1, message)
            },
            PublishErrorKind::StreamNotFound => {
                self.stream_ready = false;
                Failure {
                    delivered,
                    ..Failure::retry(1, format!("{message} (no JetStream stream captures the subject; set create_stream or create one)"))
                }
            }
            _ => {
                if matches!(kind, PublishErrorKind::BrokenPipe) {
                    self.js = None;
                }
                Failure {
                    delivered,
                    ..Failure::retry(1, message)
                }
            }
        }
    }
}

/// Await acks in order; the first failure's index, kind and message.
async fn wait_acks(
    acks: Vec<jetstream::context::PublishAckFuture>,
) -> Result<(), (usize, PublishErrorKind, String)> {
    for (n, ack) in acks.into_iter().enumerate() {
        if let Err(e) = ack.await {
            return Err((n, e.kind(), e.to_string()));
        }
    }
    Ok(())
}
