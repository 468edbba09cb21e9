//! The JavaScript (componentize-js) and Python (componentize-py) guests: they implement the same
//! worlds as the Rust guests, pass the same conformance fixtures with the same answers, run under
//! their own declared limits, and a runaway JS loop traps on fuel or the deadline.
//!
//! The components are built by `guests/build-polyglot.sh` into `target/polyglot/` (or
//! `$PIX_POLYGLOT_DIR`); they are 11–18 MiB each and never committed. Without them these tests
//! print why and pass, except under CI (`CI` set), where the build step runs first and a missing
//! component is a failure.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pix_policy::*;

fn polyglot_dir() -> PathBuf {
    std::env::var_os("PIX_POLYGLOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/polyglot"))
}

/// The built component `name` under the limits its manifest entry declares (its sha256 checked),
/// or `None` (after saying why) when the components were not built. Each test loads only what it
/// uses: nextest runs every test in its own process, and compiling one interpreter component
/// takes seconds.
fn built(name: &str) -> Option<LoadedPolicy> {
    let dir = polyglot_dir();
    let manifest = dir.join("manifest.json");
    if !manifest.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: CI must run guests/build-polyglot.sh first",
            manifest.display()
        );
        eprintln!("SKIPPED: no JS/Python components in {} (run guests/build-polyglot.sh)", dir.display());
        return None;
    }
    let mut loaded = load_manifest_where(common::engine(), &dir, |e| e.name == name)
        .unwrap_or_else(|e| panic!("{name} loads (conformance included): {e}"));
    assert_eq!(loaded.len(), 1, "{name} is not in {}", manifest.display());
    let policy = loaded.remove(0).1;
    Some(policy)
}

/// JS or Python, fee: the native rule's answers on every fixture, with and without tenant
/// parameters; a session reuses one instance and a decision's memory stays within the cap.
fn fee_guest_answers_like_the_native_rule(name: &str) -> Option<LoadedPolicy> {
    let engine = common::engine();
    let loaded = built(name)?;
    assert_eq!(loaded.kinds(), [PolicyKind::Fee]);
    let tenant = Params::default().with_text("fee-account", "@tarifas").with_int("pj-cash-in-bps", 0);
    // with_params runs the conformance fixtures again with the parameters bound.
    let bound = engine.with_params(&loaded, tenant.clone()).expect("conforms with parameters");
    let mut session = engine.session(&loaded);
    for (fixture, input) in fixtures::fee() {
        let plain = engine.decide_fee(&loaded, &input).unwrap_or_else(|e| panic!("{name} {fixture}: {e}"));
        assert_eq!(plain, native::fee(&input, &Params::default()), "{name} {fixture}");
        let with = engine.decide_fee(&bound, &input).unwrap_or_else(|e| panic!("{name} {fixture}: {e}"));
        assert_eq!(with, native::fee(&input, &tenant), "{name} {fixture} with parameters");
        assert_eq!(session.decide_fee(&input), Ok(plain), "{name} {fixture} on a reused instance");
    }
    let peak = session.memory_bytes().expect("live instance");
    let cap = (loaded.limits().memory_mib.expect("resolved") as usize) << 20;
    assert!(peak > 0 && peak <= cap, "{name}: peak {peak} B, cap {cap} B");
    Some(loaded)
}

#[test]
fn javascript_fee_guest_answers_like_the_native_rule() {
    fee_guest_answers_like_the_native_rule("js-fee");
}

#[test]
fn python_fee_guest_answers_like_the_native_rule_within_its_own_limits() {
    let Some(loaded) = fee_guest_answers_like_the_native_rule("python-fee") else { return };
    let engine = common::engine();
    let declared = loaded.limits();
    assert!(declared.memory_mib > Some(16), "an interpreter declares more than the Rust default: {declared:?}");
    // The same bytes (compiled once, cached by sha256) under other limits.
    let bytes = std::fs::read(polyglot_dir().join("python-fee.wasm")).expect("built");
    let asked = (engine.limits().max_memory_bytes >> 20) as u32 + 1;
    assert_eq!(
        engine.load_with(&bytes, ComponentLimits { memory_mib: Some(asked), ..declared }).err(),
        Some(PolicyError::LimitAboveMaximum { limit: "memoryMib", asked: asked.into(), maximum: (asked - 1).into() })
    );
    // Too little memory for the interpreter's snapshot: the conformance run hits the cap.
    match engine.load_with(&bytes, ComponentLimits { memory_mib: Some(1), ..declared }) {
        Err(PolicyError::Conformance { source, .. }) => {
            assert_eq!(*source, PolicyError::MemoryLimit { bytes: 1 << 20 })
        }
        other => panic!("expected the memory cap to stop it, got {other:?}"),
    }
    // Too little fuel for one decision of the interpreter.
    match engine.load_with(&bytes, ComponentLimits { fuel: Some(1_000), ..declared }) {
        Err(PolicyError::Conformance { source, .. }) => assert_eq!(*source, PolicyError::OutOfFuel { fuel: 1_000 }),
        other => panic!("expected fuel to stop it, got {other:?}"),
    }
}

#[test]
fn js_and_python_fraud_guests_answer_like_the_native_rule() {
    let engine = common::engine();
    let strict = Params::default().with_int("review-threshold", 100).with_int("block-threshold", 300);
    for name in ["js-fraud-triage", "python-fraud-triage"] {
        let Some(loaded) = built(name) else { return };
        assert_eq!(loaded.kinds(), [PolicyKind::FraudTriage]);
        let bound = engine.with_params(&loaded, strict.clone()).expect("conforms with parameters");
        for (fixture, input) in fixtures::fraud_triage() {
            let plain = engine.decide_fraud_triage(&loaded, &input).unwrap_or_else(|e| panic!("{name} {fixture}: {e}"));
            assert_eq!(plain, native::fraud_triage(&input, &Params::default()), "{name} {fixture}");
            let with = engine.decide_fraud_triage(&bound, &input).unwrap_or_else(|e| panic!("{name} {fixture}: {e}"));
            assert_eq!(with, native::fraud_triage(&input, &strict), "{name} {fixture} with parameters");
        }
    }
}

#[test]
fn a_runaway_js_loop_traps_on_fuel_or_its_deadline_and_the_worker_is_back() {
    let Some(lp) = built("js-hostile-loop") else { return };
    let engine = common::engine();
    let hostile = FeeInput { account_segment: "hostile".into(), ..fixtures::fee().remove(0).1 };
    let fuel = lp.limits().fuel.expect("resolved");
    let started = Instant::now();
    assert_eq!(engine.decide_fee(&lp, &hostile), Err(PolicyError::OutOfFuel { fuel }));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The same component still decides inputs that do not loop, and the fail-safe covers the loop.
    assert_eq!(engine.decide_fee(&lp, &fixtures::fee().remove(0).1).expect("fine").label, "js-hostile-loop");
    let (decision, outcome) = engine.fee_or_failsafe(&lp, &hostile);
    assert_eq!(decision, native::fee(&hostile, &Params::default()));
    assert_eq!(outcome, Outcome::FailSafe(PolicyError::OutOfFuel { fuel }));

    // With ample fuel the wall-clock deadline stops it: 100 G fuel is seconds of pure compute,
    // so the 5 ms deadline fires first even when a loaded machine delays the epoch ticker.
    let engine = PolicyEngine::new(PolicyLimits {
        max_concurrent_instances: 8,
        max_fuel: 100_000_000_000,
        ..PolicyLimits::default()
    })
    .expect("engine");
    let bytes = std::fs::read(polyglot_dir().join("js-hostile-loop.wasm")).expect("built");
    let limits = ComponentLimits { fuel: Some(100_000_000_000), deadline_ms: Some(5), ..lp.limits() };
    let lp = engine.load_with(&bytes, limits).expect("loads with its own limits");
    let started = Instant::now();
    assert_eq!(engine.decide_fee(&lp, &hostile), Err(PolicyError::Deadline { millis: 5 }));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}
