//! The edge of the host (issue #12, items 1 and 7): transport limits on the HTTP listener,
//! per-tenant request rates, a `/readyz` that tells the public nothing more than ready or not,
//! the credentials admin (expiry, revocation) and webhook signing secrets sealed at rest.

use std::time::Duration;

use chrono::Utc;
use pix_core::clock::Clock;
use pix_e2e::{TestApp, error_code};
use pix_server::config::Config;
use pix_server::transport::{HttpLimits, serve};
use pix_store::testing::TestStore;
use pix_store::webhook_endpoints::NewWebhookEndpoint;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Runs `check` on SQLite, then on PostgreSQL when `PIX_TEST_DATABASE_URL` is set.
macro_rules! both_databases {
    ($($name:ident => $config:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let config: fn() -> pix_server::config::Config = $config;
                    super::$name(&pix_e2e::TestApp::start(TestStore::sqlite().await, config()).await).await;
                }
            )*
            use super::{Config, TestStore};
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let config: fn() -> pix_server::config::Config = $config;
                    let Some(db) = TestStore::postgres().await else { return };
                    super::$name(&pix_e2e::TestApp::start(db, config()).await).await;
                }
            )*
            use super::{Config, TestStore};
        }
    };
}

both_databases!(
    one_tenant_exhausting_its_rate_gets_429_and_others_do_not => || {
        let mut config = Config::default();
        config.server.tenant_rate_per_second = 1;
        config.server.tenant_rate_burst = 2;
        config
    },
    readyz_says_only_ready_or_not => Config::default,
    credentials_expire_and_revoke_and_are_listed_without_tokens => Config::default,
    admin_credentials_can_be_issued_expired_and_revoked => Config::default,
    webhook_secrets_are_sealed_at_rest_and_legacy_rows_get_sealed => Config::default,
);

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.request(Method::GET, path, token).send().await.unwrap()
}

async fn one_tenant_exhausting_its_rate_gets_429_and_others_do_not(app: &TestApp) {
    let a = app.tenant("Rate A").await;
    let b = app.tenant("Rate B").await;
    // Burst of 2 at 1/s: a third request at once is refused (at most one token refills in
    // between, so a fourth is certainly refused).
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..4 {
        let response = get(app, "/v1/webhooks/endpoints", &a.token).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
    }
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    let refused = refused.unwrap_or_else(|| panic!("tenant A was never limited: {statuses:?}"));
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1).contains(&retry_after), "whole seconds until the next token: {retry_after}");
    assert_eq!(error_code(refused).await, "PIX-0017");
    // B has its own budget.
    for _ in 0..2 {
        assert_eq!(get(app, "/v1/webhooks/endpoints", &b.token).await.status(), 200, "B is unaffected");
    }
    // Unauthenticated requests are not charged to anyone (and still get 401).
    assert_eq!(app.http.get(format!("{}/v1/webhooks/endpoints", app.url)).send().await.unwrap().status(), 401);
}

async fn readyz_says_only_ready_or_not(app: &TestApp) {
    let ready = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"status": "ready"}));
    // Break the database under the running host: the answer says so and nothing else.
    app.db.db().close().await;
    let not_ready = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let body = not_ready.text().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"status": "not_ready"}), "{body}");
}

async fn credentials_expire_and_revoke_and_are_listed_without_tokens(app: &TestApp) {
    let tenant = app.tenant("Creds").await;
    let path = format!("/v1/admin/tenants/{}/credentials", tenant.id);
    let expires = app.clock.now() + chrono::Duration::hours(1);
    let issued = app
        .request(Method::POST, &path, &app.admin_token)
        .json(&json!({"label": "rotation", "expiresAt": expires}))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    let expiring = issued["token"].as_str().unwrap().to_owned();
    assert_eq!(get(app, "/v1/webhooks/endpoints", &expiring).await.status(), 200);

    // A body-less POST still issues a credential without expiry; a past expiry is refused.
    let plain = app.request(Method::POST, &path, &app.admin_token).send().await.unwrap();
    assert_eq!(plain.status(), 201);
    let plain: Value = plain.json().await.unwrap();
    assert!(plain["expiresAt"].is_null());
    let past = app
        .request(Method::POST, &path, &app.admin_token)
        .json(&json!({"expiresAt": app.clock.now() - chrono::Duration::seconds(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 400);
    assert_eq!(error_code(past).await, "PIX-0004");

    // The list shows every credential and nothing secret.
    let list = get(app, &path, &app.admin_token).await;
    assert_eq!(list.status(), 200);
    let text = list.text().await.unwrap();
    for secret in [tenant.token.as_str(), expiring.as_str(), plain["token"].as_str().unwrap()] {
        assert!(!text.contains(secret), "a token is listed");
        assert!(!text.contains(&pix_store::tenants::token_sha256(secret)), "a token hash is listed");
    }
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.len(), 3);
    let row = list.iter().find(|c| c["id"] == issued["credentialId"]).unwrap();
    assert_eq!(row["label"], "rotation");
    assert_eq!(row["kind"], "tenant");
    assert_eq!(row["active"], true);
    assert!(row["expiresAt"].is_string() && row["revokedAt"].is_null());
    for c in &list {
        assert_eq!(c.as_object().unwrap().len(), 8, "only the documented fields: {c}");
    }

    // Past its expiry the token answers 401, even though it was just resolved (cached).
    app.clock.advance(chrono::Duration::hours(2));
    let expired = get(app, "/v1/webhooks/endpoints", &expiring).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(error_code(expired).await, "PIX-0009");

    // Revocation is immediate on this instance, and the credential shows as revoked.
    let id = plain["credentialId"].as_str().unwrap();
    let token = plain["token"].as_str().unwrap();
    assert_eq!(get(app, "/v1/webhooks/endpoints", token).await.status(), 200);
    let revoked =
        app.request(Method::DELETE, &format!("/v1/admin/credentials/{id}"), &app.admin_token).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    let revoked: Value = revoked.json().await.unwrap();
    assert!(revoked["revokedAt"].is_string() && revoked["active"] == false);
    assert_eq!(get(app, "/v1/webhooks/endpoints", token).await.status(), 401);
    // Revoking again changes nothing; its expiry can no longer be set; unknown ids are 404.
    let again =
        app.request(Method::DELETE, &format!("/v1/admin/credentials/{id}"), &app.admin_token).send().await.unwrap();
    assert_eq!(again.status(), 200);
    let patch = app
        .request(Method::PATCH, &format!("/v1/admin/credentials/{id}"), &app.admin_token)
        .json(&json!({"expiresAt": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(patch).await, "PIX-0025");
    let unknown = uuid::Uuid::new_v4();
    let missing = app
        .request(Method::DELETE, &format!("/v1/admin/credentials/{unknown}"), &app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(error_code(missing).await, "PIX-0024");

    // Setting an expiry in the past stops the tenant's first token at once.
    assert_eq!(get(app, "/v1/webhooks/endpoints", &tenant.token).await.status(), 200);
    let first = list.iter().find(|c| c["label"] == "initial").unwrap()["id"].as_str().unwrap().to_owned();
    let patch = app
        .request(Method::PATCH, &format!("/v1/admin/credentials/{first}"), &app.admin_token)
        .json(&json!({"expiresAt": app.clock.now() - chrono::Duration::seconds(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(patch.json::<Value>().await.unwrap()["active"], false);
    assert_eq!(get(app, "/v1/webhooks/endpoints", &tenant.token).await.status(), 401);

    // Tenants cannot reach the credentials admin.
    let other = app.tenant("Creds Other").await;
    assert_eq!(get(app, &path, &other.token).await.status(), 403);
    let steal =
        app.request(Method::DELETE, &format!("/v1/admin/credentials/{first}"), &other.token).send().await.unwrap();
    assert_eq!(steal.status(), 403);
}

async fn admin_credentials_can_be_issued_expired_and_revoked(app: &TestApp) {
    let issued = app
        .request(Method::POST, "/v1/admin/credentials", &app.admin_token)
        .json(&json!({"label": "ops", "expiresAt": app.clock.now() + chrono::Duration::minutes(10)}))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pixadm_"));
    assert_eq!(get(app, "/v1/admin/tenants", &token).await.status(), 200);
    let list: Vec<Value> = get(app, "/v1/admin/credentials", &app.admin_token).await.json().await.unwrap();
    assert!(list.iter().all(|c| c["kind"] == "admin" && c["tenantId"].is_null()));
    assert!(list.iter().any(|c| c["id"] == issued["credentialId"] && c["label"] == "ops"));

    app.clock.advance(chrono::Duration::minutes(11));
    assert_eq!(get(app, "/v1/admin/tenants", &token).await.status(), 401, "expired admin token");

    let second: Value = app
        .request(Method::POST, "/v1/admin/credentials", &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = second["token"].as_str().unwrap();
    assert_eq!(get(app, "/v1/admin/tenants", token).await.status(), 200);
    let id = second["credentialId"].as_str().unwrap();
    let revoked =
        app.request(Method::DELETE, &format!("/v1/admin/credentials/{id}"), &app.admin_token).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(get(app, "/v1/admin/tenants", token).await.status(), 401, "revoked admin token");
}

async fn webhook_secrets_are_sealed_at_rest_and_legacy_rows_get_sealed(app: &TestApp) {
    let tenant = app.tenant("Sealed").await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = NewWebhookEndpoint {
        url: "https://example.com/hook".into(),
        flow_type: None,
        entity_type: None,
        enabled: true,
        secret: secret.into(),
        description: String::new(),
    };
    let created = app.db.create_webhook_endpoint(tenant.id, &new, app.clock.now()).await.unwrap();
    assert_eq!(created.secret, secret, "the store hands back the secret in the clear");
    let stored = raw_secret(app, created.id).await;
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "the column is not the secret");

    // A row written before sealing existed is read as it is, then sealed by the start-up pass.
    set_raw_secret(app, created.id, secret).await;
    assert_eq!(app.db.webhook_endpoint(tenant.id, created.id).await.unwrap().unwrap().secret, secret);
    assert_eq!(app.db.seal_plaintext_webhook_secrets().await.unwrap(), 1);
    assert_eq!(app.db.seal_plaintext_webhook_secrets().await.unwrap(), 0, "only once");
    assert!(raw_secret(app, created.id).await.starts_with("v1:"));
    assert_eq!(app.db.webhook_endpoint(tenant.id, created.id).await.unwrap().unwrap().secret, secret);

    // A sealed value copied into another row does not open there (bound to its row).
    let other = app.db.create_webhook_endpoint(tenant.id, &new, app.clock.now()).await.unwrap();
    set_raw_secret(app, other.id, &raw_secret(app, created.id).await).await;
    assert!(app.db.webhook_endpoint(tenant.id, other.id).await.is_err());
    // A store under another key cannot read it either.
    let foreign = app.db.store.clone().with_sealer(pix_store::sealed::Sealer::ephemeral());
    assert!(foreign.webhook_endpoint(tenant.id, created.id).await.is_err());
}

async fn raw_secret(app: &TestApp, id: uuid::Uuid) -> String {
    pix_store::on_pool!(app.db.db(), pool => {
        sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1").bind(id.to_string()).fetch_one(pool).await
    })
    .unwrap()
}

async fn set_raw_secret(app: &TestApp, id: uuid::Uuid, value: &str) {
    pix_store::on_pool!(app.db.db(), pool => {
        sqlx::query("UPDATE webhook_endpoints SET secret = $1 WHERE id = $2")
            .bind(value)
            .bind(id.to_string())
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
}

/// A revocation made through one instance reaches another (with its own credential cache)
/// within that instance's `cache.credential_ttl_ms`; the default is at most a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_another_instance_within_its_cache_ttl() {
    assert!(pix_store::DEFAULT_CREDENTIAL_TTL <= Duration::from_secs(1));
    assert!(Config::default().cache.credential_ttl_ms <= 1000);
    let db = TestStore::sqlite().await;
    let ttl = Duration::from_millis(200);
    let this = db.store.clone().with_credential_ttl(ttl);
    let other = db.store.clone().with_credential_ttl(ttl);
    let issued = this.issue_token(None, "ops", Utc::now()).await.unwrap();
    assert!(other.credential(&issued.token).await.unwrap().is_some(), "resolved and cached there");
    this.revoke_credential(issued.credential_id, Utc::now()).await.unwrap();
    assert!(this.credential(&issued.token).await.unwrap().is_none(), "at once where revoked");
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert!(other.credential(&issued.token).await.unwrap().is_none(), "elsewhere within the TTL");
}

async fn hello() -> &'static str {
    "hello"
}

async fn listener_with(limits: HttpLimits) -> (std::net::SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let app = axum::Router::new().route("/", axum::routing::get(hello));
    tokio::spawn(serve(listener, app, shutdown.clone(), limits));
    (addr, shutdown)
}

/// Reads until the server closes the connection; returns what it sent. Bounded so a server that
/// never closes fails the test instead of hanging it.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

async fn get_root(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    read_until_closed(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    let timeout = Duration::from_millis(300);
    let (addr, _shutdown) = listener_with(HttpLimits { header_read_timeout: timeout, max_connections: 16 }).await;
    assert!(get_root(addr).await.ends_with("hello"), "a prompt client is served");

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // Keep trickling header bytes, never finishing the header block: the server must close the
    // connection anyway, without answering the request.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if slow.write_all(b"X-A: b\r\n").await.is_err() {
                break;
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(10), trickle).await;
    assert!(closed.is_ok(), "the slow client was never disconnected");
    let rest = read_until_closed(&mut slow).await;
    assert!(!rest.contains("hello"), "the request was never served: {rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_cut_off_and_frees_its_slot() {
    let (addr, _shutdown) =
        listener_with(HttpLimits { header_read_timeout: Duration::from_millis(300), max_connections: 1 }).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "", "closed without an answer");
    let mut served = false;
    for _ in 0..100 {
        if get_root(addr).await.ends_with("hello") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the silent client's slot is reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_not_served() {
    let (addr, _shutdown) =
        listener_with(HttpLimits { header_read_timeout: Duration::from_secs(30), max_connections: 1 }).await;
    // The one slot, held by an idle connection.
    let mut holder = TcpStream::connect(addr).await.unwrap();
    // Make sure the holder was accepted before the next one arrives: it gets served.
    holder.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = holder.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // While it is open, another connection is closed without an answer.
    let refused = get_root(addr).await;
    assert_eq!(refused, "", "beyond the cap nothing is served");

    // Once the slot is free, connections are served again.
    drop(holder);
    let mut served = false;
    for _ in 0..100 {
        if get_root(addr).await.ends_with("hello") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a freed slot is reused");
}
