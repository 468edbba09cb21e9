//! `pix-host policy test`: run a component against fixture files (`pix_policy::cases`) offline,
//! or write fixtures from the decisions a running host recorded (`--from-decisions`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pix_policy::cases::{Case, CaseResult, FixtureFile, Format, Verdict};
use pix_policy::{LoadedPolicy, PolicyEngine, PolicyKind};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{CliResult, Client, PolicyCliError, str_of};

/// Read and parse every fixture file before anything runs, so a typo fails fast.
pub(super) fn read(paths: &[PathBuf]) -> CliResult<Vec<(PathBuf, FixtureFile)>> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| PolicyCliError::Local(format!("cannot read {}: {e}", path.display())))?;
            let file = FixtureFile::parse(&text, Format::of(path))
                .map_err(|e| PolicyCliError::Usage(format!("{}: {e}", path.display())))?;
            Ok((path.clone(), file))
        })
        .collect()
}

/// Run the cases; the report and how many cases failed.
pub(super) fn run(
    engine: &PolicyEngine,
    policy: &LoadedPolicy,
    component: &Path,
    files: &[(PathBuf, FixtureFile)],
    json_out: bool,
) -> (String, usize, usize) {
    let results: Vec<(&Path, Vec<CaseResult>)> =
        files.iter().map(|(path, file)| (path.as_path(), pix_policy::cases::run(engine, policy, file))).collect();
    let all = || results.iter().flat_map(|(path, rs)| rs.iter().map(move |r| (*path, r)));
    let total = all().count();
    let failed = all().filter(|(_, r)| !r.passed()).count();
    if json_out {
        let cases: Vec<Value> = all()
            .map(|(path, r)| {
                json!({
                    "file": path.display().to_string(),
                    "name": r.name,
                    "kind": r.kind.map(PolicyKind::as_str),
                    "passed": r.passed(),
                    "detail": (!r.passed()).then(|| detail(&r.verdict)),
                })
            })
            .collect();
        let answer = json!({"passed": total - failed, "failed": failed, "cases": cases});
        return (format!("{answer:#}\n"), failed, total);
    }
    let contract: Vec<String> =
        policy.contract().iter().map(|(kind, version)| format!("{kind}: pix:policy@{version}")).collect();
    // The component's own limits (declared, else the engine's defaults): what the cases ran under.
    let limits = policy.limits();
    let mut text = format!(
        "{} ({}) under fuel {}, deadline {} ms, memory {} MiB\n",
        component.display(),
        contract.join(", "),
        limits.fuel.unwrap_or_default(),
        limits.deadline_ms.unwrap_or_default(),
        limits.memory_mib.unwrap_or_default()
    );
    for (path, rs) in &results {
        let _ = writeln!(text, "{}", path.display());
        for r in rs {
            let mark = if r.passed() { "ok  " } else { "FAIL" };
            let how = match (&r.verdict, &r.kind) {
                (Verdict::Passed, Some(kind)) => format!(" ({kind})"),
                _ => String::new(),
            };
            let _ = writeln!(text, "  {mark}  {}{how}", r.name);
            if !r.passed() {
                for line in detail(&r.verdict).lines() {
                    let _ = writeln!(text, "          {line}");
                }
            }
        }
    }
    let _ = writeln!(text, "{total} cases: {} passed, {failed} failed", total - failed);
    (text, failed, total)
}

/// What went wrong with a case, one line per point.
fn detail(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Passed => String::new(),
        Verdict::Differs(differences) => differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        Verdict::Failed { error, failsafe } => {
            format!("the policy failed: {error}\nthe host would answer with the fail-safe {failsafe}")
        }
        Verdict::Decided(actual) => format!("expected the policy to fail (fail-safe), but it decided {actual}"),
        Verdict::WrongFailure { expected, error } => format!("expected a {expected} failure, got {error}"),
        Verdict::Invalid(why) => format!("unusable case: {why}"),
    }
}

/// Turn the last `last` recorded decisions of (tenant, kind) into a fixture file at `out`.
pub(super) async fn from_decisions(
    client: &Client,
    kind: PolicyKind,
    tenant: Uuid,
    last: i64,
    out: &Path,
    force: bool,
) -> CliResult<String> {
    if out.exists() && !force {
        return Err(PolicyCliError::Usage(format!("{} exists; pass --force to replace it", out.display())));
    }
    let path = format!("/v1/admin/policy-decisions?kind={kind}&tenantId={tenant}&limit={last}");
    let answer = client.send(Method::GET, &path, |r| r).await?.unwrap_or(Value::Null);
    let decisions = answer["decisions"].as_array().cloned().unwrap_or_default();
    let Some(newest) = decisions.first() else {
        return Err(PolicyCliError::Usage(format!("tenant {tenant} has no recorded {kind} decisions")));
    };
    // Today's behaviour is the component that took the newest decision; older ones by other
    // components describe rules that are no longer active.
    let component = str_of(newest, "sha256").to_owned();
    let params = slot_params(client, kind, tenant, &component).await?;
    let mut seen = HashSet::new();
    let (mut other_component, mut duplicate) = (0, 0);
    let mut cases = Vec::new();
    for d in &decisions {
        if str_of(d, "sha256") != component {
            other_component += 1;
            continue;
        }
        if !seen.insert(str_of(d, "inputSha256").to_owned()) {
            duplicate += 1;
            continue;
        }
        let outcome = str_of(d, "outcome");
        let (expect, failsafe) = match outcome.strip_prefix("failsafe:") {
            Some(class) => (None, Some(class.to_owned())),
            None => (Some(d["output"].clone()), None),
        };
        cases.push(Case {
            name: format!("decision {}", d["id"]),
            note: Some(format!("recorded {} ({outcome})", str_of(d, "decidedAt"))),
            kind: None,
            params: None,
            input: d["input"].clone(),
            expect,
            failsafe,
        });
    }
    let file = FixtureFile { kind: Some(kind), params, cases };
    let format = Format::of(out);
    let text = file.render(format).map_err(|e| PolicyCliError::Local(format!("cannot write the fixtures: {e}")))?;
    std::fs::write(out, text).map_err(|e| PolicyCliError::Local(format!("cannot write {}: {e}", out.display())))?;
    Ok(format!(
        "wrote {} cases to {} from the last {} {kind} decisions of tenant {tenant} (component {component}); \
         left out: {duplicate} repeated inputs, {other_component} decisions by earlier components\n",
        file.cases.len(),
        out.display(),
        decisions.len(),
    ))
}

/// The parameters bound to the slot's active binding when it is `component` (tenant binding,
/// else the default binding).
async fn slot_params(
    client: &Client,
    kind: PolicyKind,
    tenant: Uuid,
    component: &str,
) -> CliResult<Option<std::collections::BTreeMap<String, pix_policy::ParamValue>>> {
    for query in [format!("kind={kind}&tenantId={tenant}"), format!("kind={kind}")] {
        let history =
            client.send(Method::GET, &format!("/v1/admin/policy-bindings?{query}"), |r| r).await?.unwrap_or_default();
        let Some(binding) = history.get(0).filter(|b| b["removed"] != json!(true)) else { continue };
        if str_of(binding, "sha256") != component {
            return Ok(None);
        }
        let params = serde_json::from_value(binding["params"].clone())
            .ok()
            .filter(|p: &std::collections::BTreeMap<_, _>| !p.is_empty());
        return Ok(params);
    }
    Ok(None)
}
