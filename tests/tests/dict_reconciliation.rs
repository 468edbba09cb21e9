//! Reconciliation: the scheduled VSync comparison, drift introduced in the simulated DICT behind
//! the host's back (entries removed, modified, added, and one for an account we do not know), the
//! full reconciliation that repairs it, and the counts recorded on the job.

#[macro_use]
mod dict_common;

use dict_common::{Dx, deliver, eventually, outbound_events};
use pix_e2e::error_code;
use pix_server::dict::run_scheduled_vsync_checks;
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    drift_in_dict_is_detected_repaired_and_counted,
    an_entry_keyed_by_another_request_id_takes_dicts,
    reconciliation_queries_are_validated
);

async fn statuses(dx: &Dx) -> Vec<(String, String)> {
    let page = dx.get_json("/v1/dict/vsync").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["keyType"].as_str().unwrap().to_owned(), v["lastSyncStatus"].as_str().unwrap().to_owned()))
        .collect()
}

/// Runs the scheduled check and lets DICT deliver the CID files (ready 2 simulated seconds later).
async fn scheduled_check(dx: &Dx) {
    dx.app.clock.advance(chrono::Duration::seconds(301));
    run_scheduled_vsync_checks(&dx.dict).await;
    dx.advance(3);
    eventually("every EVENT_SYNC job completed", || async {
        let page = dx.get_json("/v1/dict/reconciliation?job_type=EVENT_SYNC&status=COMPLETED&limit=100").await;
        let waiting = dx.get_json("/v1/dict/reconciliation?job_type=EVENT_SYNC&status=WAITING_FILE").await;
        page["total"].as_i64().unwrap() > 0 && waiting["total"] == 0
    })
    .await;
}

async fn drift_in_dict_is_detected_repaired_and_counted(dx: &Dx) {
    let removed = dx.create_entry("@maria", json!({"keyType": "EMAIL", "key": "removed@example.com"})).await;
    let modified = dx.create_entry("@maria", json!({"keyType": "EMAIL", "key": "modified@example.com"})).await;
    dx.create_entry("@joao", json!({"keyType": "EMAIL", "key": "kept@example.com"})).await;
    dx.create_entry("@acme", json!({"keyType": "CNPJ"})).await;

    scheduled_check(dx).await;
    let all = statuses(dx).await;
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|(_, s)| s == "SYNCED"), "entries created through the host agree with DICT: {all:?}");
    let email = dx.vsync("EMAIL").await;
    assert_eq!(email["localVSync"], email["remoteVSync"]);
    let nothing = dx.call(Method::POST, "/v1/dict/reconciliation/full").send().await.unwrap();
    assert_eq!(nothing.status(), 200, "nothing to reconcile");
    let nothing: Value = nothing.json().await.unwrap();
    assert_eq!(nothing["jobs"], json!([]));
    assert_eq!(nothing["skippedKeyTypes"].as_array().unwrap().len(), 5);

    // Drift behind the host's back: one entry deleted, one moved to another branch.
    let deleted = dx.btg(Method::DELETE, "/dict/entries/removed@example.com?reason=RECONCILIATION", None).await;
    assert_eq!(deleted.status(), 204);
    let maria = dx.app.sandbox.data.accounts.iter().find(|a| a.alias == "@maria").unwrap().clone();
    let moved = dx
        .btg(
            Method::PUT,
            "/dict/entries/modified@example.com",
            Some(json!({"account": {"branch": "0009", "number": maria.number, "type": "CACC"}, "owner": {"name": maria.name}, "reason": "BRANCH_TRANSFER"})),
        )
        .await;
    assert_eq!(moved.status(), 200);

    scheduled_check(dx).await;
    let email = dx.vsync("EMAIL").await;
    assert_eq!(email["lastSyncStatus"], "OUT_OF_SYNC", "the worker detects the drift");
    assert_ne!(email["localVSync"], email["remoteVSync"]);
    assert_eq!(dx.vsync("CNPJ").await["lastSyncStatus"], "SYNCED");

    let started = dx.call(Method::POST, "/v1/dict/reconciliation/full").send().await.unwrap();
    assert_eq!(started.status(), 202);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(started["jobs"][0]["keyType"], "EMAIL");
    assert_eq!(started["jobs"][0]["status"], "WAITING_FILE");
    let job_id = started["jobs"][0]["jobId"].as_str().unwrap().to_owned();
    assert_eq!(dx.vsync("EMAIL").await["lastSyncStatus"], "RECONCILING");
    let busy: Value = dx.call(Method::POST, "/v1/dict/reconciliation/full").send().await.unwrap().json().await.unwrap();
    assert_eq!(busy["jobs"], json!([]), "one full reconciliation per key type at a time");

    dx.advance(3);
    eventually("the full reconciliation completes", || async {
        let page = dx.get_json("/v1/dict/reconciliation?job_type=FULL_RECONCILIATION").await;
        page["items"][0]["status"] == "COMPLETED"
    })
    .await;
    let page = dx.get_json("/v1/dict/reconciliation?job_type=FULL_RECONCILIATION&key_type=EMAIL").await;
    let job = &page["items"][0];
    assert_eq!(job["id"], json!(job_id));
    assert_eq!(job["totalItems"], 2);
    assert_eq!(job["processedItems"], 2);
    assert_eq!(job["entriesRemoved"], 1);
    assert_eq!(job["entriesRepaired"], 1);
    assert_eq!(job["orphanEntries"], 0);
    // Each status the job took is an outbound DICT_RECONCILIATION_JOB event, in order.
    let events = outbound_events(dx, "DICT_RECONCILIATION_JOB").await;
    let of_job: Vec<&str> = events
        .iter()
        .filter(|e| e["payload"]["id"] == json!(job_id))
        .map(|e| e["payload"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(of_job.first(), Some(&"WAITING_FILE"), "{of_job:?}");
    assert_eq!(of_job[of_job.len() - 2..], ["PROCESSING", "COMPLETED"], "{of_job:?}");
    let completed = events.iter().rfind(|e| e["payload"]["id"] == json!(job_id)).unwrap();
    assert_eq!(
        (completed["flowType"].as_str(), completed["payload"]["entriesRemoved"].as_i64()),
        (Some("DICT"), Some(1))
    );
    assert!(
        events.iter().any(|e| e["payload"]["jobType"] == "EVENT_SYNC"),
        "the scheduled checks' jobs are announced too"
    );
    let email = dx.vsync("EMAIL").await;
    assert_eq!(email["lastSyncStatus"], "SYNCED");
    assert_eq!(email["localVSync"], email["remoteVSync"], "local and DICT VSync match again");
    assert!(email["lastFullReconciliation"].is_string());

    let gone: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/entries/{}", removed["id"].as_str().unwrap()), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gone["status"], "INACTIVE");
    assert_eq!(gone["reason"], "RECONCILIATION");
    let repaired: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/entries/{}", modified["id"].as_str().unwrap()), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repaired["account"]["branch"], "0009");
    assert_eq!(repaired["reason"], "RECONCILIATION");

    // An entry added behind the host's back for one of our accounts: detected, resolved through
    // DICT's CID lookup, mapped to its Midaz account by CRM, and added locally.
    let added_request_id = uuid::Uuid::new_v4();
    let added = dx
        .btg(
            Method::POST,
            "/dict/entries",
            Some(json!({"keyType": "EMAIL", "key": "added@example.com", "reason": "USER_REQUESTED", "requestId": added_request_id,
                "account": {"participant": "12345678", "branch": maria.branch, "number": maria.number, "type": "CACC"},
                "owner": {"type": "NATURAL_PERSON", "taxIdNumber": maria.document, "name": maria.name}})),
        )
        .await;
    assert_eq!(added.status(), 201);
    scheduled_check(dx).await;
    assert_eq!(dx.vsync("EMAIL").await["lastSyncStatus"], "OUT_OF_SYNC");
    full_reconciliation(dx, 2).await;
    let latest = dx.get_json("/v1/dict/reconciliation?job_type=FULL_RECONCILIATION&sort_order=desc").await;
    let job = &latest["items"][0];
    assert_eq!(job["totalItems"], 3);
    assert_eq!(job["entriesAdded"], 1);
    assert_eq!((job["entriesRemoved"].as_i64(), job["entriesRepaired"].as_i64()), (Some(0), Some(0)));
    assert_eq!(job["orphanEntries"], 0);
    assert!(job["errorMessage"].is_null());
    let email = dx.vsync("EMAIL").await;
    assert_eq!(email["lastSyncStatus"], "SYNCED");
    assert_eq!(email["localVSync"], email["remoteVSync"], "the added entry carries DICT's CID");
    let listed = dx.get_json("/v1/dict/entries?key_value=added@example.com").await;
    assert_eq!(listed["total"], 1);
    let learnt = &listed["items"][0];
    assert_eq!(learnt["status"], "ACTIVE");
    assert_eq!(learnt["reason"], "RECONCILIATION");
    assert_eq!(learnt["accountId"], json!(maria.account_id), "mapped to the account CRM has for its branch and number");
    assert_eq!(learnt["account"]["number"], json!(maria.number));
    assert_eq!(learnt["owner"]["taxIdNumber"], json!(maria.document));
    assert_eq!(learnt["metadata"]["reconciliationJobId"], job["id"]);
    // The account owns it now: it can be read and deleted through the API like any other.
    let own: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/entries/{}", learnt["id"].as_str().unwrap()), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["key"], "added@example.com");

    // An entry at DICT for an account CRM does not know cannot be mapped: it is counted and
    // reported, and the job still completes.
    let stray = dx
        .btg(
            Method::POST,
            "/dict/entries",
            Some(json!({"keyType": "EMAIL", "key": "stray@example.com", "reason": "USER_REQUESTED", "requestId": uuid::Uuid::new_v4(),
                "account": {"participant": "12345678", "branch": "0001", "number": "999999", "type": "CACC"},
                "owner": {"type": "NATURAL_PERSON", "taxIdNumber": "39053344705", "name": "Carlos Lima"}})),
        )
        .await;
    assert_eq!(stray.status(), 201);
    scheduled_check(dx).await;
    full_reconciliation(dx, 3).await;
    let latest = dx.get_json("/v1/dict/reconciliation?job_type=FULL_RECONCILIATION&sort_order=desc").await;
    let job = &latest["items"][0];
    assert_eq!(job["status"], "COMPLETED");
    assert_eq!(job["orphanEntries"], 1);
    assert_eq!(job["entriesAdded"], 0);
    assert!(job["errorMessage"].as_str().unwrap().contains("1 CID(s)"));
    assert_eq!(dx.vsync("EMAIL").await["lastSyncStatus"], "ERROR", "a drift that cannot be repaired is reported");
    assert_eq!(dx.get_json("/v1/dict/entries?key_value=stray@example.com").await["total"], 0);
}

/// Starts a full reconciliation, lets DICT deliver the file and waits until `completed` full jobs
/// are done.
async fn full_reconciliation(dx: &Dx, completed: i64) {
    let started = dx.call(Method::POST, "/v1/dict/reconciliation/full").send().await.unwrap();
    assert_eq!(started.status(), 202);
    dx.advance(3);
    eventually("the full reconciliation completes", || async {
        let page = dx.get_json("/v1/dict/reconciliation?job_type=FULL_RECONCILIATION&status=COMPLETED").await;
        page["total"] == completed
    })
    .await;
}

/// A claim completed without us (we only hear its `DICT_CLAIM` event) leaves a local entry keyed
/// by a RequestId of our own, so its CID differs from DICT's although every attribute agrees: the
/// full reconciliation resolves DICT's CID and re-keys the entry.
async fn an_entry_keyed_by_another_request_id_takes_dicts(dx: &Dx) {
    let maria = dx.app.sandbox.data.accounts.iter().find(|a| a.alias == "@maria").unwrap().clone();
    let key = "claimed@example.com";
    let account = json!({"participant": "12345678", "branch": maria.branch, "number": maria.number, "type": "CACC"});
    let owner = json!({"type": "NATURAL_PERSON", "taxIdNumber": maria.document, "name": maria.name});
    let request_id = uuid::Uuid::new_v4();
    let registered = dx
        .btg(
            Method::POST,
            "/dict/entries",
            Some(json!({"keyType": "EMAIL", "key": key, "reason": "USER_REQUESTED", "requestId": request_id,
                "account": account, "owner": owner})),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let now = dx.now();
    deliver(
        dx,
        "DICT_CLAIM",
        json!({"id": "claim-elsewhere", "type": "PORTABILITY", "key": key, "keyType": "EMAIL", "status": "COMPLETED",
            "claimerParticipant": "12345678", "donorParticipant": "87654321", "claimerAccount": account,
            "claimer": owner, "resolutionPeriodEnd": now + chrono::Duration::days(7), "lastModified": now}),
    )
    .await;
    eventually("the claimed entry is recorded", || async {
        dx.get_json(&format!("/v1/dict/entries?key_value={key}")).await["total"] == 1
    })
    .await;

    scheduled_check(dx).await;
    let email = dx.vsync("EMAIL").await;
    assert_eq!(email["lastSyncStatus"], "OUT_OF_SYNC", "same attributes, different RequestId: different CID");
    full_reconciliation(dx, 1).await;
    let page = dx.get_json("/v1/dict/reconciliation?job_type=FULL_RECONCILIATION").await;
    let job = &page["items"][0];
    assert_eq!(job["entriesRepaired"], 1);
    assert_eq!((job["entriesAdded"].as_i64(), job["entriesRemoved"].as_i64()), (Some(0), Some(0)));
    assert_eq!(job["orphanEntries"], 0);
    let email = dx.vsync("EMAIL").await;
    assert_eq!(email["lastSyncStatus"], "SYNCED");
    assert_eq!(email["localVSync"], email["remoteVSync"]);
    let entries = dx.get_json(&format!("/v1/dict/entries?key_value={key}")).await;
    assert_eq!(entries["total"], 1, "re-keyed in place, not duplicated");
    assert_eq!(entries["items"][0]["status"], "ACTIVE");
    assert_eq!(entries["items"][0]["reason"], "RECONCILIATION");
}

async fn reconciliation_queries_are_validated(dx: &Dx) {
    for path in [
        "/v1/dict/reconciliation?job_type=WEEKLY",
        "/v1/dict/reconciliation?key_type=IBAN",
        "/v1/dict/reconciliation?start_date=monday",
        "/v1/dict/reconciliation?sort_order=sideways",
        "/v1/dict/vsync?status=FINE",
        "/v1/dict/vsync?key_type=IBAN",
        "/v1/dict/vsync?limit=500",
        "/v1/dict/vsync?unknown=1",
    ] {
        let r = dx.call(Method::GET, path).send().await.unwrap();
        assert_eq!(error_code(r).await, "PIX-0004", "{path}");
    }
    let vsync = dx.get_json("/v1/dict/vsync").await;
    assert_eq!(vsync["total"], 5, "one state per key type");
    assert_eq!(vsync["limit"], 5);
    assert!(vsync["items"].as_array().unwrap().iter().all(|v| v["localVSync"] == json!("0".repeat(64))));
    let jobs = dx.get_json("/v1/dict/reconciliation").await;
    assert_eq!(jobs["total"], 0);
}
