//! The intra-PSP delivery (spec 001): the inbound worker posts each queued intra-PSP settlement,
//! signed, to `POST /v1/payment/webhooks/intra-psp/events`, which runs it
//! (`pix_app::transfers::intra::settle`). The endpoint is idempotent, so a retried delivery
//! settles once. Each tenant's signing key is derived from `security.secret_key`: every
//! instance can sign and verify, and nothing else can.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use pix_app::intra_psp::{Delivery, REFUND, Settlement, TRANSFER};
use pix_app::refunds::RefundView;
use pix_app::transfers::TransferView;
use pix_core::error::ErrorCode;
use pix_integrations::btg::wire::{HEADER_SIGNATURE, HEADER_SIGNATURE_TIMESTAMP};
use pix_integrations::btg::{sign_webhook, verify_webhook};
use pix_store::inbound::InboundEvent;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::inbound::InboundHandler;
use crate::routes::ErrorResponse;
use crate::worker::{JobError, JobFuture};

pub const PATH: &str = "/v1/payment/webhooks/intra-psp/events";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_intra_psp_event))
}

/// The tenant's intra-PSP signing key.
fn key(state: &AppState, tenant: Uuid) -> [u8; 32] {
    state.store.derived_key(&format!("intra-psp:{tenant}"))
}

/// What a settlement ended as: the cash-out or the refund.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    pub transfer: Option<TransferView>,
    pub refund: Option<RefundView>,
}

/// Run one intra-PSP settlement (called by this service's own inbound worker).
///
/// Signed like BTG's webhooks (`x-signature: sha256=HMAC(key, "{timestamp}.{body}")`, timestamp
/// within `btg_webhook.timestamp_tolerance_secs`) with the tenant's derived key. Answers the
/// cash-out or the refund as it ends; repeating a delivery changes nothing.
#[utoipa::path(post, path = "/v1/payment/webhooks/intra-psp/events", tag = "Inbound", request_body = Object,
    responses((status = 200, body = Settled), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 502, body = ErrorResponse)))]
async fn receive_intra_psp_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Settled>> {
    let delivery: Delivery = crate::extract::parse_json(&body)?;
    let unauthenticated = || ApiError::new(ErrorCode::Unauthorized, "intra-PSP delivery not authenticated");
    let tenant = state.store.tenant(delivery.tenant_id).await?.ok_or_else(unauthenticated)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    verify_webhook(
        &key(&state, tenant.id),
        header(HEADER_SIGNATURE_TIMESTAMP),
        header(HEADER_SIGNATURE),
        &body,
        state.clock.now(),
        state.config.btg_webhook.timestamp_tolerance_secs,
    )
    .map_err(|_| unauthenticated())?;
    Ok(Json(match delivery.settlement {
        Settlement::Transfer { transfer_id } => {
            let t = pix_app::transfers::intra::settle(&state.app, &tenant, transfer_id).await?;
            Settled { transfer: Some(TransferView::from(&t)), refund: None }
        }
        Settlement::Refund { refund_id } => {
            let r = pix_app::refunds::intra::settle(&state.app, &tenant, refund_id).await?;
            Settled { transfer: None, refund: Some(RefundView::from(&r)) }
        }
    }))
}

/// Delivers queued intra-PSP settlements to the endpoint at `url`.
pub struct Deliveries {
    state: AppState,
    client: reqwest::Client,
    url: String,
}

impl Deliveries {
    /// `base` is this service's own URL (`http://host:port`).
    pub fn handlers(state: &AppState, base: &str) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let deliveries: Arc<dyn InboundHandler> =
            Arc::new(Deliveries { state: state.clone(), client, url: format!("{base}{PATH}") });
        vec![(TRANSFER, deliveries.clone()), (REFUND, deliveries)]
    }
}

impl InboundHandler for Deliveries {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&event.payload).map_err(|e| JobError::Permanent(e.to_string()))?;
            let timestamp = self.state.clock.now().timestamp();
            let response = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header(HEADER_SIGNATURE_TIMESTAMP, timestamp.to_string())
                .header(HEADER_SIGNATURE, sign_webhook(&key(&self.state, event.tenant_id), timestamp, &body))
                .body(body)
                .send()
                .await
                .map_err(|e| JobError::Retry(format!("delivering the intra-PSP settlement: {e}")))?;
            match response.status().as_u16() {
                200..=299 => Ok(()),
                404 => Err(JobError::Permanent("the intra-PSP cash-out or refund does not exist".into())),
                status => Err(JobError::Retry(format!("the intra-PSP endpoint answered {status}"))),
            }
        })
    }
}
