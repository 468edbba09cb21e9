//! MED 2.0 funds recoveries the tenant opened. Every query is scoped by tenant; the API's also by
//! the account that paid the root transaction. Writes are guarded by a version, so that an API
//! call and a BTG event merging into the same recovery at once cannot lose either change.

use chrono::{DateTime, Utc};
use pix_core::med::{FundsRecoveryStatus, SituationType};
use uuid::Uuid;

use crate::query::{Where, bind_all, fetch_page, order};
use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

/// `trackingGraphParameters` as sent to DICT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackingParameters {
    /// Centavos.
    pub min_transaction_amount: Option<i64>,
    pub max_transactions: Option<i64>,
    /// Canonical ISO 8601 duration.
    pub hop_window: Option<String>,
    pub max_hops: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FundsRecovery {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub btg_id: String,
    pub status: FundsRecoveryStatus,
    pub root_transaction_id: String,
    pub situation_type: SituationType,
    pub reporter_participant: String,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub report_details: Option<String>,
    pub tracking: TrackingParameters,
    /// BTG's last change applied.
    pub btg_updated_at: DateTime<Utc>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    tenant_id: String,
    account_id: String,
    btg_id: String,
    status: FundsRecoveryStatus,
    root_transaction_id: String,
    situation_type: SituationType,
    reporter_participant: String,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    report_details: Option<String>,
    min_transaction_amount: Option<i64>,
    max_transactions: Option<i64>,
    hop_window: Option<String>,
    max_hops: Option<i64>,
    btg_updated_at: DateTime<Utc>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for FundsRecovery {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<FundsRecovery> {
        Ok(FundsRecovery {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: parse_uuid(&r.account_id)?,
            btg_id: r.btg_id,
            status: r.status,
            root_transaction_id: r.root_transaction_id,
            situation_type: r.situation_type,
            reporter_participant: r.reporter_participant,
            contact_email: r.contact_email,
            contact_phone: r.contact_phone,
            report_details: r.report_details,
            tracking: TrackingParameters {
                min_transaction_amount: r.min_transaction_amount,
                max_transactions: r.max_transactions,
                hop_window: r.hop_window,
                max_hops: r.max_hops,
            },
            btg_updated_at: r.btg_updated_at,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, account_id, btg_id, status, root_transaction_id, situation_type, \
    reporter_participant, contact_email, contact_phone, report_details, min_transaction_amount, max_transactions, \
    hop_window, max_hops, btg_updated_at, version, created_at, updated_at";

/// Filters of the funds recovery list.
#[derive(Debug, Clone, Default)]
pub struct FundsRecoveryFilter {
    pub status: Option<FundsRecoveryStatus>,
    pub situation_type: Option<SituationType>,
    pub root_transaction_id: Option<String>,
    pub modified_after: Option<DateTime<Utc>>,
    pub modified_before: Option<DateTime<Utc>>,
    pub descending: bool,
}

/// Inserts a new recovery; a second one with the same BTG id is a `Conflict`.
pub async fn insert_funds_recovery(tx: &mut Tx, r: &FundsRecovery) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dict_funds_recoveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
         $13, $14, $15, $16, $17, $18, $19)"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(r.id.to_string())
            .bind(r.tenant_id.to_string())
            .bind(r.account_id.to_string())
            .bind(&r.btg_id)
            .bind(r.status)
            .bind(&r.root_transaction_id)
            .bind(r.situation_type)
            .bind(&r.reporter_participant)
            .bind(&r.contact_email)
            .bind(&r.contact_phone)
            .bind(&r.report_details)
            .bind(r.tracking.min_transaction_amount)
            .bind(r.tracking.max_transactions)
            .bind(&r.tracking.hop_window)
            .bind(r.tracking.max_hops)
            .bind(r.btg_updated_at)
            .bind(r.version)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            StoreError::Conflict("a funds recovery with this BTG id exists".into())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Writes the mutable columns of `r` if nobody changed the row since it was read (its
/// `version`), and bumps the version; `false` when the row moved on.
pub async fn save_funds_recovery(tx: &mut Tx, r: &FundsRecovery) -> StoreResult<bool> {
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE dict_funds_recoveries SET status = $3, situation_type = $4, contact_email = $5,
                contact_phone = $6, report_details = $7, btg_updated_at = $8, updated_at = $9, version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $10",
        )
        .bind(r.tenant_id.to_string())
        .bind(r.id.to_string())
        .bind(r.status)
        .bind(r.situation_type)
        .bind(&r.contact_email)
        .bind(&r.contact_phone)
        .bind(&r.report_details)
        .bind(r.btg_updated_at)
        .bind(r.updated_at)
        .bind(r.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Reports and refund requests recorded with BTG's id of a recovery before we knew it (their
/// event came first) now name our id.
pub async fn link_to_recovery(tx: &mut Tx, tenant: Uuid, btg_id: &str, id: Uuid) -> StoreResult<()> {
    for table in ["dict_infraction_reports", "dict_refund_requests"] {
        let sql = format!("UPDATE {table} SET fund_recovery_id = $3 WHERE tenant_id = $1 AND fund_recovery_id = $2");
        on_tx!(tx, conn => {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(btg_id)
                .bind(id.to_string())
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

impl Store {
    async fn funds_recovery_where(&self, clause: &str, a: String, b: String) -> StoreResult<Option<FundsRecovery>> {
        let sql = format!("SELECT {COLUMNS} FROM dict_funds_recoveries WHERE {clause}");
        let row: Option<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(a.clone()).bind(b.clone()).fetch_optional(pool).await
        })?;
        row.map(FundsRecovery::try_from).transpose()
    }

    pub async fn funds_recovery(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<FundsRecovery>> {
        self.funds_recovery_where("tenant_id = $1 AND id = $2", tenant.to_string(), id.to_string()).await
    }

    pub async fn funds_recovery_by_btg_id(&self, tenant: Uuid, btg_id: &str) -> StoreResult<Option<FundsRecovery>> {
        self.funds_recovery_where("tenant_id = $1 AND btg_id = $2", tenant.to_string(), btg_id.to_owned()).await
    }

    /// The recoveries of a root transaction that are not final (at most one is opened).
    pub async fn open_funds_recoveries_of_root(&self, tenant: Uuid, root: &str) -> StoreResult<Vec<FundsRecovery>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM dict_funds_recoveries WHERE tenant_id = $1 AND root_transaction_id = $2
             AND status NOT IN ('COMPLETED', 'CANCELLED')"
        );
        let rows: Vec<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(root).fetch_all(pool).await
        })?;
        rows.into_iter().map(FundsRecovery::try_from).collect()
    }

    /// The recoveries of one account, newest first unless ascending.
    pub async fn list_funds_recoveries(
        &self,
        tenant: Uuid,
        account: Uuid,
        f: &FundsRecoveryFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<FundsRecovery>, i64)> {
        let mut w = Where::tenant(tenant);
        let account = account.to_string();
        w.text("account_id = ?", Some(&account));
        w.text("status = ?", f.status.map(FundsRecoveryStatus::as_str));
        w.text("situation_type = ?", f.situation_type.map(SituationType::as_str));
        w.text("root_transaction_id = ?", f.root_transaction_id.as_deref());
        w.time("updated_at > ?", f.modified_after);
        w.time("updated_at < ?", f.modified_before);
        let order = order("created_at", f.descending);
        let (rows, total) = fetch_page!(self, Row, COLUMNS, "dict_funds_recoveries", w, order, limit, offset);
        Ok((rows.into_iter().map(FundsRecovery::try_from).collect::<StoreResult<_>>()?, total))
    }
}
