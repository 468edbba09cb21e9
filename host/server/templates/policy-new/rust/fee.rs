
/// Companies (legal persons) pay a flat fee on top of every cash-out (`pj-cash-out-fee`, default
/// R$ 0,90), credited to `fee-account`; everything else is free. Pix Parcelado has no price yet:
/// the rule says so with an error, and the host applies its default fee table instead (the
/// fail-safe case in fixtures.toml).
impl exports::pix::policy::fee::Guest for Policy {
    fn decide(input: FeeInput, params: Vec<Param>) -> Result<FeeDecision, PolicyError> {
        if input.purpose == Purpose::InstallmentPix {
            return Err(PolicyError { code: "NOT_PRICED".into(), message: "no price for Pix Parcelado yet".into() });
        }
        if input.operation == Operation::CashOut && input.payer_type == PersonType::Legal {
            return Ok(FeeDecision {
                fee: param_int(&params, "pj-cash-out-fee", 90),
                fee_account: param_text(&params, "fee-account", "@fees_revenue"),
                charge: FeeCharge::OnTop,
                label: "pj-cash-out-flat".into(),
            });
        }
        Ok(FeeDecision { fee: 0, fee_account: String::new(), charge: FeeCharge::OnTop, label: "free".into() })
    }
}
