//! `POST /v1/transfers/{transfer_id}/unblock`, over `pix_app::transfers::unblock`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use pix_app::transfers::unblock::unblock;
use pix_core::error::ErrorCode;
use pix_core::transfer::BtgStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::TransferView;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppPath, parse_json};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(unblock_transfer))
}

/// The optional body; an empty or absent body is `{"allowNotFoundUnblock": false}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnblockTransfer {
    /// When BTG answers 404 for the EndToEndId: release the hold and fail the cash-out
    /// (`BTG_NOT_FOUND`) instead of answering `PIX-0419`. Default false.
    #[serde(default)]
    pub allow_not_found_unblock: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnblockedTransfer {
    /// The transfer after the unblock.
    pub transfer: TransferView,
    /// What BTG answered: `CONFIRMED`, `REJECTED`, `PROCESSING` or `NOT_FOUND`; null for an
    /// intra-PSP transfer (settled from local records, without BTG).
    #[schema(value_type = Option<String>, example = "CONFIRMED")]
    pub btg_status: Option<BtgStatus>,
    /// What happened.
    pub message: String,
}

/// An empty body is the default; any other is JSON like every body (PIX-0003…0006, 415).
fn body_of(headers: &HeaderMap, body: &Bytes) -> ApiResult<UnblockTransfer> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(UnblockTransfer::default());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be sent with Content-Type: application/json",
        ));
    }
    parse_json(body)
}

/// Unblock a cash-out stuck in PENDING or PROCESSING: read its payment back from BTG and drive
/// it to BTG's outcome.
///
/// CONFIRMED commits the hold (COMPLETED); REJECTED releases it (FAILED); PROCESSING changes
/// nothing (retry later). BTG's record must match the transfer's EndToEndId and amount, else
/// 409 `PIX-0420` and nothing changes. A BTG 404 is 409 `PIX-0419` (hold kept) unless
/// `allowNotFoundUnblock` is true and the cash-out is past the not-found grace: then the hold is
/// released and the cash-out FAILED with `BTG_NOT_FOUND`. Not a PENDING/PROCESSING cash-out: 422
/// `PIX-0417`; intra-PSP: 422 `PIX-0418`; not the account's: 404 `PIX-0407`; BTG unreachable:
/// 502 `PIX-0021` (nothing changes).
#[utoipa::path(post, path = "/v1/transfers/{transfer_id}/unblock", tag = "Transfers",
    params(("transfer_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header, description = "The account that owns the transfer")),
    request_body(content = Option<UnblockTransfer>, description = "optional; absent or empty means allowNotFoundUnblock=false"),
    security(("tenant_token" = [])),
    responses((status = 200, body = UnblockedTransfer),
              (status = 400, body = ErrorResponse, description = "Bad path, header or body (unknown field: `PIX-0006`)"),
              (status = 404, body = ErrorResponse, description = "No such transfer for this account (`PIX-0407`)"),
              (status = 409, body = ErrorResponse, description = "BTG has no record of the payment (`PIX-0419`) or BTG's record diverges (`PIX-0420`)"),
              (status = 422, body = ErrorResponse, description = "Not a PENDING/PROCESSING cash-out (`PIX-0417`) or intra-PSP (`PIX-0418`)"),
              (status = 502, body = ErrorResponse, description = "BTG or Midaz unavailable; nothing changed (`PIX-0021`)")))]
async fn unblock_transfer(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(transfer_id): AppPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<UnblockedTransfer>> {
    let request = body_of(&headers, &body)?;
    let done = unblock(&state.app, &tenant, account, transfer_id, request.allow_not_found_unblock).await?;
    Ok(Json(UnblockedTransfer {
        transfer: TransferView::from(&done.transfer),
        btg_status: done.btg_status,
        message: done.message,
    }))
}
