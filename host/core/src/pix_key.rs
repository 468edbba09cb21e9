//! Pix keys (DICT "chaves"), validated to the DICT 2.12.1 formats.
//!
//! Values are stored in DICT's canonical form, because a key lookup is an exact match:
//! EMAIL and EVP in lowercase (DICT only holds them so), CNPJ letters in uppercase.
//! Surrounding whitespace is never trimmed: it is an error, not something to guess about.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::document::{Cnpj, Cpf, DocumentError};
use crate::mask::mask_key;

/// DICT `Key` maxLength; also the bound on EMAIL keys.
pub const MAX_KEY_LEN: usize = 77;

/// Why a string is not an acceptable Pix key. Messages never repeat the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PixKeyError {
    #[error("unknown Pix key type; expected one of CPF, CNPJ, EMAIL, PHONE, EVP")]
    UnknownKeyType,
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("an EMAIL key must be at most 77 characters, got {found}")]
    EmailTooLong { found: usize },
    #[error("an EMAIL key must be a plain address such as name@example.com (no %, no spaces)")]
    EmailFormat,
    #[error("a PHONE key must be + and country code and number, up to 15 digits, e.g. +5511987654321")]
    PhoneFormat,
    #[error("an EVP key must be a UUID written as 8-4-4-4-12 hexadecimal digits")]
    EvpFormat,
    #[error("the value is not a recognisable Pix key (CPF, CNPJ, e-mail, +phone or EVP)")]
    Unrecognized,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PixKeyType {
    Cpf,
    Cnpj,
    Email,
    Phone,
    Evp,
}

impl PixKeyType {
    pub const ALL: [PixKeyType; 5] =
        [PixKeyType::Cpf, PixKeyType::Cnpj, PixKeyType::Email, PixKeyType::Phone, PixKeyType::Evp];

    pub const fn as_str(self) -> &'static str {
        match self {
            PixKeyType::Cpf => "CPF",
            PixKeyType::Cnpj => "CNPJ",
            PixKeyType::Email => "EMAIL",
            PixKeyType::Phone => "PHONE",
            PixKeyType::Evp => "EVP",
        }
    }
}

impl fmt::Display for PixKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exact, uppercase: the wire spelling, nothing else.
impl FromStr for PixKeyType {
    type Err = PixKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PixKeyType::ALL.into_iter().find(|t| t.as_str() == s).ok_or(PixKeyError::UnknownKeyType)
    }
}

/// A validated key with its type. `Debug` is masked (keys are personal data); `Display` is the
/// value itself.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PixKey {
    kind: PixKeyType,
    value: String,
}

impl PixKey {
    pub fn parse(kind: PixKeyType, input: &str) -> Result<PixKey, PixKeyError> {
        let value = match kind {
            PixKeyType::Cpf => Cpf::parse(input)?.as_str().to_owned(),
            PixKeyType::Cnpj => Cnpj::parse(input)?.as_str().to_owned(),
            PixKeyType::Email => parse_email(input)?,
            PixKeyType::Phone => parse_phone(input)?,
            PixKeyType::Evp => parse_evp(input)?,
        };
        Ok(PixKey { kind, value })
    }

    /// Guesses the type from the shape, for lookups where the user just typed a key:
    /// `+…` is a PHONE, anything with `@` an EMAIL, 36 characters with hyphens an EVP,
    /// 11 characters a CPF and 14 a CNPJ. The chosen type's full validation then applies, so a
    /// CPF with a wrong check digit reports that rather than "unrecognised". An 11-digit phone
    /// number without `+` is read as a CPF, since DICT phones always carry the `+`.
    pub fn infer(input: &str) -> Result<PixKey, PixKeyError> {
        // '@' first: an e-mail may start with '+' ("+tag@example.com"), a phone never has '@'.
        let kind = if input.contains('@') {
            PixKeyType::Email
        } else if input.starts_with('+') {
            PixKeyType::Phone
        } else if input.len() == 36 && input.contains('-') {
            PixKeyType::Evp
        } else if input.len() == 11 {
            PixKeyType::Cpf
        } else if input.len() == 14 {
            PixKeyType::Cnpj
        } else {
            return Err(PixKeyError::Unrecognized);
        };
        PixKey::parse(kind, input)
    }

    pub fn kind(&self) -> PixKeyType {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for PixKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl fmt::Debug for PixKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PixKey({}: {})", self.kind, mask_key(self))
    }
}

/// DICT's EMAIL rule, lowercased first:
/// `^[a-z0-9.!#$'*+\/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$`
/// and at most 77 characters.
fn parse_email(input: &str) -> Result<String, PixKeyError> {
    let found = input.chars().count();
    if found > MAX_KEY_LEN {
        return Err(PixKeyError::EmailTooLong { found });
    }
    let value = input.to_ascii_lowercase();
    let (local, domain) = value.split_once('@').ok_or(PixKeyError::EmailFormat)?;
    let local_ok = !local.is_empty() && local.bytes().all(is_email_local_byte);
    if local_ok && domain.split('.').all(is_domain_label) { Ok(value) } else { Err(PixKeyError::EmailFormat) }
}

fn is_email_local_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b".!#$'*+/=?^_`{|}~-".contains(&b)
}

/// 1 to 63 of `[a-z0-9-]`, not starting or ending with `-`.
fn is_domain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    matches!((bytes.first(), bytes.last()), (Some(first), Some(last)) if alnum(first) && alnum(last))
        && bytes.len() <= 63
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// `^\+[1-9]\d{1,14}$` with ASCII digits only (E.164).
fn parse_phone(input: &str) -> Result<String, PixKeyError> {
    let digits = input.strip_prefix('+').ok_or(PixKeyError::PhoneFormat)?.as_bytes();
    let ok = (2..=15).contains(&digits.len()) && digits[0] != b'0' && digits.iter().all(u8::is_ascii_digit);
    if ok { Ok(input.to_owned()) } else { Err(PixKeyError::PhoneFormat) }
}

/// `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, lowercased first. No
/// version check: DICT generates EVPs and its rule does not constrain the version.
fn parse_evp(input: &str) -> Result<String, PixKeyError> {
    let value = input.to_ascii_lowercase();
    let groups: Vec<&str> = value.split('-').collect();
    let lengths_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
    let hex_ok = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if lengths_ok && hex_ok { Ok(value) } else { Err(PixKeyError::EvpFormat) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVP: &str = "123e4567-e89b-12d3-a456-426614174000";

    #[test]
    fn key_types_use_the_dict_spelling() {
        for (kind, wire) in PixKeyType::ALL.into_iter().zip(["CPF", "CNPJ", "EMAIL", "PHONE", "EVP"]) {
            assert_eq!(kind.to_string(), wire);
            assert_eq!(wire.parse::<PixKeyType>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{wire}\""));
            assert_eq!(serde_json::from_str::<PixKeyType>(&format!("\"{wire}\"")).unwrap(), kind);
        }
        assert_eq!("email".parse::<PixKeyType>(), Err(PixKeyError::UnknownKeyType));
        assert_eq!("RANDOM".parse::<PixKeyType>(), Err(PixKeyError::UnknownKeyType));
        assert!(serde_json::from_str::<PixKeyType>(r#""Email""#).is_err());
    }

    #[test]
    fn cpf_and_cnpj_keys_need_valid_check_digits() {
        assert_eq!(PixKey::parse(PixKeyType::Cpf, "12345678909").unwrap().value(), "12345678909");
        assert_eq!(
            PixKey::parse(PixKeyType::Cpf, "12345678900"),
            Err(PixKeyError::Document(DocumentError::CheckDigits { kind: "CPF" }))
        );
        assert_eq!(
            PixKey::parse(PixKeyType::Cpf, "123.456.789-09"),
            Err(PixKeyError::Document(DocumentError::CpfFormat))
        );
        assert_eq!(PixKey::parse(PixKeyType::Cnpj, "12abc34501de35").unwrap().value(), "12ABC34501DE35");
        assert_eq!(
            PixKey::parse(PixKeyType::Cnpj, "11222333000180"),
            Err(PixKeyError::Document(DocumentError::CheckDigits { kind: "CNPJ" }))
        );
    }

    #[test]
    fn email_keys_follow_the_dict_rule() {
        let ok = |s: &str| PixKey::parse(PixKeyType::Email, s).map(|k| k.value().to_owned());
        assert_eq!(ok("joana.silva@example.com").as_deref(), Ok("joana.silva@example.com"));
        assert_eq!(ok("Joana@Example.COM").as_deref(), Ok("joana@example.com"), "stored lowercase");
        assert_eq!(ok("a+b!#$'*/=?^_`{|}~-@x-1.example").as_deref(), Ok("a+b!#$'*/=?^_`{|}~-@x-1.example"));
        assert!(ok("user@localhost").is_ok(), "a single-label domain matches the DICT rule");
        let at_limit = format!("{}@example.com", "a".repeat(MAX_KEY_LEN - 12));
        assert_eq!(at_limit.len(), MAX_KEY_LEN);
        assert!(ok(&at_limit).is_ok());

        let too_long = format!("{}@example.com", "a".repeat(MAX_KEY_LEN - 11));
        assert_eq!(ok(&too_long), Err(PixKeyError::EmailTooLong { found: 78 }));
        let long_label = format!("a@{}.com", "b".repeat(64));
        for bad in [
            "",
            "joana",
            "@example.com",
            "joana@",
            "joana@@example.com",
            "jo@ana@example.com",
            "jo%ana@example.com",
            "jo ana@example.com",
            " joana@example.com",
            "joana@example..com",
            "joana@example.com.",
            "joana@-example.com",
            "joana@example-.com",
            "joana@exa_mple.com",
            "joão@example.com",
            "joana@exämple.com",
            long_label.as_str(),
        ] {
            assert_eq!(ok(bad), Err(PixKeyError::EmailFormat), "{bad:?}");
        }
    }

    #[test]
    fn phone_keys_are_e164() {
        let ok = |s: &str| PixKey::parse(PixKeyType::Phone, s);
        assert_eq!(ok("+5511987654321").unwrap().value(), "+5511987654321");
        assert!(ok("+12").is_ok(), "shortest: country digit plus one");
        assert!(ok("+123456789012345").is_ok(), "longest: 15 digits");
        for bad in [
            "",
            "5511987654321",
            "+",
            "+1",
            "+0511987654321",
            "+1234567890123456",
            "+55 11987654321",
            "+55119876543٢1",
            "++5511987654321",
        ] {
            assert_eq!(ok(bad), Err(PixKeyError::PhoneFormat), "{bad:?}");
        }
    }

    #[test]
    fn evp_keys_are_hyphenated_uuids_stored_lowercase() {
        let ok = |s: &str| PixKey::parse(PixKeyType::Evp, s).map(|k| k.value().to_owned());
        assert_eq!(ok(EVP).as_deref(), Ok(EVP));
        assert_eq!(ok(&EVP.to_uppercase()).as_deref(), Ok(EVP));
        for bad in [
            "",
            "123e4567e89b12d3a456426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567-e89b-12d3-a456-4266141740000",
            "123e4567-e89b-12d3a-456-426614174000",
            "123e4567-e89b-12d3-a456-426614174000-",
        ] {
            assert_eq!(ok(bad), Err(PixKeyError::EvpFormat), "{bad:?}");
        }
    }

    #[test]
    fn infer_guesses_the_type_from_the_shape() {
        let kind = |s: &str| PixKey::infer(s).map(|k| k.kind());
        assert_eq!(kind("+5511987654321"), Ok(PixKeyType::Phone));
        assert_eq!(kind("joana@example.com"), Ok(PixKeyType::Email));
        assert_eq!(kind("+tag@example.com"), Ok(PixKeyType::Email), "a plus-prefixed e-mail is not a phone");
        assert_eq!(kind(EVP), Ok(PixKeyType::Evp));
        assert_eq!(kind("12345678909"), Ok(PixKeyType::Cpf));
        assert_eq!(kind("11222333000181"), Ok(PixKeyType::Cnpj));
        assert_eq!(kind("12ABC34501DE35"), Ok(PixKeyType::Cnpj));

        assert_eq!(kind("12345678900"), Err(PixKeyError::Document(DocumentError::CheckDigits { kind: "CPF" })));
        assert_eq!(kind("+55 11 98765"), Err(PixKeyError::PhoneFormat));
        assert_eq!(kind("joana@"), Err(PixKeyError::EmailFormat));
        assert_eq!(kind("hello"), Err(PixKeyError::Unrecognized));
        assert_eq!(kind(""), Err(PixKeyError::Unrecognized));
    }

    #[test]
    fn display_is_the_value_and_errors_do_not_echo_it() {
        let key = PixKey::parse(PixKeyType::Email, "joana@example.com").unwrap();
        assert_eq!(key.to_string(), "joana@example.com");
        assert_eq!(key.kind(), PixKeyType::Email);
        let err = PixKey::parse(PixKeyType::Email, "joana@@example.com").unwrap_err();
        assert!(!err.to_string().contains("joana"));
    }
}
