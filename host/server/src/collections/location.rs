//! The host as its collections' location server (pix-standards §4.3, §5.6): unauthenticated
//! `GET /qr/v2/cob/{token}` and `GET /qr/v2/cobv/{token}?DPP=…&codMun=…` answer
//! `application/jose`, a compact ES256 JWS of the `CobPayload`/`CobVPayload`; `GET /qr/v2/jwks`
//! is the key set its `jku` names. A payer's PSP (this host's own `POST /v1/qrcodes/decode`
//! included) fetches and verifies them.
//!
//! Signing keys live in `qr_signing_keys`, sealed with `security.secret_key`; the newest key
//! signs, and a replaced key stays published for a day: rotation in docs/collections.md.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use pix_core::brcode::{
    AmountChange, DueDateCalendar, DueDateCharge, DueDateError, ImmediateCalendar, ImmediateCharge, ImmediateValue,
    Party, TaxId,
};
use pix_core::clock::brasilia_date;
use pix_core::collection::{CollectionKind, Debtor, Schedule};
use pix_core::money::Money;
use pix_store::collections::{Collection, SigningKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppPath, AppQuery};
use pix_core::error::ErrorCode;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(serve_cob)).routes(routes!(serve_cobv)).routes(routes!(jwks))
}

/// `[collections] location_base`, or the listen address when unset: the prefix (no scheme) of
/// every location this host writes into a BR Code.
pub fn location_base(state: &AppState) -> String {
    let base = state.config.collections.location_base.trim().trim_end_matches('/');
    if base.is_empty() { state.config.server.listen.to_string() } else { base.to_owned() }
}

/// `http` for a loopback host (the demo, tests), else `https`: what a payer will use.
fn scheme(base: &str) -> &'static str {
    let host = base.split('/').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback { "http" } else { "https" }
}

/// How long a replaced key stays in the key set: payers verify a payload right after fetching
/// it, so a day covers any payload signed just before the rotation.
const RETIRED_KEY_GRACE: chrono::Duration = chrono::Duration::days(1);

/// The newest signing key, created (and stored sealed) on first use and again once it is older
/// than `[collections] signing_key_rotation_days`.
async fn current_key(state: &AppState) -> ApiResult<SigningKey> {
    let now = state.clock.now();
    let max_age = chrono::Duration::days(i64::from(state.config.collections.signing_key_rotation_days));
    if let Some(key) = state.store.signing_keys().await?.pop()
        && key.created_at + max_age > now
    {
        return Ok(key);
    }
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| ApiError::internal("cannot generate a QR signing key"))?;
    let kid = format!("pixhost-{}", now.format("%Y%m%d%H%M%S"));
    state.store.insert_signing_key(&SigningKey { kid, pkcs8: pkcs8.as_ref().to_vec(), created_at: now }).await?;
    // Another instance may have created one at the same time: use whichever is newest.
    state.store.signing_keys().await?.pop().ok_or_else(|| ApiError::internal("no QR signing key"))
}

/// The keys a payer may need: the current one, and those replaced less than a grace ago.
fn published(keys: Vec<SigningKey>, now: chrono::DateTime<chrono::Utc>) -> Vec<SigningKey> {
    let successors: Vec<_> = keys.iter().skip(1).map(|k| Some(k.created_at)).chain([None]).collect();
    keys.into_iter()
        .zip(successors)
        .filter(|(_, next)| next.is_none_or(|replaced_at| replaced_at + RETIRED_KEY_GRACE > now))
        .map(|(key, _)| key)
        .collect()
}

fn key_pair(key: &SigningKey) -> ApiResult<EcdsaKeyPair> {
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.pkcs8, &SystemRandom::new())
        .map_err(|_| ApiError::internal(format!("QR signing key {} is not a P-256 key", key.kid)))
}

/// A compact JWS of `payload` under the newest key, its `jku` on this host.
async fn sign(state: &AppState, payload: &Value) -> ApiResult<String> {
    let key = current_key(state).await?;
    let pair = key_pair(&key)?;
    let base = location_base(state);
    let header = json!({"alg": "ES256", "typ": "JWS", "kid": key.kid,
        "jku": format!("{}://{base}/qr/v2/jwks", scheme(&base))});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
    let signature =
        pair.sign(&SystemRandom::new(), input.as_bytes()).map_err(|_| ApiError::internal("JWS signing failed"))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocationQuery {
    /// COBV: the payment date the amounts are computed for (default today in Brasília).
    #[serde(rename = "DPP")]
    #[param(rename = "DPP")]
    pub dpp: Option<NaiveDate>,
    /// The payer's IBGE municipality code; accepted and not used (no municipal holidays).
    #[serde(rename = "codMun")]
    #[param(rename = "codMun")]
    pub cod_mun: Option<String>,
}

/// The signed `CobPayload` of an immediate collection.
#[utoipa::path(get, path = "/qr/v2/cob/{token}", tag = "Collections",
    params(("token" = String, Path, description = "The location token (last segment of 26.25)")),
    responses((status = 200, content_type = "application/jose", body = String, description = "Compact JWS"),
        (status = 404, body = Problem, description = "No such charge (CobPayloadNaoEncontrado)")))]
async fn serve_cob(State(state): State<AppState>, AppPath(token): AppPath<String>) -> Result<Response, Response> {
    let c = find(&state, CollectionKind::Immediate, &token).await?;
    let payload = cob_payload(&c).map_err(|e| e.into_response())?;
    jose(&state, &payload).await
}

/// The signed `CobVPayload` of a due-date collection, with the amounts of `DPP`.
#[utoipa::path(get, path = "/qr/v2/cobv/{token}", tag = "Collections",
    params(("token" = String, Path, description = "The location token (last segment of 26.25)"), LocationQuery),
    responses((status = 200, content_type = "application/jose", body = String, description = "Compact JWS"),
        (status = 400, body = crate::routes::ErrorResponse, description = "DPP is not a date"),
        (status = 404, body = Problem, description = "No such charge (CobPayloadNaoEncontrado)"),
        (status = 410, body = Problem, description = "Past its validity on DPP (CobVencida)")))]
async fn serve_cobv(
    State(state): State<AppState>,
    AppPath(token): AppPath<String>,
    AppQuery(query): AppQuery<LocationQuery>,
) -> Result<Response, Response> {
    let c = find(&state, CollectionKind::DueDate, &token).await?;
    let date = query.dpp.unwrap_or_else(|| brasilia_date(state.clock.now()));
    let payload = match cobv_payload(&state, &c, date) {
        Ok(payload) => payload,
        Err(DueDateError::PastValidity { .. }) => return Err(problem(StatusCode::GONE, "CobVencida")),
        Err(e) => return Err(ApiError::new(ErrorCode::InvalidField, format!("DPP: {e}")).into_response()),
    };
    jose(&state, &payload).await
}

/// The public keys that sign location payloads (the current one and those just replaced).
#[utoipa::path(get, path = "/qr/v2/jwks", tag = "Collections",
    responses((status = 200, body = Object, description = "JWK Set")))]
async fn jwks(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    current_key(&state).await?;
    let mut keys = Vec::new();
    for key in published(state.store.signing_keys().await?, state.clock.now()) {
        let point = key_pair(&key)?.public_key().as_ref().to_vec();
        // An uncompressed P-256 point: 0x04 ‖ x ‖ y.
        let (x, y) = point.get(1..).unwrap_or_default().split_at(32.min(point.len().saturating_sub(1)));
        keys.push(json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": key.kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}));
    }
    Ok(Json(json!({ "keys": keys })))
}

async fn find(state: &AppState, kind: CollectionKind, token: &str) -> Result<Collection, Response> {
    match state.store.collection_by_location(kind, token).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(problem(StatusCode::NOT_FOUND, "CobPayloadNaoEncontrado")),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

async fn jose(state: &AppState, payload: &Value) -> Result<Response, Response> {
    let jws = sign(state, payload).await.map_err(IntoResponse::into_response)?;
    Ok(([(header::CONTENT_TYPE, "application/jose")], jws).into_response())
}

/// An API Pix error: an RFC 7807 problem, as payers' PSPs expect from a location.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "https://pix.bcb.gov.br/api/v2/error/CobPayloadNaoEncontrado")]
    pub kind: String,
    pub title: String,
    pub status: u16,
}

fn problem(status: StatusCode, kind: &str) -> Response {
    let body = Problem {
        kind: format!("https://pix.bcb.gov.br/api/v2/error/{kind}"),
        title: kind.to_owned(),
        status: status.as_u16(),
    };
    (status, Json(body)).into_response()
}

fn party(document: &str, name: &str) -> Party {
    let tax_id = if document.len() == 11 { TaxId::Cpf(document.into()) } else { TaxId::Cnpj(document.into()) };
    Party { tax_id, name: name.into() }
}

fn debtor_party(d: &Debtor) -> Party {
    party(&d.document, &d.name)
}

fn cob_payload(c: &Collection) -> ApiResult<Value> {
    let Schedule::Immediate { expiration_seconds } = c.details.schedule else {
        return Err(ApiError::internal(format!("collection {} is not immediate", c.id)));
    };
    let charge = ImmediateCharge {
        txid: c.tx_id.clone(),
        revision: u32::try_from(c.revision).unwrap_or(u32::MAX),
        calendar: ImmediateCalendar {
            created_at: c.created_at,
            presented_at: c.updated_at,
            expires_in_seconds: expiration_seconds,
        },
        debtor: c.details.debtor.as_ref().map(debtor_party),
        value: ImmediateValue {
            original: Money::from_centavos(c.amount),
            change: AmountChange::Fixed,
            withdrawal: None,
        },
        key: c.receiver_key.clone(),
        payer_request: c.details.description.clone(),
        additional_info: c.details.additional_info.clone(),
        status: c.status.charge_status(),
    };
    serde_json::to_value(charge).map_err(ApiError::internal)
}

fn cobv_payload(state: &AppState, c: &Collection, date: NaiveDate) -> Result<Value, DueDateError> {
    let Schedule::DueDate { due_date, valid_after_due, rules } = &c.details.schedule else {
        return Err(DueDateError::InvalidRules("not a due-date collection"));
    };
    let value = rules.value_on(*due_date, *valid_after_due, date)?;
    let debtor = c.details.debtor.as_ref().ok_or(DueDateError::InvalidRules("a COBV has a debtor"))?;
    let charge = DueDateCharge {
        txid: c.tx_id.clone(),
        revision: u32::try_from(c.revision).unwrap_or(u32::MAX),
        calendar: DueDateCalendar {
            created_at: c.created_at,
            presented_at: state.clock.now(),
            due_date: *due_date,
            days_valid_after_due: *valid_after_due,
        },
        debtor: debtor_party(debtor),
        receiver: party(&c.details.receiver_document, &c.details.merchant.name),
        value,
        key: c.receiver_key.clone(),
        payer_request: c.details.description.clone(),
        additional_info: c.details.additional_info.clone(),
        status: c.status.charge_status(),
    };
    serde_json::to_value(charge).map_err(|_| DueDateError::InvalidRules("the payload does not serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_key_stays_published_for_a_day() {
        let at = |h: i64| chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(h);
        let key = |kid: &str, h: i64| SigningKey { kid: kid.into(), pkcs8: Vec::new(), created_at: at(h) };
        let kids = |now: i64| -> Vec<String> {
            published(vec![key("a", 0), key("b", 100), key("c", 200)], at(now)).into_iter().map(|k| k.kid).collect()
        };
        assert_eq!(kids(210), ["b", "c"], "b was replaced 10 hours ago");
        assert_eq!(kids(230), ["c"]);
        assert_eq!(published(vec![key("a", 0)], at(10_000)).len(), 1, "the current key is always published");
    }

    #[test]
    fn loopback_locations_are_plain_http() {
        assert_eq!(scheme("127.0.0.1:4014"), "http");
        assert_eq!(scheme("localhost:4014/pix"), "http");
        assert_eq!(scheme("pix.example.com/pix"), "https");
        assert_eq!(scheme("10.0.0.1:443"), "https");
    }
}
