"""pix-host's default fee table as a `fee-policy` component, in Python (componentize-py).

The same rules as the Rust guest `guests/default-fee` and `pix_policy::native::fee`; the host's
tests assert all three answer every conformance fixture identically. Money is `int` centavos.
"""

from wit_world import exports
from wit_world.imports import types
from wit_world.imports.types import FeeCharge, FeeDecision, Operation, PersonType, Purpose

from pix_params import param_int, param_text

DEFAULT_FEE_ACCOUNT = "@fees_revenue"


def bps_half_up(amount: int, bps: int) -> int:
    """`bps` basis points of `amount`, rounded half away from zero."""
    product = amount * bps
    q, r = divmod(abs(product), 10_000)
    if r * 2 >= 10_000:
        q += 1
    return q if product >= 0 else -q


def free(label: str) -> FeeDecision:
    return FeeDecision(fee=0, fee_account="", charge=FeeCharge.ON_TOP, label=label)


def decide(i: types.FeeInput, params: list[types.Param]) -> FeeDecision:
    account = param_text(params, "fee-account", DEFAULT_FEE_ACCOUNT)

    def charge(fee: int, how: FeeCharge, label: str) -> FeeDecision:
        return FeeDecision(fee=fee, fee_account=account, charge=how, label=label)

    if i.operation == Operation.REFUND:
        return free("free-refund")
    if i.intra_psp or i.operation == Operation.INTRA_PSP:
        return free("free-intra-psp")
    if i.operation == Operation.CASH_OUT:
        if i.payer_type == PersonType.NATURAL:
            if i.purpose in (Purpose.WITHDRAWAL, Purpose.CHANGE) and i.month_count >= 8:
                return charge(250, FeeCharge.ON_TOP, "pf-saque-troco")
            return free("free-pf-cash-out")
        if i.month_count < 100:
            return charge(150, FeeCharge.ON_TOP, "pj-cash-out-tier-1")
        if i.month_count < 1000:
            return charge(100, FeeCharge.ON_TOP, "pj-cash-out-tier-2")
        return charge(50, FeeCharge.ON_TOP, "pj-cash-out-tier-3")
    # Cash-in.
    if i.payee_type == PersonType.LEGAL:
        bps = min(max(param_int(params, "pj-cash-in-bps", 99), 0), 10_000)
        low = max(param_int(params, "pj-cash-in-min", 10), 0)
        high = max(param_int(params, "pj-cash-in-max", 1_000), low)
        fee = min(max(bps_half_up(i.amount, bps), low), high)
        return charge(min(fee, i.amount), FeeCharge.DEDUCTED, "pj-cash-in-0.99pct")
    if i.month_count >= 30:
        return charge(min(50, i.amount), FeeCharge.DEDUCTED, "pf-cash-in-over-30")
    return free("free-pf-cash-in")


class Fee(exports.Fee):
    def decide(self, input: types.FeeInput, params: list[types.Param]) -> FeeDecision:
        return decide(input, params)
