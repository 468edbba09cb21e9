//! BTG, Midaz and CRM clients per tenant. Endpoints come from configuration; each tenant's own
//! identity is laid over them: its Midaz organization and ledger (also its CRM scope), its BTG
//! client, certificate and ISPB. Clients are built on first use and kept, so token caches and
//! circuit breakers live per tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pix_app::{AppError, Upstreams};
use pix_core::error::ErrorCode;
use pix_integrations::{
    BreakerState, BtgClient, CircuitBreaker, CrmClient, IntegrationError, MidazClient, MtlsConfig, SecretRef, Upstream,
};
use pix_store::tenants::Tenant;
use uuid::Uuid;

use crate::account::{AccountCache, DEFAULT_ACCOUNT_TTL};
use crate::config::IntegrationsConfig;
use crate::error::ApiError;
use crate::upstream_calls::{CallLog, RecordingBtg};

pub use pix_app::TenantClients;

/// A tenant's clients, the `updated_at` of the tenant row they were built from, and the clients'
/// circuit breakers (exported in `/metrics`, shown on the console's Health page).
type BuiltClients = (DateTime<Utc>, Arc<TenantClients>, Vec<Arc<CircuitBreaker>>);

/// One upstream client's circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerReading {
    pub tenant: Uuid,
    pub upstream: Upstream,
    pub state: BreakerState,
}

pub struct Integrations {
    base: IntegrationsConfig,
    /// Built clients by tenant, with the `updated_at` of the tenant row they were built from: a
    /// changed identity (here or on another instance) rebuilds them.
    clients: Mutex<HashMap<Uuid, BuiltClients>>,
    /// Tenants without a BTG identity of their own use the configured one. Only the embedded
    /// demo does this: otherwise tenants could act on each other's BTG resources.
    shared_btg_identity: bool,
    /// Proven `X-Account-Id` ownerships; they depend on the tenant's clients, so `forget` drops them.
    accounts: AccountCache,
    /// Where the tenants' BTG payment calls are recorded (set by `AppState::new`).
    call_log: OnceLock<CallLog>,
}

impl Integrations {
    pub fn new(base: IntegrationsConfig) -> Integrations {
        Integrations {
            base,
            clients: Mutex::default(),
            shared_btg_identity: false,
            accounts: AccountCache::new(DEFAULT_ACCOUNT_TTL),
            call_log: OnceLock::new(),
        }
    }

    /// Records the tenants' BTG payment calls in `log` from now on (clients built before keep
    /// not recording; `AppState::new` calls this before any is built). A second call is ignored.
    pub fn record_calls(&self, log: CallLog) {
        let _ = self.call_log.set(log);
    }

    /// Records one BTG call made for a payment outside the recording client (the key statistics
    /// a cash-out's fraud triage reads, which do not name the payment).
    pub async fn record_call<T>(
        &self,
        tenant: Uuid,
        end_to_end_id: &str,
        operation: &str,
        started: (DateTime<Utc>, std::time::Instant),
        result: &pix_integrations::Result<T>,
    ) {
        if let Some(log) = self.call_log.get() {
            log.record(tenant, end_to_end_id, operation, started, result).await;
        }
    }

    /// The instant a call starts, for [`Integrations::record_call`].
    pub fn call_started(&self) -> (DateTime<Utc>, std::time::Instant) {
        let now = self.call_log.get().map(|l| l.clock.now()).unwrap_or_else(Utc::now);
        (now, std::time::Instant::now())
    }

    /// The circuit breaker of every client built so far (tenants that have not called an
    /// upstream since start have none yet), by tenant then upstream.
    pub fn breaker_states(&self) -> Vec<BreakerReading> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        let mut readings: Vec<BreakerReading> = clients
            .iter()
            .flat_map(|(tenant, (_, _, breakers))| {
                breakers.iter().map(|b| BreakerReading { tenant: *tenant, upstream: b.upstream(), state: b.state() })
            })
            .collect();
        readings.sort_by_key(|r| (r.tenant, r.upstream.to_string()));
        readings
    }

    /// Clients for the simulators (tests, benches): tenants without a BTG identity of their own
    /// use the simulators' one.
    pub fn sandbox(base: IntegrationsConfig) -> Integrations {
        Integrations::new(base).with_shared_btg_identity(true)
    }

    /// Lets tenants without their own BTG identity use the configured one (demo mode only).
    pub fn with_shared_btg_identity(mut self, shared: bool) -> Integrations {
        self.shared_btg_identity = shared;
        self
    }

    /// Sets how long a proven account ownership is reused (zero: never).
    pub fn with_account_ttl(mut self, ttl: Duration) -> Integrations {
        self.accounts = AccountCache::new(ttl);
        self
    }

    pub fn accounts(&self) -> &AccountCache {
        &self.accounts
    }

    /// The tenant's clients: its own Midaz organization and ledger (and CRM scope), its own BTG
    /// client and ISPB. A tenant without them gets no clients, never someone else's.
    pub fn for_tenant(&self, tenant: &Tenant) -> Result<Arc<TenantClients>, AppError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, c, _)) = clients.get(&tenant.id)
            && *version == tenant.updated_at
        {
            return Ok(c.clone());
        }
        let (Some(org), Some(ledger)) = (&tenant.midaz_organization_id, &tenant.midaz_ledger_id) else {
            return Err(not_configured(tenant, "it has no Midaz organization and ledger"));
        };
        let mut midaz = self.base.midaz.clone();
        let mut crm = self.base.crm.clone();
        let mut btg = self.base.btg.clone();
        midaz.organization_id.clone_from(org);
        midaz.ledger_id.clone_from(ledger);
        crm.organization_id.clone_from(org);
        crm.ledger_id.clone_from(ledger);
        btg.ispb.clone_from(&tenant.ispb);
        match &tenant.btg {
            Some(identity) => {
                let secret = identity.client_secret_ref.parse::<SecretRef>().and_then(|r| r.resolve()).map_err(|e| {
                    tracing::error!(tenant = %tenant.id, error = %e, "the tenant's BTG client secret cannot be read");
                    not_configured(tenant, "its BTG client secret cannot be read")
                })?;
                btg.client_id.clone_from(&identity.client_id);
                btg.client_secret = secret;
                let ca_file = btg.mtls.as_ref().and_then(|m| m.ca_file.clone());
                btg.mtls = match (&identity.certificate_file, &identity.private_key_file) {
                    (Some(cert_file), Some(key_file)) => {
                        Some(MtlsConfig { cert_file: cert_file.clone(), key_file: key_file.clone(), ca_file })
                    }
                    // A configured certificate belongs to another identity: never lend it.
                    _ => None,
                };
            }
            None if self.shared_btg_identity => {}
            None => return Err(not_configured(tenant, "it has no BTG identity")),
        }
        let (midaz, crm, btg) = (
            MidazClient::new(&midaz).map_err(internal)?,
            CrmClient::new(&crm).map_err(internal)?,
            BtgClient::new(&btg).map_err(internal)?,
        );
        let breakers = vec![btg.breaker(), midaz.breaker(), crm.breaker()];
        let btg: Arc<dyn pix_integrations::Btg> = match self.call_log.get() {
            Some(log) => Arc::new(RecordingBtg::new(Arc::new(btg), tenant.id, log.clone())),
            None => Arc::new(btg),
        };
        let built = Arc::new(TenantClients { ledger: Arc::new(midaz), holders: Arc::new(crm), btg });
        clients.insert(tenant.id, (tenant.updated_at, built.clone(), breakers));
        Ok(built)
    }

    /// Drops a tenant's cached clients (after its settings change).
    pub fn forget(&self, tenant: Uuid) {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).remove(&tenant);
        self.accounts.forget_tenant(tenant);
    }
}

/// Sets `pix_upstream_circuit_breaker_state{tenant, upstream, state}` for every built client: 1
/// for the breaker's current state (`closed`, `open`, `half_open`), 0 for the other two. Called
/// when `/metrics` is rendered, so the values are current when scraped.
pub fn export_breaker_metrics(integrations: &Integrations) {
    for reading in integrations.breaker_states() {
        for state in BreakerState::ALL {
            metrics::gauge!(
                "pix_upstream_circuit_breaker_state",
                "tenant" => reading.tenant.to_string(),
                "upstream" => reading.upstream.to_string(),
                "state" => state.as_str(),
            )
            .set(if state == reading.state { 1.0 } else { 0.0 });
        }
    }
}

/// A tenant that cannot reach its upstreams: the operator must finish its set-up.
fn not_configured(tenant: &Tenant, why: &str) -> AppError {
    AppError::refused(
        ErrorCode::TenantNotConfigured,
        format!("tenant {} cannot reach its upstreams: {why}; an operator must complete its set-up", tenant.id),
    )
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
