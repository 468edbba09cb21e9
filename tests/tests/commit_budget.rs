//! What an authenticated request with `X-Account-Id` costs in PostgreSQL commits
//! (`pg_stat_database.xact_commit`, which counts every autocommitted read too), with the
//! credential and account caches cold and warm. The app runs on a database of its own. The
//! database-wide counter also moves with pool pings and autovacuum, so it is reported; what is
//! asserted is the scans of the tables the auth path reads, which only requests cause.

use pix_e2e::TestApp;
use pix_server::config::Config;
use pix_store::testing::{PG_ENV, TestStore};
use reqwest::Method;
use serde_json::json;

/// A static BR Code: decoding it reads nothing from the database.
const STATIC_CODE: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";

/// Backends report their statistics when idle, at most every 10 s (PostgreSQL 15+); wait until
/// the counter has stopped moving for longer than that.
async fn settled(stats: &sqlx::PgPool, own: &sqlx::PgPool, database: &str) -> (i64, i64) {
    let commits = || async {
        sqlx::query_scalar::<_, i64>("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
            .bind(database)
            .fetch_one(stats)
            .await
            .unwrap()
    };
    let started = std::time::Instant::now();
    let mut last = commits().await;
    let mut stable_since = std::time::Instant::now();
    while stable_since.elapsed() < std::time::Duration::from_secs(11)
        && started.elapsed() < std::time::Duration::from_secs(40)
    {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = commits().await;
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        }
    }
    // Read from the app's database (one commit there, counted in the next window).
    let scans = sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(SUM(COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0)), 0)::BIGINT
         FROM pg_stat_user_tables WHERE relname IN ('api_credentials', 'tenants')",
    )
    .fetch_one(own)
    .await
    .unwrap();
    (last, scans)
}

fn pg_server() -> String {
    let url = std::env::var(PG_ENV).unwrap();
    url.rsplit_once('/').expect("a database URL").0.to_owned()
}

async fn decode(app: &TestApp, token: &str, account: &str) {
    let response = app
        .request(Method::POST, "/v1/qrcodes/decode", token)
        .header("X-Account-Id", account)
        .json(&json!({ "emv": STATIC_CODE }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_warm_caches_costs_no_commit() {
    let Some(mut db) = TestStore::postgres_database().await else {
        eprintln!("{PG_ENV} not set: commit budget not measured");
        return;
    };
    let pix_store::Db::Postgres(pool) = db.db() else { unreachable!("a PostgreSQL test store") };
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await.unwrap();
    let stats = sqlx::PgPool::connect(&std::env::var(PG_ENV).unwrap()).await.unwrap();
    // Each measuring window waits for the statistics to settle (> 10 s): outlive them.
    db.store = db.store.clone().with_credential_ttl(std::time::Duration::from_secs(300));
    let app = TestApp::start(db, Config::default()).await;
    let tenant = app.tenant("budget").await;
    let account = app.sandbox.data.accounts[0].account_id.clone();
    const REQUESTS: i64 = 5;
    // Fresh credentials (issuing one is a commit of its own, made before counting).
    let mut fresh = Vec::new();
    for _ in 0..REQUESTS {
        fresh.push(app.db.issue_token(Some(tenant.id), "budget", chrono::Utc::now()).await.unwrap().token);
    }
    decode(&app, &tenant.token, &account).await;

    let own = sqlx::PgPool::connect(&format!("{}/{database}", pg_server())).await.unwrap();
    let before_cold = settled(&stats, &own, &database).await;
    for token in &fresh {
        decode(&app, token, &account).await;
    }
    let after_cold = settled(&stats, &own, &database).await;
    for _ in 0..REQUESTS {
        decode(&app, &tenant.token, &account).await;
    }
    let after_warm = settled(&stats, &own, &database).await;

    let per_request = |a: (i64, i64), b: (i64, i64)| ((b.0 - a.0) as f64 / REQUESTS as f64, b.1 - a.1);
    let (cold_commits, cold_scans) = per_request(before_cold, after_cold);
    let (warm_commits, warm_scans) = per_request(after_cold, after_warm);
    eprintln!(
        "xact_commit per request (pings and autovacuum included): cold credential {cold_commits}, warm {warm_commits}; \
         auth-table scans: cold {cold_scans}, warm {warm_scans}"
    );
    // An uncached credential is one autocommitted read; its tenant row is cached on its own
    // (the first request of the tenant, before counting, read it).
    assert_eq!(cold_scans, REQUESTS, "cold: each request reads its credential, not its tenant again");
    assert_eq!(warm_scans, 0, "a request whose credential is cached reads nothing to authenticate");
}
