//! Fault injection: every fault kind surfaces as a typed error within the client's timeouts,
//! retries happen only for idempotent calls, the circuit breaker opens and recovers, and
//! webhooks are signed and retried until the receiver answers 2xx.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pix_integrations::btg::{AccountType, BtgEvent, Creditor, Debtor, InitiationType, PaymentOrder, TransactionType};
use pix_integrations::config::BreakerConfig;
use pix_integrations::crm::HolderDirectory;
use pix_integrations::{BreakerState, Btg, IntegrationError, Ledger};
use pix_sandbox::{FaultKind, FaultRule, FaultTarget, SandboxHandle};
use serde_json::json;

fn fault(
    h: &SandboxHandle,
    upstream: FaultTarget,
    prefix: &str,
    method: Option<&str>,
    kind: FaultKind,
    count: Option<u32>,
) {
    h.add_fault(FaultRule {
        id: String::new(),
        upstream,
        path_prefix: prefix.into(),
        method: method.map(Into::into),
        kind,
        count,
        probability: None,
    });
}

fn order(e2e: &str) -> PaymentOrder {
    PaymentOrder {
        end_to_end_id: e2e.into(),
        amount: "12.00".parse().unwrap(),
        initiation_type: InitiationType::Manual,
        transaction_type: TransactionType::Transfer,
        debtor: Debtor {
            branch: "0001".into(),
            account: "100001".into(),
            account_type: AccountType::Cacc,
            tax_id: "11144477735".into(),
            name: "Maria Silva".into(),
        },
        creditor: Creditor {
            ispb: "87654321".into(),
            branch: "0042".into(),
            account: "7001".into(),
            account_type: AccountType::Cacc,
            tax_id: "52998224725".into(),
            name: "Ana Pereira".into(),
            key: None,
        },
        remittance_information: None,
        txid: None,
    }
}

#[tokio::test]
async fn every_fault_kind_is_a_typed_error_within_the_timeout() {
    let (h, demo) = start(|_| {}).await;
    let timeout = 200;
    let btg = btg(&h, http(timeout));
    let key = demo.other_participant.keys[0].key.clone();
    btg.lookup_key(&key, None).await.unwrap(); // token cached before faults start
    // Worst case for an idempotent call: 3 attempts × timeout + 2 backoffs (≤ 50 ms each).
    let bound = Duration::from_millis(3 * timeout + 2 * 60 + 300);

    for kind in [FaultKind::Latency { ms: 1_000 }, FaultKind::Hang] {
        fault(&h, FaultTarget::Btg, "/dict/keys", None, kind.clone(), None);
        let started = Instant::now();
        let err = btg.lookup_key(&key, None).await.unwrap_err();
        assert!(matches!(err, IntegrationError::Timeout { .. }), "{kind:?}: {err}");
        assert!(started.elapsed() < bound, "{kind:?} took {:?}", started.elapsed());
        h.clear_faults();
    }

    // A short latency below the timeout is absorbed.
    fault(&h, FaultTarget::Btg, "/dict/keys", None, FaultKind::Latency { ms: 50 }, None);
    btg.lookup_key(&key, None).await.unwrap();
    h.clear_faults();

    // 5xx twice: the idempotent read is retried and succeeds.
    fault(&h, FaultTarget::Btg, "/dict/keys", None, FaultKind::Status { status: 503 }, Some(2));
    btg.lookup_key(&key, None).await.unwrap();
    // 5xx on every attempt: Unavailable after the retries.
    fault(&h, FaultTarget::Btg, "/dict/keys", None, FaultKind::Status { status: 500 }, None);
    assert!(matches!(
        btg.lookup_key(&key, None).await.unwrap_err(),
        IntegrationError::Unavailable { status: Some(500), .. }
    ));
    h.clear_faults();

    // 404 is not retried.
    fault(&h, FaultTarget::Btg, "/pix/payments", Some("GET"), FaultKind::NotFound, Some(2));
    assert!(matches!(
        btg.payment("E12345678202501011200abcdefghijk").await.unwrap_err(),
        IntegrationError::NotFound { .. }
    ));
    h.clear_faults();

    // A money-moving POST is never retried: one 503 and the caller gets the error.
    fault(&h, FaultTarget::Btg, "/pix/payments", Some("POST"), FaultKind::Status { status: 503 }, Some(2));
    let e2e = "E12345678202501011200aaaaaaaaaaa";
    assert!(matches!(
        btg.initiate_payment(&order(e2e), "p-1").await.unwrap_err(),
        IntegrationError::Unavailable { .. }
    ));
    // The second use of the rule is still there: no retry consumed it.
    assert!(matches!(
        btg.initiate_payment(&order(e2e), "p-1").await.unwrap_err(),
        IntegrationError::Unavailable { .. }
    ));
    assert!(matches!(btg.payment(e2e).await.unwrap_err(), IntegrationError::NotFound { .. }));

    // Timeout after the effect: the client times out, and the read-back finds the payment.
    fault(&h, FaultTarget::Btg, "/pix/payments", Some("POST"), FaultKind::TimeoutAfterEffect, Some(1));
    let started = Instant::now();
    assert!(matches!(btg.initiate_payment(&order(e2e), "p-1").await.unwrap_err(), IntegrationError::Timeout { .. }));
    assert!(started.elapsed() < Duration::from_millis(timeout + 300));
    assert_eq!(btg.payment(e2e).await.unwrap().end_to_end_id, e2e);

    // The same faults on Midaz and CRM.
    let ledger = midaz(&h, &demo, http(timeout));
    let crm = crm(&h, &demo, http(timeout));
    ledger.account(&demo.accounts[0].account_id).await.unwrap();
    fault(&h, FaultTarget::Midaz, "/v1/organizations", None, FaultKind::Hang, None);
    fault(&h, FaultTarget::Crm, "/v1/aliases", None, FaultKind::Status { status: 502 }, None);
    assert!(matches!(
        ledger.account(&demo.accounts[0].account_id).await.unwrap_err(),
        IntegrationError::Timeout { .. }
    ));
    assert!(matches!(
        crm.account_holder(&demo.accounts[0].account_id).await.unwrap_err(),
        IntegrationError::Unavailable { status: Some(502), .. }
    ));
    h.clear_faults();
    fault(&h, FaultTarget::Midaz, "/v1/organizations", None, FaultKind::NotFound, Some(1));
    match ledger.account(&demo.accounts[0].account_id).await.unwrap_err() {
        IntegrationError::NotFound { code, .. } => assert_eq!(code, "0007"),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn circuit_breaker_opens_and_recovers() {
    let (h, demo) = start(|_| {}).await;
    let mut cfg = http(300);
    cfg.retry.max_attempts = 1;
    cfg.breaker = BreakerConfig { failure_threshold: 3, cooldown_ms: 300, half_open_successes: 1 };
    let ledger = midaz(&h, &demo, cfg);
    let id = demo.accounts[0].account_id.clone();
    ledger.account(&id).await.unwrap();

    fault(&h, FaultTarget::Midaz, "/v1", None, FaultKind::Status { status: 503 }, None);
    for _ in 0..3 {
        assert!(matches!(ledger.account(&id).await.unwrap_err(), IntegrationError::Unavailable { .. }));
    }
    assert_eq!(ledger.breaker_state(), BreakerState::Open);
    let started = Instant::now();
    assert!(matches!(ledger.account(&id).await.unwrap_err(), IntegrationError::CircuitOpen { .. }));
    assert!(started.elapsed() < Duration::from_millis(50), "an open circuit answers at once");

    // After the cooldown a failing probe re-opens it…
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(ledger.breaker_state(), BreakerState::HalfOpen);
    assert!(matches!(ledger.account(&id).await.unwrap_err(), IntegrationError::Unavailable { .. }));
    assert_eq!(ledger.breaker_state(), BreakerState::Open);
    // …and a successful one closes it.
    h.clear_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    ledger.account(&id).await.unwrap();
    assert_eq!(ledger.breaker_state(), BreakerState::Closed);

    // Business errors (404) do not count as failures.
    for _ in 0..5 {
        let _ = ledger.account("00000000-0000-0000-0000-000000000000").await;
    }
    assert_eq!(ledger.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_until_2xx() {
    let rx = receiver("sandbox-webhook-secret", 3).await;
    let (h, _demo) = start(|_| {}).await;
    h.set_webhook_url(Some(rx.url.clone()));
    let data = h.inbound_pix(&json!({"creditor": {"branch": "0001", "account": "100001", "accountType": "CACC", "taxId": "11144477735", "name": "Maria Silva"}, "amount": "7.00"})).unwrap();
    let events = eventually(10, || {
        let ev = rx.events();
        (!ev.is_empty()).then_some(ev)
    })
    .await;
    assert!(matches!(&events[0].1, BtgEvent::PaymentInbound(p) if p.end_to_end_id == data["endToEndId"]));
    // The receiver holds the event before the simulator logs the 2xx: wait for that log line.
    let log = eventually(10, || {
        let log = h.deliveries();
        log.iter().any(|d| d.webhook_id == events[0].0 && d.outcome == "delivered").then_some(log)
    })
    .await;
    let attempts: Vec<_> = log.iter().filter(|d| d.webhook_id == events[0].0).collect();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert!(attempts[..3].iter().all(|d| d.outcome == "failed" && d.status == Some(500)));
    assert_eq!(attempts[3].outcome, "delivered");
    assert_eq!(*rx.attempts.lock().unwrap(), 4);
    assert_eq!(*rx.bad_signatures.lock().unwrap(), 0);

    // A receiver with another secret refuses every delivery: the signature really is checked.
    let wrong = receiver("another-secret", 0).await;
    h.set_webhook_url(Some(wrong.url.clone()));
    h.inbound_pix(&json!({"creditor": {"branch": "0001", "account": "100001", "accountType": "CACC", "taxId": "11144477735", "name": "Maria Silva"}, "amount": "8.00"})).unwrap();
    eventually(5, || (*wrong.bad_signatures.lock().unwrap() >= 2).then_some(())).await;
    assert!(wrong.events().is_empty());
}

#[tokio::test]
async fn webhook_faults_drop_duplicate_and_reorder() {
    let rx = receiver("sandbox-webhook-secret", 0).await;
    let (h, _demo) = start(|_| {}).await;
    h.set_webhook_url(Some(rx.url.clone()));
    let pix = |amount: &str| {
        h.inbound_pix(&json!({"creditor": {"branch": "0001", "account": "100001", "accountType": "CACC", "taxId": "11144477735", "name": "Maria Silva"}, "amount": amount}))
            .unwrap()["endToEndId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let e2e_of = |e: &BtgEvent| match e {
        BtgEvent::PaymentInbound(p) => p.end_to_end_id.clone(),
        _ => String::new(),
    };

    fault(&h, FaultTarget::Webhooks, "PIX_PAYMENT_INBOUND", None, FaultKind::Duplicate, Some(1));
    let dup = pix("1.00");
    let got = eventually(5, || {
        let ev = rx.events();
        (ev.len() >= 2).then_some(ev)
    })
    .await;
    assert_eq!(got[0].0, got[1].0, "same webhookId twice");
    assert_eq!(e2e_of(&got[0].1), dup);

    fault(&h, FaultTarget::Webhooks, "PIX_PAYMENT_INBOUND", None, FaultKind::Drop, Some(1));
    let dropped = pix("2.00");
    fault(&h, FaultTarget::Webhooks, "PIX_PAYMENT_INBOUND", None, FaultKind::Reorder, Some(1));
    let first = pix("3.00");
    let second = pix("4.00");
    let got = eventually(5, || {
        let ev = rx.events();
        (ev.len() >= 4).then_some(ev)
    })
    .await;
    let order: Vec<String> = got[2..].iter().map(|(_, e)| e2e_of(e)).collect();
    assert_eq!(order, vec![second, first], "the held event arrives after the next one");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.events().iter().all(|(_, e)| e2e_of(e) != dropped), "dropped events never arrive");
}
