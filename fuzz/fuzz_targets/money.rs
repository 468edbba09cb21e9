//! Money parsers: the strict API parser (`Money::parse`, `Amount::parse`), the upstream decimal
//! conversion (`Money::from_decimal`) and both serde forms. Never panics; what `Money::parse`
//! accepts is the number rust_decimal reads from the same text, and its display parses back to
//! the same amount.

#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use pix_core::money::{Amount, Money};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Deserialize)]
struct Upstream(#[serde(with = "pix_core::money::upstream")] Money);

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Money>(data);
    let _ = serde_json::from_slice::<Amount>(data);
    if let Ok(Upstream(money)) = serde_json::from_slice(data) {
        assert_eq!(Money::parse(&money.to_string()), Ok(money));
    }
    let Ok(input) = std::str::from_utf8(data) else { return };
    if let Ok(money) = Money::parse(input) {
        let shown = money.to_string();
        assert_eq!(Money::parse(&shown), Ok(money), "{input:?} shown as {shown:?}");
        let json = serde_json::to_string(&money).expect("money serializes");
        assert_eq!(serde_json::from_str::<Money>(&json).ok(), Some(money));
        // An independent reading of the same digits (leading zeros removed: they may exceed
        // Decimal's 28 digits without changing the value).
        let decimal = Decimal::from_str_exact(&without_leading_zeros(input)).expect("a plain decimal");
        assert_eq!(Money::from_decimal(decimal), Ok(money), "{input:?}");
        assert_eq!(money.to_decimal(), decimal);
        assert_eq!(Amount::parse(input).is_ok(), money.is_positive());
    }
    if let Ok(money) = Decimal::from_str(input).map(Money::from_decimal) {
        let _ = money.map(|m| assert_eq!(Money::parse(&m.to_string()), Ok(m)));
    }
});

fn without_leading_zeros(input: &str) -> String {
    let (sign, digits) = input.strip_prefix('-').map_or(("", input), |rest| ("-", rest));
    let trimmed = digits.trim_start_matches('0');
    let trimmed = if trimmed.is_empty() || trimmed.starts_with('.') { format!("0{trimmed}") } else { trimmed.to_owned() };
    format!("{sign}{trimmed}")
}
