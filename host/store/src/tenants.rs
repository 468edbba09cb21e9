//! Tenants (institutions) and their API credentials' types; issuing, resolving, listing,
//! expiring and revoking credentials is in `credentials`.
//!
//! A bearer token is shown once, when created; only its SHA-256 is stored, so a leaked database
//! does not leak usable credentials.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, on_pool, parse_uuid};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub ispb: String,
    pub midaz_organization_id: Option<String>,
    pub midaz_ledger_id: Option<String>,
    /// Integration settings and policy bindings; grows with later features.
    pub settings: serde_json::Value,
    /// The tenant's own BTG client; `None` only for the demo tenant on the simulators.
    pub btg: Option<BtgIdentity>,
    /// What the client certificate on the mTLS webhook listener must name (CN or DNS SAN).
    pub inbound_client_subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A tenant's BTG OAuth2 client (and optional mTLS certificate). Holds references, never a
/// secret: `client_secret_ref` is `env:NAME` or `file:/path`, resolved when the client is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtgIdentity {
    pub client_id: String,
    pub client_secret_ref: String,
    pub certificate_file: Option<String>,
    pub private_key_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub ispb: String,
    pub midaz_organization_id: Option<String>,
    pub midaz_ledger_id: Option<String>,
    pub settings: serde_json::Value,
    pub btg: Option<BtgIdentity>,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    name: String,
    ispb: String,
    midaz_organization_id: Option<String>,
    midaz_ledger_id: Option<String>,
    settings: Json<serde_json::Value>,
    btg_client_id: Option<String>,
    btg_client_secret_ref: Option<String>,
    btg_certificate_file: Option<String>,
    btg_private_key_file: Option<String>,
    inbound_client_subject: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> StoreResult<Tenant> {
        Ok(Tenant {
            id: parse_uuid(&r.id)?,
            name: r.name,
            ispb: r.ispb,
            midaz_organization_id: r.midaz_organization_id,
            midaz_ledger_id: r.midaz_ledger_id,
            settings: r.settings.0,
            btg: match (r.btg_client_id, r.btg_client_secret_ref) {
                (Some(client_id), Some(client_secret_ref)) => Some(BtgIdentity {
                    client_id,
                    client_secret_ref,
                    certificate_file: r.btg_certificate_file,
                    private_key_file: r.btg_private_key_file,
                }),
                _ => None,
            },
            inbound_client_subject: r.inbound_client_subject,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Who a valid bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Tenant { tenant_id: Uuid, credential_id: Uuid },
    Admin { credential_id: Uuid },
}

/// A valid credential with, for a tenant credential, its tenant (`None` if the tenant is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub principal: Principal,
    pub tenant: Option<Tenant>,
    /// After this instant the token no longer authenticates.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A freshly issued credential: the only moment the plain token exists.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub credential_id: Uuid,
    pub token: String,
}

const TENANT_COLUMNS: &str = "id, name, ispb, midaz_organization_id, midaz_ledger_id, settings, btg_client_id, \
     btg_client_secret_ref, btg_certificate_file, btg_private_key_file, inbound_client_subject, created_at, updated_at";

/// Which uniqueness rule a tenant write broke, from the violated index.
fn tenant_conflict(e: &sqlx::Error, name: &str) -> StoreError {
    let detail = e.as_database_error().map(|d| d.message().to_owned()).unwrap_or_default();
    if detail.contains("ledger") {
        StoreError::Conflict("another tenant already uses this Midaz organization and ledger".into())
    } else if detail.contains("btg_client") {
        StoreError::Conflict("another tenant already uses this BTG client id".into())
    } else {
        StoreError::Conflict(format!("a tenant named {name:?} already exists"))
    }
}

/// Tokens are 32 random bytes, hex-encoded behind a prefix that says what they are for.
pub(crate) fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    pub async fn create_tenant(&self, new: NewTenant, now: DateTime<Utc>) -> StoreResult<Tenant> {
        let id = pix_core::ids::new_id();
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO tenants (id, name, ispb, midaz_organization_id, midaz_ledger_id, settings, created_at,
                     updated_at, btg_client_id, btg_client_secret_ref, btg_certificate_file, btg_private_key_file)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11)",
            )
            .bind(id.to_string())
            .bind(&new.name)
            .bind(&new.ispb)
            .bind(&new.midaz_organization_id)
            .bind(&new.midaz_ledger_id)
            .bind(Json(&new.settings))
            .bind(now)
            .bind(new.btg.as_ref().map(|b| &b.client_id))
            .bind(new.btg.as_ref().map(|b| &b.client_secret_ref))
            .bind(new.btg.as_ref().and_then(|b| b.certificate_file.as_ref()))
            .bind(new.btg.as_ref().and_then(|b| b.private_key_file.as_ref()))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| if crate::db::is_unique_violation(&e) { tenant_conflict(&e, &new.name) } else { e.into() })?;
        self.tenant(id).await?.ok_or(StoreError::NotFound)
    }

    /// The tenant `id` (kept briefly, like credentials: see `short_cache`).
    pub async fn tenant(&self, id: Uuid) -> StoreResult<Option<Tenant>> {
        if let Some(tenant) = self.tenants.get(&id) {
            return Ok(Some(tenant));
        }
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<TenantRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id.to_string()).fetch_optional(pool).await
        })?;
        let tenant = row.map(Tenant::try_from).transpose()?;
        if let Some(t) = &tenant {
            self.tenants.insert(id, t.clone());
        }
        Ok(tenant)
    }

    pub async fn tenant_by_name(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1");
        let row: Option<TenantRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(name).fetch_optional(pool).await
        })?;
        row.map(Tenant::try_from).transpose()
    }

    pub async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id");
        let rows: Vec<TenantRow> =
            on_pool!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await)?;
        rows.into_iter().map(Tenant::try_from).collect()
    }

    /// Points a tenant at its Midaz organization and ledger.
    pub async fn set_tenant_ledger(
        &self,
        tenant: Uuid,
        organization_id: &str,
        ledger_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE tenants SET midaz_organization_id = $2, midaz_ledger_id = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(tenant.to_string())
            .bind(organization_id)
            .bind(ledger_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| if crate::db::is_unique_violation(&e) { tenant_conflict(&e, "") } else { e.into() })?;
        self.forget_tenant_row(tenant);
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Replaces a tenant's settings (integration settings and policy bindings).
    pub async fn set_tenant_settings(
        &self,
        tenant: Uuid,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query("UPDATE tenants SET settings = $2, updated_at = $3 WHERE id = $1")
                .bind(tenant.to_string())
                .bind(Json(settings))
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        self.forget_tenant_row(tenant);
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Replaces a tenant's BTG client identity.
    pub async fn set_btg_identity(&self, tenant: Uuid, btg: &BtgIdentity, now: DateTime<Utc>) -> StoreResult<()> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query(
                "UPDATE tenants SET btg_client_id = $2, btg_client_secret_ref = $3, btg_certificate_file = $4,
                     btg_private_key_file = $5, updated_at = $6 WHERE id = $1",
            )
            .bind(tenant.to_string())
            .bind(&btg.client_id)
            .bind(&btg.client_secret_ref)
            .bind(&btg.certificate_file)
            .bind(&btg.private_key_file)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(|e| if crate::db::is_unique_violation(&e) { tenant_conflict(&e, "") } else { e.into() })?;
        self.forget_tenant_row(tenant);
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Pins (or with `None` unpins) the client certificate subject of the tenant's mTLS webhooks.
    pub async fn set_inbound_client_subject(
        &self,
        tenant: Uuid,
        subject: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let done = on_pool!(self.db(), pool => {
            sqlx::query("UPDATE tenants SET inbound_client_subject = $2, updated_at = $3 WHERE id = $1")
                .bind(tenant.to_string())
                .bind(subject)
                .bind(now)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        self.forget_tenant_row(tenant);
        if done == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Drops this process's cached copies of a changed tenant row (cached credentials carry it).
    fn forget_tenant_row(&self, tenant: Uuid) {
        self.credentials.clear();
        self.tenants.remove(&tenant);
    }
}
