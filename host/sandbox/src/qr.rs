//! The receiving PSP of dynamic BR Codes: it keeps immediate (`cob`) and due-date (`cobv`)
//! charges in memory and serves each at its location as API Pix does (pix-standards §4.3, §5.6):
//! `GET /qr/v2/cob/{token}` and `GET /qr/v2/cobv/{token}?DPP=YYYY-MM-DD&codMun=…` answer
//! `application/jose`, a compact JWS whose payload is the `CobPayload` / `CobVPayload`.
//!
//! Signature: ES256 with a P-256 key generated at start. The header's `jku` points at
//! `GET /jwks` on the same server (and `kid` names the key), which is how a payer's PSP finds the
//! key; the host accepts a `jku` only on the location's own host. There is no ICP-Brasil
//! certificate chain (`x5c`) as the Manual de Segurança asks: see docs/qrcodes.md.
//!
//! Locations carry no scheme (`127.0.0.1:PORT/qr/v2/cob/…`); the host fetches loopback ones over
//! plain http. Tests create charges with [`crate::SandboxHandle::create_qr_charge`] or
//! `POST /_control/qr/charges`, then expire, remove or break them to see the errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDate, TimeDelta};
use pix_core::brcode::{
    AmountChange, BrCode, ChargeStatus, DueDateCalendar, DueDateCharge, DueDateError, DueDateRules, DueDateValue,
    ImmediateCalendar, ImmediateCharge, ImmediateValue, Party, TaxId,
};
use pix_core::clock::brasilia_date;
use pix_core::money::Money;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Shared;
use crate::sim::ApiError;

/// Immediate or due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QrChargeKind {
    /// A `cob`, served at `/qr/v2/cob/{token}`.
    Immediate,
    /// A `cobv`, served at `/qr/v2/cobv/{token}`.
    DueDate,
}

/// A charge to create (`POST /_control/qr/charges`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QrChargeRequest {
    /// `IMMEDIATE` or `DUE_DATE`.
    #[serde(rename = "type")]
    pub kind: QrChargeKind,
    /// The receiver's Pix key (`chave`).
    pub key: String,
    /// Field 59 of the code.
    pub merchant_name: String,
    /// Field 60 of the code.
    pub merchant_city: String,
    /// `[A-Za-z0-9]{26,35}`; generated when absent.
    #[serde(default)]
    pub txid: Option<String>,
    /// `solicitacaoPagador`.
    #[serde(default)]
    pub description: Option<String>,
    /// IMMEDIATE: `valor.original`.
    #[serde(default)]
    pub amount: Option<Money>,
    /// IMMEDIATE: `calendario.expiracao` (default 86400).
    #[serde(default)]
    pub expires_in_seconds: Option<u32>,
    /// IMMEDIATE: `modalidadeAlteracao` 1.
    #[serde(default)]
    pub payer_may_change_amount: bool,
    /// DUE_DATE: `calendario.dataDeVencimento`.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// DUE_DATE: `validadeAposVencimento` (default 30).
    #[serde(default)]
    pub valid_after_due: Option<u32>,
    /// DUE_DATE: `valor` as created (original, fine, interest, abatement, discount).
    #[serde(default)]
    pub value: Option<DueDateRules>,
    /// DUE_DATE: `devedor` (a default debtor when absent).
    #[serde(default)]
    pub debtor: Option<Party>,
}

/// A created charge: what the receiver shows (`emv`) and where it is served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QrCharge {
    /// The location token (path of the control routes).
    pub id: String,
    #[serde(rename = "type")]
    pub kind: QrChargeKind,
    pub txid: String,
    /// Without scheme, as in field 26.25.
    pub location: String,
    /// The BR Code ("Pix Copia e Cola").
    pub emv: String,
}

/// How a charge's location answers, to exercise the payer's error paths.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum QrServing {
    /// The signed payload.
    #[default]
    Signed,
    /// This HTTP status with an RFC 7807 body, as a PSP answers for a charge it no longer serves
    /// (404/410) or when it fails (5xx).
    Status {
        /// HTTP status.
        status: u16,
    },
    /// A JWS whose signature does not verify.
    BadSignature,
    /// The payload as plain JSON instead of a JWS.
    NotJws,
}

enum Body {
    Immediate(ImmediateCharge),
    /// `charge.value` is recomputed for each request's payment date.
    DueDate {
        charge: DueDateCharge,
        rules: DueDateRules,
    },
}

struct StoredCharge {
    body: Body,
    serving: QrServing,
}

/// The simulated PSP: charges by location token, and the signing key.
pub(crate) struct QrPsp {
    charges: Mutex<HashMap<String, StoredCharge>>,
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
    /// `host:port` of the QR server, set once it is bound.
    authority: Mutex<String>,
}

impl QrPsp {
    pub(crate) fn new() -> anyhow::Result<QrPsp> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate the QR signing key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("cannot load the QR signing key"))?;
        Ok(QrPsp { charges: Mutex::default(), key, kid: "sandbox-qr-1".into(), rng, authority: Mutex::default() })
    }

    pub(crate) fn set_authority(&self, url: &str) {
        let authority = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        *self.authority.lock().unwrap_or_else(|e| e.into_inner()) = authority;
    }

    fn authority(&self) -> String {
        self.authority.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn charges(&self) -> MutexGuard<'_, HashMap<String, StoredCharge>> {
        self.charges.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The JWK Set of the signing key.
    fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
        let point = self.key.public_key().as_ref();
        let (x, y) = point.get(1..).unwrap_or_default().split_at(32.min(point.len().saturating_sub(1)));
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]})
    }

    fn sign(&self, payload: &Value) -> Result<String, ApiError> {
        let header = json!({"alg": "ES256", "typ": "JWS", "kid": self.kid,
            "jku": format!("http://{}/jwks", self.authority())});
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "signing failed"})))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, json!({"message": message.into()}))
}

fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, json!({"message": "no such charge"}))
}

fn default_debtor() -> Party {
    Party { tax_id: TaxId::Cpf("12345678909".into()), name: "Fulano de Tal".into() }
}

impl Shared {
    /// Creates a charge and builds its BR Code.
    pub(crate) fn qr_create_charge(&self, request: QrChargeRequest) -> Result<QrCharge, ApiError> {
        let token = self.sim.uuid().simple().to_string();
        let txid = match request.txid {
            Some(txid) => {
                let ok = (26..=35).contains(&txid.len()) && txid.bytes().all(|b| b.is_ascii_alphanumeric());
                if !ok {
                    return Err(bad_request("txid must be 26 to 35 letters and digits"));
                }
                txid
            }
            None => self.sim.alnum(32),
        };
        let now = self.sim.clock.now();
        let (path, body) = match request.kind {
            QrChargeKind::Immediate => {
                let original = request.amount.ok_or_else(|| bad_request("amount is required for IMMEDIATE"))?;
                if !original.is_positive() {
                    return Err(bad_request("amount must be greater than zero"));
                }
                let charge = ImmediateCharge {
                    txid: txid.clone(),
                    revision: 0,
                    calendar: ImmediateCalendar {
                        created_at: now,
                        presented_at: now,
                        expires_in_seconds: request.expires_in_seconds.unwrap_or(86_400),
                    },
                    debtor: request.debtor,
                    value: ImmediateValue {
                        original,
                        change: if request.payer_may_change_amount {
                            AmountChange::PayerMayChange
                        } else {
                            AmountChange::Fixed
                        },
                        withdrawal: None,
                    },
                    key: request.key.clone(),
                    payer_request: request.description,
                    additional_info: Vec::new(),
                    status: ChargeStatus::Active,
                };
                ("cob", Body::Immediate(charge))
            }
            QrChargeKind::DueDate => {
                let rules = request.value.ok_or_else(|| bad_request("value is required for DUE_DATE"))?;
                rules.validate().map_err(|e| bad_request(e.to_string()))?;
                let due_date = request.due_date.ok_or_else(|| bad_request("dueDate is required for DUE_DATE"))?;
                let original = rules.original;
                let charge = DueDateCharge {
                    txid: txid.clone(),
                    revision: 0,
                    calendar: DueDateCalendar {
                        created_at: now,
                        presented_at: now,
                        due_date,
                        days_valid_after_due: request.valid_after_due.unwrap_or(30),
                    },
                    debtor: request.debtor.unwrap_or_else(default_debtor),
                    receiver: Party {
                        tax_id: TaxId::Cnpj("11222333000181".into()),
                        name: request.merchant_name.clone(),
                    },
                    value: DueDateValue {
                        original: Some(original),
                        fine: None,
                        interest: None,
                        abatement: None,
                        discount: None,
                        total: original,
                    },
                    key: request.key.clone(),
                    payer_request: request.description,
                    additional_info: Vec::new(),
                    status: ChargeStatus::Active,
                };
                ("cobv", Body::DueDate { charge, rules })
            }
        };
        let location = format!("{}/qr/v2/{path}/{token}", self.qr.authority());
        let emv = BrCode::dynamic_code(location.clone(), &request.merchant_name, &request.merchant_city)
            .build()
            .map_err(|e| bad_request(format!("cannot build the BR Code: {e}")))?
            .encode();
        self.qr.charges().insert(token.clone(), StoredCharge { body, serving: QrServing::Signed });
        Ok(QrCharge { id: token, kind: request.kind, txid, location, emv })
    }

    /// Makes a charge expired: an immediate one was created long enough ago, a due-date one was
    /// due long enough ago that its validity window is over.
    pub(crate) fn qr_expire_charge(&self, id: &str) -> Result<(), ApiError> {
        let now = self.sim.clock.now();
        let mut charges = self.qr.charges();
        let stored = charges.get_mut(id).ok_or_else(not_found)?;
        match &mut stored.body {
            Body::Immediate(charge) => {
                let lived = TimeDelta::seconds(i64::from(charge.calendar.expires_in_seconds) + 60);
                charge.calendar.created_at = now - lived;
                charge.calendar.presented_at = charge.calendar.created_at;
            }
            Body::DueDate { charge, .. } => {
                let days = i64::from(charge.calendar.days_valid_after_due) + 1;
                charge.calendar.due_date = brasilia_date(now) - TimeDelta::days(days);
            }
        }
        Ok(())
    }

    /// Sets a charge's status (`CONCLUIDA`, `REMOVIDA_PELO_USUARIO_RECEBEDOR`…); it stays served.
    pub(crate) fn qr_set_status(&self, id: &str, status: ChargeStatus) -> Result<(), ApiError> {
        let mut charges = self.qr.charges();
        let stored = charges.get_mut(id).ok_or_else(not_found)?;
        match &mut stored.body {
            Body::Immediate(charge) => {
                charge.status = status;
                charge.revision += 1;
            }
            Body::DueDate { charge, .. } => {
                charge.status = status;
                charge.revision += 1;
            }
        }
        Ok(())
    }

    pub(crate) fn qr_set_serving(&self, id: &str, serving: QrServing) -> Result<(), ApiError> {
        self.qr.charges().get_mut(id).ok_or_else(not_found)?.serving = serving;
        Ok(())
    }

    /// The payload for one request: a due-date charge's amounts are those of `payment_date`.
    fn qr_payload(&self, kind: QrChargeKind, token: &str, payment_date: NaiveDate) -> Result<Response, ApiError> {
        let (payload, serving) = {
            let charges = self.qr.charges();
            let stored = charges.get(token).ok_or_else(|| problem(404, "CobPayloadNaoEncontrado"))?;
            let payload = match (&stored.body, kind) {
                (Body::Immediate(charge), QrChargeKind::Immediate) => serde_json::to_value(charge),
                (Body::DueDate { charge, rules }, QrChargeKind::DueDate) => {
                    let mut charge = charge.clone();
                    let calendar = charge.calendar;
                    charge.value = match rules.value_on(calendar.due_date, calendar.days_valid_after_due, payment_date)
                    {
                        Ok(value) => value,
                        // Past its validity a cobv can no longer be paid: the PSP stops serving it.
                        Err(DueDateError::PastValidity { .. }) => return Err(problem(410, "CobVencida")),
                        Err(e) => return Err(bad_request(e.to_string())),
                    };
                    serde_json::to_value(&charge)
                }
                _ => return Err(problem(404, "CobPayloadNaoEncontrado")),
            };
            let payload =
                payload.map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": e.to_string()})))?;
            (payload, stored.serving.clone())
        };
        let jose = |body: String| ([(header::CONTENT_TYPE, "application/jose")], body).into_response();
        match serving {
            QrServing::Signed => Ok(jose(self.qr.sign(&payload)?)),
            QrServing::Status { status } => Err(problem(status, "ServicoIndisponivel")),
            QrServing::BadSignature => {
                let jws = self.qr.sign(&payload)?;
                // Sign something else and keep this payload: the signature no longer matches.
                let other = self.qr.sign(&json!({"txid": "tampered"}))?;
                let signature = other.rsplit('.').next().unwrap_or_default();
                let signed_part = jws.rsplit_once('.').map(|(input, _)| input).unwrap_or_default();
                Ok(jose(format!("{signed_part}.{signature}")))
            }
            QrServing::NotJws => Ok(Json(payload).into_response()),
        }
    }
}

/// API Pix errors are RFC 7807 problems.
fn problem(status: u16, kind: &str) -> ApiError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError(
        status,
        json!({"type": format!("https://pix.bcb.gov.br/api/v2/error/{kind}"), "title": kind, "status": status.as_u16()}),
    )
}

/// The PSP's public server: locations and the key set.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/qr/v2/cob/{token}", get(serve_cob))
        .route("/qr/v2/cobv/{token}", get(serve_cobv))
        .route("/jwks", get(jwks))
        .with_state(shared)
}

async fn serve_cob(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Result<Response, ApiError> {
    let today = brasilia_date(s.sim.clock.now());
    s.qr_payload(QrChargeKind::Immediate, &token, today)
}

#[derive(Deserialize)]
struct CobvQuery {
    /// Payment date (`DPP`); today when absent.
    #[serde(rename = "DPP")]
    payment_date: Option<String>,
    /// IBGE city code of the payer; accepted and not used (no city holidays here).
    #[serde(rename = "codMun")]
    city_code: Option<String>,
}

async fn serve_cobv(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
    Query(query): Query<CobvQuery>,
) -> Result<Response, ApiError> {
    if query.city_code.as_deref().is_some_and(|c| c.len() != 7 || !c.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad_request("codMun is a 7-digit IBGE code"));
    }
    let payment_date = match query.payment_date.as_deref() {
        Some(date) => NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad_request("DPP is YYYY-MM-DD"))?,
        None => brasilia_date(s.sim.clock.now()),
    };
    s.qr_payload(QrChargeKind::DueDate, &token, payment_date)
}

async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    Json(s.qr.jwks()).into_response()
}

/// Control routes, merged into the control API.
pub(crate) fn control_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_control/qr/charges", post(create_charge))
        .route("/_control/qr/charges/{id}/expire", post(expire_charge))
        .route("/_control/qr/charges/{id}/status", put(set_status))
        .route("/_control/qr/charges/{id}/serving", put(set_serving))
        .with_state(shared)
}

async fn create_charge(
    State(s): State<Arc<Shared>>,
    Json(request): Json<QrChargeRequest>,
) -> Result<Response, ApiError> {
    Ok((StatusCode::CREATED, Json(s.qr_create_charge(request)?)).into_response())
}

async fn expire_charge(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.qr_expire_charge(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct StatusBody {
    status: ChargeStatus,
}

async fn set_status(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode, ApiError> {
    s.qr_set_status(&id, body.status)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_serving(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(serving): Json<QrServing>,
) -> Result<StatusCode, ApiError> {
    s.qr_set_serving(&id, serving)?;
    Ok(StatusCode::NO_CONTENT)
}
