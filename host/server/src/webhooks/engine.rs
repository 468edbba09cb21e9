//! The delivery engine, in two stages:
//! 1. Routing: a feature records each event already routed (`pix_store::events`), with one
//!    pending delivery per endpoint, in the transaction of its state change. A worker on
//!    [`WEBHOOK_QUEUE`] only drains `DELIVER_EVENT` jobs that older versions left.
//! 2. Delivery: a loop claims due deliveries, signs and POSTs them, and records each attempt.
//!    Each (event, endpoint) retries on its own schedule; an entity's later events to an endpoint
//!    wait while an earlier one is still pending there (retrying), and go once it is delivered
//!    or dead-lettered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pix_core::clock::Clock;
use pix_store::Store;
use pix_store::deliveries::{AttemptOutcome, ClaimedDelivery, DeliveryStatus};
use pix_store::events::{DELIVER_EVENT, OutboundEvent, WEBHOOK_QUEUE, route_and_record};
use pix_store::jobs::Job;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, decode_secret, sign};
use crate::config::{OutboundConfig, WorkerConfig};
use crate::outbound::{self, Outbound};
use crate::worker::{JobError, JobFuture, JobHandler, Worker};

/// Delays before each retry (Svix's server schedule): 8 attempts over about 28 hours.
pub const RETRY_SCHEDULE_SECS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// Each delay varies by ±20 % so that a burst of failures does not retry in lockstep.
pub const RETRY_JITTER: f64 = 0.2;
/// Per attempt; Standard Webhooks asks for 15–30 s, our design says 15 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// After a timeout or a 429 the next delay is at least this (Svix's `OVERLOAD_PENALTY_SECS`).
pub const OVERLOAD_PENALTY: Duration = Duration::from_secs(60);
/// Attempts in flight per process: deliveries mostly wait on the network.
pub const DELIVERY_CONCURRENCY: usize = 64;
/// Attempts in flight per endpoint (the Lerian chart's value for transfer entities).
pub const ENDPOINT_CONCURRENCY: usize = 10;
/// Attempts in flight per tenant (`[outbound] tenant_delivery_concurrency`): a tenant whose
/// receivers hang cannot hold more than this many of the [`DELIVERY_CONCURRENCY`] slots.
pub const TENANT_CONCURRENCY: usize = 16;

/// Tunables of the engine; production takes [`EngineSettings::from_workers`], tests shrink the
/// schedule to milliseconds.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Delay before retry n (n = 1…len); a delivery gets `len + 1` attempts, then is dead-lettered.
    pub schedule: Vec<Duration>,
    /// Relative jitter applied to each delay, in [0, 1).
    pub jitter: f64,
    pub request_timeout: Duration,
    pub overload_penalty: Duration,
    pub concurrency: usize,
    pub endpoint_concurrency: usize,
    /// Attempts in flight per tenant, across its endpoints (in the claim and in this process).
    pub tenant_concurrency: usize,
    pub poll_interval: Duration,
    /// How long a claimed delivery is ours; must exceed `request_timeout`.
    pub lease: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            schedule: RETRY_SCHEDULE_SECS.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: RETRY_JITTER,
            request_timeout: REQUEST_TIMEOUT,
            overload_penalty: OVERLOAD_PENALTY,
            concurrency: DELIVERY_CONCURRENCY,
            endpoint_concurrency: ENDPOINT_CONCURRENCY,
            tenant_concurrency: TENANT_CONCURRENCY,
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(60),
        }
    }
}

impl EngineSettings {
    /// The defaults, polling and leasing like the other job workers.
    pub fn from_workers(workers: &WorkerConfig) -> EngineSettings {
        let defaults = EngineSettings::default();
        EngineSettings {
            poll_interval: Duration::from_millis(workers.poll_interval_ms),
            lease: Duration::from_secs(workers.lease_secs).max(defaults.request_timeout * 2),
            ..defaults
        }
    }

    /// [`EngineSettings::from_workers`], with the per-tenant limit of `[outbound]`.
    pub fn from_config(config: &crate::config::Config) -> EngineSettings {
        EngineSettings {
            tenant_concurrency: config.outbound.tenant_delivery_concurrency,
            ..EngineSettings::from_workers(&config.workers)
        }
    }
}

/// What the receiver's answer says about the next attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backpressure {
    /// A timeout or a 429: back off at least `overload_penalty`.
    pub overloaded: bool,
    /// `Retry-After` on a 429/502/503/504, honoured within [delay, 2·delay].
    pub retry_after: Option<Duration>,
}

/// Delay before the next attempt after `attempts` failed ones, or `None` when they are exhausted.
pub fn retry_delay(
    settings: &EngineSettings,
    attempts: i32,
    signal: Backpressure,
    rng: &mut impl Rng,
) -> Option<Duration> {
    let base = *settings.schedule.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let jitter = settings.jitter.clamp(0.0, 0.99);
    let mut delay = base.mul_f64(1.0 + rng.random_range(-jitter..=jitter));
    if let Some(asked) = signal.retry_after {
        delay = asked.clamp(base, base.saturating_mul(2));
    }
    if signal.overloaded {
        delay = delay.max(settings.overload_penalty);
    }
    Some(delay)
}

/// A `DELIVER_EVENT` job, as versions before routing at record time wrote them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedEvent {
    event_id: Uuid,
    flow_type: String,
    entity_type: String,
    entity_id: String,
    occurred_at: DateTime<Utc>,
    payload: serde_json::Value,
}

/// Stage 1, for events recorded before routing happened at record time: routes each
/// `DELIVER_EVENT` job left in the queue, exactly as `record_outbound_event` now does inline.
struct RouteEvents {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl RouteEvents {
    async fn route(&self, job: &Job) -> Result<(), JobError> {
        let tenant_id = job.tenant_id.ok_or_else(|| JobError::Permanent("event job has no tenant".into()))?;
        let event: RecordedEvent = serde_json::from_value(job.payload.clone())
            .map_err(|e| JobError::Permanent(format!("malformed event job: {e}")))?;
        let outbound = OutboundEvent {
            tenant_id,
            flow_type: &event.flow_type,
            entity_type: &event.entity_type,
            entity_id: &event.entity_id,
            payload: &event.payload,
        };
        let retry = |e: pix_store::StoreError| JobError::Retry(e.to_string());
        let mut tx = self.store.begin().await.map_err(retry)?;
        route_and_record(&mut tx, event.event_id, &outbound, event.occurred_at, self.clock.now())
            .await
            .map_err(retry)?;
        tx.commit().await.map_err(retry)?;
        Ok(())
    }
}

impl JobHandler for RouteEvents {
    fn handle<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(self.route(job))
    }
}

/// How one attempt went.
enum Sent {
    Delivered(u16),
    /// Retrying cannot help (410 Gone, endpoint deleted or disabled, unusable secret).
    Abandoned {
        status: Option<u16>,
        reason: String,
        disable_endpoint: bool,
    },
    Failed {
        status: Option<u16>,
        reason: String,
        signal: Backpressure,
    },
}

/// Stage 2: the delivery loop. Build with [`Engine::new`]; run [`Engine::routing_worker`] and
/// [`Engine::run`].
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: EngineSettings,
    http: Outbound,
    id: String,
    endpoint_slots: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
    tenant_slots: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

impl Engine {
    /// Deliveries go through the outbound policy of `outbound` (no redirects: Standard Webhooks
    /// treats them as failures, and following one could leak the event elsewhere).
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: EngineSettings,
        outbound: &OutboundConfig,
    ) -> anyhow::Result<Arc<Engine>> {
        let http = Outbound::new(
            outbound,
            settings.request_timeout,
            concat!("pix-host-webhooks/", env!("CARGO_PKG_VERSION")),
        )?;
        let id = format!("webhooks-{}-{}", std::process::id(), pix_core::ids::new_id().simple());
        Ok(Arc::new(Engine {
            store,
            clock,
            settings,
            http,
            id,
            endpoint_slots: Mutex::new(HashMap::new()),
            tenant_slots: Mutex::new(HashMap::new()),
        }))
    }

    /// The stage-1 worker: routes `DELIVER_EVENT` jobs into deliveries.
    pub fn routing_worker(&self, config: WorkerConfig) -> Worker {
        let handler = RouteEvents { store: self.store.clone(), clock: self.clock.clone() };
        Worker::new(self.store.clone(), self.clock.clone(), WEBHOOK_QUEUE, config)
            .handle(DELIVER_EVENT, Arc::new(handler))
    }

    /// Delivers until `shutdown` fires, then waits (up to `grace`) for attempts in flight.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        let mut running = JoinSet::new();
        tracing::info!(worker = %self.id, "webhook delivery started");
        while !shutdown.is_cancelled() {
            while running.try_join_next().is_some() {}
            let free = self.settings.concurrency.saturating_sub(running.len());
            let mut started = 0;
            if free > 0 {
                let claimed = self
                    .store
                    .claim_deliveries(
                        &self.id,
                        self.settings.lease,
                        free as i64,
                        self.settings.endpoint_concurrency as i64,
                        self.settings.tenant_concurrency as i64,
                        self.clock.now(),
                    )
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "claiming webhook deliveries failed");
                        Vec::new()
                    });
                for delivery in claimed {
                    // The claim counts leases across processes but may overshoot within one batch.
                    let tenant = Self::slot(&self.tenant_slots, delivery.tenant_id, self.settings.tenant_concurrency);
                    let endpoint =
                        Self::slot(&self.endpoint_slots, delivery.endpoint_id, self.settings.endpoint_concurrency);
                    match (tenant.try_acquire_owned(), endpoint.try_acquire_owned()) {
                        (Ok(tenant_slot), Ok(endpoint_slot)) => {
                            let engine = self.clone();
                            running.spawn(async move { engine.attempt(delivery, (tenant_slot, endpoint_slot)).await });
                            started += 1;
                        }
                        _ => {
                            if let Err(e) = self.store.release_delivery(delivery.id, &self.id).await {
                                tracing::warn!(error = %e, delivery = delivery.id, "releasing a delivery failed; its lease will expire");
                            }
                        }
                    }
                }
            }
            if started == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
            }
        }
        if tokio::time::timeout(grace, async { while running.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!(left = running.len(), "shutdown grace elapsed; delivery leases will expire");
        }
        tracing::info!("webhook delivery stopped");
    }

    fn slot(slots: &Mutex<HashMap<Uuid, Arc<Semaphore>>>, key: Uuid, permits: usize) -> Arc<Semaphore> {
        let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_insert_with(|| Arc::new(Semaphore::new(permits))).clone()
    }

    async fn attempt(&self, delivery: ClaimedDelivery, _slots: (OwnedSemaphorePermit, OwnedSemaphorePermit)) {
        // Ids only: URLs may embed tokens and payloads carry personal data.
        let span = tracing::info_span!("webhook_delivery", delivery = delivery.id, event = %delivery.event_id,
            tenant = %delivery.tenant_id, endpoint = %delivery.endpoint_id, attempt = delivery.attempts + 1);
        self.attempt_in_span(delivery).instrument(span).await;
    }

    async fn attempt_in_span(&self, delivery: ClaimedDelivery) {
        let started = Instant::now();
        let sent = self.send(&delivery).await;
        let duration = started.elapsed();
        let now = self.clock.now();
        let attempts = delivery.attempts + 1;
        let (outcome_label, outcome) = match &sent {
            Sent::Delivered(code) => (
                "delivered",
                AttemptOutcome { delivered: true, status_code: Some(*code), error: None, duration, retry_at: None },
            ),
            Sent::Abandoned { status, reason, .. } => (
                "abandoned",
                AttemptOutcome {
                    delivered: false,
                    status_code: *status,
                    error: Some(reason),
                    duration,
                    retry_at: None,
                },
            ),
            Sent::Failed { status, reason, signal } => {
                let retry_at = retry_delay(&self.settings, attempts, *signal, &mut rand::rng())
                    .map(|d| now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
                (
                    "failed",
                    AttemptOutcome { delivered: false, status_code: *status, error: Some(reason), duration, retry_at },
                )
            }
        };
        let (flow, entity) = (delivery.flow_type.clone(), delivery.entity_type.clone());
        metrics::counter!("webhook_delivery_attempts_total", "flow_type" => flow.clone(),
            "entity_type" => entity.clone(), "outcome" => outcome_label)
        .increment(1);
        metrics::histogram!("webhook_delivery_duration_seconds", "flow_type" => flow.clone(), "entity_type" => entity.clone())
            .record(duration.as_secs_f64());
        if let Sent::Abandoned { disable_endpoint: true, .. } = &sent {
            match self.store.disable_webhook_endpoint(delivery.endpoint_id, now).await {
                Ok(()) => tracing::warn!("endpoint answered 410 Gone; it is now disabled"),
                Err(e) => tracing::error!(error = %e, "disabling a gone endpoint failed"),
            }
        }
        let status = match self.store.finish_delivery_attempt(delivery.id, &self.id, &outcome, now).await {
            Ok(Some(status)) => status,
            Ok(None) => {
                tracing::warn!("delivery lease was lost before the outcome was recorded; it will be attempted again");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "recording a delivery attempt failed; the lease will expire and it runs again");
                return;
            }
        };
        let code = outcome.status_code;
        match status {
            DeliveryStatus::Delivered => {
                tracing::info!(
                    status_code = code,
                    attempts,
                    elapsed_ms = duration.as_millis() as u64,
                    "webhook delivered"
                );
            }
            DeliveryStatus::Pending => {
                tracing::warn!(status_code = code, error = outcome.error, attempts, retry_at = ?outcome.retry_at,
                    "webhook attempt failed; will retry");
            }
            DeliveryStatus::Failed => {
                tracing::warn!(status_code = code, error = outcome.error, attempts, "webhook delivery dead-lettered");
            }
        }
        if status != DeliveryStatus::Pending {
            metrics::counter!("webhook_deliveries_total", "flow_type" => flow, "entity_type" => entity,
                "status" => status.as_str())
            .increment(1);
        }
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> Sent {
        let abandon =
            |reason: &str| Sent::Abandoned { status: None, reason: reason.to_owned(), disable_endpoint: false };
        let Some(target) = &delivery.target else {
            return abandon("the endpoint was deleted");
        };
        if !target.enabled {
            return abandon("the endpoint is disabled");
        }
        let Ok(key) = decode_secret(&target.secret) else {
            return abandon("the endpoint's signing secret is unusable");
        };
        let id = delivery.event_id.to_string();
        // A fresh timestamp and signature per attempt; the id stays the same.
        let timestamp = self.clock.now().timestamp();
        let signature = sign(&key, &id, timestamp, delivery.body.as_bytes());
        let Ok(url) = url::Url::parse(&target.url) else {
            return abandon("the endpoint's URL is not a URL");
        };
        let request = self
            .http
            .request(reqwest::Method::POST, url)
            .header(CONTENT_TYPE, "application/json")
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_SIGNATURE, signature)
            .body(delivery.body.clone());
        let response = self.http.send(request).await;
        match response {
            Ok(response) => {
                let status = response.status();
                let code = status.as_u16();
                if status.is_success() {
                    return Sent::Delivered(code);
                }
                if status == StatusCode::GONE {
                    return Sent::Abandoned {
                        status: Some(code),
                        reason: "HTTP 410 Gone".into(),
                        disable_endpoint: true,
                    };
                }
                let throttled = matches!(code, 429 | 502 | 503 | 504);
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|_| throttled)
                    .map(Duration::from_secs);
                let signal = Backpressure { overloaded: status == StatusCode::TOO_MANY_REQUESTS, retry_after };
                Sent::Failed { status: Some(code), reason: format!("HTTP {code}"), signal }
            }
            Err(e) => {
                // The reason (refused address, DNS, connect, timeout) goes to the host's log;
                // the recorded attempt, which tenants' operators read, says only that it failed.
                tracing::warn!(error = %e, "webhook attempt could not reach the endpoint");
                let signal = Backpressure { overloaded: e.is_timeout(), retry_after: None };
                Sent::Failed { status: None, reason: outbound::TENANT_MESSAGE.into(), signal }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_default_schedule_is_svix_with_eight_attempts_and_twenty_percent_jitter() {
        let settings = EngineSettings::default();
        assert_eq!(settings.schedule.len() + 1, 8, "attempts per round");
        let mut rng = StdRng::seed_from_u64(7);
        for (n, base) in RETRY_SCHEDULE_SECS.iter().enumerate() {
            for _ in 0..200 {
                let d = retry_delay(&settings, n as i32 + 1, Backpressure::default(), &mut rng).unwrap();
                let base = secs(*base);
                assert!(d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2), "retry {} waited {d:?}", n + 1);
            }
        }
        assert_eq!(retry_delay(&settings, 8, Backpressure::default(), &mut rng), None, "exhausted after 8");
    }

    #[test]
    fn overload_and_retry_after_shape_the_delay() {
        let settings = EngineSettings { jitter: 0.0, ..EngineSettings::default() };
        let mut rng = StdRng::seed_from_u64(7);
        let overloaded = Backpressure { overloaded: true, retry_after: None };
        assert_eq!(retry_delay(&settings, 1, overloaded, &mut rng), Some(secs(60)), "5 s raised to the penalty");
        assert_eq!(retry_delay(&settings, 2, overloaded, &mut rng), Some(secs(300)), "already above it");
        let asked = |s| Backpressure { overloaded: false, retry_after: Some(secs(s)) };
        assert_eq!(retry_delay(&settings, 2, asked(1), &mut rng), Some(secs(300)), "not sooner than scheduled");
        assert_eq!(retry_delay(&settings, 2, asked(450), &mut rng), Some(secs(450)));
        assert_eq!(retry_delay(&settings, 2, asked(9999), &mut rng), Some(secs(600)), "at most twice the delay");
    }

    #[test]
    fn production_settings_follow_the_worker_config() {
        let mut workers = crate::config::Config::default().workers;
        workers.poll_interval_ms = 40;
        workers.lease_secs = 5;
        let settings = EngineSettings::from_workers(&workers);
        assert_eq!(settings.poll_interval, Duration::from_millis(40));
        assert_eq!(settings.lease, secs(30), "a lease always outlasts the request timeout");
    }
}
