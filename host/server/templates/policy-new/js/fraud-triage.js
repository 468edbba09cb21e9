
// Fraud markers on the counterparty's key in DICT weigh 300 each (two at most). A first payment
// to a counterparty above the customer's segment limit weighs 300: `private-limit` (default
// R$ 50.000) for the "private" segment, `limit` (default R$ 2.000) for the others; the segment is
// `accountSegment`, new in pix:policy@0.2.0. An account younger than 7 days weighs 100.
// Review from 400, block from 700.
export const fraudTriage = {
  decide(input, params) {
    let score = 0;
    const reasons = [];
    const s = input.keyStatistics;
    if (s) {
      const markers = s.applicationFrauds + s.muleAccounts + s.scammerAccounts + s.otherFrauds;
      if (markers > 0) {
        score += 300 * Math.min(markers, 2);
        reasons.push('DICT_FRAUD_MARKERS');
      }
    }
    const limit =
      input.accountSegment === 'private'
        ? paramInt(params, 'private-limit', 5_000_000n)
        : paramInt(params, 'limit', 200_000n);
    if (input.firstTimeCounterparty && input.amount > limit) {
      score += 300;
      reasons.push('FIRST_PAYMENT_ABOVE_SEGMENT_LIMIT');
    }
    if (input.accountAgeDays < 7) {
      score += 100;
      reasons.push('NEW_ACCOUNT');
    }
    const action = score >= 700 ? 'block' : score >= 400 ? 'review' : 'allow';
    return { score: Math.min(score, 1000), action, reasons };
  },
};
