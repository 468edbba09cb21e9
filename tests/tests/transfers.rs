//! Transfers end to end over HTTP against the simulators: cash-outs by key and by account
//! details, BTG's verdicts (confirm, reject, late, duplicated, reordered), insufficient balance,
//! fraud block and review, cash-ins accepted and refused, fees to the centavo on the simulated
//! ledger, policy swaps, idempotency and queries.

use std::time::Duration;

use pix_core::brcode::BrCode;
use pix_core::money::Money;
use pix_core::pix_key::PixKey;
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests, error_code};
use pix_sandbox::{FaultKind, FaultTarget, QrChargeKind, QrChargeRequest};
use pix_server::config::Config;
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    a_key_cash_out_completes_and_moves_exactly_amount_plus_fee,
    a_manual_cash_out_is_validated_then_completes,
    static_and_dynamic_qr_code_cash_outs_complete,
    a_cash_out_btg_rejects_fails_and_releases_the_hold,
    insufficient_balance_is_422_and_holds_nothing,
    a_lost_btg_answer_is_finished_by_the_sweeper_and_btg_s_verdict_settles_it,
    a_webhook_arriving_before_process_returns_completes_it,
    duplicated_and_reordered_payment_webhooks_settle_once,
    fraud_block_fails_and_review_waits_for_an_operator,
    a_policy_swapped_mid_test_changes_only_later_transfers,
    process_is_idempotent_and_an_initiation_is_processed_once,
    a_retry_after_a_crash_mid_request_gets_the_transfer_not_a_conflict,
    initiations_are_validated,
    a_cash_in_is_credited_net_of_the_fee_to_the_centavo,
    a_cash_in_denied_by_policy_is_refused_at_btg_and_credits_nothing,
    a_duplicated_cash_in_webhook_credits_once,
    transfers_are_listed_filtered_and_scoped_to_the_account,
    transfer_events_are_recorded_in_order,
    a_retry_refused_after_a_lost_answer_reads_btg_back_and_completes,
    a_dropped_confirmation_is_read_back_by_the_sweeper,
    a_dropped_rejection_is_read_back_and_releases_the_hold,
    a_confirmation_after_failure_opens_an_incident_and_re_debits,
    a_rejection_after_completion_opens_an_incident_and_reverts,
    a_closed_payer_account_is_refused_before_anything_is_held,
    an_amount_above_the_tenant_maximum_is_refused,
    concurrent_cash_outs_of_one_account_see_each_other_in_triage,
    an_idempotency_key_reused_with_another_account_is_refused,
);

// --------------------------------------------------------------------------------- cash-out

async fn a_key_cash_out_completes_and_moves_exactly_amount_plus_fee(app: &TestApp) {
    let bank = Bank::open(app).await;
    let (acme_before, _) = bank.balance("@acme");
    let (fees_before, _) = bank.balance("@fees_revenue");
    let initiated = bank
        .initiate(
            "@acme",
            json!({"type": "KEY", "key": bank.ana_key(), "amount": "100.00", "description": "Fatura 42"}),
        )
        .await;
    assert_eq!(initiated.status(), 201);
    let initiated: Value = initiated.json().await.unwrap();
    assert_eq!(initiated["destination"]["name"], "Ana Pereira");
    assert_eq!(initiated["destination"]["taxId"], "***.982.247-**", "the payee's document is masked");
    assert_eq!(initiated["isIntraPSP"], false);
    assert!(initiated["endToEndId"].as_str().unwrap().starts_with('E'));
    assert_eq!(bank.balance("@acme"), (acme_before, 0), "initiation moves no money");

    let processed = bank.process("@acme", initiated["initiationId"].as_str().unwrap()).await;
    assert_eq!(processed.status(), 201);
    let processed: Value = processed.json().await.unwrap();
    assert_eq!(processed["type"], "CASHOUT");
    assert_eq!(processed["purpose"], "TRANSFER");
    assert_eq!(processed["fee"], "1.50", "legal persons pay R$ 1.50 per cash-out (first tier)");
    assert_eq!(processed["endToEndId"], initiated["endToEndId"]);
    assert!(["PROCESSING", "COMPLETED"].contains(&processed["status"].as_str().unwrap()), "{processed}");

    let done = bank.wait_transfer("@acme", processed["id"].as_str().unwrap(), "COMPLETED").await;
    assert!(done["completedAt"].is_string());
    assert_eq!(bank.balance("@acme"), (acme_before - 10_150, 0), "amount and fee leave; nothing stays on hold");
    assert_eq!(bank.balance("@fees_revenue").0, fees_before + 150);
}

async fn a_manual_cash_out_is_validated_then_completes(app: &TestApp) {
    let bank = Bank::open(app).await;
    let (before, _) = bank.balance("@maria");
    let destination = json!({"ispb": "87654321", "branch": "0042", "account": "7001", "accountType": "CACC",
                             "document": "52998224725", "name": "Ana Pereira"});
    for (field, bad) in [
        ("ispb", json!("123")),
        ("branch", json!("00421")),
        ("accountType", json!("XXXX")),
        ("document", json!("52998224700")),
    ] {
        let mut d = destination.clone();
        d[field] = bad;
        let response = bank.initiate("@maria", json!({"type": "MANUAL", "amount": "10.00", "destination": d})).await;
        assert_eq!(response.status(), 400, "bad {field}");
        assert_eq!(error_code(response).await, "PIX-0004");
    }
    let initiated =
        bank.initiate("@maria", json!({"type": "MANUAL", "amount": "25.10", "destination": destination})).await;
    assert_eq!(initiated.status(), 201);
    let initiated: Value = initiated.json().await.unwrap();
    assert_eq!(initiated["destination"]["personType"], "NATURAL_PERSON");
    // A MED 2.0 refund transfer: the purpose reaches BTG as its transactionType.
    let processed: Value = bank
        .call(Method::POST, "/v1/transfers/cashout/process", "@maria")
        .header("X-Purpose", "INSTANT_PAYMENT_REFUND")
        .json(&json!({"initiationId": initiated["initiationId"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(processed["fee"], "0.00", "natural persons send for free");
    assert_eq!(processed["initiationType"], "MANUAL");
    assert_eq!(processed["purpose"], "INSTANT_PAYMENT_REFUND");
    bank.wait_transfer("@maria", processed["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(bank.balance("@maria"), (before - 2_510, 0));
    let sent = bank.btg_payment(&processed["endToEndId"]).await.expect("BTG has it");
    assert_eq!(sent["transactionType"], "INSTANT_PAYMENT_REFUND");
    assert_eq!(sent["amount"], "25.10");
}

async fn static_and_dynamic_qr_code_cash_outs_complete(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    let email = &app.sandbox.data.other_participant.keys[1].key;
    let key = PixKey::infer(email).unwrap();

    // Static code without an amount: the payer types it.
    let open = BrCode::static_code(key.clone(), "Ana Pereira", "Sao Paulo").build().unwrap().encode();
    let missing = bank.initiate("@maria", json!({"type": "QR_CODE", "emv": open})).await;
    assert_eq!(error_code(missing).await, "PIX-0003");
    let typed: Value =
        bank.initiate("@maria", json!({"type": "QR_CODE", "emv": open, "amount": "3.50"})).await.json().await.unwrap();
    assert_eq!(typed["amount"], "3.50");

    // Static code with an amount and a txid: the amount is the code's.
    let fixed = BrCode::static_code(key, "Ana Pereira", "Sao Paulo")
        .amount(Money::parse("4.25").unwrap())
        .txid("PEDIDO42")
        .build()
        .unwrap()
        .encode();
    let other = bank.initiate("@maria", json!({"type": "QR_CODE", "emv": fixed, "amount": "4.00"})).await;
    assert_eq!(other.status(), 400, "an amount other than the code's");
    let initiated: Value =
        bank.initiate("@maria", json!({"type": "QR_CODE", "emv": fixed})).await.json().await.unwrap();
    assert_eq!((initiated["amount"].as_str(), initiated["txId"].as_str()), (Some("4.25"), Some("PEDIDO42")));
    assert_eq!(initiated["destination"]["name"], "Ana Pereira");
    let paid: Value = bank.process("@maria", initiated["initiationId"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(paid["initiationType"], "QR_CODE");
    bank.wait_transfer("@maria", paid["id"].as_str().unwrap(), "COMPLETED").await;

    // Dynamic code: the charge is fetched from its location; its amount and txid are paid.
    let charge = app
        .sandbox
        .handle
        .create_qr_charge(QrChargeRequest {
            kind: QrChargeKind::Immediate,
            key: email.clone(),
            merchant_name: "Ana Pereira".into(),
            merchant_city: "SAO PAULO".into(),
            txid: None,
            description: Some("Pedido 43".into()),
            amount: Some(Money::parse("33.00").unwrap()),
            expires_in_seconds: Some(3600),
            payer_may_change_amount: false,
            due_date: None,
            valid_after_due: None,
            value: None,
            debtor: None,
        })
        .unwrap();
    let initiated: Value =
        bank.initiate("@maria", json!({"type": "QR_CODE", "emv": charge.emv})).await.json().await.unwrap();
    assert_eq!(initiated["amount"], "33.00");
    assert_eq!(initiated["txId"], charge.txid.as_str());
    let paid: Value = bank.process("@maria", initiated["initiationId"].as_str().unwrap()).await.json().await.unwrap();
    let done = bank.wait_transfer("@maria", paid["id"].as_str().unwrap(), "COMPLETED").await;
    assert_eq!(done["txId"], charge.txid.as_str());
    let sent = bank.btg_payment(&done["endToEndId"]).await.expect("BTG has it");
    assert_eq!(sent["amount"], "33.00");
    assert_eq!(bank.balance("@maria"), (before - 425 - 3_300, 0));
}

async fn a_cash_out_btg_rejects_fails_and_releases_the_hold(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria");
    // The simulator rejects amounts ending in .13 (AC03) after accepting them.
    let processed = bank.pay("@maria", "50.13").await;
    let failed = bank.wait_transfer("@maria", processed["id"].as_str().unwrap(), "FAILED").await;
    assert_eq!(failed["failureCode"], "AC03");
    assert!(failed["failedReason"].as_str().unwrap().contains("creditor account"));
    assert_eq!(bank.balance("@maria"), before, "the hold is released");
    assert_eq!(bank.pending_ledger_transactions(), 0);
}

async fn insufficient_balance_is_422_and_holds_nothing(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@joao");
    let initiated = bank.initiate("@joao", json!({"type": "KEY", "key": bank.ana_key(), "amount": "1500.01"})).await;
    let initiated: Value = initiated.json().await.unwrap();
    let response = bank.process("@joao", initiated["initiationId"].as_str().unwrap()).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "PIX-0411");
    assert_eq!(bank.balance("@joao"), before);
    assert_eq!(bank.pending_ledger_transactions(), 0);
    let listed: Value =
        bank.call(Method::GET, "/v1/transfers?status=FAILED", "@joao").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["items"][0]["failureCode"], "INSUFFICIENT_BALANCE", "the attempt is recorded as failed");
}

/// Drops BTG's `PIX_PAYMENT` webhooks to the host (the next `count`).
fn drop_payment_webhooks(bank: &Bank<'_>, count: u32) {
    bank.fault(FaultTarget::Webhooks, "PIX_PAYMENT", None, FaultKind::Drop, Some(count));
}

async fn admin_incidents(app: &TestApp) -> Vec<Value> {
    let response = app.request(Method::GET, "/v1/admin/transfer-incidents", &app.admin_token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Vec<Value>>().await.unwrap()
}

fn payment_event(e2e: &Value, status: &str, amount: &str) -> Value {
    json!({"id": "btg-x", "endToEndId": e2e, "status": status, "amount": amount, "settledAt": chrono::Utc::now()})
}

fn btg_payment_fault(bank: &Bank<'_>, kind: FaultKind, count: u32) {
    bank.fault(FaultTarget::Btg, "/pix/payments", Some("POST"), kind, Some(count));
}

async fn a_lost_btg_answer_is_finished_by_the_sweeper_and_btg_s_verdict_settles_it(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    // BTG is down for every attempt the client makes (three, fewer than open its breaker).
    btg_payment_fault(&bank, FaultKind::Status { status: 503 }, 3);
    let processed = bank.pay("@maria", "30.00").await;
    assert_eq!(processed["status"], "PENDING", "the outcome is unknown, so the transfer waits: {processed}");
    assert_eq!(bank.balance("@maria"), (before - 3_000, 3_000), "the hold stays until BTG answers");
    // The sweeper finds it stale at HELD: BTG has no record of it, so it sends again with the
    // same idempotency key until BTG accepts, and BTG's webhook settles the payment.
    let id = processed["id"].as_str().unwrap();
    // Whether BTG's webhook or the sweeper's read-back of a late verdict settles it, time passes.
    for _ in 0..60 {
        app.clock.advance(chrono::Duration::seconds(31));
        tokio::time::sleep(Duration::from_millis(100)).await;
        if bank.get_transfer("@maria", id).await["status"] == "COMPLETED" {
            break;
        }
    }
    let done = bank.wait_transfer("@maria", id, "COMPLETED").await;
    assert_eq!(done["failureCode"], Value::Null);
    assert_eq!(bank.balance("@maria"), (before - 3_000, 0), "debited once");
}

async fn a_webhook_arriving_before_process_returns_completes_it(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    // BTG takes the payment but the answer is lost (the client times out), and the retries
    // find BTG down: meanwhile BTG settles the payment and its webhook reaches the host.
    btg_payment_fault(&bank, FaultKind::TimeoutAfterEffect, 1);
    btg_payment_fault(&bank, FaultKind::Status { status: 503 }, 2);
    let processed = bank.pay("@maria", "40.00").await;
    assert_eq!(processed["status"], "COMPLETED", "the webhook settled it while the request waited: {processed}");
    assert_eq!(bank.balance("@maria"), (before - 4_000, 0));
    // The safety job finds nothing left to do.
    app.clock.advance(chrono::Duration::seconds(31));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bank.get_transfer("@maria", processed["id"].as_str().unwrap()).await["status"], "COMPLETED");
    assert_eq!(bank.balance("@maria"), (before - 4_000, 0), "debited once");
}

async fn duplicated_and_reordered_payment_webhooks_settle_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    // The simulator never settles amounts ending in .66: we play BTG's webhooks ourselves.
    let processed = bank.pay("@maria", "20.66").await;
    let id = processed["id"].as_str().unwrap();
    let e2e = processed["endToEndId"].as_str().unwrap();
    bank.wait_transfer("@maria", id, "PROCESSING").await;
    let payment = |status: &str| {
        json!({"id": "btg-1", "endToEndId": e2e, "status": status, "amount": "20.66",
                                          "settledAt": chrono::Utc::now()})
    };
    bank.post_btg_event("PIX_PAYMENT", payment("CONFIRMED")).await;
    bank.post_btg_event("PIX_PAYMENT", payment("CONFIRMED")).await;
    bank.wait_transfer("@maria", id, "COMPLETED").await;
    // Late and out of order: a stale PROCESSING, and a verdict contradicting the final one.
    bank.post_btg_event("PIX_PAYMENT", payment("PROCESSING")).await;
    bank.post_btg_event("PIX_PAYMENT", payment("REJECTED")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = bank.get_transfer("@maria", id).await;
    assert_eq!(t["status"], "COMPLETED", "stale and contradicting events change nothing");
    assert_eq!(bank.balance("@maria"), (before - 2_066, 0), "committed once");
}

async fn fraud_block_fails_and_review_waits_for_an_operator(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria");
    bank.activate_shipped("fraud-triage", json!({"block-threshold": 0})).await;
    let blocked = bank.pay("@maria", "10.00").await;
    assert_eq!(blocked["status"], "FAILED");
    assert_eq!(blocked["failureCode"], "FRAUD_BLOCKED");
    assert_eq!(blocked["fraud"]["action"], "BLOCK");
    assert_eq!(bank.balance("@maria"), before, "a blocked payment holds nothing");

    bank.activate_shipped("fraud-triage", json!({"review-threshold": 0, "block-threshold": 1001})).await;
    let first = bank.pay("@maria", "11.00").await;
    let second = bank.pay("@maria", "12.00").await;
    assert_eq!(first["status"], "IN_REVIEW");
    assert_eq!(bank.balance("@maria"), before, "nothing is held while in review");
    let queue: Value = app
        .request(Method::GET, "/v1/admin/transfer-reviews", &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = queue.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&first["id"].as_str().unwrap()) && ids.contains(&second["id"].as_str().unwrap()));
    let review = |id: &str, decision: &str| {
        app.request(
            Method::POST,
            &format!("/v1/admin/tenants/{}/transfers/{id}/review", bank.tenant.id),
            &app.admin_token,
        )
        .json(&json!({"decision": decision, "note": "checked with the customer"}))
        .send()
    };
    let released = review(first["id"].as_str().unwrap(), "RELEASE").await.unwrap();
    assert_eq!(released.status(), 200);
    bank.wait_transfer("@maria", first["id"].as_str().unwrap(), "COMPLETED").await;
    let rejected: Value = review(second["id"].as_str().unwrap(), "REJECT").await.unwrap().json().await.unwrap();
    assert_eq!(rejected["status"], "FAILED");
    assert_eq!(rejected["failureCode"], "FRAUD_REVIEW_REJECTED");
    let again = review(second["id"].as_str().unwrap(), "RELEASE").await.unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, "PIX-0413");
    assert_eq!(bank.balance("@maria"), (before.0 - 1_100, 0), "only the released payment left");
}

async fn a_policy_swapped_mid_test_changes_only_later_transfers(app: &TestApp) {
    let bank = Bank::open(app).await;
    let earlier = bank.pay("@maria", "5.00").await;
    let earlier = bank.wait_transfer("@maria", earlier["id"].as_str().unwrap(), "COMPLETED").await;
    bank.activate_shipped("fraud-triage", json!({"block-threshold": 0})).await;
    let later = bank.pay("@maria", "6.00").await;
    assert_eq!(later["failureCode"], "FRAUD_BLOCKED");
    assert_ne!(later["fraud"]["policySha256"], Value::Null);
    let unchanged = bank.get_transfer("@maria", earlier["id"].as_str().unwrap()).await;
    assert_eq!(unchanged, earlier, "a transfer decided before the swap is untouched");
}

/// The `process` body of a cash-out of `amount` initiated by @maria to Ana's key.
async fn initiated_to_ana(bank: &Bank<'_>, amount: &str) -> Value {
    let initiated: Value = bank
        .initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": amount}))
        .await
        .json()
        .await
        .unwrap();
    json!({"initiationId": initiated["initiationId"]})
}

/// @maria's `process` of `body` under the idempotency `key`.
fn process_with_key(bank: &Bank<'_>, body: &Value, key: &str) -> reqwest::RequestBuilder {
    bank.call(Method::POST, "/v1/transfers/cashout/process", "@maria").header("X-Idempotency", key).json(body)
}

async fn process_is_idempotent_and_an_initiation_is_processed_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    let body = initiated_to_ana(&bank, "7.00").await;
    let send = |key: &str| process_with_key(&bank, &body, key).send();
    let first = send("pay-7").await.unwrap();
    assert_eq!(first.status(), 201);
    let first_body = first.text().await.unwrap();
    let replay = send("pay-7").await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["x-idempotency-replayed"], "true");
    assert_eq!(replay.text().await.unwrap(), first_body, "a replay is the identical answer");
    let other_key = send("pay-7-again").await.unwrap();
    assert_eq!(other_key.status(), 409);
    assert_eq!(error_code(other_key).await, "PIX-0410");
    let id = serde_json::from_str::<Value>(&first_body).unwrap()["id"].as_str().unwrap().to_owned();
    bank.wait_transfer("@maria", &id, "COMPLETED").await;
    assert_eq!(bank.balance("@maria").0, before - 700, "paid once");
}

/// The first `process` dies after admitting the transfer and before its answer is stored (here
/// the client hangs up while BTG is slow, which drops the request's future as a crash would): the
/// key's lock lapses, and the retry with the same key gets the transfer, not 409 `PIX-0410`.
async fn a_retry_after_a_crash_mid_request_gets_the_transfer_not_a_conflict(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    let body = initiated_to_ana(&bank, "9.00").await;
    let send = |key: &str| process_with_key(&bank, &body, key).send();
    btg_payment_fault(&bank, FaultKind::Latency { ms: 5_000 }, 1);
    let cut = process_with_key(&bank, &body, "crash-1").timeout(Duration::from_millis(700)).send().await;
    assert!(cut.is_err(), "the first answer is lost: {cut:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_flight = send("crash-1").await.unwrap();
    assert_eq!(in_flight.status(), 409, "the key is still locked by the request that died");
    assert_eq!(error_code(in_flight).await, "PIX-0018");
    app.clock.advance(chrono::Duration::seconds(61));
    let retried = send("crash-1").await.unwrap();
    assert_eq!(retried.status(), 201, "the retry learns the outcome");
    assert_eq!(
        retried.headers()["x-idempotency-replayed"],
        "false",
        "the retry took the key over; no answer was stored"
    );
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["initiationId"], body["initiationId"]);
    let id = retried["id"].as_str().unwrap().to_owned();
    let again = send("crash-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["x-idempotency-replayed"], "true", "now the answer is stored");
    let other_key = send("crash-2").await.unwrap();
    assert_eq!(other_key.status(), 409, "another request for the same initiation is still refused");
    assert_eq!(error_code(other_key).await, "PIX-0410");
    for _ in 0..60 {
        if bank.get_transfer("@maria", &id).await["status"] == "COMPLETED" {
            break;
        }
        app.clock.advance(chrono::Duration::seconds(31));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bank.wait_transfer("@maria", &id, "COMPLETED").await;
    assert_eq!(bank.balance("@maria").0, before - 900, "paid once");
}

async fn initiations_are_validated(app: &TestApp) {
    let bank = Bank::open(app).await;
    let bank = &bank;
    let check = |body: Value, status: u16, code: &'static str| async move {
        let response = bank.initiate("@maria", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    };
    check(json!({"type": "KEY", "amount": "1.00"}), 400, "PIX-0003").await;
    check(json!({"type": "KEY", "key": bank.ana_key()}), 400, "PIX-0003").await;
    check(json!({"type": "KEY", "key": bank.ana_key(), "amount": "0.00"}), 400, "PIX-0004").await;
    check(json!({"type": "KEY", "key": bank.ana_key(), "amount": "1.001"}), 400, "PIX-0004").await;
    check(json!({"type": "PIGEON", "amount": "1.00"}), 400, "PIX-0004").await;
    check(json!({"type": "KEY", "key": "nobody@example.com", "amount": "1.00"}), 404, "PIX-0114").await;
    check(json!({"type": "QR_CODE", "amount": "1.00"}), 400, "PIX-0003").await;

    // A key of this institution: flagged intra-PSP at initiation, settled internally.
    let own =
        bank.call(Method::POST, "/v1/dict/entries", "@joao").json(&json!({"keyType": "EVP"})).send().await.unwrap();
    assert_eq!(own.status(), 201);
    let own: Value = own.json().await.unwrap();
    let intra: Value = bank
        .initiate("@maria", json!({"type": "KEY", "key": own["key"], "amount": "1.00"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(intra["isIntraPSP"], true);
    let response = bank.process("@maria", intra["initiationId"].as_str().unwrap()).await;
    assert_eq!(response.status(), 201);
    let processed: Value = response.json().await.unwrap();
    assert_eq!((&processed["isIntraPSP"], &processed["status"]), (&json!(true), &json!("PROCESSING")), "{processed}");

    // Purposes: only TRANSFER and INSTANT_PAYMENT_REFUND.
    let initiated: Value = bank
        .initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": "1.00"}))
        .await
        .json()
        .await
        .unwrap();
    let with_purpose = |purpose: &str| {
        bank.call(Method::POST, "/v1/transfers/cashout/process", "@maria")
            .header("X-Purpose", purpose)
            .json(&json!({"initiationId": initiated["initiationId"]}))
            .send()
    };
    for unsupported in ["CHANGE", "WITHDRAWAL", "REFUND_AUTOMATIC_PIX", "INSTALLMENT_PIX"] {
        let response = with_purpose(unsupported).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(error_code(response).await, "PIX-0429");
    }
    // Another account cannot process it; an unknown id is not found.
    let response = bank.process("@joao", initiated["initiationId"].as_str().unwrap()).await;
    assert_eq!(error_code(response).await, "PIX-0408");
    // Expired initiations cannot be processed.
    app.clock.advance(chrono::Duration::seconds(301));
    let response = with_purpose("INSTANT_PAYMENT_REFUND").await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "PIX-0409");
}

// ---------------------------------------------------------------------------------- cash-in

async fn a_cash_in_is_credited_net_of_the_fee_to_the_centavo(app: &TestApp) {
    let bank = Bank::open(app).await;
    let (acme, fees) = (bank.balance("@acme").0, bank.balance("@fees_revenue").0);
    let pix = bank.send_pix_to("@acme", "345.67");
    let t = bank.wait_cash_in("@acme", pix["endToEndId"].as_str().unwrap()).await;
    assert_eq!(t["status"], "COMPLETED");
    assert_eq!(t["amount"], "345.67");
    // 0.99 % of 345.67 = 3.4221… → 3.42, deducted from what is credited.
    assert_eq!(t["fee"], "3.42");
    assert_eq!(t["counterparty"]["name"], "Pagador Externo");
    assert_eq!(bank.balance("@acme").0, acme + 34_225);
    assert_eq!(bank.balance("@fees_revenue").0, fees + 342);
}

async fn a_cash_in_denied_by_policy_is_refused_at_btg_and_credits_nothing(app: &TestApp) {
    let bank = Bank::open(app).await;
    // Every hour is "night" and the limit is zero: natural persons receive nothing
    // (unless the payer is the payee: the simulator's default payer is Maria, so pay João).
    bank.activate_shipped("cashin-acceptance", json!({"nightly-limit": 0, "night-start": 0, "night-end": 1439})).await;
    let before = bank.balance("@joao").0;
    let pix = bank.send_pix_to("@joao", "80.00");
    let e2e = pix["endToEndId"].as_str().unwrap();
    let t = bank.wait_cash_in("@joao", e2e).await;
    assert_eq!(t["status"], "FAILED");
    assert_eq!(t["failureCode"], "RECIPIENT_CANNOT_RECEIVE");
    assert_eq!(bank.balance("@joao").0, before, "nothing credited");
    // BTG was told, with the pacs.002 reason of the policy: its payment reads REJECTED.
    let stored = app.db.store.tenant(bank.tenant.id).await.unwrap().unwrap();
    let btg = app.state.integrations.for_tenant(&stored).unwrap().btg.clone();
    let mut payment = btg.payment(e2e).await.unwrap();
    for _ in 0..100 {
        if payment.status.as_str() == "REJECTED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        payment = btg.payment(e2e).await.unwrap();
    }
    assert_eq!(payment.status.as_str(), "REJECTED");
    assert_eq!(payment.rejection_code.as_deref(), Some("AM02"));
}

async fn a_duplicated_cash_in_webhook_credits_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@joao").0;
    let pix = bank.send_pix_to("@joao", "15.00");
    let e2e = pix["endToEndId"].as_str().unwrap();
    bank.wait_cash_in("@joao", e2e).await;
    // The same payment delivered again under a new webhook id.
    bank.post_btg_event("PIX_PAYMENT_INBOUND", pix.clone()).await;
    bank.post_btg_event("PIX_PAYMENT_INBOUND", pix.clone()).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(bank.balance("@joao").0, before + 1_500, "credited once");
    let page: Value =
        bank.call(Method::GET, "/v1/transfers?type=CASHIN", "@joao").send().await.unwrap().json().await.unwrap();
    assert_eq!(page["total"], 1);
}

// ---------------------------------------------------------------------------------- queries

async fn transfers_are_listed_filtered_and_scoped_to_the_account(app: &TestApp) {
    let bank = Bank::open(app).await;
    let out = bank.pay("@maria", "3.00").await;
    bank.wait_transfer("@maria", out["id"].as_str().unwrap(), "COMPLETED").await;
    let pix = bank.send_pix_to("@maria", "4.00");
    bank.wait_cash_in("@maria", pix["endToEndId"].as_str().unwrap()).await;

    let list = |query: &str, alias: &str| bank.call(Method::GET, &format!("/v1/transfers{query}"), alias).send();
    let all: Value = list("", "@maria").await.unwrap().json().await.unwrap();
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["type"], "CASHIN", "newest first by default");
    let asc: Value = list("?sort_order=asc&limit=1", "@maria").await.unwrap().json().await.unwrap();
    assert_eq!(asc["items"].as_array().unwrap().len(), 1);
    assert_eq!(asc["items"][0]["type"], "CASHOUT");
    let by_e2e: Value = list(&format!("?end_to_end={}", out["endToEndId"].as_str().unwrap()), "@maria")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_e2e["total"], 1);
    let after: Value = list("?modified_after=2999-01-01T00:00:00Z", "@maria").await.unwrap().json().await.unwrap();
    assert_eq!(after["total"], 0);
    let others: Value = list("", "@joao").await.unwrap().json().await.unwrap();
    assert_eq!(others["total"], 0, "another account sees none of them");
    for bad in
        ["?limit=0", "?limit=abc", "?sort_order=up", "?status=DONE", "?type=REFUND", "?modified_before=yesterday"]
    {
        let response = list(bad, "@maria").await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(error_code(response).await, "PIX-0404", "{bad}");
    }
    let hidden = bank
        .call(Method::GET, &format!("/v1/transfers/{}", out["id"].as_str().unwrap()), "@joao")
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404);
    assert_eq!(error_code(hidden).await, "PIX-0407");
    let malformed = bank.call(Method::GET, "/v1/transfers/not-a-uuid", "@maria").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
}

async fn transfer_events_are_recorded_in_order(app: &TestApp) {
    let bank = Bank::open(app).await;
    let out = bank.pay("@maria", "2.00").await;
    let id = out["id"].as_str().unwrap();
    bank.wait_transfer("@maria", id, "COMPLETED").await;
    let statuses: Vec<String> = bank
        .events_of(id)
        .await
        .into_iter()
        .map(|e| {
            assert_eq!((e["flowType"].as_str(), e["entityType"].as_str()), (Some("TRANSFER"), Some("CASHOUT")));
            e["payload"]["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses, ["PENDING", "PROCESSING", "COMPLETED"]);
}

// ------------------------------------------------------------------- the money engine (#11)

async fn a_retry_refused_after_a_lost_answer_reads_btg_back_and_completes(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    // BTG takes the payment but its answer is lost; the retry with the same key is refused with
    // a business error. Releasing the hold now would let the customer keep money that left.
    btg_payment_fault(&bank, FaultKind::TimeoutAfterEffect, 1);
    btg_payment_fault(&bank, FaultKind::Status { status: 422 }, 5);
    let processed = bank.pay("@maria", "35.00").await;
    assert_ne!(processed["status"], "FAILED", "a refused retry is not a refusal of the payment: {processed}");
    let id = processed["id"].as_str().unwrap();
    let done = bank.wait_transfer("@maria", id, "COMPLETED").await;
    assert_eq!(done["failureCode"], Value::Null);
    assert_eq!(bank.balance("@maria"), (before - 3_500, 0), "debited once, nothing released");
    assert_eq!(bank.pending_ledger_transactions(), 0);
}

async fn a_dropped_confirmation_is_read_back_by_the_sweeper(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    drop_payment_webhooks(&bank, 10);
    let processed = bank.pay("@maria", "21.00").await;
    let id = processed["id"].as_str().unwrap();
    bank.wait_btg_status(&processed["endToEndId"], "CONFIRMED").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bank.get_transfer("@maria", id).await["status"], "PROCESSING", "no webhook reached us");
    assert_eq!(bank.balance("@maria"), (before - 2_100, 2_100), "still on hold");
    bank.sweep_until(&format!("/v1/transfers/{id}"), "@maria", "COMPLETED").await;
    assert_eq!(bank.balance("@maria"), (before - 2_100, 0), "the sweeper committed the hold");
}

async fn a_dropped_rejection_is_read_back_and_releases_the_hold(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria");
    drop_payment_webhooks(&bank, 10);
    // The simulator rejects amounts ending in .13.
    let processed = bank.pay("@maria", "22.13").await;
    let id = processed["id"].as_str().unwrap();
    bank.wait_btg_status(&processed["endToEndId"], "REJECTED").await;
    let failed = bank.sweep_until(&format!("/v1/transfers/{id}"), "@maria", "FAILED").await;
    assert_eq!(failed["failureCode"], "AC03");
    assert_eq!(bank.balance("@maria"), before, "the hold is released");
    assert_eq!(bank.pending_ledger_transactions(), 0);
}

async fn a_confirmation_after_failure_opens_an_incident_and_re_debits(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    drop_payment_webhooks(&bank, 10);
    let processed = bank.pay("@maria", "23.00").await;
    let (id, e2e) = (processed["id"].as_str().unwrap(), &processed["endToEndId"]);
    // A (mistaken) rejection reaches us first: the hold is released.
    bank.post_btg_event("PIX_PAYMENT", payment_event(e2e, "REJECTED", "23.00")).await;
    bank.wait_transfer("@maria", id, "FAILED").await;
    assert_eq!(bank.balance("@maria"), (before, 0));
    // BTG in fact paid it, and says so.
    bank.wait_btg_status(e2e, "CONFIRMED").await;
    bank.post_btg_event("PIX_PAYMENT", payment_event(e2e, "CONFIRMED", "23.00")).await;
    let incident = bank.wait_transfer("@maria", id, "RECONCILIATION_REQUIRED").await;
    assert_eq!(incident["incident"]["kind"], "CONFIRMED_AFTER_FAILED");
    for _ in 0..100 {
        if bank.balance("@maria").0 == before - 2_300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bank.balance("@maria"), (before - 2_300, 0), "the customer is re-debited what BTG paid");
    let listed = admin_incidents(app).await;
    assert!(listed.iter().any(|t| t["id"] == id), "the incident is on the admin listing");
    let events = bank.events_of(id).await;
    assert!(events.iter().any(|e| e["payload"]["status"] == "RECONCILIATION_REQUIRED"), "an event says so");
}

async fn a_rejection_after_completion_opens_an_incident_and_reverts(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria").0;
    drop_payment_webhooks(&bank, 10);
    let processed = bank.pay("@maria", "24.13").await;
    let (id, e2e) = (processed["id"].as_str().unwrap(), &processed["endToEndId"]);
    // A (mistaken) confirmation reaches us first: the hold is committed.
    bank.post_btg_event("PIX_PAYMENT", payment_event(e2e, "CONFIRMED", "24.13")).await;
    bank.wait_transfer("@maria", id, "COMPLETED").await;
    assert_eq!(bank.balance("@maria"), (before - 2_413, 0));
    // BTG in fact rejected it.
    bank.wait_btg_status(e2e, "REJECTED").await;
    bank.post_btg_event("PIX_PAYMENT", payment_event(e2e, "REJECTED", "24.13")).await;
    let incident = bank.wait_transfer("@maria", id, "RECONCILIATION_REQUIRED").await;
    assert_eq!(incident["incident"]["kind"], "REJECTED_AFTER_COMPLETED");
    for _ in 0..100 {
        if bank.balance("@maria").0 == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bank.balance("@maria"), (before, 0), "the committed hold is reverted");
    assert!(admin_incidents(app).await.iter().any(|t| t["id"] == id));
}

async fn a_closed_payer_account_is_refused_before_anything_is_held(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria");
    app.sandbox.handle.close_account(&bank.account("@maria")).expect("the account has an alias");
    let initiated = bank.initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": "5.00"})).await;
    assert_eq!(initiated.status(), 201);
    let initiated: Value = initiated.json().await.unwrap();
    let refused = bank.process("@maria", initiated["initiationId"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(error_code(refused).await, "PIX-0414");
    assert_eq!(bank.balance("@maria"), before, "nothing held");
}

async fn an_amount_above_the_tenant_maximum_is_refused(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = bank.balance("@maria");
    let set = app
        .request(Method::PUT, &format!("/v1/admin/tenants/{}/transfer-limits", bank.tenant.id), &app.admin_token)
        .json(&json!({"maxTransferAmount": "50.00", "maxFee": null, "feeAccounts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
    let initiated = bank.initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": "50.01"})).await;
    let initiated: Value = initiated.json().await.unwrap();
    let refused = bank.process("@maria", initiated["initiationId"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(error_code(refused).await, "PIX-0415");
    assert_eq!(bank.balance("@maria"), before, "nothing held");
    let at_max = bank.pay("@maria", "50.00").await;
    assert_ne!(at_max["status"], "FAILED", "the maximum itself is allowed");
}

async fn concurrent_cash_outs_of_one_account_see_each_other_in_triage(app: &TestApp) {
    let bank = Bank::open(app).await;
    let mut initiations = Vec::new();
    for _ in 0..4 {
        let initiated = bank.initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": "1.00"})).await;
        let initiated: Value = initiated.json().await.unwrap();
        initiations.push(initiated["initiationId"].as_str().unwrap().to_owned());
    }
    let responses = futures::future::join_all(initiations.iter().map(|i| bank.process("@maria", i))).await;
    assert!(responses.iter().all(|r| r.status() == 201));
    app.state.policies.flush_decisions().await;
    let decisions = app.db.store.recent_policy_decisions(bank.tenant.id, "fraud-triage", 10).await.unwrap();
    let mut counts: Vec<i64> =
        decisions.iter().map(|d| d.input["velocity"]["count1h"].as_i64().expect("velocity in the input")).collect();
    counts.sort_unstable();
    assert_eq!(counts, [0, 1, 2, 3], "each admission saw the ones admitted before it");
}

async fn an_idempotency_key_reused_with_another_account_is_refused(app: &TestApp) {
    let bank = Bank::open(app).await;
    let initiated = bank.initiate("@maria", json!({"type": "KEY", "key": bank.ana_key(), "amount": "2.00"})).await;
    let initiated: Value = initiated.json().await.unwrap();
    let body = json!({"initiationId": initiated["initiationId"]});
    let first = bank
        .call(Method::POST, "/v1/transfers/cashout/process", "@maria")
        .header("X-Idempotency", "process-once")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let other = bank
        .call(Method::POST, "/v1/transfers/cashout/process", "@acme")
        .header("X-Idempotency", "process-once")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(error_code(other).await, "IDEMPOTENCY_KEY_REUSE");
}

/// CRM stays down for more job retries than a job's attempt budget while its circuit breaker is
/// open: the cash-in waits for CRM instead of going dead, and is credited once CRM is back
/// (simulation seed 6576, where the simulated clock ran retries faster than the breaker cooled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cash_in_waits_out_a_crm_outage_longer_than_its_attempt_budget() {
    let cooldown = Duration::from_secs(5);
    let app = TestApp::start_with_upstreams(pix_store::testing::TestStore::sqlite().await, Config::default(), |u| {
        u.crm.http.breaker.cooldown_ms = cooldown.as_millis() as u64;
    })
    .await;
    let bank = Bank::with_inbound_worker_only(&app).await;
    let acme = bank.balance("@acme").0;
    bank.fault(FaultTarget::Crm, "/", None, FaultKind::Status { status: 503 }, None);
    let started = std::time::Instant::now();
    let pix = bank.send_pix_to("@acme", "345.67");
    // The webhook is stored (signed on the wall clock, so before the test clock moves).
    let inbound = pix_store::inbound::INBOUND_QUEUE;
    for _ in 0..100 {
        if app.db.store.queue_counts(inbound).await.unwrap() != Default::default() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Fifteen retries fall due (each past the 15-minute backoff cap) well within one cooldown:
    // the first runs call CRM and open its breaker, the rest are short-circuited.
    for _ in 0..15 {
        app.clock.advance(chrono::Duration::minutes(16));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(started.elapsed() < cooldown, "the rounds must fit in one cooldown: {:?}", started.elapsed());
    let jobs = app.db.store.queue_counts(inbound).await.unwrap();
    assert_eq!((jobs.ready + jobs.running, jobs.dead, jobs.done), (1, 0, 0), "the cash-in is still waiting: {jobs:?}");

    app.sandbox.handle.clear_faults();
    tokio::time::sleep(cooldown).await;
    app.clock.advance(chrono::Duration::minutes(16));
    let t = bank.wait_cash_in("@acme", pix["endToEndId"].as_str().unwrap()).await;
    assert_eq!(t["status"], "COMPLETED");
    assert_eq!(bank.balance("@acme").0, acme + 34_225, "credited once, net of the fee");
}
