//! The contract's versions: a component built against `pix:policy@0.1.0` (the shipped defaults,
//! built by the SDK) and one built against 0.2.0 (`segment-fraud-triage`, which reads the new
//! `fraud-input.account-segment`) load, decide and hot-swap on the same host.

mod common;

use pix_policy::*;

fn v0_1() -> LoadedPolicy {
    common::load("default-fraud-triage.wasm").expect("0.1.0 component")
}

fn v0_2() -> LoadedPolicy {
    common::load("examples/segment-fraud-triage.wasm").expect("0.2.0 component")
}

/// A R$ 10.000 first payment to a counterparty, from an account of `segment`.
fn first_payment(segment: &str) -> FraudInput {
    FraudInput {
        amount: 1_000_000,
        first_time_counterparty: true,
        account_segment: segment.into(),
        ..fixtures::fraud_triage().remove(0).1
    }
}

#[test]
fn each_export_is_bound_to_the_version_it_was_built_against() {
    assert_eq!(v0_1().contract(), [(PolicyKind::FraudTriage, ContractVersion::V0_1)]);
    assert_eq!(v0_2().contract(), [(PolicyKind::FraudTriage, ContractVersion::V0_2)]);
    let institution = common::load("example-institution.wasm").expect("institution");
    assert_eq!(institution.contract(), PolicyKind::ALL.map(|k| (k, ContractVersion::V0_1)));
    assert_eq!(ContractVersion::LATEST.as_str(), "0.2.0");
}

#[test]
fn the_new_field_reaches_a_0_2_component_and_is_left_out_for_a_0_1_one() {
    let engine = common::engine();
    let (old, new) = (v0_1(), v0_2());
    let private = engine.decide_fraud_triage(&new, &first_payment("private")).expect("private");
    let retail = engine.decide_fraud_triage(&new, &first_payment("retail")).expect("retail");
    assert_eq!((private.score, private.action, private.reasons.len()), (0, FraudAction::Allow, 0));
    assert_eq!(retail.action, FraudAction::Review, "{retail:?}");
    assert_eq!(retail.reasons, ["LARGE_FIRST_PAYMENT_FOR_SEGMENT"]);
    // A segment threshold is a parameter, bound like any other (params reach both versions).
    let strict = engine.with_params(&new, Params::default().with_int("large-private", 100_000)).expect("bind");
    assert_eq!(engine.decide_fraud_triage(&strict, &first_payment("private")).unwrap().action, FraudAction::Review);

    // The 0.1.0 default never sees the segment: the same answer for both, the native rule's.
    let a = engine.decide_fraud_triage(&old, &first_payment("private")).expect("0.1.0 decides");
    let b = engine.decide_fraud_triage(&old, &first_payment("retail")).expect("0.1.0 decides");
    assert_eq!(a, b);
    assert_eq!(a, native::fraud_triage(&first_payment("private"), &Params::default()));
    let bound = engine.with_params(&old, Params::default().with_int("review-threshold", 50)).expect("bind");
    assert_eq!(engine.decide_fraud_triage(&bound, &first_payment("retail")).unwrap().action, FraudAction::Review);
}

#[test]
fn a_0_1_and_a_0_2_component_hot_swap_under_concurrent_decisions() {
    let engine = common::engine().clone();
    let (old, new) = (v0_1(), v0_2());
    let input = first_payment("retail");
    let (set, served) = common::swap_under_load(PolicyKind::FraudTriage, &old, &new, 40, 2, move |p| {
        engine.decide_fraud_triage(p, &input).expect("zero failures")
    });
    assert!(served[0] > 0 && served[1] > 0, "both versions served: {served:?}");
    // An even number of swaps ends on the 0.1.0 component; rolling back from 0.2.0 returns to it.
    assert_eq!(set.active("t1", PolicyKind::FraudTriage).unwrap().sha256(), old.sha256());
    set.activate("t1", PolicyKind::FraudTriage, new).expect("activate 0.2.0");
    assert_eq!(set.rollback("t1", PolicyKind::FraudTriage).expect("rollback").sha256(), old.sha256());
}

#[test]
fn decisions_recorded_before_0_2_still_read() {
    // The decision log stores inputs as JSON; those written before the field existed lack it.
    let mut recorded = serde_json::to_value(first_payment("private")).unwrap();
    recorded.as_object_mut().unwrap().remove("accountSegment");
    let input: FraudInput = serde_json::from_value(recorded).expect("an old record still reads");
    assert_eq!(input.account_segment, "");
}
