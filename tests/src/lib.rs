//! Test harness: a real pix-host router on a loopback port, over a fresh SQLite or PostgreSQL
//! database, with a manual clock. Tests talk to it with an ordinary HTTP client.

pub mod bank;
pub mod bench;
pub mod cluster;
pub mod simulation;

use std::sync::Arc;

use chrono::Utc;
use pix_core::clock::Clock;
use pix_core::clock::ManualClock;
use pix_server::app::{AppState, router};
use pix_server::config::Config;
use pix_store::testing::TestStore;
use reqwest::{Method, RequestBuilder};
use tokio_util::sync::CancellationToken;

use pix_server::embedded::{EmbeddedSandbox, start_sandbox};
use pix_server::integrations::Integrations;
pub use pix_store::testing::PG_ENV;

use pix_server::policies::PolicyRuntime;

/// The repository's `policies/` directory (components shipped with the host).
pub fn shipped_policies() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// The SHA-256 of the shipped component of policy `kind` (`policies/manifest.json`).
pub fn shipped_sha256(kind: &str) -> String {
    let manifest = std::fs::read_to_string(shipped_policies().join("manifest.json")).expect("the shipped manifest");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("the manifest is JSON");
    let entries = manifest["policies"].as_array().expect("the manifest lists policies");
    let entry = entries.iter().find(|p| p["kind"] == kind).expect("a shipped component of the kind");
    entry["sha256"].as_str().expect("the entry has a hash").to_owned()
}

/// The HMAC secret the simulated BTG signs webhooks with, and the host verifies.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789";

pub struct TestApp {
    pub url: String,
    /// The BTG/Midaz/CRM simulators this host talks to, seeded with the demo institution.
    pub sandbox: EmbeddedSandbox,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub db: TestStore,
    pub admin_token: String,
    /// The host's state, for running its workers in tests.
    pub state: AppState,
    /// Whether a tenant already took the seeded institution's ledger (one tenant per ledger).
    seeded_ledger_taken: std::sync::atomic::AtomicBool,
    /// Files holding the secrets tenants reference (`file:` references), removed on drop.
    secrets: tempfile::TempDir,
    shutdown: CancellationToken,
}

/// Another institution on the same host, with everything of its own: BTG client and ISPB,
/// Midaz organization and ledger (with one funded customer), and the HMAC secret of its webhooks.
pub struct TestInstitution {
    pub tenant: TestTenant,
    pub data: pix_sandbox::ParticipantData,
    pub webhook_secret: String,
}

/// A tenant with its bearer token.
pub struct TestTenant {
    pub id: uuid::Uuid,
    pub token: String,
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        Self::start(TestStore::sqlite().await, Config::default()).await
    }

    /// `None` when PostgreSQL tests are not enabled (see `PIX_TEST_DATABASE_URL`).
    pub async fn postgres() -> Option<TestApp> {
        Some(Self::start(TestStore::postgres().await?, Config::default()).await)
    }

    /// The host with its receivers and simulators on loopback allowed by the outbound policy
    /// (`[outbound] allow_networks = ["127.0.0.1/32"]`), as most tests need.
    pub async fn start(db: TestStore, mut config: Config) -> TestApp {
        config.outbound.allow_networks.push("127.0.0.1/32".parse().expect("a CIDR"));
        Self::start_with(db, config).await
    }

    /// The host with `config` as given: no outbound allowlist unless it sets one (SSRF tests).
    pub async fn start_with(db: TestStore, config: Config) -> TestApp {
        Self::start_with_upstreams(db, config, |_| {}).await
    }

    /// The host with `config`, its clients of the simulators adjusted by `upstreams` (timeouts,
    /// retries, circuit breakers).
    pub async fn start_with_upstreams(
        db: TestStore,
        mut config: Config,
        upstreams: impl FnOnce(&mut pix_server::config::IntegrationsConfig),
    ) -> TestApp {
        // Starts at the real time: the simulators sign webhooks with the wall clock.
        let clock = Arc::new(ManualClock::new(Utc::now()));
        config.btg_webhook.hmac_secret = Some(WEBHOOK_SECRET.into());
        let mut sandbox = start_sandbox(42, None, WEBHOOK_SECRET).await.expect("simulators start");
        upstreams(&mut sandbox.integrations);
        let policies = PolicyRuntime::with_default_limits(db.store.clone(), clock.clone(), &shipped_policies())
            .await
            .expect("shipped policies load");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Collections' BR Codes point at this host's own location routes.
        config.collections.location_base = listener.local_addr().unwrap().to_string();
        let state = AppState::new(
            db.store.clone(),
            config,
            clock.clone(),
            Arc::new(Integrations::sandbox(sandbox.integrations.clone())),
            policies,
        );
        let admin_token = db.issue_token(None, "test admin", clock.now()).await.unwrap().token;
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(pix_server::cli::serve_http(listener, router(state.clone()), shutdown.clone()));
        TestApp {
            url,
            sandbox,
            http: reqwest::Client::new(),
            clock,
            db,
            admin_token,
            state,
            seeded_ledger_taken: Default::default(),
            secrets: tempfile::tempdir().expect("a directory for test secrets"),
            shutdown,
        }
    }

    /// Runs the inbound-event worker with the given handlers until the app is dropped.
    pub fn run_inbound_worker(&self, handlers: Vec<(&str, Arc<dyn pix_server::inbound::InboundHandler>)>) {
        let mut dispatcher = pix_server::inbound::InboundDispatcher::new(self.db.store.clone(), self.clock.clone());
        for (event_type, handler) in handlers {
            dispatcher = dispatcher.register(event_type, handler);
        }
        let mut config = Config::default().workers;
        config.poll_interval_ms = 10;
        let worker = pix_server::worker::Worker::new(
            self.db.store.clone(),
            self.clock.clone(),
            pix_store::inbound::INBOUND_QUEUE,
            config,
        )
        .handle(pix_store::inbound::PROCESS_INBOUND, Arc::new(dispatcher));
        tokio::spawn(worker.run(self.shutdown.clone(), std::time::Duration::from_secs(1)));
    }

    /// Runs what moves money in the background, as `serve` does: the inbound worker with the
    /// transfer handlers, and the stuck-transfer sweeper (looking every 10 ms of real time; what
    /// it finds stale depends on the test's clock).
    pub fn run_transfer_workers(&self) {
        self.run_inbound_worker(pix_server::transfers::inbound_handlers(&self.state, &self.url));
        let mut app = self.state.app.clone();
        let settings =
            pix_app::TransferSettings { sweep_every: std::time::Duration::from_millis(10), ..(*app.settings).clone() };
        app.settings = Arc::new(settings);
        tokio::spawn(pix_app::transfers::sweeper::run(app, self.shutdown.clone()));
        tokio::spawn(pix_server::reports::reporter(
            &self.state,
            Some(std::time::Duration::from_millis(10)),
            self.shutdown.clone(),
        ));
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }

    /// `POST /v1/fees/quote` for a merchant receiving R$ 500.00 (where the shipped fee policy,
    /// 4.95, and the example institution's, 3.95, differ); asserts 200 and returns the quote.
    pub async fn merchant_quote(&self, token: &str) -> serde_json::Value {
        let response = self
            .request(Method::POST, "/v1/fees/quote", token)
            .json(&serde_json::json!({"operation": "CASH_IN", "amount": "500.00", "payeeType": "LEGAL",
                                      "accountSegment": "merchant"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Creates a tenant through the admin API. The first gets the seeded institution's ledger
    /// (with its accounts); each later one a new, empty ledger of its own (one tenant per ledger).
    /// They all use the simulators' BTG identity, as in demo mode.
    pub async fn tenant(&self, name: &str) -> TestTenant {
        let data = &self.sandbox.data;
        let (organization, ledger) = if self.seeded_ledger_taken.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.sandbox.handle.new_ledger(name).expect("a new simulated ledger")
        } else {
            (data.organization_id.clone(), data.ledger_id.clone())
        };
        self.create_tenant(serde_json::json!({"name": name, "ispb": data.ispb,
            "midazOrganizationId": organization, "midazLedgerId": ledger}))
            .await
    }

    /// Another institution with its own BTG client, ISPB, ledger and webhook secret (all
    /// referenced from files, as an operator would), receiving its BTG webhooks at its own URL.
    pub async fn institution(&self, name: &str, ispb: &str) -> TestInstitution {
        let client_id = format!("client-{ispb}");
        let write = |file: &str, value: &str| {
            let path = self.secrets.path().join(file);
            std::fs::write(&path, value).unwrap();
            format!("file:{}", path.display())
        };
        let client_secret = format!("btg-secret-{ispb}");
        let webhook_secret = format!("webhook-secret-{ispb}-0123456789");
        let data = pix_sandbox::seed_participant(&self.sandbox.handle, ispb, &client_id, &client_secret).unwrap();
        let tenant = self
            .create_tenant(serde_json::json!({"name": name, "ispb": ispb,
                "midazOrganizationId": data.organization_id, "midazLedgerId": data.ledger_id,
                "btgIdentity": {"clientId": client_id, "clientSecretRef": write(&format!("{ispb}.btg"), &client_secret)}}))
            .await;
        let secret_ref = write(&format!("{ispb}.webhook"), &webhook_secret);
        let response = self
            .request(Method::PUT, &format!("/v1/admin/tenants/{}/inbound-secret", tenant.id), &self.admin_token)
            .json(&serde_json::json!({"secretRef": secret_ref}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "setting the webhook secret of {name}");
        let url = format!("{}/v1/inbound/btg/{}", self.url, tenant.id);
        self.sandbox.handle.set_participant_webhook(ispb, Some(url), &webhook_secret);
        TestInstitution { tenant, data, webhook_secret }
    }

    async fn create_tenant(&self, body: serde_json::Value) -> TestTenant {
        let response =
            self.request(Method::POST, "/v1/admin/tenants", &self.admin_token).json(&body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 201, "creating tenant {body}: {text}");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        TestTenant {
            id: body["tenant"]["id"].as_str().unwrap().parse().unwrap(),
            token: body["credential"]["token"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Reads an error response and returns its `code`, checking the envelope on the way.
pub async fn error_code(response: reqwest::Response) -> String {
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    for field in ["code", "title", "message"] {
        assert!(body[field].is_string(), "error body lacks {field}: {body}");
    }
    body["code"].as_str().unwrap().to_owned()
}

/// Defines `sqlite::<name>` and `postgres::<name>` tests running one async check per backend.
#[macro_export]
macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::TestApp::postgres().await else { return };
                    super::$name(&app).await;
                }
            )*
        }
    };
}

impl TestApp {
    /// Runs the outbound webhook engine (routing worker and delivery loop) with `settings` until
    /// the app is dropped. Retries are due by the app's manual clock: advance it to run them.
    pub fn run_webhook_engine(&self, settings: pix_server::webhooks::EngineSettings) {
        let engine = pix_server::webhooks::Engine::new(
            self.db.store.clone(),
            self.clock.clone(),
            settings,
            &self.state.config.outbound,
        )
        .expect("engine");
        let mut config = Config::default().workers;
        config.poll_interval_ms = 10;
        let grace = std::time::Duration::from_secs(1);
        tokio::spawn(engine.routing_worker(config).run(self.shutdown.clone(), grace));
        tokio::spawn(engine.run(self.shutdown.clone(), grace));
    }

    /// Records an outbound event as a feature does (in a transaction of its own); returns its id.
    pub async fn record_event(
        &self,
        tenant: uuid::Uuid,
        flow_type: &str,
        entity_type: &str,
        entity_id: &str,
        payload: &serde_json::Value,
    ) -> uuid::Uuid {
        let event = pix_store::events::OutboundEvent { tenant_id: tenant, flow_type, entity_type, entity_id, payload };
        let mut tx = self.db.begin().await.unwrap();
        let id = pix_store::events::record_outbound_event(&mut tx, &event, self.clock.now()).await.unwrap();
        tx.commit().await.unwrap();
        id
    }
}
