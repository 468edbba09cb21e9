//! Configuration for the three clients. Every struct deserializes with serde (TOML file plus
//! environment overrides in the server); durations are integer milliseconds so that they read the
//! same in TOML and in environment variables.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A credential that is never printed: `Debug` and `Display` show `***`.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret lives, never the secret itself: `env:NAME` (an environment variable) or
/// `file:/absolute/path` (a file, e.g. a mounted Kubernetes secret; surrounding whitespace is
/// trimmed). Stored in the database instead of the value, so a leaked database leaks no secret,
/// and rotated by changing the variable or the file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SecretRef {
    Env(String),
    File(std::path::PathBuf),
}

impl SecretRef {
    /// Reads the secret now. The error names the reference, never a value.
    pub fn resolve(&self) -> std::result::Result<Secret, String> {
        let value = match self {
            SecretRef::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?
            }
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file {}: {}", path.display(), e.kind()))?,
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("secret {self} is empty"));
        }
        Ok(Secret::new(value))
    }
}

impl std::str::FromStr for SecretRef {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let invalid = || format!("{s:?}: expected env:NAME or file:/absolute/path");
        if let Some(name) = s.strip_prefix("env:") {
            let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return valid.then(|| SecretRef::Env(name.to_owned())).ok_or_else(invalid);
        }
        if let Some(path) = s.strip_prefix("file:") {
            let path = std::path::PathBuf::from(path);
            return path.is_absolute().then_some(SecretRef::File(path)).ok_or_else(invalid);
        }
        Err(invalid())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// Retry policy for idempotent calls: exponential backoff with jitter,
/// `delay_n = min(max, base · 2^n) · (1 ± jitter)`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Total attempts including the first (1 disables retries).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_delay_ms: u64,
    /// Upper bound for a single delay.
    pub max_delay_ms: u64,
    /// Relative jitter in `[0, 1)`, e.g. 0.2 for ±20 %.
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { max_attempts: 3, base_delay_ms: 200, max_delay_ms: 5_000, jitter: 0.2 }
    }
}

/// Circuit breaker settings, one breaker per upstream client.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive upstream failures (timeouts, 5xx, transport errors) that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before letting a probe through.
    pub cooldown_ms: u64,
    /// Successful probes needed in half-open state to close the circuit again.
    pub half_open_successes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig { failure_threshold: 5, cooldown_ms: 30_000, half_open_successes: 1 }
    }
}

/// Transport settings shared by all clients.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Deadline for one attempt, from sending the request to reading the whole body.
    pub timeout_ms: u64,
    /// TCP + TLS connect deadline.
    pub connect_timeout_ms: u64,
    /// Retry policy for idempotent calls.
    pub retry: RetryConfig,
    /// Circuit breaker for this upstream.
    pub breaker: BreakerConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

impl HttpConfig {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Lerian M2M credentials (lib-auth `POST {url}/v1/login/oauth/access_token`, camelCase JSON).
/// Used by Midaz and CRM when `PLUGIN_AUTH_ENABLED=true` on their side.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LerianAuthConfig {
    /// Base URL of the Lerian auth service (the client appends `/v1/login/oauth/access_token`).
    pub url: String,
    /// Application client id.
    pub client_id: String,
    /// Application client secret.
    pub client_secret: Secret,
}

/// Midaz ledger client settings (one ledger per tenant).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MidazConfig {
    /// Onboarding routes (accounts, balances), e.g. `http://midaz:3002`.
    pub onboarding_url: String,
    /// Transaction routes; defaults to `onboarding_url` (v3.8 serves both on one port).
    #[serde(default)]
    pub transaction_url: Option<String>,
    /// The tenant's organization id.
    pub organization_id: String,
    /// The tenant's ledger id.
    pub ledger_id: String,
    /// Asset code of the Pix accounts.
    #[serde(default = "default_asset")]
    pub asset_code: String,
    /// M2M auth; omit when Midaz runs with auth disabled.
    #[serde(default)]
    pub auth: Option<LerianAuthConfig>,
    /// Transport settings.
    #[serde(default)]
    pub http: HttpConfig,
}

fn default_asset() -> String {
    "BRL".to_owned()
}

/// Lerian CRM client settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    /// CRM base URL, e.g. `http://plugin-crm:4003`.
    pub base_url: String,
    /// Sent as `X-Organization-Id` on every call.
    pub organization_id: String,
    /// Ledger id used in the alias lookup.
    pub ledger_id: String,
    /// How long a resolved holder stays cached (Lerian default `CACHE_CRM_HOLDER_TTL=20m`).
    #[serde(default = "default_crm_ttl")]
    pub cache_ttl_ms: u64,
    /// M2M auth; omit when the CRM runs with auth disabled.
    #[serde(default)]
    pub auth: Option<LerianAuthConfig>,
    /// Transport settings.
    #[serde(default)]
    pub http: HttpConfig,
}

fn default_crm_ttl() -> u64 {
    20 * 60 * 1000
}

/// Client certificate for outbound mTLS, as PEM files (mounted from a secret).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {
    /// PEM certificate chain presented to the server (leaf first).
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM CA bundle that signs the server; when set it replaces the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// BTG Pactual client settings (the contract in docs/integrations.md).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BtgConfig {
    /// API base URL, e.g. `https://api.btgpactual.com`.
    pub base_url: String,
    /// Token endpoint base; defaults to `base_url` (the client appends `/oauth2/token`).
    #[serde(default)]
    pub auth_url: Option<String>,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: Secret,
    /// Optional OAuth2 scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// Our ISPB (the indirect participant), used as the DICT `account.participant`.
    pub ispb: String,
    /// Optional outbound client certificate.
    #[serde(default)]
    pub mtls: Option<MtlsConfig>,
    /// Transport settings.
    #[serde(default)]
    pub http: HttpConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_parse_resolve_and_name_no_value() {
        let dir = std::env::temp_dir().join(format!("pix-secret-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "  s3cr3t-value\n").unwrap();
        let r: SecretRef = format!("file:{}", file.display()).parse().unwrap();
        assert_eq!(r.resolve().unwrap().expose(), "s3cr3t-value");
        assert_eq!(r.to_string(), format!("file:{}", file.display()));
        std::fs::write(&file, "  ").unwrap();
        assert!(r.resolve().unwrap_err().contains("empty"));
        let missing: SecretRef = "env:PIX_TEST_SURELY_UNSET_VARIABLE".parse().unwrap();
        assert!(missing.resolve().unwrap_err().contains("PIX_TEST_SURELY_UNSET_VARIABLE"));
        for bad in ["plain-secret", "env:", "env:A-B", "file:relative/path", "vault:x"] {
            assert!(bad.parse::<SecretRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_is_never_printed() {
        let cfg: BtgConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://btg.example",
            "client_id": "id",
            "client_secret": "super-secret-value",
            "ispb": "12345678",
            "http": {"timeout_ms": 1000}
        }))
        .unwrap();
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("super-secret-value"), "{printed}");
        assert_eq!(cfg.client_secret.expose(), "super-secret-value");
        assert_eq!(cfg.http.timeout_ms, 1000);
        assert_eq!(cfg.http.retry, RetryConfig::default());
    }
}
