
// A refund comes from the customer's own account(s), in their original order, never more than
// each one received or still has. When they cannot cover it, or refunds would pass the original
// amount, the refund is rejected.
export const refundSplit = {
  decide(input, params) {
    const reject = (code, message) => ({ tag: 'reject', val: { code, message } });
    if (input.alreadyRefunded + input.refundAmount > input.originalAmount) {
      return reject('REFUND_EXCEEDS_ORIGINAL', 'refunds would exceed the original amount');
    }
    let left = input.refundAmount;
    const portions = [];
    for (const op of input.operations.filter((op) => op.role === 'customer')) {
      let take = left < op.credited ? left : op.credited;
      take = take < op.available ? take : op.available;
      if (take > 0n) {
        portions.push({ accountAlias: op.accountAlias, amount: take });
        left -= take;
      }
    }
    if (left > 0n) {
      return reject('INSUFFICIENT_BALANCE', 'the customer accounts cannot cover the refund');
    }
    return { tag: 'split', val: portions };
  },
};
