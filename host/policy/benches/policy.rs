//! Policy latency: for each kind, the native Rust default rule, the wasm default on a reused
//! instance, the wasm default on a fresh instance per decision (the production path), and for
//! fee also the same rule in Rhai.
//!
//! Besides criterion's own report, every variant is timed per iteration and p50/p99/p99.9 are
//! written to `bench/policy-latency.md` and `bench/policy-latency.json`.
//!
//! Then, when `guests/build-polyglot.sh` has built them, the JavaScript and Python guests against
//! the native rule and the Rust component (`policy/polyglot.rs`, written to
//! `bench/policy-polyglot.md` and `.json`).
//!
//! Run: `cargo bench -p pix-policy --bench policy` (set `PIX_BENCH_SAMPLES` to change the number of
//! timed iterations per variant; default 20 000; `PIX_BENCH_POLYGLOT_SAMPLES` for the JS/Python
//! comparison, default 5 000; `PIX_BENCH_POLYGLOT_ONLY=1` runs only that comparison).

#[path = "policy/polyglot.rs"]
mod polyglot;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use pix_policy::{
    FeeCharge, FeeDecision, FeeInput, LoadedPolicy, Params, PolicyEngine, PolicyKind, PolicyLimits, fixtures,
    load_manifest, native,
};

/// The default fee rule in Rhai, equivalent to `native::fee` with default parameters.
const RHAI_FEE: &str = r#"
    let account = "@fees_revenue";
    if operation == "REFUND" { return [0, "", "ON_TOP", "free-refund"]; }
    if intra_psp || operation == "INTRA_PSP" { return [0, "", "ON_TOP", "free-intra-psp"]; }
    if operation == "CASH_OUT" {
        if payer_type == "NATURAL" {
            if (purpose == "WITHDRAWAL" || purpose == "CHANGE") && month_count >= 8 {
                return [250, account, "ON_TOP", "pf-saque-troco"];
            }
            return [0, "", "ON_TOP", "free-pf-cash-out"];
        }
        if month_count < 100 { return [150, account, "ON_TOP", "pj-cash-out-tier-1"]; }
        if month_count < 1000 { return [100, account, "ON_TOP", "pj-cash-out-tier-2"]; }
        return [50, account, "ON_TOP", "pj-cash-out-tier-3"];
    }
    if payee_type == "LEGAL" {
        let p = amount * 99;
        let q = p / 10000;
        if (p % 10000) * 2 >= 10000 { q += 1; }
        if q < 10 { q = 10; }
        if q > 1000 { q = 1000; }
        if q > amount { q = amount; }
        return [q, account, "DEDUCTED", "pj-cash-in-0.99pct"];
    }
    if month_count >= 30 {
        let f = 50;
        if f > amount { f = amount; }
        return [f, account, "DEDUCTED", "pf-cash-in-over-30"];
    }
    [0, "", "ON_TOP", "free-pf-cash-in"]
"#;

fn wire(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

struct RhaiFee {
    engine: rhai::Engine,
    ast: rhai::AST,
}

impl RhaiFee {
    fn new() -> Self {
        let engine = rhai::Engine::new();
        let ast = engine.compile(RHAI_FEE).expect("rhai script compiles");
        Self { engine, ast }
    }

    fn decide(&self, input: &FeeInput) -> FeeDecision {
        let mut scope = rhai::Scope::new();
        scope
            .push_constant("operation", wire(&input.operation))
            .push_constant("purpose", wire(&input.purpose))
            .push_constant("payer_type", wire(&input.payer_type))
            .push_constant("payee_type", wire(&input.payee_type))
            .push_constant("intra_psp", input.intra_psp)
            .push_constant("amount", input.amount)
            .push_constant("month_count", i64::from(input.month_count));
        let out: rhai::Array = self.engine.eval_ast_with_scope(&mut scope, &self.ast).expect("rhai fee evaluates");
        let text = |i: usize| out[i].clone().into_string().unwrap_or_default();
        FeeDecision {
            fee: out[0].as_int().unwrap_or(-1),
            fee_account: text(1),
            charge: if text(2) == "DEDUCTED" { FeeCharge::Deducted } else { FeeCharge::OnTop },
            label: text(3),
        }
    }
}

struct Stats {
    kind: PolicyKind,
    variant: &'static str,
    samples: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    mean: f64,
}

/// Time `n` calls one by one (after a warm-up) and summarise in microseconds.
fn measure(kind: PolicyKind, variant: &'static str, n: usize, mut f: impl FnMut(usize)) -> Stats {
    for i in 0..n / 10 {
        f(i);
    }
    let mut ns: Vec<u64> = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i);
        ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    ns.sort_unstable();
    let at = |q: f64| ns[((n as f64 * q) as usize).min(n - 1)] as f64 / 1000.0;
    Stats {
        kind,
        variant,
        samples: n,
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        mean: ns.iter().sum::<u64>() as f64 / n as f64 / 1000.0,
    }
}

fn policy(loaded: &[(String, LoadedPolicy)], name: &str) -> LoadedPolicy {
    loaded
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("{name} missing from its manifest"))
}

/// Criterion benchmark plus our own per-iteration samples for one kind.
macro_rules! bench_kind {
    ($c:expr, $stats:expr, $n:expr, $engine:expr, $policy:expr, $kind:expr,
     $inputs:expr, $native:path, $decide:ident) => {{
        let inputs: Vec<_> = $inputs.into_iter().map(|(_, i)| i).collect();
        let params = Params::default();
        let mut session = $engine.session(&$policy);
        // The three paths must agree before we time them.
        for input in &inputs {
            let wasm = $engine.$decide(&$policy, input).expect("wasm default decides");
            assert_eq!(wasm, $native(input, &params), "native and wasm defaults differ");
            assert_eq!(session.$decide(input).expect("session decides"), wasm);
        }
        let name = $kind.as_str();
        let mut group = $c.benchmark_group(name);
        group.bench_function("native", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box($native(black_box(&inputs[i % inputs.len()]), &params))
            })
        });
        group.bench_function("wasm-reused", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box(session.$decide(black_box(&inputs[i % inputs.len()])))
            })
        });
        group.bench_function("wasm-fresh", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                black_box($engine.$decide(&$policy, black_box(&inputs[i % inputs.len()])))
            })
        });
        group.finish();
        $stats.push(measure($kind, "native", $n, |i| {
            black_box($native(black_box(&inputs[i % inputs.len()]), &params));
        }));
        $stats.push(measure($kind, "wasm-reused", $n, |i| {
            black_box(session.$decide(black_box(&inputs[i % inputs.len()])).ok());
        }));
        $stats.push(measure($kind, "wasm-fresh", $n, |i| {
            black_box($engine.$decide(&$policy, black_box(&inputs[i % inputs.len()])).ok());
        }));
    }};
}

fn main() {
    let n: usize = std::env::var("PIX_BENCH_SAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let load_before = load_average();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let engine = PolicyEngine::new(PolicyLimits::default()).expect("engine");
    let loaded: Vec<(String, LoadedPolicy)> = load_manifest(&engine, &root.join("policies"))
        .expect("policies/manifest.json loads")
        .into_iter()
        .map(|(entry, policy)| (entry.name, policy))
        .collect();
    if std::env::var_os("PIX_BENCH_POLYGLOT_ONLY").is_some() {
        polyglot::run(&engine, &root, &loaded);
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut stats = Vec::new();

    let fee = policy(&loaded, "default-fee");
    bench_kind!(c, stats, n, engine, fee, PolicyKind::Fee, fixtures::fee(), native::fee, decide_fee);
    let rhai = RhaiFee::new();
    let fee_inputs: Vec<FeeInput> = fixtures::fee().into_iter().map(|(_, i)| i).collect();
    for input in &fee_inputs {
        assert_eq!(rhai.decide(input), native::fee(input, &Params::default()));
    }
    c.bench_function("fee/rhai", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(rhai.decide(black_box(&fee_inputs[i % fee_inputs.len()])))
        })
    });
    stats.push(measure(PolicyKind::Fee, "rhai", n, |i| {
        black_box(rhai.decide(black_box(&fee_inputs[i % fee_inputs.len()])));
    }));

    let refund = policy(&loaded, "default-refund-split");
    bench_kind!(
        c,
        stats,
        n,
        engine,
        refund,
        PolicyKind::RefundSplit,
        fixtures::refund_split(),
        native::refund_split,
        decide_refund_split
    );
    let cashin = policy(&loaded, "default-cashin-acceptance");
    bench_kind!(
        c,
        stats,
        n,
        engine,
        cashin,
        PolicyKind::CashinAcceptance,
        fixtures::cashin_acceptance(),
        native::cashin_acceptance,
        decide_cashin_acceptance
    );
    let fraud = policy(&loaded, "default-fraud-triage");
    bench_kind!(
        c,
        stats,
        n,
        engine,
        fraud,
        PolicyKind::FraudTriage,
        fixtures::fraud_triage(),
        native::fraud_triage,
        decide_fraud_triage
    );

    c.final_summary();
    if let Err(e) = write_report(&root.join("bench"), &stats, &load_before) {
        eprintln!("cannot write the latency report: {e}");
    }
    polyglot::run(&engine, &root, &loaded);
}

/// The 1/5/15-minute load averages, when the OS exposes them: tail latencies on a shared 2-core
/// machine depend on them more than on the code.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn write_report(dir: &std::path::Path, stats: &[Stats], load_before: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let native_p50 =
        |kind: PolicyKind| stats.iter().find(|s| s.kind == kind && s.variant == "native").map_or(f64::NAN, |s| s.p50);
    let fresh: Vec<&Stats> = stats.iter().filter(|s| s.variant == "wasm-fresh").collect();
    let worst_p50 = fresh.iter().map(|s| s.p50).fold(0.0, f64::max);
    let worst_p99 = fresh.iter().map(|s| s.p99).fold(0.0, f64::max);
    let verdict = if worst_p50 <= 25.0 && worst_p99 <= 50.0 { "met" } else { "NOT met" };
    let mut md = String::from(
        "# Policy decision latency\n\n\
         Written by `cargo bench -p pix-policy --bench policy` (per-iteration samples timed with \
         `Instant`, after a 10 % warm-up; includes about 50 ns of timer overhead). Criterion's own \
         estimates are printed on the console and kept in `target*/criterion`.\n\n",
    );
    md += &format!(
        "Machine: {} logical CPUs, {} {}. Samples per variant: {}. Load average before / after \
         the run: {} / {}.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH,
        stats.first().map_or(0, |s| s.samples),
        load_before,
        load_average(),
    );
    md += &format!(
        "Target for a fresh instance per decision: p50 ≤ 25 µs and p99 ≤ 50 µs — **{verdict}** \
         (worst kind: p50 {worst_p50:.2} µs, p99 {worst_p99:.2} µs).\n\n"
    );
    md += "| kind | variant | p50 µs | p99 µs | p99.9 µs | mean µs | p50 vs native |\n";
    md += "|---|---|---:|---:|---:|---:|---:|\n";
    let mut json = Vec::new();
    for s in stats {
        let ratio = s.p50 / native_p50(s.kind);
        md += &format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0}× |\n",
            s.kind, s.variant, s.p50, s.p99, s.p999, s.mean, ratio
        );
        json.push(serde_json::json!({
            "kind": s.kind.as_str(), "variant": s.variant, "samples": s.samples,
            "p50_us": s.p50, "p99_us": s.p99, "p999_us": s.p999, "mean_us": s.mean,
            "p50_ratio_vs_native": ratio,
        }));
    }
    md += "\nVariants: `native` is the Rust rule in `pix_policy::native`; `wasm-reused` calls one \
           long-lived instance (`PolicyEngine::session`); `wasm-fresh` is the production path \
           (new store and instance from the cached `InstancePre` per decision, in a pooled slot \
           reset in place (dirty pages found with PAGEMAP_SCAN), copy-on-write heap image, fuel + \
           epoch deadline + 16 MiB cap, answer validated); `rhai` is the same fee rule as a Rhai script \
           (AST compiled once, new scope per call).\n";
    std::fs::write(dir.join("policy-latency.md"), md)?;
    std::fs::write(dir.join("policy-latency.json"), serde_json::to_string_pretty(&json).unwrap_or_default() + "\n")
}
