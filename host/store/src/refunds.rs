//! Refund storage: returns we send (CASHOUT) and returns we receive (CASHIN), and the amount of
//! each transfer that refunds have taken. Every query is scoped by tenant, except the sweeper's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pix_core::refund::{
    RefundColumns, RefundOperation, RefundReason, RefundState, RefundStatus, RefundStep, SplitSource,
};
use pix_core::transfer::{Direction, Failure};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::query::{Where, bind_all, fetch_page, order};
use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

/// A client's free-form refund metadata (at most 50 keys, checked by the API).
pub type Metadata = BTreeMap<String, Value>;

/// A refund. Its state is stored in columns and read back only as a [`RefundState`].
#[derive(Debug, Clone, PartialEq)]
pub struct Refund {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The account debited (CASHOUT) or credited (CASHIN).
    pub account_id: Uuid,
    /// The original transfer: a cash-in we return, or a cash-out returned to us.
    pub transfer_id: Uuid,
    pub state: RefundState,
    pub original_end_to_end_id: String,
    /// Centavos.
    pub amount: i64,
    pub reason: RefundReason,
    pub description: Option<String>,
    pub metadata: Metadata,
    /// The accounts debited, each for its part (CASHOUT); the credited account (CASHIN).
    pub operations: Vec<RefundOperation>,
    pub split: SplitSource,
    /// A refund of an intra-PSP cash-in: settled internally, never through BTG.
    pub is_intra_psp: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Refund {
    /// CASHOUT (we return) or CASHIN (returned to us).
    pub fn kind(&self) -> Direction {
        self.state.kind()
    }

    pub fn status(&self) -> RefundStatus {
        self.state.status()
    }

    pub fn is_final(&self) -> bool {
        self.status().is_final()
    }

    /// The `D…` id, once known (see [`RefundState::return_id`]).
    pub fn return_end_to_end_id(&self) -> Option<&str> {
        self.state.return_id()
    }
}

const REFUND_COLUMNS: &str = "id, tenant_id, account_id, kind, transfer_id, status, step, original_end_to_end_id, \
    return_end_to_end_id, amount, reason, description, metadata, operations, split, ledger_tx_id, failure_code, \
    failure_reason, version, created_at, updated_at, completed_at, is_intra_psp";

#[derive(sqlx::FromRow)]
struct RefundRow {
    id: String,
    tenant_id: String,
    account_id: String,
    kind: Direction,
    transfer_id: String,
    status: RefundStatus,
    step: RefundStep,
    original_end_to_end_id: String,
    return_end_to_end_id: Option<String>,
    amount: i64,
    reason: RefundReason,
    description: Option<String>,
    metadata: Json<Metadata>,
    operations: Json<Vec<RefundOperation>>,
    split: Json<SplitSource>,
    ledger_tx_id: Option<String>,
    failure_code: Option<String>,
    failure_reason: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    is_intra_psp: bool,
}

impl TryFrom<RefundRow> for Refund {
    type Error = StoreError;
    fn try_from(r: RefundRow) -> StoreResult<Refund> {
        let failure = r.failure_code.map(|code| Failure { code, reason: r.failure_reason.unwrap_or_default() });
        let columns = RefundColumns {
            status: r.status,
            step: r.step,
            ledger_tx_id: r.ledger_tx_id,
            return_end_to_end_id: r.return_end_to_end_id,
            failure,
        };
        let state = RefundState::from_columns(r.kind, columns)
            .map_err(|e| StoreError::Corrupt(format!("refund {}: {e}", r.id)))?;
        Ok(Refund {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: parse_uuid(&r.account_id)?,
            transfer_id: parse_uuid(&r.transfer_id)?,
            state,
            original_end_to_end_id: r.original_end_to_end_id,
            amount: r.amount,
            reason: r.reason,
            description: r.description,
            metadata: r.metadata.0,
            operations: r.operations.0,
            split: r.split.0,
            is_intra_psp: r.is_intra_psp,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        })
    }
}

/// Filters of `GET /v1/refunds`.
#[derive(Debug, Clone, Default)]
pub struct RefundFilter {
    /// Matches the original or the return EndToEndId.
    pub end_to_end_id: Option<String>,
    pub status: Option<RefundStatus>,
    pub kind: Option<Direction>,
    pub modified_after: Option<DateTime<Utc>>,
    pub modified_before: Option<DateTime<Utc>>,
    pub is_intra_psp: Option<bool>,
    pub descending: bool,
}

/// Inserts a refund; a second return of a kind with the same return EndToEndId is a `Conflict` (this is
/// what makes a redelivered `PIX_REVERSAL_INBOUND` credit once).
pub async fn insert_refund(tx: &mut Tx, r: &Refund) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
         $15, $16, $17, $18, $19, $20, $21, $22, $23)"
    );
    let c = r.state.columns();
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(r.id.to_string())
            .bind(r.tenant_id.to_string())
            .bind(r.account_id.to_string())
            .bind(r.kind())
            .bind(r.transfer_id.to_string())
            .bind(c.status)
            .bind(c.step)
            .bind(&r.original_end_to_end_id)
            .bind(&c.return_end_to_end_id)
            .bind(r.amount)
            .bind(r.reason)
            .bind(&r.description)
            .bind(Json(&r.metadata))
            .bind(Json(&r.operations))
            .bind(Json(&r.split))
            .bind(&c.ledger_tx_id)
            .bind(c.failure.as_ref().map(|f| f.code.as_str()))
            .bind(c.failure.as_ref().map(|f| f.reason.as_str()))
            .bind(r.version)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.completed_at)
            .bind(r.is_intra_psp)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            StoreError::Conflict("a refund with this return EndToEndId exists".into())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Writes the state and times of `r` if nobody changed the row since it was read (its
/// `version`); returns `false` when the row moved on.
pub async fn save_refund(tx: &mut Tx, r: &Refund) -> StoreResult<bool> {
    let c = r.state.columns();
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE refunds SET status = $3, step = $4, return_end_to_end_id = $5, ledger_tx_id = $6,
                 failure_code = $7, failure_reason = $8, updated_at = $9, completed_at = $10, sweep_after = NULL,
                 version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $11",
        )
        .bind(r.tenant_id.to_string())
        .bind(r.id.to_string())
        .bind(c.status)
        .bind(c.step)
        .bind(&c.return_end_to_end_id)
        .bind(&c.ledger_tx_id)
        .bind(c.failure.as_ref().map(|f| f.code.as_str()))
        .bind(c.failure.as_ref().map(|f| f.reason.as_str()))
        .bind(r.updated_at)
        .bind(r.completed_at)
        .bind(r.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Takes `amount` centavos of `transfer` for a refund, if what refunds took so far plus
/// `amount` stays within the transfer's amount; `false` otherwise. One conditional update, so
/// concurrent refunds of one transfer cannot together exceed it.
pub async fn reserve_refund(tx: &mut Tx, tenant: Uuid, transfer: Uuid, amount: i64) -> StoreResult<bool> {
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE transfers SET refunded = refunded + $3
             WHERE tenant_id = $1 AND id = $2 AND refunded + $3 <= amount",
        )
        .bind(tenant.to_string())
        .bind(transfer.to_string())
        .bind(amount)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Gives back what a failed refund had reserved.
pub async fn unreserve_refund(tx: &mut Tx, tenant: Uuid, transfer: Uuid, amount: i64) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query("UPDATE transfers SET refunded = refunded - $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(transfer.to_string())
            .bind(amount)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Claims up to `limit` refunds left in NEW, HELD or SENT since before `stale_before`, and
/// leaves them to this caller until `retry_at` (see `transfers::claim_stale_transfers`).
pub async fn claim_stale_refunds(
    store: &Store,
    stale_before: DateTime<Utc>,
    sent_stale_before: DateTime<Utc>,
    limit: i64,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> StoreResult<Vec<Refund>> {
    let lock = match store.backend() {
        crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        crate::Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE refunds SET sweep_after = $1
         WHERE id IN (
             SELECT id FROM refunds
             WHERE step IN ('NEW', 'HELD', 'SENT')
               AND (sweep_after IS NULL OR sweep_after <= $2)
               AND ((step IN ('NEW', 'HELD') AND updated_at < $3) OR (step = 'SENT' AND updated_at < $4))
             ORDER BY updated_at, id
             LIMIT $5 {lock})
         RETURNING {REFUND_COLUMNS}"
    );
    let rows: Vec<RefundRow> = on_pool!(store.db(), pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(retry_at)
            .bind(now)
            .bind(stale_before)
            .bind(sent_stale_before)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?;
    rows.into_iter().map(Refund::try_from).collect()
}

impl Store {
    /// Centavos of `transfer` that refunds in flight or completed have taken.
    pub async fn refunded_amount(&self, tenant: Uuid, transfer: Uuid) -> StoreResult<i64> {
        let refunded: Option<i64> = on_pool!(self.db(), pool => {
            sqlx::query_scalar("SELECT refunded FROM transfers WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(transfer.to_string())
                .fetch_optional(pool)
                .await
        })?;
        Ok(refunded.unwrap_or(0))
    }

    async fn one_refund(&self, clause: &str, binds: &[&str]) -> StoreResult<Option<Refund>> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE {clause}");
        let row: Option<RefundRow> = on_pool!(self.db(), pool => {
            let mut q = sqlx::query_as::<_, RefundRow>(sqlx::AssertSqlSafe(sql.as_str()));
            for b in binds {
                q = q.bind(*b);
            }
            q.fetch_optional(pool).await
        })?;
        row.map(Refund::try_from).transpose()
    }

    pub async fn refund(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<Refund>> {
        self.one_refund("tenant_id = $1 AND id = $2", &[&tenant.to_string(), &id.to_string()]).await
    }

    /// The refund of `kind` known by this return EndToEndId (an intra-PSP refund and the return
    /// credited for it share one).
    pub async fn refund_by_return_id(
        &self,
        tenant: Uuid,
        kind: Direction,
        return_end_to_end_id: &str,
    ) -> StoreResult<Option<Refund>> {
        self.one_refund(
            "tenant_id = $1 AND kind = $2 AND return_end_to_end_id = $3",
            &[&tenant.to_string(), kind.as_str(), return_end_to_end_id],
        )
        .await
    }

    /// The refunds of one original transfer, oldest first.
    pub async fn refunds_of_transfer(&self, tenant: Uuid, transfer: Uuid) -> StoreResult<Vec<Refund>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE tenant_id = $1 AND transfer_id = $2 ORDER BY created_at, id"
        );
        let rows: Vec<RefundRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(transfer.to_string())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Refund::try_from).collect()
    }

    /// One account's refunds (every account's with `None`), filtered and paged; returns the page
    /// and the total.
    pub async fn list_refunds(
        &self,
        tenant: Uuid,
        account: Option<Uuid>,
        f: &RefundFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Refund>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("account_id = ?", account.map(|a| a.to_string()).as_deref());
        w.text("(original_end_to_end_id = ? OR return_end_to_end_id = ?)", f.end_to_end_id.as_deref());
        w.text("status = ?", f.status.map(RefundStatus::as_str));
        w.text("kind = ?", f.kind.map(Direction::as_str));
        w.time("updated_at > ?", f.modified_after);
        w.time("updated_at < ?", f.modified_before);
        w.flag("is_intra_psp", f.is_intra_psp);
        let (rows, total) = fetch_page!(
            self,
            RefundRow,
            REFUND_COLUMNS,
            "refunds",
            w,
            order("created_at", f.descending),
            limit,
            offset
        );
        Ok((rows.into_iter().map(Refund::try_from).collect::<StoreResult<_>>()?, total))
    }
}

/// A return BTG reported that matches no completed cash-out of the tenant.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UnmatchedReturn {
    #[sqlx(try_from = "String")]
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub tenant_id: Uuid,
    pub return_end_to_end_id: String,
    pub original_end_to_end_id: String,
    /// Centavos.
    pub amount: i64,
    pub reason: String,
    /// Why it was not credited.
    pub why: String,
    pub received_at: DateTime<Utc>,
}

/// Records an unmatched return once (a redelivery changes nothing).
pub async fn record_unmatched_return(store: &Store, u: &UnmatchedReturn) -> StoreResult<()> {
    on_pool!(store.db(), pool => {
        sqlx::query(
            "INSERT INTO unmatched_returns (id, tenant_id, return_end_to_end_id, original_end_to_end_id, amount, reason,
                 why, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, return_end_to_end_id) DO NOTHING",
        )
        .bind(u.id.to_string())
        .bind(u.tenant_id.to_string())
        .bind(&u.return_end_to_end_id)
        .bind(&u.original_end_to_end_id)
        .bind(u.amount)
        .bind(&u.reason)
        .bind(&u.why)
        .bind(u.received_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

impl Store {
    /// Unmatched returns, newest first, across tenants (an operator's queue).
    pub async fn unmatched_returns(&self, limit: i64) -> StoreResult<Vec<UnmatchedReturn>> {
        let rows = on_pool!(self.db(), pool => {
            sqlx::query_as::<_, UnmatchedReturn>(
                "SELECT id, tenant_id, return_end_to_end_id, original_end_to_end_id, amount, reason, why, received_at
                 FROM unmatched_returns ORDER BY received_at DESC, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}
