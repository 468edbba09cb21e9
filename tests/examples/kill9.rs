//! kill -9 under load: one `pix-host serve` process on a fresh PostgreSQL database, the
//! simulators in a process of their own (`pix-host sandbox`), clients running cash-outs and BTG
//! sending cash-ins, while the host is killed with SIGKILL at random moments and restarted, N
//! times. Then, once the sweeper has read back whatever the kills left half done: every transfer
//! is final, the ledger balances (and each account moved by exactly the host's completed
//! transfers), no EndToEndId was paid twice, no webhook event was lost, no job is left. Writes
//! `bench/kill9.md`; exits non-zero on any violation.
//!
//! ```sh
//! PIX_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p pix-e2e --example kill9 -- --kills 20 [--clients 8] [--seed 7]
//! ```

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pix_e2e::bench::load_average;
use pix_e2e::cluster::{self, Cluster, ClusterOptions, Load, LoadCounts, Verdict};
use rand::{Rng, SeedableRng};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kills = cluster::arg("--kills").unwrap_or(20);
    let clients = cluster::arg("--clients").unwrap_or(8) as usize;
    let seed = cluster::arg("--seed").unwrap_or(7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let Some(mut cluster) = Cluster::create("pix_kill9", &["all"], &ClusterOptions::default()).await? else {
        anyhow::bail!("set {} to a PostgreSQL server: the kill test runs on PostgreSQL", pix_e2e::PG_ENV);
    };
    let setup = cluster.start_with_tenant(0).await?;
    let load = Load::new(&cluster, &setup.tenant, cluster.api_urls());
    let load_before = load_average();
    println!("kill -9: {kills} kills, {clients} clients, seed {seed}");
    let started = Instant::now();
    let clients_tasks = load.spawn(clients, 5);

    let mut downtime = Duration::ZERO;
    for k in 1..=kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..3000))).await;
        cluster.hosts[0].kill9();
        let down = Instant::now();
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1000))).await;
        cluster.hosts[0].start().await?;
        downtime += down.elapsed();
        println!("kill {k}/{kills}: down {:.2} s", down.elapsed().as_secs_f64());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop(clients_tasks).await;
    let load_seconds = started.elapsed();
    let settle_started = Instant::now();
    let verdict = setup.settle_and_check(&cluster, &load, Duration::from_secs(300)).await?;
    let settle = settle_started.elapsed();

    let report = report(kills, clients, seed, &load.counts, &verdict, load_seconds, downtime, settle, &load_before);
    cluster::finish(cluster, &verdict, &report, "kill9.md")
}

#[allow(clippy::too_many_arguments, reason = "one report's figures")]
fn report(
    kills: u64,
    clients: usize,
    seed: u64,
    counts: &LoadCounts,
    v: &Verdict,
    load_seconds: Duration,
    downtime: Duration,
    settle: Duration,
    load_before: &str,
) -> String {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut md = format!(
        "# kill -9 under load\n\nWritten by `cargo run{profile} -p pix-e2e --example kill9 -- --kills {kills} \
         --clients {clients} --seed {seed}` (tests/examples/kill9.rs) on PostgreSQL. Machine: {cpus} logical CPUs \
         shared by PostgreSQL, the host, the simulators and the clients; load average before / after: {load_before} / \
         {load_after}.\n\n\
         **{kills} SIGKILLs** of the one `pix-host serve` process at random moments (0.5–3 s apart, restarted after \
         0–1 s) during {load:.0} s of load; the host was down {down:.1} s in all. Everything settled {settle:.1} s \
         after the load stopped. **Violations: {violations}.**\n\n\
         | operations | count |\n|---|---:|\n\
         | cash-outs started (initiate + process, each with an idempotency key) | {started} |\n\
         | cash-outs accepted (process answered 2xx, perhaps after retries) | {accepted} |\n\
         | cash-outs refused (final 4xx) | {refused} |\n\
         | cash-outs whose retried `process` (same key, after the crash) got a 409 conflict instead of the outcome (a violation) | {conflicts} |\n\
         | cash-outs abandoned (no answer within 90 s) | {abandoned} |\n\
         | cash-ins sent by the simulated BTG | {cashins} |\n\
         | client retries (connection refused or reset, 5xx, key in flight) | {retries} |\n\
         | webhook events recorded (all received) | {events} |\n\
         | webhook events received more than once (at least once delivery) | {dups} |\n\
         | jobs done / needing more than one attempt | {jobs} / {retried} |\n\
         | policy decisions / fail-safe | {decisions} / {failsafe} |\n\n",
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        profile = if cfg!(debug_assertions) { "" } else { " --release" },
        load_after = load_average(),
        load = load_seconds.as_secs_f64(),
        down = downtime.as_secs_f64(),
        settle = settle.as_secs_f64(),
        violations = v.violations.len(),
        started = n(&counts.cashouts_started),
        accepted = n(&counts.cashouts_accepted),
        refused = n(&counts.cashouts_refused),
        conflicts = n(&counts.conflicts_on_retry),
        abandoned = n(&counts.cashouts_abandoned),
        cashins = n(&counts.cashins_sent),
        retries = n(&counts.retries),
        events = v.webhook_events,
        dups = v.webhook_duplicates,
        jobs = v.jobs_done,
        retried = v.jobs_retried,
        decisions = v.decisions,
        failsafe = v.failsafe_decisions,
    );
    md.push_str(&v.markdown());
    md
}
