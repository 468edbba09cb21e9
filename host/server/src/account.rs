//! `X-Account-Id` with ownership: the account must exist in the tenant's Midaz ledger and have a
//! CRM alias; the holder's data comes along for the handler.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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

impl FromRequestParts<AppState> for OwnedAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AccountId(id) = AccountId::from_request_parts(parts, state).await?;
        let CurrentTenant(tenant) = CurrentTenant::from_request_parts(parts, state).await?;
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
        Ok(OwnedAccount { id, ledger, holder })
    }
}
