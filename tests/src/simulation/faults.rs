//! Upstream faults the scheduler arms before an operation: BTG, Midaz and CRM errors,
//! timeouts (a request never answered), answers lost after the effect happened, and BTG's
//! webhooks lost, duplicated or reordered. Each applies to the next `count` matching requests,
//! whoever sends them (the operation, a worker, the sweeper).

use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use rand::Rng;
use rand::rngs::StdRng;

/// (upstream, path prefix or webhook event prefix, method, what happens).
type Shape = (FaultTarget, &'static str, Option<&'static str>, FaultKind);

fn shapes() -> Vec<Shape> {
    use FaultKind::*;
    use FaultTarget::*;
    let unavailable = Status { status: 503 };
    vec![
        (Btg, "/pix/payments", Some("POST"), unavailable.clone()),
        (Btg, "/pix/payments", Some("POST"), Status { status: 500 }),
        (Btg, "/pix/payments", Some("POST"), Hang),
        (Btg, "/pix/payments", Some("POST"), TimeoutAfterEffect),
        (Btg, "/pix/payments", Some("GET"), unavailable.clone()),
        (Btg, "/pix/payments", Some("GET"), NotFound),
        (Btg, "", None, unavailable.clone()),
        (Midaz, "/v1/organizations", Some("POST"), unavailable.clone()),
        (Midaz, "/v1/organizations", Some("POST"), Hang),
        (Midaz, "/v1/organizations", Some("POST"), TimeoutAfterEffect),
        (Midaz, "/v1/organizations", Some("GET"), unavailable.clone()),
        (Crm, "", None, unavailable),
        (Crm, "", None, Hang),
        (Webhooks, "PIX", None, Drop),
        (Webhooks, "PIX", None, Duplicate),
        (Webhooks, "PIX", None, Reorder),
    ]
}

/// A fault drawn from `rng`.
pub fn draw(rng: &mut StdRng) -> FaultRule {
    let shapes = shapes();
    let (upstream, prefix, method, kind) = shapes[rng.random_range(0..shapes.len())].clone();
    FaultRule {
        id: String::new(),
        upstream,
        path_prefix: prefix.into(),
        method: method.map(str::to_owned),
        kind,
        count: Some(rng.random_range(1..=3)),
        probability: None,
    }
}

/// A short name for the report.
pub fn describe(rule: &FaultRule) -> String {
    format!("{:?} {} {:?} ×{}", rule.upstream, rule.path_prefix, rule.kind, rule.count.unwrap_or(0))
}
