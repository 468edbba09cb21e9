//! Cash-in: BTG's `PIX_PAYMENT_INBOUND`. The payment is approved (the account exists, is open
//! and may receive, the key belongs to it, the cash-in acceptance and fraud-triage policies
//! agree) and credited in Midaz from `@external/BRL` net of the fee policy's fee, or it is
//! refused at BTG with the reason code. The transfer row is written before either effect, so a
//! redelivered event or the sweeper resumes from it and never credits twice.

use pix_core::clock::brasilia_month_start;
use pix_core::collection::PaymentMismatch;
use pix_core::dict::EntryStatus;
use pix_core::document::PersonType;
use pix_core::ids::new_id;
use pix_core::transfer::{
    AcceptanceRecord, CashinEvent, CashinState, Counterparty, CreditedAccount, Direction, Failure, FeeApplied,
    FraudAction, InitiationMethod, LedgerTxId, Purpose, TransferDetails, TransferState,
};
use pix_integrations::IntegrationError;
use pix_integrations::btg::{InboundPayment, InboundRefusal};
use pix_integrations::midaz::TransactionRequest;
use pix_policy::{
    AccountStatus, CashinDecision, CashinInput, DocumentType, FeeInput, FraudInput, Initiation, Operation,
};
use pix_store::StoreError;
use pix_store::tenants::Tenant;
use pix_store::transfers::{Transfer, account_activity, insert_transfer};
use uuid::Uuid;

use super::limits::TenantLimits;
use super::{
    EXTERNAL, Notify, account_segment, days_since, fee_account, fraud_verdict, ledger_alias, ledger_blocked,
    ledger_key, leg, policy_person, reload, sat, save, start_of_day, velocity,
};
use crate::{App, AppError, AppResult, TenantClients};

/// A refusal: our reason code, the pacs.002 reason for SPI, and a message.
struct Refusal {
    failure: Failure,
    spi_reason: String,
}

impl Refusal {
    fn new(code: &str, spi_reason: &str, message: impl Into<String>) -> Refusal {
        Refusal { failure: Failure::new(code, message), spi_reason: spi_reason.into() }
    }
}

/// The credited account, as approval found it.
struct Payee {
    account_id: Uuid,
    ledger_alias: String,
    /// The Midaz account (status, blocked flag, segment metadata).
    ledger: pix_integrations::midaz::LedgerAccount,
    holder: pix_integrations::AccountHolder,
}

/// A `PIX_PAYMENT_INBOUND` webhook: approve and credit, or refuse; idempotent per EndToEndId.
pub async fn receive(app: &App, tenant: &Tenant, p: &InboundPayment) -> AppResult<()> {
    let clients = app.upstreams.for_tenant(tenant)?;
    receive_payment(app, &clients, tenant, p, false).await.map(drop)
}

/// Approves and credits, or refuses, a payment received from BTG or (`intra_psp`) from one of
/// the institution's own accounts; returns the cash-in as it ends. An intra-PSP refusal is
/// settled by the payer's side (its debit reverted), never at BTG.
pub(super) async fn receive_payment(
    app: &App,
    clients: &TenantClients,
    tenant: &Tenant,
    p: &InboundPayment,
    intra_psp: bool,
) -> AppResult<Transfer> {
    if let Some(existing) = app.store.transfer_by_end_to_end_id(tenant.id, Direction::Cashin, &p.end_to_end_id).await? {
        return finish(app, clients, existing).await;
    }
    let now = app.clock.now();
    let payee = find_payee(app, clients, tenant, p).await?;
    let mut transfer = Transfer {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: payee.as_ref().map_or(Uuid::nil(), |p| p.account_id),
        state: TransferState::Cashin(CashinState::Accepted),
        end_to_end_id: p.end_to_end_id.clone(),
        initiation_id: None,
        amount: p.amount.centavos(),
        fee: 0,
        purpose: Purpose::Transfer,
        is_intra_psp: intra_psp,
        counterparty: Some(p.debtor.tax_id.clone()),
        details: TransferDetails {
            counterparty: Counterparty {
                ispb: p.debtor_ispb.clone(),
                branch: p.debtor.branch.clone(),
                account: p.debtor.account.clone(),
                account_type: p.debtor.account_type.as_str().to_owned(),
                tax_id: p.debtor.tax_id.clone(),
                name: p.debtor.name.clone(),
                person_type: None,
                key: None,
                key_type: None,
                key_ownership_date: None,
            },
            initiation_type: None,
            initiation_method: p.initiation_type.as_str().parse().unwrap_or(InitiationMethod::Manual),
            description: p.remittance_information.clone(),
            tx_id: p.txid.clone(),
            ledger_alias: None,
            debtor: None,
            creditor: Some(CreditedAccount {
                branch: p.creditor.branch.clone(),
                account: p.creditor.account.clone(),
                key: p.creditor.key.clone(),
            }),
            fee: None,
            fraud: None,
            review: None,
            acceptance: None,
            spi_reason: None,
            incident: None,
            process_key: None,
        },
        version: 0,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    let verdict = match payee {
        Err(refusal) => Err(refusal),
        Ok(payee) => approve(app, clients, tenant, p, &payee, &mut transfer).await?.map(|()| payee),
    };
    match verdict {
        Ok(payee) => transfer.details.ledger_alias = Some(payee.ledger_alias),
        Err(r) => {
            transfer.details.spi_reason = Some(r.spi_reason);
            transfer.state = TransferState::Cashin(CashinState::Refusing { failure: r.failure });
            transfer.completed_at = Some(now);
        }
    }
    let mut tx = app.store.begin().await?;
    match insert_transfer(&mut tx, &transfer).await {
        Ok(()) => tx.commit().await?,
        Err(StoreError::Conflict(_)) => {
            // A concurrent delivery of the same payment got there first: resume its row.
            drop(tx);
            let existing = app.store.transfer_by_end_to_end_id(tenant.id, Direction::Cashin, &p.end_to_end_id).await?;
            return match existing {
                Some(t) => finish(app, clients, t).await,
                None => Err(AppError::Unknown("cash-in conflict without a row".into())),
            };
        }
        Err(e) => return Err(e.into()),
    }
    finish(app, clients, transfer).await
}

fn retry(what: &'static str) -> impl FnOnce(IntegrationError) -> AppError {
    AppError::upstream(what)
}

/// The Midaz account behind the creditor's branch and account, with its key checked.
async fn find_payee(
    app: &App,
    clients: &TenantClients,
    tenant: &Tenant,
    p: &InboundPayment,
) -> AppResult<Result<Payee, Refusal>> {
    let invalid = |m: &str| Ok(Err(Refusal::new("RECIPIENT_ACCOUNT_INVALID", "AC03", m)));
    let alias = match clients.holders.alias_by_banking_details(&p.creditor.branch, &p.creditor.account).await {
        Ok(alias) => alias,
        Err(IntegrationError::NotFound { .. }) => return invalid("no account with this branch and number"),
        Err(e) => return Err(retry("finding the credited account")(e)),
    };
    let Ok(account_id) = Uuid::parse_str(&alias.account_id) else {
        return invalid("the CRM alias has a malformed account id");
    };
    if let Some(key) = &p.creditor.key {
        let owned = match app.store.live_dict_entry_by_key(tenant.id, key).await? {
            Some(entry) => entry.status == EntryStatus::Active && entry.account_id == Some(account_id),
            // Keys registered outside this host: ask DICT whose they are.
            None => match clients.btg.entry(key).await {
                Ok(entry) => entry.account.branch == p.creditor.branch && entry.account.number == p.creditor.account,
                Err(IntegrationError::NotFound { .. }) => false,
                Err(e) => return Err(retry("checking the key at DICT")(e)),
            },
        };
        if !owned {
            return Ok(Err(Refusal::new(
                "PIX_KEY_OWNERSHIP_INVALID",
                "AC03",
                "the key does not belong to the credited account",
            )));
        }
    }
    // Holders are cached; whether the account is still open must be read fresh.
    clients.holders.invalidate(&alias.account_id);
    let holder = match clients.holders.account_holder(&alias.account_id).await {
        Ok(holder) => holder,
        Err(IntegrationError::NotFound { .. }) => return invalid("the account has no holder in CRM"),
        Err(e) => return Err(retry("reading the holder")(e)),
    };
    let ledger = match clients.ledger.account(&alias.account_id).await {
        Ok(ledger) => ledger,
        Err(IntegrationError::NotFound { .. }) => return invalid("the account is not in the ledger"),
        Err(e) => return Err(retry("reading the ledger account")(e)),
    };
    let Some(ledger_alias) = ledger.alias.clone() else {
        return invalid("the ledger account has no alias");
    };
    Ok(Ok(Payee { account_id, ledger_alias, ledger, holder }))
}

/// Account state, balance rules and the two policies; on acceptance, the fee is set on `t`.
async fn approve(
    app: &App,
    clients: &TenantClients,
    tenant: &Tenant,
    p: &InboundPayment,
    payee: &Payee,
    t: &mut Transfer,
) -> AppResult<Result<(), Refusal>> {
    let now = app.clock.now();
    // A txid naming one of our collections must pay it as it stood when the payment settled (it
    // is concluded when this cash-in is credited, in `transfers::save`).
    let settled_at = p.settled_at;
    if let Some(tx_id) = &p.txid
        && let Err(mismatch) = crate::collections::check_cashin(app, tenant.id, tx_id, p.amount, settled_at).await?
    {
        let spi_reason = if matches!(mismatch, PaymentMismatch::WrongAmount { .. }) { "AM09" } else { "AG03" };
        return Ok(Err(Refusal::new("COLLECTION_INVALID", spi_reason, format!("txId {tx_id}: {mismatch}"))));
    }
    let account = payee.account_id.to_string();
    let ledger = &payee.ledger;
    let payee_status = if !payee.holder.is_open_on(now.date_naive()) {
        AccountStatus::Closed
    } else if ledger_blocked(ledger) {
        AccountStatus::Blocked
    } else {
        AccountStatus::Active
    };
    let balances = clients.ledger.balances(&account).await.map_err(retry("reading balances"))?;
    if balances.iter().any(|b| b.key == "default" && !b.allow_receiving) {
        return Ok(Err(Refusal::new("RECIPIENT_CANNOT_RECEIVE", "AG03", "the account may not receive")));
    }
    let windows = [now - chrono::Duration::hours(1), start_of_day(now), brasilia_month_start(now)];
    let ([hour, day, month], limits) = {
        let mut tx = app.store.begin().await?;
        let limits = TenantLimits::read(app, &mut tx, tenant.id).await?;
        let activity =
            account_activity(&mut tx, tenant.id, payee.account_id, Direction::Cashin, windows, Some(&p.debtor.tax_id))
                .await?;
        tx.commit().await?;
        (activity, limits)
    };
    let payer_type = if p.debtor.tax_id.len() == 11 { PersonType::Natural } else { PersonType::Legal };
    let local_time = super::sao_paulo(now);
    let input = CashinInput {
        amount: t.amount,
        payee_status,
        payee_type: policy_person(payee.holder.person_type),
        payer_ispb: p.debtor_ispb.clone(),
        payer_document_type: if payer_type == PersonType::Natural { DocumentType::Cpf } else { DocumentType::Cnpj },
        same_owner: p.debtor.tax_id == payee.holder.document,
        intra_psp: t.is_intra_psp,
        local_time,
        day_count: sat(day.count),
        day_volume: day.volume,
    };
    let acceptance = app.policies.cashin(tenant.id, &input).await;
    t.details.acceptance = Some(AcceptanceRecord {
        accepted: acceptance.output == CashinDecision::Accept,
        policy_sha256: acceptance.policy_sha256.clone(),
    });
    if let CashinDecision::Deny { code, spi_reason, message } = acceptance.output {
        return Ok(Err(Refusal { failure: Failure::new(code, message), spi_reason }));
    }
    let fraud_input = FraudInput {
        direction: pix_policy::Direction::CashIn,
        amount: t.amount,
        key_type: None,
        key_age_days: None,
        key_statistics: None,
        owner_statistics: None,
        counterparty_type: policy_person(payer_type),
        first_time_counterparty: day.with_counterparty == 0,
        account_age_days: days_since(payee.holder.opening_date.as_deref(), now).unwrap_or(0),
        velocity: velocity(&hour, &day),
        local_time,
        account_segment: account_segment(ledger),
    };
    let fraud = app.policies.fraud(tenant.id, &fraud_input).await;
    t.details.fraud = Some(fraud_verdict(&fraud.output, &fraud.policy_sha256));
    if fraud.output.action == FraudAction::Block {
        // The money already settled at BTG: a cash-in is refused, never held for review.
        return Ok(Err(Refusal::new(
            "FRAUD_BLOCKED",
            "FRAD",
            format!("blocked by fraud triage: {}", fraud.output.reasons.join(", ")),
        )));
    }
    let fee_input = FeeInput {
        operation: if t.is_intra_psp { Operation::IntraPsp } else { Operation::CashIn },
        initiation: match p.initiation_type.as_str() {
            "MANUAL" => Initiation::Manual,
            "STATIC_QRCODE" | "DYNAMIC_QRCODE" => Initiation::QrCode,
            _ => Initiation::Key,
        },
        purpose: pix_policy::Purpose::Transfer,
        amount: t.amount,
        payer_type: policy_person(payer_type),
        payee_type: policy_person(payee.holder.person_type),
        account_segment: account_segment(ledger),
        intra_psp: t.is_intra_psp,
        local_time,
        month_count: sat(month.count),
        month_volume: month.volume,
    };
    let fee = app.policies.fee(tenant.id, &fee_input, &limits.fee_check()).await;
    // A cash-in's amount is fixed by the payer: every fee comes out of what is credited.
    t.fee = fee.output.fee.clamp(0, t.amount);
    t.details.fee = Some(FeeApplied {
        account: fee.output.fee_account.clone(),
        charge: fee.output.charge,
        label: fee.output.label.clone(),
        policy_sha256: fee.policy_sha256,
    });
    Ok(Ok(()))
}

fn cashin_state(t: &Transfer) -> AppResult<&CashinState> {
    match &t.state {
        TransferState::Cashin(s) => Ok(s),
        TransferState::Cashout(_) => Err(AppError::Internal(format!("transfer {} is not a cash-in", t.id))),
    }
}

/// Credits an accepted cash-in, or refuses a denied one at BTG; idempotent.
pub async fn finish(app: &App, clients: &TenantClients, mut t: Transfer) -> AppResult<Transfer> {
    loop {
        let now = app.clock.now();
        let state = cashin_state(&t)?.clone();
        let event = match &state {
            CashinState::Accepted => match credit(clients, &t).await {
                Ok(credit) => CashinEvent::Credited(credit),
                Err(AppError::Upstream { source, .. }) if source.is_definite() => {
                    t.details.spi_reason = Some("AG03".into());
                    CashinEvent::CreditFailed(Failure::new("INTERNAL_CREDIT_FAILED", source.to_string()))
                }
                Err(e) => return Err(e),
            },
            // The payer is ours: its debit is reverted by the cash-out's side (`intra::settle`).
            CashinState::Refusing { .. } if t.is_intra_psp => CashinEvent::RefusalAccepted,
            CashinState::Refusing { failure } => {
                let refusal = InboundRefusal {
                    reason_code: t.details.spi_reason.clone().unwrap_or_else(|| "AG03".into()),
                    reason: failure.code.clone(),
                    description: Some(failure.reason.clone()),
                };
                match clients.btg.refuse_inbound_payment(&t.end_to_end_id, &refusal).await {
                    Ok(_) => CashinEvent::RefusalAccepted,
                    Err(e) if e.is_definite() => {
                        // BTG would not take the money back: an operator must settle it.
                        metrics::counter!("pix_cashin_refusal_failures_total").increment(1);
                        tracing::error!(transfer = %t.id, error = %e, "BTG refused our cash-in refusal");
                        CashinEvent::RefusalRefused
                    }
                    Err(e) => return Err(retry("refusing the cash-in")(e)),
                }
            }
            _ => return Ok(t),
        };
        t.state = TransferState::Cashin(state.on(event)?);
        if t.completed_at.is_none() {
            t.completed_at = Some(now);
        }
        if save(app, &mut t, Notify::Event).await? {
            tracing::info!(transfer = %t.id, status = %t.status(), step = %t.state.step(), "cash-in processed");
            continue;
        }
        t = reload(app, &t).await?;
    }
}

/// The Midaz credit: `@external/BRL` → the customer (net of the fee) and the fee account.
async fn credit(clients: &TenantClients, t: &Transfer) -> AppResult<LedgerTxId> {
    let net = t.amount.checked_sub(t.fee).ok_or_else(|| AppError::Internal(format!("transfer {}: fee", t.id)))?;
    let mut to = vec![leg(ledger_alias(t)?, net)];
    if t.fee > 0 {
        to.push(leg(fee_account(&t.details), t.fee));
    }
    let request = TransactionRequest::transfer(super::ASSET, vec![leg(EXTERNAL, t.amount)], to)
        .description(format!("Pix cash-in {}", t.end_to_end_id))
        .code(t.end_to_end_id.clone());
    let tx = clients
        .ledger
        .create_transaction(&request, &ledger_key(format!("cashin-{}", t.id)))
        .await
        .map_err(retry("crediting the cash-in"))?;
    Ok(LedgerTxId(tx.id))
}
