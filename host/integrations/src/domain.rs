//! The few domain types the clients need, in one module so that a change of source is a one-file
//! change. Person type and PII masking come from `pix-core`. `Money` stays here because upstream
//! bodies need a more tolerant parser than `pix_core::money::Money`, which by design accepts only
//! JSON strings from API clients: Midaz's decimal type also accepts JSON numbers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in BRL, held as integer centavos.
///
/// On the wire it is a decimal string with exactly two places (`"10.50"`). Upstreams such as Midaz
/// strip trailing zeros (`"10.5"`, `"100"`) and may even send JSON numbers, so parsing accepts zero,
/// one or two decimals and numbers, but never more than two places: a third place would silently
/// lose money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a decimal string is not a valid [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid amount {0:?}: expected a decimal with at most two places")]
pub struct MoneyParseError(pub String);

impl Money {
    /// Zero centavos.
    pub const ZERO: Money = Money(0);

    /// From integer centavos.
    pub const fn from_centavos(centavos: i64) -> Self {
        Money(centavos)
    }

    /// Integer centavos.
    pub const fn centavos(self) -> i64 {
        self.0
    }

    /// `true` when strictly greater than zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Checked addition (`None` on overflow).
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Checked subtraction (`None` on overflow).
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Money {
    type Err = MoneyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MoneyParseError(s.to_owned());
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty()
            || !all_digits(int_part)
            || !all_digits(frac_part)
            || frac_part.len() > 2
            || (digits.contains('.') && frac_part.is_empty())
        {
            return Err(err());
        }
        let units: i64 = int_part.parse().map_err(|_| err())?;
        let cents: i64 = match frac_part.len() {
            0 => 0,
            1 => frac_part.parse::<i64>().map_err(|_| err())? * 10,
            _ => frac_part.parse().map_err(|_| err())?,
        };
        let value = units.checked_mul(100).and_then(|v| v.checked_add(cents)).ok_or_else(err)?;
        Ok(Money(if negative { -value } else { value }))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Midaz documents `number` but sends strings; accept both (integration.md §3.3).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(serde_json::Number),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(s) => s,
            Raw::Number(n) => n.to_string(),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub use pix_core::document::PersonType;
pub use pix_core::mask::{mask_document, mask_name};

/// Masks a Pix key given as raw text (a key we send or receive may not have been validated).
pub fn mask_key(key: &str) -> String {
    pix_core::mask::mask_raw_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_midaz_forms() {
        assert_eq!("100".parse::<Money>().unwrap().centavos(), 10_000);
        assert_eq!("99.5".parse::<Money>().unwrap().centavos(), 9_950);
        assert_eq!("0.07".parse::<Money>().unwrap().centavos(), 7);
        assert_eq!("-12.30".parse::<Money>().unwrap().centavos(), -1_230);
        let m: Money = serde_json::from_str("100.5").unwrap();
        assert_eq!(m.centavos(), 10_050);
        let m: Money = serde_json::from_str("\"1000.82\"").unwrap();
        assert_eq!(m.to_string(), "1000.82");
    }

    #[test]
    fn rejects_bad_amounts() {
        for bad in ["", "1.", ".5", "1.234", "1,00", "abc", "1e3", "--1", "99999999999999999999"] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn masks_pii() {
        assert_eq!(mask_document("11144477735"), "***.444.777-**");
        assert_eq!(mask_key("maria@example.com"), "m***@example.com");
        assert!(!mask_key("+5511987654321").contains("98765"));
        assert!(!mask_key("not a key").contains("key"));
        assert_eq!(mask_name("Maria da Silva"), "Maria S.");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(c in -10_000_000_000_000i64..10_000_000_000_000i64) {
            let m = Money::from_centavos(c);
            prop_assert_eq!(m.to_string().parse::<Money>().unwrap(), m);
        }
    }
}
