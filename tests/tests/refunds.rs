//! Refunds end to end over HTTP against the simulators: returning a received Pix in full and in
//! parts, concurrent refunds of one transfer, distributed refunds (the spec's Cappta example to
//! the centavo), the refund-split policy, every validation code, returns we receive (one before
//! its cash-out's verdict included), unblock in each BTG state, and lost BTG answers and webhooks
//! finished by the sweeper.

use std::time::Duration;

use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests, error_code};
use pix_sandbox::{FaultKind, FaultTarget};
use reqwest::{Method, Response};
use serde_json::{Value, json};

api_tests!(
    a_received_pix_is_refunded_in_full_once,
    partial_refunds_stay_within_the_original,
    a_refund_the_account_cannot_cover_holds_nothing,
    concurrent_refunds_cannot_together_exceed_the_original,
    a_refund_retried_after_a_crash_mid_request_is_created_once,
    a_distributed_refund_debits_each_account_to_the_centavo,
    the_refund_split_policy_splits_when_operations_are_absent,
    a_refund_split_policy_rejection_is_a_422_with_its_code,
    refund_requests_are_validated_with_catalogued_errors,
    refunds_are_listed_filtered_and_scoped,
    a_return_we_receive_is_credited_once_under_redelivery,
    a_return_of_an_unknown_original_is_kept_for_operators,
    a_return_before_its_cash_out_s_verdict_waits_for_it,
    unblock_settles_a_refund_from_each_btg_state,
    unblock_aborts_when_btg_s_record_diverges,
    unblock_of_a_reversal_btg_does_not_know,
    a_lost_reversal_answer_is_read_back_and_never_released_blindly,
    a_lost_reversal_webhook_is_finished_by_the_sweeper,
);

// ------------------------------------------------------------------------------- harness

async fn refund(bank: &Bank<'_>, alias: &str, transfer: &Value, reason: &str, body: Value) -> Response {
    let path = format!("/v1/transfers/{}/refunds", transfer["id"].as_str().unwrap());
    bank.call(Method::POST, &path, alias).header("X-Reason", reason).json(&body).send().await.unwrap()
}

/// A refund that must be admitted: the 201 body.
async fn refund_ok(bank: &Bank<'_>, alias: &str, transfer: &Value, amount: &str) -> Value {
    let response = refund(bank, alias, transfer, "MD06", json!({"amount": amount})).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn wait_refund(bank: &Bank<'_>, alias: &str, refund: &Value, status: &str) -> Value {
    bank.wait_status(&format!("/v1/refunds/{}", refund["id"].as_str().unwrap()), alias, status).await
}

fn centavos(amount: &Value) -> i64 {
    pix_core::money::Money::parse(amount.as_str().unwrap()).unwrap().centavos()
}

// --------------------------------------------------------------------------- outgoing

async fn a_received_pix_is_refunded_in_full_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "150.00").await;
    let before = bank.balance("@maria").0;
    let created = refund_ok(&bank, "@maria", &cash_in, "150.00").await;
    assert_eq!(created["type"], "CASHOUT");
    assert_eq!(created["reason"], "MD06");
    assert_eq!(created["originalEndToEndId"], cash_in["endToEndId"]);
    assert_eq!(created["status"], "PROCESSING", "BTG accepted it: {created}");
    let return_id = created["returnEndToEndId"].as_str().unwrap();
    assert!(return_id.starts_with('D') && return_id.len() == 32, "a D… return id: {return_id}");
    assert_eq!(bank.balance("@maria"), (before - 15_000, 15_000), "held until BTG settles");

    let done = wait_refund(&bank, "@maria", &created, "COMPLETED").await;
    assert!(done["completedAt"].is_string());
    assert_eq!(bank.balance("@maria"), (before - 15_000, 0), "debited once");
    let at_btg = bank.btg_reversals(cash_in["endToEndId"].as_str().unwrap()).await;
    assert_eq!(at_btg.len(), 1);
    assert_eq!((&at_btg[0]["amount"], &at_btg[0]["status"]), (&json!("150.00"), &json!("CONFIRMED")));
    assert_eq!(at_btg[0]["requestId"], created["id"], "the refund id is BTG's idempotency key");

    let events = bank.events_of(created["id"].as_str().unwrap()).await;
    let statuses: Vec<&str> = events.iter().map(|e| e["payload"]["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["CREATED", "PENDING", "PROCESSING", "COMPLETED"], "{events:?}");
    assert!(events.iter().all(|e| e["flowType"] == "REFUND" && e["entityType"] == "CASHOUT"), "{events:?}");
}

async fn partial_refunds_stay_within_the_original(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "100.00").await;
    for amount in ["30.00", "30.00", "40.00"] {
        let r = refund_ok(&bank, "@maria", &cash_in, amount).await;
        wait_refund(&bank, "@maria", &r, "COMPLETED").await;
    }
    let before = bank.balance("@maria");
    let over = refund(&bank, "@maria", &cash_in, "MD06", json!({"amount": "0.01"})).await;
    assert_eq!(over.status(), 422);
    assert_eq!(error_code(over).await, "PIX-0443");
    assert_eq!(bank.balance("@maria"), before, "nothing held");
    assert_eq!(bank.btg_reversals(cash_in["endToEndId"].as_str().unwrap()).await.len(), 3, "nothing sent");
}

async fn a_refund_the_account_cannot_cover_holds_nothing(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@joao", "100.00").await;
    // João spends everything he has.
    let everything = pix_core::money::Money::from_centavos(bank.balance("@joao").0).to_string();
    completed_cash_out(&bank, "@joao", &everything).await;
    let short = refund(&bank, "@joao", &cash_in, "MD06", json!({"amount": "50.00"})).await;
    assert_eq!((short.status().as_u16(), error_code(short).await), (422, "PIX-0411".into()));
    assert_eq!(bank.balance("@joao"), (0, 0), "nothing held");
    assert!(bank.btg_reversals(cash_in["endToEndId"].as_str().unwrap()).await.is_empty(), "nothing sent");
    let failed = bank.get_json("/v1/refunds?status=FAILED", "@joao").await;
    assert_eq!(failed["items"][0]["failureCode"], "INSUFFICIENT_BALANCE", "recorded as failed: {failed}");
    // The failed refund gave its amount back: once funded again, the whole amount can be refunded.
    bank.receive("@joao", "100.00").await;
    let whole = refund_ok(&bank, "@joao", &cash_in, "100.00").await;
    wait_refund(&bank, "@joao", &whole, "COMPLETED").await;
}

async fn concurrent_refunds_cannot_together_exceed_the_original(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "100.00").await;
    let before = bank.balance("@maria").0;
    let (a, b) = tokio::join!(
        refund(&bank, "@maria", &cash_in, "MD06", json!({"amount": "60.00"})),
        refund(&bank, "@maria", &cash_in, "MD06", json!({"amount": "60.00"})),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 422], "exactly one is admitted");
    let refused = if a.status() == 422 { a } else { b };
    assert_eq!(error_code(refused).await, "PIX-0443");
    let (available, held) = bank.balance("@maria");
    assert_eq!(available + held, before, "only one is held or debited");
    assert_eq!(before - available, 6_000);
}

/// The first request dies after admitting the refund and before its answer is stored (the client
/// hangs up while BTG is slow, which drops the request's future as a crash would). Once the key's
/// lock lapses, the retry with the same key gets that refund: a partial refund leaves room for a
/// second one, so without the key on the refund the retry would return the money twice.
async fn a_refund_retried_after_a_crash_mid_request_is_created_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "100.00").await;
    let e2e = cash_in["endToEndId"].as_str().unwrap();
    let before = bank.balance("@maria").0;
    let path = format!("/v1/transfers/{}/refunds", cash_in["id"].as_str().unwrap());
    let send = |key: &'static str| {
        bank.call(Method::POST, &path, "@maria")
            .header("X-Reason", "MD06")
            .header("X-Idempotency", key)
            .json(&json!({"amount": "30.00"}))
    };
    let reversals = format!("/pix/payments/{e2e}/reversals");
    bank.fault(FaultTarget::Btg, &reversals, Some("POST"), FaultKind::Latency { ms: 5_000 }, Some(1));
    let cut = send("refund-crash-1").timeout(Duration::from_millis(700)).send().await;
    assert!(cut.is_err(), "the first answer is lost: {cut:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_flight = send("refund-crash-1").send().await.unwrap();
    assert_eq!(in_flight.status(), 409, "the key is still locked by the request that died");
    assert_eq!(error_code(in_flight).await, "PIX-0018");
    app.clock.advance(chrono::Duration::seconds(61));
    let retried = send("refund-crash-1").send().await.unwrap();
    assert_eq!(retried.status(), 201, "the retry learns the outcome");
    assert_eq!(retried.headers()["x-idempotency-replayed"], "false", "no answer was stored");
    let retried: Value = retried.json().await.unwrap();
    let listed = bank.get_json(&format!("/v1/refunds?end_to_end={e2e}"), "@maria").await;
    let ids: Vec<&Value> = listed["items"].as_array().unwrap().iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&retried["id"]], "one refund, the one the first request created: {listed}");
    let done =
        bank.sweep_until(&format!("/v1/refunds/{}", retried["id"].as_str().unwrap()), "@maria", "COMPLETED").await;
    assert_eq!(centavos(&done["amount"]), 3_000);
    assert_eq!(bank.balance("@maria"), (before - 3_000, 0), "returned once");
    assert_eq!(bank.btg_reversals(e2e).await.len(), 1, "sent once");
    // Another key is another refund of the 70.00 left.
    let second = send("refund-crash-2").send().await.unwrap();
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    assert_ne!(second["id"], retried["id"]);
}

async fn a_distributed_refund_debits_each_account_to_the_centavo(app: &TestApp) {
    let bank = Bank::open(app).await;
    // Cappta: a R$ 50,000.00 cash-in split R$ 49,000.00 to the customer and R$ 1,000.00 to the
    // fee account (a 2 % cash-in fee for this merchant).
    bank.activate_shipped("fee", json!({"pj-cash-in-bps": 200, "pj-cash-in-max": 100_000})).await;
    let fees_before = bank.balance("@fees_revenue").0;
    let cash_in = bank.receive("@acme", "50000.00").await;
    assert_eq!(cash_in["fee"], "1000.00");
    assert_eq!(bank.balance("@fees_revenue").0, fees_before + 100_000);
    spend_all_but_82_centavos(&bank).await;
    assert_eq!(bank.balance("@acme").0, 82);
    let fees = bank.balance("@fees_revenue").0;

    let body = json!({"amount": "1000.82", "description": "MED Cappta", "operations": [
        {"accountAlias": "@acme", "amount": "0.82"}, {"accountAlias": "@fees_revenue", "amount": "1000.00"}]});
    let created = refund(&bank, "@acme", &cash_in, "FR01", body).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["split"]["source"], "REQUEST");
    wait_refund(&bank, "@acme", &created, "COMPLETED").await;
    assert_eq!(bank.balance("@acme"), (0, 0), "R$ 0.82 from the customer");
    assert_eq!(bank.balance("@fees_revenue"), (fees - 100_000, 0), "R$ 1,000.00 from the fee account");
    let at_btg = bank.btg_reversals(cash_in["endToEndId"].as_str().unwrap()).await;
    assert_eq!(at_btg.len(), 1, "one pacs.004");
    assert_eq!(at_btg[0]["amount"], "1000.82", "for the total");
}

async fn the_refund_split_policy_splits_when_operations_are_absent(app: &TestApp) {
    let bank = Bank::open(app).await;
    bank.activate_shipped("fee", json!({"pj-cash-in-bps": 200, "pj-cash-in-max": 100_000})).await;
    let cash_in = bank.receive("@acme", "50000.00").await;
    // The default policy drains the customer first: all of it while it can.
    let first = refund_ok(&bank, "@acme", &cash_in, "100.00").await;
    assert_eq!(first["split"]["source"], "POLICY", "{first}");
    assert_eq!(first["operations"], json!([{"accountAlias": "@acme", "amount": "100.00"}]));
    wait_refund(&bank, "@acme", &first, "COMPLETED").await;
    // With R$ 0.82 left to the customer, the fee account covers the rest.
    spend_all_but_82_centavos(&bank).await;
    let second = refund_ok(&bank, "@acme", &cash_in, "1000.82").await;
    assert_eq!(
        second["operations"],
        json!([{"accountAlias": "@acme", "amount": "0.82"}, {"accountAlias": "@fees_revenue", "amount": "1000.00"}])
    );
    wait_refund(&bank, "@acme", &second, "COMPLETED").await;
    assert_eq!(bank.balance("@acme").0, 0);
    // The decision is logged like every other (in the background).
    let mut logged = 0;
    for _ in 0..100 {
        logged = app.db.store.recent_policy_decisions(bank.tenant.id, "refund-split", 10).await.unwrap().len();
        if logged == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(logged, 2, "one logged decision per policy split");
}

async fn a_refund_split_policy_rejection_is_a_422_with_its_code(app: &TestApp) {
    let bank = Bank::open(app).await;
    bank.activate_shipped("fee", json!({"pj-cash-in-bps": 200, "pj-cash-in-max": 100_000})).await;
    bank.activate_file("hostile/refund-split-reject.wasm", "refund-split").await;
    let cash_in = bank.receive("@acme", "50000.00").await;
    spend_all_but_82_centavos(&bank).await;
    let before = (bank.balance("@acme"), bank.balance("@fees_revenue"));
    let rejected = refund(&bank, "@acme", &cash_in, "FR01", json!({"amount": "1000.82"})).await;
    assert_eq!(rejected.status(), 422);
    let body: Value = rejected.json().await.unwrap();
    assert_eq!(body["code"], "PIX-0029");
    assert!(body["message"].as_str().unwrap().starts_with("CUSTOMER_ONLY_REFUNDS"), "{body}");
    assert_eq!((bank.balance("@acme"), bank.balance("@fees_revenue")), before, "nothing held");
    assert!(bank.btg_reversals(cash_in["endToEndId"].as_str().unwrap()).await.is_empty(), "nothing sent");
    // What the customer can cover still goes through the same policy.
    let small = refund_ok(&bank, "@acme", &cash_in, "0.82").await;
    assert_eq!(small["split"]["source"], "POLICY");
}

async fn refund_requests_are_validated_with_catalogued_errors(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "100.00").await;
    let before = bank.balance("@maria");
    let path = format!("/v1/transfers/{}/refunds", cash_in["id"].as_str().unwrap());
    let no_reason = bank.call(Method::POST, &path, "@maria").json(&json!({"amount": "1.00"})).send().await.unwrap();
    assert_eq!((no_reason.status().as_u16(), error_code(no_reason).await), (400, "PIX-0001".into()));
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("XX99", json!({"amount": "1.00"}), 400, "PIX-0002"),
        ("MD06", json!({"amount": "0.00"}), 400, "PIX-0004"),
        ("MD06", json!({"amount": "1.001"}), 400, "PIX-0004"),
        ("MD06", json!({"amount": "1.00", "description": "x".repeat(141)}), 400, "PIX-0004"),
        ("MD06", json!({"amount": "1.00", "surprise": true}), 400, "PIX-0006"),
        (
            "MD06",
            json!({"amount": "1.00", "metadata": (0..51).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>()}),
            400,
            "PIX-0004",
        ),
        (
            "MD06",
            json!({"amount": "1.00", "operations": [{"accountAlias": "@maria", "amount": "0.60"}]}),
            400,
            "OPERATIONS_SUM_MISMATCH",
        ),
        (
            "MD06",
            json!({"amount": "1.00", "operations": [{"accountAlias": "@maria", "amount": "0.50"},
                                                     {"accountAlias": "@maria", "amount": "0.50"}]}),
            400,
            "DUPLICATE_ACCOUNT_ALIAS",
        ),
        (
            "MD06",
            json!({"amount": "1.00", "operations": [{"accountAlias": "@maria", "amount": "1.00"},
                                                     {"accountAlias": "@joao", "amount": "0.00"}]}),
            400,
            "PIX-0004",
        ),
        (
            "MD06",
            json!({"amount": "1.00", "operations": [{"accountAlias": "@joao", "amount": "1.00"}]}),
            422,
            "ACCOUNT_ALIAS_NOT_IN_ORIGINAL_TRANSACTION",
        ),
        ("MD06", json!({"amount": "100.01"}), 422, "PIX-0443"),
    ];
    for (reason, body, status, code) in cases {
        let response = refund(&bank, "@maria", &cash_in, reason, body.clone()).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    // Only COMPLETED cash-ins of the account, of the tenant.
    let cash_out = completed_cash_out(&bank, "@maria", "5.00").await;
    let refused = refund(&bank, "@maria", &cash_out, "MD06", json!({"amount": "1.00"})).await;
    assert_eq!((refused.status().as_u16(), error_code(refused).await), (422, "PIX-0442".into()));
    let foreign = refund(&bank, "@joao", &cash_in, "MD06", json!({"amount": "1.00"})).await;
    assert_eq!((foreign.status().as_u16(), error_code(foreign).await), (404, "PIX-0407".into()));
    let other = app.tenant("Outra Instituição").await;
    let other_tenant = app
        .request(Method::POST, &path, &other.token)
        .header("X-Account-Id", bank.account("@maria"))
        .header("X-Reason", "MD06")
        .json(&json!({"amount": "1.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!((other_tenant.status().as_u16(), error_code(other_tenant).await), (404, "PIX-0407".into()));
    // The original's Midaz transaction must exist.
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("GET"), FaultKind::NotFound, Some(1));
    let lost = refund(&bank, "@maria", &cash_in, "MD06", json!({"amount": "1.00"})).await;
    assert_eq!((lost.status().as_u16(), error_code(lost).await), (422, "ORIGINAL_TRANSACTION_NOT_FOUND".into()));
    // 90 days after settlement the window is closed.
    app.clock.advance(chrono::Duration::days(91));
    let late = refund(&bank, "@maria", &cash_in, "MD06", json!({"amount": "1.00"})).await;
    assert_eq!((late.status().as_u16(), error_code(late).await), (422, "PIX-0444".into()));

    assert_eq!(bank.balance("@maria"), (before.0 - 500, before.1), "nothing held by any of them (but the cash-out)");
    assert!(bank.btg_reversals(cash_in["endToEndId"].as_str().unwrap()).await.is_empty(), "nothing sent to BTG");
}

async fn refunds_are_listed_filtered_and_scoped(app: &TestApp) {
    let bank = Bank::open(app).await;
    let first = bank.receive("@maria", "20.00").await;
    let second = bank.receive("@maria", "30.00").await;
    let a = refund_ok(&bank, "@maria", &first, "5.00").await;
    let b = refund_ok(&bank, "@maria", &second, "6.00").await;
    wait_refund(&bank, "@maria", &a, "COMPLETED").await;
    wait_refund(&bank, "@maria", &b, "COMPLETED").await;

    let all = bank.get_json("/v1/refunds", "@maria").await;
    assert_eq!((all["total"].as_i64(), all["page"].as_i64(), all["limit"].as_i64()), (Some(2), Some(1), Some(10)));
    assert_eq!(all["items"][0]["id"], b["id"], "newest first");
    let asc = bank.get_json("/v1/refunds?sort_order=asc&limit=1&page=2", "@maria").await;
    assert_eq!(asc["items"].as_array().unwrap().len(), 1);
    assert_eq!(asc["items"][0]["id"], b["id"]);
    let by_e2e =
        bank.get_json(&format!("/v1/refunds?end_to_end={}", first["endToEndId"].as_str().unwrap()), "@maria").await;
    assert_eq!(by_e2e["total"], 1);
    assert_eq!(by_e2e["items"][0]["id"], a["id"]);
    let by_return =
        bank.get_json(&format!("/v1/refunds?end_to_end={}", a["returnEndToEndId"].as_str().unwrap()), "@maria").await;
    assert_eq!(by_return["items"][0]["id"], a["id"]);
    assert_eq!(bank.get_json("/v1/refunds?status=FAILED", "@maria").await["total"], 0);
    assert_eq!(bank.get_json("/v1/refunds?type=CASHOUT&status=COMPLETED", "@maria").await["total"], 2);
    assert_eq!(bank.get_json("/v1/refunds?type=CASHIN", "@maria").await["total"], 0);
    assert_eq!(bank.get_json("/v1/refunds", "@joao").await["total"], 0, "another account sees none");
    for bad in
        ["status=DONE", "type=PIX", "limit=0", "limit=101", "page=0", "sort_order=up", "modified_after=yesterday"]
    {
        let response = bank.call(Method::GET, &format!("/v1/refunds?{bad}"), "@maria").send().await.unwrap();
        assert_eq!((response.status().as_u16(), error_code(response).await), (400, "PIX-0441".into()), "{bad}");
    }
    let one = bank.get_json(&format!("/v1/refunds/{}", a["id"].as_str().unwrap()), "@maria").await;
    assert_eq!(one["amount"], "5.00");
    let hidden =
        bank.call(Method::GET, &format!("/v1/refunds/{}", a["id"].as_str().unwrap()), "@joao").send().await.unwrap();
    assert_eq!((hidden.status().as_u16(), error_code(hidden).await), (404, "PIX-0440".into()));
}

// --------------------------------------------------------------------------- incoming

/// A completed cash-out of `alias` (its transfer).
async fn completed_cash_out(bank: &Bank<'_>, alias: &str, amount: &str) -> Value {
    let paid = bank.pay(alias, amount).await;
    bank.wait_transfer(alias, paid["id"].as_str().unwrap(), "COMPLETED").await
}

async fn a_return_we_receive_is_credited_once_under_redelivery(app: &TestApp) {
    let bank = Bank::open(app).await;
    let paid = completed_cash_out(&bank, "@maria", "80.00").await;
    let before = bank.balance("@maria").0;
    bank.fault(FaultTarget::Webhooks, "PIX_REVERSAL_INBOUND", None, FaultKind::Duplicate, Some(1));
    let data = bank
        .app
        .sandbox
        .handle
        .inbound_reversal(&json!({"originalEndToEndId": paid["endToEndId"], "amount": "30.00", "reason": "FR01"}))
        .unwrap();
    let path = format!("/v1/refunds?type=CASHIN&end_to_end={}", data["returnEndToEndId"].as_str().unwrap());
    let mut page = Value::Null;
    for _ in 0..200 {
        page = bank.get_json(&path, "@maria").await;
        if page["items"][0]["status"] == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let credited = &page["items"][0];
    assert_eq!(credited["status"], "COMPLETED", "{page}");
    assert_eq!((&credited["type"], &credited["reason"]), (&json!("CASHIN"), &json!("FR01")));
    assert_eq!(credited["transferId"], paid["id"], "linked to the original cash-out");
    // Redelivered (the duplicate above, and once more as a new webhook): credited once.
    bank.post_btg_event("PIX_REVERSAL_INBOUND", data.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bank.balance("@maria").0, before + 3_000);
    assert_eq!(bank.get_json(&path, "@maria").await["total"], 1);
    let events = bank.events_of(credited["id"].as_str().unwrap()).await;
    assert!(events.iter().any(|e| e["entityType"] == "CASHIN" && e["payload"]["status"] == "COMPLETED"), "{events:?}");
}

async fn a_return_of_an_unknown_original_is_kept_for_operators(app: &TestApp) {
    let bank = Bank::open(app).await;
    let paid = completed_cash_out(&bank, "@maria", "10.00").await;
    let before = bank.balance("@maria").0;
    // More than the cash-out sent: BTG would refuse it, so post it as BTG would have sent it.
    let data = json!({"id": "btg-r1", "returnEndToEndId": "D12345678202612061200abcdefghijk",
        "originalEndToEndId": paid["endToEndId"], "amount": "10.01", "reason": "MD06", "status": "CONFIRMED",
        "settledAt": chrono::Utc::now()});
    bank.post_btg_event("PIX_REVERSAL_INBOUND", data).await;
    let unknown = json!({"id": "btg-r2", "returnEndToEndId": "D12345678202612061200zzzzzzzzzzz",
        "originalEndToEndId": "E12345678202612061200nonexistent", "amount": "1.00", "reason": "MD06",
        "status": "CONFIRMED", "settledAt": chrono::Utc::now()});
    bank.post_btg_event("PIX_REVERSAL_INBOUND", unknown).await;
    let mut listed = Vec::new();
    for _ in 0..200 {
        let response = app.request(Method::GET, "/v1/admin/unmatched-returns", &app.admin_token).send().await.unwrap();
        listed = response.json::<Vec<Value>>().await.unwrap();
        if listed.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|u| u["tenantId"] == json!(bank.tenant.id.to_string())));
    assert_eq!(bank.balance("@maria").0, before, "credited to nobody");
    assert_eq!(bank.get_json("/v1/refunds?type=CASHIN", "@maria").await["total"], 0);
}

async fn a_return_before_its_cash_out_s_verdict_waits_for_it(app: &TestApp) {
    let bank = Bank::open(app).await;
    // The simulator never settles amounts ending in .66: BTG's webhooks are ours to send.
    let processed = bank.pay("@maria", "20.66").await;
    let (id, e2e) = (processed["id"].as_str().unwrap(), processed["endToEndId"].clone());
    bank.wait_transfer("@maria", id, "PROCESSING").await;
    let before = bank.balance("@maria").0;
    // Reordered webhooks: the return arrives before the payment's confirmation.
    let return_id = "D12345678202612061200inflight000";
    let reversal = json!({"id": "btg-r1", "returnEndToEndId": return_id, "originalEndToEndId": e2e, "amount": "5.00",
        "reason": "MD06", "status": "CONFIRMED", "settledAt": chrono::Utc::now()});
    bank.post_btg_event("PIX_REVERSAL_INBOUND", reversal).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let path = format!("/v1/refunds?type=CASHIN&end_to_end={return_id}");
    assert_eq!(bank.get_json(&path, "@maria").await["total"], 0, "not recorded while the cash-out is in flight");
    assert!(app.state.store.unmatched_returns(10).await.unwrap().is_empty(), "and not given up either");
    assert_eq!(bank.balance("@maria").0, before);

    let confirmed = json!({"id": "btg-1", "endToEndId": e2e, "status": "CONFIRMED", "amount": "20.66",
        "settledAt": chrono::Utc::now()});
    bank.post_btg_event("PIX_PAYMENT", confirmed).await;
    bank.wait_transfer("@maria", id, "COMPLETED").await;
    // The return's job comes back on its retry schedule: let the clock run it.
    let page = bank.sweep_until_it(&path, "@maria", |page| page["items"][0]["status"] == "COMPLETED").await;
    assert_eq!((&page["total"], &page["items"][0]["status"]), (&json!(1), &json!("COMPLETED")), "{page}");
    assert_eq!(bank.balance("@maria").0, before + 500, "credited once");
}

// --------------------------------------------------------------------------- unblock

async fn unblock(bank: &Bank<'_>, alias: &str, refund: &Value, body: Option<Value>) -> Response {
    let path = format!("/v1/refunds/{}/unblock", refund["id"].as_str().unwrap());
    let request = bank.call(Method::POST, &path, alias);
    match body {
        Some(b) => request.json(&b),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

fn drop_reversal_webhooks(bank: &Bank<'_>, count: u32) {
    bank.fault(FaultTarget::Webhooks, "PIX_REVERSAL", None, FaultKind::Drop, Some(count));
}

/// Waits until BTG holds the refund's reversal with `status`.
async fn wait_btg_reversal(bank: &Bank<'_>, refund: &Value, status: &str) {
    for _ in 0..200 {
        let state = bank.btg_state().await;
        let found = state["reversals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["requestId"] == refund["id"] && r["status"] == status);
        if found {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("BTG never had the reversal of {} {status}", refund["id"]);
}

async fn unblock_settles_a_refund_from_each_btg_state(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "300.00").await;
    let before = bank.balance("@maria").0;
    // Still processing at BTG (x.66 never settles): 200, nothing changes.
    let stuck = refund_ok(&bank, "@maria", &cash_in, "10.66").await;
    let response = unblock(&bank, "@maria", &stuck, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!((&body["btgStatus"], &body["refund"]["status"]), (&json!("PROCESSING"), &json!("PROCESSING")));
    // Confirmed at BTG, its webhook lost: unblock completes it and commits the hold.
    drop_reversal_webhooks(&bank, 1);
    let confirmed = refund_ok(&bank, "@maria", &cash_in, "20.00").await;
    wait_btg_reversal(&bank, &confirmed, "CONFIRMED").await;
    let body: Value = unblock(&bank, "@maria", &confirmed, Some(json!({}))).await.json().await.unwrap();
    assert_eq!((&body["btgStatus"], &body["refund"]["status"]), (&json!("CONFIRMED"), &json!("COMPLETED")), "{body}");
    // Rejected at BTG (x.13), its webhook lost: unblock fails it and releases the hold.
    drop_reversal_webhooks(&bank, 1);
    let rejected = refund_ok(&bank, "@maria", &cash_in, "30.13").await;
    wait_btg_reversal(&bank, &rejected, "REJECTED").await;
    let body: Value = unblock(&bank, "@maria", &rejected, None).await.json().await.unwrap();
    assert_eq!((&body["btgStatus"], &body["refund"]["status"]), (&json!("REJECTED"), &json!("FAILED")), "{body}");
    assert_eq!(body["refund"]["failureCode"], "AC06");
    assert_eq!(bank.balance("@maria"), (before - 1_066 - 2_000, 1_066), "the stuck one still held, the rest settled");
    // A final refund cannot be unblocked; a rejected refund gave its amount back.
    let again = unblock(&bank, "@maria", &confirmed, None).await;
    assert_eq!((again.status().as_u16(), error_code(again).await), (422, "PIX-0445".into()));
    refund_ok(&bank, "@maria", &cash_in, "269.34").await;
}

async fn unblock_aborts_when_btg_s_record_diverges(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "50.00").await;
    let stuck = refund_ok(&bank, "@maria", &cash_in, "10.66").await;
    let return_id = stuck["returnEndToEndId"].as_str().unwrap();
    bank.app.sandbox.handle.tamper_reversal(return_id, "someone-else").unwrap();
    let before = bank.balance("@maria");
    let response = unblock(&bank, "@maria", &stuck, None).await;
    assert_eq!((response.status().as_u16(), error_code(response).await), (409, "PIX-0420".into()));
    assert_eq!(bank.balance("@maria"), before, "nothing settled");
    let after = bank.get_json(&format!("/v1/refunds/{}", stuck["id"].as_str().unwrap()), "@maria").await;
    assert_eq!(after["status"], "PROCESSING");
}

async fn unblock_of_a_reversal_btg_does_not_know(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "50.00").await;
    let before = bank.balance("@maria").0;
    let stuck = refund_ok(&bank, "@maria", &cash_in, "10.66").await;
    let e2e = cash_in["endToEndId"].as_str().unwrap();
    let reversals = format!("/pix/payments/{e2e}/reversals");
    // Strict by default: an error, the hold untouched.
    bank.fault(FaultTarget::Btg, &reversals, Some("GET"), FaultKind::NotFound, Some(1));
    let strict = unblock(&bank, "@maria", &stuck, Some(json!({"allowNotFoundUnblock": false}))).await;
    assert_eq!((strict.status().as_u16(), error_code(strict).await), (409, "PIX-1012".into()));
    assert_eq!(bank.balance("@maria"), (before - 1_066, 1_066));
    // Opted in, but a reversal accepted a moment ago may not be readable yet: still kept.
    bank.fault(FaultTarget::Btg, &reversals, Some("GET"), FaultKind::NotFound, Some(1));
    let early = unblock(&bank, "@maria", &stuck, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!((early.status().as_u16(), error_code(early).await), (409, "PIX-1012".into()));
    assert_eq!(bank.balance("@maria"), (before - 1_066, 1_066));
    // Opted in past the grace period: the hold is released and the refund fails with BTG_NOT_FOUND.
    app.clock.advance(chrono::Duration::minutes(3));
    bank.fault(FaultTarget::Btg, &reversals, Some("GET"), FaultKind::NotFound, Some(1));
    let released = unblock(&bank, "@maria", &stuck, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!(released.status(), 200);
    let body: Value = released.json().await.unwrap();
    assert_eq!(body["btgStatus"], "NOT_FOUND");
    assert_eq!(
        (&body["refund"]["status"], &body["refund"]["failureCode"]),
        (&json!("FAILED"), &json!("BTG_NOT_FOUND"))
    );
    assert_eq!(bank.balance("@maria"), (before, 0));
    let events = bank.events_of(stuck["id"].as_str().unwrap()).await;
    assert_eq!(events.last().unwrap()["payload"]["status"], "FAILED");
    let bad = unblock(&bank, "@maria", &stuck, Some(json!({"allowNotFoundUnblock": "yes"}))).await;
    assert_eq!(bad.status(), 400);
}

// --------------------------------------------------------------------------- lost answers

async fn a_lost_reversal_answer_is_read_back_and_never_released_blindly(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "50.00").await;
    let e2e = cash_in["endToEndId"].as_str().unwrap();
    let reversals = format!("/pix/payments/{e2e}/reversals");
    let before = bank.balance("@maria").0;
    // BTG takes the reversal but its answer is lost, and so is the first read-back: PENDING,
    // held, no return id yet.
    bank.fault(FaultTarget::Btg, &reversals, Some("POST"), FaultKind::TimeoutAfterEffect, Some(1));
    bank.fault(FaultTarget::Btg, &reversals, Some("GET"), FaultKind::NotFound, Some(2));
    drop_reversal_webhooks(&bank, 1);
    let created = refund_ok(&bank, "@maria", &cash_in, "12.00").await;
    assert_eq!(created["status"], "PENDING", "{created}");
    assert!(created["returnEndToEndId"].is_null());
    assert_eq!(bank.balance("@maria"), (before - 1_200, 1_200));
    // The sweeper cannot read it back either, so it sends again, and BTG refuses the resend:
    // an error on a retry is ambiguous, so it reads back again and finds the first one.
    bank.fault(FaultTarget::Btg, &reversals, Some("POST"), FaultKind::Status { status: 422 }, Some(5));
    let path = format!("/v1/refunds/{}", created["id"].as_str().unwrap());
    let done = bank.sweep_until(&path, "@maria", "COMPLETED").await;
    assert!(done["returnEndToEndId"].as_str().unwrap().starts_with('D'));
    assert_eq!(bank.balance("@maria"), (before - 1_200, 0), "debited once, never released");
    assert_eq!(bank.btg_reversals(e2e).await.len(), 1, "sent once");

    // A reversal BTG never received and keeps refusing is released, but only once BTG certainly
    // refused and, past the grace period, still has no record of it.
    bank.app.sandbox.handle.clear_faults();
    bank.fault(FaultTarget::Btg, &reversals, Some("POST"), FaultKind::Hang, Some(1));
    bank.fault(FaultTarget::Btg, &reversals, Some("POST"), FaultKind::Status { status: 422 }, Some(50));
    let never = refund_ok(&bank, "@maria", &cash_in, "3.00").await;
    assert_eq!(never["status"], "PENDING", "{never}");
    let path = format!("/v1/refunds/{}", never["id"].as_str().unwrap());
    let failed = bank.sweep_until(&path, "@maria", "FAILED").await;
    assert_eq!(bank.balance("@maria"), (before - 1_200, 0), "the hold of the one BTG never had is released");
    assert_eq!(bank.btg_reversals(e2e).await.len(), 1, "BTG has only the first");
    assert!(failed["failureCode"].is_string());
}

async fn a_lost_reversal_webhook_is_finished_by_the_sweeper(app: &TestApp) {
    let bank = Bank::open(app).await;
    let cash_in = bank.receive("@maria", "50.00").await;
    let before = bank.balance("@maria").0;
    drop_reversal_webhooks(&bank, 1);
    let created = refund_ok(&bank, "@maria", &cash_in, "7.00").await;
    wait_btg_reversal(&bank, &created, "CONFIRMED").await;
    let path = format!("/v1/refunds/{}", created["id"].as_str().unwrap());
    assert_eq!(bank.get_json(&path, "@maria").await["status"], "PROCESSING", "the webhook was lost");
    bank.sweep_until(&path, "@maria", "COMPLETED").await;
    assert_eq!(bank.balance("@maria"), (before - 700, 0));
    assert_eq!(centavos(&bank.get_json(&path, "@maria").await["amount"]), 700);
}

/// ACME pays away all but R$ 0.82 of its balance (a legal person's cash-out pays R$ 1.50 on top).
/// A spend this large at night (20:00–06:00 in Brasília) scores a fraud review; the refunds are
/// what these tests are about, whatever the hour the suite runs at, so review is raised for it.
async fn spend_all_but_82_centavos(bank: &Bank<'_>) {
    let spend = bank.balance("@acme").0 - 82 - 150;
    bank.activate_shipped("fraud-triage", json!({"review-threshold": 600})).await;
    let paid = bank.pay("@acme", &pix_core::money::Money::from_centavos(spend).to_string()).await;
    bank.wait_transfer("@acme", paid["id"].as_str().unwrap(), "COMPLETED").await;
}
