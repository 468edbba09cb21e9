//! BTG, Midaz and CRM clients per tenant. Endpoints and credentials come from configuration;
//! each tenant's Midaz organization and ledger (and its ISPB for BTG) are laid over them. Clients
//! are built on first use and kept, so token caches and circuit breakers live per tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pix_core::error::ErrorCode;
use pix_integrations::{Btg, BtgClient, CrmClient, HolderDirectory, IntegrationError, Ledger, MidazClient};
use pix_store::tenants::Tenant;
use uuid::Uuid;

use crate::config::IntegrationsConfig;
use crate::error::ApiError;

/// One tenant's view of the three upstreams.
pub struct TenantClients {
    pub ledger: Arc<dyn Ledger>,
    pub holders: Arc<dyn HolderDirectory>,
    pub btg: Arc<dyn Btg>,
}

pub struct Integrations {
    base: IntegrationsConfig,
    clients: Mutex<HashMap<Uuid, Arc<TenantClients>>>,
}

impl Integrations {
    pub fn new(base: IntegrationsConfig) -> Integrations {
        Integrations { base, clients: Mutex::default() }
    }

    pub fn for_tenant(&self, tenant: &Tenant) -> Result<Arc<TenantClients>, ApiError> {
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
            ledger: Arc::new(MidazClient::new(&midaz).map_err(ApiError::internal)?),
            holders: Arc::new(CrmClient::new(&crm).map_err(ApiError::internal)?),
            btg: Arc::new(BtgClient::new(&btg).map_err(ApiError::internal)?),
        });
        clients.insert(tenant.id, built.clone());
        Ok(built)
    }

    /// Drops a tenant's cached clients (after its settings change).
    pub fn forget(&self, tenant: Uuid) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&tenant);
    }
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
