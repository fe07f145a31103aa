//! Logging setup: `tracing` to stderr, filter from `--log-level` or `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Levels `--log-level` takes (and `warning`, StackStorm's spelling of `warn`).
pub const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// Check a `--log-level` / `log_level` value: a level (case-insensitive,
/// `warning` taken as `warn`) or a tracing directive such as
/// `info,sc_container=debug`. An unknown word is an error rather than a
/// filter that silences everything.
pub fn check_level(level: &str) -> Result<String, String> {
    let l = level.trim().to_ascii_lowercase();
    let l = if l == "warning" {
        "warn".to_string()
    } else {
        l
    };
    if LEVELS.contains(&l.as_str()) {
        return Ok(l);
    }
    let directive = l.contains('=') || l.contains(',') || l.contains("::");
    if directive && EnvFilter::try_new(&l).is_ok() {
        return Ok(l);
    }
    Err(format!(
        "log level '{level}' is not one of {} (or a tracing directive such as info,sc_container=debug)",
        LEVELS.join(", ")
    ))
}

/// The filter for a plain level: lapin's own warnings (promise bookkeeping
/// on every lost broker connection) are left out below `debug`; the sinks
/// report the connection failures themselves. A directive is taken as is.
fn directive_for(level: &str) -> String {
    match level {
        "error" | "warn" | "info" => format!("{level},lapin=error"),
        other => other.to_string(),
    }
}

/// Install the global subscriber. `level` is a level or a tracing directive.
pub fn init(level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(directive_for(level)).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
