//! Circuit breaker and backoff, one breaker per upstream client.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::config::{BreakerConfig, RetryConfig};
use crate::error::{IntegrationError, Upstream};

/// Observable breaker state (for metrics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; consecutive failures are counted.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// The cooldown ended; a single probe at a time is let through.
    HalfOpen,
}

/// How long a call refused while another probes should wait: a probe ends within one call.
const PROBE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool, successes: u32 },
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen];

    /// The state as exported (`/metrics` label, console).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A consecutive-failure circuit breaker: `failure_threshold` upstream failures in a row open it;
/// after `cooldown` one probe is let through at a time (half-open); `half_open_successes`
/// successful probes close it, and any failed probe opens it again.
#[derive(Debug)]
pub struct CircuitBreaker {
    upstream: Upstream,
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// Proof that a call was admitted; report its outcome with [`CircuitBreaker::record`].
#[derive(Debug)]
#[must_use]
pub struct Permit {
    probe: bool,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(upstream: Upstream, config: BreakerConfig) -> Self {
        CircuitBreaker { upstream, config, inner: Mutex::new(Inner::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update of plain counters;
        // the state is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstream this breaker guards.
    pub fn upstream(&self) -> Upstream {
        self.upstream
    }

    /// Current state (an expired open state reads as half-open).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if Instant::now() < until => BreakerState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Admits a call, or refuses it with [`IntegrationError::CircuitOpen`].
    pub fn acquire(&self) -> Result<Permit, IntegrationError> {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Ok(Permit { probe: false }),
            Inner::Open { until } if Instant::now() < until => {
                Err(IntegrationError::CircuitOpen { upstream: self.upstream, retry_after: until - Instant::now() })
            }
            Inner::Open { .. } => {
                *inner = Inner::HalfOpen { probing: true, successes: 0 };
                Ok(Permit { probe: true })
            }
            Inner::HalfOpen { probing: true, .. } => Err(IntegrationError::CircuitOpen {
                upstream: self.upstream,
                retry_after: Duration::from_millis(self.config.cooldown_ms).min(PROBE_WAIT),
            }),
            Inner::HalfOpen { probing: false, successes } => {
                *inner = Inner::HalfOpen { probing: true, successes };
                Ok(Permit { probe: true })
            }
        }
    }

    /// Records the outcome of an admitted call. `failed` means the upstream itself failed
    /// (timeout, 5xx, transport); business errors count as success.
    pub fn record(&self, permit: Permit, failed: bool) {
        let mut inner = self.lock();
        let cooldown = Duration::from_millis(self.config.cooldown_ms);
        let next = match (&*inner, failed) {
            (Inner::Closed { .. }, false) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, true) => {
                let failures = failures + 1;
                if failures >= self.config.failure_threshold.max(1) {
                    tracing::warn!(upstream = %self.upstream, failures, "circuit opened");
                    Inner::Open { until: Instant::now() + cooldown }
                } else {
                    Inner::Closed { failures }
                }
            }
            (Inner::HalfOpen { successes, .. }, false) if permit.probe => {
                let successes = successes + 1;
                if successes >= self.config.half_open_successes.max(1) {
                    tracing::info!(upstream = %self.upstream, "circuit closed");
                    Inner::Closed { failures: 0 }
                } else {
                    Inner::HalfOpen { probing: false, successes }
                }
            }
            (Inner::HalfOpen { .. }, true) if permit.probe => {
                tracing::warn!(upstream = %self.upstream, "probe failed; circuit re-opened");
                Inner::Open { until: Instant::now() + cooldown }
            }
            // A call admitted before the circuit opened finished late: it says nothing new.
            _ => return,
        };
        *inner = next;
    }
}

/// Delay before retry number `retry` (0-based): `min(max, base · 2^retry) · (1 ± jitter)`.
pub fn backoff_delay(config: &RetryConfig, retry: u32) -> Duration {
    let exp = config.base_delay_ms.saturating_mul(1u64 << retry.min(32)).min(config.max_delay_ms) as f64;
    let jitter = config.jitter.clamp(0.0, 0.99);
    let factor = if jitter > 0.0 { 1.0 + rand::rng().random_range(-jitter..=jitter) } else { 1.0 };
    Duration::from_millis((exp * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cooldown_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(
            Upstream::Btg,
            BreakerConfig { failure_threshold: threshold, cooldown_ms, half_open_successes: 1 },
        )
    }

    #[test]
    fn opens_after_threshold_and_recovers_after_cooldown() {
        let b = breaker(2, 30);
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Open);
        // A refused call is told how much of the cooldown is left.
        match b.acquire() {
            Err(IntegrationError::CircuitOpen { retry_after, .. }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_millis(30), "{retry_after:?}")
            }
            other => panic!("expected a short circuit, got {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.acquire().unwrap();
        // Only one probe at a time while half-open; the others wait for its outcome, at most a
        // cooldown.
        assert!(matches!(
            b.acquire(),
            Err(IntegrationError::CircuitOpen { retry_after, .. }) if retry_after == Duration::from_millis(30)
        ));
        b.record(probe, false);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failed_probe_reopens_and_success_resets_count() {
        let b = breaker(2, 20);
        b.record(b.acquire().unwrap(), true);
        b.record(b.acquire().unwrap(), false);
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Closed, "success must reset the count");
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(25));
        b.record(b.acquire().unwrap(), true);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = RetryConfig { max_attempts: 10, base_delay_ms: 100, max_delay_ms: 1_000, jitter: 0.2 };
        for retry in 0..10 {
            let d = backoff_delay(&cfg, retry).as_millis() as f64;
            let nominal = (100.0 * 2f64.powi(retry as i32)).min(1_000.0);
            assert!(d >= nominal * 0.8 - 1.0 && d <= nominal * 1.2 + 1.0, "{retry}: {d}");
        }
    }
}
