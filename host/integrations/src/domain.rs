//! The few domain types the clients need, in one module so that a change of source is a one-file
//! change. Money, person type and PII masking all come from `pix-core`; upstream amounts (Midaz
//! also sends JSON numbers) are read through `pix_core::money::upstream`.

pub use pix_core::document::PersonType;
pub use pix_core::mask::{mask_document, mask_name};
pub use pix_core::money::Money;

/// Masks a Pix key given as raw text (a key we send or receive may not have been validated).
pub fn mask_key(key: &str) -> String {
    pix_core::mask::mask_raw_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_pii() {
        assert_eq!(mask_document("11144477735"), "***.444.777-**");
        assert_eq!(mask_key("maria@example.com"), "m***@example.com");
        assert!(!mask_key("+5511987654321").contains("98765"));
        assert!(!mask_key("not a key").contains("key"));
        assert_eq!(mask_name("Maria da Silva"), "Maria S.");
    }
}
