//! `POST /v1/transfers/cashout/initiate`: resolve and validate a destination (a key looked up in
//! DICT, a QR code, or typed account details) and fix the amount. No money moves; the initiation
//! expires unless processed in time.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use pix_core::document::Document;
use pix_core::error::ErrorCode;
use pix_core::ids::{EndToEndId, Ispb, new_id};
use pix_core::mask::mask_document;
use pix_core::money::{Amount, Money};
use pix_core::pix_key::PixKey;
use pix_core::transfer::{Counterparty, DictStatistics, InitiationDetails, InitiationMethod, InitiationType};
use pix_integrations::btg::{Counters, DictEntry, Statistics};
use pix_store::tenants::Tenant;
use pix_store::transfers::{Initiation, insert_initiation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::dict::{Dict, KeyLookupOutcome, lookup_for_payment};
use crate::error::{ApiError, ApiResult};
use crate::extract::AppJson;
use crate::qrcodes::{QrKind, resolve};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(initiate_cashout))
}

/// How long an initiation may wait for processing unless the tenant sets
/// `settings.transfers.initiationTtlSecs`.
const DEFAULT_TTL_SECS: i64 = 300;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InitiateCashout {
    /// `KEY`, `QR_CODE` or `MANUAL`.
    #[serde(rename = "type")]
    #[schema(example = "KEY", pattern = "^(KEY|QR_CODE|MANUAL)$")]
    pub initiation_type: String,
    /// Required, except for a QR code that fixes the amount (then it must match if sent).
    #[schema(schema_with = crate::openapi::amount)]
    pub amount: Option<Amount>,
    /// KEY: the Pix key to pay.
    #[schema(schema_with = crate::openapi::pix_key)]
    pub key: Option<String>,
    /// QR_CODE: the BR Code payload (static or dynamic).
    #[schema(min_length = 1, max_length = 512)]
    pub emv: Option<String>,
    /// QR_CODE with a due-date charge: the day the payment is made (default today).
    pub payment_date: Option<NaiveDate>,
    /// Message to the payee, ≤ 140 characters.
    #[schema(max_length = 140)]
    pub description: Option<String>,
    /// MANUAL: the destination account.
    pub destination: Option<ManualDestination>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManualDestination {
    /// ISPB of the receiving participant (8 digits).
    #[schema(example = "87654321", pattern = "^[0-9]{8}$")]
    pub ispb: String,
    /// 1–4 digits.
    #[schema(example = "0001", pattern = "^[0-9]{1,4}$")]
    pub branch: String,
    /// 1–20 letters or digits.
    #[schema(example = "123456", pattern = "^[A-Za-z0-9]{1,20}$")]
    pub account: String,
    /// `CACC`, `SVGS`, `SLRY` or `TRAN`.
    #[schema(example = "CACC", pattern = "^(CACC|SVGS|SLRY|TRAN)$")]
    pub account_type: String,
    /// CPF or CNPJ of the account holder.
    #[schema(pattern = r"^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2})$")]
    pub document: String,
    pub name: String,
}

/// The destination as the payer confirms it (the document masked).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationView {
    pub ispb: String,
    pub branch: String,
    pub account: String,
    pub account_type: String,
    pub name: String,
    /// Masked CPF/CNPJ.
    pub tax_id: String,
    /// `NATURAL_PERSON` or `LEGAL_PERSON`.
    pub person_type: String,
    pub key: Option<String>,
    pub key_type: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitiationView {
    pub initiation_id: Uuid,
    pub end_to_end_id: String,
    #[serde(rename = "type")]
    pub initiation_type: String,
    #[schema(value_type = String, example = "100.00")]
    pub amount: Money,
    pub description: Option<String>,
    pub tx_id: Option<String>,
    pub destination: DestinationView,
    /// The destination is an account of this institution (settled internally, not through BTG).
    #[serde(rename = "isIntraPSP")]
    pub is_intra_psp: bool,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A DICT entry as a cash-out destination.
fn destination_from_entry(entry: &DictEntry) -> Counterparty {
    Counterparty {
        ispb: entry.account.participant.clone(),
        branch: entry.account.branch.clone(),
        account: entry.account.number.clone(),
        account_type: entry.account.account_type.as_str().to_owned(),
        tax_id: entry.owner.tax_id.clone(),
        name: entry.owner.name.clone(),
        person_type: Some(entry.owner.person_type),
        key: Some(entry.key.clone()),
        key_type: Some(entry.key_type.as_str().to_owned()),
        key_ownership_date: entry.key_ownership_date.or(entry.created_at),
    }
}

fn destination_view(d: &Counterparty) -> DestinationView {
    DestinationView {
        ispb: d.ispb.clone(),
        branch: d.branch.clone(),
        account: d.account.clone(),
        account_type: d.account_type.clone(),
        name: d.name.clone(),
        tax_id: mask_document(&d.tax_id),
        person_type: d.person_type.map(|p| p.as_str()).unwrap_or_default().to_owned(),
        key: d.key.clone(),
        key_type: d.key_type.clone(),
    }
}

/// What initiation resolved, before it is stored.
struct Resolved {
    destination: Counterparty,
    amount: Money,
    /// BTG's initiation type.
    method: InitiationMethod,
    tx_id: Option<String>,
    /// DICT statistics of the key (fraud triage reads them at processing).
    key_statistics: Option<DictStatistics>,
}

/// Prepare a cash-out: validate and resolve the destination, fix the amount. Moves no money.
#[utoipa::path(post, path = "/v1/transfers/cashout/initiate", tag = "Transfers", request_body = InitiateCashout,
    params(("X-Account-Id" = Uuid, Header, description = "The paying account")),
    security(("tenant_token" = [])),
    responses((status = 201, body = InitiationView), (status = 400, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse),
              (status = 429, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn initiate_cashout(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    account: OwnedAccount,
    AppJson(body): AppJson<InitiateCashout>,
) -> ApiResult<Response> {
    let description = body.description.clone();
    if description.as_deref().is_some_and(|d| d.chars().count() > 140) {
        return Err(invalid("description must have at most 140 characters"));
    }
    let now = state.clock.now();
    let end_to_end_id = EndToEndId::generate(&tenant_ispb(&tenant)?, now, &mut rand::rng());
    let initiation_type: InitiationType =
        body.initiation_type.parse().map_err(|_| invalid("type must be KEY, QR_CODE or MANUAL"))?;
    let resolved = match initiation_type {
        InitiationType::Key => {
            let key = body.key.as_deref().ok_or_else(|| missing("key"))?;
            let amount = required_amount(body.amount)?;
            match resolve_key(&state, &tenant, &account, key, end_to_end_id.as_str()).await? {
                Ok(r) => Resolved { amount, ..r },
                Err(rate_limited) => return Ok(rate_limited),
            }
        }
        InitiationType::QrCode => {
            let emv = body.emv.as_deref().ok_or_else(|| missing("emv"))?;
            let qr = resolve(&state, emv, body.payment_date).await?;
            let amount = match (qr.amount, body.amount) {
                (Some(fixed), Some(sent)) if fixed != sent.money() => {
                    return Err(invalid(format!("amount must be {fixed}, the amount of the QR code")));
                }
                (Some(fixed), _) => fixed,
                (None, sent) => required_amount(sent)?,
            };
            match resolve_key(&state, &tenant, &account, &qr.receiver_key, end_to_end_id.as_str()).await? {
                Ok(r) => Resolved {
                    amount,
                    method: if qr.kind == QrKind::Static {
                        InitiationMethod::StaticQrcode
                    } else {
                        InitiationMethod::DynamicQrcode
                    },
                    tx_id: qr.spi_txid().map(str::to_owned),
                    ..r
                },
                Err(rate_limited) => return Ok(rate_limited),
            }
        }
        InitiationType::Manual => {
            let destination = manual_destination(body.destination.as_ref().ok_or_else(|| missing("destination"))?)?;
            Resolved {
                destination,
                amount: required_amount(body.amount)?,
                method: InitiationMethod::Manual,
                tx_id: None,
                key_statistics: None,
            }
        }
    };
    let is_intra_psp = resolved.destination.ispb == tenant.ispb;
    let ttl = tenant.settings["transfers"]["initiationTtlSecs"].as_i64().filter(|s| *s > 0).unwrap_or(DEFAULT_TTL_SECS);
    let initiation = Initiation {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: account.id,
        initiation_type,
        amount: resolved.amount.centavos(),
        end_to_end_id: end_to_end_id.as_str().to_owned(),
        is_intra_psp,
        details: InitiationDetails {
            destination: resolved.destination,
            initiation_method: resolved.method,
            description: description.clone(),
            tx_id: resolved.tx_id.clone(),
            key_statistics: resolved.key_statistics,
        },
        expires_at: now + chrono::Duration::seconds(ttl),
        created_at: now,
    };
    let mut tx = state.store.begin().await?;
    insert_initiation(&mut tx, &initiation).await?;
    tx.commit().await?;
    tracing::info!(initiation = %initiation.id, kind = %initiation.initiation_type, is_intra_psp, "cash-out initiated");
    let view = InitiationView {
        initiation_id: initiation.id,
        end_to_end_id: initiation.end_to_end_id.clone(),
        initiation_type: initiation.initiation_type.as_str().to_owned(),
        amount: resolved.amount,
        description,
        tx_id: resolved.tx_id,
        destination: destination_view(&initiation.details.destination),
        is_intra_psp,
        expires_at: initiation.expires_at,
        created_at: now,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

fn tenant_ispb(tenant: &Tenant) -> ApiResult<Ispb> {
    Ispb::parse(&tenant.ispb).map_err(|e| ApiError::internal(format!("tenant ISPB: {e}")))
}

fn required_amount(amount: Option<Amount>) -> ApiResult<Money> {
    amount.map(Amount::money).ok_or_else(|| missing("amount"))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, message)
}

fn missing(field: &str) -> ApiError {
    ApiError::new(ErrorCode::MissingField, format!("missing field: {field}"))
}

/// Looks the key up in DICT (charged to the account's anti-scan bucket) and reads its
/// statistics for fraud triage. `Err` carries the ready 429 when the bucket is empty.
async fn resolve_key(
    state: &AppState,
    tenant: &Tenant,
    account: &OwnedAccount,
    key: &str,
    end_to_end_id: &str,
) -> ApiResult<Result<Resolved, Response>> {
    let key = PixKey::infer(key).map_err(|e| invalid(format!("key: {e}")))?;
    let dict = <Dict as axum::extract::FromRef<AppState>>::from_ref(state);
    let found = match lookup_for_payment(&dict, tenant, account, key.value(), Some(end_to_end_id)).await? {
        KeyLookupOutcome::Found(found) => found,
        KeyLookupOutcome::RateLimited(response) => return Ok(Err(response)),
    };
    let btg = state.integrations.for_tenant(tenant)?.btg.clone();
    let started = state.integrations.call_started();
    let statistics = btg.key_statistics(key.value()).await;
    state.integrations.record_call(tenant.id, end_to_end_id, "key_statistics", started, &statistics).await;
    let key_statistics = match statistics {
        Ok(stats) => Some(policy_statistics(&stats)),
        Err(e) => {
            // Triage still runs without them; the decision log shows they were missing.
            tracing::warn!(error = %e, "key statistics unavailable");
            None
        }
    };
    Ok(Ok(Resolved {
        destination: destination_from_entry(&found.entry),
        amount: Money::ZERO,
        method: InitiationMethod::Dict,
        tx_id: None,
        key_statistics,
    }))
}

/// DICT statistics in the fraud-triage policy's shape.
fn policy_statistics(s: &Statistics) -> DictStatistics {
    let d90 = |c: &Counters| c.d90;
    DictStatistics {
        settlements_d90: sat(d90(&s.settlements)),
        application_frauds: sat(d90(&s.application_frauds)),
        mule_accounts: sat(d90(&s.mule_accounts)),
        scammer_accounts: sat(d90(&s.scammer_accounts)),
        other_frauds: sat(d90(&s.other_frauds)),
        unknown_frauds: 0,
        total_fraud_amount: 0,
        distinct_fraud_reporters: 0,
        open_reports: sat(s.open_reports),
        open_reports_distinct_reporters: sat(s.open_reports_distinct_reporters),
        rejected_reports: sat(d90(&s.rejected_reports)),
    }
}

fn sat(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Validates typed account details.
fn manual_destination(d: &ManualDestination) -> ApiResult<Counterparty> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if d.ispb.len() != 8 || !digits(&d.ispb) {
        return Err(invalid("destination.ispb must have 8 digits"));
    }
    if d.branch.is_empty() || d.branch.len() > 4 || !digits(&d.branch) {
        return Err(invalid("destination.branch must have 1 to 4 digits"));
    }
    if d.account.is_empty() || d.account.len() > 20 || !d.account.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("destination.account must have 1 to 20 letters or digits"));
    }
    if !["CACC", "SVGS", "SLRY", "TRAN"].contains(&d.account_type.as_str()) {
        return Err(invalid("destination.accountType must be CACC, SVGS, SLRY or TRAN"));
    }
    let document = Document::parse(&d.document).map_err(|e| invalid(format!("destination.document: {e}")))?;
    let name = d.name.trim();
    if name.is_empty() || name.chars().count() > 140 {
        return Err(invalid("destination.name must have 1 to 140 characters"));
    }
    Ok(Counterparty {
        ispb: d.ispb.clone(),
        branch: d.branch.clone(),
        account: d.account.clone(),
        account_type: d.account_type.clone(),
        tax_id: document.as_str().to_owned(),
        name: name.to_owned(),
        person_type: Some(document.person_type()),
        key: None,
        key_type: None,
        key_ownership_date: None,
    })
}
