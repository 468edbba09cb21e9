//! Pure Pix domain: money, identifiers, documents, Pix keys and the API error catalogue.
//! No I/O, no async: everything here is deterministic and unit-testable.

pub mod brcode;
pub mod clock;
pub mod collection;
pub mod dict;
pub mod document;
pub mod error;
pub mod ids;
pub mod mask;
pub mod med;
pub mod money;
pub mod pix_key;
pub mod refund;
pub mod transfer;

mod serde_str;
