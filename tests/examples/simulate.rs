//! Seeded fault simulation of the host (docs/reliability.md, "Seeded simulation").
//!
//! ```sh
//! cargo run --release -p pix-e2e --example simulate -- --seeds 10000 [--start 0] [--ops 12] [--jobs 4]
//! cargo run -p pix-e2e --example simulate -- --seed 1234          # one seed, its history printed
//! ```
//!
//! `--postgres` runs on `PIX_TEST_DATABASE_URL` instead of SQLite; `--report FILE` writes the
//! totals as Markdown. Exits non-zero when a seed violates an invariant, printing for each a
//! one-line reproduction.

use std::sync::Arc;

use pix_e2e::simulation::{Backend, DEFAULT_OPS, Simulation, describe_failure, run_seeds};

struct Args {
    seeds: Vec<u64>,
    ops: usize,
    jobs: usize,
    backend: Backend,
    report: Option<String>,
    verbose: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args =
        Args { seeds: Vec::new(), ops: DEFAULT_OPS, jobs: 4, backend: Backend::Sqlite, report: None, verbose: false };
    let (mut count, mut start, mut one) = (100u64, 0u64, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--seeds" => count = value()?.parse()?,
            "--start" => start = value()?.parse()?,
            "--seed" => one = Some(value()?.parse()?),
            "--ops" => args.ops = value()?.parse()?,
            "--jobs" => args.jobs = value()?.parse()?,
            "--report" => args.report = Some(value()?),
            "--postgres" => args.backend = Backend::Postgres,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    match one {
        Some(seed) => {
            args.seeds = vec![seed];
            args.verbose = true;
        }
        None => args.seeds = (start..start + count).collect(),
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    // The host's own log, to follow one seed's transfers: RUST_LOG=pix_app=info, say.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let sim = Arc::new(Simulation::new()?);
    let total = args.seeds.len();
    let (first, last) = (args.seeds.first().copied().unwrap_or(0), args.seeds.last().copied().unwrap_or(0));
    let mut done = 0;
    let verbose = args.verbose;
    let summary = run_seeds(sim, args.seeds, args.ops, args.backend, args.jobs, |report| {
        done += 1;
        if !report.violations.is_empty() {
            println!("{}", describe_failure(report));
        } else if verbose {
            println!(
                "seed {} passed in {:.1?} (history {:.1?}, {} settle rounds): {} faults, {} restarts, outcomes {:?}",
                report.seed,
                report.elapsed,
                report.history_took,
                report.settle_rounds,
                report.faults,
                report.restarts,
                report.outcomes
            );
            for (i, step) in report.history.iter().enumerate() {
                println!("  {i:>3}. {step}");
            }
        }
        if done % 100 == 0 {
            eprintln!("{done}/{total} seeds");
        }
    })
    .await;
    let line = format!(
        "{} seeds ({first}..={last}), {} ops each ({} in all), {} faults, {} restarts, {} failing seeds, wall time {:.1?} ({:?})",
        summary.seeds,
        args.ops,
        summary.ops,
        summary.faults,
        summary.restarts,
        summary.failures.len(),
        summary.elapsed,
        args.backend,
    );
    println!("{line}");
    println!("arrivals never applied (their BTG webhook dropped): {}", summary.lost_arrivals);
    println!("outcomes: {:?}", summary.outcomes);
    if let Some(file) = &args.report {
        let mut md = format!(
            "# Seeded simulation\n\n{line}\n\nArrivals never applied (their BTG webhook dropped): {}\n\nOutcomes: {:?}\n\nCommand: `cargo run --release -p pix-e2e --example simulate -- {}`\n",
            summary.lost_arrivals,
            summary.outcomes,
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        );
        for failure in &summary.failures {
            md.push_str(&format!("\n```\n{}```\n", describe_failure(failure)));
        }
        std::fs::write(file, md)?;
    }
    if !summary.failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
