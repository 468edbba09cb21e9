
// Companies (legal persons) pay a flat fee on top of every cash-out (`pj-cash-out-fee`, default
// R$ 0,90), credited to `fee-account`; everything else is free. Pix Parcelado has no price yet:
// the rule says so with an error, and the host applies its default fee table instead (the
// fail-safe case in fixtures.toml).
export const fee = {
  decide(input, params) {
    if (input.purpose === 'installment-pix') {
      throw { code: 'NOT_PRICED', message: 'no price for Pix Parcelado yet' };
    }
    if (input.operation === 'cash-out' && input.payerType === 'legal') {
      return {
        fee: paramInt(params, 'pj-cash-out-fee', 90n),
        feeAccount: paramText(params, 'fee-account', '@fees_revenue'),
        charge: 'on-top',
        label: 'pj-cash-out-flat',
      };
    }
    return { fee: 0n, feeAccount: '', charge: 'on-top', label: 'free' };
  },
};
