//! Activation, rollback and hot swap under concurrent decisions.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    // What each version answers, decided up front.
    let expected = |p: &LoadedPolicy| engine.decide_fee(p, &input).expect("decides");
    let (old_answer, new_answer) = (expected(&old), expected(&new));
    assert_ne!(old_answer, new_answer, "versions must be distinguishable");

    let set = Arc::new(PolicySet::new());
    set.activate("t1", PolicyKind::Fee, old.clone()).expect("activate");
    let done = Arc::new(AtomicBool::new(false));
    let decided = Arc::new(AtomicUsize::new(0));
    let deciders: Vec<_> = (0..3)
        .map(|_| {
            let (set, done, decided, engine) =
                (Arc::clone(&set), Arc::clone(&done), Arc::clone(&decided), engine.clone());
            let (input, old_sha, old_answer, new_answer) =
                (input.clone(), old.sha256().to_owned(), old_answer.clone(), new_answer.clone());
            std::thread::spawn(move || {
                let (mut from_old, mut from_new) = (0usize, 0usize);
                while !done.load(Ordering::Acquire) || from_old + from_new < 10 {
                    let policy = set.require("t1", PolicyKind::Fee).expect("always active");
                    let decision = engine.decide_fee(&policy, &input).expect("zero failures");
                    // The answer must be the one of the version this call pinned.
                    if policy.sha256() == old_sha {
                        assert_eq!(decision, old_answer);
                        from_old += 1;
                    } else {
                        assert_eq!(decision, new_answer);
                        from_new += 1;
                    }
                    decided.fetch_add(1, Ordering::Relaxed);
                }
                (from_old, from_new)
            })
        })
        .collect();
    for i in 0..100 {
        let next = if i % 2 == 0 { &new } else { &old };
        set.activate("t1", PolicyKind::Fee, next.clone()).expect("swap");
        // Let a few decisions start on this version before the next swap (bounded wait), so
        // swaps land between and during decisions on a loaded machine too.
        let before = decided.load(Ordering::Relaxed);
        let waited = std::time::Instant::now();
        while decided.load(Ordering::Relaxed) < before + 3 && waited.elapsed() < std::time::Duration::from_secs(2) {
            std::thread::yield_now();
        }
    }
    done.store(true, Ordering::Release);
    let mut totals = (0, 0);
    for d in deciders {
        let (o, n) = d.join().expect("no decider panicked");
        totals = (totals.0 + o, totals.1 + n);
    }
    assert_eq!(totals.0 + totals.1, decided.load(Ordering::Relaxed));
    assert!(totals.0 > 0 && totals.1 > 0, "both versions served: {totals:?}");
    assert_eq!(set.history("t1", PolicyKind::Fee).len(), 101);
}
