//! `POST /v1/refunds/{id}/unblock`: re-read a refund stuck in flight from BTG and settle it to
//! what BTG says (docs/refunds.md, "Unblock"). BTG's record must match ours (its request id,
//! return EndToEndId and original EndToEndId) or nothing is settled; a reversal BTG does not
//! know is an error unless the caller opts in to releasing the hold.

use pix_core::error::ErrorCode;
use pix_core::refund::{OutgoingRefund, RefundState};
use pix_core::transfer::{BtgStatus, Failure};
use pix_integrations::IntegrationError;
use pix_integrations::btg::Reversal;
use pix_store::refunds::Refund;
use pix_store::tenants::Tenant;
use uuid::Uuid;

use super::outgoing::{Verdict, find_reversal, on_verdict};
use crate::{App, AppError, AppResult};

/// The outcome of an unblock.
pub struct Unblocked {
    pub refund: Refund,
    /// What BTG said; `None` for an intra-PSP refund (settled from local records).
    pub btg_status: Option<BtgStatus>,
    pub message: String,
}

pub async fn unblock(
    app: &App,
    tenant: &Tenant,
    account_id: Uuid,
    refund_id: Uuid,
    allow_not_found: bool,
) -> AppResult<Unblocked> {
    let refund = app
        .store
        .refund(tenant.id, refund_id)
        .await?
        .filter(|r| r.account_id == account_id)
        .ok_or_else(|| AppError::refused(ErrorCode::RefundNotFound, "no refund with this id for this account"))?;
    let in_flight = matches!(
        &refund.state,
        RefundState::Outgoing(OutgoingRefund::New | OutgoingRefund::Held { .. } | OutgoingRefund::Sent { .. })
    );
    if !in_flight {
        return Err(AppError::refused(
            ErrorCode::RefundNotUnblockable,
            format!("only a {} refund in flight can be unblocked; this one is {}", refund.kind(), refund.status()),
        ));
    }
    if refund.is_intra_psp {
        let before = refund.status();
        let refund = super::intra::settle(app, tenant, refund.id).await?;
        let message = format!("settled from the local records: {before} → {}", refund.status());
        return Ok(Unblocked { refund, btg_status: None, message });
    }
    let clients = app.upstreams.for_tenant(tenant)?;
    let found = match refund.return_end_to_end_id() {
        Some(return_id) => match clients.btg.reversal(&refund.original_end_to_end_id, return_id).await {
            Ok(reversal) => Some(reversal),
            Err(IntegrationError::NotFound { .. }) => None,
            Err(e) => return Err(AppError::Upstream { what: "reading the reversal back", source: e }),
        },
        None => find_reversal(&clients, &refund).await.map_err(AppError::upstream("reading the reversals back"))?,
    };
    let Some(reversal) = found else {
        if !allow_not_found {
            return Err(AppError::refused(
                ErrorCode::ProviderRefundNotFound,
                "BTG has no record of this reversal; nothing was changed (send allowNotFoundUnblock: true to \
                 release the hold once you have confirmed it must be released)",
            ));
        }
        // As for cash-outs: a reversal accepted a moment ago may not be readable yet.
        let age = app.clock.now() - refund.created_at;
        if age < app.settings.btg_not_found_grace {
            return Err(AppError::refused(
                ErrorCode::ProviderRefundNotFound,
                format!(
                    "BTG has no record of this reversal yet, but the refund is only {} s old; the hold is kept, \
                     retry after {} s",
                    age.num_seconds(),
                    app.settings.btg_not_found_grace.num_seconds()
                ),
            ));
        }
        let failure =
            Failure::new(pix_core::transfer::BTG_NOT_FOUND, "BTG has no record of the reversal; released on request");
        let refund = on_verdict(app, &clients, refund, Verdict::Refused(failure)).await?;
        tracing::warn!(refund = %refund.id, "refund released by unblock after BTG answered not found");
        return Ok(Unblocked {
            refund,
            btg_status: Some(BtgStatus::NotFound),
            message: "BTG has no record of the reversal: the hold was released and the refund failed".into(),
        });
    };
    consistent(&refund, &reversal)?;
    let verdict = Verdict::of(&reversal);
    let btg_status = match &verdict {
        Verdict::InFlight { .. } => BtgStatus::Processing,
        Verdict::Returned { .. } => BtgStatus::Confirmed,
        Verdict::Refused(_) => BtgStatus::Rejected,
    };
    let before = refund.status();
    let refund = on_verdict(app, &clients, refund, verdict).await?;
    let message = match btg_status {
        BtgStatus::Processing => "BTG is still processing the reversal; nothing to do yet, retry later".to_owned(),
        _ => format!("settled from BTG's status: {before} → {}", refund.status()),
    };
    Ok(Unblocked { refund, btg_status: Some(btg_status), message })
}

/// The consistency guard: BTG's reversal must be this refund's (its request id when BTG echoes
/// one, the same return id once known, the same original).
fn consistent(refund: &Refund, reversal: &Reversal) -> AppResult<()> {
    let id = refund.id.to_string();
    let mismatch = if reversal.request_id.as_deref().is_some_and(|r| r != id) {
        Some("entity (request id)")
    } else if refund.return_end_to_end_id().is_some_and(|r| r != reversal.return_end_to_end_id) {
        Some("returnIdentification")
    } else if reversal.original_end_to_end_id != refund.original_end_to_end_id {
        Some("originalEndToEndId")
    } else {
        None
    };
    match mismatch {
        Some(field) => {
            tracing::error!(refund = %refund.id, field, "BTG's reversal diverges from the local refund; unblock aborted");
            Err(AppError::refused(
                ErrorCode::UnblockInconsistent,
                format!("BTG's reversal diverges from this refund ({field}); nothing was settled"),
            ))
        }
        None => Ok(()),
    }
}
