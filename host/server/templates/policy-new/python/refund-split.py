

class RefundSplit(exports.RefundSplit):
    """A refund comes from the customer's own account(s), in their original order, never more
    than each one received or still has. When they cannot cover it, or refunds would pass the
    original amount, the refund is rejected."""

    def decide(self, input: RefundSplitInput, params: list[Param]) -> RefundSplitDecision:
        def reject(code: str, message: str) -> RefundSplitDecision:
            return RefundSplitDecision_Reject(RefundRejection(code=code, message=message))

        if input.already_refunded + input.refund_amount > input.original_amount:
            return reject("REFUND_EXCEEDS_ORIGINAL", "refunds would exceed the original amount")
        left = input.refund_amount
        portions = []
        for op in input.operations:
            if op.role != AccountRole.CUSTOMER:
                continue
            take = min(left, op.credited, op.available)
            if take > 0:
                portions.append(RefundPortion(account_alias=op.account_alias, amount=take))
                left -= take
        if left > 0:
            return reject("INSUFFICIENT_BALANCE", "the customer accounts cannot cover the refund")
        return RefundSplitDecision_Split(portions)
