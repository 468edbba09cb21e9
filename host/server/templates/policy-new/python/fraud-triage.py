

class FraudTriage(exports.FraudTriage):
    """Fraud markers on the counterparty's key in DICT weigh 300 each (two at most). A first
    payment to a counterparty above the customer's segment limit weighs 300: ``private-limit``
    (default R$ 50.000) for the "private" segment, ``limit`` (default R$ 2.000) for the others;
    the segment is ``account_segment``, new in pix:policy@0.2.0. An account younger than 7 days
    weighs 100. Review from 400, block from 700."""

    def decide(self, input: FraudInput, params: list[Param]) -> FraudDecision:
        score = 0
        reasons = []
        s = input.key_statistics
        if s is not None:
            markers = s.application_frauds + s.mule_accounts + s.scammer_accounts + s.other_frauds
            if markers > 0:
                score += 300 * min(markers, 2)
                reasons.append("DICT_FRAUD_MARKERS")
        if input.account_segment == "private":
            limit = param_int(params, "private-limit", 5_000_000)
        else:
            limit = param_int(params, "limit", 200_000)
        if input.first_time_counterparty and input.amount > limit:
            score += 300
            reasons.append("FIRST_PAYMENT_ABOVE_SEGMENT_LIMIT")
        if input.account_age_days < 7:
            score += 100
            reasons.append("NEW_ACCOUNT")
        if score >= 700:
            action = FraudAction.BLOCK
        elif score >= 400:
            action = FraudAction.REVIEW
        else:
            action = FraudAction.ALLOW
        return FraudDecision(score=min(score, 1000), action=action, reasons=reasons)
