//! pix-host's default refund split as a `refund-split-policy` component.

use pix_policy_sdk::prelude::*;

struct DefaultRefundSplit;

impl RefundSplitPolicy for DefaultRefundSplit {
    fn decide(input: RefundSplitInput, params: Params) -> Result<RefundSplitDecision, PolicyError> {
        Ok(pix_policy_sdk::defaults::refund_split(&input, &params))
    }
}

pix_policy_sdk::export_refund_split!(DefaultRefundSplit);
