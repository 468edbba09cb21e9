//! Hostile test guest: spins forever (fuel or the epoch deadline must stop it).
//! Behaves like the default fee rule except when `account-segment` is "hostile", so it passes
//! the load-time conformance fixtures and misbehaves only when a test asks it to.

use pix_policy_sdk::prelude::*;

struct Hostile;

impl FeePolicy for Hostile {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        if input.account_segment == "hostile" {
            let mut x: u64 = input.amount as u64;
            loop {
                // black_box keeps the optimiser from proving the loop has no effect.
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        Ok(pix_policy_sdk::defaults::fee(&input, &params))
    }
}

pix_policy_sdk::export_fee!(Hostile);
