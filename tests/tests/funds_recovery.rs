//! MED 2.0 funds recoveries: the eight endpoints and the list, every validation rule of the
//! spec's table, the lifecycle driven by the simulated DICT (with the outbound FUNDS_RECOVERY and
//! FUNDS_RECOVERY_EVENT events in order), the refused moves, redelivered and reordered BTG events,
//! ownership, and `fundRecoveryId` on the linked reports and refund requests.

#[macro_use]
mod dict_common;

use dict_common::{Dx, deliver, deliver_as, eventually, outbound_events, settled_cash_out};
use pix_e2e::error_code;
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    every_rule_of_the_table_is_enforced,
    a_recovery_goes_from_created_to_completed,
    cancel_and_ownership,
    redelivered_and_reordered_events_change_nothing,
);

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const BASE: &str = "/v1/dict/funds-recoveries";

fn body(root: &str) -> Value {
    json!({"rootTransactionId": root, "situationType": "SCAM",
           "contactInformation": {"email": "fraud-ops@example.com", "phone": "+5511999999999"},
           "reportDetails": "customer reported an unauthorized Pix",
           "trackingGraphParameters": {"minTransactionAmount": "10.00", "maxTransactions": 100, "hopWindow": "PT24H", "maxHops": 5}})
}

async fn call(dx: &Dx, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = dx.as_account(method, path, "@maria");
    if let Some(b) = body {
        request = request.json(&b);
    }
    request.send().await.unwrap()
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status();
    let value: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{value}");
    value
}

async fn create(dx: &Dx, root: &str) -> Value {
    json_of(call(dx, Method::POST, BASE, Some(body(root))).await, 201).await
}

async fn get(dx: &Dx, id: &str) -> Value {
    json_of(call(dx, Method::GET, &format!("{BASE}/{id}"), None).await, 200).await
}

async fn wait_status(dx: &Dx, id: &str, status: &str) -> Value {
    eventually(status, || async { get(dx, id).await["status"] == status }).await;
    get(dx, id).await
}

/// The statuses of the recovery's FUNDS_RECOVERY events, in order.
async fn recovery_statuses(dx: &Dx, id: &str) -> Vec<String> {
    outbound_events(dx, "FUNDS_RECOVERY")
        .await
        .iter()
        .filter(|e| e["payload"]["id"] == id)
        .map(|e| e["payload"]["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn lifecycle_events(dx: &Dx) -> Vec<Value> {
    outbound_events(dx, "FUNDS_RECOVERY_EVENT").await.into_iter().map(|e| e["payload"].clone()).collect()
}

async fn every_rule_of_the_table_is_enforced(dx: &Dx) {
    let root = settled_cash_out(dx).await;
    let with = |path: &[&str], value: Value| {
        let mut b = body(&root);
        let mut target = &mut b;
        for p in &path[..path.len() - 1] {
            target = &mut target[*p];
        }
        match value {
            Value::Null => {
                target.as_object_mut().unwrap().remove(path[path.len() - 1]);
            }
            v => target[path[path.len() - 1]] = v,
        }
        b
    };
    let long = "x".repeat(2001);
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(&["rootTransactionId"], Value::Null), "PIX-0003", "rootTransactionId"),
        (with(&["rootTransactionId"], json!("E123")), "PIX-0004", "rootTransactionId"),
        (with(&["rootTransactionId"], json!(format!("{}-", &root[..31]))), "PIX-0004", "rootTransactionId"),
        (with(&["situationType"], Value::Null), "PIX-0003", "situationType"),
        (with(&["situationType"], json!("BURGLARY")), "PIX-0004", "situationType"),
        (with(&["contactInformation"], Value::Null), "PIX-0003", "contactInformation"),
        (with(&["contactInformation"], json!({})), "PIX-0003", "contactInformation"),
        (with(&["contactInformation", "email"], json!("not-an-email")), "PIX-0004", "contactInformation.email"),
        (with(&["contactInformation", "phone"], json!("11999999999")), "PIX-0004", "contactInformation.phone"),
        (with(&["contactInformation", "phone"], json!("+0511999999")), "PIX-0004", "contactInformation.phone"),
        (with(&["trackingGraphParameters", "minTransactionAmount"], json!("0.00")), "PIX-0004", "minTransactionAmount"),
        (
            with(&["trackingGraphParameters", "minTransactionAmount"], json!("-5.00")),
            "PIX-0004",
            "minTransactionAmount",
        ),
        (
            with(&["trackingGraphParameters", "minTransactionAmount"], json!("10.001")),
            "PIX-0004",
            "minTransactionAmount",
        ),
        (with(&["trackingGraphParameters", "maxTransactions"], json!(0)), "PIX-0004", "maxTransactions"),
        (with(&["trackingGraphParameters", "maxTransactions"], json!(1001)), "PIX-0004", "maxTransactions"),
        (with(&["trackingGraphParameters", "hopWindow"], json!("24 hours")), "PIX-0004", "hopWindow"),
        (with(&["trackingGraphParameters", "hopWindow"], json!("PT0S")), "PIX-0004", "hopWindow"),
        (with(&["trackingGraphParameters", "hopWindow"], json!("P91D")), "PIX-0004", "hopWindow"),
        (with(&["trackingGraphParameters", "maxHops"], json!(0)), "PIX-0004", "maxHops"),
        (with(&["trackingGraphParameters", "maxHops"], json!(11)), "PIX-0004", "maxHops"),
        (with(&["reportDetails"], json!(long)), "PIX-0004", "reportDetails"),
        (with(&["situationType"], json!("OTHER")).tap_remove("reportDetails"), "PIX-0003", "reportDetails"),
        (with(&["surprise"], json!(1)), "PIX-0006", "surprise"),
    ];
    for (b, code, field) in cases {
        let response = call(dx, Method::POST, BASE, Some(b.clone())).await;
        assert_eq!(response.status(), 400, "{b}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], code, "{b}: {error}");
        assert!(error["message"].as_str().unwrap().contains(field), "{b}: the message names {field}: {error}");
    }
    // The boundaries are accepted (the last case then creates the recovery).
    let edge = with(
        &["trackingGraphParameters"],
        json!({"minTransactionAmount": "0.01", "maxTransactions": 1000,
        "hopWindow": "P90D", "maxHops": 10}),
    );
    let mut edge = edge;
    edge["situationType"] = json!("UNKNOWN");
    edge["contactInformation"] = json!({"phone": "+5511999999999"});
    let created = json_of(call(dx, Method::POST, BASE, Some(edge)).await, 201).await;
    assert_eq!(created["trackingGraphParameters"]["hopWindow"], "P90D");
    assert_eq!(created["contactInformation"], json!({"email": null, "phone": "+5511999999999"}));

    // The root: one of the account's settled cash-outs, with no recovery open.
    let again = call(dx, Method::POST, BASE, Some(body(&root))).await;
    assert_eq!(error_code(again).await, "PIX-0214");
    let foreign = call(dx, Method::POST, BASE, Some(body("E87654321202601011200abcdefghijk"))).await;
    assert_eq!(error_code(foreign).await, "PIX-0035");
    let other_account = dx.as_account(Method::POST, BASE, "@joao").json(&body(&root)).send().await.unwrap();
    assert_eq!(error_code(other_account).await, "PIX-0035", "Maria's cash-out is not João's to recover");
    let no_account = dx.call(Method::POST, BASE).json(&body(&root)).send().await.unwrap();
    assert_eq!(error_code(no_account).await, "PIX-0001");
}

trait TapRemove {
    fn tap_remove(self, field: &str) -> Self;
}

impl TapRemove for Value {
    fn tap_remove(mut self, field: &str) -> Value {
        self.as_object_mut().unwrap().remove(field);
        self
    }
}

async fn a_recovery_goes_from_created_to_completed(dx: &Dx) {
    let root = settled_cash_out(dx).await;
    let created = create(dx, &root).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "CREATED");
    assert_eq!(created["rootTransactionId"], root);
    assert_eq!(created["accountId"], dx.account("@maria"));
    assert_eq!(created["reporterParticipant"], "12345678");
    assert_eq!(created["externalId"], created["bacenFundsRecoveryId"]);
    assert_eq!(created["trackingGraphParameters"]["hopWindow"], "P1D", "PT24H, canonical");
    assert_eq!(get(dx, &id).await, created);

    let list = dx
        .as_account(Method::GET, BASE, "@maria")
        .query(&[("status", "CREATED"), ("situation_type", "SCAM"), ("root_transaction_id", root.as_str())])
        .send()
        .await
        .unwrap();
    let list = json_of(list, 200).await;
    assert_eq!((list["total"].clone(), list["items"][0]["id"].clone()), (json!(1), json!(id)));
    assert_eq!(
        dx.as_account(Method::GET, &format!("{BASE}?status=COMPLETED"), "@maria")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["total"],
        0
    );
    for query in [
        "status=DONE",
        "situation_type=BURGLARY",
        "sort_order=up",
        "modified_after=yesterday",
        "limit=0",
        "root_transaction_id=E1",
    ] {
        let r = call(dx, Method::GET, &format!("{BASE}?{query}"), None).await;
        assert_eq!(error_code(r).await, "PIX-0004", "{query}");
    }

    // PATCH: the situation changes to OTHER, which needs details (it has them).
    let patched = call(
        dx,
        Method::PATCH,
        &format!("{BASE}/{id}"),
        Some(json!({"situationType": "OTHER",
        "contactInformation": {"email": "ops@example.com"}})),
    )
    .await;
    let patched = json_of(patched, 200).await;
    assert_eq!(patched["situationType"], "OTHER");
    assert_eq!(patched["contactInformation"], json!({"email": "ops@example.com", "phone": null}));
    for (b, code) in [
        (json!({}), "PIX-0003"),
        (json!({"situationType": "BURGLARY"}), "PIX-0004"),
        (json!({"contactInformation": {"phone": "123"}}), "PIX-0004"),
    ] {
        assert_eq!(
            error_code(call(dx, Method::PATCH, &format!("{BASE}/{id}"), Some(b.clone())).await).await,
            code,
            "{b}"
        );
    }

    let graph = call(dx, Method::GET, &format!("{BASE}/{id}/tracking-graph"), None).await;
    assert_eq!(error_code(graph).await, "PIX-0117", "DICT builds the graph once TRACKED");
    let refund = call(dx, Method::POST, &format!("{BASE}/{id}/refund"), None).await;
    assert_eq!(error_code(refund).await, "PIX-0211", "refund refused before ANALYSED");

    dx.advance(61);
    wait_status(dx, &id, "TRACKED").await;
    let graph = json_of(call(dx, Method::GET, &format!("{BASE}/{id}/tracking-graph"), None).await, 200).await;
    let first = &graph["transactions"][0];
    assert_eq!(first["id"], root);
    assert_eq!((first["amount"].clone(), first["refundableAmount"].clone()), (json!("80.00"), json!("80.00")));
    let creditor =
        graph["accounts"].as_array().unwrap().iter().find(|a| a["id"] == first["creditorAccountId"]).unwrap();
    assert_eq!(creditor["participant"], dx.app.sandbox.data.other_participant.ispb);
    assert_eq!(graph["parameters"]["maxHops"], 5);
    assert_eq!(graph["persons"].as_array().unwrap().len(), 3);

    dx.advance(HOUR);
    wait_status(dx, &id, "AWAITING_ANALYSIS").await;
    // DICT opened the root report (we report it), linked to the recovery by our id.
    let reports = json_of(call(dx, Method::GET, &format!("{BASE}/{id}/infraction-reports"), None).await, 200).await;
    let report = &reports["infractionReports"][0];
    assert_eq!((report["role"].clone(), report["transactionId"].clone()), (json!("REPORTER"), json!(root)));
    assert_eq!(report["fundRecoveryId"], id);
    let filtered = dx.get_json(&format!("/v1/dict/infraction-reports?fund_recovery_id={id}")).await;
    assert_eq!(filtered["total"], 1);
    assert_eq!(dx.get_json("/v1/dict/infraction-reports?fund_recovery_id=other").await["total"], 0);
    let report_id = report["id"].as_str().unwrap();
    let cancel_report =
        dx.call(Method::POST, &format!("/v1/dict/infraction-reports/{report_id}/cancel")).send().await.unwrap();
    assert_eq!(error_code(cancel_report).await, "PIX-0202", "a recovery's report is not cancelled alone");

    dx.advance(DAY);
    wait_status(dx, &id, "ANALYSED").await;
    let refunding = json_of(call(dx, Method::POST, &format!("{BASE}/{id}/refund"), None).await, 200).await;
    assert_eq!(refunding["status"], "REFUNDING");
    let cancel = call(dx, Method::POST, &format!("{BASE}/{id}/cancel"), None).await;
    assert_eq!(error_code(cancel).await, "PIX-0211", "cancel refused from REFUNDING on");
    eventually("the refund request recorded", || async {
        dx.get_json(&format!("/v1/dict/refund-requests?fund_recovery_id={id}")).await["total"] == 1
    })
    .await;
    let refunds = json_of(call(dx, Method::GET, &format!("{BASE}/{id}/refunds"), None).await, 200).await;
    let request = &refunds["refunds"][0];
    assert_eq!((request["role"].clone(), request["status"].clone()), (json!("REQUESTING"), json!("OPEN")));
    assert_eq!((request["transactionId"].clone(), request["amount"].clone()), (json!(root), json!("80.00")));
    assert_eq!(request["fundRecoveryId"], id);

    dx.advance(DAY + 60);
    let done = wait_status(dx, &id, "COMPLETED").await;
    let cancel = call(dx, Method::POST, &format!("{BASE}/{id}/cancel"), None).await;
    assert_eq!(error_code(cancel).await, "PIX-0211");
    let patch = call(dx, Method::PATCH, &format!("{BASE}/{id}"), Some(json!({"situationType": "SCAM"}))).await;
    assert_eq!(error_code(patch).await, "PIX-0211", "a final recovery does not change");
    // The request's DICT_REFUND event may be handled after the recovery's.
    eventually("the refund request closed accepted", || async {
        let refunds = json_of(call(dx, Method::GET, &format!("{BASE}/{id}/refunds"), None).await, 200).await;
        refunds["refunds"][0]["analysisResult"] == "TOTALLY_ACCEPTED"
    })
    .await;

    // One FUNDS_RECOVERY per change, the last one the entity as it stands.
    let mut notices = Vec::new();
    for _ in 0..750 {
        notices = lifecycle_events(dx).await;
        if notices.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        recovery_statuses(dx, &id).await,
        ["CREATED", "CREATED", "TRACKED", "AWAITING_ANALYSIS", "ANALYSED", "REFUNDING", "COMPLETED"]
    );
    let events = outbound_events(dx, "FUNDS_RECOVERY").await;
    let last = &events.last().unwrap()["payload"];
    assert_eq!(last["updatedAt"], done["updatedAt"]);
    assert_eq!(last["externalId"], created["externalId"]);
    assert_eq!(events.last().unwrap()["flowType"], "DICT");
    let kinds: Vec<&str> = notices.iter().map(|n| n["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["FUNDS_RECOVERY_INFORMATION_UPDATED", "FUNDS_RECOVERY_ANALYSED", "FUNDS_RECOVERY_COMPLETED"],
        "{notices:?} {:?}",
        dx.app.sandbox.handle.deliveries().iter().filter(|d| d.event.starts_with("FUNDS")).collect::<Vec<_>>()
    );
    assert!(notices.iter().all(|n| n["entityId"] == id && n["entityType"] == "FUNDS_RECOVERY"));
}

async fn cancel_and_ownership(dx: &Dx) {
    let root = settled_cash_out(dx).await;
    let id = create(dx, &root).await["id"].as_str().unwrap().to_owned();
    dx.advance(61);
    wait_status(dx, &id, "TRACKED").await;
    let cancelled = json_of(call(dx, Method::POST, &format!("{BASE}/{id}/cancel"), None).await, 200).await;
    assert_eq!(cancelled["status"], "CANCELLED");
    let again = call(dx, Method::POST, &format!("{BASE}/{id}/cancel"), None).await;
    assert_eq!(error_code(again).await, "PIX-0211");
    // DICT cancelled the root report with it.
    eventually("the report CANCELLED", || async {
        dx.get_json(&format!("/v1/dict/infraction-reports?fund_recovery_id={id}")).await["items"][0]["status"]
            == "CANCELLED"
    })
    .await;
    eventually("CANCELLED notified", || async { lifecycle_events(dx).await.len() == 1 }).await;
    assert_eq!(lifecycle_events(dx).await[0]["event"], "FUNDS_RECOVERY_CANCELLED");
    assert_eq!(recovery_statuses(dx, &id).await, ["CREATED", "TRACKED", "CANCELLED"], "BTG's echo adds nothing");
    // A new recovery of the same root is allowed once the first is final.
    create(dx, &root).await;

    // Someone else's recovery is not found, whatever the route.
    let other = dx.app.tenant("other").await;
    let joao = dx.account("@joao");
    let paths = ["", "/tracking-graph", "/infraction-reports", "/refunds"];
    for path in paths {
        let as_other = dx
            .app
            .request(Method::GET, &format!("{BASE}/{id}{path}"), &other.token)
            .header("X-Account-Id", dx.account("@maria"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(as_other).await, "PIX-0210", "another tenant: {path}");
        let as_joao =
            dx.call(Method::GET, &format!("{BASE}/{id}{path}")).header("X-Account-Id", &joao).send().await.unwrap();
        assert_eq!(error_code(as_joao).await, "PIX-0210", "another account: {path}");
        let malformed = call(dx, Method::GET, &format!("{BASE}/nope{path}"), None).await;
        assert_eq!(error_code(malformed).await, "PIX-0212", "{path}");
    }
    for (method, path) in [(Method::POST, "/cancel"), (Method::POST, "/refund"), (Method::PATCH, "")] {
        let as_other = dx
            .app
            .request(method, &format!("{BASE}/{id}{path}"), &other.token)
            .header("X-Account-Id", dx.account("@maria"))
            .json(&json!({"situationType": "SCAM"}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(as_other).await, "PIX-0210", "another tenant: {path}");
    }
    let list = dx
        .app
        .request(Method::GET, BASE, &other.token)
        .header("X-Account-Id", dx.account("@maria"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
}

async fn redelivered_and_reordered_events_change_nothing(dx: &Dx) {
    let root = settled_cash_out(dx).await;
    let created = create(dx, &root).await;
    let (id, btg_id) = (created["id"].as_str().unwrap().to_owned(), created["externalId"].as_str().unwrap().to_owned());
    let remote = |status: &str, updated: chrono::DateTime<chrono::Utc>| {
        json!({"id": btg_id, "rootEndToEndId": root, "situationType": "SCAM", "status": status,
               "reporterParticipant": "12345678", "reportDetails": "customer reported an unauthorized Pix",
               "contactInformation": {"email": "fraud-ops@example.com", "phone": "+5511999999999"},
               "createdAt": dx.now(), "updatedAt": updated})
    };
    let t = dx.now();
    deliver_as(dx, "analysed-1", "FUNDS_RECOVERY", remote("ANALYSED", t + chrono::Duration::hours(2))).await;
    wait_status(dx, &id, "ANALYSED").await;
    // An older TRACKED arrives late, and the ANALYSED one again (a new delivery and a redelivery).
    deliver(dx, "FUNDS_RECOVERY", remote("TRACKED", t + chrono::Duration::hours(1))).await;
    deliver(dx, "FUNDS_RECOVERY", remote("ANALYSED", t + chrono::Duration::hours(2))).await;
    deliver_as(dx, "analysed-1", "FUNDS_RECOVERY", remote("ANALYSED", t + chrono::Duration::hours(2))).await;
    let notice = json!({"id": "10001", "event": "FUNDS_RECOVERY_ANALYSED", "entityType": "FUNDS_RECOVERY",
                        "entityId": btg_id, "timestamp": t});
    deliver_as(dx, "notice-1", "FUNDS_RECOVERY_EVENTS", notice.clone()).await;
    deliver_as(dx, "notice-1", "FUNDS_RECOVERY_EVENTS", notice).await;
    // The redelivery was refused at ingestion (same webhook id), so once one passed none follows.
    eventually("the notification passed through", || async { lifecycle_events(dx).await.len() == 1 }).await;
    // A marker delivered last: once it is processed, everything before it was.
    let unknown = json!({"id": "10002", "event": "FUNDS_RECOVERY_COMPLETED", "entityType": "FUNDS_RECOVERY",
                         "entityId": "not-ours", "timestamp": t});
    deliver(dx, "FUNDS_RECOVERY_EVENTS", unknown).await;
    let marker = json!({"id": "10003", "event": "FUNDS_RECOVERY_INFORMATION_UPDATED", "entityType": "FUNDS_RECOVERY",
                        "entityId": btg_id, "timestamp": t});
    deliver(dx, "FUNDS_RECOVERY_EVENTS", marker).await;
    eventually("the marker passed through", || async { lifecycle_events(dx).await.len() >= 2 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(get(dx, &id).await["status"], "ANALYSED", "an older TRACKED does not move it back");
    assert_eq!(recovery_statuses(dx, &id).await, ["CREATED", "ANALYSED"], "nothing new, nothing recorded");
    let notices = lifecycle_events(dx).await;
    // (Recorded in arrival order, by the host's clock, which this test does not move: compare as a set.)
    let mut ids: Vec<&str> = notices.iter().map(|n| n["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["10001", "10003"], "a redelivered notification passes once; another recovery's is dropped");
    assert!(notices.iter().all(|n| n["entityId"] == id), "named by our id");

    // Information changes only from a newer BTG version; a cancellation after REFUNDING is ignored.
    let mut newer = remote("REFUNDING", t + chrono::Duration::hours(3));
    newer["situationType"] = json!("COERCION");
    deliver(dx, "FUNDS_RECOVERY", newer).await;
    wait_status(dx, &id, "REFUNDING").await;
    assert_eq!(get(dx, &id).await["situationType"], "COERCION");
    let mut stale = remote("CANCELLED", t + chrono::Duration::hours(1));
    stale["situationType"] = json!("SCAM");
    deliver(dx, "FUNDS_RECOVERY", stale).await;
    deliver(
        dx,
        "FUNDS_RECOVERY_EVENTS",
        json!({"id": "10004", "event": "FUNDS_RECOVERY_CANCELLED",
        "entityType": "FUNDS_RECOVERY", "entityId": btg_id, "timestamp": t}),
    )
    .await;
    eventually("the last marker", || async { lifecycle_events(dx).await.len() == 3 }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let now = get(dx, &id).await;
    assert_eq!((now["status"].clone(), now["situationType"].clone()), (json!("REFUNDING"), json!("COERCION")));
    assert_eq!(recovery_statuses(dx, &id).await, ["CREATED", "ANALYSED", "REFUNDING"]);
}
