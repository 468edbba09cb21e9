//! DICT storage on both backends: entries with optimistic versions and the one-live-entry-per-key
//! rule, the incremental VSync against a recomputation, tenant isolation and the anti-scan bucket.

use chrono::{DateTime, TimeDelta, Utc};
use pix_core::dict::{Cid, EntryStatus, TokenBucket, VSync};
use pix_store::dict::{Entry, EntryFilter, FraudMarkerOwner, insert_entry, save_entry, toggle_vsync};
use pix_store::tenants::NewTenant;
use pix_store::testing::TestStore;
use pix_store::{StoreError, backend_tests};
use serde_json::json;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123456Z").unwrap().to_utc()
}

async fn tenant(db: &TestStore, name: &str) -> Uuid {
    let new = NewTenant {
        name: name.into(),
        ispb: "12345678".into(),
        midaz_organization_id: None,
        midaz_ledger_id: None,
        settings: json!({}),
        btg: None,
    };
    db.create_tenant(new, t0()).await.unwrap().id
}

fn entry(tenant: Uuid, key: &str) -> Entry {
    let mut e = Entry {
        id: pix_core::ids::new_id(),
        tenant_id: tenant,
        account_id: Some(Uuid::new_v4()),
        key: Some(key.into()),
        key_type: "EMAIL".into(),
        status: EntryStatus::Active,
        pending_op: None,
        pending_payload: None,
        pending_since: None,
        participant: "12345678".into(),
        branch: "0001".into(),
        account_number: "100001".into(),
        account_type: "CACC".into(),
        opening_date: None,
        owner_type: "NATURAL_PERSON".into(),
        owner_tax_id: "11144477735".into(),
        owner_name: "Maria Silva".into(),
        owner_trade_name: None,
        request_id: Uuid::new_v4(),
        cid: None,
        reason: "USER_REQUESTED".into(),
        metadata: json!({}),
        key_ownership_date: Some(t0()),
        version: 0,
        created_at: t0(),
        updated_at: t0(),
        deleted_at: None,
    };
    e.cid = e.compute_cid().map(|c| c.to_hex());
    e
}

backend_tests!(
    entries_keep_one_live_registration_per_key_and_fence_writes,
    the_running_vsync_equals_a_recomputation,
    anti_scan_buckets_spend_and_refill,
    fraud_markers_belong_to_the_tenant_that_registered_them,
    parallel_reservations_each_spend_their_cost_and_may_overdraw,
);

async fn entries_keep_one_live_registration_per_key_and_fence_writes(db: &TestStore) {
    let a = tenant(db, "a").await;
    let b = tenant(db, "b").await;
    let mut first = entry(a, "maria@example.com");
    let mut tx = db.begin().await.unwrap();
    insert_entry(&mut tx, &first).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    let duplicate = insert_entry(&mut tx, &entry(a, "maria@example.com")).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "one live entry per key");
    drop(tx);
    // Another tenant may hold the same key value in its own records, and cannot see ours.
    let mut tx = db.begin().await.unwrap();
    insert_entry(&mut tx, &entry(b, "maria@example.com")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.dict_entry(b, first.id).await.unwrap(), None);
    assert_eq!(db.dict_entry(a, first.id).await.unwrap().unwrap(), first);

    // A write fenced by a stale version is refused.
    first.status = EntryStatus::Inactive;
    let mut tx = db.begin().await.unwrap();
    assert!(save_entry(&mut tx, &first).await.unwrap());
    assert!(!save_entry(&mut tx, &first).await.unwrap(), "version moved on");
    tx.commit().await.unwrap();
    // Inactive, the key is free again.
    let mut tx = db.begin().await.unwrap();
    insert_entry(&mut tx, &entry(a, "maria@example.com")).await.unwrap();
    tx.commit().await.unwrap();
    let (items, total) = db
        .list_dict_entries(a, &EntryFilter { status: Some("INACTIVE".into()), ..Default::default() }, 10, 0)
        .await
        .unwrap();
    assert_eq!((items.len(), total), (1, 1));
    assert_eq!(db.count_live_dict_entries(a, first.account_id.unwrap()).await.unwrap(), 0);
}

async fn the_running_vsync_equals_a_recomputation(db: &TestStore) {
    let a = tenant(db, "a").await;
    let entries: Vec<Entry> = (0..6).map(|i| entry(a, &format!("k{i}@example.com"))).collect();
    for e in &entries {
        let mut tx = db.begin().await.unwrap();
        insert_entry(&mut tx, e).await.unwrap();
        toggle_vsync(&mut tx, a, "EMAIL", None, e.cid.as_deref(), t0()).await.unwrap();
        tx.commit().await.unwrap();
    }
    // Remove two in a different order than they were added.
    for e in [&entries[4], &entries[1]] {
        let mut gone = e.clone();
        gone.status = EntryStatus::Inactive;
        let mut tx = db.begin().await.unwrap();
        save_entry(&mut tx, &gone).await.unwrap();
        toggle_vsync(&mut tx, a, "EMAIL", e.cid.as_deref(), None, t0()).await.unwrap();
        tx.commit().await.unwrap();
    }
    let running = db.vsync_state(a, "EMAIL", t0()).await.unwrap().local_vsync;
    let kept: Vec<Cid> =
        [0, 2, 3, 5].iter().map(|i| Cid::from_hex(entries[*i].cid.as_deref().unwrap()).unwrap()).collect();
    assert_eq!(running, VSync::of(&kept).to_hex());
    assert_eq!(db.recompute_vsync(a, "EMAIL", t0()).await.unwrap().to_hex(), running);
    assert_eq!(db.vsync_state(a, "PHONE", t0()).await.unwrap().local_vsync, "0".repeat(64));
}

async fn anti_scan_buckets_spend_and_refill(db: &TestStore) {
    let a = tenant(db, "a").await;
    let bucket = TokenBucket { capacity: 100, refill_per_minute: 2 };
    let full = db.charge_bucket(a, "acct", bucket, 0, t0()).await.unwrap();
    assert_eq!(full.tokens, 100_000);
    for _ in 0..5 {
        assert!(db.charge_bucket(a, "acct", bucket, 20, t0()).await.unwrap().admitted);
    }
    let empty = db.charge_bucket(a, "acct", bucket, 20, t0()).await.unwrap();
    assert!(!empty.admitted, "a balance of 0 admits nothing");
    assert_eq!(empty.tokens, 0, "a refused request spends nothing");
    let later = db.charge_bucket(a, "acct", bucket, 20, t0() + TimeDelta::seconds(30)).await.unwrap();
    assert!(later.admitted, "2 tokens a minute: one token after 30 s admits a 20-token reservation");
    assert_eq!(later.tokens, -19_000, "and the balance goes negative, as DICT's does");
    let refunded = db.refund_bucket(a, "acct", bucket, 19, t0() + TimeDelta::seconds(30)).await.unwrap();
    assert_eq!(refunded.tokens, 0);
    assert!(!db.charge_bucket(a, "acct", bucket, 1, t0() + TimeDelta::seconds(30)).await.unwrap().admitted);
    assert!(db.charge_bucket(a, "other", bucket, 0, t0()).await.unwrap().admitted, "buckets are per scope");
    let capped = db.refund_bucket(a, "other", bucket, 50, t0()).await.unwrap();
    assert_eq!(capped.tokens, 100_000, "a refund never fills past the size");
}

async fn parallel_reservations_each_spend_their_cost_and_may_overdraw(db: &TestStore) {
    let a = tenant(db, "a").await;
    let bucket = TokenBucket { capacity: 100, refill_per_minute: 2 };
    // 8 reservations of 20 at once against 100 tokens: every one admitted while the balance was
    // positive is charged in full, none is lost to a race, and the balance ends negative.
    let calls = (0..8).map(|_| {
        let db = db.store.clone();
        tokio::spawn(async move { db.charge_bucket(a, "acct", bucket, 20, t0()).await.unwrap() })
    });
    let results: Vec<_> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let admitted = results.iter().filter(|r| r.admitted).count() as i64;
    assert_eq!(admitted, 5, "100 tokens admit exactly five 20-token reservations: {results:?}");
    let balance = db.charge_bucket(a, "acct", bucket, 0, t0()).await.unwrap();
    assert_eq!(balance.tokens, 100_000 - admitted * 20_000);
    // From a balance of 1 token, parallel reservations: only the first is admitted, to -19.
    db.refund_bucket(a, "acct", bucket, 1, t0()).await.unwrap();
    let calls = (0..4).map(|_| {
        let db = db.store.clone();
        tokio::spawn(async move { db.charge_bucket(a, "acct", bucket, 20, t0()).await.unwrap() })
    });
    let results: Vec<_> = futures::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results.iter().filter(|r| r.admitted).count(), 1, "{results:?}");
    assert_eq!(db.charge_bucket(a, "acct", bucket, 0, t0()).await.unwrap().tokens, -19_000);
}

async fn fraud_markers_belong_to_the_tenant_that_registered_them(db: &TestStore) {
    let a = tenant(db, "a").await;
    let b = tenant(db, "b").await;
    let marker = |tenant: Uuid, id: &str| FraudMarkerOwner {
        tenant_id: tenant,
        btg_id: id.into(),
        document: "12345678909".into(),
        fraud_type: "MULE_ACCOUNT".into(),
        key: None,
        created_at: t0(),
    };
    db.record_fraud_marker(&marker(a, "m-1")).await.unwrap();
    db.record_fraud_marker(&marker(a, "m-2")).await.unwrap();
    // The same BTG id recorded again (even for another tenant) keeps its first owner.
    db.record_fraud_marker(&marker(b, "m-1")).await.unwrap();
    assert!(db.owns_fraud_marker(a, "m-1").await.unwrap());
    assert!(!db.owns_fraud_marker(b, "m-1").await.unwrap());
    assert!(!db.owns_fraud_marker(a, "m-3").await.unwrap());
    let mut ids = db.fraud_marker_ids(a, "12345678909").await.unwrap();
    ids.sort();
    assert_eq!(ids, ["m-1", "m-2"]);
    assert!(db.fraud_marker_ids(b, "12345678909").await.unwrap().is_empty());
    assert!(db.fraud_marker_ids(a, "98765432100").await.unwrap().is_empty());
    assert!(db.end_to_end_id_tenants("E12345678202601011200abcdefghijk").await.unwrap().is_empty());
}
