//! A tenant's own upstream identity on both backends: one tenant per ledger and per BTG client,
//! inbound secrets rotating with an overlap, and accounts recorded for the first tenant only.

use chrono::{DateTime, Duration, Utc};
use pix_store::tenants::{BtgIdentity, NewTenant};
use pix_store::testing::TestStore;
use pix_store::{StoreError, backend_tests};
use serde_json::json;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123456Z").unwrap().to_utc()
}

fn identity(client: &str) -> BtgIdentity {
    BtgIdentity {
        client_id: client.into(),
        client_secret_ref: format!("env:SECRET_{client}"),
        certificate_file: None,
        private_key_file: None,
    }
}

async fn tenant(db: &TestStore, name: &str, ledger: &str, btg: Option<BtgIdentity>) -> Result<Uuid, StoreError> {
    let new = NewTenant {
        name: name.into(),
        ispb: "12345678".into(),
        midaz_organization_id: Some("org".into()),
        midaz_ledger_id: Some(ledger.into()),
        settings: json!({}),
        btg,
    };
    db.create_tenant(new, t0()).await.map(|t| t.id)
}

backend_tests!(
    ledgers_and_btg_clients_belong_to_one_tenant,
    inbound_secrets_rotate_with_an_overlap,
    an_account_is_recorded_for_the_first_tenant_only,
);

async fn ledgers_and_btg_clients_belong_to_one_tenant(db: &TestStore) {
    let a = tenant(db, "a", "ledger-a", Some(identity("a"))).await.unwrap();
    let got = db.tenant(a).await.unwrap().unwrap();
    assert_eq!(got.btg, Some(identity("a")), "the identity round-trips, as references");

    let same_ledger = tenant(db, "b", "ledger-a", None).await;
    assert!(matches!(&same_ledger, Err(StoreError::Conflict(m)) if m.contains("ledger")), "{same_ledger:?}");
    let same_client = tenant(db, "b", "ledger-b", Some(identity("a"))).await;
    assert!(matches!(&same_client, Err(StoreError::Conflict(m)) if m.contains("BTG client")), "{same_client:?}");

    let b = tenant(db, "b", "ledger-b", None).await.unwrap();
    assert!(matches!(db.set_btg_identity(b, &identity("a"), t0()).await, Err(StoreError::Conflict(_))));
    assert!(matches!(db.set_tenant_ledger(b, "org", "ledger-a", t0()).await, Err(StoreError::Conflict(_))));
    db.set_btg_identity(b, &identity("b"), t0() + Duration::seconds(1)).await.unwrap();
    let b_row = db.tenant(b).await.unwrap().unwrap();
    assert_eq!(b_row.btg, Some(identity("b")));
    assert!(b_row.updated_at > t0(), "a changed identity changes updated_at (clients are rebuilt on it)");
    db.set_inbound_client_subject(b, Some("webhooks.btg.example"), t0()).await.unwrap();
    assert_eq!(db.tenant(b).await.unwrap().unwrap().inbound_client_subject.as_deref(), Some("webhooks.btg.example"));
    assert!(matches!(db.set_btg_identity(Uuid::new_v4(), &identity("c"), t0()).await, Err(StoreError::NotFound)));
}

async fn inbound_secrets_rotate_with_an_overlap(db: &TestStore) {
    let a = tenant(db, "a", "ledger-a", None).await.unwrap();
    let b = tenant(db, "b", "ledger-b", None).await.unwrap();
    assert!(db.inbound_secrets(a, t0()).await.unwrap().is_empty());

    db.rotate_inbound_secret(a, "env:FIRST", t0(), t0()).await.unwrap();
    let t1 = t0() + Duration::hours(1);
    db.rotate_inbound_secret(a, "env:SECOND", t1 + Duration::hours(24), t1).await.unwrap();
    let both = db.inbound_secrets(a, t1).await.unwrap();
    let refs: Vec<_> = both.iter().map(|s| s.secret_ref.as_str()).collect();
    assert_eq!(refs, ["env:SECOND", "env:FIRST"], "current first, the replaced one during the overlap");
    assert_eq!(both[0].retires_at, None);
    assert_eq!(both[1].retires_at, Some(t1 + Duration::hours(24)));
    assert!(db.inbound_secrets(b, t1).await.unwrap().is_empty(), "another tenant's secrets are its own");

    let after = db.inbound_secrets(a, t1 + Duration::hours(25)).await.unwrap();
    assert_eq!(after.iter().map(|s| s.secret_ref.as_str()).collect::<Vec<_>>(), ["env:SECOND"], "the overlap ended");

    // Rotating back to a retired reference makes it current again; a zero overlap retires at once.
    let t2 = t1 + Duration::hours(2);
    db.rotate_inbound_secret(a, "env:FIRST", t2, t2).await.unwrap();
    let now = db.inbound_secrets(a, t2).await.unwrap();
    assert_eq!(now.iter().map(|s| s.secret_ref.as_str()).collect::<Vec<_>>(), ["env:FIRST"]);
}

async fn an_account_is_recorded_for_the_first_tenant_only(db: &TestStore) {
    let a = tenant(db, "a", "ledger-a", None).await.unwrap();
    let b = tenant(db, "b", "ledger-b", None).await.unwrap();
    let account = Uuid::new_v4();
    assert_eq!(db.account_owner(account).await.unwrap(), None);
    assert_eq!(db.claim_account(a, account, "ledger-a", t0()).await.unwrap(), a);
    assert_eq!(db.claim_account(a, account, "ledger-a", t0()).await.unwrap(), a, "claiming again is harmless");
    assert_eq!(db.claim_account(b, account, "ledger-b", t0()).await.unwrap(), a, "the first tenant keeps it");
    assert_eq!(db.account_owner(account).await.unwrap(), Some(a));
}
