//! BTG, Midaz and CRM clients per tenant. Endpoints and credentials come from configuration;
//! each tenant's Midaz organization and ledger (and its ISPB for BTG) are laid over them. Clients
//! are built on first use and kept, so token caches and circuit breakers live per tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pix_app::{AppError, Upstreams};
use pix_core::error::ErrorCode;
use pix_integrations::{BtgClient, CrmClient, IntegrationError, MidazClient};
use pix_store::tenants::Tenant;
use uuid::Uuid;

use crate::account::{AccountCache, DEFAULT_ACCOUNT_TTL};
use crate::config::IntegrationsConfig;
use crate::error::ApiError;

pub use pix_app::TenantClients;

pub struct Integrations {
    base: IntegrationsConfig,
    clients: Mutex<HashMap<Uuid, Arc<TenantClients>>>,
    /// Proven `X-Account-Id` ownerships; they depend on the tenant's clients, so `forget` drops them.
    accounts: AccountCache,
}

impl Integrations {
    pub fn new(base: IntegrationsConfig) -> Integrations {
        Integrations { base, clients: Mutex::default(), accounts: AccountCache::new(DEFAULT_ACCOUNT_TTL) }
    }

    /// Sets how long a proven account ownership is reused (zero: never).
    pub fn with_account_ttl(mut self, ttl: Duration) -> Integrations {
        self.accounts = AccountCache::new(ttl);
        self
    }

    pub fn accounts(&self) -> &AccountCache {
        &self.accounts
    }

    pub fn for_tenant(&self, tenant: &Tenant) -> Result<Arc<TenantClients>, AppError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&tenant.id) {
            return Ok(c.clone());
        }
        let mut midaz = self.base.midaz.clone();
        let mut crm = self.base.crm.clone();
        let mut btg = self.base.btg.clone();
        if let Some(org) = &tenant.midaz_organization_id {
            midaz.organization_id.clone_from(org);
            crm.organization_id.clone_from(org);
        }
        if let Some(ledger) = &tenant.midaz_ledger_id {
            midaz.ledger_id.clone_from(ledger);
            crm.ledger_id.clone_from(ledger);
        }
        btg.ispb.clone_from(&tenant.ispb);
        let built = Arc::new(TenantClients {
            ledger: Arc::new(MidazClient::new(&midaz).map_err(internal)?),
            holders: Arc::new(CrmClient::new(&crm).map_err(internal)?),
            btg: Arc::new(BtgClient::new(&btg).map_err(internal)?),
        });
        clients.insert(tenant.id, built.clone());
        Ok(built)
    }

    /// Drops a tenant's cached clients (after its settings change).
    pub fn forget(&self, tenant: Uuid) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&tenant);
        self.accounts.forget_tenant(tenant);
    }
}

impl Upstreams for Integrations {
    fn for_tenant(&self, tenant: &Tenant) -> Result<Arc<TenantClients>, AppError> {
        Integrations::for_tenant(self, tenant)
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("building upstream clients: {e}"))
}

/// Maps an upstream failure to the API: "not found" stays a client error, the rest says which
/// upstream failed without leaking its answer.
pub fn upstream_error(what: &str, e: IntegrationError) -> ApiError {
    match e {
        IntegrationError::NotFound { .. } => ApiError::new(ErrorCode::ResourceNotFound, format!("{what} not found")),
        IntegrationError::Timeout { .. }
        | IntegrationError::CircuitOpen { .. }
        | IntegrationError::Unavailable { .. } => {
            tracing::warn!(error = %e, "upstream unavailable");
            ApiError::new(ErrorCode::UpstreamUnavailable, format!("{what}: upstream unavailable, retry later"))
        }
        other => {
            tracing::error!(error = %other, "upstream call failed");
            ApiError::new(ErrorCode::UpstreamUnavailable, format!("{what}: upstream call failed"))
        }
    }
}
