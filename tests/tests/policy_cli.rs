//! `pix-host policy …` against a running host: the CLI is parsed from words as the binary parses
//! them (`policy_cli::parse`) and run with its output captured (`policy_cli::execute`).

use pix_e2e::{TestApp, api_tests, shipped_policies};
use pix_server::policy_cli::{self, PolicyCliError};
use serde_json::{Value, json};

api_tests!(
    upload_list_activate_and_rollback_drive_the_tenants_fee,
    shadow_report_and_replay_compare_a_candidate,
    server_refusals_surface_as_errors_with_their_code,
    recorded_decisions_become_fixtures_that_pin_todays_fees,
);

fn file(name: &str) -> String {
    shipped_policies().join(name).display().to_string()
}

/// Runs `pix-host policy <words…>` against `app` (when given), returning its output.
async fn cli(app: Option<&TestApp>, words: &[&str]) -> Result<String, PolicyCliError> {
    let mut argv: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    if let Some(app) = app {
        argv.extend(["--url".into(), app.url.clone(), "--admin-token".into(), app.admin_token.clone()]);
    }
    let args = policy_cli::parse(&argv).unwrap_or_else(|e| panic!("{argv:?} does not parse: {e}"));
    let mut out = Vec::new();
    policy_cli::execute(&args, &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

/// Runs `pix-host policy <words…>` offline, returning its output whether it failed or not.
async fn cli_report(words: &[&str]) -> (String, Result<(), PolicyCliError>) {
    let args = policy_cli::parse(words).unwrap_or_else(|e| panic!("{words:?} does not parse: {e}"));
    let mut out = Vec::new();
    let result = policy_cli::execute(&args, &mut out).await;
    (String::from_utf8(out).expect("utf-8 output"), result)
}

async fn cli_json(app: &TestApp, words: &[&str]) -> Value {
    let mut words = words.to_vec();
    words.push("--json");
    let out = cli(Some(app), &words).await.unwrap_or_else(|e| panic!("{words:?}: {e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{words:?} printed non-JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_accepts_a_conforming_component_and_names_what_is_wrong_with_hostile_ones() {
    let out = cli(None, &["validate", &file("default-fee.wasm"), "--kind", "fee"]).await.unwrap();
    assert!(out.starts_with("valid: "), "{out}");
    // The digest it prints is the one the build wrote to the manifest.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pix_e2e::shipped_policies().join("manifest.json")).unwrap())
            .unwrap();
    let sha = manifest["policies"].as_array().unwrap().iter().find(|p| p["name"] == "default-fee").unwrap()["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(out.contains(&format!("sha256    {sha}")), "{out}");
    assert!(out.contains("conformance fixtures passed"), "{out}");
    // An institution bundle implements every kind.
    let json: Value = serde_json::from_str(
        &cli(None, &["validate", &file("example-institution.wasm"), "--kind", "fraud-triage", "--json"]).await.unwrap(),
    )
    .unwrap();
    assert_eq!(json["kinds"].as_array().map(Vec::len), Some(4), "{json}");
    assert!(json["fixturesPassed"].as_u64().unwrap() > 4, "{json}");

    let cases = [
        ("hostile/hostile-fs.wasm", "fee", "wasi:filesystem"),
        ("hostile/hostile-net.wasm", "fee", "wasi:sockets"),
        ("hostile/hostile-invalid.wasm", "fee", "conformance fixture `pf-cash-out` of `fee` failed"),
        ("default-fee.wasm", "refund-split", "does not export the refund-split decision"),
    ];
    for (name, kind, why) in cases {
        let err = cli(None, &["validate", &file(name), "--kind", kind]).await.expect_err(name);
        assert_eq!(err.code(), Some("PIX-0029"), "{name}: {err}");
        assert!(err.to_string().contains(why), "{name}: {err}");
    }
    let missing = cli(None, &["validate", "/nonexistent.wasm", "--kind", "fee"]).await.expect_err("missing file");
    assert!(missing.to_string().contains("cannot read /nonexistent.wasm"), "{missing}");
    assert!(policy_cli::parse(["validate", "x.wasm", "--kind", "tips"]).is_err(), "unknown kinds are refused");
}

async fn upload_list_activate_and_rollback_drive_the_tenants_fee(app: &TestApp) {
    let t = app.tenant("acme").await;
    let tenant = t.id.to_string();
    let shipped = app.merchant_quote(&t.token).await["policySha256"].as_str().unwrap().to_owned();

    // A new component is stored; a shipped one is already there (registered at start).
    let out = cli(Some(app), &["upload", &file("hostile/hostile-counter.wasm"), "--kind", "fee"]).await.unwrap();
    assert!(out.starts_with("uploaded: "), "{out}");
    let counter = out.lines().find_map(|l| l.trim().strip_prefix("sha256  ")).unwrap().to_owned();
    let again = cli_json(app, &["upload", &file("example-institution.wasm"), "--kind", "fee"]).await;
    assert_eq!(again["created"], false);
    let example = again["sha256"].as_str().unwrap().to_owned();

    let list = cli(Some(app), &["list", "--kind", "fee", "--tenant", &tenant]).await.unwrap();
    assert!(list.contains(&counter) && list.contains(&example) && list.contains(&shipped), "{list}");
    assert!(list.contains("none (falls back)"), "no binding yet: {list}");
    let only_refunds = cli_json(app, &["list", "--kind", "refund-split"]).await;
    let names: Vec<&str> =
        only_refunds["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(!names.is_empty() && names.iter().all(|n| !n.contains("default-fee")), "{names:?}");

    // Upload-and-activate in one go, then activate another version by hash.
    let both = cli_json(
        app,
        &["upload", &file("example-institution.wasm"), "--kind", "fee", "--tenant", &tenant, "--activate"],
    )
    .await;
    assert_eq!(both["binding"]["sha256"], example.as_str());
    assert_eq!(app.merchant_quote(&t.token).await["fee"], "3.95", "the example institution charges merchants 0.79%");
    let out = cli(
        Some(app),
        &["activate", &shipped, "--kind", "fee", "--tenant", &tenant, "--params", r#"{"fee-account": "@tarifas"}"#],
    )
    .await
    .unwrap();
    assert!(out.starts_with(&format!("activated for fee of tenant {tenant}: {shipped}")), "{out}");
    assert_eq!(app.merchant_quote(&t.token).await["feeAccount"], "@tarifas");
    let list = cli_json(app, &["list", "--kind", "fee", "--tenant", &tenant]).await;
    assert_eq!(list["bindings"]["fee"]["sha256"], shipped.as_str());

    // Roll back to the example, then past the first activation: the binding goes away.
    let out = cli(Some(app), &["rollback", "--kind", "fee", "--tenant", &tenant]).await.unwrap();
    assert!(out.contains(&format!("now {example}")), "{out}");
    assert_eq!(app.merchant_quote(&t.token).await["fee"], "3.95");
    let out = cli(Some(app), &["rollback", "--kind", "fee", "--tenant", &tenant]).await.unwrap();
    assert!(out.contains("first activation") && out.contains("falls back"), "{out}");
    let q = app.merchant_quote(&t.token).await;
    assert_eq!((q["fee"].as_str(), q["policySha256"].as_str()), (Some("4.95"), Some(shipped.as_str())));
    let err = cli(Some(app), &["rollback", "--kind", "fee", "--tenant", &tenant]).await.expect_err("nothing left");
    assert_eq!(err.code(), Some("PIX-0023"), "{err}");
}

async fn shadow_report_and_replay_compare_a_candidate(app: &TestApp) {
    let t = app.tenant("acme").await;
    let tenant = t.id.to_string();
    let example = cli_json(app, &["upload", &file("example-institution.wasm"), "--kind", "fee"]).await["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cli(Some(app), &["shadow", &example, "--kind", "fee", "--tenant", &tenant]).await.unwrap();
    assert!(out.starts_with("shadow running: "), "{out}");
    for _ in 0..3 {
        assert_eq!(app.merchant_quote(&t.token).await["fee"], "4.95", "the shadow never changes the answer");
    }
    let report = cli_json(app, &["shadow", "--report", "--kind", "fee", "--tenant", &tenant]).await;
    assert_eq!((report["compared"].as_u64(), report["disagreed"].as_u64()), (Some(3), Some(3)), "{report}");
    let text =
        cli(Some(app), &["shadow", "--report", "--kind", "fee", "--tenant", &tenant, "--last", "2"]).await.unwrap();
    assert!(text.contains("2 compared, 0 agreed, 2 disagreed"), "{text}");
    assert!(text.contains(r#""fee":395"#) && text.contains(r#""fee":495"#), "both answers are shown: {text}");
    let out = cli(Some(app), &["shadow", "--clear", "--kind", "fee", "--tenant", &tenant]).await.unwrap();
    assert!(out.starts_with("shadow stopped"), "{out}");
    app.merchant_quote(&t.token).await;
    let after = cli_json(app, &["shadow", "--report", "--kind", "fee", "--tenant", &tenant, "--last", "1"]).await;
    assert_eq!(after["compared"], 0, "no shadow after --clear: {after}");
    let again = cli(Some(app), &["shadow", "--clear", "--kind", "fee", "--tenant", &tenant]).await.expect_err("none");
    assert_eq!(again.code(), Some("PIX-0019"), "{again}");

    let out = cli(Some(app), &["replay", &example, "--kind", "fee", "--tenant", &tenant, "--last", "4"]).await.unwrap();
    assert!(out.starts_with("replayed 4 fee decisions"), "{out}");
    assert!(out.contains("0 same, 4 different (0 candidate errors)"), "{out}");
    let report = cli_json(app, &["replay", &example, "--kind", "fee", "--tenant", &tenant, "--last", "10"]).await;
    assert_eq!(report["replayed"], 4);
    assert_eq!(report["differences"][0]["candidate"]["fee"], 395);
}

async fn server_refusals_surface_as_errors_with_their_code(app: &TestApp) {
    let unknown = "0".repeat(64);
    let err = cli(Some(app), &["activate", &unknown, "--kind", "fee"]).await.expect_err("unknown sha");
    assert!(matches!(&err, PolicyCliError::Api { status: 404, .. }), "{err:?}");
    assert_eq!(err.code(), Some("PIX-0019"));
    assert!(err.to_string().starts_with("PIX-0019: "), "code and message: {err}");

    let err =
        cli(Some(app), &["upload", &file("hostile/hostile-invalid.wasm"), "--kind", "fee"]).await.expect_err("bad");
    assert_eq!(err.code(), Some("PIX-0029"), "{err}");
    let err = cli(Some(app), &["rollback", "--kind", "fraud-triage"]).await.expect_err("nothing active");
    assert_eq!(err.code(), Some("PIX-0023"), "{err}");
    let err = cli(Some(app), &["activate", "not-a-sha", "--kind", "fee"]).await.expect_err("not hex");
    assert!(matches!(err, PolicyCliError::Usage(_)), "{err:?}");

    // Without a token nothing is sent; with a wrong one the host refuses, and the token is
    // never echoed back.
    let args = policy_cli::parse(["list", "--url", app.url.as_str()]).unwrap();
    let mut out = Vec::new();
    if std::env::var_os("PIX_ADMIN_TOKEN").is_none() {
        let err = policy_cli::execute(&args, &mut out).await.expect_err("no token");
        assert!(err.to_string().contains("--admin-token"), "{err}");
    }
    let args = policy_cli::parse(["list", "--url", app.url.as_str(), "--admin-token", "pix_wrong_secret"]).unwrap();
    assert!(!format!("{args:?}").contains("pix_wrong_secret"), "Debug hides the token");
    let err = policy_cli::execute(&args, &mut out).await.expect_err("wrong token");
    assert!(matches!(&err, PolicyCliError::Api { status: 401, .. }), "{err:?}");
    assert!(!err.to_string().contains("pix_wrong_secret"));
    assert!(out.is_empty(), "nothing printed on errors");
}

/// A legal person's cash-out: R$ 1,50 on top on the shipped default fee (first tier).
fn pj_cash_out() -> Value {
    let input = pix_policy::FeeInput {
        payer_type: pix_policy::PersonType::Legal,
        month_count: 3,
        ..pix_policy::fixtures::fee().remove(0).1
    };
    serde_json::to_value(input).unwrap()
}

/// A fixture file with one fee case expecting `expect`.
fn fee_fixture(dir: &std::path::Path, file_name: &str, name: &str, expect: Value) -> String {
    let path = dir.join(file_name);
    let file = json!({"kind": "fee", "case": [{"name": name, "input": pj_cash_out(), "expect": expect}]});
    std::fs::write(&path, file.to_string()).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_test_passes_matching_cases_and_fails_with_the_fields_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let tier = json!({"fee": 150, "feeAccount": "@fees_revenue", "charge": "ON_TOP", "label": "pj-cash-out-tier-1"});
    let fixtures = fee_fixture(dir.path(), "fee.json", "tier 1", tier);
    let component = file("default-fee.wasm");
    let (out, result) = cli_report(&["test", &component, &fixtures]).await;
    result.unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(out.contains("ok    tier 1 (fee)") && out.ends_with("1 cases: 1 passed, 0 failed\n"), "{out}");
    assert!(out.contains("fee: pix:policy@0.1.0"), "the shipped default is a 0.1.0 component: {out}");
    assert!(out.contains("under fuel 10000000, deadline 50 ms, memory 16 MiB"), "the engine's defaults: {out}");
    let limits = ["--memory-mib", "24", "--fuel", "20000000", "--deadline-ms", "80"];
    let (out, result) = cli_report(&[&["test", component.as_str(), fixtures.as_str()][..], &limits].concat()).await;
    result.unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        out.contains("under fuel 20000000, deadline 80 ms, memory 24 MiB"),
        "the limits the cases ran under: {out}"
    );

    // A rule change the fixture did not expect: the differing fields, and a failure exit.
    let flat = json!({"fee": 90, "feeAccount": "@fees_revenue", "charge": "ON_TOP", "label": "pj-flat"});
    let second = fee_fixture(dir.path(), "flat.json", "flat 0,90", flat);
    let (out, result) = cli_report(&["test", &component, &fixtures, &second]).await;
    assert!(matches!(result, Err(PolicyCliError::CasesFailed { failed: 1, total: 2 })), "{result:?}");
    assert!(out.contains("FAIL  flat 0,90"), "{out}");
    assert!(out.contains("fee: expected 90, got 150"), "{out}");
    assert!(out.contains(r#"label: expected "pj-flat", got "pj-cash-out-tier-1""#), "{out}");
    assert!(!out.contains("feeAccount:"), "only differing fields are listed: {out}");
    let (json, _) = cli_report(&["test", &component, &second, "--json"]).await;
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((json["passed"].as_u64(), json["failed"].as_u64()), (Some(0), Some(1)), "{json}");

    // Unusable files are refused before anything runs.
    std::fs::write(dir.path().join("empty.toml"), "kind = \"fee\"\n").unwrap();
    let (_, result) = cli_report(&["test", &component, &dir.path().join("empty.toml").display().to_string()]).await;
    assert!(matches!(&result, Err(PolicyCliError::Usage(m)) if m.contains("no cases")), "{result:?}");
    let (_, result) = cli_report(&["test", &component]).await;
    assert!(matches!(&result, Err(PolicyCliError::Usage(m)) if m.contains("at least one fixture file")), "{result:?}");
}

async fn recorded_decisions_become_fixtures_that_pin_todays_fees(app: &TestApp) {
    let t = app.tenant("acme").await;
    let tenant = t.id.to_string();
    for _ in 0..3 {
        assert_eq!(app.merchant_quote(&t.token).await["fee"], "4.95");
    }
    let dir = tempfile::tempdir().unwrap();
    let pinned = dir.path().join("today.toml").display().to_string();
    let words = ["test", "--from-decisions", "--kind", "fee", "--tenant", &tenant, "--last", "10", &pinned];
    let out = cli(Some(app), &words).await.unwrap();
    // The three quotes have one input (two, if a minute boundary fell between them).
    let written: usize = out.strip_prefix("wrote ").and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!((1..=2).contains(&written), "{out}");
    assert!(out.contains("from the last 3 fee decisions"), "{out}");
    let text = std::fs::read_to_string(&pinned).unwrap();
    assert!(text.contains("fee = 495") && text.contains("payeeType = \"LEGAL\""), "{text}");

    // The component that took them agrees with them; the example institution (0.79 %) does not.
    let shipped = file("default-fee.wasm");
    let (out, result) = cli_report(&["test", &shipped, &pinned]).await;
    result.unwrap_or_else(|e| panic!("{e}: {out}"));
    let example = file("example-institution.wasm");
    let (out, result) = cli_report(&["test", &example, &pinned]).await;
    assert!(matches!(result, Err(PolicyCliError::CasesFailed { .. })), "{result:?}");
    assert!(out.contains("fee: expected 495, got 395"), "{out}");

    // An existing file is kept unless --force; a tenant without decisions is refused.
    let again = cli(Some(app), &words).await.expect_err("exists");
    assert!(matches!(&again, PolicyCliError::Usage(m) if m.contains("--force")), "{again:?}");
    let mut forced = words.to_vec();
    forced.push("--force");
    cli(Some(app), &forced).await.unwrap();
    let none = cli(
        Some(app),
        &["test", "--from-decisions", "--kind", "refund-split", "--tenant", &tenant, &pinned, "--force"],
    )
    .await
    .expect_err("no decisions");
    assert!(none.to_string().contains("no recorded refund-split decisions"), "{none}");
}
