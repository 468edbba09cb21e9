//! Identifiers: entity ids, ISPBs and SPI EndToEndIds.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::serde_str::{self, Echo};

/// Why a string is not an acceptable identifier. Messages are safe to show to API clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an ISPB must be exactly 8 digits")]
    InvalidIspb,
    #[error("an EndToEndId must be 32 characters long, got {found}")]
    WrongLength { found: usize },
    #[error("an EndToEndId must start with E (payment) or D (return)")]
    WrongPrefix,
    #[error("characters 2-9 of an EndToEndId must be the 8-digit ISPB")]
    InvalidIspbPart,
    #[error("characters 10-21 of an EndToEndId must be a real UTC date and time as yyyyMMddHHmm")]
    InvalidTimestamp,
    #[error("the last 11 characters of an EndToEndId must be ASCII letters or digits")]
    InvalidSuffix,
}

/// A new entity id. UUIDv7 ids sort by creation time, which keeps B-tree indexes compact and
/// makes "newest first" listings cheap.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The 8-digit code that identifies a participant on the SPI (the first 8 digits of its CNPJ).
///
/// The SPI schema would allow `[0-9A-Z]{8}`, but every ISPB in use, and Lerian's `PIX_ISPB`
/// setting, is numeric; letters are rejected until BCB actually issues one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ispb(String);

impl Ispb {
    pub fn parse(input: &str) -> Result<Ispb, IdError> {
        if input.len() == 8 && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Ispb(input.to_owned()))
        } else {
            Err(IdError::InvalidIspb)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ispb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Ispb {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ispb::parse(s)
    }
}

impl Serialize for Ispb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_str::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Ispb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_str::deserialize(d, "an ISPB of 8 digits", Echo::Value)
    }
}

/// The SPI id of one payment (`E…`) or one return (`D…`, the RtrId of a pacs.004):
/// prefix + ISPB of the generating participant + `yyyyMMddHHmm` in UTC + 11 ASCII letters or
/// digits, 32 characters in all.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndToEndId {
    id: String,
    /// Derived from `id`; kept so that reading it back needs no second, fallible parse.
    at: DateTime<Utc>,
}

const E2E_LEN: usize = 32;
const PAYMENT_PREFIX: u8 = b'E';
const RETURN_PREFIX: u8 = b'D';
const ISPB_PART: std::ops::Range<usize> = 1..9;
const TIMESTAMP_PART: std::ops::Range<usize> = 9..21;
const SUFFIX_PART: std::ops::Range<usize> = 21..32;

/// Generated suffixes use lowercase letters and digits only: 36^11 ≈ 1.3·10^17 values per
/// minute is ample, and the ids stay unique even for a system that compares them
/// case-insensitively. Parsing accepts both cases, as the SPI schema does.
const SUFFIX_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl EndToEndId {
    /// A new payment id. Every attempt, retries included, needs a fresh one.
    ///
    /// # Panics
    /// If `at` is outside the years 0000-9999, which have no `yyyy` form (a broken clock,
    /// not bad input).
    pub fn generate(ispb: &Ispb, at: DateTime<Utc>, rng: &mut impl rand::Rng) -> Self {
        Self::generate_with(PAYMENT_PREFIX, ispb, at, rng)
    }

    /// A new return id (RtrId), with `ispb` the participant making the return.
    ///
    /// # Panics
    /// As [`EndToEndId::generate`].
    pub fn generate_return(ispb: &Ispb, at: DateTime<Utc>, rng: &mut impl rand::Rng) -> Self {
        Self::generate_with(RETURN_PREFIX, ispb, at, rng)
    }

    fn generate_with(prefix: u8, ispb: &Ispb, at: DateTime<Utc>, rng: &mut impl rand::Rng) -> Self {
        assert!((0..=9999).contains(&at.year()), "year {} has no yyyy form", at.year());
        // The id carries minutes only; so does its timestamp.
        let at = at.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(at);
        let suffix: String = (0..SUFFIX_PART.len())
            .map(|_| char::from(SUFFIX_ALPHABET[rng.random_range(0..SUFFIX_ALPHABET.len())]))
            .collect();
        let id = format!(
            "{}{ispb}{:04}{:02}{:02}{:02}{:02}{suffix}",
            char::from(prefix),
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
        );
        EndToEndId { id, at }
    }

    /// Validates every part: length, prefix, ISPB, a real date and time, and the suffix.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let found = input.chars().count();
        if found != E2E_LEN {
            return Err(IdError::WrongLength { found });
        }
        let prefix = input.as_bytes()[0];
        if prefix != PAYMENT_PREFIX && prefix != RETURN_PREFIX {
            return Err(IdError::WrongPrefix);
        }
        // `get` rather than indexing: with a non-ASCII character the byte offsets shift, and a
        // part may even end inside a character. Either way that part fails its check.
        input.get(ISPB_PART).and_then(|p| Ispb::parse(p).ok()).ok_or(IdError::InvalidIspbPart)?;
        let at = input.get(TIMESTAMP_PART).and_then(parse_timestamp).ok_or(IdError::InvalidTimestamp)?;
        if !input.get(SUFFIX_PART).is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(IdError::InvalidSuffix);
        }
        Ok(EndToEndId { id: input.to_owned(), at })
    }

    /// True for a return id (`D…`).
    pub fn is_return(&self) -> bool {
        self.id.as_bytes()[0] == RETURN_PREFIX
    }

    /// The participant that generated the id.
    pub fn ispb(&self) -> Ispb {
        Ispb(self.id[ISPB_PART].to_owned())
    }

    /// The minute embedded in the id (UTC).
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.at
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

/// `yyyyMMddHHmm` as a real calendar date and time, digits only.
fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| s[range].parse::<u32>().ok();
    let year = i32::try_from(field(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, field(4..6)?, field(6..8)?)?;
    Some(date.and_hms_opt(field(8..10)?, field(10..12)?, 0)?.and_utc())
}

impl fmt::Display for EndToEndId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl FromStr for EndToEndId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndToEndId::parse(s)
    }
}

impl Serialize for EndToEndId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_str::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for EndToEndId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_str::deserialize(d, "a 32-character EndToEndId", Echo::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn ispb() -> Ispb {
        Ispb::parse("12345678").unwrap()
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 9, 9, 10, 0, 59).unwrap()
    }

    #[test]
    fn new_ids_are_v7_and_increase() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b, "v7 ids sort by creation time");
    }

    #[test]
    fn ispb_is_eight_ascii_digits() {
        let ispb = Ispb::parse("00038166").unwrap();
        assert_eq!(ispb.as_str(), "00038166");
        assert_eq!(ispb.to_string(), "00038166");
        for bad in ["", "1234567", "123456789", "1234567a", "ABCDEFGH", " 2345678", "１2345678"] {
            assert_eq!(Ispb::parse(bad), Err(IdError::InvalidIspb), "{bad:?}");
        }
    }

    #[test]
    fn ispb_serde_validates() {
        assert_eq!(serde_json::from_str::<Ispb>(r#""12345678""#).unwrap(), ispb());
        assert_eq!(serde_json::to_string(&ispb()).unwrap(), r#""12345678""#);
        let msg = serde_json::from_str::<Ispb>(r#""1234""#).unwrap_err().to_string();
        assert!(msg.starts_with("invalid value"), "{msg}");
        assert!(serde_json::from_str::<Ispb>("12345678").is_err(), "numbers lose leading zeros");
    }

    #[test]
    fn generates_payment_and_return_ids_in_the_spi_layout() {
        let mut rng = StdRng::seed_from_u64(7);
        let id = EndToEndId::generate(&ispb(), at(), &mut rng);
        let s = id.as_str();
        assert_eq!(s.len(), 32);
        assert_eq!(&s[..21], "E12345678202009091000");
        assert!(s[21..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{s}");
        assert!(!id.is_return());
        assert_eq!(id.ispb(), ispb());
        assert_eq!(id.timestamp(), Utc.with_ymd_and_hms(2020, 9, 9, 10, 0, 0).unwrap());
        assert_eq!(EndToEndId::parse(s), Ok(id.clone()), "generated ids parse back");

        let rtr = EndToEndId::generate_return(&ispb(), at(), &mut rng);
        assert!(rtr.as_str().starts_with("D12345678202009091000"));
        assert!(rtr.is_return());
        assert_ne!(id.as_str()[21..], rtr.as_str()[21..]);
    }

    #[test]
    fn generated_suffixes_differ() {
        let mut rng = StdRng::seed_from_u64(1);
        let ids: std::collections::HashSet<_> =
            (0..1000).map(|_| EndToEndId::generate(&ispb(), at(), &mut rng)).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    #[should_panic(expected = "has no yyyy form")]
    fn generation_refuses_years_without_four_digits() {
        let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        EndToEndId::generate(&ispb(), far, &mut StdRng::seed_from_u64(0));
    }

    #[test]
    fn parses_the_bcb_example_and_mixed_case_suffixes() {
        let id = EndToEndId::parse("D12345678202009091000abcde123456").unwrap();
        assert!(id.is_return());
        assert_eq!(id.ispb().as_str(), "12345678");
        assert_eq!(id.to_string(), "D12345678202009091000abcde123456");
        assert!(EndToEndId::parse("E00038166202401311559AbCdE12345z").is_ok());
        assert_eq!(
            EndToEndId::parse("E00038166202402291559abcde123456").unwrap().timestamp(),
            Utc.with_ymd_and_hms(2024, 2, 29, 15, 59, 0).unwrap(),
            "leap day"
        );
    }

    #[test]
    fn parse_names_the_broken_part() {
        use IdError::*;
        let cases = [
            ("", WrongLength { found: 0 }),
            ("E12345678202009091000abcde12345", WrongLength { found: 31 }),
            ("E12345678202009091000abcde1234567", WrongLength { found: 33 }),
            ("e12345678202009091000abcde123456", WrongPrefix),
            ("M12345678202009091000abcde123456", WrongPrefix),
            ("E1234567A202009091000abcde123456", InvalidIspbPart),
            ("Eé2345678202009091000abcde123456", InvalidIspbPart),
            ("E12345678202013091000abcde123456", InvalidTimestamp), // month 13
            ("E12345678202302291000abcde123456", InvalidTimestamp), // 2023 is not a leap year
            ("E12345678202009092400abcde123456", InvalidTimestamp), // hour 24
            ("E12345678202009091060abcde123456", InvalidTimestamp), // minute 60
            ("E1234567820200909+000abcde123456", InvalidTimestamp),
            ("E12345678202009091000abcde12345-", InvalidSuffix),
            ("E12345678202009091000abcde_23456", InvalidSuffix),
            ("E12345678202009091000abcde12345é", InvalidSuffix),
            ("E12345678202009091000abcdé123456", InvalidSuffix),
            ("E1234567820200909100é0abcde12345", InvalidTimestamp),
            ("E12345678202009091000abcde 23456", InvalidSuffix),
        ];
        for (input, expected) in cases {
            assert_eq!(EndToEndId::parse(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn end_to_end_id_serde_validates() {
        let json = r#""E12345678202009091000abcde123456""#;
        let id: EndToEndId = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), json);
        let msg = serde_json::from_str::<EndToEndId>(r#""E123""#).unwrap_err().to_string();
        assert!(msg.starts_with("invalid value") && msg.contains("32 characters"), "{msg}");
    }
}
