//! Per-sensor status, shared between the supervisor and readers (the CLI,
//! later the control API).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

/// Where a sensor is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorState {
    Starting,
    Running,
    Backoff,
    Failed,
    Stopped,
    Disabled,
}

/// How a sensor process last ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// StackStorm's `exit_code`: the code, or minus the signal number.
    pub fn st2_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => -s,
        }
    }
}

/// A snapshot of one sensor's status.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSnapshot {
    pub state: SensorState,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub last_exit: Option<ExitStatus>,
    pub started_at: Option<SystemTime>,
    pub dispatched: u64,
    pub validation_failures: u64,
    /// Dispatches refused for other reasons (unknown trigger, bad params).
    pub rejected: u64,
}

/// Live status of one sensor.
pub struct SensorStatus {
    inner: Mutex<StatusInner>,
    /// Trigger instances accepted from this sensor.
    pub dispatched: AtomicU64,
    /// Dispatches rejected by payload validation.
    pub validation_failures: AtomicU64,
    /// Dispatches refused for other reasons (unknown trigger, bad params).
    pub rejected: AtomicU64,
}

struct StatusInner {
    state: SensorState,
    pid: Option<u32>,
    restarts: u32,
    last_exit: Option<ExitStatus>,
    started_at: Option<SystemTime>,
    stderr_tail: VecDeque<String>,
}

/// How many stderr lines are kept for the `failed` report.
const STDERR_TAIL: usize = 20;

impl Default for SensorStatus {
    fn default() -> Self {
        SensorStatus {
            inner: Mutex::new(StatusInner {
                state: SensorState::Starting,
                pid: None,
                restarts: 0,
                last_exit: None,
                started_at: None,
                stderr_tail: VecDeque::new(),
            }),
            dispatched: AtomicU64::new(0),
            validation_failures: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }
}

impl SensorStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the state.
    pub fn set_state(&self, state: SensorState) {
        self.lock().state = state;
    }

    /// Record a started process.
    pub fn started(&self, pid: u32) {
        let mut s = self.lock();
        s.pid = Some(pid);
        s.started_at = Some(SystemTime::now());
        s.state = SensorState::Starting;
    }

    /// Record a process exit.
    pub fn exited(&self, status: ExitStatus) {
        let mut s = self.lock();
        s.pid = None;
        s.last_exit = Some(status);
    }

    /// Count a restart.
    pub fn restarted(&self) {
        self.lock().restarts += 1;
    }

    /// Keep a stderr line for diagnostics.
    pub fn push_stderr(&self, line: String) {
        let mut s = self.lock();
        if s.stderr_tail.len() == STDERR_TAIL {
            s.stderr_tail.pop_front();
        }
        s.stderr_tail.push_back(line);
    }

    /// The last stderr lines, oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.lock().stderr_tail.iter().cloned().collect()
    }

    /// A consistent snapshot.
    pub fn snapshot(&self) -> StatusSnapshot {
        let s = self.lock();
        StatusSnapshot {
            state: s.state,
            pid: s.pid,
            restarts: s.restarts,
            last_exit: s.last_exit,
            started_at: s.started_at,
            dispatched: self.dispatched.load(Ordering::Relaxed),
            validation_failures: self.validation_failures.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}
