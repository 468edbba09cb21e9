//! Lerian M2M token (lib-auth `GetApplicationToken`), shared by the Midaz and CRM clients.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

use crate::config::{LerianAuthConfig, Secret};
use crate::error::{IntegrationError, Result};
use crate::transport::{TokenSource, Transport, parse_base, status_error, url};

/// Lifetime assumed when the auth service does not say (lib-auth tokens are short-lived).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

pub(crate) struct LerianTokenSource {
    endpoint: Url,
    client_id: String,
    client_secret: Secret,
}

impl LerianTokenSource {
    pub fn new(cfg: &LerianAuthConfig) -> Result<Self> {
        let base = parse_base(&cfg.url)?;
        Ok(LerianTokenSource {
            endpoint: url(&base, &["v1", "login", "oauth", "access_token"])?,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[async_trait::async_trait]
impl TokenSource for LerianTokenSource {
    async fn fetch(&self, transport: &Transport) -> Result<(String, Duration)> {
        // camelCase JSON, not RFC 6749 form encoding (integrations.md §3.2).
        let body = json!({
            "grantType": "client_credentials",
            "clientId": self.client_id,
            "clientSecret": self.client_secret.expose(),
        });
        let response = transport.send(transport.client.post(self.endpoint.clone()).json(&body)).await?;
        if !response.status.is_success() {
            return Err(match status_error(transport.upstream, &response) {
                e @ IntegrationError::Unavailable { .. } => e,
                _ => IntegrationError::Unauthorized { upstream: transport.upstream, status: response.status.as_u16() },
            });
        }
        let token: TokenResponse = response.json(transport.upstream)?;
        let lifetime = token.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME);
        Ok((token.access_token, lifetime))
    }
}
