//! The dedicated mTLS listener for BTG webhooks: TLS with a client-certificate verifier rooted
//! in the configured CA, so only a client holding a certificate that CA signed gets a handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_util::sync::CancellationToken;

use crate::config::MtlsListenerConfig;

pub fn server_config(config: &MtlsListenerConfig) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&config.client_ca_file)
        .with_context(|| format!("reading btg_webhook.mtls.client_ca_file {}", config.client_ca_file.display()))?
    {
        roots.add(cert.context("parsing client CA certificate")?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("building the client certificate verifier")?;
    let certs = CertificateDer::pem_file_iter(&config.cert_file)
        .with_context(|| format!("reading btg_webhook.mtls.cert_file {}", config.cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .context("parsing server certificate")?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .with_context(|| format!("reading btg_webhook.mtls.key_file {}", config.key_file.display()))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("server certificate and key do not match")
}

/// Binds the listener and serves `app` until `shutdown`; returns the bound address at once.
pub async fn serve(
    config: &MtlsListenerConfig,
    app: axum::Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server_config(config)?));
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(config.listen, tls).handle(handle.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::error!(error = %e, "mTLS listener stopped");
        }
    });
    let addr = handle.listening().await.context("binding btg_webhook.mtls.listen")?;
    let closer = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        closer.graceful_shutdown(Some(grace));
    });
    Ok((addr, task))
}
