//! Helpers shared by the sandbox integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use pix_integrations::btg::{BtgEvent, parse_webhook, verify_webhook};
use pix_integrations::config::{BreakerConfig, HttpConfig, LerianAuthConfig, RetryConfig};
use pix_integrations::{BtgClient, BtgConfig, CrmClient, CrmConfig, MidazClient, MidazConfig, Secret};
use pix_sandbox::{Credentials, DemoData, Sandbox, SandboxConfig, SandboxHandle, seed_demo};

pub const LERIAN_ID: &str = "lerian-app";
pub const LERIAN_SECRET: &str = "lerian-secret";

pub async fn start(tweak: impl FnOnce(&mut SandboxConfig)) -> (SandboxHandle, DemoData) {
    let mut cfg = SandboxConfig {
        lerian_auth: Some(Credentials { client_id: LERIAN_ID.into(), client_secret: LERIAN_SECRET.into() }),
        btg_settlement_delay_ms: 50,
        webhook_retry_base_ms: 20,
        webhook_retry_max_ms: 200,
        ..SandboxConfig::default()
    };
    tweak(&mut cfg);
    let handle = Sandbox::start(cfg).await.expect("sandbox starts");
    let demo = seed_demo(&handle).expect("seed");
    (handle, demo)
}

pub fn http(timeout_ms: u64) -> HttpConfig {
    HttpConfig {
        timeout_ms,
        connect_timeout_ms: 1_000,
        retry: RetryConfig { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 50, jitter: 0.2 },
        breaker: BreakerConfig { failure_threshold: 100, cooldown_ms: 1_000, half_open_successes: 1 },
    }
}

pub fn lerian(h: &SandboxHandle) -> Option<LerianAuthConfig> {
    Some(LerianAuthConfig {
        url: h.midaz_url.clone(),
        client_id: LERIAN_ID.into(),
        client_secret: Secret::new(LERIAN_SECRET),
    })
}

pub fn midaz(h: &SandboxHandle, d: &DemoData, http: HttpConfig) -> MidazClient {
    MidazClient::new(&MidazConfig {
        onboarding_url: h.midaz_url.clone(),
        transaction_url: None,
        organization_id: d.organization_id.clone(),
        ledger_id: d.ledger_id.clone(),
        asset_code: "BRL".into(),
        auth: lerian(h),
        http,
    })
    .unwrap()
}

pub fn crm(h: &SandboxHandle, d: &DemoData, http: HttpConfig) -> CrmClient {
    CrmClient::new(&CrmConfig {
        base_url: h.crm_url.clone(),
        organization_id: d.organization_id.clone(),
        ledger_id: d.ledger_id.clone(),
        cache_ttl_ms: 60_000,
        auth: lerian(h),
        http,
    })
    .unwrap()
}

pub fn btg(h: &SandboxHandle, http: HttpConfig) -> BtgClient {
    let c = &h.config().btg_credentials;
    BtgClient::new(&BtgConfig {
        base_url: h.btg_url.clone(),
        auth_url: None,
        client_id: c.client_id.clone(),
        client_secret: Secret::new(c.client_secret.clone()),
        scope: Some("pix".into()),
        ispb: h.config().ispb.clone(),
        mtls: None,
        http,
    })
    .unwrap()
}

/// A webhook receiver that verifies signatures and fails the first `fail_first` requests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<(String, BtgEvent)>>>,
    pub attempts: Arc<Mutex<u32>>,
    pub bad_signatures: Arc<Mutex<u32>>,
}

#[derive(Clone)]
struct RxState {
    secret: String,
    fail_first: u32,
    rx: Receiver,
}

async fn receive(State(s): State<RxState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let attempt = {
        let mut a = s.rx.attempts.lock().unwrap();
        *a += 1;
        *a
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let verified = verify_webhook(
        s.secret.as_bytes(),
        h("x-signature-timestamp"),
        h("x-signature"),
        &body,
        chrono::Utc::now(),
        300,
    );
    if verified.is_err() {
        *s.rx.bad_signatures.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if attempt <= s.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let (envelope, event) = parse_webhook(&body).expect("webhook parses");
    assert_eq!(h("x-correlation-id"), Some(envelope.webhook_id.as_str()));
    s.rx.received.lock().unwrap().push((envelope.webhook_id, event));
    StatusCode::OK
}

pub async fn receiver(secret: &str, fail_first: u32) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/btg", listener.local_addr().unwrap());
    let rx = Receiver { url, received: Arc::default(), attempts: Arc::default(), bad_signatures: Arc::default() };
    let app = axum::Router::new().route("/webhooks/btg", axum::routing::post(receive)).with_state(RxState {
        secret: secret.into(),
        fail_first,
        rx: rx.clone(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    rx
}

impl Receiver {
    pub fn events(&self) -> Vec<(String, BtgEvent)> {
        self.received.lock().unwrap().clone()
    }
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {secs}s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
