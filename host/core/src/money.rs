//! Exact BRL amounts.
//!
//! Money is an `i64` count of centavos: exact, cheap to copy and identical to the `BIGINT` stored
//! in the database and the `s64` handed to policies. Decimals appear only at the edges (strings on
//! the wire, `rust_decimal` for upstream values) and floats never appear at all.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::serde_str::{self, Echo};

/// What the wire format of an amount looks like, for serde error messages.
const EXPECTING: &str = "a decimal string with at most two places, such as \"10.50\"";
const EXPECTING_POSITIVE: &str = "a positive decimal string with at most two places, such as \"10.50\"";

/// Why a value is not an acceptable amount. Messages are safe to show to API clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the amount is empty")]
    Empty,
    #[error("the amount is not a plain decimal number such as \"10.50\"")]
    NotANumber,
    #[error("the amount has more than two decimal places")]
    TooManyDecimals,
    #[error("the amount is too large")]
    Overflow,
    #[error("the amount must be greater than zero")]
    NotPositive,
    #[error("the amount exceeds the maximum of {max}")]
    AboveMaximum { max: Money },
}

/// An exact BRL amount with two decimal places, held as centavos. May be zero or negative
/// (balances, differences); request bodies use [`Amount`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_centavos(centavos: i64) -> Money {
        Money(centavos)
    }

    pub const fn centavos(self) -> i64 {
        self.0
    }

    /// The amount as a `Decimal` with scale exactly 2 (`"100.00"`, never `"100"`).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Converts an upstream decimal. Trailing zeros are ignored (`100.500` is `100.50`, since
    /// other systems do not all keep scale 2), but a real third decimal place is an error:
    /// rounding money silently is never right.
    pub fn from_decimal(value: Decimal) -> Result<Money, MoneyError> {
        let normalized = value.normalize();
        let scale = normalized.scale();
        if scale > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        // A 96-bit mantissa times 100 always fits in an i128; only the i64 step can fail.
        let centavos = normalized.mantissa() * 10_i128.pow(2 - scale);
        i64::try_from(centavos).map(Money).map_err(|_| MoneyError::Overflow)
    }

    /// Parses a plain decimal string: an optional `-`, at least one digit, then optionally `.`
    /// and one or two digits (`"10"`, `"10.5"`, `"-3.20"`).
    ///
    /// Everything else is rejected: surrounding whitespace, `+`, exponents, `,` separators,
    /// `".5"` and `"1."` (a digit is required on both sides of the point), `NaN`/`inf`, and more
    /// than two decimal places even when they are zeros (`"1.000"`): clients must send what they
    /// mean. Leading zeros (`"007.50"`) are accepted since they cannot change the value. For
    /// upstream values that may carry trailing zeros, go through [`Money::from_decimal`].
    pub fn parse(input: &str) -> Result<Money, MoneyError> {
        if input.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (negative, unsigned) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let (units, fraction) = match unsigned.split_once('.') {
            Some((units, fraction)) => (units, Some(fraction)),
            None => (unsigned, None),
        };
        if !is_digits(units) || fraction.is_some_and(|f| !is_digits(f)) {
            return Err(MoneyError::NotANumber);
        }
        let cents = match fraction.unwrap_or("").as_bytes() {
            [] => 0,
            [tenths] => i128::from(tenths - b'0') * 10,
            [tenths, hundredths] => i128::from(tenths - b'0') * 10 + i128::from(hundredths - b'0'),
            _ => return Err(MoneyError::TooManyDecimals),
        };
        let mut whole: i128 = 0;
        for digit in units.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(i128::from(digit - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        let mut centavos = whole.checked_mul(100).and_then(|w| w.checked_add(cents)).ok_or(MoneyError::Overflow)?;
        if negative {
            centavos = -centavos;
        }
        i64::try_from(centavos).map(Money).map_err(|_| MoneyError::Overflow)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Non-empty and ASCII digits only (`char::is_numeric` would let other scripts' digits in).
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Always two places: `1000.82`, `0.05`, `-1.50`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        // unsigned_abs: i64::MIN has no positive i64 counterpart.
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

impl TryFrom<Decimal> for Money {
    type Error = MoneyError;

    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Money::from_decimal(value)
    }
}

impl From<Money> for Decimal {
    fn from(value: Money) -> Self {
        value.to_decimal()
    }
}

/// A JSON string with exactly two places.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_str::serialize(self, s)
    }
}

/// Only from a JSON string: a JSON number has already been through a float in most clients.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_str::deserialize(d, EXPECTING, Echo::Value)
    }
}

/// Serde adapter for amounts read from upstream systems (`#[serde(with = "pix_core::money::upstream")]`).
///
/// Midaz documents its amounts as numbers and sends strings, so both are accepted here (`"10.5"`,
/// `100`, `99.5`), still with at most two decimal places: a third place would silently lose money.
/// Amounts are written as the usual two-place string. API request bodies keep the strict
/// string-only `Deserialize` of [`Money`].
pub mod upstream {
    use std::fmt;

    use serde::de::{self, Unexpected, Visitor};
    use serde::{Deserializer, Serializer};

    use super::Money;

    const EXPECTING: &str = "a decimal string or number with at most two places";

    pub fn serialize<S: Serializer>(value: &Money, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        d.deserialize_any(UpstreamVisitor)
    }

    /// The same for an optional amount (use with `#[serde(default)]` when the field may be absent).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Money;

        pub fn serialize<S: Serializer>(value: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(money) => s.collect_str(money),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
            #[derive(Deserialize)]
            struct Upstream(#[serde(with = "super")] Money);
            Ok(Option::<Upstream>::deserialize(d)?.map(|u| u.0))
        }
    }

    struct UpstreamVisitor;

    impl UpstreamVisitor {
        fn parse<E: de::Error>(text: &str, unexpected: Unexpected<'_>) -> Result<Money, E> {
            Money::parse(text).map_err(|err| E::invalid_value(unexpected, &format!("{EXPECTING} ({err})").as_str()))
        }
    }

    impl Visitor<'_> for UpstreamVisitor {
        type Value = Money;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(EXPECTING)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
            Self::parse(v, Unexpected::Str(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
            Self::parse(&v.to_string(), Unexpected::Signed(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
            Self::parse(&v.to_string(), Unexpected::Unsigned(v))
        }

        /// `f64`'s `Display` is the shortest text that reads back as the same number, so `99.5`
        /// stays `"99.5"` and `0.1 + 0.2` shows its real digits (and is refused).
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
            if !v.is_finite() {
                return Err(E::invalid_value(Unexpected::Float(v), &EXPECTING));
            }
            Self::parse(&v.to_string(), Unexpected::Float(v))
        }
    }
}

/// A strictly positive amount, as every request body needs (transfers, refunds, charges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Money);

impl Amount {
    pub fn new(money: Money) -> Result<Amount, MoneyError> {
        if money.is_positive() { Ok(Amount(money)) } else { Err(MoneyError::NotPositive) }
    }

    pub fn parse(input: &str) -> Result<Amount, MoneyError> {
        Amount::new(Money::parse(input)?)
    }

    pub const fn money(self) -> Money {
        self.0
    }

    /// Enforces a configured ceiling (per-transfer limit, refundable balance…).
    pub fn ensure_at_most(self, max: Money) -> Result<Amount, MoneyError> {
        if self.0 <= max { Ok(self) } else { Err(MoneyError::AboveMaximum { max }) }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Amount {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s)
    }
}

impl TryFrom<Money> for Amount {
    type Error = MoneyError;

    fn try_from(value: Money) -> Result<Self, Self::Error> {
        Amount::new(value)
    }
}

impl From<Amount> for Money {
    fn from(value: Amount) -> Self {
        value.0
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_str::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_str::deserialize(d, EXPECTING_POSITIVE, Echo::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(centavos: i64) -> Money {
        Money::from_centavos(centavos)
    }

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(Money::parse("10"), Ok(m(1000)));
        assert_eq!(Money::parse("10.5"), Ok(m(1050)));
        assert_eq!(Money::parse("10.50"), Ok(m(1050)));
        assert_eq!(Money::parse("0.01"), Ok(m(1)));
        assert_eq!(Money::parse("-3.20"), Ok(m(-320)));
        assert_eq!(Money::parse("-0.00"), Ok(Money::ZERO));
        assert_eq!(Money::parse("007.50"), Ok(m(750)), "leading zeros do not change the value");
        assert_eq!(Money::parse("92233720368547758.07"), Ok(m(i64::MAX)));
        assert_eq!(Money::parse("-92233720368547758.08"), Ok(m(i64::MIN)));
    }

    #[test]
    fn rejects_malformed_input_with_the_reason() {
        use MoneyError::*;
        let cases = [
            ("", Empty),
            (" 1", NotANumber),
            ("1 ", NotANumber),
            ("1e3", NotANumber),
            ("1E3", NotANumber),
            ("abc", NotANumber),
            ("1,00", NotANumber),
            ("+", NotANumber),
            ("+1", NotANumber),
            ("-", NotANumber),
            ("--1", NotANumber),
            (".", NotANumber),
            ("1.", NotANumber),
            (".5", NotANumber),
            ("1.2.3", NotANumber),
            ("NaN", NotANumber),
            ("inf", NotANumber),
            ("١٠", NotANumber), // Arabic-Indic digits are numeric but not ASCII
            ("10.123", TooManyDecimals),
            ("1.000", TooManyDecimals),
            ("92233720368547758.08", Overflow),
            ("-92233720368547758.09", Overflow),
            ("999999999999999999999999999999999999999999", Overflow),
        ];
        for (input, expected) in cases {
            assert_eq!(Money::parse(input), Err(expected), "input {input:?}");
        }
    }

    #[test]
    fn displays_exactly_two_places() {
        assert_eq!(m(100082).to_string(), "1000.82");
        assert_eq!(m(5).to_string(), "0.05");
        assert_eq!(m(-150).to_string(), "-1.50");
        assert_eq!(m(-5).to_string(), "-0.05");
        assert_eq!(Money::ZERO.to_string(), "0.00");
        assert_eq!(m(i64::MIN).to_string(), "-92233720368547758.08");
    }

    #[test]
    fn decimal_conversions_keep_scale_two_and_refuse_rounding() {
        assert_eq!(m(1000).to_decimal().to_string(), "10.00");
        assert_eq!(Money::from_decimal(Decimal::new(1005, 2)), Ok(m(1005)));
        assert_eq!(Money::from_decimal(Decimal::new(100500, 4)), Ok(m(1005)), "trailing zeros");
        assert_eq!(Money::from_decimal(Decimal::new(7, 0)), Ok(m(700)));
        assert_eq!(Money::from_decimal(Decimal::new(-1, 1)), Ok(m(-10)));
        assert_eq!(Money::from_decimal(Decimal::new(10001, 3)), Err(MoneyError::TooManyDecimals));
        assert_eq!(Money::from_decimal(Decimal::MAX), Err(MoneyError::Overflow));
        assert_eq!(Money::from_decimal(Decimal::from(i64::MAX / 100 + 1)), Err(MoneyError::Overflow));
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(m(150).checked_add(m(50)), Some(m(200)));
        assert_eq!(m(150).checked_sub(m(200)), Some(m(-50)));
        assert_eq!(m(i64::MAX).checked_add(m(1)), None);
        assert_eq!(m(i64::MIN).checked_sub(m(1)), None);
        assert!(m(1).is_positive());
        assert!(!Money::ZERO.is_positive() && Money::ZERO.is_zero());
        assert!(m(-1).is_negative() && !m(-1).is_positive());
    }

    #[test]
    fn serializes_as_a_two_place_string() {
        assert_eq!(serde_json::to_string(&m(1050)).unwrap(), r#""10.50""#);
        assert_eq!(serde_json::from_str::<Money>(r#""10.5""#).unwrap(), m(1050));
        assert_eq!(serde_json::from_str::<Money>(r#""-1.00""#).unwrap(), m(-100));
    }

    #[test]
    fn refuses_json_numbers_with_a_type_error() {
        for json in ["10.5", "10", "-1", "1e3"] {
            let err = serde_json::from_str::<Money>(json).unwrap_err();
            assert!(err.is_data(), "{json}: {err}");
            let msg = err.to_string();
            assert!(msg.starts_with("invalid type"), "{json}: {msg}");
            assert!(msg.contains("expected a decimal string"), "{json}: {msg}");
        }
        let err = serde_json::from_str::<Money>("null").unwrap_err();
        assert!(err.to_string().starts_with("invalid type"), "{err}");
    }

    #[test]
    fn refuses_bad_strings_with_a_value_error_naming_the_problem() {
        let err = serde_json::from_str::<Money>(r#""10.123""#).unwrap_err();
        let msg = err.to_string();
        assert!(err.is_data());
        assert!(msg.starts_with(r#"invalid value: string "10.123""#), "{msg}");
        assert!(msg.contains("more than two decimal places"), "{msg}");
    }

    #[test]
    fn amount_is_strictly_positive() {
        assert_eq!(Amount::new(m(1)).map(Amount::money), Ok(m(1)));
        assert_eq!(Amount::new(Money::ZERO), Err(MoneyError::NotPositive));
        assert_eq!(Amount::new(m(-100)), Err(MoneyError::NotPositive));
        assert_eq!(Amount::parse("0.01").map(Money::from), Ok(m(1)));
        assert_eq!(Amount::parse("0.00"), Err(MoneyError::NotPositive));
        assert_eq!(Amount::parse("1.001"), Err(MoneyError::TooManyDecimals));
    }

    #[test]
    fn amount_enforces_a_maximum() {
        let amount = Amount::parse("100.00").unwrap();
        assert_eq!(amount.ensure_at_most(m(10000)), Ok(amount), "equal to the maximum is fine");
        assert_eq!(amount.ensure_at_most(m(9999)), Err(MoneyError::AboveMaximum { max: m(9999) }));
        assert_eq!(MoneyError::AboveMaximum { max: m(9999) }.to_string(), "the amount exceeds the maximum of 99.99");
    }

    #[test]
    fn amount_serde_uses_strings_and_rejects_non_positive() {
        let amount: Amount = serde_json::from_str(r#""25.3""#).unwrap();
        assert_eq!(amount.money(), m(2530));
        assert_eq!(serde_json::to_string(&amount).unwrap(), r#""25.30""#);
        for json in [r#""0""#, r#""-5.00""#] {
            let msg = serde_json::from_str::<Amount>(json).unwrap_err().to_string();
            assert!(msg.starts_with("invalid value"), "{json}: {msg}");
            assert!(msg.contains("greater than zero"), "{json}: {msg}");
        }
        let msg = serde_json::from_str::<Amount>("25.3").unwrap_err().to_string();
        assert!(msg.starts_with("invalid type"), "{msg}");
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct FromUpstream {
        #[serde(with = "upstream")]
        value: Money,
        #[serde(default, with = "upstream::option", skip_serializing_if = "Option::is_none")]
        total: Option<Money>,
    }

    #[test]
    fn upstream_amounts_accept_strings_and_numbers_with_two_places_at_most() {
        let read = |json: &str| serde_json::from_str::<FromUpstream>(json).map(|u| (u.value, u.total));
        assert_eq!(read(r#"{"value":"10.5"}"#).unwrap(), (m(1050), None));
        assert_eq!(read(r#"{"value":100,"total":"1000.82"}"#).unwrap(), (m(10000), Some(m(100082))));
        assert_eq!(read(r#"{"value":99.5,"total":null}"#).unwrap(), (m(9950), None));
        assert_eq!(read(r#"{"value":-12.3}"#).unwrap(), (m(-1230), None));
        assert_eq!(read(r#"{"value":1e3}"#).unwrap(), (m(100000), None));
        for bad in [r#"{"value":"1.234"}"#, r#"{"value":0.001}"#, r#"{"value":"abc"}"#, r#"{"value":true}"#] {
            assert!(read(bad).is_err(), "{bad} should be refused");
        }
        let msg = read(r#"{"value":1.005}"#).unwrap_err().to_string();
        assert!(msg.contains("more than two decimal places"), "{msg}");
    }

    #[test]
    fn upstream_amounts_are_written_as_two_place_strings() {
        let json = serde_json::to_string(&FromUpstream { value: m(1050), total: Some(m(7)) }).unwrap();
        assert_eq!(json, r#"{"value":"10.50","total":"0.07"}"#);
    }

    /// Large enough to exercise big values, small enough that most triple sums do not overflow.
    const HALF_RANGE: std::ops::Range<i64> = -(1 << 62)..(1 << 62);

    proptest! {
        #[test]
        fn display_then_parse_round_trips(c in any::<i64>()) {
            prop_assert_eq!(Money::parse(&m(c).to_string()), Ok(m(c)));
        }

        #[test]
        fn display_has_exactly_two_places(c in any::<i64>()) {
            let s = m(c).to_string();
            let (_, fraction) = s.split_once('.').unwrap();
            prop_assert_eq!(fraction.len(), 2);
        }

        #[test]
        fn parses_any_well_formed_string(units in 0u64..10_000_000_000, cents in 0u8..100, neg: bool) {
            let s = format!("{}{units}.{cents:02}", if neg { "-" } else { "" });
            let expected = i64::try_from(units).unwrap() * 100 + i64::from(cents);
            prop_assert_eq!(Money::parse(&s), Ok(m(if neg { -expected } else { expected })));
        }

        #[test]
        fn decimal_round_trips(c in any::<i64>()) {
            prop_assert_eq!(Money::from_decimal(m(c).to_decimal()), Ok(m(c)));
        }

        #[test]
        fn serde_round_trips(c in any::<i64>()) {
            let json = serde_json::to_string(&m(c)).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m(c));
        }

        #[test]
        fn checked_add_is_associative_without_overflow(a in HALF_RANGE, b in HALF_RANGE, c in HALF_RANGE) {
            let (a, b, c) = (m(a), m(b), m(c));
            let left = a.checked_add(b).and_then(|ab| ab.checked_add(c));
            let right = b.checked_add(c).and_then(|bc| a.checked_add(bc));
            if let (Some(left), Some(right)) = (left, right) {
                prop_assert_eq!(left, right);
            }
        }

        #[test]
        fn sums_match_wide_integer_arithmetic(a in any::<i64>(), b in any::<i64>()) {
            let wide = i128::from(a) + i128::from(b);
            let expected = i64::try_from(wide).ok().map(m);
            prop_assert_eq!(m(a).checked_add(m(b)), expected);
            prop_assert_eq!(m(a).checked_add(m(b)).and_then(|s| s.checked_sub(m(b))), expected.map(|_| m(a)));
        }

        #[test]
        fn ordering_matches_centavos(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(m(a).cmp(&m(b)), a.cmp(&b));
        }
    }
}
