//! Transfer routes and BTG payment handlers: thin adapters (parse → call → render) over the use
//! cases in `pix_app::transfers`, which hold every state transition (docs/transfers.md).

mod cashin;
mod cashout;
mod initiate;
mod queries;
mod review;
mod unblock;

use std::sync::Arc;

use pix_store::tenants::Tenant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub use pix_app::transfers::TransferView;

use crate::app::AppState;
use crate::inbound::InboundHandler;
use crate::worker::JobError;

/// Operator routes: reviews and incidents, and the trck.002 reports of intra-PSP settlements.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    review::admin_routes().merge(crate::reports::admin_routes())
}

/// Tenant routes (bearer auth and idempotency are applied by the router).
pub fn routes() -> OpenApiRouter<AppState> {
    initiate::routes().merge(cashout::routes()).merge(queries::routes()).merge(unblock::routes())
}

/// Handlers for the money events: BTG's payments here, its reversals in `crate::refunds`, and
/// the intra-PSP settlements this service queues for itself (delivered to `base`, its own URL),
/// and the camt.025 answers to their trck.002 reports.
pub fn inbound_handlers(state: &AppState, base: &str) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    let payments: Vec<(&'static str, Arc<dyn InboundHandler>)> = vec![
        ("PIX_PAYMENT", Arc::new(cashout::PaymentEvents(state.clone()))),
        ("PIX_PAYMENT_INBOUND", Arc::new(cashin::InboundPayments(state.clone()))),
    ];
    payments
        .into_iter()
        .chain(crate::refunds::inbound_handlers(state))
        .chain(crate::intra_psp::Deliveries::handlers(state, base))
        .chain(crate::reports::inbound_handlers(state))
        .collect()
}

/// The stuck-transfer sweeper (one per instance; they share the work through leases).
pub fn spawn_workers(state: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    tasks.spawn(pix_app::transfers::sweeper::run(state.app.clone(), shutdown.clone()));
    crate::reports::spawn_workers(state, shutdown, tasks);
    let every = std::time::Duration::from_millis(state.config.collections.expiry_interval_ms);
    tasks.spawn(pix_app::collections::run_expiry(state.app.clone(), every, shutdown.clone()));
}

/// The tenant an inbound event belongs to.
pub(crate) async fn event_tenant(state: &AppState, tenant_id: Uuid) -> Result<Tenant, JobError> {
    state
        .store
        .tenant(tenant_id)
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?
        .ok_or_else(|| JobError::Permanent("tenant gone".into()))
}

impl From<crate::account::OwnedAccount> for pix_app::CustomerAccount {
    fn from(a: crate::account::OwnedAccount) -> pix_app::CustomerAccount {
        pix_app::CustomerAccount { id: a.id, ledger: a.ledger, holder: a.holder }
    }
}
