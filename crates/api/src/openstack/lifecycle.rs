//! The notification status lifecycle (Masakari's `NotificationStatus`
//! and what its engine does with it). Masakari's engine drives it; here
//! the consumer of the `core.notification` instances does, through
//! `PATCH /v1/notifications/{uuid}` or `sensorctl notification
//! set-status`:
//!
//! ```text
//! new ──▶ running ──▶ finished | ignored | error
//! new ──▶ ignored                 (also on arrival, when the segment is disabled)
//! error ──▶ running               (once: Masakari retries an error once)
//! running ──▶ error after that retry is stored as failed
//! new | running | error ──▶ failed (also when older than notifications.expired_interval)
//! ```
//! `finished`, `ignored` and `failed` are final.

use super::OsError;

/// Every status.
pub const STATUSES: &[&str] = &["new", "running", "error", "failed", "ignored", "finished"];
/// Statuses that never change again.
pub const FINAL: &[&str] = &["finished", "ignored", "failed"];
/// Statuses the expiry check moves to `failed`.
pub const UNFINISHED: &[&str] = &["new", "running", "error"];

/// The outcome of a legal transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The status to store (`failed` for an error after the retry).
    pub status: &'static str,
    /// Whether the notification has now used its retry.
    pub retried: bool,
    /// Why the stored status differs from the asked one, if it does.
    pub note: Option<&'static str>,
}

/// Check `from → to` for a notification that has (or has not) used its
/// one retry; illegal transitions are 409.
pub fn transition(from: &str, to: &str, retried: bool) -> Result<Transition, OsError> {
    let Some(to) = STATUSES.iter().copied().find(|s| *s == to) else {
        return Err(OsError::bad_request(format!(
            "Invalid status '{to}' (one of: {})",
            STATUSES.join(", ")
        )));
    };
    let ok = |status, retried| {
        Ok(Transition {
            status,
            retried,
            note: None,
        })
    };
    match (from, to) {
        ("new", "running" | "ignored" | "failed") => ok(to, retried),
        ("running", "error") if retried => Ok(Transition {
            status: "failed",
            retried,
            note: Some("error after its one retry: failed"),
        }),
        ("running", "finished" | "ignored" | "error" | "failed") => ok(to, retried),
        ("error", "running") if !retried => ok(to, true),
        ("error", "running") => Err(OsError::conflict(
            "Notification already had its one retry: it can only become failed.",
        )),
        ("error", "failed") => ok(to, retried),
        (f, _) if FINAL.contains(&f) => Err(OsError::conflict(format!(
            "Notification is {f}, a final status: it cannot become {to}."
        ))),
        (f, t) => Err(OsError::conflict(format!(
            "Notification status cannot change from {f} to {t}."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_paths_pass_and_everything_else_is_409() {
        assert_eq!(
            transition("new", "running", false).unwrap().status,
            "running"
        );
        assert_eq!(
            transition("running", "finished", false).unwrap().status,
            "finished"
        );
        assert_eq!(
            transition("running", "error", false).unwrap().status,
            "error"
        );
        let retry = transition("error", "running", false).unwrap();
        assert!(retry.retried);
        let again = transition("running", "error", true).unwrap();
        assert_eq!(again.status, "failed");
        assert_eq!(
            transition("error", "running", true).unwrap_err().status,
            409
        );
        for (f, t) in [
            ("new", "finished"),
            ("new", "new"),
            ("finished", "running"),
            ("ignored", "new"),
            ("failed", "running"),
            ("running", "new"),
        ] {
            assert_eq!(
                transition(f, t, false).unwrap_err().status,
                409,
                "{f} -> {t}"
            );
        }
        assert_eq!(transition("new", "done", false).unwrap_err().status, 400);
    }
}
