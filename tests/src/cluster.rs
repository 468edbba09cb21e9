//! Real `pix-host` processes on one PostgreSQL database, with the BTG, Midaz and CRM simulators
//! in a process of their own (`pix-host sandbox`) so they outlive the hosts: what the kill -9
//! driver, the multi-instance driver and the multi-instance smoke test share. Also the checks
//! they end with (every transfer final, the ledger balanced, no EndToEndId paid twice, no
//! webhook event lost, every job run once) and a load of cash-outs and cash-ins whose clients
//! retry, with the same idempotency key, on whichever instance answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use pix_sandbox::DemoData;
use serde_json::{Value, json};
use sqlx::PgPool;

/// The simulators' BTG client secret and webhook secret (`pix-host sandbox` defaults).
const BTG_CLIENT_ID: &str = "pix-host";
const BTG_CLIENT_SECRET: &str = "sandbox-btg-secret";
const BTG_WEBHOOK_SECRET: &str = "cluster-webhook-secret-0123456789";

/// The `pix-host` binary of the profile the caller was built with. Tests and examples of this
/// crate cannot name another package's binary, so it is looked up beside them: a workspace build
/// (`cargo nextest run --workspace`, CI) has built it. When it is missing or older than the
/// host's sources (`-p pix-e2e` alone after a change), it is built first.
pub fn pix_host_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> or target/<profile>/examples/<example>
    let profile_dir = exe.parent().and_then(Path::parent).context("unexpected executable location")?;
    let target_dir = profile_dir.parent().context("unexpected executable location")?;
    let bin = profile_dir.join("pix-host");
    let workspace = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let sources = ["host", "migrations"].iter().filter_map(|d| newest_modification(&workspace.join(d))).max();
    if built.is_some() && built >= sources {
        return Ok(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace)
        .args(["build", "--offline", "--quiet", "-p", "pix-server", "--bin", "pix-host", "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().context("running cargo build for pix-host")?;
    anyhow::ensure!(status.success(), "building pix-host failed");
    Ok(bin)
}

/// The latest modification time of a file under `dir`.
fn newest_modification(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            if meta.is_dir() { newest_modification(&entry.path()) } else { meta.modified().ok() }
        })
        .max()
}

/// A database of its own on the server of `PIX_TEST_DATABASE_URL`, dropped with this value.
pub struct Database {
    pub url: String,
    pub pool: PgPool,
    name: String,
    server_url: String,
}

impl Database {
    /// `None` when `PIX_TEST_DATABASE_URL` is not set; under CI (`CI` set) that is an error, so
    /// the multi-instance coverage cannot vanish.
    pub async fn create(prefix: &str) -> anyhow::Result<Option<Database>> {
        let Ok(server_url) = std::env::var(crate::PG_ENV) else {
            anyhow::ensure!(std::env::var_os("CI").is_none(), "{} must be set in CI", crate::PG_ENV);
            return Ok(None);
        };
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&server_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&admin).await?;
        admin.close().await;
        let mut url = reqwest::Url::parse(&server_url)?;
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await?;
        Ok(Some(Database { url, pool, name, server_url }))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (name, server_url, pool) = (self.name.clone(), self.server_url.clone(), self.pool.clone());
        // Drop may run inside a runtime: the database goes on a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                pool.close().await;
                let admin = PgPool::connect(&server_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                    .execute(&admin)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// A free loopback port (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` consecutive free loopback ports; returns the first.
fn free_ports(n: u16) -> anyhow::Result<u16> {
    for _ in 0..50 {
        let base = free_port()?;
        if base.checked_add(n).is_none() {
            continue;
        }
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    anyhow::bail!("no {n} consecutive free ports")
}

/// `pix-host sandbox` in a process of its own.
pub struct SandboxProcess {
    child: Child,
    pub data: DemoData,
}

impl SandboxProcess {
    fn start(bin: &Path, log: &Path) -> anyhow::Result<SandboxProcess> {
        let base = free_ports(4)?;
        let mut child = Command::new(bin)
            .args(["sandbox", "--base-port", &base.to_string()])
            .env("PIX_SANDBOX_WEBHOOK_SECRET", BTG_WEBHOOK_SECRET)
            .env_remove("PIX_CONFIG")
            .env("PIX_LOG__FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        // It prints the seeded demo data as pretty JSON, closed by a lone `}`.
        let mut lines = BufReader::new(child.stdout.take().context("sandbox stdout")?).lines();
        let mut printed = String::new();
        for line in lines.by_ref() {
            let line = line?;
            let done = line == "}";
            printed.push_str(&line);
            if done {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        let data = serde_json::from_str(&printed).with_context(|| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            format!("pix-host sandbox printed: {printed}\nits log: {log}")
        })?;
        Ok(SandboxProcess { child, data })
    }

    pub fn control_url(&self) -> &str {
        &self.data.control_url
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `pix-host serve` process; restarted on the same port so its URL stays valid.
pub struct HostProcess {
    pub name: String,
    pub role: &'static str,
    pub url: String,
    listen: SocketAddr,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// The only roots it trusts: the receiver's CA (`SSL_CERT_FILE`).
    ca_file: PathBuf,
    child: Option<Child>,
}

impl HostProcess {
    /// Starts the process and waits until `/readyz` answers 200.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .args(["serve", "--role", self.role, "--config"])
            .arg(&self.config)
            .env_remove("PIX_CONFIG")
            .env("PIX_SERVER__LISTEN", self.listen.to_string())
            .env("SSL_CERT_FILE", &self.ca_file)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                anyhow::bail!("{} exited at start ({status}); see {}", self.name, self.log.display());
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("{} not ready after 60 s; see {}", self.name, self.log.display())
    }

    /// SIGKILL: no drain, no cleanup, whatever was in flight is left as it was.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How the hosts are tuned for a test that must converge in seconds rather than minutes.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The database pool of each instance.
    pub max_connections: u32,
    /// Worker lease: how long a killed instance's jobs wait before another instance takes them.
    pub lease_secs: u64,
    pub policy_poll_ms: u64,
    pub log_filter: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            max_connections: 16,
            lease_secs: 10,
            policy_poll_ms: 2000,
            // Each instance logs (in JSON) when it applies a policy version: propagation is read there.
            log_filter: "warn,pix_server::policies=info".into(),
        }
    }
}

/// The simulators, a database, and the host processes sharing it.
pub struct Cluster {
    pub hosts: Vec<HostProcess>,
    pub sandbox: SandboxProcess,
    pub db: Database,
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    config: PathBuf,
    /// The webhook receiver's certificate and key (PEM), under the CA the hosts trust.
    receiver_identity: (String, String),
}

impl Cluster {
    /// `None` without `PIX_TEST_DATABASE_URL`. `roles` names each instance's `--role`; none is
    /// started yet.
    pub async fn create(
        prefix: &str,
        roles: &[&'static str],
        options: &ClusterOptions,
    ) -> anyhow::Result<Option<Cluster>> {
        let Some(db) = Database::create(prefix).await? else { return Ok(None) };
        let bin = pix_host_binary()?;
        let dir = tempfile::tempdir()?;
        let sandbox = SandboxProcess::start(&bin, &dir.path().join("sandbox.log"))?;
        let config = dir.path().join("pix-host.toml");
        std::fs::write(&config, host_config(&db.url, &sandbox.data, dir.path(), options))?;
        let (ca_pem, receiver_identity) = receiver_pki()?;
        let ca_file = dir.path().join("receiver-ca.pem");
        std::fs::write(&ca_file, ca_pem)?;
        let hosts = roles
            .iter()
            .enumerate()
            .map(|(i, role)| {
                let listen: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
                Ok(HostProcess {
                    name: format!("host-{}-{role}", i + 1),
                    role,
                    url: format!("http://{listen}"),
                    listen,
                    bin: bin.clone(),
                    config: config.clone(),
                    log: dir.path().join(format!("host-{}.log", i + 1)),
                    ca_file: ca_file.clone(),
                    child: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(Cluster { hosts, sandbox, db, dir, bin, config, receiver_identity }))
    }

    /// Starts every instance not running (they migrate the database in turn at start).
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for host in &mut self.hosts {
            if !host.is_running() {
                host.start().await?;
            }
        }
        Ok(())
    }

    /// Starts every instance and sets up what a load run needs: an admin credential, the webhook
    /// receiver, the tenant (BTG's webhooks sent to host `webhook_host`) and the balances before.
    pub async fn start_with_tenant(&mut self, webhook_host: usize) -> anyhow::Result<LoadSetup> {
        self.start_all().await?;
        let admin = self.admin_token()?;
        let receiver = WebhookReceiver::default();
        let receiver_url = receiver.start(self).await?;
        let tenant = self.tenant(&admin, &self.hosts[webhook_host].url, &receiver_url).await?;
        let initial = self.balances().await?;
        Ok(LoadSetup { admin, receiver, tenant, initial })
    }

    /// The instances serving the API (`api` or `all`).
    pub fn api_urls(&self) -> Vec<String> {
        self.hosts.iter().filter(|h| h.role != "workers").map(|h| h.url.clone()).collect()
    }

    /// An admin credential, issued as an operator would (`pix-host admin-token`).
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(["admin-token", "--label", "cluster", "--config"])
            .arg(&self.config)
            .env_remove("PIX_CONFIG")
            .env("PIX_LOG__FILTER", "error")
            .output()?;
        anyhow::ensure!(out.status.success(), "admin-token failed: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// The seeded institution as a tenant with its own BTG identity and webhook secret (files,
    /// as an operator keeps them), BTG's webhooks sent to `webhook_host`, and a TRANSFER
    /// endpoint at `receiver`.
    pub async fn tenant(&self, admin: &str, webhook_host: &str, receiver: &str) -> anyhow::Result<ClusterTenant> {
        let http = reqwest::Client::new();
        let data = &self.sandbox.data;
        let secret_file = |name: &str, value: &str| -> anyhow::Result<String> {
            let path = self.dir.path().join(name);
            std::fs::write(&path, value)?;
            Ok(format!("file:{}", path.display()))
        };
        let created: Value = ok_json(
            http.post(format!("{webhook_host}/v1/admin/tenants"))
                .bearer_auth(admin)
                .json(&json!({"name": "Cluster Bank", "ispb": data.ispb, "midazOrganizationId": data.organization_id,
                    "midazLedgerId": data.ledger_id,
                    "btgIdentity": {"clientId": BTG_CLIENT_ID, "clientSecretRef": secret_file("btg.secret", BTG_CLIENT_SECRET)?}}))
                .send()
                .await?,
        )
        .await?;
        let id = created["tenant"]["id"].as_str().context("tenant id")?.to_owned();
        let token = created["credential"]["token"].as_str().context("tenant token")?.to_owned();
        ok_json(
            http.put(format!("{webhook_host}/v1/admin/tenants/{id}/inbound-secret"))
                .bearer_auth(admin)
                .json(&json!({"secretRef": secret_file("webhook.secret", BTG_WEBHOOK_SECRET)?}))
                .send()
                .await?,
        )
        .await?;
        let set = http
            .put(format!("{}/_control/btg/webhook", self.sandbox.control_url()))
            .json(&json!({"url": format!("{webhook_host}/v1/inbound/btg/{id}")}))
            .send()
            .await?;
        anyhow::ensure!(set.status().is_success(), "pointing BTG webhooks at the host: {}", set.status());
        ok_json(
            http.post(format!("{webhook_host}/v1/webhooks/endpoints"))
                .bearer_auth(&token)
                .json(&json!({"url": receiver, "flowType": "TRANSFER"}))
                .send()
                .await?,
        )
        .await?;
        Ok(ClusterTenant { id, token })
    }

    /// The simulated Midaz, as its control API reports it.
    pub async fn midaz_state(&self) -> anyhow::Result<Value> {
        Ok(reqwest::get(format!("{}/_control/midaz/state", self.sandbox.control_url())).await?.json().await?)
    }

    /// The simulated BTG's payments.
    pub async fn btg_payments(&self) -> anyhow::Result<Vec<Value>> {
        let state: Value =
            reqwest::get(format!("{}/_control/btg/state", self.sandbox.control_url())).await?.json().await?;
        Ok(state["payments"].as_array().cloned().unwrap_or_default())
    }

    /// Balances (available + on hold, centavos) of the tenant's ledger, by account id.
    pub async fn balances(&self) -> anyhow::Result<HashMap<String, i64>> {
        let state = self.midaz_state().await?;
        Ok(ledger(&state, &self.sandbox.data.ledger_id)
            .and_then(|l| l["accounts"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let total = a["availableCentavos"].as_i64()? + a["onHoldCentavos"].as_i64()?;
                Some((a["id"].as_str()?.to_owned(), total))
            })
            .collect())
    }

    /// When instance `i` applied `sha256` as a tenant's or the default policy, per its log
    /// (`policy active`, at start and at every change), in order.
    pub fn policy_applied(&self, i: usize, sha256: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
        let log = std::fs::read_to_string(&self.hosts[i].log).unwrap_or_default();
        log.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["message"] == "policy active" && entry["sha256"] == sha256)
            .filter_map(|entry| entry["timestamp"].as_str()?.parse().ok())
            .collect()
    }
}

impl Cluster {
    /// How long instance `i`'s reloads spent loading each policy they applied (`load_ms` of its
    /// `policy active` lines: fetch, deserialize or compile, conformance), in ms.
    pub fn policy_load_ms(&self, i: usize) -> Vec<f64> {
        let log = std::fs::read_to_string(&self.hosts[i].log).unwrap_or_default();
        log.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["message"] == "policy active")
            .filter_map(|entry| entry["load_ms"].as_f64())
            .collect()
    }
}

/// A CA (PEM) and a certificate with its key (PEM) for 127.0.0.1 signed by it.
fn receiver_pki() -> anyhow::Result<(String, (String, String))> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "webhook receiver CA");
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &issuer)?;
    Ok((issuer.pem(), (cert.pem(), key.serialize_pem())))
}

fn ledger<'a>(state: &'a Value, ledger_id: &str) -> Option<&'a Value> {
    state["ledgers"].as_array()?.iter().find(|l| l["ledgerId"] == ledger_id)
}

fn host_config(db_url: &str, data: &DemoData, dir: &Path, o: &ClusterOptions) -> String {
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let policies = crate::shipped_policies();
    format!(
        r#"data_dir = "{data_dir}"

[database]
url = "{db_url}"
max_connections = {max_connections}

[security]
secret_key = "{key}"

[log]
format = "json"
filter = "{log_filter}"

[idempotency]
# A request cut short by a kill holds its key this long before a retry may take it over.
lock_secs = 3

[workers]
lease_secs = {lease_secs}
job_timeout_ms = {job_timeout_ms}
retry_cap_ms = 5000

[transfers]
stale_pending_secs = 5
stale_sent_secs = 10
btg_not_found_grace_secs = 10
sweep_every_ms = 1000

[policies]
dir = "{policies}"
poll_interval_ms = {policy_poll_ms}

[outbound]
allow_networks = ["127.0.0.1/32"]

[integrations.midaz]
onboarding_url = "{midaz}"
organization_id = "{org}"
ledger_id = "{ledger}"

[integrations.crm]
base_url = "{crm}"
organization_id = "{org}"
ledger_id = "{ledger}"

[integrations.btg]
base_url = "{btg}"
client_id = ""
client_secret = ""
ispb = "{ispb}"
"#,
        data_dir = dir.join("data").display(),
        max_connections = o.max_connections,
        log_filter = o.log_filter,
        lease_secs = o.lease_secs,
        job_timeout_ms = o.lease_secs * 800,
        policies = policies.display(),
        policy_poll_ms = o.policy_poll_ms,
        midaz = data.midaz_url,
        crm = data.crm_url,
        btg = data.btg_url,
        org = data.organization_id,
        ledger = data.ledger_id,
        ispb = data.ispb,
    )
}

async fn ok_json(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "{status}: {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub struct ClusterTenant {
    pub id: String,
    pub token: String,
}

/// What `Cluster::start_with_tenant` set up.
pub struct LoadSetup {
    pub admin: String,
    pub receiver: WebhookReceiver,
    pub tenant: ClusterTenant,
    /// Every account's balance before the load.
    pub initial: HashMap<String, i64>,
}

impl LoadSetup {
    /// Settles (within `patience`) and checks every invariant once `load` has stopped.
    pub async fn settle_and_check(
        &self,
        cluster: &Cluster,
        load: &Load,
        patience: Duration,
    ) -> anyhow::Result<Verdict> {
        let mut verdict = settle_and_check(cluster, &self.tenant, &self.receiver, &self.initial, patience).await?;
        verdict.check_retries(&load.counts);
        Ok(verdict)
    }
}

/// Receives the host's outbound webhooks: every `webhook-id` and how often it came.
#[derive(Clone, Default)]
pub struct WebhookReceiver {
    received: Arc<Mutex<BTreeMap<String, (u32, Value)>>>,
}

impl WebhookReceiver {
    /// Serves HTTPS on a loopback port, with the certificate the cluster's hosts trust, until the
    /// process ends; returns its URL.
    pub async fn start(&self, cluster: &Cluster) -> anyhow::Result<String> {
        let received = self.received.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let received = received.clone();
                async move {
                    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let mut received = received.lock().unwrap_or_else(|p| p.into_inner());
                    received.entry(id).or_insert((0, body)).0 += 1;
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let (cert, key) = &cluster.receiver_identity;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
        let handle = axum_server::Handle::new();
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = axum_server::bind_rustls(addr, tls).handle(handle.clone());
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        let addr = handle.listening().await.context("the webhook receiver did not start")?;
        Ok(format!("https://{addr}/hooks"))
    }

    /// Each received event id with its count and body.
    pub fn received(&self) -> BTreeMap<String, (u32, Value)> {
        self.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the load did, counted by its clients.
#[derive(Default)]
pub struct LoadCounts {
    pub cashouts_started: AtomicU64,
    /// Cash-outs whose `process` was answered 2xx (perhaps after retries).
    pub cashouts_accepted: AtomicU64,
    /// Cash-outs refused with a final 4xx (never retried).
    pub cashouts_refused: AtomicU64,
    /// Cash-outs whose client gave up: the host never answered within the operation's deadline.
    pub cashouts_abandoned: AtomicU64,
    /// Requests whose answer was lost in a crash and whose retry, with the same key, was answered
    /// 409 (for example `PIX-0410`, the initiation already processed) instead of the outcome: a
    /// violation.
    pub conflicts_on_retry: AtomicU64,
    pub cashins_sent: AtomicU64,
    /// Requests retried after a connection error, a 5xx or an in-flight idempotency key.
    pub retries: AtomicU64,
    /// Requests answered after a failover to another instance.
    pub failovers: AtomicU64,
}

/// Cash-outs by `clients` concurrent clients and cash-ins sent through the simulated BTG,
/// until `stop`. Each client sends every request with an idempotency key and, while an answer
/// is missing (connection refused, reset, 5xx, 409 in flight), retries the same request with the
/// same key on the next instance.
pub struct Load {
    pub urls: Vec<String>,
    pub token: String,
    pub payer: String,
    pub control_url: String,
    pub cashin_creditor: Value,
    pub counts: Arc<LoadCounts>,
    pub stop: Arc<AtomicBool>,
}

impl Load {
    /// The load of the cluster's seeded institution: `@acme` pays, `@maria` receives, over `urls`.
    pub fn new(cluster: &Cluster, tenant: &ClusterTenant, urls: Vec<String>) -> Arc<Load> {
        let data = &cluster.sandbox.data;
        Arc::new(Load {
            urls,
            token: tenant.token.clone(),
            payer: account_id(data, "@acme"),
            control_url: data.control_url.clone(),
            cashin_creditor: creditor(data, "@maria"),
            counts: Arc::new(LoadCounts::default()),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Tells the clients `spawn` started to stop, and waits until they have.
    pub async fn stop(&self, mut clients: tokio::task::JoinSet<()>) {
        self.stop.store(true, Ordering::Relaxed);
        while clients.join_next().await.is_some() {}
    }

    pub fn spawn(self: &Arc<Self>, clients: usize, cashins_per_second: u64) -> tokio::task::JoinSet<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..clients {
            let load = self.clone();
            tasks.spawn(async move { load.cashout_client(client).await });
        }
        if cashins_per_second > 0 {
            let load = self.clone();
            tasks.spawn(async move { load.cashin_feeder(cashins_per_second).await });
        }
        tasks
    }

    async fn cashout_client(&self, client: usize) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("client");
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            self.counts.cashouts_started.fetch_add(1, Ordering::Relaxed);
            // One in ten is refused by BTG at settlement (cents .13): its hold must come back.
            let cents = if n.is_multiple_of(10) { 13 } else { (n % 90 + 1) as u32 };
            let cents = if cents == 66 { 67 } else { cents };
            let amount = format!("{}.{cents:02}", 1 + n % 3);
            let key = format!("c{client}-{n}-{}", uuid::Uuid::new_v4().simple());
            let body = json!({"type": "MANUAL", "amount": amount, "description": format!("load {client}/{n}"),
                "destination": {"ispb": "87654321", "branch": "0042", "account": "7001",
                                "accountType": "CACC", "document": "52998224725", "name": "Ana Pereira"}});
            let start = client + n as usize;
            let initiation =
                match self.call(&http, start, "/v1/transfers/cashout/initiate", &format!("{key}-i"), &body).await {
                    Outcome::Ok(v) => v["initiationId"].as_str().unwrap_or_default().to_owned(),
                    Outcome::Refused | Outcome::ConflictOnRetry => {
                        self.counts.cashouts_refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Outcome::GaveUp => {
                        self.counts.cashouts_abandoned.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
            let process = json!({"initiationId": initiation});
            match self.call(&http, start + 1, "/v1/transfers/cashout/process", &format!("{key}-p"), &process).await {
                Outcome::Ok(_) => self.counts.cashouts_accepted.fetch_add(1, Ordering::Relaxed),
                Outcome::Refused => self.counts.cashouts_refused.fetch_add(1, Ordering::Relaxed),
                Outcome::ConflictOnRetry => self.counts.conflicts_on_retry.fetch_add(1, Ordering::Relaxed),
                Outcome::GaveUp => self.counts.cashouts_abandoned.fetch_add(1, Ordering::Relaxed),
            };
        }
    }

    /// POSTs `body` until an answer that is not worth retrying, or 90 s.
    async fn call(&self, http: &reqwest::Client, start: usize, path: &str, key: &str, body: &Value) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut attempt = 0;
        while Instant::now() < deadline {
            let url = &self.urls[(start + attempt) % self.urls.len()];
            let sent = http
                .post(format!("{url}{path}"))
                .bearer_auth(&self.token)
                .header("X-Account-Id", &self.payer)
                .header("X-Idempotency", key)
                .json(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    if attempt > 0 && self.urls.len() > 1 {
                        self.counts.failovers.fetch_add(1, Ordering::Relaxed);
                    }
                    return Outcome::Ok(r.json().await.unwrap_or_default());
                }
                Ok(r) if !(r.status().is_server_error() || r.status() == 409 || r.status() == 429) => {
                    let status = r.status();
                    eprintln!("{path} refused: {status} {}", r.text().await.unwrap_or_default());
                    return Outcome::Refused;
                }
                Ok(r) if r.status() == 409 => {
                    // Only a key still in flight (PIX-0018) is worth waiting for; any other
                    // conflict is the answer.
                    let text = r.text().await.unwrap_or_default();
                    if !text.contains("PIX-0018") {
                        eprintln!("{path} refused: 409 {text}");
                        return if attempt > 0 { Outcome::ConflictOnRetry } else { Outcome::Refused };
                    }
                }
                _ => {}
            }
            attempt += 1;
            self.counts.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Outcome::GaveUp
    }

    async fn cashin_feeder(&self, per_second: u64) {
        let http = reqwest::Client::new();
        let mut n = 0u64;
        let every = Duration::from_millis(1000 / per_second.max(1));
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let amount = format!("{}.{:02}", 2 + n % 5, n % 90 + 1);
            let sent = http
                .post(format!("{}/_control/btg/inbound-pix", self.control_url))
                .json(&json!({"amount": amount, "creditor": self.cashin_creditor}))
                .send()
                .await;
            if matches!(sent, Ok(r) if r.status().is_success()) {
                self.counts.cashins_sent.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(every).await;
        }
    }
}

enum Outcome {
    Ok(Value),
    Refused,
    /// A 409 other than "in flight" to a request sent again with its key after a lost answer.
    ConflictOnRetry,
    GaveUp,
}

/// The creditor of a Pix from another bank to a demo customer (`@maria`…).
fn creditor(data: &DemoData, alias: &str) -> Value {
    let a = data.accounts.iter().find(|a| a.alias == alias).expect("demo account");
    json!({"branch": a.branch, "account": a.number, "accountType": "CACC", "taxId": a.document, "name": a.name})
}

/// A demo customer's Midaz account id.
fn account_id(data: &DemoData, alias: &str) -> String {
    data.accounts.iter().find(|a| a.alias == alias).expect("demo account").account_id.clone()
}

#[derive(sqlx::FromRow, Debug)]
struct TransferRow {
    id: String,
    account_id: String,
    direction: String,
    status: String,
    end_to_end_id: String,
    amount: i64,
    fee: i64,
}

/// What the end-of-run checks found.
#[derive(Debug, Default)]
pub struct Verdict {
    pub transfers: BTreeMap<(String, String), i64>,
    pub violations: Vec<String>,
    pub webhook_events: usize,
    pub webhook_duplicates: usize,
    pub jobs_done: i64,
    pub jobs_retried: i64,
    pub failsafe_decisions: i64,
    pub decisions: i64,
}

impl Verdict {
    /// A retried request told that its own operation conflicts (409 other than "in flight") never
    /// learnt its outcome: the idempotency promise was broken.
    pub fn check_retries(&mut self, counts: &LoadCounts) {
        let conflicts = counts.conflicts_on_retry.load(Ordering::Relaxed);
        if conflicts > 0 {
            self.violations.push(format!("{conflicts} retried requests got a conflict instead of their outcome"));
        }
    }

    /// The end of a report: transfers by status, what was checked, the violations.
    pub fn markdown(&self) -> String {
        let mut md = String::from("| transfers | status | count |\n|---|---|---:|\n");
        for ((direction, status), count) in &self.transfers {
            md.push_str(&format!("| {direction} | {status} | {count} |\n"));
        }
        md.push_str(
            "\nChecked after the run: every transfer COMPLETED, FAILED or CANCELLED; no Midaz hold pending, the \
             ledger's total 0 and every account moved by exactly its completed transfers (amount and fee); no \
             EndToEndId paid twice at BTG, no COMPLETED cash-out unpaid and no FAILED one paid; every Pix BTG received \
             has its cash-in; every webhook event recorded was received, and every transfer's final state was sent; no \
             job left undone; no policy decision fell back to the fail-safe.\n",
        );
        if !self.violations.is_empty() {
            md.push_str("\n## Violations\n\n");
            for violation in self.violations.iter().take(50) {
                md.push_str(&format!("- {violation}\n"));
            }
        }
        md
    }
}

/// Prints the report, writes it to `bench/<file>`, and on a violation stops the processes, keeps
/// the hosts' logs and the database for inspection, and exits non-zero.
pub fn finish(cluster: Cluster, verdict: &Verdict, report: &str, file: &str) -> anyhow::Result<()> {
    println!("{report}");
    std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench").join(file), report)?;
    if !verdict.violations.is_empty() {
        let Cluster { hosts, sandbox, db, dir, .. } = cluster;
        drop((hosts, sandbox));
        eprintln!("violations; the hosts' logs are kept in {}", dir.keep().display());
        eprintln!("and the database in {}", db.name);
        std::mem::forget(db);
        std::process::exit(1);
    }
    Ok(())
}

/// Waits (up to `deadline`) until every transfer of the tenant is final, every BTG payment to
/// the institution has its cash-in, no Midaz hold is pending and no webhook delivery is left,
/// then checks the invariants. `initial` are the balances before the load.
pub async fn settle_and_check(
    cluster: &Cluster,
    tenant: &ClusterTenant,
    receiver: &WebhookReceiver,
    initial: &HashMap<String, i64>,
    deadline: Duration,
) -> anyhow::Result<Verdict> {
    let pool = &cluster.db.pool;
    let until = Instant::now() + deadline;
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM transfers WHERE tenant_id = $1
               AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'RECONCILIATION_REQUIRED')",
        )
        .bind(&tenant.id)
        .fetch_one(pool)
        .await?;
        let deliveries: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE tenant_id = $1 AND status = 'pending'")
                .bind(&tenant.id)
                .fetch_one(pool)
                .await?;
        let cashins: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM transfers WHERE tenant_id = $1 AND direction = 'CASHIN'")
                .bind(&tenant.id)
                .fetch_one(pool)
                .await?;
        let inbound = cluster.btg_payments().await?.iter().filter(|p| p["direction"] == "INBOUND").count() as i64;
        let pending_holds = ledger(&cluster.midaz_state().await?, &cluster.sandbox.data.ledger_id)
            .and_then(|l| l["pendingTransactions"].as_i64())
            .unwrap_or(0);
        // Jobs too: a webhook whose cash-in already exists (a duplicate, a status) is still queued.
        let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status <> 'done'").fetch_one(pool).await?;
        if open == 0 && deliveries == 0 && cashins >= inbound && pending_holds == 0 && jobs == 0 {
            break;
        }
        if Instant::now() > until {
            eprintln!(
                "not settled after {deadline:?}: {open} open transfers, {deliveries} pending deliveries, \
                 {cashins}/{inbound} cash-ins, {pending_holds} pending holds, {jobs} jobs left"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    check(cluster, tenant, receiver, initial).await
}

async fn check(
    cluster: &Cluster,
    tenant: &ClusterTenant,
    receiver: &WebhookReceiver,
    initial: &HashMap<String, i64>,
) -> anyhow::Result<Verdict> {
    let pool = &cluster.db.pool;
    let mut v = Verdict::default();
    let transfers: Vec<TransferRow> = sqlx::query_as(
        "SELECT id, account_id, direction, status, end_to_end_id, amount, fee FROM transfers WHERE tenant_id = $1",
    )
    .bind(&tenant.id)
    .fetch_all(pool)
    .await?;
    for t in &transfers {
        *v.transfers.entry((t.direction.clone(), t.status.clone())).or_default() += 1;
        if !["COMPLETED", "FAILED", "CANCELLED"].contains(&t.status.as_str()) {
            v.violations.push(format!("transfer {} ({}) left {}", t.id, t.direction, t.status));
        }
    }

    // BTG: no EndToEndId paid twice; what the host says agrees with what BTG did.
    let payments = cluster.btg_payments().await?;
    let mut by_e2e: HashMap<(&str, &str), Vec<&Value>> = HashMap::new();
    for p in &payments {
        let direction = p["direction"].as_str().unwrap_or_default();
        by_e2e.entry((direction, p["endToEndId"].as_str().unwrap_or_default())).or_default().push(p);
    }
    for ((direction, e2e), ps) in &by_e2e {
        let confirmed = ps.iter().filter(|p| p["status"] == "CONFIRMED").count();
        if ps.len() > 1 || confirmed > 1 {
            v.violations.push(format!("{direction} EndToEndId {e2e} paid {} times ({confirmed} confirmed)", ps.len()));
        }
    }
    let hosts_e2e: HashSet<(&str, &str)> = transfers
        .iter()
        .map(|t| (if t.direction == "CASHOUT" { "OUTBOUND" } else { "INBOUND" }, t.end_to_end_id.as_str()))
        .collect();
    for t in &transfers {
        let direction = if t.direction == "CASHOUT" { "OUTBOUND" } else { "INBOUND" };
        let at_btg = by_e2e.get(&(direction, t.end_to_end_id.as_str()));
        let confirmed = at_btg.is_some_and(|ps| ps.iter().any(|p| p["status"] == "CONFIRMED"));
        match (t.direction.as_str(), t.status.as_str()) {
            ("CASHOUT", "COMPLETED") if !confirmed => {
                v.violations.push(format!("cash-out {} COMPLETED but not confirmed at BTG", t.id));
            }
            ("CASHOUT", "FAILED") if confirmed => {
                v.violations.push(format!("cash-out {} FAILED (hold released) but paid at BTG", t.id));
            }
            _ => {}
        }
    }
    for ((direction, e2e), ps) in &by_e2e {
        if *direction == "INBOUND"
            && ps.iter().any(|p| p["status"] == "CONFIRMED")
            && !hosts_e2e.contains(&(direction, e2e))
        {
            v.violations.push(format!("Pix received at BTG ({e2e}) has no cash-in: lost"));
        }
    }

    // Midaz: nothing pending, money conserved, and each account moved by exactly what the host
    // says it completed.
    let state = cluster.midaz_state().await?;
    let ledger = ledger(&state, &cluster.sandbox.data.ledger_id).context("the tenant's ledger")?;
    if ledger["pendingTransactions"].as_i64() != Some(0) {
        v.violations.push(format!("{} Midaz holds still pending", ledger["pendingTransactions"]));
    }
    if ledger["totalCentavos"].as_i64() != Some(0) {
        v.violations.push(format!("ledger total is {} centavos, not 0", ledger["totalCentavos"]));
    }
    let finals = cluster.balances().await?;
    let mut expected: HashMap<&str, i64> = HashMap::new();
    for t in transfers.iter().filter(|t| t.status == "COMPLETED") {
        let delta = if t.direction == "CASHOUT" { -(t.amount + t.fee) } else { t.amount - t.fee };
        *expected.entry(t.account_id.as_str()).or_default() += delta;
    }
    for (account, delta) in expected {
        let moved = finals.get(account).copied().unwrap_or(0) - initial.get(account).copied().unwrap_or(0);
        if moved != delta {
            v.violations.push(format!("account {account} moved {moved} centavos, the host's transfers say {delta}"));
        }
    }

    // Webhooks: every event recorded for the tenant reached the receiver, and every final
    // transfer's last state was sent.
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT id, entity_id FROM webhook_events WHERE tenant_id = $1 AND routing = 'routed'")
            .bind(&tenant.id)
            .fetch_all(pool)
            .await?;
    let received = receiver.received();
    v.webhook_events = events.len();
    v.webhook_duplicates = received.values().filter(|(n, _)| *n > 1).count();
    let missing: Vec<&String> = events.iter().map(|(id, _)| id).filter(|id| !received.contains_key(*id)).collect();
    if !missing.is_empty() {
        v.violations.push(format!("{} webhook events never received, e.g. {}", missing.len(), missing[0]));
    }
    let sent_states: HashSet<(String, String)> = received
        .values()
        .filter_map(|(_, body)| {
            Some((body["payload"]["id"].as_str()?.to_owned(), body["payload"]["status"].as_str()?.to_owned()))
        })
        .collect();
    for t in &transfers {
        if !sent_states.contains(&(t.id.clone(), t.status.clone())) {
            v.violations.push(format!("no webhook told {} ({}) is {}", t.id, t.direction, t.status));
        }
    }

    // Jobs: none dead or left, and how many needed more than one attempt (a crash, a retry).
    let (done, retried, left): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE status = 'done'), COUNT(*) FILTER (WHERE status = 'done' AND attempts > 1),
                COUNT(*) FILTER (WHERE status <> 'done') FROM jobs",
    )
    .fetch_one(pool)
    .await?;
    (v.jobs_done, v.jobs_retried) = (done, retried);
    if left > 0 {
        let states: Vec<(String, String, i32, Option<String>)> =
            sqlx::query_as("SELECT kind, status, attempts, last_error FROM jobs WHERE status <> 'done' LIMIT 5")
                .fetch_all(pool)
                .await?;
        v.violations.push(format!("{left} jobs not done, e.g. {states:?}"));
    }
    (v.decisions, v.failsafe_decisions) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome LIKE 'failsafe%') FROM policy_decisions WHERE tenant_id = $1",
    )
    .bind(&tenant.id)
    .fetch_one(pool)
    .await?;
    if v.failsafe_decisions > 0 {
        v.violations.push(format!("{} policy decisions fell back to the fail-safe", v.failsafe_decisions));
    }
    Ok(v)
}

/// The sha256 of a shipped component (`policies/manifest.json`), e.g. `example-institution`.
pub fn shipped_sha256(name: &str) -> anyhow::Result<String> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(crate::shipped_policies().join("manifest.json"))?)?;
    manifest["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["sha256"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("{name} is not in the manifest"))
}

/// Makes `sha256` the tenant's fee policy through the admin API of the instance at `url`.
pub async fn activate_fee(url: &str, admin: &str, sha256: &str, tenant: &str) -> anyhow::Result<()> {
    ok_json(
        reqwest::Client::new()
            .post(format!("{url}/v1/admin/policies/{sha256}/activate"))
            .bearer_auth(admin)
            .json(&json!({"kind": "fee", "tenantId": tenant}))
            .send()
            .await?,
    )
    .await
    .map(drop)
}

/// Jobs so far, and how many of them were claimed more than once.
pub async fn job_claims(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE attempts > 1) FROM jobs").fetch_one(pool).await?)
}

/// `--name N` from the command line of an example.
pub fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}
