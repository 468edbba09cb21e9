//! Hostile test guest: allocates 1 MiB blocks until the memory cap stops it.
//! Behaves like the default fee rule except when `account-segment` is "hostile", so it passes
//! the load-time conformance fixtures and misbehaves only when a test asks it to.

use pix_policy_sdk::prelude::*;

struct Hostile;

impl FeePolicy for Hostile {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        if input.account_segment == "hostile" {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(Vec::with_capacity(1 << 20));
                std::hint::black_box(&hoard);
            }
        }
        Ok(pix_policy_sdk::defaults::fee(&input, &params))
    }
}

pix_policy_sdk::export_fee!(Hostile);
