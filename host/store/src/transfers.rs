//! Transfer storage: cash-out initiations and transfers in both directions. Every query is
//! scoped by tenant, except the review queue, which is an operator's view across tenants.

use chrono::{DateTime, Utc};
use pix_core::transfer::{
    Direction, Failure, IncidentKind, InitiationDetails, InitiationType, Purpose, StateColumns, Step, TransferDetails,
    TransferState, TransferStatus,
};
use sqlx::types::Json;
use uuid::Uuid;

use crate::query::{Bind, Where, bind_all, fetch_page, opt_uuid, order};
use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

/// A validated cash-out destination and amount (`POST /v1/transfers/cashout/initiate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Initiation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub initiation_type: InitiationType,
    /// Centavos.
    pub amount: i64,
    pub end_to_end_id: String,
    pub is_intra_psp: bool,
    /// Destination and what was resolved to reach it (the API view is built from it).
    pub details: InitiationDetails,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const INITIATION_COLUMNS: &str =
    "id, tenant_id, account_id, initiation_type, amount, end_to_end_id, is_intra_psp, details, expires_at, created_at";

#[derive(sqlx::FromRow)]
struct InitiationRow {
    id: String,
    tenant_id: String,
    account_id: String,
    initiation_type: InitiationType,
    amount: i64,
    end_to_end_id: String,
    is_intra_psp: bool,
    details: Json<InitiationDetails>,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<InitiationRow> for Initiation {
    type Error = StoreError;
    fn try_from(r: InitiationRow) -> StoreResult<Initiation> {
        Ok(Initiation {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: parse_uuid(&r.account_id)?,
            initiation_type: r.initiation_type,
            amount: r.amount,
            end_to_end_id: r.end_to_end_id,
            is_intra_psp: r.is_intra_psp,
            details: r.details.0,
            expires_at: r.expires_at,
            created_at: r.created_at,
        })
    }
}

/// A transfer. Its state (`status`, `step`, the ledger transaction, the failure and any
/// incident) is stored in columns and read back only as a [`TransferState`]; a row that no
/// transition produces is a [`StoreError::Corrupt`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub state: TransferState,
    pub end_to_end_id: String,
    pub initiation_id: Option<Uuid>,
    /// Centavos sent (cash-out) or received (cash-in).
    pub amount: i64,
    /// Centavos charged by the fee policy.
    pub fee: i64,
    pub purpose: Purpose,
    pub is_intra_psp: bool,
    /// The other side's CPF/CNPJ, for velocity and first-time-counterparty checks.
    pub counterparty: Option<String>,
    pub details: TransferDetails,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Transfer {
    pub fn direction(&self) -> Direction {
        self.state.direction()
    }

    pub fn status(&self) -> TransferStatus {
        self.state.status()
    }

    /// COMPLETED, FAILED, CANCELLED and RECONCILIATION_REQUIRED.
    pub fn is_final(&self) -> bool {
        self.status().is_final()
    }
}

const TRANSFER_COLUMNS: &str = "id, tenant_id, account_id, direction, status, step, end_to_end_id, initiation_id, \
    amount, fee, purpose, is_intra_psp, counterparty, ledger_tx_id, failure_code, failure_reason, details, version, \
    created_at, updated_at, completed_at, incident, correction_tx_id";

#[derive(sqlx::FromRow)]
struct TransferRow {
    id: String,
    tenant_id: String,
    account_id: String,
    direction: Direction,
    status: TransferStatus,
    step: Step,
    end_to_end_id: String,
    initiation_id: Option<String>,
    amount: i64,
    fee: i64,
    purpose: Purpose,
    is_intra_psp: bool,
    counterparty: Option<String>,
    ledger_tx_id: Option<String>,
    failure_code: Option<String>,
    failure_reason: Option<String>,
    details: Json<TransferDetails>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    incident: Option<IncidentKind>,
    correction_tx_id: Option<String>,
}

impl TryFrom<TransferRow> for Transfer {
    type Error = StoreError;
    fn try_from(r: TransferRow) -> StoreResult<Transfer> {
        let failure = match (r.failure_code, r.failure_reason) {
            (Some(code), reason) => Some(Failure { code, reason: reason.unwrap_or_default() }),
            (None, _) => None,
        };
        let columns = StateColumns {
            status: r.status,
            step: r.step,
            ledger_tx_id: r.ledger_tx_id,
            correction_tx_id: r.correction_tx_id,
            incident: r.incident,
            failure,
        };
        let state = TransferState::from_columns(r.direction, columns)
            .map_err(|e| StoreError::Corrupt(format!("transfer {}: {e}", r.id)))?;
        Ok(Transfer {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: parse_uuid(&r.account_id)?,
            state,
            end_to_end_id: r.end_to_end_id,
            initiation_id: opt_uuid(r.initiation_id)?,
            amount: r.amount,
            fee: r.fee,
            purpose: r.purpose,
            is_intra_psp: r.is_intra_psp,
            counterparty: r.counterparty,
            details: r.details.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        })
    }
}

/// Filters of `GET /v1/transfers`.
#[derive(Debug, Clone, Default)]
pub struct TransferFilter {
    pub end_to_end_id: Option<String>,
    pub status: Option<TransferStatus>,
    pub direction: Option<Direction>,
    pub modified_after: Option<DateTime<Utc>>,
    pub modified_before: Option<DateTime<Utc>>,
    pub is_intra_psp: Option<bool>,
    pub descending: bool,
}

/// An account's transfers in one direction since an instant (fee tiers, limits, velocity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub count: i64,
    /// Centavos.
    pub volume: i64,
    pub distinct_counterparties: i64,
    /// Transfers with the counterparty asked about, at any time.
    pub with_counterparty: i64,
}

pub async fn insert_initiation(tx: &mut Tx, i: &Initiation) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO cashout_initiations ({INITIATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(i.id.to_string())
            .bind(i.tenant_id.to_string())
            .bind(i.account_id.to_string())
            .bind(i.initiation_type)
            .bind(i.amount)
            .bind(&i.end_to_end_id)
            .bind(i.is_intra_psp)
            .bind(Json(&i.details))
            .bind(i.expires_at)
            .bind(i.created_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Inserts a transfer; a second transfer for the same initiation, or the same EndToEndId in
/// the same direction, is a `Conflict` (this is what makes processing and cash-in idempotent).
pub async fn insert_transfer(tx: &mut Tx, t: &Transfer) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
    );
    let c = t.state.columns();
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(t.id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(t.account_id.to_string())
            .bind(t.direction())
            .bind(c.status)
            .bind(c.step)
            .bind(&t.end_to_end_id)
            .bind(t.initiation_id.map(|i| i.to_string()))
            .bind(t.amount)
            .bind(t.fee)
            .bind(t.purpose)
            .bind(t.is_intra_psp)
            .bind(&t.counterparty)
            .bind(&c.ledger_tx_id)
            .bind(c.failure.as_ref().map(|f| f.code.as_str()))
            .bind(c.failure.as_ref().map(|f| f.reason.as_str()))
            .bind(Json(&t.details))
            .bind(t.version)
            .bind(t.created_at)
            .bind(t.updated_at)
            .bind(t.completed_at)
            .bind(c.incident)
            .bind(&c.correction_tx_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            StoreError::Conflict("a transfer for this initiation or EndToEndId exists".into())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Writes the state, fee, details and times of `t` if nobody changed the row since it was read
/// (its `version`); returns `false` when the row moved on. The stored version becomes
/// `t.version + 1`.
pub async fn save_transfer(tx: &mut Tx, t: &Transfer) -> StoreResult<bool> {
    let c = t.state.columns();
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE transfers SET status = $3, step = $4, fee = $5, ledger_tx_id = $6, failure_code = $7,
                 failure_reason = $8, details = $9, updated_at = $10, completed_at = $11, incident = $13,
                 correction_tx_id = $14, sweep_after = NULL, version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $12",
        )
        .bind(t.tenant_id.to_string())
        .bind(t.id.to_string())
        .bind(c.status)
        .bind(c.step)
        .bind(t.fee)
        .bind(&c.ledger_tx_id)
        .bind(c.failure.as_ref().map(|f| f.code.as_str()))
        .bind(c.failure.as_ref().map(|f| f.reason.as_str()))
        .bind(Json(&t.details))
        .bind(t.updated_at)
        .bind(t.completed_at)
        .bind(t.version)
        .bind(c.incident)
        .bind(&c.correction_tx_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// The account's initiation `id`, read in `tx`.
pub async fn cashout_initiation(tx: &mut Tx, tenant: Uuid, account: Uuid, id: Uuid) -> StoreResult<Option<Initiation>> {
    let sql = format!(
        "SELECT {INITIATION_COLUMNS} FROM cashout_initiations WHERE tenant_id = $1 AND account_id = $2 AND id = $3"
    );
    let row: Option<InitiationRow> = on_tx!(tx, conn => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant.to_string())
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(conn)
            .await
    })?;
    row.map(Initiation::try_from).transpose()
}

/// Takes `account`'s turn to admit a cash-out: concurrent admissions for one account wait for
/// each other until the transaction ends, so what they read of its activity is current.
pub async fn admit_account(tx: &mut Tx, tenant: Uuid, account: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO account_admissions (tenant_id, account_id, admitted_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, account_id) DO UPDATE SET admitted_at = excluded.admitted_at",
        )
        .bind(tenant.to_string())
        .bind(account.to_string())
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// How long each in-flight step may stay untouched before the sweeper looks at it.
#[derive(Debug, Clone, Copy)]
pub struct StaleAfter {
    /// NEW and HELD, intra-PSP DEBITED and DELIVERING (and a cash-in not yet credited or
    /// refused).
    pub pending: chrono::Duration,
    /// SENT: BTG's verdict is late.
    pub sent: chrono::Duration,
    /// IN_REVIEW: nobody decided.
    pub review: chrono::Duration,
    /// INCIDENT_OPEN: the ledger correction is retried.
    pub incident: chrono::Duration,
}

/// Claims up to `limit` transfers left in a non-final step for longer than `stale` allows, and
/// leaves them to this caller until `retry_at` (several sweepers never take the same one; one
/// that is not moved on is looked at again after `retry_at`). Across tenants: the sweeper is an
/// operator process and acts on each with that transfer's own tenant.
pub async fn claim_stale_transfers(
    store: &Store,
    stale: StaleAfter,
    limit: i64,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> StoreResult<Vec<Transfer>> {
    let due = "step IN ('NEW', 'HELD', 'SENT', 'INCIDENT_OPEN', 'DEBITED', 'DELIVERING')
               AND (sweep_after IS NULL OR sweep_after <= $2)
               AND ((status = 'IN_REVIEW' AND updated_at < $5)
                 OR (status <> 'IN_REVIEW' AND step IN ('NEW', 'HELD', 'DEBITED', 'DELIVERING') AND updated_at < $3)
                 OR (step = 'SENT' AND updated_at < $4)
                 OR (step = 'INCIDENT_OPEN' AND updated_at < $6))";
    let times = [now, now - stale.pending, now - stale.sent, now - stale.review, now - stale.incident];
    lease_for_sweep(store, due, &times, limit, retry_at).await
}

/// Claims up to `limit` cash-outs released because BTG had no record of them
/// (`BTG_NOT_FOUND`) since `since`, not looked at since `now`, and leaves them to this caller
/// until `retry_at`: BTG's "not found" may have been wrong, so the sweeper reads each back until
/// the watch ends. Across tenants, like `claim_stale_transfers`.
pub async fn claim_not_found_releases(
    store: &Store,
    since: DateTime<Utc>,
    limit: i64,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> StoreResult<Vec<Transfer>> {
    // The step and code are written into the statement, not bound, so the partial index
    // `transfers_not_found_watch` applies to every plan.
    let due = format!(
        "step = '{}' AND failure_code = '{}' AND updated_at >= $3 AND (sweep_after IS NULL OR sweep_after <= $2)",
        Step::Released.as_str(),
        pix_core::transfer::BTG_NOT_FOUND
    );
    lease_for_sweep(store, &due, &[now, since], limit, retry_at).await
}

/// Sets `sweep_after = retry_at` on the oldest `limit` transfers matching `due` and returns them.
/// `due` refers to `times` as `$2`, `$3`, …; rows another sweeper holds are skipped.
async fn lease_for_sweep(
    store: &Store,
    due: &str,
    times: &[DateTime<Utc>],
    limit: i64,
    retry_at: DateTime<Utc>,
) -> StoreResult<Vec<Transfer>> {
    let lock = match store.backend() {
        crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        crate::Backend::Sqlite => "",
    };
    let limit_param = times.len() + 2;
    let sql = format!(
        "UPDATE transfers SET sweep_after = $1
         WHERE id IN (SELECT id FROM transfers WHERE {due} ORDER BY updated_at, id LIMIT ${limit_param} {lock})
         RETURNING {TRANSFER_COLUMNS}"
    );
    let rows: Vec<TransferRow> = on_pool!(store.db(), pool => {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(retry_at);
        for time in times {
            query = query.bind(*time);
        }
        query.bind(limit).fetch_all(pool).await
    })?;
    rows.into_iter().map(Transfer::try_from).collect()
}

/// What `account` did in `direction` within each window (transfers created since each
/// instant), not counting failed or cancelled transfers, in one query; `counterparty` also
/// counts its transfers with that CPF/CNPJ at any time (`with_counterparty` of every window).
pub async fn account_activity(
    tx: &mut Tx,
    tenant: Uuid,
    account: Uuid,
    direction: Direction,
    windows: [DateTime<Utc>; 3],
    counterparty: Option<&str>,
) -> StoreResult<[Activity; 3]> {
    type Row = (i64, Option<i64>, i64, i64, Option<i64>, i64, i64, Option<i64>, i64, Option<i64>);
    let r: Row = on_tx!(tx, conn => {
        sqlx::query_as(
            "SELECT COUNT(*) FILTER (WHERE created_at >= $4),
                    CAST(SUM(amount) FILTER (WHERE created_at >= $4) AS BIGINT),
                    COUNT(DISTINCT counterparty) FILTER (WHERE created_at >= $4),
                    COUNT(*) FILTER (WHERE created_at >= $5),
                    CAST(SUM(amount) FILTER (WHERE created_at >= $5) AS BIGINT),
                    COUNT(DISTINCT counterparty) FILTER (WHERE created_at >= $5),
                    COUNT(*) FILTER (WHERE created_at >= $6),
                    CAST(SUM(amount) FILTER (WHERE created_at >= $6) AS BIGINT),
                    COUNT(DISTINCT counterparty) FILTER (WHERE created_at >= $6),
                    CAST(SUM(CASE WHEN counterparty = $7 THEN 1 ELSE 0 END) AS BIGINT)
             FROM transfers
             WHERE tenant_id = $1 AND account_id = $2 AND direction = $3 AND status NOT IN ('FAILED', 'CANCELLED')",
        )
        .bind(tenant.to_string())
        .bind(account.to_string())
        .bind(direction)
        .bind(windows[0])
        .bind(windows[1])
        .bind(windows[2])
        .bind(counterparty)
        .fetch_one(conn)
        .await
    })?;
    let with_counterparty = r.9.unwrap_or(0);
    let window = |count: i64, volume: Option<i64>, distinct: i64| Activity {
        count,
        volume: volume.unwrap_or(0),
        distinct_counterparties: distinct,
        with_counterparty,
    };
    Ok([window(r.0, r.1, r.2), window(r.3, r.4, r.5), window(r.6, r.7, r.8)])
}

impl Store {
    async fn transfers_where(&self, clause: &str, binds: Vec<Bind>) -> StoreResult<Vec<Transfer>> {
        let sql = format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE {clause} ORDER BY created_at, id");
        let rows: Vec<TransferRow> = on_pool!(self.db(), pool => {
            bind_all!(sqlx::query_as::<_, TransferRow>(sqlx::AssertSqlSafe(sql.as_str())), &binds).fetch_all(pool).await
        })?;
        rows.into_iter().map(Transfer::try_from).collect()
    }

    async fn one_transfer(&self, clause: &str, binds: Vec<Bind>) -> StoreResult<Option<Transfer>> {
        Ok(self.transfers_where(clause, binds).await?.into_iter().next())
    }

    pub async fn transfer(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<Transfer>> {
        self.one_transfer(
            "tenant_id = $1 AND id = $2",
            vec![Bind::Text(tenant.to_string()), Bind::Text(id.to_string())],
        )
        .await
    }

    pub async fn transfer_by_end_to_end_id(
        &self,
        tenant: Uuid,
        direction: Direction,
        end_to_end_id: &str,
    ) -> StoreResult<Option<Transfer>> {
        self.one_transfer(
            "tenant_id = $1 AND direction = $2 AND end_to_end_id = $3",
            vec![
                Bind::Text(tenant.to_string()),
                Bind::Text(direction.as_str().to_owned()),
                Bind::Text(end_to_end_id.to_owned()),
            ],
        )
        .await
    }

    /// The tenants with a transfer (either direction) of this EndToEndId: a cross-tenant read on
    /// purpose, to tell "someone else's payment" from "a payment this host never saw".
    pub async fn end_to_end_id_tenants(&self, end_to_end_id: &str) -> StoreResult<Vec<Uuid>> {
        let rows: Vec<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT DISTINCT tenant_id FROM transfers WHERE end_to_end_id = $1")
                .bind(end_to_end_id)
                .fetch_all(pool)
                .await
        })?;
        rows.iter().map(|(t,)| parse_uuid(t)).collect()
    }

    pub async fn transfer_by_initiation(&self, tenant: Uuid, initiation: Uuid) -> StoreResult<Option<Transfer>> {
        self.one_transfer(
            "tenant_id = $1 AND initiation_id = $2",
            vec![Bind::Text(tenant.to_string()), Bind::Text(initiation.to_string())],
        )
        .await
    }

    /// One account's transfers (every account's with `None`), filtered and paged; returns the
    /// page and the total.
    pub async fn list_transfers(
        &self,
        tenant: Uuid,
        account: Option<Uuid>,
        f: &TransferFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Transfer>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("account_id = ?", account.map(|a| a.to_string()).as_deref());
        w.text("end_to_end_id = ?", f.end_to_end_id.as_deref());
        w.text("status = ?", f.status.map(TransferStatus::as_str));
        w.text("direction = ?", f.direction.map(Direction::as_str));
        w.time("updated_at > ?", f.modified_after);
        w.time("updated_at < ?", f.modified_before);
        w.flag("is_intra_psp", f.is_intra_psp);
        let (rows, total) = fetch_page!(
            self,
            TransferRow,
            TRANSFER_COLUMNS,
            "transfers",
            w,
            order("created_at", f.descending),
            limit,
            offset
        );
        Ok((rows.into_iter().map(Transfer::try_from).collect::<StoreResult<_>>()?, total))
    }

    /// Transfers with `status`, oldest first, across tenants: an operator's queue (reviews,
    /// incidents).
    pub async fn transfers_with_status(&self, status: TransferStatus, limit: i64) -> StoreResult<Vec<Transfer>> {
        let sql =
            format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE status = $1 ORDER BY created_at, id LIMIT $2");
        let rows: Vec<TransferRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(status).bind(limit).fetch_all(pool).await
        })?;
        rows.into_iter().map(Transfer::try_from).collect()
    }
}
