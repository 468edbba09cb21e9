// pix-host's default fee table as a `fee-policy` component, in JavaScript (componentize-js).
// The same rules as the Rust guest `guests/default-fee` and `pix_policy::native::fee`; the host's
// tests assert all three answer every conformance fixture identically. Money is BigInt centavos.

import { max, min, paramInt, paramText } from '../lib/params.js';

const DEFAULT_FEE_ACCOUNT = '@fees_revenue';

/** `bps` basis points of `amount`, rounded half away from zero. */
function bpsHalfUp(amount, bps) {
  const product = amount * bps;
  const abs = product < 0n ? -product : product;
  let q = abs / 10_000n;
  if ((abs % 10_000n) * 2n >= 10_000n) q += 1n;
  return product < 0n ? -q : q;
}

const free = (label) => ({ fee: 0n, feeAccount: '', charge: 'on-top', label });

function decide(i, params) {
  const account = paramText(params, 'fee-account', DEFAULT_FEE_ACCOUNT);
  const charge = (fee, how, label) => ({ fee, feeAccount: account, charge: how, label });
  if (i.operation === 'refund') return free('free-refund');
  if (i.intraPsp || i.operation === 'intra-psp') return free('free-intra-psp');
  if (i.operation === 'cash-out') {
    if (i.payerType === 'natural') {
      if ((i.purpose === 'withdrawal' || i.purpose === 'change') && i.monthCount >= 8) {
        return charge(250n, 'on-top', 'pf-saque-troco');
      }
      return free('free-pf-cash-out');
    }
    if (i.monthCount < 100) return charge(150n, 'on-top', 'pj-cash-out-tier-1');
    if (i.monthCount < 1000) return charge(100n, 'on-top', 'pj-cash-out-tier-2');
    return charge(50n, 'on-top', 'pj-cash-out-tier-3');
  }
  // Cash-in.
  if (i.payeeType === 'legal') {
    const bps = min(max(paramInt(params, 'pj-cash-in-bps', 99n), 0n), 10_000n);
    const low = max(paramInt(params, 'pj-cash-in-min', 10n), 0n);
    const high = max(paramInt(params, 'pj-cash-in-max', 1_000n), low);
    const fee = min(max(bpsHalfUp(i.amount, bps), low), high);
    return charge(min(fee, i.amount), 'deducted', 'pj-cash-in-0.99pct');
  }
  if (i.monthCount >= 30) return charge(min(50n, i.amount), 'deducted', 'pf-cash-in-over-30');
  return free('free-pf-cash-in');
}

export const fee = { decide };
