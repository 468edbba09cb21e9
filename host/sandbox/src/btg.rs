//! BTG simulator: OAuth2 token, DICT (a directory that also holds other participants' keys,
//! claims with time-driven transitions, MED objects, statistics, CID files, funds recoveries) and
//! SPI (payments, reversals, trck.002 reports), emitting signed webhooks. Contract: docs/integrations.md.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use base64_decode::decode_basic;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use pix_core::money::Money;
use pix_integrations::btg::{ClaimStatus, FundsRecoveryEventType, FundsRecoveryStatus, PaymentStatus, SituationType};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::Shared;
use crate::ledger::parse_amount;
use crate::sim::{ApiError, bearer};

/// Amount cents that make a payment fail (pacs.002 `AC03`), e.g. `10.13`.
pub const REJECT_CENTS: i64 = 13;
/// Amount cents that leave a payment PROCESSING forever (exercises unblock/reconciliation).
pub const STUCK_CENTS: i64 = 66;

pub(crate) fn btg_err(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError(status, json!({"code": code, "message": message.into()}))
}

fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
    btg_err(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn not_found(code: &str) -> ApiError {
    btg_err(StatusCode::NOT_FOUND, code, "not found")
}

/// A key in the simulated DICT.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub key: String,
    pub key_type: String,
    pub account: Value,
    pub owner: Value,
    pub request_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub ownership_at: DateTime<Utc>,
}

impl DirEntry {
    fn participant(&self) -> &str {
        self.account["participant"].as_str().unwrap_or_default()
    }

    fn json(&self) -> Value {
        json!({"key": self.key, "keyType": self.key_type, "account": self.account, "owner": self.owner,
               "creationDate": self.created_at, "keyOwnershipDate": self.ownership_at})
    }

    /// DICT CID: HMAC-SHA256(requestId bytes, attributes joined by `&`).
    fn cid(&self) -> String {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let attrs = [
            self.key_type.clone(),
            self.key.clone(),
            s(&self.owner["taxIdNumber"]),
            s(&self.owner["name"]),
            s(&self.owner["tradeName"]),
            s(&self.account["participant"]),
            s(&self.account["branch"]),
            s(&self.account["number"]),
            s(&self.account["type"]),
        ];
        let mut mac = Hmac::<Sha256>::new_from_slice(self.request_id.as_bytes()).expect("any key length");
        mac.update(attrs.join("&").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// What the simulated other participant does with claims we open against its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DonorBehaviour {
    /// Acknowledges after 1 h and confirms after 1 day (simulated time).
    Confirm,
    /// Acknowledges after 1 h and cancels after 1 day.
    Cancel,
    /// Never answers: at the end of the resolution period ownership claims are confirmed and
    /// portability claims lapse (DEFAULT_OPERATION).
    Ignore,
}

#[derive(Clone, Debug)]
struct ClaimRec {
    id: String,
    claim_type: String,
    key: String,
    key_type: String,
    status: ClaimStatus,
    claimer_participant: String,
    donor_participant: String,
    claimer_account: Value,
    claimer: Value,
    created_at: DateTime<Utc>,
    resolution_end: DateTime<Utc>,
    completion_end: Option<DateTime<Utc>>,
    last_modified: DateTime<Utc>,
    cancelled_by: Option<String>,
    cancel_reason: Option<String>,
    confirm_reason: Option<String>,
}

impl ClaimRec {
    fn json(&self) -> Value {
        json!({"id": self.id, "type": self.claim_type, "key": self.key, "keyType": self.key_type,
               "status": self.status, "claimerParticipant": self.claimer_participant,
               "donorParticipant": self.donor_participant, "claimerAccount": self.claimer_account,
               "claimer": self.claimer, "resolutionPeriodEnd": self.resolution_end,
               "completionPeriodEnd": self.completion_end, "lastModified": self.last_modified,
               "cancelledBy": self.cancelled_by, "cancelReason": self.cancel_reason,
               "confirmReason": self.confirm_reason})
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Outbound,
    Inbound,
}

#[derive(Clone, Debug)]
struct PaymentRec {
    id: String,
    e2e: String,
    amount: i64,
    status: PaymentStatus,
    direction: Direction,
    settle_at: Option<DateTime<Utc>>,
    settled_at: Option<DateTime<Utc>>,
    rejection: Option<(String, String)>,
    debtor: Value,
    creditor: Value,
    returned: i64,
    /// Our refusal of an inbound payment (`{reasonCode, reason, description, refusedAt}`).
    refusal: Option<Value>,
    /// `TRANSFER` or `INSTANT_PAYMENT_REFUND` (MED 2.0); inbound payments are transfers.
    transaction_type: &'static str,
}

impl PaymentRec {
    fn json(&self) -> Value {
        json!({"id": self.id, "endToEndId": self.e2e, "status": self.status,
               "amount": money(self.amount), "rejectionCode": self.rejection.as_ref().map(|r| &r.0),
               "rejectionReason": self.rejection.as_ref().map(|r| &r.1), "settledAt": self.settled_at})
    }
}

#[derive(Clone, Debug)]
struct ReversalRec {
    id: String,
    /// The client's id of the return (its idempotency key), echoed on every read.
    request_id: Option<String>,
    rtr: String,
    original: String,
    amount: i64,
    reason: String,
    status: PaymentStatus,
    rejection_code: Option<&'static str>,
    settle_at: Option<DateTime<Utc>>,
    settled_at: Option<DateTime<Utc>>,
}

impl ReversalRec {
    fn json(&self) -> Value {
        json!({"id": self.id, "requestId": self.request_id, "returnEndToEndId": self.rtr,
               "originalEndToEndId": self.original, "amount": money(self.amount), "reason": self.reason,
               "status": self.status, "rejectionCode": self.rejection_code, "settledAt": self.settled_at})
    }
}

/// Two-place decimal string, as BTG sends amounts.
fn money(centavos: i64) -> String {
    Money::from_centavos(centavos).to_string()
}

/// A record whose status moves on its own with simulated time.
#[derive(Clone, Debug)]
struct Timed {
    v: Value,
    steps: Vec<(DateTime<Utc>, Value)>,
    event: &'static str,
}

/// BTG state.
#[derive(Default)]
pub struct BtgState {
    directory: BTreeMap<String, DirEntry>,
    claims: BTreeMap<String, ClaimRec>,
    payments: BTreeMap<String, PaymentRec>,
    reversals: BTreeMap<String, ReversalRec>,
    fraud_markers: BTreeMap<String, Value>,
    infractions: BTreeMap<String, Timed>,
    refunds: BTreeMap<String, Timed>,
    recoveries: BTreeMap<String, Timed>,
    cid_files: BTreeMap<String, Timed>,
    reports: BTreeMap<String, Timed>,
    idempotency: HashMap<String, (u16, Bytes)>,
    settlements_by_key: HashMap<String, u64>,
    donor_behaviour: Option<DonorBehaviour>,
    /// Further participants BTG serves (other institutions on the same host), by client id.
    clients: HashMap<String, Participant>,
}

/// A participant with its own BTG client credentials.
#[derive(Clone)]
struct Participant {
    client_secret: String,
    ispb: String,
}

tokio::task_local! {
    /// The ISPB of the participant whose token authenticated the current request.
    static CALLER: String;
}

mod base64_decode {
    use base64::Engine;

    /// Decodes `Basic base64(id:secret)`.
    pub fn decode_basic(header: &str) -> Option<(String, String)> {
        let raw = header.strip_prefix("Basic ")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, secret) = text.split_once(':')?;
        Some((id.to_owned(), secret.to_owned()))
    }
}

/// Router for the BTG simulator.
pub fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/health", get(|| async { "healthy" }))
        .route("/dict/entries", post(create_entry))
        .route("/dict/entries/{key}", get(get_entry).put(update_entry).delete(delete_entry))
        .route("/dict/keys/check", post(check_keys))
        .route("/dict/keys/{key}", get(lookup_key))
        .route("/dict/claims", post(create_claim).get(list_claims))
        .route("/dict/claims/{id}", get(get_claim))
        .route("/dict/claims/{id}/{action}", post(claim_action))
        .route("/dict/fraud-markers", post(create_fraud_marker).get(list_fraud_markers))
        .route("/dict/fraud-markers/{id}/cancel", post(cancel_fraud_marker))
        .route("/dict/infraction-reports", post(create_infraction))
        .route("/dict/infraction-reports/{id}", get(get_infraction))
        .route("/dict/infraction-reports/{id}/{action}", post(infraction_action))
        .route("/dict/refunds", post(create_refund))
        .route("/dict/refunds/{id}", get(get_refund))
        .route("/dict/refunds/{id}/{action}", post(refund_action))
        .route("/dict/statistics/keys/{key}", get(key_statistics))
        .route("/dict/statistics/persons/{tax_id}", get(person_statistics))
        .route("/dict/cid-files", post(create_cid_file))
        .route("/dict/cid-files/{id}", get(get_cid_file))
        .route("/dict/cids/{cid}/entry", get(entry_by_cid))
        .route("/dict/funds-recoveries", post(create_recovery))
        .route("/dict/funds-recoveries/{id}", get(get_recovery).put(update_recovery))
        .route("/dict/funds-recoveries/{id}/cancel", post(cancel_recovery))
        .route("/dict/funds-recoveries/{id}/refund", post(refund_recovery))
        .route("/dict/funds-recoveries/{id}/tracking-graph", get(tracking_graph))
        .route("/pix/payments", post(create_payment))
        .route("/pix/payments/{e2e}", get(get_payment))
        .route("/pix/payments/{e2e}/refusal", post(refuse_payment))
        .route("/pix/payments/{e2e}/reversals", post(create_reversal).get(list_reversals))
        .route("/pix/payments/{e2e}/reversals/{rtr}", get(get_reversal))
        .route("/pix/internal-transactions-reports", post(create_report))
        .route("/pix/internal-transactions-reports/{id}", get(get_report))
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency))
        .layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(s): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path != "/oauth2/token" && path != "/health" {
        let caller = bearer(request.headers())
            .and_then(|t| s.sim.btg_tokens.lock().unwrap_or_else(|e| e.into_inner()).get(t).cloned());
        let Some(caller) = caller else {
            return btg_err(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing or invalid bearer token")
                .into_response();
        };
        return CALLER.scope(caller, next.run(request)).await;
    }
    next.run(request).await
}

/// Replays the stored response of a POST whose `x-idempotency-key` was already answered 2xx.
async fn idempotency(State(s): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let key = (request.method() == axum::http::Method::POST)
        .then(|| request.headers().get("x-idempotency-key"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("{}|{k}", request.uri().path()));
    let Some(key) = key else {
        return next.run(request).await;
    };
    if let Some((status, body)) = s.btg().idempotency.get(&key).cloned() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        return (status, [("content-type", "application/json"), ("x-idempotency-replayed", "true")], body)
            .into_response();
    }
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    s.btg().idempotency.insert(key, (parts.status.as_u16(), bytes.clone()));
    Response::from_parts(parts, Body::from(bytes))
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let creds = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(decode_basic);
    let expected = &s.config.btg_credentials;
    let caller = creds.and_then(|(id, secret)| {
        if id == expected.client_id && secret == expected.client_secret {
            return Some(s.config.ispb.clone());
        }
        s.btg().clients.get(&id).filter(|p| p.client_secret == secret).map(|p| p.ispb.clone())
    });
    let Some(caller) = caller.filter(|_| form.get("grant_type").map(String::as_str) == Some("client_credentials"))
    else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    };
    let token = s.sim.token();
    s.sim.btg_tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), caller);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                "scope": form.get("scope").cloned().unwrap_or_default()}))
    .into_response()
}

type ApiResult = Result<Response, ApiError>;

fn body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", e.to_string()))
}

fn created(v: Value) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

fn accepted(v: Value) -> ApiResult {
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    v[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("{name} is required")))
}

fn valid_key(key_type: &str, key: &str) -> bool {
    let digits = |n: usize| key.len() == n && key.bytes().all(|b| b.is_ascii_digit());
    match key_type {
        "CPF" => digits(11),
        "CNPJ" => key.len() == 14 && key.bytes().all(|b| b.is_ascii_alphanumeric()),
        "PHONE" => {
            key.starts_with('+') && (3..=16).contains(&key.len()) && key[1..].bytes().all(|b| b.is_ascii_digit())
        }
        "EMAIL" => key.len() <= 77 && key.contains('@') && key == key.to_lowercase(),
        "EVP" => Uuid::parse_str(key).is_ok(),
        _ => false,
    }
}

impl Shared {
    pub(crate) fn btg(&self) -> std::sync::MutexGuard<'_, BtgState> {
        self.btg.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calling participant's ISPB (the host institution's outside a request).
    fn ispb(&self) -> String {
        CALLER.try_with(Clone::clone).unwrap_or_else(|_| self.config.ispb.clone())
    }

    /// Whether BTG serves `ispb` here (the host institution or a registered participant).
    fn serves(&self, ispb: &str) -> bool {
        ispb == self.config.ispb || self.btg().clients.values().any(|p| p.ispb == ispb)
    }

    /// Registers another participant with its own client credentials.
    pub(crate) fn btg_add_participant(&self, ispb: &str, client_id: &str, client_secret: &str) {
        let participant = Participant { client_secret: client_secret.to_owned(), ispb: ispb.to_owned() };
        self.btg().clients.insert(client_id.to_owned(), participant);
    }

    /// Queues a webhook to the participant the event is about: a payment's debtor, a received
    /// payment's creditor, otherwise the caller.
    fn emit(&self, event: &str, data: Value) -> String {
        let side = match event {
            "PIX_PAYMENT" => data["debtor"]["ispb"].as_str(),
            "PIX_PAYMENT_INBOUND" => data["creditor"]["ispb"].as_str(),
            "PIX_INTERNAL_TRANSACTIONS_REPORT" => data["participant"].as_str(),
            _ => None,
        };
        let ispb = side.map(str::to_owned).or_else(|| CALLER.try_with(Clone::clone).ok());
        self.webhooks.emit(ispb.as_deref(), event, data)
    }

    /// An EndToEndId `E|D` + ISPB + yyyyMMddHHmm + 11 alphanumerics.
    pub fn end_to_end_id(&self, prefix: char, ispb: &str) -> String {
        format!("{prefix}{ispb}{}{}", self.sim.clock.now().format("%Y%m%d%H%M"), self.sim.alnum(11))
    }

    /// Registers a key for any participant (used by the seed and the control API).
    pub fn dict_register(
        &self,
        key_type: &str,
        key: Option<&str>,
        account: Value,
        owner: Value,
    ) -> Result<Value, ApiError> {
        let key = match key {
            Some(k) => k.to_owned(),
            None if key_type == "EVP" => self.sim.uuid().to_string(),
            None => {
                return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "key is required"));
            }
        };
        if !valid_key(key_type, &key) {
            return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_KEY", format!("invalid {key_type} key")));
        }
        if (key_type == "CPF" || key_type == "CNPJ") && owner["taxIdNumber"].as_str() != Some(key.as_str()) {
            return Err(unprocessable("ENTRY_KEY_OWNER_MISMATCH", "a CPF/CNPJ key must be the owner's document"));
        }
        let request_id = self.sim.uuid();
        let now = self.sim.clock.now();
        let mut st = self.btg();
        if let Some(existing) = st.directory.get(&key) {
            let code = if existing.participant() == account["participant"].as_str().unwrap_or_default() {
                "ENTRY_ALREADY_EXISTS"
            } else {
                "ENTRY_KEY_OWNED_BY_DIFFERENT_PARTICIPANT"
            };
            return Err(btg_err(StatusCode::CONFLICT, code, "the key already has an entry"));
        }
        let same_account = st
            .directory
            .values()
            .filter(|e| {
                e.account["participant"] == account["participant"]
                    && e.account["number"] == account["number"]
                    && e.account["branch"] == account["branch"]
            })
            .count();
        let limit = if owner["type"] == "LEGAL_PERSON" { 20 } else { 5 };
        if same_account >= limit {
            return Err(unprocessable("ENTRY_LIMIT_EXCEEDED", "too many keys for this account"));
        }
        let entry = DirEntry {
            key: key.clone(),
            key_type: key_type.to_owned(),
            account,
            owner,
            request_id,
            created_at: now,
            ownership_at: now,
        };
        let v = entry.json();
        st.directory.insert(key, entry);
        Ok(v)
    }

    /// A Pix from another bank to one of our keys or accounts (control API).
    pub fn btg_inbound_payment(&self, req: &Value) -> Result<Value, ApiError> {
        let amount = parse_amount(&req["amount"])
            .filter(|a| *a > 0)
            .ok_or_else(|| unprocessable("INVALID_AMOUNT", "amount must be positive"))?;
        let creditor = match req["key"].as_str() {
            Some(key) => {
                let e = self.btg().directory.get(key).cloned().ok_or_else(|| not_found("ENTRY_NOT_FOUND"))?;
                if !self.serves(e.participant()) {
                    return Err(unprocessable("KEY_NOT_OURS", "the key belongs to another participant"));
                }
                json!({"ispb": e.participant(), "branch": e.account["branch"], "account": e.account["number"],
                       "accountType": e.account["type"], "taxId": e.owner["taxIdNumber"],
                       "name": e.owner["name"], "key": key})
            }
            None => {
                let mut c = req["creditor"].clone();
                if !c.is_object() {
                    return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "key or creditor is required"));
                }
                let served = c["ispb"].as_str().is_some_and(|i| self.serves(i));
                if !served {
                    c["ispb"] = json!(self.ispb());
                }
                c
            }
        };
        let debtor_ispb = req["debtorIspb"].as_str().unwrap_or("87654321").to_owned();
        let mut debtor = if req["debtor"].is_object() {
            req["debtor"].clone()
        } else {
            json!({"branch": "0001", "account": "99887766", "accountType": "CACC",
                   "taxId": "11144477735", "name": "Pagador Externo"})
        };
        debtor["ispb"] = json!(debtor_ispb);
        let e2e = self.end_to_end_id('E', &debtor_ispb);
        let now = self.sim.clock.now();
        let data = json!({"endToEndId": e2e, "amount": money(amount), "debtor": debtor, "creditor": creditor,
            "remittanceInformation": req["remittanceInformation"], "txid": req["txid"],
            "initiationType": req["initiationType"].as_str().unwrap_or("DICT"), "settledAt": now});
        let id = self.sim.uuid().to_string();
        let mut st = self.btg();
        if let Some(k) = creditor["key"].as_str() {
            *st.settlements_by_key.entry(k.to_owned()).or_default() += 1;
        }
        st.payments.insert(
            e2e.clone(),
            PaymentRec {
                id,
                e2e,
                amount,
                status: PaymentStatus::Confirmed,
                direction: Direction::Inbound,
                settle_at: None,
                settled_at: Some(now),
                rejection: None,
                debtor,
                creditor,
                returned: 0,
                refusal: None,
                transaction_type: "TRANSFER",
            },
        );
        drop(st);
        self.emit("PIX_PAYMENT_INBOUND", data.clone());
        Ok(data)
    }

    /// A reversal by the receiving bank of one of our confirmed cash-outs (control API).
    pub fn btg_inbound_reversal(&self, req: &Value) -> Result<Value, ApiError> {
        let original = str_field(req, "originalEndToEndId")?.to_owned();
        let now = self.sim.clock.now();
        let rtr_id = self.sim.uuid().to_string();
        let mut st = self.btg();
        let p = st.payments.get_mut(&original).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
        if p.direction != Direction::Outbound || p.status != PaymentStatus::Confirmed {
            return Err(unprocessable(
                "PAYMENT_NOT_REVERSIBLE",
                "only confirmed outgoing payments can be returned to us",
            ));
        }
        let amount = match req.get("amount") {
            Some(a) if !a.is_null() => parse_amount(a).ok_or_else(|| unprocessable("INVALID_AMOUNT", "bad amount"))?,
            _ => p.amount - p.returned,
        };
        if amount <= 0 || amount > p.amount - p.returned {
            return Err(unprocessable("REVERSAL_AMOUNT_EXCEEDED", "amount exceeds what can be returned"));
        }
        p.returned += amount;
        let creditor_ispb = p.creditor["ispb"].as_str().unwrap_or("00000000").to_owned();
        drop(st);
        let rtr = ReversalRec {
            id: rtr_id,
            request_id: None,
            rtr: self.end_to_end_id('D', &creditor_ispb),
            original,
            amount,
            reason: req["reason"].as_str().unwrap_or("MD06").to_owned(),
            status: PaymentStatus::Confirmed,
            rejection_code: None,
            settle_at: None,
            settled_at: Some(now),
        };
        let data = rtr.json();
        self.btg().reversals.insert(rtr.rtr.clone(), rtr);
        self.emit("PIX_REVERSAL_INBOUND", data.clone());
        Ok(data)
    }

    /// Makes BTG's record of a reversal claim another request id (control API): BTG diverging
    /// from the client's record, which the client's consistency guard must catch.
    pub fn btg_tamper_reversal(&self, return_id: &str, request_id: &str) -> Result<Value, ApiError> {
        let mut st = self.btg();
        let r = st.reversals.get_mut(return_id).ok_or_else(|| not_found("REVERSAL_NOT_FOUND"))?;
        r.request_id = Some(request_id.to_owned());
        Ok(r.json())
    }

    /// Another participant claims one of our keys (control API).
    pub fn btg_claim_against_us(&self, req: &Value) -> Result<Value, ApiError> {
        let key = str_field(req, "key")?;
        let claim_type = req["type"].as_str().unwrap_or("PORTABILITY");
        let claimer_ispb = req["claimerParticipant"].as_str().unwrap_or("87654321").to_owned();
        let entry = self.btg().directory.get(key).cloned().ok_or_else(|| not_found("ENTRY_NOT_FOUND"))?;
        if entry.participant() != self.ispb() {
            return Err(unprocessable("KEY_NOT_OURS", "the key belongs to another participant"));
        }
        let account = if req["claimerAccount"].is_object() {
            req["claimerAccount"].clone()
        } else {
            json!({"participant": claimer_ispb, "branch": "0001", "number": "55443322", "type": "CACC"})
        };
        let claimer = if req["claimer"].is_object() { req["claimer"].clone() } else { entry.owner.clone() };
        self.open_claim(claim_type, &entry, &claimer_ispb, &self.ispb(), account, claimer)
    }

    fn open_claim(
        &self,
        claim_type: &str,
        entry: &DirEntry,
        claimer_ispb: &str,
        donor_ispb: &str,
        account: Value,
        claimer: Value,
    ) -> Result<Value, ApiError> {
        let allowed = match claim_type {
            "OWNERSHIP" => entry.key_type == "PHONE",
            "PORTABILITY" => entry.key_type != "EVP",
            _ => false,
        };
        if !allowed {
            return Err(unprocessable(
                "INVALID_CLAIM_TYPE",
                format!("{claim_type} is not allowed for {} keys", entry.key_type),
            ));
        }
        let now = self.sim.clock.now();
        let id = self.sim.uuid().to_string();
        let mut st = self.btg();
        if st
            .claims
            .values()
            .any(|c| c.key == entry.key && !matches!(c.status, ClaimStatus::Cancelled | ClaimStatus::Completed))
        {
            return Err(btg_err(StatusCode::CONFLICT, "CLAIM_ALREADY_OPEN", "the key already has an open claim"));
        }
        let claim = ClaimRec {
            id: id.clone(),
            claim_type: claim_type.to_owned(),
            key: entry.key.clone(),
            key_type: entry.key_type.clone(),
            status: ClaimStatus::Open,
            claimer_participant: claimer_ispb.to_owned(),
            donor_participant: donor_ispb.to_owned(),
            claimer_account: account,
            claimer,
            created_at: now,
            resolution_end: now + Duration::days(7),
            completion_end: (claim_type == "OWNERSHIP").then(|| now + Duration::days(14)),
            last_modified: now,
            cancelled_by: None,
            cancel_reason: None,
            confirm_reason: None,
        };
        let v = claim.json();
        st.claims.insert(id, claim);
        drop(st);
        self.emit("DICT_CLAIM", v.clone());
        Ok(v)
    }

    /// An infraction report filed against one of our payments by another participant.
    pub fn btg_infraction_against_us(&self, req: &Value) -> Result<Value, ApiError> {
        let e2e = str_field(req, "endToEndId")?;
        let reporter = req["reporterParticipant"].as_str().unwrap_or("87654321");
        // DICT's `InfractionAmount` (the amount to block), when the test gives one.
        let amount = match &req["amount"] {
            Value::Null => None,
            Value::String(a) => Some(
                pix_core::money::Money::parse(a)
                    .map_err(|e| btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", format!("amount: {e}")))?,
            ),
            _ => return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "amount: a decimal string")),
        };
        let mut v = self.new_infraction(
            e2e,
            req["reason"].as_str().unwrap_or("REFUND_REQUEST"),
            req["situationType"].as_str(),
            (reporter, &self.ispb()),
            false,
            None,
        )?;
        if let Some(a) = amount {
            v["infractionAmount"] = json!(a.to_string());
            if let Some(record) = self.btg().infractions.get_mut(v["id"].as_str().unwrap_or_default()) {
                record.v["infractionAmount"] = v["infractionAmount"].clone();
            }
        }
        self.emit("INFRACTION_REPORT_V2", v.clone());
        Ok(v)
    }

    /// Another participant asks one of our customers' received payments back (control API): an
    /// OPEN refund request with us contested, announced with `DICT_REFUND`. It waits for our close.
    pub fn btg_refund_request_against_us(&self, req: &Value) -> Result<Value, ApiError> {
        let e2e = str_field(req, "endToEndId")?;
        let amount = parse_amount(&req["amount"])
            .filter(|a| *a > 0)
            .ok_or_else(|| unprocessable("INVALID_AMOUNT", "amount must be a positive decimal string"))?;
        let original = self.btg().payments.get(e2e).cloned().ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
        if original.direction != Direction::Inbound {
            return Err(unprocessable("INVALID_REQUEST", "only a payment one of our customers received"));
        }
        if amount > original.amount {
            return Err(unprocessable("REFUND_AMOUNT_EXCEEDED", "amount exceeds the payment"));
        }
        let now = self.sim.clock.now();
        let id = self.sim.uuid().to_string();
        let requesting = original.debtor["ispb"].as_str().unwrap_or("87654321");
        let v = json!({"id": id, "endToEndId": e2e, "amount": money(amount),
            "reason": req["reason"].as_str().unwrap_or("FRAUD"), "status": "OPEN", "analysisResult": null,
            "rejectionReason": null, "refundEndToEndId": null, "requestingParticipant": requesting,
            "createdAt": now, "updatedAt": now});
        self.btg().refunds.insert(id, Timed { v: v.clone(), steps: Vec::new(), event: "DICT_REFUND" });
        self.emit("DICT_REFUND", v.clone());
        Ok(v)
    }

    fn new_infraction(
        &self,
        e2e: &str,
        reason: &str,
        situation: Option<&str>,
        (reporter, counterparty): (&str, &str),
        auto: bool,
        recovery: Option<&str>,
    ) -> Result<Value, ApiError> {
        if !self.btg().payments.contains_key(e2e) {
            return Err(not_found("PAYMENT_NOT_FOUND"));
        }
        let now = self.sim.clock.now();
        let id = self.sim.uuid().to_string();
        let v = json!({"id": id, "endToEndId": e2e, "reason": reason, "situationType": situation,
            "status": "OPEN", "reporterParticipant": reporter, "counterpartyParticipant": counterparty,
            "analysisResult": null, "analysisDetails": null, "fundsRecoveryId": recovery,
            "createdAt": now, "updatedAt": now});
        // Reports we file are answered by the simulated counterparty.
        let steps = if auto {
            vec![
                (now + Duration::hours(1), json!({"status": "ACKNOWLEDGED"})),
                (
                    now + Duration::days(1),
                    json!({"status": "CLOSED", "analysisResult": "AGREED", "analysisDetails": "confirmed by the counterparty"}),
                ),
            ]
        } else {
            Vec::new()
        };
        self.btg().infractions.insert(id, Timed { v: v.clone(), steps, event: "INFRACTION_REPORT_V2" });
        Ok(v)
    }

    /// Applies every time-driven transition due at `now` and emits the webhooks.
    pub fn btg_tick(&self) {
        let now = self.sim.clock.now();
        let mut events: Vec<(&'static str, Value)> = Vec::new();
        let behaviour = self.btg().donor_behaviour.unwrap_or(DonorBehaviour::Confirm);
        let mut st = self.btg();
        let st = &mut *st;
        for p in st.payments.values_mut() {
            if p.status == PaymentStatus::Processing && p.settle_at.is_some_and(|t| t <= now) {
                if p.amount % 100 == REJECT_CENTS {
                    p.status = PaymentStatus::Rejected;
                    p.rejection = Some(("AC03".into(), "creditor account number invalid or missing".into()));
                } else {
                    p.status = PaymentStatus::Confirmed;
                    p.settled_at = Some(now);
                    if let Some(k) = p.creditor["key"].as_str() {
                        *st.settlements_by_key.entry(k.to_owned()).or_default() += 1;
                    }
                }
                events.push(("PIX_PAYMENT", p.json()));
            }
        }
        for r in st.reversals.values_mut() {
            if r.status == PaymentStatus::Processing && r.settle_at.is_some_and(|t| t <= now) {
                if r.amount % 100 == REJECT_CENTS {
                    // Driven by amount, as payments are: the payer's participant refuses it.
                    r.status = PaymentStatus::Rejected;
                    r.rejection_code = Some("AC06");
                } else {
                    r.status = PaymentStatus::Confirmed;
                    r.settled_at = Some(now);
                }
                events.push(("PIX_REVERSAL", r.json()));
            }
        }
        let own = self.config.ispb.clone();
        let mut removed_keys = Vec::new();
        let mut new_entries = Vec::new();
        for c in st.claims.values_mut() {
            let before = c.status;
            let age = now - c.created_at;
            let we_claim = c.claimer_participant == own;
            match c.status {
                ClaimStatus::Open if we_claim && behaviour != DonorBehaviour::Ignore && age >= Duration::hours(1) => {
                    c.status = ClaimStatus::WaitingResolution;
                }
                ClaimStatus::Open | ClaimStatus::WaitingResolution if now >= c.resolution_end => {
                    // Nobody answered in time: DEFAULT_OPERATION per DICT's manual.
                    if c.claim_type == "OWNERSHIP" {
                        c.status = ClaimStatus::Confirmed;
                        c.confirm_reason = Some("DEFAULT_OPERATION".into());
                        removed_keys.push(c.key.clone());
                    } else {
                        c.status = ClaimStatus::Cancelled;
                        c.cancelled_by = Some("DONOR".into());
                        c.cancel_reason = Some("DEFAULT_OPERATION".into());
                    }
                }
                ClaimStatus::WaitingResolution if we_claim && age >= Duration::days(1) => match behaviour {
                    DonorBehaviour::Confirm => {
                        c.status = ClaimStatus::Confirmed;
                        c.confirm_reason = Some("USER_REQUESTED".into());
                        removed_keys.push(c.key.clone());
                        if c.claim_type == "OWNERSHIP" {
                            c.completion_end = Some(now);
                        }
                    }
                    DonorBehaviour::Cancel => {
                        c.status = ClaimStatus::Cancelled;
                        c.cancelled_by = Some("DONOR".into());
                        c.cancel_reason = Some("USER_REQUESTED".into());
                    }
                    DonorBehaviour::Ignore => {}
                },
                // The simulated claimer completes as soon as DICT allows it.
                ClaimStatus::Confirmed if !we_claim && c.completion_end.is_none_or(|t| now >= t) => {
                    c.status = ClaimStatus::Completed;
                    new_entries.push(c.clone());
                }
                _ => {}
            }
            if c.status != before {
                c.last_modified = now;
                events.push(("DICT_CLAIM", c.json()));
            }
        }
        for key in removed_keys {
            st.directory.remove(&key);
        }
        for c in new_entries {
            let request_id = self.sim.uuid();
            st.directory.insert(
                c.key.clone(),
                DirEntry {
                    key: c.key.clone(),
                    key_type: c.key_type.clone(),
                    account: c.claimer_account.clone(),
                    owner: c.claimer.clone(),
                    request_id,
                    created_at: now,
                    ownership_at: now,
                },
            );
        }
        for map in [&mut st.infractions, &mut st.refunds, &mut st.recoveries, &mut st.cid_files, &mut st.reports] {
            for t in map.values_mut() {
                let mut changed = false;
                while t.steps.first().is_some_and(|(at, _)| *at <= now) {
                    let (_, patch) = t.steps.remove(0);
                    if let (Some(obj), Some(p)) = (t.v.as_object_mut(), patch.as_object()) {
                        obj.extend(p.clone());
                        obj.insert("updatedAt".into(), json!(now));
                    }
                    changed = true;
                }
                if changed {
                    events.push((t.event, t.v.clone()));
                    if t.event == "DICT_REFUND" && t.v["status"] == "CLOSED" {
                        let data = json!({"returnEndToEndId": t.v["refundEndToEndId"], "originalEndToEndId": t.v["endToEndId"],
                            "amount": t.v["amount"], "reason": "FR01", "status": "CONFIRMED", "rejectionCode": null, "settledAt": now});
                        events.push(("PIX_REVERSAL_INBOUND", data));
                    }
                }
            }
        }
        self.recoveries_progress(st, now, &mut events);
        for (event, data) in events {
            self.emit(event, data);
        }
    }

    /// DICT's side of MED 2.0 after the timed steps: a recovery AWAITING_ANALYSIS whose reports
    /// are all closed is ANALYSED; one REFUNDING whose refund requests are all closed is COMPLETED.
    fn recoveries_progress(&self, st: &mut BtgState, now: DateTime<Utc>, events: &mut Vec<(&'static str, Value)>) {
        let closed = |map: &BTreeMap<String, Timed>, id: &str| {
            let linked: Vec<&Timed> = map.values().filter(|t| t.v["fundsRecoveryId"] == id).collect();
            !linked.is_empty() && linked.iter().all(|t| t.v["status"] == "CLOSED")
        };
        let mut moves = Vec::new();
        for (id, t) in &st.recoveries {
            let next = match recovery_status(&t.v) {
                Some(FundsRecoveryStatus::AwaitingAnalysis) if closed(&st.infractions, id) => {
                    (FundsRecoveryStatus::Analysed, FundsRecoveryEventType::Analysed)
                }
                Some(FundsRecoveryStatus::Refunding) if closed(&st.refunds, id) => {
                    (FundsRecoveryStatus::Completed, FundsRecoveryEventType::Completed)
                }
                _ => continue,
            };
            moves.push((id.clone(), next));
        }
        for (id, (status, event)) in moves {
            if let Some(t) = st.recoveries.get_mut(&id) {
                t.v["status"] = json!(status);
                t.v["updatedAt"] = json!(now);
                events.push(("FUNDS_RECOVERY", t.v.clone()));
                events.push(("FUNDS_RECOVERY_EVENTS", self.recovery_notice(&id, event)));
            }
        }
    }

    /// A `FUNDS_RECOVERY_EVENTS` payload.
    fn recovery_notice(&self, id: &str, event: FundsRecoveryEventType) -> Value {
        json!({"id": self.sim.uuid().to_string(), "event": event, "entityType": "FUNDS_RECOVERY", "entityId": id,
               "timestamp": self.sim.clock.now()})
    }

    /// Sets what the simulated donor does with our claims.
    pub fn btg_set_donor_behaviour(&self, b: DonorBehaviour) {
        self.btg().donor_behaviour = Some(b);
    }

    /// Rewrites the amount BTG reports for a payment (control API): a record that no longer
    /// matches the participant's, for the consistency guard of `POST /v1/transfers/{id}/unblock`.
    pub fn btg_set_payment_amount(&self, e2e: &str, amount: Money) -> Result<Value, ApiError> {
        let mut st = self.btg();
        let p = st.payments.get_mut(e2e).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
        p.amount = amount.centavos();
        Ok(p.json())
    }
}

async fn create_entry(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let key_type = str_field(&b, "keyType")?;
    if b["account"]["participant"] != s.ispb() {
        return Err(btg_err(
            StatusCode::FORBIDDEN,
            "FORBIDDEN_PARTICIPANT",
            "entries can only be created for your own ISPB",
        ));
    }
    if b["owner"]["taxIdNumber"].as_str().is_none() || b["owner"]["name"].as_str().is_none() {
        return Err(btg_err(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "owner.taxIdNumber and owner.name are required",
        ));
    }
    let v = s.dict_register(key_type, b["key"].as_str(), b["account"].clone(), b["owner"].clone())?;
    // DICT keys the entry's CID by the RequestId of its creation, so keep the caller's.
    let request_id = b["requestId"].as_str().and_then(|r| Uuid::parse_str(r).ok());
    if let (Some(key), Some(request_id)) = (v["key"].as_str(), request_id)
        && let Some(entry) = s.btg().directory.get_mut(key)
    {
        entry.request_id = request_id;
    }
    created(v)
}

fn own_entry(s: &Shared, key: &str) -> Result<DirEntry, ApiError> {
    s.btg()
        .directory
        .get(key)
        .filter(|e| e.participant() == s.ispb())
        .cloned()
        .ok_or_else(|| not_found("ENTRY_NOT_FOUND"))
}

async fn get_entry(State(s): State<Arc<Shared>>, Path(key): Path<String>) -> ApiResult {
    ok(own_entry(&s, &key)?.json())
}

async fn update_entry(State(s): State<Arc<Shared>>, Path(key): Path<String>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let mut entry = own_entry(&s, &key)?;
    if entry.key_type == "EVP" && b["reason"] == "USER_REQUESTED" {
        return Err(unprocessable("INVALID_REASON", "EVP keys cannot be updated with USER_REQUESTED"));
    }
    if b["account"].is_object() {
        let mut account = b["account"].clone();
        account["participant"] = json!(s.ispb());
        entry.account = account;
    }
    if let Some(name) = b["owner"]["name"].as_str() {
        entry.owner["name"] = json!(name);
    }
    if let Some(t) = b["owner"]["tradeName"].as_str() {
        entry.owner["tradeName"] = json!(t);
    }
    let v = entry.json();
    s.btg().directory.insert(key, entry);
    ok(v)
}

async fn delete_entry(State(s): State<Arc<Shared>>, Path(key): Path<String>) -> ApiResult {
    own_entry(&s, &key)?;
    s.btg().directory.remove(&key);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn lookup_key(State(s): State<Arc<Shared>>, Path(key): Path<String>, headers: HeaderMap) -> ApiResult {
    let entry = s.btg().directory.get(&key).cloned().ok_or_else(|| not_found("ENTRY_NOT_FOUND"))?;
    let e2e = headers
        .get("x-end-to-end-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| s.end_to_end_id('E', &s.ispb()));
    let mut v = entry.json();
    v["endToEndId"] = json!(e2e);
    ok(v)
}

async fn check_keys(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let keys = b["keys"].as_array().cloned().unwrap_or_default();
    if keys.is_empty() || keys.len() > 200 {
        return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "1 to 200 keys"));
    }
    let st = s.btg();
    let out: Vec<Value> = keys
        .iter()
        .filter_map(|k| k["key"].as_str())
        .map(|k| json!({"key": k, "hasEntry": st.directory.contains_key(k)}))
        .collect();
    ok(json!({ "keys": out }))
}

async fn create_claim(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let key = str_field(&b, "key")?;
    let entry = s.btg().directory.get(key).cloned().ok_or_else(|| not_found("ENTRY_NOT_FOUND"))?;
    if entry.participant() == s.ispb() {
        return Err(unprocessable("KEY_ALREADY_OURS", "the key is already registered with this participant"));
    }
    let mut account = b["claimerAccount"].clone();
    account["participant"] = json!(s.ispb());
    let donor = entry.participant().to_owned();
    let v = s.open_claim(str_field(&b, "type")?, &entry, &s.ispb(), &donor, account, b["claimer"].clone())?;
    created(v)
}

async fn list_claims(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let after = q.get("modifiedAfter").and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let own = s.ispb();
    let items: Vec<Value> = s
        .btg()
        .claims
        .values()
        .filter(|c| c.claimer_participant == own || c.donor_participant == own)
        .filter(|c| q.get("status").is_none_or(|st| c.status.as_str() == st))
        .filter(|c| q.get("isDonor").is_none_or(|d| (c.donor_participant == own).to_string() == *d))
        .filter(|c| after.is_none_or(|t| c.last_modified > t))
        .map(ClaimRec::json)
        .collect();
    ok(json!({ "items": items }))
}

async fn get_claim(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let st = s.btg();
    let c = st.claims.get(&id).ok_or_else(|| not_found("CLAIM_NOT_FOUND"))?;
    ok(c.json())
}

async fn claim_action(
    State(s): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let b = if bytes.is_empty() { json!({}) } else { body(&bytes)? };
    let reason = b["reason"].as_str().map(str::to_owned);
    // The completion's RequestId keys the new entry's CID, as in createEntry.
    let completion_request_id = match b["requestId"].as_str() {
        Some(r) => Some(
            Uuid::parse_str(r)
                .map_err(|_| btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "requestId must be a UUID"))?,
        ),
        None => None,
    };
    let now = s.sim.clock.now();
    let own = s.ispb();
    let mut st = s.btg();
    let c = st.claims.get_mut(&id).ok_or_else(|| not_found("CLAIM_NOT_FOUND"))?;
    let we_donate = c.donor_participant == own;
    let we_claim = c.claimer_participant == own;
    let invalid = |msg: &str| unprocessable("INVALID_CLAIM_STATUS", msg.to_owned());
    let forbidden = || btg_err(StatusCode::FORBIDDEN, "NOT_CLAIM_PARTICIPANT", "this side cannot do that");
    let mut removed = None;
    let mut completed = None;
    match action.as_str() {
        "acknowledge" => {
            if !we_donate {
                return Err(forbidden());
            }
            match c.status {
                ClaimStatus::Open => c.status = ClaimStatus::WaitingResolution,
                ClaimStatus::WaitingResolution => {}
                _ => return Err(invalid("only OPEN claims can be acknowledged")),
            }
        }
        "confirm" => {
            if !we_donate {
                return Err(forbidden());
            }
            if c.status != ClaimStatus::WaitingResolution {
                return Err(invalid("only WAITING_RESOLUTION claims can be confirmed"));
            }
            if reason.as_deref() == Some("DEFAULT_OPERATION") && now < c.resolution_end {
                return Err(invalid("DEFAULT_OPERATION only after the resolution period"));
            }
            c.status = ClaimStatus::Confirmed;
            c.confirm_reason = reason.or(Some("USER_REQUESTED".into()));
            if c.claim_type == "OWNERSHIP" && c.confirm_reason.as_deref() == Some("USER_REQUESTED") {
                c.completion_end = Some(now);
            }
            removed = Some(c.key.clone());
        }
        "cancel" => {
            let allowed = match c.status {
                ClaimStatus::Open | ClaimStatus::WaitingResolution => true,
                ClaimStatus::Confirmed => we_claim,
                _ => false,
            };
            if !allowed || !(we_claim || we_donate) {
                return Err(invalid("the claim cannot be cancelled now"));
            }
            c.status = ClaimStatus::Cancelled;
            c.cancelled_by = Some(if we_claim { "CLAIMER" } else { "DONOR" }.into());
            c.cancel_reason = reason.or(Some("USER_REQUESTED".into()));
        }
        "complete" => {
            if !we_claim {
                return Err(forbidden());
            }
            if c.status != ClaimStatus::Confirmed {
                return Err(invalid("only CONFIRMED claims can be completed"));
            }
            if c.completion_end.is_some_and(|t| now < t) {
                return Err(invalid("the completion period has not ended"));
            }
            c.status = ClaimStatus::Completed;
            completed = Some(c.clone());
        }
        _ => return Err(not_found("UNKNOWN_ACTION")),
    }
    c.last_modified = now;
    let v = c.json();
    if let Some(k) = removed {
        st.directory.remove(&k);
    }
    if let Some(c) = completed {
        let request_id = completion_request_id.unwrap_or_else(|| s.sim.uuid());
        st.directory.insert(
            c.key.clone(),
            DirEntry {
                key: c.key.clone(),
                key_type: c.key_type,
                account: c.claimer_account,
                owner: c.claimer,
                request_id,
                created_at: now,
                ownership_at: now,
            },
        );
    }
    drop(st);
    s.emit("DICT_CLAIM", v.clone());
    ok(v)
}

async fn create_fraud_marker(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let tax_id = str_field(&b, "taxIdNumber")?;
    let fraud_type = str_field(&b, "fraudType")?;
    let now = s.sim.clock.now();
    let id = s.sim.uuid().to_string();
    let v = json!({"id": id, "taxIdNumber": tax_id, "fraudType": fraud_type, "key": b["key"],
                   "status": "REGISTERED", "createdAt": now, "updatedAt": now});
    s.btg().fraud_markers.insert(id, v.clone());
    created(v)
}

async fn list_fraud_markers(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let items: Vec<Value> = s
        .btg()
        .fraud_markers
        .values()
        .filter(|m| q.get("taxIdNumber").is_none_or(|t| m["taxIdNumber"] == t.as_str()))
        .cloned()
        .collect();
    ok(json!({"items": items, "hasMoreElements": false}))
}

async fn cancel_fraud_marker(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let now = s.sim.clock.now();
    let mut st = s.btg();
    let m = st.fraud_markers.get_mut(&id).ok_or_else(|| not_found("FRAUD_MARKER_NOT_FOUND"))?;
    m["status"] = json!("CANCELLED");
    m["updatedAt"] = json!(now);
    ok(m.clone())
}

async fn create_infraction(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let e2e = str_field(&b, "endToEndId")?;
    let counterparty = {
        let st = s.btg();
        let p = st.payments.get(e2e).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
        let side = if p.direction == Direction::Outbound { &p.creditor } else { &p.debtor };
        side["ispb"].as_str().unwrap_or("00000000").to_owned()
    };
    let own = s.ispb();
    let v = s.new_infraction(
        e2e,
        str_field(&b, "reason")?,
        b["situationType"].as_str(),
        (&own, &counterparty),
        true,
        None,
    )?;
    created(v)
}

fn timed_get(map: &BTreeMap<String, Timed>, id: &str, code: &str) -> ApiResult {
    map.get(id).map(|t| Json(t.v.clone()).into_response()).ok_or_else(|| not_found(code))
}

async fn get_infraction(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    timed_get(&s.btg().infractions, &id, "INFRACTION_REPORT_NOT_FOUND")
}

async fn infraction_action(
    State(s): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let b = if bytes.is_empty() { json!({}) } else { body(&bytes)? };
    let now = s.sim.clock.now();
    let own = s.ispb();
    let mut st = s.btg();
    let t = st.infractions.get_mut(&id).ok_or_else(|| not_found("INFRACTION_REPORT_NOT_FOUND"))?;
    let status = t.v["status"].as_str().unwrap_or_default().to_owned();
    let is_counterparty = t.v["counterpartyParticipant"] == own.as_str();
    let patch = match (action.as_str(), status.as_str()) {
        ("acknowledge", "OPEN") if is_counterparty => json!({"status": "ACKNOWLEDGED"}),
        ("close", "OPEN" | "ACKNOWLEDGED") if is_counterparty => {
            let result = str_field(&b, "analysisResult")?;
            if result != "AGREED" && result != "DISAGREED" {
                return Err(btg_err(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "analysisResult must be AGREED or DISAGREED",
                ));
            }
            json!({"status": "CLOSED", "analysisResult": result, "analysisDetails": b["analysisDetails"]})
        }
        ("cancel", "OPEN" | "ACKNOWLEDGED") if !is_counterparty => json!({"status": "CANCELLED"}),
        _ => {
            return Err(unprocessable(
                "INVALID_INFRACTION_REPORT_STATUS",
                format!("cannot {action} a {status} report from this side"),
            ));
        }
    };
    if let (Some(obj), Some(p)) = (t.v.as_object_mut(), patch.as_object()) {
        obj.extend(p.clone());
        obj.insert("updatedAt".into(), json!(now));
    }
    t.steps.clear();
    ok(t.v.clone())
}

async fn create_refund(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let e2e = str_field(&b, "endToEndId")?.to_owned();
    let amount = parse_amount(&b["amount"])
        .filter(|a| *a > 0)
        .ok_or_else(|| unprocessable("INVALID_AMOUNT", "amount must be positive"))?;
    let original = s.btg().payments.get(&e2e).cloned().ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
    if amount > original.amount {
        return Err(unprocessable("REFUND_AMOUNT_EXCEEDED", "amount exceeds the payment"));
    }
    let now = s.sim.clock.now();
    let id = s.sim.uuid().to_string();
    let rtr = s.end_to_end_id('D', original.creditor["ispb"].as_str().unwrap_or("00000000"));
    let v = json!({"id": id, "endToEndId": e2e, "amount": money(amount), "reason": str_field(&b, "reason")?,
        "status": "OPEN", "analysisResult": null, "rejectionReason": null, "refundEndToEndId": null,
        "createdAt": now, "updatedAt": now});
    let steps = vec![(
        now + Duration::days(1),
        json!({"status": "CLOSED", "analysisResult": "TOTALLY_ACCEPTED", "refundEndToEndId": rtr}),
    )];
    s.btg().refunds.insert(id, Timed { v: v.clone(), steps, event: "DICT_REFUND" });
    created(v)
}

async fn get_refund(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    timed_get(&s.btg().refunds, &id, "REFUND_NOT_FOUND")
}

async fn refund_action(
    State(s): State<Arc<Shared>>,
    Path((id, action)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    let b = if bytes.is_empty() { json!({}) } else { body(&bytes)? };
    let now = s.sim.clock.now();
    let mut st = s.btg();
    let t = st.refunds.get_mut(&id).ok_or_else(|| not_found("REFUND_NOT_FOUND"))?;
    if t.v["status"] != "OPEN" {
        return Err(unprocessable("INVALID_REFUND_STATUS", "only OPEN refund requests can change"));
    }
    let patch = match action.as_str() {
        "cancel" => json!({"status": "CANCELLED"}),
        "close" => {
            let result = str_field(&b, "analysisResult")?;
            if result == "REJECTED" && b["rejectionReason"].is_null() {
                return Err(btg_err(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "rejectionReason is required when REJECTED",
                ));
            }
            json!({"status": "CLOSED", "analysisResult": result, "rejectionReason": b["rejectionReason"], "refundEndToEndId": b["refundEndToEndId"]})
        }
        _ => return Err(not_found("UNKNOWN_ACTION")),
    };
    if let (Some(obj), Some(p)) = (t.v.as_object_mut(), patch.as_object()) {
        obj.extend(p.clone());
        obj.insert("updatedAt".into(), json!(now));
    }
    t.steps.clear();
    ok(t.v.clone())
}

fn counters(n: u64) -> Value {
    json!({"d90": n, "m12": n, "m60": n})
}

fn statistics(st: &BtgState, key: Option<&str>, tax_id: &str) -> Value {
    let markers = |kind: &str| {
        st.fraud_markers
            .values()
            .filter(|m| m["status"] == "REGISTERED" && m["fraudType"] == kind)
            .filter(|m| m["taxIdNumber"] == tax_id || key.is_some_and(|k| m["key"] == k))
            .count() as u64
    };
    let settlements = match key {
        Some(k) => st.settlements_by_key.get(k).copied().unwrap_or(0),
        None => st
            .directory
            .values()
            .filter(|e| e.owner["taxIdNumber"] == tax_id)
            .map(|e| st.settlements_by_key.get(&e.key).copied().unwrap_or(0))
            .sum(),
    };
    let open = st.infractions.values().filter(|t| t.v["status"] == "OPEN").count() as u64;
    json!({
        "settlements": counters(settlements),
        "fraudMarkers": {"applicationFrauds": counters(markers("APPLICATION_FRAUD")),
            "muleAccounts": counters(markers("MULE_ACCOUNT")),
            "scammerAccounts": counters(markers("SCAMMER_ACCOUNT")),
            "otherFrauds": counters(markers("OTHER"))},
        "infractionReports": {"openReports": open, "openReportsDistinctReporters": open.min(1),
            "rejectedReports": counters(0)},
    })
}

async fn key_statistics(State(s): State<Arc<Shared>>, Path(key): Path<String>) -> ApiResult {
    let st = s.btg();
    let entry = st.directory.get(&key).ok_or_else(|| not_found("ENTRY_NOT_FOUND"))?;
    let tax_id = entry.owner["taxIdNumber"].as_str().unwrap_or_default().to_owned();
    ok(statistics(&st, Some(&key), &tax_id))
}

async fn person_statistics(State(s): State<Arc<Shared>>, Path(tax_id): Path<String>) -> ApiResult {
    ok(statistics(&s.btg(), None, &tax_id))
}

async fn create_cid_file(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let key_type = str_field(&b, "keyType")?.to_owned();
    let now = s.sim.clock.now();
    let id = s.sim.uuid().to_string();
    let own = s.ispb();
    let mut st = s.btg();
    // The file is a snapshot of our entries at request time, ready two (simulated) seconds later.
    let cids: Vec<String> =
        st.directory.values().filter(|e| e.key_type == key_type && e.participant() == own).map(DirEntry::cid).collect();
    let v = json!({"id": id, "keyType": key_type, "status": "REQUESTED", "cids": [], "createdAt": now});
    let steps = vec![
        (now + Duration::milliseconds(500), json!({"status": "PROCESSING"})),
        (now + Duration::seconds(2), json!({"status": "AVAILABLE", "cids": cids})),
    ];
    st.cid_files.insert(id, Timed { v: v.clone(), steps, event: "DICT_CID_FILE" });
    created(v)
}

async fn get_cid_file(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    timed_get(&s.btg().cid_files, &id, "CID_FILE_NOT_FOUND")
}

/// DICT's "consulta de vínculo por CID": one of our entries by its current CID, with the
/// RequestId of its creation.
async fn entry_by_cid(State(s): State<Arc<Shared>>, Path(cid): Path<String>) -> ApiResult {
    if cid.len() != 64 || !cid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_CID", "a CID is 64 hex digits"));
    }
    let cid = cid.to_ascii_lowercase();
    let own = s.ispb();
    let st = s.btg();
    let entry = st
        .directory
        .values()
        .find(|e| e.participant() == own && e.cid() == cid)
        .ok_or_else(|| not_found("ENTRY_NOT_FOUND"))?;
    let mut v = entry.json();
    v["requestId"] = json!(entry.request_id);
    ok(v)
}

fn recovery_status(v: &Value) -> Option<FundsRecoveryStatus> {
    v["status"].as_str().and_then(|s| s.parse().ok())
}

fn bad_request(message: impl Into<String>) -> ApiError {
    btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// DICT's tracking defaults (DICT 2.12.1 schema).
fn tracking_parameters(given: &Value) -> Value {
    let or = |name: &str, default: Value| if given[name].is_null() { default } else { given[name].clone() };
    json!({"minTransactionAmount": or("minTransactionAmount", json!("200.00")),
           "maxTransactions": or("maxTransactions", json!(5)), "hopWindow": or("hopWindow", json!("PT2H")),
           "maxHops": or("maxHops", json!(2))})
}

/// The payer's participant of a settled payment opens a recovery of it; DICT opens the root
/// infraction report at once (answered by the simulated receiving participant: ACKNOWLEDGED after
/// 1 h, CLOSED AGREED after 1 day). The recovery is TRACKED after 1 minute and AWAITING_ANALYSIS
/// after 1 hour; the tick moves it on from there.
async fn create_recovery(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let root = str_field(&b, "rootEndToEndId")?.to_owned();
    let situation: SituationType = str_field(&b, "situationType")?
        .parse()
        .map_err(|_| bad_request("situationType is not a DICT situation type"))?;
    if situation == SituationType::Other && b["reportDetails"].as_str().is_none_or(str::is_empty) {
        return Err(bad_request("reportDetails is required with OTHER"));
    }
    let contact = &b["contactInformation"];
    if contact["email"].as_str().is_none() && contact["phone"].as_str().is_none() {
        return Err(bad_request("contactInformation needs an email or a phone"));
    }
    let own = s.ispb();
    let creditor = {
        let st = s.btg();
        let p = st.payments.get(&root).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
        if p.direction != Direction::Outbound || p.debtor["ispb"] != own.as_str() {
            return Err(unprocessable("NOT_PAYER_PARTICIPANT", "only the payer's participant opens a recovery"));
        }
        if p.status != PaymentStatus::Confirmed {
            return Err(unprocessable("PAYMENT_NOT_SETTLED", "the root transaction has not settled"));
        }
        p.creditor["ispb"].as_str().unwrap_or("00000000").to_owned()
    };
    let now = s.sim.clock.now();
    let id = s.sim.uuid().to_string();
    let v = json!({"id": id, "rootEndToEndId": root, "situationType": situation,
        "status": FundsRecoveryStatus::Created, "reporterParticipant": own, "reportDetails": b["reportDetails"],
        "contactInformation": contact, "trackingGraphParameters": tracking_parameters(&b["trackingGraphParameters"]),
        "hopEndToEndId": s.end_to_end_id('E', &creditor), "createdAt": now, "updatedAt": now});
    let steps = vec![
        (now + Duration::minutes(1), json!({"status": FundsRecoveryStatus::Tracked})),
        (now + Duration::hours(1), json!({"status": FundsRecoveryStatus::AwaitingAnalysis})),
    ];
    s.btg().recoveries.insert(id.clone(), Timed { v: v.clone(), steps, event: "FUNDS_RECOVERY" });
    let report =
        s.new_infraction(&root, "REFUND_REQUEST", Some(situation.as_str()), (&own, &creditor), true, Some(&id))?;
    s.emit("INFRACTION_REPORT_V2", report);
    created(v)
}

async fn get_recovery(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    timed_get(&s.btg().recoveries, &id, "FUNDS_RECOVERY_NOT_FOUND")
}

fn recovery_refused(message: &str) -> ApiError {
    unprocessable("INVALID_FUNDS_RECOVERY_STATUS", message)
}

/// BTG's PUT: replaces the situation type, details and contact of a recovery that is not final.
async fn update_recovery(State(s): State<Arc<Shared>>, Path(id): Path<String>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let situation: SituationType = str_field(&b, "situationType")?
        .parse()
        .map_err(|_| bad_request("situationType is not a DICT situation type"))?;
    let contact = &b["contactInformation"];
    if contact["email"].as_str().is_none() && contact["phone"].as_str().is_none() {
        return Err(bad_request("contactInformation needs an email or a phone"));
    }
    let now = s.sim.clock.now();
    let v = {
        let mut st = s.btg();
        let t = st.recoveries.get_mut(&id).ok_or_else(|| not_found("FUNDS_RECOVERY_NOT_FOUND"))?;
        if recovery_status(&t.v).is_none_or(FundsRecoveryStatus::is_final) {
            return Err(recovery_refused("a final recovery cannot change"));
        }
        let information = (json!(situation), b["reportDetails"].clone(), contact.clone());
        if information
            == (t.v["situationType"].clone(), t.v["reportDetails"].clone(), t.v["contactInformation"].clone())
        {
            // A repeated PUT (a client's retry) changes nothing and notifies nothing.
            return ok(t.v.clone());
        }
        (t.v["situationType"], t.v["reportDetails"], t.v["contactInformation"]) = information;
        t.v["updatedAt"] = json!(now);
        t.v.clone()
    };
    s.emit("FUNDS_RECOVERY", v.clone());
    s.emit("FUNDS_RECOVERY_EVENTS", s.recovery_notice(&id, FundsRecoveryEventType::InformationUpdated));
    ok(v)
}

/// Cancels a recovery before REFUNDING, with its open reports.
async fn cancel_recovery(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let now = s.sim.clock.now();
    let (v, reports) = {
        let mut st = s.btg();
        let t = st.recoveries.get_mut(&id).ok_or_else(|| not_found("FUNDS_RECOVERY_NOT_FOUND"))?;
        if !recovery_status(&t.v).is_some_and(FundsRecoveryStatus::is_cancellable) {
            return Err(recovery_refused("cannot cancel from REFUNDING on"));
        }
        t.v["status"] = json!(FundsRecoveryStatus::Cancelled);
        t.v["updatedAt"] = json!(now);
        t.steps.clear();
        let v = t.v.clone();
        let mut reports = Vec::new();
        for r in st.infractions.values_mut().filter(|r| r.v["fundsRecoveryId"] == id.as_str()) {
            if matches!(r.v["status"].as_str(), Some("OPEN" | "ACKNOWLEDGED")) {
                r.v["status"] = json!("CANCELLED");
                r.v["updatedAt"] = json!(now);
                r.steps.clear();
                reports.push(r.v.clone());
            }
        }
        (v, reports)
    };
    for r in reports {
        s.emit("INFRACTION_REPORT_V2", r);
    }
    s.emit("FUNDS_RECOVERY", v.clone());
    s.emit("FUNDS_RECOVERY_EVENTS", s.recovery_notice(&id, FundsRecoveryEventType::Cancelled));
    ok(v)
}

/// ANALYSED → REFUNDING: DICT opens a refund request for each payment whose report was closed
/// AGREED, answered by the simulated receiving participant (TOTALLY_ACCEPTED after 1 day, the
/// funds returned by a pacs.004 the tick sends).
async fn refund_recovery(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let now = s.sim.clock.now();
    let own = s.ispb();
    let mut st = s.btg();
    let t = st.recoveries.get(&id).ok_or_else(|| not_found("FUNDS_RECOVERY_NOT_FOUND"))?;
    if recovery_status(&t.v) != Some(FundsRecoveryStatus::Analysed) {
        return Err(recovery_refused("refunds are requested only from ANALYSED"));
    }
    let agreed: Vec<String> = st
        .infractions
        .values()
        .filter(|r| r.v["fundsRecoveryId"] == id.as_str() && r.v["analysisResult"] == "AGREED")
        .filter_map(|r| r.v["endToEndId"].as_str().map(str::to_owned))
        .collect();
    let mut requests = Vec::new();
    for e2e in agreed {
        let Some(p) = st.payments.get(&e2e) else { continue };
        let refundable = p.amount - p.returned;
        if refundable <= 0 {
            continue;
        }
        let request_id = s.sim.uuid().to_string();
        let rtr = s.end_to_end_id('D', p.creditor["ispb"].as_str().unwrap_or("00000000"));
        let v = json!({"id": request_id, "endToEndId": e2e, "amount": money(refundable), "reason": "FRAUD",
            "status": "OPEN", "analysisResult": null, "rejectionReason": null, "refundEndToEndId": null,
            "requestingParticipant": own, "fundsRecoveryId": id, "createdAt": now, "updatedAt": now});
        let steps = vec![(
            now + Duration::days(1),
            json!({"status": "CLOSED", "analysisResult": "TOTALLY_ACCEPTED", "refundEndToEndId": rtr}),
        )];
        st.refunds.insert(request_id, Timed { v: v.clone(), steps, event: "DICT_REFUND" });
        requests.push(v);
    }
    if requests.is_empty() {
        return Err(unprocessable("NO_REFUNDABLE_TRANSACTION", "no report was closed AGREED with funds to return"));
    }
    let t = st.recoveries.get_mut(&id).ok_or_else(|| not_found("FUNDS_RECOVERY_NOT_FOUND"))?;
    t.v["status"] = json!(FundsRecoveryStatus::Refunding);
    t.v["updatedAt"] = json!(now);
    let v = t.v.clone();
    drop(st);
    for r in requests {
        s.emit("DICT_REFUND", r);
    }
    s.emit("FUNDS_RECOVERY", v.clone());
    ok(v)
}

/// DICT v2's graph: the root payment and one hop on from its receiver, with what each can still
/// return.
async fn tracking_graph(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    let v = s.btg().recoveries.get(&id).map(|t| t.v.clone()).ok_or_else(|| not_found("FUNDS_RECOVERY_NOT_FOUND"))?;
    if recovery_status(&v) == Some(FundsRecoveryStatus::Created) {
        return Err(unprocessable("GRAPH_NOT_READY", "the tracking graph is built after TRACKED"));
    }
    let root = v["rootEndToEndId"].as_str().unwrap_or_default();
    let p = s.btg().payments.get(root).cloned().ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
    let person = |id: &str, party: &Value| {
        let tax_id = party["taxId"].as_str().unwrap_or_default();
        json!({"id": id, "type": if tax_id.len() == 11 { "NATURAL_PERSON" } else { "LEGAL_PERSON" },
               "taxIdNumber": tax_id, "name": party["name"]})
    };
    let account = |id: &str, owner: &str, party: &Value| {
        json!({"id": id, "participant": party["ispb"], "branch": party["branch"], "number": party["account"],
               "type": party["accountType"], "ownerId": owner})
    };
    let mule = json!({"ispb": "99999999", "branch": "0001", "account": "777777", "accountType": "TRAN",
                      "taxId": "52998224725", "name": "Conta Intermediaria"});
    let hop = p.amount / 2;
    ok(json!({
        "parameters": v["trackingGraphParameters"],
        "persons": [person("P1", &p.debtor), person("P2", &p.creditor), person("P3", &mule)],
        "accounts": [account("A1", "P1", &p.debtor), account("A2", "P2", &p.creditor), account("A3", "P3", &mule)],
        "transactions": [
            {"id": root, "debtorAccountId": "A1", "creditorAccountId": "A2", "amount": money(p.amount),
             "refundableAmount": money(p.amount - p.returned), "settlementTime": p.settled_at},
            {"id": v["hopEndToEndId"], "debtorAccountId": "A2", "creditorAccountId": "A3", "amount": money(hop),
             "refundableAmount": money(hop), "settlementTime": p.settled_at},
        ],
    }))
}

async fn create_payment(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let e2e = str_field(&b, "endToEndId")?.to_owned();
    if e2e.len() != 32 || !e2e.starts_with('E') || !e2e.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return Err(btg_err(
            StatusCode::BAD_REQUEST,
            "INVALID_END_TO_END_ID",
            "endToEndId must be E + 31 alphanumerics",
        ));
    }
    let amount = parse_amount(&b["amount"])
        .filter(|a| *a > 0)
        .ok_or_else(|| unprocessable("INVALID_AMOUNT", "amount must be positive with two decimals"))?;
    let creditor = b["creditor"].clone();
    if creditor["ispb"].as_str().is_none_or(|i| i.len() != 8) {
        return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "creditor.ispb must have 8 characters"));
    }
    for field in ["branch", "account", "taxId", "name"] {
        str_field(&b["debtor"], field)?;
    }
    let transaction_type = match b["transactionType"].as_str() {
        None | Some("TRANSFER") => "TRANSFER",
        Some("INSTANT_PAYMENT_REFUND") => "INSTANT_PAYMENT_REFUND",
        Some(_) => {
            return Err(btg_err(
                StatusCode::BAD_REQUEST,
                "INVALID_TRANSACTION_TYPE",
                "transactionType must be TRANSFER or INSTANT_PAYMENT_REFUND",
            ));
        }
    };
    let now = s.sim.clock.now();
    let id = s.sim.uuid().to_string();
    let mut st = s.btg();
    if st.payments.contains_key(&e2e) {
        return Err(btg_err(StatusCode::CONFLICT, "DUPLICATE_END_TO_END_ID", "a payment with this endToEndId exists"));
    }
    let settle_at =
        (amount % 100 != STUCK_CENTS).then(|| now + Duration::milliseconds(s.config.btg_settlement_delay_ms as i64));
    let mut debtor = b["debtor"].clone();
    debtor["ispb"] = json!(s.ispb());
    st.payments.insert(
        e2e.clone(),
        PaymentRec {
            id: id.clone(),
            e2e: e2e.clone(),
            amount,
            status: PaymentStatus::Processing,
            direction: Direction::Outbound,
            settle_at,
            settled_at: None,
            rejection: None,
            debtor,
            creditor,
            returned: 0,
            refusal: None,
            transaction_type,
        },
    );
    accepted(json!({"id": id, "endToEndId": e2e, "status": "PROCESSING"}))
}

async fn get_payment(State(s): State<Arc<Shared>>, Path(e2e): Path<String>) -> ApiResult {
    let st = s.btg();
    let p = st.payments.get(&e2e).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
    ok(p.json())
}

/// We decline a Pix BTG settled for one of our accounts: BTG returns the funds to the payer's
/// participant and the payment reads REJECTED with our code. A repeat answers the same.
async fn refuse_payment(State(s): State<Arc<Shared>>, Path(e2e): Path<String>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let code = str_field(&b, "reasonCode")?.to_owned();
    if code.len() != 4 || !code.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        return Err(btg_err(
            StatusCode::BAD_REQUEST,
            "INVALID_REASON_CODE",
            "reasonCode is a 4-character pacs.002 code",
        ));
    }
    let reason = str_field(&b, "reason")?.to_owned();
    let description = b["description"].as_str().map(str::to_owned);
    let now = s.sim.clock.now();
    let mut st = s.btg();
    let p = st.payments.get_mut(&e2e).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
    if p.direction != Direction::Inbound {
        return Err(unprocessable("PAYMENT_NOT_REFUSABLE", "only payments received for our accounts can be refused"));
    }
    if p.refusal.is_some() {
        return ok(p.json());
    }
    if p.status != PaymentStatus::Confirmed || p.returned > 0 {
        return Err(unprocessable("PAYMENT_NOT_REFUSABLE", "the payment was already returned in part"));
    }
    p.status = PaymentStatus::Rejected;
    p.rejection = Some((code.clone(), description.clone().unwrap_or_else(|| reason.clone())));
    p.returned = p.amount;
    p.refusal = Some(json!({"reasonCode": code, "reason": reason, "description": description, "refusedAt": now}));
    if let Some(k) = p.creditor["key"].as_str().map(str::to_owned)
        && let Some(n) = st.settlements_by_key.get_mut(&k)
    {
        // The credit never stood: it no longer counts as a settlement to the key.
        *n = n.saturating_sub(1);
    }
    let p = st.payments.get(&e2e).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
    ok(p.json())
}

async fn create_reversal(
    State(s): State<Arc<Shared>>,
    Path(e2e): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let b = body(&bytes)?;
    let amount = parse_amount(&b["amount"])
        .filter(|a| *a > 0)
        .ok_or_else(|| unprocessable("INVALID_AMOUNT", "amount must be positive"))?;
    let reason = str_field(&b, "reason")?.to_owned();
    if !["BE08", "FR01", "MD06", "SL02"].contains(&reason.as_str()) {
        return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REASON", "reason must be BE08, FR01, MD06 or SL02"));
    }
    let request_id = headers.get("x-idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let now = s.sim.clock.now();
    let (id, rtr) = (s.sim.uuid().to_string(), s.end_to_end_id('D', &s.ispb()));
    let mut st = s.btg();
    let p = st.payments.get_mut(&e2e).ok_or_else(|| not_found("PAYMENT_NOT_FOUND"))?;
    if p.direction != Direction::Inbound || p.status != PaymentStatus::Confirmed {
        return Err(unprocessable("PAYMENT_NOT_REVERSIBLE", "only confirmed received payments can be returned"));
    }
    if amount > p.amount - p.returned {
        return Err(unprocessable("REVERSAL_AMOUNT_EXCEEDED", "amount exceeds what is left to return"));
    }
    p.returned += amount;
    let settles = amount % 100 != STUCK_CENTS;
    let rec = ReversalRec {
        id: id.clone(),
        request_id,
        rtr: rtr.clone(),
        original: e2e,
        amount,
        reason,
        status: PaymentStatus::Processing,
        rejection_code: None,
        settle_at: settles.then(|| now + Duration::milliseconds(s.config.btg_settlement_delay_ms as i64)),
        settled_at: None,
    };
    st.reversals.insert(rtr.clone(), rec);
    accepted(json!({"id": id, "returnEndToEndId": rtr, "status": "PROCESSING"}))
}

async fn get_reversal(State(s): State<Arc<Shared>>, Path((e2e, rtr)): Path<(String, String)>) -> ApiResult {
    let st = s.btg();
    let r = st.reversals.get(&rtr).filter(|r| r.original == e2e).ok_or_else(|| not_found("REVERSAL_NOT_FOUND"))?;
    ok(r.json())
}

/// Every reversal of a payment (how a client finds one whose answer it lost, by its request id).
async fn list_reversals(State(s): State<Arc<Shared>>, Path(e2e): Path<String>) -> ApiResult {
    let st = s.btg();
    if !st.payments.contains_key(&e2e) {
        return Err(not_found("PAYMENT_NOT_FOUND"));
    }
    let items: Vec<Value> = st.reversals.values().filter(|r| r.original == e2e).map(ReversalRec::json).collect();
    ok(json!({ "items": items }))
}

async fn create_report(State(s): State<Arc<Shared>>, bytes: Bytes) -> ApiResult {
    let b = body(&bytes)?;
    let report_id = str_field(&b, "reportId")?.to_owned();
    let txs = b["transactions"].as_array().cloned().unwrap_or_default();
    if txs.is_empty() {
        return Err(unprocessable("EMPTY_REPORT", "a report needs at least one transaction"));
    }
    if txs.iter().any(|t| parse_amount(&t["amount"]).is_none_or(|a| a <= 0) || t["endToEndId"].as_str().is_none()) {
        return Err(btg_err(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "every transaction needs endToEndId and a positive amount",
        ));
    }
    if txs.iter().any(|t| t["kind"] == "REFUND" && t["returnIdentification"].as_str().is_none_or(str::is_empty)) {
        return Err(btg_err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "a REFUND needs its returnIdentification"));
    }
    let now = s.sim.clock.now();
    let id = s.sim.uuid().to_string();
    let entries: Vec<Value> = txs
        .iter()
        .map(|t| {
            json!({"endToEndId": t["endToEndId"], "returnIdentification": t["returnIdentification"],
                   "amount": t["amount"], "kind": t["kind"]})
        })
        .collect();
    // BACEN rejects (camt.025) a report holding an amount ending in REJECT_CENTS; others are accepted.
    let rejected = txs.iter().any(|t| parse_amount(&t["amount"]).is_some_and(|a| a % 100 == REJECT_CENTS));
    let answer = if rejected {
        json!({"status": "REJECTED", "receiptCode": "RJCT"})
    } else {
        json!({"status": "ACCEPTED", "receiptCode": "ACCP"})
    };
    let caller = s.ispb();
    let v = json!({"id": id, "reportId": report_id, "status": "RECEIVED", "receiptCode": null,
                   "transactions": txs.len(), "entries": entries, "participant": caller, "createdAt": now});
    let steps = vec![(now + Duration::seconds(1), answer)];
    s.btg().reports.insert(id, Timed { v: v.clone(), steps, event: "PIX_INTERNAL_TRANSACTIONS_REPORT" });
    accepted(v)
}

async fn get_report(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> ApiResult {
    timed_get(&s.btg().reports, &id, "REPORT_NOT_FOUND")
}

/// Used by the control API's state dump.
pub(crate) fn payment_summary(st: &BtgState) -> Value {
    let payments: Vec<Value> = st
        .payments
        .values()
        .map(|p| {
            let mut v = p.json();
            v["direction"] = json!(if p.direction == Direction::Outbound { "OUTBOUND" } else { "INBOUND" });
            v["refusal"] = p.refusal.clone().unwrap_or(Value::Null);
            v["transactionType"] = json!(p.transaction_type);
            v
        })
        .collect();
    let entries: Vec<Value> = st.directory.values().map(DirEntry::json).collect();
    let claims: Vec<Value> = st.claims.values().map(ClaimRec::json).collect();
    let reversals: Vec<Value> = st.reversals.values().map(ReversalRec::json).collect();
    let reports: Vec<Value> = st.reports.values().map(|t| t.v.clone()).collect();
    json!({"payments": payments, "entries": entries, "claims": claims, "reversals": reversals,
           "internalTransactionsReports": reports})
}
