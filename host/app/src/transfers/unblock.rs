//! Unblock (`POST /v1/transfers/{transfer_id}/unblock`): an operator's request to finish a
//! cash-out stuck in PENDING or PROCESSING without waiting for BTG's webhook or the sweeper.
//!
//! It reads the payment back from BTG by EndToEndId and hands BTG's verdict to the same
//! `cashout::on_verdict` the webhooks and the sweeper use; it never writes a state itself.
//! Before anything moves, BTG's record must match the local one (a consistency guard). A BTG
//! 404 is an error unless the caller opted in with `allowNotFoundUnblock`, and even then only
//! once the cash-out is older than `btg_not_found_grace` (a payment accepted a moment ago may
//! not be readable yet). Any other failure to read BTG leaves everything as it was.

use pix_core::error::ErrorCode;
use pix_core::transfer::{BTG_NOT_FOUND, BtgStatus, CashoutState, Failure, TransferState, TransferStatus};
use pix_integrations::IntegrationError;
use pix_integrations::btg::Payment;
use pix_store::tenants::Tenant;
use pix_store::transfers::Transfer;
use uuid::Uuid;

use super::cashout::{Verdict, on_verdict};
use crate::{App, AppError, AppResult};

/// The outcome of an unblock.
#[derive(Debug, Clone)]
pub struct Unblocked {
    /// The transfer as it stands afterwards.
    pub transfer: Transfer,
    /// What BTG said; `None` for an intra-PSP transfer (BTG has no part in it).
    pub btg_status: Option<BtgStatus>,
    /// What happened, for the operator.
    pub message: String,
}

/// Reads the payment of the account's stuck cash-out back from BTG and drives it to where BTG
/// says it is; an intra-PSP cash-out is driven from its local records instead (`intra::unblock`).
/// Refusals: another account's or tenant's transfer → `TransferNotFound`; anything but a cash-out in PENDING/PROCESSING →
/// `TransferNotUnblockable`; BTG's record diverging from ours → `UnblockInconsistent`; BTG 404
/// without the opt-in (or too early) → `ProviderPaymentNotFound`. Any other BTG failure is an
/// `Upstream` error and nothing is touched.
pub async fn unblock(
    app: &App,
    tenant: &Tenant,
    account_id: Uuid,
    transfer_id: Uuid,
    allow_not_found: bool,
) -> AppResult<Unblocked> {
    let t =
        app.store.transfer(tenant.id, transfer_id).await?.filter(|t| t.account_id == account_id).ok_or_else(|| {
            AppError::refused(ErrorCode::TransferNotFound, "no transfer with this id for this account")
        })?;
    unblockable(&t)?;
    if t.is_intra_psp {
        let (transfer, message) = super::intra::unblock(app, tenant, t).await?;
        return Ok(Unblocked { transfer, btg_status: None, message });
    }
    let clients = app.upstreams.for_tenant(tenant)?;
    let payment = match clients.btg.payment(&t.end_to_end_id).await {
        Ok(payment) => payment,
        Err(IntegrationError::NotFound { .. }) => return not_found(app, &clients, t, allow_not_found).await,
        // A timeout or a 5xx says nothing about the payment: the hold stays.
        Err(source) => return Err(AppError::Upstream { what: "reading the payment back from BTG", source }),
    };
    consistent(&t, &payment)?;
    let verdict = Verdict::of(&payment);
    let btg_status = match verdict {
        Verdict::Paid { .. } => BtgStatus::Confirmed,
        Verdict::Refused(_) => BtgStatus::Rejected,
        Verdict::InFlight => {
            tracing::info!(transfer = %t.id, "unblock: BTG still processing; nothing done");
            let message = format!(
                "BTG is still processing payment {}; nothing was changed and the hold stays. Retry later.",
                t.end_to_end_id
            );
            return Ok(Unblocked { transfer: t, btg_status: Some(BtgStatus::Processing), message });
        }
    };
    let before = t.status();
    let after = on_verdict(app, &clients, t, verdict).await?;
    tracing::info!(transfer = %after.id, from = %before, to = %after.status(), btg = ?btg_status, "unblock applied BTG's verdict");
    let message = outcome_message(&after, btg_status);
    Ok(Unblocked { transfer: after, btg_status: Some(btg_status), message })
}

/// Only the cash-outs whose outcome waits on BTG: PENDING (New, Held) and PROCESSING (Sent),
/// with an EndToEndId to read back; intra-PSP ones DEBITED or DELIVERING.
fn unblockable(t: &Transfer) -> AppResult<()> {
    match &t.state {
        TransferState::Cashout(
            CashoutState::New
            | CashoutState::Held { .. }
            | CashoutState::Sent { .. }
            | CashoutState::Debited { .. }
            | CashoutState::Delivering { .. },
        ) => {}
        TransferState::Cashout(CashoutState::InReview) => {
            return Err(AppError::refused(
                ErrorCode::TransferNotUnblockable,
                "the cash-out is in fraud review: nothing was sent to BTG and an operator decides it",
            ));
        }
        TransferState::Cashout(_) => {
            return Err(AppError::refused(
                ErrorCode::TransferNotUnblockable,
                format!("the cash-out is {}: only PENDING or PROCESSING cash-outs can be unblocked", t.status()),
            ));
        }
        TransferState::Cashin(_) => {
            return Err(AppError::refused(
                ErrorCode::TransferNotUnblockable,
                "only cash-outs can be unblocked; a cash-in has already settled at BTG",
            ));
        }
    }
    if t.end_to_end_id.trim().is_empty() {
        return Err(AppError::refused(
            ErrorCode::TransferNotUnblockable,
            "the cash-out has no EndToEndId to read back",
        ));
    }
    Ok(())
}

/// The guard: BTG's record must be this cash-out's payment. A `Payment` read carries its
/// EndToEndId and amount (no creditor), so those are what is compared; the amount is what
/// left for the payee (net of a deducted fee), as the payment order said.
fn consistent(t: &Transfer, payment: &Payment) -> AppResult<()> {
    let (_, sent) = t
        .details
        .cashout_amounts(t.amount, t.fee)
        .ok_or_else(|| AppError::Internal(format!("transfer {}: amounts do not add up", t.id)))?;
    let mut diverging = Vec::new();
    if payment.end_to_end_id != t.end_to_end_id {
        diverging.push(format!("endToEndId {} (ours {})", payment.end_to_end_id, t.end_to_end_id));
    }
    if payment.amount.centavos() != sent {
        diverging.push(format!("amount {} (ours {})", payment.amount, pix_core::money::Money::from_centavos(sent)));
    }
    if diverging.is_empty() {
        return Ok(());
    }
    tracing::error!(transfer = %t.id, diverging = ?diverging, "unblock aborted: BTG's record diverges from ours");
    Err(AppError::refused(
        ErrorCode::UnblockInconsistent,
        format!("BTG's record diverges from this transfer: {}; nothing was changed", diverging.join(", ")),
    ))
}

/// BTG has no record of the payment. Strict (the default): an error, the hold untouched. With
/// the opt-in, once the cash-out is older than the grace: BTG's "never received" is applied as a
/// refusal (`BTG_NOT_FOUND`) by `on_verdict`, which releases the hold (placing it first, with
/// its idempotent key, if the cash-out never got past NEW) and records the transfer's event.
/// BTG's 404 may be wrong: the sweeper keeps reading the payment back for
/// `not_found_watch`, and a CONFIRMED then opens a CONFIRMED_AFTER_FAILED incident.
async fn not_found(
    app: &App,
    clients: &crate::TenantClients,
    t: Transfer,
    allow_not_found: bool,
) -> AppResult<Unblocked> {
    if !allow_not_found {
        return Err(AppError::refused(
            ErrorCode::ProviderPaymentNotFound,
            format!(
                "BTG has no record of payment {}; the hold is kept. Send {{\"allowNotFoundUnblock\": true}} \
                 once you have confirmed it should be released",
                t.end_to_end_id
            ),
        ));
    }
    let age = app.clock.now() - t.created_at;
    let grace = app.settings.btg_not_found_grace;
    if age < grace {
        return Err(AppError::refused(
            ErrorCode::ProviderPaymentNotFound,
            format!(
                "BTG has no record of payment {} yet, but the cash-out is only {} s old: a payment accepted a \
                 moment ago may not be readable yet. The hold is kept; retry after {} s",
                t.end_to_end_id,
                age.num_seconds(),
                grace.num_seconds()
            ),
        ));
    }
    let failure = Failure::new(BTG_NOT_FOUND, "BTG has no record of the payment; released by an unblock request");
    let id = t.id;
    let after = on_verdict(app, clients, t, Verdict::Refused(failure)).await?;
    tracing::warn!(transfer = %id, status = %after.status(), "unblock: BTG has no record of the payment; released on request");
    let message = outcome_message(&after, BtgStatus::NotFound);
    Ok(Unblocked { transfer: after, btg_status: Some(BtgStatus::NotFound), message })
}

/// What the unblock did, from where the transfer ended. A webhook or the sweeper may have
/// finished it meanwhile (then `on_verdict` changed nothing), or BTG's verdict contradicted a
/// final outcome (then an incident is open).
fn outcome_message(t: &Transfer, btg: BtgStatus) -> String {
    match (t.status(), btg) {
        (TransferStatus::Completed, BtgStatus::Confirmed) => {
            "BTG confirmed the payment: the hold was committed and the transfer is COMPLETED".to_owned()
        }
        (TransferStatus::Failed, BtgStatus::Rejected) => {
            "BTG rejected the payment: the hold was released and the transfer is FAILED".to_owned()
        }
        (TransferStatus::Failed, BtgStatus::NotFound) if failed_with(t, BTG_NOT_FOUND) => {
            "BTG has no record of the payment: the hold was released and the transfer is FAILED (BTG_NOT_FOUND)"
                .to_owned()
        }
        (TransferStatus::ReconciliationRequired, _) => {
            "BTG contradicted the transfer's final outcome: an incident is open (RECONCILIATION_REQUIRED)".to_owned()
        }
        (status, _) => format!("the transfer is {status} (it was moved meanwhile by BTG's webhook or the sweeper)"),
    }
}

fn failed_with(t: &Transfer, code: &str) -> bool {
    t.state.failure().is_some_and(|f| f.code == code)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use pix_core::money::Money;
    use pix_core::transfer::{FeeCharge, LedgerTxId, Purpose, TransferDetails};
    use pix_integrations::btg::PaymentStatus;

    use super::*;

    /// A cash-out of R$ 100.00 with a R$ 1.50 fee charged as `charge`, in flight at BTG.
    fn cash_out(charge: FeeCharge) -> Transfer {
        let details: TransferDetails = serde_json::from_value(serde_json::json!({
            "counterparty": {"ispb": "87654321", "branch": "0001", "account": "7001", "accountType": "CACC",
                             "taxId": "52998224725", "name": "Ana Pereira"},
            "initiationMethod": "DICT",
            "fee": {"account": "@fees", "charge": charge.as_str(), "label": "", "policySha256": ""},
        }))
        .unwrap();
        let now = Utc::now();
        Transfer {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            account_id: Uuid::nil(),
            state: TransferState::Cashout(CashoutState::Sent { hold: LedgerTxId("hold".into()) }),
            end_to_end_id: "E12345678202601011200abcdefghijk".into(),
            initiation_id: None,
            amount: 10_000,
            fee: 150,
            purpose: Purpose::Transfer,
            is_intra_psp: false,
            counterparty: None,
            details,
            version: 1,
            created_at: now,
            updated_at: now,
            completed_at: None,
        }
    }

    fn payment(end_to_end_id: &str, centavos: i64) -> Payment {
        Payment {
            id: "btg-1".into(),
            end_to_end_id: end_to_end_id.into(),
            status: PaymentStatus::Confirmed,
            amount: Money::from_centavos(centavos),
            rejection_code: None,
            rejection_reason: None,
            settled_at: None,
        }
    }

    fn code(r: AppResult<()>) -> Option<ErrorCode> {
        match r {
            Ok(()) => None,
            Err(AppError::Refused { code, .. }) => Some(code),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn the_guard_compares_what_was_sent_to_the_payee() {
        let on_top = cash_out(FeeCharge::OnTop);
        let e2e = on_top.end_to_end_id.clone();
        assert_eq!(code(consistent(&on_top, &payment(&e2e, 10_000))), None, "an on-top fee is not sent");
        assert_eq!(code(consistent(&on_top, &payment(&e2e, 10_150))), Some(ErrorCode::UnblockInconsistent));
        let deducted = cash_out(FeeCharge::Deducted);
        assert_eq!(code(consistent(&deducted, &payment(&e2e, 9_850))), None, "a deducted fee is not sent");
        assert_eq!(code(consistent(&deducted, &payment(&e2e, 10_000))), Some(ErrorCode::UnblockInconsistent));
        let other = "E12345678202601011200zzzzzzzzzzz";
        assert_eq!(code(consistent(&on_top, &payment(other, 10_000))), Some(ErrorCode::UnblockInconsistent));
    }

    #[test]
    fn only_in_flight_cash_outs_with_an_end_to_end_id_are_unblockable() {
        let sent = cash_out(FeeCharge::OnTop);
        assert_eq!(code(unblockable(&sent)), None);
        for state in [CashoutState::New, CashoutState::Held { hold: LedgerTxId("h".into()) }] {
            assert_eq!(code(unblockable(&Transfer { state: TransferState::Cashout(state), ..sent.clone() })), None);
        }
        let refused = |t: Transfer| code(unblockable(&t));
        let final_states = [
            CashoutState::InReview,
            CashoutState::Settled { hold: LedgerTxId("h".into()) },
            CashoutState::Released { hold: None, failure: Failure::new("AC03", "x") },
        ];
        for state in final_states {
            let t = Transfer { state: TransferState::Cashout(state), ..sent.clone() };
            assert_eq!(refused(t), Some(ErrorCode::TransferNotUnblockable));
        }
        let no_e2e = Transfer { end_to_end_id: " ".into(), ..sent.clone() };
        assert_eq!(refused(no_e2e), Some(ErrorCode::TransferNotUnblockable));
        let delivering = CashoutState::Delivering { debit: LedgerTxId("d".into()) };
        let intra = Transfer { is_intra_psp: true, state: TransferState::Cashout(delivering), ..sent.clone() };
        assert_eq!(refused(intra), None, "an intra-PSP cash-out in flight is unblocked from local records");
        let reverted = CashoutState::Reverted {
            debit: LedgerTxId("d".into()),
            revert: LedgerTxId("r".into()),
            failure: Failure::new("AC03", "x"),
        };
        let done = Transfer { is_intra_psp: true, state: TransferState::Cashout(reverted), ..sent };
        assert_eq!(refused(done), Some(ErrorCode::TransferNotUnblockable));
    }
}
