// pix-host's default fraud triage as a `fraud-triage-policy` component, in JavaScript.
// The same rules as `guests/default-fraud-triage` and `pix_policy::native::fraud_triage`: an
// additive score, review from 400, block from 700. Counters saturate at u32 like the Rust twin.

import { paramInt, within } from '../lib/params.js';

const U32_MAX = 2 ** 32 - 1;
const REAIS = 100n;
const sat = (n) => Math.min(n, U32_MAX);

function decide(i, params) {
  let score = 0;
  const reasons = [];
  const add = (points, reason) => {
    score += points;
    reasons.push(reason);
  };
  const stats = [i.keyStatistics, i.ownerStatistics].filter((s) => s !== undefined);
  const total = (f) => sat(stats.reduce((acc, s) => acc + f(s), 0));
  const severe = total((s) => sat(sat(s.applicationFrauds + s.muleAccounts) + s.scammerAccounts));
  if (severe > 0) add(Math.min(sat(severe * 250), 500), 'FRAUD_MARKERS');
  const other = total((s) => sat(s.otherFrauds + s.unknownFrauds));
  if (other > 0) add(Math.min(sat(other * 100), 200), 'OTHER_FRAUD_MARKERS');
  if (stats.some((s) => s.distinctFraudReporters >= 2)) add(150, 'MULTIPLE_FRAUD_REPORTERS');
  const open = total((s) => s.openReports);
  if (open > 0) add(Math.min(sat(open * 75), 150), 'OPEN_INFRACTION_REPORTS');
  if (i.keyAgeDays === 0) add(150, 'NEW_KEY');
  else if (i.keyAgeDays !== undefined && i.keyAgeDays < 7) add(75, 'RECENT_KEY');
  if (i.accountAgeDays < 7) add(100, 'NEW_ACCOUNT');
  else if (i.accountAgeDays < 30) add(50, 'YOUNG_ACCOUNT');
  const v = i.velocity;
  if (v.count1h >= 10) add(150, 'HIGH_VELOCITY_1H');
  if (v.amount24h + i.amount > 20_000n * REAIS) add(100, 'HIGH_VOLUME_24H');
  if (v.distinctCounterparties24h >= 20) add(100, 'MANY_COUNTERPARTIES_24H');
  if (i.firstTimeCounterparty && i.amount >= 1_000n * REAIS) add(100, 'FIRST_TIME_HIGH_AMOUNT');
  if (within(i.localTime, 20 * 60, 6 * 60) && i.amount >= 1_000n * REAIS) add(50, 'NIGHT_HIGH_AMOUNT');
  score = Math.min(score, 1000);
  const s = BigInt(score);
  let action = 'allow';
  if (s >= paramInt(params, 'block-threshold', 700n)) action = 'block';
  else if (s >= paramInt(params, 'review-threshold', 400n)) action = 'review';
  return { score, action, reasons };
}

export const fraudTriage = { decide };
