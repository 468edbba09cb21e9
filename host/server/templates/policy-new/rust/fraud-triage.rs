
/// Fraud markers on the counterparty's key in DICT weigh 300 each (two at most). A first payment
/// to a counterparty above the customer's segment limit weighs 300: `private-limit` (default
/// R$ 50.000) for the "private" segment, `limit` (default R$ 2.000) for the others; the segment
/// is `account-segment`, new in pix:policy@0.2.0. An account younger than 7 days weighs 100.
/// Review from 400, block from 700.
impl exports::pix::policy::fraud_triage::Guest for Policy {
    fn decide(input: FraudInput, params: Vec<Param>) -> Result<FraudDecision, PolicyError> {
        let mut score: u32 = 0;
        let mut reasons = Vec::new();
        if let Some(s) = &input.key_statistics {
            let markers = s.application_frauds + s.mule_accounts + s.scammer_accounts + s.other_frauds;
            if markers > 0 {
                score += 300 * markers.min(2);
                reasons.push("DICT_FRAUD_MARKERS".to_owned());
            }
        }
        let limit = if input.account_segment == "private" {
            param_int(&params, "private-limit", 5_000_000)
        } else {
            param_int(&params, "limit", 200_000)
        };
        if input.first_time_counterparty && input.amount > limit {
            score += 300;
            reasons.push("FIRST_PAYMENT_ABOVE_SEGMENT_LIMIT".to_owned());
        }
        if input.account_age_days < 7 {
            score += 100;
            reasons.push("NEW_ACCOUNT".to_owned());
        }
        let action = match score {
            700.. => FraudAction::Block,
            400.. => FraudAction::Review,
            _ => FraudAction::Allow,
        };
        Ok(FraudDecision { score: u16::try_from(score.min(1000)).unwrap_or(1000), action, reasons })
    }
}
