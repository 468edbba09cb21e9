//! Faithful in-process simulators of Midaz (ledger), Lerian CRM and BTG Pactual (DICT + SPI),
//! each an axum server on loopback, plus a control API for fault injection, a simulated clock,
//! incoming Pix from other banks and ledger inspection. Deterministic under a seed: every id and
//! random EndToEndId suffix comes from one seeded RNG.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sandbox = pix_sandbox::Sandbox::start(pix_sandbox::SandboxConfig::default()).await?;
//! let demo = pix_sandbox::seed_demo(&sandbox)?;
//! println!("{} {}", sandbox.midaz_url, demo.ledger_id);
//! # Ok(()) }
//! ```

mod btg;
mod control;
mod crm;
pub mod ledger;
mod midaz;
mod qr;
mod seed;
mod sim;
mod webhooks;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use btg::{DonorBehaviour, REJECT_CENTS, STUCK_CENTS};
pub use qr::{QrCharge, QrChargeKind, QrChargeRequest, QrServing};
pub use seed::{DemoAccount, DemoData, DemoKey, DemoParticipant, ParticipantData, seed_demo, seed_participant};
pub use sim::{FaultKind, FaultRule, FaultTarget};
pub use webhooks::{Delivery, HEADER_CORRELATION, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign};

/// Client credentials the simulators accept.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).field("client_secret", &"***").finish()
    }
}

/// Sandbox settings. Every port defaults to 0 (any free port on 127.0.0.1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Seed of the RNG behind every generated id.
    pub seed: u64,
    /// The host institution's ISPB (the indirect participant BTG serves).
    pub ispb: String,
    /// Listen address for the four servers.
    pub host: String,
    /// Midaz port (also serves the Lerian token endpoint).
    pub midaz_port: u16,
    /// CRM port.
    pub crm_port: u16,
    /// BTG port.
    pub btg_port: u16,
    /// Control API port.
    pub control_port: u16,
    /// Port of the receiving PSP that serves dynamic QR code locations (`qr.rs`).
    pub qr_port: u16,
    /// When set, Midaz and CRM require a Lerian bearer token issued for these credentials.
    pub lerian_auth: Option<Credentials>,
    /// Credentials BTG's token endpoint accepts.
    pub btg_credentials: Credentials,
    /// Where BTG webhooks go (can be changed at run time through the control API).
    pub webhook_url: Option<String>,
    /// HMAC secret for webhook signatures.
    pub webhook_secret: String,
    /// First webhook retry delay.
    pub webhook_retry_base_ms: u64,
    /// Webhook retry delay cap.
    pub webhook_retry_max_ms: u64,
    /// Attempts before a webhook is abandoned.
    pub webhook_max_attempts: u32,
    /// Simulated time between a payment/reversal being accepted and its settlement webhook.
    pub btg_settlement_delay_ms: u64,
    /// Window after a Midaz create during which a replay of its key still gets 409 `0084`
    /// (Midaz stores idempotent results asynchronously).
    pub midaz_idempotency_store_delay_ms: u64,
    /// How often time-driven transitions are evaluated.
    pub tick_interval_ms: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            ispb: "12345678".into(),
            host: "127.0.0.1".into(),
            midaz_port: 0,
            crm_port: 0,
            btg_port: 0,
            control_port: 0,
            qr_port: 0,
            lerian_auth: None,
            btg_credentials: Credentials { client_id: "pix-host".into(), client_secret: "sandbox-btg-secret".into() },
            webhook_url: None,
            webhook_secret: "sandbox-webhook-secret".into(),
            webhook_retry_base_ms: 100,
            webhook_retry_max_ms: 5_000,
            webhook_max_attempts: 12,
            btg_settlement_delay_ms: 200,
            midaz_idempotency_store_delay_ms: 0,
            tick_interval_ms: 50,
        }
    }
}

/// State shared by the simulators.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub sim: Arc<sim::Sim>,
    pub midaz: Mutex<midaz::MidazState>,
    pub crm: Mutex<crm::CrmState>,
    pub btg: Mutex<btg::BtgState>,
    pub webhooks: webhooks::Webhooks,
    pub qr: qr::QrPsp,
}

/// Entry point.
pub struct Sandbox;

/// A running sandbox. Dropping it stops the servers.
pub struct SandboxHandle {
    /// Midaz base URL (onboarding and transactions; Lerian token endpoint too).
    pub midaz_url: String,
    /// CRM base URL.
    pub crm_url: String,
    /// BTG base URL (token endpoint at `/oauth2/token`).
    pub btg_url: String,
    /// Control API base URL.
    pub control_url: String,
    /// Base URL of the receiving PSP serving dynamic QR code locations and its JWKS.
    pub qr_url: String,
    pub(crate) shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

async fn serve(host: &str, port: u16, router: axum::Router) -> anyhow::Result<(String, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    let addr: SocketAddr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok((format!("http://{addr}"), task))
}

fn with_faults(router: axum::Router, shared: &Arc<Shared>, target: FaultTarget) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        sim::FaultLayer { sim: shared.sim.clone(), target },
        sim::fault_middleware,
    ))
}

impl Sandbox {
    /// Starts the three simulators and the control API (must run inside a tokio runtime).
    pub async fn start(config: SandboxConfig) -> anyhow::Result<SandboxHandle> {
        let sim = Arc::new(sim::Sim::new(config.seed));
        let webhooks = webhooks::Webhooks::start(
            sim.clone(),
            webhooks::WebhookTarget { url: config.webhook_url.clone(), secret: config.webhook_secret.clone() },
            webhooks::RetrySchedule {
                base: Duration::from_millis(config.webhook_retry_base_ms),
                max: Duration::from_millis(config.webhook_retry_max_ms),
                max_attempts: config.webhook_max_attempts.max(1),
            },
        );
        let shared = Arc::new(Shared {
            config: config.clone(),
            sim,
            midaz: Mutex::default(),
            crm: Mutex::default(),
            btg: Mutex::default(),
            webhooks,
            qr: qr::QrPsp::new()?,
        });
        let host = config.host.as_str();
        let (midaz_url, t1) =
            serve(host, config.midaz_port, with_faults(midaz::router(shared.clone()), &shared, FaultTarget::Midaz))
                .await?;
        let (crm_url, t2) =
            serve(host, config.crm_port, with_faults(crm::router(shared.clone()), &shared, FaultTarget::Crm)).await?;
        let (btg_url, t3) =
            serve(host, config.btg_port, with_faults(btg::router(shared.clone()), &shared, FaultTarget::Btg)).await?;
        let (control_url, t4) =
            serve(host, config.control_port, control::router(shared.clone()).merge(qr::control_router(shared.clone())))
                .await?;
        let (qr_url, t5) = serve(host, config.qr_port, qr::router(shared.clone())).await?;
        shared.qr.set_authority(&qr_url);
        let ticker = {
            let shared = shared.clone();
            let every = Duration::from_millis(config.tick_interval_ms.max(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    shared.btg_tick();
                }
            })
        };
        tracing::info!(%midaz_url, %crm_url, %btg_url, %control_url, %qr_url, "sandbox started");
        Ok(SandboxHandle {
            midaz_url,
            crm_url,
            btg_url,
            control_url,
            qr_url,
            shared,
            tasks: vec![t1, t2, t3, t4, t5, ticker],
        })
    }
}

impl SandboxHandle {
    /// The configuration the sandbox runs with (credentials included; do not log it whole).
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Moves the simulated clock forward and applies what became due.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.sim.clock.advance(chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX));
        self.shared.btg_tick();
    }

    /// Simulated now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.sim.clock.now()
    }

    /// Adds a fault rule; returns it with its id.
    pub fn add_fault(&self, rule: FaultRule) -> FaultRule {
        self.shared.sim.add_fault(rule)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.sim.clear_faults(None);
    }

    /// Points BTG webhooks at `url`.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.webhooks.target.lock().unwrap_or_else(|e| e.into_inner()).url = url;
    }

    /// A new, empty Midaz organization and ledger (with the BRL asset) for another tenant;
    /// returns (organization id, ledger id).
    pub fn new_ledger(&self, institution: &str) -> anyhow::Result<(String, String)> {
        let s = &self.shared;
        let org = s.create_organization(institution, "11444777000161");
        let ledger = s.create_ledger(org, "pix").map_err(|e| anyhow::anyhow!("ledger refused: {}", e.1))?;
        s.create_asset(org, ledger, "BRL", "Brazilian Real").map_err(|e| anyhow::anyhow!("asset refused: {}", e.1))?;
        Ok((org.to_string(), ledger.to_string()))
    }

    /// Points the webhooks about participant `ispb` (one added by [`seed_participant`]) at `url`,
    /// signed with `secret`.
    pub fn set_participant_webhook(&self, ispb: &str, url: Option<String>, secret: &str) {
        let target = webhooks::WebhookTarget { url, secret: secret.to_owned() };
        self.shared.webhooks.participants.lock().unwrap_or_else(|e| e.into_inner()).insert(ispb.to_owned(), target);
    }

    /// BTG webhooks emitted and still on their way (queued, held for a reorder, between
    /// retries): a harness that checks what arrived waits for none to be left.
    pub fn webhooks_outstanding(&self) -> usize {
        self.shared.webhooks.outstanding.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Webhook delivery log.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.webhooks.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A Pix from another bank to one of our keys (`{"key","amount",…}`); returns the event data.
    pub fn inbound_pix(&self, request: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.shared.btg_inbound_payment(request).map_err(|e| anyhow::anyhow!("inbound pix refused: {}", e.1))
    }

    /// The receiving participant returns (part of) one of our confirmed cash-outs
    /// (`{"originalEndToEndId", "amount"?, "reason"?}`); returns the `PIX_REVERSAL_INBOUND` data.
    pub fn inbound_reversal(&self, request: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.shared.btg_inbound_reversal(request).map_err(|e| anyhow::anyhow!("inbound reversal refused: {}", e.1))
    }

    /// BTG's record of reversal `return_id` now names `request_id` (a divergence to detect).
    pub fn tamper_reversal(&self, return_id: &str, request_id: &str) -> anyhow::Result<serde_json::Value> {
        self.shared.btg_tamper_reversal(return_id, request_id).map_err(|e| anyhow::anyhow!("{}", e.1))
    }

    /// Ledger snapshot (same JSON as `GET /_control/midaz/state`).
    pub fn midaz_state(&self) -> serde_json::Value {
        self.shared.midaz_state()
    }

    /// A copy of every ledger, journal included, keyed by (organization, ledger): what an
    /// auditor recomputes balances from.
    pub fn ledgers(&self) -> std::collections::BTreeMap<(uuid::Uuid, uuid::Uuid), ledger::Ledger> {
        self.shared.midaz_ledgers()
    }

    /// Makes BTG report another amount for a payment (a record diverging from the host's).
    pub fn set_payment_amount(&self, end_to_end_id: &str, amount: pix_core::money::Money) -> anyhow::Result<()> {
        self.shared.btg_set_payment_amount(end_to_end_id, amount).map(drop).map_err(|e| anyhow::anyhow!("{}", e.1))
    }

    /// Lets the Midaz balance of `alias` receive, or not (`allowReceiving`).
    pub fn set_allow_receiving(&self, alias: &str, allow: bool) -> bool {
        self.shared.midaz_set_allow_receiving(alias, allow)
    }

    /// Sets what the simulated donor participant does with our claims.
    pub fn set_donor_behaviour(&self, behaviour: DonorBehaviour) {
        self.shared.btg_set_donor_behaviour(behaviour);
    }

    /// Closes a customer account in CRM: its alias gets today's (simulated)
    /// `bankingDetails.closingDate`. Returns the alias, or `None` for an account without one.
    pub fn close_account(&self, account_id: &str) -> Option<serde_json::Value> {
        self.shared.crm_close_account(account_id)
    }

    /// Creates a dynamic QR charge at the simulated receiving PSP; returns its BR Code and location.
    pub fn create_qr_charge(&self, request: QrChargeRequest) -> anyhow::Result<QrCharge> {
        self.shared.qr_create_charge(request).map_err(|e| anyhow::anyhow!("QR charge refused: {}", e.1))
    }

    /// Makes a QR charge expired (an immediate one past `expiracao`, a due-date one past its validity).
    pub fn expire_qr_charge(&self, id: &str) -> anyhow::Result<()> {
        self.shared.qr_expire_charge(id).map_err(|e| anyhow::anyhow!("{}", e.1))
    }

    /// Sets a QR charge's status (e.g. removed by the receiver); it is still served.
    pub fn set_qr_charge_status(&self, id: &str, status: pix_core::brcode::ChargeStatus) -> anyhow::Result<()> {
        self.shared.qr_set_status(id, status).map_err(|e| anyhow::anyhow!("{}", e.1))
    }

    /// Changes how a QR charge's location answers (an HTTP error, a bad signature, plain JSON).
    pub fn set_qr_charge_serving(&self, id: &str, serving: QrServing) -> anyhow::Result<()> {
        self.shared.qr_set_serving(id, serving).map_err(|e| anyhow::anyhow!("{}", e.1))
    }

    /// Stops every server and background task.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Standalone runner: starts the sandbox, seeds the demo tenant, prints the URLs and demo data
/// as JSON, and serves until Ctrl-C.
pub async fn run(config: SandboxConfig) -> anyhow::Result<()> {
    let handle = Sandbox::start(config).await?;
    let demo = seed_demo(&handle)?;
    println!("{}", serde_json::to_string_pretty(&demo)?);
    tokio::signal::ctrl_c().await?;
    handle.shutdown();
    Ok(())
}
