//! Transfers as a typed state machine: the enums that the database, the domain and the API share,
//! the states of a cash-out and a cash-in with what each state owns, and the transitions between
//! them. A transition is a function that returns the next state or a [`TransitionError`]; the use
//! cases (`pix-app`) perform the side effect a transition stands for and then save the new state.
//!
//! The database keeps a state in three columns (`status`, `step`, `ledger_tx_id`) plus the
//! failure code and reason; [`TransferState::from_columns`] refuses any combination that no
//! transition produces, so a corrupt row is an error rather than a guess.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::document::PersonType;

/// An enum stored and sent as its SCREAMING_SNAKE_CASE name: `as_str`, `Display`, `FromStr`,
/// serde as a string and, with the `sqlx` feature, a TEXT column on any database.
#[macro_export]
macro_rules! text_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and column text.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl $crate::transfer::TextEnum for $name {
            const TEXTS: &'static [&'static str] = &[$($text),+];
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::transfer::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::transfer::UnknownValue {
                        kind: stringify!($name),
                        value: other.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }

        $crate::sqlx_text!($name);
    };
}

/// The wire texts of a [`text_enum!`], for documents that list a field's values.
pub trait TextEnum {
    const TEXTS: &'static [&'static str];
}

/// The TEXT-column impls of a [`text_enum!`] (only with the `sqlx` feature).
#[cfg(feature = "sqlx")]
#[doc(hidden)]
#[macro_export]
macro_rules! sqlx_text {
    ($name:ident) => {
        impl<DB: ::sqlx::Database> ::sqlx::Type<DB> for $name
        where
            str: ::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as ::sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as ::sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: ::sqlx::Database> ::sqlx::Encode<'q, DB> for $name
        where
            &'static str: ::sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as ::sqlx::Database>::ArgumentBuffer,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&'static str as ::sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: ::sqlx::Database> ::sqlx::Decode<'r, DB> for $name
        where
            &'r str: ::sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as ::sqlx::Database>::ValueRef<'r>) -> Result<Self, ::sqlx::error::BoxDynError> {
                let text = <&'r str as ::sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse()?)
            }
        }
    };
}

#[cfg(not(feature = "sqlx"))]
#[doc(hidden)]
#[macro_export]
macro_rules! sqlx_text {
    ($name:ident) => {};
}

/// A text that names no value of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {kind}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    /// Every valid text, for messages that list them.
    pub expected: &'static [&'static str],
}

text_enum! {
    /// Which way the money goes, from the customer's point of view.
    pub enum Direction { Cashout = "CASHOUT", Cashin = "CASHIN" }
}

text_enum! {
    /// What clients see (Lerian's transfer statuses, plus one for a contradiction with BTG).
    pub enum TransferStatus {
        Pending = "PENDING",
        InReview = "IN_REVIEW",
        Processing = "PROCESSING",
        Completed = "COMPLETED",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
        /// BTG contradicted a final outcome; the ledger was corrected or awaits an operator.
        ReconciliationRequired = "RECONCILIATION_REQUIRED",
    }
}

impl TransferStatus {
    /// COMPLETED, FAILED, CANCELLED and RECONCILIATION_REQUIRED never go back to work in flight.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferStatus::Completed
                | TransferStatus::Failed
                | TransferStatus::Cancelled
                | TransferStatus::ReconciliationRequired
        )
    }
}

text_enum! {
    /// How far the money of a transfer has moved (the `step` column).
    pub enum Step {
        /// Nothing moved yet.
        New = "NEW",
        /// Cash-out: the amount is on hold in Midaz; BTG has not (certainly) accepted the payment.
        Held = "HELD",
        /// Cash-out: BTG accepted the payment; its verdict is awaited.
        Sent = "SENT",
        /// The ledger has the final movement (hold committed, cash-in credited).
        Settled = "SETTLED",
        /// Cash-out: the hold was cancelled (or never placed).
        Released = "RELEASED",
        /// Cash-in: BTG accepted our refusal and returns the money to the payer.
        Refused = "REFUSED",
        /// Cash-in: BTG would not take our refusal; an operator must settle it.
        RefusalFailed = "REFUSAL_FAILED",
        /// A contradiction with BTG whose ledger correction is not posted yet.
        IncidentOpen = "INCIDENT_OPEN",
        /// A contradiction with BTG whose ledger correction is posted.
        IncidentCorrected = "INCIDENT_CORRECTED",
        /// Intra-PSP cash-out: the payer is debited; the internal delivery is not (known to be)
        /// queued.
        Debited = "DEBITED",
        /// Intra-PSP cash-out: queued to the internal cash-in.
        Delivering = "DELIVERING",
        /// Intra-PSP cash-out: the payee's side refused it and the debit is reverted.
        Reverted = "REVERTED",
    }
}

text_enum! {
    /// `X-Purpose` of a cash-out (the ones this service sends; others are refused at the edge).
    pub enum Purpose { Transfer = "TRANSFER", InstantPaymentRefund = "INSTANT_PAYMENT_REFUND" }
}

text_enum! {
    /// How a cash-out's destination was given (`POST /v1/transfers/cashout/initiate`).
    pub enum InitiationType { Key = "KEY", QrCode = "QR_CODE", Manual = "MANUAL" }
}

text_enum! {
    /// SPI's initiation method (`localInstrument`), what BTG is told.
    pub enum InitiationMethod {
        Dict = "DICT",
        StaticQrcode = "STATIC_QRCODE",
        DynamicQrcode = "DYNAMIC_QRCODE",
        Manual = "MANUAL",
    }
}

text_enum! {
    /// Who pays a fee.
    pub enum FeeCharge {
        /// The payee receives `amount - fee`.
        Deducted = "DEDUCTED",
        /// The payer is debited `amount + fee`.
        OnTop = "ON_TOP",
    }
}

text_enum! {
    /// What fraud triage says to do with a payment.
    pub enum FraudAction { Allow = "ALLOW", Review = "REVIEW", Block = "BLOCK" }
}

text_enum! {
    /// What BTG said of a payment or reversal that an unblock read back (`btgStatus`).
    pub enum BtgStatus {
        Processing = "PROCESSING",
        Confirmed = "CONFIRMED",
        Rejected = "REJECTED",
        NotFound = "NOT_FOUND",
    }
}

text_enum! {
    /// What BTG said that contradicts a final transfer.
    pub enum IncidentKind {
        /// BTG paid a cash-out whose hold had been released: the customer kept the money.
        ConfirmedAfterFailed = "CONFIRMED_AFTER_FAILED",
        /// BTG rejected a cash-out whose hold had been committed: the customer lost the money.
        RejectedAfterCompleted = "REJECTED_AFTER_COMPLETED",
        /// Intra-PSP: the payee's side refused it and reverting the payer's debit failed
        /// (`INTERNAL_DEBIT_REVERT_FAILED`): the customer lost money that never arrived.
        DebitRevertFailed = "DEBIT_REVERT_FAILED",
    }
}

/// A Midaz transaction id (a hold, a credit, a correction).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LedgerTxId(pub String);

impl fmt::Display for LedgerTxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The failure code of a cash-out (or refund) released because BTG had no record of it. Such a
/// release stays watched: BTG confirming the payment later opens an incident.
pub const BTG_NOT_FOUND: &str = "BTG_NOT_FOUND";

/// Why a transfer failed: a catalogued code (ours, or SPI's pacs.002 reason) and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub reason: String,
}

impl Failure {
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Failure {
        Failure { code: code.into(), reason: reason.into() }
    }
}

// ------------------------------------------------------------------------------- cash-out

/// Where a cash-out is, with what that point owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CashoutState {
    /// Fraud triage asked for an operator; nothing is held.
    InReview,
    /// Accepted; the Midaz hold is not (known to be) placed.
    New,
    /// The amount is on hold; BTG has not certainly accepted the payment.
    Held { hold: LedgerTxId },
    /// BTG accepted the payment; its verdict is awaited.
    Sent { hold: LedgerTxId },
    /// BTG confirmed and the hold is committed.
    Settled { hold: LedgerTxId },
    /// Failed; the hold, if one was placed, is cancelled.
    Released { hold: Option<LedgerTxId>, failure: Failure },
    /// BTG contradicted the final outcome (or, intra-PSP, a debit could not be reverted).
    /// `correction` is the Midaz transaction that put the ledger right (a re-debit or a credit
    /// back), once posted.
    Incident { kind: IncidentKind, hold: Option<LedgerTxId>, correction: Option<LedgerTxId> },
    /// Intra-PSP: the payer is debited (`source → @external`, committed).
    Debited { debit: LedgerTxId },
    /// Intra-PSP: the internal cash-in is queued; its outcome is awaited.
    Delivering { debit: LedgerTxId },
    /// Intra-PSP: the payee's side refused it; `revert` gave the payer the debit back.
    Reverted { debit: LedgerTxId, revert: LedgerTxId, failure: Failure },
}

/// What happens to a cash-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CashoutEvent {
    /// A reviewer let it go on.
    ReviewReleased,
    /// A reviewer (or the review deadline) stopped it; nothing was held.
    ReviewRejected(Failure),
    /// Midaz placed the hold.
    HoldPlaced(LedgerTxId),
    /// Midaz refused the hold (e.g. insufficient balance); nothing was held.
    HoldRefused(Failure),
    /// BTG accepted the payment (or already had it).
    Accepted,
    /// BTG paid: the hold is committed.
    Confirmed,
    /// BTG (certainly) did not pay: the hold is cancelled.
    Rejected(Failure),
    /// BTG paid a cash-out that had failed, or rejected one that had completed.
    Contradicted(IncidentKind),
    /// The ledger correction of an incident was posted.
    Corrected(LedgerTxId),
    /// Intra-PSP: Midaz posted the payer's debit.
    Debited(LedgerTxId),
    /// Intra-PSP: the internal cash-in is queued (in the transaction of this save).
    Queued,
    /// Intra-PSP: the payee's side refused it and the debit was reverted by `revert`.
    Reverted { revert: LedgerTxId, failure: Failure },
    /// Intra-PSP: the payee's side refused it and Midaz would not revert the debit.
    RevertFailed,
}

impl CashoutEvent {
    fn name(&self) -> &'static str {
        match self {
            CashoutEvent::ReviewReleased => "ReviewReleased",
            CashoutEvent::ReviewRejected(_) => "ReviewRejected",
            CashoutEvent::HoldPlaced(_) => "HoldPlaced",
            CashoutEvent::HoldRefused(_) => "HoldRefused",
            CashoutEvent::Accepted => "Accepted",
            CashoutEvent::Confirmed => "Confirmed",
            CashoutEvent::Rejected(_) => "Rejected",
            CashoutEvent::Contradicted(_) => "Contradicted",
            CashoutEvent::Corrected(_) => "Corrected",
            CashoutEvent::Debited(_) => "Debited",
            CashoutEvent::Queued => "Queued",
            CashoutEvent::Reverted { .. } => "Reverted",
            CashoutEvent::RevertFailed => "RevertFailed",
        }
    }
}

/// A move the machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {direction} transfer at {status}/{step} cannot take {event}")]
pub struct TransitionError {
    pub direction: Direction,
    pub status: TransferStatus,
    pub step: Step,
    pub event: &'static str,
}

impl CashoutState {
    /// The next state after `event`, or why it cannot happen here.
    pub fn on(&self, event: CashoutEvent) -> Result<CashoutState, TransitionError> {
        use CashoutEvent as E;
        use CashoutState as S;
        let next = match (self, event) {
            (S::InReview, E::ReviewReleased) => S::New,
            (S::InReview, E::ReviewRejected(failure)) => S::Released { hold: None, failure },
            (S::New, E::HoldPlaced(hold)) => S::Held { hold },
            (S::New, E::HoldRefused(failure)) => S::Released { hold: None, failure },
            (S::Held { hold }, E::Accepted) => S::Sent { hold: hold.clone() },
            // BTG's verdict may overtake its acceptance (a webhook before our save, a read-back).
            (S::Held { hold } | S::Sent { hold }, E::Confirmed) => S::Settled { hold: hold.clone() },
            (S::Held { hold } | S::Sent { hold }, E::Rejected(failure)) => {
                S::Released { hold: Some(hold.clone()), failure }
            }
            (S::Released { hold, .. }, E::Contradicted(kind @ IncidentKind::ConfirmedAfterFailed)) => {
                S::Incident { kind, hold: hold.clone(), correction: None }
            }
            // BTG paid, but Midaz has the hold cancelled: a release whose save was lost.
            (S::Held { hold } | S::Sent { hold }, E::Contradicted(kind @ IncidentKind::ConfirmedAfterFailed)) => {
                S::Incident { kind, hold: Some(hold.clone()), correction: None }
            }
            (S::Settled { hold }, E::Contradicted(kind @ IncidentKind::RejectedAfterCompleted)) => {
                S::Incident { kind, hold: Some(hold.clone()), correction: None }
            }
            (S::Incident { kind, hold, correction: None }, E::Corrected(tx)) => {
                S::Incident { kind: *kind, hold: hold.clone(), correction: Some(tx) }
            }
            (S::New, E::Debited(debit)) => S::Debited { debit },
            (S::Debited { debit }, E::Queued) => S::Delivering { debit: debit.clone() },
            (S::Delivering { debit }, E::Confirmed) => S::Settled { hold: debit.clone() },
            (S::Debited { debit } | S::Delivering { debit }, E::Reverted { revert, failure }) => {
                S::Reverted { debit: debit.clone(), revert, failure }
            }
            (S::Debited { debit } | S::Delivering { debit }, E::RevertFailed) => {
                S::Incident { kind: IncidentKind::DebitRevertFailed, hold: Some(debit.clone()), correction: None }
            }
            (_, event) => return Err(self.refuse(event.name())),
        };
        Ok(next)
    }

    pub fn status(&self) -> TransferStatus {
        match self {
            CashoutState::InReview => TransferStatus::InReview,
            CashoutState::New | CashoutState::Held { .. } | CashoutState::Debited { .. } => TransferStatus::Pending,
            CashoutState::Sent { .. } | CashoutState::Delivering { .. } => TransferStatus::Processing,
            CashoutState::Settled { .. } => TransferStatus::Completed,
            CashoutState::Released { .. } | CashoutState::Reverted { .. } => TransferStatus::Failed,
            CashoutState::Incident { .. } => TransferStatus::ReconciliationRequired,
        }
    }

    pub fn step(&self) -> Step {
        match self {
            CashoutState::InReview | CashoutState::New => Step::New,
            CashoutState::Held { .. } => Step::Held,
            CashoutState::Sent { .. } => Step::Sent,
            CashoutState::Settled { .. } => Step::Settled,
            CashoutState::Released { .. } => Step::Released,
            CashoutState::Incident { correction: None, .. } => Step::IncidentOpen,
            CashoutState::Incident { correction: Some(_), .. } => Step::IncidentCorrected,
            CashoutState::Debited { .. } => Step::Debited,
            CashoutState::Delivering { .. } => Step::Delivering,
            CashoutState::Reverted { .. } => Step::Reverted,
        }
    }

    /// The Midaz hold, once placed.
    pub fn hold(&self) -> Option<&LedgerTxId> {
        match self {
            CashoutState::Held { hold } | CashoutState::Sent { hold } | CashoutState::Settled { hold } => Some(hold),
            CashoutState::Debited { debit }
            | CashoutState::Delivering { debit }
            | CashoutState::Reverted { debit, .. } => Some(debit),
            CashoutState::Released { hold, .. } | CashoutState::Incident { hold, .. } => hold.as_ref(),
            CashoutState::InReview | CashoutState::New => None,
        }
    }

    fn refuse(&self, event: &'static str) -> TransitionError {
        TransitionError { direction: Direction::Cashout, status: self.status(), step: self.step(), event }
    }
}

// -------------------------------------------------------------------------------- cash-in

/// Where a cash-in is. A cash-in has already settled at BTG: it is credited or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CashinState {
    /// Approved; the Midaz credit is not (known to be) posted.
    Accepted,
    /// Credited to the customer (net of the fee).
    Credited { credit: LedgerTxId },
    /// Denied (or the credit failed); BTG is yet to be told.
    Refusing { failure: Failure },
    /// BTG took our refusal.
    Refused { failure: Failure },
    /// BTG would not take our refusal; an operator must settle it.
    RefusalFailed { failure: Failure },
}

/// What happens to a cash-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CashinEvent {
    Credited(LedgerTxId),
    /// Midaz refused the credit: the payment is refused at BTG instead.
    CreditFailed(Failure),
    RefusalAccepted,
    RefusalRefused,
}

impl CashinEvent {
    fn name(&self) -> &'static str {
        match self {
            CashinEvent::Credited(_) => "Credited",
            CashinEvent::CreditFailed(_) => "CreditFailed",
            CashinEvent::RefusalAccepted => "RefusalAccepted",
            CashinEvent::RefusalRefused => "RefusalRefused",
        }
    }
}

impl CashinState {
    pub fn on(&self, event: CashinEvent) -> Result<CashinState, TransitionError> {
        use CashinEvent as E;
        use CashinState as S;
        let next = match (self, event) {
            (S::Accepted, E::Credited(credit)) => S::Credited { credit },
            (S::Accepted, E::CreditFailed(failure)) => S::Refusing { failure },
            (S::Refusing { failure }, E::RefusalAccepted) => S::Refused { failure: failure.clone() },
            (S::Refusing { failure }, E::RefusalRefused) => S::RefusalFailed { failure: failure.clone() },
            (_, event) => {
                return Err(TransitionError {
                    direction: Direction::Cashin,
                    status: self.status(),
                    step: self.step(),
                    event: event.name(),
                });
            }
        };
        Ok(next)
    }

    pub fn status(&self) -> TransferStatus {
        match self {
            CashinState::Accepted => TransferStatus::Pending,
            CashinState::Credited { .. } => TransferStatus::Completed,
            CashinState::Refusing { .. } | CashinState::Refused { .. } | CashinState::RefusalFailed { .. } => {
                TransferStatus::Failed
            }
        }
    }

    pub fn step(&self) -> Step {
        match self {
            CashinState::Accepted | CashinState::Refusing { .. } => Step::New,
            CashinState::Credited { .. } => Step::Settled,
            CashinState::Refused { .. } => Step::Refused,
            CashinState::RefusalFailed { .. } => Step::RefusalFailed,
        }
    }
}

// ----------------------------------------------------------------------- both, as stored

/// A transfer's state in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    Cashout(CashoutState),
    Cashin(CashinState),
}

/// The columns a state is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateColumns {
    pub status: TransferStatus,
    pub step: Step,
    /// The hold (cash-out) or the credit (cash-in).
    pub ledger_tx_id: Option<String>,
    /// The ledger correction of an incident.
    pub correction_tx_id: Option<String>,
    pub incident: Option<IncidentKind>,
    pub failure: Option<Failure>,
}

/// A row whose columns no transition produces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {direction} state is stored as {status}/{step}{detail}")]
pub struct CorruptState {
    pub direction: Direction,
    pub status: TransferStatus,
    pub step: Step,
    pub detail: &'static str,
}

impl TransferState {
    pub fn direction(&self) -> Direction {
        match self {
            TransferState::Cashout(_) => Direction::Cashout,
            TransferState::Cashin(_) => Direction::Cashin,
        }
    }

    pub fn status(&self) -> TransferStatus {
        match self {
            TransferState::Cashout(s) => s.status(),
            TransferState::Cashin(s) => s.status(),
        }
    }

    pub fn step(&self) -> Step {
        match self {
            TransferState::Cashout(s) => s.step(),
            TransferState::Cashin(s) => s.step(),
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            TransferState::Cashout(CashoutState::Released { failure, .. } | CashoutState::Reverted { failure, .. })
            | TransferState::Cashin(
                CashinState::Refusing { failure }
                | CashinState::Refused { failure }
                | CashinState::RefusalFailed { failure },
            ) => Some(failure),
            _ => None,
        }
    }

    pub fn ledger_tx_id(&self) -> Option<&LedgerTxId> {
        match self {
            TransferState::Cashout(s) => s.hold(),
            TransferState::Cashin(CashinState::Credited { credit }) => Some(credit),
            TransferState::Cashin(_) => None,
        }
    }

    pub fn columns(&self) -> StateColumns {
        let (incident, correction) = match self {
            TransferState::Cashout(CashoutState::Incident { kind, correction, .. }) => {
                (Some(*kind), correction.as_ref().map(|c| c.0.clone()))
            }
            // The revert of an intra-PSP debit is kept where corrections are.
            TransferState::Cashout(CashoutState::Reverted { revert, .. }) => (None, Some(revert.0.clone())),
            _ => (None, None),
        };
        StateColumns {
            status: self.status(),
            step: self.step(),
            ledger_tx_id: self.ledger_tx_id().map(|l| l.0.clone()),
            correction_tx_id: correction,
            incident,
            failure: self.failure().cloned(),
        }
    }

    /// The state stored in `c`, or why `c` is no state at all.
    pub fn from_columns(direction: Direction, c: StateColumns) -> Result<TransferState, CorruptState> {
        use TransferStatus as St;
        let corrupt = |detail| CorruptState { direction, status: c.status, step: c.step, detail };
        let ledger = c.ledger_tx_id.clone().map(LedgerTxId);
        let needs_ledger = || ledger.clone().ok_or_else(|| corrupt(" without its ledger transaction"));
        let needs_failure = || c.failure.clone().ok_or_else(|| corrupt(" without a failure"));
        let state = match direction {
            Direction::Cashout => TransferState::Cashout(match (c.status, c.step) {
                (St::InReview, Step::New) => CashoutState::InReview,
                (St::Pending, Step::New) => CashoutState::New,
                (St::Pending, Step::Held) => CashoutState::Held { hold: needs_ledger()? },
                (St::Processing, Step::Sent) => CashoutState::Sent { hold: needs_ledger()? },
                (St::Completed, Step::Settled) => CashoutState::Settled { hold: needs_ledger()? },
                (St::Failed, Step::Released) => CashoutState::Released { hold: ledger, failure: needs_failure()? },
                (St::ReconciliationRequired, step @ (Step::IncidentOpen | Step::IncidentCorrected)) => {
                    let kind = c.incident.ok_or_else(|| corrupt(" without an incident kind"))?;
                    let correction = c.correction_tx_id.clone().map(LedgerTxId);
                    if (step == Step::IncidentCorrected) != correction.is_some() {
                        return Err(corrupt(" with a correction that does not match its step"));
                    }
                    CashoutState::Incident { kind, hold: ledger, correction }
                }
                (St::Pending, Step::Debited) => CashoutState::Debited { debit: needs_ledger()? },
                (St::Processing, Step::Delivering) => CashoutState::Delivering { debit: needs_ledger()? },
                (St::Failed, Step::Reverted) => CashoutState::Reverted {
                    debit: needs_ledger()?,
                    revert: c.correction_tx_id.clone().map(LedgerTxId).ok_or_else(|| corrupt(" without its revert"))?,
                    failure: needs_failure()?,
                },
                _ => return Err(corrupt("")),
            }),
            Direction::Cashin => TransferState::Cashin(match (c.status, c.step) {
                (St::Pending, Step::New) => CashinState::Accepted,
                (St::Completed, Step::Settled) => CashinState::Credited { credit: needs_ledger()? },
                (St::Failed, Step::New) => CashinState::Refusing { failure: needs_failure()? },
                (St::Failed, Step::Refused) => CashinState::Refused { failure: needs_failure()? },
                (St::Failed, Step::RefusalFailed) => CashinState::RefusalFailed { failure: needs_failure()? },
                _ => return Err(corrupt("")),
            }),
        };
        Ok(state)
    }
}

// -------------------------------------------------------------------------------- details

/// DICT statistics of a key or person (read at initiation, given to fraud triage).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DictStatistics {
    pub settlements_d90: u32,
    pub application_frauds: u32,
    pub mule_accounts: u32,
    pub scammer_accounts: u32,
    pub other_frauds: u32,
    pub unknown_frauds: u32,
    /// Centavos.
    pub total_fraud_amount: i64,
    pub distinct_fraud_reporters: u32,
    pub open_reports: u32,
    pub open_reports_distinct_reporters: u32,
    pub rejected_reports: u32,
}

/// What initiation resolved, kept with the initiation until it is processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiationDetails {
    pub destination: Counterparty,
    pub initiation_method: InitiationMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_statistics: Option<DictStatistics>,
}

/// The other side of a transfer (the destination of a cash-out, the payer of a cash-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counterparty {
    pub ispb: String,
    pub branch: String,
    pub account: String,
    /// DICT account type (`CACC`, `SVGS`, …).
    pub account_type: String,
    pub tax_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_type: Option<PersonType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ownership_date: Option<DateTime<Utc>>,
}

/// Our customer's account as BTG is told (the debtor of a cash-out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Debtor {
    pub branch: String,
    pub account: String,
    pub account_type: String,
    pub tax_id: String,
    pub name: String,
}

/// Our customer's account as the payer addressed it (the creditor of a cash-in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditedAccount {
    pub branch: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What the fee policy charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeApplied {
    /// The Midaz alias that receives the fee.
    pub account: String,
    pub charge: FeeCharge,
    pub label: String,
    pub policy_sha256: String,
}

/// What fraud triage said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FraudVerdict {
    pub score: u16,
    pub action: FraudAction,
    pub reasons: Vec<String>,
    pub policy_sha256: String,
}

/// A reviewer's decision on a cash-out held for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    pub released: bool,
    pub note: Option<String>,
    /// The admin credential that decided, or `None` when the review deadline did.
    pub by: Option<uuid::Uuid>,
    pub at: DateTime<Utc>,
}

/// What the cash-in acceptance policy said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptanceRecord {
    pub accepted: bool,
    pub policy_sha256: String,
}

/// A contradiction with BTG, as detected and handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRecord {
    pub kind: IncidentKind,
    pub detected_at: DateTime<Utc>,
    /// What was done about it, for the operator.
    pub note: String,
}

/// The facts of a transfer that no column holds. Stored as JSON, read and written only as this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferDetails {
    pub counterparty: Counterparty,
    /// Cash-out: how the destination was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiation_type: Option<InitiationType>,
    pub initiation_method: InitiationMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<String>,
    /// Our customer's Midaz alias (set once the account is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_alias: Option<String>,
    /// Cash-out: our customer as BTG is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<Debtor>,
    /// Cash-in: the account the payer addressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor: Option<CreditedAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<FeeApplied>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud: Option<FraudVerdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance: Option<AcceptanceRecord>,
    /// Cash-in refused: the pacs.002 reason sent to SPI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spi_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentRecord>,
    /// Cash-out: the `X-Idempotency` key of the request that admitted it, so a retry of that
    /// request whose first answer was lost in a crash is answered with this transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_key: Option<String>,
}

impl TransferDetails {
    /// What BTG is asked to send (cash-out) and what leaves the customer's account, in centavos:
    /// `(debited, sent)`. `None` when the sum overflows or a deducted fee would take it all.
    pub fn cashout_amounts(&self, amount: i64, fee: i64) -> Option<(i64, i64)> {
        let deducted = self.fee.as_ref().is_some_and(|f| f.charge == FeeCharge::Deducted);
        if deducted {
            Some((amount, amount.checked_sub(fee).filter(|sent| *sent > 0)?))
        } else {
            Some((amount.checked_add(fee)?, amount))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold() -> LedgerTxId {
        LedgerTxId("hold-1".into())
    }

    fn failure() -> Failure {
        Failure::new("AB03", "timeout at the receiving PSP")
    }

    fn every_cashout_state() -> Vec<CashoutState> {
        vec![
            CashoutState::InReview,
            CashoutState::New,
            CashoutState::Held { hold: hold() },
            CashoutState::Sent { hold: hold() },
            CashoutState::Settled { hold: hold() },
            CashoutState::Released { hold: Some(hold()), failure: failure() },
            CashoutState::Released { hold: None, failure: failure() },
            CashoutState::Incident { kind: IncidentKind::ConfirmedAfterFailed, hold: Some(hold()), correction: None },
            CashoutState::Incident {
                kind: IncidentKind::RejectedAfterCompleted,
                hold: Some(hold()),
                correction: Some(LedgerTxId("fix".into())),
            },
            CashoutState::Debited { debit: hold() },
            CashoutState::Delivering { debit: hold() },
            CashoutState::Reverted { debit: hold(), revert: LedgerTxId("undo".into()), failure: failure() },
            CashoutState::Incident { kind: IncidentKind::DebitRevertFailed, hold: Some(hold()), correction: None },
        ]
    }

    fn every_cashout_event() -> Vec<CashoutEvent> {
        vec![
            CashoutEvent::ReviewReleased,
            CashoutEvent::ReviewRejected(failure()),
            CashoutEvent::HoldPlaced(hold()),
            CashoutEvent::HoldRefused(failure()),
            CashoutEvent::Accepted,
            CashoutEvent::Confirmed,
            CashoutEvent::Rejected(failure()),
            CashoutEvent::Contradicted(IncidentKind::ConfirmedAfterFailed),
            CashoutEvent::Contradicted(IncidentKind::RejectedAfterCompleted),
            CashoutEvent::Corrected(LedgerTxId("fix".into())),
            CashoutEvent::Debited(hold()),
            CashoutEvent::Queued,
            CashoutEvent::Reverted { revert: LedgerTxId("undo".into()), failure: failure() },
            CashoutEvent::RevertFailed,
        ]
    }

    #[test]
    fn the_intra_psp_paths() {
        let s = CashoutState::New.on(CashoutEvent::Debited(hold())).unwrap();
        assert_eq!((s.status(), s.step()), (TransferStatus::Pending, Step::Debited));
        let s = s.on(CashoutEvent::Queued).unwrap();
        assert_eq!((s.status(), s.step()), (TransferStatus::Processing, Step::Delivering));
        assert_eq!(s.on(CashoutEvent::Confirmed).unwrap(), CashoutState::Settled { hold: hold() });
        let undo = LedgerTxId("undo".into());
        let reverted = s.on(CashoutEvent::Reverted { revert: undo.clone(), failure: failure() }).unwrap();
        assert_eq!((reverted.status(), reverted.hold()), (TransferStatus::Failed, Some(&hold())));
        let stuck = CashoutState::Delivering { debit: hold() }.on(CashoutEvent::RevertFailed).unwrap();
        assert_eq!(stuck.status(), TransferStatus::ReconciliationRequired);
        assert!(stuck.on(CashoutEvent::Corrected(undo)).is_ok(), "the revert is the incident's correction");
    }

    #[test]
    fn the_cashout_happy_path() {
        let s = CashoutState::New;
        let s = s.on(CashoutEvent::HoldPlaced(hold())).unwrap();
        assert_eq!((s.status(), s.step()), (TransferStatus::Pending, Step::Held));
        let s = s.on(CashoutEvent::Accepted).unwrap();
        assert_eq!((s.status(), s.step()), (TransferStatus::Processing, Step::Sent));
        let s = s.on(CashoutEvent::Confirmed).unwrap();
        assert_eq!(s, CashoutState::Settled { hold: hold() });
        assert_eq!(s.status(), TransferStatus::Completed);
    }

    #[test]
    fn every_cashout_transition_is_allowed_or_refused_as_specified() {
        use CashoutEvent as E;
        use CashoutState as S;
        let mut allowed = 0;
        for state in every_cashout_state() {
            for event in every_cashout_event() {
                let expected_ok = matches!(
                    (&state, &event),
                    (S::InReview, E::ReviewReleased | E::ReviewRejected(_))
                        | (S::New, E::HoldPlaced(_) | E::HoldRefused(_))
                        | (S::Held { .. }, E::Accepted)
                        | (S::Held { .. } | S::Sent { .. }, E::Confirmed | E::Rejected(_))
                        | (
                            S::Released { .. } | S::Held { .. } | S::Sent { .. },
                            E::Contradicted(IncidentKind::ConfirmedAfterFailed)
                        )
                        | (S::Settled { .. }, E::Contradicted(IncidentKind::RejectedAfterCompleted))
                        | (S::Incident { correction: None, .. }, E::Corrected(_))
                        | (S::New, E::Debited(_))
                        | (S::Debited { .. }, E::Queued)
                        | (S::Delivering { .. }, E::Confirmed)
                        | (S::Debited { .. } | S::Delivering { .. }, E::Reverted { .. } | E::RevertFailed)
                );
                let result = state.on(event.clone());
                assert_eq!(result.is_ok(), expected_ok, "{state:?} on {event:?} gave {result:?}");
                match result {
                    Ok(_) => allowed += 1,
                    Err(e) => {
                        assert_eq!((e.status, e.step), (state.status(), state.step()));
                        assert_eq!(e.direction, Direction::Cashout);
                    }
                }
            }
        }
        assert_eq!(allowed, 23, "the number of allowed (state, event) pairs changed");
    }

    #[test]
    fn final_cashouts_never_move_money_again() {
        for state in every_cashout_state().into_iter().filter(|s| s.status().is_final()) {
            for event in [CashoutEvent::Confirmed, CashoutEvent::Rejected(failure()), CashoutEvent::Accepted] {
                assert!(state.on(event).is_err(), "{state:?} must refuse BTG verdicts");
            }
        }
    }

    #[test]
    fn a_verdict_keeps_the_hold_it_acts_on() {
        let released = CashoutState::Sent { hold: hold() }.on(CashoutEvent::Rejected(failure())).unwrap();
        assert_eq!(released.hold(), Some(&hold()));
        let incident = released.on(CashoutEvent::Contradicted(IncidentKind::ConfirmedAfterFailed)).unwrap();
        assert_eq!(incident.hold(), Some(&hold()));
        assert_eq!(incident.step(), Step::IncidentOpen);
        let corrected = incident.on(CashoutEvent::Corrected(LedgerTxId("redebit".into()))).unwrap();
        assert_eq!(corrected.step(), Step::IncidentCorrected);
        assert!(corrected.on(CashoutEvent::Corrected(LedgerTxId("again".into()))).is_err());
    }

    #[test]
    fn every_cashin_transition_is_allowed_or_refused_as_specified() {
        use CashinEvent as E;
        use CashinState as S;
        let states = [
            S::Accepted,
            S::Credited { credit: hold() },
            S::Refusing { failure: failure() },
            S::Refused { failure: failure() },
            S::RefusalFailed { failure: failure() },
        ];
        let events = [E::Credited(hold()), E::CreditFailed(failure()), E::RefusalAccepted, E::RefusalRefused];
        for state in &states {
            for event in &events {
                let expected_ok = matches!(
                    (state, event),
                    (S::Accepted, E::Credited(_) | E::CreditFailed(_))
                        | (S::Refusing { .. }, E::RefusalAccepted | E::RefusalRefused)
                );
                assert_eq!(state.on(event.clone()).is_ok(), expected_ok, "{state:?} on {event:?}");
            }
        }
    }

    #[test]
    fn every_state_survives_its_columns() {
        let cashouts = every_cashout_state().into_iter().map(TransferState::Cashout);
        let cashins = [
            CashinState::Accepted,
            CashinState::Credited { credit: hold() },
            CashinState::Refusing { failure: failure() },
            CashinState::Refused { failure: failure() },
            CashinState::RefusalFailed { failure: failure() },
        ]
        .into_iter()
        .map(TransferState::Cashin);
        for state in cashouts.chain(cashins) {
            let back = TransferState::from_columns(state.direction(), state.columns());
            assert_eq!(back.as_ref(), Ok(&state));
        }
    }

    #[test]
    fn impossible_columns_are_refused() {
        let columns = |status, step, ledger: Option<&str>| StateColumns {
            status,
            step,
            ledger_tx_id: ledger.map(str::to_owned),
            correction_tx_id: None,
            incident: None,
            failure: None,
        };
        let refused = [
            (Direction::Cashout, columns(TransferStatus::Completed, Step::New, Some("h"))),
            (Direction::Cashout, columns(TransferStatus::Processing, Step::Sent, None)),
            (Direction::Cashout, columns(TransferStatus::Failed, Step::Released, Some("h"))),
            (Direction::Cashout, columns(TransferStatus::ReconciliationRequired, Step::IncidentOpen, Some("h"))),
            (Direction::Cashin, columns(TransferStatus::Processing, Step::Sent, Some("h"))),
            (Direction::Cashin, columns(TransferStatus::Completed, Step::Settled, None)),
        ];
        for (direction, c) in refused {
            assert!(TransferState::from_columns(direction, c.clone()).is_err(), "{direction} {c:?}");
        }
    }

    #[test]
    fn text_enums_round_trip_and_refuse_unknown_text() {
        for s in TransferStatus::ALL {
            assert_eq!(s.as_str().parse::<TransferStatus>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        for s in Step::ALL {
            assert_eq!(s.as_str().parse::<Step>(), Ok(*s));
        }
        assert!("processing".parse::<TransferStatus>().is_err());
        assert!(serde_json::from_str::<Direction>("\"SIDEWAYS\"").is_err());
        assert_eq!(serde_json::from_str::<InitiationType>("\"QR_CODE\"").unwrap(), InitiationType::QrCode);
    }

    #[test]
    fn cashout_amounts_are_checked() {
        let details = |charge| TransferDetails {
            counterparty: Counterparty {
                ispb: "1".into(),
                branch: "1".into(),
                account: "1".into(),
                account_type: "CACC".into(),
                tax_id: "1".into(),
                name: "n".into(),
                person_type: None,
                key: None,
                key_type: None,
                key_ownership_date: None,
            },
            initiation_type: None,
            initiation_method: InitiationMethod::Manual,
            description: None,
            tx_id: None,
            ledger_alias: None,
            debtor: None,
            creditor: None,
            fee: Some(FeeApplied {
                account: "@fees".into(),
                charge,
                label: String::new(),
                policy_sha256: String::new(),
            }),
            fraud: None,
            review: None,
            acceptance: None,
            spi_reason: None,
            incident: None,
            process_key: None,
        };
        assert_eq!(details(FeeCharge::OnTop).cashout_amounts(1000, 50), Some((1050, 1000)));
        assert_eq!(details(FeeCharge::Deducted).cashout_amounts(1000, 50), Some((1000, 950)));
        assert_eq!(details(FeeCharge::Deducted).cashout_amounts(1000, 1000), None);
        assert_eq!(details(FeeCharge::OnTop).cashout_amounts(i64::MAX, 1), None);
    }
}
