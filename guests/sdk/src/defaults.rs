//! pix-host's default rules. The host has a native twin of each (`pix_policy::native`) and its
//! tests check that both agree, so change them together.
//!
//! Parameters (all optional):
//! - fee: `fee-account` (text, default `@fees_revenue`).
//! - cashin-acceptance: `nightly-limit` (centavos, default R$ 1.000,00), `night-start` and
//!   `night-end` (minutes of day, default 20:00 and 06:00).
//! - fraud-triage: `review-threshold` (default 400) and `block-threshold` (default 700).

use crate::{
    AccountRole, AccountStatus, CashinDecision, CashinInput, DictStatistics, FeeDecision, FeeInput, FraudAction,
    FraudDecision, FraudInput, Operation, Params, PersonType, Purpose, RefundPortion, RefundRejection,
    RefundSplitDecision, RefundSplitInput, Rounding, apply_bps, hm, reais,
};

/// Default fee table.
///
/// - Refunds and intra-PSP transfers are free.
/// - Cash-out by a natural person is free (BCB Resolution 19/2020), except Pix Saque/Troco after
///   the 8 free ones of the month: R$ 2,50 on top.
/// - Cash-out by a legal person: R$ 1,50 / 1,00 / 0,50 on top for the 1st–100th / 101st–1000th /
///   later cash-outs of the month.
/// - Cash-in to a legal person: 0.99 % (half-up), at least R$ 0,10 and at most R$ 10,00,
///   deducted from the amount (parameters `pj-cash-in-bps`, `pj-cash-in-min`, `pj-cash-in-max`).
/// - Cash-in to a natural person: free for the first 30 of the month, then R$ 0,50 deducted.
/// - A deducted fee never exceeds the amount.
pub fn fee(input: &FeeInput, params: &Params) -> FeeDecision {
    let account = params.text("fee-account", "@fees_revenue");
    match input.operation {
        Operation::Refund => FeeDecision::free("free-refund"),
        _ if input.intra_psp || input.operation == Operation::IntraPsp => FeeDecision::free("free-intra-psp"),
        Operation::CashOut => match input.payer_type {
            PersonType::Natural
                if matches!(input.purpose, Purpose::Withdrawal | Purpose::Change) && input.month_count >= 8 =>
            {
                FeeDecision::on_top(250, account, "pf-saque-troco")
            }
            PersonType::Natural => FeeDecision::free("free-pf-cash-out"),
            PersonType::Legal => match input.month_count {
                0..100 => FeeDecision::on_top(150, account, "pj-cash-out-tier-1"),
                100..1000 => FeeDecision::on_top(100, account, "pj-cash-out-tier-2"),
                _ => FeeDecision::on_top(50, account, "pj-cash-out-tier-3"),
            },
        },
        Operation::CashIn => match input.payee_type {
            PersonType::Legal => {
                let (bps, min, max) = pj_cash_in_rate(params);
                let fee = apply_bps(input.amount, bps, Rounding::HalfUp).clamp(min, max);
                FeeDecision::deducted(fee.min(input.amount), account, "pj-cash-in-0.99pct")
            }
            PersonType::Natural if input.month_count >= 30 => {
                FeeDecision::deducted(50.min(input.amount), account, "pf-cash-in-over-30")
            }
            PersonType::Natural => FeeDecision::free("free-pf-cash-in"),
        },
        Operation::IntraPsp => FeeDecision::free("free-intra-psp"),
    }
}

/// The legal-person cash-in rate: `pj-cash-in-bps` (default 99), at least `pj-cash-in-min`
/// (default R$ 0,10) and at most `pj-cash-in-max` (default R$ 10,00) centavos.
fn pj_cash_in_rate(params: &Params) -> (i64, i64, i64) {
    let bps = params.int("pj-cash-in-bps", 99).clamp(0, 10_000);
    let min = params.int("pj-cash-in-min", 10).max(0);
    (bps, min, params.int("pj-cash-in-max", reais(10)).max(min))
}

/// Default refund split: drain the customer account(s) first, then the other accounts in their
/// original order; from each account at most what it received and what it still has.
pub fn refund_split(input: &RefundSplitInput, _params: &Params) -> RefundSplitDecision {
    let reject = |code: &str, message: &str| {
        RefundSplitDecision::Reject(RefundRejection { code: code.into(), message: message.into() })
    };
    if input.refund_amount.saturating_add(input.already_refunded) > input.original_amount {
        return reject("REFUND_EXCEEDS_ORIGINAL", "refunds would exceed the original amount");
    }
    let customer_first = input
        .operations
        .iter()
        .filter(|op| op.role == AccountRole::Customer)
        .chain(input.operations.iter().filter(|op| op.role != AccountRole::Customer));
    let mut remaining = input.refund_amount;
    let mut portions = Vec::new();
    for op in customer_first {
        let take = remaining.min(op.credited).min(op.available.max(0));
        if take > 0 {
            portions.push(RefundPortion { account_alias: op.account_alias.clone(), amount: take });
            remaining -= take;
        }
    }
    if remaining > 0 {
        return reject("INSUFFICIENT_BALANCE", "the original accounts do not hold enough to refund");
    }
    RefundSplitDecision::Split(portions)
}

/// Default cash-in acceptance: deny closed and blocked accounts, and, for natural persons at
/// night, any single Pix above the nightly limit unless payer and payee are the same person.
pub fn cashin_acceptance(input: &CashinInput, params: &Params) -> CashinDecision {
    match input.payee_status {
        AccountStatus::Closed => {
            return CashinDecision::deny("RECIPIENT_ACCOUNT_INVALID", "AC07", "account closed");
        }
        AccountStatus::Blocked => {
            return CashinDecision::deny("RECIPIENT_ACCOUNT_INVALID", "AC06", "account blocked");
        }
        AccountStatus::Active => {}
    }
    let limit = params.int("nightly-limit", reais(1_000));
    let night_start = clamp_minute(params.int("night-start", i64::from(hm(20, 0))));
    let night_end = clamp_minute(params.int("night-end", i64::from(hm(6, 0))));
    if input.payee_type == PersonType::Natural
        && !input.same_owner
        && input.local_time.within(night_start, night_end)
        && input.amount > limit
    {
        return CashinDecision::deny("RECIPIENT_CANNOT_RECEIVE", "AM02", "above the nightly limit");
    }
    CashinDecision::Accept
}

fn clamp_minute(m: i64) -> u16 {
    u16::try_from(m.clamp(0, 1439)).unwrap_or(0)
}

/// Default fraud triage: additive score from DICT fraud markers and reports, key and account
/// age, velocity and amount; review from 400, block from 700 (both parameters).
pub fn fraud_triage(input: &FraudInput, params: &Params) -> FraudDecision {
    let mut score: u32 = 0;
    let mut reasons: Vec<String> = Vec::new();
    let mut add = |points: u32, reason: &str| {
        score += points;
        reasons.push(reason.into());
    };
    let stats: Vec<&DictStatistics> = [&input.key_statistics, &input.owner_statistics].into_iter().flatten().collect();
    let sum = |f: fn(&DictStatistics) -> u32| -> u32 { stats.iter().map(|s| f(s)).fold(0, u32::saturating_add) };
    let severe = sum(|s| s.application_frauds.saturating_add(s.mule_accounts).saturating_add(s.scammer_accounts));
    if severe > 0 {
        add(severe.saturating_mul(250).min(500), "FRAUD_MARKERS");
    }
    let other = sum(|s| s.other_frauds.saturating_add(s.unknown_frauds));
    if other > 0 {
        add(other.saturating_mul(100).min(200), "OTHER_FRAUD_MARKERS");
    }
    if stats.iter().any(|s| s.distinct_fraud_reporters >= 2) {
        add(150, "MULTIPLE_FRAUD_REPORTERS");
    }
    let open = sum(|s| s.open_reports);
    if open > 0 {
        add(open.saturating_mul(75).min(150), "OPEN_INFRACTION_REPORTS");
    }
    match input.key_age_days {
        Some(0) => add(150, "NEW_KEY"),
        Some(1..7) => add(75, "RECENT_KEY"),
        _ => {}
    }
    match input.account_age_days {
        0..7 => add(100, "NEW_ACCOUNT"),
        7..30 => add(50, "YOUNG_ACCOUNT"),
        _ => {}
    }
    if input.velocity.count_1h >= 10 {
        add(150, "HIGH_VELOCITY_1H");
    }
    if input.velocity.amount_24h.saturating_add(input.amount) > reais(20_000) {
        add(100, "HIGH_VOLUME_24H");
    }
    if input.velocity.distinct_counterparties_24h >= 20 {
        add(100, "MANY_COUNTERPARTIES_24H");
    }
    if input.first_time_counterparty && input.amount >= reais(1_000) {
        add(100, "FIRST_TIME_HIGH_AMOUNT");
    }
    if input.local_time.within(hm(20, 0), hm(6, 0)) && input.amount >= reais(1_000) {
        add(50, "NIGHT_HIGH_AMOUNT");
    }
    let score = score.min(1000);
    let action = if i64::from(score) >= params.int("block-threshold", 700) {
        FraudAction::Block
    } else if i64::from(score) >= params.int("review-threshold", 400) {
        FraudAction::Review
    } else {
        FraudAction::Allow
    };
    FraudDecision { score: u16::try_from(score).unwrap_or(1000), action, reasons }
}
