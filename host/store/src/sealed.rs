//! Secrets at rest: values the host must read back (e.g. webhook signing secrets) are stored
//! sealed with AES-256-GCM under a key from configuration (`security.secret_key`).
//!
//! Format: `v1:` + base64(nonce ‖ ciphertext+tag). The version prefix says which key and
//! algorithm sealed a value, so a later key rotation can add `v2:` and read both. A `context`
//! (e.g. the row's table, column and id) is bound as associated data: a sealed value copied into
//! another row does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX_V1: &str = "v1:";
const NONCE_LEN: usize = 12;
/// Key length in bytes (AES-256).
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the secret key must be {KEY_LEN} bytes, base64-encoded")]
    BadKey,
    #[error("not a sealed value (no known version prefix)")]
    NotSealed,
    #[error("the sealed value is malformed or was sealed under another key or context")]
    Unreadable,
}

/// Seals and opens secrets under one key. `Debug` never shows the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// Root of the keys derived for other purposes (never the sealing key itself).
    derivation: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; KEY_LEN]) -> Sealer {
        let derivation = Sha256::new().chain_update(b"pix-host/derive/v1/").chain_update(key).finalize().into();
        Sealer { cipher: Aes256Gcm::new(key.into()), derivation }
    }

    /// A 32-byte key for `purpose` (e.g. one tenant's intra-PSP signing key): the same on every
    /// instance sharing `security.secret_key`, and different for every purpose.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        Sha256::new().chain_update(self.derivation).chain_update(purpose.as_bytes()).finalize().into()
    }

    /// A key as configured: 32 bytes in standard base64 (surrounding whitespace ignored).
    pub fn from_base64(key: &str) -> Result<Sealer, SealError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Sealer::new(&key))
    }

    /// A fresh random key in the configured form (base64 of 32 bytes).
    pub fn generate_key() -> String {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// A sealer under a random key that lives only in this process: what a `Store` uses until
    /// the configured key is set, so nothing is ever written in plaintext.
    pub fn ephemeral() -> Sealer {
        Sealer::from_base64(&Sealer::generate_key()).expect("a generated key is valid")
    }

    /// Whether `value` carries a known sealed-format prefix (else it is a legacy plaintext).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX_V1)
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{PREFIX_V1}{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        let encoded = sealed.strip_prefix(PREFIX_V1).ok_or(SealError::NotSealed)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SealError::Unreadable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Unreadable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Unreadable)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SealError::Unreadable)?;
        String::from_utf8(plain).map_err(|_| SealError::Unreadable)
    }

    /// Opens a sealed value, or returns a legacy plaintext value as it is (rows written before
    /// sealing existed, until the start-up pass seals them).
    pub fn open_or_plain(&self, stored: &str, context: &str) -> Result<String, SealError> {
        if Sealer::is_sealed(stored) { self.open(stored, context) } else { Ok(stored.to_owned()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_hides_the_plaintext_and_binds_the_context() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let sealed = sealer.seal("whsec_c2VjcmV0", "row-1");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_") && !sealed.contains("c2VjcmV0"), "{sealed}");
        assert_eq!(sealer.open(&sealed, "row-1").unwrap(), "whsec_c2VjcmV0");
        // Fresh nonce each time.
        assert_ne!(sealer.seal("whsec_c2VjcmV0", "row-1"), sealed);
        assert_eq!(sealer.open(&sealed, "row-2"), Err(SealError::Unreadable));
        assert_eq!(Sealer::ephemeral().open(&sealed, "row-1"), Err(SealError::Unreadable));
        assert_eq!(sealer.open("whsec_c2VjcmV0", "row-1"), Err(SealError::NotSealed));
        assert_eq!(sealer.open_or_plain("whsec_c2VjcmV0", "row-1").unwrap(), "whsec_c2VjcmV0");
        assert_eq!(sealer.open("v1:AAAA", "row-1"), Err(SealError::Unreadable));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert_eq!(Sealer::from_base64("short").unwrap_err(), SealError::BadKey);
        assert_eq!(Sealer::from_base64(&STANDARD.encode([0u8; 16])).unwrap_err(), SealError::BadKey);
        assert!(Sealer::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert_eq!(format!("{:?}", Sealer::ephemeral()), "Sealer(***)");
    }
}
