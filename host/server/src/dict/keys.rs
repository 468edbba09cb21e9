//! Key lookup for payments, bulk existence check and key statistics (passed through from BTG).
//!
//! Lookups are rate limited per account with DICT's USER anti-scan token buckets: a bucket of 100
//! tokens refilled at 2/min for natural persons (1,000 and 20/min for legal persons); a lookup
//! that finds the key costs 1 token and one that finds nothing costs 20. The miss cost is
//! reserved atomically before the lookup (admitted only while the balance is positive; it may
//! then go negative, as DICT's does) and 19 are refunded on a hit, so parallel lookups cannot
//! overspend. Bulk checks (3 reserved per key, 2 refunded per key found) and statistics calls
//! (1) spend the tenant's participant-scope buckets. A refused request answers 429 `PIX-0116`
//! with `Retry-After`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use pix_core::dict::{
    CHECK_HIT_COST, CHECK_MISS_COST, LOOKUP_HIT_COST, LOOKUP_MISS_COST, PARTICIPANT_BUCKET, STATISTICS_COST,
    TokenBucket, antiscan_bucket,
};
use pix_core::document::Document;
use pix_core::error::ErrorCode;
use pix_core::ids::EndToEndId;
use pix_core::mask::mask_raw_key;
use pix_core::pix_key::PixKey;
use pix_integrations::IntegrationError;
use pix_integrations::btg::{Counters, DictEntry, KeyLookup, Statistics};
use pix_store::tenants::Tenant;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Dict;
use super::{btg_error, header as header_value, invalid};
use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lookup_key))
        .routes(routes!(check_keys))
        .routes(routes!(key_statistics))
        .routes(routes!(person_statistics))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAccountView {
    /// ISPB of the participant holding the account.
    pub participant: String,
    pub branch: String,
    pub number: String,
    #[serde(rename = "type")]
    pub account_type: String,
    pub opening_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyOwnerView {
    /// `NATURAL_PERSON` or `LEGAL_PERSON`.
    #[serde(rename = "type")]
    pub person_type: String,
    pub tax_id_number: String,
    pub name: String,
    pub trade_name: Option<String>,
}

/// A key's owner and account, as BTG returns them (masking for display is the client's job).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub key: String,
    pub key_type: String,
    pub account: KeyAccountView,
    pub owner: KeyOwnerView,
    /// The EndToEndId to pay with: the one sent in `X-EndToEnd-Id`, or one BTG generated.
    pub end_to_end_id: String,
    pub creation_date: Option<DateTime<Utc>>,
    pub key_ownership_date: Option<DateTime<Utc>>,
}

pub(super) fn key_view(entry: DictEntry, end_to_end_id: String) -> KeyView {
    KeyView {
        key: entry.key,
        key_type: entry.key_type.as_str().to_owned(),
        account: KeyAccountView {
            participant: entry.account.participant,
            branch: entry.account.branch,
            number: entry.account.number,
            account_type: entry.account.account_type.as_str().to_owned(),
            opening_date: entry.account.opening_date,
        },
        owner: KeyOwnerView {
            person_type: entry.owner.person_type.as_str().to_owned(),
            tax_id_number: entry.owner.tax_id,
            name: entry.owner.name,
            trade_name: entry.owner.trade_name,
        },
        end_to_end_id,
        creation_date: entry.created_at,
        key_ownership_date: entry.key_ownership_date,
    }
}

fn rate_limited(retry_after: i64) -> Response {
    rate_limited_with(
        "this account's key lookup budget is exhausted (a lookup of an unknown key costs 20 times a found one)",
        retry_after,
    )
}

fn rate_limited_with(message: &str, retry_after: i64) -> Response {
    let mut response = ApiError::new(ErrorCode::DictRateLimited, message).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Resolve a key for a payment: owner and account. Unknown keys, and keys whose claim is
/// CONFIRMED, are "not found".
#[utoipa::path(get, path = "/v1/dict/keys/{key}", tag = "DICT",
    params(("key" = inline(crate::openapi::PixKeyText), Path), ("X-Account-Id" = uuid::Uuid, Header, description = "The paying account (its anti-scan bucket)"),
           ("X-EndToEnd-Id" = Option<crate::openapi::EndToEndIdText>, Header, description = "EndToEndId of the payment being prepared")),
    security(("tenant_token" = [])),
    responses((status = 200, body = KeyView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 429, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn lookup_key(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    headers: HeaderMap,
    AppPath(key): AppPath<String>,
) -> ApiResult<Response> {
    let end_to_end = match header_value(&headers, "x-endtoend-id") {
        None => None,
        Some(v) => Some(
            EndToEndId::parse(v)
                .map_err(|e| ApiError::new(ErrorCode::InvalidHeader, format!("X-EndToEnd-Id: {e}")))?
                .as_str()
                .to_owned(),
        ),
    };
    let key = PixKey::infer(&key)
        .map_err(|e| ApiError::new(ErrorCode::InvalidPathParameter, format!("key: {e}")))?
        .value()
        .to_owned();
    Ok(match lookup_for_payment(&state, &tenant, &account, &key, end_to_end.as_deref()).await? {
        KeyLookupOutcome::Found(found) => Json(key_view(found.entry, found.end_to_end_id)).into_response(),
        KeyLookupOutcome::RateLimited(response) => response,
    })
}

/// A lookup charged to the paying account's anti-scan bucket.
pub enum KeyLookupOutcome {
    Found(KeyLookup),
    /// The bucket is empty: the ready 429 with `Retry-After`.
    RateLimited(Response),
}

/// Looks `key` (already validated) up for a payment from `account`: charges the anti-scan
/// bucket, answers "not found" for keys locked by a CONFIRMED claim. The cash-out initiation
/// uses this too, so a payment lookup costs the same as a direct one.
pub async fn lookup_for_payment(
    state: &Dict,
    tenant: &Tenant,
    account: &OwnedAccount,
    key: &str,
    end_to_end: Option<&str>,
) -> ApiResult<KeyLookupOutcome> {
    let bucket = antiscan_bucket(account.holder.person_type);
    let scope = format!("lookup:{}", account.id);
    let now = state.clock.now();
    // The worst case up front: parallel lookups each reserve a miss, so none runs for free.
    let balance = state.store.charge_bucket(tenant.id, &scope, bucket, LOOKUP_MISS_COST, now).await?;
    if !balance.admitted {
        tracing::warn!(account = %account.id, "anti-scan bucket exhausted");
        return Ok(KeyLookupOutcome::RateLimited(rate_limited(bucket.seconds_until_positive(balance.tokens))));
    }
    let not_found = || ApiError::new(ErrorCode::KeyNotFound, "no entry for this key");
    // A key whose claim is CONFIRMED answers "not found" until the claim completes or is cancelled.
    let confirmed = state.store.locking_dict_claim(tenant.id, key).await?.is_some_and(|c| c.status == "CONFIRMED");
    let btg = state.integrations.for_tenant(tenant)?.btg.clone();
    let outcome = if confirmed {
        Err(IntegrationError::NotFound {
            upstream: pix_integrations::Upstream::Btg,
            code: "ENTRY_NOT_FOUND".into(),
            message: "key locked by a confirmed claim".into(),
        })
    } else {
        btg.lookup_key(key, end_to_end).await
    };
    match outcome {
        Ok(found) => {
            state.store.refund_bucket(tenant.id, &scope, bucket, LOOKUP_MISS_COST - LOOKUP_HIT_COST, now).await?;
            Ok(KeyLookupOutcome::Found(found))
        }
        Err(IntegrationError::NotFound { .. }) => {
            tracing::info!(key = %mask_raw_key(key), "key lookup: not found");
            Err(not_found())
        }
        Err(e) => {
            // DICT answered nothing about the key: the reservation goes back.
            state.store.refund_bucket(tenant.id, &scope, bucket, LOOKUP_MISS_COST, now).await?;
            Err(btg_error("key lookup", e))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    #[schema(schema_with = crate::openapi::pix_key)]
    pub key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckKeys {
    #[schema(min_items = 1, max_items = 200)]
    pub keys: Vec<KeyRef>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyCheckView {
    pub key: String,
    pub has_entry: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyChecks {
    pub keys: Vec<KeyCheckView>,
}

/// Scope of the tenant's participant-level bucket for bulk checks.
pub const CHECK_SCOPE: &str = "participant:check";
/// Scope of the tenant's participant-level bucket for statistics.
pub const STATISTICS_SCOPE: &str = "participant:statistics";

/// Reserves `cost` from the tenant's `scope` bucket, or the 429 to answer.
async fn reserve(
    state: &Dict,
    tenant: &Tenant,
    scope: &str,
    bucket: TokenBucket,
    cost: i64,
) -> ApiResult<Option<Response>> {
    let balance = state.store.charge_bucket(tenant.id, scope, bucket, cost, state.clock.now()).await?;
    if balance.admitted {
        return Ok(None);
    }
    tracing::warn!(scope, "participant anti-scan bucket exhausted");
    Ok(Some(rate_limited_with(
        "this tenant's DICT query budget is exhausted (bulk checks and statistics spend it)",
        bucket.seconds_until_positive(balance.tokens),
    )))
}

/// Whether each of 1–200 keys has an entry in DICT. Spends the tenant's participant-scope
/// bucket: 3 tokens reserved per key, 2 given back per key that has an entry.
#[utoipa::path(post, path = "/v1/dict/keys/check", tag = "DICT", request_body = CheckKeys,
    security(("tenant_token" = [])),
    responses((status = 200, body = KeyChecks), (status = 400, body = ErrorResponse),
               (status = 429, body = ErrorResponse, description = "PIX-0116: the tenant's check budget is exhausted (see Retry-After)"),
               (status = 502, body = ErrorResponse)))]
async fn check_keys(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppJson(body): AppJson<CheckKeys>,
) -> ApiResult<Response> {
    if body.keys.is_empty() || body.keys.len() > 200 {
        return Err(invalid(format!("keys: 1 to 200 keys, got {}", body.keys.len())));
    }
    let mut keys = Vec::with_capacity(body.keys.len());
    for (i, k) in body.keys.iter().enumerate() {
        let key = PixKey::infer(&k.key).map_err(|e| invalid(format!("keys[{i}].key: {e}")))?;
        keys.push(key.value().to_owned());
    }
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    let reserved = CHECK_MISS_COST * keys.len() as i64;
    if let Some(refused) = reserve(&state, &tenant, CHECK_SCOPE, PARTICIPANT_BUCKET, reserved).await? {
        return Ok(refused);
    }
    let checked = match btg.check_keys(&keys).await {
        Ok(checked) => checked,
        Err(e) => {
            let now = state.clock.now();
            state.store.refund_bucket(tenant.id, CHECK_SCOPE, PARTICIPANT_BUCKET, reserved, now).await?;
            return Err(btg_error("key check", e));
        }
    };
    let found = checked.iter().filter(|c| c.has_entry).count() as i64;
    if found > 0 {
        let refund = found * (CHECK_MISS_COST - CHECK_HIT_COST);
        state.store.refund_bucket(tenant.id, CHECK_SCOPE, PARTICIPANT_BUCKET, refund, state.clock.now()).await?;
    }
    Ok(Json(KeyChecks {
        keys: checked.into_iter().map(|c| KeyCheckView { key: c.key, has_entry: c.has_entry }).collect(),
    })
    .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountersView {
    pub d90: u64,
    pub m12: u64,
    pub m60: u64,
}

impl From<Counters> for CountersView {
    fn from(c: Counters) -> Self {
        CountersView { d90: c.d90, m12: c.m12, m60: c.m60 }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FraudMarkerStats {
    pub application_frauds: CountersView,
    pub mule_accounts: CountersView,
    pub scammer_accounts: CountersView,
    pub other_frauds: CountersView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfractionStats {
    pub open_reports: u64,
    pub open_reports_distinct_reporters: u64,
    pub rejected_reports: CountersView,
}

/// DICT's anti-fraud statistics of a key and its owner, or of a person; not stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatisticsView {
    /// The key asked about (key statistics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The CPF/CNPJ asked about (person statistics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id_number: Option<String>,
    pub settlements: CountersView,
    pub fraud_markers: FraudMarkerStats,
    pub infraction_reports: InfractionStats,
}

fn statistics_view(key: Option<String>, tax_id_number: Option<String>, s: Statistics) -> StatisticsView {
    StatisticsView {
        key,
        tax_id_number,
        settlements: s.settlements.into(),
        fraud_markers: FraudMarkerStats {
            application_frauds: s.application_frauds.into(),
            mule_accounts: s.mule_accounts.into(),
            scammer_accounts: s.scammer_accounts.into(),
            other_frauds: s.other_frauds.into(),
        },
        infraction_reports: InfractionStats {
            open_reports: s.open_reports,
            open_reports_distinct_reporters: s.open_reports_distinct_reporters,
            rejected_reports: s.rejected_reports.into(),
        },
    }
}

/// Key-level and owner-level statistics, passed through from DICT. Each call spends 1 token of
/// the tenant's participant-scope statistics bucket.
#[utoipa::path(get, path = "/v1/dict/statistics/keys/{key}", tag = "DICT", params(("key" = inline(crate::openapi::PixKeyText), Path)),
    security(("tenant_token" = [])),
    responses((status = 200, body = StatisticsView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 429, body = ErrorResponse, description = "PIX-0116: the tenant's statistics budget is exhausted (see Retry-After)")))]
async fn key_statistics(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(key): AppPath<String>,
) -> ApiResult<Response> {
    let key = PixKey::infer(&key)
        .map_err(|e| ApiError::new(ErrorCode::InvalidPathParameter, format!("key: {e}")))?
        .value()
        .to_owned();
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    if let Some(refused) = reserve(&state, &tenant, STATISTICS_SCOPE, PARTICIPANT_BUCKET, STATISTICS_COST).await? {
        return Ok(refused);
    }
    let stats = btg.key_statistics(&key).await.map_err(|e| btg_error("key statistics", e))?;
    Ok(Json(statistics_view(Some(key), None, stats)).into_response())
}

/// Person-level statistics (settlements, fraud markers, infraction reports of every key and
/// account of a CPF/CNPJ), passed through from DICT. Spends the same budget as key statistics.
#[utoipa::path(get, path = "/v1/dict/statistics/persons/{taxId}", tag = "DICT", params(("taxId" = inline(crate::openapi::TaxIdText), Path)),
    security(("tenant_token" = [])),
    responses((status = 200, body = StatisticsView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 429, body = ErrorResponse, description = "PIX-0116: the tenant's statistics budget is exhausted (see Retry-After)")))]
async fn person_statistics(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(tax_id): AppPath<String>,
) -> ApiResult<Response> {
    let document =
        Document::parse(&tax_id).map_err(|e| ApiError::new(ErrorCode::InvalidPathParameter, format!("taxId: {e}")))?;
    let btg = state.integrations.for_tenant(&tenant)?.btg.clone();
    if let Some(refused) = reserve(&state, &tenant, STATISTICS_SCOPE, PARTICIPANT_BUCKET, STATISTICS_COST).await? {
        return Ok(refused);
    }
    let stats = btg.person_statistics(document.as_str()).await.map_err(|e| btg_error("person statistics", e))?;
    Ok(Json(statistics_view(None, Some(document.as_str().to_owned()), stats)).into_response())
}
