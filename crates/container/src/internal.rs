//! Container-internal triggers (pack `core`), with StackStorm's payloads.

use serde_json::{json, Value};

use crate::dispatcher::{DispatchParams, Dispatcher};

/// `core.st2.sensor.process_spawn`.
pub const PROCESS_SPAWN: &str = "core.st2.sensor.process_spawn";
/// `core.st2.sensor.process_exit`.
pub const PROCESS_EXIT: &str = "core.st2.sensor.process_exit";

fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Record that a sensor process started.
pub fn process_spawn(dispatcher: &Dispatcher, class_name: &str, pid: u32, cmd: &str) {
    emit(
        dispatcher,
        PROCESS_SPAWN,
        json!({"id": class_name, "timestamp": epoch_seconds(), "pid": pid, "cmd": cmd}),
    );
}

/// Record that a sensor process exited (`exit_code` is minus the signal
/// number when it was killed, as in Python's `returncode`).
pub fn process_exit(dispatcher: &Dispatcher, class_name: &str, exit_code: i32) {
    emit(
        dispatcher,
        PROCESS_EXIT,
        json!({"id": class_name, "timestamp": epoch_seconds(), "exit_code": exit_code}),
    );
}

/// Store an internal trigger instance (no sensor, nobody waits for the ack).
pub fn emit(dispatcher: &Dispatcher, trigger: &str, payload: Value) {
    let params = DispatchParams {
        trigger: json!(trigger),
        payload,
        trace_tag: None,
        trace_context: None,
    };
    // Durability is the group committer's business: nobody waits for an
    // internal trigger's ack, the next flush covers it.
    if let Err(e) = dispatcher.dispatch(None, params) {
        tracing::warn!(trigger, "internal trigger not stored: {}", e.message);
    }
}
