//! Fraud review: cash-outs that fraud triage sent to an operator (`IN_REVIEW`) wait here until
//! released (processing continues: fee, hold, BTG) or rejected (FAILED, nothing was held).

use axum::Json;
use axum::extract::State;
use pix_core::error::ErrorCode;
use pix_store::jobs::enqueue;
use pix_store::transfers::save_transfer;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::cashout::{advance_job, run_inline};
use super::{TransferView, fail, record_event};
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath};
use crate::routes::ErrorResponse;

pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reviews)).routes(routes!(decide_review))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReviewDecision {
    /// `RELEASE` (process it) or `REJECT` (fail it).
    #[schema(example = "RELEASE")]
    pub decision: String,
    /// Kept on the transfer (`details.review.note`).
    pub note: Option<String>,
}

/// Cash-outs waiting for review, oldest first (at most 100).
#[utoipa::path(get, path = "/v1/admin/transfer-reviews", tag = "Transfers", security(("admin_token" = [])),
    responses((status = 200, body = Vec<TransferView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
async fn list_reviews(State(state): State<AppState>, _admin: CurrentAdmin) -> ApiResult<Json<Vec<TransferView>>> {
    let waiting = state.store.transfers_in_review(100).await?;
    Ok(Json(waiting.iter().map(TransferView::from).collect()))
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
    let mut t = state
        .store
        .transfer(tenant.id, transfer_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::TransferNotFound, "no transfer with this id"))?;
    if t.status != "IN_REVIEW" {
        return Err(ApiError::new(
            ErrorCode::TransferNotInReview,
            format!("the transfer is {}, not IN_REVIEW", t.status),
        ));
    }
    let now = state.clock.now();
    t.details["review"] = json!({"decision": body.decision, "note": body.note, "by": admin.credential_id, "at": now});
    t.updated_at = now;
    if release {
        t.status = "PENDING".into();
    } else {
        fail(&mut t, "FRAUD_REVIEW_REJECTED", "rejected by a fraud reviewer", now);
        t.step = "RELEASED".into();
    }
    let mut tx = state.store.begin().await?;
    if !save_transfer(&mut tx, &t).await? {
        return Err(ApiError::new(ErrorCode::TransferNotInReview, "the transfer changed meanwhile; read it again"));
    }
    if release {
        enqueue(&mut tx, &advance_job(&t, now + chrono::Duration::seconds(super::cashout::INLINE_GRACE_SECS)), now)
            .await?;
    }
    record_event(&mut tx, &t, now).await?;
    tx.commit().await?;
    t.version += 1;
    tracing::info!(transfer = %t.id, decision = %body.decision, "fraud review decided");
    if release {
        t = run_inline(&state, &tenant, t).await?;
    }
    Ok(Json(TransferView::from(&t)))
}
