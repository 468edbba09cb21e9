//! `pix-host policy …`: write, test and manage policies from the command line.
//!
//! `new` creates a project (`scaffold`); `validate` and `test` work offline with the same checks
//! and sandbox as an upload (`admin::load_component`); every other subcommand (and
//! `test --from-decisions`) calls a running host's admin API (`/v1/admin/policies…`). Output is a
//! short human summary, or JSON with `--json`. A server error becomes [`PolicyCliError::Api`]
//! (its code and message; the process exits non-zero), a failing case
//! [`PolicyCliError::CasesFailed`].

mod cases;
pub mod scaffold;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::{Args, Subcommand};
use pix_policy::{ComponentLimits, PolicyEngine, PolicyKind, PolicyLimits, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::policies::admin::validate_component;
use scaffold::{Lang, ProjectKind};

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Base URL of the running host's API.
    #[arg(long, global = true, env = "PIX_HOST_URL", default_value = "http://127.0.0.1:4014")]
    pub url: String,
    /// Admin token (see `pix-host admin-token`); never printed.
    #[arg(long, global = true, env = "PIX_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<AdminToken>,
    /// Print the server's raw JSON answer instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A bearer token that shows as `***` in `Debug` output, so it never reaches a log or a panic.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: impl Into<String>) -> AdminToken {
        AdminToken(token.into())
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl FromStr for AdminToken {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(AdminToken(s.trim().to_owned()))
    }
}

fn kind_arg(s: &str) -> Result<PolicyKind, String> {
    PolicyKind::parse(s).ok_or_else(|| "one of fee, refund-split, cashin-acceptance, fraud-triage".to_owned())
}

fn params_arg(s: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
    crate::policies::params_from_json(&value).map_err(|e| e.0.message)?;
    Ok(value)
}

/// The component's own limits (each defaults to the engine's and may not exceed the host
/// maximum); an interpreter (JavaScript, Python) needs more than a Rust component.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct LimitArgs {
    /// Memory cap per instance, in MiB.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub memory_mib: Option<u32>,
    /// Instruction budget (wasmtime fuel) per decision.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub fuel: Option<u64>,
    /// Wall-clock deadline per decision, in ms.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline_ms: Option<u64>,
}

impl LimitArgs {
    fn limits(&self) -> ComponentLimits {
        ComponentLimits { memory_mib: self.memory_mib, fuel: self.fuel, deadline_ms: self.deadline_ms }
    }

    /// `&memoryMib=…&fuel=…&deadlineMs=…` for the upload URL.
    fn query(&self) -> String {
        [("memoryMib", self.memory_mib.map(u64::from)), ("fuel", self.fuel), ("deadlineMs", self.deadline_ms)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| format!("&{name}={v}")))
            .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy project in PATH (its last part names it): source, build script, README,
    /// fixtures and the contract's WIT, ready to build into a component that passes `validate`.
    New {
        path: PathBuf,
        #[arg(long, value_enum)]
        kind: ProjectKind,
        #[arg(long, value_enum)]
        lang: Lang,
    },
    /// Run a component against fixture files (TOML or JSON) in the production sandbox and limits:
    /// `test COMPONENT FIXTURES…`. With --from-decisions, write the tenant's recorded decisions
    /// of KIND to a fixture file instead: `test --from-decisions --kind K --tenant T OUT`.
    Test {
        #[arg(required = true, value_names = ["COMPONENT", "FIXTURES"])]
        files: Vec<PathBuf>,
        #[arg(long, requires_all = ["kind", "tenant"])]
        from_decisions: bool,
        #[arg(long, value_parser = kind_arg)]
        kind: Option<PolicyKind>,
        #[arg(long)]
        tenant: Option<Uuid>,
        /// With --from-decisions: how many recent decisions to read.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        last: i64,
        /// With --from-decisions: replace OUT if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Check a component offline: it compiles, imports nothing but stdio, exports the world of
    /// KIND and passes the conformance fixtures within the limits (what an upload checks).
    Validate {
        file: PathBuf,
        #[arg(long, value_parser = kind_arg)]
        kind: PolicyKind,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Upload a component to the registry (validated again by the host), optionally activating it.
    Upload {
        file: PathBuf,
        #[arg(long, value_parser = kind_arg)]
        kind: PolicyKind,
        /// A label for operators (default: KIND-<sha prefix>).
        #[arg(long)]
        name: Option<String>,
        /// With --activate: the tenant (default: the default binding for every tenant without one).
        #[arg(long)]
        tenant: Option<Uuid>,
        /// With --activate: parameters as a JSON object of integers and strings.
        #[arg(long, value_parser = params_arg)]
        params: Option<Value>,
        /// Make it the active KIND policy right after the upload.
        #[arg(long)]
        activate: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// The components in the registry and which one is bound to the slot (tenant or default).
    List {
        #[arg(long)]
        tenant: Option<Uuid>,
        /// Only components implementing this kind, and only this kind's binding.
        #[arg(long, value_parser = kind_arg)]
        kind: Option<PolicyKind>,
    },
    /// Make a stored component the active policy of (tenant, kind).
    Activate {
        sha256: String,
        #[arg(long, value_parser = kind_arg)]
        kind: PolicyKind,
        #[arg(long)]
        tenant: Option<Uuid>,
        #[arg(long, value_parser = params_arg)]
        params: Option<Value>,
    },
    /// Return (tenant, kind) to the previous version; after the first activation, remove the
    /// binding so the slot falls back (tenant → default → shipped).
    Rollback {
        #[arg(long, value_parser = kind_arg)]
        kind: PolicyKind,
        #[arg(long)]
        tenant: Option<Uuid>,
    },
    /// Run a candidate beside the active policy on live decisions (`SHA256`), stop it
    /// (`--clear`), or show how it compared (`--report`).
    Shadow {
        #[arg(required_unless_present_any = ["clear", "report"])]
        sha256: Option<String>,
        #[arg(long, value_parser = kind_arg)]
        kind: PolicyKind,
        /// The tenant (required for --report: decisions are recorded per tenant).
        #[arg(long)]
        tenant: Option<Uuid>,
        #[arg(long, value_parser = params_arg, conflicts_with_all = ["clear", "report"])]
        params: Option<Value>,
        #[arg(long, conflicts_with = "report")]
        clear: bool,
        #[arg(long)]
        report: bool,
        /// With --report: how many recent decisions to look at.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        last: i64,
    },
    /// Run a candidate over the tenant's last N recorded decisions and report the differences.
    Replay {
        sha256: String,
        #[arg(long, value_parser = kind_arg)]
        kind: PolicyKind,
        #[arg(long)]
        tenant: Uuid,
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        last: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyCliError {
    /// The host (or, for `validate`, the local checks) refused: a catalogue code and message.
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// Arguments the host would refuse anyway (checked before anything is sent).
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// A local failure: reading the file, starting the engine, an unreadable answer.
    #[error("{0}")]
    Local(String),
    /// `test`: some cases did not decide as expected (the report says which).
    #[error("{failed} of {total} cases failed")]
    CasesFailed { failed: usize, total: usize },
}

impl PolicyCliError {
    /// The catalogue code of a refusal, e.g. `PIX-0029`.
    pub fn code(&self) -> Option<&str> {
        match self {
            PolicyCliError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

type CliResult<T> = Result<T, PolicyCliError>;

/// Parses the words after `pix-host policy` exactly as the binary does (for tests and embedders).
pub fn parse<I, T>(words: I) -> Result<PolicyArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser;
    let head: [std::ffi::OsString; 2] = ["pix-host".into(), "policy".into()];
    let argv = head.into_iter().chain(words.into_iter().map(|w| -> std::ffi::OsString { w.into() }));
    match crate::cli::Cli::try_parse_from(argv)?.command {
        Some(crate::cli::Command::Policy(args)) => Ok(args),
        _ => Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand)),
    }
}

/// Runs one subcommand, printing to stdout (what `pix-host policy …` does).
pub async fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let result = execute(&args, &mut out).await;
    // A failed `test` has a report to show too.
    std::io::stdout().write_all(&out)?;
    Ok(result?)
}

/// Runs one subcommand, writing its output to `out` (for a failed `test`, before the error).
pub async fn execute(args: &PolicyArgs, out: &mut dyn Write) -> CliResult<()> {
    let conn = &args.connection;
    let write = |out: &mut dyn Write, text: &str| {
        out.write_all(text.as_bytes()).map_err(|e| PolicyCliError::Local(e.to_string()))
    };
    let text = match &args.command {
        PolicyCommand::Validate { file, kind, limits } => validate(file, *kind, limits.limits(), conn.json).await?,
        PolicyCommand::New { path, kind, lang } => new_project(path, *kind, *lang)?,
        PolicyCommand::Test { files, from_decisions: true, kind, tenant, last, force, .. } => {
            let [output] = files.as_slice() else {
                return Err(PolicyCliError::Usage(
                    "--from-decisions takes one file: where to write the fixtures".into(),
                ));
            };
            let (Some(kind), Some(tenant)) = (kind, tenant) else {
                return Err(PolicyCliError::Usage("--from-decisions needs --kind and --tenant".into()));
            };
            cases::from_decisions(&Client::new(conn)?, *kind, *tenant, *last, output, *force).await?
        }
        PolicyCommand::Test { files, limits, .. } => {
            let [component, fixture_files @ ..] = files.as_slice() else { unreachable!("clap requires FILES") };
            if fixture_files.is_empty() {
                return Err(PolicyCliError::Usage("test COMPONENT FIXTURES…: give at least one fixture file".into()));
            }
            let files = cases::read(fixture_files)?;
            let (engine, policy) = load(component, limits.limits()).await?;
            let (component, json_out) = (component.clone(), conn.json);
            let (text, failed, total) =
                tokio::task::spawn_blocking(move || cases::run(&engine, &policy, &component, &files, json_out))
                    .await
                    .map_err(|e| PolicyCliError::Local(format!("the test run stopped: {e}")))?;
            write(out, &text)?;
            if failed > 0 {
                return Err(PolicyCliError::CasesFailed { failed, total });
            }
            return Ok(());
        }
        command => {
            let client = Client::new(conn)?;
            remote(&client, command, conn.json).await?
        }
    };
    write(out, &text)
}

/// Compile and check a component file as an upload does (`PolicyEngine::load_with`: imports,
/// exports, conformance), on the production engine with the component's own `limits`.
async fn load(file: &Path, limits: ComponentLimits) -> CliResult<(PolicyEngine, pix_policy::LoadedPolicy)> {
    let bytes =
        std::fs::read(file).map_err(|e| PolicyCliError::Local(format!("cannot read {}: {e}", file.display())))?;
    let engine = PolicyEngine::new(PolicyLimits::default()).map_err(|e| PolicyCliError::Local(e.to_string()))?;
    let checker = engine.clone();
    let policy = tokio::task::spawn_blocking(move || checker.load_with(&bytes, limits))
        .await
        .map_err(|e| PolicyCliError::Local(format!("validation stopped: {e}")))?
        .map_err(|e| {
            let code = pix_core::error::ErrorCode::PolicyRejected;
            PolicyCliError::Api { status: code.status(), code: code.code().to_owned(), message: e.to_string() }
        })?;
    Ok((engine, policy))
}

fn new_project(path: &Path, kind: ProjectKind, lang: Lang) -> CliResult<String> {
    let files = scaffold::create(path, kind, lang).map_err(PolicyCliError::Usage)?;
    let mut text = format!(
        "created {} ({} policy in {}):
",
        path.display(),
        kind.as_str(),
        lang.as_str()
    );
    for f in files {
        text += &format!("  {}\n", f.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    text += &format!(
        "next: cd {} && ./build.sh && pix-host policy test {name}.wasm fixtures.toml{}   (see README.md)\n",
        path.display(),
        lang.test_flags(),
    );
    Ok(text)
}

async fn validate(file: &Path, kind: PolicyKind, declared: ComponentLimits, json: bool) -> CliResult<String> {
    let bytes =
        std::fs::read(file).map_err(|e| PolicyCliError::Local(format!("cannot read {}: {e}", file.display())))?;
    let engine = PolicyEngine::new(PolicyLimits::default()).map_err(|e| PolicyCliError::Local(e.to_string()))?;
    let policy = tokio::task::spawn_blocking(move || validate_component(&engine, kind, &bytes, declared))
        .await
        .map_err(|e| PolicyCliError::Local(format!("validation stopped: {e}")))?
        .map_err(|e| PolicyCliError::Api {
            status: e.0.code.status(),
            code: e.0.code.code().to_owned(),
            message: e.0.message,
        })?;
    let kinds: Vec<&str> = policy.kinds().iter().map(|k| k.as_str()).collect();
    let limits = policy.limits();
    let contract: Vec<String> = policy.contract().iter().map(|(kind, version)| format!("{kind} @{version}")).collect();
    let fixtures: usize = policy
        .kinds()
        .iter()
        .map(|k| match k {
            PolicyKind::Fee => fixtures::fee().len(),
            PolicyKind::RefundSplit => fixtures::refund_split().len(),
            PolicyKind::CashinAcceptance => fixtures::cashin_acceptance().len(),
            PolicyKind::FraudTriage => fixtures::fraud_triage().len(),
        })
        .sum();
    if json {
        let contract: serde_json::Map<String, Value> = policy
            .contract()
            .iter()
            .map(|(kind, version)| (kind.as_str().to_owned(), json!(version.as_str())))
            .collect();
        let answer = json!({"valid": true, "sha256": policy.sha256(), "kinds": kinds, "contract": contract,
                            "fixturesPassed": fixtures});
        return Ok(format!("{answer:#}\n"));
    }
    Ok(format!(
        "valid: {} implements {} (exports {})\n  sha256    {}\n  contract  pix:policy {}\n  fixtures  {fixtures} \
         conformance fixtures passed within fuel {}, deadline {} ms, memory {} MiB\n",
        file.display(),
        kind,
        kinds.join(", "),
        policy.sha256(),
        contract.join(", "),
        limits.fuel.unwrap_or_default(),
        limits.deadline_ms.unwrap_or_default(),
        limits.memory_mib.unwrap_or_default(),
    ))
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(conn: &Connection) -> CliResult<Client> {
        let token = conn.admin_token.as_ref().map(|t| t.0.clone()).filter(|t| !t.is_empty()).ok_or_else(|| {
            PolicyCliError::Usage("an admin token is needed: pass --admin-token or set PIX_ADMIN_TOKEN".into())
        })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| PolicyCliError::Local(e.to_string()))?;
        Ok(Client { http, base: conn.url.trim_end_matches('/').to_owned(), token })
    }

    /// Sends a request; a non-2xx answer becomes [`PolicyCliError::Api`]. `None` for 204.
    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> CliResult<Option<Value>> {
        let url = format!("{}{path}", self.base);
        let request = build(self.http.request(method, &url).bearer_auth(&self.token));
        let unreachable = |source| PolicyCliError::Unreachable { url: self.base.clone(), source };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            if body.is_empty() {
                return Ok(None);
            }
            let value = serde_json::from_slice(&body)
                .map_err(|e| PolicyCliError::Local(format!("{path}: the host answered non-JSON ({e})")))?;
            return Ok(Some(value));
        }
        let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let text = |field: &str| error.get(field).and_then(Value::as_str).map(str::to_owned);
        Err(PolicyCliError::Api {
            status: status.as_u16(),
            code: text("code").unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            message: text("message")
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect::<String>()),
        })
    }
}

fn tenant_label(tenant: Option<Uuid>) -> String {
    tenant.map_or_else(|| "the default binding".to_owned(), |t| format!("tenant {t}"))
}

fn slot_body(kind: PolicyKind, tenant: Option<Uuid>, params: Option<&Value>) -> Value {
    let mut body = json!({"kind": kind.as_str()});
    if let Some(t) = tenant {
        body["tenantId"] = json!(t);
    }
    if let Some(p) = params {
        body["params"] = p.clone();
    }
    body
}

fn slot_query(kind: PolicyKind, tenant: Option<Uuid>) -> String {
    let mut query = format!("kind={kind}");
    if let Some(t) = tenant {
        query += &format!("&tenantId={t}");
    }
    query
}

/// A stored hash as typed: the host addresses components by lowercase hex sha256.
fn sha_arg(sha256: &str) -> CliResult<String> {
    let sha = sha256.trim().to_ascii_lowercase();
    if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PolicyCliError::Usage(format!("{sha256:?} is not a hex sha256")));
    }
    Ok(sha)
}

fn raw(value: &Option<Value>) -> String {
    value.as_ref().map_or_else(String::new, |v| format!("{v:#}\n"))
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

fn describe_binding(b: &Value) -> String {
    let params = b.get("params").filter(|p| !p.is_null() && p.as_object().is_none_or(|o| !o.is_empty()));
    let params = params.map(|p| format!(" with params {p}")).unwrap_or_default();
    format!(
        "{}{params} (binding #{}, {} at {})",
        str_of(b, "sha256"),
        b["id"],
        str_of(b, "action"),
        str_of(b, "createdAt")
    )
}

async fn remote(client: &Client, command: &PolicyCommand, json_out: bool) -> CliResult<String> {
    match command {
        PolicyCommand::Validate { .. } | PolicyCommand::New { .. } | PolicyCommand::Test { .. } => {
            Err(PolicyCliError::Usage("runs offline".into()))
        }
        PolicyCommand::Upload { file, kind, name, tenant, params, activate, limits } => {
            if !activate && (tenant.is_some() || params.is_some()) {
                return Err(PolicyCliError::Usage("--tenant and --params apply with --activate".into()));
            }
            let bytes = std::fs::read(file)
                .map_err(|e| PolicyCliError::Local(format!("cannot read {}: {e}", file.display())))?;
            let mut path = format!("/v1/admin/policies?kind={kind}{}", limits.query());
            if let Some(n) = name {
                path += &format!("&name={}", url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>());
            }
            let uploaded = client
                .send(Method::POST, &path, |r| r.header("content-type", "application/wasm").body(bytes))
                .await?
                .unwrap_or(Value::Null);
            let sha = str_of(&uploaded, "sha256").to_owned();
            let activated = if *activate {
                Some(activate_call(client, &sha, *kind, *tenant, params.as_ref()).await?)
            } else {
                None
            };
            if json_out {
                let answer = match &activated {
                    Some(b) => json!({"component": uploaded, "binding": b}),
                    None => uploaded,
                };
                return Ok(format!("{answer:#}\n"));
            }
            let verb = if uploaded["created"] == json!(true) { "uploaded" } else { "already stored" };
            let mut text = format!(
                "{verb}: {} ({}, {} bytes)\n  sha256  {sha}\n",
                str_of(&uploaded, "name"),
                uploaded["kinds"].as_array().map_or(String::new(), |k| join(k)),
                uploaded["sizeBytes"],
            );
            if activated.is_some() {
                text += &format!("activated for {kind} of {}\n", tenant_label(*tenant));
            }
            Ok(text)
        }
        PolicyCommand::List { tenant, kind } => {
            let components = client.send(Method::GET, "/v1/admin/policies", |r| r).await?.unwrap_or(Value::Null);
            let components: Vec<Value> = components
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| {
                    kind.is_none_or(|k| c["kinds"].as_array().is_some_and(|ks| ks.contains(&json!(k.as_str()))))
                })
                .cloned()
                .collect();
            let kinds: Vec<PolicyKind> = kind.map_or_else(|| PolicyKind::ALL.to_vec(), |k| vec![k]);
            let mut bindings = serde_json::Map::new();
            for k in &kinds {
                let history = client
                    .send(Method::GET, &format!("/v1/admin/policy-bindings?{}", slot_query(*k, *tenant)), |r| r)
                    .await?
                    .unwrap_or(Value::Null);
                bindings.insert(k.as_str().to_owned(), history.get(0).cloned().unwrap_or(Value::Null));
            }
            if json_out {
                return Ok(format!("{:#}\n", json!({"components": components, "bindings": bindings})));
            }
            let mut text = format!("{} component(s)\n", components.len());
            for c in &components {
                text += &format!(
                    "  {}  {:<32} {:<40} {:>8} B  {}\n",
                    str_of(c, "sha256"),
                    str_of(c, "name"),
                    c["kinds"].as_array().map_or(String::new(), |k| join(k)),
                    c["sizeBytes"].as_i64().unwrap_or(0),
                    str_of(c, "uploadedAt"),
                );
            }
            text += &format!("Bindings of {}:\n", tenant_label(*tenant));
            for (k, b) in &bindings {
                let line = match b {
                    Value::Null => "none (falls back)".to_owned(),
                    b if b["removed"] == json!(true) => {
                        format!("none: {} was rolled back (falls back)", str_of(b, "sha256"))
                    }
                    b => describe_binding(b),
                };
                text += &format!("  {k:<18} {line}\n");
            }
            Ok(text)
        }
        PolicyCommand::Activate { sha256, kind, tenant, params } => {
            let binding = activate_call(client, &sha_arg(sha256)?, *kind, *tenant, params.as_ref()).await?;
            if json_out {
                return Ok(format!("{binding:#}\n"));
            }
            Ok(format!("activated for {kind} of {}: {}\n", tenant_label(*tenant), describe_binding(&binding)))
        }
        PolicyCommand::Rollback { kind, tenant } => {
            let binding = client
                .send(Method::POST, "/v1/admin/policy-bindings/rollback", |r| r.json(&slot_body(*kind, *tenant, None)))
                .await?;
            if json_out {
                return Ok(raw(&binding));
            }
            let b = binding.unwrap_or(Value::Null);
            if b["removed"] == json!(true) {
                let fallback = if tenant.is_some() {
                    "the default binding, else the shipped policy"
                } else {
                    "the shipped policy"
                };
                return Ok(format!(
                    "rolled back {kind} of {}: the first activation ({}) is removed; it falls back to {fallback}\n",
                    tenant_label(*tenant),
                    str_of(&b, "sha256"),
                ));
            }
            Ok(format!("rolled back {kind} of {}: now {}\n", tenant_label(*tenant), describe_binding(&b)))
        }
        PolicyCommand::Shadow { sha256, kind, tenant, params, clear, report, last } => {
            if *report {
                let tenant = tenant.ok_or_else(|| PolicyCliError::Usage("--report needs --tenant".into()))?;
                let path = format!("/v1/admin/policy-shadows/summary?kind={kind}&tenantId={tenant}&limit={last}");
                let summary = client.send(Method::GET, &path, |r| r).await?;
                if json_out {
                    return Ok(raw(&summary));
                }
                let s = summary.unwrap_or(Value::Null);
                let mut text = format!(
                    "shadow report for {kind} of tenant {tenant} (last {last} decisions): {} compared, {} agreed, {} disagreed\n",
                    s["compared"], s["agreed"], s["disagreed"]
                );
                for d in s["disagreements"].as_array().into_iter().flatten().take(5) {
                    text += &format!(
                        "  decision #{}: active {} said {}; shadow {} said {}\n",
                        d["id"],
                        short(str_of(d, "sha256")),
                        d["output"],
                        short(str_of(d, "shadowSha256")),
                        d["shadowOutput"]
                    );
                }
                return Ok(text);
            }
            // The host stops whatever runs in the slot; the path's hash is informational.
            let sha = match sha256 {
                Some(s) => sha_arg(s)?,
                None => "-".to_owned(),
            };
            if *clear {
                let path = format!("/v1/admin/policies/{sha}/shadow?{}", slot_query(*kind, *tenant));
                client.send(Method::DELETE, &path, |r| r).await?;
                return Ok(if json_out {
                    format!("{:#}\n", json!({"stopped": true}))
                } else {
                    format!("shadow stopped for {kind} of {}\n", tenant_label(*tenant))
                });
            }
            let body = slot_body(*kind, *tenant, params.as_ref());
            client.send(Method::PUT, &format!("/v1/admin/policies/{sha}/shadow"), |r| r.json(&body)).await?;
            Ok(if json_out {
                format!("{:#}\n", json!({"shadow": sha, "started": true}))
            } else {
                format!(
                    "shadow running: {sha} beside the active {kind} policy of {} (see `shadow --report`)\n",
                    tenant_label(*tenant)
                )
            })
        }
        PolicyCommand::Replay { sha256, kind, tenant, last } => {
            let sha = sha_arg(sha256)?;
            let path = format!("/v1/admin/policies/{sha}/replay?kind={kind}&tenantId={tenant}&limit={last}");
            let report = client.send(Method::POST, &path, |r| r).await?;
            if json_out {
                return Ok(raw(&report));
            }
            let r = report.unwrap_or(Value::Null);
            let mut text = format!(
                "replayed {} {kind} decisions of tenant {tenant} with {}: {} same, {} different ({} candidate errors)\n",
                r["replayed"],
                short(&sha),
                r["same"],
                r["different"],
                r["errors"]
            );
            for d in r["differences"].as_array().into_iter().flatten().take(5) {
                text += &format!(
                    "  decision #{}: recorded {}; candidate {}\n",
                    d["decisionId"], d["recorded"], d["candidate"]
                );
            }
            Ok(text)
        }
    }
}

async fn activate_call(
    client: &Client,
    sha: &str,
    kind: PolicyKind,
    tenant: Option<Uuid>,
    params: Option<&Value>,
) -> CliResult<Value> {
    let body = slot_body(kind, tenant, params);
    let binding = client.send(Method::POST, &format!("/v1/admin/policies/{sha}/activate"), |r| r.json(&body)).await?;
    Ok(binding.unwrap_or(Value::Null))
}

fn join(values: &[Value]) -> String {
    values.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
