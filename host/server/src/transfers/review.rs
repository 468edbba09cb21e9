//! Operator routes: cash-outs held for fraud review (released or rejected), and cash-outs in
//! RECONCILIATION_REQUIRED because BTG contradicted their outcome.

use axum::Json;
use axum::extract::State;
use pix_app::transfers::{incidents, review};
use pix_core::error::ErrorCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::TransferView;
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath};
use crate::routes::ErrorResponse;

pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reviews)).routes(routes!(decide_review)).routes(routes!(list_incidents))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReviewDecision {
    /// `RELEASE` (process it) or `REJECT` (fail it).
    #[schema(example = "RELEASE", pattern = "^(RELEASE|REJECT)$")]
    pub decision: String,
    /// Kept on the transfer with the decision.
    pub note: Option<String>,
}

/// Cash-outs waiting for review, oldest first (at most 100).
#[utoipa::path(get, path = "/v1/admin/transfer-reviews", tag = "Transfers", security(("admin_token" = [])),
    responses((status = 200, body = Vec<TransferView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
async fn list_reviews(State(state): State<AppState>, _admin: CurrentAdmin) -> ApiResult<Json<Vec<TransferView>>> {
    let waiting = review::waiting(&state.app, 100).await?;
    Ok(Json(waiting.iter().map(TransferView::from).collect()))
}

/// Cash-outs whose outcome BTG contradicted (RECONCILIATION_REQUIRED), oldest first (at most
/// 100), with the incident: its kind, when it was detected and the ledger correction made.
#[utoipa::path(get, path = "/v1/admin/transfer-incidents", tag = "Transfers", security(("admin_token" = [])),
    responses((status = 200, body = Vec<TransferView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
async fn list_incidents(State(state): State<AppState>, _admin: CurrentAdmin) -> ApiResult<Json<Vec<TransferView>>> {
    let open = incidents::list(&state.app, 100).await?;
    Ok(Json(open.iter().map(TransferView::from).collect()))
}

/// Release or reject a cash-out held for fraud review.
#[utoipa::path(post, path = "/v1/admin/tenants/{tenant_id}/transfers/{transfer_id}/review", tag = "Transfers",
    params(("tenant_id" = Uuid, Path), ("transfer_id" = Uuid, Path)), request_body = ReviewDecision,
    security(("admin_token" = [])),
    responses((status = 200, body = TransferView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 409, body = ErrorResponse)))]
async fn decide_review(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath((tenant_id, transfer_id)): AppPath<(Uuid, Uuid)>,
    AppJson(body): AppJson<ReviewDecision>,
) -> ApiResult<Json<TransferView>> {
    let release = match body.decision.as_str() {
        "RELEASE" => true,
        "REJECT" => false,
        _ => return Err(ApiError::new(ErrorCode::InvalidField, "decision must be RELEASE or REJECT")),
    };
    let tenant = state
        .store
        .tenant(tenant_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no tenant with this id"))?;
    let decision = review::ReviewDecision { release, note: body.note, by: admin.credential_id };
    let t = review::decide(&state.app, &tenant, transfer_id, decision).await?;
    Ok(Json(TransferView::from(&t)))
}
