//! Refunds (devoluções, pacs.004): returning a Pix we received (`outgoing`, type CASHOUT) and
//! crediting a return another participant sent us (`incoming`, type CASHIN), BTG's verdicts,
//! unblock, and the refunds' share of the stuck-work sweeper.
//!
//! Same rules as the transfers' engine: money moves in idempotent steps whose keys derive from
//! the refund id (the Midaz hold, the BTG reversal), each state a later step depends on is
//! saved first, and no hold is released on an ambiguous answer: the reversal is read back from
//! BTG (docs/refunds.md).

pub mod incoming;
pub mod intra;
pub mod outgoing;
pub mod sweeper;
pub mod unblock;
mod view;

use chrono::{DateTime, Utc};
use pix_core::refund::{OutgoingRefund, RefundState};
use pix_store::Tx;
use pix_store::events::{OutboundEvent, record_outbound_event};
use pix_store::refunds::{Refund, save_refund, unreserve_refund};

pub use view::{RefundOperationView, RefundView};

use crate::{App, AppError, AppResult};

/// Refunds of a received Pix are allowed this long after it settled.
pub const REFUND_WINDOW_DAYS: i64 = 90;

/// Saves `r` (optimistically, by version) with its event in one transaction (every save of a
/// refund is a status change); `false` when another writer moved the row first. A refund that
/// has just failed gives its amount back to the original transfer in the same transaction.
async fn save(app: &App, r: &mut Refund, before: &RefundState) -> AppResult<bool> {
    let now = app.clock.now();
    r.updated_at = now;
    if r.is_final() && r.completed_at.is_none() {
        r.completed_at = Some(now);
    }
    let mut tx = app.store.begin().await?;
    if !save_refund(&mut tx, r).await? {
        return Ok(false);
    }
    let released = |s: &RefundState| matches!(s, RefundState::Outgoing(OutgoingRefund::Released { .. }));
    if released(&r.state) && !released(before) {
        unreserve_refund(&mut tx, r.tenant_id, r.transfer_id, r.amount).await?;
    }
    record_event(&mut tx, r, now).await?;
    tx.commit().await?;
    r.version += 1;
    Ok(true)
}

/// The row as it is now, after a save lost to another writer.
async fn reload(app: &App, r: &Refund) -> AppResult<Refund> {
    app.store.refund(r.tenant_id, r.id).await?.ok_or_else(|| AppError::Store(pix_store::StoreError::NotFound))
}

/// Records the REFUND/{CASHOUT|CASHIN} event of `r`'s current state in `tx`.
async fn record_event(tx: &mut Tx, r: &Refund, now: DateTime<Utc>) -> AppResult<()> {
    let payload = serde_json::to_value(RefundView::from(r)).map_err(|e| AppError::Internal(e.to_string()))?;
    let id = r.id.to_string();
    let event = OutboundEvent {
        tenant_id: r.tenant_id,
        flow_type: "REFUND",
        entity_type: r.kind().as_str(),
        entity_id: &id,
        payload: &payload,
    };
    record_outbound_event(tx, &event, now).await?;
    Ok(())
}
