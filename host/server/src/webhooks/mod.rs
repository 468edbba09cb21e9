//! Outbound webhook engine: delivers the events features record with
//! `pix_store::events::record_outbound_event` to the tenant's endpoints (issue #7, item 6).
//! Routing (`pix_store::routing`, applied when an event is recorded), Standard Webhooks signatures (`signature`), the two-stage engine with
//! retries and dead letters (`engine`) and the operator endpoints (`admin`); see docs/webhooks.md.

pub mod admin;
pub mod engine;
pub mod signature;

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

pub use engine::{Engine, EngineSettings};

use crate::app::AppState;

/// Admin routes (admin credential already required by the router).
pub fn admin_routes() -> OpenApiRouter<AppState> {
    admin::routes()
}

/// The routing worker and the delivery loop.
pub fn spawn_workers(state: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    let workers = state.config.workers.clone();
    let grace = Duration::from_millis(state.config.server.shutdown_grace_ms);
    let settings = EngineSettings::from_config(&state.config);
    match Engine::new(state.store.clone(), state.clock.clone(), settings, &state.config.outbound) {
        Ok(engine) => {
            tasks.spawn(engine.routing_worker(workers).run(shutdown.clone(), grace));
            tasks.spawn(engine.run(shutdown.clone(), grace));
        }
        Err(e) => tracing::error!(error = %e, "webhook engine not started: its HTTP client could not be built"),
    }
}
