//! `POST /v1/transfers/{transfer_id}/unblock` end to end against the simulators: cash-outs left
//! in PENDING/PROCESSING (BTG's webhooks dropped, BTG unreachable when sending, Midaz unreachable
//! when holding) are read back from BTG and driven to its verdict, with the ledger checked to the
//! centavo; BTG 404 in strict and opt-in modes; the consistency guard; BTG outages; refusals.
//!
//! The sweeper does not run here (only the inbound worker), so nothing but the unblock reads BTG
//! back, and the test clock can be moved past the not-found grace without side effects.

use std::time::Duration;

use pix_core::money::Money;
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, api_tests, error_code};
use pix_sandbox::{FaultKind, FaultTarget};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

api_tests!(
    a_confirmed_payment_read_back_completes_and_commits_the_hold_to_the_centavo,
    a_rejected_payment_read_back_fails_and_releases_the_hold,
    a_payment_btg_is_still_processing_is_left_alone,
    btg_404_keeps_the_hold_unless_the_release_is_allowed,
    a_cash_out_that_never_held_is_failed_without_leaving_a_hold,
    btg_answering_404_for_a_payment_it_has_is_strict_by_default,
    a_release_on_a_wrong_404_is_watched_and_btg_s_confirmation_re_debits,
    a_paid_cash_out_whose_hold_a_crashed_release_cancelled_is_re_debited,
    a_diverging_btg_record_aborts_and_changes_nothing,
    a_btg_outage_is_502_and_changes_nothing,
    only_the_account_s_pending_or_processing_cash_outs_can_be_unblocked,
    bodies_and_headers_are_validated,
);

// ------------------------------------------------------------------------------- harness

/// A tenant on the demo institution whose BTG webhooks reach the host (PIX_PAYMENT ones are
/// dropped, so cash-outs stay in flight), with the inbound worker running and no sweeper.
async fn setup(app: &TestApp) -> Bank<'_> {
    let bank = Bank::with_inbound_worker_only(app).await;
    drop_payment_webhooks(&bank);
    bank
}

/// `POST /v1/transfers/{id}/unblock` as `alias`, with `body` (none: no body at all).
async fn unblock(bank: &Bank<'_>, alias: &str, id: &str, body: Option<Value>) -> Response {
    let mut request = bank.call(Method::POST, &format!("/v1/transfers/{id}/unblock"), alias);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// An unblock that must answer 200; its body.
async fn unblocked(bank: &Bank<'_>, alias: &str, id: &str, body: Option<Value>) -> Value {
    let response = unblock(bank, alias, id, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "unblocking {id}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// An unblock that must be refused with `status` and `code`.
async fn refused(bank: &Bank<'_>, alias: &str, id: &str, body: Option<Value>, status: u16, code: &str) {
    let response = unblock(bank, alias, id, body).await;
    assert_eq!(response.status(), status, "unblocking {id}");
    assert_eq!(error_code(response).await, code, "unblocking {id}");
}

/// Drops every `PIX_PAYMENT` webhook BTG sends the host (and, by prefix, `PIX_PAYMENT_INBOUND`).
fn drop_payment_webhooks(bank: &Bank<'_>) {
    bank.fault(FaultTarget::Webhooks, "PIX_PAYMENT", None, FaultKind::Drop, None);
}

/// Every `method` request to `upstream` under `path_prefix` gets `kind`, until cleared.
fn fault(bank: &Bank<'_>, upstream: FaultTarget, method: &str, path_prefix: String, kind: FaultKind) {
    bank.fault(upstream, &path_prefix, Some(method), kind, None);
}

/// Removes every fault, then drops payment webhooks again.
fn clear_faults(bank: &Bank<'_>) {
    bank.app.sandbox.handle.clear_faults();
    drop_payment_webhooks(bank);
}

/// A cash-out of `amount` from `alias` that BTG has settled (or not) while the host, its webhook
/// dropped, still has it PROCESSING with the hold pending.
async fn stuck_cash_out(bank: &Bank<'_>, alias: &str, amount: &str, btg_status: &str) -> Value {
    let processed = bank.pay(alias, amount).await;
    assert_eq!(processed["status"], "PROCESSING", "{processed}");
    bank.wait_btg_status(&processed["endToEndId"], btg_status).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = bank.get_transfer(alias, processed["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "PROCESSING", "no webhook reached the host: {t}");
    t
}

// ------------------------------------------------------------------------------ BTG's verdict

async fn a_confirmed_payment_read_back_completes_and_commits_the_hold_to_the_centavo(app: &TestApp) {
    let bank = setup(app).await;
    let (acme_before, _) = bank.balance("@acme");
    let (fees_before, _) = bank.balance("@fees_revenue");
    // A legal person pays R$ 1.50 on top: 101.50 is held, BTG is sent (and reports) 100.00.
    let t = stuck_cash_out(&bank, "@acme", "100.00", "CONFIRMED").await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(t["fee"], "1.50");
    assert_eq!(bank.balance("@acme"), (acme_before - 10_150, 10_150), "held while stuck");
    let events_before = bank.events_of(id).await.len();

    // No body at all: the default (strict) mode.
    let done = unblocked(&bank, "@acme", id, None).await;
    assert_eq!(done["btgStatus"], "CONFIRMED");
    assert_eq!(done["transfer"]["id"], id);
    assert_eq!(done["transfer"]["status"], "COMPLETED");
    assert!(done["transfer"]["completedAt"].is_string());
    assert!(done["message"].as_str().unwrap().contains("committed"), "{done}");
    assert_eq!(bank.balance("@acme"), (acme_before - 10_150, 0), "amount and fee left once; nothing on hold");
    assert_eq!(bank.balance("@fees_revenue").0, fees_before + 150);
    assert_eq!(bank.pending_ledger_transactions(), 0);
    assert_eq!(bank.get_transfer("@acme", id).await["status"], "COMPLETED");
    let events = bank.events_of(id).await;
    assert_eq!(events.len(), events_before + 1, "one event for the verdict");
    let last = events.last().unwrap();
    assert_eq!((last["flowType"].as_str(), last["entityType"].as_str()), (Some("TRANSFER"), Some("CASHOUT")));
    assert_eq!(last["payload"]["status"], "COMPLETED");

    // Done: a second unblock is refused and moves nothing.
    refused(&bank, "@acme", id, None, 422, "PIX-0417").await;
    assert_eq!(bank.balance("@acme"), (acme_before - 10_150, 0));
}

async fn a_rejected_payment_read_back_fails_and_releases_the_hold(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria");
    // The simulator rejects amounts ending in .13 (AC03).
    let t = stuck_cash_out(&bank, "@maria", "22.13", "REJECTED").await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(bank.balance("@maria"), (before.0 - 2_213, 2_213));
    let done = unblocked(&bank, "@maria", id, Some(json!({}))).await;
    assert_eq!(done["btgStatus"], "REJECTED");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(done["transfer"]["failureCode"], "AC03");
    assert_eq!(bank.balance("@maria"), before, "the hold is released");
    assert_eq!(bank.pending_ledger_transactions(), 0);
    let events = bank.events_of(id).await;
    assert_eq!(events.last().unwrap()["payload"]["status"], "FAILED");
}

async fn a_payment_btg_is_still_processing_is_left_alone(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria").0;
    // The simulator never settles amounts ending in .66.
    let t = stuck_cash_out(&bank, "@maria", "20.66", "PROCESSING").await;
    let id = t["id"].as_str().unwrap();
    let events_before = bank.events_of(id).await.len();
    for body in [None, Some(json!({"allowNotFoundUnblock": true}))] {
        let done = unblocked(&bank, "@maria", id, body).await;
        assert_eq!(done["btgStatus"], "PROCESSING");
        assert_eq!(done["transfer"]["status"], "PROCESSING");
        assert!(done["message"].as_str().unwrap().contains("nothing was changed"), "{done}");
    }
    let after = bank.get_transfer("@maria", id).await;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updatedAt"], t["updatedAt"], "not even saved");
    assert_eq!(bank.balance("@maria"), (before - 2_066, 2_066), "the hold stays");
    assert_eq!(bank.events_of(id).await.len(), events_before, "no event");
}

// ---------------------------------------------------------------------------------- BTG 404

async fn btg_404_keeps_the_hold_unless_the_release_is_allowed(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria");
    // BTG is down for every attempt to send: the hold is placed, BTG never got the payment.
    fault(&bank, FaultTarget::Btg, "POST", "/pix/payments".into(), FaultKind::Status { status: 503 });
    let processed = bank.pay("@maria", "30.00").await;
    clear_faults(&bank);
    assert_eq!(processed["status"], "PENDING", "{processed}");
    let (id, e2e) = (processed["id"].as_str().unwrap(), &processed["endToEndId"]);
    assert!(bank.btg_payment(e2e).await.is_none(), "BTG has no record of it");
    let held = (before.0 - 3_000, 3_000);
    assert_eq!(bank.balance("@maria"), held);

    // Strict by default: absent body, empty body, explicit false.
    for body in [None, Some(json!({})), Some(json!({"allowNotFoundUnblock": false}))] {
        refused(&bank, "@maria", id, body, 409, "PIX-0419").await;
    }
    // Opted in, but the cash-out is younger than the not-found grace: still refused.
    refused(&bank, "@maria", id, Some(json!({"allowNotFoundUnblock": true})), 409, "PIX-0419").await;
    assert_eq!(bank.balance("@maria"), held, "the hold is untouched");
    assert_eq!(bank.get_transfer("@maria", id).await["status"], "PENDING");
    let events_before = bank.events_of(id).await.len();

    app.clock.advance(chrono::Duration::seconds(121));
    refused(&bank, "@maria", id, None, 409, "PIX-0419").await;
    assert_eq!(bank.balance("@maria"), held, "strict even once old");
    let done = unblocked(&bank, "@maria", id, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!(done["btgStatus"], "NOT_FOUND");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(done["transfer"]["failureCode"], "BTG_NOT_FOUND");
    assert_eq!(bank.balance("@maria"), before, "the hold is released");
    assert_eq!(bank.pending_ledger_transactions(), 0);
    assert!(bank.btg_payment(e2e).await.is_none(), "nothing was sent to BTG");
    let events = bank.events_of(id).await;
    assert_eq!(events.len(), events_before + 1, "one event for the release");
    let last = events.last().unwrap();
    assert_eq!((last["flowType"].as_str(), last["entityType"].as_str()), (Some("TRANSFER"), Some("CASHOUT")));
    assert_eq!(last["payload"]["status"], "FAILED");
    assert_eq!(last["payload"]["failureCode"], "BTG_NOT_FOUND");

    // Final now: nothing more to unblock.
    refused(&bank, "@maria", id, Some(json!({"allowNotFoundUnblock": true})), 422, "PIX-0417").await;
    assert_eq!(bank.balance("@maria"), before);
}

async fn a_cash_out_that_never_held_is_failed_without_leaving_a_hold(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria");
    // Midaz is down when the hold is placed: the cash-out is admitted and stays at its first step.
    let data = &app.sandbox.data;
    let transactions = format!("/v1/organizations/{}/ledgers/{}/transactions", data.organization_id, data.ledger_id);
    fault(&bank, FaultTarget::Midaz, "POST", transactions, FaultKind::Status { status: 503 });
    let processed = bank.pay("@maria", "31.00").await;
    clear_faults(&bank);
    assert_eq!(processed["status"], "PENDING", "{processed}");
    let (id, e2e) = (processed["id"].as_str().unwrap(), &processed["endToEndId"]);
    assert_eq!(bank.balance("@maria"), before, "nothing held");
    assert!(bank.btg_payment(e2e).await.is_none());

    refused(&bank, "@maria", id, None, 409, "PIX-0419").await;
    app.clock.advance(chrono::Duration::seconds(121));
    let done = unblocked(&bank, "@maria", id, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!(done["btgStatus"], "NOT_FOUND");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(done["transfer"]["failureCode"], "BTG_NOT_FOUND");
    assert_eq!(bank.balance("@maria"), before, "no hold is left behind");
    assert_eq!(bank.pending_ledger_transactions(), 0);
}

async fn btg_answering_404_for_a_payment_it_has_is_strict_by_default(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria").0;
    let t = stuck_cash_out(&bank, "@maria", "25.00", "CONFIRMED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    fault(&bank, FaultTarget::Btg, "GET", format!("/pix/payments/{e2e}"), FaultKind::NotFound);
    refused(&bank, "@maria", id, None, 409, "PIX-0419").await;
    assert_eq!(bank.balance("@maria"), (before - 2_500, 2_500), "the hold is untouched");
    assert_eq!(bank.get_transfer("@maria", id).await["status"], "PROCESSING");
    // BTG reads it again: its confirmation settles the transfer.
    clear_faults(&bank);
    let done = unblocked(&bank, "@maria", id, None).await;
    assert_eq!(done["transfer"]["status"], "COMPLETED");
    assert_eq!(bank.balance("@maria"), (before - 2_500, 0));
}

/// Regression of simulation seed 4130: BTG answered 404 for a payment it had, an operator
/// released the hold with the opt-in, and BTG's confirming webhook was lost too. The sweeper
/// keeps reading BTG_NOT_FOUND releases back, so BTG's CONFIRMED opens the incident that
/// re-debits the customer instead of leaving money paid out without a debit.
async fn a_release_on_a_wrong_404_is_watched_and_btg_s_confirmation_re_debits(app: &TestApp) {
    let bank = setup(app).await;
    let sweep = || pix_app::transfers::sweeper::sweep_once(&app.state.app);
    let before = bank.balance("@maria").0;
    let t = stuck_cash_out(&bank, "@maria", "26.00", "CONFIRMED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    fault(&bank, FaultTarget::Btg, "GET", format!("/pix/payments/{e2e}"), FaultKind::NotFound);
    app.clock.advance(chrono::Duration::seconds(121));
    let done = unblocked(&bank, "@maria", id, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!(done["transfer"]["failureCode"], "BTG_NOT_FOUND");
    assert_eq!(bank.balance("@maria"), (before, 0), "released on the operator's word");

    // While BTG still answers 404, the watch reads it back and changes nothing.
    let report = sweep().await.unwrap();
    assert_eq!(report.outcomes.get("still_not_found"), Some(&1), "{report:?}");
    assert_eq!(bank.get_transfer("@maria", id).await["status"], "FAILED");
    // Read again only after `stale_sent` (10 minutes): the claim leases it.
    clear_faults(&bank);
    assert!(sweep().await.unwrap().outcomes.is_empty(), "leased until the next read");
    app.clock.advance(chrono::Duration::minutes(11));
    let report = sweep().await.unwrap();
    assert_eq!(report.outcomes.get("paid_after_not_found"), Some(&1), "{report:?}");
    let after = bank.get_transfer("@maria", id).await;
    assert_eq!(after["status"], "RECONCILIATION_REQUIRED", "{after}");
    assert_eq!(after["incident"]["kind"], "CONFIRMED_AFTER_FAILED");
    assert_eq!(bank.balance("@maria"), (before - 2_600, 0), "the customer is re-debited what BTG paid");
    assert_eq!(bank.pending_ledger_transactions(), 0);
    // An incident is no longer a BTG_NOT_FOUND release: the watch is over for it.
    app.clock.advance(chrono::Duration::minutes(11));
    assert!(sweep().await.unwrap().outcomes.is_empty());
}

/// Regression of simulation seed 8761: a release (an unblock on a wrong BTG 404) cancelled the
/// hold in Midaz and crashed before saving FAILED; BTG had in fact paid. Committing finds the hold
/// cancelled, read back from Midaz: the cash-out becomes the CONFIRMED_AFTER_FAILED incident that
/// re-debits the customer, instead of a commit retried until its job dies with the money out.
async fn a_paid_cash_out_whose_hold_a_crashed_release_cancelled_is_re_debited(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria").0;
    let t = stuck_cash_out(&bank, "@maria", "27.00", "CONFIRMED").await;
    let id = t["id"].as_str().unwrap();
    let holds: Vec<uuid::Uuid> = app
        .sandbox
        .handle
        .ledgers()
        .values()
        .flat_map(|l| l.transactions.values())
        .filter(|tx| tx.status == pix_sandbox::ledger::Status::Pending)
        .map(|tx| tx.id)
        .collect();
    let [hold] = holds.as_slice() else { panic!("one hold expected: {holds:?}") };
    let data = &app.sandbox.data;
    let cancel = format!(
        "{}/v1/organizations/{}/ledgers/{}/transactions/{hold}/cancel",
        app.sandbox.handle.midaz_url, data.organization_id, data.ledger_id
    );
    let cancelled = reqwest::Client::new().post(cancel).send().await.unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.text().await.unwrap());
    assert_eq!(bank.balance("@maria"), (before, 0), "what the crashed release left");

    let done = unblocked(&bank, "@maria", id, None).await;
    assert_eq!(done["btgStatus"], "CONFIRMED");
    assert_eq!(done["transfer"]["status"], "RECONCILIATION_REQUIRED", "{done}");
    assert_eq!(done["transfer"]["incident"]["kind"], "CONFIRMED_AFTER_FAILED");
    assert_eq!(bank.balance("@maria"), (before - 2_700, 0), "the customer is re-debited what BTG paid");
    assert_eq!(bank.pending_ledger_transactions(), 0);
}

// ------------------------------------------------------------------------- guard and outages

async fn a_diverging_btg_record_aborts_and_changes_nothing(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria").0;
    let t = stuck_cash_out(&bank, "@maria", "23.00", "CONFIRMED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    let events_before = bank.events_of(id).await.len();
    // BTG's record says another amount (by one centavo) for this EndToEndId.
    app.sandbox.handle.set_payment_amount(e2e, Money::parse("23.01").unwrap()).unwrap();
    for body in [None, Some(json!({"allowNotFoundUnblock": true}))] {
        let response = unblock(&bank, "@maria", id, body).await;
        assert_eq!(response.status(), 409);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "PIX-0420");
        assert!(error["message"].as_str().unwrap().contains("23.01"), "the message names the divergence: {error}");
    }
    let after = bank.get_transfer("@maria", id).await;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updatedAt"], t["updatedAt"]);
    assert_eq!(bank.balance("@maria"), (before - 2_300, 2_300), "the hold is neither committed nor released");
    assert_eq!(bank.events_of(id).await.len(), events_before);
    // The record matches again: the guard was the only thing in the way.
    app.sandbox.handle.set_payment_amount(e2e, Money::parse("23.00").unwrap()).unwrap();
    let done = unblocked(&bank, "@maria", id, None).await;
    assert_eq!(done["transfer"]["status"], "COMPLETED");
    assert_eq!(bank.balance("@maria"), (before - 2_300, 0));
}

async fn a_btg_outage_is_502_and_changes_nothing(app: &TestApp) {
    let bank = setup(app).await;
    let before = bank.balance("@maria").0;
    let t = stuck_cash_out(&bank, "@maria", "26.13", "REJECTED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    fault(&bank, FaultTarget::Btg, "GET", format!("/pix/payments/{e2e}"), FaultKind::Status { status: 503 });
    // Even opted in to the 404 release, an unknown answer releases nothing. (One call: the
    // client's retries of it stay under the BTG breaker's threshold.)
    refused(&bank, "@maria", id, Some(json!({"allowNotFoundUnblock": true})), 502, "PIX-0021").await;
    let after = bank.get_transfer("@maria", id).await;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updatedAt"], t["updatedAt"]);
    assert_eq!(bank.balance("@maria"), (before - 2_613, 2_613), "never released on an unknown answer");
    clear_faults(&bank);
    // BTG answers again: its rejection releases the hold.
    let done = unblocked(&bank, "@maria", id, None).await;
    assert_eq!(done["btgStatus"], "REJECTED");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(bank.balance("@maria"), (before, 0));
}

// --------------------------------------------------------------------------------- refusals

async fn only_the_account_s_pending_or_processing_cash_outs_can_be_unblocked(app: &TestApp) {
    let bank = setup(app).await;
    let t = stuck_cash_out(&bank, "@maria", "20.66", "PROCESSING").await;
    let id = t["id"].as_str().unwrap();
    let held = bank.balance("@maria");

    // Another account of the tenant, another tenant, an unknown id: not found.
    refused(&bank, "@joao", id, None, 404, "PIX-0407").await;
    let other = app.tenant("Outro Banco").await;
    let response = app
        .request(Method::POST, &format!("/v1/transfers/{id}/unblock"), &other.token)
        .header("X-Account-Id", bank.account("@maria"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "PIX-0407");
    refused(&bank, "@maria", &uuid::Uuid::new_v4().to_string(), None, 404, "PIX-0407").await;

    // A cash-in has settled at BTG: nothing to unblock. (Its PIX_PAYMENT_INBOUND webhook must
    // reach the host: the rule dropping PIX_PAYMENT events matches it by prefix. The cash-outs
    // of this test send BTG no verdict.)
    app.sandbox.handle.clear_faults();
    let pix = bank.send_pix_to("@maria", "7.00");
    let cash_in = bank.wait_cash_in("@maria", pix["endToEndId"].as_str().unwrap()).await;
    refused(&bank, "@maria", cash_in["id"].as_str().unwrap(), None, 422, "PIX-0417").await;

    // A cash-out in fraud review was never sent: an operator decides it.
    bank.activate_shipped("fraud-triage", json!({"review-threshold": 0, "block-threshold": 1001})).await;
    let in_review = bank.pay("@maria", "9.00").await;
    assert_eq!(in_review["status"], "IN_REVIEW");
    refused(&bank, "@maria", in_review["id"].as_str().unwrap(), None, 422, "PIX-0417").await;

    // An intra-PSP transfer is unblocked from its local records (tests/tests/intra_psp.rs); one
    // recorded at a BTG step contradicts itself, which only an operator can settle.
    let store = &app.db.store;
    let stuck = store.transfer(bank.tenant.id, id.parse().unwrap()).await.unwrap().unwrap();
    let mut intra = stuck.clone();
    intra.id = uuid::Uuid::new_v4();
    intra.initiation_id = None;
    intra.is_intra_psp = true;
    intra.end_to_end_id = format!("E{}", &uuid::Uuid::new_v4().simple().to_string()[..31]);
    let mut tx = app.db.begin().await.unwrap();
    pix_store::transfers::insert_transfer(&mut tx, &intra).await.unwrap();
    tx.commit().await.unwrap();
    refused(&bank, "@maria", &intra.id.to_string(), None, 422, "PIX-0418").await;

    assert_eq!(bank.get_transfer("@maria", id).await["status"], "PROCESSING");
    assert_eq!(bank.balance("@maria").1, held.1, "no hold moved");
}

async fn bodies_and_headers_are_validated(app: &TestApp) {
    let bank = setup(app).await;
    let t = stuck_cash_out(&bank, "@maria", "20.66", "PROCESSING").await;
    let path = format!("/v1/transfers/{}/unblock", t["id"].as_str().unwrap());
    let send = |request: RequestBuilder| async move { request.send().await.unwrap() };
    let with = |body: &str, content_type: &str| {
        bank.call(Method::POST, &path, "@maria").header("content-type", content_type).body(body.to_owned())
    };
    for (body, code) in [
        (r#"{"allowNotFound": true}"#, "PIX-0006"),
        (r#"{"allowNotFoundUnblock": "yes"}"#, "PIX-0005"),
        (r#"{"allowNotFoundUnblock": true"#, "PIX-0004"),
    ] {
        let response = send(with(body, "application/json")).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    let response = send(with(r#"{"allowNotFoundUnblock": true}"#, "text/plain")).await;
    assert_eq!(response.status(), 415);
    // An empty body with a JSON content type is the default.
    let response = send(with("", "application/json")).await;
    assert_eq!(response.status(), 200);
    let response = send(app.request(Method::POST, &path, &bank.tenant.token)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "PIX-0001", "X-Account-Id is required");
    let response = send(bank.call(Method::POST, "/v1/transfers/not-a-uuid/unblock", "@maria")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "PIX-0008");

    // Documented (and so walked by the authorization matrix), with its body and every refusal.
    let doc: Value = app.http.get(format!("{}/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    let op = &doc["paths"]["/v1/transfers/{transfer_id}/unblock"]["post"];
    assert_eq!(op["security"][0]["tenant_token"], json!([]), "{op}");
    assert!(op["requestBody"].is_object(), "{op}");
    for status in ["200", "400", "401", "403", "404", "409", "415", "422", "502"] {
        assert!(op["responses"][status].is_object(), "documents {status}: {op}");
    }
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["UnblockTransfer"]["properties"]["allowNotFoundUnblock"].is_object());
    assert!(schemas["UnblockedTransfer"]["properties"]["btgStatus"].is_object());
}
