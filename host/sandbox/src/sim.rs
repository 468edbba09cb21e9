//! What the three simulators share: the simulated clock, the seeded RNG, issued tokens and the
//! fault rules applied by a middleware in front of every simulator.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// A JSON error response.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub Value);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

/// Wall-clock time plus an offset moved by `/_control/clock/advance`, so that time-driven
/// transitions (claim deadlines, settlements) can be jumped over in tests.
#[derive(Default)]
pub struct SimClock {
    offset_ms: AtomicI64,
}

impl SimClock {
    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

/// Which simulator a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    /// Midaz HTTP API.
    Midaz,
    /// CRM HTTP API.
    Crm,
    /// BTG HTTP API.
    Btg,
    /// BTG → host webhook deliveries (`pathPrefix` matches the event name).
    Webhooks,
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FaultKind {
    /// Delay the request, then serve it.
    Latency {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Never answer (the client must time out); the request is not processed.
    Hang,
    /// Answer this HTTP status with an error body, without processing.
    Status {
        /// HTTP status.
        status: u16,
    },
    /// Answer 404 with the upstream's not-found code, without processing.
    NotFound,
    /// Process the request, then never answer: the effect happens but the client times out.
    TimeoutAfterEffect,
    /// Webhooks: never deliver the event.
    Drop,
    /// Webhooks: deliver the event twice (same `webhookId`).
    Duplicate,
    /// Webhooks: hold the event and deliver it after the next one.
    Reorder,
}

/// A fault rule (`POST /_control/faults`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Assigned by the sandbox.
    #[serde(default)]
    pub id: String,
    /// Target simulator.
    pub upstream: FaultTarget,
    /// Request path prefix (or webhook event prefix); empty matches everything.
    #[serde(default)]
    pub path_prefix: String,
    /// Only this HTTP method, when set.
    #[serde(default)]
    pub method: Option<String>,
    /// What to do.
    pub kind: FaultKind,
    /// Apply only this many times, then remove the rule.
    #[serde(default)]
    pub count: Option<u32>,
    /// Apply with this probability (seeded RNG); always when absent.
    #[serde(default)]
    pub probability: Option<f64>,
}

/// Shared simulator infrastructure.
pub struct Sim {
    /// Simulated clock.
    pub clock: SimClock,
    rng: Mutex<StdRng>,
    faults: Mutex<Vec<FaultRule>>,
    fault_seq: AtomicU64,
    /// Bearer tokens issued by the Lerian auth endpoint (Midaz/CRM).
    pub lerian_tokens: Mutex<HashSet<String>>,
    /// Bearer tokens issued by the BTG token endpoint, with the ISPB of the participant they identify.
    pub btg_tokens: Mutex<HashMap<String, String>>,
}

impl Sim {
    /// New infrastructure seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Sim {
            clock: SimClock::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            faults: Mutex::new(Vec::new()),
            fault_seq: AtomicU64::new(0),
            lerian_tokens: Mutex::new(HashSet::new()),
            btg_tokens: Mutex::new(HashMap::new()),
        }
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A UUID from the seeded RNG.
    pub fn uuid(&self) -> Uuid {
        let bytes: [u8; 16] = self.rng().random();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// `n` random alphanumerics from the seeded RNG.
    pub fn alnum(&self, n: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = self.rng();
        (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
    }

    /// An opaque token.
    pub fn token(&self) -> String {
        format!("sim-{}", self.alnum(32))
    }

    /// Adds a fault rule and returns it with its id.
    pub fn add_fault(&self, mut rule: FaultRule) -> FaultRule {
        rule.id = format!("f{}", self.fault_seq.fetch_add(1, Ordering::SeqCst) + 1);
        self.lock_faults().push(rule.clone());
        rule
    }

    /// Current rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.lock_faults().clone()
    }

    /// Removes one rule, or all when `id` is `None`.
    pub fn clear_faults(&self, id: Option<&str>) {
        self.lock_faults().retain(|r| id.is_some_and(|id| r.id != id));
    }

    fn lock_faults(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault to apply to this request or event, consuming one use of its rule.
    pub fn take_fault(&self, target: FaultTarget, method: &str, path: &str) -> Option<FaultKind> {
        let mut faults = self.lock_faults();
        let index = faults.iter().position(|r| {
            r.upstream == target
                && path.starts_with(&r.path_prefix)
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        if let Some(p) = faults[index].probability
            && !self.rng().random_bool(p.clamp(0.0, 1.0))
        {
            return None;
        }
        let kind = faults[index].kind.clone();
        if let Some(count) = faults[index].count.as_mut() {
            *count = count.saturating_sub(1);
            if *count == 0 {
                faults.remove(index);
            }
        }
        Some(kind)
    }
}

/// State handed to the fault middleware.
#[derive(Clone)]
pub struct FaultLayer {
    pub sim: std::sync::Arc<Sim>,
    pub target: FaultTarget,
}

/// Long enough that any client times out first, short enough not to leak forever.
const HANG: Duration = Duration::from_secs(600);

/// Applies the first matching fault rule to a request.
pub async fn fault_middleware(State(layer): State<FaultLayer>, request: Request, next: Next) -> Response {
    let fault = layer.sim.take_fault(layer.target, request.method().as_str(), request.uri().path());
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    tracing::debug!(target = ?layer.target, ?fault, path = %request.uri().path(), "injecting fault");
    let (code, not_found) = match layer.target {
        FaultTarget::Midaz => ("0007", "Entity Not Found"),
        FaultTarget::Crm => ("CRM-0006", "Holder not found"),
        _ => ("NOT_FOUND", "Resource not found"),
    };
    match fault {
        FaultKind::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        FaultKind::Hang => {
            tokio::time::sleep(HANG).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        FaultKind::Status { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError(
                status,
                json!({"code": "SIMULATED_FAULT", "title": "Simulated fault", "message": format!("injected {status}")}),
            )
            .into_response()
        }
        FaultKind::NotFound => {
            ApiError(StatusCode::NOT_FOUND, json!({"code": code, "title": not_found, "message": "injected not found"}))
                .into_response()
        }
        FaultKind::TimeoutAfterEffect => {
            let _processed = next.run(request).await;
            tokio::time::sleep(HANG).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        // Webhook-only kinds do nothing to HTTP requests.
        FaultKind::Drop | FaultKind::Duplicate | FaultKind::Reorder => next.run(request).await,
    }
}

/// Extracts a bearer token.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_are_deterministic() {
        let (a, b) = (Sim::new(7), Sim::new(7));
        assert_eq!(a.uuid(), b.uuid());
        assert_eq!(a.alnum(11), b.alnum(11));
        assert_ne!(Sim::new(8).uuid(), Sim::new(7).uuid());
    }

    #[test]
    fn fault_rules_match_and_count_down() {
        let sim = Sim::new(1);
        sim.add_fault(FaultRule {
            id: String::new(),
            upstream: FaultTarget::Btg,
            path_prefix: "/pix/payments".into(),
            method: Some("POST".into()),
            kind: FaultKind::Status { status: 503 },
            count: Some(2),
            probability: None,
        });
        assert!(sim.take_fault(FaultTarget::Btg, "GET", "/pix/payments/E1").is_none());
        assert!(sim.take_fault(FaultTarget::Midaz, "POST", "/pix/payments").is_none());
        assert!(sim.take_fault(FaultTarget::Btg, "POST", "/pix/payments").is_some());
        assert!(sim.take_fault(FaultTarget::Btg, "POST", "/pix/payments").is_some());
        assert!(sim.take_fault(FaultTarget::Btg, "POST", "/pix/payments").is_none());
        assert!(sim.faults().is_empty());
    }
}
