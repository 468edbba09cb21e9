//! Outbound mTLS material, read from PEM files with rustls-pki-types (`rustls-pemfile` is
//! unmaintained). Parsing here first gives a clear configuration error naming the bad file,
//! instead of reqwest's generic "invalid identity".

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::MtlsConfig;
use crate::error::{IntegrationError, Result};

fn read(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| IntegrationError::Config(format!("cannot read {path}: {e}")))
}

/// Client identity plus, when a CA file is configured, the only roots to trust.
pub(crate) fn load_mtls(cfg: &MtlsConfig) -> Result<(reqwest::Identity, Option<Vec<reqwest::Certificate>>)> {
    let cert_pem = read(&cfg.cert_file)?;
    let key_pem = read(&cfg.key_file)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| IntegrationError::Config(format!("{}: bad certificate PEM: {e}", cfg.cert_file)))?;
    if certs.is_empty() {
        return Err(IntegrationError::Config(format!("{}: no certificate found", cfg.cert_file)));
    }
    PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| IntegrationError::Config(format!("{}: bad private key PEM: {e}", cfg.key_file)))?;

    let mut bundle = cert_pem;
    bundle.push(b'\n');
    bundle.extend_from_slice(&key_pem);
    let identity =
        reqwest::Identity::from_pem(&bundle).map_err(|e| IntegrationError::Config(format!("client identity: {e}")))?;

    let roots = match &cfg.ca_file {
        None => None,
        Some(ca_file) => {
            let pem = read(ca_file)?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| IntegrationError::Config(format!("{ca_file}: bad CA PEM: {e}")))?;
            if roots.is_empty() {
                return Err(IntegrationError::Config(format!("{ca_file}: no CA certificate")));
            }
            Some(roots)
        }
    };
    Ok((identity, roots))
}
