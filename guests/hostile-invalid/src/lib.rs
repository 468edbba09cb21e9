//! Hostile test guest: an `institution` whose every answer breaks the contract (negative fee,
//! a split that does not sum, an unknown pacs.002 code, a score above 1000). The host must refuse
//! to load it (conformance) and, if called, must reject each answer.

use pix_policy_sdk::prelude::*;

struct Invalid;

impl FeePolicy for Invalid {
    fn decide(_input: FeeInput, _params: Params) -> Result<FeeDecision, PolicyError> {
        Ok(FeeDecision::on_top(-5, "@fees_revenue", "negative"))
    }
}

impl RefundSplitPolicy for Invalid {
    fn decide(input: RefundSplitInput, _params: Params) -> Result<RefundSplitDecision, PolicyError> {
        let alias = input.operations.first().map(|op| op.account_alias.clone()).unwrap_or_default();
        Ok(RefundSplitDecision::Split(vec![RefundPortion { account_alias: alias, amount: input.refund_amount - 1 }]))
    }
}

impl CashinAcceptancePolicy for Invalid {
    fn decide(_input: CashinInput, _params: Params) -> Result<CashinDecision, PolicyError> {
        Ok(CashinDecision::deny("NOPE", "XX99", "not a pacs.002 code"))
    }
}

impl FraudTriagePolicy for Invalid {
    fn decide(_input: FraudInput, _params: Params) -> Result<FraudDecision, PolicyError> {
        Ok(FraudDecision { score: 5000, action: FraudAction::Allow, reasons: Vec::new() })
    }
}

pix_policy_sdk::export_institution!(Invalid);
