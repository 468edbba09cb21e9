//! Per-tenant request rate (`server.tenant_rate_per_second`, `server.tenant_rate_burst`): a
//! GCRA bucket per tenant id, checked after authentication. One tenant spending its budget does
//! not touch another's. Per process: N instances allow up to N times the rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

pub struct TenantRateLimiter {
    limiter: DefaultKeyedRateLimiter<Uuid>,
    clock: DefaultClock,
}

impl TenantRateLimiter {
    pub fn new(per_second: u32, burst: u32) -> TenantRateLimiter {
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let clock = DefaultClock::default();
        let limiter = RateLimiter::dashmap_with_clock(Quota::per_second(per_second).allow_burst(burst), clock.clone());
        TenantRateLimiter { limiter, clock }
    }

    /// Takes one request from `tenant`'s budget, or says how long until one is available.
    pub fn check(&self, tenant: Uuid) -> Result<(), Duration> {
        self.limiter.check_key(&tenant).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

impl std::fmt::Debug for TenantRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRateLimiter").field("tenants", &self.limiter.len()).finish()
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_has_its_own_budget() {
        let limiter = TenantRateLimiter::new(1, 2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let wait = limiter.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(b).is_ok(), "another tenant is unaffected");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    }
}
