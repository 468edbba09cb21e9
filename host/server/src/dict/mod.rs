//! DICT: entries, key lookup, claims, MED records and reconciliation (issue #6).
//! The router, inbound-event handlers and background workers below are already wired into the
//! server; this module fills them in.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::inbound::InboundHandler;

/// Tenant routes (bearer auth and idempotency are applied by the router).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

/// Handlers for BTG events owned by DICT (e.g. `DICT_CLAIM`, `DICT_CID_FILE`).
pub fn inbound_handlers(_state: &AppState) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    Vec::new()
}

/// Background work owned by DICT (time-driven claim transitions, scheduled VSync checks).
pub fn spawn_workers(_state: &AppState, _shutdown: &CancellationToken, _tasks: &mut JoinSet<()>) {}
