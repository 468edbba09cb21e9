//! Hostile guests are contained with the right typed error, and the engine keeps serving.

mod common;

use std::time::{Duration, Instant};

use pix_policy::*;

fn fee_input(segment: &str) -> FeeInput {
    FeeInput {
        operation: Operation::CashOut,
        initiation: Initiation::QrCode,
        purpose: Purpose::Transfer,
        amount: 12_345,
        payer_type: PersonType::Legal,
        payee_type: PersonType::Natural,
        account_segment: segment.into(),
        intra_psp: false,
        local_time: LocalTime::at(10, 30, Weekday::Thursday),
        month_count: 3,
        month_volume: 50_000,
    }
}

/// The engine still decides normally with a well-behaved policy.
fn assert_engine_serves(engine: &PolicyEngine) {
    let policy = engine.load(&common::wasm("default-fee.wasm")).expect("default fee loads");
    let d = engine.decide_fee(&policy, &fee_input("retail")).expect("engine keeps serving");
    assert_eq!(d.fee, 150);
}

#[test]
fn infinite_loop_runs_out_of_fuel_and_fails_safe() {
    let engine = common::engine();
    let policy = common::load("hostile/hostile-loop.wasm").expect("passes conformance");
    let started = Instant::now();
    let err = engine.decide_fee(&policy, &fee_input("hostile")).expect_err("must not finish");
    assert_eq!(err, PolicyError::OutOfFuel { fuel: 10_000_000 });
    assert!(started.elapsed() < Duration::from_secs(2));
    // The same policy still answers inputs that do not trigger the loop.
    assert_eq!(engine.decide_fee(&policy, &fee_input("retail")).expect("fine").fee, 150);
    let (decision, outcome) = engine.fee_or_failsafe(&policy, &fee_input("hostile"));
    assert_eq!(decision, native::fee(&fee_input("hostile"), &Params::default()));
    assert_eq!(outcome, Outcome::FailSafe(err));
    assert_engine_serves(engine);
}

#[test]
fn epoch_deadline_stops_a_loop_when_fuel_is_plentiful() {
    let engine = PolicyEngine::new(PolicyLimits {
        fuel: 1 << 50,
        deadline: Duration::from_millis(20),
        max_concurrent_instances: 8,
        ..PolicyLimits::default()
    })
    .expect("engine");
    let policy = engine.load(&common::wasm("hostile/hostile-loop.wasm")).expect("loads");
    let started = Instant::now();
    let err = engine.decide_fee(&policy, &fee_input("hostile")).expect_err("must be interrupted");
    let took = started.elapsed();
    assert_eq!(err, PolicyError::Deadline { millis: 20 });
    assert!(took >= Duration::from_millis(15), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_engine_serves(&engine);
}

#[test]
fn memory_bomb_hits_the_memory_cap() {
    let engine = common::engine();
    let policy = common::load("hostile/hostile-memory.wasm").expect("loads");
    let err = engine.decide_fee(&policy, &fee_input("hostile")).expect_err("must not fit");
    assert_eq!(err, PolicyError::MemoryLimit { bytes: 16 << 20 });
    assert_engine_serves(engine);
}

#[test]
fn panic_is_a_trap_carrying_the_guest_message() {
    let engine = common::engine();
    let policy = common::load("hostile/hostile-panic.wasm").expect("loads");
    match engine.decide_fee(&policy, &fee_input("hostile")) {
        Err(PolicyError::Trap { stderr, .. }) => {
            assert!(stderr.contains("hostile guest panicked on purpose"), "stderr was {stderr:?}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_engine_serves(engine);
}

#[test]
fn oversized_answer_is_rejected() {
    let engine = common::engine();
    let policy = common::load("hostile/hostile-oversized.wasm").expect("loads");
    let err = engine.decide_fee(&policy, &fee_input("hostile")).expect_err("1 MiB label");
    assert_eq!(err, PolicyError::InvalidOutput("label is 1048576 bytes, limit 64".into()));
    assert_engine_serves(engine);
}

#[test]
fn filesystem_and_socket_imports_are_refused_at_load() {
    for (file, wanted) in
        [("hostile/hostile-fs.wasm", "wasi:filesystem/"), ("hostile/hostile-net.wasm", "wasi:sockets/")]
    {
        match common::load(file) {
            Err(err @ PolicyError::ForbiddenImport { .. }) => {
                assert!(err.to_string().contains(wanted), "{file}: {err}");
            }
            other => panic!("{file}: expected ForbiddenImport, got {other:?}"),
        }
    }
    assert_engine_serves(common::engine());
}

#[test]
fn contract_breaking_answers_fail_conformance_at_load() {
    match common::load("hostile/hostile-invalid.wasm") {
        Err(PolicyError::Conformance { kind, fixture, source }) => {
            assert_eq!((kind, fixture), (PolicyKind::Fee, "pf-cash-out"));
            assert_eq!(*source, PolicyError::InvalidOutput("fee must be >= 0, got -5".into()));
        }
        other => panic!("expected a conformance failure, got {other:?}"),
    }
}

#[test]
fn garbage_is_not_a_component() {
    assert!(matches!(common::engine().load(b"\0asm not really"), Err(PolicyError::Compile(_))));
}

#[test]
fn every_decision_gets_a_fresh_instance() {
    let engine = common::engine();
    let counter = common::load("hostile/hostile-counter.wasm").expect("loads");
    for _ in 0..20 {
        let d = engine.decide_fee(&counter, &fee_input("retail")).expect("decides");
        assert_eq!(d.fee, 1, "state leaked between decisions");
    }
    // A session reuses its instance, so the same guest counts up there.
    let mut session = engine.session(&counter);
    let fees: Vec<i64> = (0..3).map(|_| session.decide_fee(&fee_input("retail")).expect("decides").fee).collect();
    assert_eq!(fees, [1, 2, 3]);
}

#[test]
fn session_replaces_its_instance_after_a_trap() {
    let policy = common::load("hostile/hostile-loop.wasm").expect("loads");
    let mut session = common::engine().session(&policy);
    assert!(session.decide_fee(&fee_input("retail")).is_ok());
    assert!(matches!(session.decide_fee(&fee_input("hostile")), Err(PolicyError::OutOfFuel { .. })));
    // Without replacement this would fail with "cannot enter component instance".
    assert_eq!(session.decide_fee(&fee_input("retail")).expect("fresh").fee, 150);
}

#[test]
fn each_kind_has_its_documented_failsafe() {
    let engine = common::engine();
    // A fee-only policy cannot decide the other kinds: NotExported, then the fail-safe.
    let fee_only = common::load("default-fee.wasm").expect("loads");
    let refund = fixtures::refund_split().remove(0).1;
    let (d, outcome) = engine.refund_split_or_failsafe(&fee_only, &refund);
    assert_eq!(outcome, Outcome::FailSafe(PolicyError::NotExported(PolicyKind::RefundSplit)));
    assert_eq!(
        d,
        RefundSplitDecision::Split {
            portions: vec![RefundPortion { account_alias: "alias-conta-cliente".into(), amount: 100_082 }]
        }
    );
    let cashin = fixtures::cashin_acceptance().remove(0).1;
    let (d, outcome) = engine.cashin_acceptance_or_failsafe(&fee_only, &cashin);
    assert!(matches!(outcome, Outcome::FailSafe(_)));
    assert_eq!(
        d,
        CashinDecision::Deny {
            code: "POLICY_UNAVAILABLE".into(),
            spi_reason: "AG03".into(),
            message: "acceptance policy unavailable".into(),
        }
    );
    let fraud = fixtures::fraud_triage().remove(0).1;
    let (d, outcome) = engine.fraud_triage_or_failsafe(&fee_only, &fraud);
    assert!(matches!(outcome, Outcome::FailSafe(_)));
    assert_eq!((d.action, d.reasons), (FraudAction::Review, vec!["POLICY_UNAVAILABLE".to_owned()]));
    let (d, outcome) = engine.fee_or_failsafe(&fee_only, &fee_input("retail"));
    assert_eq!((d.fee, outcome), (150, Outcome::Policy));
}

#[test]
fn invalid_input_and_parameters_are_refused_before_the_guest_runs() {
    let engine = common::engine();
    let policy = common::load("hostile/hostile-counter.wasm").expect("loads");
    let zero = FeeInput { amount: 0, ..fee_input("retail") };
    assert_eq!(engine.decide_fee(&policy, &zero), Err(PolicyError::InvalidInput("amount must be > 0, got 0".into())));
    let long = "x".repeat(MAX_MESSAGE + 1);
    assert!(matches!(
        engine.with_params(&policy, Params::default().with_text("label", &long)),
        Err(PolicyError::InvalidInput(_))
    ));
}

/// Loading runs the conformance fixtures without the per-decision wall-clock deadline (fuel and
/// memory still apply), so a busy host does not reject a correct component; decisions keep it.
/// A 100 µs deadline (one tick) fires within 0–100 µs of arming, during most fresh-instance
/// decisions: with it, loading the 4-kind institution component (dozens of fixtures) used to
/// fail nearly every time.
#[test]
fn loading_is_not_failed_by_the_decision_deadline_but_decisions_are() {
    let tick = Duration::from_micros(100);
    let engine = PolicyEngine::new(PolicyLimits {
        fuel: 1 << 40,
        deadline: tick,
        epoch_tick: tick,
        max_concurrent_instances: 8,
        ..PolicyLimits::default()
    })
    .expect("engine");
    let institution = common::wasm("example-institution.wasm");
    for _ in 0..10 {
        engine.load(&institution).expect("conformance does not run under the 100 µs decision deadline");
    }
    // The hostile loop passes its fixtures and still meets the deadline when it spins.
    let looping = engine.load(&common::wasm("hostile/hostile-loop.wasm")).expect("loads");
    let started = Instant::now();
    assert_eq!(engine.decide_fee(&looping, &fee_input("hostile")), Err(PolicyError::Deadline { millis: 0 }));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}
