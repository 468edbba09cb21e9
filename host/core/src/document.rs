//! Brazilian taxpayer documents: CPF (natural persons) and CNPJ (legal persons).
//!
//! Inputs are the bare characters the API and DICT exchange; formatted input such as
//! `123.456.789-09` is rejected rather than cleaned, so that what we store and forward is exactly
//! what the client sent. `Debug` output is masked because these are personal data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::mask::mask_document;
use crate::serde_str::{self, Echo};

/// Why a string is not an acceptable document. Messages never repeat the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("a CPF must be exactly 11 digits, without punctuation")]
    CpfFormat,
    #[error(
        "a CNPJ must be exactly 14 characters, without punctuation: 12 letters or digits, \
         then 2 digits"
    )]
    CnpjFormat,
    #[error("a {kind} cannot have every digit equal")]
    RepeatedDigits { kind: &'static str },
    #[error("the {kind} check digits do not match")]
    CheckDigits { kind: &'static str },
    #[error("a document must have 11 (CPF) or 14 (CNPJ) characters, got {found}")]
    UnknownLength { found: usize },
}

/// A CPF: 11 digits whose last two are the Receita Federal check digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpf(String);

impl Cpf {
    pub fn parse(input: &str) -> Result<Cpf, DocumentError> {
        if input.len() != 11 || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DocumentError::CpfFormat);
        }
        if all_equal(input) {
            return Err(DocumentError::RepeatedDigits { kind: "CPF" });
        }
        let digits: Vec<u32> = input.bytes().map(|b| u32::from(b - b'0')).collect();
        let expected = [cpf_check_digit(&digits[..9]), cpf_check_digit(&digits[..10])];
        if digits[9..] != expected {
            return Err(DocumentError::CheckDigits { kind: "CPF" });
        }
        Ok(Cpf(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Weights n+1..2 over the n digits given, then `(sum * 10 % 11) % 10`.
fn cpf_check_digit(digits: &[u32]) -> u32 {
    let sum: u32 = digits.iter().rev().zip(2..).map(|(d, w)| d * w).sum();
    sum * 10 % 11 % 10
}

/// A CNPJ: 12 base characters (digits, or from July 2026 also uppercase letters) and 2 check
/// digits. Lowercase letters are accepted and stored uppercase, as the Receita Federal writes
/// them; DICT matches CNPJ keys case-insensitively.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cnpj(String);

impl Cnpj {
    pub fn parse(input: &str) -> Result<Cnpj, DocumentError> {
        let bytes = input.as_bytes();
        let well_formed = bytes.len() == 14
            && bytes[..12].iter().all(u8::is_ascii_alphanumeric)
            && bytes[12..].iter().all(u8::is_ascii_digit);
        if !well_formed {
            return Err(DocumentError::CnpjFormat);
        }
        if all_equal(input) {
            return Err(DocumentError::RepeatedDigits { kind: "CNPJ" });
        }
        let normalized = input.to_ascii_uppercase();
        // Character value is its code minus 48: digits keep their value, 'A' is 17.
        let values: Vec<u32> = normalized.bytes().map(|b| u32::from(b - b'0')).collect();
        let expected = [cnpj_check_digit(&values[..12]), cnpj_check_digit(&values[..13])];
        if values[12..] != expected {
            return Err(DocumentError::CheckDigits { kind: "CNPJ" });
        }
        Ok(Cnpj(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Weights 2..9 cycling from the right, then `r = sum % 11`, `dv = r < 2 ? 0 : 11 - r`.
fn cnpj_check_digit(values: &[u32]) -> u32 {
    let sum: u32 = values.iter().rev().zip((2..=9).cycle()).map(|(v, w)| v * w).sum();
    match sum % 11 {
        0 | 1 => 0,
        r => 11 - r,
    }
}

/// `00000000000` and friends pass the check-digit arithmetic but are not real documents.
fn all_equal(s: &str) -> bool {
    let first = s.as_bytes().first();
    s.bytes().all(|b| Some(&b) == first)
}

/// Either document, as a payer/owner `taxId` field carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Document {
    Cpf(Cpf),
    Cnpj(Cnpj),
}

impl Document {
    /// Chooses by length: 11 characters is a CPF, 14 a CNPJ.
    pub fn parse(input: &str) -> Result<Document, DocumentError> {
        match input.chars().count() {
            11 => Cpf::parse(input).map(Document::Cpf),
            14 => Cnpj::parse(input).map(Document::Cnpj),
            found => Err(DocumentError::UnknownLength { found }),
        }
    }

    pub fn person_type(&self) -> PersonType {
        match self {
            Document::Cpf(_) => PersonType::Natural,
            Document::Cnpj(_) => PersonType::Legal,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Document::Cpf(cpf) => cpf.as_str(),
            Document::Cnpj(cnpj) => cnpj.as_str(),
        }
    }
}

/// DICT `Owner.Type` and the CRM holder `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PersonType {
    #[serde(rename = "NATURAL_PERSON")]
    Natural,
    #[serde(rename = "LEGAL_PERSON")]
    Legal,
}

impl PersonType {
    pub const fn as_str(self) -> &'static str {
        match self {
            PersonType::Natural => "NATURAL_PERSON",
            PersonType::Legal => "LEGAL_PERSON",
        }
    }
}

impl fmt::Display for PersonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Display is the full value (it is what goes on the wire); Debug is masked for logs.
macro_rules! document_traits {
    ($ty:ident, $expecting:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), mask_document(self.as_str()))
            }
        }

        impl FromStr for $ty {
            type Err = DocumentError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde_str::serialize(self, s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                serde_str::deserialize(d, $expecting, Echo::Redacted)
            }
        }
    };
}

document_traits!(Cpf, "a CPF of 11 digits");
document_traits!(Cnpj, "a CNPJ of 14 characters");

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Document {
    type Err = DocumentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Document::parse(s)
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_str::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_str::deserialize(d, "a CPF (11 digits) or CNPJ (14 characters)", Echo::Redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook CPF formulation, written independently of `cpf_check_digit`:
    /// `11 - sum % 11`, with 10 and 11 becoming 0.
    fn cpf_with_check_digits(base: &str) -> String {
        let mut digits: Vec<u32> = base.chars().map(|c| c.to_digit(10).unwrap()).collect();
        for first_weight in [10, 11] {
            let sum: u32 = digits.iter().enumerate().map(|(i, d)| d * (first_weight - i as u32)).sum();
            let dv = 11 - sum % 11;
            digits.push(if dv >= 10 { 0 } else { dv });
        }
        digits.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect()
    }

    /// The CNPJ algorithm with the published weight tables spelled out.
    fn cnpj_with_check_digits(base: &str) -> String {
        const W1: [u32; 12] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        const W2: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        let mut out = base.to_ascii_uppercase();
        for weights in [&W1[..], &W2[..]] {
            let sum: u32 = out.bytes().zip(weights).map(|(b, w)| (u32::from(b) - 48) * w).sum();
            let r = sum % 11;
            out.push(char::from_digit(if r < 2 { 0 } else { 11 - r }, 10).unwrap());
        }
        out
    }

    /// Changes the digit at `index` to a different one.
    fn flip(s: &str, index: usize, by: u32) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        let d = chars[index].to_digit(10).unwrap();
        chars[index] = char::from_digit((d + by) % 10, 10).unwrap();
        chars.into_iter().collect()
    }

    #[test]
    fn accepts_published_valid_cpfs() {
        for valid in ["11144477735", "12345678909"] {
            assert_eq!(Cpf::parse(valid).unwrap().as_str(), valid);
            assert_eq!(cpf_with_check_digits(&valid[..9]), valid, "test oracle agrees");
        }
    }

    #[test]
    fn rejects_invalid_cpfs_with_the_reason() {
        use DocumentError::*;
        let cases = [
            ("11144477736", CheckDigits { kind: "CPF" }),
            ("11144477725", CheckDigits { kind: "CPF" }),
            ("00000000000", RepeatedDigits { kind: "CPF" }),
            ("11111111111", RepeatedDigits { kind: "CPF" }),
            ("99999999999", RepeatedDigits { kind: "CPF" }),
            ("123.456.789-09", CpfFormat),
            ("1234567890", CpfFormat),
            ("123456789090", CpfFormat),
            ("1234567890a", CpfFormat),
            (" 12345678909", CpfFormat),
            ("", CpfFormat),
        ];
        for (input, expected) in cases {
            assert_eq!(Cpf::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn accepts_published_valid_cnpjs_including_alphanumeric() {
        assert_eq!(Cnpj::parse("11222333000181").unwrap().as_str(), "11222333000181");
        assert_eq!(Cnpj::parse("12ABC34501DE35").unwrap().as_str(), "12ABC34501DE35");
        assert_eq!(Cnpj::parse("12abc34501de35").unwrap().as_str(), "12ABC34501DE35", "uppercased");
        assert_eq!(cnpj_with_check_digits("12ABC34501DE"), "12ABC34501DE35", "test oracle agrees");
    }

    #[test]
    fn rejects_invalid_cnpjs_with_the_reason() {
        use DocumentError::*;
        let cases = [
            ("11222333000180", CheckDigits { kind: "CNPJ" }),
            ("12ABC34501DE36", CheckDigits { kind: "CNPJ" }),
            ("00000000000000", RepeatedDigits { kind: "CNPJ" }),
            ("11111111111111", RepeatedDigits { kind: "CNPJ" }),
            ("11.222.333/0001-81", CnpjFormat),
            ("1122233300018", CnpjFormat),
            ("112223330001811", CnpjFormat),
            ("12ABC34501DEA5", CnpjFormat), // check digits are always digits
            ("12ABC-4501DE35", CnpjFormat),
            ("12ÁBC34501DE35", CnpjFormat),
        ];
        for (input, expected) in cases {
            assert_eq!(Cnpj::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn document_chooses_by_length() {
        let cpf = Document::parse("12345678909").unwrap();
        assert!(matches!(cpf, Document::Cpf(_)));
        assert_eq!(cpf.person_type(), PersonType::Natural);
        let cnpj = Document::parse("11222333000181").unwrap();
        assert!(matches!(cnpj, Document::Cnpj(_)));
        assert_eq!(cnpj.person_type(), PersonType::Legal);
        assert_eq!(cnpj.as_str(), "11222333000181");
        assert_eq!(Document::parse("123456789"), Err(DocumentError::UnknownLength { found: 9 }));
        assert_eq!(
            Document::parse("11222333000180"),
            Err(DocumentError::CheckDigits { kind: "CNPJ" }),
            "the right validator runs"
        );
    }

    #[test]
    fn person_type_uses_the_dict_spelling() {
        assert_eq!(serde_json::to_string(&PersonType::Natural).unwrap(), r#""NATURAL_PERSON""#);
        assert_eq!(serde_json::to_string(&PersonType::Legal).unwrap(), r#""LEGAL_PERSON""#);
        let legal: PersonType = serde_json::from_str(r#""LEGAL_PERSON""#).unwrap();
        assert_eq!(legal, PersonType::Legal);
        assert_eq!(legal.to_string(), "LEGAL_PERSON");
        assert!(serde_json::from_str::<PersonType>(r#""Legal""#).is_err());
    }

    #[test]
    fn serde_validates_and_never_echoes_the_document() {
        let cpf: Cpf = serde_json::from_str(r#""12345678909""#).unwrap();
        assert_eq!(serde_json::to_string(&cpf).unwrap(), r#""12345678909""#);
        let doc: Document = serde_json::from_str(r#""12abc34501de35""#).unwrap();
        assert_eq!(serde_json::to_string(&doc).unwrap(), r#""12ABC34501DE35""#);

        let msg = serde_json::from_str::<Cpf>(r#""11144477736""#).unwrap_err().to_string();
        assert!(msg.starts_with("invalid value"), "{msg}");
        assert!(msg.contains("check digits"), "{msg}");
        assert!(!msg.contains("11144477736"), "PII leaked: {msg}");
        let msg = serde_json::from_str::<Document>("12345678909").unwrap_err().to_string();
        assert!(msg.starts_with("invalid type"), "{msg}");
    }

    #[test]
    fn debug_is_masked() {
        let cpf = Cpf::parse("12345678909").unwrap();
        assert_eq!(format!("{cpf:?}"), "Cpf(***.456.789-**)");
        assert_eq!(cpf.to_string(), "12345678909", "Display stays the wire value");
        let doc = Document::parse("11222333000181").unwrap();
        assert!(!format!("{doc:?}").contains("11222333000181"));
    }

    proptest! {
        #[test]
        fn any_cpf_base_with_computed_check_digits_parses(base in "[0-9]{9}") {
            prop_assume!(!all_equal(&base));
            let cpf = cpf_with_check_digits(&base);
            prop_assert_eq!(Cpf::parse(&cpf).map(|c| c.as_str().to_owned()), Ok(cpf));
        }

        #[test]
        fn changing_a_cpf_check_digit_fails(base in "[0-9]{9}", index in 9usize..11, by in 1u32..10) {
            prop_assume!(!all_equal(&base));
            let bad = flip(&cpf_with_check_digits(&base), index, by);
            prop_assert_eq!(Cpf::parse(&bad), Err(DocumentError::CheckDigits { kind: "CPF" }));
        }

        #[test]
        fn any_cnpj_base_with_computed_check_digits_parses(base in "[0-9A-Za-z]{12}") {
            prop_assume!(!all_equal(&base));
            let cnpj = cnpj_with_check_digits(&base);
            prop_assert_eq!(Cnpj::parse(&cnpj).map(|c| c.as_str().to_owned()), Ok(cnpj));
        }

        #[test]
        fn changing_a_cnpj_check_digit_fails(base in "[0-9A-Z]{12}", index in 12usize..14, by in 1u32..10) {
            prop_assume!(!all_equal(&base));
            let bad = flip(&cnpj_with_check_digits(&base), index, by);
            prop_assert_eq!(Cnpj::parse(&bad), Err(DocumentError::CheckDigits { kind: "CNPJ" }));
        }
    }
}
