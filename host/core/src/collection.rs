//! Collections (cobranças): immediate (`COB`) and due-date (`COBV`) charges a receiver creates and
//! a payer pays by dynamic BR Code (lerian-plugin-api §4.2, pix-standards §5.2-5.4).
//!
//! The lifecycle is the typed state machine of lerian-plugin-api §8:
//! `ACTIVE → CONCLUDED` (a cash-in with its txId settled) `| REMOVED_BY_RECEIVER` (DELETE)
//! `| REMOVED_BY_PSP` (the expiry job). Every other status is final, and [`CollectionStatus::on`]
//! refuses every move out of one.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::brcode::{AdditionalInfo, AmountOrPercent, DiscountModality, DueDateRules, InterestModality};
use crate::money::Money;
use crate::text_enum;

/// Free-form client metadata (at most 50 keys, checked by the API).
pub type Metadata = BTreeMap<String, serde_json::Value>;

text_enum! {
    /// Immediate (API Pix `cob`) or due date (`cobv`).
    pub enum CollectionKind {
        Immediate = "IMMEDIATE",
        DueDate = "DUE_DATE",
    }
}

impl CollectionKind {
    /// The path segment of the location (`/qr/v2/cob/…`, `/qr/v2/cobv/…`), as API Pix names them.
    pub const fn location_segment(self) -> &'static str {
        match self {
            CollectionKind::Immediate => "cob",
            CollectionKind::DueDate => "cobv",
        }
    }
}

text_enum! {
    /// Lerian's collection statuses; API Pix `CobrancaStatus` in English (pix-standards §5.4).
    pub enum CollectionStatus {
        Active = "ACTIVE",
        Concluded = "CONCLUDED",
        RemovedByReceiver = "REMOVED_BY_RECEIVER",
        RemovedByPsp = "REMOVED_BY_PSP",
    }
}

/// What happens to a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionEvent {
    /// A cash-in carrying its txId, for the amount due, was credited.
    Paid,
    /// The receiver deleted it.
    DeletedByReceiver,
    /// The expiry job found it past its expiration (COB) or validity after the due date (COBV).
    Expired,
}

/// A move the state machine refuses, with the status the collection is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {status} collection cannot take {event:?}")]
pub struct InvalidTransition {
    pub status: CollectionStatus,
    pub event: CollectionEvent,
}

impl CollectionStatus {
    pub fn is_final(self) -> bool {
        self != CollectionStatus::Active
    }

    /// The status after `event`; only an ACTIVE collection moves.
    pub fn on(self, event: CollectionEvent) -> Result<CollectionStatus, InvalidTransition> {
        match (self, event) {
            (CollectionStatus::Active, CollectionEvent::Paid) => Ok(CollectionStatus::Concluded),
            (CollectionStatus::Active, CollectionEvent::DeletedByReceiver) => Ok(CollectionStatus::RemovedByReceiver),
            (CollectionStatus::Active, CollectionEvent::Expired) => Ok(CollectionStatus::RemovedByPsp),
            (status, event) => Err(InvalidTransition { status, event }),
        }
    }

    /// The API Pix status a location serves.
    pub fn charge_status(self) -> crate::brcode::ChargeStatus {
        use crate::brcode::ChargeStatus;
        match self {
            CollectionStatus::Active => ChargeStatus::Active,
            CollectionStatus::Concluded => ChargeStatus::Concluded,
            CollectionStatus::RemovedByReceiver => ChargeStatus::RemovedByReceiver,
            CollectionStatus::RemovedByPsp => ChargeStatus::RemovedByPsp,
        }
    }
}

text_enum! {
    /// Fine and abatement modalities (API Pix `modalidade` 1 and 2).
    pub enum AmountModality {
        FixedAmount = "FIXED_AMOUNT",
        Percent = "PERCENT",
    }
}

text_enum! {
    /// Interest modalities (API Pix `juros.modalidade` 1 to 8).
    pub enum InterestModalityName {
        AmountPerCalendarDay = "AMOUNT_PER_CALENDAR_DAY",
        PercentagePerDayCalendarDays = "PERCENTAGE_PER_DAY_CALENDAR_DAYS",
        PercentagePerMonthCalendarDays = "PERCENTAGE_PER_MONTH_CALENDAR_DAYS",
        PercentagePerYearCalendarDays = "PERCENTAGE_PER_YEAR_CALENDAR_DAYS",
        AmountPerBusinessDay = "AMOUNT_PER_BUSINESS_DAY",
        PercentagePerDayBusinessDays = "PERCENTAGE_PER_DAY_BUSINESS_DAYS",
        PercentagePerMonthBusinessDays = "PERCENTAGE_PER_MONTH_BUSINESS_DAYS",
        PercentagePerYearBusinessDays = "PERCENTAGE_PER_YEAR_BUSINESS_DAYS",
    }
}

text_enum! {
    /// Discount modalities (API Pix `desconto.modalidade` 1 to 6).
    pub enum DiscountModalityName {
        FixedAmountUntilDate = "FIXED_AMOUNT_UNTIL_DATE",
        PercentageUntilDate = "PERCENTAGE_UNTIL_DATE",
        AmountAdvanceCalendarDay = "AMOUNT_ADVANCE_CALENDAR_DAY",
        AmountAdvanceBusinessDay = "AMOUNT_ADVANCE_BUSINESS_DAY",
        PercentageAdvanceCalendarDay = "PERCENTAGE_ADVANCE_CALENDAR_DAY",
        PercentageAdvanceBusinessDay = "PERCENTAGE_ADVANCE_BUSINESS_DAY",
    }
}

impl AmountModality {
    pub const fn api_pix(self) -> AmountOrPercent {
        match self {
            AmountModality::FixedAmount => AmountOrPercent::Amount,
            AmountModality::Percent => AmountOrPercent::Percent,
        }
    }

    pub const fn from_api_pix(m: AmountOrPercent) -> AmountModality {
        match m {
            AmountOrPercent::Amount => AmountModality::FixedAmount,
            AmountOrPercent::Percent => AmountModality::Percent,
        }
    }
}

impl InterestModalityName {
    pub const fn api_pix(self) -> InterestModality {
        use InterestModality as M;
        match self {
            Self::AmountPerCalendarDay => M::AmountPerCalendarDay,
            Self::PercentagePerDayCalendarDays => M::PercentPerDayCalendarDays,
            Self::PercentagePerMonthCalendarDays => M::PercentPerMonthCalendarDays,
            Self::PercentagePerYearCalendarDays => M::PercentPerYearCalendarDays,
            Self::AmountPerBusinessDay => M::AmountPerBusinessDay,
            Self::PercentagePerDayBusinessDays => M::PercentPerDayBusinessDays,
            Self::PercentagePerMonthBusinessDays => M::PercentPerMonthBusinessDays,
            Self::PercentagePerYearBusinessDays => M::PercentPerYearBusinessDays,
        }
    }

    pub fn from_api_pix(m: InterestModality) -> InterestModalityName {
        Self::ALL.iter().copied().find(|n| n.api_pix() == m).unwrap_or(Self::AmountPerCalendarDay)
    }
}

impl DiscountModalityName {
    pub const fn api_pix(self) -> DiscountModality {
        use DiscountModality as M;
        match self {
            Self::FixedAmountUntilDate => M::AmountUntilDate,
            Self::PercentageUntilDate => M::PercentUntilDate,
            Self::AmountAdvanceCalendarDay => M::AmountPerCalendarDayEarly,
            Self::AmountAdvanceBusinessDay => M::AmountPerBusinessDayEarly,
            Self::PercentageAdvanceCalendarDay => M::PercentPerCalendarDayEarly,
            Self::PercentageAdvanceBusinessDay => M::PercentPerBusinessDayEarly,
        }
    }

    pub fn from_api_pix(m: DiscountModality) -> DiscountModalityName {
        Self::ALL.iter().copied().find(|n| n.api_pix() == m).unwrap_or(Self::FixedAmountUntilDate)
    }
}

/// When a charge may be paid and, for a COBV, how much on each date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE", rename_all_fields = "camelCase")]
pub enum Schedule {
    /// COB: payable for `expiration_seconds` after creation, for its amount.
    Immediate { expiration_seconds: u32 },
    /// COBV: payable until `valid_after_due` days after `due_date`, for what `rules` give on the
    /// payment date.
    DueDate { due_date: NaiveDate, valid_after_due: u32, rules: DueDateRules },
}

/// The debtor of a charge (`devedor`): optional on a COB (document and name both or neither),
/// required on a COBV with its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Debtor {
    /// CPF (11 digits) or CNPJ (14), check digits verified.
    pub document: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
}

/// The merchant fields of the BR Code (59, 60, 52, 61), as emitted (folded to ASCII).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merchant {
    pub name: String,
    pub city: String,
    pub category_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// Everything a collection holds beyond its indexed columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionDetails {
    pub schedule: Schedule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<Debtor>,
    /// `solicitacaoPagador`, shown to the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<AdditionalInfo>,
    pub merchant: Merchant,
    /// The receiving account holder's CPF/CNPJ (`recebedor` of a COBV payload).
    pub receiver_document: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Pix Troco: the purchase part of the amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_amount: Option<Money>,
    /// Pix Saque / Troco: the cash handed to the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawal_amount: Option<Money>,
}

/// Why a payment does not settle a collection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentMismatch {
    #[error("the collection is {0}, not ACTIVE")]
    NotActive(CollectionStatus),
    #[error("the collection expired")]
    Expired,
    #[error("the amount due on {date} is {due}, the payment is {paid}")]
    WrongAmount { date: NaiveDate, due: Money, paid: Money },
    #[error("nothing is due on {date}: {reason}")]
    NotPayable { date: NaiveDate, reason: String },
}

impl Schedule {
    /// What is due on `date` for a charge of `amount` (COB) or by its rules (COBV).
    pub fn due_on(&self, amount: Money, date: NaiveDate) -> Result<Money, PaymentMismatch> {
        match self {
            Schedule::Immediate { .. } => Ok(amount),
            Schedule::DueDate { due_date, valid_after_due, rules } => rules
                .value_on(*due_date, *valid_after_due, date)
                .map(|v| v.total)
                .map_err(|e| PaymentMismatch::NotPayable { date, reason: e.to_string() }),
        }
    }
}

/// Checks a payment of `paid` on `date` (Brasília) against an ACTIVE collection.
pub fn check_payment(
    status: CollectionStatus,
    schedule: &Schedule,
    amount: Money,
    paid: Money,
    date: NaiveDate,
) -> Result<(), PaymentMismatch> {
    if status != CollectionStatus::Active {
        return Err(PaymentMismatch::NotActive(status));
    }
    let due = schedule.due_on(amount, date)?;
    if due == paid { Ok(()) } else { Err(PaymentMismatch::WrongAmount { date, due, paid }) }
}

/// API Pix txids of cob/cobv: `[a-zA-Z0-9]{26,35}` (pix-standards §5.2).
pub fn is_valid_charge_txid(txid: &str) -> bool {
    (26..=35).contains(&txid.len()) && txid.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_collections_move() {
        use CollectionEvent::*;
        use CollectionStatus::*;
        assert_eq!(Active.on(Paid), Ok(Concluded));
        assert_eq!(Active.on(DeletedByReceiver), Ok(RemovedByReceiver));
        assert_eq!(Active.on(Expired), Ok(RemovedByPsp));
        for status in [Concluded, RemovedByReceiver, RemovedByPsp] {
            assert!(status.is_final());
            for event in [Paid, DeletedByReceiver, Expired] {
                assert_eq!(status.on(event), Err(InvalidTransition { status, event }), "{status} {event:?}");
            }
        }
    }

    #[test]
    fn every_modality_name_maps_to_its_own_api_pix_code() {
        let interest: std::collections::BTreeSet<u8> =
            InterestModalityName::ALL.iter().map(|n| u8::from(n.api_pix())).collect();
        assert_eq!(interest, (1..=8).collect());
        for n in InterestModalityName::ALL {
            assert_eq!(InterestModalityName::from_api_pix(n.api_pix()), *n);
        }
        let discount: std::collections::BTreeSet<u8> =
            DiscountModalityName::ALL.iter().map(|n| u8::from(n.api_pix())).collect();
        assert_eq!(discount, (1..=6).collect());
        for n in DiscountModalityName::ALL {
            assert_eq!(DiscountModalityName::from_api_pix(n.api_pix()), *n);
        }
        assert_eq!(AmountModality::Percent.api_pix(), AmountOrPercent::Percent);
    }

    #[test]
    fn statuses_and_txids() {
        assert_eq!("REMOVED_BY_PSP".parse::<CollectionStatus>(), Ok(CollectionStatus::RemovedByPsp));
        assert!("PAID".parse::<CollectionStatus>().is_err());
        assert!(is_valid_charge_txid(&"a".repeat(26)) && is_valid_charge_txid(&"Z9".repeat(17)));
        assert!(!is_valid_charge_txid(&"a".repeat(25)) && !is_valid_charge_txid(&"a".repeat(36)));
        assert!(!is_valid_charge_txid(&format!("{}-", "a".repeat(30))));
    }
}
