//! Claims in both roles: portability and ownership, key locks, the D+7 resolution and D+30
//! ownership completion periods driven by the simulated clocks, and outbound CLAIM events.

#[macro_use]
mod dict_common;

use dict_common::{Dx, outbound_events};
use pix_e2e::error_code;
use pix_server::dict::run_claim_deadlines;
use reqwest::Method;
use serde_json::{Value, json};

dict_tests!(
    we_claim_a_key_by_portability_and_complete_it,
    an_ownership_claim_completes_only_after_its_completion_period,
    a_portability_claim_against_our_key_is_acknowledged_and_confirmed,
    an_ownership_claim_against_us_lapses_into_confirmation,
    an_unanswered_ownership_claim_against_us_is_confirmed_by_default,
    claim_requests_are_validated_with_catalogued_errors,
);

const ANA_EMAIL: &str = "ana.pereira@example.com";
const CARLOS_PHONE: &str = "+5511987654321";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

async fn claim(dx: &Dx, alias: &str, body: Value) -> reqwest::Response {
    dx.as_account(Method::POST, "/v1/dict/claims", alias).json(&body).send().await.unwrap()
}

async fn action(dx: &Dx, id: &str, verb: &str, alias: &str) -> reqwest::Response {
    dx.as_account(Method::POST, &format!("/v1/dict/claims/{id}/{verb}"), alias).send().await.unwrap()
}

async fn read(dx: &Dx, id: &str, alias: &str) -> Value {
    dx.as_account(Method::GET, &format!("/v1/dict/claims/{id}"), alias).send().await.unwrap().json().await.unwrap()
}

async fn wait_status(dx: &Dx, id: &str, alias: &str, status: &str) -> Value {
    let mut last = Value::Null;
    // Up to 20 s: BTG's events may be retried with backoff when the suite loads the machine.
    for _ in 0..1000 {
        last = read(dx, id, alias).await;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("claim {id} never reached {status}: {last}");
}

/// The first claim of a list, once there is one (claims against us arrive by webhook).
async fn first_claim(dx: &Dx, query: &str) -> String {
    for _ in 0..300 {
        let page = dx.get_json(query).await;
        if let Some(id) = page["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no claim for {query}");
}

async fn we_claim_a_key_by_portability_and_complete_it(dx: &Dx) {
    let created = claim(dx, "@maria", json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "OPEN");
    assert_eq!(created["role"], "CLAIMER");
    assert_eq!(created["donorParticipant"], "87654321");
    assert_eq!(created["claimerParticipant"], "12345678");
    assert!(created["completionPeriodEnd"].is_null(), "portability has no completion period");
    let resolution = chrono::DateTime::parse_from_rfc3339(created["resolutionPeriodEnd"].as_str().unwrap()).unwrap();
    let days = (resolution.to_utc() - dx.now()).num_hours();
    assert!((167..=168).contains(&days), "D+7: {days}h");

    // While the claim is open the key is locked and cannot be claimed twice.
    let locked = dx
        .as_account(Method::POST, "/v1/dict/entries", "@joao")
        .json(&json!({"keyType": "EMAIL", "key": ANA_EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(locked).await, "PIX-0107");
    let twice = claim(dx, "@joao", json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"})).await;
    assert_eq!(error_code(twice).await, "PIX-0115");
    assert_eq!(error_code(action(dx, &id, "complete", "@maria").await).await, "PIX-0111", "not CONFIRMED yet");

    // The simulated donor acknowledges after 1 h and confirms after 1 day.
    dx.advance(HOUR + 60);
    wait_status(dx, &id, "@maria", "WAITING_RESOLUTION").await;
    dx.advance(DAY);
    let confirmed = wait_status(dx, &id, "@maria", "CONFIRMED").await;
    assert_eq!(confirmed["confirmReason"], "USER_REQUESTED");
    let lookup = dx.as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@joao").send().await.unwrap();
    assert_eq!(error_code(lookup).await, "PIX-0114", "a CONFIRMED claim hides the key");

    let request_id = uuid::Uuid::new_v4().to_string();
    let completed = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{id}/complete"), "@maria")
        .header("X-Request-Id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 200);
    let completed: Value = completed.json().await.unwrap();
    assert_eq!(completed["status"], "COMPLETED");
    let entry_id = completed["entryId"].as_str().unwrap().to_owned();
    let entry: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/entries/{entry_id}"), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entry["key"], ANA_EMAIL);
    assert_eq!(entry["status"], "ACTIVE");
    let again = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{id}/complete"), "@maria")
        .header("X-Request-Id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "complete is idempotent");
    let found: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/keys/{ANA_EMAIL}"), "@joao")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["account"]["participant"], "12345678", "the key is ours now");
    // Our only EMAIL entry is the claimed one, so the local VSync is its CID: DICT resolves it
    // to the entry it created, keyed by the completion's RequestId.
    let local = dx.vsync("EMAIL").await["localVSync"].as_str().unwrap().to_owned();
    assert_ne!(local, "0".repeat(64));
    let at_dict = dx.btg(Method::GET, &format!("/dict/cids/{local}/entry"), None).await;
    assert_eq!(at_dict.status(), 200, "DICT holds an entry with our CID");
    let at_dict: Value = at_dict.json().await.unwrap();
    assert_eq!(at_dict["key"], ANA_EMAIL);
    assert_eq!(at_dict["requestId"], json!(request_id));

    let listed = dx.get_json("/v1/dict/claims?role=CLAIMER&status=COMPLETED").await;
    assert_eq!(listed["total"], 1);
    let events = outbound_events(dx, "CLAIM").await;
    let statuses: Vec<&str> = events.iter().map(|e| e["payload"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["OPEN", "WAITING_RESOLUTION", "CONFIRMED", "COMPLETED"], "one event per change, in order");
    assert!(events.iter().all(|e| e["flowType"] == "DICT" && e["entityId"] == json!(id)));

    // A claim the claimer cancels releases the lock.
    let other = claim(dx, "@joao", json!({"type": "OWNERSHIP", "key": CARLOS_PHONE, "keyType": "PHONE"})).await;
    let other: Value = other.json().await.unwrap();
    let other_id = other["id"].as_str().unwrap();
    let bad = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{other_id}/cancel"), "@joao")
        .json(&json!({"reason": "NOPE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad).await, "PIX-0004");
    let cancelled = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{other_id}/cancel"), "@joao")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["cancelledBy"], "CLAIMER");
    assert_eq!(error_code(action(dx, other_id, "cancel", "@joao").await).await, "PIX-0111", "already finished");
}

async fn an_ownership_claim_completes_only_after_its_completion_period(dx: &Dx) {
    dx.app.sandbox.handle.set_donor_behaviour(pix_sandbox::DonorBehaviour::Ignore);
    let created: Value = claim(dx, "@maria", json!({"type": "OWNERSHIP", "key": CARLOS_PHONE, "keyType": "PHONE"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let completion = chrono::DateTime::parse_from_rfc3339(created["completionPeriodEnd"].as_str().unwrap()).unwrap();
    let hours = (completion.to_utc() - dx.now()).num_hours();
    assert!((719..=720).contains(&hours), "D+30 (spec 002), not the reference's D+14: {hours}h");

    // Nobody answers: at the end of the resolution period DICT confirms by DEFAULT_OPERATION.
    // Webhooks are switched off so the deadline worker, reading DICT, must notice it.
    dx.app.sandbox.handle.set_webhook_url(None);
    dx.advance(7 * DAY + 60);
    run_claim_deadlines(&dx.dict).await;
    let confirmed = read(dx, &id, "@maria").await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    assert_eq!(confirmed["confirmReason"], "DEFAULT_OPERATION");

    let early = action(dx, &id, "complete", "@maria").await;
    assert_eq!(error_code(early).await, "PIX-0111", "the completion period has not ended");
    dx.advance(23 * DAY);
    let done = action(dx, &id, "complete", "@maria").await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.json::<Value>().await.unwrap()["status"], "COMPLETED");
    let entries = dx.get_json("/v1/dict/entries?key_type=PHONE").await;
    assert_eq!(entries["items"][0]["key"], CARLOS_PHONE);
    // Completed without X-Request-Id: the RequestId we generated is the one DICT keyed the CID by.
    let local = dx.vsync("PHONE").await["localVSync"].as_str().unwrap().to_owned();
    let at_dict = dx.btg(Method::GET, &format!("/dict/cids/{local}/entry"), None).await;
    assert_eq!(at_dict.status(), 200, "local and DICT CIDs agree");
    assert_eq!(at_dict.json::<Value>().await.unwrap()["key"], CARLOS_PHONE);
}

async fn a_portability_claim_against_our_key_is_acknowledged_and_confirmed(dx: &Dx) {
    let entry = dx.create_entry("@maria", json!({"keyType": "EMAIL", "key": "leaving@example.com"})).await;
    let entry_id = entry["id"].as_str().unwrap().to_owned();
    let without = dx.vsync("EMAIL").await;
    dx.control(Method::POST, "/_control/btg/claims", json!({"key": "leaving@example.com", "type": "PORTABILITY"}))
        .await;
    let id = first_claim(dx, "/v1/dict/claims?role=DONOR").await;
    let open = read(dx, &id, "@maria").await;
    assert_eq!(open["status"], "OPEN");
    assert_eq!(open["entryId"], json!(entry_id));

    // Locked: no delete while the claim is open.
    let delete = dx
        .as_account(Method::DELETE, &format!("/v1/dict/entries/{entry_id}"), "@maria")
        .header("X-Reason", "USER_REQUESTED")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(delete).await, "PIX-0107");
    let confirm = |reason: &'static str| {
        dx.as_account(Method::POST, &format!("/v1/dict/claims/{id}/confirm"), "@maria")
            .header("X-Reason", reason)
            .send()
    };
    assert_eq!(error_code(confirm("USER_REQUESTED").await.unwrap()).await, "PIX-0111", "not acknowledged yet");
    assert_eq!(error_code(action(dx, &id, "complete", "@maria").await).await, "PIX-0111", "donors do not complete");
    let no_reason = action(dx, &id, "confirm", "@maria").await;
    assert_eq!(error_code(no_reason).await, "PIX-0001");
    assert_eq!(error_code(confirm("WHIM").await.unwrap()).await, "PIX-0002");

    let acknowledged = action(dx, &id, "acknowledge", "@maria").await;
    assert_eq!(acknowledged.json::<Value>().await.unwrap()["status"], "WAITING_RESOLUTION");
    let repeated = action(dx, &id, "acknowledge", "@maria").await;
    assert_eq!(repeated.status(), 200, "acknowledge is idempotent");
    assert_eq!(
        error_code(confirm("FRAUD").await.unwrap()).await,
        "PIX-0111",
        "portability: USER_REQUESTED or ACCOUNT_CLOSURE"
    );
    let confirmed = confirm("USER_REQUESTED").await.unwrap();
    assert_eq!(confirmed.status(), 200);
    // The simulated claimer completes at its next tick; its DICT_CLAIM may be applied first.
    let status = confirmed.json::<Value>().await.unwrap()["status"].clone();
    assert!(status == "CONFIRMED" || status == "COMPLETED", "{status}");

    let released: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/entries/{entry_id}"), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(released["status"], "INACTIVE", "donor confirmation deactivates our entry");
    assert_eq!(released["reason"], "USER_REQUESTED");
    assert_eq!(dx.vsync("EMAIL").await["localVSync"], json!("0".repeat(64)));
    assert_ne!(without["localVSync"], json!("0".repeat(64)));

    // The simulated claimer completes; we learn it from DICT_CLAIM.
    wait_status(dx, &id, "@maria", "COMPLETED").await;
    // One event per status this record went through, in order. DICT's COMPLETED may be applied
    // before our confirmation is saved, and then the record goes straight to COMPLETED.
    let statuses: Vec<String> = outbound_events(dx, "CLAIM")
        .await
        .iter()
        .filter(|e| e["entityId"] == json!(id))
        .map(|e| e["payload"]["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected = if statuses.len() == 4 {
        vec!["OPEN", "WAITING_RESOLUTION", "CONFIRMED", "COMPLETED"]
    } else {
        vec!["OPEN", "WAITING_RESOLUTION", "COMPLETED"]
    };
    assert_eq!(statuses, expected);
}

async fn an_ownership_claim_against_us_lapses_into_confirmation(dx: &Dx) {
    let entry = dx.create_entry("@maria", json!({"keyType": "PHONE", "key": "+5511955554444"})).await;
    dx.control(Method::POST, "/_control/btg/claims", json!({"key": "+5511955554444", "type": "OWNERSHIP"})).await;
    let id = first_claim(dx, "/v1/dict/claims?role=DONOR&type=OWNERSHIP").await;
    let cancel = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{id}/cancel"), "@maria")
        .json(&json!({"reason": "USER_REQUESTED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(cancel).await, "PIX-0111", "the donor cancels an ownership claim only for FRAUD");
    action(dx, &id, "acknowledge", "@maria").await;
    let early = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{id}/confirm"), "@maria")
        .header("X-Reason", "DEFAULT_OPERATION")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(early).await, "PIX-0111", "DEFAULT_OPERATION only after the resolution period");

    // The holder never answers: at D+7 the claim is confirmed by default and our key released.
    dx.advance(7 * DAY + 60);
    run_claim_deadlines(&dx.dict).await;
    let confirmed = wait_status(dx, &id, "@maria", "CONFIRMED").await;
    assert_eq!(confirmed["confirmReason"], "DEFAULT_OPERATION");
    let released: Value = dx
        .as_account(Method::GET, &format!("/v1/dict/entries/{}", entry["id"].as_str().unwrap()), "@maria")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(released["status"], "INACTIVE");
    // The claimer completes once its completion period ends.
    dx.advance(7 * DAY);
    wait_status(dx, &id, "@maria", "COMPLETED").await;
}

async fn an_unanswered_ownership_claim_against_us_is_confirmed_by_default(dx: &Dx) {
    const PHONE: &str = "+5511944443333";
    let entry = dx.create_entry("@joao", json!({"keyType": "PHONE", "key": PHONE})).await;
    let entry_id = entry["id"].as_str().unwrap().to_owned();
    let entry_path = format!("/v1/dict/entries/{entry_id}");
    assert_ne!(dx.vsync("PHONE").await["localVSync"], json!("0".repeat(64)));
    dx.control(Method::POST, "/_control/btg/claims", json!({"key": PHONE, "type": "OWNERSHIP"})).await;
    let id = first_claim(dx, "/v1/dict/claims?role=DONOR&type=OWNERSHIP").await;
    let open = read(dx, &id, "@joao").await;
    assert_eq!(open["status"], "OPEN");
    assert_eq!(open["entryId"], json!(entry_id));

    // We never answer. Just before the resolution period ends nothing has changed.
    dx.advance(7 * DAY - 60);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(read(dx, &id, "@joao").await["status"], "OPEN");
    let still: Value = dx.as_account(Method::GET, &entry_path, "@joao").send().await.unwrap().json().await.unwrap();
    assert_eq!(still["status"], "ACTIVE");

    // The period lapses: DICT confirms by default and tells us through DICT_CLAIM.
    dx.advance(120);
    let confirmed = wait_status(dx, &id, "@joao", "CONFIRMED").await;
    assert_eq!(confirmed["confirmReason"], "DEFAULT_OPERATION");
    assert_eq!(confirmed["role"], "DONOR");
    let released: Value = dx.as_account(Method::GET, &entry_path, "@joao").send().await.unwrap().json().await.unwrap();
    assert_eq!(released["status"], "INACTIVE", "the key left us");
    assert_eq!(released["reason"], "DEFAULT_OPERATION");
    assert!(released["deletedAt"].is_string());
    assert_eq!(dx.vsync("PHONE").await["localVSync"], json!("0".repeat(64)), "its CID left our VSync");
    let at_dict = dx.btg(Method::GET, &format!("/dict/entries/{PHONE}"), None).await;
    assert_eq!(at_dict.status(), 404, "DICT no longer has our entry either");

    let events = outbound_events(dx, "CLAIM").await;
    assert!(events.iter().all(|e| e["entityId"] == json!(id) && e["flowType"] == "DICT"));
    let statuses: Vec<&str> = events.iter().map(|e| e["payload"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["OPEN", "CONFIRMED"], "one outbound CLAIM event per change");
    assert_eq!(events[1]["payload"]["confirmReason"], "DEFAULT_OPERATION");
}

async fn claim_requests_are_validated_with_catalogued_errors(dx: &Dx) {
    for (body, code) in [
        (json!({"type": "OWNERSHIP", "key": ANA_EMAIL, "keyType": "EMAIL"}), "PIX-0110"),
        (json!({"type": "PORTABILITY", "key": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "keyType": "EVP"}), "PIX-0110"),
        (json!({"type": "PORTABILITY", "key": "52998224725", "keyType": "CPF"}), "PIX-0101"),
        (json!({"type": "PORTABILITY", "key": "nobody@example.com", "keyType": "EMAIL"}), "PIX-0114"),
        (json!({"type": "TAKEOVER", "key": ANA_EMAIL, "keyType": "EMAIL"}), "PIX-0004"),
        (json!({"type": "PORTABILITY", "key": "not-an-email", "keyType": "EMAIL"}), "PIX-0004"),
        (json!({"type": "PORTABILITY", "keyType": "EMAIL"}), "PIX-0003"),
        (json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL", "x": 1}), "PIX-0006"),
    ] {
        assert_eq!(error_code(claim(dx, "@maria", body.clone()).await).await, code, "{body}");
    }
    let no_account = dx
        .call(Method::POST, "/v1/dict/claims")
        .json(&json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"}));
    assert_eq!(error_code(no_account.send().await.unwrap()).await, "PIX-0001");

    // A key already ours cannot be claimed; nor can an account over its limit claim one.
    dx.create_entry("@joao", json!({"keyType": "EMAIL", "key": "joao@example.com"})).await;
    let ours = claim(dx, "@maria", json!({"type": "PORTABILITY", "key": "joao@example.com", "keyType": "EMAIL"})).await;
    assert_eq!(error_code(ours).await, "PIX-0105");
    for _ in 0..4 {
        dx.create_entry("@joao", json!({"keyType": "EVP"})).await;
    }
    let full = claim(dx, "@joao", json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"})).await;
    assert_eq!(error_code(full).await, "PIX-0103");

    let missing = dx.as_account(Method::GET, &format!("/v1/dict/claims/{}", uuid::Uuid::new_v4()), "@maria");
    assert_eq!(error_code(missing.send().await.unwrap()).await, "PIX-0113");
    let bad = dx.as_account(Method::GET, "/v1/dict/claims/xyz", "@maria").send().await.unwrap();
    assert_eq!(error_code(bad).await, "PIX-0008");
    let created: Value = claim(dx, "@maria", json!({"type": "PORTABILITY", "key": ANA_EMAIL, "keyType": "EMAIL"}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        error_code(action(dx, id, "acknowledge", "@maria").await).await,
        "PIX-0111",
        "claimers do not acknowledge"
    );
    let other_account = dx.as_account(Method::GET, &format!("/v1/dict/claims/{id}"), "@joao").send().await.unwrap();
    assert_eq!(error_code(other_account).await, "PIX-0113");
    let bad_request_id = dx
        .as_account(Method::POST, &format!("/v1/dict/claims/{id}/complete"), "@maria")
        .header("X-Request-Id", "not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad_request_id).await, "PIX-0002");
    let bad_list = dx.call(Method::GET, "/v1/dict/claims?status=LOST").send().await.unwrap();
    assert_eq!(error_code(bad_list).await, "PIX-0004");
    let bad_sort = dx.call(Method::GET, "/v1/dict/claims?sort_order=up").send().await.unwrap();
    assert_eq!(error_code(bad_sort).await, "PIX-0004");
}
