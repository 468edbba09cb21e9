//! The charges served, inside a JWS, at a dynamic BR Code's location: API Pix `CobPayload`
//! (immediate, pix-standards §5.2 and §5.6) and `CobVPayload` (due date, §5.3 and §5.6).
//!
//! Field names are English in Rust and Portuguese on the wire. Amounts are strict (`Money`, no
//! rounding), status values use the enum spelling (§5.4), and unknown fields are ignored so that a
//! PSP's extras (addresses, `loc`) do not break a payment. Integers may also arrive as JSON
//! strings, because BCB's own example JWS writes `"revisao":"3"` and `"expiracao":"3600"`.
//! Taxpayer numbers are checked for shape only: BCB's cobv example carries CNPJs whose check
//! digits do not match; [`Party::document`] validates them when that matters.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::document::{Cnpj, Cpf, Document, DocumentError};
use crate::mask::{mask_document, mask_name};
use crate::money::Money;

/// API Pix `CobrancaStatus`; Lerian's English names in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChargeStatus {
    #[serde(rename = "ATIVA")]
    Active,
    #[serde(rename = "CONCLUIDA")]
    Concluded,
    #[serde(rename = "REMOVIDA_PELO_USUARIO_RECEBEDOR")]
    RemovedByReceiver,
    #[serde(rename = "REMOVIDA_PELO_PSP")]
    RemovedByPsp,
}

/// An immediate charge (`cob`) as its location serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImmediateCharge {
    pub txid: String,
    #[serde(rename = "revisao", deserialize_with = "u32_or_string")]
    pub revision: u32,
    #[serde(rename = "calendario")]
    pub calendar: ImmediateCalendar,
    #[serde(rename = "devedor", default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<Party>,
    #[serde(rename = "valor")]
    pub value: ImmediateValue,
    /// The receiver's DICT key, as the charge states it (≤ 77).
    #[serde(rename = "chave")]
    pub key: String,
    /// Text shown to the payer; what they type goes to the pacs.008 `RmtInf` (≤ 140).
    #[serde(rename = "solicitacaoPagador", default, skip_serializing_if = "Option::is_none")]
    pub payer_request: Option<String>,
    #[serde(rename = "infoAdicionais", default, skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<AdditionalInfo>,
    pub status: ChargeStatus,
}

impl ImmediateCharge {
    /// `criacao + expiracao`; `None` only if that overflows the calendar.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.calendar.created_at.checked_add_signed(TimeDelta::seconds(i64::from(self.calendar.expires_in_seconds)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImmediateCalendar {
    #[serde(rename = "criacao")]
    pub created_at: DateTime<Utc>,
    #[serde(rename = "apresentacao")]
    pub presented_at: DateTime<Utc>,
    /// Seconds from `criacao`; API Pix's default is 86400.
    #[serde(rename = "expiracao", default = "default_expiry", deserialize_with = "u32_or_string")]
    pub expires_in_seconds: u32,
}

fn default_expiry() -> u32 {
    86_400
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImmediateValue {
    pub original: Money,
    #[serde(rename = "modalidadeAlteracao", default)]
    pub change: AmountChange,
    /// `retirada{saque|troco}` (Pix Saque/Troco), kept as sent: the reference does not detail it.
    #[serde(rename = "retirada", default, skip_serializing_if = "Option::is_none")]
    pub withdrawal: Option<serde_json::Value>,
}

/// `modalidadeAlteracao`: 0 (absent) or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum AmountChange {
    /// 0: the payer pays `original`.
    #[default]
    Fixed,
    /// 1: the payer may change the amount.
    PayerMayChange,
}

impl TryFrom<u8> for AmountChange {
    type Error = &'static str;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0 => Ok(AmountChange::Fixed),
            1 => Ok(AmountChange::PayerMayChange),
            _ => Err("modalidadeAlteracao must be 0 or 1"),
        }
    }
}

impl From<AmountChange> for u8 {
    fn from(value: AmountChange) -> Self {
        match value {
            AmountChange::Fixed => 0,
            AmountChange::PayerMayChange => 1,
        }
    }
}

/// A due-date charge (`cobv`) as its location serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueDateCharge {
    pub txid: String,
    #[serde(rename = "revisao", deserialize_with = "u32_or_string")]
    pub revision: u32,
    #[serde(rename = "calendario")]
    pub calendar: DueDateCalendar,
    #[serde(rename = "devedor")]
    pub debtor: Party,
    #[serde(rename = "recebedor")]
    pub receiver: Party,
    #[serde(rename = "valor")]
    pub value: DueDateValue,
    #[serde(rename = "chave")]
    pub key: String,
    #[serde(rename = "solicitacaoPagador", default, skip_serializing_if = "Option::is_none")]
    pub payer_request: Option<String>,
    #[serde(rename = "infoAdicionais", default, skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<AdditionalInfo>,
    pub status: ChargeStatus,
}

impl DueDateCharge {
    /// The last date it may be paid: `validadeAposVencimento` calendar days after the due date.
    pub fn last_payable_date(&self) -> Option<NaiveDate> {
        super::due_date::last_payable_date(self.calendar.due_date, self.calendar.days_valid_after_due)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueDateCalendar {
    #[serde(rename = "criacao")]
    pub created_at: DateTime<Utc>,
    #[serde(rename = "apresentacao")]
    pub presented_at: DateTime<Utc>,
    /// A due date on a non-business day rolls forward; that needs a calendar, so it is the
    /// caller's job.
    #[serde(rename = "dataDeVencimento")]
    pub due_date: NaiveDate,
    /// Calendar days after the due date during which the charge may still be paid.
    #[serde(rename = "validadeAposVencimento", deserialize_with = "u32_or_string")]
    pub days_valid_after_due: u32,
}

/// The amounts the receiver's PSP computed for the requested payment date (`CobVPayloadValor`).
/// The creation request's `{modalidade, valorPerc}` rules (§5.3) are not in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueDateValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Money>,
    #[serde(rename = "multa", default, skip_serializing_if = "Option::is_none")]
    pub fine: Option<Money>,
    #[serde(rename = "juros", default, skip_serializing_if = "Option::is_none")]
    pub interest: Option<Money>,
    #[serde(rename = "abatimento", default, skip_serializing_if = "Option::is_none")]
    pub abatement: Option<Money>,
    #[serde(rename = "desconto", default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<Money>,
    /// What the payer pays.
    #[serde(rename = "final")]
    pub total: Money,
}

/// `infoAdicionais` item, to show the payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdditionalInfo {
    #[serde(rename = "nome")]
    pub name: String,
    #[serde(rename = "valor")]
    pub value: String,
}

/// A debtor (`devedor`) or receiver (`recebedor`): a CPF or a CNPJ, never both, and a name.
/// `Debug` is masked: these are personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawParty", into = "RawParty")]
pub struct Party {
    pub tax_id: TaxId,
    pub name: String,
}

/// The taxpayer number as sent: `\d{11}` for a CPF, `[0-9A-Z]{14}` for a CNPJ (API Pix
/// `PessoaFisica`/`PessoaJuridica`), check digits unchecked.
#[derive(Clone, PartialEq, Eq)]
pub enum TaxId {
    Cpf(String),
    Cnpj(String),
}

impl Party {
    /// The number as a validated document (check digits included).
    pub fn document(&self) -> Result<Document, DocumentError> {
        match &self.tax_id {
            TaxId::Cpf(cpf) => Cpf::parse(cpf).map(Document::Cpf),
            TaxId::Cnpj(cnpj) => Cnpj::parse(cnpj).map(Document::Cnpj),
        }
    }
}

impl fmt::Debug for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, number) = match &self.tax_id {
            TaxId::Cpf(cpf) => ("Cpf", cpf),
            TaxId::Cnpj(cnpj) => ("Cnpj", cnpj),
        };
        write!(f, "Party {{ tax_id: {kind}({}), name: {:?} }}", mask_document(number), mask_name(&self.name))
    }
}

impl fmt::Debug for TaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaxId::Cpf(cpf) => write!(f, "Cpf({})", mask_document(cpf)),
            TaxId::Cnpj(cnpj) => write!(f, "Cnpj({})", mask_document(cnpj)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RawParty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnpj: Option<String>,
    nome: String,
}

impl TryFrom<RawParty> for Party {
    type Error = &'static str;

    fn try_from(raw: RawParty) -> Result<Self, Self::Error> {
        let tax_id = match (raw.cpf, raw.cnpj) {
            (Some(_), Some(_)) => return Err("a party has a cpf or a cnpj, never both"),
            (None, None) => return Err("a party needs a cpf or a cnpj"),
            (Some(cpf), None) => {
                if cpf.len() != 11 || !cpf.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("a cpf is 11 digits");
                }
                TaxId::Cpf(cpf)
            }
            (None, Some(cnpj)) => {
                let shape = |b: u8| b.is_ascii_digit() || b.is_ascii_uppercase();
                if cnpj.len() != 14 || !cnpj.bytes().all(shape) {
                    return Err("a cnpj is 14 digits or uppercase letters");
                }
                TaxId::Cnpj(cnpj)
            }
        };
        Ok(Party { tax_id, name: raw.nome })
    }
}

impl From<Party> for RawParty {
    fn from(party: Party) -> Self {
        let (cpf, cnpj) = match party.tax_id {
            TaxId::Cpf(cpf) => (Some(cpf), None),
            TaxId::Cnpj(cnpj) => (None, Some(cnpj)),
        };
        RawParty { cpf, cnpj, nome: party.name }
    }
}

/// A non-negative integer written as a JSON number or as a string of digits.
fn u32_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_any(U32OrString)
}

struct U32OrString;

impl Visitor<'_> for U32OrString {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer, as a number or a string of digits")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| v.parse().ok()).flatten().ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}
