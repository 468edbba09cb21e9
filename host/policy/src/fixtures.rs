//! Conformance fixtures: inputs every policy of a kind must answer validly (within the limits,
//! with an answer that passes the contract checks) before it can be loaded. The values are not
//! prescribed, only their validity; the tests and benchmarks reuse these inputs.

use crate::types::*;

const NOON: LocalTime = LocalTime { minute_of_day: 12 * 60, weekday: Weekday::Wednesday };
const NIGHT: LocalTime = LocalTime { minute_of_day: 23 * 60 + 30, weekday: Weekday::Saturday };

/// Fee fixtures: every operation, both person types, tiers and edge amounts.
pub fn fee() -> Vec<(&'static str, FeeInput)> {
    let base = FeeInput {
        operation: Operation::CashOut,
        initiation: Initiation::Key,
        purpose: Purpose::Transfer,
        amount: 10_000,
        payer_type: PersonType::Natural,
        payee_type: PersonType::Natural,
        account_segment: "retail".into(),
        intra_psp: false,
        local_time: NOON,
        month_count: 0,
        month_volume: 0,
    };
    vec![
        ("pf-cash-out", base.clone()),
        (
            "pj-cash-out-high-tier",
            FeeInput { payer_type: PersonType::Legal, month_count: 5_000, month_volume: 900_000_000, ..base.clone() },
        ),
        (
            "pj-cash-in-one-centavo",
            FeeInput {
                operation: Operation::CashIn,
                payee_type: PersonType::Legal,
                amount: 1,
                initiation: Initiation::QrCode,
                ..base.clone()
            },
        ),
        (
            "pf-cash-in-many",
            FeeInput { operation: Operation::CashIn, month_count: 31, amount: 20, local_time: NIGHT, ..base.clone() },
        ),
        ("refund", FeeInput { operation: Operation::Refund, ..base.clone() }),
        (
            "intra-psp-large",
            FeeInput {
                operation: Operation::IntraPsp,
                intra_psp: true,
                amount: 100_000_000_000, // R$ 1 billion
                initiation: Initiation::Manual,
                ..base
            },
        ),
    ]
}

/// Refund-split fixtures: the spec's Cappta example, a fully covered refund, an impossible one.
pub fn refund_split() -> Vec<(&'static str, RefundSplitInput)> {
    let op = |alias: &str, role, credited, available| OriginalOperation {
        account_alias: alias.into(),
        role,
        credited,
        available,
    };
    vec![
        (
            "cappta-drained-customer",
            RefundSplitInput {
                refund_amount: 100_082,
                original_amount: 5_000_000,
                already_refunded: 0,
                operations: vec![
                    op("alias-conta-cliente", AccountRole::Customer, 4_900_000, 82),
                    op("alias-conta-fee", AccountRole::Fee, 100_000, 9_000_000),
                ],
            },
        ),
        (
            "customer-covers-all",
            RefundSplitInput {
                refund_amount: 5_000,
                original_amount: 10_000,
                already_refunded: 0,
                operations: vec![op("@customer", AccountRole::Customer, 9_900, 50_000)],
            },
        ),
        (
            "not-enough-anywhere",
            RefundSplitInput {
                refund_amount: 10_000,
                original_amount: 10_000,
                already_refunded: 0,
                operations: vec![
                    op("@customer", AccountRole::Customer, 9_900, 0),
                    op("@fees_revenue", AccountRole::Fee, 100, 0),
                ],
            },
        ),
    ]
}

/// Cash-in fixtures: an ordinary day-time Pix, blocked and closed accounts, a large night Pix.
pub fn cashin_acceptance() -> Vec<(&'static str, CashinInput)> {
    let base = CashinInput {
        amount: 25_000,
        payee_status: AccountStatus::Active,
        payee_type: PersonType::Natural,
        payer_ispb: "00000000".into(),
        payer_document_type: DocumentType::Cpf,
        same_owner: false,
        intra_psp: false,
        local_time: NOON,
        day_count: 2,
        day_volume: 40_000,
    };
    vec![
        ("day-time", base.clone()),
        ("blocked", CashinInput { payee_status: AccountStatus::Blocked, ..base.clone() }),
        ("closed", CashinInput { payee_status: AccountStatus::Closed, ..base.clone() }),
        (
            "night-large",
            CashinInput { amount: 500_000, local_time: NIGHT, payer_document_type: DocumentType::Cnpj, ..base },
        ),
    ]
}

/// Fraud fixtures: a clean payment, a marked key, a burst of activity.
pub fn fraud_triage() -> Vec<(&'static str, FraudInput)> {
    let base = FraudInput {
        direction: Direction::CashOut,
        amount: 15_000,
        key_type: Some(KeyType::Email),
        key_age_days: Some(400),
        key_statistics: Some(DictStatistics { settlements_d90: 40, ..DictStatistics::default() }),
        owner_statistics: None,
        counterparty_type: PersonType::Natural,
        first_time_counterparty: false,
        account_age_days: 900,
        velocity: Velocity::default(),
        local_time: NOON,
        account_segment: "retail".into(),
    };
    vec![
        ("clean", base.clone()),
        (
            "marked-key",
            FraudInput {
                key_age_days: Some(0),
                key_type: Some(KeyType::Evp),
                key_statistics: Some(DictStatistics {
                    mule_accounts: 2,
                    scammer_accounts: 1,
                    distinct_fraud_reporters: 3,
                    open_reports: 4,
                    total_fraud_amount: 1_200_000,
                    ..DictStatistics::default()
                }),
                owner_statistics: Some(DictStatistics { other_frauds: 5, ..DictStatistics::default() }),
                first_time_counterparty: true,
                amount: 900_000,
                local_time: NIGHT,
                ..base.clone()
            },
        ),
        (
            "burst-manual",
            FraudInput {
                direction: Direction::CashIn,
                key_type: None,
                key_age_days: None,
                key_statistics: None,
                account_age_days: 2,
                velocity: Velocity {
                    count_1h: 30,
                    amount_1h: 3_000_000,
                    count_24h: 80,
                    amount_24h: 9_000_000,
                    distinct_counterparties_24h: 45,
                },
                ..base
            },
        ),
    ]
}
