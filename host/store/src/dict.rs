//! DICT storage: entries, claims, VSync state, reconciliation jobs, MED records (infraction
//! reports, refund requests) and anti-scan buckets. Every query is scoped by tenant, except the
//! worker scans that return rows of all tenants on purpose (each row carries its tenant).

use chrono::{DateTime, Utc};
use pix_core::dict::{Cid, TokenBucket, VSync};
use pix_core::dict::{EntryStatus, ReconciliationStatus};
use pix_core::med::{
    AnalysisResult, InfractionStatus, RefundAnalysisResult, RefundRequestStatus, ReportRole, RequestRole,
};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::query::{Bind, Where, bind_all, fetch_page, opt_uuid, order};
use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

// ============================================================================================ entries

/// A DICT entry (vínculo) of one of the tenant's accounts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The Midaz account; `None` for an entry learnt from DICT by reconciliation.
    pub account_id: Option<Uuid>,
    /// `None` while an EVP registration is in flight (DICT generates the key).
    pub key: Option<String>,
    pub key_type: String,
    pub status: EntryStatus,
    /// `CREATE`, `UPDATE` or `DELETE` while a BTG write is unsettled.
    pub pending_op: Option<String>,
    pub pending_payload: Option<serde_json::Value>,
    pub pending_since: Option<DateTime<Utc>>,
    pub participant: String,
    pub branch: String,
    pub account_number: String,
    pub account_type: String,
    pub opening_date: Option<DateTime<Utc>>,
    pub owner_type: String,
    pub owner_tax_id: String,
    pub owner_name: String,
    pub owner_trade_name: Option<String>,
    /// DICT RequestId of the creation: the CID's HMAC key.
    pub request_id: Uuid,
    /// Hex CID of the entry as registered (absent while pending or once inactive).
    pub cid: Option<String>,
    /// Reason of the last change.
    pub reason: String,
    pub metadata: serde_json::Value,
    pub key_ownership_date: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Entry {
    /// The CID of the entry's current attributes.
    pub fn compute_cid(&self) -> Option<Cid> {
        let key = self.key.as_deref()?;
        Some(Cid::compute(
            &self.request_id,
            &pix_core::dict::CidAttributes {
                key_type: &self.key_type,
                key,
                owner_tax_id: &self.owner_tax_id,
                owner_name: &self.owner_name,
                owner_trade_name: self.owner_trade_name.as_deref().unwrap_or(""),
                participant: &self.participant,
                branch: &self.branch,
                account_number: &self.account_number,
                account_type: &self.account_type,
            },
        ))
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: String,
    tenant_id: String,
    account_id: Option<String>,
    key: Option<String>,
    key_type: String,
    status: EntryStatus,
    pending_op: Option<String>,
    pending_payload: Option<Json<serde_json::Value>>,
    pending_since: Option<DateTime<Utc>>,
    participant: String,
    branch: String,
    account_number: String,
    account_type: String,
    opening_date: Option<DateTime<Utc>>,
    owner_type: String,
    owner_tax_id: String,
    owner_name: String,
    owner_trade_name: Option<String>,
    request_id: String,
    cid: Option<String>,
    reason: String,
    metadata: Json<serde_json::Value>,
    key_ownership_date: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<EntryRow> for Entry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> StoreResult<Entry> {
        Ok(Entry {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: opt_uuid(r.account_id)?,
            key: r.key,
            key_type: r.key_type,
            status: r.status,
            pending_op: r.pending_op,
            pending_payload: r.pending_payload.map(|j| j.0),
            pending_since: r.pending_since,
            participant: r.participant,
            branch: r.branch,
            account_number: r.account_number,
            account_type: r.account_type,
            opening_date: r.opening_date,
            owner_type: r.owner_type,
            owner_tax_id: r.owner_tax_id,
            owner_name: r.owner_name,
            owner_trade_name: r.owner_trade_name,
            request_id: parse_uuid(&r.request_id)?,
            cid: r.cid,
            reason: r.reason,
            metadata: r.metadata.0,
            key_ownership_date: r.key_ownership_date,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        })
    }
}

const ENTRY_COLUMNS: &str = "id, tenant_id, account_id, key, key_type, status, pending_op, pending_payload, \
     pending_since, participant, branch, account_number, account_type, opening_date, owner_type, owner_tax_id, \
     owner_name, owner_trade_name, request_id, cid, reason, metadata, key_ownership_date, version, created_at, \
     updated_at, deleted_at";

/// Filters of the entry list.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub account_id: Option<Uuid>,
    pub key_type: Option<String>,
    pub key: Option<String>,
    pub entry_id: Option<Uuid>,
    pub status: Option<String>,
}

/// Inserts a new entry row.
pub async fn insert_entry(tx: &mut Tx, e: &Entry) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dict_entries ({ENTRY_COLUMNS}) VALUES
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
          $23, $24, $25, $26, $27)"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(e.id.to_string())
            .bind(e.tenant_id.to_string())
            .bind(e.account_id.map(|a| a.to_string()))
            .bind(&e.key)
            .bind(&e.key_type)
            .bind(e.status)
            .bind(&e.pending_op)
            .bind(e.pending_payload.as_ref().map(Json))
            .bind(e.pending_since)
            .bind(&e.participant)
            .bind(&e.branch)
            .bind(&e.account_number)
            .bind(&e.account_type)
            .bind(e.opening_date)
            .bind(&e.owner_type)
            .bind(&e.owner_tax_id)
            .bind(&e.owner_name)
            .bind(&e.owner_trade_name)
            .bind(e.request_id.to_string())
            .bind(&e.cid)
            .bind(&e.reason)
            .bind(Json(&e.metadata))
            .bind(e.key_ownership_date)
            .bind(e.version)
            .bind(e.created_at)
            .bind(e.updated_at)
            .bind(e.deleted_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            StoreError::Conflict("the key already has an entry".into())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Writes every mutable column of `e` if nobody changed the row since it was read (its
/// `version`); returns `false` when the row moved on. The stored version becomes `e.version + 1`.
pub async fn save_entry(tx: &mut Tx, e: &Entry) -> StoreResult<bool> {
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE dict_entries SET account_id = $3, key = $4, status = $5, pending_op = $6, pending_payload = $7,
                pending_since = $8, participant = $9, branch = $10, account_number = $11, account_type = $12,
                opening_date = $13, owner_type = $14, owner_tax_id = $15, owner_name = $16, owner_trade_name = $17,
                request_id = $18, cid = $19, reason = $20, metadata = $21, key_ownership_date = $22,
                updated_at = $23, deleted_at = $24, version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $25",
        )
        .bind(e.tenant_id.to_string())
        .bind(e.id.to_string())
        .bind(e.account_id.map(|a| a.to_string()))
        .bind(&e.key)
        .bind(e.status)
        .bind(&e.pending_op)
        .bind(e.pending_payload.as_ref().map(Json))
        .bind(e.pending_since)
        .bind(&e.participant)
        .bind(&e.branch)
        .bind(&e.account_number)
        .bind(&e.account_type)
        .bind(e.opening_date)
        .bind(&e.owner_type)
        .bind(&e.owner_tax_id)
        .bind(&e.owner_name)
        .bind(&e.owner_trade_name)
        .bind(e.request_id.to_string())
        .bind(&e.cid)
        .bind(&e.reason)
        .bind(Json(&e.metadata))
        .bind(e.key_ownership_date)
        .bind(e.updated_at)
        .bind(e.deleted_at)
        .bind(e.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            StoreError::Conflict("the key already has an entry".into())
        } else {
            e.into()
        }
    })?;
    Ok(done == 1)
}

/// Removes a registration that never reached DICT.
pub async fn discard_entry(tx: &mut Tx, tenant: Uuid, id: Uuid, version: i64) -> StoreResult<bool> {
    let done = on_tx!(tx, conn => {
        sqlx::query("DELETE FROM dict_entries WHERE tenant_id = $1 AND id = $2 AND version = $3 AND status = 'PENDING'")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(version)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

impl Store {
    async fn entries_where(&self, clause: &str, binds: Vec<Bind>) -> StoreResult<Vec<Entry>> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM dict_entries WHERE {clause} ORDER BY created_at, id");
        let rows: Vec<EntryRow> = on_pool!(self.db(), pool => {
            bind_all!(sqlx::query_as::<_, EntryRow>(sqlx::AssertSqlSafe(sql.as_str())), &binds).fetch_all(pool).await
        })?;
        rows.into_iter().map(Entry::try_from).collect()
    }

    pub async fn dict_entry(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<Entry>> {
        let found = self
            .entries_where(
                "tenant_id = $1 AND id = $2",
                vec![Bind::Text(tenant.to_string()), Bind::Text(id.to_string())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// The entry of `key` that is pending or active, if any.
    pub async fn live_dict_entry_by_key(&self, tenant: Uuid, key: &str) -> StoreResult<Option<Entry>> {
        let found = self
            .entries_where(
                "tenant_id = $1 AND key = $2 AND status <> 'INACTIVE'",
                vec![Bind::Text(tenant.to_string()), Bind::Text(key.to_owned())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// Pending and active entries of an account (what counts against its key limit).
    pub async fn count_live_dict_entries(&self, tenant: Uuid, account: Uuid) -> StoreResult<i64> {
        let n: i64 = on_pool!(self.db(), pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM dict_entries WHERE tenant_id = $1 AND account_id = $2 AND status <> 'INACTIVE'",
            )
            .bind(tenant.to_string())
            .bind(account.to_string())
            .fetch_one(pool)
            .await
        })?;
        Ok(n)
    }

    /// Active entries of one key type (reconciliation's local side).
    pub async fn active_dict_entries(&self, tenant: Uuid, key_type: &str) -> StoreResult<Vec<Entry>> {
        self.entries_where(
            "tenant_id = $1 AND key_type = $2 AND status = 'ACTIVE'",
            vec![Bind::Text(tenant.to_string()), Bind::Text(key_type.to_owned())],
        )
        .await
    }

    /// Entries whose BTG write has been unsettled since before `before`, all tenants.
    pub async fn unsettled_dict_entries(&self, before: DateTime<Utc>) -> StoreResult<Vec<Entry>> {
        self.entries_where("pending_op IS NOT NULL AND pending_since <= $1", vec![Bind::Time(before)]).await
    }

    /// A page of visible (active or inactive) entries, oldest first, and the total.
    pub async fn list_dict_entries(
        &self,
        tenant: Uuid,
        filter: &EntryFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Entry>, i64)> {
        let mut w = Where::tenant(tenant);
        w.clauses.push("status <> 'PENDING'".into());
        w.text("account_id = ?", filter.account_id.map(|a| a.to_string()).as_deref());
        w.text("key_type = ?", filter.key_type.as_deref());
        w.text("key = ?", filter.key.as_deref());
        w.text("id = ?", filter.entry_id.map(|a| a.to_string()).as_deref());
        w.text("status = ?", filter.status.as_deref());
        let (rows, total) =
            fetch_page!(self, EntryRow, ENTRY_COLUMNS, "dict_entries", w, "created_at, id", limit, offset);
        Ok((rows.into_iter().map(Entry::try_from).collect::<StoreResult<_>>()?, total))
    }
}

// ============================================================================================ VSync

/// The VSync state of one key type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VSyncState {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub key_type: String,
    pub local_vsync: String,
    pub remote_vsync: Option<String>,
    /// `SYNCED`, `OUT_OF_SYNC`, `RECONCILING`, `ERROR`.
    pub last_sync_status: String,
    pub last_sync_check: Option<DateTime<Utc>>,
    pub last_sync_timestamp: Option<DateTime<Utc>>,
    pub last_cid_created_at: Option<DateTime<Utc>>,
    pub last_full_reconciliation: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VSyncRow {
    id: String,
    tenant_id: String,
    key_type: String,
    local_vsync: String,
    remote_vsync: Option<String>,
    last_sync_status: String,
    last_sync_check: Option<DateTime<Utc>>,
    last_sync_timestamp: Option<DateTime<Utc>>,
    last_cid_created_at: Option<DateTime<Utc>>,
    last_full_reconciliation: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<VSyncRow> for VSyncState {
    type Error = StoreError;
    fn try_from(r: VSyncRow) -> StoreResult<VSyncState> {
        Ok(VSyncState {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            key_type: r.key_type,
            local_vsync: r.local_vsync,
            remote_vsync: r.remote_vsync,
            last_sync_status: r.last_sync_status,
            last_sync_check: r.last_sync_check,
            last_sync_timestamp: r.last_sync_timestamp,
            last_cid_created_at: r.last_cid_created_at,
            last_full_reconciliation: r.last_full_reconciliation,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const VSYNC_COLUMNS: &str = "id, tenant_id, key_type, local_vsync, remote_vsync, last_sync_status, last_sync_check, \
     last_sync_timestamp, last_cid_created_at, last_full_reconciliation, created_at, updated_at";

/// Creates the VSync row of a key type if missing (empty set, SYNCED).
async fn ensure_vsync(tx: &mut Tx, tenant: Uuid, key_type: &str, now: DateTime<Utc>) -> StoreResult<()> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO dict_vsync (id, tenant_id, key_type, local_vsync, last_sync_status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'SYNCED', $5, $5)
             ON CONFLICT (tenant_id, key_type) DO NOTHING",
        )
        .bind(pix_core::ids::new_id().to_string())
        .bind(tenant.to_string())
        .bind(key_type)
        .bind(VSync::EMPTY.to_hex())
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// XORs CIDs into (or out of) the local VSync of `key_type` inside `tx`. `removed` and `added`
/// are the old and new CIDs of one change (an update has both).
pub async fn toggle_vsync(
    tx: &mut Tx,
    tenant: Uuid,
    key_type: &str,
    removed: Option<&str>,
    added: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if removed.is_none() && added.is_none() {
        return Ok(());
    }
    ensure_vsync(tx, tenant, key_type, now).await?;
    // Row lock on PostgreSQL so concurrent changes of one key type serialize; SQLite has one writer.
    let lock = if matches!(tx, Tx::Postgres(_)) { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT local_vsync FROM dict_vsync WHERE tenant_id = $1 AND key_type = $2{lock}");
    let current: String = on_tx!(tx, conn => {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant.to_string())
            .bind(key_type)
            .fetch_one(conn)
            .await
    })?;
    let mut v = VSync::from_hex(&current).ok_or_else(|| StoreError::Corrupt(format!("vsync {current:?}")))?;
    for hex in removed.into_iter().chain(added) {
        let cid = Cid::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("cid {hex:?}")))?;
        v.toggle(&cid);
    }
    let last_cid = added.map(|_| now);
    on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE dict_vsync SET local_vsync = $3, updated_at = $4,
                last_cid_created_at = COALESCE($5, last_cid_created_at)
             WHERE tenant_id = $1 AND key_type = $2",
        )
        .bind(tenant.to_string())
        .bind(key_type)
        .bind(v.to_hex())
        .bind(now)
        .bind(last_cid)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Result of one VSync comparison or reconciliation, applied to the state row.
#[derive(Debug, Clone)]
pub struct VSyncCheck<'a> {
    pub status: &'a str,
    pub remote_vsync: Option<&'a str>,
    pub synced: bool,
    pub full_reconciliation: bool,
}

impl Store {
    /// The VSync state of a key type (created empty if it never had an entry).
    pub async fn vsync_state(&self, tenant: Uuid, key_type: &str, now: DateTime<Utc>) -> StoreResult<VSyncState> {
        let mut tx = self.begin().await?;
        ensure_vsync(&mut tx, tenant, key_type, now).await?;
        tx.commit().await?;
        let sql = format!("SELECT {VSYNC_COLUMNS} FROM dict_vsync WHERE tenant_id = $1 AND key_type = $2");
        let row: VSyncRow = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(key_type)
                .fetch_one(pool)
                .await
        })?;
        row.try_into()
    }

    pub async fn list_vsync_states(
        &self,
        tenant: Uuid,
        key_type: Option<&str>,
        status: Option<&str>,
        descending: bool,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<VSyncState>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("key_type = ?", key_type);
        w.text("last_sync_status = ?", status);
        let order = format!("key_type {}", if descending { "DESC" } else { "ASC" });
        let (rows, total) = fetch_page!(self, VSyncRow, VSYNC_COLUMNS, "dict_vsync", w, order, limit, offset);
        Ok((rows.into_iter().map(VSyncState::try_from).collect::<StoreResult<_>>()?, total))
    }

    /// Records a comparison (or its outcome) on the state row.
    pub async fn record_vsync_check(
        &self,
        tenant: Uuid,
        key_type: &str,
        check: &VSyncCheck<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE dict_vsync SET last_sync_status = $3, remote_vsync = COALESCE($4, remote_vsync),
                    last_sync_check = $5, updated_at = $5,
                    last_sync_timestamp = CASE WHEN $6 THEN $5 ELSE last_sync_timestamp END,
                    last_full_reconciliation = CASE WHEN $7 THEN $5 ELSE last_full_reconciliation END
                 WHERE tenant_id = $1 AND key_type = $2",
            )
            .bind(tenant.to_string())
            .bind(key_type)
            .bind(check.status)
            .bind(check.remote_vsync)
            .bind(now)
            .bind(check.synced)
            .bind(check.full_reconciliation)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// When the tenant's VSync was last compared (the oldest of its key types).
    pub async fn last_vsync_check(&self, tenant: Uuid) -> StoreResult<Option<DateTime<Utc>>> {
        let at: Option<DateTime<Utc>> = on_pool!(self.db(), pool => {
            sqlx::query_scalar("SELECT MIN(last_sync_check) FROM dict_vsync WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_one(pool)
                .await
        })?;
        Ok(at)
    }
}

// ============================================================================================ claims

/// A claim, from our side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub btg_claim_id: String,
    /// `CLAIMER` or `DONOR`.
    pub role: String,
    pub claim_type: String,
    pub key: String,
    pub key_type: String,
    pub status: String,
    pub claimer_participant: String,
    pub donor_participant: String,
    /// Our account: the claimer's, or the one holding the donated entry.
    pub account_id: Option<Uuid>,
    /// The donated entry, or the entry created on completion.
    pub entry_id: Option<Uuid>,
    pub claimer_account: serde_json::Value,
    pub claimer: serde_json::Value,
    pub resolution_period_end: DateTime<Utc>,
    pub completion_period_end: Option<DateTime<Utc>>,
    pub confirm_reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub completion_request_id: Option<String>,
    pub btg_last_modified: DateTime<Utc>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: String,
    tenant_id: String,
    btg_claim_id: String,
    role: String,
    claim_type: String,
    key: String,
    key_type: String,
    status: String,
    claimer_participant: String,
    donor_participant: String,
    account_id: Option<String>,
    entry_id: Option<String>,
    claimer_account: Json<serde_json::Value>,
    claimer: Json<serde_json::Value>,
    resolution_period_end: DateTime<Utc>,
    completion_period_end: Option<DateTime<Utc>>,
    confirm_reason: Option<String>,
    cancel_reason: Option<String>,
    cancelled_by: Option<String>,
    completion_request_id: Option<String>,
    btg_last_modified: DateTime<Utc>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ClaimRow> for Claim {
    type Error = StoreError;
    fn try_from(r: ClaimRow) -> StoreResult<Claim> {
        Ok(Claim {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            btg_claim_id: r.btg_claim_id,
            role: r.role,
            claim_type: r.claim_type,
            key: r.key,
            key_type: r.key_type,
            status: r.status,
            claimer_participant: r.claimer_participant,
            donor_participant: r.donor_participant,
            account_id: opt_uuid(r.account_id)?,
            entry_id: opt_uuid(r.entry_id)?,
            claimer_account: r.claimer_account.0,
            claimer: r.claimer.0,
            resolution_period_end: r.resolution_period_end,
            completion_period_end: r.completion_period_end,
            confirm_reason: r.confirm_reason,
            cancel_reason: r.cancel_reason,
            cancelled_by: r.cancelled_by,
            completion_request_id: r.completion_request_id,
            btg_last_modified: r.btg_last_modified,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const CLAIM_COLUMNS: &str = "id, tenant_id, btg_claim_id, role, claim_type, key, key_type, status, \
     claimer_participant, donor_participant, account_id, entry_id, claimer_account, claimer, resolution_period_end, \
     completion_period_end, confirm_reason, cancel_reason, cancelled_by, completion_request_id, btg_last_modified, \
     version, created_at, updated_at";

/// Filters of the claim list.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    pub claim_type: Option<String>,
    pub status: Option<String>,
    pub key: Option<String>,
    pub role: Option<String>,
    pub btg_claim_id: Option<String>,
    pub descending: bool,
}

pub async fn insert_claim(tx: &mut Tx, c: &Claim) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dict_claims ({CLAIM_COLUMNS}) VALUES
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(c.id.to_string())
            .bind(c.tenant_id.to_string())
            .bind(&c.btg_claim_id)
            .bind(&c.role)
            .bind(&c.claim_type)
            .bind(&c.key)
            .bind(&c.key_type)
            .bind(&c.status)
            .bind(&c.claimer_participant)
            .bind(&c.donor_participant)
            .bind(c.account_id.map(|a| a.to_string()))
            .bind(c.entry_id.map(|a| a.to_string()))
            .bind(Json(&c.claimer_account))
            .bind(Json(&c.claimer))
            .bind(c.resolution_period_end)
            .bind(c.completion_period_end)
            .bind(&c.confirm_reason)
            .bind(&c.cancel_reason)
            .bind(&c.cancelled_by)
            .bind(&c.completion_request_id)
            .bind(c.btg_last_modified)
            .bind(c.version)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            StoreError::Conflict("the claim is already recorded".into())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

/// Writes the mutable columns of `c` if its `version` is still current.
pub async fn save_claim(tx: &mut Tx, c: &Claim) -> StoreResult<bool> {
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE dict_claims SET status = $3, account_id = $4, entry_id = $5, resolution_period_end = $6,
                completion_period_end = $7, confirm_reason = $8, cancel_reason = $9, cancelled_by = $10,
                completion_request_id = $11, btg_last_modified = $12, updated_at = $13, version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $14",
        )
        .bind(c.tenant_id.to_string())
        .bind(c.id.to_string())
        .bind(&c.status)
        .bind(c.account_id.map(|a| a.to_string()))
        .bind(c.entry_id.map(|a| a.to_string()))
        .bind(c.resolution_period_end)
        .bind(c.completion_period_end)
        .bind(&c.confirm_reason)
        .bind(&c.cancel_reason)
        .bind(&c.cancelled_by)
        .bind(&c.completion_request_id)
        .bind(c.btg_last_modified)
        .bind(c.updated_at)
        .bind(c.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

impl Store {
    async fn claims_where(&self, clause: &str, binds: Vec<Bind>) -> StoreResult<Vec<Claim>> {
        let sql = format!("SELECT {CLAIM_COLUMNS} FROM dict_claims WHERE {clause} ORDER BY created_at, id");
        let rows: Vec<ClaimRow> = on_pool!(self.db(), pool => {
            bind_all!(sqlx::query_as::<_, ClaimRow>(sqlx::AssertSqlSafe(sql.as_str())), &binds).fetch_all(pool).await
        })?;
        rows.into_iter().map(Claim::try_from).collect()
    }

    pub async fn dict_claim(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<Claim>> {
        let found = self
            .claims_where(
                "tenant_id = $1 AND id = $2",
                vec![Bind::Text(tenant.to_string()), Bind::Text(id.to_string())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    pub async fn dict_claim_by_btg_id(&self, tenant: Uuid, btg_id: &str) -> StoreResult<Option<Claim>> {
        let found = self
            .claims_where(
                "tenant_id = $1 AND btg_claim_id = $2",
                vec![Bind::Text(tenant.to_string()), Bind::Text(btg_id.to_owned())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// The claim that locks `key` (OPEN, WAITING_RESOLUTION or CONFIRMED), in either role.
    pub async fn locking_dict_claim(&self, tenant: Uuid, key: &str) -> StoreResult<Option<Claim>> {
        let found = self
            .claims_where(
                "tenant_id = $1 AND key = $2 AND status IN ('OPEN', 'WAITING_RESOLUTION', 'CONFIRMED')",
                vec![Bind::Text(tenant.to_string()), Bind::Text(key.to_owned())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    /// Unfinished claims of every tenant whose resolution period ended by `now`, or that wait for
    /// their ownership completion period to end.
    pub async fn dict_claims_due(&self, now: DateTime<Utc>) -> StoreResult<Vec<Claim>> {
        self.claims_where(
            "(status IN ('OPEN', 'WAITING_RESOLUTION') AND resolution_period_end <= $1)",
            vec![Bind::Time(now)],
        )
        .await
    }

    pub async fn list_dict_claims(
        &self,
        tenant: Uuid,
        filter: &ClaimFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Claim>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("claim_type = ?", filter.claim_type.as_deref());
        w.text("status = ?", filter.status.as_deref());
        w.text("key = ?", filter.key.as_deref());
        w.text("role = ?", filter.role.as_deref());
        w.text("btg_claim_id = ?", filter.btg_claim_id.as_deref());
        let order = order("created_at", filter.descending);
        let (rows, total) = fetch_page!(self, ClaimRow, CLAIM_COLUMNS, "dict_claims", w, order, limit, offset);
        Ok((rows.into_iter().map(Claim::try_from).collect::<StoreResult<_>>()?, total))
    }
}

// ============================================================================================ reconciliation jobs

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReconciliationJob {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `EVENT_SYNC` or `FULL_RECONCILIATION`.
    pub job_type: String,
    pub key_type: String,
    pub status: ReconciliationStatus,
    /// The CID file requested from BTG.
    pub file_id: Option<String>,
    pub total_items: i64,
    pub processed_items: i64,
    pub entries_added: i64,
    pub entries_removed: i64,
    pub entries_repaired: i64,
    pub orphan_entries: i64,
    pub sync_from: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub error_message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    tenant_id: String,
    job_type: String,
    key_type: String,
    status: ReconciliationStatus,
    file_id: Option<String>,
    total_items: i64,
    processed_items: i64,
    entries_added: i64,
    entries_removed: i64,
    entries_repaired: i64,
    orphan_entries: i64,
    sync_from: Option<DateTime<Utc>>,
    reason: Option<String>,
    error_message: Option<String>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for ReconciliationJob {
    type Error = StoreError;
    fn try_from(r: JobRow) -> StoreResult<ReconciliationJob> {
        Ok(ReconciliationJob {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            job_type: r.job_type,
            key_type: r.key_type,
            status: r.status,
            file_id: r.file_id,
            total_items: r.total_items,
            processed_items: r.processed_items,
            entries_added: r.entries_added,
            entries_removed: r.entries_removed,
            entries_repaired: r.entries_repaired,
            orphan_entries: r.orphan_entries,
            sync_from: r.sync_from,
            reason: r.reason,
            error_message: r.error_message,
            started_at: r.started_at,
            completed_at: r.completed_at,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const JOB_COLUMNS: &str = "id, tenant_id, job_type, key_type, status, file_id, total_items, processed_items, \
     entries_added, entries_removed, entries_repaired, orphan_entries, sync_from, reason, error_message, started_at, \
     completed_at, expires_at, created_at, updated_at";

/// Filters of the reconciliation job list.
#[derive(Debug, Clone, Default)]
pub struct ReconciliationFilter {
    pub key_type: Option<String>,
    pub job_type: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub descending: bool,
}

/// Inserts or rewrites a job (all columns; jobs have one writer at a time), in `tx` so that the
/// job's outbound event is recorded with it.
pub async fn save_reconciliation_job(tx: &mut Tx, j: &ReconciliationJob) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dict_reconciliation_jobs ({JOB_COLUMNS}) VALUES
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
             ON CONFLICT (id) DO UPDATE SET status = $5, file_id = $6, total_items = $7, processed_items = $8,
                entries_added = $9, entries_removed = $10, entries_repaired = $11, orphan_entries = $12,
                sync_from = $13, reason = $14, error_message = $15, started_at = $16, completed_at = $17,
                expires_at = $18, updated_at = $20"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(j.id.to_string())
            .bind(j.tenant_id.to_string())
            .bind(&j.job_type)
            .bind(&j.key_type)
            .bind(j.status)
            .bind(&j.file_id)
            .bind(j.total_items)
            .bind(j.processed_items)
            .bind(j.entries_added)
            .bind(j.entries_removed)
            .bind(j.entries_repaired)
            .bind(j.orphan_entries)
            .bind(j.sync_from)
            .bind(&j.reason)
            .bind(&j.error_message)
            .bind(j.started_at)
            .bind(j.completed_at)
            .bind(j.expires_at)
            .bind(j.created_at)
            .bind(j.updated_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

impl Store {
    pub async fn reconciliation_job_by_file(
        &self,
        tenant: Uuid,
        file_id: &str,
    ) -> StoreResult<Option<ReconciliationJob>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM dict_reconciliation_jobs WHERE tenant_id = $1 AND file_id = $2");
        let row: Option<JobRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(file_id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(ReconciliationJob::try_from).transpose()
    }

    /// Unfinished jobs of a key type (at most one full reconciliation runs per key type).
    pub async fn open_reconciliation_jobs(&self, tenant: Uuid, key_type: &str) -> StoreResult<Vec<ReconciliationJob>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM dict_reconciliation_jobs
             WHERE tenant_id = $1 AND key_type = $2 AND status IN ('WAITING_FILE', 'PENDING', 'PROCESSING')
             ORDER BY created_at, id"
        );
        let rows: Vec<JobRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(key_type)
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(ReconciliationJob::try_from).collect()
    }

    pub async fn list_reconciliation_jobs(
        &self,
        tenant: Uuid,
        filter: &ReconciliationFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ReconciliationJob>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("key_type = ?", filter.key_type.as_deref());
        w.text("job_type = ?", filter.job_type.as_deref());
        w.text("status = ?", filter.status.as_deref());
        w.time("created_at >= ?", filter.start_date);
        w.time("created_at <= ?", filter.end_date);
        let order = order("created_at", filter.descending);
        let (rows, total) = fetch_page!(self, JobRow, JOB_COLUMNS, "dict_reconciliation_jobs", w, order, limit, offset);
        Ok((rows.into_iter().map(ReconciliationJob::try_from).collect::<StoreResult<_>>()?, total))
    }
}

// ============================================================================================ infraction reports

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InfractionReport {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub btg_id: String,
    pub role: ReportRole,
    pub transaction_id: String,
    pub reason: String,
    pub situation_type: Option<String>,
    pub report_details: Option<String>,
    pub status: InfractionStatus,
    pub reporter_participant: String,
    pub counterparty_participant: String,
    pub analysis_result: Option<AnalysisResult>,
    pub analysis_details: Option<String>,
    pub fraud_marker_id: Option<String>,
    pub fund_recovery_id: Option<String>,
    /// BTG's last change, to ignore stale (reordered) events.
    pub btg_updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct InfractionRow {
    id: String,
    tenant_id: String,
    btg_id: String,
    role: ReportRole,
    transaction_id: String,
    reason: String,
    situation_type: Option<String>,
    report_details: Option<String>,
    status: InfractionStatus,
    reporter_participant: String,
    counterparty_participant: String,
    analysis_result: Option<AnalysisResult>,
    analysis_details: Option<String>,
    fraud_marker_id: Option<String>,
    fund_recovery_id: Option<String>,
    btg_updated_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<InfractionRow> for InfractionReport {
    type Error = StoreError;
    fn try_from(r: InfractionRow) -> StoreResult<InfractionReport> {
        Ok(InfractionReport {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            btg_id: r.btg_id,
            role: r.role,
            transaction_id: r.transaction_id,
            reason: r.reason,
            situation_type: r.situation_type,
            report_details: r.report_details,
            status: r.status,
            reporter_participant: r.reporter_participant,
            counterparty_participant: r.counterparty_participant,
            analysis_result: r.analysis_result,
            analysis_details: r.analysis_details,
            fraud_marker_id: r.fraud_marker_id,
            fund_recovery_id: r.fund_recovery_id,
            btg_updated_at: r.btg_updated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const INFRACTION_COLUMNS: &str = "id, tenant_id, btg_id, role, transaction_id, reason, situation_type, report_details, \
     status, reporter_participant, counterparty_participant, analysis_result, analysis_details, fraud_marker_id, \
     fund_recovery_id, btg_updated_at, created_at, updated_at";

/// Filters of the infraction report list.
#[derive(Debug, Clone, Default)]
pub struct InfractionFilter {
    pub status: Option<InfractionStatus>,
    pub transaction_id: Option<String>,
    pub reporter_participant: Option<String>,
    pub counterparty_participant: Option<String>,
    pub analysis_result: Option<AnalysisResult>,
    /// Our funds recovery's id (or BTG's, for a recovery we do not have).
    pub fund_recovery_id: Option<String>,
    pub modified_after: Option<DateTime<Utc>>,
    pub modified_before: Option<DateTime<Utc>>,
    pub descending: bool,
}

/// Inserts the report or rewrites its mutable columns.
pub async fn upsert_infraction_report(tx: &mut Tx, r: &InfractionReport) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dict_infraction_reports ({INFRACTION_COLUMNS}) VALUES
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (id) DO UPDATE SET status = $9, analysis_result = $12, analysis_details = $13,
            fraud_marker_id = $14, fund_recovery_id = $15, btg_updated_at = $16, updated_at = $18"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(r.id.to_string())
            .bind(r.tenant_id.to_string())
            .bind(&r.btg_id)
            .bind(r.role)
            .bind(&r.transaction_id)
            .bind(&r.reason)
            .bind(&r.situation_type)
            .bind(&r.report_details)
            .bind(r.status)
            .bind(&r.reporter_participant)
            .bind(&r.counterparty_participant)
            .bind(r.analysis_result)
            .bind(&r.analysis_details)
            .bind(&r.fraud_marker_id)
            .bind(&r.fund_recovery_id)
            .bind(r.btg_updated_at)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

impl Store {
    async fn infraction_where(&self, clause: &str, a: String, b: String) -> StoreResult<Option<InfractionReport>> {
        let sql = format!("SELECT {INFRACTION_COLUMNS} FROM dict_infraction_reports WHERE {clause}");
        let row: Option<InfractionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(a.clone()).bind(b.clone()).fetch_optional(pool).await
        })?;
        row.map(InfractionReport::try_from).transpose()
    }

    pub async fn infraction_report(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<InfractionReport>> {
        self.infraction_where("tenant_id = $1 AND id = $2", tenant.to_string(), id.to_string()).await
    }

    pub async fn infraction_report_by_btg_id(
        &self,
        tenant: Uuid,
        btg_id: &str,
    ) -> StoreResult<Option<InfractionReport>> {
        self.infraction_where("tenant_id = $1 AND btg_id = $2", tenant.to_string(), btg_id.to_owned()).await
    }

    pub async fn list_infraction_reports(
        &self,
        tenant: Uuid,
        f: &InfractionFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<InfractionReport>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("status = ?", f.status.map(|s| s.as_str()));
        w.text("transaction_id = ?", f.transaction_id.as_deref());
        w.text("reporter_participant = ?", f.reporter_participant.as_deref());
        w.text("counterparty_participant = ?", f.counterparty_participant.as_deref());
        w.text("analysis_result = ?", f.analysis_result.map(|s| s.as_str()));
        w.text("fund_recovery_id = ?", f.fund_recovery_id.as_deref());
        w.time("updated_at > ?", f.modified_after);
        w.time("updated_at < ?", f.modified_before);
        let order = order("created_at", f.descending);
        let (rows, total) =
            fetch_page!(self, InfractionRow, INFRACTION_COLUMNS, "dict_infraction_reports", w, order, limit, offset);
        Ok((rows.into_iter().map(InfractionReport::try_from).collect::<StoreResult<_>>()?, total))
    }
}

// ============================================================================================ refund requests

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundRequest {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub btg_id: String,
    /// `REQUESTING` (we asked for the funds back) or `CONTESTED` (asked of us).
    pub role: RequestRole,
    pub transaction_id: String,
    /// Centavos.
    pub amount: i64,
    pub reason: String,
    pub status: RefundRequestStatus,
    pub infraction_id: Option<String>,
    pub requesting_participant: Option<String>,
    pub contested_participant: Option<String>,
    pub refund_details: Option<String>,
    pub analysis_result: Option<RefundAnalysisResult>,
    pub analysis_details: Option<String>,
    pub rejection_reason: Option<String>,
    pub refund_transaction_id: Option<String>,
    pub fund_recovery_id: Option<String>,
    /// Contested requests closed as accepted: our refund (type CASHOUT) whose return id was sent.
    /// Once set it is only ever replaced by another refund (a failed one's retry), never cleared.
    pub refund_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RefundRow {
    id: String,
    tenant_id: String,
    btg_id: String,
    role: RequestRole,
    transaction_id: String,
    amount: i64,
    reason: String,
    status: RefundRequestStatus,
    infraction_id: Option<String>,
    requesting_participant: Option<String>,
    contested_participant: Option<String>,
    refund_details: Option<String>,
    analysis_result: Option<RefundAnalysisResult>,
    analysis_details: Option<String>,
    rejection_reason: Option<String>,
    refund_transaction_id: Option<String>,
    fund_recovery_id: Option<String>,
    refund_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RefundRow> for RefundRequest {
    type Error = StoreError;
    fn try_from(r: RefundRow) -> StoreResult<RefundRequest> {
        Ok(RefundRequest {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            btg_id: r.btg_id,
            role: r.role,
            transaction_id: r.transaction_id,
            amount: r.amount,
            reason: r.reason,
            status: r.status,
            infraction_id: r.infraction_id,
            requesting_participant: r.requesting_participant,
            contested_participant: r.contested_participant,
            refund_details: r.refund_details,
            analysis_result: r.analysis_result,
            analysis_details: r.analysis_details,
            rejection_reason: r.rejection_reason,
            refund_transaction_id: r.refund_transaction_id,
            fund_recovery_id: r.fund_recovery_id,
            refund_id: r.refund_id.as_deref().map(parse_uuid).transpose()?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const REFUND_COLUMNS: &str = "id, tenant_id, btg_id, role, transaction_id, amount, reason, status, infraction_id, \
     requesting_participant, contested_participant, refund_details, analysis_result, analysis_details, \
     rejection_reason, refund_transaction_id, fund_recovery_id, created_at, updated_at, refund_id";

/// Filters of the refund request list.
#[derive(Debug, Clone, Default)]
pub struct RefundFilter {
    pub transaction_id: Option<String>,
    pub status: Option<RefundRequestStatus>,
    pub requesting_participant: Option<String>,
    pub contested_participant: Option<String>,
    pub infraction_id: Option<String>,
    pub analysis_result: Option<RefundAnalysisResult>,
    pub refund_transaction_id: Option<String>,
    /// The requests linked to this refund of ours.
    pub refund_id: Option<Uuid>,
    /// Our funds recovery's id (or BTG's, for a recovery we do not have).
    pub fund_recovery_id: Option<String>,
    pub modified_after: Option<DateTime<Utc>>,
    pub modified_before: Option<DateTime<Utc>>,
    pub descending: bool,
}

/// Inserts or updates a refund request. A link to a refund is never cleared: a writer that read
/// the row before the link was made (an event handler) keeps it.
pub async fn upsert_refund_request(tx: &mut Tx, r: &RefundRequest) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dict_refund_requests ({REFUND_COLUMNS}) VALUES
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
         ON CONFLICT (id) DO UPDATE SET status = $8, analysis_result = $13, analysis_details = $14,
            rejection_reason = $15, refund_transaction_id = $16, fund_recovery_id = $17, updated_at = $19,
            refund_id = COALESCE($20, dict_refund_requests.refund_id)"
    );
    on_tx!(tx, conn => {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(r.id.to_string())
            .bind(r.tenant_id.to_string())
            .bind(&r.btg_id)
            .bind(r.role)
            .bind(&r.transaction_id)
            .bind(r.amount)
            .bind(&r.reason)
            .bind(r.status)
            .bind(&r.infraction_id)
            .bind(&r.requesting_participant)
            .bind(&r.contested_participant)
            .bind(&r.refund_details)
            .bind(r.analysis_result)
            .bind(&r.analysis_details)
            .bind(&r.rejection_reason)
            .bind(&r.refund_transaction_id)
            .bind(&r.fund_recovery_id)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.refund_id.map(|id| id.to_string()))
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

impl Store {
    async fn refund_where(&self, clause: &str, a: String, b: String) -> StoreResult<Option<RefundRequest>> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM dict_refund_requests WHERE {clause}");
        let row: Option<RefundRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(a.clone()).bind(b.clone()).fetch_optional(pool).await
        })?;
        row.map(RefundRequest::try_from).transpose()
    }

    pub async fn refund_request(&self, tenant: Uuid, id: Uuid) -> StoreResult<Option<RefundRequest>> {
        self.refund_where("tenant_id = $1 AND id = $2", tenant.to_string(), id.to_string()).await
    }

    pub async fn refund_request_by_btg_id(&self, tenant: Uuid, btg_id: &str) -> StoreResult<Option<RefundRequest>> {
        self.refund_where("tenant_id = $1 AND btg_id = $2", tenant.to_string(), btg_id.to_owned()).await
    }

    pub async fn list_refund_requests(
        &self,
        tenant: Uuid,
        f: &RefundFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<RefundRequest>, i64)> {
        let mut w = Where::tenant(tenant);
        w.text("transaction_id = ?", f.transaction_id.as_deref());
        w.text("status = ?", f.status.map(|s| s.as_str()));
        w.text("requesting_participant = ?", f.requesting_participant.as_deref());
        w.text("contested_participant = ?", f.contested_participant.as_deref());
        w.text("infraction_id = ?", f.infraction_id.as_deref());
        w.text("analysis_result = ?", f.analysis_result.map(|s| s.as_str()));
        w.text("refund_transaction_id = ?", f.refund_transaction_id.as_deref());
        let refund_id = f.refund_id.map(|id| id.to_string());
        w.text("refund_id = ?", refund_id.as_deref());
        w.text("fund_recovery_id = ?", f.fund_recovery_id.as_deref());
        w.time("updated_at > ?", f.modified_after);
        w.time("updated_at < ?", f.modified_before);
        let order = order("created_at", f.descending);
        let (rows, total) =
            fetch_page!(self, RefundRow, REFUND_COLUMNS, "dict_refund_requests", w, order, limit, offset);
        Ok((rows.into_iter().map(RefundRequest::try_from).collect::<StoreResult<_>>()?, total))
    }
}

// ============================================================================================ anti-scan buckets

/// What a bucket allows right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketBalance {
    /// Milli-tokens after refill and the charge; negative after an overdraft.
    pub tokens: i64,
    /// The balance was positive, so the request was admitted (and charged).
    pub admitted: bool,
}

impl Store {
    /// Refills `scope`'s bucket to `now`; if the balance is positive, subtracts `cost` whole tokens
    /// and admits — the balance may go negative, as DICT's does, so reserving a worst case never
    /// lets a burst through for free. Otherwise nothing changes and the request is refused.
    /// Atomic: parallel calls are serialized on the bucket's row. A `cost` of zero only reads.
    pub async fn charge_bucket(
        &self,
        tenant: Uuid,
        scope: &str,
        bucket: TokenBucket,
        cost: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<BucketBalance> {
        let cost = cost.max(0) * pix_core::dict::MILLI;
        self.adjust_bucket(tenant, scope, bucket, now, |balance| {
            if balance > 0 { (balance - cost, true) } else { (balance, false) }
        })
        .await
    }

    /// Gives `tokens` whole tokens back (a reservation's unused part), up to the bucket's size.
    pub async fn refund_bucket(
        &self,
        tenant: Uuid,
        scope: &str,
        bucket: TokenBucket,
        tokens: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<BucketBalance> {
        let refund = tokens.max(0) * pix_core::dict::MILLI;
        self.adjust_bucket(tenant, scope, bucket, now, |balance| ((balance + refund).min(bucket.full()), true)).await
    }

    async fn adjust_bucket(
        &self,
        tenant: Uuid,
        scope: &str,
        bucket: TokenBucket,
        now: DateTime<Utc>,
        change: impl FnOnce(i64) -> (i64, bool),
    ) -> StoreResult<BucketBalance> {
        let mut tx = self.begin().await?;
        // A write first: on SQLite it takes the database's write lock for the whole transaction,
        // on PostgreSQL the row lock below does the same for this bucket.
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "INSERT INTO dict_rate_buckets (tenant_id, scope, tokens, refilled_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, scope) DO NOTHING",
            )
            .bind(tenant.to_string())
            .bind(scope)
            .bind(bucket.full())
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        let lock = if matches!(tx, Tx::Postgres(_)) { " FOR UPDATE" } else { "" };
        let sql =
            format!("SELECT tokens, refilled_at FROM dict_rate_buckets WHERE tenant_id = $1 AND scope = $2{lock}");
        let (tokens, since): (i64, DateTime<Utc>) = on_tx!(&mut tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(scope).fetch_one(conn).await
        })?;
        let refilled = bucket.refill(tokens, since, now.max(since));
        let (left, admitted) = change(refilled);
        on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE dict_rate_buckets SET tokens = $3, refilled_at = $4 WHERE tenant_id = $1 AND scope = $2")
                .bind(tenant.to_string())
                .bind(scope)
                .bind(left)
                .bind(now.max(since))
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(BucketBalance { tokens: left, admitted })
    }
}

impl Store {
    /// Recomputes the local VSync of `key_type` from the stored CIDs of its active entries (after
    /// a reconciliation, so drift in the running value cannot survive it). Returns the value.
    pub async fn recompute_vsync(&self, tenant: Uuid, key_type: &str, now: DateTime<Utc>) -> StoreResult<VSync> {
        let mut tx = self.begin().await?;
        ensure_vsync(&mut tx, tenant, key_type, now).await?;
        let cids: Vec<Option<String>> = on_tx!(&mut tx, conn => {
            sqlx::query_scalar("SELECT cid FROM dict_entries WHERE tenant_id = $1 AND key_type = $2 AND status = 'ACTIVE'")
                .bind(tenant.to_string())
                .bind(key_type)
                .fetch_all(conn)
                .await
        })?;
        let mut v = VSync::EMPTY;
        for hex in cids.iter().flatten() {
            v.toggle(&Cid::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("cid {hex:?}")))?);
        }
        on_tx!(&mut tx, conn => {
            sqlx::query("UPDATE dict_vsync SET local_vsync = $3, updated_at = $4 WHERE tenant_id = $1 AND key_type = $2")
                .bind(tenant.to_string())
                .bind(key_type)
                .bind(v.to_hex())
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(v)
    }
}

// ============================================================================================ fraud markers

/// A fraud marker a tenant registered at BTG. BTG keeps the marker; this row only says whose it
/// is, so another tenant on the same BTG identity can neither see nor cancel it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FraudMarkerOwner {
    pub tenant_id: Uuid,
    pub btg_id: String,
    pub document: String,
    pub fraud_type: String,
    pub key: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Records a marker as the tenant's; recording the same BTG id again changes nothing.
    pub async fn record_fraud_marker(&self, m: &FraudMarkerOwner) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO dict_fraud_markers (tenant_id, btg_id, document, fraud_type, pix_key, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (btg_id) DO NOTHING",
            )
            .bind(m.tenant_id.to_string())
            .bind(&m.btg_id)
            .bind(&m.document)
            .bind(&m.fraud_type)
            .bind(&m.key)
            .bind(m.created_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Whether the tenant registered the marker with this BTG id.
    pub async fn owns_fraud_marker(&self, tenant: Uuid, btg_id: &str) -> StoreResult<bool> {
        let row: Option<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT btg_id FROM dict_fraud_markers WHERE tenant_id = $1 AND btg_id = $2")
                .bind(tenant.to_string())
                .bind(btg_id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.is_some())
    }

    /// The BTG ids of the tenant's markers on a document.
    pub async fn fraud_marker_ids(&self, tenant: Uuid, document: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT btg_id FROM dict_fraud_markers WHERE tenant_id = $1 AND document = $2")
                .bind(tenant.to_string())
                .bind(document)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
