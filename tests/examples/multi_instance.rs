//! Several instances on one PostgreSQL database: `pix-host serve --role api`, `--role workers`
//! and `--role all` share a fresh database, with the simulators in a process of their own.
//! Clients spread their cash-outs over the two API instances (initiate on one, process on the
//! other) while BTG sends cash-ins; meanwhile a tenant's fee policy is switched back and forth,
//! each time through another instance, and the time until every instance applied it is read
//! from their logs (and checked on the API by quotes). Then the `all` instance is killed with
//! SIGKILL and the load goes on. At the end the same checks as the kill test run, and the jobs
//! and webhook deliveries are counted for exactly-once. Writes `bench/multi-instance.md`; exits
//! non-zero on a violation.
//!
//! ```sh
//! PIX_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p pix-e2e --example multi_instance -- [--clients 8] [--activations 10]
//! ```

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use pix_e2e::bench::load_average;
use pix_e2e::cluster::{self, Cluster, ClusterOptions, Load};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = cluster::arg("--clients").unwrap_or(8) as usize;
    let activations = cluster::arg("--activations").unwrap_or(10) as usize;
    let roles = ["api", "workers", "all"];
    let Some(mut cluster) = Cluster::create("pix_multi", &roles, &ClusterOptions::default()).await? else {
        anyhow::bail!("set {} to a PostgreSQL server: instances share a PostgreSQL database", pix_e2e::PG_ENV);
    };
    // BTG posts its webhooks to the `api` instance (the first), which is never killed.
    let setup = cluster.start_with_tenant(0).await?;
    let (admin, tenant, receiver) = (&setup.admin, &setup.tenant, &setup.receiver);
    let api = cluster.api_urls();
    let load = Load::new(&cluster, tenant, api.clone());
    let load_before = load_average();
    println!("{} instances ({}), {clients} clients, {activations} activations", roles.len(), roles.join(", "));
    let started = Instant::now();
    let tasks = load.spawn(clients, 5);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Activations during the load, alternating two fee components, each through another API instance.
    let shas = [cluster::shipped_sha256("example-institution")?, cluster::shipped_sha256("default-fee")?];
    let http = reqwest::Client::new();
    let mut propagation: Vec<Vec<f64>> = vec![Vec::new(); roles.len()];
    let mut quote_failures = 0;
    let mut quotes = 0;
    for round in 0..activations {
        let sha = &shas[round % 2];
        let via = &api[round % api.len()];
        let t0 = Utc::now();
        cluster::activate_fee(via, admin, sha, &tenant.id).await?;
        // Every API instance quotes with it…
        let deadline = Instant::now() + Duration::from_secs(10);
        for url in &api {
            loop {
                quotes += 1;
                let quote = http
                    .post(format!("{url}/v1/fees/quote"))
                    .bearer_auth(&tenant.token)
                    .json(&json!({"operation": "CASH_IN", "amount": "500.00", "payeeType": "LEGAL",
                                  "accountSegment": "merchant"}))
                    .send()
                    .await;
                match quote {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await?;
                        if body["policySha256"] == sha.as_str() || Instant::now() > deadline {
                            break;
                        }
                    }
                    _ => quote_failures += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // …and each instance's log says when it applied it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (i, seconds) in propagation.iter_mut().enumerate() {
            match cluster.policy_applied(i, sha).into_iter().find(|at| *at >= t0) {
                Some(at) => seconds.push((at - t0).as_seconds_f64()),
                None => seconds.push(f64::INFINITY),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Exactly once while every instance is alive: no job claimed twice, no webhook sent twice.
    let (jobs_before_kill, reclaimed_before_kill) = cluster::job_claims(&cluster.db.pool).await?;
    let duplicates_before_kill = receiver.received().values().filter(|(n, _)| *n > 1).count();

    // Kill the `all` instance under load; the clients fail over, the `workers` instance takes its jobs.
    cluster.hosts[2].kill9();
    let killed_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    load.stop(tasks).await;
    let load_seconds = started.elapsed();
    let settle_started = Instant::now();
    let verdict = setup.settle_and_check(&cluster, &load, Duration::from_secs(300)).await?;
    let settle = settle_started.elapsed();

    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let c = &load.counts;
    let mut md = format!(
        "# Several instances on one PostgreSQL database\n\nWritten by `cargo run{profile} -p pix-e2e --example \
         multi_instance -- --clients {clients} --activations {activations}` (tests/examples/multi_instance.rs). \
         Three `pix-host serve` processes on one fresh database: `--role api` (1), `--role workers` (2) and \
         `--role all` (3), `database.max_connections = 16` each, policy polling every 2 s as the fallback of \
         LISTEN/NOTIFY. Machine: {cpus} logical CPUs shared by PostgreSQL, the three instances, the simulators and \
         the clients; load average before / after: {load_before} / {load_after}.\n\n\
         **Violations: {violations}.** {load:.0} s of load; instance 3 was killed (SIGKILL) at {killed:.0} s; \
         everything settled {settle:.1} s after the load stopped.\n\n\
         ## Policy activation\n\n{activations} activations of a tenant's fee policy (alternating \
         `example-institution` and `default-fee`, through instances 1 and 3 in turn) while the load ran. Time from \
         the activation request until each instance logged `policy active` for it (the instance that served the \
         request applies it before answering; the others on NOTIFY):\n\n\
         | instance | role | max s | mean s | all within 1 s | load in the reload, max ms |\n\
         |---|---|---:|---:|---|---:|\n",
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        profile = if cfg!(debug_assertions) { "" } else { " --release" },
        load_after = load_average(),
        violations = verdict.violations.len(),
        load = load_seconds.as_secs_f64(),
        killed = killed_at.as_secs_f64(),
        settle = settle.as_secs_f64(),
    );
    let mut all_within = true;
    for (i, seconds) in propagation.iter().enumerate() {
        let max = seconds.iter().copied().fold(0.0, f64::max);
        let mean = seconds.iter().sum::<f64>() / seconds.len().max(1) as f64;
        all_within &= max < 1.0;
        let load_ms = cluster.policy_load_ms(i).into_iter().fold(0.0, f64::max);
        md.push_str(&format!(
            "| {} | {} | {max:.3} | {mean:.3} | {} | {load_ms:.1} |\n",
            i + 1,
            roles[i],
            if max < 1.0 { "yes" } else { "**no**" }
        ));
    }
    md.push_str(&format!(
        "\nQuotes polled on the API instances until they answered with the new version: {quotes}, failed: \
         {quote_failures}. Policy decisions recorded for the tenant: {decisions}, fail-safe: {failsafe}. \
         **Within one second on every instance: {within}; failed decisions: {failed}.**\n\n\
         ## Exactly once, and one instance killed\n\n\
         | | count |\n|---|---:|\n\
         | jobs before the kill / claimed more than once | {jobs_before_kill} / {reclaimed_before_kill} |\n\
         | webhook events received more than once before the kill | {duplicates_before_kill} |\n\
         | jobs in all / needing more than one attempt (the killed instance's, after its lease) | {jobs} / {retried} |\n\
         | webhook events recorded (all received) / received more than once | {events} / {dups} |\n\
         | cash-outs started / accepted / refused / abandoned | {started} / {accepted} / {refused} / {abandoned} |\n\
         | retried `process` answered a 409 conflict instead of the outcome (a violation) | {conflicts} |\n\
         | cash-ins sent by the simulated BTG | {cashins} |\n\
         | client retries / answered by another instance after a failure | {retries} / {failovers} |\n\n",
        decisions = verdict.decisions,
        failsafe = verdict.failsafe_decisions,
        within = if all_within { "yes" } else { "no" },
        failed = verdict.failsafe_decisions + quote_failures,
        jobs = verdict.jobs_done,
        retried = verdict.jobs_retried,
        events = verdict.webhook_events,
        dups = verdict.webhook_duplicates,
        started = n(&c.cashouts_started),
        accepted = n(&c.cashouts_accepted),
        refused = n(&c.cashouts_refused),
        abandoned = n(&c.cashouts_abandoned),
        conflicts = n(&c.conflicts_on_retry),
        cashins = n(&c.cashins_sent),
        retries = n(&c.retries),
        failovers = n(&c.failovers),
    ));
    md.push_str(&verdict.markdown());
    cluster::finish(cluster, &verdict, &md, "multi-instance.md")
}
