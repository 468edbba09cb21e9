//! `POST /v1/transfers/{transfer_id}/unblock` end to end against the simulators: cash-outs left
//! in PENDING/PROCESSING (BTG's webhooks dropped, BTG unreachable when sending, Midaz unreachable
//! when holding) are read back from BTG and driven to its verdict, with the ledger checked to the
//! centavo; BTG 404 in strict and opt-in modes; the consistency guard; BTG outages; refusals.
//!
//! The sweeper does not run here (only the inbound worker), so nothing but the unblock reads BTG
//! back, and the test clock can be moved past the not-found grace without side effects.

use std::time::Duration;

use pix_core::money::Money;
use pix_e2e::{TestApp, TestTenant, api_tests, error_code};
use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

api_tests!(
    a_confirmed_payment_read_back_completes_and_commits_the_hold_to_the_centavo,
    a_rejected_payment_read_back_fails_and_releases_the_hold,
    a_payment_btg_is_still_processing_is_left_alone,
    btg_404_keeps_the_hold_unless_the_release_is_allowed,
    a_cash_out_that_never_held_is_failed_without_leaving_a_hold,
    btg_answering_404_for_a_payment_it_has_is_strict_by_default,
    a_diverging_btg_record_aborts_and_changes_nothing,
    a_btg_outage_is_502_and_changes_nothing,
    only_the_account_s_pending_or_processing_cash_outs_can_be_unblocked,
    bodies_and_headers_are_validated,
);

// ------------------------------------------------------------------------------- harness

/// A tenant on the demo institution whose BTG webhooks reach the host (PIX_PAYMENT ones are
/// dropped, so cash-outs stay in flight), with the inbound worker running and no sweeper.
async fn setup(app: &TestApp) -> TestTenant {
    let tenant = app.tenant("Banco Exemplo").await;
    app.sandbox.handle.set_webhook_url(Some(format!("{}/v1/inbound/btg/{}", app.url, tenant.id)));
    app.run_inbound_worker(pix_server::transfers::inbound_handlers(&app.state, &app.url));
    drop_payment_webhooks(app);
    tenant
}

fn account(app: &TestApp, alias: &str) -> String {
    app.sandbox.data.accounts.iter().find(|a| a.alias == alias).expect("demo account").account_id.clone()
}

fn call(app: &TestApp, tenant: &TestTenant, method: Method, path: &str, alias: &str) -> RequestBuilder {
    app.request(method, path, &tenant.token).header("X-Account-Id", account(app, alias))
}

/// A key of the other participant (Ana Pereira's CPF).
fn ana_key(app: &TestApp) -> String {
    app.sandbox.data.other_participant.keys[0].key.clone()
}

/// Initiates a payment of `amount` to Ana's key and processes it; returns the 201 body.
async fn pay_key(app: &TestApp, tenant: &TestTenant, alias: &str, amount: &str) -> Value {
    let initiated = call(app, tenant, Method::POST, "/v1/transfers/cashout/initiate", alias)
        .json(&json!({"type": "KEY", "key": ana_key(app), "amount": amount}))
        .send()
        .await
        .unwrap();
    assert_eq!(initiated.status(), 201);
    let initiated: Value = initiated.json().await.unwrap();
    let processed = call(app, tenant, Method::POST, "/v1/transfers/cashout/process", alias)
        .json(&json!({"initiationId": initiated["initiationId"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(processed.status(), 201);
    processed.json().await.unwrap()
}

async fn get_transfer(app: &TestApp, tenant: &TestTenant, alias: &str, id: &str) -> Value {
    let response = call(app, tenant, Method::GET, &format!("/v1/transfers/{id}"), alias).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `POST /v1/transfers/{id}/unblock` as `alias`, with `body` (none: no body at all).
async fn unblock(app: &TestApp, tenant: &TestTenant, alias: &str, id: &str, body: Option<Value>) -> Response {
    let mut request = call(app, tenant, Method::POST, &format!("/v1/transfers/{id}/unblock"), alias);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// An unblock that must answer 200; its body.
async fn unblocked(app: &TestApp, tenant: &TestTenant, alias: &str, id: &str, body: Option<Value>) -> Value {
    let response = unblock(app, tenant, alias, id, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "unblocking {id}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// An unblock that must be refused with `status` and `code`.
async fn refused(
    app: &TestApp,
    tenant: &TestTenant,
    alias: &str,
    id: &str,
    body: Option<Value>,
    status: u16,
    code: &str,
) {
    let response = unblock(app, tenant, alias, id, body).await;
    assert_eq!(response.status(), status, "unblocking {id}");
    assert_eq!(error_code(response).await, code, "unblocking {id}");
}

/// (available, on hold) centavos of a Midaz alias in the simulator.
fn balance(app: &TestApp, alias: &str) -> (i64, i64) {
    let state = app.sandbox.handle.midaz_state();
    for ledger in state["ledgers"].as_array().unwrap() {
        for a in ledger["accounts"].as_array().unwrap() {
            if a["alias"] == alias {
                return (a["availableCentavos"].as_i64().unwrap(), a["onHoldCentavos"].as_i64().unwrap());
            }
        }
    }
    panic!("no Midaz account {alias}");
}

fn pending_ledger_transactions(app: &TestApp) -> i64 {
    app.sandbox.handle.midaz_state()["ledgers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["pendingTransactions"].as_i64().unwrap())
        .sum()
}

/// A payment as the simulated BTG holds it (control API state), by EndToEndId.
async fn btg_payment(app: &TestApp, end_to_end_id: &Value) -> Option<Value> {
    let url = format!("{}/_control/btg/state", app.sandbox.data.control_url);
    let state: Value = app.http.get(url).send().await.unwrap().json().await.unwrap();
    state["payments"].as_array().unwrap().iter().find(|p| &p["endToEndId"] == end_to_end_id).cloned()
}

/// Waits until the simulated BTG holds the payment with `status`.
async fn wait_btg_status(app: &TestApp, end_to_end_id: &Value, status: &str) {
    for _ in 0..200 {
        if btg_payment(app, end_to_end_id).await.is_some_and(|p| p["status"] == status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("BTG never had {end_to_end_id} {status}");
}

/// Drops every `PIX_PAYMENT` webhook BTG sends the host (and, by prefix, `PIX_PAYMENT_INBOUND`).
fn drop_payment_webhooks(app: &TestApp) {
    app.sandbox.handle.add_fault(FaultRule {
        id: String::new(),
        upstream: FaultTarget::Webhooks,
        path_prefix: "PIX_PAYMENT".into(),
        method: None,
        kind: FaultKind::Drop,
        count: None,
        probability: None,
    });
}

fn fault(app: &TestApp, upstream: FaultTarget, method: &str, path_prefix: String, kind: FaultKind) {
    app.sandbox.handle.add_fault(FaultRule {
        id: String::new(),
        upstream,
        path_prefix,
        method: Some(method.into()),
        kind,
        count: None,
        probability: None,
    });
}

/// Removes every fault, then drops payment webhooks again.
fn clear_faults(app: &TestApp) {
    app.sandbox.handle.clear_faults();
    drop_payment_webhooks(app);
}

/// The events recorded for transfer `id`, in order.
async fn events_of(app: &TestApp, tenant: &TestTenant, id: &str) -> Vec<Value> {
    let all = app.db.store.recorded_event_bodies(tenant.id).await.unwrap();
    all.into_iter().filter(|e| e["entityId"] == id).collect()
}

/// A cash-out of `amount` from `alias` that BTG has settled (or not) while the host, its webhook
/// dropped, still has it PROCESSING with the hold pending.
async fn stuck_cash_out(app: &TestApp, tenant: &TestTenant, alias: &str, amount: &str, btg_status: &str) -> Value {
    let processed = pay_key(app, tenant, alias, amount).await;
    assert_eq!(processed["status"], "PROCESSING", "{processed}");
    wait_btg_status(app, &processed["endToEndId"], btg_status).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = get_transfer(app, tenant, alias, processed["id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "PROCESSING", "no webhook reached the host: {t}");
    t
}

// ------------------------------------------------------------------------------ BTG's verdict

async fn a_confirmed_payment_read_back_completes_and_commits_the_hold_to_the_centavo(app: &TestApp) {
    let tenant = setup(app).await;
    let (acme_before, _) = balance(app, "@acme");
    let (fees_before, _) = balance(app, "@fees_revenue");
    // A legal person pays R$ 1.50 on top: 101.50 is held, BTG is sent (and reports) 100.00.
    let t = stuck_cash_out(app, &tenant, "@acme", "100.00", "CONFIRMED").await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(t["fee"], "1.50");
    assert_eq!(balance(app, "@acme"), (acme_before - 10_150, 10_150), "held while stuck");
    let events_before = events_of(app, &tenant, id).await.len();

    // No body at all: the default (strict) mode.
    let done = unblocked(app, &tenant, "@acme", id, None).await;
    assert_eq!(done["btgStatus"], "CONFIRMED");
    assert_eq!(done["transfer"]["id"], id);
    assert_eq!(done["transfer"]["status"], "COMPLETED");
    assert!(done["transfer"]["completedAt"].is_string());
    assert!(done["message"].as_str().unwrap().contains("committed"), "{done}");
    assert_eq!(balance(app, "@acme"), (acme_before - 10_150, 0), "amount and fee left once; nothing on hold");
    assert_eq!(balance(app, "@fees_revenue").0, fees_before + 150);
    assert_eq!(pending_ledger_transactions(app), 0);
    assert_eq!(get_transfer(app, &tenant, "@acme", id).await["status"], "COMPLETED");
    let events = events_of(app, &tenant, id).await;
    assert_eq!(events.len(), events_before + 1, "one event for the verdict");
    let last = events.last().unwrap();
    assert_eq!((last["flowType"].as_str(), last["entityType"].as_str()), (Some("TRANSFER"), Some("CASHOUT")));
    assert_eq!(last["payload"]["status"], "COMPLETED");

    // Done: a second unblock is refused and moves nothing.
    refused(app, &tenant, "@acme", id, None, 422, "PIX-0417").await;
    assert_eq!(balance(app, "@acme"), (acme_before - 10_150, 0));
}

async fn a_rejected_payment_read_back_fails_and_releases_the_hold(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria");
    // The simulator rejects amounts ending in .13 (AC03).
    let t = stuck_cash_out(app, &tenant, "@maria", "22.13", "REJECTED").await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(balance(app, "@maria"), (before.0 - 2_213, 2_213));
    let done = unblocked(app, &tenant, "@maria", id, Some(json!({}))).await;
    assert_eq!(done["btgStatus"], "REJECTED");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(done["transfer"]["failureCode"], "AC03");
    assert_eq!(balance(app, "@maria"), before, "the hold is released");
    assert_eq!(pending_ledger_transactions(app), 0);
    let events = events_of(app, &tenant, id).await;
    assert_eq!(events.last().unwrap()["payload"]["status"], "FAILED");
}

async fn a_payment_btg_is_still_processing_is_left_alone(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria").0;
    // The simulator never settles amounts ending in .66.
    let t = stuck_cash_out(app, &tenant, "@maria", "20.66", "PROCESSING").await;
    let id = t["id"].as_str().unwrap();
    let events_before = events_of(app, &tenant, id).await.len();
    for body in [None, Some(json!({"allowNotFoundUnblock": true}))] {
        let done = unblocked(app, &tenant, "@maria", id, body).await;
        assert_eq!(done["btgStatus"], "PROCESSING");
        assert_eq!(done["transfer"]["status"], "PROCESSING");
        assert!(done["message"].as_str().unwrap().contains("nothing was changed"), "{done}");
    }
    let after = get_transfer(app, &tenant, "@maria", id).await;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updatedAt"], t["updatedAt"], "not even saved");
    assert_eq!(balance(app, "@maria"), (before - 2_066, 2_066), "the hold stays");
    assert_eq!(events_of(app, &tenant, id).await.len(), events_before, "no event");
}

// ---------------------------------------------------------------------------------- BTG 404

async fn btg_404_keeps_the_hold_unless_the_release_is_allowed(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria");
    // BTG is down for every attempt to send: the hold is placed, BTG never got the payment.
    fault(app, FaultTarget::Btg, "POST", "/pix/payments".into(), FaultKind::Status { status: 503 });
    let processed = pay_key(app, &tenant, "@maria", "30.00").await;
    clear_faults(app);
    assert_eq!(processed["status"], "PENDING", "{processed}");
    let (id, e2e) = (processed["id"].as_str().unwrap(), &processed["endToEndId"]);
    assert!(btg_payment(app, e2e).await.is_none(), "BTG has no record of it");
    let held = (before.0 - 3_000, 3_000);
    assert_eq!(balance(app, "@maria"), held);

    // Strict by default: absent body, empty body, explicit false.
    for body in [None, Some(json!({})), Some(json!({"allowNotFoundUnblock": false}))] {
        refused(app, &tenant, "@maria", id, body, 409, "PIX-0419").await;
    }
    // Opted in, but the cash-out is younger than the not-found grace: still refused.
    refused(app, &tenant, "@maria", id, Some(json!({"allowNotFoundUnblock": true})), 409, "PIX-0419").await;
    assert_eq!(balance(app, "@maria"), held, "the hold is untouched");
    assert_eq!(get_transfer(app, &tenant, "@maria", id).await["status"], "PENDING");
    let events_before = events_of(app, &tenant, id).await.len();

    app.clock.advance(chrono::Duration::seconds(121));
    refused(app, &tenant, "@maria", id, None, 409, "PIX-0419").await;
    assert_eq!(balance(app, "@maria"), held, "strict even once old");
    let done = unblocked(app, &tenant, "@maria", id, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!(done["btgStatus"], "NOT_FOUND");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(done["transfer"]["failureCode"], "BTG_NOT_FOUND");
    assert_eq!(balance(app, "@maria"), before, "the hold is released");
    assert_eq!(pending_ledger_transactions(app), 0);
    assert!(btg_payment(app, e2e).await.is_none(), "nothing was sent to BTG");
    let events = events_of(app, &tenant, id).await;
    assert_eq!(events.len(), events_before + 1, "one event for the release");
    let last = events.last().unwrap();
    assert_eq!((last["flowType"].as_str(), last["entityType"].as_str()), (Some("TRANSFER"), Some("CASHOUT")));
    assert_eq!(last["payload"]["status"], "FAILED");
    assert_eq!(last["payload"]["failureCode"], "BTG_NOT_FOUND");

    // Final now: nothing more to unblock.
    refused(app, &tenant, "@maria", id, Some(json!({"allowNotFoundUnblock": true})), 422, "PIX-0417").await;
    assert_eq!(balance(app, "@maria"), before);
}

async fn a_cash_out_that_never_held_is_failed_without_leaving_a_hold(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria");
    // Midaz is down when the hold is placed: the cash-out is admitted and stays at its first step.
    let data = &app.sandbox.data;
    let transactions = format!("/v1/organizations/{}/ledgers/{}/transactions", data.organization_id, data.ledger_id);
    fault(app, FaultTarget::Midaz, "POST", transactions, FaultKind::Status { status: 503 });
    let processed = pay_key(app, &tenant, "@maria", "31.00").await;
    clear_faults(app);
    assert_eq!(processed["status"], "PENDING", "{processed}");
    let (id, e2e) = (processed["id"].as_str().unwrap(), &processed["endToEndId"]);
    assert_eq!(balance(app, "@maria"), before, "nothing held");
    assert!(btg_payment(app, e2e).await.is_none());

    refused(app, &tenant, "@maria", id, None, 409, "PIX-0419").await;
    app.clock.advance(chrono::Duration::seconds(121));
    let done = unblocked(app, &tenant, "@maria", id, Some(json!({"allowNotFoundUnblock": true}))).await;
    assert_eq!(done["btgStatus"], "NOT_FOUND");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(done["transfer"]["failureCode"], "BTG_NOT_FOUND");
    assert_eq!(balance(app, "@maria"), before, "no hold is left behind");
    assert_eq!(pending_ledger_transactions(app), 0);
}

async fn btg_answering_404_for_a_payment_it_has_is_strict_by_default(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria").0;
    let t = stuck_cash_out(app, &tenant, "@maria", "25.00", "CONFIRMED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    fault(app, FaultTarget::Btg, "GET", format!("/pix/payments/{e2e}"), FaultKind::NotFound);
    refused(app, &tenant, "@maria", id, None, 409, "PIX-0419").await;
    assert_eq!(balance(app, "@maria"), (before - 2_500, 2_500), "the hold is untouched");
    assert_eq!(get_transfer(app, &tenant, "@maria", id).await["status"], "PROCESSING");
    // BTG reads it again: its confirmation settles the transfer.
    clear_faults(app);
    let done = unblocked(app, &tenant, "@maria", id, None).await;
    assert_eq!(done["transfer"]["status"], "COMPLETED");
    assert_eq!(balance(app, "@maria"), (before - 2_500, 0));
}

// ------------------------------------------------------------------------- guard and outages

async fn a_diverging_btg_record_aborts_and_changes_nothing(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria").0;
    let t = stuck_cash_out(app, &tenant, "@maria", "23.00", "CONFIRMED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    let events_before = events_of(app, &tenant, id).await.len();
    // BTG's record says another amount (by one centavo) for this EndToEndId.
    app.sandbox.handle.set_payment_amount(e2e, Money::parse("23.01").unwrap()).unwrap();
    for body in [None, Some(json!({"allowNotFoundUnblock": true}))] {
        let response = unblock(app, &tenant, "@maria", id, body).await;
        assert_eq!(response.status(), 409);
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "PIX-0420");
        assert!(error["message"].as_str().unwrap().contains("23.01"), "the message names the divergence: {error}");
    }
    let after = get_transfer(app, &tenant, "@maria", id).await;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updatedAt"], t["updatedAt"]);
    assert_eq!(balance(app, "@maria"), (before - 2_300, 2_300), "the hold is neither committed nor released");
    assert_eq!(events_of(app, &tenant, id).await.len(), events_before);
    // The record matches again: the guard was the only thing in the way.
    app.sandbox.handle.set_payment_amount(e2e, Money::parse("23.00").unwrap()).unwrap();
    let done = unblocked(app, &tenant, "@maria", id, None).await;
    assert_eq!(done["transfer"]["status"], "COMPLETED");
    assert_eq!(balance(app, "@maria"), (before - 2_300, 0));
}

async fn a_btg_outage_is_502_and_changes_nothing(app: &TestApp) {
    let tenant = setup(app).await;
    let before = balance(app, "@maria").0;
    let t = stuck_cash_out(app, &tenant, "@maria", "26.13", "REJECTED").await;
    let (id, e2e) = (t["id"].as_str().unwrap(), t["endToEndId"].as_str().unwrap());
    fault(app, FaultTarget::Btg, "GET", format!("/pix/payments/{e2e}"), FaultKind::Status { status: 503 });
    // Even opted in to the 404 release, an unknown answer releases nothing. (One call: the
    // client's retries of it stay under the BTG breaker's threshold.)
    refused(app, &tenant, "@maria", id, Some(json!({"allowNotFoundUnblock": true})), 502, "PIX-0021").await;
    let after = get_transfer(app, &tenant, "@maria", id).await;
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(after["updatedAt"], t["updatedAt"]);
    assert_eq!(balance(app, "@maria"), (before - 2_613, 2_613), "never released on an unknown answer");
    clear_faults(app);
    // BTG answers again: its rejection releases the hold.
    let done = unblocked(app, &tenant, "@maria", id, None).await;
    assert_eq!(done["btgStatus"], "REJECTED");
    assert_eq!(done["transfer"]["status"], "FAILED");
    assert_eq!(balance(app, "@maria"), (before, 0));
}

// --------------------------------------------------------------------------------- refusals

async fn only_the_account_s_pending_or_processing_cash_outs_can_be_unblocked(app: &TestApp) {
    let tenant = setup(app).await;
    let t = stuck_cash_out(app, &tenant, "@maria", "20.66", "PROCESSING").await;
    let id = t["id"].as_str().unwrap();
    let held = balance(app, "@maria");

    // Another account of the tenant, another tenant, an unknown id: not found.
    refused(app, &tenant, "@joao", id, None, 404, "PIX-0407").await;
    let other = app.tenant("Outro Banco").await;
    let response = app
        .request(Method::POST, &format!("/v1/transfers/{id}/unblock"), &other.token)
        .header("X-Account-Id", account(app, "@maria"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "PIX-0407");
    refused(app, &tenant, "@maria", &uuid::Uuid::new_v4().to_string(), None, 404, "PIX-0407").await;

    // A cash-in has settled at BTG: nothing to unblock. (Its PIX_PAYMENT_INBOUND webhook must
    // reach the host: the rule dropping PIX_PAYMENT events matches it by prefix. The cash-outs
    // of this test send BTG no verdict.)
    app.sandbox.handle.clear_faults();
    let maria = app.sandbox.data.accounts.iter().find(|a| a.alias == "@maria").unwrap().clone();
    let pix = app
        .sandbox
        .handle
        .inbound_pix(&json!({"amount": "7.00", "creditor": {"branch": maria.branch, "account": maria.number,
                                "accountType": "CACC", "taxId": maria.document, "name": maria.name}}))
        .unwrap();
    let mut cash_in = None;
    for _ in 0..200 {
        let listed: Value = call(app, &tenant, Method::GET, "/v1/transfers?type=CASHIN", "@maria")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cash_in = listed["items"].as_array().unwrap().iter().find(|t| t["endToEndId"] == pix["endToEndId"]).cloned();
        if cash_in.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cash_in = cash_in.expect("the cash-in is recorded");
    refused(app, &tenant, "@maria", cash_in["id"].as_str().unwrap(), None, 422, "PIX-0417").await;

    // A cash-out in fraud review was never sent: an operator decides it.
    activate_fraud_review(app, &tenant).await;
    let in_review = pay_key(app, &tenant, "@maria", "9.00").await;
    assert_eq!(in_review["status"], "IN_REVIEW");
    refused(app, &tenant, "@maria", in_review["id"].as_str().unwrap(), None, 422, "PIX-0417").await;

    // An intra-PSP transfer is unblocked from its local records (tests/tests/intra_psp.rs); one
    // recorded at a BTG step contradicts itself, which only an operator can settle.
    let store = &app.db.store;
    let stuck = store.transfer(tenant.id, id.parse().unwrap()).await.unwrap().unwrap();
    let mut intra = stuck.clone();
    intra.id = uuid::Uuid::new_v4();
    intra.initiation_id = None;
    intra.is_intra_psp = true;
    intra.end_to_end_id = format!("E{}", &uuid::Uuid::new_v4().simple().to_string()[..31]);
    let mut tx = app.db.begin().await.unwrap();
    pix_store::transfers::insert_transfer(&mut tx, &intra).await.unwrap();
    tx.commit().await.unwrap();
    refused(app, &tenant, "@maria", &intra.id.to_string(), None, 422, "PIX-0418").await;

    assert_eq!(get_transfer(app, &tenant, "@maria", id).await["status"], "PROCESSING");
    assert_eq!(balance(app, "@maria").1, held.1, "no hold moved");
}

async fn activate_fraud_review(app: &TestApp, tenant: &TestTenant) {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pix_e2e::shipped_policies().join("manifest.json")).unwrap())
            .unwrap();
    let sha = manifest["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "fraud-triage")
        .expect("shipped fraud-triage component")["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .request(Method::POST, &format!("/v1/admin/policies/{sha}/activate"), &app.admin_token)
        .json(&json!({"kind": "fraud-triage", "tenantId": tenant.id,
                      "params": {"review-threshold": 0, "block-threshold": 1001}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "activating fraud review: {}", response.text().await.unwrap());
}

async fn bodies_and_headers_are_validated(app: &TestApp) {
    let tenant = setup(app).await;
    let t = stuck_cash_out(app, &tenant, "@maria", "20.66", "PROCESSING").await;
    let path = format!("/v1/transfers/{}/unblock", t["id"].as_str().unwrap());
    let send = |request: RequestBuilder| async move { request.send().await.unwrap() };
    let with = |body: &str, content_type: &str| {
        call(app, &tenant, Method::POST, &path, "@maria").header("content-type", content_type).body(body.to_owned())
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
    let response = send(app.request(Method::POST, &path, &tenant.token)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "PIX-0001", "X-Account-Id is required");
    let response = send(call(app, &tenant, Method::POST, "/v1/transfers/not-a-uuid/unblock", "@maria")).await;
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
