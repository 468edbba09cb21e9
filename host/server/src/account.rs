//! `X-Account-Id` with ownership: the account must exist in the tenant's own Midaz ledger, have a
//! CRM alias, and not be recorded for another tenant (the first proof records it); the holder's
//! data comes along for the handler.
//!
//! A proven ownership is kept briefly per (tenant, account) (`cache.account_ttl_ms`), so a burst
//! of requests for one account asks Midaz and the CRM once. The Midaz `blocked` flag and status
//! are part of what is kept: a block takes effect here within the TTL, and Midaz itself refuses
//! holds on a blocked account, so no money moves from it in the meantime.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use moka::sync::Cache;
use pix_core::error::ErrorCode;
use pix_integrations::midaz::LedgerAccount;
use pix_integrations::{AccountHolder, IntegrationError};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::ApiError;
use crate::extract::AccountId;
use crate::integrations::upstream_error;

/// An account of the calling tenant, with its holder (document, name, banking details).
#[derive(Debug, Clone)]
pub struct OwnedAccount {
    pub id: Uuid,
    /// The Midaz account (alias, status, blocked flag).
    pub ledger: LedgerAccount,
    pub holder: AccountHolder,
}

/// How long a proven ownership is reused by default.
pub const DEFAULT_ACCOUNT_TTL: Duration = Duration::from_secs(2);

/// Bounded so that many distinct accounts cannot grow memory without limit.
const MAX_ACCOUNTS: u64 = 50_000;

/// Proven ownerships by (tenant, account). Only successes are kept: an account opened after a
/// "not found" is usable on its next request.
pub struct AccountCache {
    /// `None` when the TTL is zero.
    entries: Option<Cache<(Uuid, Uuid), OwnedAccount>>,
}

impl AccountCache {
    pub fn new(ttl: Duration) -> AccountCache {
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder().max_capacity(MAX_ACCOUNTS).time_to_live(ttl).support_invalidation_closures().build()
        });
        AccountCache { entries }
    }

    fn get(&self, tenant: Uuid, account: Uuid) -> Option<OwnedAccount> {
        self.entries.as_ref()?.get(&(tenant, account))
    }

    fn insert(&self, tenant: Uuid, account: &OwnedAccount) {
        if let Some(entries) = &self.entries {
            entries.insert((tenant, account.id), account.clone());
        }
    }

    /// Drops a tenant's entries (its integrations changed: another ledger may own other accounts).
    pub fn forget_tenant(&self, tenant: Uuid) {
        if let Some(entries) = &self.entries {
            // Only fails when closures are unsupported, which `new` enables.
            let _ = entries.invalidate_entries_if(move |(t, _), _| *t == tenant);
        }
    }
}

impl FromRequestParts<AppState> for OwnedAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AccountId(id) = AccountId::from_request_parts(parts, state).await?;
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, state).await?;
        let cache = state.integrations.accounts();
        if let Some(owned) = cache.get(tenant.id, id) {
            return Ok(owned);
        }
        let clients = state.integrations.for_tenant(&tenant)?;
        let not_ours =
            || ApiError::new(ErrorCode::AccountNotFound, "X-Account-Id is not an account of this institution");
        let ledger = match clients.ledger.account(&id.to_string()).await {
            Ok(ledger) => ledger,
            Err(IntegrationError::NotFound { .. }) => return Err(not_ours()),
            Err(e) => return Err(upstream_error("ledger account", e)),
        };
        let holder = match clients.holders.account_holder(&id.to_string()).await {
            Ok(holder) => holder,
            Err(IntegrationError::NotFound { .. }) => {
                return Err(ApiError::new(ErrorCode::AccountNotFound, "X-Account-Id has no CRM alias (holder data)"));
            }
            Err(e) => return Err(upstream_error("account holder", e)),
        };
        // First come, first served: an account recorded for another tenant is never ours, even
        // if a ledger were ever shared by mistake.
        let ledger_id = tenant.midaz_ledger_id.as_deref().unwrap_or_default();
        if state.store.claim_account(tenant.id, id, ledger_id, state.clock.now()).await? != tenant.id {
            tracing::warn!(tenant = %tenant.id, account = %id, "account recorded for another tenant");
            return Err(not_ours());
        }
        let owned = OwnedAccount { id, ledger, holder };
        cache.insert(tenant.id, &owned);
        Ok(owned)
    }
}
