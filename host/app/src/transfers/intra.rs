//! Intra-PSP cash-outs (spec 001): the payee is an account of this institution, so the money
//! never goes through BTG. The payer is debited (`source → @external`, committed), and in the
//! transaction that moves the cash-out to PROCESSING an inbound record is queued; the inbound
//! worker delivers it, signed, to the intra-PSP endpoint, which runs [`settle`]: the same cash-in
//! approval and credit as an external Pix (`@external → payee`), then the cash-out COMPLETED, or,
//! when the payee's side refuses, the debit reverted and the cash-out FAILED with the refusal's
//! reason. A revert Midaz refuses is an incident (`DEBIT_REVERT_FAILED`), never retried away
//! silently. Every step is idempotent; the sweeper and unblock call the same functions.

use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::transfer::{
    CashinState, CashoutEvent, CashoutState, Direction, IncidentKind, IncidentRecord, LedgerTxId, TransferState,
};
use pix_integrations::btg::InboundPayment;
use pix_store::internal_reports::{InternalKind, InternalSettlement, record_internal_settlement};
use pix_store::tenants::Tenant;
use pix_store::transfers::{Transfer, save_transfer};
use uuid::Uuid;

use super::cashout::{apply, cashout_legs, cashout_state, payment_order};
use super::{Notify, cashin, ledger_key, ledger_refusal, record_event, reload, save};
use crate::intra_psp::{Delivery, Settlement};
use crate::{App, AppError, AppResult, TenantClients};

/// Moves an intra-PSP cash-out from NEW until it waits for its internal cash-in (PROCESSING) or
/// failed. An unknown outcome is an `Err` that is not permanent.
pub(super) async fn advance(app: &App, clients: &TenantClients, mut t: Transfer) -> AppResult<Transfer> {
    loop {
        let now = app.clock.now();
        match cashout_state(&t)?.clone() {
            CashoutState::New => match post_debit(clients, &t).await {
                // Not saved: posting it again with the same key returns the same transaction.
                Ok(debit) => apply(&mut t, CashoutEvent::Debited(debit), now)?,
                Err(AppError::Upstream { source, .. }) if source.is_definite() => {
                    let failure = ledger_refusal(&source);
                    apply(&mut t, CashoutEvent::HoldRefused(failure), now)?;
                    if !save(app, &mut t, Notify::Event).await? {
                        t = reload(app, &t).await?;
                    }
                }
                Err(e) => return Err(e),
            },
            CashoutState::Debited { .. } => {
                apply(&mut t, CashoutEvent::Queued, now)?;
                if queue(app, &mut t, now).await? {
                    tracing::info!(transfer = %t.id, "intra-PSP cash-out debited and queued");
                    return Ok(t);
                }
                t = reload(app, &t).await?;
            }
            _ => return Ok(t),
        }
    }
}

/// The payer's debit: `source → @external/BRL` (+ an on-top fee), committed.
async fn post_debit(clients: &TenantClients, t: &Transfer) -> AppResult<LedgerTxId> {
    let request = cashout_legs(t)?
        .description(format!("Pix intra-PSP cash-out {}", t.end_to_end_id))
        .code(t.end_to_end_id.clone());
    let tx = clients
        .ledger
        .create_transaction(&request, &ledger_key(format!("cashout-debit-{}", t.id)))
        .await
        .map_err(AppError::upstream("debiting the payer"))?;
    Ok(LedgerTxId(tx.id))
}

/// Saves the DELIVERING cash-out, its event and the inbound record of its delivery in one
/// transaction: a crash between the debit and here leaves it DEBITED-by-key for the sweeper, and
/// after here the delivery cannot be lost.
async fn queue(app: &App, t: &mut Transfer, now: DateTime<Utc>) -> AppResult<bool> {
    t.updated_at = now;
    let mut tx = app.store.begin().await?;
    if !save_transfer(&mut tx, t).await? {
        return Ok(false);
    }
    record_event(&mut tx, t, now).await?;
    let delivery = Delivery { tenant_id: t.tenant_id, settlement: Settlement::Transfer { transfer_id: t.id } };
    crate::intra_psp::queue(&mut tx, &delivery, now).await?;
    tx.commit().await?;
    t.version += 1;
    Ok(true)
}

/// The intra-PSP endpoint's use case: runs the internal cash-in of the cash-out `transfer_id`
/// and settles the cash-out from its outcome. Idempotent: a final cash-out is returned as it is.
pub async fn settle(app: &App, tenant: &Tenant, transfer_id: Uuid) -> AppResult<Transfer> {
    let t = app
        .store
        .transfer(tenant.id, transfer_id)
        .await?
        .filter(|t| t.is_intra_psp && t.direction() == Direction::Cashout)
        .ok_or_else(|| AppError::refused(ErrorCode::TransferNotFound, "no intra-PSP cash-out with this id"))?;
    let clients = app.upstreams.for_tenant(tenant)?;
    let t = advance(app, &clients, t).await?;
    if !matches!(cashout_state(&t)?, CashoutState::Delivering { .. }) {
        return Ok(t);
    }
    let cashin =
        cashin::receive_payment(app, &clients, tenant, &internal_payment(tenant, &t, app.clock.now())?, true).await?;
    conclude(app, &clients, t, &cashin).await
}

/// The cash-in an intra-PSP cash-out makes: what BTG would have sent for it.
fn internal_payment(tenant: &Tenant, t: &Transfer, now: DateTime<Utc>) -> AppResult<InboundPayment> {
    let order = payment_order(t)?;
    Ok(InboundPayment {
        end_to_end_id: order.end_to_end_id,
        amount: order.amount,
        debtor_ispb: tenant.ispb.clone(),
        debtor: order.debtor,
        creditor: order.creditor,
        remittance_information: order.remittance_information,
        txid: order.txid,
        initiation_type: order.initiation_type,
        settled_at: now,
    })
}

/// Settles the DELIVERING cash-out `t` from its internal cash-in: COMPLETED when credited, the
/// debit reverted when refused.
async fn conclude(app: &App, clients: &TenantClients, mut t: Transfer, cashin: &Transfer) -> AppResult<Transfer> {
    let refusal = match &cashin.state {
        TransferState::Cashin(CashinState::Credited { .. }) => None,
        TransferState::Cashin(
            CashinState::Refused { failure }
            | CashinState::RefusalFailed { failure }
            | CashinState::Refusing { failure },
        ) => Some(failure.clone()),
        _ => return Err(AppError::Unknown(format!("the internal cash-in of {} is not finished", t.id))),
    };
    loop {
        let now = app.clock.now();
        let CashoutState::Delivering { debit } = cashout_state(&t)?.clone() else { return Ok(t) };
        match &refusal {
            None => {
                apply(&mut t, CashoutEvent::Confirmed, now)?;
                t.completed_at = Some(now);
                if complete(app, &mut t, cashin, now).await? {
                    tracing::info!(transfer = %t.id, "intra-PSP cash-out completed");
                    return Ok(t);
                }
            }
            Some(failure) => {
                let event = match clients.ledger.revert(&debit.0, &ledger_key(format!("cashout-revert-{}", t.id))).await
                {
                    Ok(revert) => CashoutEvent::Reverted { revert: LedgerTxId(revert.id), failure: failure.clone() },
                    Err(e) if e.is_definite() => {
                        metrics::counter!("pix_transfer_incidents_total", "kind" => IncidentKind::DebitRevertFailed.as_str())
                            .increment(1);
                        tracing::error!(transfer = %t.id, error = %e, "INTERNAL_DEBIT_REVERT_FAILED: incident opened");
                        t.details.incident = Some(IncidentRecord {
                            kind: IncidentKind::DebitRevertFailed,
                            detected_at: now,
                            note: format!(
                                "INTERNAL_DEBIT_REVERT_FAILED: the payee refused ({}: {}) and Midaz would not revert \
                                 the debit: {e}",
                                failure.code, failure.reason
                            ),
                        });
                        CashoutEvent::RevertFailed
                    }
                    Err(e) => return Err(AppError::Upstream { what: "reverting the payer's debit", source: e }),
                };
                apply(&mut t, event, now)?;
                if save(app, &mut t, Notify::Event).await? {
                    tracing::info!(transfer = %t.id, status = %t.status(), "intra-PSP cash-out refused by the payee's side");
                    return Ok(t);
                }
            }
        }
        t = reload(app, &t).await?;
    }
}

/// Saves the COMPLETED cash-out, its event and its trck.002 record in one transaction.
async fn complete(app: &App, t: &mut Transfer, cashin: &Transfer, now: DateTime<Utc>) -> AppResult<bool> {
    t.updated_at = now;
    let mut tx = app.store.begin().await?;
    if !save_transfer(&mut tx, t).await? {
        return Ok(false);
    }
    record_event(&mut tx, t, now).await?;
    let debtor_tax_id = t.details.debtor.as_ref().map(|d| d.tax_id.clone()).unwrap_or_default();
    let settlement = InternalSettlement {
        tenant_id: t.tenant_id,
        end_to_end_id: t.end_to_end_id.clone(),
        return_identification: None,
        kind: InternalKind::Transfer,
        amount: cashin.amount,
        debtor_tax_id,
        creditor_tax_id: t.details.counterparty.tax_id.clone(),
        settled_at: now,
    };
    record_internal_settlement(&mut tx, &settlement).await?;
    tx.commit().await?;
    t.version += 1;
    Ok(true)
}

/// Unblock of an intra-PSP cash-out (beyond the reference, which refuses with `PIX-0418`): its
/// local records are the truth. It is driven like the sweeper would (queued again if DEBITED,
/// settled from its internal cash-in if DELIVERING), then the records are checked against each
/// other; `PIX-0418` remains only for records that disagree (a completed cash-out whose cash-in
/// was not credited, a reverted one whose cash-in was, or one recorded at a BTG step).
pub(super) async fn unblock(app: &App, tenant: &Tenant, t: Transfer) -> AppResult<(Transfer, String)> {
    if matches!(cashout_state(&t)?, CashoutState::Held { .. } | CashoutState::Sent { .. }) {
        // A BTG step on a transfer BTG never had: the record contradicts itself.
        return Err(AppError::refused(
            ErrorCode::IntraPspUnblock,
            format!(
                "the intra-PSP cash-out is recorded at a BTG step ({}): an operator must reconcile it",
                t.state.step()
            ),
        ));
    }
    let before = t.status();
    let after = settle(app, tenant, t.id).await?;
    let cashin = app.store.transfer_by_end_to_end_id(tenant.id, Direction::Cashin, &after.end_to_end_id).await?;
    let credited =
        cashin.as_ref().is_some_and(|c| matches!(c.state, TransferState::Cashin(CashinState::Credited { .. })));
    let disagree = match cashout_state(&after)? {
        CashoutState::Settled { .. } => !credited,
        CashoutState::Reverted { .. } => credited,
        _ => false,
    };
    if disagree {
        tracing::error!(transfer = %after.id, status = %after.status(), credited, "intra-PSP records disagree");
        return Err(AppError::refused(
            ErrorCode::IntraPspUnblock,
            format!(
                "the intra-PSP records disagree (cash-out {}, internal cash-in {}): an operator must reconcile them",
                after.status(),
                if credited { "credited" } else { "not credited" }
            ),
        ));
    }
    let message = format!("settled from the local records: {before} → {}", after.status());
    Ok((after, message))
}
