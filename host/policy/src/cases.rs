//! Fixture files for `pix-host policy test`: named cases, each an input and the decision it must
//! produce (or the fail-safe it must fall to), run in the same sandbox and limits as production.
//!
//! A file is TOML or JSON with the same shape:
//!
//! ```toml
//! kind = "fee"                          # optional when the component implements one kind
//! params = { fee-account = "@tarifas" } # optional: the tenant's parameters, for every case
//!
//! [[case]]
//! name = "legal person pays R$ 0,90 on a cash-out"
//! input = { operation = "CASH_OUT", … }  # the kind's input, as in the decision log
//! expect = { fee = 90, feeAccount = "@tarifas", charge = "ON_TOP", label = "pj-flat" }
//!
//! [[case]]
//! name = "no rule for refunds yet: falls back"
//! input = { … }
//! failsafe = "guest_error"               # or "any": the policy must fail (error class)
//! ```
//!
//! A case may also set its own `kind` (a file for an `institution` component mixes kinds) and its
//! own `params`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decide::Decide;
use crate::engine::{LoadedPolicy, PolicyEngine};
use crate::error::PolicyError;
use crate::types::*;

/// File format, chosen by the file name's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// `.json` is JSON, anything else TOML.
    pub fn of(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// A fixture file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// Kind of every case that does not name its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PolicyKind>,
    /// Parameters of every case that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, ParamValue>>,
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
}

/// One named case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Where the case came from (e.g. the recorded decision); informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PolicyKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, ParamValue>>,
    /// The kind's input (camelCase fields, enum values in SCREAMING_SNAKE_CASE).
    pub input: Value,
    /// The decision the policy must return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Value>,
    /// Instead of `expect`: the policy must fail with this error class (`any` for any failure),
    /// so the host answers with the kind's fail-safe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failsafe: Option<String>,
}

impl FixtureFile {
    /// Parse a fixture file; the error names the format and where it went wrong.
    pub fn parse(text: &str, format: Format) -> Result<FixtureFile, String> {
        let file: FixtureFile = match format {
            Format::Toml => toml::from_str(text).map_err(|e| format!("not a valid TOML fixture file: {e}"))?,
            Format::Json => serde_json::from_str(text).map_err(|e| format!("not a valid JSON fixture file: {e}"))?,
        };
        if file.cases.is_empty() {
            return Err("the file has no cases (`[[case]]` in TOML, `\"case\": [...]` in JSON)".into());
        }
        for case in &file.cases {
            if case.expect.is_some() == case.failsafe.is_some() {
                return Err(format!("case `{}`: give exactly one of `expect` and `failsafe`", case.name));
            }
        }
        Ok(file)
    }

    /// Render in `format` (TOML has no null: absent optional fields are left out).
    pub fn render(&self, format: Format) -> Result<String, String> {
        match format {
            Format::Json => serde_json::to_string_pretty(self).map(|s| s + "\n").map_err(|e| e.to_string()),
            Format::Toml => {
                let mut file = self.clone();
                for case in &mut file.cases {
                    strip_nulls(&mut case.input);
                    if let Some(expect) = &mut case.expect {
                        strip_nulls(expect);
                    }
                }
                toml::to_string_pretty(&file).map_err(|e| e.to_string())
            }
        }
    }
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// One field that differs between the expected and the actual decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// Dotted path, e.g. `fee` or `portions[1].amount`; empty for the whole value.
    pub path: String,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(absent)".to_owned(), Value::to_string);
        let path = if self.path.is_empty() { "decision" } else { &self.path };
        write!(f, "{path}: expected {}, got {}", show(&self.expected), show(&self.actual))
    }
}

/// How one case went.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The decision (or the expected failure) matched.
    Passed,
    /// The policy decided, but not as expected.
    Differs(Vec<Difference>),
    /// The policy failed where a decision was expected; the host would have answered `failsafe`.
    Failed { error: String, failsafe: Value },
    /// A fail-safe was expected, but the policy decided.
    Decided(Value),
    /// It failed, but with another error class than the expected one.
    WrongFailure { expected: String, error: String },
    /// The case itself is unusable (unreadable input or expectation, kind not exported).
    Invalid(String),
}

/// A case's name, kind and verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub kind: Option<PolicyKind>,
    pub verdict: Verdict,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
    }
}

/// Run every case against `policy` on `engine` (fresh instance per case, the engine's limits).
pub fn run(engine: &PolicyEngine, policy: &LoadedPolicy, file: &FixtureFile) -> Vec<CaseResult> {
    file.cases
        .iter()
        .map(|case| {
            let kind = case.kind.or(file.kind).or(match policy.kinds() {
                [only] => Some(*only),
                _ => None,
            });
            let verdict = match kind {
                None => Verdict::Invalid("no kind: set `kind` in the case or the file".into()),
                Some(kind) if !policy.implements(kind) => {
                    Verdict::Invalid(format!("the component does not implement {kind}"))
                }
                Some(kind) => {
                    let params = case.params.as_ref().or(file.params.as_ref());
                    let params = params.map(|p| Params::from_iter(p.clone())).unwrap_or_default();
                    match bind(engine, policy, params) {
                        Err(e) => Verdict::Invalid(format!("parameters refused: {e}")),
                        Ok(bound) => match kind {
                            PolicyKind::Fee => check::<FeeInput>(engine, &bound, case),
                            PolicyKind::RefundSplit => check::<RefundSplitInput>(engine, &bound, case),
                            PolicyKind::CashinAcceptance => check::<CashinInput>(engine, &bound, case),
                            PolicyKind::FraudTriage => check::<FraudInput>(engine, &bound, case),
                        },
                    }
                }
            };
            CaseResult { name: case.name.clone(), kind, verdict }
        })
        .collect()
}

fn bind(engine: &PolicyEngine, policy: &LoadedPolicy, params: Params) -> Result<LoadedPolicy, PolicyError> {
    if params.is_empty() { Ok(policy.clone()) } else { engine.with_params(policy, params) }
}

fn check<D>(engine: &PolicyEngine, policy: &LoadedPolicy, case: &Case) -> Verdict
where
    D: Decide + Serialize + DeserializeOwned,
    D::Output: Serialize + DeserializeOwned + PartialEq,
{
    let input: D = match serde_json::from_value(case.input.clone()) {
        Ok(input) => input,
        Err(e) => return Verdict::Invalid(format!("input is not a {} input: {e}", D::KIND)),
    };
    // The input types accept unknown fields (old decision-log records must keep reading), so a
    // misspelt field would silently take its default: refuse what the type does not have.
    if let Some(path) = unknown_field("", &case.input, &to_json(&input)) {
        return Verdict::Invalid(format!("input has no field `{path}` (a {} input)", D::KIND));
    }
    let result = engine.run(policy, &input);
    match (&case.expect, &case.failsafe, result) {
        (Some(expect), _, Ok(actual)) => {
            let expected: D::Output = match serde_json::from_value(expect.clone()) {
                Ok(e) => e,
                Err(e) => return Verdict::Invalid(format!("expect is not a {} decision: {e}", D::KIND)),
            };
            if expected == actual {
                return Verdict::Passed;
            }
            let (expected, actual) = (to_json(&expected), to_json(&actual));
            let mut differences = Vec::new();
            diff("", Some(&expected), Some(&actual), &mut differences);
            Verdict::Differs(differences)
        }
        (Some(_), _, Err(e)) => {
            Verdict::Failed { error: describe(&e), failsafe: to_json(&input.failsafe(policy.params())) }
        }
        (None, Some(_), Ok(actual)) => Verdict::Decided(to_json(&actual)),
        (None, Some(class), Err(e)) if class == "any" || class == e.class() => Verdict::Passed,
        (None, Some(class), Err(e)) => Verdict::WrongFailure { expected: class.clone(), error: describe(&e) },
        (None, None, _) => Verdict::Invalid("neither `expect` nor `failsafe`".into()),
    }
}

fn describe(e: &PolicyError) -> String {
    format!("{} ({e})", e.class())
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The first key of `given` that `parsed` (its round trip through the input type) lacks.
fn unknown_field(path: &str, given: &Value, parsed: &Value) -> Option<String> {
    match (given, parsed) {
        (Value::Object(g), Value::Object(p)) => g.iter().find_map(|(key, value)| {
            let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            match p.get(key) {
                None => Some(here),
                Some(inner) => unknown_field(&here, value, inner),
            }
        }),
        (Value::Array(g), Value::Array(p)) => {
            g.iter().zip(p).enumerate().find_map(|(i, (g, p))| unknown_field(&format!("{path}[{i}]"), g, p))
        }
        _ => None,
    }
}

/// Field-level differences, so a failure reads "fee: expected 90, got 150" rather than two
/// whole decisions to compare by eye.
fn diff(path: &str, expected: Option<&Value>, actual: Option<&Value>, out: &mut Vec<Difference>) {
    let child = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match (expected, actual) {
        (Some(Value::Object(e)), Some(Value::Object(a))) => {
            let keys: std::collections::BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for key in keys {
                diff(&child(key), e.get(key), a.get(key), out);
            }
        }
        (Some(Value::Array(e)), Some(Value::Array(a))) => {
            for i in 0..e.len().max(a.len()) {
                diff(&format!("{path}[{i}]"), e.get(i), a.get(i), out);
            }
        }
        (e, a) if e != a => out.push(Difference { path: path.to_owned(), expected: e.cloned(), actual: a.cloned() }),
        _ => {}
    }
}
