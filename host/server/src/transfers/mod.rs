//! Transfers (issue #7): cash-out initiation and processing, cash-in from BTG, queries.
//!
//! Money moves in small steps, each idempotent and recorded before the next begins: a transfer
//! row is written with a job that will finish it, the Midaz hold is placed with an idempotency key
//! derived from the transfer, BTG is called with the transfer id as its idempotency key, and BTG's
//! webhooks commit or release the hold. A crash between any two steps leaves a row whose `step`
//! says where to resume, and a job or a redelivered webhook resumes it (docs/transfers.md).

mod cashin;
mod cashout;
mod initiate;
mod queries;
mod review;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pix_core::clock::{brasilia_date, brasilia_day_start};
use pix_core::money::Money;
use pix_store::Tx;
use pix_store::events::{OutboundEvent, record_outbound_event};
use pix_store::transfers::Transfer;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::inbound::InboundHandler;
use crate::worker::{JobError, Worker};

pub use review::admin_routes;

/// Pix is BRL only: the Midaz asset, and the account money leaves to and arrives from.
const ASSET: &str = "BRL";
const EXTERNAL: &str = "@external/BRL";

/// The queue of cash-out work (placing holds, sending to BTG).
pub const TRANSFERS_QUEUE: &str = "transfers";

/// Tenant routes (bearer auth and idempotency are applied by the router).
pub fn routes() -> OpenApiRouter<AppState> {
    initiate::routes().merge(cashout::routes()).merge(queries::routes())
}

/// Handlers for BTG's payment events.
pub fn inbound_handlers(state: &AppState) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    vec![
        ("PIX_PAYMENT", Arc::new(cashout::PaymentEvents(state.clone()))),
        ("PIX_PAYMENT_INBOUND", Arc::new(cashin::InboundPayments(state.clone()))),
    ]
}

/// The worker of [`TRANSFERS_QUEUE`].
pub fn worker(state: &AppState, config: crate::config::WorkerConfig) -> Worker {
    Worker::new(state.store.clone(), state.clock.clone(), TRANSFERS_QUEUE, config)
        .handle(cashout::ADVANCE_CASHOUT, Arc::new(cashout::AdvanceCashout(state.clone())))
}

pub fn spawn_workers(state: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    let grace = Duration::from_millis(state.config.server.shutdown_grace_ms);
    tasks.spawn(worker(state, state.config.workers.clone()).run(shutdown.clone(), grace));
}

// ------------------------------------------------------------------------------------ views

/// A transfer as clients and webhooks see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    pub id: Uuid,
    pub end_to_end_id: String,
    /// `CASHOUT` or `CASHIN`.
    #[serde(rename = "type")]
    pub transfer_type: String,
    /// `PENDING`, `IN_REVIEW`, `PROCESSING`, `COMPLETED`, `FAILED` or `CANCELLED`.
    pub status: String,
    #[schema(value_type = String, example = "100.00")]
    pub amount: Money,
    /// What the fee policy charged.
    #[schema(value_type = String, example = "0.00")]
    pub fee: Money,
    /// `TRANSFER` or `INSTANT_PAYMENT_REFUND`.
    pub purpose: String,
    #[serde(rename = "isIntraPSP")]
    pub is_intra_psp: bool,
    /// Cash-outs: `KEY`, `QR_CODE` or `MANUAL`.
    pub initiation_type: Option<String>,
    pub initiation_id: Option<Uuid>,
    /// The other side: participant, branch, account, masked document, name, key.
    #[schema(value_type = Object)]
    pub counterparty: Value,
    pub description: Option<String>,
    /// QR code txid, when there is one.
    pub tx_id: Option<String>,
    pub failure_code: Option<String>,
    pub failed_reason: Option<String>,
    /// The fraud-triage decision (score, action, reasons).
    #[schema(value_type = Option<Object>)]
    pub fraud: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Transfer> for TransferView {
    fn from(t: &Transfer) -> TransferView {
        let text = |name: &str| t.details[name].as_str().map(str::to_owned);
        let mut counterparty = t.details["counterparty"].clone();
        if let Some(tax_id) = counterparty["taxId"].as_str() {
            counterparty["taxId"] = Value::String(pix_core::mask::mask_document(tax_id));
        }
        TransferView {
            id: t.id,
            end_to_end_id: t.end_to_end_id.clone(),
            transfer_type: t.direction.clone(),
            status: t.status.clone(),
            amount: Money::from_centavos(t.amount),
            fee: Money::from_centavos(t.fee),
            purpose: t.purpose.clone(),
            is_intra_psp: t.is_intra_psp,
            initiation_type: text("initiationType"),
            initiation_id: t.initiation_id,
            counterparty,
            description: text("description"),
            tx_id: text("txId"),
            failure_code: t.failure_code.clone(),
            failed_reason: t.failure_reason.clone(),
            fraud: Some(t.details["fraud"].clone()).filter(|f| !f.is_null()),
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
        }
    }
}

// ---------------------------------------------------------------------------------- helpers

/// Records the TRANSFER/{CASHOUT|CASHIN} event of `t`'s current state in `tx`.
async fn record_event(tx: &mut Tx, t: &Transfer, now: DateTime<Utc>) -> ApiResult<()> {
    let payload = serde_json::to_value(TransferView::from(t)).map_err(ApiError::internal)?;
    let id = t.id.to_string();
    let event = OutboundEvent {
        tenant_id: t.tenant_id,
        flow_type: "TRANSFER",
        entity_type: &t.direction,
        entity_id: &id,
        payload: &payload,
    };
    record_outbound_event(tx, &event, now).await?;
    Ok(())
}

/// Saves `t` (optimistically, by version) with its event, in one transaction; `false` when
/// another writer moved the row first (the caller reloads and re-decides).
async fn save_with_event(state: &AppState, t: &mut Transfer) -> ApiResult<bool> {
    let now = state.clock.now();
    t.updated_at = now;
    let mut tx = state.store.begin().await?;
    if !pix_store::transfers::save_transfer(&mut tx, t).await? {
        return Ok(false);
    }
    record_event(&mut tx, t, now).await?;
    tx.commit().await?;
    t.version += 1;
    Ok(true)
}

/// Marks `t` FAILED with a code and reason.
fn fail(t: &mut Transfer, code: &str, reason: impl Into<String>, now: DateTime<Utc>) {
    t.status = "FAILED".into();
    t.failure_code = Some(code.to_owned());
    t.failure_reason = Some(reason.into());
    t.completed_at = Some(now);
}

/// Midnight starting the Brasília day of `now`.
fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    brasilia_day_start(brasilia_date(now))
}

/// Days since a `YYYY-MM-DD` (or RFC 3339) date; `None` when unknown.
fn days_since(date: Option<&str>, now: DateTime<Utc>) -> Option<u32> {
    let date = date?;
    let day = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    u32::try_from((now.date_naive() - day).num_days().max(0)).ok()
}

fn policy_person(p: pix_core::document::PersonType) -> pix_policy::PersonType {
    match p {
        pix_core::document::PersonType::Natural => pix_policy::PersonType::Natural,
        pix_core::document::PersonType::Legal => pix_policy::PersonType::Legal,
    }
}

/// The velocity part of a fraud-triage input, from the last hour's and last day's activity.
fn velocity(hour: &pix_store::transfers::Activity, day: &pix_store::transfers::Activity) -> pix_policy::Velocity {
    pix_policy::Velocity {
        count_1h: sat(hour.count),
        amount_1h: hour.volume,
        count_24h: sat(day.count),
        amount_24h: day.volume,
        distinct_counterparties_24h: sat(day.distinct_counterparties),
    }
}

/// A fraud-triage decision as kept on the transfer (`details.fraud`).
fn fraud_details(fraud: &pix_policy::FraudDecision, policy_sha256: &str) -> Value {
    serde_json::json!({"score": fraud.score, "action": fraud.action, "reasons": fraud.reasons, "policySha256": policy_sha256})
}

/// The account's Midaz segment (fee tiers by segment), from account metadata `segment`.
fn account_segment(ledger: &pix_integrations::midaz::LedgerAccount) -> String {
    ledger.metadata.as_ref().and_then(|m| m.get("segment")).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// Counts for policy inputs (`u32`), saturating.
fn sat(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A Midaz idempotency key for a money-moving step, kept long enough to outlive any retry: with
/// Midaz's default of 300 s, a job resumed after an outage could post the same hold twice.
fn ledger_key(key: String) -> pix_integrations::IdempotencyKey {
    pix_integrations::IdempotencyKey::new(key).with_ttl(Duration::from_secs(7 * 24 * 3600))
}

/// Workers and inbound handlers answer with `JobError`: a storage or upstream hiccup is retried.
fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn account_age_from_dates() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(days_since(Some("2026-03-01"), now), Some(9));
        assert_eq!(days_since(Some("2026-03-01T10:00:00Z"), now), Some(9));
        assert_eq!(days_since(Some("garbage"), now), None);
        assert_eq!(days_since(None, now), None);
    }
}
