//! Native Rust twins of the default policies in `guests/sdk/src/defaults.rs`: the benchmark
//! baseline, the fee fail-safe, and a cross-check (tests assert both give the same answers).
//! Change them together.

use crate::types::*;

const fn reais(r: i64) -> Centavos {
    r * 100
}

/// `bps` of `amount`, half away from zero (the cash-in fee for legal persons).
fn bps_half_up(amount: Centavos, bps: i64) -> Centavos {
    let product = i128::from(amount) * i128::from(bps);
    let (q, r) = (product / 10_000, product % 10_000);
    let rounded = if r.abs() * 2 >= 10_000 { q + product.signum() } else { q };
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

fn decision(fee: Centavos, account: &str, charge: FeeCharge, label: &str) -> FeeDecision {
    FeeDecision { fee, fee_account: account.to_owned(), charge, label: label.to_owned() }
}

fn free(label: &str) -> FeeDecision {
    decision(0, "", FeeCharge::OnTop, label)
}

/// The account fees go to unless the tenant's `fee-account` parameter names another.
pub const DEFAULT_FEE_ACCOUNT: &str = "@fees_revenue";

/// The fee account the default table (and so the fee fail-safe) uses with these parameters.
pub fn fee_account(params: &Params) -> &str {
    params.text("fee-account").unwrap_or(DEFAULT_FEE_ACCOUNT)
}

/// Default fee table (see the SDK's `defaults::fee` for the rules).
pub fn fee(input: &FeeInput, params: &Params) -> FeeDecision {
    let account = fee_account(params);
    let on_top = |fee, label| decision(fee, account, FeeCharge::OnTop, label);
    let deducted = |fee, label| decision(fee, account, FeeCharge::Deducted, label);
    match input.operation {
        Operation::Refund => free("free-refund"),
        _ if input.intra_psp || input.operation == Operation::IntraPsp => free("free-intra-psp"),
        Operation::CashOut => match input.payer_type {
            PersonType::Natural
                if matches!(input.purpose, Purpose::Withdrawal | Purpose::Change) && input.month_count >= 8 =>
            {
                on_top(250, "pf-saque-troco")
            }
            PersonType::Natural => free("free-pf-cash-out"),
            PersonType::Legal => match input.month_count {
                0..100 => on_top(150, "pj-cash-out-tier-1"),
                100..1000 => on_top(100, "pj-cash-out-tier-2"),
                _ => on_top(50, "pj-cash-out-tier-3"),
            },
        },
        Operation::CashIn => match input.payee_type {
            PersonType::Legal => {
                let bps = params.int("pj-cash-in-bps").unwrap_or(99).clamp(0, 10_000);
                let min = params.int("pj-cash-in-min").unwrap_or(10).max(0);
                let max = params.int("pj-cash-in-max").unwrap_or(reais(10)).max(min);
                let fee = bps_half_up(input.amount, bps).clamp(min, max);
                deducted(fee.min(input.amount), "pj-cash-in-0.99pct")
            }
            PersonType::Natural if input.month_count >= 30 => deducted(50.min(input.amount), "pf-cash-in-over-30"),
            PersonType::Natural => free("free-pf-cash-in"),
        },
        Operation::IntraPsp => free("free-intra-psp"),
    }
}

/// Default refund split: customer accounts first, then the others in original order.
pub fn refund_split(input: &RefundSplitInput, _params: &Params) -> RefundSplitDecision {
    let reject =
        |code: &str, message: &str| RefundSplitDecision::Reject { code: code.to_owned(), message: message.to_owned() };
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
    RefundSplitDecision::Split { portions }
}

/// Default cash-in acceptance: closed/blocked accounts and night-time amounts above the limit
/// for natural persons are denied.
pub fn cashin_acceptance(input: &CashinInput, params: &Params) -> CashinDecision {
    let deny = |code: &str, spi: &str, message: &str| CashinDecision::Deny {
        code: code.to_owned(),
        spi_reason: spi.to_owned(),
        message: message.to_owned(),
    };
    match input.payee_status {
        AccountStatus::Closed => return deny("RECIPIENT_ACCOUNT_INVALID", "AC07", "account closed"),
        AccountStatus::Blocked => {
            return deny("RECIPIENT_ACCOUNT_INVALID", "AC06", "account blocked");
        }
        AccountStatus::Active => {}
    }
    let minute =
        |name, default: u16| params.int(name).map_or(default, |m| u16::try_from(m.clamp(0, 1439)).unwrap_or(0));
    let limit = params.int("nightly-limit").unwrap_or(reais(1_000));
    let (start, end) = (minute("night-start", 20 * 60), minute("night-end", 6 * 60));
    if input.payee_type == PersonType::Natural
        && !input.same_owner
        && input.local_time.within(start, end)
        && input.amount > limit
    {
        return deny("RECIPIENT_CANNOT_RECEIVE", "AM02", "above the nightly limit");
    }
    CashinDecision::Accept
}

/// Default fraud triage: additive score, review from 400, block from 700.
pub fn fraud_triage(input: &FraudInput, params: &Params) -> FraudDecision {
    let mut score: u32 = 0;
    let mut reasons: Vec<String> = Vec::new();
    let mut add = |points: u32, reason: &str| {
        score += points;
        reasons.push(reason.to_owned());
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
    if input.local_time.within(20 * 60, 6 * 60) && input.amount >= reais(1_000) {
        add(50, "NIGHT_HIGH_AMOUNT");
    }
    let score = score.min(1000);
    let action = if i64::from(score) >= params.int("block-threshold").unwrap_or(700) {
        FraudAction::Block
    } else if i64::from(score) >= params.int("review-threshold").unwrap_or(400) {
        FraudAction::Review
    } else {
        FraudAction::Allow
    };
    FraudDecision { score: u16::try_from(score).unwrap_or(1000), action, reasons }
}
