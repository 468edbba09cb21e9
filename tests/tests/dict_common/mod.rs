//! Shared harness of the DICT tests: the real router over a fresh database with the simulators,
//! a tenant whose BTG webhooks reach the app, DICT's inbound handlers and settle worker running,
//! and helpers to move both clocks (the host's manual clock and the simulated BTG's) together.

#![allow(dead_code, reason = "each test file uses a different part of the harness")]

use std::sync::Arc;
use std::time::Duration;

use pix_core::clock::Clock;
use pix_core::transfer::{Direction, TransferStatus};
use pix_e2e::{TestApp, TestTenant};
use pix_server::config::Config;
use pix_server::dict::{Dict, event_handlers, settle_worker};
use pix_server::integrations::Integrations;
use pix_store::testing::TestStore;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct Dx {
    pub app: TestApp,
    pub tenant: TestTenant,
    pub dict: Dict,
    stop: CancellationToken,
}

impl Drop for Dx {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Runs each check on SQLite and, when enabled, PostgreSQL.
#[macro_export]
macro_rules! dict_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::dict_common::Dx::start(pix_store::testing::TestStore::sqlite().await).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = pix_store::testing::TestStore::postgres().await else { return };
                    super::$name(&$crate::dict_common::Dx::start(db).await).await;
                }
            )*
        }
    };
}

impl Dx {
    pub async fn start(db: TestStore) -> Dx {
        let mut config = Config::default();
        // Webhooks are signed with wall-clock time while the host's clock is moved by days.
        config.btg_webhook.timestamp_tolerance_secs = 400 * 24 * 3600;
        config.workers.poll_interval_ms = 10;
        let app = TestApp::start(db, config.clone()).await;
        let tenant = app.tenant("dict").await;
        app.sandbox.handle.set_webhook_url(Some(format!("{}/v1/inbound/btg/{}", app.url, tenant.id)));
        let dict = Dict {
            store: app.db.store.clone(),
            clock: app.clock.clone(),
            integrations: Arc::new(Integrations::sandbox(app.sandbox.integrations.clone())),
            config: Arc::new(config),
        };
        // Payments received are recorded as transfers: MED requests must name one of the tenant's.
        let mut handlers = event_handlers(&dict);
        handlers.extend(pix_server::transfers::inbound_handlers(&app.state, &app.url));
        app.run_inbound_worker(handlers);
        let stop = CancellationToken::new();
        tokio::spawn(settle_worker(&dict).run(stop.clone(), Duration::from_secs(1)));
        Dx { app, tenant, dict, stop }
    }

    pub fn call(&self, method: Method, path: &str) -> RequestBuilder {
        self.app.request(method, path, &self.tenant.token)
    }

    /// The Midaz account id of a demo customer (`@maria`, `@joao`, `@acme`).
    pub fn account(&self, alias: &str) -> String {
        self.app.sandbox.data.accounts.iter().find(|a| a.alias == alias).unwrap().account_id.clone()
    }

    pub fn as_account(&self, method: Method, path: &str, alias: &str) -> RequestBuilder {
        self.call(method, path).header("X-Account-Id", self.account(alias))
    }

    /// Moves the host's clock and the simulated BTG's clock together.
    pub fn advance(&self, seconds: i64) {
        self.app.clock.advance(chrono::Duration::seconds(seconds));
        self.app.sandbox.handle.advance_clock(Duration::from_secs(seconds as u64));
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.app.clock.now()
    }

    pub async fn control(&self, method: Method, path: &str, body: Value) -> Value {
        let response = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.sandbox.data.control_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "control {path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// A bearer token for calling the simulated BTG directly ("behind the host's back").
    pub async fn btg_token(&self) -> String {
        let creds = &self.app.sandbox.handle.config().btg_credentials;
        let response: Value = self
            .app
            .http
            .post(format!("{}/oauth2/token", self.app.sandbox.data.btg_url))
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn btg(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let token = self.btg_token().await;
        let mut request = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.sandbox.data.btg_url))
            .bearer_auth(token)
            .header("x-idempotency-key", uuid::Uuid::new_v4().to_string());
        if let Some(b) = body {
            request = request.json(&b);
        }
        request.send().await.unwrap()
    }

    /// Registers a key for a demo account through the API; returns the entry.
    pub async fn create_entry(&self, alias: &str, body: Value) -> Value {
        let response = self.as_account(Method::POST, "/v1/dict/entries", alias).json(&body).send().await.unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "creating entry {body}: {value}");
        value
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.call(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn vsync(&self, key_type: &str) -> Value {
        let page = self.get_json(&format!("/v1/dict/vsync?key_type={key_type}")).await;
        page["items"][0].clone()
    }
}

/// A cash-out initiated with `body` and processed, as Maria: the 201 body of the process call.
pub async fn cash_out(dx: &Dx, body: Value) -> Value {
    let initiated =
        dx.as_account(Method::POST, "/v1/transfers/cashout/initiate", "@maria").json(&body).send().await.unwrap();
    assert_eq!(initiated.status(), 201, "initiating {body}");
    let initiated: Value = initiated.json().await.unwrap();
    let processed = dx
        .as_account(Method::POST, "/v1/transfers/cashout/process", "@maria")
        .json(&json!({"initiationId": initiated["initiationId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(processed.status(), 201, "processing {body}");
    processed.json().await.unwrap()
}

/// A COMPLETED cash-out of 80.00 from Maria to the other participant; its EndToEndId.
pub async fn settled_cash_out(dx: &Dx) -> String {
    let key = dx.app.sandbox.data.other_participant.keys[0].key.clone();
    let processed = cash_out(dx, json!({"type": "KEY", "key": key, "amount": "80.00"})).await;
    let path = format!("/v1/transfers/{}", processed["id"].as_str().unwrap());
    eventually("the cash-out COMPLETED", || async {
        let t: Value = dx.as_account(Method::GET, &path, "@maria").send().await.unwrap().json().await.unwrap();
        t["status"] == "COMPLETED"
    })
    .await;
    processed["endToEndId"].as_str().unwrap().to_owned()
}

/// Polls `check` every 20 ms for up to 20 s (a loaded 2-core CI machine once needed more than 6).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A signed BTG webhook posted straight to the host (for events the simulator cannot produce).
pub async fn deliver(dx: &Dx, event: &str, data: Value) {
    deliver_as(dx, &uuid::Uuid::new_v4().to_string(), event, data).await;
}

/// [`deliver`] under a given webhook id (a redelivery repeats it).
pub async fn deliver_as(dx: &Dx, webhook_id: &str, event: &str, data: Value) {
    let body = serde_json::to_vec(&json!({"webhookId": webhook_id, "event": event, "data": data})).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let response = dx
        .app
        .http
        .post(format!("{}/v1/inbound/btg/{}", dx.app.url, dx.tenant.id))
        .header("content-type", "application/json")
        .header("x-signature-timestamp", ts.to_string())
        .header("x-signature", pix_sandbox::sign(pix_e2e::WEBHOOK_SECRET.as_bytes(), ts, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// The outbound events recorded for the tenant of one entity type, in order.
pub async fn outbound_events(dx: &Dx, entity_type: &str) -> Vec<Value> {
    let all = dx.app.db.store.recorded_event_bodies(dx.tenant.id).await.unwrap();
    all.into_iter().filter(|e| e["entityType"] == entity_type).collect()
}

// ============================================================= MED: payments, balances, requests

/// (available, on hold) centavos of a Midaz alias in the simulator.
pub fn balance(dx: &Dx, alias: &str) -> (i64, i64) {
    let state = dx.app.sandbox.handle.midaz_state();
    for ledger in state["ledgers"].as_array().unwrap() {
        for a in ledger["accounts"].as_array().unwrap() {
            if a["alias"] == alias {
                return (a["availableCentavos"].as_i64().unwrap(), a["onHoldCentavos"].as_i64().unwrap());
            }
        }
    }
    panic!("no Midaz account {alias}");
}

/// A Pix of `amount` received from another bank on `key` (one of Maria's), credited (COMPLETED).
pub async fn cash_in(dx: &Dx, key: &Value, amount: &str) -> String {
    let pix = dx.app.sandbox.handle.inbound_pix(&json!({"key": key, "amount": amount})).unwrap();
    let e2e = pix["endToEndId"].as_str().unwrap().to_owned();
    let (store, tenant) = (&dx.app.db.store, dx.tenant.id);
    eventually("the cash-in COMPLETED", || async {
        store
            .transfer_by_end_to_end_id(tenant, Direction::Cashin, &e2e)
            .await
            .unwrap()
            .is_some_and(|t| t.status() == TransferStatus::Completed)
    })
    .await;
    e2e
}

/// The other participant asks (through DICT) for `amount` of the Pix `e2e` back: a refund request
/// against us. Returns (our id, BTG's id).
pub async fn refund_request_against_us(dx: &Dx, e2e: &str, amount: &str) -> (String, String) {
    let at_btg =
        dx.control(Method::POST, "/_control/btg/refund-requests", json!({"endToEndId": e2e, "amount": amount})).await;
    let btg_id = at_btg["id"].as_str().unwrap().to_owned();
    for _ in 0..300 {
        let page = dx.get_json(&format!("/v1/dict/refund-requests?transaction_id={e2e}&limit=100")).await;
        let found = page["items"].as_array().unwrap().iter().find(|r| r["bacenRefundId"] == btg_id.as_str()).cloned();
        if let Some(r) = found {
            assert_eq!(r["role"], "CONTESTED");
            return (r["id"].as_str().unwrap().to_owned(), btg_id);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the refund request against us never arrived");
}

/// BTG's (DICT's) record of a refund request.
pub async fn at_btg(dx: &Dx, btg_id: &str) -> Value {
    dx.btg(Method::GET, &format!("/dict/refunds/{btg_id}"), None).await.json().await.unwrap()
}
