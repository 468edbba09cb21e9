//! A test `refund-split-policy` an institution might write: refunds come from the customer's
//! account only, and are rejected (with the institution's own code) when it cannot cover them.

use pix_policy_sdk::prelude::*;

struct CustomerOnly;

impl RefundSplitPolicy for CustomerOnly {
    fn decide(input: RefundSplitInput, _params: Params) -> Result<RefundSplitDecision, PolicyError> {
        let customer = input.operations.iter().find(|op| op.role == AccountRole::Customer);
        Ok(match customer {
            Some(op) if op.available >= input.refund_amount && op.credited >= input.refund_amount => {
                RefundSplitDecision::Split(vec![RefundPortion {
                    account_alias: op.account_alias.clone(),
                    amount: input.refund_amount,
                }])
            }
            _ => RefundSplitDecision::Reject(RefundRejection {
                code: "CUSTOMER_ONLY_REFUNDS".into(),
                message: "this institution refunds from the customer's account only".into(),
            }),
        })
    }
}

pix_policy_sdk::export_refund_split!(CustomerOnly);
