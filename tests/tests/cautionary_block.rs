//! MED cautionary blocks (issue #15 item 4): an infraction report against a Pix one of our
//! customers received holds the reported amount in Midaz (up to the available balance), released
//! when the report or the refund request closes in the customer's favour, returned through a MED
//! refund that adopts the hold when the request is accepted. Balances are read at the simulated
//! Midaz; every change is a CAUTIONARY_BLOCK event.

#[macro_use]
mod dict_common;

use dict_common::{Dx, at_btg, balance, cash_in, deliver, eventually, outbound_events, refund_request_against_us};
use pix_core::money::Money;
use pix_core::refund::{RefundReason, SplitSource};
use pix_core::transfer::Direction;
use pix_integrations::midaz::{IdempotencyKey, Leg, TransactionRequest};
use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    a_report_against_our_customer_blocks_the_amount_until_disagreed,
    the_block_is_limited_to_the_available_balance,
    nothing_available_is_an_unfunded_block,
    an_accepted_refund_request_returns_the_block_it_adopts,
    a_partial_acceptance_releases_the_block_then_refunds,
    a_rejected_refund_request_releases_the_block,
    a_redelivered_report_makes_one_block,
    a_lost_midaz_answer_is_retried_under_the_same_key,
    a_report_on_a_payment_not_ours_blocks_nothing,
);

async fn post(dx: &Dx, path: &str, body: Value) -> reqwest::Response {
    dx.call(Method::POST, path).json(&body).send().await.unwrap()
}

/// A Pix of `amount` received on a new key of Maria's, credited; returns (EndToEndId, transfer id).
async fn received(dx: &Dx, amount: &str) -> (String, uuid::Uuid) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, amount).await;
    let id =
        dx.app.db.store.transfer_by_end_to_end_id(dx.tenant.id, Direction::Cashin, &e2e).await.unwrap().unwrap().id;
    (e2e, id)
}

/// Another participant reports the Pix `e2e` (through the simulated DICT); returns our report id.
async fn report_against_us(dx: &Dx, e2e: &str, amount: Option<&str>) -> String {
    let mut body = json!({"endToEndId": e2e});
    if let Some(a) = amount {
        body["amount"] = json!(a);
    }
    let remote = dx.control(Method::POST, "/_control/btg/infraction-reports", body).await;
    our_report(dx, remote["id"].as_str().unwrap()).await
}

/// Our id of the report BTG knows as `btg_id`, once its event was handled.
async fn our_report(dx: &Dx, btg_id: &str) -> String {
    for _ in 0..300 {
        let page = dx.get_json("/v1/dict/infraction-reports?limit=100").await;
        let found = page["items"].as_array().unwrap().iter().find(|r| r["bacenInfractionId"] == btg_id).cloned();
        if let Some(r) = found {
            return r["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the report against us never arrived");
}

/// The transfer as Maria's account sees it.
async fn transfer(dx: &Dx, id: uuid::Uuid) -> Value {
    let response = dx.as_account(Method::GET, &format!("/v1/transfers/{id}"), "@maria").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until the only block on transfer `id` has `status`; returns it. Up to 30 s: a lost
/// Midaz answer is only known after the client's 10 s timeout, then the job retries.
async fn block_reaches(dx: &Dx, id: uuid::Uuid, status: &str) -> Value {
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        last = transfer(dx, id).await;
        if last["cautionaryBlocks"][0]["status"] == status {
            assert_eq!(last["cautionaryBlocks"].as_array().unwrap().len(), 1, "{last}");
            return last["cautionaryBlocks"][0].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the block never reached {status}: {last}");
}

/// The statuses of the CAUTIONARY_BLOCK events, in order.
async fn block_events(dx: &Dx) -> Vec<String> {
    let events = outbound_events(dx, "CAUTIONARY_BLOCK").await;
    events.iter().map(|e| e["payload"]["status"].as_str().unwrap().to_owned()).collect()
}

/// Leaves Maria `left` centavos available by holding the rest behind the host's back.
async fn leave_available(dx: &Dx, left: i64) {
    let tenant = dx.app.db.store.tenant(dx.tenant.id).await.unwrap().unwrap();
    let ledger = dx.dict.integrations.for_tenant(&tenant).unwrap().ledger.clone();
    let take = Money::from_centavos(balance(dx, "@maria").0 - left);
    let hold = TransactionRequest::transfer(
        "BRL",
        vec![Leg::amount("@maria", "BRL", take)],
        vec![Leg::amount("@external/BRL", "BRL", take)],
    )
    .pending();
    ledger.create_transaction(&hold, &IdempotencyKey::new(uuid::Uuid::new_v4().to_string())).await.unwrap();
    assert_eq!(balance(dx, "@maria").0, left);
}

/// Transactions the simulated Midaz holds for the tenant's ledger.
fn ledger_transactions(dx: &Dx) -> i64 {
    let state = dx.app.sandbox.handle.midaz_state();
    let ledger = state["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["accounts"].as_array().unwrap().iter().any(|a| a["alias"] == "@maria"))
        .unwrap()
        .clone();
    ledger["transactions"].as_i64().unwrap()
}

async fn close_report(dx: &Dx, id: &str, result: &str) {
    let closed = post(dx, &format!("/v1/dict/infraction-reports/{id}/close"), json!({"analysisResult": result})).await;
    assert_eq!(closed.status(), 200);
}

async fn a_report_against_our_customer_blocks_the_amount_until_disagreed(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    let before = balance(dx, "@maria");
    let report = report_against_us(dx, &e2e, Some("100.00")).await;
    let block = block_reaches(dx, transfer_id, "HELD").await;
    assert_eq!((block["requestedAmount"].as_str(), block["amount"].as_str()), (Some("100.00"), Some("100.00")));
    assert_eq!(block["infractionReportId"], report.as_str());
    assert!(block["holdTransactionId"].is_string());
    assert_eq!(balance(dx, "@maria"), (before.0 - 10_000, before.1 + 10_000), "held at Midaz");
    let shown = dx.get_json(&format!("/v1/dict/infraction-reports/{report}")).await;
    assert_eq!(shown["cautionaryBlock"]["id"], block["id"], "the report shows its block");
    let listed = dx.as_account(Method::GET, "/v1/transfers?type=CASHIN", "@maria").send().await.unwrap();
    let listed: Value = listed.json().await.unwrap();
    let item = listed["items"].as_array().unwrap().iter().find(|t| t["endToEndId"] == e2e.as_str()).unwrap().clone();
    assert_eq!(item["cautionaryBlocks"][0]["status"], "HELD", "list items show blocks too");

    close_report(dx, &report, "DISAGREED").await;
    let released = block_reaches(dx, transfer_id, "RELEASED").await;
    assert_eq!(released["holdTransactionId"], block["holdTransactionId"]);
    assert_eq!(balance(dx, "@maria"), before, "released: the customer's balance is whole again");
    assert_eq!(block_events(dx).await, ["REQUESTED", "PLACING", "HELD", "RELEASING", "RELEASED"]);
    let event = outbound_events(dx, "CAUTIONARY_BLOCK").await.pop().unwrap();
    assert_eq!(event["flowType"], "DICT");
    assert_eq!(event["payload"]["id"], block["id"]);
}

async fn the_block_is_limited_to_the_available_balance(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    leave_available(dx, 6_000).await;
    let on_hold = balance(dx, "@maria").1;
    // No InfractionAmount: what is left of the payment (250.00) is asked, 60.00 is there.
    report_against_us(dx, &e2e, None).await;
    let block = block_reaches(dx, transfer_id, "HELD").await;
    assert_eq!((block["requestedAmount"].as_str(), block["amount"].as_str()), (Some("250.00"), Some("60.00")));
    assert_eq!(balance(dx, "@maria"), (0, on_hold + 6_000));
}

async fn nothing_available_is_an_unfunded_block(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    leave_available(dx, 0).await;
    let (before, transactions) = (balance(dx, "@maria"), ledger_transactions(dx));
    report_against_us(dx, &e2e, Some("100.00")).await;
    let block = block_reaches(dx, transfer_id, "UNFUNDED").await;
    assert_eq!(block["amount"], "0.00");
    assert!(block["holdTransactionId"].is_null());
    assert_eq!((balance(dx, "@maria"), ledger_transactions(dx)), (before, transactions), "nothing asked of Midaz");
    assert_eq!(block_events(dx).await, ["REQUESTED", "UNFUNDED"], "the analyst still sees it");
}

async fn an_accepted_refund_request_returns_the_block_it_adopts(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    let before = balance(dx, "@maria");
    let report = report_against_us(dx, &e2e, Some("100.00")).await;
    let block = block_reaches(dx, transfer_id, "HELD").await;
    close_report(dx, &report, "AGREED").await;
    assert_eq!(block_reaches(dx, transfer_id, "HELD").await["id"], block["id"], "AGREED keeps it held");
    let transactions = ledger_transactions(dx);

    let (request, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let closed = post(
        dx,
        &format!("/v1/dict/refund-requests/{request}/close"),
        json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {}}),
    )
    .await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    let refund_id = closed["refundId"].as_str().unwrap();
    let returned = block_reaches(dx, transfer_id, "RETURNED").await;
    assert_eq!(returned["refundId"], refund_id);
    let refund = dx.app.db.store.refund(dx.tenant.id, refund_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (refund.amount, refund.reason, &refund.split),
        (10_000, RefundReason::Fr01, &SplitSource::CautionaryBlock)
    );
    assert_eq!(
        refund.state.ledger_tx_id().map(|h| h.0.as_str()),
        block["holdTransactionId"].as_str(),
        "the refund took the block's hold over"
    );
    assert_eq!(ledger_transactions(dx), transactions, "no second hold was placed");
    assert_eq!(balance(dx, "@maria").0, before.0 - 10_000, "debited exactly once");
    let reversals = dx.control(Method::GET, "/_control/btg/state", Value::Null).await["reversals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["originalEndToEndId"] == e2e.as_str())
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(reversals.len(), 1, "one pacs.004: {reversals:?}");
    assert_eq!(reversals[0]["reason"], "FR01");
    assert_eq!(reversals[0]["amount"], "100.00");
    assert_eq!(at_btg(dx, &btg_id).await["refundEndToEndId"], closed["refundTransactionId"]);
    // The return settles: the hold is committed, nothing is left on hold for it.
    dx.advance(60);
    eventually("the refund COMPLETED", || async { balance(dx, "@maria") == (before.0 - 10_000, before.1) }).await;
    assert_eq!(block_events(dx).await, ["REQUESTED", "PLACING", "HELD", "RETURNED"]);
}

async fn a_partial_acceptance_releases_the_block_then_refunds(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    let before = balance(dx, "@maria");
    let report = report_against_us(dx, &e2e, Some("100.00")).await;
    block_reaches(dx, transfer_id, "HELD").await;
    close_report(dx, &report, "AGREED").await;
    let (request, _) = refund_request_against_us(dx, &e2e, "100.00").await;
    let closed = post(
        dx,
        &format!("/v1/dict/refund-requests/{request}/close"),
        json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "createRefund": {"amount": "40.00"}}),
    )
    .await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    let released = block_reaches(dx, transfer_id, "RELEASED").await;
    assert!(released["refundId"].is_null());
    let refund = dx.app.db.store.refund(dx.tenant.id, closed["refundId"].as_str().unwrap().parse().unwrap()).await;
    let refund = refund.unwrap().unwrap();
    assert_eq!((refund.amount, &refund.split), (4_000, &SplitSource::SingleAccount), "a refund of its own");
    assert_eq!(balance(dx, "@maria").0, before.0 - 4_000, "the block came back, the refund left");
    assert_eq!(block_events(dx).await, ["REQUESTED", "PLACING", "HELD", "RELEASING", "RELEASED"]);
}

async fn a_rejected_refund_request_releases_the_block(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    let before = balance(dx, "@maria");
    let report = report_against_us(dx, &e2e, None).await;
    let block = block_reaches(dx, transfer_id, "HELD").await;
    assert_eq!(block["amount"], "250.00", "no InfractionAmount: the whole payment");
    close_report(dx, &report, "AGREED").await;
    let (request, _) = refund_request_against_us(dx, &e2e, "250.00").await;
    let rejected = post(
        dx,
        &format!("/v1/dict/refund-requests/{request}/close"),
        json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "OTHER"}),
    )
    .await;
    assert_eq!(rejected.status(), 200);
    block_reaches(dx, transfer_id, "RELEASED").await;
    assert_eq!(balance(dx, "@maria"), before);
}

async fn a_redelivered_report_makes_one_block(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    let before = balance(dx, "@maria");
    let remote = dx.control(Method::POST, "/_control/btg/infraction-reports", json!({"endToEndId": e2e})).await;
    our_report(dx, remote["id"].as_str().unwrap()).await;
    deliver(dx, "INFRACTION_REPORT_V2", remote.clone()).await;
    deliver(dx, "INFRACTION_REPORT_V2", remote).await;
    block_reaches(dx, transfer_id, "HELD").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let t = transfer(dx, transfer_id).await;
    assert_eq!(t["cautionaryBlocks"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(balance(dx, "@maria"), (before.0 - 25_000, before.1 + 25_000), "held once");
    assert_eq!(dx.get_json("/v1/dict/infraction-reports").await["total"], 1);
}

async fn a_lost_midaz_answer_is_retried_under_the_same_key(dx: &Dx) {
    let (e2e, transfer_id) = received(dx, "250.00").await;
    let (before, transactions) = (balance(dx, "@maria"), ledger_transactions(dx));
    // Midaz posts the hold but its answer never comes back.
    dx.app.sandbox.handle.add_fault(FaultRule {
        id: String::new(),
        upstream: FaultTarget::Midaz,
        path_prefix: "/v1/organizations".into(),
        method: Some("POST".into()),
        kind: FaultKind::TimeoutAfterEffect,
        count: Some(1),
        probability: None,
    });
    report_against_us(dx, &e2e, Some("100.00")).await;
    let block = block_reaches(dx, transfer_id, "HELD").await;
    let faults = dx.control(Method::GET, "/_control/faults", Value::Null).await;
    assert_eq!(faults, json!([]), "the first place request was lost");
    assert_eq!(balance(dx, "@maria"), (before.0 - 10_000, before.1 + 10_000), "held once");
    assert_eq!(ledger_transactions(dx), transactions + 1, "Midaz replayed the first hold");
    assert!(block["holdTransactionId"].is_string());
    assert_eq!(block_events(dx).await, ["REQUESTED", "PLACING", "HELD"]);
}

async fn a_report_on_a_payment_not_ours_blocks_nothing(dx: &Dx) {
    let (_, transfer_id) = received(dx, "250.00").await;
    let before = balance(dx, "@maria");
    let now = chrono::Utc::now();
    let foreign = json!({"id": uuid::Uuid::new_v4().to_string(), "endToEndId": "E87654321202601011200abcdefghijk",
        "reason": "REFUND_REQUEST", "situationType": "SCAM", "status": "OPEN", "reporterParticipant": "87654321",
        "counterpartyParticipant": "12345678", "infractionAmount": "10.00", "createdAt": now, "updatedAt": now});
    deliver(dx, "INFRACTION_REPORT_V2", foreign.clone()).await;
    let report = our_report(dx, foreign["id"].as_str().unwrap()).await;
    let shown = dx.get_json(&format!("/v1/dict/infraction-reports/{report}")).await;
    assert_eq!(shown["role"], "COUNTERPARTY");
    assert!(shown.get("cautionaryBlock").is_none(), "{shown}");
    assert!(transfer(dx, transfer_id).await.get("cautionaryBlocks").is_none());
    assert_eq!(balance(dx, "@maria"), before);
    assert!(block_events(dx).await.is_empty());
}
