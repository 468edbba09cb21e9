//! Cash-out load driver: N concurrent clients run initiate + process against a real pix-host
//! (router, workers and webhook ingress, as `serve` runs them) with the simulators on loopback,
//! until every payment is confirmed by BTG and its Midaz hold committed. The same clients then
//! run two baselines in the same process: `GET /health`, and a trivial endpoint doing one
//! PostgreSQL insert. Results go to `bench/cashout-load.md` and `bench/cashout-load.json`.
//!
//! ```sh
//! PIX_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p pix-e2e --example cashout_load -- [clients] [cash-outs]
//! ```
//!
//! Without `PIX_TEST_DATABASE_URL` it runs on SQLite and says so in the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pix_core::transfer::TransferStatus;
use pix_e2e::bench::{BenchHost, BenchTenant, load_average, serve};
use pix_store::testing::TestStore;
use serde_json::{Value, json};

/// How long PostgreSQL may take to publish a connection's transaction counts.
const STATS_DELAY: Duration = Duration::from_secs(11);

const SECRET: &str = "load-webhook-secret-0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let clients = args.first().copied().unwrap_or(32);
    let total = args.get(1).copied().unwrap_or(3_000);

    let mut host = BenchHost::start(7, SECRET).await?;
    // The cash-out path also runs the outbound webhook engine, as `serve` does.
    pix_server::webhooks::spawn_workers(&host.state, &host.shutdown, &mut host.background);
    let BenchHost { db, backend, sandbox, url, shutdown, .. } = &host;
    let baseline_url = serve(insert_baseline(db).await?, shutdown).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let BenchTenant { id: tenant_id, token } = host.tenant(&http, "Load").await?;
    let data = &sandbox.data;
    let payer = data.accounts.iter().find(|a| a.alias == "@acme").map(|a| a.account_id.clone()).unwrap_or_default();

    let load_before = load_average();
    println!("{backend}: {clients} clients, {total} cash-outs");

    // Baselines first, with the same clients and as many requests.
    let health = run(clients, total, {
        let (http, url) = (http.clone(), url.clone());
        move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move { vec![timed(http.get(format!("{url}/health")).send()).await] }
        }
    })
    .await;
    let insert = run(clients, total, {
        let (http, url) = (http.clone(), baseline_url.clone());
        move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move { vec![timed(http.post(format!("{url}/insert")).send()).await] }
        }
    })
    .await;

    // Initiations alone: bearer auth, the X-Account-Id check against Midaz and CRM, one insert.
    let manual = |i: usize| {
        json!({"type": "MANUAL", "amount": "1.00", "description": format!("load {i}"),
            "destination": {"ispb": "87654321", "branch": "0042", "account": "7001",
                            "accountType": "CACC", "document": "52998224725", "name": "Ana Pereira"}})
    };
    let initiations = run(clients, total, {
        let (http, url, token, payer) = (http.clone(), url.clone(), token.clone(), payer.clone());
        move |i| {
            let (http, url, token, payer) = (http.clone(), url.clone(), token.clone(), payer.clone());
            async move {
                let request = http
                    .post(format!("{url}/v1/transfers/cashout/initiate"))
                    .bearer_auth(&token)
                    .header("X-Account-Id", &payer)
                    .json(&manual(i));
                vec![timed(request.send()).await]
            }
        }
    })
    .await;

    // Cash-outs: initiate (MANUAL, so DICT's anti-scan buckets do not cap the run) + process.
    tokio::time::sleep(STATS_DELAY).await;
    let commits_before = commits(db).await;
    let writes_before = table_writes(db).await;
    let started = Instant::now();
    let cashouts = run(clients, total, {
        let (http, url, token, payer) = (http.clone(), url.clone(), token.clone(), payer.clone());
        move |i| {
            let (http, url, token, payer) = (http.clone(), url.clone(), token.clone(), payer.clone());
            async move {
                let initiate = http
                    .post(format!("{url}/v1/transfers/cashout/initiate"))
                    .bearer_auth(&token)
                    .header("X-Account-Id", &payer)
                    .json(&manual(i));
                let (first, body) = timed_json(initiate.send()).await;
                let initiation = body["initiationId"].as_str().unwrap_or_default().to_owned();
                let process = http
                    .post(format!("{url}/v1/transfers/cashout/process"))
                    .bearer_auth(&token)
                    .header("X-Account-Id", &payer)
                    .json(&json!({"initiationId": initiation}));
                vec![first, timed(process.send()).await]
            }
        }
    })
    .await;
    let requests_done = started.elapsed();
    // Until BTG confirmed every payment and the host committed every hold.
    let tenant: uuid::Uuid = tenant_id.parse()?;
    let payer_id: uuid::Uuid = payer.parse()?;
    let filter =
        |status: TransferStatus| pix_store::transfers::TransferFilter { status: Some(status), ..Default::default() };
    // Watched on the simulated ledger (no hold left pending), not by polling the database: the
    // polls would be counted among the commits of the cash-outs. The database is asked only once
    // the ledger is settled, for the last saves that follow the last commits.
    let deadline = Instant::now() + Duration::from_secs(600);
    let pending_holds = || -> i64 {
        let state = sandbox.handle.midaz_state();
        state["ledgers"].as_array().into_iter().flatten().filter_map(|l| l["pendingTransactions"].as_i64()).sum()
    };
    while Instant::now() < deadline && pending_holds() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while Instant::now() < deadline {
        let open = [TransferStatus::Pending, TransferStatus::Processing];
        let mut waiting = 0;
        for status in open {
            waiting += db.store.list_transfers(tenant, Some(payer_id), &filter(status), 1, 0).await?.1;
        }
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_settled = started.elapsed();
    // PostgreSQL publishes an idle connection's counters up to 10 s late.
    tokio::time::sleep(STATS_DELAY).await;
    let commits_during = commits(db).await.zip(commits_before).map(|(after, before)| after - before);
    let writes_during = writes_between(&writes_before, table_writes(db).await);
    let completed = db.store.list_transfers(tenant, Some(payer_id), &filter(TransferStatus::Completed), 1, 0).await?.1;
    let failed = db.store.list_transfers(tenant, Some(payer_id), &filter(TransferStatus::Failed), 1, 0).await?.1;
    let load_after = load_average();
    shutdown.cancel();

    let report = Report {
        backend,
        clients,
        total,
        health,
        insert,
        initiations,
        cashouts,
        requests_done,
        all_settled,
        completed,
        failed,
        commits_during,
        writes_during,
        load_before,
        load_after,
    };
    report.write()?;
    println!("{}", report.markdown());
    Ok(())
}

/// Serves `router` on a loopback port; returns its base URL.
/// The insert baseline: one route, one `INSERT` on the host's own pool, nothing else.
async fn insert_baseline(db: &TestStore) -> anyhow::Result<axum::Router> {
    let store = db.store.clone();
    pix_store::on_pool!(store.db(), pool => {
        sqlx::query("CREATE TABLE load_baseline (id TEXT PRIMARY KEY, at TEXT NOT NULL)").execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(axum::Router::new().route(
        "/insert",
        axum::routing::post(move || {
            let store = store.clone();
            async move {
                let id = uuid::Uuid::now_v7().to_string();
                let done = pix_store::on_pool!(store.db(), pool => {
                    sqlx::query("INSERT INTO load_baseline (id, at) VALUES ($1, $2)")
                        .bind(id)
                        .bind(chrono::Utc::now().to_rfc3339())
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                });
                if done.is_ok() {
                    axum::http::StatusCode::CREATED
                } else {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    ))
}

/// One call's latency and whether it succeeded (2xx).
type Sample = (Duration, bool);

async fn timed(request: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>) -> Sample {
    let started = Instant::now();
    let ok = matches!(request.await, Ok(r) if r.status().is_success());
    (started.elapsed(), ok)
}

async fn timed_json(request: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>) -> (Sample, Value) {
    let started = Instant::now();
    match request.await {
        Ok(r) if r.status().is_success() => {
            let body = r.json().await.unwrap_or_default();
            ((started.elapsed(), true), body)
        }
        _ => ((started.elapsed(), false), Value::Null),
    }
}

/// Runs `total` iterations of `op` over `clients` concurrent tasks; per step of `op`, the samples.
struct Phase {
    elapsed: Duration,
    steps: Vec<Vec<Sample>>,
}

async fn run<F, Fut>(clients: usize, total: usize, op: F) -> Phase
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<Sample>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (op, next) = (op.clone(), next.clone());
        tasks.spawn(async move {
            let mut mine: Vec<Vec<Sample>> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return mine;
                }
                for (step, sample) in op(i).await.into_iter().enumerate() {
                    if mine.len() <= step {
                        mine.resize(step + 1, Vec::new());
                    }
                    mine[step].push(sample);
                }
            }
        });
    }
    let mut steps: Vec<Vec<Sample>> = Vec::new();
    while let Some(Ok(mine)) = tasks.join_next().await {
        for (step, samples) in mine.into_iter().enumerate() {
            if steps.len() <= step {
                steps.resize(step + 1, Vec::new());
            }
            steps[step].extend(samples);
        }
    }
    Phase { elapsed: started.elapsed(), steps }
}

/// (p50, p99) in milliseconds, and failures.
fn percentiles(samples: &[Sample]) -> (f64, f64, usize) {
    let mut d: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    d.sort();
    let at = |q: f64| {
        d.get(((d.len() as f64 * q) as usize).min(d.len().saturating_sub(1))).map_or(0.0, |x| x.as_secs_f64() * 1e3)
    };
    (at(0.50), at(0.99), samples.iter().filter(|s| !s.1).count())
}

/// Rows inserted, updated and deleted per table of this schema (PostgreSQL): where the writes of
/// a cash-out go.
async fn table_writes(db: &TestStore) -> Vec<(String, i64)> {
    match db.store.db() {
        pix_store::Db::Postgres(pool) => sqlx::query_as(
            "SELECT relname::TEXT, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables
             WHERE schemaname = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap_or_default(),
        pix_store::Db::Sqlite(_) => Vec::new(),
    }
}

/// `after - before` per table, largest first, without the tables nothing wrote to.
fn writes_between(before: &[(String, i64)], after: Vec<(String, i64)>) -> Vec<(String, i64)> {
    let mut delta: Vec<(String, i64)> = after
        .into_iter()
        .map(|(table, n)| {
            let earlier = before.iter().find(|(t, _)| *t == table).map_or(0, |(_, b)| *b);
            (table, n - earlier)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    delta.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    delta
}

/// PostgreSQL's count of committed transactions in this database (`None` on SQLite).
async fn commits(db: &TestStore) -> Option<i64> {
    match db.store.db() {
        pix_store::Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                .fetch_one(pool)
                .await
                .ok()
        }
        pix_store::Db::Sqlite(_) => None,
    }
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

struct Report {
    backend: &'static str,
    clients: usize,
    total: usize,
    health: Phase,
    insert: Phase,
    initiations: Phase,
    cashouts: Phase,
    requests_done: Duration,
    all_settled: Duration,
    completed: i64,
    failed: i64,
    /// PostgreSQL transactions committed in the database during the cash-out phase.
    commits_during: Option<i64>,
    /// Rows written per table during the cash-out phase (PostgreSQL).
    writes_during: Vec<(String, i64)>,
    load_before: String,
    load_after: String,
}

impl Report {
    fn rows(&self) -> Vec<(&'static str, f64, (f64, f64, usize))> {
        let empty = Vec::new();
        let step = |p: &Phase, i: usize| percentiles(p.steps.get(i).unwrap_or(&empty));
        vec![
            ("GET /health", rate(self.total, self.health.elapsed), step(&self.health, 0)),
            ("POST one-insert baseline", rate(self.total, self.insert.elapsed), step(&self.insert, 0)),
            ("initiate alone (MANUAL)", rate(self.total, self.initiations.elapsed), step(&self.initiations, 0)),
            ("initiate, during cash-outs", rate(self.total, self.cashouts.elapsed), step(&self.cashouts, 0)),
            ("process, during cash-outs", rate(self.total, self.cashouts.elapsed), step(&self.cashouts, 1)),
        ]
    }

    fn completed_per_second(&self) -> f64 {
        rate(self.completed as usize, self.all_settled)
    }

    fn markdown(&self) -> String {
        let health_rate = rate(self.total, self.health.elapsed);
        let insert_rate = rate(self.total, self.insert.elapsed);
        let cps = self.completed_per_second();
        let mut md = format!(
            "# Cash-out load\n\nWritten by `cargo run --release -p pix-e2e --example cashout_load -- {clients} {total}` \
             (tests/examples/cashout_load.rs). Backend: {backend}. Machine: {cpus} logical CPUs; host, workers, simulators \
             and clients share them. Load average before / after: {lb} / {la}.\n\n\
             **Completed cash-outs: {completed} of {total} ({failed} failed) in {settled:.1} s = {cps:.0} per second** \
             (from the first initiate until BTG confirmed the last payment and its hold was committed; the clients \
             finished their calls after {requests:.1} s).\n\n\
             Ratios against the baselines measured in the same run: {r1:.1}× slower than `GET /health` \
             ({health_rate:.0}/s), {r2:.1}× slower than the one-insert endpoint ({insert_rate:.0}/s), i.e. \
             {share:.1} % of the one-insert rate. Target (issue #11): ≥ 10 % of it: **{verdict}**.\n\n\
             | call | throughput /s | p50 ms | p99 ms | failures |\n|---|---:|---:|---:|---:|\n",
            clients = self.clients,
            total = self.total,
            backend = self.backend,
            cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
            lb = self.load_before,
            la = self.load_after,
            completed = self.completed,
            failed = self.failed,
            settled = self.all_settled.as_secs_f64(),
            requests = self.requests_done.as_secs_f64(),
            share = 100.0 * cps / insert_rate.max(1e-9),
            verdict = if cps >= insert_rate / 10.0 { "met" } else { "NOT met" },
            r1 = health_rate / cps.max(1e-9),
            r2 = insert_rate / cps.max(1e-9),
        );
        for (name, throughput, (p50, p99, failures)) in self.rows() {
            md.push_str(&format!("| {name} | {throughput:.0} | {p50:.2} | {p99:.2} | {failures} |\n"));
        }
        if let Some(commits) = self.commits_during {
            let per = commits as f64 / self.completed.max(1) as f64;
            md.push_str(&format!(
                "\nDatabase transactions committed during the cash-out phase: {commits} ({per:.1} per completed \
                 cash-out; the statistics are database-wide and include the workers' polling). With each commit a \
                 WAL flush, the one-insert baseline's {insert_rate:.0} commits/s divided by {per:.1} predicts about \
                 {ceiling:.0} cash-outs/s from commits alone. Target (issue #11): ≤ 8 per cash-out: **{verdict}**.\n",
                ceiling = insert_rate / per.max(1e-9),
                verdict = if per <= 8.0 { "met" } else { "NOT met" },
            ));
        }
        if !self.writes_during.is_empty() {
            md.push_str("\nRows written per table during the cash-out phase:\n\n| table | rows | per cash-out |\n|---|---:|---:|\n");
            for (table, rows) in &self.writes_during {
                let per = *rows as f64 / self.completed.max(1) as f64;
                md.push_str(&format!("| {table} | {rows} | {per:.1} |\n"));
            }
        }
        md
    }

    fn write(&self) -> anyhow::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cashout-load.md"), self.markdown())?;
        let rows: Vec<Value> = self
            .rows()
            .into_iter()
            .map(|(name, throughput, (p50, p99, failures))| {
                json!({"call": name, "throughputPerSecond": throughput, "p50Ms": p50, "p99Ms": p99, "failures": failures})
            })
            .collect();
        let json = json!({"backend": self.backend, "clients": self.clients, "cashouts": self.total,
            "completed": self.completed, "failed": self.failed, "commitsDuringCashouts": self.commits_during, "completedPerSecond": self.completed_per_second(),
            "settledSeconds": self.all_settled.as_secs_f64(), "calls": rows,
            "loadAverageBefore": self.load_before, "loadAverageAfter": self.load_after});
        std::fs::write(dir.join("cashout-load.json"), serde_json::to_string_pretty(&json)?)?;
        Ok(())
    }
}
