//! `POST /v1/transfers/cashout/process` and everything after it: fraud triage, fee, the Midaz
//! hold, the BTG payment, and BTG's `PIX_PAYMENT` answers that commit or release the hold.
//!
//! The request writes the transfer and its safety job in one transaction, then runs the steps
//! inline for speed. Whatever it could not finish (an upstream timeout, a crash) the job finishes:
//! every step is idempotent (Midaz and BTG idempotency keys derived from the transfer id) and
//! recorded in `step` before the next one begins.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use pix_core::clock::brasilia_month_start;
use pix_core::error::ErrorCode;
use pix_core::ids::new_id;
use pix_integrations::btg::{
    AccountType, BtgEvent, Creditor, Debtor, InitiationType, Payment, PaymentOrder, PaymentStatus, TransactionType,
};
use pix_integrations::midaz::{Leg, TransactionRequest};
use pix_integrations::{IntegrationError, Money as UpstreamMoney};
use pix_policy::{
    Direction, FeeCharge, FeeInput, FraudAction, FraudInput, Initiation as PolicyInitiation, KeyType, Operation,
    Purpose,
};
use pix_store::inbound::InboundEvent;
use pix_store::jobs::{Job, NewJob, enqueue};
use pix_store::tenants::Tenant;
use pix_store::transfers::{Transfer, insert_transfer};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::initiate::Destination;
use super::{
    ASSET, EXTERNAL, TRANSFERS_QUEUE, TransferView, account_segment, days_since, fail, fraud_details, policy_person,
    record_event, retry, sat, save_with_event, velocity,
};
use crate::account::OwnedAccount;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::dict::{decode_event, is_definite};
use crate::error::{ApiError, ApiResult};
use crate::extract::AppJson;
use crate::inbound::InboundHandler;
use crate::policies::quote::sao_paulo;
use crate::policies::runtime::{Fee, Fraud};
use crate::routes::ErrorResponse;
use crate::worker::{JobError, JobFuture, JobHandler};

pub const ADVANCE_CASHOUT: &str = "transfers_advance_cashout";

/// The request path's head start: the safety job runs only after this, so that it does not
/// race the request that is placing the hold.
pub(super) const INLINE_GRACE_SECS: i64 = 30;

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
        "" | "TRANSFER" => Ok(Purpose::Transfer),
        "INSTANT_PAYMENT_REFUND" => Ok(Purpose::InstantPaymentRefund),
        "CHANGE" | "WITHDRAWAL" | "REFUND_AUTOMATIC_PIX" | "INSTALLMENT_PIX" => Err(ApiError::new(
            ErrorCode::InvalidPurpose,
            format!("X-Purpose {value} is not supported: use TRANSFER or INSTANT_PAYMENT_REFUND"),
        )),
        other => Err(ApiError::new(
            ErrorCode::InvalidPurpose,
            format!("unknown X-Purpose {other:?}: use TRANSFER or INSTANT_PAYMENT_REFUND"),
        )),
    }
}

fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::InstantPaymentRefund => "INSTANT_PAYMENT_REFUND",
        _ => "TRANSFER",
    }
}

/// Send an initiated cash-out: fraud triage, fee, Midaz hold, BTG payment.
///
/// Answers 201 with the transfer: PROCESSING once BTG accepted it, PENDING when a step is still
/// under way (the worker finishes it), IN_REVIEW when fraud triage asks for an operator, FAILED
/// when triage blocks it or BTG refuses it. Insufficient balance is 422 `PIX-0411`.
#[utoipa::path(post, path = "/v1/transfers/cashout/process", tag = "Transfers", request_body = ProcessCashout,
    params(("X-Account-Id" = Uuid, Header, description = "The paying account (the one that initiated)"),
           ("X-Purpose" = Option<String>, Header, description = "TRANSFER (default) or INSTANT_PAYMENT_REFUND"),
           ("X-Idempotency" = Option<String>, Header, description = "Replays return the first answer")),
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
) -> ApiResult<Response> {
    let purpose = purpose(&headers)?;
    let now = state.clock.now();
    let initiation =
        state.store.cashout_initiation(tenant.id, account.id, body.initiation_id).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::InitiationNotFound, "no initiation with this id for this account")
        })?;
    if state.store.transfer_by_initiation(tenant.id, initiation.id).await?.is_some() {
        return Err(already_processed());
    }
    if now >= initiation.expires_at {
        return Err(ApiError::new(
            ErrorCode::InitiationExpired,
            format!("the initiation expired at {}; initiate again", initiation.expires_at.to_rfc3339()),
        ));
    }
    if initiation.is_intra_psp {
        return Err(ApiError::new(
            ErrorCode::IntraPspUnavailable,
            "the destination is an account of this institution; intra-PSP settlement is not available yet \
             (see docs/transfers.md), and such payments are never sent through BTG",
        ));
    }
    let destination: Destination =
        serde_json::from_value(initiation.details["destination"].clone()).map_err(ApiError::internal)?;
    let method = initiation.details["initiationMethod"].as_str().unwrap_or("MANUAL").to_owned();

    let windows = [now - chrono::Duration::hours(1), now - chrono::Duration::hours(24), brasilia_month_start(now)];
    let [hour, day, month] =
        state.store.account_activity(tenant.id, account.id, "CASHOUT", windows, Some(&destination.tax_id)).await?;
    let local_time = sao_paulo(now);
    let fraud_input = FraudInput {
        direction: Direction::CashOut,
        amount: initiation.amount,
        key_type: destination.key_type.as_deref().and_then(policy_key_type),
        key_age_days: destination.key_ownership_date.and_then(|d| u32::try_from((now - d).num_days().max(0)).ok()),
        key_statistics: serde_json::from_value(initiation.details["keyStatistics"].clone()).ok(),
        owner_statistics: None,
        counterparty_type: policy_person(destination.person_type),
        first_time_counterparty: month.with_counterparty == 0,
        account_age_days: days_since(account.holder.opening_date.as_deref(), now).unwrap_or(0),
        velocity: velocity(&hour, &day),
        local_time,
    };
    let (fraud, fraud_sha) = state.policies.decide::<Fraud>(tenant.id, &fraud_input).await;
    let fee_input = FeeInput {
        operation: Operation::CashOut,
        initiation: match initiation.initiation_type.as_str() {
            "KEY" => PolicyInitiation::Key,
            "QR_CODE" => PolicyInitiation::QrCode,
            _ => PolicyInitiation::Manual,
        },
        purpose,
        amount: initiation.amount,
        payer_type: policy_person(account.holder.person_type),
        payee_type: policy_person(destination.person_type),
        account_segment: account_segment(&account.ledger),
        intra_psp: false,
        local_time,
        month_count: sat(month.count),
        month_volume: month.volume,
    };
    let (fee, fee_sha) = state.policies.decide::<Fee>(tenant.id, &fee_input).await;
    let fee_amount = fee.fee.max(0);
    if fee.charge == FeeCharge::Deducted && fee_amount >= initiation.amount {
        return Err(ApiError::new(ErrorCode::InvalidField, "the fee would take the whole amount"));
    }
    let ledger_alias = account
        .ledger
        .alias
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::AccountNotFound, "the paying account has no Midaz alias"))?;
    let holder = &account.holder;
    let mut transfer = Transfer {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: account.id,
        direction: "CASHOUT".into(),
        status: "PENDING".into(),
        step: "NEW".into(),
        end_to_end_id: initiation.end_to_end_id.clone(),
        initiation_id: Some(initiation.id),
        amount: initiation.amount,
        fee: fee_amount,
        purpose: purpose_name(purpose).into(),
        is_intra_psp: false,
        counterparty: Some(destination.tax_id.clone()),
        ledger_tx_id: None,
        failure_code: None,
        failure_reason: None,
        details: json!({
            "counterparty": destination,
            "initiationType": initiation.initiation_type,
            "initiationMethod": method,
            "description": initiation.details["description"],
            "txId": initiation.details["txId"],
            "ledgerAlias": ledger_alias,
            "debtor": {"branch": holder.branch, "account": holder.account_number, "accountType": holder.account_type,
                       "taxId": holder.document, "name": holder.name},
            "fee": {"account": fee.fee_account, "charge": fee.charge, "label": fee.label, "policySha256": fee_sha},
            "fraud": fraud_details(&fraud, &fraud_sha),
        }),
        version: 0,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    match fraud.action {
        FraudAction::Block => {
            fail(&mut transfer, "FRAUD_BLOCKED", format!("blocked by fraud triage: {}", fraud.reasons.join(", ")), now)
        }
        FraudAction::Review => transfer.status = "IN_REVIEW".into(),
        FraudAction::Allow => {}
    }
    let mut tx = state.store.begin().await?;
    match insert_transfer(&mut tx, &transfer).await {
        Err(pix_store::StoreError::Conflict(_)) => return Err(already_processed()),
        other => other?,
    }
    if transfer.status == "PENDING" {
        // The outbox entry: if this request dies after the hold, the job finishes the transfer.
        enqueue(&mut tx, &advance_job(&transfer, now + chrono::Duration::seconds(INLINE_GRACE_SECS)), now).await?;
    }
    record_event(&mut tx, &transfer, now).await?;
    tx.commit().await?;
    tracing::info!(transfer = %transfer.id, status = %transfer.status, score = fraud.score, "cash-out accepted for processing");

    if transfer.status == "PENDING" {
        transfer = run_inline(&state, &tenant, transfer).await?;
        if transfer.failure_code.as_deref() == Some(INSUFFICIENT_BALANCE) {
            return Err(ApiError::new(
                ErrorCode::InsufficientBalance,
                "the account's available balance does not cover the amount and fee; nothing was held",
            ));
        }
    }
    Ok((StatusCode::CREATED, Json(TransferView::from(&transfer))).into_response())
}

fn already_processed() -> ApiError {
    ApiError::new(ErrorCode::InitiationAlreadyProcessed, "this initiation was already processed")
}

const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";

pub(super) fn advance_job(t: &Transfer, run_at: DateTime<Utc>) -> NewJob {
    let mut job = NewJob::new(TRANSFERS_QUEUE, ADVANCE_CASHOUT, json!({"tenantId": t.tenant_id, "transferId": t.id}))
        .with_tenant(t.tenant_id)
        .with_ordering_key(format!("transfer:{}", t.id));
    job.run_at = Some(run_at);
    // Money may be on hold: keep trying for days (the delay is capped), never give up quietly.
    job.max_attempts = 200;
    job
}

fn policy_key_type(t: &str) -> Option<KeyType> {
    Some(match t {
        "CPF" => KeyType::Cpf,
        "CNPJ" => KeyType::Cnpj,
        "PHONE" => KeyType::Phone,
        "EMAIL" => KeyType::Email,
        "EVP" => KeyType::Evp,
        _ => return None,
    })
}

// ------------------------------------------------------------------------------------ steps

/// Why a step stopped short.
pub(super) enum Step {
    /// The upstream's answer was lost or it is down: the same idempotent step must run again.
    Unknown(String),
    Store(ApiError),
}

impl From<ApiError> for Step {
    fn from(e: ApiError) -> Step {
        Step::Store(e)
    }
}

impl From<pix_store::StoreError> for Step {
    fn from(e: pix_store::StoreError) -> Step {
        Step::Store(e.into())
    }
}

/// Runs the steps right away, after the transfer and its safety job were committed: an
/// unknown outcome is left to that job, and the caller gets the transfer as it stands.
pub(super) async fn run_inline(state: &AppState, tenant: &Tenant, t: Transfer) -> ApiResult<Transfer> {
    match advance(state, tenant, t.clone()).await {
        Ok(t) => Ok(t),
        Err(Step::Unknown(e)) => {
            tracing::warn!(transfer = %t.id, error = %e, "cash-out step outcome unknown; left to the worker");
            Ok(state.store.transfer(tenant.id, t.id).await?.unwrap_or(t))
        }
        Err(Step::Store(e)) => Err(e),
    }
}

/// Moves a cash-out forward from wherever it stopped, until it waits for BTG or is final.
pub(super) async fn advance(state: &AppState, tenant: &Tenant, mut t: Transfer) -> Result<Transfer, Step> {
    let clients = state.integrations.for_tenant(tenant)?;
    loop {
        let now = state.clock.now();
        let saved = match (t.status.as_str(), t.step.as_str()) {
            ("PENDING", "NEW") => match place_hold(&*clients.ledger, &t).await {
                Ok(ledger_tx) => {
                    t.ledger_tx_id = Some(ledger_tx);
                    t.step = "HELD".into();
                    save_quietly(state, &mut t).await?
                }
                Err(e) if is_definite(&e) => {
                    let (code, reason) = match e.code() {
                        Some("0018") => (INSUFFICIENT_BALANCE, "insufficient balance".to_owned()),
                        _ => ("LEDGER_REJECTED", e.to_string()),
                    };
                    fail(&mut t, code, reason, now);
                    t.step = "RELEASED".into();
                    save_with_event(state, &mut t).await?
                }
                Err(e) => return Err(Step::Unknown(e.to_string())),
            },
            ("PENDING", "HELD") => match clients.btg.initiate_payment(&payment_order(&t)?, &t.id.to_string()).await {
                Ok(_) => {
                    t.status = "PROCESSING".into();
                    t.step = "SENT".into();
                    save_with_event(state, &mut t).await?
                }
                Err(IntegrationError::Conflict { code, .. }) if code == "DUPLICATE_END_TO_END_ID" => {
                    // BTG has it from an earlier attempt whose answer was lost.
                    t.status = "PROCESSING".into();
                    t.step = "SENT".into();
                    save_with_event(state, &mut t).await?
                }
                Err(e) if is_definite(&e) => {
                    release_hold(&*clients.ledger, &t).await?;
                    fail(&mut t, "BTG_REJECTED", e.to_string(), now);
                    t.step = "RELEASED".into();
                    save_with_event(state, &mut t).await?
                }
                Err(e) => return Err(Step::Unknown(e.to_string())),
            },
            _ => return Ok(t),
        };
        if !saved {
            // Someone else (a webhook, the job) moved it: continue from what they wrote.
            t = state
                .store
                .transfer(t.tenant_id, t.id)
                .await?
                .ok_or_else(|| Step::Unknown("transfer vanished".into()))?;
        }
    }
}

/// Saves a step that clients do not see (no event).
async fn save_quietly(state: &AppState, t: &mut Transfer) -> Result<bool, Step> {
    t.updated_at = state.clock.now();
    let mut tx = state.store.begin().await?;
    if !pix_store::transfers::save_transfer(&mut tx, t).await? {
        return Ok(false);
    }
    tx.commit().await?;
    t.version += 1;
    Ok(true)
}

/// The pending Midaz transaction: the customer's amount (plus an on-top fee) on hold, destined
/// to `@external/BRL` (what leaves) and the fee account (what the institution keeps).
async fn place_hold(ledger: &dyn pix_integrations::Ledger, t: &Transfer) -> Result<String, IntegrationError> {
    let alias = t.details["ledgerAlias"].as_str().unwrap_or_default();
    let fee_account = t.details["fee"]["account"].as_str().unwrap_or_default();
    let deducted = t.details["fee"]["charge"] == json!(FeeCharge::Deducted);
    let (debit, sent) = if deducted { (t.amount, t.amount - t.fee) } else { (t.amount + t.fee, t.amount) };
    let leg = |alias: &str, centavos: i64| Leg::amount(alias, ASSET, UpstreamMoney::from_centavos(centavos));
    let mut to = vec![leg(EXTERNAL, sent)];
    if t.fee > 0 {
        to.push(leg(fee_account, t.fee));
    }
    let request = TransactionRequest::transfer(ASSET, vec![leg(alias, debit)], to)
        .pending()
        .description(format!("Pix cash-out {}", t.end_to_end_id))
        .code(t.end_to_end_id.clone());
    let tx = ledger.create_transaction(&request, &super::ledger_key(format!("cashout-hold-{}", t.id))).await?;
    Ok(tx.id)
}

/// Cancels the hold (idempotent); an unknown outcome is retried.
async fn release_hold(ledger: &dyn pix_integrations::Ledger, t: &Transfer) -> Result<(), Step> {
    if let Some(id) = &t.ledger_tx_id {
        ledger.cancel(id).await.map_err(|e| Step::Unknown(format!("releasing the hold: {e}")))?;
    }
    Ok(())
}

/// What BTG receives: what leaves the customer's account, net of a deducted fee.
fn payment_order(t: &Transfer) -> Result<PaymentOrder, Step> {
    let corrupt = |what: &str| Step::Store(ApiError::internal(format!("transfer {} lacks {what}", t.id)));
    let d = &t.details;
    let destination: Destination =
        serde_json::from_value(d["counterparty"].clone()).map_err(|_| corrupt("counterparty"))?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let account_type = |v: &Value| -> AccountType { serde_json::from_value(v.clone()).unwrap_or(AccountType::Cacc) };
    let deducted = d["fee"]["charge"] == json!(FeeCharge::Deducted);
    Ok(PaymentOrder {
        end_to_end_id: t.end_to_end_id.clone(),
        amount: UpstreamMoney::from_centavos(if deducted { t.amount - t.fee } else { t.amount }),
        transaction_type: match t.purpose.as_str() {
            "INSTANT_PAYMENT_REFUND" => TransactionType::InstantPaymentRefund,
            _ => TransactionType::Transfer,
        },
        initiation_type: match d["initiationMethod"].as_str() {
            Some("DICT") => InitiationType::Dict,
            Some("STATIC_QRCODE") => InitiationType::StaticQrcode,
            Some("DYNAMIC_QRCODE") => InitiationType::DynamicQrcode,
            _ => InitiationType::Manual,
        },
        debtor: Debtor {
            branch: text(&d["debtor"]["branch"]),
            account: text(&d["debtor"]["account"]),
            account_type: account_type(&d["debtor"]["accountType"]),
            tax_id: text(&d["debtor"]["taxId"]),
            name: text(&d["debtor"]["name"]),
        },
        creditor: Creditor {
            ispb: destination.ispb,
            branch: destination.branch,
            account: destination.account,
            account_type: account_type(&json!(destination.account_type)),
            tax_id: destination.tax_id,
            name: destination.name,
            key: destination.key,
        },
        remittance_information: d["description"].as_str().map(str::to_owned),
        txid: d["txId"].as_str().map(str::to_owned),
    })
}

// --------------------------------------------------------------------------------- the job

/// Finishes a cash-out the request could not (the outbox's consumer).
pub struct AdvanceCashout(pub AppState);

impl JobHandler for AdvanceCashout {
    fn handle<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            let field = |name: &str| {
                job.payload[name]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| JobError::Permanent(format!("advance job lacks {name}")))
            };
            let (tenant_id, transfer_id) = (field("tenantId")?, field("transferId")?);
            let state = &self.0;
            let tenant = state
                .store
                .tenant(tenant_id)
                .await
                .map_err(retry)?
                .ok_or_else(|| JobError::Permanent("tenant gone".into()))?;
            let Some(transfer) = state.store.transfer(tenant_id, transfer_id).await.map_err(retry)? else {
                return Err(JobError::Permanent(format!("transfer {transfer_id} not found")));
            };
            match advance(state, &tenant, transfer).await {
                Ok(_) => Ok(()),
                Err(Step::Unknown(e)) => Err(JobError::Retry(e)),
                Err(Step::Store(e)) => Err(JobError::Retry(e.to_string())),
            }
        })
    }
}

// ------------------------------------------------------------------------- PIX_PAYMENT events

/// BTG's verdict on one of our cash-outs: CONFIRMED commits the hold, REJECTED releases it.
/// Duplicates and stale events (a PROCESSING after the verdict) change nothing.
pub struct PaymentEvents(pub AppState);

impl InboundHandler for PaymentEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::Payment(payment) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_PAYMENT event without a payment".into()));
            };
            settle(&self.0, event.tenant_id, &payment).await
        })
    }
}

async fn settle(state: &AppState, tenant_id: Uuid, payment: &Payment) -> Result<(), JobError> {
    let tenant =
        state.store.tenant(tenant_id).await.map_err(retry)?.ok_or_else(|| JobError::Permanent("tenant gone".into()))?;
    let clients = state.integrations.for_tenant(&tenant).map_err(retry)?;
    loop {
        let Some(mut t) =
            state.store.transfer_by_end_to_end_id(tenant_id, "CASHOUT", &payment.end_to_end_id).await.map_err(retry)?
        else {
            tracing::warn!(end_to_end_id = %payment.end_to_end_id, "PIX_PAYMENT for an unknown cash-out; ignored");
            return Ok(());
        };
        let now = state.clock.now();
        if t.is_final() {
            let contradicts = matches!(
                (payment.status, t.status.as_str()),
                (PaymentStatus::Confirmed, "FAILED") | (PaymentStatus::Rejected, "COMPLETED")
            );
            if contradicts {
                // Money and ledger disagree: an operator must look (unblock re-reads BTG).
                metrics::counter!("pix_transfer_contradictions_total").increment(1);
                tracing::error!(transfer = %t.id, btg = %payment.status.as_str(), local = %t.status, "BTG contradicts a final cash-out");
            }
            return Ok(());
        }
        let Some(hold) = t.ledger_tx_id.clone() else {
            return Err(JobError::Retry(format!("cash-out {} has no hold yet", t.id)));
        };
        match payment.status {
            PaymentStatus::Processing if t.step == "HELD" => {
                t.status = "PROCESSING".into();
                t.step = "SENT".into();
            }
            PaymentStatus::Processing => return Ok(()),
            PaymentStatus::Confirmed => {
                clients.ledger.commit(&hold).await.map_err(|e| JobError::Retry(format!("committing the hold: {e}")))?;
                t.status = "COMPLETED".into();
                t.step = "SETTLED".into();
                t.completed_at = Some(payment.settled_at.unwrap_or(now));
            }
            PaymentStatus::Rejected => {
                clients.ledger.cancel(&hold).await.map_err(|e| JobError::Retry(format!("releasing the hold: {e}")))?;
                let code = payment.rejection_code.clone().unwrap_or_else(|| "BTG_REJECTED".into());
                let reason = payment.rejection_reason.clone().unwrap_or_else(|| "rejected by SPI".into());
                fail(&mut t, &code, reason, now);
                t.step = "RELEASED".into();
            }
        }
        if save_with_event(state, &mut t).await.map_err(retry)? {
            tracing::info!(transfer = %t.id, status = %t.status, "cash-out settled by BTG");
            return Ok(());
        }
    }
}
