//! Limits per policy component over HTTP: declared at upload (bounded by the host maxima),
//! stored with the component and unchangeable, and bounded again by each tenant's maxima when
//! the component is bound to that tenant. On SQLite and PostgreSQL.

use pix_e2e::{TestApp, api_tests, error_code, shipped_policies};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    a_component_declares_its_limits_at_upload_within_the_host_maxima,
    tenant_maxima_bound_the_components_bound_to_that_tenant,
);

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(shipped_policies().join(name)).unwrap()
}

async fn upload(app: &TestApp, query: &str, body: Vec<u8>) -> reqwest::Response {
    app.request(Method::POST, &format!("/v1/admin/policies?kind=fee{query}"), &app.admin_token)
        .header("content-type", "application/wasm")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn a_component_declares_its_limits_at_upload_within_the_host_maxima(app: &TestApp) {
    let counter = wasm("hostile/hostile-counter.wasm");
    let declared = "&memoryMib=32&fuel=20000000&deadlineMs=100";
    let first = upload(app, declared, counter.clone()).await;
    assert_eq!(first.status(), 201);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["limits"], json!({"memoryMib": 32, "fuel": 20_000_000, "deadlineMs": 100}));
    let sha = body["sha256"].as_str().unwrap().to_owned();
    let stored: Value = app
        .request(Method::GET, &format!("/v1/admin/policies/{sha}"), &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["limits"], body["limits"], "stored with the component");

    let same = upload(app, declared, counter.clone()).await;
    assert_eq!(same.status(), 200, "the same bytes and limits are stored once");
    let other = upload(app, "&memoryMib=64", counter.clone()).await;
    assert_eq!(other.status(), 400, "a component's limits never change");
    assert_eq!(error_code(other).await, "PIX-0004");

    let above = upload(app, "&memoryMib=129", wasm("default-fee.wasm")).await;
    assert_eq!(above.status(), 400);
    let body: Value = above.json().await.unwrap();
    assert_eq!(body["code"], "PIX-0004");
    assert_eq!(body["message"], "memoryMib 129 is above the maximum of 128");
    let zero = upload(app, "&fuel=0", wasm("default-fee.wasm")).await;
    assert_eq!(error_code(zero).await, "PIX-0004");
    let not_a_number = upload(app, "&deadlineMs=soon", wasm("default-fee.wasm")).await;
    assert_eq!(not_a_number.status(), 400);

    // Interpreter components are 11–18 MiB: the upload route takes bodies above the API's 1 MiB
    // limit (up to 32 MiB), so this 2 MiB one is read and refused as no component, not as too large.
    let large = upload(app, "", vec![0; 2 << 20]).await;
    assert_eq!(error_code(large).await, "PIX-0029");
}

async fn tenant_maxima_bound_the_components_bound_to_that_tenant(app: &TestApp) {
    let strict = app.tenant("strict").await;
    let lenient = app.tenant("lenient").await;
    let path = format!("/v1/admin/tenants/{}/policy-limits", strict.id);
    let unset: Value = app.request(Method::GET, &path, &app.admin_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(unset, json!({"memoryMib": null, "fuel": null, "deadlineMs": null}), "the host maxima apply");
    let maxima = json!({"memoryMib": 16, "fuel": 10_000_000, "deadlineMs": 50});
    let put = app.request(Method::PUT, &path, &app.admin_token).json(&maxima).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let got: Value = app.request(Method::GET, &path, &app.admin_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, maxima);
    for bad in [json!({"memoryMib": 129}), json!({"fuel": 0}), json!({"deadlineMs": "fast"}), json!({"cpu": 1})] {
        let refused = app.request(Method::PUT, &path, &app.admin_token).json(&bad).send().await.unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
    }
    let unknown = format!("/v1/admin/tenants/{}/policy-limits", uuid::Uuid::new_v4());
    let missing = app.request(Method::PUT, &unknown, &app.admin_token).json(&maxima).send().await.unwrap();
    assert_eq!(error_code(missing).await, "PIX-0019");
    let as_tenant = app.request(Method::GET, &path, &strict.token).send().await.unwrap();
    assert_eq!(as_tenant.status(), 403);

    // Not a shipped component: those are in the registry from the start, under the default limits.
    let generous = upload(app, "&memoryMib=32&fuel=20000000", wasm("hostile/hostile-counter.wasm")).await;
    let status = generous.status();
    let generous: Value = generous.json().await.unwrap();
    assert_eq!(status, 201, "{generous}");
    let sha = generous["sha256"].as_str().unwrap().to_owned();
    let activate = |tenant: Option<uuid::Uuid>| {
        app.request(Method::POST, &format!("/v1/admin/policies/{sha}/activate"), &app.admin_token)
            .json(&json!({"kind": "fee", "tenantId": tenant}))
            .send()
    };
    let refused = activate(Some(strict.id)).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["message"], "memoryMib 32 is above this tenant's maximum of 16");
    let shadow = app
        .request(Method::PUT, &format!("/v1/admin/policies/{sha}/shadow"), &app.admin_token)
        .json(&json!({"kind": "fee", "tenantId": strict.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(shadow.status(), 400, "a shadow run is bounded the same way");
    assert_eq!(activate(Some(lenient.id)).await.unwrap().status(), 200, "no maxima: the host's apply");
    assert_eq!(activate(None).await.unwrap().status(), 200, "the default binding: the host's apply");
}
