//! Key lookup (with X-EndToEnd-Id), bulk check, statistics, and the per-account anti-scan buckets.

#[macro_use]
mod dict_common;

use dict_common::Dx;
use pix_core::dict::{PARTICIPANT_BUCKET, TokenBucket, antiscan_bucket};
use pix_core::document::PersonType;
use pix_e2e::error_code;
use pix_server::dict::{CHECK_SCOPE, STATISTICS_SCOPE};
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    keys_are_resolved_checked_and_described,
    key_requests_are_validated_with_catalogued_errors,
    lookups_spend_an_anti_scan_budget_per_account,
    parallel_misses_each_spend_the_miss_cost_and_a_hit_costs_one,
    bulk_checks_and_statistics_are_charged,
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
    assert_eq!(limited.headers()["retry-after"], "1", "admitted again as soon as the balance is positive");
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

/// Milli-tokens in the tenant's `scope` bucket now (a zero charge only reads it).
async fn balance(dx: &Dx, scope: &str, bucket: TokenBucket) -> i64 {
    dx.app.db.store.charge_bucket(dx.tenant.id, scope, bucket, 0, dx.now()).await.unwrap().tokens
}

async fn lookup_scope(dx: &Dx, alias: &str) -> String {
    format!("lookup:{}", dx.account(alias))
}

async fn parallel_misses_each_spend_the_miss_cost_and_a_hit_costs_one(dx: &Dx) {
    let natural = antiscan_bucket(PersonType::Natural);
    let scope = lookup_scope(dx, "@maria").await;
    // Four misses at once from a full bucket of 100: each reserved 20 before looking up.
    let misses =
        (0..4).map(|i| dx.as_account(Method::GET, &format!("/v1/dict/keys/par{i}@example.com"), "@maria").send());
    for miss in futures::future::join_all(misses).await {
        assert_eq!(miss.unwrap().status(), 404);
    }
    assert_eq!(balance(dx, &scope, natural).await, (100 - 4 * 20) * 1000, "N misses spend N x 20");

    // A hit reserves 20 and gets 19 back.
    let hit = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@maria").send().await.unwrap();
    assert_eq!(hit.status(), 200);
    assert_eq!(balance(dx, &scope, natural).await, 19 * 1000, "a hit costs 1 net");

    // Three misses at once from 19 tokens: the first reservation is admitted and overdraws the
    // bucket, the others find it no longer positive.
    let misses =
        (0..3).map(|i| dx.as_account(Method::GET, &format!("/v1/dict/keys/neg{i}@example.com"), "@maria").send());
    let statuses: Vec<u16> =
        futures::future::join_all(misses).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
    assert_eq!(balance(dx, &scope, natural).await, -1000, "negative, as DICT's balance may be");
    let refused = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@maria").send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "31", "1 token and 1 milli-token at 2 a minute");
}

async fn bulk_checks_and_statistics_are_charged(dx: &Dx) {
    let full = PARTICIPANT_BUCKET.full();
    // One key found (1) and two not (3 each).
    let checked = dx
        .call(Method::POST, "/v1/dict/keys/check")
        .json(&json!({"keys": [{"key": ANA_EMAIL}, {"key": "nobody@example.com"}, {"key": "noone@example.com"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);
    assert_eq!(balance(dx, CHECK_SCOPE, PARTICIPANT_BUCKET).await, full - 7 * 1000);

    let stats = dx.call(Method::GET, &format!("/v1/dict/statistics/keys/{ANA_EMAIL}")).send().await.unwrap();
    assert_eq!(stats.status(), 200);
    assert_eq!(balance(dx, STATISTICS_SCOPE, PARTICIPANT_BUCKET).await, full - 1000, "one token a call");

    // Drained to zero, both answer 429 with Retry-After, and BTG is not called.
    let now = dx.now();
    let store = &dx.app.db.store;
    store.charge_bucket(dx.tenant.id, CHECK_SCOPE, PARTICIPANT_BUCKET, 4_993, now).await.unwrap();
    store.charge_bucket(dx.tenant.id, STATISTICS_SCOPE, PARTICIPANT_BUCKET, 4_999, now).await.unwrap();
    let refused =
        dx.call(Method::POST, "/v1/dict/keys/check").json(&json!({"keys": [{"key": ANA_EMAIL}]})).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, "PIX-0116");
    let refused = dx.call(Method::GET, &format!("/v1/dict/statistics/keys/{ANA_EMAIL}")).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(error_code(refused).await, "PIX-0116");

    // A 200-key check reserves 600 tokens up front: with one token left it is admitted and
    // overdraws the bucket (the misses keep their full cost).
    dx.app.clock.advance(chrono::Duration::milliseconds(24));
    assert_eq!(balance(dx, CHECK_SCOPE, PARTICIPANT_BUCKET).await, 1000, "2,500 a minute: one token in 24 ms");
    let keys: Vec<Value> = (0..200).map(|i| json!({"key": format!("bulk{i}@example.com")})).collect();
    let bulk = dx.call(Method::POST, "/v1/dict/keys/check").json(&json!({"keys": keys})).send().await.unwrap();
    assert_eq!(bulk.status(), 200);
    assert_eq!(balance(dx, CHECK_SCOPE, PARTICIPANT_BUCKET).await, (1 - 600) * 1000);
}
