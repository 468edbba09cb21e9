//! Fee decisions checked against a tenant's transfer limits: an answer above the cap is treated
//! like an invalid policy answer (fail-safe, counted, recorded), on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pix_app::transfers::limits::fee_within_limits;
use pix_core::clock::SystemClock;
use pix_core::money::Money;
use pix_policy::{FeeInput, Initiation, LocalTime, Operation, PersonType, Purpose, Weekday};
use pix_server::policies::PolicyRuntime;
use pix_server::policies::runtime::Fee;
use pix_store::limits::TransferLimits;
use pix_store::tenants::NewTenant;
use pix_store::testing::TestStore;
use sha2::{Digest, Sha256};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// A merchant cash-in of R$ 500: the example institution charges 0.79 % (3.95), the default
/// table (and so the fee fail-safe) 0.99 % (4.95).
fn merchant_cash_in() -> FeeInput {
    FeeInput {
        operation: Operation::CashIn,
        initiation: Initiation::Key,
        purpose: Purpose::Transfer,
        amount: 50_000,
        payer_type: PersonType::Natural,
        payee_type: PersonType::Legal,
        account_segment: "merchant".into(),
        intra_psp: false,
        local_time: LocalTime { minute_of_day: 720, weekday: Weekday::Tuesday },
        month_count: 0,
        month_volume: 0,
    }
}

fn capped(max_fee: i64) -> TransferLimits {
    TransferLimits { max_fee: Some(Money::from_centavos(max_fee)), ..TransferLimits::default() }
}

async fn check(db: TestStore) {
    let metrics = pix_server::telemetry::metrics_handle();
    let now = chrono::Utc::now();
    let tenant = db
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                ispb: "12345678".into(),
                midaz_organization_id: None,
                midaz_ledger_id: None,
                settings: serde_json::json!({}),
                btg: None,
            },
            now,
        )
        .await
        .unwrap()
        .id;
    let runtime =
        PolicyRuntime::with_default_limits(db.store.clone(), Arc::new(SystemClock), &policies_dir()).await.unwrap();
    // The shipped components are in the registry; bind the example institution to the tenant.
    let example = hex::encode(Sha256::digest(std::fs::read(policies_dir().join("example-institution.wasm")).unwrap()));
    db.activate_policy(Some(tenant), "fee", &example, &serde_json::json!({}), "test", now).await.unwrap();
    runtime.reload().await.unwrap();
    let default_account = runtime.default_fee_account(tenant);
    assert_eq!(default_account, "@fees_revenue");
    let input = merchant_cash_in();

    let within = capped(395);
    let (fee, sha) = runtime.decide_checked::<Fee>(tenant, &input, fee_within_limits(&within, &default_account)).await;
    assert_eq!((fee.fee, sha.as_str()), (395, example.as_str()), "a fee at the cap is the policy's answer");
    runtime.flush_decisions().await;
    let recorded = db.recent_policy_decisions(tenant, "fee", 1).await.unwrap();
    assert_eq!(recorded[0].outcome, "policy");

    let below = capped(300);
    let (fee, sha) = runtime.decide_checked::<Fee>(tenant, &input, fee_within_limits(&below, &default_account)).await;
    let failsafe = pix_policy::native::fee(&input, &pix_policy::Params::default());
    assert_eq!(fee, failsafe, "an over-cap answer is replaced by the fail-safe, like an invalid answer");
    assert_eq!(fee.fee, 495);
    assert_eq!(sha, example, "the decision is still attributed to the tenant's policy");
    runtime.flush_decisions().await;
    let recorded = db.recent_policy_decisions(tenant, "fee", 1).await.unwrap();
    assert_eq!(recorded[0].outcome, "failsafe:invalid_output", "the decision log records the error");
    assert_eq!(recorded[0].output["fee"], 495);
    let rendered = metrics.render();
    assert!(
        rendered.lines().any(|l| l.starts_with("pix_policy_errors_total")
            && l.contains(r#"kind="fee""#)
            && l.contains(r#"error="invalid_output""#)),
        "counted under the usual policy error labels:\n{rendered}"
    );
    assert!(rendered.contains(r#"pix_policy_failsafe_total{kind="fee"}"#), "{rendered}");

    let (unchecked, _) = runtime.decide::<Fee>(tenant, &input).await;
    assert_eq!(unchecked.fee, 395, "decide without a check is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_over_cap_fee_falls_back_to_the_failsafe_and_is_recorded() {
    check(TestStore::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_over_cap_fee_falls_back_to_the_failsafe_and_is_recorded() {
    if let Some(db) = TestStore::postgres().await {
        check(db).await;
    }
}
