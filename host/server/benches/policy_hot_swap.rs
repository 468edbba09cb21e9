//! Hot swap at the HTTP level: concurrent clients post `POST /v1/fees/quote` as fast as they can
//! while an operator activates two fee components in turn through the admin API. Every answer
//! must be a 200 from one of the two components, with that component's fee; anything else counts
//! as a failed decision. Results go to `bench/policy-hot-swap.md` (+ `.json`).
//!
//! Run: `cargo bench -p pix-server --bench policy-hot-swap` (SQLite in a temp dir; with
//! `PIX_TEST_DATABASE_URL` set, PostgreSQL). `PIX_SWAPS` (default 100), `PIX_CLIENTS` (default 8)
//! and `PIX_SWAP_INTERVAL_MS` (default 40) change the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use pix_core::clock::{Clock, ManualClock};
use pix_server::app::{AppState, router};
use pix_server::config::Config;
use pix_server::integrations::Integrations;
use pix_server::policies::PolicyRuntime;
use pix_store::testing::TestStore;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "hot-swap-bench-webhook-secret-01";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    /// Transport errors, non-200 answers, unreadable bodies.
    failed: AtomicU64,
    /// A 200 whose component is neither of the two, or whose fee is not that component's fee.
    wrong: AtomicU64,
    by_a: AtomicU64,
    by_b: AtomicU64,
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("policy-hot-swap: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let swaps: u32 = env_or("PIX_SWAPS", 100);
    let clients: usize = env_or("PIX_CLIENTS", 8);
    let interval = Duration::from_millis(env_or("PIX_SWAP_INTERVAL_MS", 40));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let load_before = load_average();

    let (db, backend) = match TestStore::postgres().await {
        Some(db) => (db, "PostgreSQL"),
        None => (TestStore::sqlite().await, "SQLite"),
    };
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let mut config = Config::default();
    config.btg_webhook.hmac_secret = Some(SECRET.into());
    let sandbox = pix_server::embedded::start_sandbox(42, None, SECRET).await?;
    let policies = PolicyRuntime::with_default_limits(db.store.clone(), clock.clone(), &root.join("policies")).await?;
    let state = AppState::new(
        db.store.clone(),
        config,
        clock.clone(),
        Arc::new(Integrations::sandbox(sandbox.integrations.clone())),
        policies,
    );
    let admin = db.store.issue_token(None, "hot-swap bench", clock.now()).await?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    tokio::spawn(pix_server::cli::serve_http(listener, router(state), shutdown.clone()));
    let http = reqwest::Client::new();

    let data = &sandbox.data;
    let tenant: Value = http
        .post(format!("{url}/v1/admin/tenants"))
        .bearer_auth(&admin)
        .json(&json!({"name": "hot-swap", "ispb": data.ispb,
            "midazOrganizationId": data.organization_id, "midazLedgerId": data.ledger_id}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tenant_id = tenant["tenant"]["id"].as_str().unwrap_or_default().to_owned();
    let token = tenant["credential"]["token"].as_str().unwrap_or_default().to_owned();

    // The two versions: the shipped default fee (0.99 % for a merchant) and the example
    // institution (0.79 %), both already registered at start.
    let quote_body =
        json!({"operation": "CASH_IN", "amount": "500.00", "payeeType": "LEGAL", "accountSegment": "merchant"});
    let quote = move |http: reqwest::Client, url: String, token: String| {
        let body = quote_body.clone();
        async move { http.post(format!("{url}/v1/fees/quote")).bearer_auth(token).json(&body).send().await }
    };
    let first: Value = quote(http.clone(), url.clone(), token.clone()).await?.json().await?;
    let sha_a = first["policySha256"].as_str().unwrap_or_default().to_owned();
    let sha_b = hex_sha256(&std::fs::read(root.join("policies/example-institution.wasm"))?);
    let (fee_a, fee_b) = ("4.95", "3.95");
    anyhow::ensure!(first["fee"] == fee_a, "unexpected default fee: {first}");

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, url, token, counters, stop) =
            (http.clone(), url.clone(), token.clone(), counters.clone(), stop.clone());
        let (sha_a, sha_b, quote) = (sha_a.clone(), sha_b.clone(), quote.clone());
        workers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = match quote(http.clone(), url.clone(), token.clone()).await {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                    _ => None,
                };
                let Some(answer) = answer else {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let sha = answer["policySha256"].as_str().unwrap_or_default();
                let fee = answer["fee"].as_str().unwrap_or_default();
                if sha == sha_a && fee == fee_a {
                    counters.by_a.fetch_add(1, Ordering::Relaxed);
                } else if sha == sha_b && fee == fee_b {
                    counters.by_b.fetch_add(1, Ordering::Relaxed);
                } else {
                    counters.wrong.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                counters.ok.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    // Let the clients reach a steady rate, then swap.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let before = counters.ok.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
    let mut swap_ms = Vec::with_capacity(swaps as usize);
    let mut swap_errors = 0u32;
    for i in 0..swaps {
        let sha = if i % 2 == 0 { &sha_b } else { &sha_a };
        let t = Instant::now();
        let response = http
            .post(format!("{url}/v1/admin/policies/{sha}/activate"))
            .bearer_auth(&admin)
            .json(&json!({"kind": "fee", "tenantId": tenant_id}))
            .send()
            .await;
        if !matches!(&response, Ok(r) if r.status() == 200) {
            swap_errors += 1;
        }
        swap_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(interval).await;
    }
    let elapsed = started.elapsed();
    let during = counters.ok.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}
    shutdown.cancel();
    sandbox.handle.shutdown();

    swap_ms.sort_by(f64::total_cmp);
    let pct = |q: f64| swap_ms.get(((swap_ms.len() as f64 * q) as usize).min(swap_ms.len().saturating_sub(1))).copied();
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let result = json!({
        "backend": backend,
        "clients": clients,
        "swaps": swaps,
        "swap_errors": swap_errors,
        "swap_interval_ms": interval.as_millis() as u64,
        "seconds_swapping": elapsed.as_secs_f64(),
        "decisions_while_swapping": during,
        "decisions_per_second": during as f64 / elapsed.as_secs_f64(),
        "decisions_total": get(&counters.ok) + get(&counters.failed) + get(&counters.wrong),
        "failed": get(&counters.failed),
        "wrong_component_or_fee": get(&counters.wrong),
        "by_default_fee": get(&counters.by_a),
        "by_example_institution": get(&counters.by_b),
        "activation_ms_p50": pct(0.5),
        "activation_ms_max": swap_ms.last().copied(),
        "build": if cfg!(debug_assertions) { "debug (unoptimized)" } else { "optimized (bench profile)" },
        "load_average_before": load_before,
        "load_average_after": load_average(),
    });
    println!("{result:#}");
    write_report(&root.join("bench"), &result)?;
    anyhow::ensure!(
        get(&counters.failed) == 0 && get(&counters.wrong) == 0 && swap_errors == 0,
        "failed decisions or swaps: {result}"
    );
    Ok(())
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn write_report(dir: &std::path::Path, r: &Value) -> std::io::Result<()> {
    let n = |f: &str| r[f].as_f64().unwrap_or(f64::NAN);
    let failures = r["failed"].as_u64().unwrap_or(u64::MAX) + r["wrong_component_or_fee"].as_u64().unwrap_or(u64::MAX);
    let md = format!(
        "# Policy hot swap over HTTP\n\n\
         Written by `cargo bench -p pix-server --bench policy-hot-swap`: a host on a loopback port \
         ({backend}), {clients} concurrent clients posting `POST /v1/fees/quote` for one tenant in a \
         loop, while the admin API activates the shipped default fee and `example-institution.wasm` \
         in turn for that tenant, {swaps} times, one every {interval} ms. Each answer must be a 200 \
         from one of the two components with that component's fee (R$ 4.95 or R$ 3.95 on R$ 500 to a \
         merchant). Every decision is also recorded in the decision log.\n\n\
         Machine: {cpus} logical CPUs (the clients, the host and the database share them); {build} \
         build. Load average before / after: {before} / {after}.\n\n\
         | measure | value |\n|---|---:|\n\
         | activations (swaps) | {swaps} ({swap_errors} failed) |\n\
         | time swapping | {secs:.2} s |\n\
         | decisions while swapping | {during} ({rate:.0}/s) |\n\
         | decisions in the whole run | {total} |\n\
         | answered by the default fee / the example institution | {by_a} / {by_b} |\n\
         | **failed decisions** (error, or not one of the two components' answers) | **{failures}** |\n\
         | activation request p50 / max | {p50:.1} ms / {max:.1} ms |\n",
        backend = r["backend"].as_str().unwrap_or("?"),
        clients = r["clients"],
        swaps = r["swaps"],
        interval = r["swap_interval_ms"],
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        build = r["build"].as_str().unwrap_or("?"),
        before = r["load_average_before"].as_str().unwrap_or("?"),
        after = r["load_average_after"].as_str().unwrap_or("?"),
        swap_errors = r["swap_errors"],
        secs = n("seconds_swapping"),
        during = r["decisions_while_swapping"],
        rate = n("decisions_per_second"),
        total = r["decisions_total"],
        by_a = r["by_default_fee"],
        by_b = r["by_example_institution"],
        p50 = n("activation_ms_p50"),
        max = n("activation_ms_max"),
    );
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("policy-hot-swap.md"), md)?;
    std::fs::write(dir.join("policy-hot-swap.json"), format!("{r:#}\n"))
}
