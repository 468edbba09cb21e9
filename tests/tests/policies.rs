//! The policy registry over HTTP: upload with validation, activation per tenant, rollback,
//! shadow runs, replay, and propagation to another instance, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use pix_e2e::{TestApp, api_tests, error_code, shipped_policies};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    the_shipped_fee_policy_quotes_by_default,
    a_component_activated_for_one_tenant_changes_only_its_fees_and_rolls_back,
    uploads_that_break_the_contract_or_the_sandbox_are_refused,
    activation_parameters_reach_the_policy,
    a_shadow_candidate_is_compared_without_changing_answers,
    replay_reports_how_a_candidate_would_have_decided,
    another_instance_follows_an_activation,
    rolling_back_a_first_activation_removes_the_binding_and_falls_back,
    quotes_never_fail_while_activations_alternate,
);

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(shipped_policies().join(name)).unwrap()
}

async fn upload(app: &TestApp, name: &str, kind: &str) -> reqwest::Response {
    app.request(Method::POST, &format!("/v1/admin/policies?kind={kind}"), &app.admin_token)
        .header("content-type", "application/wasm")
        .body(wasm(name))
        .send()
        .await
        .unwrap()
}

async fn activate(app: &TestApp, sha: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, &format!("/v1/admin/policies/{sha}/activate"), &app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn the_shipped_fee_policy_quotes_by_default(app: &TestApp) {
    let t = app.tenant("acme").await;
    let q = app.merchant_quote(&t.token).await;
    assert_eq!(q["fee"], "4.95", "0.99% of R$ 500 for a legal payee");
    assert_eq!(q["charge"], "DEDUCTED");
    assert_eq!(q["feeAccount"], "@fees_revenue");
    let natural = app
        .request(Method::POST, "/v1/fees/quote", &t.token)
        .json(&json!({"operation": "CASH_OUT", "amount": "50.00"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(natural["fee"], "0.00", "cash-out by a natural person is free");
    let bad = app
        .request(Method::POST, "/v1/fees/quote", &t.token)
        .json(&json!({"operation": "CASH_IN", "amount": "-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, "PIX-0004");
}

async fn a_component_activated_for_one_tenant_changes_only_its_fees_and_rolls_back(app: &TestApp) {
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let first = upload(app, "hostile/hostile-counter.wasm", "fee").await;
    assert_eq!(first.status(), 201, "a well-behaved fee component is accepted");
    let again = upload(app, "hostile/hostile-counter.wasm", "fee").await;
    assert_eq!(again.status(), 200, "content-addressed: the same bytes are stored once");
    assert_eq!(again.json::<Value>().await.unwrap()["created"], false);
    // Shipped components are registered at start, so they can be activated by hash.
    let shipped = upload(app, "example-institution.wasm", "fee").await;
    assert_eq!(shipped.status(), 200);
    let sha = shipped.json::<Value>().await.unwrap()["sha256"].as_str().unwrap().to_owned();

    let activated = activate(app, &sha, json!({"kind": "fee", "tenantId": a.id})).await;
    assert_eq!(activated.status(), 200);
    let qa = app.merchant_quote(&a.token).await;
    assert_eq!(qa["fee"], "3.95", "the example institution charges merchants 0.79%");
    assert_eq!(qa["policySha256"], sha);
    assert_eq!(app.merchant_quote(&b.token).await["fee"], "4.95", "tenant B keeps the shipped policy");

    let shipped_sha = app.merchant_quote(&b.token).await["policySha256"].as_str().unwrap().to_owned();
    assert_eq!(activate(app, &shipped_sha, json!({"kind": "fee", "tenantId": a.id})).await.status(), 200);
    assert_eq!(app.merchant_quote(&a.token).await["fee"], "4.95");
    let rollback = app
        .request(Method::POST, "/v1/admin/policy-bindings/rollback", &app.admin_token)
        .json(&json!({"kind": "fee", "tenantId": a.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(rollback.status(), 200);
    assert_eq!(app.merchant_quote(&a.token).await["fee"], "3.95", "rolled back to the example institution");
    let history: Value = app
        .request(Method::GET, &format!("/v1/admin/policy-bindings?kind=fee&tenantId={}", a.id), &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<_> =
        history.as_array().unwrap().iter().map(|b| b["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["rollback", "activate", "activate"]);

    let tenant_on_admin = app.request(Method::GET, "/v1/admin/policies", &a.token).send().await.unwrap();
    assert_eq!(tenant_on_admin.status(), 403);
}

async fn uploads_that_break_the_contract_or_the_sandbox_are_refused(app: &TestApp) {
    let fs = upload(app, "hostile/hostile-fs.wasm", "fee").await;
    assert_eq!(fs.status(), 422);
    let body: Value = fs.json().await.unwrap();
    assert_eq!(body["code"], "PIX-0029");
    assert!(body["message"].as_str().unwrap().contains("wasi:filesystem"), "{body}");
    let wrong_kind = upload(app, "default-fee.wasm", "refund-split").await;
    assert_eq!(error_code(wrong_kind).await, "PIX-0029");
    let garbage = app
        .request(Method::POST, "/v1/admin/policies?kind=fee", &app.admin_token)
        .body(b"not a component".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 422);
    let bad_kind = upload(app, "default-fee.wasm", "tips").await;
    assert_eq!(error_code(bad_kind).await, "PIX-0004");
    let list: Value =
        app.request(Method::GET, "/v1/admin/policies", &app.admin_token).send().await.unwrap().json().await.unwrap();
    assert!(
        list.as_array().unwrap().iter().all(|c| !c["name"].as_str().unwrap().contains("hostile")),
        "nothing refused was stored"
    );
    let unknown = activate(app, &"0".repeat(64), json!({"kind": "fee"})).await;
    assert_eq!(unknown.status(), 404);
}

async fn activation_parameters_reach_the_policy(app: &TestApp) {
    let t = app.tenant("acme").await;
    let sha = app.merchant_quote(&t.token).await["policySha256"].as_str().unwrap().to_owned();
    let activated =
        activate(app, &sha, json!({"kind": "fee", "tenantId": t.id, "params": {"fee-account": "@tarifas"}})).await;
    assert_eq!(activated.status(), 200);
    assert_eq!(app.merchant_quote(&t.token).await["feeAccount"], "@tarifas");
    let bad = activate(app, &sha, json!({"kind": "fee", "params": {"fee-account": [1]}})).await;
    assert_eq!(error_code(bad).await, "PIX-0004");
}

async fn a_shadow_candidate_is_compared_without_changing_answers(app: &TestApp) {
    let t = app.tenant("acme").await;
    let sha = upload(app, "example-institution.wasm", "fee").await.json::<Value>().await.unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = app
        .request(Method::PUT, &format!("/v1/admin/policies/{sha}/shadow"), &app.admin_token)
        .json(&json!({"kind": "fee", "tenantId": t.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 204);
    for _ in 0..3 {
        assert_eq!(app.merchant_quote(&t.token).await["fee"], "4.95", "the shadow never changes the answer");
    }
    let summary: Value = app
        .request(Method::GET, &format!("/v1/admin/policy-shadows/summary?kind=fee&tenantId={}", t.id), &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((summary["compared"].as_u64(), summary["disagreed"].as_u64()), (Some(3), Some(3)));
    assert_eq!(summary["disagreements"][0]["shadowOutput"]["fee"], 395);
    let stopped = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/policies/{sha}/shadow?kind=fee&tenantId={}", t.id),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 204);
}

async fn replay_reports_how_a_candidate_would_have_decided(app: &TestApp) {
    let t = app.tenant("acme").await;
    for _ in 0..4 {
        app.merchant_quote(&t.token).await;
    }
    let sha = upload(app, "example-institution.wasm", "fee").await.json::<Value>().await.unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let report: Value = app
        .request(
            Method::POST,
            &format!("/v1/admin/policies/{sha}/replay?kind=fee&tenantId={}&limit=10", t.id),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((report["replayed"].as_u64(), report["different"].as_u64()), (Some(4), Some(4)), "{report}");
    assert_eq!(report["differences"][0]["candidate"]["fee"], 395);
    assert_eq!(report["differences"][0]["recorded"]["fee"], 495);
    let shipped = app.merchant_quote(&t.token).await["policySha256"].as_str().unwrap().to_owned();
    let same: Value = app
        .request(
            Method::POST,
            &format!("/v1/admin/policies/{shipped}/replay?kind=fee&tenantId={}&limit=10", t.id),
            &app.admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((same["replayed"].as_u64(), same["same"].as_u64()), (Some(5), Some(5)));
}

async fn another_instance_follows_an_activation(app: &TestApp) {
    let t = app.tenant("acme").await;
    // A second instance on the same database, with its own runtime and change follower.
    let mut config = pix_server::config::Config::default();
    config.policies.poll_interval_ms = 100;
    config.btg_webhook.hmac_secret = Some(pix_e2e::WEBHOOK_SECRET.into());
    let clock: Arc<dyn pix_core::clock::Clock> = app.clock.clone();
    let other = pix_server::app::AppState::new(
        app.db.store.clone(),
        config,
        clock.clone(),
        Arc::new(pix_server::integrations::Integrations::sandbox(app.sandbox.integrations.clone())),
        pix_server::policies::PolicyRuntime::with_default_limits(app.db.store.clone(), clock, &shipped_policies())
            .await
            .unwrap(),
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(pix_server::policies::sync::follow_changes(other.clone(), shutdown.clone()));
    let before = other.policies.policy_for(t.id, pix_policy::PolicyKind::Fee).sha256().to_owned();

    let sha = upload(app, "example-institution.wasm", "fee").await.json::<Value>().await.unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(activate(app, &sha, json!({"kind": "fee", "tenantId": t.id})).await.status(), 200);
    for _ in 0..100 {
        let now = other.policies.policy_for(t.id, pix_policy::PolicyKind::Fee).sha256().to_owned();
        if now == sha {
            assert_ne!(before, sha);
            shutdown.cancel();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the other instance never picked up the activation");
}

async fn rollback(app: &TestApp, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/v1/admin/policy-bindings/rollback", &app.admin_token).json(&body).send().await.unwrap()
}

async fn rolling_back_a_first_activation_removes_the_binding_and_falls_back(app: &TestApp) {
    let t = app.tenant("acme").await;
    let shipped = app.merchant_quote(&t.token).await["policySha256"].as_str().unwrap().to_owned();
    let example = upload(app, "example-institution.wasm", "fee").await.json::<Value>().await.unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let nothing = rollback(app, json!({"kind": "fee", "tenantId": t.id})).await;
    assert_eq!(nothing.status(), 409, "nothing is active yet");
    assert_eq!(error_code(nothing).await, "PIX-0023");

    // The default binding (every tenant without its own) and the tenant's own, each a first activation.
    assert_eq!(activate(app, &example, json!({"kind": "fee"})).await.status(), 200);
    assert_eq!(app.merchant_quote(&t.token).await["fee"], "3.95", "the default binding applies to the tenant");
    let own = json!({"kind": "fee", "tenantId": t.id, "params": {"fee-account": "@tarifas"}});
    assert_eq!(activate(app, &shipped, own).await.status(), 200);
    let q = app.merchant_quote(&t.token).await;
    assert_eq!((q["fee"].as_str(), q["feeAccount"].as_str()), (Some("4.95"), Some("@tarifas")));

    // Tenant → default binding.
    let removed = rollback(app, json!({"kind": "fee", "tenantId": t.id})).await;
    assert_eq!(removed.status(), 200);
    let removed: Value = removed.json().await.unwrap();
    assert_eq!((removed["removed"].as_bool(), removed["sha256"].as_str()), (Some(true), Some(shipped.as_str())));
    let q = app.merchant_quote(&t.token).await;
    assert_eq!((q["fee"].as_str(), q["policySha256"].as_str()), (Some("3.95"), Some(example.as_str())));
    let again = rollback(app, json!({"kind": "fee", "tenantId": t.id})).await;
    assert_eq!(error_code(again).await, "PIX-0023", "a removed binding has nothing left to roll back");

    // Default binding → shipped component.
    let removed: Value = rollback(app, json!({"kind": "fee"})).await.json().await.unwrap();
    assert_eq!(removed["removed"], true);
    let q = app.merchant_quote(&t.token).await;
    assert_eq!((q["fee"].as_str(), q["policySha256"].as_str()), (Some("4.95"), Some(shipped.as_str())));
    assert_eq!(q["feeAccount"], "@fees_revenue", "the tenant's params went with its binding");

    // Activating after a removal is a first activation again; the history keeps every step.
    assert_eq!(activate(app, &example, json!({"kind": "fee", "tenantId": t.id})).await.status(), 200);
    assert_eq!(app.merchant_quote(&t.token).await["fee"], "3.95");
    assert_eq!(rollback(app, json!({"kind": "fee", "tenantId": t.id})).await.status(), 200);
    assert_eq!(app.merchant_quote(&t.token).await["fee"], "4.95");
    let history: Value = app
        .request(Method::GET, &format!("/v1/admin/policy-bindings?kind=fee&tenantId={}", t.id), &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let steps: Vec<(String, bool)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["action"].as_str().unwrap().to_owned(), b["removed"].as_bool().unwrap()))
        .collect();
    let expected = [("rollback", true), ("activate", false), ("rollback", true), ("activate", false)];
    assert_eq!(steps, expected.map(|(a, r)| (a.to_owned(), r)));
}

/// The HTTP-level hot swap in small (the full run with figures is
/// `cargo bench -p pix-server --bench policy-hot-swap`): clients quote concurrently while two
/// components are activated in turn; every answer must be one of the two components' answers.
async fn quotes_never_fail_while_activations_alternate(app: &TestApp) {
    let t = app.tenant("acme").await;
    let shipped = app.merchant_quote(&t.token).await["policySha256"].as_str().unwrap().to_owned();
    let example = upload(app, "example-institution.wasm", "fee").await.json::<Value>().await.unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = Arc::new([(shipped.clone(), "4.95"), (example.clone(), "3.95")]);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, token, expected, done) =
                (app.http.clone(), app.url.clone(), t.token.clone(), expected.clone(), done.clone());
            tokio::spawn(async move {
                let (mut answers, mut failures, mut by) = (0u32, Vec::new(), [0u32; 2]);
                while !done.load(std::sync::atomic::Ordering::Relaxed) || answers < 100 {
                    answers += 1;
                    let response = http
                        .post(format!("{url}/v1/fees/quote"))
                        .bearer_auth(&token)
                        .json(&json!({"operation": "CASH_IN", "amount": "500.00", "payeeType": "LEGAL", "accountSegment": "merchant"}))
                        .send()
                        .await;
                    let body = match response {
                        Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                        Ok(r) => Some(json!({"status": r.status().as_u16()})),
                        Err(e) => Some(json!({"error": e.to_string()})),
                    };
                    let body = body.unwrap_or(Value::Null);
                    let known =
                        expected.iter().position(|(sha, fee)| body["policySha256"] == *sha && body["fee"] == *fee);
                    match known {
                        Some(i) => by[i] += 1,
                        None => failures.push(body),
                    }
                }
                (answers, failures, by)
            })
        })
        .collect();
    for i in 0..20 {
        let sha = if i % 2 == 0 { &example } else { &shipped };
        assert_eq!(activate(app, sha, json!({"kind": "fee", "tenantId": t.id})).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut by = [0u32; 2];
    for client in clients {
        // Each client made at least 100 decisions (the loop's floor).
        let (_, failures, seen) = client.await.unwrap();
        assert!(failures.is_empty(), "failed or foreign decisions: {failures:?}");
        by = [by[0] + seen[0], by[1] + seen[1]];
    }
    assert!(by[0] > 0 && by[1] > 0, "both versions answered while swapping: {by:?}");
}
