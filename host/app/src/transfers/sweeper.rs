//! The stuck-work sweeper: finds transfers (and, through `refunds::sweeper`, refunds) left in a
//! non-final step longer than their step allows, reads their state back from BTG and Midaz, and drives each to a final state
//! through the same use-case functions the requests and webhooks use. It replaces a safety job
//! per transfer: nothing is written for a transfer that finishes on its own.
//!
//! Several sweepers may run (one per instance): each claims its batch under a lease
//! (`claim_stale_transfers`), and every step it takes is idempotent and saved by version.

use std::collections::HashMap;

use pix_core::transfer::{CashinState, CashoutState, TransferState};
use pix_integrations::IntegrationError;
use pix_store::transfers::{Transfer, claim_not_found_releases, claim_stale_transfers};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::cashout::{BtgSays, Verdict, advance, on_verdict, read_back};
use super::{cashin, incidents, intra, review};
use crate::{App, AppResult, TenantClients};

/// What one pass did, by outcome.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub claimed: usize,
    pub outcomes: HashMap<&'static str, usize>,
}

impl SweepReport {
    /// Logs and counts (here and in `pix_sweeper_decisions_total`) what the sweeper did with
    /// one `entity` ("transfer", "refund") that was at `from`; a failure is retried later.
    pub(crate) fn record(
        &mut self,
        entity: &'static str,
        id: Uuid,
        from: impl std::fmt::Display,
        result: AppResult<&'static str>,
    ) {
        let outcome = result.unwrap_or_else(|e| {
            tracing::warn!(entity, %id, error = %e, "sweeper could not move it; retried later");
            "unknown"
        });
        tracing::info!(entity, %id, %from, outcome, "sweeper decision");
        metrics::counter!("pix_sweeper_decisions_total", "outcome" => outcome).increment(1);
        *self.outcomes.entry(outcome).or_default() += 1;
    }
}

/// Sweeps until nothing stale is left (or `shutdown`), then every `sweep_every`.
pub async fn run(app: App, shutdown: CancellationToken) {
    tracing::info!(every = ?app.settings.sweep_every, "transfer sweeper started");
    loop {
        match sweep_once(&app).await {
            Ok(report) if report.claimed as i64 >= app.settings.sweep_batch => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "transfer sweep failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(app.settings.sweep_every) => {}
        }
    }
    tracing::info!("transfer sweeper stopped");
}

/// One pass over a batch of stale transfers.
pub async fn sweep_once(app: &App) -> AppResult<SweepReport> {
    let now = app.clock.now();
    let retry_at = now + app.settings.stale_after.pending;
    let stale =
        claim_stale_transfers(&app.store, app.settings.stale_after, app.settings.sweep_batch, now, retry_at).await?;
    let mut report = SweepReport { claimed: stale.len(), ..SweepReport::default() };
    for t in stale {
        let (id, from) = (t.id, t.state.step());
        report.record("transfer", id, from, sweep(app, t).await);
    }
    if let Err(e) = watch_not_found_releases(app, &mut report).await {
        tracing::error!(error = %e, "re-reading BTG_NOT_FOUND releases failed");
    }
    if let Err(e) = crate::refunds::sweeper::sweep_once(app, &mut report).await {
        tracing::error!(error = %e, "refund sweep failed");
    }
    Ok(report)
}

/// Drives one stale transfer; the outcome names what happened.
async fn sweep(app: &App, t: Transfer) -> AppResult<&'static str> {
    let Some(tenant) = app.store.tenant(t.tenant_id).await? else {
        return Ok("tenant_gone");
    };
    let clients = app.upstreams.for_tenant(&tenant)?;
    let after = match &t.state {
        TransferState::Cashout(CashoutState::InReview) => review::expire(app, t).await?,
        TransferState::Cashout(CashoutState::New) => advance(app, &clients, t).await?,
        TransferState::Cashout(CashoutState::Held { .. }) => {
            // BTG may have it already (the answer was lost): its verdict first, else send again
            // (same idempotency key), which reads back again if BTG refuses.
            match read_back(app, &clients, &t, false, app.clock.now()).await {
                BtgSays::Verdict(verdict) => on_verdict(app, &clients, t, verdict).await?,
                BtgSays::Unknown(_) => advance(app, &clients, t).await?,
            }
        }
        TransferState::Cashout(CashoutState::Sent { .. }) => match sent(&clients, &t).await {
            Some(verdict) => on_verdict(app, &clients, t, verdict).await?,
            None => return Ok("awaiting_btg"),
        },
        TransferState::Cashout(CashoutState::Incident { .. }) => incidents::correct(app, &clients, t).await?,
        // Intra-PSP: queue the delivery again, or run the settlement the delivery would have.
        TransferState::Cashout(CashoutState::Debited { .. }) => advance(app, &clients, t).await?,
        TransferState::Cashout(CashoutState::Delivering { .. }) => intra::settle(app, &tenant, t.id).await?,
        TransferState::Cashin(CashinState::Accepted | CashinState::Refusing { .. }) => {
            cashin::finish(app, &clients, t).await?
        }
        _ => return Ok("already_final"),
    };
    Ok(if after.is_final() { "finished" } else { "moved" })
}

/// Cash-outs released because BTG had no record of them (an operator's `allowNotFoundUnblock`,
/// or a refused send past the grace) are read back until `not_found_watch` ends: a 404 may have
/// been wrong. BTG confirming one opens a CONFIRMED_AFTER_FAILED incident through `on_verdict`,
/// which re-debits the customer; a rejection or another 404 changes nothing.
async fn watch_not_found_releases(app: &App, report: &mut SweepReport) -> AppResult<()> {
    let now = app.clock.now();
    let settings = &app.settings;
    let released = claim_not_found_releases(
        &app.store,
        now - settings.not_found_watch,
        settings.sweep_batch,
        now,
        now + settings.stale_after.sent,
    )
    .await?;
    report.claimed += released.len();
    for t in released {
        let id = t.id;
        report.record("transfer", id, pix_core::transfer::BTG_NOT_FOUND, reread_release(app, t).await);
    }
    Ok(())
}

async fn reread_release(app: &App, t: Transfer) -> AppResult<&'static str> {
    let Some(tenant) = app.store.tenant(t.tenant_id).await? else {
        return Ok("tenant_gone");
    };
    let clients = app.upstreams.for_tenant(&tenant)?;
    let payment = match clients.btg.payment(&t.end_to_end_id).await {
        Err(IntegrationError::NotFound { .. }) => return Ok("still_not_found"),
        read => read.map_err(crate::AppError::upstream("reading a released payment back from BTG"))?,
    };
    let id = t.id;
    let after = on_verdict(app, &clients, t, Verdict::of(&payment)).await?;
    if matches!(after.state, TransferState::Cashout(CashoutState::Released { .. })) {
        return Ok("still_released");
    }
    tracing::error!(transfer = %id, status = %after.status(), "BTG paid a cash-out released on its \"not found\"");
    Ok("paid_after_not_found")
}

/// BTG's verdict on a payment it accepted. "Not found" is never read as a refusal here: BTG
/// accepted this one, so the hold stays until BTG says otherwise.
async fn sent(clients: &TenantClients, t: &Transfer) -> Option<Verdict> {
    match clients.btg.payment(&t.end_to_end_id).await {
        Ok(payment) => Some(Verdict::of(&payment)),
        Err(IntegrationError::NotFound { .. }) => {
            metrics::counter!("pix_sweeper_sent_not_found_total").increment(1);
            tracing::error!(transfer = %t.id, "BTG has no record of a payment it accepted; hold kept");
            None
        }
        Err(e) => {
            tracing::warn!(transfer = %t.id, error = %e, "reading the payment back failed");
            None
        }
    }
}
