//! The demo institution as money tests use it: a tenant on the seeded ledger whose BTG webhooks
//! reach the host and whose money workers run (or only the inbound worker, for tests that must
//! not have the sweeper read BTG back), its customers' requests, their Midaz balances, Pix
//! received from and sent to other banks, what the simulated BTG holds, BTG events posted as BTG
//! would, and simulator faults. The one place for these helpers: test files keep only their own.

use std::time::Duration;

use pix_sandbox::{DemoAccount, FaultKind, FaultRule, FaultTarget};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::{TestApp, TestTenant, WEBHOOK_SECRET};

pub struct Bank<'a> {
    pub app: &'a TestApp,
    pub tenant: TestTenant,
}

impl<'a> Bank<'a> {
    /// The first tenant of `app` (the seeded ledger), with the money workers running.
    pub async fn open(app: &'a TestApp) -> Bank<'a> {
        let bank = Self::webhooks_reaching_the_host(app).await;
        app.run_transfer_workers();
        bank
    }

    /// The first tenant of `app` with only the inbound worker (and the transfer handlers)
    /// running: no sweeper, so nothing reads BTG back on its own and the test clock can be moved
    /// without side effects.
    pub async fn with_inbound_worker_only(app: &'a TestApp) -> Bank<'a> {
        let bank = Self::webhooks_reaching_the_host(app).await;
        app.run_inbound_worker(pix_server::transfers::inbound_handlers(&app.state, &app.url));
        bank
    }

    /// The first tenant of `app`, whose BTG webhooks reach the host; no worker runs yet.
    async fn webhooks_reaching_the_host(app: &'a TestApp) -> Bank<'a> {
        let tenant = app.tenant("Banco Exemplo").await;
        app.sandbox.handle.set_webhook_url(Some(format!("{}/v1/inbound/btg/{}", app.url, tenant.id)));
        Bank { app, tenant }
    }

    /// A demo customer (`@maria`, `@joao`, `@acme`) as the simulators seeded it.
    pub fn demo_account(&self, alias: &str) -> &'a DemoAccount {
        self.app.sandbox.data.accounts.iter().find(|a| a.alias == alias).expect("demo account")
    }

    /// The account id of a demo customer.
    pub fn account(&self, alias: &str) -> String {
        self.demo_account(alias).account_id.clone()
    }

    /// A key of the other participant (Ana Pereira's CPF).
    pub fn ana_key(&self) -> String {
        self.app.sandbox.data.other_participant.keys[0].key.clone()
    }

    /// A request of the tenant on behalf of customer `alias`.
    pub fn call(&self, method: Method, path: &str, alias: &str) -> RequestBuilder {
        self.app.request(method, path, &self.tenant.token).header("X-Account-Id", self.account(alias))
    }

    pub async fn get_json(&self, path: &str, alias: &str) -> Value {
        let response = self.call(Method::GET, path, alias).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// (available, on hold) centavos of a Midaz alias in the simulator.
    pub fn balance(&self, alias: &str) -> (i64, i64) {
        let state = self.app.sandbox.handle.midaz_state();
        for ledger in state["ledgers"].as_array().unwrap() {
            for a in ledger["accounts"].as_array().unwrap() {
                if a["alias"] == alias {
                    return (a["availableCentavos"].as_i64().unwrap(), a["onHoldCentavos"].as_i64().unwrap());
                }
            }
        }
        panic!("no Midaz account {alias}");
    }

    /// The Midaz transactions still pending (holds neither committed nor released), all ledgers.
    pub fn pending_ledger_transactions(&self) -> i64 {
        self.app.sandbox.handle.midaz_state()["ledgers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["pendingTransactions"].as_i64().unwrap())
            .sum()
    }

    /// Sends a Pix from another bank to a demo account; returns BTG's event data.
    pub fn send_pix_to(&self, alias: &str, amount: &str) -> Value {
        let a = self.demo_account(alias);
        self.app
            .sandbox
            .handle
            .inbound_pix(&json!({"amount": amount, "creditor": {"branch": a.branch, "account": a.number,
                "accountType": "CACC", "taxId": a.document, "name": a.name}}))
            .unwrap()
    }

    /// Waits until the cash-in of `e2e` to `alias` is settled (COMPLETED or FAILED); returns it.
    pub async fn wait_cash_in(&self, alias: &str, e2e: &str) -> Value {
        for _ in 0..300 {
            let page = self.get_json(&format!("/v1/transfers?type=CASHIN&end_to_end={e2e}"), alias).await;
            if let Some(t) = page["items"].get(0).filter(|t| t["status"] == "COMPLETED" || t["status"] == "FAILED") {
                return t.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cash-in {e2e} never settled");
    }

    /// A Pix from another bank credited to `alias`: the COMPLETED cash-in.
    pub async fn receive(&self, alias: &str, amount: &str) -> Value {
        let pix = self.send_pix_to(alias, amount);
        let t = self.wait_cash_in(alias, pix["endToEndId"].as_str().unwrap()).await;
        assert_eq!(t["status"], "COMPLETED", "cash-in of {amount} to {alias}: {t}");
        t
    }

    /// `POST /v1/transfers/cashout/initiate` as `alias` with `body`.
    pub async fn initiate(&self, alias: &str, body: Value) -> Response {
        self.call(Method::POST, "/v1/transfers/cashout/initiate", alias).json(&body).send().await.unwrap()
    }

    /// `POST /v1/transfers/cashout/process` as `alias` for the initiation `initiation_id`.
    pub async fn process(&self, alias: &str, initiation_id: &str) -> Response {
        self.call(Method::POST, "/v1/transfers/cashout/process", alias)
            .json(&json!({"initiationId": initiation_id}))
            .send()
            .await
            .unwrap()
    }

    /// Initiates a payment of `amount` from `alias` to Ana's key and processes it; returns the
    /// 201 body.
    pub async fn pay(&self, alias: &str, amount: &str) -> Value {
        let initiated = self.initiate(alias, json!({"type": "KEY", "key": self.ana_key(), "amount": amount})).await;
        assert_eq!(initiated.status(), 201);
        let initiated: Value = initiated.json().await.unwrap();
        let processed = self.process(alias, initiated["initiationId"].as_str().unwrap()).await;
        assert_eq!(processed.status(), 201);
        processed.json().await.unwrap()
    }

    /// Transfer `id` as `alias` sees it.
    pub async fn get_transfer(&self, alias: &str, id: &str) -> Value {
        self.get_json(&format!("/v1/transfers/{id}"), alias).await
    }

    /// Polls `path` (a GET returning an object with `status`) until it reads `status`.
    pub async fn wait_status(&self, path: &str, alias: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            last = self.get_json(path, alias).await;
            if last["status"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} never reached {status}: {last}");
    }

    /// Polls transfer `id` until it reads `status` (BTG settles after a short simulated delay).
    pub async fn wait_transfer(&self, alias: &str, id: &str, status: &str) -> Value {
        self.wait_status(&format!("/v1/transfers/{id}"), alias, status).await
    }

    /// Advances the host clock past the sweeper's thresholds (61 s at a time) until `path` (a GET
    /// returning an object with `status`) reads `status`.
    pub async fn sweep_until(&self, path: &str, alias: &str, status: &str) -> Value {
        self.sweep_until_it(path, alias, |v| v["status"] == status).await
    }

    /// Advances the host clock 61 s at a time (past the sweeper's thresholds and the jobs' retry
    /// delays) until the GET of `path` satisfies `done`.
    pub async fn sweep_until_it(&self, path: &str, alias: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..40 {
            self.app.clock.advance(chrono::Duration::seconds(61));
            tokio::time::sleep(Duration::from_millis(100)).await;
            last = self.get_json(path, alias).await;
            if done(&last) {
                return last;
            }
        }
        panic!("{path} never got there: {last}");
    }

    /// What the simulated BTG holds (payments, reversals, DICT).
    pub async fn btg_state(&self) -> Value {
        let url = format!("{}/_control/btg/state", self.app.sandbox.data.control_url);
        self.app.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The reversals BTG holds for an original EndToEndId.
    pub async fn btg_reversals(&self, original: &str) -> Vec<Value> {
        let state = self.btg_state().await;
        state["reversals"].as_array().unwrap().iter().filter(|r| r["originalEndToEndId"] == original).cloned().collect()
    }

    /// The payment BTG holds for an EndToEndId, if any.
    pub async fn btg_payment(&self, end_to_end_id: &Value) -> Option<Value> {
        let state = self.btg_state().await;
        state["payments"].as_array().unwrap().iter().find(|p| &p["endToEndId"] == end_to_end_id).cloned()
    }

    /// Waits until the simulated BTG holds the payment with `status`.
    pub async fn wait_btg_status(&self, end_to_end_id: &Value, status: &str) {
        for _ in 0..200 {
            if self.btg_payment(end_to_end_id).await.is_some_and(|p| p["status"] == status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("BTG never had {end_to_end_id} {status}");
    }

    /// Signs and posts a BTG event to the host's ingress for the tenant, as BTG would.
    pub async fn post_btg_event(&self, event: &str, data: Value) {
        let body =
            serde_json::to_vec(&json!({"webhookId": uuid::Uuid::new_v4().to_string(), "event": event, "data": data}))
                .unwrap();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = pix_sandbox::sign(WEBHOOK_SECRET.as_bytes(), timestamp, &body);
        let response = self
            .app
            .http
            .post(format!("{}/v1/inbound/btg/{}", self.app.url, self.tenant.id))
            .header("content-type", "application/json")
            .header(pix_sandbox::HEADER_SIGNATURE, signature)
            .header(pix_sandbox::HEADER_TIMESTAMP, timestamp.to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "posting {event}");
    }

    /// Makes a simulator misbehave: requests to `upstream` under `path_prefix` (for webhooks, events
    /// whose type starts with it), of `method` when given, get `kind`, the next `count` times
    /// (every time with `None`).
    pub fn fault(
        &self,
        upstream: FaultTarget,
        path_prefix: &str,
        method: Option<&str>,
        kind: FaultKind,
        count: Option<u32>,
    ) {
        self.app.sandbox.handle.add_fault(FaultRule {
            id: String::new(),
            upstream,
            path_prefix: path_prefix.into(),
            method: method.map(str::to_owned),
            kind,
            count,
            probability: None,
        });
    }

    /// Activates the shipped component of `kind` for the tenant with `params`.
    pub async fn activate_shipped(&self, kind: &str, params: Value) {
        self.activate(&crate::shipped_sha256(kind), kind, params).await;
    }

    /// Uploads a component from `policies/` (e.g. `hostile/x.wasm`) and activates it for the
    /// tenant as `kind`.
    pub async fn activate_file(&self, file: &str, kind: &str) {
        let bytes = std::fs::read(crate::shipped_policies().join(file)).unwrap();
        let uploaded = self
            .app
            .request(Method::POST, &format!("/v1/admin/policies?kind={kind}"), &self.app.admin_token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(uploaded.status().is_success(), "uploading {file}: {}", uploaded.status());
        let uploaded: Value = uploaded.json().await.unwrap();
        self.activate(uploaded["sha256"].as_str().unwrap(), kind, json!({})).await;
    }

    async fn activate(&self, sha: &str, kind: &str, params: Value) {
        let response: Response = self
            .app
            .request(Method::POST, &format!("/v1/admin/policies/{sha}/activate"), &self.app.admin_token)
            .json(&json!({"kind": kind, "tenantId": self.tenant.id, "params": params}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "activating {kind}: {}", response.text().await.unwrap());
    }

    /// The outbound events recorded for entity `id`, in order.
    pub async fn events_of(&self, id: &str) -> Vec<Value> {
        let all = self.app.db.store.recorded_event_bodies(self.tenant.id).await.unwrap();
        all.into_iter().filter(|e| e["entityId"] == id).collect()
    }
}
