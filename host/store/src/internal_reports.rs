//! trck.002 reporting of intra-PSP settlements (issue #14): each completed intra-PSP transfer or
//! refund is recorded here in the transaction that completes it, and reported to BACEN through
//! BTG by the reporter (`pix_app::reports`), never blocking or rolling back the money.
//!
//! One row per settlement, with its report's lifecycle ([`ReportState`]):
//! `PENDING` (to submit; `next_attempt_at` is when, and also the claim's lease) → `SUBMITTED`
//! (BTG accepted the report: its id and `accepted_at` are stored) → `CONFIRMED` | `ERROR`
//! (camt.025). A rejected row goes back to `PENDING` once, alone in a report of its own; a second
//! rejection leaves it in `ERROR` for operators.
//!
//! Every query is scoped by tenant, except the reporter's claims and its gauge (an operator
//! process working for every tenant) and the operator listing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

pix_core::text_enum! {
    /// What a settlement is, for BACEN.
    pub enum InternalKind {
        Transfer = "TRANSFER",
        Refund = "REFUND",
    }
}

pix_core::text_enum! {
    /// Where a settlement's trck.002 report stands.
    pub enum ReportState {
        /// Not accepted by BTG yet: a submission is due at `next_attempt_at`.
        Pending = "PENDING",
        /// BTG accepted the report (status PROCESSING); the camt.025 has not arrived.
        Submitted = "SUBMITTED",
        /// BACEN confirmed it (camt.025).
        Confirmed = "CONFIRMED",
        /// BACEN rejected it twice (camt.025): left for operators.
        Error = "ERROR",
    }
}

/// One intra-PSP settlement to report.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalSettlement {
    pub tenant_id: Uuid,
    /// The transfer's EndToEndId (a refund: the original's).
    pub end_to_end_id: String,
    /// A refund's return id (`D…`); none for a transfer.
    pub return_identification: Option<String>,
    pub kind: InternalKind,
    /// Centavos.
    pub amount: i64,
    pub debtor_tax_id: String,
    pub creditor_tax_id: String,
    pub settled_at: DateTime<Utc>,
}

/// A recorded settlement and where its report stands.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalReport {
    pub id: Uuid,
    pub settlement: InternalSettlement,
    pub state: ReportState,
    /// Our report id (BTG's idempotency key), once the row joined a batch.
    pub report_id: Option<String>,
    /// BTG's id of the report (`pactualId`).
    pub btg_report_id: Option<String>,
    /// camt.025 receipt code.
    pub receipt_code: Option<String>,
    /// Failed submissions of the current report.
    pub attempts: i64,
    /// camt.025 rejections so far.
    pub rejections: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The settlement's completion: where the 300 s SLA starts.
    pub recorded_at: DateTime<Utc>,
    /// When BTG accepted the report holding it (the SLA's end).
    pub accepted_at: Option<DateTime<Utc>>,
    /// When the camt.025 (or the fallback query) answered.
    pub answered_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, tenant_id, end_to_end_id, return_identification, kind, amount, debtor_tax_id, \
    creditor_tax_id, settled_at, status, report_id, btg_report_id, receipt_code, attempts, rejections, \
    next_attempt_at, last_error, recorded_at, accepted_at, answered_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    tenant_id: String,
    end_to_end_id: String,
    return_identification: String,
    kind: InternalKind,
    amount: i64,
    debtor_tax_id: String,
    creditor_tax_id: String,
    settled_at: DateTime<Utc>,
    status: ReportState,
    report_id: Option<String>,
    btg_report_id: Option<String>,
    receipt_code: Option<String>,
    attempts: i64,
    rejections: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    recorded_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    answered_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for InternalReport {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<InternalReport> {
        Ok(InternalReport {
            id: parse_uuid(&r.id)?,
            settlement: InternalSettlement {
                tenant_id: parse_uuid(&r.tenant_id)?,
                end_to_end_id: r.end_to_end_id,
                return_identification: Some(r.return_identification).filter(|s| !s.is_empty()),
                kind: r.kind,
                amount: r.amount,
                debtor_tax_id: r.debtor_tax_id,
                creditor_tax_id: r.creditor_tax_id,
                settled_at: r.settled_at,
            },
            state: r.status,
            report_id: r.report_id,
            btg_report_id: r.btg_report_id,
            receipt_code: r.receipt_code,
            attempts: r.attempts,
            rejections: r.rejections,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            recorded_at: r.recorded_at,
            accepted_at: r.accepted_at,
            answered_at: r.answered_at,
            updated_at: r.updated_at,
        })
    }
}

fn rows(rows: Vec<Row>) -> StoreResult<Vec<InternalReport>> {
    rows.into_iter().map(InternalReport::try_from).collect()
}

/// Records a settlement to report, in the transaction that completes it. Idempotent per
/// (tenant, EndToEndId, return identification): recording it again changes nothing. Its
/// completion (`settled_at`) is where the reporting SLA starts, and it is due at once.
///
/// A refund without its return identification is refused (`Conflict`): it would collide with
/// the original transfer's row and never be reported.
pub async fn record_internal_settlement(tx: &mut Tx, s: &InternalSettlement) -> StoreResult<()> {
    let return_id = s.return_identification.as_deref().unwrap_or_default();
    if s.kind == InternalKind::Refund && return_id.is_empty() {
        return Err(StoreError::Conflict("an intra-PSP refund is reported with its return identification".into()));
    }
    let sql = format!(
        "INSERT INTO internal_reports ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, 0, 0, $9, NULL, $9, NULL, NULL, $9)
         ON CONFLICT DO NOTHING"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(Uuid::now_v7().to_string())
            .bind(s.tenant_id.to_string())
            .bind(&s.end_to_end_id)
            .bind(return_id)
            .bind(s.kind)
            .bind(s.amount)
            .bind(&s.debtor_tax_id)
            .bind(&s.creditor_tax_id)
            .bind(s.settled_at)
            .bind(ReportState::Pending)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Tenants with recorded settlements not in a report yet (the reporter's cross-tenant scan).
pub async fn tenants_with_unbatched(store: &Store, limit: i64) -> StoreResult<Vec<Uuid>> {
    let ids: Vec<String> = on_pool!(store.db(), pool => {
        sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM internal_reports WHERE status = $1 AND report_id IS NULL LIMIT $2",
        )
        .bind(ReportState::Pending)
        .bind(limit)
        .fetch_all(pool)
        .await
    })?;
    ids.iter().map(|s| parse_uuid(s)).collect()
}

/// Puts up to `limit` of the tenant's settlements not in a report yet into report `report_id`,
/// oldest first; returns how many. Concurrent reporters never put a row in two reports.
pub async fn form_batch(store: &Store, tenant: Uuid, report_id: &str, limit: i64) -> StoreResult<u64> {
    let lock = match store.backend() {
        crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        crate::Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE internal_reports SET report_id = $3
         WHERE tenant_id = $1 AND status = $2 AND report_id IS NULL AND id IN (
             SELECT id FROM internal_reports
             WHERE tenant_id = $1 AND status = $2 AND report_id IS NULL
             ORDER BY recorded_at, id
             LIMIT $4 {lock})"
    );
    let n = on_pool!(store.db(), pool => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant.to_string())
            .bind(ReportState::Pending)
            .bind(report_id)
            .bind(limit)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n)
}

/// Claims whole reports in `state` (`Pending`: due for submission; `Submitted`: due for a status
/// query) whose rows are due at `now`, up to `max_reports`, and leaves them to this caller until
/// `lease_until`. Returns their rows; group them by `report_id`. A report is claimed whole, so a
/// retry resubmits exactly the rows its idempotency key stood for.
pub async fn claim_due_reports(
    store: &Store,
    state: ReportState,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    max_reports: i64,
) -> StoreResult<Vec<InternalReport>> {
    let sql = format!(
        "UPDATE internal_reports SET next_attempt_at = $3
         WHERE status = $1 AND next_attempt_at <= $2 AND report_id IN (
             SELECT report_id FROM internal_reports
             WHERE status = $1 AND report_id IS NOT NULL AND next_attempt_at <= $2
             GROUP BY report_id
             ORDER BY MIN(next_attempt_at), report_id
             LIMIT $4)
         RETURNING {COLUMNS}"
    );
    let found: Vec<Row> = on_pool!(store.db(), pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(state)
            .bind(now)
            .bind(lease_until)
            .bind(max_reports)
            .fetch_all(pool)
            .await
    })?;
    rows(found)
}

/// BTG accepted report `report_id` (id `btg_report_id`): its pending rows become SUBMITTED, with
/// a status query due at `check_at` if no camt.025 comes. Returns the rows moved.
pub async fn mark_submitted(
    store: &Store,
    tenant: Uuid,
    report_id: &str,
    btg_report_id: &str,
    now: DateTime<Utc>,
    check_at: DateTime<Utc>,
) -> StoreResult<Vec<InternalReport>> {
    let sql = format!(
        "UPDATE internal_reports SET status = $3, btg_report_id = $4, accepted_at = $5, next_attempt_at = $6,
             last_error = NULL, updated_at = $5
         WHERE tenant_id = $1 AND report_id = $2 AND status = $7
         RETURNING {COLUMNS}"
    );
    let found: Vec<Row> = on_pool!(store.db(), pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant.to_string())
            .bind(report_id)
            .bind(ReportState::Submitted)
            .bind(btg_report_id)
            .bind(now)
            .bind(check_at)
            .bind(ReportState::Pending)
            .fetch_all(pool)
            .await
    })?;
    rows(found)
}

/// A submission of report `report_id` failed: it stays PENDING (same report id), due again at
/// `retry_at`.
pub async fn mark_failed(
    store: &Store,
    tenant: Uuid,
    report_id: &str,
    error: &str,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> StoreResult<u64> {
    let n = on_pool!(store.db(), pool => {
        sqlx::query(
            "UPDATE internal_reports SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4,
                 updated_at = $5
             WHERE tenant_id = $1 AND report_id = $2 AND status = $6",
        )
        .bind(tenant.to_string())
        .bind(report_id)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .bind(ReportState::Pending)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n)
}

/// A submitted report is still processing at BTG: asks again at `check_at`.
pub async fn recheck_later(
    store: &Store,
    tenant: Uuid,
    report_id: &str,
    now: DateTime<Utc>,
    check_at: DateTime<Utc>,
) -> StoreResult<u64> {
    let n = on_pool!(store.db(), pool => {
        sqlx::query(
            "UPDATE internal_reports SET next_attempt_at = $3, updated_at = $4
             WHERE tenant_id = $1 AND report_id = $2 AND status = $5",
        )
        .bind(tenant.to_string())
        .bind(report_id)
        .bind(check_at)
        .bind(now)
        .bind(ReportState::Submitted)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n)
}

/// camt.025 confirmed report `report_id`: its rows still PENDING or SUBMITTED become CONFIRMED
/// (a row whose acceptance answer was lost gets `accepted_at = now`). Returns the rows moved; a
/// redelivered receipt moves none.
pub async fn confirm(
    store: &Store,
    tenant: Uuid,
    report_id: &str,
    btg_report_id: &str,
    receipt_code: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<InternalReport>> {
    let sql = format!(
        "UPDATE internal_reports SET status = $3, btg_report_id = $4, receipt_code = $5,
             accepted_at = COALESCE(accepted_at, $6), answered_at = $6, updated_at = $6, last_error = NULL
         WHERE tenant_id = $1 AND report_id = $2 AND status IN ($7, $8)
         RETURNING {COLUMNS}"
    );
    let found: Vec<Row> = on_pool!(store.db(), pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant.to_string())
            .bind(report_id)
            .bind(ReportState::Confirmed)
            .bind(btg_report_id)
            .bind(receipt_code)
            .bind(now)
            .bind(ReportState::Pending)
            .bind(ReportState::Submitted)
            .fetch_all(pool)
            .await
    })?;
    rows(found)
}

/// What a camt.025 rejection did to a report's rows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Rows rejected for the first time: back to PENDING, each alone in a report whose id is the
    /// row's own, due at once (so one bad transaction cannot hold back the others of its batch).
    pub requeued: u64,
    /// Rows rejected again: ERROR, for operators.
    pub failed: u64,
}

/// camt.025 rejected report `report_id`. A redelivered rejection moves nothing (the rows left the
/// report).
pub async fn reject(
    store: &Store,
    tenant: Uuid,
    report_id: &str,
    receipt_code: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Rejection> {
    let why = format!("rejected by BACEN (camt.025 {})", receipt_code.unwrap_or("without a code"));
    let mut tx = store.begin().await?;
    let failed = on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE internal_reports SET status = $3, receipt_code = $4, rejections = rejections + 1,
                 answered_at = $5, updated_at = $5, last_error = $6
             WHERE tenant_id = $1 AND report_id = $2 AND status IN ($7, $8) AND rejections >= 1",
        )
        .bind(tenant.to_string())
        .bind(report_id)
        .bind(ReportState::Error)
        .bind(receipt_code)
        .bind(now)
        .bind(&why)
        .bind(ReportState::Pending)
        .bind(ReportState::Submitted)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    let requeued = on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE internal_reports SET status = $3, report_id = id, btg_report_id = NULL, receipt_code = $4,
                 rejections = rejections + 1, attempts = 0, accepted_at = NULL, answered_at = $5,
                 next_attempt_at = $5, updated_at = $5, last_error = $6
             WHERE tenant_id = $1 AND report_id = $2 AND status IN ($3, $7) AND rejections = 0",
        )
        .bind(tenant.to_string())
        .bind(report_id)
        .bind(ReportState::Pending)
        .bind(receipt_code)
        .bind(now)
        .bind(&why)
        .bind(ReportState::Submitted)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(Rejection { requeued, failed })
}

/// Settlements completed before `before` whose report BTG has not accepted yet, across tenants
/// (the reporter's SLA gauge).
pub async fn count_unreported(store: &Store, before: DateTime<Utc>) -> StoreResult<i64> {
    let n = on_pool!(store.db(), pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM internal_reports WHERE status = $1 AND recorded_at < $2")
            .bind(ReportState::Pending)
            .bind(before)
            .fetch_one(pool)
            .await
    })?;
    Ok(n)
}

/// Filters of the operator listing.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub tenant_id: Option<Uuid>,
    pub state: Option<ReportState>,
    pub end_to_end_id: Option<String>,
}

/// The tenant's settlements (optionally one EndToEndId), oldest first.
pub async fn tenant_reports(
    store: &Store,
    tenant: Uuid,
    end_to_end_id: Option<&str>,
) -> StoreResult<Vec<InternalReport>> {
    list(
        store,
        &ReportFilter { tenant_id: Some(tenant), state: None, end_to_end_id: end_to_end_id.map(Into::into) },
        10_000,
    )
    .await
}

/// Recorded settlements matching `filter`, oldest first, at most `limit` (operators: across
/// tenants when `filter.tenant_id` is `None`).
pub async fn list(store: &Store, filter: &ReportFilter, limit: i64) -> StoreResult<Vec<InternalReport>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM internal_reports
         WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR end_to_end_id = $3)
         ORDER BY recorded_at, id
         LIMIT $4"
    );
    let found: Vec<Row> = on_pool!(store.db(), pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(filter.tenant_id.map(|t| t.to_string()))
            .bind(filter.state)
            .bind(filter.end_to_end_id.as_deref())
            .bind(limit)
            .fetch_all(pool)
            .await
    })?;
    rows(found)
}
