//! Per-sensor limits on the container's own warnings about what a sensor
//! sends (bad frames, oversized frames, rejected dispatches, failed
//! datastore calls): the first few of each kind every second are logged,
//! the rest are counted and summed up in one line, so a sensor writing a
//! million garbage lines cannot write a million log lines. And sensor log
//! messages are escaped, so a newline cannot forge a log line.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Warnings of one kind logged per window.
pub const PER_WINDOW: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Kind {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// The warning budget of one connection.
#[derive(Debug, Default)]
pub struct WarnLimiter {
    kinds: HashMap<&'static str, Kind>,
}

impl WarnLimiter {
    /// Whether a warning of `kind` may be logged now; logs the summary of
    /// what the previous window suppressed when a new window starts.
    pub fn allow(&mut self, kind: &'static str, sensor: &str) -> bool {
        let now = Instant::now();
        let k = self.kinds.entry(kind).or_insert(Kind {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        if now.duration_since(k.started) >= WINDOW {
            if k.suppressed > 0 {
                tracing::warn!(
                    sensor,
                    suppressed = k.suppressed,
                    "{} more '{kind}' warning(s) from this sensor were not logged in the last {:.1}s",
                    k.suppressed,
                    now.duration_since(k.started).as_secs_f64()
                );
            }
            *k = Kind {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if k.logged < PER_WINDOW {
            k.logged += 1;
            true
        } else {
            k.suppressed += 1;
            false
        }
    }

    /// Log what is still suppressed (the connection ended).
    pub fn flush(&mut self, sensor: &str) {
        for (kind, k) in self.kinds.drain() {
            if k.suppressed > 0 {
                tracing::warn!(
                    sensor,
                    suppressed = k.suppressed,
                    "{} more '{kind}' warning(s) from this sensor were not logged",
                    k.suppressed
                );
            }
        }
    }
}

/// A sensor's text made safe for a one-line log record: newlines, carriage
/// returns, tabs and other control characters are escaped (`\n`, `\r`,
/// `\t`, `\u{1b}`), everything else is kept.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_logs_the_first_few_and_counts_the_rest() {
        let mut l = WarnLimiter::default();
        let allowed = (0..1000).filter(|_| l.allow("bad frame", "p.S")).count();
        assert_eq!(allowed, PER_WINDOW as usize);
        assert!(
            l.allow("dispatch rejected", "p.S"),
            "kinds have their own budget"
        );
        assert_eq!(l.kinds["bad frame"].suppressed, 1000 - PER_WINDOW as u64);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain ünïcode"), "plain ünïcode");
        assert_eq!(
            escape_controls("a\nERROR forged\r\t\u{1b}[31m"),
            "a\\nERROR forged\\r\\t\\u{1b}[31m"
        );
    }
}
