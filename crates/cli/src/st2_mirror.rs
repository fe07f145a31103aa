//! st2's triggers as the source of truth (`st2.api_url` set): read
//! `GET /api/v1/triggers` at start, on every hint from `<prefix>.trigger`
//! and every `st2.trigger_poll_interval`, and make the registry's
//! parameterized triggers exactly st2's ([`Ops::mirror_triggers`]), so
//! running sensors get `add_trigger`/`update_trigger`/`remove_trigger`.

use std::sync::Arc;

use sinks::st2::api::St2Api;
use tokio::sync::Notify;

use crate::ops::Ops;
use crate::st2_config::St2Settings;

/// Mirror for ever (run it as a task; abort it to stop). `None` when
/// `st2.api_url` is not set.
pub fn start(ops: Arc<Ops>, st2: &St2Settings) -> Option<tokio::task::JoinHandle<()>> {
    let url = st2.api_url.clone()?;
    let st2 = st2.clone();
    Some(tokio::spawn(async move {
        let api = match St2Api::new(
            &url,
            st2.api_key.as_deref(),
            st2.ca_cert.as_deref(),
            st2.connect_timeout * 2,
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("st2 triggers: {e}; not mirrored");
                return;
            }
        };
        let hint = Arc::new(Notify::new());
        let watcher = (!st2.urls.is_empty()).then(|| {
            tokio::spawn(sinks::st2::watch::trigger_hints(
                st2.urls.clone(),
                st2.prefix.clone(),
                st2.connect_timeout,
                hint.clone(),
            ))
        });
        let _stop_watcher = AbortOnDrop(watcher);
        let mut failing = false;
        loop {
            match api.list("triggers").await {
                Ok(list) => {
                    if failing {
                        tracing::info!("st2 triggers: {} reachable again", api.url("triggers"));
                        failing = false;
                    }
                    match ops.mirror_triggers(&list).await {
                        Ok((0, 0, 0)) => {}
                        Ok((a, u, r)) => tracing::info!(
                            "st2 triggers: {a} added, {u} updated, {r} removed (from {})",
                            api.url("triggers")
                        ),
                        Err(e) => tracing::error!("st2 triggers: cannot apply: {}", e.message),
                    }
                }
                Err(e) if !failing => {
                    tracing::warn!("st2 triggers: {e}; the triggers stay as they are until it answers");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(st2.trigger_poll_interval) => {}
                _ = hint.notified() => {}
            }
        }
    }))
}

/// Aborts the hint watcher when the mirror task ends or is aborted.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}
