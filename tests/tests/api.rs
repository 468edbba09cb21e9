//! The foundation's HTTP contract, driven over loopback on SQLite and PostgreSQL.

use chrono::TimeDelta;
use pix_e2e::{TestApp, api_tests, error_code};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    health_readiness_metrics_and_openapi,
    authentication_is_required_and_roles_are_separate,
    tenants_cannot_see_each_others_resources,
    bad_input_gets_catalogued_json_errors,
    idempotent_create_replays_rejects_reuse_and_expires,
    webhook_endpoint_lifecycle,
    transfer_limits_are_set_by_an_admin_and_validated,
);

async fn health_readiness_metrics_and_openapi(app: &TestApp) {
    let health = app.http.get(format!("{}/health", app.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"), "every response has a request id");
    let ready: Value = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready.get("database").is_none(), "the public readiness answer names no backend: {ready}");

    let metrics = app.http.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total{"), "{metrics}");
    assert!(metrics.contains(r#"route="/health""#), "requests are labelled by route");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "latency is a histogram");

    let doc: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for path in [
        "/health",
        "/readyz",
        "/metrics",
        "/v1/webhooks/endpoints",
        "/v1/webhooks/endpoints/{id}",
        "/v1/admin/tenants",
        "/v1/admin/tenants/{tenant_id}/transfer-limits",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
    let ui = app.http.get(format!("{}/docs", app.url)).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("openapi"), "the UI page points at the document");
}

async fn authentication_is_required_and_roles_are_separate(app: &TestApp) {
    let tenant = app.tenant("acme").await;
    let url = format!("{}/v1/webhooks/endpoints", app.url);

    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(none).await, "PIX-0009");

    let wrong = app.request(Method::GET, "/v1/webhooks/endpoints", "pix_not-a-token").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let malformed = app.http.get(&url).header("authorization", "Basic Zm9vOmJhcg==").send().await.unwrap();
    assert_eq!(error_code(malformed).await, "PIX-0009");

    let admin_as_tenant = app.request(Method::GET, "/v1/webhooks/endpoints", &app.admin_token).send().await.unwrap();
    assert_eq!(admin_as_tenant.status(), 403);
    assert_eq!(error_code(admin_as_tenant).await, "PIX-0010");
    let tenant_as_admin = app.request(Method::GET, "/v1/admin/tenants", &tenant.token).send().await.unwrap();
    assert_eq!(tenant_as_admin.status(), 403);

    assert_eq!(app.request(Method::GET, "/v1/webhooks/endpoints", &tenant.token).send().await.unwrap().status(), 200);
    // A revoked credential stops working at once.
    let credential = app.db.authenticate(&tenant.token).await.unwrap().unwrap();
    let pix_store::tenants::Principal::Tenant { credential_id, .. } = credential else { panic!() };
    app.db.revoke_token(Some(tenant.id), credential_id, chrono::Utc::now()).await.unwrap();
    assert_eq!(app.request(Method::GET, "/v1/webhooks/endpoints", &tenant.token).send().await.unwrap().status(), 401);
}

async fn create_endpoint(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/v1/webhooks/endpoints", token).json(&body).send().await.unwrap()
}

async fn tenants_cannot_see_each_others_resources(app: &TestApp) {
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let created: Value =
        create_endpoint(app, &a.token, json!({"url": "https://a.example/hook"})).await.json().await.unwrap();
    let path = format!("/v1/webhooks/endpoints/{}", created["id"].as_str().unwrap());

    assert_eq!(app.request(Method::GET, &path, &a.token).send().await.unwrap().status(), 200);
    let read = app.request(Method::GET, &path, &b.token).send().await.unwrap();
    assert_eq!(read.status(), 404);
    assert_eq!(error_code(read).await, "PIX-0019");
    let delete = app.request(Method::DELETE, &path, &b.token).send().await.unwrap();
    assert_eq!(delete.status(), 404);
    let list: Value =
        app.request(Method::GET, "/v1/webhooks/endpoints", &b.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["total"], 0);
    assert_eq!(app.request(Method::GET, &path, &a.token).send().await.unwrap().status(), 200, "still there");
}

async fn bad_input_gets_catalogued_json_errors(app: &TestApp) {
    let t = app.tenant("acme").await;
    let post = |body: &'static str| {
        app.request(Method::POST, "/v1/webhooks/endpoints", &t.token)
            .header("content-type", "application/json")
            .body(body)
    };
    let cases: &[(&str, u16, &str)] = &[
        ("{}", 400, "PIX-0003"),
        (r#"{"url":"https://x.example","colour":"red"}"#, 400, "PIX-0006"),
        (r#"{"url":42}"#, 400, "PIX-0005"),
        (r#"{"url":"https://x.example","enabled":"yes"}"#, 400, "PIX-0005"),
        (r#"{"url":"ftp://x.example"}"#, 400, "PIX-0004"),
        (r#"{"url":"not a url"}"#, 400, "PIX-0004"),
        (r#"{"url":"https://x.example","flowType":"NOPE"}"#, 400, "PIX-0004"),
        (r#"{"url":"https://x.example","entityType":"CLAIM"}"#, 400, "PIX-0004"),
        (r#"{"url":"https://x.example","flowType":"TRANSFER","entityType":"CLAIM"}"#, 400, "PIX-0004"),
        (r#"{"url": "#, 400, "PIX-0004"),
    ];
    for (body, status, code) in cases {
        let response = post(body).send().await.unwrap();
        assert_eq!(response.status(), *status, "{body}");
        assert_eq!(error_code(response).await, *code, "{body}");
    }
    let missing = post("{}").send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(missing["message"], "missing field: url", "the field is named");

    let no_type = app.request(Method::POST, "/v1/webhooks/endpoints", &t.token).body("{}").send().await.unwrap();
    assert_eq!(no_type.status(), 415);
    assert_eq!(error_code(no_type).await, "PIX-0014");

    let huge = format!(r#"{{"url":"https://x.example","description":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    // Its own connection: the server answers 413 without reading the body and closes it.
    let too_big = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/endpoints", app.url))
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(error_code(too_big).await, "PIX-0013");

    let bad_id = app.request(Method::GET, "/v1/webhooks/endpoints/not-a-uuid", &t.token).send().await.unwrap();
    assert_eq!(bad_id.status(), 400);
    assert_eq!(error_code(bad_id).await, "PIX-0008");
    let bad_query = app.request(Method::GET, "/v1/webhooks/endpoints?limit=abc", &t.token).send().await.unwrap();
    assert_eq!(error_code(bad_query).await, "PIX-0004");
    let bad_limit = app.request(Method::GET, "/v1/webhooks/endpoints?limit=500", &t.token).send().await.unwrap();
    assert_eq!(error_code(bad_limit).await, "PIX-0004");

    let unknown = app.http.get(format!("{}/v1/nowhere", app.url)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(error_code(unknown).await, "PIX-0011");
    let method = app.http.put(format!("{}/health", app.url)).send().await.unwrap();
    assert_eq!(method.status(), 405);
    assert_eq!(error_code(method).await, "PIX-0012");
}

async fn idempotent_create_replays_rejects_reuse_and_expires(app: &TestApp) {
    let a = app.tenant("a").await;
    let b = app.tenant("b").await;
    let send = |token: &str, key: &str, url: &str| {
        app.request(Method::POST, "/v1/webhooks/endpoints", token)
            .header("x-idempotency", key)
            .json(&json!({ "url": url }))
            .send()
    };
    let first = send(&a.token, "key-1", "https://a.example/1").await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(first.headers()["x-idempotency-replayed"], "false");
    let first_body = first.text().await.unwrap();

    let replay = send(&a.token, "key-1", "https://a.example/1").await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["x-idempotency-replayed"], "true");
    assert_eq!(replay.headers()["content-type"], "application/json");
    assert_eq!(replay.text().await.unwrap(), first_body, "byte-identical replay");
    let list: Value =
        app.request(Method::GET, "/v1/webhooks/endpoints", &a.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["total"], 1, "the replay created nothing");

    let reuse = send(&a.token, "key-1", "https://a.example/other").await.unwrap();
    assert_eq!(reuse.status(), 422);
    assert_eq!(error_code(reuse).await, "IDEMPOTENCY_KEY_REUSE");

    let other_tenant = send(&b.token, "key-1", "https://a.example/1").await.unwrap();
    assert_eq!(other_tenant.status(), 201, "keys are scoped per tenant");
    assert_eq!(other_tenant.headers()["x-idempotency-replayed"], "false");

    // A rejected request is stored too: the same bad request replays its 400.
    let bad = send(&a.token, "key-bad", "ftp://nope").await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad_again = send(&a.token, "key-bad", "ftp://nope").await.unwrap();
    assert_eq!(bad_again.headers()["x-idempotency-replayed"], "true");

    let long_key = "k".repeat(256);
    assert_eq!(error_code(send(&a.token, &long_key, "https://a.example/1").await.unwrap()).await, "PIX-0002");
    let bad_ttl = app
        .request(Method::POST, "/v1/webhooks/endpoints", &a.token)
        .header("x-idempotency", "key-ttl")
        .header("x-ttl", "soon")
        .json(&json!({"url": "https://a.example/1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad_ttl).await, "PIX-0002");

    // X-TTL is honoured: after it, the key is free for a new request.
    let short = app
        .request(Method::POST, "/v1/webhooks/endpoints", &a.token)
        .header("x-idempotency", "key-short")
        .header("x-ttl", "120")
        .json(&json!({"url": "https://a.example/short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), 201);
    app.clock.advance(TimeDelta::seconds(119));
    assert_eq!(send(&a.token, "key-short", "https://a.example/new").await.unwrap().status(), 422);
    app.clock.advance(TimeDelta::seconds(2));
    let after = send(&a.token, "key-short", "https://a.example/new").await.unwrap();
    assert_eq!(after.status(), 201);
    assert_eq!(after.headers()["x-idempotency-replayed"], "false");
}

async fn webhook_endpoint_lifecycle(app: &TestApp) {
    let t = app.tenant("acme").await;
    let created = create_endpoint(
        app,
        &t.token,
        json!({"url": "https://hooks.example/pix", "flowType": "TRANSFER", "entityType": "CASHOUT", "description": "cash-outs"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["enabled"], true);
    let path = format!("/v1/webhooks/endpoints/{}", created["id"].as_str().unwrap());
    let got: Value = app.request(Method::GET, &path, &t.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["flowType"], "TRANSFER");
    assert!(got.get("secret").is_none(), "the secret is shown only at creation");
    for n in 0..3 {
        create_endpoint(app, &t.token, json!({"url": format!("https://hooks.example/{n}")})).await;
    }
    let page: Value = app
        .request(Method::GET, "/v1/webhooks/endpoints?page=2&limit=3", &t.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 4);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.request(Method::DELETE, &path, &t.token).send().await.unwrap().status(), 204);
    assert_eq!(app.request(Method::GET, &path, &t.token).send().await.unwrap().status(), 404);
}

async fn transfer_limits_are_set_by_an_admin_and_validated(app: &TestApp) {
    let (a, b) = (app.tenant("a").await, app.tenant("b").await);
    let path = |t: &pix_e2e::TestTenant| format!("/v1/admin/tenants/{}/transfer-limits", t.id);
    let get = |path: String| async move {
        let response = app.request(Method::GET, &path, &app.admin_token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let put = |path: String, body: Value| async move {
        app.request(Method::PUT, &path, &app.admin_token).json(&body).send().await.unwrap()
    };

    let defaults = json!({"maxTransferAmount": null, "maxFee": null, "feeAccounts": []});
    assert_eq!(get(path(&a)).await, defaults, "unset limits read as the defaults");

    let set = put(path(&a), json!({"maxTransferAmount": "5000", "maxFee": "2.5", "feeAccounts": ["@tarifas"]})).await;
    assert_eq!(set.status(), 200);
    let stored = json!({"maxTransferAmount": "5000.00", "maxFee": "2.50", "feeAccounts": ["@tarifas"]});
    assert_eq!(set.json::<Value>().await.unwrap(), stored, "amounts come back as two-place strings");
    assert_eq!(get(path(&a)).await, stored);
    assert_eq!(get(path(&b)).await, defaults, "limits are per tenant");
    let limits = app.db.transfer_limits(a.id).await.unwrap();
    assert_eq!(limits.max_transfer_amount.map(|m| m.centavos()), Some(500_000), "stored as centavos");

    for bad in [
        json!({"maxTransferAmount": "0"}),
        json!({"maxTransferAmount": "10.001"}),
        json!({"maxTransferAmount": "ten"}),
        json!({"maxFee": "-1.00"}),
        json!({"feeAccounts": ["tarifas"]}),
        json!({"feeAccounts": ["@a", "@a"]}),
    ] {
        let response = put(path(&a), bad.clone()).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(error_code(response).await, "PIX-0416", "{bad}");
    }
    assert_eq!(get(path(&a)).await, stored, "a refused update changes nothing");
    assert_eq!(error_code(put(path(&a), json!({"maxFee": 2})).await).await, "PIX-0005", "numbers are not amounts");

    let cleared = put(path(&a), json!({})).await;
    assert_eq!(cleared.json::<Value>().await.unwrap(), defaults, "PUT replaces every field");

    let unknown = format!("/v1/admin/tenants/{}/transfer-limits", uuid::Uuid::new_v4());
    assert_eq!(app.request(Method::GET, &unknown, &app.admin_token).send().await.unwrap().status(), 404);
    assert_eq!(put(unknown, json!({})).await.status(), 404);
    let as_tenant = app.request(Method::PUT, &path(&a), &a.token).json(&json!({})).send().await.unwrap();
    assert_eq!(as_tenant.status(), 403, "a tenant cannot change its own limits");
}
