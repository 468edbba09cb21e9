//! Activation, rollback and hot swap under concurrent decisions.

mod common;

use pix_policy::*;

fn merchant_cash_in() -> FeeInput {
    FeeInput {
        operation: Operation::CashIn,
        initiation: Initiation::QrCode,
        purpose: Purpose::Transfer,
        amount: 50_000,
        payer_type: PersonType::Natural,
        payee_type: PersonType::Legal,
        account_segment: "merchant".into(),
        intra_psp: false,
        local_time: LocalTime::at(15, 0, Weekday::Friday),
        month_count: 10,
        month_volume: 1_000_000,
    }
}

#[test]
fn activate_rollback_and_history_per_tenant_and_kind() {
    let v1 = common::load("default-fee.wasm").expect("v1");
    let v2 = common::load("example-institution.wasm").expect("v2");
    let set = PolicySet::new();
    assert!(set.active("acme", PolicyKind::Fee).is_none());
    assert_eq!(
        set.require("acme", PolicyKind::Fee).err(),
        Some(PolicyError::NoActivePolicy { tenant: "acme".into(), kind: PolicyKind::Fee })
    );
    assert_eq!(
        set.activate("acme", PolicyKind::CashinAcceptance, v1.clone()),
        Err(PolicyError::NotExported(PolicyKind::CashinAcceptance))
    );
    set.activate("acme", PolicyKind::Fee, v1.clone()).expect("v1");
    set.activate("acme", PolicyKind::Fee, v2.clone()).expect("v2");
    set.activate("acme", PolicyKind::FraudTriage, v2.clone()).expect("fraud");
    let sha = |p: Option<LoadedPolicy>| p.map(|p| p.sha256().to_owned());
    assert_eq!(sha(set.active("acme", PolicyKind::Fee)), Some(v2.sha256().into()));
    assert_eq!(
        set.history("acme", PolicyKind::Fee).iter().map(|p| p.sha256().to_owned()).collect::<Vec<_>>(),
        [v1.sha256(), v2.sha256()]
    );
    assert!(set.active("other-bank", PolicyKind::Fee).is_none());
    let back = set.rollback("acme", PolicyKind::Fee).expect("rollback");
    assert_eq!(back.sha256(), v1.sha256());
    assert_eq!(sha(set.active("acme", PolicyKind::Fee)), Some(v1.sha256().into()));
    // Other kinds are untouched, and there is nothing before v1.
    assert_eq!(sha(set.active("acme", PolicyKind::FraudTriage)), Some(v2.sha256().into()));
    assert!(matches!(set.rollback("acme", PolicyKind::Fee), Err(PolicyError::NoPreviousVersion { .. })));
    assert_eq!(sha(set.active("acme", PolicyKind::Fee)), Some(v1.sha256().into()));
    // Deactivating empties only that slot; the caller's fallback takes over.
    assert!(set.deactivate("acme", PolicyKind::Fee));
    assert!(set.active("acme", PolicyKind::Fee).is_none());
    assert!(set.history("acme", PolicyKind::Fee).is_empty());
    assert_eq!(sha(set.active("acme", PolicyKind::FraudTriage)), Some(v2.sha256().into()));
    assert!(!set.deactivate("acme", PolicyKind::Fee), "nothing left to deactivate");
    assert!(!set.deactivate("other-bank", PolicyKind::Fee));
}

#[test]
fn hot_swap_under_concurrent_decisions() {
    let engine = common::engine().clone();
    let old = common::load("default-fee.wasm").expect("old");
    let new = common::load("example-institution.wasm").expect("new");
    let input = merchant_cash_in();
    let (set, served) = common::swap_under_load(PolicyKind::Fee, &old, &new, 100, 3, move |p| {
        engine.decide_fee(p, &input).expect("zero failures")
    });
    assert!(served[0] > 0 && served[1] > 0, "both versions served: {served:?}");
    assert_eq!(set.history("t1", PolicyKind::Fee).len(), 101);
}

/// A component's compiled code, serialized by one engine, loads in another engine with the same
/// configuration without compiling; the same bytes loaded again come from the process cache; an
/// artifact wasmtime refuses (damaged, or from another configuration) falls back to compiling.
#[test]
fn stored_compiled_code_is_reused_and_a_refused_artifact_is_compiled_instead() {
    let bytes = common::wasm("default-fee.wasm");
    let writer = PolicyEngine::new(PolicyLimits::default()).expect("engine");
    let (first, source) = writer.load_with_artifact(&bytes, None, ComponentLimits::default()).expect("loads");
    assert_eq!(source, CodeSource::Compiled);
    let artifact = writer.artifact(&first).expect("serializes");
    let (_, source) = writer.load_with_artifact(&bytes, None, ComponentLimits::default()).expect("loads");
    assert_eq!(source, CodeSource::Cached, "the same bytes are not compiled twice in one process");

    // Another process (a fresh engine, same configuration) loads `component` offered `code` as the
    // stored artifact of the first component.
    let fresh_load = |component: &[u8], code: &[u8]| {
        let engine = PolicyEngine::new(PolicyLimits::default()).expect("engine");
        let (loaded, source) = engine
            .load_with_artifact(component, Some(Artifact { sha256: first.sha256(), code }), ComponentLimits::default())
            .expect("loads");
        (engine, loaded, source)
    };
    let input = pix_policy::fixtures::fee().remove(0).1;
    let expected = writer.decide_fee(&first, &input);

    // It deserializes instead of compiling.
    let (reader, loaded, source) = fresh_load(&bytes, &artifact);
    assert_eq!(reader.artifact_tag(), writer.artifact_tag());
    assert_eq!(source, CodeSource::Deserialized);
    assert_eq!(reader.decide_fee(&loaded, &input), expected);

    // A damaged artifact is refused by wasmtime's header check: compiled instead, same answer.
    let mut damaged = artifact.clone();
    damaged.truncate(64);
    let (other, loaded, source) = fresh_load(&bytes, &damaged);
    assert_eq!(source, CodeSource::Compiled);
    assert_eq!(other.decide_fee(&loaded, &input), expected);

    // The artifact of other bytes is not used, even when wasmtime would accept it.
    let (_, _, source) = fresh_load(&common::wasm("default-cashin-acceptance.wasm"), &artifact);
    assert_eq!(source, CodeSource::Compiled);

    // Instances sized differently (pool size) share artifacts: it does not change the code.
    let small =
        PolicyEngine::new(PolicyLimits { max_concurrent_instances: 4, ..PolicyLimits::default() }).expect("engine");
    assert_eq!(small.artifact_tag(), writer.artifact_tag());
    assert_eq!(small.artifact_tag().len(), 64, "hex sha256");
}
