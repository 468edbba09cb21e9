//! Contradictions with BTG: a CONFIRMED for a cash-out that failed (its hold was released, so
//! the customer kept money that left), or a REJECTED for one that completed (its hold was
//! committed, so the customer lost money that never left).
//!
//! The rule (docs/transfers.md, "Incidents"): the contradicting verdict is first checked
//! against BTG's own record; a stale or mistaken webhook changes nothing. When BTG stands by it,
//! the transfer becomes RECONCILIATION_REQUIRED (an event, a metric, the admin listing), and the
//! ledger is corrected: the customer is re-debited what the hold would have taken, or the
//! committed hold is reverted. A correction Midaz refuses (say, the balance no longer covers a
//! re-debit) leaves the incident open; the sweeper retries it and operators see it listed.

use pix_core::transfer::{CashoutEvent, CashoutState, IncidentKind, IncidentRecord, TransferState, TransferStatus};
use pix_store::transfers::Transfer;

use super::cashout::{Verdict, post_correction};
use super::{Notify, reload, save};
use crate::{App, AppError, AppResult, TenantClients};

/// BTG's verdict contradicts the final cash-out `t`.
pub(super) async fn contradicted(
    app: &App,
    clients: &TenantClients,
    mut t: Transfer,
    kind: IncidentKind,
) -> AppResult<Transfer> {
    let payment = clients
        .btg
        .payment(&t.end_to_end_id)
        .await
        .map_err(AppError::upstream("reading the contradicted payment back"))?;
    let stands = matches!(
        (kind, Verdict::of(&payment)),
        (IncidentKind::ConfirmedAfterFailed, Verdict::Paid { .. })
            | (IncidentKind::RejectedAfterCompleted, Verdict::Refused(_))
    );
    if !stands {
        tracing::warn!(transfer = %t.id, btg = %payment.status.as_str(), "a contradicting verdict that BTG does not stand by; ignored");
        return Ok(t);
    }
    loop {
        let now = app.clock.now();
        let TransferState::Cashout(state) = &t.state else { return Ok(t) };
        if matches!(state, CashoutState::Incident { .. }) {
            break;
        }
        t.state = TransferState::Cashout(state.on(CashoutEvent::Contradicted(kind))?);
        t.details.incident = Some(IncidentRecord {
            kind,
            detected_at: now,
            note: "BTG contradicts the outcome; correcting the ledger".into(),
        });
        if save(app, &mut t, Notify::Event).await? {
            metrics::counter!("pix_transfer_incidents_total", "kind" => kind.as_str()).increment(1);
            tracing::error!(transfer = %t.id, kind = %kind, "BTG contradicts a final cash-out: incident opened");
            break;
        }
        t = reload(app, &t).await?;
    }
    correct(app, clients, t).await
}

/// Posts the ledger correction of an open incident. A refusal or an unknown outcome leaves it
/// open (noted on the incident) for the sweeper and the operators; it is not an error here.
pub(super) async fn correct(app: &App, clients: &TenantClients, mut t: Transfer) -> AppResult<Transfer> {
    loop {
        let TransferState::Cashout(CashoutState::Incident { kind, correction: None, .. }) = &t.state else {
            return Ok(t);
        };
        let kind = *kind;
        let tx = match post_correction(clients, &t, kind).await {
            Ok(tx) => tx,
            Err(e) => {
                metrics::counter!("pix_transfer_incident_corrections_failed_total").increment(1);
                tracing::error!(transfer = %t.id, error = %e, "incident correction not posted; left open");
                if let Some(incident) = &mut t.details.incident {
                    incident.note = format!("correction not posted yet: {e}");
                }
                if !save(app, &mut t, Notify::Quiet).await? {
                    t = reload(app, &t).await?;
                }
                return Ok(t);
            }
        };
        let TransferState::Cashout(state) = &t.state else { return Ok(t) };
        t.state = TransferState::Cashout(state.on(CashoutEvent::Corrected(tx.clone()))?);
        if let Some(incident) = &mut t.details.incident {
            incident.note = match kind {
                IncidentKind::ConfirmedAfterFailed => format!("customer re-debited (Midaz {tx})"),
                IncidentKind::RejectedAfterCompleted => format!("committed hold reverted (Midaz {tx})"),
                IncidentKind::DebitRevertFailed => format!("intra-PSP debit reverted (Midaz {tx})"),
            };
        }
        if save(app, &mut t, Notify::Event).await? {
            tracing::warn!(transfer = %t.id, correction = %tx, "incident corrected in the ledger");
            return Ok(t);
        }
        t = reload(app, &t).await?;
    }
}

/// Cash-outs in RECONCILIATION_REQUIRED, oldest first, across tenants (an operator's queue).
pub async fn list(app: &App, limit: i64) -> AppResult<Vec<Transfer>> {
    Ok(app.store.transfers_with_status(TransferStatus::ReconciliationRequired, limit).await?)
}
