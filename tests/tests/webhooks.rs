//! Outbound webhooks end to end: events recorded as features record them, delivered by the engine
//! to receivers on loopback, inspected and redelivered through the admin API.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use pix_core::clock::Clock;
use pix_e2e::{TestApp, TestTenant, api_tests, error_code};
use pix_server::webhooks::EngineSettings;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

api_tests!(
    a_receiver_that_fails_then_recovers_gets_the_event_once_with_a_stable_id,
    an_always_failing_receiver_is_dead_lettered_then_redelivered,
    routing_falls_back_from_entity_to_flow_to_default_and_honours_disabled_endpoints,
    signatures_verify_with_an_independent_verifier,
    events_of_one_entity_arrive_in_order,
    other_tenants_never_receive_a_tenants_events,
    events_without_an_endpoint_are_kept_as_not_routed,
    gone_disables_the_endpoint_and_admin_routes_need_an_admin,
    an_endpoint_gets_at_most_its_concurrency_limit_at_once,
);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Four attempts, milliseconds apart (by the manual clock, which `eventually` moves on).
fn settings() -> EngineSettings {
    EngineSettings {
        schedule: vec![ms(100), ms(200), ms(400)],
        overload_penalty: ms(100),
        poll_interval: ms(10),
        request_timeout: Duration::from_secs(5),
        ..EngineSettings::default()
    }
}

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
    status: u16,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

type Respond = dyn Fn(&Hit, usize) -> u16 + Send + Sync;

#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    respond: Arc<Respond>,
    delay: Duration,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Receiver {
    /// A receiver on loopback; `respond(hit, earlier hits with the same path and id)` picks the status.
    async fn start(respond: impl Fn(&Hit, usize) -> u16 + Send + Sync + 'static) -> Receiver {
        Self::start_slow(Duration::ZERO, respond).await
    }

    async fn start_slow(delay: Duration, respond: impl Fn(&Hit, usize) -> u16 + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}", listener.local_addr().unwrap()),
            hits: Arc::default(),
            respond: Arc::new(respond),
            delay,
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let app = axum::Router::new().fallback(receive).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn hits_at(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }
}

async fn receive(State(rx): State<Receiver>, uri: Uri, headers: HeaderMap, body: String) -> StatusCode {
    let now = rx.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    rx.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(rx.delay).await;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut hit = Hit {
        path: uri.path().to_owned(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
        status: 0,
    };
    let status = {
        let mut hits = rx.hits.lock().unwrap();
        let earlier = hits.iter().filter(|h| h.path == hit.path && h.id == hit.id).count();
        hit.status = (rx.respond)(&hit, earlier);
        hits.push(hit.clone());
        hit.status
    };
    rx.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::from_u16(status).unwrap()
}

/// Polls `check` while moving the manual clock on a second at a time, so that retries fall due.
async fn eventually<T>(app: &TestApp, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(found) = check().await {
            return found;
        }
        app.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(ms(15)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets the engine run for a while (clock moving) so that anything still due would happen.
async fn settle(app: &TestApp) {
    for _ in 0..20 {
        app.clock.advance(chrono::Duration::seconds(1));
        tokio::time::sleep(ms(15)).await;
    }
}

struct Endpoint {
    id: String,
    secret: String,
}

async fn endpoint(
    app: &TestApp,
    tenant: &TestTenant,
    url: &str,
    flow: Option<&str>,
    entity: Option<&str>,
    enabled: bool,
) -> Endpoint {
    let response = app
        .request(Method::POST, "/v1/webhooks/endpoints", &tenant.token)
        .json(&json!({"url": url, "flowType": flow, "entityType": entity, "enabled": enabled}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    Endpoint { id: body["id"].as_str().unwrap().to_owned(), secret: body["secret"].as_str().unwrap().to_owned() }
}

async fn admin_get(app: &TestApp, path: &str) -> Value {
    let response = app.request(Method::GET, path, &app.admin_token).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

async fn deliveries(app: &TestApp, query: &str) -> Value {
    admin_get(app, &format!("/v1/admin/webhooks/deliveries?limit=100&{query}")).await
}

/// The page of deliveries matching `query` once it holds `total` of them.
async fn deliveries_when(app: &TestApp, query: &str, total: i64) -> Value {
    eventually(app, &format!("{total} deliveries with {query}"), async || {
        let page = deliveries(app, query).await;
        (page["total"] == total).then_some(page)
    })
    .await
}

fn statuses(hits: &[Hit]) -> Vec<u16> {
    hits.iter().map(|h| h.status).collect()
}

async fn a_receiver_that_fails_then_recovers_gets_the_event_once_with_a_stable_id(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let rx = Receiver::start(|_, earlier| if earlier < 2 { 500 } else { 200 }).await;
    let hook = endpoint(app, &tenant, &rx.at("/hook"), None, None, true).await;
    app.run_webhook_engine(settings());
    let event = app.record_event(tenant.id, "TRANSFER", "CASHOUT", "tr-1", &json!({"status": "COMPLETED"})).await;

    let page = deliveries_when(app, &format!("status=delivered&endpointId={}", hook.id), 1).await;
    settle(app).await;
    let hits = rx.hits();
    assert_eq!(statuses(&hits), vec![500, 500, 200], "two failures, then exactly one success");
    assert!(hits.iter().all(|h| h.id == event.to_string()), "webhook-id is the event id on every attempt");
    let stamps: Vec<i64> = hits.iter().map(|h| h.timestamp.parse().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "each attempt is stamped afresh: {stamps:?}");
    assert!(hits.windows(2).all(|w| w[0].body == w[1].body), "every attempt sends the same bytes");

    let delivery = &page["items"][0];
    assert_eq!(delivery["eventId"], event.to_string());
    assert_eq!((delivery["status"].as_str(), delivery["attempts"].as_i64()), (Some("delivered"), Some(3)));
    let detail = admin_get(app, &format!("/v1/admin/webhooks/deliveries/{}", delivery["id"])).await;
    let logged: Vec<i64> =
        detail["attemptsLog"].as_array().unwrap().iter().map(|a| a["statusCode"].as_i64().unwrap()).collect();
    assert_eq!(logged, vec![500, 500, 200], "attempts are recorded in order");
    assert_eq!(deliveries(app, "status=failed").await["total"], 0);

    let metrics = app.http.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    for name in ["webhook_delivery_attempts_total", "webhook_deliveries_total", "webhook_delivery_duration_seconds"] {
        assert!(metrics.contains(name), "{name} is exported");
    }
}

async fn an_always_failing_receiver_is_dead_lettered_then_redelivered(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let recovered = Arc::new(AtomicBool::new(false));
    let flag = recovered.clone();
    let rx = Receiver::start(move |_, _| if flag.load(Ordering::SeqCst) { 204 } else { 503 }).await;
    let hook = endpoint(app, &tenant, &rx.at("/hook"), Some("TRANSFER"), None, true).await;
    app.run_webhook_engine(settings());
    let first = app.record_event(tenant.id, "TRANSFER", "CASHOUT", "tr-1", &json!({"n": 1})).await;
    let second = app.record_event(tenant.id, "TRANSFER", "CASHIN", "tr-2", &json!({"n": 2})).await;

    let query = format!("tenantId={}&endpointId={}", tenant.id, hook.id);
    let failed = deliveries_when(app, &query, 2).await;
    settle(app).await;
    assert_eq!(rx.hits().len(), 8, "four attempts each, then no more");
    for item in failed["items"].as_array().unwrap() {
        assert_eq!(item["status"], "failed");
        assert_eq!(item["attempts"], 4);
        assert_eq!(item["lastStatusCode"], 503);
        assert!(item["failedAt"].is_string());
    }
    let only_first = deliveries(app, &format!("{query}&entityId=tr-1")).await;
    assert_eq!(only_first["total"], 1);
    assert_eq!(only_first["items"][0]["eventId"], first.to_string());
    assert_eq!(deliveries(app, "entityType=CASHIN&flowType=TRANSFER").await["items"][0]["eventId"], second.to_string());

    recovered.store(true, Ordering::SeqCst);
    let id = only_first["items"][0]["id"].as_i64().unwrap();
    let response = app
        .request(Method::POST, &format!("/v1/admin/webhooks/deliveries/{id}/redeliver"), &app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let requeued: Value = response.json().await.unwrap();
    assert_eq!((requeued["status"].as_str(), requeued["redeliveries"].as_i64()), (Some("pending"), Some(1)));
    deliveries_when(app, &format!("status=delivered&{query}"), 1).await;
    assert_eq!(deliveries(app, &query).await["total"], 1, "the other one is still dead-lettered");

    let redeliver_all = |body: Value| {
        app.request(Method::POST, "/v1/admin/webhooks/deliveries/redeliver-failed", &app.admin_token).json(&body).send()
    };
    let other = app.tenant("other").await;
    let none: Value = redeliver_all(json!({"tenantId": other.id})).await.unwrap().json().await.unwrap();
    assert_eq!(none["redelivered"], 0, "another tenant has no dead letters");
    let response = redeliver_all(json!({"endpointId": hook.id})).await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap()["redelivered"], 1);
    deliveries_when(app, &format!("status=delivered&{query}"), 2).await;
    assert_eq!(deliveries(app, &query).await["total"], 0);

    let successes: Vec<String> = rx.hits().into_iter().filter(|h| h.status == 204).map(|h| h.id).collect();
    assert_eq!(successes, vec![first.to_string(), second.to_string()], "redelivered with the original ids");
    let missing = app.request(Method::POST, "/v1/admin/webhooks/deliveries/999999/redeliver", &app.admin_token);
    let response = missing.send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "PIX-0019");
}

async fn routing_falls_back_from_entity_to_flow_to_default_and_honours_disabled_endpoints(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let rx = Receiver::start(|_, _| 200).await;
    endpoint(app, &tenant, &rx.at("/default"), None, None, true).await;
    endpoint(app, &tenant, &rx.at("/flow"), Some("TRANSFER"), None, true).await;
    endpoint(app, &tenant, &rx.at("/entity"), Some("TRANSFER"), Some("CASHOUT"), true).await;
    endpoint(app, &tenant, &rx.at("/disabled"), Some("DICT"), Some("CLAIM"), false).await;
    endpoint(app, &tenant, &rx.at("/disabled"), Some("REFUND"), None, false).await;
    app.run_webhook_engine(settings());
    let payload = json!({});
    let cashout = app.record_event(tenant.id, "TRANSFER", "CASHOUT", "e-1", &payload).await;
    let cashin = app.record_event(tenant.id, "TRANSFER", "CASHIN", "e-2", &payload).await;
    let refund_request = app.record_event(tenant.id, "DICT", "REFUND", "e-3", &payload).await;
    let claim = app.record_event(tenant.id, "DICT", "CLAIM", "e-4", &payload).await;
    let refund = app.record_event(tenant.id, "REFUND", "CASHIN", "e-5", &payload).await;

    deliveries_when(app, "status=delivered", 3).await;
    let events = eventually(app, "five routed events", async || {
        let page = admin_get(app, &format!("/v1/admin/webhooks/events?tenantId={}&limit=100", tenant.id)).await;
        (page["total"] == 5).then_some(page)
    })
    .await;
    settle(app).await;
    let ids = |path: &str| rx.hits_at(path).into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids("/entity"), vec![cashout.to_string()], "the entity endpoint wins over flow and default");
    assert_eq!(ids("/flow"), vec![cashin.to_string()], "another entity of the flow falls back to the flow");
    assert_eq!(ids("/default"), vec![refund_request.to_string()], "another flow falls back to the default");
    assert!(ids("/disabled").is_empty(), "disabled endpoints receive nothing");
    let routing = |id: uuid::Uuid| {
        events["items"].as_array().unwrap().iter().find(|e| e["id"] == id.to_string()).unwrap()["routing"].clone()
    };
    assert_eq!(routing(cashout), "routed");
    assert_eq!(routing(claim), "disabled", "a disabled entity endpoint switches the entity off, no fallback");
    assert_eq!(routing(refund), "disabled", "a disabled flow endpoint switches the flow off, no fallback");
    let disabled = admin_get(app, "/v1/admin/webhooks/events?routing=disabled").await;
    assert_eq!(disabled["total"], 2);
}

type HmacSha256 = Hmac<Sha256>;

/// What a receiver would do with only the spec in hand (no pix-host code).
fn independently_verified(secret: &str, hit: &Hit, now: i64) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let timestamp: i64 = hit.timestamp.parse().unwrap();
    if (now - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = HmacSha256::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.body).as_bytes());
    let expected = mac.finalize().into_bytes();
    hit.signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| STANDARD.decode(s).is_ok_and(|sig| sig[..] == expected[..]))
}

async fn signatures_verify_with_an_independent_verifier(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let rx = Receiver::start(|_, _| 200).await;
    let hook = endpoint(app, &tenant, &rx.at("/hook"), Some("DICT"), Some("CLAIM"), true).await;
    app.run_webhook_engine(settings());
    let payload = json!({"claimId": "c-1", "status": "OPEN", "key": {"type": "EMAIL", "value": "ana@example.com"}});
    let event = app.record_event(tenant.id, "DICT", "CLAIM", "c-1", &payload).await;
    deliveries_when(app, "status=delivered", 1).await;

    let hit = rx.hits().remove(0);
    assert_eq!(hit.id, event.to_string());
    assert_eq!(hit.content_type, "application/json");
    assert_eq!(hit.json(), json!({"entityType": "CLAIM", "flowType": "DICT", "payload": payload}));
    let now = app.clock.now().timestamp();
    assert!(independently_verified(&hook.secret, &hit, now), "the signature verifies per the spec");
    let our_verifier = pix_server::webhooks::signature::verify;
    our_verifier(&hook.secret, &hit.id, &hit.timestamp, &hit.signature, hit.body.as_bytes(), now).unwrap();

    let tampered = Hit { body: hit.body.replace("OPEN", "DONE"), ..hit.clone() };
    assert!(!independently_verified(&hook.secret, &tampered, now), "a changed body does not verify");
    let other = endpoint(app, &tenant, &rx.at("/other"), None, None, true).await;
    assert!(!independently_verified(&other.secret, &hit, now), "another endpoint's secret does not verify");
}

async fn events_of_one_entity_arrive_in_order(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let rx = Receiver::start(move |hit, _| {
        let body = hit.json();
        let first_of_tr1 = body["payload"]["entity"] == "tr-1" && body["payload"]["seq"] == 1;
        if first_of_tr1 && !flag.load(Ordering::SeqCst) { 500 } else { 200 }
    })
    .await;
    endpoint(app, &tenant, &rx.at("/hook"), None, None, true).await;
    // Plenty of attempts, so the first event is still retrying when the test releases it.
    app.run_webhook_engine(EngineSettings { schedule: vec![ms(500); 20], ..settings() });
    for seq in 1..=3 {
        app.record_event(tenant.id, "TRANSFER", "CASHOUT", "tr-1", &json!({"entity": "tr-1", "seq": seq})).await;
    }
    app.record_event(tenant.id, "TRANSFER", "CASHOUT", "tr-2", &json!({"entity": "tr-2", "seq": 1})).await;

    eventually(app, "tr-2 delivered while tr-1 retries", async || {
        let other_done = deliveries(app, "status=delivered&entityId=tr-2").await["total"] == 1;
        let all_routed = deliveries(app, "status=pending&entityId=tr-1").await["total"] == 3;
        (other_done && all_routed && rx.hits().iter().filter(|h| h.status == 500).count() >= 2).then_some(())
    })
    .await;
    let seen = |entity: &str| {
        rx.hits()
            .iter()
            .map(Hit::json)
            .filter(|b| b["payload"]["entity"] == entity)
            .map(|b| b["payload"]["seq"].clone())
            .collect::<Vec<_>>()
    };
    assert!(seen("tr-1").iter().all(|s| s == 1), "later tr-1 events wait while the first retries");

    released.store(true, Ordering::SeqCst);
    deliveries_when(app, "status=delivered", 4).await;
    let delivered: Vec<Value> = rx
        .hits()
        .iter()
        .filter(|h| h.status == 200)
        .map(Hit::json)
        .filter(|b| b["payload"]["entity"] == "tr-1")
        .map(|b| b["payload"]["seq"].clone())
        .collect();
    assert_eq!(delivered, vec![json!(1), json!(2), json!(3)]);
}

async fn other_tenants_never_receive_a_tenants_events(app: &TestApp) {
    let (a, b) = (app.tenant("alpha").await, app.tenant("beta").await);
    let (rx_a, rx_b) = (Receiver::start(|_, _| 200).await, Receiver::start(|_, _| 200).await);
    endpoint(app, &a, &rx_a.at("/a"), None, None, true).await;
    endpoint(app, &b, &rx_b.at("/b"), Some("TRANSFER"), Some("CASHOUT"), true).await;
    app.run_webhook_engine(settings());
    let for_a = app.record_event(a.id, "TRANSFER", "CASHOUT", "same-id", &json!({"to": "a"})).await;
    let for_b = app.record_event(b.id, "TRANSFER", "CASHOUT", "same-id", &json!({"to": "b"})).await;
    let for_a_only = app.record_event(a.id, "DICT", "CLAIM", "c-1", &json!({"to": "a"})).await;

    deliveries_when(app, "status=delivered", 3).await;
    settle(app).await;
    let ids = |rx: &Receiver| rx.hits().into_iter().map(|h| h.id).collect::<Vec<_>>();
    let mut got_a = ids(&rx_a);
    got_a.sort();
    let mut want_a = vec![for_a.to_string(), for_a_only.to_string()];
    want_a.sort();
    assert_eq!(got_a, want_a);
    assert_eq!(ids(&rx_b), vec![for_b.to_string()], "b's catch-all never sees a's events");
    let only_b = deliveries(app, &format!("status=delivered&tenantId={}", b.id)).await;
    assert_eq!(only_b["total"], 1);
    assert_eq!(only_b["items"][0]["eventId"], for_b.to_string());
}

async fn events_without_an_endpoint_are_kept_as_not_routed(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    app.run_webhook_engine(settings());
    let event = app.record_event(tenant.id, "DICT", "CLAIM", "c-1", &json!({"status": "OPEN"})).await;
    let query = format!("/v1/admin/webhooks/events?routing=not_routed&tenantId={}", tenant.id);
    let page = eventually(app, "the event kept as not routed", async || {
        let page = admin_get(app, &query).await;
        (page["total"] == 1).then_some(page)
    })
    .await;
    assert_eq!(page["items"][0]["id"], event.to_string());
    assert_eq!(page["items"][0]["entityId"], "c-1");
    assert!(page["items"][0].get("payload").is_none(), "operators do not see payloads");
    for status in ["pending", "delivered", "failed"] {
        assert_eq!(deliveries(app, &format!("status={status}")).await["total"], 0);
    }
    assert_eq!(app.db.queue_counts(pix_store::events::WEBHOOK_QUEUE).await.unwrap().dead, 0, "not an error");

    // An endpoint deleted while its delivery is retrying: the delivery fails, nothing is sent.
    let rx = Receiver::start(|_, _| 500).await;
    let hook = endpoint(app, &tenant, &rx.at("/hook"), None, None, true).await;
    app.record_event(tenant.id, "DICT", "CLAIM", "c-2", &json!({})).await;
    eventually(app, "a first failed attempt", async || (!rx.hits().is_empty()).then_some(())).await;
    let deleted = app.request(Method::DELETE, &format!("/v1/webhooks/endpoints/{}", hook.id), &tenant.token);
    assert_eq!(deleted.send().await.unwrap().status(), 204);
    let failed = deliveries_when(app, "status=failed", 1).await;
    assert_eq!(failed["items"][0]["lastError"], "the endpoint was deleted");
    assert_eq!(rx.hits().len(), 1);
}

async fn gone_disables_the_endpoint_and_admin_routes_need_an_admin(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let rx = Receiver::start(|_, _| 410).await;
    let hook = endpoint(app, &tenant, &rx.at("/hook"), None, None, true).await;
    app.run_webhook_engine(settings());
    app.record_event(tenant.id, "TRANSFER", "CASHIN", "t-1", &json!({})).await;
    let failed = deliveries_when(app, "status=failed", 1).await;
    assert_eq!(
        (failed["items"][0]["attempts"].as_i64(), failed["items"][0]["lastStatusCode"].as_i64()),
        (Some(1), Some(410))
    );
    let view: Value = app
        .request(Method::GET, &format!("/v1/webhooks/endpoints/{}", hook.id), &tenant.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["enabled"], false, "410 Gone disables the endpoint");
    let later = app.record_event(tenant.id, "TRANSFER", "CASHIN", "t-2", &json!({})).await;
    eventually(app, "the next event switched off", async || {
        let page = admin_get(app, "/v1/admin/webhooks/events?routing=disabled").await;
        (page["items"][0]["id"] == later.to_string()).then_some(())
    })
    .await;
    assert_eq!(rx.hits().len(), 1);

    let as_tenant = app.request(Method::GET, "/v1/admin/webhooks/deliveries", &tenant.token).send().await.unwrap();
    assert_eq!(as_tenant.status(), 403);
    let bad = app.request(Method::GET, "/v1/admin/webhooks/deliveries?status=lost", &app.admin_token);
    assert_eq!(error_code(bad.send().await.unwrap()).await, "PIX-0004");
    let doc: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    for path in [
        "/v1/admin/webhooks/deliveries",
        "/v1/admin/webhooks/deliveries/{id}",
        "/v1/admin/webhooks/deliveries/{id}/redeliver",
        "/v1/admin/webhooks/deliveries/redeliver-failed",
        "/v1/admin/webhooks/events",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

async fn an_endpoint_gets_at_most_its_concurrency_limit_at_once(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let rx = Receiver::start_slow(ms(150), |_, _| 200).await;
    endpoint(app, &tenant, &rx.at("/hook"), None, None, true).await;
    app.run_webhook_engine(EngineSettings { endpoint_concurrency: 2, ..settings() });
    for n in 0..6 {
        app.record_event(tenant.id, "TRANSFER", "CASHOUT", &format!("tr-{n}"), &json!({})).await;
    }
    deliveries_when(app, "status=delivered", 6).await;
    assert_eq!(rx.max_in_flight.load(Ordering::SeqCst), 2, "independent entities go in parallel, two at a time");
}
