//! trck.002 reporting latency (issue #14: p99 ≤ 300 s from an intra-PSP settlement's completion
//! to BTG accepting the report that holds it). Runs pix-host's workers as `serve` does (the
//! reporter with its configured defaults, the inbound worker for camt.025) against the simulated
//! BTG on loopback, records settlements at a steady rate as the settlement engine would (one
//! transaction each), and measures each one's `accepted_at - recorded_at` from the stored rows.
//!
//! Two runs in one process: a baseline with BTG up, then the same load with BTG answering 503 to
//! every trck.002 submission for the first `outage` seconds (wall time). Results go to
//! `bench/trck002.md`.
//!
//! ```sh
//! PIX_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release --offline -p pix-e2e --example trck002_latency -- [per-second] [seconds] [outage-seconds]
//! ```
//!
//! Defaults: 20 settlements per second, 60 s for the baseline and 90 s for the outage run, a 60 s
//! outage. Without `PIX_TEST_DATABASE_URL` it runs on SQLite and says so in the report.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pix_core::clock::Clock;
use pix_e2e::bench::{BenchHost, BenchTenant, load_average};
use pix_sandbox::{FaultKind, FaultRule, FaultTarget};
use pix_store::internal_reports::{InternalKind, InternalSettlement, ReportFilter, list, record_internal_settlement};
use pix_store::testing::TestStore;

const SECRET: &str = "trck002-webhook-secret-0123456789";
const SLA_SECONDS: f64 = 300.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let per_second = args.first().copied().unwrap_or(20).max(1);
    let seconds = args.get(1).copied().unwrap_or(60).max(1);
    let outage = args.get(2).copied().unwrap_or(60);
    let outage_run_seconds = seconds.max(outage + 30);

    let host = BenchHost::start(11, SECRET).await?;
    let BenchHost { db, backend, clock, sandbox, state, shutdown, .. } = &host;
    let BenchTenant { id: tenant, .. } = host.tenant(&reqwest::Client::new(), "Bench").await?;
    let tenant: uuid::Uuid = tenant.parse()?;
    let data = &sandbox.data;
    let settings = state.config.trck002.settings();
    let load_before = load_average();
    println!("{backend}: {per_second}/s for {seconds} s, then {outage_run_seconds} s with a {outage} s BTG outage");

    let ctx = Ctx { db, clock: clock.clone(), tenant, ispb: data.ispb.clone() };
    let baseline = ctx.run("baseline", per_second, seconds, None, sandbox).await?;
    println!("{}", baseline.line());
    let faulted = ctx.run("outage", per_second, outage_run_seconds, Some(outage), sandbox).await?;
    println!("{}", faulted.line());
    let load_after = load_average();

    let md = markdown(&Markdown {
        backend,
        per_second,
        outage,
        settings: &settings,
        runs: [&baseline, &faulted],
        load_before,
        load_after,
        release: !cfg!(debug_assertions),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("trck002.md"), md)?;
    println!("wrote bench/trck002.md");
    shutdown.cancel();
    Ok(())
}

struct Ctx<'a> {
    db: &'a TestStore,
    clock: Arc<dyn Clock>,
    tenant: uuid::Uuid,
    ispb: String,
}

struct Run {
    name: &'static str,
    seconds: u64,
    recorded: usize,
    accepted: usize,
    confirmed: usize,
    /// Seconds, sorted.
    latencies: Vec<f64>,
    drain: Duration,
    outage: Option<u64>,
}

impl Run {
    fn quantile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i]
    }

    fn line(&self) -> String {
        format!(
            "{}: {} recorded, {} accepted, p50 {:.1} s, p99 {:.1} s, max {:.1} s",
            self.name,
            self.recorded,
            self.accepted,
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0)
        )
    }
}

impl Ctx<'_> {
    /// Records `per_second` settlements a second for `seconds` (BTG refusing reports for the first
    /// `outage` seconds), then waits until BTG accepted every one (at most 10 minutes).
    async fn run(
        &self,
        name: &'static str,
        per_second: u64,
        seconds: u64,
        outage: Option<u64>,
        sandbox: &pix_server::embedded::EmbeddedSandbox,
    ) -> anyhow::Result<Run> {
        if outage.is_some() {
            sandbox.handle.add_fault(FaultRule {
                id: String::new(),
                upstream: FaultTarget::Btg,
                path_prefix: "/pix/internal-transactions-reports".into(),
                method: None,
                kind: FaultKind::Status { status: 503 },
                count: None,
                probability: None,
            });
        }
        let started = Instant::now();
        let total = per_second * seconds;
        let mut ids = HashSet::new();
        let mut outage_over = outage.is_none();
        for n in 0..total {
            let due = started + Duration::from_secs_f64(n as f64 / per_second as f64);
            tokio::time::sleep_until(due.into()).await;
            if !outage_over && started.elapsed() >= Duration::from_secs(outage.unwrap_or(0)) {
                sandbox.handle.clear_faults();
                outage_over = true;
            }
            let run = if outage.is_some() { 'O' } else { 'B' };
            let e2e = format!("E{}{}{run}{n:010}", self.ispb, chrono::Utc::now().format("%Y%m%d%H%M"));
            let s = InternalSettlement {
                tenant_id: self.tenant,
                end_to_end_id: e2e.clone(),
                return_identification: None,
                kind: InternalKind::Transfer,
                amount: 100 + (n as i64 % 50) * 100,
                debtor_tax_id: "11144477735".into(),
                creditor_tax_id: "12345678909".into(),
                settled_at: self.clock.now(),
            };
            let mut tx = self.db.store.begin().await?;
            record_internal_settlement(&mut tx, &s).await?;
            tx.commit().await?;
            ids.insert(e2e);
        }
        if !outage_over {
            // The recording was shorter than the outage: it ends now.
            tokio::time::sleep_until((started + Duration::from_secs(outage.unwrap_or(0))).into()).await;
            sandbox.handle.clear_faults();
        }
        let recorded_all = Instant::now();
        let filter = ReportFilter { tenant_id: Some(self.tenant), ..ReportFilter::default() };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let rows: Vec<_> = list(&self.db.store, &filter, 1_000_000)
                .await?
                .into_iter()
                .filter(|r| ids.contains(&r.settlement.end_to_end_id))
                .collect();
            let accepted = rows.iter().filter(|r| r.accepted_at.is_some()).count();
            if accepted == ids.len() || Instant::now() > deadline {
                let mut latencies: Vec<f64> = rows
                    .iter()
                    .filter_map(|r| r.accepted_at.map(|a| (a - r.recorded_at).num_milliseconds() as f64 / 1000.0))
                    .collect();
                latencies.sort_by(f64::total_cmp);
                let confirmed =
                    rows.iter().filter(|r| r.state == pix_store::internal_reports::ReportState::Confirmed).count();
                return Ok(Run {
                    name,
                    seconds,
                    recorded: ids.len(),
                    accepted,
                    confirmed,
                    latencies,
                    drain: recorded_all.elapsed(),
                    outage,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

struct Markdown<'a> {
    backend: &'static str,
    per_second: u64,
    outage: u64,
    settings: &'a pix_app::reports::ReportSettings,
    runs: [&'a Run; 2],
    load_before: String,
    load_after: String,
    release: bool,
}

fn markdown(m: &Markdown<'_>) -> String {
    let [baseline, faulted] = m.runs;
    let mut md = format!(
        "# trck.002 reporting latency\n\n\
         Written by `cargo run {profile}--offline -p pix-e2e --example trck002_latency -- {rate} {secs} {outage}` \
         (tests/examples/trck002_latency.rs), {build} build. Backend: {backend}. Machine: {cpus} logical CPUs \
         ({cpu}); host, workers, simulated BTG and the load share them. Load average before / after: {lb} / {la}.\n\n\
         Latency is `accepted_at - recorded_at` of each stored row: from the settlement's completion to BTG \
         accepting (HTTP 202) the trck.002 report that holds it. The reporter runs with its defaults: polls every \
         {poll:?}, {batch} settlements per report, retries after {base} s doubling up to {cap} s; the BTG client \
         retries 3 times and its circuit breaker opens after 5 failures for 30 s.\n\n\
         | run | settlements | accepted | confirmed (camt.025) | p50 s | p99 s | max s | p99 / 300 s SLA | p99 / baseline p99 | drain after last record s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        profile = if m.release { "--release " } else { "" },
        build = if m.release { "release" } else { "debug (unoptimised)" },
        rate = m.per_second,
        secs = baseline.seconds,
        outage = m.outage,
        backend = m.backend,
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu = cpu_model(),
        lb = m.load_before,
        la = m.load_after,
        poll = m.settings.poll_every,
        batch = m.settings.batch_size,
        base = m.settings.backoff_base.num_milliseconds() as f64 / 1000.0,
        cap = m.settings.backoff_cap.num_milliseconds() as f64 / 1000.0,
    );
    let base_p99 = baseline.quantile(0.99);
    for r in m.runs {
        let label = match r.outage {
            None => format!("{} ({} s at {}/s, BTG up)", r.name, r.seconds, m.per_second),
            Some(o) => format!("{} ({} s at {}/s, BTG 503 for the first {o} s)", r.name, r.seconds, m.per_second),
        };
        md.push_str(&format!(
            "| {label} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} |\n",
            r.recorded,
            r.accepted,
            r.confirmed,
            r.quantile(0.5),
            r.quantile(0.99),
            r.quantile(1.0),
            r.quantile(0.99) / SLA_SECONDS,
            r.quantile(0.99) / base_p99,
            r.drain.as_secs_f64(),
        ));
    }
    let met = |r: &Run| r.accepted == r.recorded && r.quantile(0.99) <= SLA_SECONDS;
    md.push_str(&format!(
        "\nSLA (p99 ≤ 300 s, every settlement accepted): baseline **{}**, with the outage **{}**.\n",
        if met(baseline) { "met" } else { "NOT met" },
        if met(faulted) { "met" } else { "NOT met" },
    ));
    md
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
