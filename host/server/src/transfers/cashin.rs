//! Cash-in: BTG's `PIX_PAYMENT_INBOUND`. The payment is approved (the account exists, is open
//! and may receive, the key belongs to it, the cash-in acceptance and fraud-triage policies
//! agree) and credited in Midaz from `@external/BRL` net of the fee policy's fee, or it is
//! refused at BTG with the reason code. The transfer row is written before either effect, so a
//! redelivered event or a retried job resumes from it and never credits twice.

use pix_core::clock::brasilia_month_start;
use pix_core::document::PersonType as DocumentPersonType;
use pix_core::ids::new_id;
use pix_integrations::btg::{BtgEvent, InboundPayment, InboundRefusal};
use pix_integrations::midaz::{Leg, TransactionRequest};
use pix_integrations::{IntegrationError, Money as UpstreamMoney};
use pix_policy::{
    AccountStatus, CashinDecision, CashinInput, Direction, DocumentType, FeeInput, FraudAction, FraudInput, Initiation,
    Operation, Purpose,
};
use pix_store::StoreError;
use pix_store::inbound::InboundEvent;
use pix_store::tenants::Tenant;
use pix_store::transfers::{Transfer, insert_transfer};
use serde_json::json;
use uuid::Uuid;

use super::{
    ASSET, EXTERNAL, account_segment, days_since, fail, fraud_details, policy_person, retry, sat, save_with_event,
    start_of_day, velocity,
};
use crate::dict::{decode_event, is_definite};
use crate::inbound::InboundHandler;
use crate::integrations::TenantClients;
use crate::policies::quote::sao_paulo;
use crate::policies::runtime::{Cashin, Fee, Fraud};
use crate::worker::{JobError, JobFuture};

pub struct InboundPayments(pub crate::app::AppState);

impl InboundHandler for InboundPayments {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::PaymentInbound(payment) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_PAYMENT_INBOUND event without a payment".into()));
            };
            receive(&self.0, event.tenant_id, &payment).await
        })
    }
}

/// A refusal: our reason code, the pacs.002 reason for SPI, and a message.
struct Refusal {
    code: String,
    spi_reason: String,
    message: String,
}

impl Refusal {
    fn new(code: &str, spi_reason: &str, message: impl Into<String>) -> Refusal {
        Refusal { code: code.into(), spi_reason: spi_reason.into(), message: message.into() }
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

async fn receive(state: &crate::app::AppState, tenant_id: Uuid, p: &InboundPayment) -> Result<(), JobError> {
    let tenant =
        state.store.tenant(tenant_id).await.map_err(retry)?.ok_or_else(|| JobError::Permanent("tenant gone".into()))?;
    let clients = state.integrations.for_tenant(&tenant).map_err(retry)?;
    if let Some(existing) =
        state.store.transfer_by_end_to_end_id(tenant_id, "CASHIN", &p.end_to_end_id).await.map_err(retry)?
    {
        return finish(state, &clients, existing).await;
    }
    let now = state.clock.now();
    let payee = find_payee(&clients, state, &tenant, p).await?;
    let mut transfer = Transfer {
        id: new_id(),
        tenant_id,
        account_id: payee.as_ref().map_or(Uuid::nil(), |p| p.account_id),
        direction: "CASHIN".into(),
        status: "PENDING".into(),
        step: "NEW".into(),
        end_to_end_id: p.end_to_end_id.clone(),
        initiation_id: None,
        amount: p.amount.centavos(),
        fee: 0,
        purpose: "TRANSFER".into(),
        is_intra_psp: false,
        counterparty: Some(p.debtor.tax_id.clone()),
        ledger_tx_id: None,
        failure_code: None,
        failure_reason: None,
        details: json!({
            "counterparty": {"ispb": p.debtor_ispb, "branch": p.debtor.branch, "account": p.debtor.account,
                             "accountType": p.debtor.account_type.as_str(), "taxId": p.debtor.tax_id,
                             "name": p.debtor.name},
            "creditor": {"branch": p.creditor.branch, "account": p.creditor.account, "key": p.creditor.key},
            "initiationMethod": p.initiation_type.as_str(),
            "description": p.remittance_information,
            "txId": p.txid,
        }),
        version: 0,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    let verdict = match payee {
        Err(refusal) => Err(refusal),
        Ok(payee) => approve(state, &clients, &tenant, p, &payee, &mut transfer).await?.map(|()| payee),
    };
    match verdict {
        Ok(payee) => transfer.details["ledgerAlias"] = json!(payee.ledger_alias),
        Err(r) => {
            transfer.details["spiReason"] = json!(r.spi_reason);
            fail(&mut transfer, &r.code, r.message, now);
        }
    }
    // Hook for dynamic-QR collections: a txid here would conclude the matching charge once
    // collections exist (issue on QR collections); today the txid is only kept on the transfer.
    let mut tx = state.store.begin().await.map_err(retry)?;
    match insert_transfer(&mut tx, &transfer).await {
        Ok(()) => tx.commit().await.map_err(retry)?,
        Err(StoreError::Conflict(_)) => {
            // A concurrent delivery of the same payment got there first: resume its row.
            let existing =
                state.store.transfer_by_end_to_end_id(tenant_id, "CASHIN", &p.end_to_end_id).await.map_err(retry)?;
            return match existing {
                Some(t) => finish(state, &clients, t).await,
                None => Err(JobError::Retry("cash-in conflict without a row".into())),
            };
        }
        Err(e) => return Err(retry(e)),
    }
    finish(state, &clients, transfer).await
}

/// The Midaz account behind the creditor's branch and account, with its key checked.
async fn find_payee(
    clients: &TenantClients,
    state: &crate::app::AppState,
    tenant: &Tenant,
    p: &InboundPayment,
) -> Result<Result<Payee, Refusal>, JobError> {
    let invalid = |m: &str| Ok(Err(Refusal::new("RECIPIENT_ACCOUNT_INVALID", "AC03", m)));
    let alias = match clients.holders.alias_by_banking_details(&p.creditor.branch, &p.creditor.account).await {
        Ok(alias) => alias,
        Err(IntegrationError::NotFound { .. }) => return invalid("no account with this branch and number"),
        Err(e) => return Err(retry(e)),
    };
    let account_id = Uuid::parse_str(&alias.account_id)
        .map_err(|_| JobError::Permanent("CRM alias with a bad account id".into()))?;
    if let Some(key) = &p.creditor.key {
        let owned = match state.store.live_dict_entry_by_key(tenant.id, key).await.map_err(retry)? {
            Some(entry) => entry.status == "ACTIVE" && entry.account_id == Some(account_id),
            // Keys registered outside this host: ask DICT whose they are.
            None => match clients.btg.entry(key).await {
                Ok(entry) => entry.account.branch == p.creditor.branch && entry.account.number == p.creditor.account,
                Err(IntegrationError::NotFound { .. }) => false,
                Err(e) => return Err(retry(e)),
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
        Err(e) => return Err(retry(e)),
    };
    let ledger = match clients.ledger.account(&alias.account_id).await {
        Ok(ledger) => ledger,
        Err(IntegrationError::NotFound { .. }) => return invalid("the account is not in the ledger"),
        Err(e) => return Err(retry(e)),
    };
    let Some(ledger_alias) = ledger.alias.clone() else {
        return invalid("the ledger account has no alias");
    };
    Ok(Ok(Payee { account_id, ledger_alias, ledger, holder }))
}

/// Account state, balance rules and the two policies; on acceptance, the fee is set on `t`.
async fn approve(
    state: &crate::app::AppState,
    clients: &TenantClients,
    tenant: &Tenant,
    p: &InboundPayment,
    payee: &Payee,
    t: &mut Transfer,
) -> Result<Result<(), Refusal>, JobError> {
    let now = state.clock.now();
    let account = payee.account_id.to_string();
    let ledger = &payee.ledger;
    let blocked = ledger.blocked == Some(true) || ledger.status.as_ref().is_some_and(|s| s.code == "BLOCKED");
    let payee_status = if !payee.holder.is_open_on(now.date_naive()) {
        AccountStatus::Closed
    } else if blocked {
        AccountStatus::Blocked
    } else {
        AccountStatus::Active
    };
    let balances = clients.ledger.balances(&account).await.map_err(retry)?;
    if balances.iter().any(|b| b.key == "default" && !b.allow_receiving) {
        return Ok(Err(Refusal::new("RECIPIENT_CANNOT_RECEIVE", "AG03", "the account may not receive")));
    }
    let windows = [now - chrono::Duration::hours(1), start_of_day(now), brasilia_month_start(now)];
    let [hour, day, month] = state
        .store
        .account_activity(tenant.id, payee.account_id, "CASHIN", windows, Some(&p.debtor.tax_id))
        .await
        .map_err(retry)?;
    let payer_type = if p.debtor.tax_id.len() == 11 { DocumentPersonType::Natural } else { DocumentPersonType::Legal };
    let local_time = sao_paulo(now);
    let input = CashinInput {
        amount: t.amount,
        payee_status,
        payee_type: policy_person(payee.holder.person_type),
        payer_ispb: p.debtor_ispb.clone(),
        payer_document_type: if payer_type == DocumentPersonType::Natural {
            DocumentType::Cpf
        } else {
            DocumentType::Cnpj
        },
        same_owner: p.debtor.tax_id == payee.holder.document,
        intra_psp: false,
        local_time,
        day_count: sat(day.count),
        day_volume: day.volume,
    };
    let (acceptance, acceptance_sha) = state.policies.decide::<Cashin>(tenant.id, &input).await;
    t.details["acceptance"] = json!({"decision": acceptance, "policySha256": acceptance_sha});
    if let CashinDecision::Deny { code, spi_reason, message } = acceptance {
        return Ok(Err(Refusal { code, spi_reason, message }));
    }
    let fraud_input = FraudInput {
        direction: Direction::CashIn,
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
    };
    let (fraud, fraud_sha) = state.policies.decide::<Fraud>(tenant.id, &fraud_input).await;
    t.details["fraud"] = fraud_details(&fraud, &fraud_sha);
    if fraud.action == FraudAction::Block {
        // The money already settled at BTG: a cash-in is refused, never held for review.
        return Ok(Err(Refusal::new(
            "FRAUD_BLOCKED",
            "FRAD",
            format!("blocked by fraud triage: {}", fraud.reasons.join(", ")),
        )));
    }
    let fee_input = FeeInput {
        operation: Operation::CashIn,
        initiation: match p.initiation_type.as_str() {
            "MANUAL" => Initiation::Manual,
            "STATIC_QRCODE" | "DYNAMIC_QRCODE" => Initiation::QrCode,
            _ => Initiation::Key,
        },
        purpose: Purpose::Transfer,
        amount: t.amount,
        payer_type: policy_person(payer_type),
        payee_type: policy_person(payee.holder.person_type),
        account_segment: account_segment(ledger),
        intra_psp: false,
        local_time,
        month_count: sat(month.count),
        month_volume: month.volume,
    };
    let (fee, fee_sha) = state.policies.decide::<Fee>(tenant.id, &fee_input).await;
    // A cash-in's amount is fixed by the payer: every fee comes out of what is credited.
    t.fee = fee.fee.clamp(0, t.amount);
    t.details["fee"] =
        json!({"account": fee.fee_account, "charge": fee.charge, "label": fee.label, "policySha256": fee_sha});
    Ok(Ok(()))
}

/// Credits an accepted cash-in, or refuses a denied one at BTG; idempotent.
async fn finish(state: &crate::app::AppState, clients: &TenantClients, mut t: Transfer) -> Result<(), JobError> {
    loop {
        let now = state.clock.now();
        match (t.status.as_str(), t.step.as_str()) {
            ("PENDING", "NEW") => match credit(&*clients.ledger, &t).await {
                Ok(ledger_tx) => {
                    t.ledger_tx_id = Some(ledger_tx);
                    t.status = "COMPLETED".into();
                    t.step = "SETTLED".into();
                    t.completed_at = Some(now);
                }
                Err(e) if is_definite(&e) => {
                    t.details["spiReason"] = json!("AG03");
                    fail(&mut t, "INTERNAL_CREDIT_FAILED", e.to_string(), now);
                }
                Err(e) => return Err(JobError::Retry(format!("crediting the cash-in: {e}"))),
            },
            ("FAILED", "NEW") => {
                let refusal = InboundRefusal {
                    reason_code: t.details["spiReason"].as_str().unwrap_or("AG03").to_owned(),
                    reason: t.failure_code.clone().unwrap_or_default(),
                    description: t.failure_reason.clone(),
                };
                match clients.btg.refuse_inbound_payment(&t.end_to_end_id, &refusal).await {
                    Ok(_) => t.step = "REFUSED".into(),
                    Err(e) if is_definite(&e) => {
                        // BTG would not take the money back: an operator must settle it.
                        metrics::counter!("pix_cashin_refusal_failures_total").increment(1);
                        tracing::error!(transfer = %t.id, error = %e, "BTG refused our cash-in refusal");
                        t.step = "REFUSAL_FAILED".into();
                    }
                    Err(e) => return Err(JobError::Retry(format!("refusing the cash-in: {e}"))),
                }
            }
            _ => return Ok(()),
        }
        if save_with_event(state, &mut t).await.map_err(retry)? {
            tracing::info!(transfer = %t.id, status = %t.status, step = %t.step, "cash-in processed");
            continue;
        }
        t = state
            .store
            .transfer(t.tenant_id, t.id)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::Retry("cash-in vanished".into()))?;
    }
}

/// The Midaz credit: `@external/BRL` → the customer (net of the fee) and the fee account.
async fn credit(ledger: &dyn pix_integrations::Ledger, t: &Transfer) -> Result<String, IntegrationError> {
    let alias = t.details["ledgerAlias"].as_str().unwrap_or_default();
    let leg = |alias: &str, centavos: i64| Leg::amount(alias, ASSET, UpstreamMoney::from_centavos(centavos));
    let mut to = vec![leg(alias, t.amount - t.fee)];
    if t.fee > 0 {
        to.push(leg(t.details["fee"]["account"].as_str().unwrap_or_default(), t.fee));
    }
    let request = TransactionRequest::transfer(ASSET, vec![leg(EXTERNAL, t.amount)], to)
        .description(format!("Pix cash-in {}", t.end_to_end_id))
        .code(t.end_to_end_id.clone());
    let tx = ledger.create_transaction(&request, &super::ledger_key(format!("cashin-{}", t.id))).await?;
    Ok(tx.id)
}
