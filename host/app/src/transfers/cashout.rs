//! Cash-out: admission (`process`), the money steps (Midaz hold → BTG payment), and BTG's verdict
//! (a webhook, or the state read back from BTG) that commits or releases the hold.
//!
//! Durable writes on the fast path: the admission (transfer + event, one transaction) and the
//! SENT step (+ event). The HELD step is not saved on its own: the hold is placed with a key
//! derived from the transfer, so whoever finds the transfer at NEW (a webhook that overtook the
//! request, the sweeper) places it again and gets the same Midaz transaction.

use chrono::{DateTime, Utc};
use pix_core::clock::brasilia_month_start;
use pix_core::error::ErrorCode;
use pix_core::ids::new_id;
use pix_core::transfer::{
    CashoutEvent, CashoutState, Debtor, Direction, Failure, FeeApplied, FraudAction, IncidentKind, InitiationMethod,
    InitiationType, LedgerTxId, Purpose, TransferDetails, TransferState,
};
use pix_integrations::btg::{
    AccountType, Creditor, Debtor as BtgDebtor, InitiationType as BtgInitiation, Payment, PaymentOrder, PaymentStatus,
    TransactionType,
};
use pix_integrations::midaz::{TransactionRequest, TransactionStatus};
use pix_integrations::{IntegrationError, Money as UpstreamMoney};
use pix_policy::{FeeInput, FraudInput, Initiation as PolicyInitiation, KeyType, Operation};
use pix_store::tenants::Tenant;
use pix_store::transfers::{
    Activity, Initiation, Transfer, account_activity, admit_account, cashout_initiation, insert_transfer,
};
use uuid::Uuid;

use super::limits::TenantLimits;
use super::{
    EXTERNAL, Notify, account_segment, days_since, fee_account, fraud_verdict, ledger_alias, ledger_blocked,
    ledger_key, ledger_refusal, leg, policy_person, record_event, refuse_short_balance, reload, sat, save, velocity,
};
use crate::ports::FeeCheck;
use crate::{App, AppError, AppResult, CustomerAccount, TenantClients};

/// A request to send an initiated cash-out.
pub struct ProcessCashout<'a> {
    pub tenant: &'a Tenant,
    pub account: &'a CustomerAccount,
    pub initiation_id: Uuid,
    pub purpose: Purpose,
    /// The request's `X-Idempotency` key, recorded on the transfer: a retry of that request after
    /// a crash (the key's lock lapsed before its answer was stored) gets the transfer back.
    pub idempotency_key: Option<&'a str>,
}

/// Admits an initiated cash-out (guards, fraud triage, fee) and runs its money steps inline.
/// Returns the transfer as it stands: PROCESSING once BTG accepted it, PENDING while a step's
/// outcome is unknown (the sweeper finishes it), IN_REVIEW, or FAILED.
pub async fn process(app: &App, req: ProcessCashout<'_>) -> AppResult<Transfer> {
    match admit_and_send(app, &req).await {
        Err(refusal) if refusal.is_permanent() => match retried(app, &req).await? {
            Some(transfer) => answer(transfer),
            None => Err(refusal),
        },
        other => other,
    }
}

/// The transfer this very request (same initiation, same `X-Idempotency` key) created before its
/// answer was lost in a crash. Looked up only once admission refused (already processed, expired
/// since, ...), so the fast path pays nothing for it.
async fn retried(app: &App, req: &ProcessCashout<'_>) -> AppResult<Option<Transfer>> {
    let Some(key) = req.idempotency_key else { return Ok(None) };
    let existing = app.store.transfer_by_initiation(req.tenant.id, req.initiation_id).await?;
    Ok(existing.filter(|t| t.account_id == req.account.id && t.details.process_key.as_deref() == Some(key)))
}

/// What `process` answers for a transfer it admitted: the transfer, or the refusal a hold that
/// found too little balance stands for.
fn answer(transfer: Transfer) -> AppResult<Transfer> {
    let short = "the account's available balance does not cover the amount and fee; nothing was held";
    refuse_short_balance(transfer.state.failure(), short)?;
    Ok(transfer)
}

async fn admit_and_send(app: &App, req: &ProcessCashout<'_>) -> AppResult<Transfer> {
    let &ProcessCashout { tenant, account, initiation_id, .. } = req;
    let now = app.clock.now();
    // One transaction, and first the account's turn: concurrent admissions of one account wait
    // here for each other, so the activity triage reads includes every cash-out admitted before
    // this one. Policies decide inside the turn (microseconds; their decision log is written in
    // the background). A refusal rolls it all back.
    let mut tx = app.store.begin().await?;
    admit_account(&mut tx, tenant.id, account.id, now).await?;
    let initiation = cashout_initiation(&mut tx, tenant.id, account.id, initiation_id).await?.ok_or_else(|| {
        AppError::refused(ErrorCode::InitiationNotFound, "no initiation with this id for this account")
    })?;
    guard(account, &initiation, now)?;
    let limits = TenantLimits::read(app, &mut tx, tenant.id).await?;
    limits.check_amount(initiation.amount)?;
    let fee_check = limits.fee_check();
    let counterparty = initiation.details.destination.tax_id.as_str();
    let activity =
        account_activity(&mut tx, tenant.id, account.id, Direction::Cashout, activity_windows(now), Some(counterparty))
            .await?;
    let transfer = admit(app, req, &initiation, &activity, &fee_check).await?;
    match insert_transfer(&mut tx, &transfer).await {
        Err(pix_store::StoreError::Conflict(_)) => return Err(already_processed()),
        other => other?,
    }
    record_event(&mut tx, &transfer, now).await?;
    tx.commit().await?;
    tracing::info!(transfer = %transfer.id, status = %transfer.status(), "cash-out admitted");
    if transfer.state != TransferState::Cashout(CashoutState::New) {
        return Ok(transfer);
    }
    let clients = app.upstreams.for_tenant(tenant)?;
    let transfer = match advance(app, &clients, transfer.clone()).await {
        Ok(t) => t,
        Err(e) if !e.is_permanent() => {
            tracing::warn!(transfer = %transfer.id, error = %e, "cash-out step outcome unknown; left to the sweeper");
            app.store.transfer(tenant.id, transfer.id).await?.unwrap_or(transfer)
        }
        Err(e) => return Err(e),
    };
    answer(transfer)
}

/// What must hold before anything is decided or held.
fn guard(account: &CustomerAccount, initiation: &Initiation, now: DateTime<Utc>) -> AppResult<()> {
    if ledger_blocked(&account.ledger) || !account.holder.is_open_on(now.date_naive()) {
        return Err(AppError::refused(
            ErrorCode::PayerAccountBlocked,
            "the paying account is blocked or closed; nothing was held",
        ));
    }
    if now >= initiation.expires_at {
        return Err(AppError::refused(
            ErrorCode::InitiationExpired,
            format!("the initiation expired at {}; initiate again", initiation.expires_at.to_rfc3339()),
        ));
    }
    Ok(())
}

fn activity_windows(now: DateTime<Utc>) -> [DateTime<Utc>; 3] {
    [now - chrono::Duration::hours(1), now - chrono::Duration::hours(24), brasilia_month_start(now)]
}

/// Fraud triage and fee over the account's current activity: the transfer to insert.
async fn admit(
    app: &App,
    req: &ProcessCashout<'_>,
    initiation: &Initiation,
    activity: &[Activity; 3],
    fee_check: &FeeCheck<'_>,
) -> AppResult<Transfer> {
    let &ProcessCashout { tenant, account, purpose, idempotency_key, .. } = req;
    let now = app.clock.now();
    let [hour, day, month] = activity;
    let destination = &initiation.details.destination;
    let local_time = super::sao_paulo(now);
    let person =
        |p: Option<pix_core::document::PersonType>| policy_person(p.unwrap_or(pix_core::document::PersonType::Natural));
    let fraud_input = FraudInput {
        direction: pix_policy::Direction::CashOut,
        amount: initiation.amount,
        key_type: destination.key_type.as_deref().and_then(policy_key_type),
        key_age_days: destination.key_ownership_date.and_then(|d| u32::try_from((now - d).num_days().max(0)).ok()),
        key_statistics: initiation.details.key_statistics.clone(),
        owner_statistics: None,
        counterparty_type: person(destination.person_type),
        first_time_counterparty: month.with_counterparty == 0,
        account_age_days: days_since(account.holder.opening_date.as_deref(), now).unwrap_or(0),
        velocity: velocity(hour, day),
        local_time,
        account_segment: account_segment(&account.ledger),
    };
    let fraud = app.policies.fraud(tenant.id, &fraud_input).await;
    let intra_psp = initiation.is_intra_psp;
    let fee_input = FeeInput {
        operation: if intra_psp { Operation::IntraPsp } else { Operation::CashOut },
        initiation: match initiation.initiation_type {
            InitiationType::Key => PolicyInitiation::Key,
            InitiationType::QrCode => PolicyInitiation::QrCode,
            InitiationType::Manual => PolicyInitiation::Manual,
        },
        purpose: match purpose {
            Purpose::Transfer => pix_policy::Purpose::Transfer,
            Purpose::InstantPaymentRefund => pix_policy::Purpose::InstantPaymentRefund,
        },
        amount: initiation.amount,
        payer_type: policy_person(account.holder.person_type),
        payee_type: person(destination.person_type),
        account_segment: account_segment(&account.ledger),
        intra_psp,
        local_time,
        month_count: sat(month.count),
        month_volume: month.volume,
    };
    let fee = app.policies.fee(tenant.id, &fee_input, fee_check).await;
    let fee_amount = fee.output.fee.max(0);
    let alias = account
        .ledger
        .alias
        .clone()
        .ok_or_else(|| AppError::refused(ErrorCode::AccountNotFound, "the paying account has no Midaz alias"))?;
    let holder = &account.holder;
    let details = TransferDetails {
        counterparty: destination.clone(),
        initiation_type: Some(initiation.initiation_type),
        initiation_method: initiation.details.initiation_method,
        description: initiation.details.description.clone(),
        tx_id: initiation.details.tx_id.clone(),
        ledger_alias: Some(alias),
        debtor: Some(Debtor {
            branch: holder.branch.clone(),
            account: holder.account_number.clone(),
            account_type: holder.account_type.clone(),
            tax_id: holder.document.clone(),
            name: holder.name.clone(),
        }),
        creditor: None,
        fee: Some(FeeApplied {
            account: fee.output.fee_account.clone(),
            charge: fee.output.charge,
            label: fee.output.label.clone(),
            policy_sha256: fee.policy_sha256,
        }),
        fraud: Some(fraud_verdict(&fraud.output, &fraud.policy_sha256)),
        review: None,
        acceptance: None,
        spi_reason: None,
        incident: None,
        process_key: idempotency_key.map(str::to_owned),
    };
    if details.cashout_amounts(initiation.amount, fee_amount).is_none() {
        return Err(AppError::refused(ErrorCode::InvalidField, "the fee would take the whole amount"));
    }
    let state = match fraud.output.action {
        FraudAction::Allow => CashoutState::New,
        FraudAction::Review => CashoutState::InReview,
        FraudAction::Block => CashoutState::Released {
            hold: None,
            failure: Failure::new(
                "FRAUD_BLOCKED",
                format!("blocked by fraud triage: {}", fraud.output.reasons.join(", ")),
            ),
        },
    };
    Ok(Transfer {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: account.id,
        completed_at: (state.status().is_final()).then_some(now),
        state: TransferState::Cashout(state),
        end_to_end_id: initiation.end_to_end_id.clone(),
        initiation_id: Some(initiation.id),
        amount: initiation.amount,
        fee: fee_amount,
        purpose,
        is_intra_psp: intra_psp,
        counterparty: Some(destination.tax_id.clone()),
        details,
        version: 0,
        created_at: now,
        updated_at: now,
    })
}

fn already_processed() -> AppError {
    AppError::refused(ErrorCode::InitiationAlreadyProcessed, "this initiation was already processed")
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

pub(super) fn cashout_state(t: &Transfer) -> AppResult<&CashoutState> {
    match &t.state {
        TransferState::Cashout(s) => Ok(s),
        TransferState::Cashin(_) => Err(AppError::Internal(format!("transfer {} is not a cash-out", t.id))),
    }
}

/// Applies `event` to the cash-out `t` (the state machine refuses impossible moves).
pub(super) fn apply(t: &mut Transfer, event: CashoutEvent, now: DateTime<Utc>) -> AppResult<()> {
    let next = cashout_state(t)?.on(event)?;
    if next.status().is_final() && t.completed_at.is_none() {
        t.completed_at = Some(now);
    }
    t.state = TransferState::Cashout(next);
    Ok(())
}

// ------------------------------------------------------------------------------ the steps

/// Moves a cash-out forward from wherever it stopped, until it waits for BTG or is final.
/// An unknown outcome is an `Err` that is not permanent: the same call may be made again.
pub async fn advance(app: &App, clients: &TenantClients, mut t: Transfer) -> AppResult<Transfer> {
    if t.is_intra_psp {
        return super::intra::advance(app, clients, t).await;
    }
    loop {
        let now = app.clock.now();
        let notify = match cashout_state(&t)? {
            CashoutState::New => match place_hold(clients, &t).await {
                Ok(hold) => {
                    // Not saved: placing it again with the same key returns the same hold.
                    apply(&mut t, CashoutEvent::HoldPlaced(hold), now)?;
                    continue;
                }
                Err(AppError::Upstream { source, .. }) if source.is_definite() => {
                    let failure = ledger_refusal(&source);
                    apply(&mut t, CashoutEvent::HoldRefused(failure), now)?;
                    Notify::Event
                }
                Err(e) => return Err(e),
            },
            CashoutState::Held { .. } => match send_payment(clients, &t).await {
                Ok(()) => {
                    apply(&mut t, CashoutEvent::Accepted, now)?;
                    Notify::Event
                }
                Err(e) => {
                    // BTG refused a retry, or its answer was lost: whether the first attempt paid
                    // is unknown, so ask BTG before touching the hold.
                    tracing::warn!(transfer = %t.id, error = %e, "BTG did not accept the payment; reading it back");
                    let refused = matches!(&e, AppError::Upstream { source, .. } if source.is_definite());
                    match read_back(app, clients, &t, refused, now).await {
                        BtgSays::Verdict(verdict) => return on_verdict(app, clients, t, verdict).await,
                        BtgSays::Unknown(why) => {
                            // Keep the hold on record so that the sweeper resumes from here.
                            if save(app, &mut t, Notify::Quiet).await? {
                                return Err(AppError::Unknown(format!("BTG: {e}; read-back: {why}")));
                            }
                            t = reload(app, &t).await?;
                            continue;
                        }
                    }
                }
            },
            _ => return Ok(t),
        };
        if !save(app, &mut t, notify).await? {
            // Someone else (a webhook, the sweeper) moved it: continue from what they wrote.
            t = reload(app, &t).await?;
        }
    }
}

/// The pending Midaz transaction: the customer's amount (plus an on-top fee) on hold, destined
/// to `@external/BRL` (what leaves) and the fee account (what the institution keeps).
async fn place_hold(clients: &TenantClients, t: &Transfer) -> AppResult<LedgerTxId> {
    let request = cashout_legs(t)?
        .pending()
        .description(format!("Pix cash-out {}", t.end_to_end_id))
        .code(t.end_to_end_id.clone());
    let tx = clients
        .ledger
        .create_transaction(&request, &ledger_key(format!("cashout-hold-{}", t.id)))
        .await
        .map_err(AppError::upstream("placing the hold"))?;
    Ok(LedgerTxId(tx.id))
}

/// The cash-out's movement: the customer → `@external/BRL` (+ the fee account).
pub(super) fn cashout_legs(t: &Transfer) -> AppResult<TransactionRequest> {
    let (debited, sent) = t
        .details
        .cashout_amounts(t.amount, t.fee)
        .ok_or_else(|| AppError::Internal(format!("transfer {}: amounts do not add up", t.id)))?;
    let mut to = vec![leg(EXTERNAL, sent)];
    if t.fee > 0 {
        to.push(leg(fee_account(&t.details), t.fee));
    }
    Ok(TransactionRequest::transfer(super::ASSET, vec![leg(ledger_alias(t)?, debited)], to))
}

/// Asks BTG to pay; a DUPLICATE_END_TO_END_ID means an earlier attempt got through.
async fn send_payment(clients: &TenantClients, t: &Transfer) -> AppResult<()> {
    let order = payment_order(t)?;
    match clients.btg.initiate_payment(&order, &t.id.to_string()).await {
        Ok(_) => Ok(()),
        Err(IntegrationError::Conflict { code, .. }) if code == "DUPLICATE_END_TO_END_ID" => Ok(()),
        Err(e) => Err(AppError::Upstream { what: "sending the payment to BTG", source: e }),
    }
}

/// What BTG receives: what leaves the customer's account, net of a deducted fee.
pub(super) fn payment_order(t: &Transfer) -> AppResult<PaymentOrder> {
    let d = &t.details;
    let debtor = d.debtor.as_ref().ok_or_else(|| AppError::Internal(format!("transfer {} lacks a debtor", t.id)))?;
    let (_, sent) =
        d.cashout_amounts(t.amount, t.fee).ok_or_else(|| AppError::Internal(format!("transfer {}: amounts", t.id)))?;
    let account_type = |s: &str| serde_json::from_value(serde_json::json!(s)).unwrap_or(AccountType::Cacc);
    let c = &d.counterparty;
    Ok(PaymentOrder {
        end_to_end_id: t.end_to_end_id.clone(),
        amount: UpstreamMoney::from_centavos(sent),
        transaction_type: match t.purpose {
            Purpose::InstantPaymentRefund => TransactionType::InstantPaymentRefund,
            Purpose::Transfer => TransactionType::Transfer,
        },
        initiation_type: match d.initiation_method {
            InitiationMethod::Dict => BtgInitiation::Dict,
            InitiationMethod::StaticQrcode => BtgInitiation::StaticQrcode,
            InitiationMethod::DynamicQrcode => BtgInitiation::DynamicQrcode,
            InitiationMethod::Manual => BtgInitiation::Manual,
        },
        debtor: BtgDebtor {
            branch: debtor.branch.clone(),
            account: debtor.account.clone(),
            account_type: account_type(&debtor.account_type),
            tax_id: debtor.tax_id.clone(),
            name: debtor.name.clone(),
        },
        creditor: Creditor {
            ispb: c.ispb.clone(),
            branch: c.branch.clone(),
            account: c.account.clone(),
            account_type: account_type(&c.account_type),
            tax_id: c.tax_id.clone(),
            name: c.name.clone(),
            key: c.key.clone(),
        },
        remittance_information: d.description.clone(),
        txid: d.tx_id.clone(),
    })
}

// ------------------------------------------------------------------------- BTG's verdict

/// What BTG says of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Paid (settled at SPI).
    Paid { settled_at: Option<DateTime<Utc>> },
    /// Certainly not paid.
    Refused(Failure),
    /// Accepted, not settled yet.
    InFlight,
}

impl Verdict {
    pub fn of(payment: &Payment) -> Verdict {
        match payment.status {
            PaymentStatus::Confirmed => Verdict::Paid { settled_at: payment.settled_at },
            PaymentStatus::Rejected => Verdict::Refused(Failure::new(
                payment.rejection_code.clone().unwrap_or_else(|| "BTG_REJECTED".into()),
                payment.rejection_reason.clone().unwrap_or_else(|| "rejected by SPI".into()),
            )),
            PaymentStatus::Processing => Verdict::InFlight,
        }
    }
}

/// The outcome of reading a payment back from BTG.
pub(super) enum BtgSays {
    Verdict(Verdict),
    /// Nothing certain yet: try again later, hold untouched.
    Unknown(String),
}

/// Reads the payment back from BTG by EndToEndId. "Not found" counts as never received only
/// when BTG certainly refused our last request (`refused`, a business rejection rather than a
/// timeout or a 5xx) and the cash-out is older than the configured grace; otherwise the
/// payment may still be in flight and the hold stays.
pub(super) async fn read_back(
    app: &App,
    clients: &TenantClients,
    t: &Transfer,
    refused: bool,
    now: DateTime<Utc>,
) -> BtgSays {
    match clients.btg.payment(&t.end_to_end_id).await {
        Ok(payment) => BtgSays::Verdict(Verdict::of(&payment)),
        Err(IntegrationError::NotFound { .. }) if refused && now - t.created_at >= app.settings.btg_not_found_grace => {
            BtgSays::Verdict(Verdict::Refused(Failure::new(
                pix_core::transfer::BTG_NOT_FOUND,
                "BTG has no record of the payment",
            )))
        }
        Err(IntegrationError::NotFound { .. }) => BtgSays::Unknown("BTG has no record of it (yet)".into()),
        Err(e) => BtgSays::Unknown(e.to_string()),
    }
}

/// BTG's verdict on a cash-out, from its webhook or read back: commits or releases the hold.
/// Duplicates and stale verdicts change nothing; a verdict that contradicts a final outcome is
/// checked against BTG and, if BTG stands by it, opens an incident (see `incidents`).
pub async fn on_verdict(app: &App, clients: &TenantClients, mut t: Transfer, verdict: Verdict) -> AppResult<Transfer> {
    loop {
        let now = app.clock.now();
        let state = cashout_state(&t)?.clone();
        let event = match (&state, &verdict) {
            // BTG has it, so the hold was placed; placing it again returns the same one.
            (CashoutState::New, _) => {
                let hold = place_hold(clients, &t).await?;
                apply(&mut t, CashoutEvent::HoldPlaced(hold), now)?;
                continue;
            }
            (CashoutState::Held { hold } | CashoutState::Sent { hold }, Verdict::Paid { settled_at }) => {
                if let Err(e) = clients.ledger.commit(&hold.0).await {
                    if hold_cancelled(clients, hold, &e).await {
                        // A release cancelled the hold and crashed before saving FAILED (an
                        // unblock on a wrong BTG 404, seed 8761), yet BTG paid: re-debit.
                        return super::incidents::contradicted(app, clients, t, IncidentKind::ConfirmedAfterFailed)
                            .await;
                    }
                    return Err(AppError::upstream("committing the hold")(e));
                }
                apply(&mut t, CashoutEvent::Confirmed, now)?;
                t.completed_at = Some(settled_at.unwrap_or(now));
                None
            }
            (CashoutState::Held { hold } | CashoutState::Sent { hold }, Verdict::Refused(failure)) => {
                clients.ledger.cancel(&hold.0).await.map_err(AppError::upstream("releasing the hold"))?;
                Some(CashoutEvent::Rejected(failure.clone()))
            }
            (CashoutState::Held { .. }, Verdict::InFlight) => Some(CashoutEvent::Accepted),
            (CashoutState::Released { .. }, Verdict::Paid { .. }) => {
                return super::incidents::contradicted(app, clients, t, IncidentKind::ConfirmedAfterFailed).await;
            }
            (CashoutState::Settled { .. }, Verdict::Refused(_)) => {
                return super::incidents::contradicted(app, clients, t, IncidentKind::RejectedAfterCompleted).await;
            }
            (CashoutState::InReview, _) => {
                tracing::error!(transfer = %t.id, "BTG has a payment for a cash-out still in review; ignored");
                return Ok(t);
            }
            // Duplicates, stale PROCESSING, and verdicts on incidents already open.
            _ => return Ok(t),
        };
        if let Some(event) = event {
            apply(&mut t, event, now)?;
        }
        if save(app, &mut t, Notify::Event).await? {
            tracing::info!(transfer = %t.id, status = %t.status(), "cash-out verdict applied");
            return Ok(t);
        }
        t = reload(app, &t).await?;
    }
}

/// Whether a commit failed because the hold is already cancelled in Midaz (read back, not
/// guessed from the error): a refusal of that kind (`0099`) is the only one that can mean it.
async fn hold_cancelled(clients: &TenantClients, hold: &LedgerTxId, commit: &IntegrationError) -> bool {
    commit.code() == Some("0099")
        && clients.ledger.transaction(&hold.0).await.is_ok_and(|tx| tx.status() == TransactionStatus::Canceled)
}

/// A `PIX_PAYMENT` webhook: BTG's verdict on one of the tenant's cash-outs.
pub async fn payment_event(app: &App, tenant: &Tenant, payment: &Payment) -> AppResult<()> {
    let Some(t) = app.store.transfer_by_end_to_end_id(tenant.id, Direction::Cashout, &payment.end_to_end_id).await?
    else {
        tracing::warn!(end_to_end_id = %payment.end_to_end_id, "PIX_PAYMENT for an unknown cash-out; ignored");
        return Ok(());
    };
    let clients = app.upstreams.for_tenant(tenant)?;
    on_verdict(app, &clients, t, Verdict::of(payment)).await.map(drop)
}

/// The ledger correction of an incident: a re-debit of what the hold would have taken, or a
/// reversal of the committed hold. Idempotent (keys derived from the transfer).
pub(super) async fn post_correction(
    clients: &TenantClients,
    t: &Transfer,
    kind: IncidentKind,
) -> Result<LedgerTxId, AppError> {
    let tx = match kind {
        IncidentKind::ConfirmedAfterFailed => {
            let request = cashout_legs(t)?
                .description(format!("Pix cash-out {} re-debited: BTG paid it", t.end_to_end_id))
                .code(t.end_to_end_id.clone());
            clients
                .ledger
                .create_transaction(&request, &ledger_key(format!("cashout-redebit-{}", t.id)))
                .await
                .map_err(AppError::upstream("re-debiting the customer"))?
        }
        // Both put back a debit that was committed: revert it (one key, so the normal path's
        // revert and an incident's correction can never both post).
        IncidentKind::RejectedAfterCompleted | IncidentKind::DebitRevertFailed => {
            let hold = cashout_state(t)?
                .hold()
                .ok_or_else(|| AppError::Internal(format!("transfer {} has no committed hold", t.id)))?;
            clients
                .ledger
                .revert(&hold.0, &ledger_key(format!("cashout-revert-{}", t.id)))
                .await
                .map_err(AppError::upstream("reverting the committed hold"))?
        }
    };
    Ok(LedgerTxId(tx.id))
}
