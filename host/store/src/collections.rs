//! Collection storage: static BR Codes, COB/COBV charges and the keys that sign their location
//! payloads. Every query is scoped by tenant, except the location server's (by unguessable token)
//! and the expiry job's.

use chrono::{DateTime, Utc};
use pix_core::collection::{CollectionDetails, CollectionKind, CollectionStatus};
use sqlx::types::Json;
use uuid::Uuid;

use crate::query::{Where, bind_all, fetch_page, order};
use crate::{Store, StoreError, StoreResult, Tx, on_pool, on_tx, parse_uuid};

/// A static BR Code created through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticBrCode {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub receiver_key: String,
    /// Centavos; `None` when the payer types the amount.
    pub amount: Option<i64>,
    pub description: Option<String>,
    pub tx_id: Option<String>,
    pub emv: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct StaticRow {
    id: String,
    tenant_id: String,
    account_id: String,
    receiver_key: String,
    amount: Option<i64>,
    description: Option<String>,
    tx_id: Option<String>,
    emv: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<StaticRow> for StaticBrCode {
    type Error = StoreError;
    fn try_from(r: StaticRow) -> StoreResult<StaticBrCode> {
        Ok(StaticBrCode {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: parse_uuid(&r.account_id)?,
            receiver_key: r.receiver_key,
            amount: r.amount,
            description: r.description,
            tx_id: r.tx_id,
            emv: r.emv,
            created_at: r.created_at,
        })
    }
}

const STATIC_COLUMNS: &str = "id, tenant_id, account_id, receiver_key, amount, description, tx_id, emv, created_at";

/// An immediate or due-date charge.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Uuid,
    pub kind: CollectionKind,
    pub status: CollectionStatus,
    pub tx_id: String,
    pub receiver_key: String,
    /// Centavos: COB `amount`, COBV `amount.original`.
    pub amount: i64,
    pub details: CollectionDetails,
    pub location_token: String,
    /// Field 26.25 as written into the EMV (no scheme).
    pub location: String,
    pub emv: String,
    pub revision: i64,
    pub expires_at: DateTime<Utc>,
    pub paid_end_to_end_id: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct CollectionRow {
    id: String,
    tenant_id: String,
    account_id: String,
    kind: CollectionKind,
    status: CollectionStatus,
    tx_id: String,
    receiver_key: String,
    amount: i64,
    details: Json<CollectionDetails>,
    location_token: String,
    location: String,
    emv: String,
    revision: i64,
    expires_at: DateTime<Utc>,
    paid_end_to_end_id: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<CollectionRow> for Collection {
    type Error = StoreError;
    fn try_from(r: CollectionRow) -> StoreResult<Collection> {
        Ok(Collection {
            id: parse_uuid(&r.id)?,
            tenant_id: parse_uuid(&r.tenant_id)?,
            account_id: parse_uuid(&r.account_id)?,
            kind: r.kind,
            status: r.status,
            tx_id: r.tx_id,
            receiver_key: r.receiver_key,
            amount: r.amount,
            details: r.details.0,
            location_token: r.location_token,
            location: r.location,
            emv: r.emv,
            revision: r.revision,
            expires_at: r.expires_at,
            paid_end_to_end_id: r.paid_end_to_end_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        })
    }
}

const COLLECTION_COLUMNS: &str = "id, tenant_id, account_id, kind, status, tx_id, receiver_key, amount, details, \
    location_token, location, emv, revision, expires_at, paid_end_to_end_id, version, created_at, updated_at, deleted_at";

/// Filters of `GET /v1/collections/{immediate|duedate}`.
#[derive(Debug, Clone, Default)]
pub struct CollectionFilter {
    pub status: Option<CollectionStatus>,
    pub tx_id: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub descending: bool,
}

/// A key signing location payloads: PKCS#8 of an ES256 key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

fn key_context(kid: &str) -> String {
    format!("qr_signing_keys.private_key:{kid}")
}

impl Store {
    pub async fn insert_static_brcode(&self, code: &StaticBrCode) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO static_brcodes
                    (id, tenant_id, account_id, receiver_key, amount, description, tx_id, emv, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(code.id.to_string())
            .bind(code.tenant_id.to_string())
            .bind(code.account_id.to_string())
            .bind(&code.receiver_key)
            .bind(code.amount)
            .bind(&code.description)
            .bind(&code.tx_id)
            .bind(&code.emv)
            .bind(code.created_at)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// A page of the account's static codes, newest first, and the total count.
    pub async fn list_static_brcodes(
        &self,
        tenant: Uuid,
        account: Uuid,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StaticBrCode>, i64)> {
        let mut filter = Where::tenant(tenant);
        filter.text("account_id = ?", Some(&account.to_string()));
        let (rows, total) = fetch_page!(
            self,
            StaticRow,
            STATIC_COLUMNS,
            "static_brcodes",
            filter,
            order("created_at", true),
            limit,
            offset
        );
        Ok((rows.into_iter().map(StaticBrCode::try_from).collect::<StoreResult<_>>()?, total))
    }

    /// Inserts a collection; another of the tenant's collections with its txId is a `Conflict`.
    pub async fn insert_collection(&self, c: &Collection) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO collections
                    (id, tenant_id, account_id, kind, status, tx_id, receiver_key, amount, details, location_token,
                     location, emv, revision, expires_at, paid_end_to_end_id, version, created_at, updated_at,
                     deleted_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            )
            .bind(c.id.to_string())
            .bind(c.tenant_id.to_string())
            .bind(c.account_id.to_string())
            .bind(c.kind)
            .bind(c.status)
            .bind(&c.tx_id)
            .bind(&c.receiver_key)
            .bind(c.amount)
            .bind(Json(&c.details))
            .bind(&c.location_token)
            .bind(&c.location)
            .bind(&c.emv)
            .bind(c.revision)
            .bind(c.expires_at)
            .bind(&c.paid_end_to_end_id)
            .bind(c.version)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(c.deleted_at)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                StoreError::Conflict("another collection has this txId".into())
            } else {
                e.into()
            }
        })
    }

    /// The tenant's collection `id` of `kind`; another tenant's (or kind's) is `None`.
    pub async fn collection(&self, tenant: Uuid, kind: CollectionKind, id: Uuid) -> StoreResult<Option<Collection>> {
        let sql =
            format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 AND id = $2 AND kind = $3");
        let row: Option<CollectionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(kind)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Collection::try_from).transpose()
    }

    /// The tenant's collection with `tx_id` (of either kind).
    pub async fn collection_by_tx_id(&self, tenant: Uuid, tx_id: &str) -> StoreResult<Option<Collection>> {
        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 AND tx_id = $2");
        let row: Option<CollectionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.to_string())
                .bind(tx_id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Collection::try_from).transpose()
    }

    /// The collection served at a location (unauthenticated: the token is the secret).
    pub async fn collection_by_location(&self, kind: CollectionKind, token: &str) -> StoreResult<Option<Collection>> {
        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE location_token = $1 AND kind = $2");
        let row: Option<CollectionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(token).bind(kind).fetch_optional(pool).await
        })?;
        row.map(Collection::try_from).transpose()
    }

    /// A page of the account's collections of `kind`, and the total count.
    pub async fn list_collections(
        &self,
        tenant: Uuid,
        account: Uuid,
        kind: CollectionKind,
        f: &CollectionFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Collection>, i64)> {
        let mut filter = Where::tenant(tenant);
        filter.text("account_id = ?", Some(&account.to_string()));
        filter.text("kind = ?", Some(kind.as_str()));
        filter.text("status = ?", f.status.map(|s| s.as_str()));
        filter.text("tx_id = ?", f.tx_id.as_deref());
        filter.time("created_at >= ?", f.created_from);
        filter.time("created_at <= ?", f.created_to);
        let (rows, total) = fetch_page!(
            self,
            CollectionRow,
            COLLECTION_COLUMNS,
            "collections",
            filter,
            order("created_at", f.descending),
            limit,
            offset
        );
        Ok((rows.into_iter().map(Collection::try_from).collect::<StoreResult<_>>()?, total))
    }

    /// ACTIVE collections whose `expires_at` has passed, for the expiry job.
    pub async fn expired_collections(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Collection>> {
        let sql = format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE status = 'ACTIVE' AND expires_at <= $1
             ORDER BY expires_at, id LIMIT $2"
        );
        let rows: Vec<CollectionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(now).bind(limit).fetch_all(pool).await
        })?;
        rows.into_iter().map(Collection::try_from).collect()
    }

    /// Every signing key not retired, oldest first.
    pub async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows: Vec<(String, String, DateTime<Utc>)> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT kid, private_key, created_at FROM qr_signing_keys WHERE retired_at IS NULL
                 ORDER BY created_at, kid",
            )
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|(kid, sealed, created_at)| {
                let encoded = self
                    .sealer()
                    .open_or_plain(&sealed, &key_context(&kid))
                    .map_err(|e| StoreError::Corrupt(format!("signing key {kid}: {e}")))?;
                let pkcs8 =
                    hex::decode(&encoded).map_err(|e| StoreError::Corrupt(format!("signing key {kid}: {e}")))?;
                Ok(SigningKey { kid, pkcs8, created_at })
            })
            .collect()
    }

    /// Adds a signing key (sealed); an existing `kid` is left as it is.
    pub async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        let sealed = self.sealer().seal(&hex::encode(&key.pkcs8), &key_context(&key.kid));
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO qr_signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (kid) DO NOTHING",
            )
            .bind(&key.kid)
            .bind(&sealed)
            .bind(key.created_at)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }
}

/// Saves `c` if nobody moved it since it was read (optimistic, by version); `false` otherwise.
pub async fn save_collection(tx: &mut Tx, c: &Collection) -> StoreResult<bool> {
    let done = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE collections SET status = $3, amount = $4, details = $5, emv = $6, revision = $7,
                 expires_at = $8, paid_end_to_end_id = $9, updated_at = $10, deleted_at = $11,
                 version = version + 1
             WHERE tenant_id = $1 AND id = $2 AND version = $12",
        )
        .bind(c.tenant_id.to_string())
        .bind(c.id.to_string())
        .bind(c.status)
        .bind(c.amount)
        .bind(Json(&c.details))
        .bind(&c.emv)
        .bind(c.revision)
        .bind(c.expires_at)
        .bind(&c.paid_end_to_end_id)
        .bind(c.updated_at)
        .bind(c.deleted_at)
        .bind(c.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// The tenant's collection with `tx_id`, read in `tx`.
pub async fn collection_by_tx_id_in(tx: &mut Tx, tenant: Uuid, tx_id: &str) -> StoreResult<Option<Collection>> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 AND tx_id = $2");
    let row: Option<CollectionRow> = on_tx!(tx, conn => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant.to_string()).bind(tx_id).fetch_optional(conn).await
    })?;
    row.map(Collection::try_from).transpose()
}
