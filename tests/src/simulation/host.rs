//! One simulated deployment: a database, the BTG/Midaz/CRM simulators, a manual clock, and the
//! host process over them. The process can crash (every task it runs is dropped where it
//! stands, uncommitted transactions roll back) and boot again on the same database, as a
//! `kill -9` and restart would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request};
use chrono::Utc;
use pix_core::clock::{Clock, ManualClock};
use pix_policy::{PolicyEngine, PolicyError};
use pix_server::app::{AppState, router};
use pix_server::config::{Config, IntegrationsConfig};
use pix_server::embedded::{EmbeddedSandbox, start_sandbox};
use pix_server::integrations::Integrations;
use pix_server::policies::PolicyRuntime;
use pix_store::testing::TestStore;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

use crate::{WEBHOOK_SECRET, shipped_policies};

/// An HTTP answer of the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `X-Idempotency-Replayed: true`.
    pub replayed: bool,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request to the host's API.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    /// The tenant's token unless `admin`.
    pub admin: bool,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Call {
        Call { method, path: path.into(), admin: false, headers: Vec::new(), body: None }
    }

    pub fn admin(mut self) -> Call {
        self.admin = true;
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    pub fn json(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }

    /// The idempotency key, when the call has one.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.headers.iter().find(|(n, _)| *n == "X-Idempotency").map(|(_, v)| v.as_str())
    }
}

/// The running host: its state, its HTTP listener (BTG webhooks and the intra-PSP delivery reach
/// it there) and its background tasks.
struct Process {
    state: AppState,
    router: axum::Router,
    url: String,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

pub struct SimHost {
    pub db: TestStore,
    pub sandbox: EmbeddedSandbox,
    pub clock: Arc<ManualClock>,
    engine: PolicyEngine,
    config: Config,
    integrations: IntegrationsConfig,
    process: Option<Process>,
    pub admin_token: String,
    pub tenant: Uuid,
    pub tenant_token: String,
    /// Processes started after the first.
    pub restarts: u32,
}

/// How long one upstream attempt may take before the host calls it a timeout. Short, so that a
/// hanging simulator costs little wall time; long enough for a loaded debug build.
const UPSTREAM_TIMEOUT_MS: u64 = 600;

impl SimHost {
    /// The simulators (seeded with `seed`), the host on `db`, and one tenant on the seeded
    /// institution's ledger whose BTG webhooks reach the host.
    pub async fn start(seed: u64, engine: PolicyEngine, db: TestStore) -> anyhow::Result<SimHost> {
        let sandbox = start_sandbox(seed, None, WEBHOOK_SECRET).await?;
        // Both clocks start at the next noon in São Paulo (15:00 UTC), so that time-of-day
        // rules (the night-time fraud review) see the same hour in every run.
        let now = Utc::now();
        let mut start = now.date_naive().and_hms_opt(15, 0, 0).expect("a valid time").and_utc();
        if start <= now {
            start += chrono::Duration::days(1);
        }
        sandbox.handle.advance_clock((start - now).to_std()?);
        let clock = Arc::new(ManualClock::new(start));
        let mut integrations = sandbox.integrations.clone();
        for http in [&mut integrations.btg.http, &mut integrations.midaz.http, &mut integrations.crm.http] {
            http.timeout_ms = UPSTREAM_TIMEOUT_MS;
            http.retry.base_delay_ms = 5;
            http.retry.max_delay_ms = 50;
            http.breaker.cooldown_ms = 50;
        }
        let admin_token = db.issue_token(None, "simulation admin", clock.now()).await?.token;
        let mut host = SimHost {
            db,
            sandbox,
            clock,
            engine,
            config: config(),
            integrations,
            process: None,
            admin_token,
            tenant: Uuid::nil(),
            tenant_token: String::new(),
            restarts: 0,
        };
        host.boot().await?;
        let data = &host.sandbox.data;
        let body = serde_json::json!({"name": "Banco Simulado", "ispb": data.ispb,
            "midazOrganizationId": data.organization_id, "midazLedgerId": data.ledger_id});
        let created = host.send(&Call::new(Method::POST, "/v1/admin/tenants").admin().json(body)).await;
        anyhow::ensure!(created.status == 201, "creating the tenant: {}", created.text());
        let created = created.json();
        host.tenant = created["tenant"]["id"].as_str().unwrap_or_default().parse()?;
        host.tenant_token = created["credential"]["token"].as_str().unwrap_or_default().to_owned();
        host.point_webhooks();
        Ok(host)
    }

    /// Starts a host process on the database: policies, state, listener, workers.
    async fn boot(&mut self) -> anyhow::Result<()> {
        let store = self.db.store.clone();
        let policies = Arc::new(self.policies().await?);
        let integrations = Arc::new(Integrations::sandbox(self.integrations.clone()));
        let state = AppState::new(store, self.config.clone(), self.clock.clone(), integrations, policies);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = router(state.clone());
        let shutdown = CancellationToken::new();
        // Not in `tasks`: at a crash the listener closes its connections after the request in
        // flight (a webhook the old process accepted is stored, as it would have been).
        tokio::spawn(pix_server::cli::serve_http(listener, router.clone(), shutdown.clone()));
        let mut tasks = JoinSet::new();
        pix_server::policies::sync::spawn(&state, &shutdown, &mut tasks);
        pix_server::cli::spawn_workers(&state, &url, &shutdown, Duration::from_secs(1), &mut tasks);
        self.process = Some(Process { state, router, url, tasks, shutdown });
        Ok(())
    }

    /// The policy runtime over the database. Loading runs each component's conformance
    /// fixtures under their deadline, which a machine starved of CPU can miss: such a start is
    /// tried again, as an operator would restart a host that failed to start.
    async fn policies(&self) -> anyhow::Result<PolicyRuntime> {
        let mut attempt = 1;
        loop {
            let store = self.db.store.clone();
            match PolicyRuntime::start(self.engine.clone(), store, self.clock.clone(), &shipped_policies()).await {
                Ok(runtime) => return Ok(runtime),
                Err(e)
                    if attempt < 5
                        && e.chain().any(|c| matches!(c.downcast_ref(), Some(PolicyError::Conformance { .. }))) =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn process(&self) -> &Process {
        self.process.as_ref().expect("the host is running")
    }

    /// The host's base URL (changes at every restart).
    pub fn url(&self) -> &str {
        &self.process().url
    }

    pub fn state(&self) -> &AppState {
        &self.process().state
    }

    fn point_webhooks(&self) {
        let url = format!("{}/v1/inbound/btg/{}", self.url(), self.tenant);
        self.sandbox.handle.set_webhook_url(Some(url));
    }

    /// Kills the process: every worker, job and sweep is dropped at its current await point.
    pub async fn crash(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.shutdown.cancel();
            process.tasks.abort_all();
            while process.tasks.join_next().await.is_some() {}
        }
    }

    /// Crashes the process and boots a new one on the same database and simulators.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.crash().await;
        self.boot().await?;
        self.point_webhooks();
        self.restarts += 1;
        Ok(())
    }

    /// Sends `call` through the router in-process and waits for the answer.
    pub async fn send(&self, call: &Call) -> Answer {
        self.send_or_crash(call, None).await.expect("no crash budget")
    }

    /// Sends `call`; with `polls`, the request is dropped (as by a crash of the process) once
    /// it has been polled that many times without finishing, and `None` is returned.
    pub async fn send_or_crash(&self, call: &Call, polls: Option<u32>) -> Option<Answer> {
        let token = if call.admin { &self.admin_token } else { &self.tenant_token };
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        let body = match &call.body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(serde_json::to_vec(body).expect("JSON serializes"))
            }
            None => Body::empty(),
        };
        let request = request.body(body).expect("a valid request");
        let router = self.process().router.clone();
        let respond = async move {
            let response = router.oneshot(request).await.expect("the router is infallible");
            let status = response.status().as_u16();
            let replayed = response.headers().get("x-idempotency-replayed").is_some_and(|v| v == "true");
            let body = to_bytes(response.into_body(), usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
            Answer { status, body, replayed }
        };
        match polls {
            Some(polls) => PollBudget { inner: Box::pin(respond), left: polls }.await,
            None => Some(respond.await),
        }
    }

    /// Moves the host's and the simulators' clocks forward together.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(chrono::Duration::from_std(by).expect("a short duration"));
        self.sandbox.handle.advance_clock(by);
    }
}

/// The simulation's configuration: fast polling (the manual clock decides what is due), a
/// generous webhook timestamp tolerance (the clocks jump days), loopback allowed for the
/// webhook receiver.
fn config() -> Config {
    let mut config = Config::default();
    config.btg_webhook.hmac_secret = Some(WEBHOOK_SECRET.into());
    config.btg_webhook.timestamp_tolerance_secs = 30 * 24 * 3600;
    config.outbound.allow_networks.push("127.0.0.1/32".parse().expect("a CIDR"));
    config.workers.poll_interval_ms = 10;
    config.transfers.sweep_every_ms = 10;
    config.server.shutdown_grace_ms = 1_000;
    config
}

/// A future dropped once it has been polled `left` times without finishing.
struct PollBudget<F> {
    inner: Pin<Box<F>>,
    left: u32,
}

impl<F: Future> Future for PollBudget<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        self.inner.as_mut().poll(cx).map(Some)
    }
}
