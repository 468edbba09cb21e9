// Hostile test guest in JavaScript: spins forever when `account-segment` is "hostile" (fuel or
// the epoch deadline must stop it), otherwise a flat fee, so it passes the load-time conformance
// fixtures and misbehaves only when a test asks it to.

function decide(i) {
  if (i.accountSegment === 'hostile') {
    let x = Number(i.amount);
    for (;;) x = (Math.imul(x, 1103515245) + 12345) | 0;
  }
  return { fee: 0n, feeAccount: '', charge: 'on-top', label: 'js-hostile-loop' };
}

export const fee = { decide };
