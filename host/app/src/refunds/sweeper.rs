//! The refunds' share of the stuck-work sweeper (run by `transfers::sweeper` on each pass): a
//! refund left in NEW, HELD or SENT longer than its step allows is read back from BTG and
//! driven through the same functions requests and webhooks use.

use pix_core::refund::{OutgoingRefund, RefundState};
use pix_integrations::IntegrationError;
use pix_store::refunds::{Refund, claim_stale_refunds};

use super::outgoing::{BtgSays, Verdict, advance, on_verdict, read_back};
use super::{incoming, intra};
use crate::transfers::sweeper::SweepReport;
use crate::{App, AppResult};

/// One pass over a batch of stale refunds; adds its outcomes to `report`.
pub async fn sweep_once(app: &App, report: &mut SweepReport) -> AppResult<()> {
    let now = app.clock.now();
    let stale = &app.settings.stale_after;
    let stale_refunds = claim_stale_refunds(
        &app.store,
        now - stale.pending,
        now - stale.sent,
        app.settings.sweep_batch,
        now,
        now + stale.pending,
    )
    .await?;
    report.claimed += stale_refunds.len();
    for r in stale_refunds {
        let (id, from) = (r.id, r.state.step());
        report.record("refund", id, from, sweep(app, r).await);
    }
    Ok(())
}

async fn sweep(app: &App, r: Refund) -> AppResult<&'static str> {
    let Some(tenant) = app.store.tenant(r.tenant_id).await? else {
        return Ok("tenant_gone");
    };
    let clients = app.upstreams.for_tenant(&tenant)?;
    let after = match &r.state {
        RefundState::Outgoing(OutgoingRefund::New | OutgoingRefund::Held { .. }) if r.is_intra_psp => {
            intra::advance(app, &clients, &tenant, r).await?
        }
        RefundState::Outgoing(OutgoingRefund::Sent { .. }) if r.is_intra_psp => {
            intra::settle(app, &tenant, r.id).await?
        }
        RefundState::Outgoing(OutgoingRefund::New) => advance(app, &clients, r).await?,
        // BTG may have it already (the answer was lost): its verdict first, else send again
        // (same idempotency key), which reads back again if BTG refuses.
        RefundState::Outgoing(OutgoingRefund::Held { .. }) => match read_back(app, &clients, &r, None).await {
            BtgSays::Verdict(verdict) => on_verdict(app, &clients, r, verdict).await?,
            BtgSays::Unknown(_) => advance(app, &clients, r).await?,
        },
        RefundState::Outgoing(OutgoingRefund::Sent { return_id, .. }) => {
            match clients.btg.reversal(&r.original_end_to_end_id, return_id).await {
                Ok(reversal) => on_verdict(app, &clients, r, Verdict::of(&reversal)).await?,
                Err(IntegrationError::NotFound { .. }) => {
                    // BTG accepted this one: the hold stays until BTG says otherwise.
                    tracing::error!(refund = %r.id, "BTG has no record of a reversal it accepted; hold kept");
                    return Ok("awaiting_btg");
                }
                Err(e) => {
                    tracing::warn!(refund = %r.id, error = %e, "reading the reversal back failed");
                    return Ok("awaiting_btg");
                }
            }
        }
        RefundState::Incoming(_) => incoming::finish(app, &clients, r).await?,
        _ => return Ok("already_final"),
    };
    Ok(if after.is_final() { "finished" } else { "moved" })
}
