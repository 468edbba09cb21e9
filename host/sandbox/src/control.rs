//! Control API for tests and demos (`/_control/…`, on its own port).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::btg::DonorBehaviour;
use crate::sim::{ApiError, FaultRule};

/// Router for the control API.
pub fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/_control/health", get(|| async { "ok" }))
        .route("/_control/faults", post(add_fault).get(list_faults).delete(clear_faults))
        .route("/_control/faults/{id}", delete(remove_fault))
        .route("/_control/clock", get(clock))
        .route("/_control/clock/advance", post(advance))
        .route("/_control/tokens/revoke", post(revoke_tokens))
        .route("/_control/midaz/state", get(midaz_state))
        .route("/_control/btg/state", get(btg_state))
        .route("/_control/btg/webhook", put(set_webhook))
        .route("/_control/btg/webhooks", get(deliveries))
        .route("/_control/btg/inbound-pix", post(inbound_pix))
        .route("/_control/btg/inbound-reversal", post(inbound_reversal))
        .route("/_control/btg/claims", post(claim_against_us))
        .route("/_control/btg/infraction-reports", post(infraction_against_us))
        .route("/_control/btg/refund-requests", post(refund_request_against_us))
        .route("/_control/btg/donor-behaviour", put(donor_behaviour))
        .route("/_control/btg/payments/{e2e}/amount", put(payment_amount))
        .route("/_control/btg/participants/{ispb}/entries", post(add_participant_entry))
        .with_state(state)
}

type ApiResult = Result<Response, ApiError>;

async fn add_fault(State(s): State<Arc<Shared>>, Json(rule): Json<FaultRule>) -> Response {
    (StatusCode::CREATED, Json(s.sim.add_fault(rule))).into_response()
}

async fn list_faults(State(s): State<Arc<Shared>>) -> Response {
    Json(s.sim.faults()).into_response()
}

async fn clear_faults(State(s): State<Arc<Shared>>) -> StatusCode {
    s.sim.clear_faults(None);
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> StatusCode {
    s.sim.clear_faults(Some(&id));
    StatusCode::NO_CONTENT
}

async fn clock(State(s): State<Arc<Shared>>) -> Response {
    Json(json!({"now": s.sim.clock.now()})).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance(State(s): State<Arc<Shared>>, Json(a): Json<Advance>) -> ApiResult {
    if a.seconds < 0 {
        return Err(ApiError(StatusCode::BAD_REQUEST, json!({"message": "time only moves forward"})));
    }
    s.sim.clock.advance(chrono::Duration::seconds(a.seconds));
    // Apply what became due right away, so that the caller sees the effects on return.
    s.btg_tick();
    Ok(Json(json!({"now": s.sim.clock.now()})).into_response())
}

async fn revoke_tokens(State(s): State<Arc<Shared>>) -> StatusCode {
    s.sim.lerian_tokens.lock().unwrap_or_else(|e| e.into_inner()).clear();
    s.sim.btg_tokens.lock().unwrap_or_else(|e| e.into_inner()).clear();
    StatusCode::NO_CONTENT
}

async fn midaz_state(State(s): State<Arc<Shared>>) -> Response {
    Json(s.midaz_state()).into_response()
}

async fn btg_state(State(s): State<Arc<Shared>>) -> Response {
    Json(crate::btg::payment_summary(&s.btg())).into_response()
}

#[derive(Deserialize)]
struct WebhookSetting {
    url: Option<String>,
    secret: Option<String>,
}

async fn set_webhook(State(s): State<Arc<Shared>>, Json(w): Json<WebhookSetting>) -> StatusCode {
    let mut target = s.webhooks.target.lock().unwrap_or_else(|e| e.into_inner());
    target.url = w.url;
    if let Some(secret) = w.secret {
        target.secret = secret;
    }
    StatusCode::NO_CONTENT
}

async fn deliveries(State(s): State<Arc<Shared>>) -> Response {
    Json(s.webhooks.log.lock().unwrap_or_else(|e| e.into_inner()).clone()).into_response()
}

async fn inbound_pix(State(s): State<Arc<Shared>>, Json(req): Json<Value>) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.btg_inbound_payment(&req)?)).into_response())
}

async fn inbound_reversal(State(s): State<Arc<Shared>>, Json(req): Json<Value>) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.btg_inbound_reversal(&req)?)).into_response())
}

async fn claim_against_us(State(s): State<Arc<Shared>>, Json(req): Json<Value>) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.btg_claim_against_us(&req)?)).into_response())
}

async fn infraction_against_us(State(s): State<Arc<Shared>>, Json(req): Json<Value>) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.btg_infraction_against_us(&req)?)).into_response())
}

async fn refund_request_against_us(State(s): State<Arc<Shared>>, Json(req): Json<Value>) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.btg_refund_request_against_us(&req)?)).into_response())
}

#[derive(Deserialize)]
struct Behaviour {
    behaviour: DonorBehaviour,
}

async fn donor_behaviour(State(s): State<Arc<Shared>>, Json(b): Json<Behaviour>) -> StatusCode {
    s.btg_set_donor_behaviour(b.behaviour);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct PaymentAmount {
    amount: String,
}

/// `{"amount": "12.34"}`: BTG reports this amount for the payment from now on.
async fn payment_amount(
    State(s): State<Arc<Shared>>,
    Path(e2e): Path<String>,
    Json(b): Json<PaymentAmount>,
) -> ApiResult {
    let amount = pix_core::money::Money::parse(&b.amount)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, json!({"message": format!("amount: {e}")})))?;
    Ok(Json(s.btg_set_payment_amount(&e2e, amount)?).into_response())
}

async fn add_participant_entry(
    State(s): State<Arc<Shared>>,
    Path(ispb): Path<String>,
    Json(req): Json<Value>,
) -> ApiResult {
    let key_type = req["keyType"].as_str().unwrap_or_default().to_owned();
    let mut account = req["account"].clone();
    if !account.is_object() {
        account = json!({"branch": "0001", "number": "12345", "type": "CACC"});
    }
    account["participant"] = json!(ispb);
    let v = s.dict_register(&key_type, req["key"].as_str(), account, req["owner"].clone())?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}
