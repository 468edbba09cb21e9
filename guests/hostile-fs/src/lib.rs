//! Hostile test guest: reads a host file (imports wasi:filesystem, so the host must refuse it).
//! Behaves like the default fee rule except when `account-segment` is "hostile", so it passes
//! the load-time conformance fixtures and misbehaves only when a test asks it to.

use pix_policy_sdk::prelude::*;

struct Hostile;

impl FeePolicy for Hostile {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        if input.account_segment == "hostile" {
            let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            return Ok(FeeDecision::free(&text[..text.len().min(64)]));
        }
        Ok(pix_policy_sdk::defaults::fee(&input, &params))
    }
}

pix_policy_sdk::export_fee!(Hostile);
