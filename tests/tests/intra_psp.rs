//! Intra-PSP transfers end to end: KEY, QR_CODE and MANUAL cash-outs between two accounts of the
//! institution settle internally (both Midaz legs, both events, nothing at BTG), refusals revert
//! the debit, the signed endpoint settles once, a lost debit answer loses nothing, a revert
//! Midaz refuses is an incident, unblock drives stuck ones from the local records, and a refund
//! whose cash-out is not concluded yet waits for it.

use std::time::Duration;

use pix_core::brcode::BrCode;
use pix_core::clock::Clock;
use pix_core::money::Money;
use pix_core::pix_key::PixKey;
use pix_core::transfer::{CashoutState, TransferState};
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests, error_code};
use pix_sandbox::{FaultKind, FaultTarget};
use pix_store::transfers::save_transfer;
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    key_qr_and_manual_intra_psp_cash_outs_complete_with_both_legs,
    a_refused_intra_psp_cash_out_reverts_the_debit,
    each_payee_side_check_refuses_and_reverts,
    an_internal_credit_midaz_refuses_reverts_the_debit,
    a_revert_midaz_refuses_is_an_incident,
    the_intra_psp_endpoint_is_signed_and_settles_once,
    a_lost_debit_answer_loses_nothing,
    unblock_drives_a_stuck_intra_psp_cash_out_from_local_records,
    an_intra_psp_refund_returns_the_money_internally,
    unblock_drives_a_stuck_intra_psp_refund_from_local_records,
    a_refund_before_its_cash_out_concluded_waits_and_loses_nothing,
);

// ------------------------------------------------------------------------------- harness

/// João's account details at this institution (a MANUAL destination).
fn joao(bank: &Bank<'_>) -> Value {
    let a = bank.app.sandbox.data.accounts.iter().find(|a| a.alias == "@joao").unwrap();
    json!({"ispb": bank.app.sandbox.data.ispb, "branch": a.branch, "account": a.number, "accountType": "CACC",
           "document": a.document, "name": a.name})
}

async fn joao_key(bank: &Bank<'_>) -> String {
    let created =
        bank.call(Method::POST, "/v1/dict/entries", "@joao").json(&json!({"keyType": "EVP"})).send().await.unwrap();
    assert_eq!(created.status(), 201);
    created.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned()
}

/// Initiates and processes a cash-out from `alias`; returns the 201 body of process.
async fn send(bank: &Bank<'_>, alias: &str, body: Value) -> Value {
    let initiated = bank.call(Method::POST, "/v1/transfers/cashout/initiate", alias).json(&body).send().await.unwrap();
    assert_eq!(initiated.status(), 201, "{body}");
    let initiated: Value = initiated.json().await.unwrap();
    assert_eq!(initiated["isIntraPSP"], true, "{initiated}");
    let processed = bank
        .call(Method::POST, "/v1/transfers/cashout/process", alias)
        .json(&json!({"initiationId": initiated["initiationId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(processed.status(), 201);
    let processed: Value = processed.json().await.unwrap();
    assert_eq!(processed["isIntraPSP"], true);
    processed
}

fn transfer_path(t: &Value) -> String {
    format!("/v1/transfers/{}", t["id"].as_str().unwrap())
}

/// The internal cash-in of an intra-PSP cash-out, as the payee sees it.
async fn cash_in_of(bank: &Bank<'_>, payee: &str, cash_out: &Value) -> Value {
    let e2e = cash_out["endToEndId"].as_str().unwrap();
    let page = bank.get_json(&format!("/v1/transfers?type=CASHIN&end_to_end={e2e}"), payee).await;
    page["items"][0].clone()
}

/// The trck.002 rows of an EndToEndId, once the reporter got them CONFIRMED by camt.025.
async fn reported(bank: &Bank<'_>, e2e: &str, rows: usize) -> Vec<Value> {
    let path = format!("/v1/admin/internal-reports?tenantId={}&endToEndId={e2e}", bank.tenant.id);
    let mut listed = Vec::new();
    for _ in 0..100 {
        let response = bank.app.request(Method::GET, &path, &bank.app.admin_token).send().await.unwrap();
        listed = response.json::<Vec<Value>>().await.unwrap();
        if listed.len() == rows && listed.iter().all(|r| r["status"] == "CONFIRMED") {
            return listed;
        }
        // The reporter polls on its own interval: let the test clock run it.
        bank.app.clock.advance(chrono::Duration::seconds(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{e2e} not reported and confirmed: {listed:?}");
}

/// `POST {path}/unblock` as `alias`, `path` being a transfer's or a refund's.
async fn unblock(bank: &Bank<'_>, path: &str, alias: &str) -> reqwest::Response {
    bank.call(Method::POST, &format!("{path}/unblock"), alias).send().await.unwrap()
}

async fn never_at_btg(bank: &Bank<'_>, t: &Value) {
    let state = bank.btg_state().await;
    let at_btg = state["payments"].as_array().unwrap().iter().any(|p| p["endToEndId"] == t["endToEndId"]);
    assert!(!at_btg, "an intra-PSP payment never goes to BTG");
}

// --------------------------------------------------------------------------------- tests

async fn key_qr_and_manual_intra_psp_cash_outs_complete_with_both_legs(app: &TestApp) {
    let bank = Bank::open(app).await;
    let key = joao_key(&bank).await;
    let qr = BrCode::static_code(PixKey::infer(&key).unwrap(), "Joao Souza", "Sao Paulo")
        .amount(Money::parse("7.25").unwrap())
        .build()
        .unwrap()
        .encode();
    let cases = [
        (json!({"type": "KEY", "key": key, "amount": "10.00"}), 1_000, "KEY"),
        (json!({"type": "QR_CODE", "emv": qr}), 725, "QR_CODE"),
        (json!({"type": "MANUAL", "amount": "3.33", "destination": joao(&bank)}), 333, "MANUAL"),
    ];
    for (body, centavos, kind) in cases {
        let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);
        let processed = send(&bank, "@maria", body).await;
        assert!(["PROCESSING", "COMPLETED"].contains(&processed["status"].as_str().unwrap()), "{processed}");
        let done = bank.wait_status(&transfer_path(&processed), "@maria", "COMPLETED").await;
        assert_eq!(done["initiationType"], kind);
        assert_eq!(bank.balance("@maria"), (maria - centavos, 0), "{kind}: the payer is debited once, nothing held");
        assert_eq!(bank.balance("@joao").0, joao_before + centavos, "{kind}: the payee is credited");
        let cash_in = cash_in_of(&bank, "@joao", &processed).await;
        assert_eq!((&cash_in["status"], &cash_in["isIntraPSP"]), (&json!("COMPLETED"), &json!(true)), "{cash_in}");
        never_at_btg(&bank, &processed).await;
        let out_events = bank.events_of(processed["id"].as_str().unwrap()).await;
        assert_eq!(out_events.last().unwrap()["payload"]["status"], "COMPLETED");
        assert!(out_events.iter().all(|e| e["entityType"] == "CASHOUT"));
        let in_events = bank.events_of(cash_in["id"].as_str().unwrap()).await;
        assert!(in_events.iter().any(|e| e["entityType"] == "CASHIN" && e["payload"]["status"] == "COMPLETED"));
    }
    // Each one reported to BACEN (trck.002), confirmed by camt.025.
    let last = reported(
        &bank,
        bank.get_json("/v1/transfers?type=CASHOUT&limit=1", "@maria").await["items"][0]["endToEndId"].as_str().unwrap(),
        1,
    )
    .await;
    assert_eq!((&last[0]["kind"], &last[0]["amount"]), (&json!("TRANSFER"), &json!(333)));
    let metrics = app.http.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"pix_trck002_report_latency_seconds_bucket{le="300"}"#),
        "the reporting latency is a histogram with a bucket at the SLA"
    );
    let listed = bank.get_json("/v1/transfers?type=CASHOUT&is_intra_psp=true", "@maria").await;
    assert_eq!(listed["total"], 3);
    assert!(listed["items"].as_array().unwrap().iter().all(|t| t["isIntraPSP"] == true));
    assert_eq!(bank.get_json("/v1/transfers?is_intra_psp=false", "@maria").await["total"], 0);
    assert_eq!(bank.get_json("/v1/transfers?type=CASHIN&is_intra_psp=true", "@joao").await["total"], 3);
    let bad = bank.call(Method::GET, "/v1/transfers?is_intra_psp=yes", "@maria").send().await.unwrap();
    assert_eq!((bad.status().as_u16(), error_code(bad).await), (400, "PIX-0404".into()));
}

async fn a_refused_intra_psp_cash_out_reverts_the_debit(app: &TestApp) {
    let bank = Bank::open(app).await;
    let maria = bank.balance("@maria").0;
    // An account number of this institution that no customer has: the payee's side refuses.
    let mut nobody = joao(&bank);
    nobody["account"] = json!("999999");
    let processed = send(&bank, "@maria", json!({"type": "MANUAL", "amount": "12.00", "destination": nobody})).await;
    let failed = bank.wait_status(&transfer_path(&processed), "@maria", "FAILED").await;
    assert_eq!(failed["failureCode"], "RECIPIENT_ACCOUNT_INVALID");
    assert_eq!(bank.balance("@maria"), (maria, 0), "the debit is reverted");
    // A closed payee account: refused by the same cash-in approval as an external Pix.
    let joao_account = bank.account("@joao");
    bank.app.sandbox.handle.close_account(&joao_account);
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "5.00", "destination": joao(&bank)})).await;
    let failed = bank.wait_status(&transfer_path(&processed), "@maria", "FAILED").await;
    assert!(failed["failureCode"].is_string(), "{failed}");
    assert_eq!(bank.balance("@maria"), (maria, 0));
    let events = bank.events_of(processed["id"].as_str().unwrap()).await;
    assert_eq!(events.last().unwrap()["payload"]["status"], "FAILED");
    never_at_btg(&bank, &processed).await;
}

async fn each_payee_side_check_refuses_and_reverts(app: &TestApp) {
    let bank = Bank::open(app).await;
    let maria = bank.balance("@maria").0;
    // The payee's balance may not receive: RECIPIENT_CANNOT_RECEIVE.
    assert!(app.sandbox.handle.set_allow_receiving("@joao", false));
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "2.00", "destination": joao(&bank)})).await;
    let failed = bank.wait_status(&transfer_path(&processed), "@maria", "FAILED").await;
    assert_eq!(failed["failureCode"], "RECIPIENT_CANNOT_RECEIVE");
    assert_eq!(bank.balance("@maria"), (maria, 0), "reverted");
    app.sandbox.handle.set_allow_receiving("@joao", true);
    // The key left the payee's account between initiation and settlement: PIX_KEY_OWNERSHIP_INVALID.
    let created =
        bank.call(Method::POST, "/v1/dict/entries", "@joao").json(&json!({"keyType": "EVP"})).send().await.unwrap();
    let entry: Value = created.json().await.unwrap();
    let body = json!({"type": "KEY", "key": entry["key"], "amount": "3.00"});
    let initiated =
        bank.call(Method::POST, "/v1/transfers/cashout/initiate", "@maria").json(&body).send().await.unwrap();
    let initiated: Value = initiated.json().await.unwrap();
    assert_eq!(initiated["isIntraPSP"], true);
    let deleted = bank
        .call(Method::DELETE, &format!("/v1/dict/entries/{}", entry["id"].as_str().unwrap()), "@joao")
        .header("X-Reason", "USER_REQUESTED")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let processed: Value = bank
        .call(Method::POST, "/v1/transfers/cashout/process", "@maria")
        .json(&json!({"initiationId": initiated["initiationId"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = bank.wait_status(&transfer_path(&processed), "@maria", "FAILED").await;
    assert_eq!(failed["failureCode"], "PIX_KEY_OWNERSHIP_INVALID");
    assert_eq!(bank.balance("@maria"), (maria, 0), "reverted");
}

async fn an_internal_credit_midaz_refuses_reverts_the_debit(app: &TestApp) {
    let bank = Bank::open(app).await;
    let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);
    // The first ledger write (the payer's debit) goes through; the second (the payee's credit)
    // is refused.
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::Latency { ms: 0 }, Some(1));
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::Status { status: 422 }, Some(1));
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "8.00", "destination": joao(&bank)})).await;
    let failed = bank.wait_status(&transfer_path(&processed), "@maria", "FAILED").await;
    assert_eq!(failed["failureCode"], "INTERNAL_CREDIT_FAILED", "{failed}");
    assert_eq!((bank.balance("@maria").0, bank.balance("@joao").0), (maria, joao_before), "debit reverted, no credit");
    let cash_in = cash_in_of(&bank, "@joao", &processed).await;
    assert_eq!(cash_in["status"], "FAILED");
}

async fn a_revert_midaz_refuses_is_an_incident(app: &TestApp) {
    let bank = Bank::open(app).await;
    let maria = bank.balance("@maria").0;
    let mut nobody = joao(&bank);
    nobody["account"] = json!("999998");
    // The debit goes through, then every revert is refused.
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::Latency { ms: 0 }, Some(1));
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::Status { status: 422 }, Some(1_000));
    let processed = send(&bank, "@maria", json!({"type": "MANUAL", "amount": "6.00", "destination": nobody})).await;
    let path = transfer_path(&processed);
    let stuck = bank.wait_status(&path, "@maria", "RECONCILIATION_REQUIRED").await;
    assert_eq!(stuck["incident"]["kind"], "DEBIT_REVERT_FAILED", "{stuck}");
    assert!(stuck["incident"]["note"].as_str().unwrap().starts_with("INTERNAL_DEBIT_REVERT_FAILED"), "{stuck}");
    assert_eq!(bank.balance("@maria").0, maria - 600, "still debited: nothing is released silently");
    let listed = app.request(Method::GET, "/v1/admin/transfer-incidents", &app.admin_token).send().await.unwrap();
    let listed: Vec<Value> = listed.json().await.unwrap();
    assert!(listed.iter().any(|t| t["id"] == processed["id"]), "listed for operators");
    // Once Midaz takes it, the incident's correction reverts the debit, visibly.
    bank.app.sandbox.handle.clear_faults();
    for _ in 0..40 {
        app.clock.advance(chrono::Duration::minutes(31));
        tokio::time::sleep(Duration::from_millis(100)).await;
        if bank.balance("@maria").0 == maria {
            break;
        }
    }
    assert_eq!(bank.balance("@maria").0, maria, "reverted by the incident's correction");
    let corrected = bank.get_json(&path, "@maria").await;
    assert_eq!(corrected["status"], "RECONCILIATION_REQUIRED", "the incident stays on record");
    assert!(corrected["incident"]["note"].as_str().unwrap().contains("reverted"), "{corrected}");
}

async fn the_intra_psp_endpoint_is_signed_and_settles_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "4.00", "destination": joao(&bank)})).await;
    bank.wait_status(&transfer_path(&processed), "@maria", "COMPLETED").await;
    let body =
        serde_json::to_vec(&json!({"tenantId": bank.tenant.id, "kind": "TRANSFER", "transferId": processed["id"]}))
            .unwrap();
    let post = |signature: Option<String>, timestamp: i64| {
        let mut request = app
            .http
            .post(format!("{}/v1/payment/webhooks/intra-psp/events", app.url))
            .header("content-type", "application/json")
            .header("x-signature-timestamp", timestamp.to_string())
            .body(body.clone());
        if let Some(s) = signature {
            request = request.header("x-signature", s);
        }
        request.send()
    };
    let key = app.state.store.derived_key(&format!("intra-psp:{}", bank.tenant.id));
    let now = app.clock.now().timestamp();
    // Redelivered, correctly signed: 200 and nothing moves again.
    for _ in 0..2 {
        let again = post(Some(pix_sandbox::sign(&key, now, &body)), now).await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap()["transfer"]["status"], "COMPLETED");
    }
    assert_eq!((bank.balance("@maria").0, bank.balance("@joao").0), (maria - 400, joao_before + 400));
    // Unsigned, signed with another key, or stale: 401 and nothing runs.
    let unsigned = post(None, now).await.unwrap();
    assert_eq!((unsigned.status().as_u16(), error_code(unsigned).await), (401, "PIX-0009".into()));
    let forged = post(Some(pix_sandbox::sign(b"guess", now, &body)), now).await.unwrap();
    assert_eq!(forged.status(), 401);
    let stale = now - 3600;
    let old = post(Some(pix_sandbox::sign(&key, stale, &body)), stale).await.unwrap();
    assert_eq!(old.status(), 401);
}

async fn a_lost_debit_answer_loses_nothing(app: &TestApp) {
    let bank = Bank::open(app).await;
    let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);
    // Midaz posts the debit but its answer is lost: the cash-out stays PENDING with nothing
    // queued; the sweeper posts the debit again under the same key (Midaz replays it) and queues.
    // (the client retries a lost answer with the same key, so its retries fail too).
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::TimeoutAfterEffect, Some(1));
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::Status { status: 503 }, Some(50));
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "9.00", "destination": joao(&bank)})).await;
    assert_eq!(processed["status"], "PENDING", "{processed}");
    assert_eq!(bank.balance("@maria").0, maria - 900, "the debit was posted, its answer lost");
    app.sandbox.handle.clear_faults();
    let path = transfer_path(&processed);
    for _ in 0..40 {
        app.clock.advance(chrono::Duration::seconds(61));
        tokio::time::sleep(Duration::from_millis(100)).await;
        if bank.get_json(&path, "@maria").await["status"] == "COMPLETED" {
            break;
        }
    }
    assert_eq!(bank.get_json(&path, "@maria").await["status"], "COMPLETED");
    assert_eq!((bank.balance("@maria").0, bank.balance("@joao").0), (maria - 900, joao_before + 900), "once");
}

async fn unblock_drives_a_stuck_intra_psp_cash_out_from_local_records(app: &TestApp) {
    // No workers: the delivery stays queued, so the cash-out stays PROCESSING.
    let tenant = app.tenant("Banco Exemplo").await;
    let bank = Bank { app, tenant };
    let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "2.50", "destination": joao(&bank)})).await;
    assert_eq!(processed["status"], "PROCESSING");
    assert_eq!(bank.balance("@maria").0, maria - 250, "debited");
    assert_eq!(bank.balance("@joao").0, joao_before, "not credited yet");
    let path = transfer_path(&processed);
    let response = unblock(&bank, &path, "@maria").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["transfer"]["status"], "COMPLETED", "{body}");
    assert!(body["btgStatus"].is_null(), "BTG has no part in it");
    assert_eq!(bank.balance("@joao").0, joao_before + 250);
    let again = unblock(&bank, &path, "@maria").await;
    assert_eq!((again.status().as_u16(), error_code(again).await), (422, "PIX-0417".into()), "final now");
}

// ------------------------------------------------------------------------------ refunds

async fn refund(bank: &Bank<'_>, alias: &str, cash_in: &Value, body: Value) -> reqwest::Response {
    let path = format!("/v1/transfers/{}/refunds", cash_in["id"].as_str().unwrap());
    bank.call(Method::POST, &path, alias).header("X-Reason", "MD06").json(&body).send().await.unwrap()
}

async fn an_intra_psp_refund_returns_the_money_internally(app: &TestApp) {
    let bank = Bank::open(app).await;
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "100.00", "destination": joao(&bank)})).await;
    bank.wait_status(&transfer_path(&processed), "@maria", "COMPLETED").await;
    let cash_in = cash_in_of(&bank, "@joao", &processed).await;
    let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);

    let created = refund(&bank, "@joao", &cash_in, json!({"amount": "40.00"})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["isIntraPSP"], true);
    assert!(created["returnEndToEndId"].as_str().unwrap().starts_with('D'), "our own return id: {created}");
    let path = format!("/v1/refunds/{}", created["id"].as_str().unwrap());
    bank.wait_status(&path, "@joao", "COMPLETED").await;
    assert_eq!((bank.balance("@maria").0, bank.balance("@joao").0), (maria + 4_000, joao_before - 4_000));
    assert!(bank.btg_reversals(processed["endToEndId"].as_str().unwrap()).await.is_empty(), "nothing at BTG");
    // The original payer sees the return as a CASHIN refund of her cash-out.
    let back = bank.get_json("/v1/refunds?type=CASHIN&is_intra_psp=true", "@maria").await;
    assert_eq!(back["total"], 1, "{back}");
    assert_eq!(back["items"][0]["transferId"], processed["id"]);
    assert_eq!((&back["items"][0]["status"], &back["items"][0]["isIntraPSP"]), (&json!("COMPLETED"), &json!(true)));
    let events = bank.events_of(created["id"].as_str().unwrap()).await;
    assert_eq!(events.last().unwrap()["payload"]["status"], "COMPLETED");
    // Reported with its return identification, beside the original transfer.
    let rows = reported(&bank, processed["endToEndId"].as_str().unwrap(), 2).await;
    let refund_row = rows.iter().find(|r| r["kind"] == "REFUND").expect("the refund is reported");
    assert_eq!(refund_row["returnIdentification"], created["returnEndToEndId"]);
    assert_eq!(refund_row["amount"], 4_000);

    // Distributed (the accounts the original credited), and never beyond the original.
    let split = refund(
        &bank,
        "@joao",
        &cash_in,
        json!({"amount": "10.00",
        "operations": [{"accountAlias": "@joao", "amount": "10.00"}]}),
    )
    .await;
    assert_eq!(split.status(), 201);
    let split: Value = split.json().await.unwrap();
    assert_eq!(split["split"]["source"], "REQUEST");
    bank.wait_status(&format!("/v1/refunds/{}", split["id"].as_str().unwrap()), "@joao", "COMPLETED").await;
    assert_eq!(bank.balance("@maria").0, maria + 5_000);
    let over = refund(&bank, "@joao", &cash_in, json!({"amount": "50.01"})).await;
    assert_eq!((over.status().as_u16(), error_code(over).await), (422, "PIX-0443".into()));
}

async fn unblock_drives_a_stuck_intra_psp_refund_from_local_records(app: &TestApp) {
    // No workers: deliveries stay queued, so transfers and refunds stay PROCESSING until unblocked.
    let tenant = app.tenant("Banco Exemplo").await;
    let bank = Bank { app, tenant };
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "30.00", "destination": joao(&bank)})).await;
    assert_eq!(unblock(&bank, &transfer_path(&processed), "@maria").await.status(), 200);
    let cash_in = cash_in_of(&bank, "@joao", &processed).await;
    let maria = bank.balance("@maria").0;
    let created: Value = refund(&bank, "@joao", &cash_in, json!({"amount": "5.00"})).await.json().await.unwrap();
    assert_eq!(created["status"], "PROCESSING", "debited and queued: {created}");
    assert_eq!(bank.balance("@maria").0, maria, "not returned yet");
    let path = format!("/v1/refunds/{}", created["id"].as_str().unwrap());
    let unblocked = unblock(&bank, &path, "@joao").await;
    assert_eq!(unblocked.status(), 200);
    let body: Value = unblocked.json().await.unwrap();
    assert!(body["btgStatus"].is_null(), "{body}");
    assert_eq!(body["refund"]["status"], "COMPLETED", "{body}");
    assert_eq!(bank.balance("@maria").0, maria + 500);
    let again = unblock(&bank, &path, "@joao").await;
    assert_eq!((again.status().as_u16(), error_code(again).await), (422, "PIX-0445".into()));
}

async fn a_refund_before_its_cash_out_concluded_waits_and_loses_nothing(app: &TestApp) {
    // No workers: every step runs when the test unblocks it.
    let tenant = app.tenant("Banco Exemplo").await;
    let bank = Bank { app, tenant };
    let processed =
        send(&bank, "@maria", json!({"type": "MANUAL", "amount": "30.00", "destination": joao(&bank)})).await;
    assert_eq!(unblock(&bank, &transfer_path(&processed), "@maria").await.status(), 200);
    // The host crashed after the internal cash-in was credited and before the cash-out was
    // concluded: its record is still DELIVERING, while João already sees the money.
    let id = processed["id"].as_str().unwrap().parse().unwrap();
    let mut cash_out = app.state.store.transfer(bank.tenant.id, id).await.unwrap().unwrap();
    let TransferState::Cashout(CashoutState::Settled { hold }) = cash_out.state.clone() else { panic!("settled") };
    cash_out.state = TransferState::Cashout(CashoutState::Delivering { debit: hold });
    cash_out.completed_at = None;
    let mut tx = app.state.store.begin().await.unwrap();
    assert!(save_transfer(&mut tx, &cash_out).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(bank.get_json(&transfer_path(&processed), "@maria").await["status"], "PROCESSING");

    let cash_in = cash_in_of(&bank, "@joao", &processed).await;
    assert_eq!(cash_in["status"], "COMPLETED");
    let (maria, joao_before) = (bank.balance("@maria").0, bank.balance("@joao").0);
    let created: Value = refund(&bank, "@joao", &cash_in, json!({"amount": "5.00"})).await.json().await.unwrap();
    assert_eq!(created["status"], "PROCESSING", "debited and queued: {created}");
    let path = format!("/v1/refunds/{}", created["id"].as_str().unwrap());
    // Were the return taken as "credited to nobody", the debit would be reverted; any answer
    // about that revert is lost (as if the host died), so a retry would find the refund as it is.
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::TimeoutAfterEffect, Some(1));
    bank.fault(FaultTarget::Midaz, "/v1/organizations", Some("POST"), FaultKind::Status { status: 503 }, Some(50));
    let early = unblock(&bank, &path, "@joao").await;
    assert_eq!((early.status().as_u16(), error_code(early).await), (502, "PIX-0021".into()), "not known yet");
    app.sandbox.handle.clear_faults();
    assert_eq!(bank.get_json(&path, "@joao").await["status"], "PROCESSING", "it waits for the cash-out");
    assert_eq!((bank.balance("@maria").0, bank.balance("@joao").0), (maria, joao_before - 500), "still debited");
    assert!(app.state.store.unmatched_returns(10).await.unwrap().is_empty(), "the return is not given up");

    // The cash-out concludes; the refund then returns the money once.
    let concluded: Value = unblock(&bank, &transfer_path(&processed), "@maria").await.json().await.unwrap();
    assert_eq!(concluded["transfer"]["status"], "COMPLETED", "{concluded}");
    let settled: Value = unblock(&bank, &path, "@joao").await.json().await.unwrap();
    assert_eq!(settled["refund"]["status"], "COMPLETED", "{settled}");
    assert_eq!((bank.balance("@maria").0, bank.balance("@joao").0), (maria + 500, joao_before - 500));
}
