//! What the benchmarks in `tests/examples` share: a host as `serve` runs it (router, inbound
//! worker, transfer workers) over the simulators on loopback, on PostgreSQL when
//! `PIX_TEST_DATABASE_URL` is set, a tenant on the seeded ledger, and the machine's load.

use std::sync::Arc;
use std::time::Duration;

use pix_core::clock::{Clock, SystemClock};
use pix_server::app::{AppState, router};
use pix_server::config::Config;
use pix_server::embedded::{EmbeddedSandbox, start_sandbox};
use pix_server::integrations::Integrations;
use pix_server::policies::PolicyRuntime;
use pix_store::testing::TestStore;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct BenchHost {
    pub db: TestStore,
    /// The backend in words, for the report.
    pub backend: &'static str,
    pub clock: Arc<dyn Clock>,
    pub sandbox: EmbeddedSandbox,
    pub state: AppState,
    pub url: String,
    pub shutdown: CancellationToken,
    pub background: JoinSet<()>,
    pub admin: String,
}

/// The benchmark's tenant: the seeded institution, its BTG webhooks pointed at the host.
pub struct BenchTenant {
    pub id: String,
    pub token: String,
}

impl BenchHost {
    /// Starts the simulators (with `seed`, signing with `secret`) and the host with its money
    /// workers.
    pub async fn start(seed: u64, secret: &str) -> anyhow::Result<BenchHost> {
        let (db, backend) = match TestStore::postgres().await {
            Some(db) => (db, "PostgreSQL"),
            None => (TestStore::sqlite().await, "SQLite (PIX_TEST_DATABASE_URL not set)"),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut config = Config::default();
        config.btg_webhook.hmac_secret = Some(secret.into());
        let sandbox = start_sandbox(seed, None, secret).await?;
        let policies =
            PolicyRuntime::with_default_limits(db.store.clone(), clock.clone(), &crate::shipped_policies()).await?;
        let integrations = Arc::new(Integrations::sandbox(sandbox.integrations.clone()));
        let state = AppState::new(db.store.clone(), config, clock.clone(), integrations, policies);
        let shutdown = CancellationToken::new();
        let url = serve(router(state.clone()), &shutdown).await?;
        let mut background = JoinSet::new();
        let mut inbound = pix_server::inbound::InboundDispatcher::new(db.store.clone(), clock.clone());
        for (event, handler) in pix_server::transfers::inbound_handlers(&state, &url) {
            inbound = inbound.register(event, handler);
        }
        background.spawn(
            pix_server::worker::Worker::new(
                db.store.clone(),
                clock.clone(),
                pix_store::inbound::INBOUND_QUEUE,
                state.config.workers.clone(),
            )
            .handle(pix_store::inbound::PROCESS_INBOUND, Arc::new(inbound))
            .run(shutdown.clone(), Duration::from_secs(1)),
        );
        pix_server::transfers::spawn_workers(&state, &shutdown, &mut background);
        let admin = db.issue_token(None, "bench", clock.now()).await?.token;
        Ok(BenchHost { db, backend, clock, sandbox, state, url, shutdown, background, admin })
    }

    /// Creates the tenant of the seeded institution and points BTG's webhooks at it.
    pub async fn tenant(&self, http: &reqwest::Client, name: &str) -> anyhow::Result<BenchTenant> {
        let data = &self.sandbox.data;
        let created: Value = http
            .post(format!("{}/v1/admin/tenants", self.url))
            .bearer_auth(&self.admin)
            .json(&json!({"name": name, "ispb": data.ispb, "midazOrganizationId": data.organization_id,
                          "midazLedgerId": data.ledger_id}))
            .send()
            .await?
            .json()
            .await?;
        let id = created["tenant"]["id"].as_str().unwrap_or_default().to_owned();
        let token = created["credential"]["token"].as_str().unwrap_or_default().to_owned();
        self.sandbox.handle.set_webhook_url(Some(format!("{}/v1/inbound/btg/{id}", self.url)));
        Ok(BenchTenant { id, token })
    }
}

/// Serves `router` on a loopback port until `shutdown`; returns its URL.
pub async fn serve(router: axum::Router, shutdown: &CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(pix_server::cli::serve_http(listener, router, shutdown.clone()));
    Ok(url)
}

/// The 1, 5 and 15 minute load averages, for the report.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
