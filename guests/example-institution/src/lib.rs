//! Example institution ("Banco Exemplo"): the defaults with three local changes.
//!
//! - Fee: merchants (segment `merchant`) pay 0.79 % (max R$ 5,00) on cash-ins instead of 0.99 %.
//! - Cash-in: nightly limit for natural persons is R$ 500,00 unless the tenant sets
//!   `nightly-limit`.
//! - Fraud: review from score 300, and block a first payment above R$ 5.000,00 to a key registered
//!   today.

use pix_policy_sdk::defaults;
use pix_policy_sdk::prelude::*;

struct BancoExemplo;

impl FeePolicy for BancoExemplo {
    fn decide(input: FeeInput, params: Params) -> Result<FeeDecision, PolicyError> {
        if input.operation == Operation::CashIn
            && input.payee_type == PersonType::Legal
            && !input.intra_psp
            && input.account_segment == "merchant"
        {
            let fee = apply_bps(input.amount, 79, Rounding::HalfUp).clamp(1, reais(5));
            let account = params.text("fee-account", "@fees_revenue");
            return Ok(FeeDecision::deducted(fee.min(input.amount), account, "merchant-cash-in-0.79pct"));
        }
        Ok(defaults::fee(&input, &params))
    }
}

impl RefundSplitPolicy for BancoExemplo {
    fn decide(input: RefundSplitInput, params: Params) -> Result<RefundSplitDecision, PolicyError> {
        Ok(defaults::refund_split(&input, &params))
    }
}

impl CashinAcceptancePolicy for BancoExemplo {
    fn decide(input: CashinInput, params: Params) -> Result<CashinDecision, PolicyError> {
        let params = params.with_default_int("nightly-limit", reais(500));
        Ok(defaults::cashin_acceptance(&input, &params))
    }
}

impl FraudTriagePolicy for BancoExemplo {
    fn decide(input: FraudInput, params: Params) -> Result<FraudDecision, PolicyError> {
        let params = params.with_default_int("review-threshold", 300);
        let mut decision = defaults::fraud_triage(&input, &params);
        if input.first_time_counterparty && input.key_age_days == Some(0) && input.amount > reais(5_000) {
            decision.action = FraudAction::Block;
            decision.reasons.push("NEW_KEY_FIRST_HIGH_PAYMENT".into());
        }
        Ok(decision)
    }
}

pix_policy_sdk::export_institution!(BancoExemplo);
