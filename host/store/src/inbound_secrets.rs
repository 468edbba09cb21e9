//! The HMAC secrets that authenticate a tenant's BTG webhooks, as references (`env:NAME`,
//! `file:/path`). Rotation keeps two valid during an overlap: the new one becomes current and the
//! one it replaces retires at a set time, so BTG can switch whenever it likes inside the window.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Store, StoreResult, on_pool, on_tx};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct InboundSecret {
    pub secret_ref: String,
    pub created_at: DateTime<Utc>,
    /// `None` for the current secret.
    pub retires_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Makes `secret_ref` the tenant's current secret. The one it replaces stays valid until
    /// `previous_until` (pass `now` to retire it at once); secrets already retired are deleted.
    pub async fn rotate_inbound_secret(
        &self,
        tenant: Uuid,
        secret_ref: &str,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, conn => {
            sqlx::query(
                "UPDATE tenant_inbound_secrets SET retires_at = $3
                 WHERE tenant_id = $1 AND retires_at IS NULL AND secret_ref <> $2",
            )
            .bind(tenant.to_string())
            .bind(secret_ref)
            .bind(previous_until)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM tenant_inbound_secrets WHERE tenant_id = $1 AND retires_at <= $2")
                .bind(tenant.to_string())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO tenant_inbound_secrets (tenant_id, secret_ref, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, secret_ref) DO UPDATE SET retires_at = NULL",
            )
            .bind(tenant.to_string())
            .bind(secret_ref)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// The secrets that authenticate the tenant's webhooks at `now`, current first.
    pub async fn inbound_secrets(&self, tenant: Uuid, now: DateTime<Utc>) -> StoreResult<Vec<InboundSecret>> {
        Ok(on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT secret_ref, created_at, retires_at FROM tenant_inbound_secrets
                 WHERE tenant_id = $1 AND (retires_at IS NULL OR retires_at > $2)
                 ORDER BY retires_at IS NOT NULL, created_at DESC",
            )
            .bind(tenant.to_string())
            .bind(now)
            .fetch_all(pool)
            .await
        })?)
    }
}
