//! The collection lifecycle (pix_core::collection): each transition is saved with its
//! `COLLECTION/{IMMEDIATE|DUE_DATE}` event in one transaction; the cash-in path checks a payment
//! against its charge and concludes it as the credit is saved; the expiry job removes what
//! outlived its validity.

use chrono::{DateTime, NaiveDate, Utc};
use pix_core::clock::brasilia_date;
use pix_core::collection::{
    CollectionDetails, CollectionEvent, CollectionKind, CollectionStatus, PaymentMismatch, Schedule, check_payment,
};
use pix_core::money::Money;
use pix_store::collections::{Collection, save_collection};
use pix_store::events::{OutboundEvent, record_outbound_event};
use pix_store::{StoreError, Tx};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{App, AppError, AppResult};

/// The webhook flow of collection events.
pub const FLOW: &str = "COLLECTION";

/// A collection as clients and webhooks see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionView {
    pub id: Uuid,
    /// `IMMEDIATE` or `DUE_DATE`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "IMMEDIATE")]
    pub kind: CollectionKind,
    /// `ACTIVE`, `CONCLUDED`, `REMOVED_BY_RECEIVER` or `REMOVED_BY_PSP`.
    #[schema(value_type = String, example = "ACTIVE")]
    pub status: CollectionStatus,
    pub tx_id: String,
    pub receiver_key: String,
    pub account_id: Uuid,
    /// COB: the amount; COBV: `amount.original`.
    #[schema(value_type = String, example = "150.00")]
    pub amount: Money,
    /// The BR Code ("Pix Copia e Cola") pointing at `location`.
    pub emv: String,
    /// Field 26.25: where payers fetch the signed charge (no scheme).
    pub location: String,
    /// API Pix `revisao`: +1 per update.
    pub revision: i64,
    /// The charge's fields as created or last updated (schedule, debtor, texts, metadata, tags).
    #[schema(value_type = Object)]
    pub details: CollectionDetails,
    /// When the expiry job removes it if unpaid.
    pub expires_at: DateTime<Utc>,
    /// The cash-in that concluded it.
    pub end_to_end_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl CollectionView {
    pub fn new(c: &Collection) -> CollectionView {
        CollectionView {
            id: c.id,
            kind: c.kind,
            status: c.status,
            tx_id: c.tx_id.clone(),
            receiver_key: c.receiver_key.clone(),
            account_id: c.account_id,
            amount: Money::from_centavos(c.amount),
            emv: c.emv.clone(),
            location: c.location.clone(),
            revision: c.revision,
            details: c.details.clone(),
            expires_at: c.expires_at,
            end_to_end_id: c.paid_end_to_end_id.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            deleted_at: c.deleted_at,
        }
    }
}

/// A charge's location: `{base}/qr/v2/{cob|cobv}/{token}`.
pub fn location(base: &str, kind: CollectionKind, token: &str) -> String {
    format!("{base}/qr/v2/{}/{token}", kind.location_segment())
}

/// When an unpaid charge is removed: creation + expiration (COB), or the end of the last payable
/// day in Brasília (COBV: due date + validAfterDue).
pub fn expiry(created_at: DateTime<Utc>, schedule: &Schedule) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Immediate { expiration_seconds } => {
            created_at.checked_add_signed(chrono::Duration::seconds(i64::from(*expiration_seconds)))
        }
        Schedule::DueDate { due_date, valid_after_due, .. } => {
            let last = pix_core::brcode::last_payable_date(*due_date, *valid_after_due)?;
            Some(pix_core::clock::brasilia_day_start(last.succ_opt()?))
        }
    }
}

/// Moves `c` by `event` in `tx` and records its event; `false` when another writer saved it first
/// (the caller re-reads and re-decides). An impossible move is a `Conflict`.
pub async fn transition(
    tx: &mut Tx,
    c: &mut Collection,
    event: CollectionEvent,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    c.status = c.status.on(event).map_err(|e| AppError::Store(StoreError::Conflict(e.to_string())))?;
    c.updated_at = now;
    if event == CollectionEvent::DeletedByReceiver {
        c.deleted_at = Some(now);
    }
    if !save_collection(tx, c).await? {
        return Ok(false);
    }
    record_event(tx, c, now).await?;
    c.version += 1;
    Ok(true)
}

/// Records the `COLLECTION/{IMMEDIATE|DUE_DATE}` event of `c` as it is now.
pub async fn record_event(tx: &mut Tx, c: &Collection, now: DateTime<Utc>) -> AppResult<()> {
    let payload = serde_json::to_value(CollectionView::new(c))
        .map_err(|e| AppError::Internal(format!("collection event: {e}")))?;
    let id = c.id.to_string();
    let event = OutboundEvent {
        tenant_id: c.tenant_id,
        flow_type: FLOW,
        entity_type: c.kind.as_str(),
        entity_id: &id,
        payload: &payload,
    };
    record_outbound_event(tx, &event, now).await?;
    Ok(())
}

/// Whether a cash-in of `paid` carrying `tx_id`, settled at `settled_at`, may settle one of the
/// tenant's collections. A txid that names none of them is not ours to judge (a static code's).
pub async fn check_cashin(
    app: &App,
    tenant: Uuid,
    tx_id: &str,
    paid: Money,
    settled_at: DateTime<Utc>,
) -> AppResult<Result<(), PaymentMismatch>> {
    let Some(c) = app.store.collection_by_tx_id(tenant, tx_id).await? else {
        return Ok(Ok(()));
    };
    if c.status == CollectionStatus::Active && c.expires_at <= settled_at {
        return Ok(Err(PaymentMismatch::Expired));
    }
    let date: NaiveDate = brasilia_date(settled_at);
    Ok(check_payment(c.status, &c.details.schedule, Money::from_centavos(c.amount), paid, date))
}

/// Concludes the tenant's collection `tx_id` in `tx`, as the cash-in `end_to_end_id` that paid it
/// is credited. Idempotent: a collection this cash-in already concluded is left alone. One that
/// another payment concluded (two payers racing) is logged: the second cash-in was credited all
/// the same, and the receiver refunds it.
pub async fn conclude_in(
    tx: &mut Tx,
    tenant: Uuid,
    tx_id: &str,
    end_to_end_id: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let Some(mut c) = pix_store::collections::collection_by_tx_id_in(tx, tenant, tx_id).await? else {
        return Ok(());
    };
    match c.status {
        CollectionStatus::Active => {
            c.paid_end_to_end_id = Some(end_to_end_id.to_owned());
            if !transition(tx, &mut c, CollectionEvent::Paid, now).await? {
                return Err(AppError::Store(StoreError::Conflict(format!("collection {} moved meanwhile", c.id))));
            }
        }
        _ if c.paid_end_to_end_id.as_deref() == Some(end_to_end_id) => {}
        status => {
            tracing::warn!(collection = %c.id, %status, end_to_end_id, "a cash-in paid a collection that is no longer active");
        }
    }
    Ok(())
}

/// Removes every ACTIVE collection past its expiry (REMOVED_BY_PSP); returns how many.
pub async fn expire_once(app: &App, batch: i64) -> AppResult<usize> {
    let now = app.clock.now();
    let mut removed = 0;
    for mut c in app.store.expired_collections(now, batch).await? {
        let mut tx = app.store.begin().await?;
        if transition(&mut tx, &mut c, CollectionEvent::Expired, now).await? {
            tx.commit().await?;
            removed += 1;
        }
        // Otherwise it was paid or deleted meanwhile: nothing to do.
    }
    Ok(removed)
}

/// The expiry job: every `every`, until `shutdown`.
pub async fn run_expiry(app: App, every: std::time::Duration, shutdown: CancellationToken) {
    loop {
        match expire_once(&app, 500).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "expired collections removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "collection expiry failed; retried next round"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
