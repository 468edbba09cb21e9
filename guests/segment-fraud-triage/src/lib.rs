//! Fraud triage that depends on the customer's account segment, a field new in
//! `pix:policy@0.2.0` (`fraud-input.account-segment`). A first payment to a counterparty is
//! "large" from R$ 5.000 for retail accounts, R$ 50.000 for merchants and R$ 100.000 for private
//! banking; the thresholds are parameters (`large-retail`, `large-merchant`, `large-private`).

wit_bindgen::generate!({ path: "../../wit", world: "fraud-triage-policy" });

use exports::pix::policy::fraud_triage::Guest;
use pix::policy::types::{FraudAction, FraudDecision, FraudInput, Param, ParamValue, PolicyError};

struct SegmentFraudTriage;

fn int(params: &[Param], name: &str, default: i64) -> i64 {
    params
        .iter()
        .find_map(|p| match &p.value {
            ParamValue::Int(v) if p.name == name => Some(*v),
            _ => None,
        })
        .unwrap_or(default)
}

impl Guest for SegmentFraudTriage {
    fn decide(input: FraudInput, params: Vec<Param>) -> Result<FraudDecision, PolicyError> {
        let mut score: u16 = 0;
        let mut reasons = Vec::new();
        let mut flag = |points: u16, reason: &str| {
            score = score.saturating_add(points).min(1000);
            reasons.push(reason.to_owned());
        };
        if let Some(s) = &input.key_statistics {
            let severe = s.application_frauds + s.mule_accounts + s.scammer_accounts;
            if severe > 0 {
                flag(u16::try_from(severe.min(2) * 250).unwrap_or(500), "DICT_FRAUD_MARKERS");
            }
        }
        if input.key_age_days == Some(0) {
            flag(150, "NEW_KEY");
        }
        let large = match input.account_segment.as_str() {
            "private" => int(&params, "large-private", 10_000_000),
            "merchant" => int(&params, "large-merchant", 5_000_000),
            _ => int(&params, "large-retail", 500_000),
        };
        if input.first_time_counterparty && input.amount >= large {
            flag(400, "LARGE_FIRST_PAYMENT_FOR_SEGMENT");
        }
        if input.velocity.count_1h >= 10 {
            flag(150, "BURST");
        }
        let action = match score {
            700.. => FraudAction::Block,
            400.. => FraudAction::Review,
            _ => FraudAction::Allow,
        };
        Ok(FraudDecision { score, action, reasons })
    }
}

export!(SegmentFraudTriage);
