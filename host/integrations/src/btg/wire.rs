//! The BTG wire contract, in one place: paths, header names, JSON bodies and webhook signing.
//!
//! BTG's indirect-Pix (BaaS) API is not public; this is the contract we designed
//! (integrations.md §5.6, documented in docs/integrations.md). When BTG's real specification
//! arrives, this module is the one to rewrite: the client and the host only see `super::types`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use super::types::*;
use crate::domain::{Money, PersonType};
use crate::error::{IntegrationError, Result, Upstream};

/// Token endpoint path under the auth base URL (form body, HTTP Basic client credentials).
pub const TOKEN_PATH: &[&str] = &["oauth2", "token"];
/// Idempotency header on every creating POST.
pub const HEADER_IDEMPOTENCY: &str = "x-idempotency-key";
/// Correlation header on every call; on webhooks it equals `webhookId`, stable across retries.
pub const HEADER_CORRELATION: &str = "x-correlation-id";
/// EndToEndId header on a key lookup.
pub const HEADER_END_TO_END: &str = "x-end-to-end-id";
/// Webhook signature header: `sha256=<hex>`.
pub const HEADER_SIGNATURE: &str = "x-signature";
/// Webhook timestamp header: Unix seconds of this delivery attempt.
pub const HEADER_SIGNATURE_TIMESTAMP: &str = "x-signature-timestamp";

/// A request described independently of the HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct WireRequest {
    pub method: Method,
    pub path: Vec<String>,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl WireRequest {
    fn new(method: Method, path: &[&str]) -> Self {
        WireRequest {
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }
    fn get(path: &[&str]) -> Self {
        WireRequest::new(Method::GET, path)
    }
    fn post(path: &[&str], body: Value) -> Self {
        let mut r = WireRequest::new(Method::POST, path);
        r.body = Some(body);
        r
    }
    fn query(mut self, name: &'static str, value: Option<String>) -> Self {
        if let Some(v) = value {
            self.query.push((name, v));
        }
        self
    }
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| IntegrationError::Decode { upstream: Upstream::Btg, message: e.to_string() })
}

fn to_value<T: Serialize>(v: &T) -> Value {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------- token

/// `POST /oauth2/token` response.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

// ---------------------------------------------------------------- DICT entries

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WAccount {
    participant: String,
    branch: String,
    number: String,
    #[serde(rename = "type")]
    account_type: AccountType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opening_date: Option<DateTime<Utc>>,
}

impl From<&DictAccount> for WAccount {
    fn from(a: &DictAccount) -> Self {
        WAccount {
            participant: a.participant.clone(),
            branch: a.branch.clone(),
            number: a.number.clone(),
            account_type: a.account_type,
            opening_date: a.opening_date,
        }
    }
}

impl From<WAccount> for DictAccount {
    fn from(a: WAccount) -> Self {
        DictAccount {
            participant: a.participant,
            branch: a.branch,
            number: a.number,
            account_type: a.account_type,
            opening_date: a.opening_date,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WOwner {
    #[serde(rename = "type")]
    person_type: PersonType,
    tax_id_number: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trade_name: Option<String>,
}

impl From<&DictOwner> for WOwner {
    fn from(o: &DictOwner) -> Self {
        WOwner {
            person_type: o.person_type,
            tax_id_number: o.tax_id.clone(),
            name: o.name.clone(),
            trade_name: o.trade_name.clone(),
        }
    }
}

impl From<WOwner> for DictOwner {
    fn from(o: WOwner) -> Self {
        DictOwner { person_type: o.person_type, tax_id: o.tax_id_number, name: o.name, trade_name: o.trade_name }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WEntry {
    key: String,
    key_type: KeyType,
    account: WAccount,
    owner: WOwner,
    #[serde(default)]
    creation_date: Option<DateTime<Utc>>,
    #[serde(default)]
    key_ownership_date: Option<DateTime<Utc>>,
    #[serde(default)]
    request_id: Option<uuid::Uuid>,
}

impl From<WEntry> for DictEntry {
    fn from(e: WEntry) -> Self {
        DictEntry {
            key: e.key,
            key_type: e.key_type,
            account: e.account.into(),
            owner: e.owner.into(),
            created_at: e.creation_date,
            key_ownership_date: e.key_ownership_date,
            request_id: e.request_id,
        }
    }
}

pub(crate) fn create_entry(e: &NewEntry) -> WireRequest {
    let mut body = json!({
        "keyType": e.key_type,
        "account": to_value(&WAccount::from(&e.account)),
        "owner": to_value(&WOwner::from(&e.owner)),
        "reason": e.reason,
        "requestId": e.request_id,
    });
    if let Some(key) = &e.key {
        body["key"] = json!(key);
    }
    WireRequest::post(&["dict", "entries"], body)
}

pub(crate) fn get_entry(key: &str) -> WireRequest {
    WireRequest::get(&["dict", "entries", key])
}

pub(crate) fn update_entry(key: &str, u: &EntryUpdate) -> WireRequest {
    let mut r = WireRequest::new(Method::PUT, &["dict", "entries", key]);
    let mut owner = json!({ "name": u.name });
    if let Some(t) = &u.trade_name {
        owner["tradeName"] = json!(t);
    }
    r.body = Some(json!({
        "account": to_value(&WAccount::from(&u.account)),
        "owner": owner,
        "reason": u.reason,
    }));
    r
}

pub(crate) fn delete_entry(key: &str, reason: Reason) -> WireRequest {
    WireRequest::new(Method::DELETE, &["dict", "entries", key]).query("reason", Some(reason.as_str().to_owned()))
}

/// `GET /dict/cids/{cid}/entry`: the entry of ours behind a CID, with its creation `requestId`
/// (DICT's "consulta de vínculo por CID").
pub(crate) fn entry_by_cid(cid: &str) -> WireRequest {
    WireRequest::get(&["dict", "cids", cid, "entry"])
}

pub(crate) fn decode_entry(body: &[u8]) -> Result<DictEntry> {
    decode::<WEntry>(body).map(Into::into)
}

pub(crate) fn lookup_key(key: &str, end_to_end_id: Option<&str>) -> WireRequest {
    let mut r = WireRequest::get(&["dict", "keys", key]);
    if let Some(e2e) = end_to_end_id {
        r.headers.push((HEADER_END_TO_END, e2e.to_owned()));
    }
    r
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WKeyLookup {
    #[serde(flatten)]
    entry: WEntry,
    end_to_end_id: String,
}

pub(crate) fn decode_lookup(body: &[u8]) -> Result<KeyLookup> {
    let w: WKeyLookup = decode(body)?;
    Ok(KeyLookup { entry: w.entry.into(), end_to_end_id: w.end_to_end_id })
}

pub(crate) fn check_keys(keys: &[String]) -> WireRequest {
    let keys: Vec<Value> = keys.iter().map(|k| json!({ "key": k })).collect();
    WireRequest::post(&["dict", "keys", "check"], json!({ "keys": keys }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WKeyCheck {
    key: String,
    has_entry: bool,
}

pub(crate) fn decode_check(body: &[u8]) -> Result<Vec<KeyCheck>> {
    #[derive(Deserialize)]
    struct W {
        keys: Vec<WKeyCheck>,
    }
    let w: W = decode(body)?;
    Ok(w.keys.into_iter().map(|k| KeyCheck { key: k.key, has_entry: k.has_entry }).collect())
}

// ---------------------------------------------------------------- claims

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WClaim {
    id: String,
    #[serde(rename = "type")]
    claim_type: ClaimType,
    key: String,
    key_type: KeyType,
    status: ClaimStatus,
    claimer_participant: String,
    donor_participant: String,
    claimer_account: WAccount,
    claimer: WOwner,
    #[serde(default)]
    resolution_period_end: Option<DateTime<Utc>>,
    #[serde(default)]
    completion_period_end: Option<DateTime<Utc>>,
    last_modified: DateTime<Utc>,
    #[serde(default)]
    cancelled_by: Option<String>,
    #[serde(default)]
    cancel_reason: Option<Reason>,
    #[serde(default)]
    confirm_reason: Option<Reason>,
}

impl From<WClaim> for Claim {
    fn from(c: WClaim) -> Self {
        Claim {
            id: c.id,
            claim_type: c.claim_type,
            key: c.key,
            key_type: c.key_type,
            status: c.status,
            claimer_participant: c.claimer_participant,
            donor_participant: c.donor_participant,
            claimer_account: c.claimer_account.into(),
            claimer: c.claimer.into(),
            resolution_period_end: c.resolution_period_end,
            completion_period_end: c.completion_period_end,
            last_modified: c.last_modified,
            cancelled_by: c.cancelled_by,
            cancel_reason: c.cancel_reason,
            confirm_reason: c.confirm_reason,
        }
    }
}

pub(crate) fn create_claim(c: &NewClaim) -> WireRequest {
    WireRequest::post(
        &["dict", "claims"],
        json!({
            "type": c.claim_type,
            "key": c.key,
            "keyType": c.key_type,
            "claimerAccount": to_value(&WAccount::from(&c.claimer_account)),
            "claimer": to_value(&WOwner::from(&c.claimer)),
        }),
    )
}

pub(crate) fn get_claim(id: &str) -> WireRequest {
    WireRequest::get(&["dict", "claims", id])
}

pub(crate) fn list_claims(f: &ClaimFilter) -> WireRequest {
    WireRequest::get(&["dict", "claims"])
        .query("status", f.status.map(|s| s.as_str().to_owned()))
        .query("isDonor", f.is_donor.map(|d| d.to_string()))
        .query("modifiedAfter", f.modified_after.map(|t| t.to_rfc3339()))
}

pub(crate) fn claim_action(id: &str, action: ClaimAction) -> WireRequest {
    let (verb, reason) = match action {
        ClaimAction::Acknowledge => ("acknowledge", None),
        ClaimAction::Confirm(r) => ("confirm", Some(r)),
        ClaimAction::Cancel(r) => ("cancel", Some(r)),
        ClaimAction::Complete(_) => ("complete", None),
    };
    let body = match (reason, action) {
        (Some(r), _) => json!({ "reason": r }),
        // DICT keys the new entry's CID by the completion's RequestId.
        (None, ClaimAction::Complete(request_id)) => json!({ "requestId": request_id }),
        (None, _) => json!({}),
    };
    WireRequest::post(&["dict", "claims", id, verb], body)
}

pub(crate) fn decode_claim(body: &[u8]) -> Result<Claim> {
    decode::<WClaim>(body).map(Into::into)
}

pub(crate) fn decode_claims(body: &[u8]) -> Result<Vec<Claim>> {
    #[derive(Deserialize)]
    struct W {
        items: Vec<WClaim>,
    }
    Ok(decode::<W>(body)?.items.into_iter().map(Into::into).collect())
}

// ---------------------------------------------------------------- fraud markers

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WFraudMarker {
    id: String,
    tax_id_number: String,
    fraud_type: FraudType,
    #[serde(default)]
    key: Option<String>,
    status: FraudMarkerStatus,
    created_at: DateTime<Utc>,
    /// Older answers carry no `updatedAt`: the marker has not changed since its creation.
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

impl From<WFraudMarker> for FraudMarker {
    fn from(m: WFraudMarker) -> Self {
        FraudMarker {
            id: m.id,
            tax_id: m.tax_id_number,
            fraud_type: m.fraud_type,
            key: m.key,
            status: m.status,
            created_at: m.created_at,
            updated_at: m.updated_at.unwrap_or(m.created_at),
        }
    }
}

pub(crate) fn create_fraud_marker(tax_id: &str, fraud_type: FraudType, key: Option<&str>) -> WireRequest {
    let mut body = json!({ "taxIdNumber": tax_id, "fraudType": fraud_type });
    if let Some(k) = key {
        body["key"] = json!(k);
    }
    WireRequest::post(&["dict", "fraud-markers"], body)
}

pub(crate) fn list_fraud_markers(tax_id: &str) -> WireRequest {
    WireRequest::get(&["dict", "fraud-markers"]).query("taxIdNumber", Some(tax_id.to_owned()))
}

pub(crate) fn cancel_fraud_marker(id: &str) -> WireRequest {
    WireRequest::post(&["dict", "fraud-markers", id, "cancel"], json!({}))
}

pub(crate) fn decode_fraud_marker(body: &[u8]) -> Result<FraudMarker> {
    decode::<WFraudMarker>(body).map(Into::into)
}

pub(crate) fn decode_fraud_markers(body: &[u8]) -> Result<Vec<FraudMarker>> {
    #[derive(Deserialize)]
    struct W {
        items: Vec<WFraudMarker>,
    }
    Ok(decode::<W>(body)?.items.into_iter().map(Into::into).collect())
}

// ---------------------------------------------------------------- infraction reports

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WInfraction {
    id: String,
    end_to_end_id: String,
    reason: String,
    #[serde(default)]
    situation_type: Option<String>,
    status: InfractionStatus,
    reporter_participant: String,
    counterparty_participant: String,
    #[serde(default)]
    analysis_result: Option<AnalysisResult>,
    #[serde(default)]
    analysis_details: Option<String>,
    #[serde(default, with = "pix_core::money::upstream::option")]
    infraction_amount: Option<Money>,
    #[serde(default)]
    funds_recovery_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WInfraction> for InfractionReport {
    fn from(w: WInfraction) -> Self {
        InfractionReport {
            id: w.id,
            end_to_end_id: w.end_to_end_id,
            reason: w.reason,
            situation_type: w.situation_type,
            status: w.status,
            reporter_participant: w.reporter_participant,
            counterparty_participant: w.counterparty_participant,
            analysis_result: w.analysis_result,
            analysis_details: w.analysis_details,
            infraction_amount: w.infraction_amount,
            funds_recovery_id: w.funds_recovery_id,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

pub(crate) fn create_infraction_report(r: &NewInfractionReport) -> WireRequest {
    WireRequest::post(
        &["dict", "infraction-reports"],
        json!({
            "endToEndId": r.end_to_end_id,
            "reason": r.reason,
            "situationType": r.situation_type,
            "reportDetails": r.details,
        }),
    )
}

pub(crate) fn get_infraction_report(id: &str) -> WireRequest {
    WireRequest::get(&["dict", "infraction-reports", id])
}

pub(crate) fn infraction_action(id: &str, verb: &str, body: Value) -> WireRequest {
    WireRequest::post(&["dict", "infraction-reports", id, verb], body)
}

pub(crate) fn close_infraction_body(agreed: bool, details: Option<&str>) -> Value {
    json!({
        "analysisResult": if agreed { "AGREED" } else { "DISAGREED" },
        "analysisDetails": details,
    })
}

pub(crate) fn decode_infraction_report(body: &[u8]) -> Result<InfractionReport> {
    decode::<WInfraction>(body).map(Into::into)
}

// ---------------------------------------------------------------- MED refund requests

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WRefund {
    id: String,
    end_to_end_id: String,
    #[serde(with = "pix_core::money::upstream")]
    amount: Money,
    reason: String,
    status: RefundRequestStatus,
    #[serde(default)]
    analysis_result: Option<RefundAnalysisResult>,
    #[serde(default)]
    rejection_reason: Option<String>,
    #[serde(default)]
    refund_end_to_end_id: Option<String>,
    #[serde(default)]
    requesting_participant: Option<String>,
    #[serde(default)]
    funds_recovery_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<WRefund> for RefundRequest {
    fn from(w: WRefund) -> Self {
        RefundRequest {
            id: w.id,
            end_to_end_id: w.end_to_end_id,
            amount: w.amount,
            reason: w.reason,
            status: w.status,
            analysis_result: w.analysis_result,
            rejection_reason: w.rejection_reason,
            refund_end_to_end_id: w.refund_end_to_end_id,
            requesting_participant: w.requesting_participant,
            funds_recovery_id: w.funds_recovery_id,
            created_at: w.created_at,
        }
    }
}

pub(crate) fn create_refund_request(r: &NewRefundRequest) -> WireRequest {
    WireRequest::post(
        &["dict", "refunds"],
        json!({
            "endToEndId": r.end_to_end_id,
            "amount": r.amount,
            "reason": r.reason,
            "infractionReportId": r.infraction_report_id,
            "refundDetails": r.details,
        }),
    )
}

pub(crate) fn get_refund_request(id: &str) -> WireRequest {
    WireRequest::get(&["dict", "refunds", id])
}

pub(crate) fn close_refund_request(id: &str, c: &RefundClose) -> WireRequest {
    WireRequest::post(
        &["dict", "refunds", id, "close"],
        json!({
            "analysisResult": c.result,
            "rejectionReason": c.rejection_reason,
            "refundEndToEndId": c.refund_end_to_end_id,
            "analysisDetails": c.details,
        }),
    )
}

pub(crate) fn cancel_refund_request(id: &str) -> WireRequest {
    WireRequest::post(&["dict", "refunds", id, "cancel"], json!({}))
}

pub(crate) fn decode_refund_request(body: &[u8]) -> Result<RefundRequest> {
    decode::<WRefund>(body).map(Into::into)
}

// ---------------------------------------------------------------- statistics

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WFraudMarkerStats {
    application_frauds: Counters,
    mule_accounts: Counters,
    scammer_accounts: Counters,
    other_frauds: Counters,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WInfractionStats {
    open_reports: u64,
    open_reports_distinct_reporters: u64,
    rejected_reports: Counters,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WStatistics {
    #[serde(default)]
    settlements: Counters,
    #[serde(default)]
    fraud_markers: WFraudMarkerStats,
    #[serde(default)]
    infraction_reports: WInfractionStats,
}

pub(crate) fn key_statistics(key: &str) -> WireRequest {
    WireRequest::get(&["dict", "statistics", "keys", key])
}

pub(crate) fn person_statistics(tax_id: &str) -> WireRequest {
    WireRequest::get(&["dict", "statistics", "persons", tax_id])
}

pub(crate) fn decode_statistics(body: &[u8]) -> Result<Statistics> {
    let w: WStatistics = decode(body)?;
    Ok(Statistics {
        settlements: w.settlements,
        application_frauds: w.fraud_markers.application_frauds,
        mule_accounts: w.fraud_markers.mule_accounts,
        scammer_accounts: w.fraud_markers.scammer_accounts,
        other_frauds: w.fraud_markers.other_frauds,
        open_reports: w.infraction_reports.open_reports,
        open_reports_distinct_reporters: w.infraction_reports.open_reports_distinct_reporters,
        rejected_reports: w.infraction_reports.rejected_reports,
    })
}

// ---------------------------------------------------------------- CID files

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WCidFile {
    id: String,
    key_type: KeyType,
    status: CidFileStatus,
    #[serde(default)]
    cids: Vec<String>,
    created_at: DateTime<Utc>,
}

pub(crate) fn request_cid_file(key_type: KeyType) -> WireRequest {
    WireRequest::post(&["dict", "cid-files"], json!({ "keyType": key_type }))
}

pub(crate) fn get_cid_file(id: &str) -> WireRequest {
    WireRequest::get(&["dict", "cid-files", id])
}

pub(crate) fn decode_cid_file(body: &[u8]) -> Result<CidFile> {
    let w: WCidFile = decode(body)?;
    Ok(CidFile { id: w.id, key_type: w.key_type, status: w.status, cids: w.cids, created_at: w.created_at })
}

// ---------------------------------------------------------------- funds recovery (MED 2.0)

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WFundsRecovery {
    id: String,
    root_end_to_end_id: String,
    situation_type: SituationType,
    status: FundsRecoveryStatus,
    reporter_participant: String,
    #[serde(default)]
    report_details: Option<String>,
    #[serde(default)]
    contact_information: ContactInformation,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub(crate) fn create_funds_recovery(f: &NewFundsRecovery) -> WireRequest {
    WireRequest::post(
        &["dict", "funds-recoveries"],
        json!({
            "rootEndToEndId": f.root_end_to_end_id,
            "situationType": f.situation_type,
            "reportDetails": f.report_details,
            "contactInformation": f.contact,
            "trackingGraphParameters": f.tracking,
        }),
    )
}

pub(crate) fn get_funds_recovery(id: &str) -> WireRequest {
    WireRequest::get(&["dict", "funds-recoveries", id])
}

pub(crate) fn update_funds_recovery(id: &str, u: &FundsRecoveryUpdate) -> WireRequest {
    let mut r = WireRequest::new(Method::PUT, &["dict", "funds-recoveries", id]);
    r.body = Some(json!({
        "situationType": u.situation_type,
        "reportDetails": u.report_details,
        "contactInformation": u.contact,
    }));
    r
}

pub(crate) fn cancel_funds_recovery(id: &str) -> WireRequest {
    WireRequest::post(&["dict", "funds-recoveries", id, "cancel"], json!({}))
}

pub(crate) fn refund_funds_recovery(id: &str) -> WireRequest {
    WireRequest::post(&["dict", "funds-recoveries", id, "refund"], json!({}))
}

pub(crate) fn tracking_graph(id: &str) -> WireRequest {
    WireRequest::get(&["dict", "funds-recoveries", id, "tracking-graph"])
}

pub(crate) fn decode_funds_recovery(body: &[u8]) -> Result<FundsRecovery> {
    let w: WFundsRecovery = decode(body)?;
    Ok(FundsRecovery {
        id: w.id,
        root_end_to_end_id: w.root_end_to_end_id,
        situation_type: w.situation_type,
        status: w.status,
        reporter_participant: w.reporter_participant,
        report_details: w.report_details,
        contact: w.contact_information,
        created_at: w.created_at,
        updated_at: w.updated_at,
    })
}

pub(crate) fn decode_funds_recovery_notice(body: &[u8]) -> Result<FundsRecoveryNotice> {
    decode(body)
}

/// The graph's JSON is DICT v2's (`parameters`, `persons`, `accounts`, `transactions`), camelCase.
pub(crate) fn decode_tracking_graph(body: &[u8]) -> Result<TrackingGraph> {
    decode(body)
}

// ---------------------------------------------------------------- SPI payments

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WParty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ispb: Option<String>,
    branch: String,
    account: String,
    account_type: AccountType,
    tax_id: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<&Debtor> for WParty {
    fn from(d: &Debtor) -> Self {
        WParty {
            ispb: None,
            branch: d.branch.clone(),
            account: d.account.clone(),
            account_type: d.account_type,
            tax_id: d.tax_id.clone(),
            name: d.name.clone(),
            key: None,
        }
    }
}

impl From<&Creditor> for WParty {
    fn from(c: &Creditor) -> Self {
        WParty {
            ispb: Some(c.ispb.clone()),
            branch: c.branch.clone(),
            account: c.account.clone(),
            account_type: c.account_type,
            tax_id: c.tax_id.clone(),
            name: c.name.clone(),
            key: c.key.clone(),
        }
    }
}

impl WParty {
    fn debtor(self) -> (Option<String>, Debtor) {
        (
            self.ispb,
            Debtor {
                branch: self.branch,
                account: self.account,
                account_type: self.account_type,
                tax_id: self.tax_id,
                name: self.name,
            },
        )
    }

    fn creditor(self) -> Result<Creditor> {
        Ok(Creditor {
            ispb: self.ispb.ok_or_else(|| IntegrationError::Decode {
                upstream: Upstream::Btg,
                message: "creditor.ispb missing".into(),
            })?,
            branch: self.branch,
            account: self.account,
            account_type: self.account_type,
            tax_id: self.tax_id,
            name: self.name,
            key: self.key,
        })
    }
}

pub(crate) fn initiate_payment(p: &PaymentOrder) -> WireRequest {
    WireRequest::post(
        &["pix", "payments"],
        json!({
            "endToEndId": p.end_to_end_id,
            "amount": p.amount,
            "initiationType": p.initiation_type,
            "transactionType": p.transaction_type,
            "debtor": to_value(&WParty::from(&p.debtor)),
            "creditor": to_value(&WParty::from(&p.creditor)),
            "remittanceInformation": p.remittance_information,
            "txid": p.txid,
        }),
    )
}

pub(crate) fn decode_payment_accepted(body: &[u8]) -> Result<PaymentAccepted> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct W {
        id: String,
        end_to_end_id: String,
        status: PaymentStatus,
    }
    let w: W = decode(body)?;
    Ok(PaymentAccepted { id: w.id, end_to_end_id: w.end_to_end_id, status: w.status })
}

pub(crate) fn get_payment(end_to_end_id: &str) -> WireRequest {
    WireRequest::get(&["pix", "payments", end_to_end_id])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WPayment {
    id: String,
    end_to_end_id: String,
    status: PaymentStatus,
    #[serde(with = "pix_core::money::upstream")]
    amount: Money,
    #[serde(default)]
    rejection_code: Option<String>,
    #[serde(default)]
    rejection_reason: Option<String>,
    #[serde(default)]
    settled_at: Option<DateTime<Utc>>,
}

fn payment_from(w: WPayment) -> Payment {
    Payment {
        id: w.id,
        end_to_end_id: w.end_to_end_id,
        status: w.status,
        amount: w.amount,
        rejection_code: w.rejection_code,
        rejection_reason: w.rejection_reason,
        settled_at: w.settled_at,
    }
}

pub(crate) fn decode_payment(body: &[u8]) -> Result<Payment> {
    decode::<WPayment>(body).map(payment_from)
}

/// `POST /pix/payments/{e2e}/refusal`: we decline a Pix received for one of our accounts.
pub(crate) fn refuse_inbound_payment(end_to_end_id: &str, r: &InboundRefusal) -> WireRequest {
    WireRequest::post(
        &["pix", "payments", end_to_end_id, "refusal"],
        json!({ "reasonCode": r.reason_code, "reason": r.reason, "description": r.description }),
    )
}

pub(crate) fn initiate_reversal(original: &str, r: &ReversalOrder) -> WireRequest {
    WireRequest::post(
        &["pix", "payments", original, "reversals"],
        json!({ "amount": r.amount, "reason": r.reason, "description": r.description }),
    )
}

pub(crate) fn decode_reversal_accepted(body: &[u8]) -> Result<PaymentAccepted> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct W {
        id: String,
        return_end_to_end_id: String,
        status: PaymentStatus,
    }
    let w: W = decode(body)?;
    Ok(PaymentAccepted { id: w.id, end_to_end_id: w.return_end_to_end_id, status: w.status })
}

pub(crate) fn get_reversal(original: &str, return_id: &str) -> WireRequest {
    WireRequest::get(&["pix", "payments", original, "reversals", return_id])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WReversal {
    #[serde(default)]
    request_id: Option<String>,
    return_end_to_end_id: String,
    original_end_to_end_id: String,
    #[serde(with = "pix_core::money::upstream")]
    amount: Money,
    reason: ReversalReason,
    status: PaymentStatus,
    #[serde(default)]
    rejection_code: Option<String>,
    #[serde(default)]
    settled_at: Option<DateTime<Utc>>,
}

fn reversal_from(w: WReversal) -> Reversal {
    Reversal {
        request_id: w.request_id,
        return_end_to_end_id: w.return_end_to_end_id,
        original_end_to_end_id: w.original_end_to_end_id,
        amount: w.amount,
        reason: w.reason,
        status: w.status,
        rejection_code: w.rejection_code,
        settled_at: w.settled_at,
    }
}

pub(crate) fn decode_reversal(body: &[u8]) -> Result<Reversal> {
    decode::<WReversal>(body).map(reversal_from)
}

pub(crate) fn list_reversals(original: &str) -> WireRequest {
    WireRequest::get(&["pix", "payments", original, "reversals"])
}

pub(crate) fn decode_reversals(body: &[u8]) -> Result<Vec<Reversal>> {
    #[derive(Deserialize)]
    struct W {
        items: Vec<WReversal>,
    }
    decode::<W>(body).map(|w| w.items.into_iter().map(reversal_from).collect())
}

// ---------------------------------------------------------------- trck.002 reports

pub(crate) fn submit_report(r: &InternalTransactionsReport) -> WireRequest {
    let txs: Vec<Value> = r
        .transactions
        .iter()
        .map(|t| {
            json!({
                "endToEndId": t.end_to_end_id,
                "amount": t.amount,
                "settledAt": t.settled_at,
                "debtorTaxId": t.debtor_tax_id,
                "creditorTaxId": t.creditor_tax_id,
                "kind": t.kind,
                "returnIdentification": t.return_identification,
            })
        })
        .collect();
    WireRequest::post(
        &["pix", "internal-transactions-reports"],
        json!({ "reportId": r.report_id, "transactions": txs }),
    )
}

pub(crate) fn get_report(id: &str) -> WireRequest {
    WireRequest::get(&["pix", "internal-transactions-reports", id])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WReport {
    /// BTG's id (the specification calls it `pactualId`).
    #[serde(alias = "pactualId")]
    id: String,
    report_id: String,
    status: String,
    #[serde(default)]
    receipt_code: Option<String>,
}

pub(crate) fn decode_report(body: &[u8]) -> Result<ReportReceipt> {
    let w: WReport = decode(body)?;
    Ok(ReportReceipt { id: w.id, report_id: w.report_id, status: w.status, receipt_code: w.receipt_code })
}

// ---------------------------------------------------------------- inbound webhooks

/// Envelope of every BTG → host webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEnvelope {
    /// Unique per event, stable across retries: the receiver's dedupe key.
    pub webhook_id: String,
    /// Entity key (`PIX_PAYMENT`, `PIX_PAYMENT_INBOUND`, `DICT_CLAIM`, …).
    pub event: String,
    /// Event payload.
    pub data: Value,
}

/// A decoded webhook event.
#[derive(Clone, Debug, PartialEq)]
pub enum BtgEvent {
    /// `PIX_PAYMENT`: final status of one of our cash-outs.
    Payment(Payment),
    /// `PIX_PAYMENT_INBOUND`: a Pix received.
    PaymentInbound(InboundPayment),
    /// `PIX_REVERSAL`: final status of a reversal we sent.
    Reversal(Reversal),
    /// `PIX_REVERSAL_INBOUND`: a reversal of one of our cash-outs.
    ReversalInbound(Reversal),
    /// `DICT_CLAIM`: a claim changed (either side).
    Claim(Claim),
    /// `DICT_CID_FILE`: a CID file is ready.
    CidFile(CidFile),
    /// `INFRACTION_REPORT_V2`.
    InfractionReport(InfractionReport),
    /// `DICT_REFUND`.
    Refund(RefundRequest),
    /// `FUNDS_RECOVERY`.
    FundsRecovery(FundsRecovery),
    /// `FUNDS_RECOVERY_EVENTS`: a lifecycle notification, passed through.
    FundsRecoveryEvents(FundsRecoveryNotice),
    /// `PIX_INTERNAL_TRANSACTIONS_REPORT`: a trck.002 report was answered.
    InternalTransactionsReport(ReportReceipt),
    /// Anything else (`PIX_DOWNLOAD`, …): stored, not handled.
    Other {
        /// Entity key.
        event: String,
        /// Raw payload.
        data: Value,
    },
}

/// Parses a webhook body (after its signature was verified).
pub fn parse_webhook(body: &[u8]) -> Result<(WebhookEnvelope, BtgEvent)> {
    let envelope: WebhookEnvelope = decode(body)?;
    let data = serde_json::to_vec(&envelope.data).unwrap_or_default();
    let event = match envelope.event.as_str() {
        "PIX_PAYMENT" => BtgEvent::Payment(decode_payment(&data)?),
        "PIX_PAYMENT_INBOUND" => BtgEvent::PaymentInbound(decode_inbound_payment(&data)?),
        "PIX_REVERSAL" => BtgEvent::Reversal(decode_reversal(&data)?),
        "PIX_REVERSAL_INBOUND" => BtgEvent::ReversalInbound(decode_reversal(&data)?),
        "DICT_CLAIM" => BtgEvent::Claim(decode_claim(&data)?),
        "DICT_CID_FILE" => BtgEvent::CidFile(decode_cid_file(&data)?),
        "INFRACTION_REPORT_V2" => BtgEvent::InfractionReport(decode_infraction_report(&data)?),
        "DICT_REFUND" => BtgEvent::Refund(decode_refund_request(&data)?),
        "FUNDS_RECOVERY" => BtgEvent::FundsRecovery(decode_funds_recovery(&data)?),
        "FUNDS_RECOVERY_EVENTS" => BtgEvent::FundsRecoveryEvents(decode_funds_recovery_notice(&data)?),
        "PIX_INTERNAL_TRANSACTIONS_REPORT" => BtgEvent::InternalTransactionsReport(decode_report(&data)?),
        other => BtgEvent::Other { event: other.to_owned(), data: envelope.data.clone() },
    };
    Ok((envelope, event))
}

fn decode_inbound_payment(body: &[u8]) -> Result<InboundPayment> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct W {
        end_to_end_id: String,
        #[serde(with = "pix_core::money::upstream")]
        amount: Money,
        debtor: WParty,
        creditor: WParty,
        #[serde(default)]
        remittance_information: Option<String>,
        #[serde(default)]
        txid: Option<String>,
        initiation_type: InitiationType,
        settled_at: DateTime<Utc>,
    }
    let w: W = decode(body)?;
    let (debtor_ispb, debtor) = w.debtor.debtor();
    Ok(InboundPayment {
        end_to_end_id: w.end_to_end_id,
        amount: w.amount,
        debtor_ispb: debtor_ispb.ok_or_else(|| IntegrationError::Decode {
            upstream: Upstream::Btg,
            message: "debtor.ispb missing".into(),
        })?,
        debtor,
        creditor: w.creditor.creditor()?,
        remittance_information: w.remittance_information,
        txid: w.txid,
        initiation_type: w.initiation_type,
        settled_at: w.settled_at,
    })
}

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is absent or malformed.
    #[error("missing or malformed {0} header")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance window (replay protection).
    #[error("timestamp outside the tolerance window")]
    Stale,
    /// The HMAC does not match.
    #[error("signature mismatch")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Computes the `x-signature` value for a body sent at `timestamp`:
/// `sha256=` + lowercase hex of HMAC-SHA256(secret, `"{timestamp}.{body}"`).
pub fn sign_webhook(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Verifies a webhook: the timestamp must be within `tolerance_secs` of `now` and the signature
/// must match the exact body bytes (constant-time comparison).
pub fn verify_webhook(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> std::result::Result<(), SignatureError> {
    let timestamp: i64 = timestamp_header
        .and_then(|t| t.trim().parse().ok())
        .ok_or(SignatureError::Malformed(HEADER_SIGNATURE_TIMESTAMP))?;
    let hex_sig = signature_header
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .ok_or(SignatureError::Malformed(HEADER_SIGNATURE))?;
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed(HEADER_SIGNATURE))?;
    // abs_diff: a timestamp near i64::MIN or MAX must be stale, not an overflow.
    if !u64::try_from(tolerance_secs).is_ok_and(|tolerance| now.timestamp().abs_diff(timestamp) <= tolerance) {
        return Err(SignatureError::Stale);
    }
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body).verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_tamper() {
        let now = Utc::now();
        let ts = now.timestamp();
        let body = br#"{"webhookId":"w1","event":"PIX_PAYMENT","data":{}}"#;
        let sig = sign_webhook(b"s3cret", ts, body);
        let ts_s = ts.to_string();
        assert_eq!(verify_webhook(b"s3cret", Some(&ts_s), Some(&sig), body, now, 300), Ok(()));
        assert_eq!(verify_webhook(b"other", Some(&ts_s), Some(&sig), body, now, 300), Err(SignatureError::Mismatch));
        let mut tampered = body.to_vec();
        tampered[5] ^= 1;
        assert_eq!(
            verify_webhook(b"s3cret", Some(&ts_s), Some(&sig), &tampered, now, 300),
            Err(SignatureError::Mismatch)
        );
        let old = (ts - 301).to_string();
        let old_sig = sign_webhook(b"s3cret", ts - 301, body);
        assert_eq!(verify_webhook(b"s3cret", Some(&old), Some(&old_sig), body, now, 300), Err(SignatureError::Stale));
        assert!(matches!(
            verify_webhook(b"s3cret", None, Some(&sig), body, now, 300),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_stale_not_an_overflow() {
        let now = Utc::now();
        let body = b"{}";
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let sig = sign_webhook(b"s3cret", ts, body);
            let header = ts.to_string();
            assert_eq!(
                verify_webhook(b"s3cret", Some(&header), Some(&sig), body, now, 300),
                Err(SignatureError::Stale)
            );
        }
        let ts = now.timestamp().to_string();
        let sig = sign_webhook(b"s3cret", now.timestamp(), body);
        assert_eq!(verify_webhook(b"s3cret", Some(&ts), Some(&sig), body, now, 0), Ok(()), "a zero tolerance is exact");
        assert_eq!(verify_webhook(b"s3cret", Some(&ts), Some(&sig), body, now, -1), Err(SignatureError::Stale));
    }

    #[test]
    fn known_signature_vector() {
        // Fixed vector, so that the documented scheme cannot drift silently.
        let sig = sign_webhook(b"secret", 1_700_000_000, b"{}");
        let mut m = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        m.update(b"1700000000.{}");
        assert_eq!(sig, format!("sha256={}", hex::encode(m.finalize().into_bytes())));
    }

    #[test]
    fn parses_payment_webhook() {
        let body = json!({"webhookId":"w","event":"PIX_PAYMENT","data":{
            "id":"p1","endToEndId":"E1234567820250101120000abcdefghijk","status":"REJECTED",
            "amount":"10.13","rejectionCode":"AC03","rejectionReason":"invalid account"}});
        let (env, ev) = parse_webhook(body.to_string().as_bytes()).unwrap();
        assert_eq!(env.webhook_id, "w");
        match ev {
            BtgEvent::Payment(p) => {
                assert_eq!(p.status, PaymentStatus::Rejected);
                assert_eq!(p.amount.centavos(), 1013);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
