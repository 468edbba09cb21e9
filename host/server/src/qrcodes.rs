//! QR codes (BR Code): `POST /v1/qrcodes/decode`, and [`resolve`], which QR_CODE cash-outs use to
//! turn a payload into what to pay (a static code's key and amount, or a dynamic code's charge
//! fetched from its location URL).
//!
//! Dynamic codes (pix-standards §4.3, §5.6): the location (26.25, no scheme) is fetched as
//! `https://{url}` through the outbound policy (`outbound.rs`): no loopback, private, link-local,
//! CGNAT or other special address, whether literal or resolved, no redirects, 5 s and
//! `[outbound] max_response_bytes` at most, and one generic answer for every failure to reach or
//! read it. Plain `http://` only for a loopback address the policy admits (`[outbound]
//! allow_networks`, or the embedded demo's simulated PSP). The answer is a compact JWS whose `jku`
//! must be on the location's own host; its key set is fetched and the signature verified (ES256,
//! RS256, PS256). No certificate chain is
//! checked beyond TLS: see docs/qrcodes.md.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use pix_core::brcode::{
    AmountChange, BrCode, ChargeStatus, DueDateCharge, DueDateValue, ImmediateCharge, NO_TXID, PixTarget,
};
use pix_core::error::ErrorCode;
use pix_core::money::Money;
use pix_core::pix_key::{PixKey, PixKeyType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppJson;
use crate::outbound::{self, Outbound, OutboundError};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(decode))
}

/// The whole fetch of a location or key set (connect, send, read).
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The three kinds of payload the decoder tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrKind {
    Static,
    Immediate,
    DueDate,
}

impl QrKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QrKind::Static => "STATIC",
            QrKind::Immediate => "IMMEDIATE",
            QrKind::DueDate => "DUE_DATE",
        }
    }
}

/// What a payload asks the payer to pay.
#[derive(Debug, Clone)]
pub struct ResolvedQr {
    pub kind: QrKind,
    /// The receiver's Pix key (from the payload, or from the fetched charge for dynamic codes).
    pub receiver_key: String,
    /// The amount due; `None` when a static code leaves it to the payer.
    pub amount: Option<Money>,
    /// The txid as the code shows it (`***` is none), even one the SPI would not take.
    pub txid: Option<String>,
    /// Whether `txid` may go into the pacs.008 `TxId` (`[A-Za-z0-9]`, pix-standards §4.2).
    pub txid_forwardable: bool,
    pub description: Option<String>,
    pub merchant_name: String,
    pub merchant_city: String,
    /// Field 52.
    pub merchant_category_code: String,
    /// Field 61.
    pub postal_code: Option<String>,
    /// 26.25 of a dynamic code, without scheme.
    pub location: Option<String>,
    /// The fetched charge of a dynamic code.
    pub charge: Option<ChargeDetails>,
}

impl ResolvedQr {
    /// The txid to forward to the SPI, if there is one it accepts.
    pub fn spi_txid(&self) -> Option<&str> {
        self.txid.as_deref().filter(|_| self.txid_forwardable)
    }
}

/// What a dynamic code's charge says beyond the amount.
#[derive(Debug, Clone)]
pub struct ChargeDetails {
    /// Always `Active` in a resolved code: other statuses are refused.
    pub status: ChargeStatus,
    pub revision: u32,
    pub created_at: DateTime<Utc>,
    /// Immediate charges: `criacao + expiracao`.
    pub expires_at: Option<DateTime<Utc>>,
    /// Immediate charges with `modalidadeAlteracao` 1: the payer may change the amount.
    pub amount_changeable: bool,
    /// Due-date charges.
    pub due_date: Option<NaiveDate>,
    pub last_payable_date: Option<NaiveDate>,
    /// The date the due-date amounts were computed for.
    pub payment_date: Option<NaiveDate>,
    /// Due-date charges: original, fine, interest, abatement, discount and final.
    pub breakdown: Option<DueDateValue>,
}

/// Decodes `emv` and, for dynamic codes, fetches and checks the charge at its location.
/// `payment_date` (default: today in Brasília) decides a due-date charge's amount.
pub async fn resolve(state: &AppState, emv: &str, payment_date: Option<NaiveDate>) -> ApiResult<ResolvedQr> {
    resolve_with_city(state, emv, payment_date, None).await
}

/// [`resolve`], also sending the payer's IBGE city code (`codMun`) to a due-date location.
pub async fn resolve_with_city(
    state: &AppState,
    emv: &str,
    payment_date: Option<NaiveDate>,
    city_code: Option<&str>,
) -> ApiResult<ResolvedQr> {
    let now = state.clock.now();
    let today = brasilia_date(now);
    let payment_date = payment_date.unwrap_or(today);
    if payment_date < today {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("paymentDate: {payment_date} is in the past (today is {today} in Brasília)"),
        ));
    }
    if let Some(code) = city_code
        && (code.len() != 7 || !code.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::new(ErrorCode::InvalidField, "cityCode: a 7-digit IBGE municipality code"));
    }
    let code = BrCode::parse(emv.trim()).map_err(|e| invalid_qr(e.to_string()))?;
    let mut resolved = ResolvedQr {
        kind: QrKind::Static,
        receiver_key: String::new(),
        amount: code.amount(),
        // The payer sees a static code's 62.05 as written (`RP12345678-2019` too); only an
        // alphanumeric one is forwarded.
        txid: Some(code.raw_txid()).filter(|t| *t != NO_TXID).map(str::to_owned),
        txid_forwardable: code.txid().is_some(),
        description: code.account().description().map(str::to_owned),
        merchant_name: code.merchant_name().to_owned(),
        merchant_city: code.merchant_city().to_owned(),
        merchant_category_code: code.merchant_category_code().to_owned(),
        postal_code: code.postal_code().map(str::to_owned),
        location: None,
        charge: None,
    };
    match code.account().target() {
        PixTarget::Key(key) => {
            resolved.receiver_key = key.value().to_owned();
            Ok(resolved)
        }
        PixTarget::Unspecified => Err(invalid_qr(
            "the Pix template carries neither a key (26.01) nor a location (26.25); Pix Automático codes \
             are not supported",
        )),
        PixTarget::Location(location) => {
            let outbound = &state.outbound;
            let url = location_url(location, outbound, payment_date, city_code)?;
            let fetched = fetch_charge(&url, outbound).await?;
            resolved.location = Some(location.clone());
            apply_charge(&mut resolved, fetched, now, payment_date)?;
            Ok(resolved)
        }
    }
}

fn invalid_qr(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidQrCode, format!("invalid QR code: {message}"))
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::QrPayloadUnavailable, message)
}

fn bad_payload(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::QrPayloadInvalid, format!("the charge served at the location is invalid: {message}"))
}

fn not_payable(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::QrChargeNotPayable, message)
}

/// Today in Brasília (UTC−3, no daylight saving since 2019): the date a payment is made on.
pub use pix_core::clock::brasilia_date;

/// The charge a location served.
enum FetchedCharge {
    Immediate(ImmediateCharge),
    DueDate(DueDateCharge),
}

/// `https://{location}`, or `http://` for a loopback host the outbound policy admits (the
/// simulators); `DPP` and `codMun` are added for due-date charges (an immediate charge's PSP
/// ignores them, and the code does not say which kind it points at). A location the policy
/// refuses gets the one generic answer of every failed fetch.
fn location_url(
    location: &str,
    outbound: &Outbound,
    payment_date: NaiveDate,
    city_code: Option<&str>,
) -> ApiResult<url::Url> {
    let mut url = url::Url::parse(&format!("https://{location}"))
        .map_err(|e| invalid_qr(format!("field 26.25 (location URL) is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid_qr("field 26.25 (location URL) must not carry credentials"));
    }
    if is_loopback(&url) && loopback_allowed(&url, outbound) {
        url.set_scheme("http").map_err(|_| invalid_qr("field 26.25 (location URL) cannot be fetched"))?;
    }
    outbound.check_url(&url).map_err(|e| fetch_failed("dynamic QR location", &url, e))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("DPP", &payment_date.format("%Y-%m-%d").to_string());
        if let Some(code) = city_code {
            query.append_pair("codMun", code);
        }
    }
    Ok(url)
}

fn host_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    host_ip(url).is_some_and(|ip| ip.is_loopback())
        || url.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
}

/// Plain http is used only for loopback addresses the operator (or the embedded demo) allowed.
fn loopback_allowed(url: &url::Url, outbound: &Outbound) -> bool {
    let ip = host_ip(url).unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let port = url.port().unwrap_or(80);
    outbound.policy().permits_socket(std::net::SocketAddr::new(ip, port))
}

/// Every failure to reach or read a location is the same answer for the tenant (so that a QR
/// code cannot be used to map the host's network); the reason goes to the log.
fn fetch_failed(what: &str, url: &url::Url, error: OutboundError) -> ApiError {
    let host = url.host_str().unwrap_or_default();
    tracing::warn!(%host, error = %error, "{what}: fetch failed");
    unavailable(outbound::TENANT_MESSAGE)
}

/// GETs `url` and returns its body, at most `[outbound] max_response_bytes`.
async fn get_limited(outbound: &Outbound, url: &url::Url, accept: &str, what: &str) -> ApiResult<Vec<u8>> {
    let request = outbound.request(reqwest::Method::GET, url.clone()).header(reqwest::header::ACCEPT, accept);
    let response = outbound.send(request).await.map_err(|e| fetch_failed(what, url, e))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(not_payable(format!(
            "{what}: the receiving PSP no longer serves this charge (HTTP {}): it was paid, removed or has expired",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(unavailable(format!("{what}: the receiving PSP answered HTTP {}", status.as_u16())));
    }
    outbound.read_limited(response).await.map_err(|e| fetch_failed(what, url, e))
}

async fn fetch_charge(url: &url::Url, outbound: &Outbound) -> ApiResult<FetchedCharge> {
    let body = get_limited(outbound, url, "application/jose", "dynamic QR payload").await?;
    let jws = std::str::from_utf8(&body).map_err(|_| bad_payload("it is not text"))?.trim();
    let jws = Jws::parse(jws).map_err(bad_payload)?;
    let jku = jws.key_set_url(url).map_err(bad_payload)?;
    let keys = get_limited(outbound, &jku, "application/json", "signing key set").await?;
    let keys: Value = serde_json::from_slice(&keys).map_err(|_| bad_payload("the key set (jku) is not JSON"))?;
    jws.verify(&keys).map_err(bad_payload)?;
    parse_charge(&jws.payload)
}

/// Tells a `CobVPayload` from a `CobPayload` by its due date, then reads it strictly.
fn parse_charge(payload: &[u8]) -> ApiResult<FetchedCharge> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| bad_payload("its payload is not JSON"))?;
    if value.pointer("/calendario/dataDeVencimento").is_some() {
        serde_json::from_value(value).map(FetchedCharge::DueDate).map_err(|e| bad_payload(format!("CobVPayload: {e}")))
    } else {
        serde_json::from_value(value).map(FetchedCharge::Immediate).map_err(|e| bad_payload(format!("CobPayload: {e}")))
    }
}

/// A compact JWS (`header.payload.signature`).
struct Jws {
    alg: String,
    kid: Option<String>,
    jku: Option<String>,
    signing_input: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    fn parse(text: &str) -> Result<Jws, &'static str> {
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("it is not a compact JWS (header.payload.signature)");
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "a JWS part is not base64url");
        let header_json: Value = serde_json::from_slice(&decode(header)?).map_err(|_| "the JWS header is not JSON")?;
        let field = |name: &str| header_json.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Jws {
            alg: field("alg").ok_or("the JWS header has no alg")?,
            kid: field("kid"),
            jku: field("jku"),
            signing_input: format!("{header}.{payload}"),
            payload: decode(payload)?,
            signature: decode(signature)?,
        })
    }

    /// The `jku`, which must be on the same host and port as the location, over the location's
    /// scheme (https, or http on an allowed loopback address); the outbound policy checks it again.
    fn key_set_url(&self, location: &url::Url) -> Result<url::Url, &'static str> {
        let jku = self.jku.as_deref().ok_or("the JWS header has no jku (key set URL)")?;
        let jku = url::Url::parse(jku).map_err(|_| "the JWS jku is not a URL")?;
        let same_origin =
            jku.host_str() == location.host_str() && jku.port_or_known_default() == location.port_or_known_default();
        if !same_origin {
            return Err("the JWS jku is not on the location's host");
        }
        if !jku.username().is_empty() || jku.password().is_some() {
            return Err("the JWS jku must not carry credentials");
        }
        let scheme_ok = jku.scheme() == "https" || (jku.scheme() == "http" && location.scheme() == "http");
        if !scheme_ok {
            return Err("the JWS jku must be an https URL");
        }
        Ok(jku)
    }

    /// Verifies the signature with the key named by `kid` in `keys` (a JWK Set).
    fn verify(&self, keys: &Value) -> Result<(), &'static str> {
        use ring::signature;
        let keys = keys.get("keys").and_then(Value::as_array).ok_or("the key set has no keys")?;
        let key = keys
            .iter()
            .find(|k| match &self.kid {
                Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid.as_str()),
                None => keys.len() == 1,
            })
            .ok_or("the key set has no key for the JWS kid")?;
        let b64 = |name: &str| {
            key.get(name).and_then(Value::as_str).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok()).ok_or("malformed JWK")
        };
        let message = self.signing_input.as_bytes();
        let verified = match self.alg.as_str() {
            "ES256" => {
                if key.get("crv").and_then(Value::as_str) != Some("P-256") {
                    return Err("the JWK is not a P-256 key");
                }
                let (x, y) = (b64("x")?, b64("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("malformed JWK");
                }
                let point = [&[4u8][..], &x, &y].concat();
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, &self.signature)
            }
            "RS256" | "PS256" => {
                let algorithm = if self.alg == "RS256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                let (n, e) = (b64("n")?, b64("e")?);
                signature::RsaPublicKeyComponents { n, e }.verify(algorithm, message, &self.signature)
            }
            _ => return Err("the JWS alg is not one of ES256, RS256, PS256"),
        };
        verified.map_err(|_| "the JWS signature does not verify")
    }
}

/// Checks the fetched charge and fills what it decides: key, amount, txid, description.
fn apply_charge(
    resolved: &mut ResolvedQr,
    fetched: FetchedCharge,
    now: DateTime<Utc>,
    payment_date: NaiveDate,
) -> ApiResult<()> {
    match fetched {
        FetchedCharge::Immediate(charge) => {
            check_status(charge.status)?;
            let expires_at = charge.expires_at();
            if expires_at.is_none_or(|at| at <= now) {
                let when = expires_at.map(|at| at.to_rfc3339()).unwrap_or_else(|| "long ago".into());
                return Err(not_payable(format!("the charge expired at {when}")));
            }
            let amount_changeable = charge.value.change == AmountChange::PayerMayChange;
            if !charge.value.original.is_positive() && !amount_changeable {
                return Err(bad_payload("valor.original must be greater than zero"));
            }
            resolved.kind = QrKind::Immediate;
            resolved.receiver_key = charge_key(&charge.key)?;
            resolved.amount = Some(charge.value.original);
            resolved.txid = Some(charge_txid(&charge.txid)?);
            resolved.txid_forwardable = true;
            resolved.description = charge.payer_request.clone().or(resolved.description.take());
            resolved.charge = Some(ChargeDetails {
                status: charge.status,
                revision: charge.revision,
                created_at: charge.calendar.created_at,
                expires_at,
                amount_changeable,
                due_date: None,
                last_payable_date: None,
                payment_date: None,
                breakdown: None,
            });
        }
        FetchedCharge::DueDate(charge) => {
            check_status(charge.status)?;
            let last = charge.last_payable_date();
            if last.is_none_or(|last| payment_date > last) {
                let last = last.map(|d| d.to_string()).unwrap_or_default();
                return Err(not_payable(format!(
                    "the charge could be paid until {last} (due {} plus {} days); {payment_date} is too late",
                    charge.calendar.due_date, charge.calendar.days_valid_after_due
                )));
            }
            if !charge.value.components_add_up() {
                return Err(bad_payload("valor.final is not original + multa + juros - abatimento - desconto"));
            }
            if !charge.value.total.is_positive() {
                return Err(bad_payload("valor.final must be greater than zero"));
            }
            resolved.kind = QrKind::DueDate;
            resolved.receiver_key = charge_key(&charge.key)?;
            resolved.amount = Some(charge.value.total);
            resolved.txid = Some(charge_txid(&charge.txid)?);
            resolved.txid_forwardable = true;
            resolved.description = charge.payer_request.clone().or(resolved.description.take());
            resolved.charge = Some(ChargeDetails {
                status: charge.status,
                revision: charge.revision,
                created_at: charge.calendar.created_at,
                expires_at: None,
                amount_changeable: false,
                due_date: Some(charge.calendar.due_date),
                last_payable_date: last,
                payment_date: Some(payment_date),
                breakdown: Some(charge.value),
            });
        }
    }
    Ok(())
}

fn check_status(status: ChargeStatus) -> ApiResult<()> {
    let why = match status {
        ChargeStatus::Active => return Ok(()),
        ChargeStatus::Concluded => "it was already paid (CONCLUIDA)",
        ChargeStatus::RemovedByReceiver => "the receiver removed it (REMOVIDA_PELO_USUARIO_RECEBEDOR)",
        ChargeStatus::RemovedByPsp => "the receiver's PSP removed it (REMOVIDA_PELO_PSP)",
    };
    Err(not_payable(format!("the charge is not payable: {why}")))
}

/// The charge's `chave` in DICT format (an `@` means e-mail, as in the BR Code parser).
fn charge_key(key: &str) -> ApiResult<String> {
    let parsed = if key.contains('@') { PixKey::parse(PixKeyType::Email, key) } else { PixKey::infer(key) };
    parsed.map(|k| k.value().to_owned()).map_err(|_| bad_payload("chave is not a valid Pix key"))
}

/// API Pix txids are `[a-zA-Z0-9]{26,35}`; the payer forwards it intact.
fn charge_txid(txid: &str) -> ApiResult<String> {
    let ok = (26..=35).contains(&txid.len()) && txid.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok { Ok(txid.to_owned()) } else { Err(bad_payload("txid is not 26 to 35 letters and digits")) }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecodeRequest {
    /// The BR Code ("Pix Copia e Cola").
    pub emv: String,
    /// Due-date codes: the date the amount is computed for (default today in Brasília; not in the past).
    #[serde(default)]
    pub payment_date: Option<NaiveDate>,
    /// Due-date codes: the payer's 7-digit IBGE municipality code, sent as `codMun`.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{7}$")]
    pub city_code: Option<String>,
}

/// The amounts of a due-date charge on `paymentDate`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmountDetailsView {
    #[schema(value_type = Option<String>, example = "100.00")]
    pub original: Option<Money>,
    #[schema(value_type = Option<String>)]
    pub fine: Option<Money>,
    #[schema(value_type = Option<String>)]
    pub interest: Option<Money>,
    #[schema(value_type = Option<String>)]
    pub abatement: Option<Money>,
    #[schema(value_type = Option<String>)]
    pub discount: Option<Money>,
    /// What the payer pays.
    #[serde(rename = "final")]
    #[schema(value_type = String, example = "102.33")]
    pub total: Money,
}

/// A decoded BR Code; dynamic codes carry their fetched charge.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecodedQrView {
    /// `STATIC`, `IMMEDIATE` or `DUE_DATE`.
    #[serde(rename = "type")]
    #[schema(example = "STATIC")]
    pub kind: &'static str,
    pub receiver_key: String,
    /// Absent when a static code leaves the amount to the payer.
    #[schema(value_type = Option<String>, example = "10.00")]
    pub amount: Option<Money>,
    pub description: Option<String>,
    /// The txid as the code shows it: a static code's 62.05 (absent for `***`), or a dynamic
    /// code's charge txid.
    pub tx_id: Option<String>,
    /// Whether `txId` goes to the SPI with the payment: false when absent, and for a static txid
    /// that is not letters and digits only (e.g. `RP12345678-2019`), which payer apps show but
    /// do not forward.
    pub tx_id_forwardable: bool,
    pub merchant_name: String,
    pub merchant_city: String,
    pub merchant_category_code: String,
    pub postal_code: Option<String>,
    /// Dynamic codes: the location (26.25) the charge was fetched from.
    pub location: Option<String>,
    /// Dynamic codes: `ACTIVE` (other statuses are refused with PIX-0303).
    pub status: Option<&'static str>,
    pub revision: Option<u32>,
    pub created_at: Option<DateTime<Utc>>,
    /// Immediate codes.
    pub expires_at: Option<DateTime<Utc>>,
    /// Immediate codes: whether the payer may change the amount (`modalidadeAlteracao` 1).
    pub amount_changeable: Option<bool>,
    /// Due-date codes.
    pub due_date: Option<NaiveDate>,
    pub last_payable_date: Option<NaiveDate>,
    pub payment_date: Option<NaiveDate>,
    pub amount_details: Option<AmountDetailsView>,
}

fn status_name(status: ChargeStatus) -> &'static str {
    match status {
        ChargeStatus::Active => "ACTIVE",
        ChargeStatus::Concluded => "CONCLUDED",
        ChargeStatus::RemovedByReceiver => "REMOVED_BY_RECEIVER",
        ChargeStatus::RemovedByPsp => "REMOVED_BY_PSP",
    }
}

impl From<ResolvedQr> for DecodedQrView {
    fn from(r: ResolvedQr) -> Self {
        let charge = r.charge;
        DecodedQrView {
            kind: r.kind.as_str(),
            receiver_key: r.receiver_key,
            amount: r.amount,
            description: r.description,
            tx_id_forwardable: r.txid_forwardable,
            tx_id: r.txid,
            merchant_name: r.merchant_name,
            merchant_city: r.merchant_city,
            merchant_category_code: r.merchant_category_code,
            postal_code: r.postal_code,
            location: r.location,
            status: charge.as_ref().map(|c| status_name(c.status)),
            revision: charge.as_ref().map(|c| c.revision),
            created_at: charge.as_ref().map(|c| c.created_at),
            expires_at: charge.as_ref().and_then(|c| c.expires_at),
            amount_changeable: charge.as_ref().filter(|_| r.kind == QrKind::Immediate).map(|c| c.amount_changeable),
            due_date: charge.as_ref().and_then(|c| c.due_date),
            last_payable_date: charge.as_ref().and_then(|c| c.last_payable_date),
            payment_date: charge.as_ref().and_then(|c| c.payment_date),
            amount_details: charge.and_then(|c| c.breakdown).map(|b| AmountDetailsView {
                original: b.original,
                fine: b.fine,
                interest: b.interest,
                abatement: b.abatement,
                discount: b.discount,
                total: b.total,
            }),
        }
    }
}

/// Decode a BR Code. Static codes are read as they are; dynamic codes are fetched from their
/// location (signed JWS), checked (ACTIVE, not expired, payable on `paymentDate`) and returned
/// with the charge's amount.
#[utoipa::path(post, path = "/v1/qrcodes/decode", tag = "QR Codes", request_body = DecodeRequest,
    params(("X-Account-Id" = uuid::Uuid, Header, description = "The paying account")),
    security(("tenant_token" = [])),
    responses((status = 200, body = DecodedQrView),
        (status = 400, body = ErrorResponse, description = "PIX-0301: the code is malformed (the message names the field)"),
        (status = 404, body = ErrorResponse),
        (status = 422, body = ErrorResponse, description = "PIX-0303: the charge is expired, paid or removed"),
        (status = 502, body = ErrorResponse, description = "PIX-0302/PIX-0304: the location could not be fetched or served an invalid charge")))]
async fn decode(
    State(state): State<AppState>,
    _account: OwnedAccount,
    AppJson(body): AppJson<DecodeRequest>,
) -> ApiResult<Json<DecodedQrView>> {
    let resolved = resolve_with_city(&state, &body.emv, body.payment_date, body.city_code.as_deref()).await?;
    Ok(Json(resolved.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn signed(payload: &str, jku: &str) -> (String, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let header = json!({"alg": "ES256", "kid": "k1", "jku": jku}).to_string();
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let signature = key.sign(&rng, input.as_bytes()).unwrap();
        let point = key.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])}]});
        (format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())), jwks)
    }

    #[test]
    fn es256_signatures_verify_and_tampering_is_caught() {
        let (jws, jwks) = signed(r#"{"txid":"a"}"#, "https://psp.example.com/jwks");
        let parsed = Jws::parse(&jws).unwrap();
        assert_eq!(parsed.payload, br#"{"txid":"a"}"#);
        assert_eq!(parsed.verify(&jwks), Ok(()));
        let (other, _) = signed(r#"{"txid":"b"}"#, "https://psp.example.com/jwks");
        let forged = format!("{}.{}", jws.rsplit_once('.').unwrap().0, other.rsplit_once('.').unwrap().1);
        assert_eq!(Jws::parse(&forged).unwrap().verify(&jwks), Err("the JWS signature does not verify"));
        let unknown_kid = json!({"keys": [{"kid": "k2"}]});
        assert!(parsed.verify(&unknown_kid).is_err());
        assert!(Jws::parse("a.b").is_err());
    }

    #[test]
    fn key_sets_must_come_from_the_location_host() {
        let location = url::Url::parse("https://psp.example.com/qr/v2/cob/abc").unwrap();
        let jws = |jku: &str| Jws::parse(&signed("{}", jku).0).unwrap();
        assert!(jws("https://psp.example.com/jwks").key_set_url(&location).is_ok());
        assert!(jws("https://evil.example.com/jwks").key_set_url(&location).is_err());
        assert!(jws("http://psp.example.com/jwks").key_set_url(&location).is_err(), "https only");
        let local = url::Url::parse("http://127.0.0.1:4000/qr/v2/cob/abc").unwrap();
        assert!(jws("http://127.0.0.1:4000/jwks").key_set_url(&local).is_ok());
        assert!(jws("http://127.0.0.1:4001/jwks").key_set_url(&local).is_err(), "same port");
    }

    fn outbound(allow: &[&str]) -> Outbound {
        let config = crate::config::OutboundConfig {
            allow_networks: allow.iter().map(|n| n.parse().unwrap()).collect(),
            ..Default::default()
        };
        Outbound::new(&config, std::time::Duration::from_secs(1), "test").unwrap()
    }

    #[test]
    fn locations_are_https_except_allowed_loopback_and_refusals_are_generic() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 11).unwrap();
        let strict = outbound(&[]);
        let url = location_url("pix.example.com/qr/v2/cobv/abc", &strict, date, Some("3550308")).unwrap();
        assert_eq!(url.as_str(), "https://pix.example.com/qr/v2/cobv/abc?DPP=2026-03-11&codMun=3550308");
        let local = outbound(&["127.0.0.1/32"]);
        let url = location_url("127.0.0.1:9000/qr/v2/cob/abc", &local, date, None).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/qr/v2/cob/abc?DPP=2026-03-11");
        let mut messages = std::collections::BTreeSet::new();
        for refused in [
            "127.0.0.1:9000/x",
            "10.0.0.1/x",
            "192.168.1.1/x",
            "[::1]/x",
            "169.254.169.254/x",
            "[::ffff:127.0.0.1]/x",
            "100.64.0.1/x",
        ] {
            let err = location_url(refused, &strict, date, None).unwrap_err();
            assert_eq!(err.0.code, ErrorCode::QrPayloadUnavailable, "{refused}");
            messages.insert(err.0.message.clone());
        }
        assert_eq!(messages.len(), 1, "one message whatever the address: {messages:?}");
        assert!(location_url("10.0.0.1/x", &local, date, None).is_err(), "the allowlist is exact");
        assert!(location_url("user:pw@pix.example.com/x", &strict, date, None).is_err());
    }
}
