//! `/v1/admin/tenants/{tenant_id}/transfer-limits` (admin credential only): the largest transfer
//! a tenant allows, the cap on the fee its policy may return and the extra accounts that fee may
//! go to. Amounts are decimal strings (`"1000.00"`), `null` for "no limit".

use axum::Json;
use axum::extract::State;
use pix_core::error::ErrorCode;
use pix_core::money::Money;
use pix_store::StoreError;
use pix_store::limits::TransferLimits;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ErrorResponse;
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_transfer_limits, put_transfer_limits))
}

/// A tenant's transfer limits. Every field is optional on `PUT`: a missing amount means no limit
/// and a missing list means no accounts beyond the default one, so a `PUT` replaces them all.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TransferLimitsBody {
    /// Largest amount of one transfer; `null` = no tenant maximum.
    #[schema(value_type = Option<String>, example = "5000.00")]
    pub max_transfer_amount: Option<String>,
    /// Largest fee a fee policy may return; a larger one is refused and the fail-safe fee applies.
    #[schema(value_type = Option<String>, example = "10.00")]
    pub max_fee: Option<String>,
    /// Midaz aliases a fee policy may name besides the tenant's default fee account (the fee
    /// binding's `fee-account` parameter, else `@fees_revenue`), which is always allowed.
    #[schema(example = json!(["@tarifas"]))]
    pub fee_accounts: Vec<String>,
}

impl From<TransferLimits> for TransferLimitsBody {
    fn from(l: TransferLimits) -> Self {
        TransferLimitsBody {
            max_transfer_amount: l.max_transfer_amount.map(|m| m.to_string()),
            max_fee: l.max_fee.map(|m| m.to_string()),
            fee_accounts: l.fee_accounts,
        }
    }
}

impl TryFrom<TransferLimitsBody> for TransferLimits {
    type Error = ApiError;

    fn try_from(body: TransferLimitsBody) -> Result<Self, ApiError> {
        let amount = |field: &str, value: Option<String>| {
            value.map(|v| Money::parse(&v).map_err(|e| invalid(format!("{field}: {e}")))).transpose()
        };
        let limits = TransferLimits {
            max_transfer_amount: amount("maxTransferAmount", body.max_transfer_amount)?,
            max_fee: amount("maxFee", body.max_fee)?,
            fee_accounts: body.fee_accounts,
        };
        limits.validate().map_err(invalid)?;
        Ok(limits)
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::TransferLimitsInvalid, message)
}

fn tenant_not_found() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "tenant not found")
}

/// A tenant's transfer limits (the defaults when none were set).
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant_id}/transfer-limits", tag = "Admin",
    params(("tenant_id" = Uuid, Path)), security(("admin_token" = [])),
    responses((status = 200, body = TransferLimitsBody), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_transfer_limits(
    State(state): State<AppState>,
    _: CurrentAdmin,
    AppPath(tenant_id): AppPath<Uuid>,
) -> ApiResult<Json<TransferLimitsBody>> {
    if state.store.tenant(tenant_id).await?.is_none() {
        return Err(tenant_not_found());
    }
    Ok(Json(state.store.transfer_limits(tenant_id).await?.into()))
}

/// Replace a tenant's transfer limits.
#[utoipa::path(put, path = "/v1/admin/tenants/{tenant_id}/transfer-limits", tag = "Admin",
    params(("tenant_id" = Uuid, Path)), request_body = TransferLimitsBody, security(("admin_token" = [])),
    responses((status = 200, body = TransferLimitsBody),
               (status = 400, body = ErrorResponse, description = "PIX-0416: invalid limits"),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
async fn put_transfer_limits(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(tenant_id): AppPath<Uuid>,
    AppJson(body): AppJson<TransferLimitsBody>,
) -> ApiResult<Json<TransferLimitsBody>> {
    let limits = TransferLimits::try_from(body)?;
    match state.store.set_transfer_limits(tenant_id, &limits, state.clock.now()).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(tenant_not_found()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant = %tenant_id, admin = %admin.credential_id, "transfer limits replaced");
    Ok(Json(limits.into()))
}
