//! Standard Webhooks 1.0.0 signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
//! where the key is the base64 after the `whsec_` prefix of the endpoint's secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a timestamp may be from the verifier's clock, either way (the Svix verifier's value).
pub const TOLERANCE_SECS: i64 = 5 * 60;

const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signing secret is not whsec_ followed by base64")]
    BadSecret,
    #[error("webhook headers are missing or malformed")]
    Malformed,
    #[error("webhook timestamp is outside the tolerance")]
    Stale,
    #[error("no webhook signature matches")]
    Mismatch,
}

/// The HMAC key of a `whsec_…` secret (the prefix is optional, as in the reference libraries).
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).map_err(|_| SignatureError::BadSecret)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for one attempt.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(key, id, timestamp, body).finalize().into_bytes()))
}

/// Verifies a received webhook as a receiver would: the timestamp is within [`TOLERANCE_SECS`]
/// of `now` (Unix seconds) and one of the space-separated `v1,` signatures matches, compared in
/// constant time. Other versions in the list (e.g. `v1a` for ed25519) are skipped.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let key = decode_secret(secret)?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::Malformed)?;
    if id.is_empty() || id.contains('.') {
        return Err(SignatureError::Malformed);
    }
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = mac(&key, id, ts, body);
    let matched = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|candidate| expected.clone().verify_slice(&candidate).is_ok());
    if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks / Svix test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_standard_webhooks_test_vector_reproduces() {
        assert_eq!(sign(&decode_secret(SECRET).unwrap(), ID, TS, BODY), EXPECTED);
        verify(SECRET, ID, &TS.to_string(), EXPECTED, BODY, TS).unwrap();
    }

    #[test]
    fn any_listed_v1_signature_may_match_so_keys_can_rotate() {
        let header = format!("v1a,AAAA v1,bm9wZQ== {EXPECTED}");
        verify(SECRET, ID, &TS.to_string(), &header, BODY, TS + 10).unwrap();
    }

    #[test]
    fn tampering_a_wrong_key_or_a_stale_timestamp_is_rejected() {
        let ts = TS.to_string();
        assert_eq!(verify(SECRET, ID, &ts, EXPECTED, br#"{"test": 1}"#, TS), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, "msg_other", &ts, EXPECTED, BODY, TS), Err(SignatureError::Mismatch));
        assert_eq!(verify("whsec_c2VjcmV0", ID, &ts, EXPECTED, BODY, TS), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, ID, &ts, EXPECTED, BODY, TS + TOLERANCE_SECS + 1), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, ID, &ts, EXPECTED, BODY, TS - TOLERANCE_SECS - 1), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, ID, "soon", EXPECTED, BODY, TS), Err(SignatureError::Malformed));
        assert_eq!(verify("whsec_!!", ID, &ts, EXPECTED, BODY, TS), Err(SignatureError::BadSecret));
        assert_eq!(verify(SECRET, ID, &ts, "", BODY, TS), Err(SignatureError::Mismatch));
    }
}
