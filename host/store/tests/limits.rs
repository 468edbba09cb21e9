//! Per-tenant transfer limits on both backends: defaults, replacement, isolation, refusal.

use chrono::{DateTime, Utc};
use pix_core::money::Money;
use pix_store::limits::TransferLimits;
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

backend_tests!(limits_default_replace_and_stay_per_tenant, invalid_limits_and_unknown_tenants_are_refused);

async fn limits_default_replace_and_stay_per_tenant(db: &TestStore) {
    let (a, b) = (tenant(db, "a").await, tenant(db, "b").await);
    assert_eq!(db.transfer_limits(a).await.unwrap(), TransferLimits::default(), "unset means defaults");

    let strict = TransferLimits {
        max_transfer_amount: Some(Money::from_centavos(92_233_720_368_547_758)),
        max_fee: Some(Money::ZERO),
        fee_accounts: vec!["@tarifas".into(), "@fees_revenue".into()],
    };
    db.set_transfer_limits(a, &strict, t0()).await.unwrap();
    assert_eq!(db.transfer_limits(a).await.unwrap(), strict, "large centavos and a zero cap round-trip exactly");
    assert_eq!(db.transfer_limits(b).await.unwrap(), TransferLimits::default(), "another tenant is untouched");

    let relaxed =
        TransferLimits { max_transfer_amount: None, max_fee: Some(Money::from_centavos(500)), fee_accounts: vec![] };
    db.set_transfer_limits(a, &relaxed, t0()).await.unwrap();
    assert_eq!(db.transfer_limits(a).await.unwrap(), relaxed, "a second write replaces every field");
}

async fn invalid_limits_and_unknown_tenants_are_refused(db: &TestStore) {
    let a = tenant(db, "a").await;
    let bad = TransferLimits { max_transfer_amount: Some(Money::ZERO), ..TransferLimits::default() };
    assert!(
        matches!(db.set_transfer_limits(a, &bad, t0()).await, Err(StoreError::Conflict(m)) if m.contains("maxTransferAmount"))
    );
    assert_eq!(db.transfer_limits(a).await.unwrap(), TransferLimits::default(), "nothing was stored");
    assert!(matches!(
        db.set_transfer_limits(Uuid::new_v4(), &TransferLimits::default(), t0()).await,
        Err(StoreError::NotFound)
    ));
}
