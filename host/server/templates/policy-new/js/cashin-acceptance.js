
// Blocked (AC06) and closed (AC07) accounts cannot receive. Between 22:00 and 06:00 a person's
// account takes at most `night-limit` centavos (default R$ 5.000) per Pix from someone else
// (AM02). Everything else is accepted.
export const cashinAcceptance = {
  decide(input, params) {
    const deny = (code, spiReason, message) => ({ tag: 'deny', val: { code, spiReason, message } });
    if (input.payeeStatus === 'blocked') return deny('RECIPIENT_ACCOUNT_INVALID', 'AC06', 'the account is blocked');
    if (input.payeeStatus === 'closed') return deny('RECIPIENT_ACCOUNT_INVALID', 'AC07', 'the account is closed');
    const minute = input.localTime.minuteOfDay;
    const night = minute >= 22 * 60 || minute < 6 * 60;
    if (
      night &&
      input.payeeType === 'natural' &&
      !input.sameOwner &&
      input.amount > paramInt(params, 'night-limit', 500_000n)
    ) {
      return deny('RECIPIENT_CANNOT_RECEIVE', 'AM02', 'above the night-time limit');
    }
    return { tag: 'accept' };
  },
};
