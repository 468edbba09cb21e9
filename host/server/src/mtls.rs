//! The dedicated mTLS listener for BTG webhooks: TLS with a client-certificate verifier rooted
//! in the configured CA, so only a client holding a certificate that CA signed gets a handshake,
//! and a bounded handshake. The names in the client's certificate reach the handler as a
//! [`ClientCertificate`] extension, where each tenant's pin is checked (see `inbound.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
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

/// The names the client certificate carries: its subject CN and its DNS SANs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertificate {
    pub names: Vec<String>,
}

impl ClientCertificate {
    fn from_der(der: &[u8]) -> ClientCertificate {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
            return ClientCertificate::default();
        };
        let mut names: Vec<String> =
            cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_owned).collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                    names.push((*dns).to_owned());
                }
            }
        }
        ClientCertificate { names }
    }

    pub fn carries(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The rustls acceptor, plus the client certificate's names as a request extension.
#[derive(Clone)]
struct ClientCertificateAcceptor(RustlsAcceptor);

impl<I, S> Accept<I, S> for ClientCertificateAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = tokio_rustls::server::TlsStream<I>;
    type Service = axum::middleware::AddExtension<S, ClientCertificate>;
    type Future = futures::future::BoxFuture<'static, std::io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let acceptor = self.0.clone();
        Box::pin(async move {
            let (stream, service) = acceptor.accept(stream, service).await?;
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertificate::from_der(leaf.as_ref()))
                .unwrap_or_default();
            Ok((stream, tower::Layer::layer(&axum::Extension(certificate), service)))
        })
    }
}

/// Binds the listener and serves `app` until `shutdown`; returns the bound address at once.
pub async fn serve(
    config: &MtlsListenerConfig,
    app: axum::Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let tls = RustlsConfig::from_config(Arc::new(server_config(config)?));
    let acceptor = ClientCertificateAcceptor(
        RustlsAcceptor::new(tls).handshake_timeout(Duration::from_millis(config.handshake_timeout_ms)),
    );
    let handle = axum_server::Handle::new();
    let server = axum_server::bind(config.listen).acceptor(acceptor).handle(handle.clone());
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
