"""pix-host's default fraud triage as a `fraud-triage-policy` component, in Python.

The same rules as `guests/default-fraud-triage` and `pix_policy::native::fraud_triage`: an
additive score, review from 400, block from 700. Counters saturate at u32 like the Rust twin.
"""

from wit_world import exports
from wit_world.imports import types
from wit_world.imports.types import FraudAction, FraudDecision

from pix_params import param_int, within

U32_MAX = 2**32 - 1
REAIS = 100


def sat(n: int) -> int:
    return min(n, U32_MAX)


def decide(i: types.FraudInput, params: list[types.Param]) -> FraudDecision:
    score = 0
    reasons: list[str] = []

    def add(points: int, reason: str) -> None:
        nonlocal score
        score += points
        reasons.append(reason)

    stats = [s for s in (i.key_statistics, i.owner_statistics) if s is not None]

    def total(f) -> int:
        return sat(sum(f(s) for s in stats))

    severe = total(lambda s: sat(sat(s.application_frauds + s.mule_accounts) + s.scammer_accounts))
    if severe > 0:
        add(min(sat(severe * 250), 500), "FRAUD_MARKERS")
    other = total(lambda s: sat(s.other_frauds + s.unknown_frauds))
    if other > 0:
        add(min(sat(other * 100), 200), "OTHER_FRAUD_MARKERS")
    if any(s.distinct_fraud_reporters >= 2 for s in stats):
        add(150, "MULTIPLE_FRAUD_REPORTERS")
    open_reports = total(lambda s: s.open_reports)
    if open_reports > 0:
        add(min(sat(open_reports * 75), 150), "OPEN_INFRACTION_REPORTS")
    if i.key_age_days == 0:
        add(150, "NEW_KEY")
    elif i.key_age_days is not None and i.key_age_days < 7:
        add(75, "RECENT_KEY")
    if i.account_age_days < 7:
        add(100, "NEW_ACCOUNT")
    elif i.account_age_days < 30:
        add(50, "YOUNG_ACCOUNT")
    v = i.velocity
    if v.count_1h >= 10:
        add(150, "HIGH_VELOCITY_1H")
    if v.amount_24h + i.amount > 20_000 * REAIS:
        add(100, "HIGH_VOLUME_24H")
    if v.distinct_counterparties_24h >= 20:
        add(100, "MANY_COUNTERPARTIES_24H")
    if i.first_time_counterparty and i.amount >= 1_000 * REAIS:
        add(100, "FIRST_TIME_HIGH_AMOUNT")
    if within(i.local_time, 20 * 60, 6 * 60) and i.amount >= 1_000 * REAIS:
        add(50, "NIGHT_HIGH_AMOUNT")
    score = min(score, 1000)
    if score >= param_int(params, "block-threshold", 700):
        action = FraudAction.BLOCK
    elif score >= param_int(params, "review-threshold", 400):
        action = FraudAction.REVIEW
    else:
        action = FraudAction.ALLOW
    return FraudDecision(score=score, action=action, reasons=reasons)


class FraudTriage(exports.FraudTriage):
    def decide(self, input: types.FraudInput, params: list[types.Param]) -> FraudDecision:
        return decide(input, params)
