//! Fraud review: an operator releases or rejects a cash-out that triage held for review, or
//! the review deadline rejects it (the sweeper). Nothing is held while a cash-out waits.

use pix_core::error::ErrorCode;
use pix_core::transfer::{CashoutEvent, CashoutState, Failure, ReviewRecord, TransferState, TransferStatus};
use pix_store::tenants::Tenant;
use pix_store::transfers::Transfer;
use uuid::Uuid;

use super::cashout::advance;
use super::{Notify, save};
use crate::{App, AppError, AppResult};

/// An operator's decision.
pub struct ReviewDecision {
    pub release: bool,
    pub note: Option<String>,
    /// The admin credential that decided.
    pub by: Uuid,
}

/// Cash-outs waiting for review, oldest first, across tenants.
pub async fn waiting(app: &App, limit: i64) -> AppResult<Vec<Transfer>> {
    Ok(app.store.transfers_with_status(TransferStatus::InReview, limit).await?)
}

/// Releases (and sends) or rejects the cash-out `transfer_id` of `tenant`.
pub async fn decide(app: &App, tenant: &Tenant, transfer_id: Uuid, decision: ReviewDecision) -> AppResult<Transfer> {
    let mut t = app
        .store
        .transfer(tenant.id, transfer_id)
        .await?
        .ok_or_else(|| AppError::refused(ErrorCode::TransferNotFound, "no transfer with this id"))?;
    if t.state != TransferState::Cashout(CashoutState::InReview) {
        return Err(AppError::refused(
            ErrorCode::TransferNotInReview,
            format!("the transfer is {}, not IN_REVIEW", t.status()),
        ));
    }
    let event = if decision.release {
        CashoutEvent::ReviewReleased
    } else {
        CashoutEvent::ReviewRejected(Failure::new("FRAUD_REVIEW_REJECTED", "rejected by a fraud reviewer"))
    };
    let now = app.clock.now();
    record(&mut t, event, Some(decision.by), decision.note, now)?;
    if !save(app, &mut t, Notify::Event).await? {
        return Err(AppError::refused(ErrorCode::TransferNotInReview, "the transfer changed meanwhile; read it again"));
    }
    tracing::info!(transfer = %t.id, release = decision.release, "fraud review decided");
    if !decision.release {
        return Ok(t);
    }
    let clients = app.upstreams.for_tenant(tenant)?;
    match advance(app, &clients, t.clone()).await {
        Ok(t) => Ok(t),
        Err(e) if !e.is_permanent() => {
            tracing::warn!(transfer = %t.id, error = %e, "released cash-out step outcome unknown; left to the sweeper");
            Ok(app.store.transfer(tenant.id, t.id).await?.unwrap_or(t))
        }
        Err(e) => Err(e),
    }
}

/// Nobody decided in time: the cash-out is rejected (the sweeper's call).
pub(super) async fn expire(app: &App, mut t: Transfer) -> AppResult<Transfer> {
    let failure = Failure::new("FRAUD_REVIEW_EXPIRED", "no reviewer decided before the review deadline");
    record(&mut t, CashoutEvent::ReviewRejected(failure), None, None, app.clock.now())?;
    save(app, &mut t, Notify::Event).await?;
    Ok(t)
}

fn record(
    t: &mut Transfer,
    event: CashoutEvent,
    by: Option<Uuid>,
    note: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let TransferState::Cashout(state) = &t.state else {
        return Err(AppError::Internal(format!("transfer {} is not a cash-out", t.id)));
    };
    let released = event == CashoutEvent::ReviewReleased;
    let next = state.on(event)?;
    if next.status().is_final() {
        t.completed_at = Some(now);
    }
    t.state = TransferState::Cashout(next);
    t.details.review = Some(ReviewRecord { released, note, by, at: now });
    Ok(())
}
