//! Which tenant a Midaz account belongs to, recorded the first time a tenant proves it (the
//! account exists in that tenant's ledger). A recorded account is never accepted from another
//! tenant, even if a ledger were ever shared by mistake.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Store, StoreResult, on_pool, parse_uuid};

impl Store {
    /// Records that `account` (in `ledger`) belongs to `tenant` unless it is already recorded,
    /// and returns the tenant it belongs to: `tenant`, or the one that recorded it first.
    pub async fn claim_account(
        &self,
        tenant: Uuid,
        account: Uuid,
        ledger: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Uuid> {
        if let Some(owner) = self.account_owner(account).await? {
            return Ok(owner);
        }
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO tenant_accounts (account_id, tenant_id, ledger_id, recorded_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (account_id) DO NOTHING",
            )
            .bind(account.to_string())
            .bind(tenant.to_string())
            .bind(ledger)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        // Another request may have recorded it between the read and the insert.
        Ok(self.account_owner(account).await?.unwrap_or(tenant))
    }

    /// The tenant an account was recorded for, if any.
    pub async fn account_owner(&self, account: Uuid) -> StoreResult<Option<Uuid>> {
        let row: Option<(String,)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT tenant_id FROM tenant_accounts WHERE account_id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await
        })?;
        row.map(|(t,)| parse_uuid(&t)).transpose()
    }
}
