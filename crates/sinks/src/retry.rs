//! Backoff between attempts: exponential, with jitter (each wait is drawn
//! from the upper half of its step, so a fleet of retrying sinks does not
//! hammer a recovering peer in lockstep), and never shorter than what the
//! peer asked for with `Retry-After`.

use std::time::Duration;

use crate::spec::RetryPolicy;

/// Longest `Retry-After` honoured (a peer asking for a day is capped).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait before retry number `retry` (1 = the first retry).
pub fn delay(policy: &RetryPolicy, retry: u32, retry_after: Option<Duration>) -> Duration {
    let exp = policy
        .multiplier
        .powi(retry.saturating_sub(1).min(64) as i32);
    let step = policy
        .initial_delay
        .as_secs_f64()
        .mul_add(exp, 0.0)
        .min(policy.max_delay.as_secs_f64());
    let jittered = Duration::from_secs_f64(step * (0.5 + fastrand::f64() * 0.5));
    match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let p = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(1),
            max_attempts: 10,
        };
        for _ in 0..100 {
            let d1 = delay(&p, 1, None);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = delay(&p, 3, None);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d20 = delay(&p, 20, None);
            assert!(d20 <= Duration::from_secs(1) && d20 >= Duration::from_millis(500));
        }
        assert_eq!(
            delay(&p, 1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            delay(&p, 1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }
}
