//! Hostile test guest: panics (the message must reach the host through captured stderr).
//! Behaves like the default fee rule except when `account-segment` is "hostile", so it passes
//! the load-time conformance fixtures and misbehaves only when a test asks it to.

use pix_policy_sdk::prelude::*;

struct Hostile;

impl FeePolicy for Hostile {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        if input.account_segment == "hostile" {
            panic!("hostile guest panicked on purpose");
        }
        Ok(pix_policy_sdk::defaults::fee(&input, &params))
    }
}

pix_policy_sdk::export_fee!(Hostile);
