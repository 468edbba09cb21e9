//! The MED cautionary block (bloqueio cautelar) as a typed state machine: when an infraction
//! report names a Pix one of our customers received, the reported amount (up to the account's
//! available balance) is held in Midaz until the report and its refund request close, then
//! released to the customer or returned to the payer (docs/med.md).
//!
//! The amount is fixed (`Placing`) before Midaz is asked to hold it, so a retried request is the
//! same request under the same idempotency key; a hold is only ever let go of by a release that
//! Midaz confirmed, or by a refund adopting it.

use uuid::Uuid;

use crate::text_enum;
use crate::transfer::LedgerTxId;

text_enum! {
    /// What clients see of a cautionary block (the `status` column).
    pub enum BlockStatus {
        /// Decided; the account's available balance is not read yet.
        Requested = "REQUESTED",
        /// The amount is fixed; Midaz has not (certainly) placed the hold.
        Placing = "PLACING",
        /// The amount is on hold in the receiving account.
        Held = "HELD",
        /// The report or request closed in the customer's favour; the hold is being cancelled.
        Releasing = "RELEASING",
        /// Nothing is held any more (the hold was cancelled, or never placed).
        Released = "RELEASED",
        /// A MED refund took the hold over: the money goes back to the payer (pacs.004).
        Returned = "RETURNED",
        /// The account had no available balance: nothing to block.
        Unfunded = "UNFUNDED",
    }
}

impl BlockStatus {
    pub fn is_final(self) -> bool {
        matches!(self, BlockStatus::Released | BlockStatus::Returned | BlockStatus::Unfunded)
    }
}

/// Where a cautionary block is, with what each state owns. Amounts are centavos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockState {
    Requested,
    /// `attempt` numbers the idempotency key: a new one only after Midaz certainly refused the
    /// previous attempt (so nothing is held under it).
    Placing {
        amount: i64,
        attempt: i32,
    },
    Held {
        amount: i64,
        hold: LedgerTxId,
    },
    /// `hold` is `None` when the release was decided while placing: the place is finished (same
    /// key, so Midaz replays it) before the cancel.
    Releasing {
        amount: i64,
        attempt: i32,
        hold: Option<LedgerTxId>,
    },
    Released {
        amount: i64,
        hold: Option<LedgerTxId>,
    },
    Returned {
        amount: i64,
        hold: LedgerTxId,
        refund_id: Uuid,
    },
    Unfunded,
}

/// What happens to a cautionary block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockEvent {
    /// The amount to hold: the requested one up to the available balance (0: nothing to block).
    AmountFixed(i64),
    /// Midaz placed the hold (or replayed it under the same key).
    Placed(LedgerTxId),
    /// Midaz certainly refused the hold for lack of balance; this much is available now.
    Shortfall { available: i64 },
    /// The report or request closed in the customer's favour.
    ReleaseRequested,
    /// Midaz cancelled the hold (or it was already CANCELED).
    Cancelled,
    /// A MED refund adopted the hold as its own.
    Returned { refund_id: Uuid },
}

impl BlockEvent {
    fn name(&self) -> &'static str {
        match self {
            BlockEvent::AmountFixed(_) => "AmountFixed",
            BlockEvent::Placed(_) => "Placed",
            BlockEvent::Shortfall { .. } => "Shortfall",
            BlockEvent::ReleaseRequested => "ReleaseRequested",
            BlockEvent::Cancelled => "Cancelled",
            BlockEvent::Returned { .. } => "Returned",
        }
    }
}

/// A move the machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cautionary block at {status} cannot take {event}")]
pub struct BlockTransitionError {
    pub status: BlockStatus,
    pub event: &'static str,
}

impl BlockState {
    /// The next state after `event`, or why it cannot happen here.
    pub fn on(&self, event: BlockEvent) -> Result<BlockState, BlockTransitionError> {
        use BlockEvent as E;
        use BlockState as S;
        let next = match (self, &event) {
            (S::Requested, E::AmountFixed(0)) => S::Unfunded,
            (S::Requested, E::AmountFixed(amount)) if *amount > 0 => S::Placing { amount: *amount, attempt: 0 },
            (S::Placing { amount, .. }, E::Placed(hold)) => S::Held { amount: *amount, hold: hold.clone() },
            (S::Placing { amount, attempt }, E::Shortfall { available }) => match (*available).min(*amount) {
                left if left <= 0 => S::Unfunded,
                left => S::Placing { amount: left, attempt: attempt + 1 },
            },
            (S::Releasing { amount, attempt, hold: None }, E::Placed(hold)) => {
                S::Releasing { amount: *amount, attempt: *attempt, hold: Some(hold.clone()) }
            }
            // Releasing before anything was held: a refused place means there is nothing to cancel.
            (S::Releasing { amount, hold: None, .. }, E::Shortfall { .. }) => {
                S::Released { amount: *amount, hold: None }
            }
            (S::Requested, E::ReleaseRequested) => S::Released { amount: 0, hold: None },
            (S::Placing { amount, attempt }, E::ReleaseRequested) => {
                S::Releasing { amount: *amount, attempt: *attempt, hold: None }
            }
            (S::Held { amount, hold }, E::ReleaseRequested) => {
                S::Releasing { amount: *amount, attempt: 0, hold: Some(hold.clone()) }
            }
            (S::Releasing { amount, hold: Some(hold), .. }, E::Cancelled) => {
                S::Released { amount: *amount, hold: Some(hold.clone()) }
            }
            (S::Held { amount, hold }, E::Returned { refund_id }) => {
                S::Returned { amount: *amount, hold: hold.clone(), refund_id: *refund_id }
            }
            _ => return Err(BlockTransitionError { status: self.status(), event: event.name() }),
        };
        Ok(next)
    }

    pub fn status(&self) -> BlockStatus {
        match self {
            BlockState::Requested => BlockStatus::Requested,
            BlockState::Placing { .. } => BlockStatus::Placing,
            BlockState::Held { .. } => BlockStatus::Held,
            BlockState::Releasing { .. } => BlockStatus::Releasing,
            BlockState::Released { .. } => BlockStatus::Released,
            BlockState::Returned { .. } => BlockStatus::Returned,
            BlockState::Unfunded => BlockStatus::Unfunded,
        }
    }

    /// The amount fixed to hold, once fixed (0 when nothing was).
    pub fn amount(&self) -> Option<i64> {
        match self {
            BlockState::Requested => None,
            BlockState::Unfunded => Some(0),
            BlockState::Placing { amount, .. }
            | BlockState::Held { amount, .. }
            | BlockState::Releasing { amount, .. }
            | BlockState::Released { amount, .. }
            | BlockState::Returned { amount, .. } => Some(*amount),
        }
    }

    /// The pending Midaz transaction, once known.
    pub fn hold(&self) -> Option<&LedgerTxId> {
        match self {
            BlockState::Held { hold, .. } | BlockState::Returned { hold, .. } => Some(hold),
            BlockState::Releasing { hold, .. } | BlockState::Released { hold, .. } => hold.as_ref(),
            BlockState::Requested | BlockState::Placing { .. } | BlockState::Unfunded => None,
        }
    }

    /// The idempotency attempt of the place request.
    pub fn attempt(&self) -> i32 {
        match self {
            BlockState::Placing { attempt, .. } | BlockState::Releasing { attempt, .. } => *attempt,
            _ => 0,
        }
    }

    pub fn refund_id(&self) -> Option<Uuid> {
        match self {
            BlockState::Returned { refund_id, .. } => Some(*refund_id),
            _ => None,
        }
    }

    pub fn columns(&self) -> BlockColumns {
        BlockColumns {
            status: self.status(),
            amount: self.amount(),
            attempt: self.attempt(),
            hold_tx_id: self.hold().map(|h| h.0.clone()),
            refund_id: self.refund_id(),
        }
    }

    /// The state stored in `c`, or why `c` is no state at all.
    pub fn from_columns(c: BlockColumns) -> Result<BlockState, CorruptBlock> {
        use BlockStatus as St;
        let corrupt = |detail| CorruptBlock { status: c.status, detail };
        let amount = || c.amount.filter(|a| *a > 0).ok_or_else(|| corrupt(" without a positive amount"));
        let hold = c.hold_tx_id.clone().map(LedgerTxId);
        let needs_hold = || hold.clone().ok_or_else(|| corrupt(" without its hold"));
        let state = match c.status {
            St::Requested => BlockState::Requested,
            St::Placing => BlockState::Placing { amount: amount()?, attempt: c.attempt },
            St::Held => BlockState::Held { amount: amount()?, hold: needs_hold()? },
            St::Releasing => BlockState::Releasing { amount: amount()?, attempt: c.attempt, hold },
            // Released before anything was fixed keeps 0.
            St::Released => {
                BlockState::Released { amount: c.amount.ok_or_else(|| corrupt(" without an amount"))?, hold }
            }
            St::Returned => BlockState::Returned {
                amount: amount()?,
                hold: needs_hold()?,
                refund_id: c.refund_id.ok_or_else(|| corrupt(" without its refund"))?,
            },
            St::Unfunded => BlockState::Unfunded,
        };
        Ok(state)
    }
}

/// The columns a block state is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockColumns {
    pub status: BlockStatus,
    pub amount: Option<i64>,
    pub attempt: i32,
    pub hold_tx_id: Option<String>,
    pub refund_id: Option<Uuid>,
}

/// A row whose columns no transition produces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no cautionary block state is stored as {status}{detail}")]
pub struct CorruptBlock {
    pub status: BlockStatus,
    pub detail: &'static str,
}

/// The idempotency key of a block's place request: the block id, plus the attempt once Midaz
/// certainly refused an earlier one.
pub fn place_key(block: Uuid, attempt: i32) -> String {
    match attempt {
        0 => format!("med-block-{block}"),
        n => format!("med-block-{block}-{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold() -> LedgerTxId {
        LedgerTxId("h1".into())
    }

    #[test]
    fn a_block_is_placed_then_released() {
        let s = BlockState::Requested.on(BlockEvent::AmountFixed(5_000)).unwrap();
        assert_eq!(s, BlockState::Placing { amount: 5_000, attempt: 0 });
        let s = s.on(BlockEvent::Placed(hold())).unwrap();
        assert_eq!((s.status(), s.amount(), s.hold()), (BlockStatus::Held, Some(5_000), Some(&hold())));
        let s = s.on(BlockEvent::ReleaseRequested).unwrap();
        assert_eq!(s.status(), BlockStatus::Releasing);
        let s = s.on(BlockEvent::Cancelled).unwrap();
        assert_eq!(s, BlockState::Released { amount: 5_000, hold: Some(hold()) });
        assert!(s.status().is_final());
        assert!(s.on(BlockEvent::ReleaseRequested).is_err(), "final states stay");
        assert!(s.on(BlockEvent::Returned { refund_id: Uuid::nil() }).is_err());
    }

    #[test]
    fn nothing_available_is_unfunded_and_a_shortfall_lowers_the_amount_under_a_new_key() {
        assert_eq!(BlockState::Requested.on(BlockEvent::AmountFixed(0)).unwrap(), BlockState::Unfunded);
        assert!(BlockState::Requested.on(BlockEvent::AmountFixed(-1)).is_err());
        let placing = BlockState::Placing { amount: 5_000, attempt: 0 };
        let lower = placing.on(BlockEvent::Shortfall { available: 3_000 }).unwrap();
        assert_eq!(lower, BlockState::Placing { amount: 3_000, attempt: 1 });
        assert_ne!(place_key(Uuid::nil(), 0), place_key(Uuid::nil(), lower.attempt()));
        assert_eq!(placing.on(BlockEvent::Shortfall { available: 0 }).unwrap(), BlockState::Unfunded);
    }

    #[test]
    fn only_a_held_block_is_returned_and_only_a_known_hold_is_cancelled() {
        let held = BlockState::Held { amount: 100, hold: hold() };
        let returned = held.on(BlockEvent::Returned { refund_id: Uuid::nil() }).unwrap();
        assert_eq!(returned.refund_id(), Some(Uuid::nil()));
        assert_eq!(returned.hold(), Some(&hold()));
        let placing = BlockState::Placing { amount: 100, attempt: 2 };
        assert!(placing.on(BlockEvent::Returned { refund_id: Uuid::nil() }).is_err());
        assert!(held.on(BlockEvent::Cancelled).is_err(), "a release is decided before it is done");
        let releasing = placing.on(BlockEvent::ReleaseRequested).unwrap();
        assert_eq!(releasing, BlockState::Releasing { amount: 100, attempt: 2, hold: None });
        assert!(releasing.on(BlockEvent::Cancelled).is_err(), "the place is finished first");
        let known = releasing.on(BlockEvent::Placed(hold())).unwrap();
        assert_eq!(known.on(BlockEvent::Cancelled).unwrap(), BlockState::Released { amount: 100, hold: Some(hold()) });
        assert_eq!(
            releasing.on(BlockEvent::Shortfall { available: 0 }).unwrap(),
            BlockState::Released { amount: 100, hold: None }
        );
        assert_eq!(
            BlockState::Requested.on(BlockEvent::ReleaseRequested).unwrap(),
            BlockState::Released { amount: 0, hold: None }
        );
    }

    #[test]
    fn every_state_survives_its_columns() {
        let states = [
            BlockState::Requested,
            BlockState::Placing { amount: 1, attempt: 3 },
            BlockState::Held { amount: 1, hold: hold() },
            BlockState::Releasing { amount: 1, attempt: 1, hold: None },
            BlockState::Releasing { amount: 1, attempt: 0, hold: Some(hold()) },
            BlockState::Released { amount: 0, hold: None },
            BlockState::Released { amount: 1, hold: Some(hold()) },
            BlockState::Returned { amount: 1, hold: hold(), refund_id: Uuid::nil() },
            BlockState::Unfunded,
        ];
        for s in states {
            assert_eq!(BlockState::from_columns(s.columns()).unwrap(), s);
        }
        let corrupt =
            BlockColumns { status: BlockStatus::Held, amount: Some(1), attempt: 0, hold_tx_id: None, refund_id: None };
        assert!(BlockState::from_columns(corrupt).is_err());
    }
}
