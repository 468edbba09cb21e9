//! pix-host's default fraud triage as a `fraud-triage-policy` component.

use pix_policy_sdk::prelude::*;

struct DefaultFraudTriage;

impl FraudTriagePolicy for DefaultFraudTriage {
    fn decide(input: FraudInput, params: Params) -> Result<FraudDecision, PolicyError> {
        Ok(pix_policy_sdk::defaults::fraud_triage(&input, &params))
    }
}

pix_policy_sdk::export_fraud_triage!(DefaultFraudTriage);
