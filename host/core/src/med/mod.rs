//! MED (Mecanismo Especial de Devolução) as typed state machines: infraction reports and refund
//! requests ([`records`]), the cautionary block on a customer's account ([`block`]) and the MED
//! 2.0 funds recovery ([`recovery`]).

pub mod block;
pub mod records;
pub mod recovery;

pub use block::*;
pub use records::*;
pub use recovery::*;
