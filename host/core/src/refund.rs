//! Refunds (devoluções, pacs.004) as a typed state machine, like [`crate::transfer`]: the enums
//! the database, the domain and the API share, the states of a refund with what each owns, and
//! the transitions between them.
//!
//! Two kinds share one table and one status enum (Lerian's `type`):
//! - `CASHOUT`: we return (part of) a Pix we received. Money leaves: a Midaz hold on the debited
//!   accounts, one pacs.004 at BTG for the total, then the hold is committed or released.
//! - `CASHIN`: another participant returns (part of) one of our cash-outs. Money arrives: the
//!   original payer's account is credited from `@external/BRL`.

use serde::{Deserialize, Serialize};

use crate::text_enum;
use crate::transfer::{Direction, Failure, LedgerTxId};

text_enum! {
    /// What clients see of a refund (Lerian's refund statuses).
    pub enum RefundStatus {
        /// Recorded; nothing is held yet.
        Created = "CREATED",
        /// The amount is held (or a return we received is being credited).
        Pending = "PENDING",
        /// BTG accepted the pacs.004; its settlement is awaited.
        Processing = "PROCESSING",
        Completed = "COMPLETED",
        Failed = "FAILED",
        /// In Lerian's enum; a submitted refund cannot be cancelled, so no transition leads here.
        Cancelled = "CANCELLED",
    }
}

impl RefundStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RefundStatus::Completed | RefundStatus::Failed | RefundStatus::Cancelled)
    }
}

text_enum! {
    /// How far a refund's money has moved (the `step` column).
    pub enum RefundStep {
        New = "NEW",
        /// The amount is on hold in Midaz; BTG has not (certainly) accepted the reversal.
        Held = "HELD",
        /// BTG accepted the reversal and gave its return EndToEndId.
        Sent = "SENT",
        /// The ledger has the final movement (hold committed, return credited).
        Settled = "SETTLED",
        /// The hold was cancelled (or never placed).
        Released = "RELEASED",
    }
}

text_enum! {
    /// pacs.004 return reasons (`X-Reason`).
    pub enum RefundReason {
        /// Bank (operational) error.
        Be08 = "BE08",
        /// Fraud.
        Fr01 = "FR01",
        /// Customer request.
        Md06 = "MD06",
        /// Pix Saque/Troco error.
        Sl02 = "SL02",
    }
}

/// One account a refund debits (`operations[]`), in centavos.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundOperation {
    pub account_alias: String,
    pub amount: i64,
}

/// How the debited accounts were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SplitSource {
    /// The original credited one account: it returns everything.
    SingleAccount,
    /// The client's `operations`.
    Request,
    /// The tenant's refund-split policy.
    #[serde(rename_all = "camelCase")]
    Policy { policy_sha256: String },
    /// A MED cautionary block's hold on the account the Pix credited, taken over whole.
    CautionaryBlock,
}

// ---------------------------------------------------------------------------- outgoing

/// Where a refund we send (type CASHOUT) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingRefund {
    /// Recorded; the Midaz hold is not (known to be) placed.
    New,
    /// The amount is on hold; BTG has not certainly accepted the reversal.
    Held { hold: LedgerTxId },
    /// BTG accepted the reversal.
    Sent { hold: LedgerTxId, return_id: String },
    /// BTG settled it and the hold is committed.
    Settled { hold: LedgerTxId, return_id: String },
    /// Failed; the hold, if one was placed, is cancelled.
    Released { hold: Option<LedgerTxId>, return_id: Option<String>, failure: Failure },
}

/// What happens to a refund we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingEvent {
    HoldPlaced(LedgerTxId),
    /// Midaz refused the hold; nothing was held.
    HoldRefused(Failure),
    /// BTG accepted the reversal (or already had it) under this return EndToEndId.
    Accepted {
        return_id: String,
    },
    /// BTG settled the reversal: the hold is committed.
    Confirmed {
        return_id: String,
    },
    /// BTG (certainly) did not return the money: the hold is cancelled.
    Rejected(Failure),
}

impl OutgoingEvent {
    fn name(&self) -> &'static str {
        match self {
            OutgoingEvent::HoldPlaced(_) => "HoldPlaced",
            OutgoingEvent::HoldRefused(_) => "HoldRefused",
            OutgoingEvent::Accepted { .. } => "Accepted",
            OutgoingEvent::Confirmed { .. } => "Confirmed",
            OutgoingEvent::Rejected(_) => "Rejected",
        }
    }
}

impl OutgoingRefund {
    /// The next state after `event`, or why it cannot happen here. A return id BTG gives must
    /// match the one it gave before: a different one is refused, never overwritten.
    pub fn on(&self, event: OutgoingEvent) -> Result<OutgoingRefund, RefundTransitionError> {
        use OutgoingEvent as E;
        use OutgoingRefund as S;
        let same = |known: &str, given: &str| known == given;
        let next = match (self, event) {
            (S::New, E::HoldPlaced(hold)) => S::Held { hold },
            (S::New, E::HoldRefused(failure)) => S::Released { hold: None, return_id: None, failure },
            (S::Held { hold }, E::Accepted { return_id }) => S::Sent { hold: hold.clone(), return_id },
            // BTG's verdict may overtake its acceptance (a webhook before our save, a read-back).
            (S::Held { hold }, E::Confirmed { return_id }) => S::Settled { hold: hold.clone(), return_id },
            (S::Sent { hold, return_id }, E::Confirmed { return_id: given }) if same(return_id, &given) => {
                S::Settled { hold: hold.clone(), return_id: given }
            }
            (S::Held { hold }, E::Rejected(failure)) => {
                S::Released { hold: Some(hold.clone()), return_id: None, failure }
            }
            (S::Sent { hold, return_id }, E::Rejected(failure)) => {
                S::Released { hold: Some(hold.clone()), return_id: Some(return_id.clone()), failure }
            }
            (_, event) => return Err(self.refuse(event.name())),
        };
        Ok(next)
    }

    pub fn status(&self) -> RefundStatus {
        match self {
            OutgoingRefund::New => RefundStatus::Created,
            OutgoingRefund::Held { .. } => RefundStatus::Pending,
            OutgoingRefund::Sent { .. } => RefundStatus::Processing,
            OutgoingRefund::Settled { .. } => RefundStatus::Completed,
            OutgoingRefund::Released { .. } => RefundStatus::Failed,
        }
    }

    pub fn step(&self) -> RefundStep {
        match self {
            OutgoingRefund::New => RefundStep::New,
            OutgoingRefund::Held { .. } => RefundStep::Held,
            OutgoingRefund::Sent { .. } => RefundStep::Sent,
            OutgoingRefund::Settled { .. } => RefundStep::Settled,
            OutgoingRefund::Released { .. } => RefundStep::Released,
        }
    }

    pub fn hold(&self) -> Option<&LedgerTxId> {
        match self {
            OutgoingRefund::New => None,
            OutgoingRefund::Held { hold }
            | OutgoingRefund::Sent { hold, .. }
            | OutgoingRefund::Settled { hold, .. } => Some(hold),
            OutgoingRefund::Released { hold, .. } => hold.as_ref(),
        }
    }

    pub fn return_id(&self) -> Option<&str> {
        match self {
            OutgoingRefund::Sent { return_id, .. } | OutgoingRefund::Settled { return_id, .. } => Some(return_id),
            OutgoingRefund::Released { return_id, .. } => return_id.as_deref(),
            OutgoingRefund::New | OutgoingRefund::Held { .. } => None,
        }
    }

    fn refuse(&self, event: &'static str) -> RefundTransitionError {
        RefundTransitionError { kind: Direction::Cashout, status: self.status(), step: self.step(), event }
    }
}

// ---------------------------------------------------------------------------- incoming

/// Where a return we received (type CASHIN) is: BTG settled it, so it is credited or waiting
/// for its credit. The return EndToEndId is known from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingRefund {
    /// Recorded; the credit is not (known to be) posted.
    Received { return_id: String },
    /// Credited to the original payer.
    Credited { return_id: String, credit: LedgerTxId },
}

impl IncomingRefund {
    pub fn credited(&self, credit: LedgerTxId) -> Result<IncomingRefund, RefundTransitionError> {
        match self {
            IncomingRefund::Received { return_id } => {
                Ok(IncomingRefund::Credited { return_id: return_id.clone(), credit })
            }
            IncomingRefund::Credited { .. } => Err(RefundTransitionError {
                kind: Direction::Cashin,
                status: self.status(),
                step: self.step(),
                event: "Credited",
            }),
        }
    }

    pub fn status(&self) -> RefundStatus {
        match self {
            IncomingRefund::Received { .. } => RefundStatus::Pending,
            IncomingRefund::Credited { .. } => RefundStatus::Completed,
        }
    }

    pub fn step(&self) -> RefundStep {
        match self {
            IncomingRefund::Received { .. } => RefundStep::New,
            IncomingRefund::Credited { .. } => RefundStep::Settled,
        }
    }
}

/// A move a refund's machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} refund at {status}/{step} cannot take {event}")]
pub struct RefundTransitionError {
    pub kind: Direction,
    pub status: RefundStatus,
    pub step: RefundStep,
    pub event: &'static str,
}

// ----------------------------------------------------------------------- both, as stored

/// A refund's state, either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundState {
    Outgoing(OutgoingRefund),
    Incoming(IncomingRefund),
}

/// The columns a refund state is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundColumns {
    pub status: RefundStatus,
    pub step: RefundStep,
    /// The hold (outgoing) or the credit (incoming).
    pub ledger_tx_id: Option<String>,
    pub return_end_to_end_id: Option<String>,
    pub failure: Option<Failure>,
}

/// A row whose columns no transition produces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {kind} refund state is stored as {status}/{step}{detail}")]
pub struct CorruptRefund {
    pub kind: Direction,
    pub status: RefundStatus,
    pub step: RefundStep,
    pub detail: &'static str,
}

impl RefundState {
    /// CASHOUT for a refund we send, CASHIN for one we receive (Lerian's refund `type`).
    pub fn kind(&self) -> Direction {
        match self {
            RefundState::Outgoing(_) => Direction::Cashout,
            RefundState::Incoming(_) => Direction::Cashin,
        }
    }

    pub fn status(&self) -> RefundStatus {
        match self {
            RefundState::Outgoing(s) => s.status(),
            RefundState::Incoming(s) => s.status(),
        }
    }

    pub fn step(&self) -> RefundStep {
        match self {
            RefundState::Outgoing(s) => s.step(),
            RefundState::Incoming(s) => s.step(),
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            RefundState::Outgoing(OutgoingRefund::Released { failure, .. }) => Some(failure),
            _ => None,
        }
    }

    /// The `D…` id: once BTG accepted a return we send; from the start for one we receive.
    pub fn return_id(&self) -> Option<&str> {
        match self {
            RefundState::Outgoing(s) => s.return_id(),
            RefundState::Incoming(
                IncomingRefund::Received { return_id } | IncomingRefund::Credited { return_id, .. },
            ) => Some(return_id),
        }
    }

    /// The hold (outgoing) or the credit (incoming).
    pub fn ledger_tx_id(&self) -> Option<&LedgerTxId> {
        match self {
            RefundState::Outgoing(s) => s.hold(),
            RefundState::Incoming(IncomingRefund::Credited { credit, .. }) => Some(credit),
            RefundState::Incoming(IncomingRefund::Received { .. }) => None,
        }
    }

    pub fn columns(&self) -> RefundColumns {
        RefundColumns {
            status: self.status(),
            step: self.step(),
            ledger_tx_id: self.ledger_tx_id().map(|l| l.0.clone()),
            return_end_to_end_id: self.return_id().map(str::to_owned),
            failure: self.failure().cloned(),
        }
    }

    /// The state stored in `c`, or why `c` is no state at all.
    pub fn from_columns(kind: Direction, c: RefundColumns) -> Result<RefundState, CorruptRefund> {
        use RefundStatus as St;
        use RefundStep as Sp;
        let corrupt = |detail| CorruptRefund { kind, status: c.status, step: c.step, detail };
        let ledger = c.ledger_tx_id.clone().map(LedgerTxId);
        let needs_ledger = || ledger.clone().ok_or_else(|| corrupt(" without its ledger transaction"));
        let needs_return = || c.return_end_to_end_id.clone().ok_or_else(|| corrupt(" without a return EndToEndId"));
        let state = match kind {
            Direction::Cashout => RefundState::Outgoing(match (c.status, c.step) {
                (St::Created, Sp::New) => OutgoingRefund::New,
                (St::Pending, Sp::Held) => OutgoingRefund::Held { hold: needs_ledger()? },
                (St::Processing, Sp::Sent) => {
                    OutgoingRefund::Sent { hold: needs_ledger()?, return_id: needs_return()? }
                }
                (St::Completed, Sp::Settled) => {
                    OutgoingRefund::Settled { hold: needs_ledger()?, return_id: needs_return()? }
                }
                (St::Failed, Sp::Released) => OutgoingRefund::Released {
                    hold: ledger,
                    return_id: c.return_end_to_end_id.clone(),
                    failure: c.failure.clone().ok_or_else(|| corrupt(" without a failure"))?,
                },
                _ => return Err(corrupt("")),
            }),
            Direction::Cashin => RefundState::Incoming(match (c.status, c.step) {
                (St::Pending, Sp::New) => IncomingRefund::Received { return_id: needs_return()? },
                (St::Completed, Sp::Settled) => {
                    IncomingRefund::Credited { return_id: needs_return()?, credit: needs_ledger()? }
                }
                _ => return Err(corrupt("")),
            }),
        };
        Ok(state)
    }
}

/// A distributed refund's `operations`, checked against the spec's rules that need nothing but
/// the request (the rest need the original transaction). Amounts are already exact centavos.
pub fn check_operations(amount: i64, operations: &[RefundOperation]) -> Result<(), OperationsError> {
    let mut seen = std::collections::HashSet::new();
    for op in operations {
        if op.amount <= 0 {
            return Err(OperationsError::NotPositive(op.account_alias.clone()));
        }
        if !seen.insert(op.account_alias.as_str()) {
            return Err(OperationsError::DuplicateAlias(op.account_alias.clone()));
        }
    }
    let sum = operations.iter().try_fold(0i64, |acc, op| acc.checked_add(op.amount));
    if sum != Some(amount) {
        return Err(OperationsError::SumMismatch { amount, sum });
    }
    Ok(())
}

/// Why a refund's `operations` are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationsError {
    #[error("operations: the amount of {0} must be greater than 0")]
    NotPositive(String),
    #[error("operations: account alias {0} appears more than once")]
    DuplicateAlias(String),
    #[error("operations sum to {sum:?} centavos but the refund amount is {amount}")]
    SumMismatch { amount: i64, sum: Option<i64> },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold() -> LedgerTxId {
        LedgerTxId("h1".into())
    }

    #[test]
    fn an_outgoing_refund_runs_hold_accept_confirm() {
        let s = OutgoingRefund::New.on(OutgoingEvent::HoldPlaced(hold())).unwrap();
        assert_eq!(s.status(), RefundStatus::Pending);
        let s = s.on(OutgoingEvent::Accepted { return_id: "D1".into() }).unwrap();
        assert_eq!((s.status(), s.return_id()), (RefundStatus::Processing, Some("D1")));
        let s = s.on(OutgoingEvent::Confirmed { return_id: "D1".into() }).unwrap();
        assert_eq!(s.status(), RefundStatus::Completed);
        assert!(s.on(OutgoingEvent::Rejected(Failure::new("X", "late"))).is_err(), "final states stay");
    }

    #[test]
    fn a_verdict_for_another_return_id_is_refused() {
        let sent = OutgoingRefund::Sent { hold: hold(), return_id: "D1".into() };
        assert!(sent.on(OutgoingEvent::Confirmed { return_id: "D2".into() }).is_err());
        assert!(OutgoingRefund::New.on(OutgoingEvent::Confirmed { return_id: "D1".into() }).is_err(), "no hold yet");
    }

    #[test]
    fn a_rejection_releases_and_keeps_what_was_known() {
        let sent = OutgoingRefund::Sent { hold: hold(), return_id: "D1".into() };
        let released = sent.on(OutgoingEvent::Rejected(Failure::new("AM04", "no"))).unwrap();
        assert_eq!(released.hold(), Some(&hold()));
        assert_eq!(released.return_id(), Some("D1"));
        let refused = OutgoingRefund::New.on(OutgoingEvent::HoldRefused(Failure::new("NSF", "no"))).unwrap();
        assert_eq!((refused.status(), refused.hold()), (RefundStatus::Failed, None));
    }

    #[test]
    fn every_state_survives_its_columns() {
        let states = [
            RefundState::Outgoing(OutgoingRefund::New),
            RefundState::Outgoing(OutgoingRefund::Held { hold: hold() }),
            RefundState::Outgoing(OutgoingRefund::Sent { hold: hold(), return_id: "D1".into() }),
            RefundState::Outgoing(OutgoingRefund::Settled { hold: hold(), return_id: "D1".into() }),
            RefundState::Outgoing(OutgoingRefund::Released {
                hold: None,
                return_id: None,
                failure: Failure::new("F", "f"),
            }),
            RefundState::Incoming(IncomingRefund::Received { return_id: "D9".into() }),
            RefundState::Incoming(IncomingRefund::Credited { return_id: "D9".into(), credit: hold() }),
        ];
        for s in states {
            let c = s.columns();
            assert_eq!(RefundState::from_columns(s.kind(), c).unwrap(), s);
        }
        let corrupt = RefundColumns {
            status: RefundStatus::Processing,
            step: RefundStep::Sent,
            ledger_tx_id: Some("h".into()),
            return_end_to_end_id: None,
            failure: None,
        };
        assert!(RefundState::from_columns(Direction::Cashout, corrupt).is_err());
    }

    #[test]
    fn operations_follow_the_spec_rules() {
        let op = |alias: &str, amount| RefundOperation { account_alias: alias.into(), amount };
        assert_eq!(check_operations(100_082, &[op("a", 82), op("b", 100_000)]), Ok(()));
        assert!(matches!(check_operations(100, &[op("a", 60), op("b", 30)]), Err(OperationsError::SumMismatch { .. })));
        assert!(matches!(check_operations(100, &[op("a", 50), op("a", 50)]), Err(OperationsError::DuplicateAlias(_))));
        assert!(matches!(check_operations(100, &[op("a", 100), op("b", 0)]), Err(OperationsError::NotPositive(_))));
    }
}
