//! API credentials: bearer tokens of tenants and of operators (admin credentials have no tenant).
//!
//! A token is shown once, when issued; only its SHA-256 is stored, so a leaked database does not
//! leak usable credentials. A credential may carry an expiry and can be revoked; an expired or
//! revoked token resolves to `None`. Resolved credentials are cached per process for
//! `cache.credential_ttl_ms` (see `short_cache`): a revocation made through this process applies
//! at once, one made by another process within that TTL.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::tenants::new_token;
pub use crate::tenants::{Credential, IssuedToken, Principal, token_sha256};
use crate::{Store, StoreError, StoreResult, on_pool, parse_uuid};

impl Principal {
    pub fn credential_id(&self) -> Uuid {
        match self {
            Principal::Tenant { credential_id, .. } | Principal::Admin { credential_id } => *credential_id,
        }
    }
}

/// What an operator may see of a credential: never the token nor its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub id: Uuid,
    /// `None` for an admin credential.
    pub tenant_id: Option<Uuid>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct InfoRow {
    id: String,
    tenant_id: Option<String>,
    label: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<InfoRow> for CredentialInfo {
    type Error = StoreError;
    fn try_from(r: InfoRow) -> StoreResult<Self> {
        Ok(CredentialInfo {
            id: parse_uuid(&r.id)?,
            tenant_id: r.tenant_id.as_deref().map(parse_uuid).transpose()?,
            label: r.label,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

const INFO_COLUMNS: &str = "id, tenant_id, label, created_at, expires_at, revoked_at";

fn expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| at <= now)
}

impl Store {
    /// Issues a bearer token for `tenant` (or an admin token when `tenant` is `None`), valid
    /// until revoked.
    pub async fn issue_token(&self, tenant: Option<Uuid>, label: &str, now: DateTime<Utc>) -> StoreResult<IssuedToken> {
        self.issue_credential(tenant, label, None, now).await
    }

    /// Issues a bearer token that stops working at `expires_at` (if given).
    pub async fn issue_credential(
        &self,
        tenant: Option<Uuid>,
        label: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<IssuedToken> {
        let (role, prefix) = match tenant {
            Some(_) => ("tenant", "pix"),
            None => ("admin", "pixadm"),
        };
        let token = new_token(prefix);
        let credential_id = pix_core::ids::new_id();
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO api_credentials (id, tenant_id, role, token_sha256, label, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(credential_id.to_string())
            .bind(tenant.map(|t| t.to_string()))
            .bind(role)
            .bind(token_sha256(&token))
            .bind(label)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(IssuedToken { credential_id, token })
    }

    /// [`Store::credential_at`] at the wall-clock time.
    pub async fn credential(&self, token: &str) -> StoreResult<Option<Credential>> {
        self.credential_at(token, Utc::now()).await
    }

    /// Resolves a presented bearer token with its tenant, from the credential cache when it was
    /// resolved within the TTL. Revoked, expired and unknown tokens resolve to `None` and are
    /// never cached.
    pub async fn credential_at(&self, token: &str, now: DateTime<Utc>) -> StoreResult<Option<Credential>> {
        let hash = token_sha256(token);
        if let Some(cached) = self.credentials.get(&hash) {
            if !expired(cached.expires_at, now) {
                return Ok(Some(cached));
            }
            self.credentials.remove(&hash);
            return Ok(None);
        }
        let Some((principal, expires_at)) = self.lookup(&hash, now).await? else {
            return Ok(None);
        };
        let tenant = match &principal {
            Principal::Tenant { tenant_id, .. } => self.tenant(*tenant_id).await?,
            Principal::Admin { .. } => None,
        };
        let credential = Credential { principal, tenant, expires_at };
        // A tenant credential whose tenant is gone is refused; keep only usable answers.
        let usable = matches!(credential.principal, Principal::Admin { .. }) || credential.tenant.is_some();
        if usable {
            self.credentials.insert(hash, credential.clone());
        }
        Ok(Some(credential))
    }

    /// [`Store::authenticate_at`] at the wall-clock time.
    pub async fn authenticate(&self, token: &str) -> StoreResult<Option<Principal>> {
        self.authenticate_at(token, Utc::now()).await
    }

    /// Resolves a presented bearer token (no cache); revoked, expired and unknown tokens resolve
    /// to `None`.
    pub async fn authenticate_at(&self, token: &str, now: DateTime<Utc>) -> StoreResult<Option<Principal>> {
        Ok(self.lookup(&token_sha256(token), now).await?.map(|(p, _)| p))
    }

    async fn lookup(&self, hash: &str, now: DateTime<Utc>) -> StoreResult<Option<(Principal, Option<DateTime<Utc>>)>> {
        type Row = (String, Option<String>, String, Option<DateTime<Utc>>);
        let row: Option<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, role, expires_at FROM api_credentials
                 WHERE token_sha256 = $1 AND revoked_at IS NULL",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await
        })?;
        let Some((id, tenant_id, role, expires_at)) = row else {
            return Ok(None);
        };
        if expired(expires_at, now) {
            return Ok(None);
        }
        let credential_id = parse_uuid(&id)?;
        let principal = match (role.as_str(), tenant_id) {
            ("tenant", Some(t)) => Principal::Tenant { tenant_id: parse_uuid(&t)?, credential_id },
            ("admin", None) => Principal::Admin { credential_id },
            (other, _) => return Err(StoreError::Corrupt(format!("credential role {other:?}"))),
        };
        Ok(Some((principal, expires_at)))
    }

    /// The credentials of `tenant` (admin credentials when `None`), revoked ones included,
    /// oldest first.
    pub async fn list_credentials(&self, tenant: Option<Uuid>) -> StoreResult<Vec<CredentialInfo>> {
        let sql = format!(
            "SELECT {INFO_COLUMNS} FROM api_credentials
             WHERE (tenant_id = $1 OR ($1 IS NULL AND tenant_id IS NULL))
             ORDER BY created_at, id"
        );
        let rows: Vec<InfoRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant.map(|t| t.to_string()))
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(CredentialInfo::try_from).collect()
    }

    pub async fn credential_info(&self, id: Uuid) -> StoreResult<Option<CredentialInfo>> {
        let sql = format!("SELECT {INFO_COLUMNS} FROM api_credentials WHERE id = $1");
        let row: Option<InfoRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id.to_string()).fetch_optional(pool).await
        })?;
        row.map(CredentialInfo::try_from).transpose()
    }

    /// Revokes a credential. Scoped: a tenant can only revoke its own (`tenant` = its id).
    pub async fn revoke_token(&self, tenant: Option<Uuid>, credential_id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        let revoked: Option<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "UPDATE api_credentials SET revoked_at = $1
                 WHERE id = $2 AND revoked_at IS NULL
                   AND (tenant_id = $3 OR ($3 IS NULL AND tenant_id IS NULL))
                 RETURNING token_sha256",
            )
            .bind(now)
            .bind(credential_id.to_string())
            .bind(tenant.map(|t| t.to_string()))
            .fetch_optional(pool)
            .await
        })?;
        let (hash,) = revoked.ok_or(StoreError::NotFound)?;
        // This process stops honouring the token at once; others within the cache TTL.
        self.credentials.remove(&hash);
        Ok(())
    }

    /// Revokes any credential (operator action); revoking a revoked one changes nothing.
    /// `NotFound` if there is no such credential.
    pub async fn revoke_credential(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<CredentialInfo> {
        let revoked: Option<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "UPDATE api_credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
                 RETURNING token_sha256",
            )
            .bind(now)
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
        })?;
        if let Some((hash,)) = revoked {
            self.credentials.remove(&hash);
        }
        self.credential_info(id).await?.ok_or(StoreError::NotFound)
    }

    /// Sets (or, with `None`, removes) the expiry of a credential not revoked. `NotFound` if
    /// there is no such credential, `Conflict` if it is revoked.
    pub async fn set_credential_expiry(
        &self,
        id: Uuid,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<CredentialInfo> {
        let updated: Option<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "UPDATE api_credentials SET expires_at = $1 WHERE id = $2 AND revoked_at IS NULL
                 RETURNING token_sha256",
            )
            .bind(expires_at)
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
        })?;
        let info = self.credential_info(id).await?.ok_or(StoreError::NotFound)?;
        match updated {
            Some((hash,)) => {
                self.credentials.remove(&hash);
                Ok(info)
            }
            None => Err(StoreError::Conflict("the credential is revoked".into())),
        }
    }
}
