//! Two institutions on one host, each with its own simulated ledger, BTG client and ISPB, and
//! webhook secret: neither reaches the other's accounts, ledger or BTG identity, and a webhook
//! captured from one and replayed to the other's URL credits nothing.

use std::time::Duration;

use pix_core::clock::Clock;
use pix_e2e::{TestApp, TestInstitution, TestTenant, WEBHOOK_SECRET, api_tests, error_code};
use reqwest::{Method, Response};
use serde_json::{Value, json};

api_tests!(
    each_institution_reaches_only_its_own_accounts_ledger_and_btg_client,
    a_webhook_counts_only_with_its_tenant_s_secret_and_for_its_institution,
    inbound_secrets_rotate_with_an_overlap_and_retire,
);

const B_ISPB: &str = "99887766";

fn a_account(app: &TestApp) -> String {
    app.sandbox.data.accounts[0].account_id.clone()
}

async fn post(app: &TestApp, token: &str, path: &str, account: &str, body: Value) -> Response {
    app.request(Method::POST, path, token).header("X-Account-Id", account).json(&body).send().await.unwrap()
}

async fn each_institution_reaches_only_its_own_accounts_ledger_and_btg_client(app: &TestApp) {
    let a = app.tenant("Institution A").await;
    let b = app.institution("Institution B", B_ISPB).await;
    let b_account = b.data.account.account_id.clone();
    let manual = json!({"type": "MANUAL", "amount": "1.00", "destination": {"ispb": "87654321", "branch": "0042",
        "account": "7001", "accountType": "CACC", "document": "52998224725", "name": "Ana Pereira"}});

    // Neither may use the other's account, in either direction, for money or for keys.
    for (token, account) in [(&b.tenant.token, a_account(app)), (&a.token, b_account.clone())] {
        let cash_out = post(app, token, "/v1/transfers/cashout/initiate", &account, manual.clone()).await;
        assert_eq!(cash_out.status(), 404);
        assert_eq!(error_code(cash_out).await, "PIX-0020");
        let key = post(app, token, "/v1/dict/entries", &account, json!({"keyType": "EVP"})).await;
        assert_eq!(key.status(), 404);
    }

    // Each works with its own: B registers a key through its own BTG client, at its own ISPB
    // (the simulated BTG accepts an entry only at the ISPB of the client that sent it).
    let key = post(app, &b.tenant.token, "/v1/dict/entries", &b_account, json!({"keyType": "EVP"})).await;
    assert!(key.status().is_success(), "{:?}", key.text().await);
    let key: Value = key.json().await.unwrap();
    assert_eq!(key["account"]["participant"], B_ISPB, "{key}");
    let initiated = post(app, &b.tenant.token, "/v1/transfers/cashout/initiate", &b_account, manual).await;
    assert_eq!(initiated.status(), 201, "{:?}", initiated.text().await);

    // A ledger or a BTG client belongs to one tenant.
    let data = &app.sandbox.data;
    for (body, what) in [
        (
            json!({"name": "C", "ispb": "11223344", "midazOrganizationId": data.organization_id,
                   "midazLedgerId": data.ledger_id}),
            "A's ledger",
        ),
        (
            json!({"name": "C", "ispb": "11223344", "midazOrganizationId": b.data.organization_id,
                   "midazLedgerId": uuid::Uuid::new_v4(),
                   "btgIdentity": {"clientId": format!("client-{B_ISPB}"), "clientSecretRef": "env:PATH"}}),
            "B's BTG client",
        ),
    ] {
        let response =
            app.request(Method::POST, "/v1/admin/tenants", &app.admin_token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 409, "{what}");
        assert_eq!(error_code(response).await, "PIX-0041", "{what}");
    }
    let secret_in_clear = app
        .request(Method::POST, "/v1/admin/tenants", &app.admin_token)
        .json(&json!({"name": "C", "ispb": "11223344", "midazOrganizationId": uuid::Uuid::new_v4(),
            "midazLedgerId": uuid::Uuid::new_v4(), "btgIdentity": {"clientId": "c", "clientSecretRef": "hunter2-secret"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret_in_clear.status(), 400, "a secret value is refused: only references are stored");
}

/// Signs `body` with `secret` and posts it to `tenant`'s ingress, as BTG would.
async fn deliver(app: &TestApp, tenant: &TestTenant, secret: &str, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap();
    // The host checks the timestamp against its own (test) clock.
    let timestamp = app.clock.now().timestamp();
    app.http
        .post(format!("{}/v1/inbound/btg/{}", app.url, tenant.id))
        .header("content-type", "application/json")
        .header(pix_sandbox::HEADER_SIGNATURE, pix_sandbox::sign(secret.as_bytes(), timestamp, &bytes))
        .header(pix_sandbox::HEADER_TIMESTAMP, timestamp.to_string())
        .body(bytes)
        .send()
        .await
        .unwrap()
}

fn inbound_pix(creditor_ispb: &str, account: &pix_sandbox::DemoAccount) -> Value {
    json!({"webhookId": uuid::Uuid::new_v4().to_string(), "event": "PIX_PAYMENT_INBOUND", "data": {
        "endToEndId": format!("E87654321{}", chrono::Utc::now().format("%Y%m%d%H%M")) + "replayed001",
        "amount": "50.00", "initiationType": "MANUAL", "settledAt": chrono::Utc::now(),
        "debtor": {"ispb": "87654321", "branch": "0042", "account": "7001", "accountType": "CACC",
                   "taxId": "52998224725", "name": "Ana Pereira"},
        "creditor": {"ispb": creditor_ispb, "branch": account.branch, "account": account.number,
                     "accountType": "CACC", "taxId": account.document, "name": account.name}}})
}

async fn stored_events(app: &TestApp, tenant: &TestTenant) -> Vec<pix_store::inbound::InboundEvent> {
    let all = app.db.list_inbound_events(None, 500).await.unwrap();
    all.into_iter().filter(|e| e.tenant_id == tenant.id).collect()
}

async fn cash_ins(app: &TestApp, b: &TestInstitution) -> Vec<Value> {
    let response = app
        .request(Method::GET, "/v1/transfers?type=CASHIN", &b.tenant.token)
        .header("X-Account-Id", &b.data.account.account_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn a_webhook_counts_only_with_its_tenant_s_secret_and_for_its_institution(app: &TestApp) {
    let a = app.tenant("Institution A").await;
    let b = app.institution("Institution B", B_ISPB).await;
    app.run_transfer_workers();

    // A real Pix to B's customer reaches B's URL signed with B's secret, and is credited.
    let customer = &b.data.account;
    let sent = app
        .sandbox
        .handle
        .inbound_pix(&json!({"amount": "12.00", "creditor": {"ispb": B_ISPB, "branch": customer.branch,
            "account": customer.number, "accountType": "CACC", "taxId": customer.document, "name": customer.name}}))
        .unwrap();
    let mut credited = Vec::new();
    for _ in 0..200 {
        credited = cash_ins(app, &b).await;
        if credited.iter().any(|t| t["status"] == "COMPLETED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(credited.len(), 1, "{credited:?}");
    assert_eq!(credited[0]["endToEndId"], sent["endToEndId"]);
    assert_eq!(credited[0]["status"], "COMPLETED", "{credited:?}");

    // A Pix to A's customer, captured and replayed to B's URL: A's (shared demo) secret is not
    // B's, so it is refused; signed with B's secret it still names A's ISPB, so it is refused.
    let for_a = inbound_pix(&app.sandbox.data.ispb, &app.sandbox.data.accounts[0]);
    let replayed = deliver(app, &b.tenant, WEBHOOK_SECRET, &for_a).await;
    assert_eq!(replayed.status(), 401);
    assert_eq!(error_code(replayed).await, "PIX-0009");
    let misaddressed = deliver(app, &b.tenant, &b.webhook_secret, &for_a).await;
    assert_eq!(misaddressed.status(), 403);
    assert_eq!(error_code(misaddressed).await, "PIX-0010");
    // And B's event replayed to A's URL with B's secret is not A's either.
    let for_b = inbound_pix(B_ISPB, customer);
    assert_eq!(deliver(app, &a, &b.webhook_secret, &for_b).await.status(), 401);
    // Unknown tenants look the same as a bad signature.
    let nobody = TestTenant { id: uuid::Uuid::new_v4(), token: String::new() };
    assert_eq!(deliver(app, &nobody, WEBHOOK_SECRET, &for_a).await.status(), 401);

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored_events(app, &b.tenant).await.len(), 1, "only the real Pix was stored for B");
    assert!(stored_events(app, &a).await.is_empty(), "nothing was stored for A");
    assert_eq!(cash_ins(app, &b).await.len(), 1, "nothing else was credited to B");
}

/// A `PIX_PAYMENT` verdict on one of B's own cash-outs (its EndToEndId carries B's ISPB).
fn b_payment_event() -> Value {
    json!({"webhookId": uuid::Uuid::new_v4().to_string(), "event": "PIX_PAYMENT", "data": {
        "id": "p-1", "endToEndId": format!("E{B_ISPB}202612061200abcdefghijk"), "status": "CONFIRMED",
        "amount": "1.00", "settledAt": chrono::Utc::now()}})
}

async fn rotate(app: &TestApp, b: &TestInstitution, secret_ref: &str, overlap_secs: u64) -> Response {
    app.request(Method::PUT, &format!("/v1/admin/tenants/{}/inbound-secret", b.tenant.id), &app.admin_token)
        .json(&json!({"secretRef": secret_ref, "previousValidForSecs": overlap_secs}))
        .send()
        .await
        .unwrap()
}

async fn inbound_secrets_rotate_with_an_overlap_and_retire(app: &TestApp) {
    let b = app.institution("Institution B", B_ISPB).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("file:{}", path.display())
    };
    let (first, second) = (b.webhook_secret.as_str(), "second-webhook-secret-0123456789");
    assert_eq!(deliver(app, &b.tenant, first, &b_payment_event()).await.status(), 202);

    // Rotation: the new secret is current at once and the old one keeps working in the overlap.
    let rotated = rotate(app, &b, &write("second", second), 3600).await;
    assert_eq!(rotated.status(), 200);
    let valid: Vec<Value> = rotated.json().await.unwrap();
    assert_eq!(valid.len(), 2, "{valid:?}");
    assert!(valid[0]["retiresAt"].is_null() && !valid[1]["retiresAt"].is_null(), "{valid:?}");
    assert!(!valid.iter().any(|s| s.to_string().contains(second)), "references only, never the secret");
    assert_eq!(deliver(app, &b.tenant, second, &b_payment_event()).await.status(), 202);
    assert_eq!(deliver(app, &b.tenant, first, &b_payment_event()).await.status(), 202, "inside the overlap");

    // Once the overlap is over, only the current secret works.
    app.clock.advance(chrono::Duration::seconds(3601));
    assert_eq!(deliver(app, &b.tenant, first, &b_payment_event()).await.status(), 401);
    assert_eq!(deliver(app, &b.tenant, second, &b_payment_event()).await.status(), 202);

    // A reference that cannot be read is refused when set, and nothing changes.
    let missing = rotate(app, &b, "file:/nonexistent/secret", 0).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(deliver(app, &b.tenant, second, &b_payment_event()).await.status(), 202);
}
