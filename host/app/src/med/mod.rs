//! MED cautionary blocks (docs/med.md): an infraction report against a Pix one of
//! our customers received holds the reported amount, up to the receiving account's available
//! balance, as a pending Midaz transaction (account → `@external/BRL`); the report and its refund
//! request closing in the customer's favour cancel it, and a MED refund of exactly the held amount
//! adopts it as its own hold (so the money never becomes spendable between block and return).
//!
//! Decisions (open, release, adopt) are written inside the caller's DB transaction with their
//! CAUTIONARY_BLOCK event; the Midaz steps run in [`advance`], from a job that retries, with
//! idempotency keys derived from the block id. No hold is let go of on an ambiguous answer: a
//! failed cancel is read back.

mod view;

use chrono::{DateTime, Utc};
use pix_core::clock::Clock;
use pix_core::med::{BlockEvent, BlockState, place_key};
use pix_core::transfer::{CashinState, Direction, LedgerTxId, TransferState};
use pix_integrations::midaz::{TransactionRequest, TransactionStatus};
use pix_store::cautionary_blocks::{CautionaryBlock, block_of_report_in, insert_block, save_block};
use pix_store::events::{OutboundEvent, record_outbound_event};
use pix_store::{Store, StoreError, Tx};
use uuid::Uuid;

pub use view::CautionaryBlockView;

use crate::refunds::outgoing::available;
use crate::transfers::{ASSET, EXTERNAL, ledger_key, leg};
use crate::{AppError, AppResult, TenantClients};

/// The outbound event entity of a block (flow DICT).
pub const ENTITY: &str = "CAUTIONARY_BLOCK";

/// What an infraction report against one of our payments asks to block.
pub struct BlockRequest<'a> {
    pub tenant: Uuid,
    pub infraction_report_id: Uuid,
    /// The reported payment.
    pub end_to_end_id: &'a str,
    /// DICT's `InfractionAmount` (centavos), when it sent one.
    pub infraction_amount: Option<i64>,
}

/// Records the decision to block (REQUESTED, with its event) in `tx` when the report names a
/// credited cash-in of the tenant with something left to return: DICT's `InfractionAmount`, else
/// the amount not yet refunded, never more than that. `None` when there is nothing to block, or
/// when the report already has its block (a redelivery).
pub async fn open(
    tx: &mut Tx,
    store: &Store,
    req: &BlockRequest<'_>,
    now: DateTime<Utc>,
) -> AppResult<Option<CautionaryBlock>> {
    let Some(cashin) = store.transfer_by_end_to_end_id(req.tenant, Direction::Cashin, req.end_to_end_id).await? else {
        return Ok(None);
    };
    let (TransferState::Cashin(CashinState::Credited { .. }), Some(alias)) =
        (&cashin.state, cashin.details.ledger_alias.as_deref())
    else {
        return Ok(None);
    };
    let left = cashin.amount - store.refunded_amount(req.tenant, cashin.id).await?;
    let requested = req.infraction_amount.map_or(left, |a| a.min(left));
    if requested <= 0 {
        return Ok(None);
    }
    let block = CautionaryBlock {
        id: pix_core::ids::new_id(),
        tenant_id: req.tenant,
        transfer_id: cashin.id,
        end_to_end_id: req.end_to_end_id.to_owned(),
        account_alias: alias.to_owned(),
        infraction_report_id: req.infraction_report_id,
        requested_amount: requested,
        state: BlockState::Requested,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    if !insert_block(tx, &block).await? {
        return Ok(None);
    }
    record_event(tx, &block, now).await?;
    tracing::info!(block = %block.id, transfer = %cashin.id, requested, "cautionary block requested");
    Ok(Some(block))
}

/// Decides to release `block` in `tx` (with its event). Returns the block as saved when a Midaz
/// step remains (RELEASING: the caller has the job run [`advance`]); `None` when nothing was held
/// (released at once) or the block is already final.
pub async fn request_release(
    tx: &mut Tx,
    mut block: CautionaryBlock,
    now: DateTime<Utc>,
) -> AppResult<Option<CautionaryBlock>> {
    loop {
        if block.status().is_final() || matches!(block.state, BlockState::Releasing { .. }) {
            return Ok(None);
        }
        block.state = block.state.on(BlockEvent::ReleaseRequested)?;
        block.updated_at = now;
        if save_block(tx, &block).await? {
            block.version += 1;
            record_event(tx, &block, now).await?;
            tracing::info!(block = %block.id, status = %block.status(), "cautionary block release decided");
            return Ok(matches!(block.state, BlockState::Releasing { .. }).then_some(block));
        }
        // The job moved it meanwhile (e.g. REQUESTED → PLACING): decide on what it wrote.
        block = block_of_report_in(tx, block.tenant_id, block.infraction_report_id)
            .await?
            .ok_or(AppError::Store(StoreError::NotFound))?;
    }
}

/// A refund of `amount` may take this block's hold over: it is HELD for exactly that amount.
pub fn adoptable(block: &CautionaryBlock, amount: i64) -> bool {
    matches!(block.state, BlockState::Held { amount: held, .. } if held == amount)
}

/// Marks `block` RETURNED to `refund` (with its event) in the refund's insert transaction; a
/// block that moved since it was read refuses, and the refund is not created.
pub(crate) async fn adopt_in(
    tx: &mut Tx,
    block: &CautionaryBlock,
    refund: Uuid,
    now: DateTime<Utc>,
) -> AppResult<LedgerTxId> {
    let mut adopted = block.clone();
    adopted.state = block.state.on(BlockEvent::Returned { refund_id: refund })?;
    adopted.updated_at = now;
    if !save_block(tx, &adopted).await? {
        return Err(AppError::Unknown(format!("cautionary block {} moved while the refund was created", block.id)));
    }
    adopted.version += 1;
    record_event(tx, &adopted, now).await?;
    adopted.state.hold().cloned().ok_or_else(|| AppError::Internal("a returned block without its hold".into()))
}

/// Moves a block forward from wherever it stopped until it is HELD or final: fixes the amount
/// from the available balance, places the hold, or cancels it. An unknown outcome is an `Err`
/// that is not permanent: the same call may be made again.
pub async fn advance(
    store: &Store,
    clock: &dyn Clock,
    clients: &TenantClients,
    mut block: CautionaryBlock,
) -> AppResult<CautionaryBlock> {
    loop {
        let event = match &block.state {
            BlockState::Requested => {
                let available = available(clients, &block.account_alias).await?;
                BlockEvent::AmountFixed(block.requested_amount.min(available.max(0)))
            }
            BlockState::Placing { .. } | BlockState::Releasing { hold: None, .. } => place(clients, &block).await?,
            BlockState::Releasing { hold: Some(hold), .. } => {
                cancel(clients, hold).await?;
                BlockEvent::Cancelled
            }
            BlockState::Held { .. }
            | BlockState::Released { .. }
            | BlockState::Returned { .. }
            | BlockState::Unfunded => {
                return Ok(block);
            }
        };
        let before = block.clone();
        block.state = block.state.on(event)?;
        block.updated_at = clock.now();
        let mut tx = store.begin().await?;
        if save_block(&mut tx, &block).await? {
            record_event(&mut tx, &block, block.updated_at).await?;
            tx.commit().await?;
            block.version += 1;
            tracing::info!(block = %block.id, status = %block.status(), amount = ?block.state.amount(), "cautionary block moved");
        } else {
            drop(tx);
            // A release decided meanwhile: continue from what was written.
            block = store
                .cautionary_block(before.tenant_id, before.id)
                .await?
                .ok_or(AppError::Store(StoreError::NotFound))?;
        }
    }
}

/// The hold: a pending transaction of the fixed amount from the receiving account to
/// `@external/BRL` (what a refund would send), under the block's key for this attempt, so a
/// retry is answered with the same transaction. Midaz certainly refusing it for lack of balance
/// is a `Shortfall` (nothing held); any other failure is retried.
async fn place(clients: &TenantClients, block: &CautionaryBlock) -> AppResult<BlockEvent> {
    let amount = block.state.amount().unwrap_or_default();
    let request =
        TransactionRequest::transfer(ASSET, vec![leg(&block.account_alias, amount)], vec![leg(EXTERNAL, amount)])
            .pending()
            .code(block.end_to_end_id.clone())
            .description(format!("MED cautionary block of {}", block.end_to_end_id))
            .meta("cautionaryBlockId", block.id.to_string());
    match clients.ledger.create_transaction(&request, &ledger_key(place_key(block.id, block.state.attempt()))).await {
        Ok(tx) => Ok(BlockEvent::Placed(LedgerTxId(tx.id))),
        Err(e) if e.is_definite() && e.code() == Some(INSUFFICIENT_FUNDS) => {
            Ok(BlockEvent::Shortfall { available: available(clients, &block.account_alias).await? })
        }
        Err(source) => Err(AppError::Upstream { what: "placing the cautionary block", source }),
    }
}

/// Midaz's code for a source without the balance.
const INSUFFICIENT_FUNDS: &str = "0018";

/// Cancels the hold. A failed cancel may still have happened (or happened earlier): the
/// transaction is read back, and only CANCELED counts as done.
async fn cancel(clients: &TenantClients, hold: &LedgerTxId) -> AppResult<()> {
    let Err(e) = clients.ledger.cancel(&hold.0).await else {
        return Ok(());
    };
    match clients.ledger.transaction(&hold.0).await {
        Ok(tx) if tx.status() == TransactionStatus::Canceled => Ok(()),
        Ok(tx) => Err(AppError::Unknown(format!("cancelling hold {hold}: {e}; Midaz has it {:?}", tx.status()))),
        Err(read) => Err(AppError::Unknown(format!("cancelling hold {hold}: {e}; reading it back: {read}"))),
    }
}

/// Records the CAUTIONARY_BLOCK event of `block`'s current state in `tx`.
async fn record_event(tx: &mut Tx, block: &CautionaryBlock, now: DateTime<Utc>) -> AppResult<()> {
    let payload =
        serde_json::to_value(CautionaryBlockView::from(block)).map_err(|e| AppError::Internal(e.to_string()))?;
    let id = block.id.to_string();
    let event = OutboundEvent {
        tenant_id: block.tenant_id,
        flow_type: "DICT",
        entity_type: ENTITY,
        entity_id: &id,
        payload: &payload,
    };
    record_outbound_event(tx, &event, now).await?;
    Ok(())
}
