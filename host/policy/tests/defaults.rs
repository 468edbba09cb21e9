//! The shipped default policies and the example institution, on fixtures; and the cross-check
//! that the wasm defaults and the native defaults give identical answers.

mod common;

use std::sync::OnceLock;

use pix_policy::*;

struct Shipped {
    fee: LoadedPolicy,
    refund_split: LoadedPolicy,
    cashin: LoadedPolicy,
    fraud: LoadedPolicy,
    example: LoadedPolicy,
}

fn shipped() -> &'static Shipped {
    static SHIPPED: OnceLock<Shipped> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let loaded = load_manifest(common::engine(), &common::policies_dir()).expect("manifest");
        let get = |name: &str| {
            loaded
                .iter()
                .find(|(e, _)| e.name == name)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| panic!("{name} not in manifest"))
        };
        Shipped {
            fee: get("default-fee"),
            refund_split: get("default-refund-split"),
            cashin: get("default-cashin-acceptance"),
            fraud: get("default-fraud-triage"),
            example: get("example-institution"),
        }
    })
}

fn fee_input() -> FeeInput {
    FeeInput {
        operation: Operation::CashOut,
        initiation: Initiation::Key,
        purpose: Purpose::Transfer,
        amount: 10_000,
        payer_type: PersonType::Natural,
        payee_type: PersonType::Natural,
        account_segment: String::new(),
        intra_psp: false,
        local_time: LocalTime::at(12, 0, Weekday::Monday),
        month_count: 0,
        month_volume: 0,
    }
}

fn fee(policy: &LoadedPolicy, input: FeeInput) -> (i64, FeeCharge, String) {
    let d = common::engine().decide_fee(policy, &input).expect("fee decides");
    (d.fee, d.charge, d.label)
}

#[test]
fn manifest_lists_every_shipped_policy_with_its_kinds_and_hash() {
    let loaded = load_manifest(common::engine(), &common::policies_dir()).expect("manifest");
    let names: Vec<&str> = loaded.iter().map(|(e, _)| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "default-fee",
            "default-refund-split",
            "default-cashin-acceptance",
            "default-fraud-triage",
            "example-institution"
        ]
    );
    for (entry, policy) in &loaded {
        assert_eq!(entry.sha256, policy.sha256());
    }
    assert_eq!(shipped().example.kinds(), PolicyKind::ALL);
    assert_eq!(shipped().fee.kinds(), [PolicyKind::Fee]);
}

#[test]
fn default_fee_table() {
    let p = &shipped().fee;
    let pj_out = |month_count| FeeInput { payer_type: PersonType::Legal, month_count, ..fee_input() };
    let pj_in =
        |amount| FeeInput { operation: Operation::CashIn, payee_type: PersonType::Legal, amount, ..fee_input() };
    let pf_in = |month_count| FeeInput { operation: Operation::CashIn, month_count, ..fee_input() };
    let on_top = FeeCharge::OnTop;
    let deducted = FeeCharge::Deducted;
    assert_eq!(fee(p, fee_input()), (0, on_top, "free-pf-cash-out".into()));
    assert_eq!(fee(p, pj_out(0)), (150, on_top, "pj-cash-out-tier-1".into()));
    assert_eq!(fee(p, pj_out(99)), (150, on_top, "pj-cash-out-tier-1".into()));
    assert_eq!(fee(p, pj_out(100)), (100, on_top, "pj-cash-out-tier-2".into()));
    assert_eq!(fee(p, pj_out(1000)), (50, on_top, "pj-cash-out-tier-3".into()));
    // 0.99 % half-up, clamped to R$ 0,10..R$ 10,00 and never above the amount.
    assert_eq!(fee(p, pj_in(10_000)).0, 99);
    assert_eq!(fee(p, pj_in(10_051)).0, 100);
    assert_eq!(fee(p, pj_in(500)).0, 10);
    assert_eq!(fee(p, pj_in(2_000_000)).0, 1_000);
    assert_eq!(fee(p, pj_in(3)), (3, deducted, "pj-cash-in-0.99pct".into()));
    assert_eq!(fee(p, pf_in(29)), (0, on_top, "free-pf-cash-in".into()));
    assert_eq!(fee(p, pf_in(30)), (50, deducted, "pf-cash-in-over-30".into()));
    let saque = |month_count| FeeInput { purpose: Purpose::Withdrawal, month_count, ..fee_input() };
    assert_eq!(fee(p, saque(7)).0, 0);
    assert_eq!(fee(p, saque(8)), (250, on_top, "pf-saque-troco".into()));
    let refund = FeeInput { operation: Operation::Refund, payer_type: PersonType::Legal, ..fee_input() };
    assert_eq!(fee(p, refund).2, "free-refund");
    let intra = FeeInput { intra_psp: true, ..pj_out(0) };
    assert_eq!(fee(p, intra), (0, on_top, "free-intra-psp".into()));
}

#[test]
fn fee_account_comes_from_the_tenant_parameters() {
    let engine = common::engine();
    let bound = engine
        .with_params(&shipped().fee, Params::default().with_text("fee-account", "@tarifas"))
        .expect("bind params");
    let input = FeeInput { payer_type: PersonType::Legal, ..fee_input() };
    let d = engine.decide_fee(&bound, &input).expect("fee");
    assert_eq!((d.fee, d.fee_account.as_str()), (150, "@tarifas"));
    let unbound = engine.decide_fee(&shipped().fee, &input).expect("fee");
    assert_eq!(unbound.fee_account, "@fees_revenue");
}

fn op(alias: &str, role: AccountRole, credited: i64, available: i64) -> OriginalOperation {
    OriginalOperation { account_alias: alias.into(), role, credited, available }
}

fn split(portions: &[(&str, i64)]) -> RefundSplitDecision {
    RefundSplitDecision::Split {
        portions: portions
            .iter()
            .map(|(a, amount)| RefundPortion { account_alias: (*a).into(), amount: *amount })
            .collect(),
    }
}

#[test]
fn default_refund_split_drains_the_customer_first() {
    let engine = common::engine();
    let p = &shipped().refund_split;
    // The spec's Cappta example: R$ 1.000,82 with R$ 0,82 left in the customer account.
    let cappta = RefundSplitInput {
        refund_amount: 100_082,
        original_amount: 5_000_000,
        already_refunded: 0,
        operations: vec![
            op("alias-conta-cliente", AccountRole::Customer, 4_900_000, 82),
            op("alias-conta-fee", AccountRole::Fee, 100_000, 7_000_000),
        ],
    };
    assert_eq!(
        engine.decide_refund_split(p, &cappta).expect("split"),
        split(&[("alias-conta-cliente", 82), ("alias-conta-fee", 100_000)])
    );
    // Customer first even when listed last; the others keep their original order.
    let reordered = RefundSplitInput {
        refund_amount: 3_000,
        original_amount: 10_000,
        already_refunded: 0,
        operations: vec![
            op("@fee", AccountRole::Fee, 1_000, 50_000),
            op("@seller", AccountRole::Other, 8_000, 50_000),
            op("@customer", AccountRole::Customer, 1_000, 500),
        ],
    };
    assert_eq!(
        engine.decide_refund_split(p, &reordered).expect("split"),
        split(&[("@customer", 500), ("@fee", 1_000), ("@seller", 1_500)])
    );
    let short = RefundSplitInput {
        refund_amount: 10_000,
        original_amount: 10_000,
        already_refunded: 0,
        operations: vec![op("@customer", AccountRole::Customer, 10_000, 9_999)],
    };
    assert!(matches!(
        engine.decide_refund_split(p, &short).expect("decides"),
        RefundSplitDecision::Reject { code, .. } if code == "INSUFFICIENT_BALANCE"
    ));
    let too_much = RefundSplitInput {
        already_refunded: 1,
        operations: vec![op("@customer", AccountRole::Customer, 10_000, 10_000)],
        ..short
    };
    assert!(matches!(
        engine.decide_refund_split(p, &too_much).expect("decides"),
        RefundSplitDecision::Reject { code, .. } if code == "REFUND_EXCEEDS_ORIGINAL"
    ));
}

fn cashin_input() -> CashinInput {
    CashinInput {
        amount: 150_000,
        payee_status: AccountStatus::Active,
        payee_type: PersonType::Natural,
        payer_ispb: "60701190".into(),
        payer_document_type: DocumentType::Cpf,
        same_owner: false,
        intra_psp: false,
        local_time: LocalTime::at(14, 0, Weekday::Tuesday),
        day_count: 0,
        day_volume: 0,
    }
}

fn denial_codes(d: CashinDecision) -> Option<(String, String)> {
    match d {
        CashinDecision::Accept => None,
        CashinDecision::Deny { code, spi_reason, .. } => Some((code, spi_reason)),
    }
}

#[test]
fn default_cashin_acceptance() {
    let engine = common::engine();
    let p = &shipped().cashin;
    let decide = |input: CashinInput| denial_codes(engine.decide_cashin_acceptance(p, &input).expect("decides"));
    let deny = |code: &str, spi: &str| Some((code.to_owned(), spi.to_owned()));
    let night = LocalTime::at(22, 15, Weekday::Friday);
    assert_eq!(decide(cashin_input()), None);
    assert_eq!(
        decide(CashinInput { payee_status: AccountStatus::Blocked, ..cashin_input() }),
        deny("RECIPIENT_ACCOUNT_INVALID", "AC06")
    );
    assert_eq!(
        decide(CashinInput { payee_status: AccountStatus::Closed, ..cashin_input() }),
        deny("RECIPIENT_ACCOUNT_INVALID", "AC07")
    );
    let at_night = |amount| CashinInput { amount, local_time: night, ..cashin_input() };
    assert_eq!(decide(at_night(100_001)), deny("RECIPIENT_CANNOT_RECEIVE", "AM02"));
    assert_eq!(decide(at_night(100_000)), None, "the limit itself is allowed");
    assert_eq!(
        decide(CashinInput { local_time: LocalTime::at(5, 59, Weekday::Sunday), ..at_night(200_000) }),
        deny("RECIPIENT_CANNOT_RECEIVE", "AM02")
    );
    assert_eq!(decide(CashinInput { local_time: LocalTime::at(6, 0, Weekday::Sunday), ..at_night(200_000) }), None);
    assert_eq!(decide(CashinInput { payee_type: PersonType::Legal, ..at_night(900_000) }), None);
    assert_eq!(decide(CashinInput { same_owner: true, ..at_night(900_000) }), None);
    let raised = engine.with_params(p, Params::default().with_int("nightly-limit", 500_000)).expect("bind");
    let d = engine.decide_cashin_acceptance(&raised, &at_night(400_000)).expect("decides");
    assert_eq!(denial_codes(d), None);
}

fn fraud(input: &FraudInput, policy: &LoadedPolicy) -> FraudDecision {
    common::engine().decide_fraud_triage(policy, input).expect("fraud decides")
}

#[test]
fn default_fraud_triage() {
    let p = &shipped().fraud;
    let inputs: Vec<FraudInput> = fixtures::fraud_triage().into_iter().map(|(_, i)| i).collect();
    let clean = fraud(&inputs[0], p);
    assert_eq!((clean.score, clean.action, clean.reasons.len()), (0, FraudAction::Allow, 0));
    let marked = fraud(&inputs[1], p);
    assert_eq!(marked.score, 1000);
    assert_eq!(marked.action, FraudAction::Block);
    for reason in [
        "FRAUD_MARKERS",
        "OTHER_FRAUD_MARKERS",
        "MULTIPLE_FRAUD_REPORTERS",
        "OPEN_INFRACTION_REPORTS",
        "NEW_KEY",
        "FIRST_TIME_HIGH_AMOUNT",
        "NIGHT_HIGH_AMOUNT",
    ] {
        assert!(marked.reasons.iter().any(|r| r == reason), "{reason}");
    }
    // 100 (new account) + 150 (velocity) + 100 (24h volume) + 100 (counterparties) = 450.
    let burst = fraud(&inputs[2], p);
    assert_eq!((burst.score, burst.action), (450, FraudAction::Review));
    let young = FraudInput { key_age_days: Some(3), ..inputs[0].clone() };
    let d = fraud(&young, p);
    assert_eq!((d.score, d.reasons), (75, vec!["RECENT_KEY".to_owned()]));
    let strict = common::engine().with_params(p, Params::default().with_int("review-threshold", 50)).expect("bind");
    assert_eq!(fraud(&young, &strict).action, FraudAction::Review);
}

#[test]
fn example_institution_customises_the_defaults() {
    let engine = common::engine();
    let example = &shipped().example;
    let merchant = FeeInput {
        operation: Operation::CashIn,
        payee_type: PersonType::Legal,
        account_segment: "merchant".into(),
        amount: 50_000,
        ..fee_input()
    };
    let d = engine.decide_fee(example, &merchant).expect("fee");
    assert_eq!((d.fee, d.label.as_str()), (395, "merchant-cash-in-0.79pct"));
    let retail = FeeInput { account_segment: "retail".into(), ..merchant };
    assert_eq!(
        engine.decide_fee(example, &retail).expect("fee"),
        engine.decide_fee(&shipped().fee, &retail).expect("fee")
    );
    // Nightly limit R$ 500,00 instead of R$ 1.000,00.
    let night = CashinInput { amount: 60_000, local_time: LocalTime::at(23, 0, Weekday::Monday), ..cashin_input() };
    let ex = engine.decide_cashin_acceptance(example, &night).expect("cashin");
    let default = engine.decide_cashin_acceptance(&shipped().cashin, &night).expect("cashin");
    assert_eq!(denial_codes(ex), Some(("RECIPIENT_CANNOT_RECEIVE".into(), "AM02".into())));
    assert_eq!(denial_codes(default), None);
    // Reviews from 300 (default 400), and blocks a big first payment to a brand-new key.
    let base = fixtures::fraud_triage().remove(0).1;
    let light = FraudInput {
        velocity: Velocity::default(),
        account_age_days: 10,
        key_age_days: Some(2),
        first_time_counterparty: true,
        amount: 150_000,
        ..base
    };
    // 75 + 50 + 100 = 225 < 300: allowed by both; with NEW_KEY instead of RECENT_KEY: 300.
    assert_eq!(fraud(&light, example).action, FraudAction::Allow);
    let new_key = FraudInput { key_age_days: Some(0), ..light };
    assert_eq!(fraud(&new_key, &shipped().fraud).action, FraudAction::Allow);
    assert_eq!(fraud(&new_key, example).action, FraudAction::Review);
    let big_first = FraudInput { amount: 600_000, ..new_key };
    let d = fraud(&big_first, example);
    assert_eq!(d.action, FraudAction::Block);
    assert!(d.reasons.iter().any(|r| r == "NEW_KEY_FIRST_HIGH_PAYMENT"));
}

/// Deterministic xorshift so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn amount(&mut self) -> i64 {
        // Mostly small, sometimes huge, always > 0.
        match self.below(4) {
            0 => 1 + self.below(100) as i64,
            1 => 1 + self.below(200_000) as i64,
            2 => 1 + self.below(10_000_000) as i64,
            _ => 1 + self.below(1 << 40) as i64,
        }
    }
    fn time(&mut self) -> LocalTime {
        LocalTime {
            minute_of_day: self.below(1440) as u16,
            weekday: self.pick(&[Weekday::Monday, Weekday::Saturday, Weekday::Sunday]),
        }
    }
    fn person(&mut self) -> PersonType {
        self.pick(&[PersonType::Natural, PersonType::Legal])
    }
    fn stats(&mut self) -> Option<DictStatistics> {
        (self.below(3) > 0).then(|| DictStatistics {
            settlements_d90: self.below(500) as u32,
            application_frauds: self.below(2) as u32,
            mule_accounts: self.below(2) as u32,
            scammer_accounts: self.below(2) as u32,
            other_frauds: self.below(3) as u32,
            unknown_frauds: self.below(2) as u32,
            total_fraud_amount: self.below(1_000_000) as i64,
            distinct_fraud_reporters: self.below(4) as u32,
            open_reports: self.below(3) as u32,
            open_reports_distinct_reporters: self.below(3) as u32,
            rejected_reports: self.below(3) as u32,
        })
    }
}

#[test]
fn wasm_and_native_defaults_agree_on_random_inputs() {
    let engine = common::engine();
    let s = shipped();
    let params = Params::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..400 {
        let input = FeeInput {
            operation: rng.pick(&[Operation::CashOut, Operation::CashIn, Operation::Refund, Operation::IntraPsp]),
            initiation: rng.pick(&[Initiation::Key, Initiation::QrCode, Initiation::Manual]),
            purpose: rng.pick(&[Purpose::Transfer, Purpose::Withdrawal, Purpose::Change]),
            amount: rng.amount(),
            payer_type: rng.person(),
            payee_type: rng.person(),
            account_segment: rng.pick(&["", "retail", "merchant"]).into(),
            intra_psp: rng.below(5) == 0,
            local_time: rng.time(),
            month_count: rng.pick(&[0, 7, 8, 29, 30, 99, 100, 999, 1000, 5000]),
            month_volume: rng.amount(),
        };
        let wasm = engine.decide_fee(&s.fee, &input).expect("fee");
        assert_eq!(wasm, native::fee(&input, &params), "{input:?}");
    }
    for _ in 0..400 {
        let n = 1 + rng.below(4) as usize;
        let operations: Vec<OriginalOperation> = (0..n)
            .map(|i| {
                let credited = rng.amount().min(1_000_000);
                OriginalOperation {
                    account_alias: format!("@acc-{i}"),
                    role: rng.pick(&[AccountRole::Customer, AccountRole::Fee, AccountRole::Other]),
                    credited,
                    available: rng.below(2_000_000) as i64 - 100_000,
                }
            })
            .collect();
        let original: i64 = operations.iter().map(|o| o.credited).sum();
        let input = RefundSplitInput {
            refund_amount: 1 + rng.below(original as u64 + 10) as i64,
            original_amount: original,
            already_refunded: rng.pick(&[0, 0, 100, 10_000]),
            operations,
        };
        let wasm = engine.decide_refund_split(&s.refund_split, &input).expect("split");
        assert_eq!(wasm, native::refund_split(&input, &params), "{input:?}");
    }
    for _ in 0..400 {
        let input = CashinInput {
            amount: rng.amount(),
            payee_status: rng.pick(&[
                AccountStatus::Active,
                AccountStatus::Active,
                AccountStatus::Blocked,
                AccountStatus::Closed,
            ]),
            payee_type: rng.person(),
            payer_ispb: format!("{:08}", rng.below(100_000_000)),
            payer_document_type: rng.pick(&[DocumentType::Cpf, DocumentType::Cnpj]),
            same_owner: rng.below(4) == 0,
            intra_psp: rng.below(4) == 0,
            local_time: rng.time(),
            day_count: rng.below(50) as u32,
            day_volume: rng.amount(),
        };
        let wasm = engine.decide_cashin_acceptance(&s.cashin, &input).expect("cashin");
        assert_eq!(wasm, native::cashin_acceptance(&input, &params), "{input:?}");
    }
    for _ in 0..400 {
        let input = FraudInput {
            direction: rng.pick(&[Direction::CashOut, Direction::CashIn]),
            amount: rng.amount(),
            key_type: rng.pick(&[None, Some(KeyType::Evp), Some(KeyType::Phone)]),
            key_age_days: rng.pick(&[None, Some(0), Some(1), Some(6), Some(7), Some(365)]),
            key_statistics: rng.stats(),
            owner_statistics: rng.stats(),
            counterparty_type: rng.person(),
            first_time_counterparty: rng.below(2) == 0,
            account_age_days: rng.pick(&[0, 6, 7, 29, 30, 1000]),
            velocity: Velocity {
                count_1h: rng.below(15) as u32,
                amount_1h: rng.amount(),
                count_24h: rng.below(100) as u32,
                amount_24h: rng.below(3_000_000) as i64,
                distinct_counterparties_24h: rng.below(30) as u32,
            },
            local_time: rng.time(),
            account_segment: rng.pick(&["", "retail", "private"]).into(),
        };
        let wasm = engine.decide_fraud_triage(&s.fraud, &input).expect("fraud");
        assert_eq!(wasm, native::fraud_triage(&input, &params), "{input:?}");
    }
}
