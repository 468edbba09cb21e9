//! `POST /v1/transfers/cashout/process` and BTG's `PIX_PAYMENT` events, over
//! `pix_app::transfers::cashout`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use pix_app::transfers::cashout::{ProcessCashout as Process, payment_event, process};
use pix_core::error::ErrorCode;
use pix_core::transfer::Purpose;
use pix_integrations::btg::BtgEvent;
use pix_store::inbound::InboundEvent;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{TransferView, event_tenant};
use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::dict::decode_event;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppJson;
use crate::idempotency::request_key;
use crate::inbound::InboundHandler;
use crate::routes::ErrorResponse;
use crate::worker::{JobError, JobFuture};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(process_cashout))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessCashout {
    pub initiation_id: Uuid,
}

/// `X-Purpose`: only TRANSFER (the default) and INSTANT_PAYMENT_REFUND (MED 2.0) are supported.
fn purpose(headers: &HeaderMap) -> ApiResult<Purpose> {
    let value = headers.get("x-purpose").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    match value {
        "" => Ok(Purpose::Transfer),
        "CHANGE" | "WITHDRAWAL" | "REFUND_AUTOMATIC_PIX" | "INSTALLMENT_PIX" => Err(ApiError::new(
            ErrorCode::InvalidPurpose,
            format!("X-Purpose {value} is not supported: use TRANSFER or INSTANT_PAYMENT_REFUND"),
        )),
        other => other.parse().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidPurpose,
                format!("unknown X-Purpose {other:?}: use TRANSFER or INSTANT_PAYMENT_REFUND"),
            )
        }),
    }
}

/// Send an initiated cash-out: fraud triage, fee, Midaz hold, BTG payment.
///
/// Answers 201 with the transfer: PROCESSING once BTG accepted it, PENDING when a step is still
/// under way (the sweeper finishes it), IN_REVIEW when fraud triage asks for an operator, FAILED
/// when triage blocks it or BTG refuses it. Insufficient balance is 422 `PIX-0411`; a blocked or
/// closed paying account is 422 `PIX-0414`.
#[utoipa::path(post, path = "/v1/transfers/cashout/process", tag = "Transfers", request_body = ProcessCashout,
    params(("X-Account-Id" = Uuid, Header, description = "The paying account (the one that initiated)"),
           ("X-Purpose" = Option<String>, Header, description = "TRANSFER (default) or INSTANT_PAYMENT_REFUND")),
    security(("tenant_token" = [])),
    responses((status = 201, body = TransferView), (status = 400, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
              (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn process_cashout(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    headers: HeaderMap,
    AppJson(body): AppJson<ProcessCashout>,
) -> ApiResult<(StatusCode, Json<TransferView>)> {
    let purpose = purpose(&headers)?;
    let account = account.into();
    let idempotency_key = request_key(&headers);
    let request =
        Process { tenant: &tenant, account: &account, initiation_id: body.initiation_id, purpose, idempotency_key };
    let transfer = process(&state.app, request).await?;
    Ok((StatusCode::CREATED, Json(TransferView::from(&transfer))))
}

/// BTG's verdict on one of our cash-outs.
pub struct PaymentEvents(pub AppState);

impl InboundHandler for PaymentEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::Payment(payment) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_PAYMENT event without a payment".into()));
            };
            let tenant = event_tenant(&self.0, event.tenant_id).await?;
            Ok(payment_event(&self.0.app, &tenant, &payment).await?)
        })
    }
}
