//! The demo institution as money tests use it: a tenant on the seeded ledger whose BTG webhooks
//! reach the host and whose money workers run, its customers' requests, their Midaz balances, Pix
//! received from and sent to other banks, and what the simulated BTG holds.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::{TestApp, TestTenant};

pub struct Bank<'a> {
    pub app: &'a TestApp,
    pub tenant: TestTenant,
}

impl<'a> Bank<'a> {
    /// The first tenant of `app` (the seeded ledger), with the money workers running.
    pub async fn open(app: &'a TestApp) -> Bank<'a> {
        let tenant = app.tenant("Banco Exemplo").await;
        app.sandbox.handle.set_webhook_url(Some(format!("{}/v1/inbound/btg/{}", app.url, tenant.id)));
        app.run_transfer_workers();
        Bank { app, tenant }
    }

    /// The account id of a demo customer (`@maria`, `@joao`, `@acme`).
    pub fn account(&self, alias: &str) -> String {
        self.app.sandbox.data.accounts.iter().find(|a| a.alias == alias).expect("demo account").account_id.clone()
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

    /// Sends a Pix from another bank to a demo account; returns BTG's event data.
    pub fn send_pix_to(&self, alias: &str, amount: &str) -> Value {
        let a = self.app.sandbox.data.accounts.iter().find(|a| a.alias == alias).unwrap();
        self.app
            .sandbox
            .handle
            .inbound_pix(&json!({"amount": amount, "creditor": {"branch": a.branch, "account": a.number,
                "accountType": "CACC", "taxId": a.document, "name": a.name}}))
            .unwrap()
    }

    /// A Pix from another bank credited to `alias`: the COMPLETED cash-in.
    pub async fn receive(&self, alias: &str, amount: &str) -> Value {
        let pix = self.send_pix_to(alias, amount);
        let e2e = pix["endToEndId"].as_str().unwrap();
        for _ in 0..300 {
            let page = self.get_json(&format!("/v1/transfers?type=CASHIN&end_to_end={e2e}"), alias).await;
            if let Some(t) = page["items"].get(0).filter(|t| t["status"] == "COMPLETED") {
                return t.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cash-in {e2e} never completed");
    }

    /// Pays `amount` from `alias` to a key of the other participant; returns the 201 body.
    pub async fn pay(&self, alias: &str, amount: &str) -> Value {
        let key = self.app.sandbox.data.other_participant.keys[0].key.clone();
        let body = json!({"type": "KEY", "key": key, "amount": amount});
        let initiated =
            self.call(Method::POST, "/v1/transfers/cashout/initiate", alias).json(&body).send().await.unwrap();
        assert_eq!(initiated.status(), 201);
        let initiated: Value = initiated.json().await.unwrap();
        let processed = self
            .call(Method::POST, "/v1/transfers/cashout/process", alias)
            .json(&json!({"initiationId": initiated["initiationId"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(processed.status(), 201);
        processed.json().await.unwrap()
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

    /// Activates the shipped component of `kind` for the tenant with `params`.
    pub async fn activate_shipped(&self, kind: &str, params: Value) {
        let manifest = std::fs::read_to_string(crate::shipped_policies().join("manifest.json")).unwrap();
        let manifest: Value = serde_json::from_str(&manifest).unwrap();
        let sha = manifest["policies"].as_array().unwrap().iter().find(|p| p["kind"] == kind).expect("shipped kind")
            ["sha256"]
            .clone();
        self.activate(sha.as_str().unwrap(), kind, params).await;
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
