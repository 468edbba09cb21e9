//! Seeded fault simulation (docs/reliability.md, "Seeded simulation"): one process holds the
//! host on a fresh database, the simulators, a manual clock and a scheduler that draws, from one
//! seed, a history of operations (cash-outs of each initiation type, intra-PSP transfers,
//! cash-ins, refunds and distributed refunds, returns to us, unblocks, policy activations, DICT
//! changes, reviews, idempotent replays) and faults (upstream errors and timeouts, answers lost
//! after success, lost, duplicated and reordered webhooks, crashes in the middle of a request
//! or between two, time jumps past the job lease). After the history the faults are lifted, time
//! moves until nothing is in flight, and the invariants are checked.

mod faults;
mod host;
mod invariants;
mod ops;
mod receiver;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::Method;
use pix_policy::{PolicyEngine, PolicyLimits};
use pix_store::testing::TestStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use host::Call;
pub use host::SimHost;
use ops::{Memory, Op};
use receiver::Receiver;

/// Operations in a history unless told otherwise.
pub const DEFAULT_OPS: usize = 12;

/// The database a seed runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// `PIX_TEST_DATABASE_URL`; skipped (a `None` report) when unset.
    Postgres,
}

/// What one seed did and found.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub ops: usize,
    /// The operations and faults of the history, in order (for a failing seed).
    pub history: Vec<String>,
    pub faults: usize,
    pub restarts: u32,
    pub violations: Vec<String>,
    /// Arrivals of money (Pix, returns) never applied because BTG dropped their webhook.
    pub lost_arrivals: usize,
    /// How the transfers and refunds ended, e.g. `CASHOUT COMPLETED` → 3.
    pub outcomes: BTreeMap<String, usize>,
    /// Rounds of time moved until nothing was in flight.
    pub settle_rounds: u32,
    pub history_took: Duration,
    pub elapsed: Duration,
}

impl SeedReport {
    /// The one-line command that runs this seed again.
    pub fn reproduce(&self) -> String {
        reproduce(self.seed, self.ops)
    }
}

pub fn reproduce(seed: u64, ops: usize) -> String {
    let ops = if ops == DEFAULT_OPS { String::new() } else { format!(" --ops {ops}") };
    format!("reproduce: cargo run -p pix-e2e --example simulate -- --seed {seed}{ops}")
}

/// What seeds share: the policy engine, whose compiled components are cached by hash, and a
/// turn for creating databases (concurrent migrations on one PostgreSQL server can run past its
/// statement timeout).
pub struct Simulation {
    engine: PolicyEngine,
    migrating: tokio::sync::Mutex<()>,
}

impl Simulation {
    pub fn new() -> anyhow::Result<Simulation> {
        Ok(Simulation { engine: PolicyEngine::new(PolicyLimits::default())?, migrating: Default::default() })
    }

    /// Runs one history of `ops` operations drawn from `seed`; `None` when `backend` is not
    /// available.
    pub async fn run(&self, seed: u64, ops: usize, backend: Backend) -> anyhow::Result<Option<SeedReport>> {
        let started = Instant::now();
        let turn = self.migrating.lock().await;
        let db = match backend {
            Backend::Sqlite => TestStore::sqlite().await,
            Backend::Postgres => match TestStore::postgres().await {
                Some(db) => db,
                None => return Ok(None),
            },
        };
        drop(turn);
        let mut host = SimHost::start(seed, self.engine.clone(), db).await?;
        let receiver = Receiver::start(seed).await?;
        let endpoint =
            host.send(&Call::new(Method::POST, "/v1/webhooks/endpoints").json(json!({"url": receiver.url}))).await;
        anyhow::ensure!(endpoint.status == 201, "registering the webhook endpoint: {}", endpoint.text());
        let external_start = invariants::external_balance(&host);

        let mut rng = StdRng::seed_from_u64(seed);
        let mut memory = Memory::default();
        let mut history = Vec::new();
        let mut faults = 0;
        for _ in 0..ops {
            if rng.random_bool(0.35) {
                let rule = faults::draw(&mut rng);
                history.push(format!("fault {}", faults::describe(&rule)));
                host.sandbox.handle.add_fault(rule);
                faults += 1;
            }
            let op = Op::draw(&mut rng);
            let crash = (op.is_request() && rng.random_bool(0.1)).then(|| rng.random_range(1..40));
            let beside = (crash.is_none() && rng.random_bool(0.15)).then(|| Op::draw(&mut rng));
            let beside = beside.filter(Op::can_run_beside);
            history.push(match (&crash, &beside) {
                (Some(polls), _) => format!("{op:?}, crashing after {polls} polls"),
                (None, Some(other)) => format!("{op:?} beside {other:?}"),
                (None, None) => format!("{op:?}"),
            });
            let restart = match beside {
                // Two clients at once: their requests interleave in the host.
                Some(other) => {
                    let mut second = Memory::default();
                    let (a, b) = tokio::join!(
                        ops::run(&host, &mut memory, &op, None),
                        ops::run(&host, &mut second, &other, None)
                    );
                    memory.absorb(second);
                    a || b
                }
                None => ops::run(&host, &mut memory, &op, crash).await,
            };
            if restart {
                host.restart().await?;
            }
        }

        host.sandbox.handle.clear_faults();
        receiver.heal();
        let mut violations = std::mem::take(&mut memory.violations);
        let history_took = started.elapsed();
        let settle_rounds = invariants::settle(&host).await;
        if settle_rounds.is_none() {
            let left = invariants::in_flight(&host).await;
            violations.push(format!("no quiescence after the sweeper ran: {}", left.join("; ")));
        }
        let (found, lost_arrivals) = invariants::check(&host, &memory, &receiver, external_start).await;
        violations.extend(found);
        let outcomes = outcomes(&host).await;
        let restarts = host.restarts;
        host.crash().await;
        Ok(Some(SeedReport {
            seed,
            ops,
            history,
            faults,
            restarts,
            violations,
            lost_arrivals,
            outcomes,
            settle_rounds: settle_rounds.unwrap_or(0),
            history_took,
            elapsed: started.elapsed(),
        }))
    }
}

/// How the tenant's transfers and refunds ended, counted by direction and status.
async fn outcomes(host: &SimHost) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for t in ops::all_transfers(host).await {
        let intra = if t.is_intra_psp { " intra-PSP" } else { "" };
        *counts.entry(format!("transfer {}{intra} {}", t.direction(), t.status())).or_default() += 1;
    }
    for r in ops::all_refunds(host).await {
        *counts.entry(format!("refund {} {}", r.kind(), r.status())).or_default() += 1;
    }
    counts
}

/// Totals over many seeds.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub seeds: usize,
    pub ops: usize,
    pub faults: usize,
    pub restarts: u64,
    pub lost_arrivals: usize,
    pub outcomes: BTreeMap<String, usize>,
    /// Failing seeds, each with its report.
    pub failures: Vec<SeedReport>,
    pub elapsed: Duration,
}

/// Runs `seeds`, `jobs` at a time (each on its own database and simulators), handing every
/// report to `each` as it comes. A seed whose run panics or cannot start is a failure.
pub async fn run_seeds(
    sim: std::sync::Arc<Simulation>,
    seeds: Vec<u64>,
    ops: usize,
    backend: Backend,
    jobs: usize,
    mut each: impl FnMut(&SeedReport),
) -> Summary {
    use futures::StreamExt;
    let started = Instant::now();
    let runs = futures::stream::iter(seeds).map(|seed| {
        let sim = sim.clone();
        async move {
            let outcome = tokio::spawn(async move { sim.run(seed, ops, backend).await }).await;
            let failed = |why: String| SeedReport {
                seed,
                ops,
                history: Vec::new(),
                faults: 0,
                restarts: 0,
                violations: vec![why],
                lost_arrivals: 0,
                outcomes: BTreeMap::new(),
                settle_rounds: 0,
                history_took: Duration::ZERO,
                elapsed: Duration::ZERO,
            };
            match outcome {
                Ok(Ok(report)) => report,
                Ok(Err(e)) => Some(failed(format!("the seed could not run: {e:#}"))),
                Err(e) => Some(failed(format!("the seed panicked: {e}"))),
            }
        }
    });
    let mut runs = runs.buffer_unordered(jobs.max(1));
    let mut summary = Summary::default();
    while let Some(report) = runs.next().await {
        let Some(report) = report else { continue };
        each(&report);
        summary.seeds += 1;
        summary.ops += report.ops;
        summary.faults += report.faults;
        summary.restarts += u64::from(report.restarts);
        summary.lost_arrivals += report.lost_arrivals;
        for (outcome, n) in &report.outcomes {
            *summary.outcomes.entry(outcome.clone()).or_default() += n;
        }
        if !report.violations.is_empty() {
            summary.failures.push(report);
        }
    }
    summary.elapsed = started.elapsed();
    summary
}

/// A failing seed as printed: its reproduction line, violations and history.
pub fn describe_failure(report: &SeedReport) -> String {
    let mut out =
        format!("seed {} failed ({} violations)\n  {}\n", report.seed, report.violations.len(), report.reproduce());
    for v in &report.violations {
        out.push_str(&format!("  violation: {v}\n"));
    }
    for (i, step) in report.history.iter().enumerate() {
        out.push_str(&format!("  {i:>3}. {step}\n"));
    }
    out
}
