//! Storage behaviour, run against SQLite always and PostgreSQL when PIX_TEST_DATABASE_URL is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use pix_store::idempotency::{Claim, StoredResponse};
use pix_store::jobs::{JobStatus, NewJob, enqueue};
use pix_store::tenants::{NewTenant, Principal};
use pix_store::testing::TestStore;
use pix_store::webhook_endpoints::NewWebhookEndpoint;
use pix_store::{StoreError, backend_tests};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123456Z").unwrap().to_utc()
}

async fn tenant(db: &TestStore, name: &str) -> Uuid {
    db.create_tenant(
        NewTenant {
            name: name.into(),
            ispb: "12345678".into(),
            midaz_organization_id: Some("org".into()),
            midaz_ledger_id: None,
            settings: json!({"fees": {"flat": "1.00"}}),
            btg: None,
        },
        t0(),
    )
    .await
    .unwrap()
    .id
}

backend_tests!(
    migrations_applied_and_ready,
    tenants_round_trip_and_names_are_unique,
    tokens_are_hashed_scoped_and_revocable,
    webhook_endpoints_are_tenant_scoped,
    jobs_dedupe_and_rollback,
    jobs_retry_backoff_and_dead_letter,
    jobs_expired_lease_is_reclaimed_and_fenced,
    jobs_with_same_ordering_key_run_one_at_a_time,
    idempotency_claim_replay_mismatch_and_in_flight,
    idempotency_expiry_takeover_and_release,
    ten_thousand_jobs_each_processed_exactly_once,
    a_delivery_backlog_is_claimed_head_first_within_the_limits,
);

async fn migrations_applied_and_ready(db: &TestStore) {
    assert_eq!(db.db().pending_migrations().await.unwrap(), Vec::<i64>::new());
    db.readiness().await.unwrap();
    // Migrating again is a no-op.
    db.migrate().await.unwrap();
}

#[tokio::test]
async fn an_unmigrated_database_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let store = pix_store::Store::connect(&url, &Default::default()).await.unwrap();
    // Every migration shipped (numbered by its file name), whichever helpers added them.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let mut shipped: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    shipped.sort_unstable();
    assert!(shipped.len() >= 8, "{shipped:?}");
    assert_eq!(store.db().pending_migrations().await.unwrap(), shipped);
    let reason = store.readiness().await.unwrap_err();
    assert!(reason.contains("migrations not applied"), "{reason}");
    store.migrate().await.unwrap();
    store.readiness().await.unwrap();
}

async fn tenants_round_trip_and_names_are_unique(db: &TestStore) {
    let id = tenant(db, "acme").await;
    let got = db.tenant(id).await.unwrap().unwrap();
    assert_eq!(got.name, "acme");
    assert_eq!(got.created_at, t0(), "timestamps survive the round trip exactly");
    assert_eq!(got.settings["fees"]["flat"], "1.00");
    assert_eq!(db.tenant_by_name("acme").await.unwrap().unwrap().id, id);
    assert!(db.tenant(Uuid::now_v7()).await.unwrap().is_none());
    let dup = db
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                ispb: "1".into(),
                midaz_organization_id: None,
                midaz_ledger_id: None,
                settings: json!({}),
                btg: None,
            },
            t0(),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(db.list_tenants().await.unwrap().len(), 1);
}

async fn tokens_are_hashed_scoped_and_revocable(db: &TestStore) {
    let a = tenant(db, "a").await;
    let b = tenant(db, "b").await;
    let ta = db.issue_token(Some(a), "a key", t0()).await.unwrap();
    let admin = db.issue_token(None, "ops", t0()).await.unwrap();
    assert_eq!(
        db.authenticate(&ta.token).await.unwrap(),
        Some(Principal::Tenant { tenant_id: a, credential_id: ta.credential_id })
    );
    assert_eq!(
        db.authenticate(&admin.token).await.unwrap(),
        Some(Principal::Admin { credential_id: admin.credential_id })
    );
    assert_eq!(db.authenticate("pix_nope").await.unwrap(), None);
    // Only the hash is stored.
    let stored: Vec<String> = pix_store::on_pool!(db.db(), pool => {
        sqlx::query_scalar("SELECT token_sha256 FROM api_credentials").fetch_all(pool).await
    })
    .unwrap();
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&ta.token)));
    // Tenant B cannot revoke tenant A's credential; A can.
    assert!(matches!(db.revoke_token(Some(b), ta.credential_id, t0()).await, Err(StoreError::NotFound)));
    db.revoke_token(Some(a), ta.credential_id, t0()).await.unwrap();
    assert_eq!(db.authenticate(&ta.token).await.unwrap(), None);
}

async fn webhook_endpoints_are_tenant_scoped(db: &TestStore) {
    let a = tenant(db, "a").await;
    let b = tenant(db, "b").await;
    let new = NewWebhookEndpoint {
        url: "https://example.com/hook".into(),
        flow_type: Some("TRANSFER".into()),
        entity_type: None,
        enabled: true,
        secret: "whsec_x".into(),
        description: "main".into(),
    };
    let e = db.create_webhook_endpoint(a, &new, t0()).await.unwrap();
    assert_eq!(db.webhook_endpoint(a, e.id).await.unwrap().unwrap().url, new.url);
    assert!(db.webhook_endpoint(b, e.id).await.unwrap().is_none());
    assert_eq!(db.list_webhook_endpoints(b, 10, 0).await.unwrap().1, 0);
    let (items, total) = db.list_webhook_endpoints(a, 10, 0).await.unwrap();
    assert_eq!((items.len(), total), (1, 1));
    assert!(matches!(db.delete_webhook_endpoint(b, e.id).await, Err(StoreError::NotFound)));
    db.delete_webhook_endpoint(a, e.id).await.unwrap();
    assert!(db.webhook_endpoint(a, e.id).await.unwrap().is_none());
}

async fn jobs_dedupe_and_rollback(db: &TestStore) {
    let job = NewJob::new("q", "k", json!({"n": 1})).with_dedupe_key("effect-1");
    let first = db.enqueue_job(&job, t0()).await.unwrap();
    assert!(first.is_some());
    assert_eq!(db.enqueue_job(&job, t0()).await.unwrap(), None, "same dedupe key is a no-op");
    // A job enqueued in a transaction that rolls back never existed.
    let mut tx = db.begin().await.unwrap();
    enqueue(&mut tx, &NewJob::new("q", "k", json!({})), t0()).await.unwrap();
    drop(tx);
    assert_eq!(db.queue_counts("q").await.unwrap().ready, 1);
    let stored = db.job(first.unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.payload, json!({"n": 1}));
    assert_eq!(stored.status, JobStatus::Ready);
}

async fn jobs_retry_backoff_and_dead_letter(db: &TestStore) {
    let id = db.enqueue_job(&NewJob::new("q", "k", json!({})).with_max_attempts(2), t0()).await.unwrap().unwrap();
    let lease = Duration::from_secs(30);
    let claimed = db.claim_jobs("q", "w1", lease, 10, t0()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    let retry_at = t0() + TimeDelta::seconds(5);
    let status = db.fail_job(id, "w1", "boom", Some(retry_at), t0()).await.unwrap();
    assert_eq!(status, Some(JobStatus::Ready));
    assert!(db.claim_jobs("q", "w1", lease, 10, t0() + TimeDelta::seconds(4)).await.unwrap().is_empty());
    let again = db.claim_jobs("q", "w1", lease, 10, retry_at).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    let status = db.fail_job(id, "w1", "boom again", Some(retry_at), retry_at).await.unwrap();
    assert_eq!(status, Some(JobStatus::Dead), "attempts exhausted");
    let dead = db.job(id).await.unwrap().unwrap();
    assert_eq!(dead.last_error.as_deref(), Some("boom again"));
    assert_eq!(db.queue_counts("q").await.unwrap().dead, 1);
    db.requeue_dead_job(id, retry_at).await.unwrap();
    assert_eq!(db.claim_jobs("q", "w2", lease, 10, retry_at).await.unwrap().len(), 1);
}

async fn jobs_expired_lease_is_reclaimed_and_fenced(db: &TestStore) {
    let id = db.enqueue_job(&NewJob::new("q", "k", json!({})), t0()).await.unwrap().unwrap();
    let lease = Duration::from_secs(10);
    assert_eq!(db.claim_jobs("q", "crashed", lease, 1, t0()).await.unwrap().len(), 1);
    assert!(db.claim_jobs("q", "w2", lease, 1, t0() + TimeDelta::seconds(9)).await.unwrap().is_empty());
    let later = t0() + TimeDelta::seconds(11);
    let reclaimed = db.claim_jobs("q", "w2", lease, 1, later).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert!(!db.complete_job(id, "crashed", later).await.unwrap(), "the old holder is fenced off");
    assert!(db.complete_job(id, "w2", later).await.unwrap());
    assert_eq!(db.job(id).await.unwrap().unwrap().status, JobStatus::Done);
    assert_eq!(db.purge_done_jobs(later + TimeDelta::seconds(1)).await.unwrap(), 1);
}

async fn jobs_with_same_ordering_key_run_one_at_a_time(db: &TestStore) {
    let first = db
        .enqueue_job(&NewJob::new("q", "k", json!({"n": 1})).with_ordering_key("payment-1"), t0())
        .await
        .unwrap()
        .unwrap();
    db.enqueue_job(&NewJob::new("q", "k", json!({"n": 2})).with_ordering_key("payment-1"), t0()).await.unwrap();
    db.enqueue_job(&NewJob::new("q", "k", json!({"n": 3})).with_ordering_key("payment-2"), t0()).await.unwrap();
    let lease = Duration::from_secs(30);
    let claimed = db.claim_jobs("q", "w", lease, 10, t0()).await.unwrap();
    let ns: Vec<_> = claimed.iter().map(|j| j.payload["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, vec![1, 3], "the second job of payment-1 waits for the first");
    db.complete_job(first, "w", t0()).await.unwrap();
    let next = db.claim_jobs("q", "w", lease, 10, t0()).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].payload["n"], 2);
}

async fn idempotency_claim_replay_mismatch_and_in_flight(db: &TestStore) {
    let a = tenant(db, "a").await;
    let b = tenant(db, "b").await;
    let (lock, ttl) = (Duration::from_secs(30), Duration::from_secs(3600));
    assert_eq!(db.idempotency_claim(a, "k1", "fp1", lock, ttl, t0()).await.unwrap(), Claim::Proceed);
    match db.idempotency_claim(a, "k1", "fp1", lock, ttl, t0()).await.unwrap() {
        Claim::InFlight { retry_after } => assert_eq!(retry_after, lock),
        other => panic!("expected in flight, got {other:?}"),
    }
    assert_eq!(db.idempotency_claim(a, "k1", "fp2", lock, ttl, t0()).await.unwrap(), Claim::Mismatch);
    // Another tenant's identical key is independent.
    assert_eq!(db.idempotency_claim(b, "k1", "fp2", lock, ttl, t0()).await.unwrap(), Claim::Proceed);
    let response = StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"id":"x"}"#.to_vec(),
    };
    db.idempotency_complete(a, "k1", &response).await.unwrap();
    assert_eq!(db.idempotency_claim(a, "k1", "fp1", lock, ttl, t0()).await.unwrap(), Claim::Replay(response));
}

async fn idempotency_expiry_takeover_and_release(db: &TestStore) {
    let a = tenant(db, "a").await;
    let (lock, ttl) = (Duration::from_secs(30), Duration::from_secs(3600));
    db.idempotency_claim(a, "k", "fp", lock, ttl, t0()).await.unwrap();
    db.idempotency_complete(a, "k", &StoredResponse { status: 200, headers: vec![], body: vec![] }).await.unwrap();
    // After the TTL the key is unused again, even for a different request.
    let expired = t0() + TimeDelta::seconds(3601);
    assert_eq!(db.idempotency_claim(a, "k", "other", lock, ttl, expired).await.unwrap(), Claim::Proceed);
    // A holder that crashed: once its lock lapses the same request may proceed.
    let lapsed = expired + TimeDelta::seconds(31);
    assert_eq!(db.idempotency_claim(a, "k", "other", lock, ttl, lapsed).await.unwrap(), Claim::Proceed);
    // Released keys are free at once.
    db.idempotency_release(a, "k").await.unwrap();
    assert_eq!(db.idempotency_claim(a, "k", "third", lock, ttl, lapsed).await.unwrap(), Claim::Proceed);
    assert_eq!(db.purge_expired_idempotency_keys(lapsed + TimeDelta::days(2)).await.unwrap(), 1);
}

/// Several concurrent workers drain 10,000 jobs; every job is completed exactly once.
async fn ten_thousand_jobs_each_processed_exactly_once(db: &TestStore) {
    const JOBS: usize = 10_000;
    const WORKERS: usize = 6;
    let mut tx = db.begin().await.unwrap();
    for n in 0..JOBS {
        enqueue(&mut tx, &NewJob::new("bulk", "count", json!({ "n": n })), t0()).await.unwrap();
    }
    tx.commit().await.unwrap();

    let seen: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let (store, seen) = (db.store.clone(), seen.clone());
        handles.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            loop {
                let jobs = store.claim_jobs("bulk", &worker, Duration::from_secs(600), 50, t0()).await.unwrap();
                if jobs.is_empty() {
                    break;
                }
                for job in jobs {
                    *seen.lock().await.entry(job.id).or_default() += 1;
                    assert!(store.complete_job(job.id, &worker, t0()).await.unwrap());
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let seen = seen.lock().await;
    assert_eq!(seen.len(), JOBS);
    assert!(seen.values().all(|&n| n == 1), "a job was processed twice");
    let counts = db.queue_counts("bulk").await.unwrap();
    assert_eq!((counts.done, counts.ready, counts.running), (JOBS as i64, 0, 0));
}

/// A backlog of deliveries (the kill -9 run left 4,500 pending, and the claim that computed the
/// heads and the in-flight counts once per candidate row never finished again): each claim takes
/// only each entity's oldest pending delivery, stops taking an endpoint's once it has `per_endpoint`
/// in flight and a tenant's at `per_tenant`, and draining it delivers every entity in order.
async fn a_delivery_backlog_is_claimed_head_first_within_the_limits(db: &TestStore) {
    use pix_store::deliveries::{AttemptOutcome, EventRouting, NewWebhookEvent, insert_webhook_event};
    let t = tenant(db, "acme").await;
    let endpoint = |url: &str| NewWebhookEndpoint {
        url: url.into(),
        flow_type: None,
        entity_type: None,
        enabled: true,
        secret: "whsec_dGVzdA==".into(),
        description: String::new(),
    };
    let busy = db.create_webhook_endpoint(t, &endpoint("https://a.example/hook"), t0()).await.unwrap().id;
    let quiet = db.create_webhook_endpoint(t, &endpoint("https://b.example/hook"), t0()).await.unwrap().id;
    const ENTITIES: usize = 300;
    let mut tx = db.begin().await.unwrap();
    for seq in 0..3 {
        for entity in 0..ENTITIES {
            let (to, entity) = if entity < 5 { (quiet, format!("q{entity}")) } else { (busy, format!("e{entity}")) };
            let body = json!({"entity": entity, "seq": seq}).to_string();
            let event = NewWebhookEvent {
                id: Uuid::now_v7(),
                tenant_id: t,
                flow_type: "TRANSFER",
                entity_type: "CASHOUT",
                entity_id: &entity,
                body: &body,
                occurred_at: t0(),
            };
            insert_webhook_event(&mut tx, &event, EventRouting::Routed, &[to], t0()).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    let lease = Duration::from_secs(60);
    let seen = |c: &pix_store::deliveries::ClaimedDelivery| -> (String, i64) {
        let body: serde_json::Value = serde_json::from_str(&c.body).unwrap();
        (body["entity"].as_str().unwrap().to_owned(), body["seq"].as_i64().unwrap())
    };

    let first = db.claim_deliveries("w1", lease, 50, 10, 1_000, t0()).await.unwrap();
    assert_eq!(first.len(), 50);
    assert!(
        first.iter().all(|c| seen(c).1 == 0),
        "only each entity's oldest: {:?}",
        first.iter().map(seen).collect::<Vec<_>>()
    );
    // The busy endpoint has 45 or more in flight now: only the quiet one's heads are left to take.
    let second = db.claim_deliveries("w2", lease, 50, 10, 1_000, t0()).await.unwrap();
    let endpoints: Vec<Uuid> = second.iter().map(|c| c.endpoint_id).collect();
    assert!(endpoints.iter().all(|e| *e == quiet), "{endpoints:?}");
    let in_flight = (first.len() + second.len()) as i64;
    assert!(
        db.claim_deliveries("w3", lease, 50, 1_000, in_flight, t0()).await.unwrap().is_empty(),
        "the tenant is at its limit"
    );

    // Drain: deliver whatever was claimed, claim again; every entity arrives in order.
    let mut delivered: HashMap<String, Vec<i64>> = HashMap::new();
    let mut claimed: Vec<(&str, _)> =
        first.into_iter().map(|c| ("w1", c)).chain(second.into_iter().map(|c| ("w2", c))).collect();
    let outcome = AttemptOutcome {
        delivered: true,
        status_code: Some(200),
        error: None,
        duration: Duration::from_millis(1),
        retry_at: None,
    };
    for round in 0.. {
        assert!(round < 200, "the backlog never drained");
        if claimed.is_empty() {
            break;
        }
        for (worker, c) in &claimed {
            let (entity, seq) = seen(c);
            delivered.entry(entity).or_default().push(seq);
            db.finish_delivery_attempt(c.id, worker, &outcome, t0()).await.unwrap();
        }
        claimed = db
            .claim_deliveries("w4", lease, 50, 10, 1_000, t0())
            .await
            .unwrap()
            .into_iter()
            .map(|c| ("w4", c))
            .collect();
    }
    assert_eq!(delivered.len(), ENTITIES);
    assert!(delivered.values().all(|seqs| *seqs == [0, 1, 2]), "each entity in order");
}

#[tokio::test]
async fn outbound_events_are_recorded_routed_with_the_state_change() {
    use pix_store::deliveries::EventRouting;
    use pix_store::events::{OutboundEvent, record_outbound_event};
    let db = TestStore::sqlite().await;
    let t = tenant(&db, "acme").await;
    let payload = json!({"status": "OPEN"});
    let event =
        |id| OutboundEvent { tenant_id: t, flow_type: "DICT", entity_type: "CLAIM", entity_id: id, payload: &payload };
    let mut tx = db.begin().await.unwrap();
    record_outbound_event(&mut tx, &event("claim-1"), t0()).await.unwrap();
    drop(tx);
    assert!(db.recorded_event_bodies(t).await.unwrap().is_empty(), "rolled back with its transaction");

    let mut tx = db.begin().await.unwrap();
    let first = record_outbound_event(&mut tx, &event("claim-1"), t0()).await.unwrap();
    record_outbound_event(&mut tx, &event("claim-1"), t0()).await.unwrap();
    record_outbound_event(&mut tx, &event("claim-2"), t0()).await.unwrap();
    tx.commit().await.unwrap();
    let bodies = db.recorded_event_bodies(t).await.unwrap();
    let entities: Vec<&str> = bodies.iter().map(|b| b["entityId"].as_str().unwrap()).collect();
    assert_eq!(entities, ["claim-1", "claim-1", "claim-2"], "in the order recorded");
    assert_eq!(
        bodies[0],
        json!({"entityType": "CLAIM", "flowType": "DICT", "payload": payload, "entityId": "claim-1"})
    );
    let recorded = db.webhook_event(first).await.unwrap().expect("recorded under its event id");
    assert_eq!(recorded.routing, EventRouting::NotRouted, "the tenant has no endpoint");
}
