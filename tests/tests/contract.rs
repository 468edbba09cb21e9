//! Contract test (issue #17): schemathesis generates requests from `/openapi.json` of a host
//! started here, each operation called with the token its security scheme names (a tenant's or
//! an admin's, see tests/schemathesis.toml), and fails on any server error, undocumented status
//! code, response body off its schema, or undeclared content type. docs/contract-testing.md tells
//! how to run it and what it found.

use std::process::Stdio;

use pix_e2e::{TestApp, api_tests};

api_tests!(generated_requests_get_only_documented_answers);

/// The pinned release .ci/run installs; the config file's format is that of 4.x.
const VERSION: &str = "4.32.5";

/// Examples per operation and phase: about 2,000 requests per database in about a minute on
/// 2 cores. `PIX_CONTRACT_EXAMPLES` raises it for a deeper local run.
const EXAMPLES: &str = "15";

/// Fixed, so a CI failure reproduces; `PIX_CONTRACT_SEED` explores other inputs.
const SEED: &str = "1917";

/// `SCHEMATHESIS_BIN` (what .ci/run sets), else `schemathesis` on the PATH.
fn schemathesis() -> Option<String> {
    let program = std::env::var("SCHEMATHESIS_BIN").unwrap_or_else(|_| "schemathesis".into());
    let version = std::process::Command::new(&program).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    if !version.contains(VERSION) {
        eprintln!("note: contract test pinned to schemathesis {VERSION}, found {}", version.trim());
    }
    Some(program)
}

async fn generated_requests_get_only_documented_answers(app: &TestApp) {
    let Some(program) = schemathesis() else {
        // CI installs it (.ci/run); a developer without it is told how to get it.
        assert!(std::env::var_os("CI").is_none(), "CI must install schemathesis (.ci/run does)");
        eprintln!(
            "SKIPPED contract test: schemathesis not found; `pip install schemathesis=={VERSION}` \
             or set SCHEMATHESIS_BIN to its executable"
        );
        return;
    };
    // The tenant the run acts as (with the seeded ledger and its funded accounts), and spares the
    // admin operations may change (tests/schemathesis.toml).
    let tenant = app.tenant("Contract Institution").await;
    let spare_tenant = app.tenant("Contract Spare").await;
    let spare_credential = app
        .request(reqwest::Method::POST, "/v1/admin/credentials", &app.admin_token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["credentialId"]
        .as_str()
        .expect("a spare admin credential")
        .to_owned();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
    let examples = std::env::var("PIX_CONTRACT_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into());
    let seed = std::env::var("PIX_CONTRACT_SEED").unwrap_or_else(|_| SEED.into());
    // Schemathesis and Hypothesis keep files in the working directory: a scratch one, not tests/.
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let output = tokio::process::Command::new(&program)
        .current_dir(scratch.path())
        .args(["--config-file", config, "run", &format!("{}/openapi.json", app.url)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "2",
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .env("PIX_CONTRACT_TENANT_TOKEN", &tenant.token)
        .env("PIX_CONTRACT_ADMIN_TOKEN", &app.admin_token)
        .env("PIX_CONTRACT_ACCOUNT_ID", &app.sandbox.data.accounts[0].account_id)
        .env("PIX_CONTRACT_SPARE_TENANT_ID", spare_tenant.id.to_string())
        .env("PIX_CONTRACT_SPARE_CREDENTIAL_ID", &spare_credential)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found contract violations (seed {seed}), see its report above\n{stderr}"
    );
}
