

class Fee(exports.Fee):
    """Companies (legal persons) pay a flat fee on top of every cash-out (``pj-cash-out-fee``,
    default R$ 0,90), credited to ``fee-account``; everything else is free. Pix Parcelado has no
    price yet: the rule says so with an error, and the host applies its default fee table
    instead (the fail-safe case in fixtures.toml)."""

    def decide(self, input: FeeInput, params: list[Param]) -> FeeDecision:
        if input.purpose == Purpose.INSTALLMENT_PIX:
            raise Err(PolicyError(code="NOT_PRICED", message="no price for Pix Parcelado yet"))
        if input.operation == Operation.CASH_OUT and input.payer_type == PersonType.LEGAL:
            return FeeDecision(
                fee=param_int(params, "pj-cash-out-fee", 90),
                fee_account=param_text(params, "fee-account", "@fees_revenue"),
                charge=FeeCharge.ON_TOP,
                label="pj-cash-out-flat",
            )
        return FeeDecision(fee=0, fee_account="", charge=FeeCharge.ON_TOP, label="free")
