//! The ports a use case reaches the world through. The server implements them over its
//! configured clients and the wasmtime policy runtime; tests may implement them with fakes.

use std::sync::Arc;

use futures::future::BoxFuture;
use pix_integrations::midaz::LedgerAccount;
use pix_integrations::{AccountHolder, Btg, HolderDirectory, Ledger};
use pix_policy::{
    CashinDecision, CashinInput, FeeDecision, FeeInput, FraudDecision, FraudInput, RefundSplitDecision,
    RefundSplitInput,
};
use pix_store::tenants::Tenant;
use uuid::Uuid;

use crate::AppResult;

/// One tenant's view of the three upstreams.
pub struct TenantClients {
    pub ledger: Arc<dyn Ledger>,
    pub holders: Arc<dyn HolderDirectory>,
    pub btg: Arc<dyn Btg>,
}

/// BTG, Midaz and the CRM, per tenant (each tenant has its own ledger and credentials).
pub trait Upstreams: Send + Sync {
    fn for_tenant(&self, tenant: &Tenant) -> AppResult<Arc<TenantClients>>;
}

/// A policy's answer and the SHA-256 of the component that gave it.
#[derive(Debug, Clone)]
pub struct Decided<T> {
    pub output: T,
    pub policy_sha256: String,
}

/// A tenant-specific check of a fee decision; a failed check is a policy error (fail-safe).
pub type FeeCheck<'c> = dyn Fn(&FeeDecision) -> Result<(), String> + Send + Sync + 'c;

/// The institution's rules (WebAssembly components). A decision never fails: a trap, a
/// timeout or an invalid answer yields the kind's fail-safe.
pub trait Policies: Send + Sync {
    fn fee<'a>(
        &'a self,
        tenant: Uuid,
        input: &'a FeeInput,
        check: &'a FeeCheck<'a>,
    ) -> BoxFuture<'a, Decided<FeeDecision>>;
    fn fraud<'a>(&'a self, tenant: Uuid, input: &'a FraudInput) -> BoxFuture<'a, Decided<FraudDecision>>;
    fn cashin<'a>(&'a self, tenant: Uuid, input: &'a CashinInput) -> BoxFuture<'a, Decided<CashinDecision>>;
    fn refund_split<'a>(
        &'a self,
        tenant: Uuid,
        input: &'a RefundSplitInput,
    ) -> BoxFuture<'a, Decided<RefundSplitDecision>>;
    /// The account the tenant's fee fail-safe posts to: always an allowed fee account.
    fn default_fee_account(&self, tenant: Uuid) -> String;
}

/// A customer's account of the tenant: its Midaz account and its CRM holder.
#[derive(Debug, Clone)]
pub struct CustomerAccount {
    pub id: Uuid,
    pub ledger: LedgerAccount,
    pub holder: AccountHolder,
}
