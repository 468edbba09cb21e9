//! MED records: fraud markers (cursor paging), infraction reports (the deprecated create, both
//! roles, close with a fraud marker), refund requests (both roles, close), their outbound events,
//! and the MED link: closing a request against us with one of our refunds (`refundId`) or by
//! creating it (`createRefund`).

#[macro_use]
mod dict_common;

use dict_common::{
    Dx, at_btg, balance, cash_in, deliver, eventually, outbound_events, refund_request_against_us, settled_cash_out,
};
use pix_app::refunds::outgoing;
use pix_core::refund::{OutgoingRefund, RefundReason, RefundState, RefundStatus};
use pix_core::transfer::Direction;
use pix_e2e::error_code;
use pix_store::refunds::Refund;
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    fraud_markers_are_registered_listed_by_cursor_and_cancelled,
    reports_and_refund_requests_we_file_follow_dict,
    reports_and_refund_requests_against_us_are_answered,
    closing_with_create_refund_returns_the_funds_and_links_the_refund,
    a_partial_acceptance_creates_a_refund_of_the_given_amount,
    closing_with_one_of_our_refunds_sends_its_return_id,
    refund_refusals_pass_through_and_leave_the_request_open,
    a_refund_btg_has_not_accepted_leaves_the_request_open_until_it_is,
    concurrent_closes_create_one_refund,
    a_request_we_file_links_the_return_we_receive_and_can_be_cancelled,
);

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// A Pix received from another bank into Maria's account: a settled payment to report on.
async fn received_payment(dx: &Dx) -> String {
    let entry = dx.create_entry("@maria", json!({"keyType": "EVP"})).await;
    let pix = dx.app.sandbox.handle.inbound_pix(&json!({"key": entry["key"], "amount": "250.00"})).unwrap();
    let e2e = pix["endToEndId"].as_str().unwrap().to_owned();
    let tenant = dx.tenant.id;
    eventually("the cash-in recorded", || async {
        dx.app.db.store.end_to_end_id_tenants(&e2e).await.unwrap() == vec![tenant]
    })
    .await;
    e2e
}

async fn post(dx: &Dx, path: &str, body: Value) -> reqwest::Response {
    dx.call(Method::POST, path).json(&body).send().await.unwrap()
}

async fn fraud_markers_are_registered_listed_by_cursor_and_cancelled(dx: &Dx) {
    let mut ids = Vec::new();
    for (kind, key) in [("MULE_ACCOUNT", None), ("SCAMMER_ACCOUNT", Some("scam@example.com")), ("OTHER", None)] {
        let mut body = json!({"taxIdNumber": "12345678909", "fraudType": kind});
        if let Some(k) = key {
            body["key"] = json!(k);
        }
        let created = post(dx, "/v1/dict/fraud-markers", body).await;
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        assert_eq!(created["status"], "REGISTERED");
        assert_eq!(created["document"], "12345678909");
        ids.push(created["id"].as_str().unwrap().to_owned());
        dx.advance(1); // distinct timestamps for the cursor
    }
    let first = dx.get_json("/v1/dict/fraud-markers?tax_id=12345678909&limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["hasMoreElements"], true);
    let cursor = first["items"][1]["updatedAt"].as_str().unwrap();
    let next = dx
        .call(Method::GET, "/v1/dict/fraud-markers")
        .query(&[("tax_id", "12345678909"), ("limit", "2"), ("modified_after", cursor)])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert_eq!(next["hasMoreElements"], false);
    assert_eq!(next["items"][0]["id"], json!(ids[2]));
    let by_type = dx.get_json("/v1/dict/fraud-markers?tax_id=12345678909&fraud_type=SCAMMER_ACCOUNT").await;
    assert_eq!(by_type["items"][0]["key"], "scam@example.com");

    dx.advance(1);
    let cancelled: Value =
        post(dx, &format!("/v1/dict/fraud-markers/{}/cancel", ids[0]), json!({})).await.json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert!(
        cancelled["updatedAt"].as_str() > cancelled["createdAt"].as_str(),
        "a cancellation is a change: {cancelled}"
    );
    // A cursor reader that had seen everything up to the second marker now also sees the
    // cancelled first one, after the third (it changed last).
    let since = dx
        .call(Method::GET, "/v1/dict/fraud-markers")
        .query(&[("tax_id", "12345678909"), ("modified_after", cursor)])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let order: Vec<&str> = since["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(order, [ids[2].as_str(), ids[0].as_str()], "{since}");
    assert_eq!(since["items"][1]["updatedAt"], cancelled["updatedAt"]);
    // Person statistics count the markers in force: the cancelled mule marker no longer.
    let person = dx.get_json("/v1/dict/statistics/persons/12345678909").await;
    assert_eq!(person["taxIdNumber"], "12345678909");
    assert_eq!(person["fraudMarkers"]["muleAccounts"]["d90"], 0, "{person}");
    assert_eq!(person["fraudMarkers"]["scammerAccounts"]["d90"], 1, "{person}");
    assert_eq!(person["fraudMarkers"]["otherFrauds"]["m12"], 1, "{person}");
    assert!(person.get("key").is_none());
    let not_a_document = dx.call(Method::GET, "/v1/dict/statistics/persons/12345678900").send().await.unwrap();
    assert_eq!(error_code(not_a_document).await, "PIX-0008");
    let only_cancelled = dx.get_json("/v1/dict/fraud-markers?tax_id=12345678909&status=CANCELLED").await;
    assert_eq!(only_cancelled["items"].as_array().unwrap().len(), 1);
    assert_eq!(only_cancelled["items"][0]["id"], json!(ids[0]));
    let unknown = post(dx, "/v1/dict/fraud-markers/nope/cancel", json!({})).await;
    assert_eq!(error_code(unknown).await, "PIX-0205");

    for (body, code) in [
        (json!({"taxIdNumber": "12345678900", "fraudType": "OTHER"}), "PIX-0004"),
        (json!({"taxIdNumber": "12345678909", "fraudType": "UNKNOWN"}), "PIX-0004"),
        (json!({"taxIdNumber": "12345678909", "fraudType": "OTHER", "key": "??"}), "PIX-0004"),
        (json!({"fraudType": "OTHER"}), "PIX-0003"),
    ] {
        assert_eq!(error_code(post(dx, "/v1/dict/fraud-markers", body.clone()).await).await, code, "{body}");
    }
    for (query, code) in [
        ("", "PIX-0003"),
        ("?tax_id=1", "PIX-0004"),
        ("?tax_id=12345678909&limit=0", "PIX-0004"),
        ("?tax_id=12345678909&modified_after=yesterday", "PIX-0004"),
        ("?tax_id=12345678909&status=GONE", "PIX-0004"),
    ] {
        let r = dx.call(Method::GET, &format!("/v1/dict/fraud-markers{query}")).send().await.unwrap();
        assert_eq!(error_code(r).await, code, "{query}");
    }
}

async fn reports_and_refund_requests_we_file_follow_dict(dx: &Dx) {
    let e2e = received_payment(dx).await;
    let created = post(
        dx,
        "/v1/dict/infraction-reports",
        json!({"transactionId": e2e, "reason": "REFUND_REQUEST", "situationType": "SCAM"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["deprecation"], "true", "the create is deprecated but works");
    let report: Value = created.json().await.unwrap();
    let id = report["id"].as_str().unwrap().to_owned();
    assert_eq!(report["role"], "REPORTER");
    assert_eq!(report["status"], "OPEN");
    assert!(report["fundRecoveryId"].is_null());
    assert_eq!(report["reporterParticipant"], "12345678");

    let ack = post(dx, &format!("/v1/dict/infraction-reports/{id}/acknowledge"), json!({})).await;
    assert_eq!(error_code(ack).await, "PIX-0202", "the reporter does not acknowledge");
    let open_refund =
        post(dx, "/v1/dict/refund-requests", json!({"transactionId": e2e, "amount": "250.00", "infractionId": id}))
            .await;
    assert_eq!(error_code(open_refund).await, "PIX-0202", "FRAUD needs the report closed AGREED");

    // The simulated counterparty acknowledges after 1 h and agrees after 1 day.
    dx.advance(HOUR + 60);
    eventually("ACKNOWLEDGED", || async {
        dx.get_json(&format!("/v1/dict/infraction-reports/{id}")).await["status"] == "ACKNOWLEDGED"
    })
    .await;
    dx.advance(DAY);
    eventually("CLOSED", || async {
        dx.get_json(&format!("/v1/dict/infraction-reports/{id}")).await["status"] == "CLOSED"
    })
    .await;
    let closed = dx.get_json(&format!("/v1/dict/infraction-reports/{id}")).await;
    assert_eq!(closed["analysisResult"], "AGREED");
    let listed = dx.get_json("/v1/dict/infraction-reports?status=CLOSED&analysis_result=AGREED").await;
    assert_eq!(listed["total"], 1);
    let cancel = post(dx, &format!("/v1/dict/infraction-reports/{id}/cancel"), json!({})).await;
    assert_eq!(error_code(cancel).await, "PIX-0202", "a closed report cannot be cancelled");

    // A second report, cancelled by us.
    let second: Value = post(dx, "/v1/dict/infraction-reports", json!({"transactionId": e2e, "reason": "REFUND_REQUEST", "situationType": "OTHER", "reportDetails": "customer call"}))
        .await
        .json()
        .await
        .unwrap();
    let cancelled =
        post(dx, &format!("/v1/dict/infraction-reports/{}/cancel", second["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "CANCELLED");

    // The refund request, backed by the agreed report.
    let refund =
        post(dx, "/v1/dict/refund-requests", json!({"transactionId": e2e, "amount": "250.00", "infractionId": id}))
            .await;
    assert_eq!(refund.status(), 201);
    let refund: Value = refund.json().await.unwrap();
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    assert_eq!(refund["amount"], "250.00");
    assert_eq!(refund["reason"], "FRAUD");
    assert_eq!(refund["role"], "REQUESTING");
    assert!(refund["fundRecoveryId"].is_null());
    let close = post(
        dx,
        &format!("/v1/dict/refund-requests/{refund_id}/close"),
        json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "OTHER"}),
    )
    .await;
    assert_eq!(error_code(close).await, "PIX-0204", "only the contested side closes");
    dx.advance(DAY + 60);
    eventually("refund CLOSED", || async {
        dx.get_json(&format!("/v1/dict/refund-requests/{refund_id}")).await["status"] == "CLOSED"
    })
    .await;
    let done = dx.get_json(&format!("/v1/dict/refund-requests/{refund_id}")).await;
    assert_eq!(done["analysisResult"], "TOTALLY_ACCEPTED");
    assert!(done["refundTransactionId"].as_str().unwrap().starts_with('D'));
    assert_eq!(dx.get_json("/v1/dict/refund-requests?status=CLOSED").await["total"], 1);

    // Validation.
    for (body, code) in [
        (json!({"transactionId": "E1", "reason": "REFUND_REQUEST"}), "PIX-0004"),
        (json!({"transactionId": e2e, "reason": "FRAUD"}), "PIX-0004"),
        (json!({"transactionId": e2e, "reason": "REFUND_CANCELLED", "situationType": "SCAM"}), "PIX-0004"),
        (json!({"transactionId": e2e, "reason": "REFUND_REQUEST", "situationType": "OTHER"}), "PIX-0003"),
        (json!({"transactionId": e2e, "reason": "REFUND_REQUEST", "situationType": "BURGLARY"}), "PIX-0004"),
        // Neither our ISPB nor one of our transfers: refused before BTG is asked.
        (json!({"transactionId": "E87654321202601011200abcdefghijk", "reason": "REFUND_REQUEST"}), "PIX-0035"),
    ] {
        assert_eq!(error_code(post(dx, "/v1/dict/infraction-reports", body.clone()).await).await, code, "{body}");
    }
    for (body, code) in [
        (json!({"transactionId": e2e, "amount": "abc"}), "PIX-0004"),
        (json!({"transactionId": e2e, "amount": "0.00"}), "PIX-0004"),
        (json!({"transactionId": e2e, "amount": 10}), "PIX-0005"),
        (json!({"transactionId": e2e, "amount": "1.00", "reason": "OPERATIONAL_FLAW"}), "PIX-0003"),
        (json!({"transactionId": e2e, "amount": "1.00", "infractionId": uuid::Uuid::new_v4()}), "PIX-0201"),
        (json!({"transactionId": e2e, "amount": "999.00"}), "PIX-0117"),
    ] {
        assert_eq!(error_code(post(dx, "/v1/dict/refund-requests", body.clone()).await).await, code, "{body}");
    }
    for (path, code) in [
        ("/v1/dict/infraction-reports/abc".to_owned(), "PIX-0219"),
        (format!("/v1/dict/infraction-reports/{}", uuid::Uuid::new_v4()), "PIX-0201"),
        ("/v1/dict/infraction-reports?status=DONE".to_owned(), "PIX-0004"),
        ("/v1/dict/refund-requests/abc".to_owned(), "PIX-0206"),
        (format!("/v1/dict/refund-requests/{}", uuid::Uuid::new_v4()), "PIX-0203"),
        ("/v1/dict/refund-requests?contested_participant=1".to_owned(), "PIX-0004"),
    ] {
        let r = dx.call(Method::GET, &path).send().await.unwrap();
        assert_eq!(error_code(r).await, code, "{path}");
    }
    assert!(outbound_events(dx, "INFRACTION_REPORT").await.len() >= 4);
    assert!(outbound_events(dx, "REFUND").await.len() >= 2);
}

async fn reports_and_refund_requests_against_us_are_answered(dx: &Dx) {
    let e2e = received_payment(dx).await;
    dx.control(Method::POST, "/_control/btg/infraction-reports", json!({"endToEndId": e2e})).await;
    let mut id = String::new();
    for _ in 0..300 {
        let page = dx.get_json("/v1/dict/infraction-reports?counterparty_participant=12345678").await;
        if let Some(found) = page["items"][0]["id"].as_str() {
            id = found.to_owned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!id.is_empty(), "the report against us arrived");
    let report = dx.get_json(&format!("/v1/dict/infraction-reports/{id}")).await;
    assert_eq!(report["role"], "COUNTERPARTY");
    let cancel = post(dx, &format!("/v1/dict/infraction-reports/{id}/cancel"), json!({})).await;
    assert_eq!(error_code(cancel).await, "PIX-0202", "only the reporter cancels");
    let ack = post(dx, &format!("/v1/dict/infraction-reports/{id}/acknowledge"), json!({})).await;
    assert_eq!(ack.json::<Value>().await.unwrap()["status"], "ACKNOWLEDGED");
    let again = post(dx, &format!("/v1/dict/infraction-reports/{id}/acknowledge"), json!({})).await;
    assert_eq!(again.status(), 200);
    let close_path = format!("/v1/dict/infraction-reports/{id}/close");
    let close = |body: Value| post(dx, &close_path, body);
    assert_eq!(error_code(close(json!({"analysisResult": "MAYBE"})).await).await, "PIX-0004");
    assert_eq!(error_code(close(json!({"analysisResult": "DISAGREED", "fraudType": "OTHER"})).await).await, "PIX-0004");
    assert_eq!(
        error_code(close(json!({"analysisResult": "AGREED", "fraudType": "MULE_ACCOUNT"})).await).await,
        "PIX-0003"
    );
    let closed = close(json!({"analysisResult": "AGREED", "analysisDetails": "mule confirmed", "fraudType": "MULE_ACCOUNT", "taxIdNumber": "11144477735"})).await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["analysisResult"], "AGREED");
    let marker = closed["fraudMarkerId"].as_str().unwrap();
    let markers = dx.get_json("/v1/dict/fraud-markers?tax_id=11144477735").await;
    assert_eq!(markers["items"][0]["id"], marker, "closing AGREED registered a fraud marker");

    // A refund request against us (DICT_REFUND).
    let at_btg: Value = dx
        .btg(Method::POST, "/dict/refunds", Some(json!({"endToEndId": e2e, "amount": "100.00", "reason": "FRAUD"})))
        .await
        .json()
        .await
        .unwrap();
    deliver(dx, "DICT_REFUND", at_btg.clone()).await;
    let mut refund_id = String::new();
    for _ in 0..300 {
        let page = dx.get_json("/v1/dict/refund-requests?status=OPEN").await;
        if let Some(found) = page["items"][0]["id"].as_str() {
            refund_id = found.to_owned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refund = dx.get_json(&format!("/v1/dict/refund-requests/{refund_id}")).await;
    assert_eq!(refund["role"], "CONTESTED");
    assert_eq!(refund["amount"], "100.00");
    assert!(refund["fundRecoveryId"].is_null());
    let refund_close = format!("/v1/dict/refund-requests/{refund_id}/close");
    let close = |body: Value| post(dx, &refund_close, body);
    for (body, code) in [
        (json!({"refundAnalysisResult": "REJECTED"}), "PIX-0003"),
        (json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "BORED"}), "PIX-0004"),
        (json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "INVALID_REQUEST"}), "PIX-0004"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundRejectionReason": "OTHER"}), "PIX-0004"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED"}), "PIX-0003"),
        (json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundTransactionId": e2e}), "PIX-0004"),
        (json!({"refundAnalysisResult": "ALL"}), "PIX-0004"),
    ] {
        assert_eq!(error_code(close(body.clone()).await).await, code, "{body}");
    }
    let rejected = close(json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "NO_BALANCE", "refundAnalysisDetails": "account empty"})).await;
    assert_eq!(rejected.status(), 200);
    let rejected: Value = rejected.json().await.unwrap();
    assert_eq!(rejected["status"], "CLOSED");
    assert_eq!(rejected["analysisResult"], "REJECTED");
    assert_eq!(rejected["rejectionReason"], "NO_BALANCE");
    let twice = close(json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "OTHER"})).await;
    assert_eq!(error_code(twice).await, "PIX-0204");
    let events = outbound_events(dx, "REFUND").await;
    let statuses: Vec<&str> = events.iter().map(|e| e["payload"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["OPEN", "CLOSED"]);
}

// ================================================================================== the MED link

async fn tenant(dx: &Dx) -> pix_store::tenants::Tenant {
    dx.app.db.store.tenant(dx.tenant.id).await.unwrap().unwrap()
}

/// A refund of `centavos` of the cash-in `e2e` made through the refund engine (as the refund
/// routes do), PROCESSING once BTG accepted it.
async fn refund_of(dx: &Dx, e2e: &str, centavos: i64) -> Refund {
    let store = &dx.app.db.store;
    let cashin = store.transfer_by_end_to_end_id(dx.tenant.id, Direction::Cashin, e2e).await.unwrap().unwrap();
    let tenant = tenant(dx).await;
    let refund = outgoing::create(
        &dx.app.state.app,
        outgoing::RefundRequest {
            tenant: &tenant,
            account_id: cashin.account_id,
            transfer_id: cashin.id,
            reason: RefundReason::Md06,
            amount: centavos,
            description: None,
            metadata: Default::default(),
            operations: None,
            adopt: None,
            idempotency_key: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(refund.status(), RefundStatus::Processing);
    refund
}

async fn our_refund(dx: &Dx, id: &str) -> Refund {
    dx.app.db.store.refund(dx.tenant.id, id.parse().unwrap()).await.unwrap().unwrap()
}

async fn closing_with_create_refund_returns_the_funds_and_links_the_refund(dx: &Dx) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, "250.00").await;
    let (id, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let close_path = format!("/v1/dict/refund-requests/{id}/close");
    let close = |body: Value| post(dx, &close_path, body);
    let d_id = "D12345678202601011200abcdefghijk";
    for (body, code) in [
        (
            json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundTransactionId": d_id, "createRefund": {}}),
            "PIX-0004",
        ),
        (
            json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundId": uuid::Uuid::new_v4(), "createRefund": {}}),
            "PIX-0004",
        ),
        (
            json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundTransactionId": d_id, "refundId": uuid::Uuid::new_v4()}),
            "PIX-0004",
        ),
        (json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "OTHER", "createRefund": {}}), "PIX-0004"),
        (
            json!({"refundAnalysisResult": "REJECTED", "refundRejectionReason": "OTHER", "refundId": uuid::Uuid::new_v4()}),
            "PIX-0004",
        ),
        (json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "createRefund": {}}), "PIX-0003"),
        (json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "createRefund": {"amount": "100.00"}}), "PIX-0004"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {"amount": "99.99"}}), "PIX-0004"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {"amount": "0.00"}}), "PIX-0004"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {"amount": 100}}), "PIX-0005"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {"reason": "MD06"}}), "PIX-0006"),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundId": "not-a-uuid"}), "PIX-0004"),
    ] {
        let response = close(body.clone()).await;
        assert_eq!(response.status().as_u16(), 400, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    assert!(dx.app.db.store.refunds_of_transfer(dx.tenant.id, cashin_id(dx, &e2e).await).await.unwrap().is_empty());
    assert_eq!(at_btg(dx, &btg_id).await["status"], "OPEN", "no refusal reached DICT");

    let (before, _) = balance(dx, "@maria");
    let closed = close(json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {}})).await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["status"], "CLOSED");
    assert_eq!(closed["analysisResult"], "TOTALLY_ACCEPTED");
    let refund = our_refund(dx, closed["refundId"].as_str().expect("the request links the refund")).await;
    assert!(matches!(refund.status(), RefundStatus::Processing | RefundStatus::Completed), "{:?}", refund.status());
    assert_eq!(refund.kind(), Direction::Cashout);
    assert_eq!((refund.amount, refund.reason), (10_000, RefundReason::Fr01), "the requested amount, for fraud");
    assert_eq!(refund.original_end_to_end_id, e2e);
    let d_id = refund.return_end_to_end_id().unwrap().to_owned();
    assert_eq!(closed["refundTransactionId"], d_id.as_str());
    assert_eq!(balance(dx, "@maria").0, before - 10_000, "Maria's account returned exactly the requested amount");
    let remote = at_btg(dx, &btg_id).await;
    assert_eq!(
        (remote["status"].as_str(), remote["analysisResult"].as_str()),
        (Some("CLOSED"), Some("TOTALLY_ACCEPTED"))
    );
    assert_eq!(remote["refundEndToEndId"], d_id.as_str(), "DICT got our refund's return id");
    let stored = dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await;
    assert_eq!(stored["refundId"], refund.id.to_string());
    let by_refund = dx.get_json(&format!("/v1/dict/refund-requests?refund_id={}", refund.id)).await;
    assert_eq!(by_refund["total"], 1);
    assert_eq!(by_refund["items"][0]["id"], id.as_str());

    // Closing again is refused before anything moves.
    let again = close(json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {}})).await;
    assert_eq!(error_code(again).await, "PIX-0204");
    assert_eq!(dx.app.db.store.refunds_of_transfer(dx.tenant.id, refund.transfer_id).await.unwrap().len(), 1);
    assert_eq!(balance(dx, "@maria").0, before - 10_000);
    let last = outbound_events(dx, "REFUND").await.pop().unwrap();
    assert_eq!(last["payload"]["refundId"], refund.id.to_string(), "the REFUND event carries the link");
}

async fn cashin_id(dx: &Dx, e2e: &str) -> uuid::Uuid {
    dx.app.db.store.transfer_by_end_to_end_id(dx.tenant.id, Direction::Cashin, e2e).await.unwrap().unwrap().id
}

async fn a_partial_acceptance_creates_a_refund_of_the_given_amount(dx: &Dx) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, "250.00").await;
    let (id, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let (before, _) = balance(dx, "@maria");
    let closed = post(
        dx,
        &format!("/v1/dict/refund-requests/{id}/close"),
        json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundAnalysisDetails": "part was spent", "createRefund": {"amount": "40.01"}}),
    )
    .await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["analysisResult"], "PARTIALLY_ACCEPTED");
    assert_eq!(closed["analysisDetails"], "part was spent");
    let refund = our_refund(dx, closed["refundId"].as_str().unwrap()).await;
    assert_eq!(refund.amount, 4_001);
    assert_eq!(balance(dx, "@maria").0, before - 4_001);
    let remote = at_btg(dx, &btg_id).await;
    assert_eq!(remote["analysisResult"], "PARTIALLY_ACCEPTED");
    assert_eq!(remote["refundEndToEndId"], refund.return_end_to_end_id().unwrap());
    assert_eq!(dx.app.db.store.refunded_amount(dx.tenant.id, refund.transfer_id).await.unwrap(), 4_001);
}

async fn closing_with_one_of_our_refunds_sends_its_return_id(dx: &Dx) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, "250.00").await;
    let other = cash_in(dx, &key, "80.00").await;
    let of_other = refund_of(dx, &other, 3_000).await;
    let sixty = refund_of(dx, &e2e, 6_000).await;
    let hundred = refund_of(dx, &e2e, 10_000).await;
    let (id, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let close_path = format!("/v1/dict/refund-requests/{id}/close");
    let close = |body: Value| post(dx, &close_path, body);
    let unknown = close(json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundId": uuid::Uuid::new_v4()})).await;
    assert_eq!(error_code(unknown).await, "PIX-0440");
    for (body, why) in [
        (
            json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundId": of_other.id}),
            "a refund of another transaction",
        ),
        (
            json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundTransactionId": of_other.return_end_to_end_id()}),
            "the return id of a refund of another transaction",
        ),
        (json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundId": sixty.id}), "less than requested, TOTALLY"),
        (json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundId": hundred.id}), "all of it, PARTIALLY"),
    ] {
        let response = close(body.clone()).await;
        assert_eq!(response.status(), 422, "{why}");
        assert_eq!(error_code(response).await, "PIX-0204", "{why}");
    }
    let remote = at_btg(dx, &btg_id).await;
    assert_eq!(remote["status"], "OPEN", "BTG was not called");
    assert!(remote["refundEndToEndId"].is_null());
    assert_eq!(dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await["status"], "OPEN");

    let (before, _) = balance(dx, "@maria");
    let closed = close(json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundId": sixty.id})).await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["refundId"], sixty.id.to_string());
    assert_eq!(closed["refundTransactionId"], sixty.return_end_to_end_id().unwrap());
    assert_eq!(at_btg(dx, &btg_id).await["refundEndToEndId"], sixty.return_end_to_end_id().unwrap());
    assert_eq!(balance(dx, "@maria").0, before, "naming an existing refund moves no money");
    assert_eq!(dx.app.db.store.refunds_of_transfer(dx.tenant.id, sixty.transfer_id).await.unwrap().len(), 2);

    // A bare return id of one of our refunds is checked and linked the same way; one refund
    // closes one request.
    let (second, second_btg) = refund_request_against_us(dx, &e2e, "100.00").await;
    let second_close = format!("/v1/dict/refund-requests/{second}/close");
    let taken = post(
        dx,
        &second_close,
        json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "refundTransactionId": sixty.return_end_to_end_id()}),
    )
    .await;
    assert_eq!(error_code(taken).await, "PIX-0204", "that refund already closes the first request");
    let bare = post(
        dx,
        &second_close,
        json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundTransactionId": hundred.return_end_to_end_id()}),
    )
    .await;
    assert_eq!(bare.status(), 200);
    assert_eq!(bare.json::<Value>().await.unwrap()["refundId"], hundred.id.to_string());
    assert_eq!(at_btg(dx, &second_btg).await["refundEndToEndId"], hundred.return_end_to_end_id().unwrap());

    // A return id that is not ours still closes as before, unlinked.
    let (third, _) = refund_request_against_us(dx, &other, "10.00").await;
    let foreign = post(
        dx,
        &format!("/v1/dict/refund-requests/{third}/close"),
        json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundTransactionId": "D12345678202601011200abcdefghijk"}),
    )
    .await;
    assert_eq!(foreign.status(), 200);
    assert!(foreign.json::<Value>().await.unwrap()["refundId"].is_null());
}

async fn refund_refusals_pass_through_and_leave_the_request_open(dx: &Dx) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, "250.00").await;
    refund_of(dx, &e2e, 20_000).await;
    let (id, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let before = balance(dx, "@maria");
    let over = post(
        dx,
        &format!("/v1/dict/refund-requests/{id}/close"),
        json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {}}),
    )
    .await;
    assert_eq!(over.status(), 422);
    assert_eq!(error_code(over).await, "PIX-0443", "only 50.00 is left to return");
    assert_eq!(balance(dx, "@maria"), before, "nothing more held");
    let stored = dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await;
    assert_eq!(stored["status"], "OPEN");
    assert!(stored["refundId"].is_null());
    assert_eq!(at_btg(dx, &btg_id).await["status"], "OPEN");
    assert_eq!(dx.app.db.store.refunds_of_transfer(dx.tenant.id, cashin_id(dx, &e2e).await).await.unwrap().len(), 1);

    // What is left can still be returned: the request is closed with it.
    let partial = post(
        dx,
        &format!("/v1/dict/refund-requests/{id}/close"),
        json!({"refundAnalysisResult": "PARTIALLY_ACCEPTED", "createRefund": {"amount": "50.00"}}),
    )
    .await;
    assert_eq!(partial.status(), 200);
    assert_eq!(balance(dx, "@maria").0, before.0 - 5_000);
}

async fn a_refund_btg_has_not_accepted_leaves_the_request_open_until_it_is(dx: &Dx) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, "250.00").await;
    let (id, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let close_path = format!("/v1/dict/refund-requests/{id}/close");
    let create = json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {}});
    // BTG's answers to reversals are lost: whether it took the pacs.004 is unknown.
    dx.control(
        Method::POST,
        "/_control/faults",
        json!({"upstream": "btg", "pathPrefix": "/pix/payments/", "method": "POST", "kind": {"type": "status", "status": 503}}),
    )
    .await;
    let pending = post(dx, &close_path, create.clone()).await;
    assert_eq!(pending.status(), 409);
    assert_eq!(error_code(pending).await, "PIX-0207");
    let stored = dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await;
    assert_eq!(stored["status"], "OPEN");
    let refund = our_refund(dx, stored["refundId"].as_str().expect("linked at once, so a retry finds it")).await;
    assert_eq!(refund.status(), RefundStatus::Pending);
    assert_eq!(balance(dx, "@maria").1, 10_000, "held, not released on an unknown answer");
    assert_eq!(at_btg(dx, &btg_id).await["status"], "OPEN", "DICT was not called");

    // The same close again reuses the refund: never a second one.
    let retried = post(dx, &close_path, create.clone()).await;
    assert_eq!(error_code(retried).await, "PIX-0207");
    assert_eq!(dx.app.db.store.refunds_of_transfer(dx.tenant.id, refund.transfer_id).await.unwrap().len(), 1);
    let by_id = post(dx, &close_path, json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundId": refund.id})).await;
    assert_eq!(error_code(by_id).await, "PIX-0204", "a PENDING refund has no return id to send");

    // BTG answers again; the sweeper finishes the refund (same idempotency key at BTG).
    dx.control(Method::DELETE, "/_control/faults", json!({})).await;
    dx.advance(300);
    pix_app::transfers::sweeper::sweep_once(&dx.app.state.app).await.unwrap();
    let refund = our_refund(dx, &refund.id.to_string()).await;
    assert_eq!(refund.status(), RefundStatus::Processing);
    let closed =
        post(dx, &close_path, json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "refundId": refund.id})).await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["refundId"], refund.id.to_string());
    assert_eq!(at_btg(dx, &btg_id).await["refundEndToEndId"], refund.return_end_to_end_id().unwrap());
    assert_eq!(dx.app.db.store.refunds_of_transfer(dx.tenant.id, refund.transfer_id).await.unwrap().len(), 1);
}

async fn concurrent_closes_create_one_refund(dx: &Dx) {
    let key = dx.create_entry("@maria", json!({"keyType": "EVP"})).await["key"].clone();
    let e2e = cash_in(dx, &key, "250.00").await;
    let (id, btg_id) = refund_request_against_us(dx, &e2e, "100.00").await;
    let (before, _) = balance(dx, "@maria");
    let close_path = format!("/v1/dict/refund-requests/{id}/close");
    let body = json!({"refundAnalysisResult": "TOTALLY_ACCEPTED", "createRefund": {}});
    let (a, b) = tokio::join!(post(dx, &close_path, body.clone()), post(dx, &close_path, body.clone()));
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    assert!(statuses.contains(&200), "{statuses:?}");
    let refunds = dx.app.db.store.refunds_of_transfer(dx.tenant.id, cashin_id(dx, &e2e).await).await.unwrap();
    assert_eq!(refunds.len(), 1, "one refund for one request, however many closes race");
    assert_eq!(balance(dx, "@maria").0, before - 10_000, "the funds left once");
    let stored = dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await;
    assert_eq!(stored["refundId"], refunds[0].id.to_string());
    assert_eq!(at_btg(dx, &btg_id).await["refundEndToEndId"], refunds[0].return_end_to_end_id().unwrap());
    // What makes it so when both get past the lookup: a second live refund of the request is
    // refused by the store (the engine then reuses the first, nothing held).
    let mut twin = refunds[0].clone();
    twin.id = uuid::Uuid::new_v4();
    twin.state = RefundState::Outgoing(OutgoingRefund::New);
    let mut tx = dx.app.db.store.begin().await.unwrap();
    let refused = pix_store::refunds::insert_refund(&mut tx, &twin).await;
    assert!(matches!(refused, Err(pix_store::StoreError::Conflict(_))), "{refused:?}");
}

/// The OpenAPI body of the close carries the link fields with the handler's limits.
#[test]
fn the_close_schema_carries_the_link_fields() {
    let doc = serde_json::to_value(pix_server::app::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let close = &schemas["CloseRefundRequest"]["properties"];
    assert_eq!(close["refundId"]["format"], "uuid", "{close}");
    assert_eq!(close["refundTransactionId"]["pattern"], r"^D[0-9]{20}[A-Za-z0-9]{11}$");
    let create = serde_json::to_string(&close["createRefund"]).unwrap();
    assert!(create.contains("MedRefundCreate"), "{create}");
    let amount = &schemas["MedRefundCreate"]["properties"]["amount"];
    assert_eq!(amount["pattern"], r"^[0-9]{1,15}(\.[0-9]{1,2})?$", "{amount}");
}

/// Maria pays Ana at another bank, then asks the funds back (MED, operational flaw): DICT closes
/// the request with a return id, BTG delivers that return, and the request links the refund
/// (type CASHIN) that received it. A second request is withdrawn while OPEN.
async fn a_request_we_file_links_the_return_we_receive_and_can_be_cancelled(dx: &Dx) {
    let e2e = settled_cash_out(dx).await;
    let transfer =
        dx.app.db.store.transfer_by_end_to_end_id(dx.tenant.id, Direction::Cashout, &e2e).await.unwrap().unwrap().id;

    let body = json!({"transactionId": e2e, "amount": "80.00", "reason": "OPERATIONAL_FLAW", "refundDetails": "sent twice by our app"});
    let request: Value = post(dx, "/v1/dict/refund-requests", body.clone()).await.json().await.unwrap();
    let id = request["id"].as_str().unwrap().to_owned();
    assert_eq!((request["role"].as_str(), request["status"].as_str()), (Some("REQUESTING"), Some("OPEN")));
    assert!(request["refundId"].is_null());
    // The simulated contested participant accepts after a day and returns the funds.
    dx.advance(DAY + 60);
    eventually("the return is linked", || async {
        dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await["refundId"].is_string()
    })
    .await;
    let linked = dx.get_json(&format!("/v1/dict/refund-requests/{id}")).await;
    assert_eq!(linked["status"], "CLOSED");
    let received: Value = dx
        .as_account(Method::GET, &format!("/v1/refunds/{}", linked["refundId"].as_str().unwrap()), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["type"], "CASHIN");
    assert_eq!(received["returnEndToEndId"], linked["refundTransactionId"], "the return DICT named");
    assert_eq!(received["transferId"], json!(transfer.to_string()));
    let by_link =
        dx.get_json(&format!("/v1/dict/refund-requests?refund_id={}", linked["refundId"].as_str().unwrap())).await;
    assert_eq!(by_link["total"], 1);
    let last = outbound_events(dx, "REFUND").await.pop().unwrap();
    assert_eq!(last["payload"]["refundId"], linked["refundId"], "the REFUND event carries the link");

    // Cancel: only OPEN requests of ours; a repeat answers the same.
    let closed_cancel = post(dx, &format!("/v1/dict/refund-requests/{id}/cancel"), json!({})).await;
    assert_eq!(error_code(closed_cancel).await, "PIX-0204");
    let second: Value = post(dx, "/v1/dict/refund-requests", body).await.json().await.unwrap();
    let second_id = second["id"].as_str().unwrap();
    let cancelled = post(dx, &format!("/v1/dict/refund-requests/{second_id}/cancel"), json!({})).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "CANCELLED");
    let again: Value =
        post(dx, &format!("/v1/dict/refund-requests/{second_id}/cancel"), json!({})).await.json().await.unwrap();
    assert_eq!(again["status"], "CANCELLED");
    let at_dict =
        dx.btg(Method::GET, &format!("/dict/refunds/{}", second["bacenRefundId"].as_str().unwrap()), None).await;
    assert_eq!(at_dict.json::<Value>().await.unwrap()["status"], "CANCELLED", "withdrawn at DICT too");
    let unknown = post(dx, &format!("/v1/dict/refund-requests/{}/cancel", uuid::Uuid::new_v4()), json!({})).await;
    assert_eq!(error_code(unknown).await, "PIX-0203");
}
