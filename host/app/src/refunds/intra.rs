//! Refunds of intra-PSP cash-ins (spec 001): never through BTG. The requester's accounts are
//! debited (`operations → @external`, committed), the return id (`D…`) is ours, and in the
//! transaction that moves the refund to PROCESSING its delivery is queued; the intra-PSP
//! endpoint runs [`settle`]: the return is credited to the original payer as a return we
//! receive (`incoming`), then the refund is COMPLETED and reported by trck.002, or, if the
//! payer's side cannot take it, the debit is reverted and the refund FAILED.
//!
//! The outgoing states are the external ones with an internal meaning: HELD is the committed
//! debit (not a pending hold), SENT is the queued delivery, RELEASED a reverted debit.

use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::ids::{EndToEndId, Ispb};
use pix_core::refund::{OutgoingEvent, OutgoingRefund};
use pix_core::transfer::{Direction, Failure, LedgerTxId};
use pix_integrations::Money as UpstreamMoney;
use pix_integrations::btg::{PaymentStatus, Reversal};
use pix_store::internal_reports::{InternalKind, InternalSettlement, record_internal_settlement};
use pix_store::refunds::{Refund, save_refund};
use pix_store::tenants::Tenant;
use uuid::Uuid;

use super::outgoing::{apply, outgoing};
use super::{incoming, record_event, reload, save};
use crate::intra_psp::{Delivery, Settlement};
use crate::transfers::{ledger_key, ledger_refusal};
use crate::{App, AppError, AppResult, TenantClients};

/// Moves an intra-PSP refund until its delivery is queued (PROCESSING) or it failed.
pub(super) async fn advance(app: &App, clients: &TenantClients, tenant: &Tenant, mut r: Refund) -> AppResult<Refund> {
    loop {
        let before = r.state.clone();
        match outgoing(&r)?.clone() {
            OutgoingRefund::New => match post_debit(clients, &r).await {
                Ok(debit) => apply(&mut r, OutgoingEvent::HoldPlaced(debit))?,
                Err(AppError::Upstream { source, .. }) if source.is_definite() => {
                    let failure = ledger_refusal(&source);
                    apply(&mut r, OutgoingEvent::HoldRefused(failure))?;
                }
                Err(e) => return Err(e),
            },
            OutgoingRefund::Held { .. } => {
                let now = app.clock.now();
                let ispb = Ispb::parse(&tenant.ispb).map_err(|e| AppError::Internal(format!("tenant ISPB: {e}")))?;
                let return_id = EndToEndId::generate_return(&ispb, now, &mut rand::rng()).to_string();
                apply(&mut r, OutgoingEvent::Accepted { return_id })?;
                if queue(app, &mut r, now).await? {
                    return Ok(r);
                }
                r = reload(app, &r).await?;
                continue;
            }
            _ => return Ok(r),
        }
        if !save(app, &mut r, &before).await? {
            r = reload(app, &r).await?;
        }
    }
}

/// The requester's debit: each operation's account → `@external/BRL`, committed.
async fn post_debit(clients: &TenantClients, r: &Refund) -> AppResult<LedgerTxId> {
    let request =
        super::outgoing::refund_legs(r).description(format!("Pix intra-PSP refund of {}", r.original_end_to_end_id));
    let tx = clients
        .ledger
        .create_transaction(&request, &ledger_key(format!("refund-debit-{}", r.id)))
        .await
        .map_err(AppError::upstream("debiting the refund"))?;
    Ok(LedgerTxId(tx.id))
}

/// Saves the PROCESSING refund (with its return id), its event and its delivery in one
/// transaction.
async fn queue(app: &App, r: &mut Refund, now: DateTime<Utc>) -> AppResult<bool> {
    r.updated_at = now;
    let mut tx = app.store.begin().await?;
    if !save_refund(&mut tx, r).await? {
        return Ok(false);
    }
    record_event(&mut tx, r, now).await?;
    let delivery = Delivery { tenant_id: r.tenant_id, settlement: Settlement::Refund { refund_id: r.id } };
    crate::intra_psp::queue(&mut tx, &delivery, now).await?;
    tx.commit().await?;
    r.version += 1;
    Ok(true)
}

/// The intra-PSP endpoint's use case for a refund: returns the money to the original payer and
/// settles the refund from the outcome. Idempotent.
pub async fn settle(app: &App, tenant: &Tenant, refund_id: Uuid) -> AppResult<Refund> {
    let r = app
        .store
        .refund(tenant.id, refund_id)
        .await?
        .filter(|r| r.is_intra_psp && r.kind() == Direction::Cashout)
        .ok_or_else(|| AppError::refused(ErrorCode::RefundNotFound, "no intra-PSP refund with this id"))?;
    let clients = app.upstreams.for_tenant(tenant)?;
    let mut r = advance(app, &clients, tenant, r).await?;
    let OutgoingRefund::Sent { hold, return_id } = outgoing(&r)?.clone() else { return Ok(r) };
    let now = app.clock.now();
    let reversal = Reversal {
        request_id: Some(r.id.to_string()),
        return_end_to_end_id: return_id.clone(),
        original_end_to_end_id: r.original_end_to_end_id.clone(),
        amount: UpstreamMoney::from_centavos(r.amount),
        reason: super::outgoing::reversal_reason(r.reason),
        status: PaymentStatus::Confirmed,
        rejection_code: None,
        settled_at: Some(now),
    };
    incoming::receive(app, tenant, &reversal).await?;
    let credited = app.store.refund_by_return_id(tenant.id, Direction::Cashin, &return_id).await?;
    loop {
        let before = r.state.clone();
        let now = app.clock.now();
        match &credited {
            Some(back) if back.is_final() => {
                apply(&mut r, OutgoingEvent::Confirmed { return_id: return_id.clone() })?;
                r.completed_at = Some(now);
                if complete(app, &mut r, now).await? {
                    tracing::info!(refund = %r.id, "intra-PSP refund completed");
                    return Ok(r);
                }
            }
            Some(_) => return Err(AppError::Unknown(format!("the return of refund {} is not credited yet", r.id))),
            None => {
                // The original payer's side did not take it (kept for operators), for good: a
                // return waits while the original cash-out is pending. Give the debit back.
                clients
                    .ledger
                    .revert(&hold.0, &ledger_key(format!("refund-revert-{}", r.id)))
                    .await
                    .map_err(AppError::upstream("reverting the refund debit"))?;
                let failure =
                    Failure::new("INTERNAL_CREDIT_FAILED", "the original payer's account did not take the return");
                apply(&mut r, OutgoingEvent::Rejected(failure))?;
                if save(app, &mut r, &before).await? {
                    return Ok(r);
                }
            }
        }
        r = reload(app, &r).await?;
        if !matches!(outgoing(&r)?, OutgoingRefund::Sent { .. }) {
            return Ok(r);
        }
    }
}

/// Saves the COMPLETED refund, its event and its trck.002 record in one transaction.
async fn complete(app: &App, r: &mut Refund, now: DateTime<Utc>) -> AppResult<bool> {
    r.updated_at = now;
    // The refund goes from the original payee back to the original payer: the intra-PSP
    // cash-out of the same EndToEndId has both.
    let cash_out =
        app.store.transfer_by_end_to_end_id(r.tenant_id, Direction::Cashout, &r.original_end_to_end_id).await?;
    let (debtor_tax_id, creditor_tax_id) = cash_out
        .map(|t| (t.details.counterparty.tax_id.clone(), t.details.debtor.map(|d| d.tax_id).unwrap_or_default()))
        .unwrap_or_default();
    let mut tx = app.store.begin().await?;
    if !save_refund(&mut tx, r).await? {
        return Ok(false);
    }
    record_event(&mut tx, r, now).await?;
    let settlement = InternalSettlement {
        tenant_id: r.tenant_id,
        end_to_end_id: r.original_end_to_end_id.clone(),
        return_identification: r.return_end_to_end_id().map(str::to_owned),
        kind: InternalKind::Refund,
        amount: r.amount,
        debtor_tax_id,
        creditor_tax_id,
        settled_at: now,
    };
    record_internal_settlement(&mut tx, &settlement).await?;
    tx.commit().await?;
    r.version += 1;
    Ok(true)
}
