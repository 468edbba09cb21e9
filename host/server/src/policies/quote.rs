//! `POST /v1/fees/quote`: what the tenant's fee policy charges for an operation, before it
//! happens (and the quickest way to see a policy change take effect).

use axum::Json;
use axum::extract::State;
use pix_core::money::{Amount, Money};
use pix_policy::{FeeCharge, FeeInput, Initiation, Operation, PersonType, Purpose};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runtime::Fee;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::ApiResult;
use crate::extract::AppJson;
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(quote_fee))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FeeQuoteRequest {
    /// `CASH_OUT`, `CASH_IN`, `REFUND` or `INTRA_PSP`.
    #[schema(value_type = String, example = "CASH_IN")]
    pub operation: Operation,
    /// `KEY` (default), `QR_CODE` or `MANUAL`.
    #[schema(value_type = Option<String>)]
    pub initiation: Option<Initiation>,
    /// `TRANSFER` (default), `CHANGE`, `WITHDRAWAL`, …
    #[schema(value_type = Option<String>)]
    pub purpose: Option<Purpose>,
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Amount,
    /// `NATURAL` (default) or `LEGAL`.
    #[schema(value_type = Option<String>)]
    pub payer_type: Option<PersonType>,
    #[schema(value_type = Option<String>)]
    pub payee_type: Option<PersonType>,
    #[serde(default)]
    pub account_segment: String,
    /// Operations of this kind the account made this month before this one.
    #[serde(default)]
    pub month_count: u32,
    #[schema(value_type = Option<String>)]
    pub month_volume: Option<Money>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeeQuote {
    #[schema(value_type = String, example = "9.90")]
    pub fee: Money,
    pub fee_account: String,
    /// `DEDUCTED` from the amount, or `ON_TOP` of it.
    #[schema(value_type = String)]
    pub charge: FeeCharge,
    pub label: String,
    /// The component that decided.
    pub policy_sha256: String,
}

/// Quote the fee of an operation with the tenant's active fee policy.
#[utoipa::path(post, path = "/v1/fees/quote", tag = "Policies", request_body = FeeQuoteRequest,
    security(("tenant_token" = [])),
    responses((status = 200, body = FeeQuote), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
pub(crate) async fn quote_fee(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AppJson(body): AppJson<FeeQuoteRequest>,
) -> ApiResult<Json<FeeQuote>> {
    let input = FeeInput {
        operation: body.operation,
        initiation: body.initiation.unwrap_or(Initiation::Key),
        purpose: body.purpose.unwrap_or(Purpose::Transfer),
        amount: body.amount.money().centavos(),
        payer_type: body.payer_type.unwrap_or(PersonType::Natural),
        payee_type: body.payee_type.unwrap_or(PersonType::Natural),
        account_segment: body.account_segment,
        intra_psp: body.operation == Operation::IntraPsp,
        local_time: pix_app::transfers::sao_paulo(state.clock.now()),
        month_count: body.month_count,
        month_volume: body.month_volume.unwrap_or(Money::ZERO).centavos(),
    };
    let (decision, policy_sha256) = state.policies.decide::<Fee>(tenant.id, &input).await;
    Ok(Json(FeeQuote {
        fee: Money::from_centavos(decision.fee),
        fee_account: decision.fee_account,
        charge: decision.charge,
        label: decision.label,
        policy_sha256,
    }))
}
