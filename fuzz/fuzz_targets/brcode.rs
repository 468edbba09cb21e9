//! BR Code parser (`BrCode::parse`): never panics, and every code it accepts satisfies the
//! invariant `BrCode` documents: its canonical encoding fits a payload and parses back to the
//! same code, whose own encoding is the same string.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pix_core::brcode::{BrCode, MAX_PAYLOAD_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let Ok(code) = BrCode::parse(input) else { return };
    let encoded = code.encode();
    assert!(encoded.chars().count() <= MAX_PAYLOAD_LEN, "{input:?} re-encodes past {MAX_PAYLOAD_LEN} characters");
    let again = BrCode::parse(&encoded).unwrap_or_else(|e| panic!("{input:?} re-encodes to {encoded:?}: {e}"));
    assert_eq!(again, code, "{input:?} → {encoded:?}");
    assert_eq!(again.encode(), encoded);
    // What the payment flows read of a scanned code.
    assert!(code.key().is_some() || code.location_url().is_some() || code.recurrence_location_url().is_some());
    assert_eq!(code.is_dynamic(), code.location_url().is_some());
    if let Some(amount) = code.amount() {
        assert!(amount.is_positive());
    }
});
