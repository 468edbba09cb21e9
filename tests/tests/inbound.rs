//! BTG webhook ingress: authenticated, stored before the 2xx, processed once, nothing dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pix_core::clock::Clock;
use pix_e2e::{TestApp, WEBHOOK_SECRET, api_tests, error_code};
use pix_server::inbound::InboundHandler;
use pix_server::worker::JobFuture;
use pix_store::inbound::{InboundEvent, InboundStatus};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    a_signed_event_is_stored_then_processed_exactly_once,
    unsigned_forged_or_stale_events_are_rejected,
    unknown_event_types_are_kept_and_reported,
    events_sent_by_the_simulated_btg_are_received,
);

struct Counter(AtomicUsize);

impl InboundHandler for Counter {
    fn handle<'a>(&'a self, _event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

fn envelope(id: &str, event: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"webhookId": id, "event": event, "data": {"endToEndId": "E1234567820261123120000000000001"}}),
    )
    .unwrap()
}

async fn post(app: &TestApp, tenant: &str, body: Vec<u8>, secret: &[u8], timestamp: i64) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/inbound/btg/{tenant}", app.url))
        .header("content-type", "application/json")
        .header("x-signature-timestamp", timestamp.to_string())
        .header("x-signature", pix_sandbox::sign(secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn events(app: &TestApp, status: &str) -> Vec<Value> {
    app.request(Method::GET, &format!("/v1/admin/inbound-events?status={status}"), &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for_status(app: &TestApp, status: &str, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let found = events(app, status).await;
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {count} event(s) reached {status}");
}

async fn a_signed_event_is_stored_then_processed_exactly_once(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let counter = Arc::new(Counter(AtomicUsize::new(0)));
    app.run_inbound_worker(vec![("PIX_PAYMENT_INBOUND", counter.clone())]);
    let now = app.clock.now().timestamp();
    let first =
        post(app, &tenant.id.to_string(), envelope("evt-1", "PIX_PAYMENT_INBOUND"), WEBHOOK_SECRET.as_bytes(), now)
            .await;
    assert_eq!(first.status(), 202);
    assert_eq!(first.json::<Value>().await.unwrap()["duplicate"], false);
    let again =
        post(app, &tenant.id.to_string(), envelope("evt-1", "PIX_PAYMENT_INBOUND"), WEBHOOK_SECRET.as_bytes(), now)
            .await;
    assert_eq!(again.status(), 202, "a redelivery is acknowledged");
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);

    let processed = wait_for_status(app, "processed", 1).await;
    assert_eq!(processed[0]["deliveries"], 2);
    assert_eq!(processed[0]["payload"]["event"], "PIX_PAYMENT_INBOUND");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "processed once despite two deliveries");
}

async fn unsigned_forged_or_stale_events_are_rejected(app: &TestApp) {
    let tenant = app.tenant("acme").await.id.to_string();
    let now = app.clock.now().timestamp();
    let forged = post(app, &tenant, envelope("e", "PIX_PAYMENT"), b"not-the-shared-secret", now).await;
    assert_eq!(forged.status(), 401);
    assert_eq!(error_code(forged).await, "PIX-0009");
    let stale = post(app, &tenant, envelope("e", "PIX_PAYMENT"), WEBHOOK_SECRET.as_bytes(), now - 301).await;
    assert_eq!(stale.status(), 401);
    let unsigned = app
        .http
        .post(format!("{}/v1/inbound/btg/{tenant}", app.url))
        .header("content-type", "application/json")
        .body(envelope("e", "PIX_PAYMENT"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    // A body changed after signing fails too.
    let body = envelope("e", "PIX_PAYMENT");
    let signature = pix_sandbox::sign(WEBHOOK_SECRET.as_bytes(), now, &body);
    let tampered = app
        .http
        .post(format!("{}/v1/inbound/btg/{tenant}", app.url))
        .header("x-signature-timestamp", now.to_string())
        .header("x-signature", signature)
        .body(envelope("e", "PIX_REVERSAL"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);

    let unknown_tenant = uuid::Uuid::now_v7().to_string();
    let response = post(app, &unknown_tenant, envelope("e", "PIX_PAYMENT"), WEBHOOK_SECRET.as_bytes(), now).await;
    assert_eq!(response.status(), 401, "an unknown tenant looks like a bad signature: tenants are not enumerable");
    let malformed = post(app, &tenant, b"{\"event\":\"PIX_PAYMENT\"}".to_vec(), WEBHOOK_SECRET.as_bytes(), now).await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(error_code(malformed).await, "PIX-0003");
    assert!(events(app, "pending").await.is_empty(), "nothing rejected was stored");
}

async fn unknown_event_types_are_kept_and_reported(app: &TestApp) {
    let tenant = app.tenant("acme").await.id.to_string();
    app.run_inbound_worker(vec![]);
    let now = app.clock.now().timestamp();
    let response = post(app, &tenant, envelope("evt-x", "SOMETHING_NEW"), WEBHOOK_SECRET.as_bytes(), now).await;
    assert_eq!(response.status(), 202);
    let unhandled = wait_for_status(app, "unhandled", 1).await;
    assert_eq!(unhandled[0]["eventType"].as_str(), Some("SOMETHING_NEW"));
    let stored = app.db.list_inbound_events(Some(InboundStatus::Unhandled), 10).await.unwrap();
    assert_eq!(stored[0].payload["data"]["endToEndId"], "E1234567820261123120000000000001", "the raw payload is kept");
    let bad_filter =
        app.request(Method::GET, "/v1/admin/inbound-events?status=lost", &app.admin_token).send().await.unwrap();
    assert_eq!(error_code(bad_filter).await, "PIX-0004");
}

async fn events_sent_by_the_simulated_btg_are_received(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    app.sandbox.handle.set_webhook_url(Some(format!("{}/v1/inbound/btg/{}", app.url, tenant.id)));
    let customer = &app.sandbox.data.accounts[0];
    app.sandbox
        .handle
        .inbound_pix(&json!({
            "amount": "12.34",
            "creditor": {"branch": customer.branch, "account": customer.number, "accountType": "CACC",
                         "taxId": customer.document, "name": customer.name},
        }))
        .unwrap();
    app.run_inbound_worker(vec![]);
    let received = wait_for_status(app, "unhandled", 1).await;
    assert_eq!(received[0]["eventType"].as_str(), Some("PIX_PAYMENT_INBOUND"));
}

/// BTG keeps retrying while the host is down; the event lands once the host is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_while_the_host_is_down_arrives_after_it_comes_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let db = pix_store::testing::TestStore::sqlite().await;
    let now = chrono::Utc::now();
    let tenant = db
        .create_tenant(
            pix_store::tenants::NewTenant {
                name: "acme".into(),
                ispb: "12345678".into(),
                midaz_organization_id: None,
                midaz_ledger_id: None,
                settings: json!({}),
                btg: None,
            },
            now,
        )
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/inbound/btg/{}", tenant.id);
    let sandbox = pix_server::embedded::start_sandbox(3, Some(url), WEBHOOK_SECRET).await.unwrap();
    let customer = &sandbox.data.accounts[0];
    sandbox
        .handle
        .inbound_pix(&json!({"amount": "5.00", "creditor": {"branch": customer.branch, "account": customer.number,
            "accountType": "CACC", "taxId": customer.document, "name": customer.name}}))
        .unwrap();
    // Let a few deliveries fail against the closed port.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let failed_attempts = sandbox.handle.deliveries().iter().filter(|d| d.outcome == "failed").count();
    assert!(failed_attempts >= 1, "the simulator tried while the host was down");
    assert!(db.list_inbound_events(None, 10).await.unwrap().is_empty());

    let mut config = pix_server::config::Config::default();
    config.btg_webhook.hmac_secret = Some(WEBHOOK_SECRET.into());
    let state = pix_server::app::AppState::new(
        db.store.clone(),
        config,
        Arc::new(pix_core::clock::SystemClock),
        Arc::new(pix_server::integrations::Integrations::sandbox(sandbox.integrations.clone())),
        pix_server::policies::PolicyRuntime::with_default_limits(
            db.store.clone(),
            Arc::new(pix_core::clock::SystemClock),
            &pix_e2e::shipped_policies(),
        )
        .await
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(pix_server::cli::serve_http(listener, pix_server::app::router(state), shutdown.clone()));
    for _ in 0..200 {
        if let Some(event) = db.list_inbound_events(None, 10).await.unwrap().first() {
            assert_eq!(event.event_type, "PIX_PAYMENT_INBOUND");
            shutdown.cancel();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the event never arrived after the host came back");
}
