//! pix-host's default cash-in acceptance as a `cashin-acceptance-policy` component.

use pix_policy_sdk::prelude::*;

struct DefaultCashinAcceptance;

impl CashinAcceptancePolicy for DefaultCashinAcceptance {
    fn decide(input: CashinInput, params: Params) -> Result<CashinDecision, PolicyError> {
        Ok(pix_policy_sdk::defaults::cashin_acceptance(&input, &params))
    }
}

pix_policy_sdk::export_cashin_acceptance!(DefaultCashinAcceptance);
