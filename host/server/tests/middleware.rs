//! The edge stack and idempotency layer around routes of our own, to reach behaviours the
//! product routes cannot trigger on demand: a handler still running, a panic, a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use pix_core::clock::SystemClock;
use pix_server::account::OwnedAccount;
use pix_server::app::{AppState, with_edge_layers};
use pix_server::config::Config;
use pix_server::embedded::{EmbeddedSandbox, start_sandbox};
use pix_server::extract::AccountId;
use pix_server::integrations::Integrations;
use pix_server::{auth, cli, idempotency};
use pix_store::tenants::NewTenant;
use pix_store::testing::TestStore;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct Harness {
    url: String,
    sandbox: EmbeddedSandbox,
    token: String,
    calls: Arc<AtomicUsize>,
    release: Arc<Notify>,
    shutdown: CancellationToken,
    _db: TestStore,
}

async fn harness(config: Config) -> Harness {
    harness_on(TestStore::sqlite().await, config).await
}

async fn harness_on(db: TestStore, config: Config) -> Harness {
    let now = chrono::Utc::now();
    let tenant = db
        .create_tenant(
            NewTenant {
                name: "t".into(),
                ispb: "12345678".into(),
                midaz_organization_id: None,
                midaz_ledger_id: None,
                settings: serde_json::json!({}),
                btg: None,
            },
            now,
        )
        .await
        .unwrap();
    let token = db.issue_token(Some(tenant.id), "t", now).await.unwrap().token;
    let sandbox = start_sandbox(7, None, "middleware-test-secret").await.unwrap();
    db.set_tenant_ledger(tenant.id, &sandbox.data.organization_id, &sandbox.data.ledger_id, now).await.unwrap();
    let state = AppState::new(
        db.store.clone(),
        config,
        Arc::new(SystemClock),
        Arc::new(Integrations::sandbox(sandbox.integrations.clone())),
        pix_server::policies::PolicyRuntime::with_default_limits(
            db.store.clone(),
            Arc::new(SystemClock),
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        )
        .await
        .unwrap(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (c, r) = (calls.clone(), release.clone());
    let routes = Router::new()
        .route(
            "/slow",
            post(move || {
                let (c, r) = (c.clone(), r.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    r.notified().await;
                    (axum::http::StatusCode::CREATED, "done")
                }
            }),
        )
        .route("/create", post(|| async { (axum::http::StatusCode::CREATED, uuid::Uuid::now_v7().to_string()) }))
        .route(
            "/panic",
            post(|| async {
                if true {
                    panic!("secret internal detail")
                }
            }),
        )
        .route("/sleep", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
        .route("/account", get(|AccountId(id): AccountId| async move { id.to_string() }))
        .route("/owned", get(|account: OwnedAccount| async move { account.holder.alias_id }))
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
        .route_layer(from_fn_with_state(state.clone(), auth::require_tenant));
    let app = with_edge_layers(routes, &state.config).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(cli::serve_http(listener, app, shutdown.clone()));
    Harness { url, sandbox, token, calls, release, shutdown, _db: db }
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_key_in_flight_is_refused_and_the_handler_runs_once() {
    in_flight_is_refused(harness(Config::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_key_in_flight_is_refused_and_the_handler_runs_once() {
    if let Some(db) = TestStore::postgres().await {
        in_flight_is_refused(harness_on(db, Config::default()).await).await;
    }
}

async fn in_flight_is_refused(h: Harness) {
    let client = reqwest::Client::new();
    let send = || {
        client.post(format!("{}/slow", h.url)).bearer_auth(&h.token).header("x-idempotency", "k").body("same").send()
    };
    let first = tokio::spawn(send());
    while h.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let concurrent = send().await.unwrap();
    assert_eq!(concurrent.status(), 409);
    assert!(concurrent.headers().contains_key("retry-after"));
    assert_eq!(json(concurrent).await["code"], "PIX-0018");
    h.release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!((first.status().as_u16(), first.headers()["x-idempotency-replayed"].to_str().unwrap()), (201, "false"));
    let replay = send().await.unwrap();
    assert_eq!(replay.headers()["x-idempotency-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), "done");
    assert_eq!(h.calls.load(Ordering::SeqCst), 1, "the handler ran once");
    // Without a key nothing is deduplicated.
    let plain = tokio::spawn(client.post(format!("{}/slow", h.url)).bearer_auth(&h.token).send());
    while h.calls.load(Ordering::SeqCst) == 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.release.notify_one();
    assert!(!plain.await.unwrap().unwrap().headers().contains_key("x-idempotency-replayed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_key_reused_with_another_account_or_purpose_is_refused() {
    key_reuse_across_accounts(harness(Config::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_key_reused_with_another_account_or_purpose_is_refused() {
    if let Some(db) = TestStore::postgres().await {
        key_reuse_across_accounts(harness_on(db, Config::default()).await).await;
    }
}

async fn key_reuse_across_accounts(h: Harness) {
    let client = reqwest::Client::new();
    let send = |key: &str, account: Option<&str>, purpose: Option<&str>| {
        let mut request = client.post(format!("{}/create", h.url)).bearer_auth(&h.token).header("x-idempotency", key);
        if let Some(account) = account {
            request = request.header("x-account-id", account);
        }
        if let Some(purpose) = purpose {
            request = request.header("x-purpose", purpose);
        }
        request.body("{}").send()
    };
    let (a, b) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let first = send("k", Some(&a), Some("TRANSFER")).await.unwrap();
    assert_eq!(first.status(), 201);
    let created = first.text().await.unwrap();
    let replay = send("k", Some(&a), Some("TRANSFER")).await.unwrap();
    assert_eq!(replay.headers()["x-idempotency-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), created, "same key, account and purpose: a replay");

    for (account, purpose) in [
        (Some(b.as_str()), Some("TRANSFER")),
        (Some(a.as_str()), Some("INSTANT_PAYMENT_REFUND")),
        (None, Some("TRANSFER")),
    ] {
        let reuse = send("k", account, purpose).await.unwrap();
        assert_eq!(reuse.status(), 422, "{account:?} {purpose:?}");
        assert_eq!(json(reuse).await["code"], "IDEMPOTENCY_KEY_REUSE");
    }
    let other_key = send("k2", Some(&b), Some("TRANSFER")).await.unwrap();
    assert_eq!(other_key.status(), 201, "another key for the other account runs");
    assert_ne!(other_key.text().await.unwrap(), created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_becomes_a_generic_500_and_the_server_keeps_serving() {
    let h = harness(Config::default()).await;
    let client = reqwest::Client::new();
    let response = client.post(format!("{}/panic", h.url)).bearer_auth(&h.token).send().await.unwrap();
    assert_eq!(response.status(), 500);
    let body = json(response).await;
    assert_eq!(body["code"], "PIX-0000");
    assert!(!body.to_string().contains("secret internal detail"), "no internals leak: {body}");
    let again = client.get(format!("{}/account", h.url)).bearer_auth(&h.token).send().await.unwrap();
    assert_eq!(again.status(), 400, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_with_a_json_504() {
    let mut config = Config::default();
    config.server.request_timeout_ms = 200;
    config.database.acquire_timeout_ms = 50;
    config.database.statement_timeout_ms = 50;
    let h = harness(config).await;
    let response = reqwest::Client::new().get(format!("{}/sleep", h.url)).bearer_auth(&h.token).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(json(response).await["code"], "PIX-0015");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_id_header_is_required_and_must_be_a_uuid() {
    let h = harness(Config::default()).await;
    let client = reqwest::Client::new();
    let get = |value: Option<&str>| {
        let mut r = client.get(format!("{}/account", h.url)).bearer_auth(&h.token);
        if let Some(v) = value {
            r = r.header("x-account-id", v);
        }
        r.send()
    };
    assert_eq!(json(get(None).await.unwrap()).await["code"], "PIX-0001");
    assert_eq!(json(get(Some("123")).await.unwrap()).await["code"], "PIX-0002");
    let id = uuid::Uuid::now_v7().to_string();
    assert_eq!(get(Some(&id)).await.unwrap().text().await.unwrap(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_the_request_in_flight() {
    let h = harness(Config::default()).await;
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(client.post(format!("{}/slow", h.url)).bearer_auth(&h.token).send());
    while h.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 201, "accepted work is finished before exit");
    assert!(
        reqwest::Client::new().get(format!("{}/account", h.url)).send().await.is_err(),
        "new connections are refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_id_must_be_an_account_of_the_tenant_with_a_crm_alias() {
    let h = harness(Config::default()).await;
    let client = reqwest::Client::new();
    let owned =
        |id: String| client.get(format!("{}/owned", h.url)).bearer_auth(&h.token).header("x-account-id", id).send();
    let customer = &h.sandbox.data.accounts[0];
    let ok = owned(customer.account_id.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), customer.crm_alias_id.clone().unwrap());
    let stranger = owned(uuid::Uuid::now_v7().to_string()).await.unwrap();
    assert_eq!(stranger.status(), 404);
    assert_eq!(json(stranger).await["code"], "PIX-0020");
    // The fee account is in the ledger but has no holder in CRM.
    let fee = owned(h.sandbox.data.fee_account.account_id.clone()).await.unwrap();
    assert_eq!(fee.status(), 404);
    assert!(json(fee).await["message"].as_str().unwrap().contains("CRM"));
}
