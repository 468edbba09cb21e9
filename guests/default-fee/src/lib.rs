//! pix-host's default fee table as a `fee-policy` component (see `pix_policy_sdk::defaults::fee`).

use pix_policy_sdk::prelude::*;

struct DefaultFee;

impl FeePolicy for DefaultFee {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        Ok(pix_policy_sdk::defaults::fee(&input, &params))
    }
}

pix_policy_sdk::export_fee!(DefaultFee);
