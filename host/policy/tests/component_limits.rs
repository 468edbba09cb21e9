//! Memory, fuel and deadline are a property of each component (declared when it is loaded, each
//! within the host maximum), not of the engine: two components on one engine run under their
//! own limits, and the errors name those limits.

mod common;

use std::time::Duration;

use pix_policy::*;

fn hostile() -> FeeInput {
    FeeInput { account_segment: "hostile".into(), ..fixtures::fee().remove(0).1 }
}

#[test]
fn a_component_without_declared_limits_runs_under_the_engine_defaults() {
    let engine = common::engine();
    let policy = common::load("hostile/hostile-counter.wasm").expect("loads");
    let defaults = engine.limits();
    assert_eq!(
        policy.limits(),
        ComponentLimits {
            memory_mib: Some(16),
            fuel: Some(defaults.fuel),
            deadline_ms: Some(defaults.deadline.as_millis() as u64),
        }
    );
}

#[test]
fn fuel_and_memory_are_the_components_own() {
    let engine = common::engine();
    let lp = engine
        .load_with(
            &common::wasm("hostile/hostile-loop.wasm"),
            ComponentLimits { fuel: Some(2_000_000), ..ComponentLimits::default() },
        )
        .expect("the default path fits in 2 M fuel");
    assert_eq!(engine.decide_fee(&lp, &hostile()), Err(PolicyError::OutOfFuel { fuel: 2_000_000 }));
    // The same bytes under the defaults, on the same engine, keep the default budget.
    let default = common::load("hostile/hostile-loop.wasm").expect("loads");
    assert_eq!(engine.decide_fee(&default, &hostile()), Err(PolicyError::OutOfFuel { fuel: 10_000_000 }));

    let memory = common::wasm("hostile/hostile-memory.wasm");
    for mib in [4, 40] {
        let policy = engine
            .load_with(&memory, ComponentLimits { memory_mib: Some(mib), fuel: Some(100_000_000), deadline_ms: None })
            .expect("loads");
        assert_eq!(
            engine.decide_fee(&policy, &hostile()),
            Err(PolicyError::MemoryLimit { bytes: (mib as usize) << 20 }),
            "{mib} MiB"
        );
    }
}

#[test]
fn the_deadline_is_the_components_own() {
    // The fuel budget is far beyond the deadline (100 G fuel is seconds of compute), so only the
    // deadline can stop the loop, even when a loaded machine delays the epoch ticker's thread
    // (CI once saw 100 M fuel run out before a starved ticker reached 5 ticks).
    let engine = PolicyEngine::new(PolicyLimits {
        max_concurrent_instances: 8,
        max_fuel: 100_000_000_000,
        ..PolicyLimits::default()
    })
    .expect("engine");
    let limits = ComponentLimits { fuel: Some(engine.limits().max_fuel), deadline_ms: Some(5), memory_mib: None };
    let lp = engine.load_with(&common::wasm("hostile/hostile-loop.wasm"), limits).expect("loads");
    assert_eq!(engine.decide_fee(&lp, &hostile()), Err(PolicyError::Deadline { millis: 5 }));
}

#[test]
fn limits_above_the_host_maxima_are_refused_before_anything_runs() {
    let engine = PolicyEngine::new(PolicyLimits {
        max_fuel: 50_000_000,
        max_deadline: Duration::from_millis(100),
        max_memory_bytes: 64 << 20,
        max_concurrent_instances: 8,
        ..PolicyLimits::default()
    })
    .expect("engine");
    assert_eq!(
        engine.maxima(),
        ComponentLimits { memory_mib: Some(64), fuel: Some(50_000_000), deadline_ms: Some(100) }
    );
    let bytes = common::wasm("default-fee.wasm");
    let cases = [
        (ComponentLimits { memory_mib: Some(65), ..ComponentLimits::default() }, ("memoryMib", 65, 64)),
        (ComponentLimits { fuel: Some(50_000_001), ..ComponentLimits::default() }, ("fuel", 50_000_001, 50_000_000)),
        (ComponentLimits { deadline_ms: Some(101), ..ComponentLimits::default() }, ("deadlineMs", 101, 100)),
    ];
    for (limits, (limit, asked, maximum)) in cases {
        assert_eq!(
            engine.load_with(&bytes, limits).err(),
            Some(PolicyError::LimitAboveMaximum { limit, asked, maximum })
        );
    }
    let zero = ComponentLimits { fuel: Some(0), ..ComponentLimits::default() };
    assert!(matches!(engine.load_with(&bytes, zero), Err(PolicyError::InvalidInput(_))));
    let at_max = ComponentLimits { memory_mib: Some(64), fuel: Some(50_000_000), deadline_ms: Some(100) };
    let policy = engine.load_with(&bytes, at_max).expect("the maxima themselves are allowed");
    assert_eq!(policy.limits(), at_max);
}

#[test]
fn tenant_maxima_compare_with_the_resolved_limits() {
    let tenant = ComponentLimits { memory_mib: Some(8), fuel: None, deadline_ms: Some(20) };
    let policy = common::load("default-fee.wasm").expect("loads");
    // Declared nothing, but the default 16 MiB is above this tenant's 8.
    assert_eq!(policy.limits().above(&tenant), Some(("memoryMib", 16, 8)));
    let small = common::engine()
        .load_with(
            &common::wasm("default-fee.wasm"),
            ComponentLimits { memory_mib: Some(8), deadline_ms: Some(20), fuel: Some(1 << 40) },
        )
        .err();
    // Fuel above the host maximum never gets as far as the tenant check.
    assert!(matches!(small, Some(PolicyError::LimitAboveMaximum { limit: "fuel", .. })));
    let fits = common::engine()
        .load_with(
            &common::wasm("default-fee.wasm"),
            ComponentLimits { memory_mib: Some(8), deadline_ms: Some(20), fuel: None },
        )
        .expect("loads");
    assert_eq!(fits.limits().above(&tenant), None);
}
