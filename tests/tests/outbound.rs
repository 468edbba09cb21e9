//! The outbound policy end to end (issue #12, item 5): tenant webhooks and dynamic QR-code
//! locations aimed at loopback, private, link-local, CGNAT or IPv4-mapped addresses, or at a name
//! resolving to loopback, are refused before any connection (a local listener counts them) with
//! one generic answer; the allowlist is what lets the tests' loopback receivers through; webhook
//! URLs are https outside demo mode and capped per tenant; one tenant's hanging receiver cannot
//! starve another tenant's deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use pix_core::brcode::BrCode;
use pix_core::clock::Clock;
use pix_e2e::{TestApp, TestTenant, error_code};
use pix_server::config::Config;
use pix_server::outbound::TENANT_MESSAGE;
use pix_server::webhooks::EngineSettings;
use pix_store::testing::TestStore;
use pix_store::webhook_endpoints::NewWebhookEndpoint;
use reqwest::Method;
use serde_json::{Value, json};

/// `sqlite::<name>` and `postgres::<name>`, each given a fresh database.
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(pix_store::testing::TestStore::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = pix_store::testing::TestStore::postgres().await else { return };
                    super::$name(db).await;
                }
            )*
        }
    };
}

db_tests!(
    webhooks_to_internal_addresses_are_refused_before_any_connection,
    qr_locations_at_internal_addresses_are_refused_before_any_connection,
    the_allowlist_is_what_lets_loopback_through,
    webhook_urls_are_https_outside_demo_and_capped_per_tenant,
    a_tenant_with_a_hanging_receiver_cannot_starve_another,
);

/// A listener on loopback that counts the connections it accepts (and answers 200 to each).
struct Trap {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl Trap {
    async fn start() -> Trap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ =
                        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                });
            }
        });
        Trap { addr, accepted }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The five literal targets of the issue, with the trap's port where it is a loopback one.
fn literal_hosts(trap: &Trap) -> Vec<String> {
    let port = trap.port();
    vec![
        format!("127.0.0.1:{port}"),
        "10.0.0.1".into(),
        "169.254.169.254".into(),
        format!("[::ffff:127.0.0.1]:{port}"),
        "100.64.0.1".into(),
    ]
}

/// Settings where a delivery gets one attempt and is then dead-lettered.
fn one_attempt() -> EngineSettings {
    EngineSettings {
        schedule: vec![],
        poll_interval: Duration::from_millis(10),
        request_timeout: Duration::from_secs(5),
        ..EngineSettings::default()
    }
}

async fn create_endpoint(app: &TestApp, tenant: &TestTenant, url: &str) -> reqwest::Response {
    app.request(Method::POST, "/v1/webhooks/endpoints", &tenant.token).json(&json!({"url": url})).send().await.unwrap()
}

/// Polls (real time, without moving the manual clock) until `check` holds; fails after 15 s.
async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn failed_deliveries(app: &TestApp) -> Value {
    let response = app
        .request(Method::GET, "/v1/admin/webhooks/deliveries?limit=100&status=failed", &app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn webhooks_to_internal_addresses_are_refused_before_any_connection(db: TestStore) {
    // No allowlist: the host as deployed.
    let app = TestApp::start_with(db, Config::default()).await;
    let tenant = app.tenant("ssrf").await;
    let trap = Trap::start().await;

    // Literal addresses are refused at registration.
    for host in literal_hosts(&trap) {
        let response = create_endpoint(&app, &tenant, &format!("http://{host}/hook")).await;
        assert_eq!(response.status(), 422, "{host}");
        assert_eq!(error_code(response).await, "PIX-0031", "{host}");
    }
    // A name is only known at delivery time: registered, then refused when it resolves.
    let by_name = create_endpoint(&app, &tenant, &format!("http://localhost:{}/hook", trap.port())).await;
    assert_eq!(by_name.status(), 201);
    // Endpoints stored before the policy (or straight in the database) are refused at delivery.
    for host in literal_hosts(&trap) {
        let endpoint = NewWebhookEndpoint {
            url: format!("http://{host}/hook"),
            flow_type: None,
            entity_type: None,
            enabled: true,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            description: String::new(),
        };
        app.db.store.create_webhook_endpoint(tenant.id, &endpoint, app.clock.now()).await.unwrap();
    }

    app.run_webhook_engine(one_attempt());
    app.record_event(tenant.id, "TRANSFER", "CASHOUT", "tr-1", &json!({"id": "tr-1"})).await;
    wait_for("six dead-lettered deliveries", async || failed_deliveries(&app).await["total"] == 6).await;
    let failed = failed_deliveries(&app).await;
    for item in failed["items"].as_array().unwrap() {
        assert_eq!(item["lastError"], TENANT_MESSAGE, "one generic reason whatever the cause: {item}");
        assert!(item["lastStatusCode"].is_null(), "{item}");
    }
    assert_eq!(trap.accepted(), 0, "no connection reached the loopback listener");
}

async fn qr_locations_at_internal_addresses_are_refused_before_any_connection(db: TestStore) {
    let app = TestApp::start_with(db, Config::default()).await;
    let tenant = app.tenant("ssrf").await;
    let account = app.sandbox.data.accounts[0].account_id.clone();
    let trap = Trap::start().await;
    let mut hosts = literal_hosts(&trap);
    hosts.push(format!("localhost:{}", trap.port()));
    let mut answers = std::collections::BTreeSet::new();
    for host in hosts {
        let emv = BrCode::dynamic_code(format!("{host}/qr/v2/cob/0123456789abcdef"), "Ana Pereira", "SAO PAULO")
            .build()
            .unwrap()
            .encode();
        let response = app
            .request(Method::POST, "/v1/qrcodes/decode", &tenant.token)
            .header("X-Account-Id", &account)
            .json(&json!({"emv": emv}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!((status, body["code"].as_str()), (502, Some("PIX-0302")), "{host}: {body}");
        answers.insert(body["message"].as_str().unwrap().to_owned());
    }
    assert_eq!(answers.into_iter().collect::<Vec<_>>(), vec![TENANT_MESSAGE.to_owned()], "one answer for all");
    assert_eq!(trap.accepted(), 0, "no connection reached the loopback listener");
}

/// The control of the two tests above: with `allow_networks = ["127.0.0.1/32"]` (what the
/// harness sets) the same loopback targets are reached, so the trap would have seen a connection.
async fn the_allowlist_is_what_lets_loopback_through(db: TestStore) {
    let app = TestApp::start(db, Config::default()).await;
    let tenant = app.tenant("allowed").await;
    let account = app.sandbox.data.accounts[0].account_id.clone();
    let trap = Trap::start().await;

    let emv = BrCode::dynamic_code(format!("localhost:{}/qr/v2/cob/0123456789abcdef", trap.port()), "Ana", "SAO PAULO")
        .build()
        .unwrap()
        .encode();
    let response = app
        .request(Method::POST, "/v1/qrcodes/decode", &tenant.token)
        .header("X-Account-Id", &account)
        .json(&json!({"emv": emv}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502, "the trap's empty answer is no charge");
    assert_eq!(trap.accepted(), 1, "the name resolved to an allowed loopback address and was fetched");

    let created = create_endpoint(&app, &tenant, &format!("http://127.0.0.1:{}/hook", trap.port())).await;
    assert_eq!(created.status(), 201);
    app.run_webhook_engine(one_attempt());
    app.record_event(tenant.id, "TRANSFER", "CASHOUT", "tr-1", &json!({})).await;
    wait_for("the delivery to reach the trap", async || trap.accepted() == 2).await;
}

async fn webhook_urls_are_https_outside_demo_and_capped_per_tenant(db: TestStore) {
    let mut config = Config { demo: false, ..Config::default() };
    config.outbound.max_webhook_endpoints = 2;
    let app = TestApp::start(db, config).await;
    // Outside demo mode every tenant brings its own BTG client.
    let tenant = app.institution("prod", "11111111").await.tenant;
    let other = app.institution("other", "22222222").await.tenant;

    let plain = create_endpoint(&app, &tenant, "http://hooks.example.com/pix").await;
    assert_eq!(plain.status(), 422, "plain http outside demo mode");
    assert_eq!(error_code(plain).await, "PIX-0031");

    let first = create_endpoint(&app, &tenant, "https://hooks.example.com/a").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(create_endpoint(&app, &tenant, "https://hooks.example.com/b").await.status(), 201);
    let third = create_endpoint(&app, &tenant, "https://hooks.example.com/c").await;
    assert_eq!(third.status(), 409);
    assert_eq!(error_code(third).await, "PIX-0030");
    // The cap is per tenant.
    assert_eq!(create_endpoint(&app, &other, "https://hooks.example.com/x").await.status(), 201);
    // Deleting one makes room again.
    let id = first["id"].as_str().unwrap();
    let deleted =
        app.request(Method::DELETE, &format!("/v1/webhooks/endpoints/{id}"), &tenant.token).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(create_endpoint(&app, &tenant, "https://hooks.example.com/c").await.status(), 201);
}

/// A receiver that holds every request until the gate opens.
#[derive(Clone)]
struct Gated {
    open: tokio::sync::watch::Receiver<bool>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
}

async fn gated(State(g): State<Gated>) -> StatusCode {
    let now = g.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    g.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let mut open = g.open.clone();
    let _ = open.wait_for(|o| *o).await;
    g.in_flight.fetch_sub(1, Ordering::SeqCst);
    g.served.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn start_gated(open: tokio::sync::watch::Receiver<bool>) -> (String, Gated) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let g = Gated { open, in_flight: Arc::default(), max_in_flight: Arc::default(), served: Arc::default() };
    let app = axum::Router::new().fallback(gated).with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, g)
}

async fn a_tenant_with_a_hanging_receiver_cannot_starve_another(db: TestStore) {
    let app = TestApp::start(db, Config::default()).await;
    let (a, b) = (app.tenant("slow").await, app.tenant("fast").await);
    let (gate, closed) = tokio::sync::watch::channel(false);
    let (slow_url, slow) = start_gated(closed).await;
    let (_always_open, open) = tokio::sync::watch::channel(true);
    let (fast_url, fast) = start_gated(open).await;
    assert_eq!(create_endpoint(&app, &a, &slow_url).await.status(), 201);
    assert_eq!(create_endpoint(&app, &b, &fast_url).await.status(), 201);

    // Four slots in the process, two per tenant: tenant A's hanging receiver holds two at most.
    app.run_webhook_engine(EngineSettings {
        concurrency: 4,
        tenant_concurrency: 2,
        request_timeout: Duration::from_secs(60),
        ..one_attempt()
    });
    for n in 0..6 {
        app.record_event(a.id, "TRANSFER", "CASHOUT", &format!("a-{n}"), &json!({})).await;
    }
    wait_for("tenant A's receiver to hold requests", async || slow.in_flight.load(Ordering::SeqCst) >= 2).await;
    app.record_event(b.id, "TRANSFER", "CASHOUT", "b-1", &json!({})).await;
    wait_for("tenant B's delivery while A's hang", async || fast.served.load(Ordering::SeqCst) == 1).await;
    assert_eq!(slow.served.load(Ordering::SeqCst), 0, "A's receiver is still holding everything");
    assert_eq!(slow.max_in_flight.load(Ordering::SeqCst), 2, "never more than the tenant's share");

    gate.send_replace(true);
    wait_for("all of A's deliveries", async || slow.served.load(Ordering::SeqCst) == 6).await;
    assert_eq!(slow.max_in_flight.load(Ordering::SeqCst), 2);
}
