//! Inbound BTG webhooks as the ingress sees them: the signature check (`verify_webhook`) on the
//! two headers and the body, then the decoder (`parse_webhook`).
//!
//! Input: `<x-signature-timestamp>\n<x-signature>\n<body>` (a missing line is a missing header).
//! Never panics; only the exact HMAC of `timestamp.body` within the tolerance verifies, what the
//! sender signs always verifies and stops verifying when the body changes, and the decoded event
//! is the one the envelope names.

#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use pix_integrations::btg::{BtgEvent, SignatureError, parse_webhook, sign_webhook, verify_webhook};

const SECRET: &[u8] = b"fuzz-webhook-secret";
/// The receiver's clock (2023-11-14) and the default tolerance.
const NOW: i64 = 1_700_000_000;
const TOLERANCE: i64 = 300;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let timestamp = lines.next().and_then(|l| std::str::from_utf8(l).ok());
    let signature = lines.next().and_then(|l| std::str::from_utf8(l).ok());
    let body = lines.next().unwrap_or_default();

    let now = at(NOW);
    if verify_webhook(SECRET, timestamp, signature, body, now, TOLERANCE).is_ok() {
        let sent: i64 = timestamp.and_then(|t| t.trim().parse().ok()).expect("a verified timestamp parses");
        assert!((NOW - sent).abs() <= TOLERANCE, "stale timestamp {sent} verified");
        let given = signature.and_then(|s| s.trim().strip_prefix("sha256=")).and_then(|h| hex::decode(h).ok());
        let expected = hex::decode(&sign_webhook(SECRET, sent, body)["sha256=".len()..]).ok();
        assert_eq!(given, expected, "a signature other than the HMAC verified");
    }

    // Whatever timestamp the sender claims, its own signature verifies on a receiver whose clock
    // agrees, and fails once the body is altered.
    if let Some(sent) = timestamp.and_then(|t| t.trim().parse::<i64>().ok())
        && let Some(receiver) = DateTime::from_timestamp(sent, 0)
    {
        let sent_text = sent.to_string();
        let signed = sign_webhook(SECRET, sent, body);
        assert_eq!(verify_webhook(SECRET, Some(&sent_text), Some(&signed), body, receiver, TOLERANCE), Ok(()));
        let mut altered = body.to_vec();
        altered.push(b' ');
        assert_eq!(
            verify_webhook(SECRET, Some(&sent_text), Some(&signed), &altered, receiver, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    if let Ok((envelope, event)) = parse_webhook(body) {
        match (name(&event), &event) {
            (Some(name), _) => assert_eq!(name, envelope.event),
            (None, BtgEvent::Other { event, .. }) => assert_eq!(*event, envelope.event),
            (None, other) => panic!("{other:?} has no name"),
        }
    }
});

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("a representable instant")
}

/// The envelope `event` each decoded variant comes from.
fn name(event: &BtgEvent) -> Option<&'static str> {
    Some(match event {
        BtgEvent::Payment(_) => "PIX_PAYMENT",
        BtgEvent::PaymentInbound(_) => "PIX_PAYMENT_INBOUND",
        BtgEvent::Reversal(_) => "PIX_REVERSAL",
        BtgEvent::ReversalInbound(_) => "PIX_REVERSAL_INBOUND",
        BtgEvent::Claim(_) => "DICT_CLAIM",
        BtgEvent::CidFile(_) => "DICT_CID_FILE",
        BtgEvent::InfractionReport(_) => "INFRACTION_REPORT_V2",
        BtgEvent::Refund(_) => "DICT_REFUND",
        BtgEvent::FundsRecovery(_) => "FUNDS_RECOVERY",
        BtgEvent::FundsRecoveryEvents(_) => "FUNDS_RECOVERY_EVENTS",
        BtgEvent::InternalTransactionsReport(_) => "PIX_INTERNAL_TRANSACTIONS_REPORT",
        BtgEvent::Other { .. } => return None,
    })
}
