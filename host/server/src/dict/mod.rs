//! DICT: entries, key lookup, claims, MED records and reconciliation (issue #6).
//!
//! Each resource has its own module with its handlers and the service code they share with the
//! workers; this module holds what they all use (error mapping for BTG answers, headers, tenant
//! settings, outbound events) and the three seams the server calls: [`routes`],
//! [`inbound_handlers`] and [`spawn_workers`].

mod blocks;
mod claims;
mod entries;
mod keys;
pub use keys::{CHECK_SCOPE, STATISTICS_SCOPE};
mod med;
mod reconciliation;
mod recoveries;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use pix_core::dict::WriteBlockWindow;
use pix_core::error::ErrorCode;
use pix_integrations::IntegrationError;
use pix_integrations::btg::{BtgEvent, parse_webhook};
use pix_store::Tx;
use pix_store::events::{OutboundEvent, record_outbound_event};
use pix_store::inbound::InboundEvent;
use pix_store::tenants::Tenant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::inbound::InboundHandler;
use crate::worker::{JobError, Worker};

pub use claims::run_claim_deadlines;
pub use keys::{KeyLookupOutcome, lookup_for_payment};
pub use med::on_return_received;
pub use reconciliation::run_scheduled_vsync_checks;

/// The job queue of DICT's own background work (settling BTG writes, cautionary blocks).
pub const DICT_QUEUE: &str = "dict";

/// How often the deadline and VSync loop wakes up (decisions use the injected clock).
const TICK: Duration = Duration::from_secs(5);

/// Tenant routes (bearer auth and idempotency are applied by the router).
pub fn routes() -> OpenApiRouter<AppState> {
    entries::routes()
        .merge(keys::routes())
        .merge(claims::routes())
        .merge(med::routes())
        .merge(recoveries::routes())
        .merge(reconciliation::routes())
}

/// What DICT's handlers, inbound handlers and workers use from the application state.
#[derive(Clone)]
pub struct Dict {
    pub store: pix_store::Store,
    pub clock: Arc<dyn pix_core::clock::Clock>,
    pub integrations: Arc<crate::integrations::Integrations>,
    pub config: Arc<crate::config::Config>,
}

impl FromRef<AppState> for Dict {
    fn from_ref(state: &AppState) -> Dict {
        Dict {
            store: state.store.clone(),
            clock: state.clock.clone(),
            integrations: state.integrations.clone(),
            config: state.config.clone(),
        }
    }
}

/// Handlers for BTG events owned by DICT.
pub fn inbound_handlers(state: &AppState) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    event_handlers(&Dict::from_ref(state))
}

/// [`inbound_handlers`] over a [`Dict`] context (tests build one without a full `AppState`).
pub fn event_handlers(dict: &Dict) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    vec![
        ("DICT_CLAIM", Arc::new(claims::ClaimEvents(dict.clone()))),
        ("DICT_CID_FILE", Arc::new(reconciliation::CidFileEvents(dict.clone()))),
        ("INFRACTION_REPORT_V2", Arc::new(med::InfractionEvents(dict.clone()))),
        ("DICT_REFUND", Arc::new(med::RefundEvents(dict.clone()))),
        ("FUNDS_RECOVERY", Arc::new(recoveries::FundsRecoveryEvents(dict.clone()))),
        ("FUNDS_RECOVERY_EVENTS", Arc::new(recoveries::FundsRecoveryNotices(dict.clone()))),
    ]
}

/// Background work owned by DICT: the settle queue (finishing or compensating BTG writes whose
/// outcome was unknown) and a loop for time-driven claim transitions and scheduled VSync checks.
pub fn spawn_workers(state: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    let dict = Dict::from_ref(state);
    let grace = Duration::from_millis(dict.config.server.shutdown_grace_ms);
    tasks.spawn(settle_worker(&dict).run(shutdown.clone(), grace));
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        loop {
            run_claim_deadlines(&dict).await;
            run_scheduled_vsync_checks(&dict).await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    });
}

/// The worker of [`DICT_QUEUE`].
pub fn settle_worker(dict: &Dict) -> Worker {
    Worker::new(dict.store.clone(), dict.clock.clone(), DICT_QUEUE, dict.config.workers.clone())
        .handle(entries::SETTLE_ENTRY, Arc::new(entries::SettleEntry(dict.clone())))
        .handle(blocks::ADVANCE_BLOCK, Arc::new(blocks::AdvanceBlock(dict.clone())))
}

/// DICT settings a tenant may carry under `settings.dict`.
#[derive(Debug, Clone, Copy)]
struct DictSettings {
    /// Entry writes refused in this daily window (Brasília time).
    write_block: Option<WriteBlockWindow>,
    /// How often the VSync worker compares local and DICT VSync.
    vsync_interval: chrono::Duration,
}

/// Default VSync check interval (Lerian's `RECONCILIATION_VSYNC_SCHEDULE`).
const DEFAULT_VSYNC_INTERVAL_SECS: i64 = 300;

fn settings(tenant: &Tenant) -> DictSettings {
    let dict = &tenant.settings["dict"];
    let window = &dict["writeBlockWindow"];
    let write_block = match (window["start"].as_str(), window["end"].as_str()) {
        (Some(start), Some(end)) => WriteBlockWindow::parse(start, end),
        _ => None,
    };
    let secs = dict["vsyncCheckIntervalSecs"].as_i64().filter(|s| *s > 0).unwrap_or(DEFAULT_VSYNC_INTERVAL_SECS);
    DictSettings { write_block, vsync_interval: chrono::Duration::seconds(secs) }
}

/// Refuses entry writes inside the tenant's write-block window.
fn ensure_writable(tenant: &Tenant, now: DateTime<Utc>) -> ApiResult<()> {
    match settings(tenant).write_block {
        Some(w) if w.contains(now) => Err(ApiError::new(
            ErrorCode::DictWritesBlocked,
            format!(
                "entry writes are blocked daily from {} to {} (Brasília time)",
                w.start.format("%H:%M"),
                w.end.format("%H:%M")
            ),
        )),
        _ => Ok(()),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// A required enumerated header such as `X-Reason`: missing → PIX-0001, not one of the
/// accepted values → PIX-0002.
fn required_header<T: Copy>(headers: &HeaderMap, name: &str, accepted: &[(&str, T)]) -> ApiResult<T> {
    let value = header(headers, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::MissingHeader, format!("missing header: {name}")))?;
    accepted.iter().find(|(text, _)| *text == value).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = accepted.iter().map(|(t, _)| *t).collect();
        ApiError::new(ErrorCode::InvalidHeader, format!("{name} must be one of {}", names.join(", ")))
    })
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, message)
}

fn missing(field: &str) -> ApiError {
    ApiError::new(ErrorCode::MissingField, format!("missing field: {field}"))
}

/// Parses an enumerated body field, naming it in the error.
fn parse_enum<T: std::str::FromStr<Err = pix_core::transfer::UnknownValue>>(field: &str, value: &str) -> ApiResult<T> {
    value.parse().map_err(|e: pix_core::transfer::UnknownValue| {
        invalid(format!("{field}: must be one of {}", e.expected.join(", ")))
    })
}

/// Maps a BTG failure to the catalogue: DICT's business refusals keep their meaning, the rest
/// says the upstream failed (see `crate::integrations::upstream_error`).
fn btg_error(what: &str, e: IntegrationError) -> ApiError {
    let code = e.code().unwrap_or_default().to_owned();
    let mapped = match code.as_str() {
        "ENTRY_ALREADY_EXISTS" | "KEY_ALREADY_OURS" => Some(ErrorCode::EntryAlreadyExists),
        "ENTRY_KEY_OWNED_BY_DIFFERENT_PARTICIPANT" => Some(ErrorCode::KeyHeldByOtherParticipant),
        "ENTRY_LIMIT_EXCEEDED" => Some(ErrorCode::EntryLimitExceeded),
        "ENTRY_KEY_OWNER_MISMATCH" => Some(ErrorCode::KeyHolderMismatch),
        "ENTRY_NOT_FOUND" => Some(ErrorCode::KeyNotFound),
        "CLAIM_ALREADY_OPEN" => Some(ErrorCode::ClaimAlreadyOpen),
        "INVALID_CLAIM_TYPE" => Some(ErrorCode::ClaimNotAllowed),
        "INVALID_CLAIM_STATUS" | "NOT_CLAIM_PARTICIPANT" => Some(ErrorCode::InvalidClaimStatus),
        "CLAIM_NOT_FOUND" => Some(ErrorCode::ClaimNotFound),
        "INFRACTION_REPORT_NOT_FOUND" => Some(ErrorCode::InfractionReportNotFound),
        "INVALID_INFRACTION_REPORT_STATUS" => Some(ErrorCode::InvalidInfractionStatus),
        "REFUND_NOT_FOUND" => Some(ErrorCode::RefundRequestNotFound),
        "INVALID_REFUND_STATUS" => Some(ErrorCode::InvalidRefundStatus),
        "FRAUD_MARKER_NOT_FOUND" => Some(ErrorCode::FraudMarkerNotFound),
        "FUNDS_RECOVERY_NOT_FOUND" => Some(ErrorCode::FundsRecoveryNotFound),
        "INVALID_FUNDS_RECOVERY_STATUS" => Some(ErrorCode::InvalidFundsRecoveryStatus),
        "PAYMENT_NOT_FOUND" => Some(ErrorCode::ResourceNotFound),
        _ => None,
    };
    match (mapped, &e) {
        (Some(code), _) => ApiError::new(code, format!("{what}: {}", dict_message(&e))),
        (None, IntegrationError::Conflict { .. } | IntegrationError::Rejected { .. }) => {
            ApiError::new(ErrorCode::DictRejected, format!("{what}: {code}: {}", dict_message(&e)))
        }
        _ => crate::integrations::upstream_error(what, e),
    }
}

fn dict_message(e: &IntegrationError) -> String {
    match e {
        IntegrationError::NotFound { message, .. }
        | IntegrationError::Conflict { message, .. }
        | IntegrationError::Rejected { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Records an outbound DICT event (CLAIM, INFRACTION_REPORT, REFUND, FUNDS_RECOVERY,
/// DICT_RECONCILIATION_JOB, …) in `tx`.
async fn record_event(
    tx: &mut Tx,
    tenant: Uuid,
    entity_type: &str,
    entity_id: Uuid,
    payload: &impl serde::Serialize,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let payload = serde_json::to_value(payload).map_err(ApiError::internal)?;
    let id = entity_id.to_string();
    record_outbound_event(
        tx,
        &OutboundEvent { tenant_id: tenant, flow_type: "DICT", entity_type, entity_id: &id, payload: &payload },
        now,
    )
    .await?;
    Ok(())
}

/// Decodes a stored BTG event (`{event, data}`) into its typed form.
pub(crate) fn decode_event(event: &InboundEvent) -> Result<BtgEvent, JobError> {
    let envelope = serde_json::json!({
        "webhookId": event.event_id, "event": event.payload["event"], "data": event.payload["data"],
    });
    let bytes = serde_json::to_vec(&envelope).map_err(|e| JobError::Permanent(e.to_string()))?;
    parse_webhook(&bytes)
        .map(|(_, decoded)| decoded)
        .map_err(|e| JobError::Permanent(format!("undecodable {} event: {e}", event.event_type)))
}

/// Workers and inbound handlers answer with `JobError`: a storage or upstream hiccup is retried.
fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

/// `limit`/`offset` from `page`/`limit` query values (the shared paging rules).
fn paging(page: Option<u32>, limit: Option<u32>) -> ApiResult<(i64, i64, u32, u32)> {
    let query = crate::routes::PageQuery { page, limit };
    let (l, o) = query.limit_offset()?;
    Ok((l, o, page.unwrap_or(1), limit.unwrap_or(10)))
}

/// `sort_order`: `asc` or `desc`.
fn descending(sort_order: Option<&str>, default_desc: bool) -> ApiResult<bool> {
    match sort_order {
        None => Ok(default_desc),
        Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(invalid("sort_order must be asc or desc")),
    }
}

/// An RFC 3339 query timestamp.
fn timestamp(name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.to_utc())
                .map_err(|_| invalid(format!("{name} must be an RFC 3339 timestamp")))
        })
        .transpose()
}
