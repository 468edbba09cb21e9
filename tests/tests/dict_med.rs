//! MED records: fraud markers (cursor paging), infraction reports (the deprecated create, both
//! roles, close with a fraud marker), refund requests (both roles, close), their outbound events.

#[macro_use]
mod dict_common;

use dict_common::{Dx, deliver, eventually, outbound_events};
use pix_e2e::error_code;
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    fraud_markers_are_registered_listed_by_cursor_and_cancelled,
    reports_and_refund_requests_we_file_follow_dict,
    reports_and_refund_requests_against_us_are_answered,
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

    let cancelled = post(dx, &format!("/v1/dict/fraud-markers/{}/cancel", ids[0]), json!({})).await;
    assert_eq!(cancelled.json::<Value>().await.unwrap()["status"], "CANCELLED");
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
