//! The BTG webhook mTLS listener: certificates are generated here, at test time.

use std::sync::Arc;
use std::time::Duration;

use pix_core::clock::{Clock, SystemClock};
use pix_server::app::{AppState, mtls_ingress_router};
use pix_server::config::{Config, MtlsListenerConfig};
use pix_server::embedded::start_sandbox;
use pix_server::integrations::Integrations;
use pix_server::mtls;
use pix_store::tenants::NewTenant;
use pix_store::testing::TestStore;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_util::sync::CancellationToken;

struct Pki {
    ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn ca(name: &str) -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    Pki { ca_pem: issuer.pem(), issuer }
}

/// (certificate PEM, key PEM) for `names`, signed by `pki`.
fn leaf(pki: &Pki, names: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(server_ca: &str, identity: Option<(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5));
    if let Some((cert, key)) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_with_a_certificate_from_the_configured_ca_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let server_pki = ca("server CA");
    let btg_pki = ca("BTG client CA");
    let rogue_pki = ca("rogue CA");
    let (server_cert, server_key) = leaf(&server_pki, &["localhost", "127.0.0.1"]);
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let listener = MtlsListenerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert_file: write("server.pem", &server_cert),
        key_file: write("server.key", &server_key),
        client_ca_file: write("btg-ca.pem", &btg_pki.ca_pem),
        handshake_timeout_ms: 500,
    };

    let db = TestStore::sqlite().await;
    let tenant = db
        .create_tenant(
            NewTenant {
                name: "t".into(),
                ispb: "12345678".into(),
                midaz_organization_id: None,
                midaz_ledger_id: None,
                settings: serde_json::json!({}),
                btg: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    let sandbox = start_sandbox(1, None, "unused-secret-0123456789").await.unwrap();
    let mut config = Config::default();
    config.btg_webhook.hmac_secret = None; // mTLS alone vouches for the sender here.
    config.btg_webhook.mtls = Some(listener.clone());
    let state = AppState::new(
        db.store.clone(),
        config,
        Arc::new(SystemClock),
        Arc::new(Integrations::sandbox(sandbox.integrations.clone())),
        pix_server::policies::PolicyRuntime::with_default_limits(
            db.store.clone(),
            Arc::new(SystemClock),
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        )
        .await
        .unwrap(),
    );
    let shutdown = CancellationToken::new();
    let (addr, _task) =
        mtls::serve(&listener, mtls_ingress_router(state), shutdown.clone(), Duration::from_secs(1)).await.unwrap();
    let url = format!("https://localhost:{}/v1/inbound/btg/{}", addr.port(), tenant.id);
    let body = serde_json::json!({"webhookId": "m-1", "event": "PIX_PAYMENT", "data": {}});

    let trusted = client(&server_pki.ca_pem, Some(leaf(&btg_pki, &["btg-client"])));
    let accepted = trusted.post(&url).json(&body).send().await.unwrap();
    assert_eq!(accepted.status(), 202, "{:?}", accepted.text().await);

    let rogue = client(&server_pki.ca_pem, Some(leaf(&rogue_pki, &["btg-client"])));
    assert!(rogue.post(&url).json(&body).send().await.is_err(), "a certificate from another CA fails the handshake");
    let anonymous = client(&server_pki.ca_pem, None);
    assert!(anonymous.post(&url).json(&body).send().await.is_err(), "no client certificate, no handshake");

    assert_eq!(db.list_inbound_events(None, 10).await.unwrap().len(), 1, "only the trusted delivery was stored");

    // Pinned: a certificate from the right CA is not enough, it must name the tenant's sender.
    db.set_inbound_client_subject(tenant.id, Some("btg-client"), SystemClock.now()).await.unwrap();
    let other_sender = client(&server_pki.ca_pem, Some(leaf(&btg_pki, &["another-client"])));
    let body = serde_json::json!({"webhookId": "m-2", "event": "PIX_PAYMENT", "data": {}});
    let refused = other_sender.post(&url).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 401, "a certificate naming someone else");
    let pinned = client(&server_pki.ca_pem, Some(leaf(&btg_pki, &["btg-client"])));
    assert_eq!(pinned.post(&url).json(&body).send().await.unwrap().status(), 202, "the pinned name (a DNS SAN)");
    assert_eq!(db.list_inbound_events(None, 10).await.unwrap().len(), 2);

    // A client that connects and never finishes the handshake is cut off after the timeout.
    use tokio::io::AsyncReadExt;
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the server closes the idle connection: {closed:?}");
    assert!(started.elapsed() >= Duration::from_millis(400), "not before the handshake timeout");
    shutdown.cancel();
}
