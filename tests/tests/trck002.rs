//! trck.002 reporting of intra-PSP settlements (issue #14) end to end against the simulated BTG:
//! settlements recorded through the store (as the settlement engine does, in its transaction)
//! are reported once, confirmed by camt.025, retried with backoff while BTG is down, settled by
//! the status query when the camt.025 is lost, re-reported alone once when BACEN rejects them,
//! and never move money.

use std::time::Duration;

use chrono::Utc;
use pix_core::clock::Clock;
use pix_e2e::bank::Bank;
use pix_e2e::{TestApp, WEBHOOK_SECRET, api_tests};
use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use pix_store::internal_reports::{
    InternalKind, InternalReport, InternalSettlement, ReportState, record_internal_settlement, tenant_reports,
};
use reqwest::Method;
use serde_json::{Value, json};

api_tests!(
    settlements_are_reported_once_and_confirmed_without_moving_money,
    a_redelivered_camt025_changes_nothing,
    btg_down_is_retried_with_backoff_under_the_same_report_id,
    a_missed_camt025_is_settled_by_the_status_query,
    a_rejected_report_is_reported_again_alone_then_left_for_operators,
    a_refund_without_its_return_identification_is_refused,
    concurrent_reporters_report_each_settlement_once,
    settlements_not_accepted_within_240s_are_counted_for_the_alert,
);

// ------------------------------------------------------------------------------- harness

const REPORTS_PATH: &str = "/pix/internal-transactions-reports";

/// An EndToEndId of the demo institution, unique per call.
fn e2e(app: &TestApp) -> String {
    let tail: String = uuid::Uuid::new_v4().simple().to_string().chars().take(11).collect();
    format!("E{}{}{tail}", app.sandbox.data.ispb, Utc::now().format("%Y%m%d%H%M"))
}

fn settlement(bank: &Bank<'_>, end_to_end_id: &str, kind: InternalKind, centavos: i64) -> InternalSettlement {
    InternalSettlement {
        tenant_id: bank.tenant.id,
        end_to_end_id: end_to_end_id.to_owned(),
        return_identification: (kind == InternalKind::Refund)
            .then(|| format!("D{}", &end_to_end_id[1..]).to_ascii_uppercase()),
        kind,
        amount: centavos,
        debtor_tax_id: "11144477735".into(),
        creditor_tax_id: "12345678909".into(),
        settled_at: bank.app.clock.now(),
    }
}

/// Records `s` in a transaction of its own, as the settlement engine does in its own.
async fn record(bank: &Bank<'_>, s: &InternalSettlement) {
    let mut tx = bank.app.db.store.begin().await.unwrap();
    record_internal_settlement(&mut tx, s).await.unwrap();
    tx.commit().await.unwrap();
}

async fn rows(bank: &Bank<'_>, end_to_end_id: &str) -> Vec<InternalReport> {
    tenant_reports(&bank.app.db.store, bank.tenant.id, Some(end_to_end_id)).await.unwrap()
}

/// The only row of `end_to_end_id` once `done` holds (polling real time).
async fn wait_row(
    bank: &Bank<'_>,
    end_to_end_id: &str,
    what: &str,
    done: impl Fn(&InternalReport) -> bool,
) -> InternalReport {
    let mut last = Vec::new();
    for _ in 0..200 {
        last = rows(bank, end_to_end_id).await;
        if let [row] = last.as_slice()
            && done(row)
        {
            return row.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{end_to_end_id} never {what}: {last:?}");
}

async fn wait_state(bank: &Bank<'_>, end_to_end_id: &str, state: ReportState) -> InternalReport {
    wait_row(bank, end_to_end_id, state.as_str(), |r| r.state == state).await
}

/// Every transaction the simulated BTG received in trck.002 reports, with its report.
async fn btg_reported(bank: &Bank<'_>) -> Vec<(Value, Value)> {
    let state = bank.btg_state().await;
    let mut out = Vec::new();
    for report in state["internalTransactionsReports"].as_array().unwrap() {
        for entry in report["entries"].as_array().unwrap() {
            out.push((report.clone(), entry.clone()));
        }
    }
    out
}

async fn btg_reports_of(bank: &Bank<'_>, end_to_end_id: &str) -> Vec<(Value, Value)> {
    btg_reported(bank).await.into_iter().filter(|(_, e)| e["endToEndId"] == end_to_end_id).collect()
}

fn fault(bank: &Bank<'_>, upstream: FaultTarget, path: &str, kind: FaultKind, count: Option<u32>) -> FaultRule {
    bank.app.sandbox.handle.add_fault(FaultRule {
        id: String::new(),
        upstream,
        path_prefix: path.into(),
        method: None,
        kind,
        count,
        probability: None,
    })
}

/// What money the simulators hold: every Midaz balance and every payment and reversal at BTG.
async fn money(bank: &Bank<'_>) -> (Value, Value, Value) {
    let btg = bank.btg_state().await;
    (bank.app.sandbox.handle.midaz_state(), btg["payments"].clone(), btg["reversals"].clone())
}

// --------------------------------------------------------------------------------- tests

async fn settlements_are_reported_once_and_confirmed_without_moving_money(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = money(&bank).await;
    let (t1, t2) = (e2e(app), e2e(app));
    let transfer = settlement(&bank, &t1, InternalKind::Transfer, 12_345);
    let refund = settlement(&bank, &t1, InternalKind::Refund, 2_000);
    let other = settlement(&bank, &t2, InternalKind::Transfer, 1);
    record(&bank, &transfer).await;
    record(&bank, &refund).await;
    record(&bank, &other).await;
    // Recording again (a redelivered completion) is a no-op.
    record(&bank, &transfer).await;
    record(&bank, &refund).await;

    for e in [&t1, &t2] {
        let mut confirmed = false;
        for _ in 0..200 {
            if rows(&bank, e).await.iter().all(|r| r.state == ReportState::Confirmed) {
                confirmed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(confirmed, "{e}: {:?}", rows(&bank, e).await);
    }
    let t1_rows = rows(&bank, &t1).await;
    assert_eq!(t1_rows.len(), 2, "one row per settlement: {t1_rows:?}");
    for r in t1_rows.iter().chain(rows(&bank, &t2).await.iter()) {
        assert_eq!(r.receipt_code.as_deref(), Some("ACCP"));
        let accepted = r.accepted_at.expect("accepted");
        assert!(accepted >= r.recorded_at && r.answered_at.unwrap() >= accepted, "{r:?}");
        assert!(r.btg_report_id.is_some() && r.report_id.is_some() && r.last_error.is_none(), "{r:?}");
        assert_eq!(r.attempts, 0);
    }

    // BTG got each settlement exactly once, with its amount, kind and return id.
    let reported = btg_reports_of(&bank, &t1).await;
    assert_eq!(reported.len(), 2, "{reported:?}");
    let refund_entry = reported.iter().find(|(_, e)| e["kind"] == "REFUND").expect("the refund was reported");
    assert_eq!(refund_entry.1["returnIdentification"], json!(refund.return_identification));
    assert_eq!(refund_entry.1["amount"], "20.00");
    let transfer_entry = reported.iter().find(|(_, e)| e["kind"] == "TRANSFER").unwrap();
    assert_eq!(transfer_entry.1["amount"], "123.45");
    assert_eq!(transfer_entry.1["returnIdentification"], Value::Null);
    let other_entry = btg_reports_of(&bank, &t2).await;
    assert_eq!(other_entry.len(), 1);
    assert_eq!(other_entry[0].1["amount"], "0.01");
    // The rows name the BTG report that holds them.
    let row = t1_rows.iter().find(|r| r.settlement.kind == InternalKind::Refund).unwrap();
    assert_eq!(refund_entry.0["id"], json!(row.btg_report_id));
    assert_eq!(refund_entry.0["reportId"], json!(row.report_id));

    assert_eq!(money(&bank).await, before, "reporting moves no money");
}

async fn a_redelivered_camt025_changes_nothing(app: &TestApp) {
    let bank = Bank::open(app).await;
    let t = e2e(app);
    record(&bank, &settlement(&bank, &t, InternalKind::Transfer, 500)).await;
    let confirmed = wait_state(&bank, &t, ReportState::Confirmed).await;

    // BTG sends the same receipt again as a new event, and then a contradicting one.
    for (n, status) in [(1, "ACCEPTED"), (2, "REJECTED")] {
        let body = serde_json::to_vec(&json!({
            "webhookId": format!("redelivery-{n}-{}", confirmed.id),
            "event": "PIX_INTERNAL_TRANSACTIONS_REPORT",
            "data": {"id": confirmed.btg_report_id, "reportId": confirmed.report_id, "status": status,
                     "receiptCode": if status == "ACCEPTED" { "ACCP" } else { "RJCT" }},
        }))
        .unwrap();
        let now = app.clock.now().timestamp();
        let response = app
            .http
            .post(format!("{}/v1/inbound/btg/{}", app.url, bank.tenant.id))
            .header("content-type", "application/json")
            .header("x-signature-timestamp", now.to_string())
            .header("x-signature", pix_sandbox::sign(WEBHOOK_SECRET.as_bytes(), now, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    // Both events were processed (no failed inbound event) and the row is as it was.
    let mut processed = false;
    for _ in 0..100 {
        let events: Value = app
            .request(Method::GET, "/v1/admin/inbound-events?status=processed", &app.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ours = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["eventId"].as_str().is_some_and(|id| id.starts_with("redelivery-")))
            .count();
        if ours == 2 {
            processed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(processed, "the redelivered receipts were processed");
    let after = rows(&bank, &t).await;
    assert_eq!(after, vec![confirmed]);
    assert_eq!(btg_reports_of(&bank, &t).await.len(), 1, "nothing was reported again");
}

async fn btg_down_is_retried_with_backoff_under_the_same_report_id(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = money(&bank).await;
    let settings = app.state.config.trck002.settings();
    // BTG answers 503 to every attempt of the client's first call (3 attempts: below the
    // circuit breaker's threshold, which would otherwise hold later calls for 30 s of real time).
    let unavailable = FaultKind::Status { status: 503 };
    fault(&bank, FaultTarget::Btg, REPORTS_PATH, unavailable.clone(), Some(3));
    let t = e2e(app);
    record(&bank, &settlement(&bank, &t, InternalKind::Transfer, 777)).await;

    let first = wait_row(&bank, &t, "failed once", |r| r.attempts == 1).await;
    assert_eq!(first.state, ReportState::Pending);
    assert!(first.last_error.as_deref().is_some_and(|e| e.contains("503")), "{first:?}");
    let report_id = first.report_id.clone().expect("in a report");
    assert_eq!(first.next_attempt_at - first.updated_at, settings.backoff(1), "{first:?}");

    // Not retried before its backoff, however often the reporter looks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rows(&bank, &t).await[0].attempts, 1);

    // Each further failure doubles the wait (up to the cap): a refusal, then 503s again.
    for (failures, kind, count) in [(2, FaultKind::Status { status: 400 }, 1), (3, unavailable, 3)] {
        fault(&bank, FaultTarget::Btg, REPORTS_PATH, kind, Some(count));
        let row = rows(&bank, &t).await.remove(0);
        app.clock.advance(row.next_attempt_at - app.clock.now());
        let next = wait_row(&bank, &t, "failed again", |r| r.attempts == failures).await;
        assert_eq!(next.report_id.as_deref(), Some(report_id.as_str()), "a retry keeps the report id");
        assert_eq!(next.next_attempt_at - next.updated_at, settings.backoff(failures));
    }
    assert!(settings.backoff(2) == settings.backoff(1) * 2 || settings.backoff(2) == settings.backoff_cap);
    assert!(btg_reports_of(&bank, &t).await.is_empty(), "BTG never took it while down");

    // BTG is back: the next retry is accepted and confirmed, as one report under the same id.
    let row = rows(&bank, &t).await.remove(0);
    app.clock.advance(row.next_attempt_at - app.clock.now());
    let confirmed = wait_state(&bank, &t, ReportState::Confirmed).await;
    assert_eq!(confirmed.report_id.as_deref(), Some(report_id.as_str()));
    let waited = settings.backoff(1) + settings.backoff(2) + settings.backoff(3);
    assert!(confirmed.accepted_at.unwrap() - confirmed.recorded_at >= waited, "{confirmed:?}");
    let reported = btg_reports_of(&bank, &t).await;
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].0["reportId"], json!(report_id));

    assert_eq!(money(&bank).await, before, "a failing report moves no money");
}

async fn a_missed_camt025_is_settled_by_the_status_query(app: &TestApp) {
    let bank = Bank::open(app).await;
    fault(&bank, FaultTarget::Webhooks, "PIX_INTERNAL_TRANSACTIONS_REPORT", FaultKind::Drop, None);
    let t = e2e(app);
    record(&bank, &settlement(&bank, &t, InternalKind::Transfer, 4_200)).await;
    let submitted = wait_state(&bank, &t, ReportState::Submitted).await;

    // BACEN answered at BTG (after 1 s of simulated time), but the camt.025 never arrives.
    let btg_id = submitted.btg_report_id.clone().unwrap();
    for _ in 0..100 {
        let reported = btg_reports_of(&bank, &t).await;
        if reported.first().is_some_and(|(r, _)| r["status"] == "ACCEPTED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(btg_reports_of(&bank, &t).await[0].0["status"], "ACCEPTED");
    assert!(
        app.sandbox
            .handle
            .deliveries()
            .iter()
            .any(|d| d.event == "PIX_INTERNAL_TRANSACTIONS_REPORT" && d.outcome == "dropped")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rows(&bank, &t).await[0].state, ReportState::Submitted, "nothing asks BTG before the threshold");

    // Past the threshold the reporter asks BTG, which says ACCEPTED.
    let settings = app.state.config.trck002.settings();
    app.clock.advance(settings.confirm_after + chrono::Duration::seconds(1));
    let confirmed = wait_state(&bank, &t, ReportState::Confirmed).await;
    assert_eq!(confirmed.btg_report_id.as_deref(), Some(btg_id.as_str()));
    assert_eq!(confirmed.receipt_code.as_deref(), Some("ACCP"));
    assert_eq!(confirmed.accepted_at, submitted.accepted_at);
}

async fn a_rejected_report_is_reported_again_alone_then_left_for_operators(app: &TestApp) {
    let bank = Bank::open(app).await;
    let before = money(&bank).await;
    // The simulated BACEN rejects a report holding an amount ending in 13 centavos. Both are
    // completed in one transaction, so one report holds both.
    let (bad, good) = (e2e(app), e2e(app));
    let mut tx = app.db.store.begin().await.unwrap();
    record_internal_settlement(&mut tx, &settlement(&bank, &bad, InternalKind::Transfer, 1_013)).await.unwrap();
    record_internal_settlement(&mut tx, &settlement(&bank, &good, InternalKind::Transfer, 1_000)).await.unwrap();
    tx.commit().await.unwrap();

    // Rejected: each is reported again in a report of its own; the good one is then confirmed.
    let good_row = wait_state(&bank, &good, ReportState::Confirmed).await;
    assert_eq!(good_row.rejections, 1);
    assert_eq!(good_row.report_id, Some(good_row.id.to_string()), "reported again alone");
    let bad_row = wait_state(&bank, &bad, ReportState::Error).await;
    assert_eq!(bad_row.rejections, 2);
    assert_eq!(bad_row.receipt_code.as_deref(), Some("RJCT"));
    assert!(bad_row.last_error.as_deref().is_some_and(|e| e.contains("RJCT")), "{bad_row:?}");
    let reports_of_bad = btg_reports_of(&bank, &bad).await;
    assert_eq!(reports_of_bad.len(), 2, "reported twice, no more: {reports_of_bad:?}");
    let mut sizes: Vec<i64> = reports_of_bad.iter().map(|(r, _)| r["transactions"].as_i64().unwrap()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2], "first with the good one, then alone");
    assert!(reports_of_bad.iter().all(|(r, _)| r["status"] == "REJECTED"));
    let reports_of_good = btg_reports_of(&bank, &good).await;
    assert_eq!(reports_of_good.len(), 2, "{reports_of_good:?}");
    // Nothing more is sent for the row in ERROR.
    app.clock.advance(chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(btg_reports_of(&bank, &bad).await.len(), 2);

    // Operators see it.
    let listing: Value = app
        .request(Method::GET, &format!("/v1/admin/internal-reports?status=ERROR&endToEndId={bad}"), &app.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing.as_array().map(Vec::len), Some(1), "{listing}");
    assert_eq!(listing[0]["status"], "ERROR");
    assert_eq!(listing[0]["amount"], 1_013);
    let tenant_scope =
        app.request(Method::GET, "/v1/admin/internal-reports?status=ERROR", &bank.tenant.token).send().await.unwrap();
    assert!(tenant_scope.status() == 401 || tenant_scope.status() == 403, "{}", tenant_scope.status());
    let bad_status =
        app.request(Method::GET, "/v1/admin/internal-reports?status=LOST", &app.admin_token).send().await.unwrap();
    assert_eq!(bad_status.status(), 400);

    assert_eq!(money(&bank).await, before, "a rejected report moves no money");
}

async fn a_refund_without_its_return_identification_is_refused(app: &TestApp) {
    let bank = Bank::open(app).await;
    let t = e2e(app);
    let mut s = settlement(&bank, &t, InternalKind::Refund, 100);
    s.return_identification = None;
    let mut tx = app.db.store.begin().await.unwrap();
    assert!(record_internal_settlement(&mut tx, &s).await.is_err());
    drop(tx);
    assert!(rows(&bank, &t).await.is_empty());
}

async fn concurrent_reporters_report_each_settlement_once(app: &TestApp) {
    let bank = Bank::open(app).await;
    // Two more reporters (three instances), looking as often as they can.
    for _ in 0..2 {
        tokio::spawn(pix_server::reports::reporter(&app.state, Some(Duration::from_millis(1)), Default::default()));
    }
    let mut ids = Vec::new();
    for _ in 0..6 {
        let mut tx = app.db.store.begin().await.unwrap();
        for n in 0..10 {
            let id = e2e(app);
            record_internal_settlement(&mut tx, &settlement(&bank, &id, InternalKind::Transfer, 100 + n))
                .await
                .unwrap();
            ids.push(id);
        }
        tx.commit().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut report_ids = std::collections::BTreeSet::new();
    for id in &ids {
        let row = wait_state(&bank, id, ReportState::Confirmed).await;
        report_ids.insert(row.report_id.unwrap());
    }
    let reported = btg_reported(&bank).await;
    for id in &ids {
        assert_eq!(reported.iter().filter(|(_, e)| e["endToEndId"] == id.as_str()).count(), 1, "{id}");
    }
    let btg_reports: std::collections::BTreeSet<String> =
        reported.iter().map(|(r, _)| r["reportId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(btg_reports, report_ids, "one BTG report per report id");
}

async fn settlements_not_accepted_within_240s_are_counted_for_the_alert(app: &TestApp) {
    let bank = Bank::open(app).await;
    let settings = app.state.config.trck002.settings();
    fault(&bank, FaultTarget::Btg, REPORTS_PATH, FaultKind::Status { status: 503 }, Some(3));
    let (late, recent) = (e2e(app), e2e(app));
    record(&bank, &settlement(&bank, &late, InternalKind::Transfer, 300)).await;
    wait_row(&bank, &late, "failed", |r| r.attempts == 1).await;
    // 241 s later, a second settlement completes while the first is still not accepted.
    fault(&bank, FaultTarget::Btg, REPORTS_PATH, FaultKind::Status { status: 400 }, None);
    app.clock.advance(chrono::Duration::seconds(241));
    record(&bank, &settlement(&bank, &recent, InternalKind::Transfer, 301)).await;
    let pass = pix_app::reports::report_once(&app.state.app, &settings).await.unwrap();
    assert_eq!(pass.unreported_over_240s, 1, "only the one completed more than 240 s ago");
    let metrics = app.http.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pix_trck002_unreported_over_240s"), "{metrics}");

    // Once accepted it no longer counts, and its latency is measured.
    app.sandbox.handle.clear_faults();
    app.clock.advance(settings.backoff_cap);
    wait_state(&bank, &late, ReportState::Confirmed).await;
    wait_state(&bank, &recent, ReportState::Confirmed).await;
    let pass = pix_app::reports::report_once(&app.state.app, &settings).await.unwrap();
    assert_eq!(pass.unreported_over_240s, 0);
    let metrics = app.http.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("pix_trck002_report_latency_seconds"), "{metrics}");
}
