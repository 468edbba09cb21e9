//! Key lookup (with X-EndToEnd-Id), bulk check, statistics, and the per-account anti-scan buckets.

#[macro_use]
mod dict_common;

use dict_common::Dx;
use pix_e2e::error_code;
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    keys_are_resolved_checked_and_described,
    key_requests_are_validated_with_catalogued_errors,
    lookups_spend_an_anti_scan_budget_per_account,
);

const ANA_EMAIL: &str = "ana.pereira@example.com";

async fn keys_are_resolved_checked_and_described(dx: &Dx) {
    let e2e = format!("E12345678{}abcdefghijk", dx.now().format("%Y%m%d%H%M"));
    let found = dx
        .as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@maria")
        .header("X-EndToEnd-Id", &e2e)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.unwrap();
    assert_eq!(found["keyType"], "EMAIL");
    assert_eq!(found["account"]["participant"], "87654321");
    assert_eq!(found["owner"]["name"], "Ana Pereira", "returned as BTG sends it (unmasked)");
    assert_eq!(found["endToEndId"], e2e);
    let generated: Value = dx
        .as_account(Method::GET, "/v1/dict/keys/+5511987654321", "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(generated["endToEndId"].as_str().unwrap().len(), 32, "BTG generates one when none is sent");

    let checked: Value = dx
        .call(Method::POST, "/v1/dict/keys/check")
        .json(&json!({"keys": [{"key": ANA_EMAIL}, {"key": "nobody@example.com"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        checked["keys"],
        json!([{"key": ANA_EMAIL, "hasEntry": true}, {"key": "nobody@example.com", "hasEntry": false}])
    );

    let stats = dx.call(Method::GET, &format!("/v1/dict/statistics/keys/{ANA_EMAIL}")).send().await.unwrap();
    assert_eq!(stats.status(), 200);
    let stats: Value = stats.json().await.unwrap();
    assert!(stats["settlements"]["d90"].is_u64());
    assert!(stats["fraudMarkers"]["muleAccounts"]["m12"].is_u64());
    assert!(stats["infractionReports"]["openReports"].is_u64());
}

async fn key_requests_are_validated_with_catalogued_errors(dx: &Dx) {
    let path = format!("/v1/dict/keys/{ANA_EMAIL}");
    let no_account = dx.call(Method::GET, &path).send().await.unwrap();
    assert_eq!(error_code(no_account).await, "PIX-0001");
    let bad_e2e = dx.as_account(Method::GET, &path, "@maria").header("X-EndToEnd-Id", "E123").send().await.unwrap();
    assert_eq!(error_code(bad_e2e).await, "PIX-0002");
    let bad_key = dx.as_account(Method::GET, "/v1/dict/keys/not%20a%20key", "@maria").send().await.unwrap();
    assert_eq!(error_code(bad_key).await, "PIX-0008");
    let unknown = dx.as_account(Method::GET, "/v1/dict/keys/nobody@example.com", "@maria").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(error_code(unknown).await, "PIX-0114");

    let check = |body: Value| dx.call(Method::POST, "/v1/dict/keys/check").json(&body).send();
    assert_eq!(error_code(check(json!({"keys": []})).await.unwrap()).await, "PIX-0004");
    let too_many: Vec<Value> = (0..201).map(|i| json!({"key": format!("k{i}@example.com")})).collect();
    assert_eq!(error_code(check(json!({"keys": too_many})).await.unwrap()).await, "PIX-0004");
    assert_eq!(error_code(check(json!({"keys": [{"key": "??"}]})).await.unwrap()).await, "PIX-0004");
    assert_eq!(error_code(check(json!({})).await.unwrap()).await, "PIX-0003");
    let two_hundred: Vec<Value> = (0..200).map(|i| json!({"key": format!("k{i}@example.com")})).collect();
    let ok: Value = check(json!({"keys": two_hundred})).await.unwrap().json().await.unwrap();
    assert_eq!(ok["keys"].as_array().unwrap().len(), 200);

    let stats = dx.call(Method::GET, "/v1/dict/statistics/keys/nobody@example.com").send().await.unwrap();
    assert_eq!(error_code(stats).await, "PIX-0114");
    let stats = dx.call(Method::GET, "/v1/dict/statistics/keys/%20").send().await.unwrap();
    assert_eq!(error_code(stats).await, "PIX-0008");
}

async fn lookups_spend_an_anti_scan_budget_per_account(dx: &Dx) {
    // A natural person's bucket holds 100 tokens; a miss costs 20, so five misses empty it.
    for i in 0..5 {
        let miss =
            dx.as_account(Method::GET, &format!("/v1/dict/keys/scan{i}@example.com"), "@maria").send().await.unwrap();
        assert_eq!(miss.status(), 404);
    }
    let limited = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@maria").send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "30", "2 tokens a minute: one in 30 s");
    assert_eq!(error_code(limited).await, "PIX-0116");

    // The bucket is per account: João still resolves keys.
    let other = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@joao").send().await.unwrap();
    assert_eq!(other.status(), 200);

    // Refill: 30 s give one token, which a hit spends.
    dx.app.clock.advance(chrono::Duration::seconds(30));
    let hit = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@maria").send().await.unwrap();
    assert_eq!(hit.status(), 200);
    let again = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@maria").send().await.unwrap();
    assert_eq!(again.status(), 429);

    // A legal person's bucket is ten times larger: five misses do not exhaust it.
    for i in 0..6 {
        let miss =
            dx.as_account(Method::GET, &format!("/v1/dict/keys/scan{i}@example.com"), "@acme").send().await.unwrap();
        assert_eq!(miss.status(), 404);
    }
}
