
/// A refund comes from the customer's own account(s), in their original order, never more than
/// each one received or still has. When they cannot cover it, or refunds would pass the original
/// amount, the refund is rejected.
impl exports::pix::policy::refund_split::Guest for Policy {
    fn decide(input: RefundSplitInput, _params: Vec<Param>) -> Result<RefundSplitDecision, PolicyError> {
        let reject = |code: &str, message: &str| {
            Ok(RefundSplitDecision::Reject(RefundRejection { code: code.into(), message: message.into() }))
        };
        if input.already_refunded + input.refund_amount > input.original_amount {
            return reject("REFUND_EXCEEDS_ORIGINAL", "refunds would exceed the original amount");
        }
        let mut left = input.refund_amount;
        let mut portions = Vec::new();
        for op in input.operations.iter().filter(|op| op.role == AccountRole::Customer) {
            let take = left.min(op.credited).min(op.available);
            if take > 0 {
                portions.push(RefundPortion { account_alias: op.account_alias.clone(), amount: take });
                left -= take;
            }
        }
        if left > 0 {
            return reject("INSUFFICIENT_BALANCE", "the customer accounts cannot cover the refund");
        }
        Ok(RefundSplitDecision::Split(portions))
    }
}
