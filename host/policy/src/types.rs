//! Public input and output types, one set per decision kind. They mirror `wit/policy.wit`
//! field for field (see the WIT for each field's meaning) so callers never touch generated
//! bindings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Money in centavos.
pub type Centavos = i64;

/// The four decisions a policy can implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// `pix:policy/fee`.
    Fee,
    /// `pix:policy/refund-split`.
    RefundSplit,
    /// `pix:policy/cashin-acceptance`.
    CashinAcceptance,
    /// `pix:policy/fraud-triage`.
    FraudTriage,
}

impl PolicyKind {
    /// All kinds, in WIT order.
    pub const ALL: [PolicyKind; 4] =
        [PolicyKind::Fee, PolicyKind::RefundSplit, PolicyKind::CashinAcceptance, PolicyKind::FraudTriage];

    /// Kebab-case name, as in the WIT interface and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Fee => "fee",
            PolicyKind::RefundSplit => "refund-split",
            PolicyKind::CashinAcceptance => "cashin-acceptance",
            PolicyKind::FraudTriage => "fraud-triage",
        }
    }

    /// Parse the kebab-case name.
    pub fn parse(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// Centavos, basis points, counts, minutes or a 0/1 flag.
    Int(i64),
    /// An alias, a label or a code.
    Text(String),
}

/// Tenant parameters bound to an active policy (optional; passed on every call).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params(Vec<(String, ParamValue)>);

impl Params {
    /// Add or replace an integer parameter.
    pub fn with_int(self, name: &str, value: i64) -> Self {
        self.with(name, ParamValue::Int(value))
    }

    /// Add or replace a text parameter.
    pub fn with_text(self, name: &str, value: &str) -> Self {
        self.with(name, ParamValue::Text(value.to_owned()))
    }

    fn with(mut self, name: &str, value: ParamValue) -> Self {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value));
        self
    }

    /// Integer parameter, if set as an integer.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.iter().find_map(|(n, v)| match v {
            ParamValue::Int(i) if n == name => Some(*i),
            _ => None,
        })
    }

    /// Text parameter, if set as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.iter().find_map(|(n, v)| match v {
            ParamValue::Text(t) if n == name => Some(t.as_str()),
            _ => None,
        })
    }

    /// All parameters in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, ParamValue)> for Params {
    fn from_iter<I: IntoIterator<Item = (String, ParamValue)>>(iter: I) -> Self {
        iter.into_iter().fold(Params::default(), |params, (name, value)| params.with(&name, value))
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vm])* $variant),+ }
    };
}

wire_enum!(
    /// Natural (CPF) or legal (CNPJ) person.
    PersonType { Natural, Legal }
);
wire_enum!(
    /// Day of the week in America/Sao_Paulo.
    Weekday { Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday }
);

/// Local time in America/Sao_Paulo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalTime {
    /// Minutes since local midnight, 0..=1439.
    pub minute_of_day: u16,
    /// Local weekday.
    pub weekday: Weekday,
}

impl LocalTime {
    /// `hh:mm` on `weekday`.
    pub fn at(hours: u16, minutes: u16, weekday: Weekday) -> Self {
        Self { minute_of_day: hours * 60 + minutes, weekday }
    }

    /// True when in `[from, to)` minutes of day, wrapping past midnight when `from > to`.
    pub fn within(&self, from: u16, to: u16) -> bool {
        let t = self.minute_of_day;
        if from <= to { t >= from && t < to } else { t >= from || t < to }
    }
}

// ------------------------------------------------------------------------------------ fee

wire_enum!(
    /// What the fee applies to.
    Operation { CashOut, CashIn, Refund, IntraPsp }
);
wire_enum!(
    /// How the payment was initiated.
    Initiation { Key, QrCode, Manual }
);
wire_enum!(
    /// Pix purpose (the plugin's purpose header).
    Purpose { Transfer, Change, Withdrawal, RefundAutomaticPix, InstantPaymentRefund, InstallmentPix }
);
pub use pix_core::transfer::FeeCharge;

/// Input of the fee decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeInput {
    pub operation: Operation,
    pub initiation: Initiation,
    pub purpose: Purpose,
    pub amount: Centavos,
    pub payer_type: PersonType,
    pub payee_type: PersonType,
    pub account_segment: String,
    pub intra_psp: bool,
    pub local_time: LocalTime,
    pub month_count: u32,
    pub month_volume: Centavos,
}

/// Fee to post; `fee == 0` posts no fee leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeeDecision {
    pub fee: Centavos,
    pub fee_account: String,
    pub charge: FeeCharge,
    pub label: String,
}

// ----------------------------------------------------------------------------- refund-split

wire_enum!(
    /// Role of an account in the original cash-in.
    AccountRole { Customer, Fee, Other }
);

/// One credit of the original cash-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginalOperation {
    pub account_alias: String,
    pub role: AccountRole,
    pub credited: Centavos,
    pub available: Centavos,
}

/// Input of the refund-split decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundSplitInput {
    pub refund_amount: Centavos,
    pub original_amount: Centavos,
    pub already_refunded: Centavos,
    pub operations: Vec<OriginalOperation>,
}

/// Debit `amount` from `account_alias`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundPortion {
    pub account_alias: String,
    pub amount: Centavos,
}

/// A split that sums to the refund, or a business rejection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum RefundSplitDecision {
    Split { portions: Vec<RefundPortion> },
    Reject { code: String, message: String },
}

// ------------------------------------------------------------------------ cashin-acceptance

wire_enum!(
    /// Status of the payee account.
    AccountStatus { Active, Blocked, Closed }
);
wire_enum!(
    /// Type of the payer's document.
    DocumentType { Cpf, Cnpj }
);

/// Input of the cash-in acceptance decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CashinInput {
    pub amount: Centavos,
    pub payee_status: AccountStatus,
    pub payee_type: PersonType,
    pub payer_ispb: String,
    pub payer_document_type: DocumentType,
    pub same_owner: bool,
    pub intra_psp: bool,
    pub local_time: LocalTime,
    pub day_count: u32,
    pub day_volume: Centavos,
}

/// Accept, or deny with a business code and a pacs.002 reason code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum CashinDecision {
    Accept,
    Deny { code: String, spi_reason: String, message: String },
}

// ----------------------------------------------------------------------------- fraud-triage

wire_enum!(
    /// Direction from the customer's point of view.
    Direction { CashOut, CashIn }
);
wire_enum!(
    /// Counterparty key type.
    KeyType { Cpf, Cnpj, Phone, Email, Evp }
);
pub use pix_core::transfer::FraudAction;

pub use pix_core::transfer::DictStatistics;

/// Recent activity of the customer's account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Velocity {
    pub count_1h: u32,
    pub amount_1h: Centavos,
    pub count_24h: u32,
    pub amount_24h: Centavos,
    pub distinct_counterparties_24h: u32,
}

/// Input of the fraud-triage decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FraudInput {
    pub direction: Direction,
    pub amount: Centavos,
    pub key_type: Option<KeyType>,
    pub key_age_days: Option<u32>,
    pub key_statistics: Option<DictStatistics>,
    pub owner_statistics: Option<DictStatistics>,
    pub counterparty_type: PersonType,
    pub first_time_counterparty: bool,
    pub account_age_days: u32,
    pub velocity: Velocity,
    pub local_time: LocalTime,
    /// New in `pix:policy@0.2.0`; empty in decisions recorded before it (and never shown to
    /// components built against 0.1.0).
    #[serde(default)]
    pub account_segment: String,
}

/// Score (0..=1000), action and reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FraudDecision {
    pub score: u16,
    pub action: FraudAction,
    pub reasons: Vec<String>,
}
