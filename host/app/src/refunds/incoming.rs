//! Returns we receive (type CASHIN): BTG's `PIX_REVERSAL_INBOUND` says another participant
//! returned (part of) one of our cash-outs, money recovered through MED included. The original
//! payer's account is credited from `@external/BRL`, once per return EndToEndId. A return whose
//! original is not a completed cash-out of this tenant (unknown, another institution's, or more
//! than was sent) is recorded for operators and credited to nobody; one whose original has no
//! final outcome yet waits for it (the caller retries).

use pix_core::ids::new_id;
use pix_core::refund::{IncomingRefund, RefundOperation, RefundReason, RefundState, SplitSource};
use pix_core::transfer::{CashoutState, Direction, LedgerTxId, TransferState};
use pix_integrations::btg::{PaymentStatus, Reversal, ReversalReason};
use pix_integrations::midaz::TransactionRequest;
use pix_store::StoreError;
use pix_store::refunds::{Refund, UnmatchedReturn, insert_refund, record_unmatched_return, reserve_refund};
use pix_store::tenants::Tenant;

use super::{record_event, reload, save};
use crate::transfers::{ASSET, EXTERNAL, ledger_key, leg};
use crate::{App, AppError, AppResult, TenantClients};

/// A `PIX_REVERSAL_INBOUND` webhook; idempotent per return EndToEndId.
pub async fn receive(app: &App, tenant: &Tenant, reversal: &Reversal) -> AppResult<()> {
    let clients = app.upstreams.for_tenant(tenant)?;
    if let Some(known) =
        app.store.refund_by_return_id(tenant.id, Direction::Cashin, &reversal.return_end_to_end_id).await?
    {
        return finish(app, &clients, known).await.map(drop);
    }
    if reversal.status != PaymentStatus::Confirmed {
        // Only a settled return carries money; BTG sends the settled one.
        tracing::warn!(return_id = %reversal.return_end_to_end_id, status = ?reversal.status, "unsettled inbound return; ignored");
        return Ok(());
    }
    let now = app.clock.now();
    let original =
        app.store.transfer_by_end_to_end_id(tenant.id, Direction::Cashout, &reversal.original_end_to_end_id).await?;
    let amount = reversal.amount.centavos();
    let original = match original {
        // Its outcome is not recorded yet (BTG's verdict not applied, or an intra-PSP cash-out
        // whose internal cash-in is credited but not concluded): decide once it is. A decision
        // taken now could differ from a retry's, and an intra-PSP refund reverts its debit on
        // "credited to nobody".
        Some(t) if !t.is_final() => {
            return Err(AppError::Unknown(format!("the original cash-out {} has no final outcome yet", t.id)));
        }
        // Only a pending cash-out becomes COMPLETED, so "not completed" below is for good.
        Some(t) if matches!(t.state, TransferState::Cashout(CashoutState::Settled { .. })) => t,
        _ => {
            return unmatched(app, tenant, reversal, "the original is not a completed cash-out of this institution")
                .await;
        }
    };
    let Some(alias) = original.details.ledger_alias.clone() else {
        return unmatched(app, tenant, reversal, "the original cash-out has no ledger account").await;
    };
    let refund = Refund {
        id: new_id(),
        tenant_id: tenant.id,
        account_id: original.account_id,
        transfer_id: original.id,
        state: RefundState::Incoming(IncomingRefund::Received { return_id: reversal.return_end_to_end_id.clone() }),
        original_end_to_end_id: original.end_to_end_id.clone(),
        amount,
        reason: refund_reason(&reversal.reason),
        description: None,
        metadata: Default::default(),
        operations: vec![RefundOperation { account_alias: alias, amount }],
        split: SplitSource::SingleAccount,
        is_intra_psp: original.is_intra_psp,
        version: 0,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    let mut tx = app.store.begin().await?;
    if !reserve_refund(&mut tx, tenant.id, original.id, amount).await? {
        drop(tx);
        return unmatched(app, tenant, reversal, "the returns would exceed what the cash-out sent").await;
    }
    match insert_refund(&mut tx, &refund).await {
        // A redelivery raced this one: it recorded the return, which finishes it.
        Err(StoreError::Conflict(_)) => return Ok(()),
        other => other?,
    }
    record_event(&mut tx, &refund, now).await?;
    tx.commit().await?;
    tracing::info!(refund = %refund.id, transfer = %original.id, amount, "inbound return recorded");
    finish(app, &clients, refund).await.map(drop)
}

/// Credits a recorded return (again, with the same key, if an earlier attempt's answer was lost).
pub async fn finish(app: &App, clients: &TenantClients, mut r: Refund) -> AppResult<Refund> {
    loop {
        let before = r.state.clone();
        let RefundState::Incoming(state @ IncomingRefund::Received { .. }) = &r.state else {
            return Ok(r);
        };
        let op = r.operations.first().ok_or_else(|| AppError::Internal(format!("refund {} credits nobody", r.id)))?;
        let request =
            TransactionRequest::transfer(ASSET, vec![leg(EXTERNAL, r.amount)], vec![leg(&op.account_alias, r.amount)])
                .description(format!("Pix return {} of {}", state_return_id(state), r.original_end_to_end_id))
                .code(r.original_end_to_end_id.clone());
        let credit = clients
            .ledger
            .create_transaction(&request, &ledger_key(format!("refund-credit-{}", r.id)))
            .await
            .map_err(AppError::upstream("crediting the return"))?;
        r.state = RefundState::Incoming(state.credited(LedgerTxId(credit.id))?);
        r.completed_at = Some(app.clock.now());
        if save(app, &mut r, &before).await? {
            tracing::info!(refund = %r.id, "inbound return credited");
            return Ok(r);
        }
        r = reload(app, &r).await?;
    }
}

fn state_return_id(state: &IncomingRefund) -> &str {
    match state {
        IncomingRefund::Received { return_id } | IncomingRefund::Credited { return_id, .. } => return_id,
    }
}

fn refund_reason(reason: &ReversalReason) -> RefundReason {
    match reason {
        ReversalReason::Be08 => RefundReason::Be08,
        ReversalReason::Fr01 => RefundReason::Fr01,
        ReversalReason::Md06 => RefundReason::Md06,
        ReversalReason::Sl02 => RefundReason::Sl02,
    }
}

async fn unmatched(app: &App, tenant: &Tenant, reversal: &Reversal, why: &str) -> AppResult<()> {
    metrics::counter!("pix_unmatched_returns_total").increment(1);
    tracing::error!(return_id = %reversal.return_end_to_end_id, original = %reversal.original_end_to_end_id, why,
        "inbound return not credited; recorded for operators");
    let record = UnmatchedReturn {
        id: new_id(),
        tenant_id: tenant.id,
        return_end_to_end_id: reversal.return_end_to_end_id.clone(),
        original_end_to_end_id: reversal.original_end_to_end_id.clone(),
        amount: reversal.amount.centavos(),
        reason: reversal.reason.as_str().to_owned(),
        why: why.to_owned(),
        received_at: app.clock.now(),
    };
    record_unmatched_return(&app.store, &record).await?;
    Ok(())
}
