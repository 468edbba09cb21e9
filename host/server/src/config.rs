//! Configuration: built-in defaults, then an optional TOML file, then `PIX_*` environment
//! variables (`PIX_SERVER__LISTEN=0.0.0.0:4014`, `__` separating sections). Validated at start:
//! a bad value stops the process with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the embedded database and the demo file.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub idempotency: IdempotencyConfig,
    pub workers: WorkerConfig,
    /// Demo mode: seed a demo tenant and print its tenant and admin tokens when the database has
    /// no tenant. Not set in the file or environment: on only when no `[integrations]` is
    /// configured (resolved by [`Config::load`]); `true` together with `[integrations]` is refused.
    #[serde(default = "default_demo", skip_serializing)]
    pub demo: bool,
    /// Real BTG, Midaz and CRM endpoints. Absent: the simulators run in-process (`sandbox`).
    #[serde(default, skip_serializing)]
    pub integrations: Option<IntegrationsConfig>,
    pub sandbox: SandboxSettings,
    pub btg_webhook: BtgWebhookConfig,
    pub policies: PoliciesConfig,
    pub transfers: TransfersConfig,
    pub cache: CacheConfig,
    pub outbound: OutboundConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    /// The trck.002 reporter of intra-PSP settlements.
    #[serde(default)]
    pub trck002: crate::reports::ReportsConfig,
    /// Collections (COB/COBV) and static BR Codes.
    #[serde(default)]
    pub collections: CollectionsConfig,
}

/// `[collections]` (docs/collections.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectionsConfig {
    /// Where payers reach this host's location routes, without scheme (`pix.example.com/pix`),
    /// written into every charge's BR Code (26.25, at most 77 characters with `/qr/v2/cobv/` and a
    /// 32-character token). Empty: `server.listen` (demo and tests).
    pub location_base: String,
    /// Field 60 of a code whose request gives no city (CRM holders carry no address).
    pub default_merchant_city: String,
    /// How often the expiry job removes unpaid charges past their validity.
    pub expiry_interval_ms: u64,
    /// A location signing key older than this is replaced by a new one (docs/collections.md).
    pub signing_key_rotation_days: u32,
}

impl Default for CollectionsConfig {
    fn default() -> Self {
        CollectionsConfig {
            location_base: String::new(),
            default_merchant_city: "BRASILIA".into(),
            expiry_interval_ms: 60_000,
            signing_key_rotation_days: 90,
        }
    }
}

fn default_demo() -> bool {
    true
}

/// Keys protecting data at rest.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// AES-256-GCM key sealing secrets stored in the database (webhook signing secrets): 32
    /// bytes, base64. Required outside demo mode; in demo mode, generated once into
    /// `data_dir/secret.key` when absent. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig").field("secret_key", &self.secret_key.as_ref().map(|_| "***")).finish()
    }
}

/// The money engine's waits and the stuck-transfer sweeper (see docs/transfers.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransfersConfig {
    /// BTG's "no such payment" releases a hold only once the cash-out is this old.
    pub btg_not_found_grace_secs: u64,
    /// After a release on BTG's "not found", the sweeper reads the payment back this long (every
    /// `stale_sent_secs`): a CONFIRMED then opens a CONFIRMED_AFTER_FAILED incident.
    pub not_found_watch_secs: u64,
    /// The sweeper reads back a cash-out left at NEW or HELD (or a cash-in not finished) this long.
    pub stale_pending_secs: u64,
    /// … one at SENT whose verdict has not arrived.
    pub stale_sent_secs: u64,
    /// … one IN_REVIEW nobody decided (it is then rejected).
    pub stale_review_secs: u64,
    /// … an incident whose ledger correction is not posted yet.
    pub stale_incident_secs: u64,
    pub sweep_every_ms: u64,
    pub sweep_batch: u32,
}

impl TransfersConfig {
    pub fn settings(&self) -> pix_app::TransferSettings {
        let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        pix_app::TransferSettings {
            btg_not_found_grace: secs(self.btg_not_found_grace_secs),
            not_found_watch: secs(self.not_found_watch_secs),
            stale_after: pix_store::transfers::StaleAfter {
                pending: secs(self.stale_pending_secs),
                sent: secs(self.stale_sent_secs),
                review: secs(self.stale_review_secs),
                incident: secs(self.stale_incident_secs),
            },
            sweep_every: Duration::from_millis(self.sweep_every_ms),
            sweep_batch: i64::from(self.sweep_batch),
        }
    }
}

impl Default for TransfersConfig {
    fn default() -> Self {
        let d = pix_app::TransferSettings::default();
        let secs = |d: chrono::Duration| u64::try_from(d.num_seconds()).unwrap_or(0);
        TransfersConfig {
            btg_not_found_grace_secs: secs(d.btg_not_found_grace),
            not_found_watch_secs: secs(d.not_found_watch),
            stale_pending_secs: secs(d.stale_after.pending),
            stale_sent_secs: secs(d.stale_after.sent),
            stale_review_secs: secs(d.stale_after.review),
            stale_incident_secs: secs(d.stale_after.incident),
            sweep_every_ms: u64::try_from(d.sweep_every.as_millis()).unwrap_or(u64::MAX),
            sweep_batch: u32::try_from(d.sweep_batch).unwrap_or(100),
        }
    }
}

/// Calls the host makes to addresses a tenant chose: webhook deliveries and dynamic QR-code
/// locations (see `outbound.rs` and docs/security.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Networks exempt from the address policy (which refuses loopback, private, link-local,
    /// CGNAT, multicast, documentation and other special ranges). Empty by default; tests and a
    /// host running `pix-host sandbox` on loopback set e.g. `["127.0.0.1/32"]`.
    pub allow_networks: Vec<ipnet::IpNet>,
    pub connect_timeout_ms: u64,
    /// Largest response body read from a tenant-chosen address.
    pub max_response_bytes: usize,
    /// Webhook endpoints one tenant may register.
    pub max_webhook_endpoints: u32,
    /// Webhook delivery attempts in flight per tenant, so that one tenant's slow or dead
    /// receivers cannot take all of the process's delivery slots.
    pub tenant_delivery_concurrency: usize,
    /// Exact sockets exempt from the policy: set by `serve` for the embedded simulators (the demo's
    /// QR-code PSP), never read from files or the environment.
    #[serde(skip)]
    pub allow_sockets: Vec<SocketAddr>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow_networks: Vec::new(),
            connect_timeout_ms: 2_000,
            max_response_bytes: 64 * 1024,
            max_webhook_endpoints: 10,
            tenant_delivery_concurrency: 16,
            allow_sockets: Vec::new(),
        }
    }
}

/// What a process keeps in memory briefly instead of reading on every request. Zero disables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Resolved bearer credentials (by token hash). A revocation made by another instance takes
    /// effect there within this time; in the revoking process, at once.
    pub credential_ttl_ms: u64,
    /// `X-Account-Id` ownership (Midaz account with its blocked flag, CRM holder) per tenant and
    /// account. A block in Midaz takes effect here within this time.
    pub account_ttl_ms: u64,
}

impl CacheConfig {
    pub fn credential_ttl(&self) -> Duration {
        Duration::from_millis(self.credential_ttl_ms)
    }

    pub fn account_ttl(&self) -> Duration {
        Duration::from_millis(self.account_ttl_ms)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    /// Shipped components and their `manifest.json`: the fallback policy of each kind.
    pub dir: PathBuf,
    /// Development: reload `dir` when its manifest changes.
    pub watch: bool,
    /// How often to check for changes another instance made (NOTIFY usually comes first).
    pub poll_interval_ms: u64,
    pub decision_retention_days: u32,
}

/// Process-wide upstream settings; each tenant's Midaz organization and ledger and its ISPB are
/// laid over them (see `integrations.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationsConfig {
    pub midaz: pix_integrations::MidazConfig,
    pub crm: pix_integrations::CrmConfig,
    pub btg: pix_integrations::BtgConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    /// With no `[integrations]`, start the BTG/Midaz/CRM simulators in-process and use them.
    pub embedded: bool,
    /// Seed of the simulators (their ids and scenarios are deterministic under it).
    pub seed: u64,
}

/// Inbound BTG webhooks: HMAC-signed (`x-signature`, `x-signature-timestamp`) with each tenant's
/// own secret, and/or received on a dedicated mTLS listener with each tenant's pinned client
/// certificate. `hmac_secret` is the simulators' shared secret: demo mode only.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BtgWebhookConfig {
    /// Shared secret of the HMAC signature; never logged.
    pub hmac_secret: Option<String>,
    pub timestamp_tolerance_secs: i64,
    pub mtls: Option<MtlsListenerConfig>,
}

impl std::fmt::Debug for BtgWebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtgWebhookConfig")
            .field("hmac_secret", &self.hmac_secret.as_ref().map(|_| "***"))
            .field("timestamp_tolerance_secs", &self.timestamp_tolerance_secs)
            .field("mtls", &self.mtls)
            .finish()
    }
}

/// A TLS listener that only accepts clients presenting a certificate signed by `client_ca_file`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlsListenerConfig {
    pub listen: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: PathBuf,
    /// A client that has not finished the TLS handshake by then is disconnected.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

fn default_handshake_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    /// Requests served at once before new ones are shed with 503.
    pub max_concurrent_requests: usize,
    /// How long shutdown waits for in-flight requests and jobs.
    pub shutdown_grace_ms: u64,
    /// A client must send a request's complete headers within this time, or the connection is
    /// closed (slowloris). Also bounds how long an idle keep-alive connection is kept.
    pub header_read_timeout_ms: u64,
    /// Open connections on the HTTP listener; a connection beyond it is closed at once.
    pub max_connections: usize,
    /// Requests per second each tenant may make (after authentication), sustained …
    pub tenant_rate_per_second: u32,
    /// … and in a burst. Beyond it: 429 `PIX-0017` with `Retry-After`.
    pub tenant_rate_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; empty means SQLite under `data_dir`.
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,pix_server=debug`.
    pub filter: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// Retention when the client sends no `X-TTL`.
    pub default_ttl_secs: u64,
    /// Smallest retention honoured, whatever `X-TTL` says: a retry just after a tiny TTL would
    /// otherwise run the operation twice.
    pub min_ttl_secs: u64,
    pub max_ttl_secs: u64,
    /// How long a claimed key counts as in flight before another request may take it over.
    pub lock_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub poll_interval_ms: u64,
    pub lease_secs: u64,
    /// How long one handler may run before it is stopped and its job retried; below the lease,
    /// so a job never runs on two workers at once.
    pub job_timeout_ms: u64,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 4014)),
                request_timeout_ms: 30_000,
                body_limit_bytes: 1024 * 1024,
                max_concurrent_requests: 1024,
                shutdown_grace_ms: 20_000,
                header_read_timeout_ms: 10_000,
                max_connections: 4096,
                tenant_rate_per_second: 1000,
                tenant_rate_burst: 2000,
            },
            database: DatabaseConfig {
                url: String::new(),
                max_connections: 16,
                acquire_timeout_ms: 5_000,
                statement_timeout_ms: 10_000,
            },
            log: LogConfig { format: LogFormat::Pretty, filter: "info".into() },
            idempotency: IdempotencyConfig {
                default_ttl_secs: 24 * 3600,
                min_ttl_secs: 60,
                max_ttl_secs: 7 * 24 * 3600,
                lock_secs: 60,
            },
            workers: WorkerConfig {
                concurrency: 8,
                poll_interval_ms: 250,
                lease_secs: 60,
                job_timeout_ms: 30_000,
                retry_base_ms: 1_000,
                retry_cap_ms: 15 * 60 * 1000,
            },
            demo: true,
            integrations: None,
            sandbox: SandboxSettings { embedded: true, seed: 42 },
            btg_webhook: BtgWebhookConfig { hmac_secret: None, timestamp_tolerance_secs: 300, mtls: None },
            policies: PoliciesConfig {
                dir: PathBuf::from("policies"),
                watch: false,
                poll_interval_ms: 2_000,
                decision_retention_days: 30,
            },
            transfers: TransfersConfig::default(),
            cache: CacheConfig {
                credential_ttl_ms: pix_store::DEFAULT_CREDENTIAL_TTL.as_millis() as u64,
                account_ttl_ms: crate::account::DEFAULT_ACCOUNT_TTL.as_millis() as u64,
            },
            outbound: OutboundConfig::default(),
            security: SecurityConfig::default(),
            trck002: crate::reports::ReportsConfig::default(),
            collections: CollectionsConfig::default(),
        }
    }
}

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads defaults ← `file` ← environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!("config file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // The command line's own variables (`--config`, `sandbox --webhook-secret`) and the tests'
        // share the prefix but are not configuration keys.
        let figment = figment.merge(Env::prefixed("PIX_").split("__").ignore(&[
            "test_database_url",
            "config",
            "sandbox_webhook_secret",
        ]));
        let mut config: Config = figment.extract().map_err(|e| ConfigError(figment_message(e)))?;
        // `demo` left unset: demo mode only when no real upstream is configured.
        if figment.find_value("demo").is_err() {
            config.demo = config.integrations.is_none();
        }
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: &str| Err(ConfigError(format!("{key}: {problem}")));
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return fail("database.url", "must start with sqlite: or postgres: (or be empty for the embedded default)");
        }
        if self.transfers.sweep_every_ms == 0 || self.transfers.sweep_batch == 0 {
            return fail("transfers.sweep_every_ms", "the sweeper's interval and batch must be greater than 0");
        }
        if self.database.max_connections == 0 {
            return fail("database.max_connections", "must be at least 1");
        }
        if self.server.request_timeout_ms == 0 {
            return fail("server.request_timeout_ms", "must be greater than 0");
        }
        if self.database.acquire_timeout_ms + self.database.statement_timeout_ms >= self.server.request_timeout_ms {
            return fail(
                "database.statement_timeout_ms",
                "acquire + statement timeouts must stay below server.request_timeout_ms",
            );
        }
        if self.server.body_limit_bytes < 1024 {
            return fail("server.body_limit_bytes", "must be at least 1024");
        }
        if self.server.max_concurrent_requests == 0 {
            return fail("server.max_concurrent_requests", "must be at least 1");
        }
        let idem = &self.idempotency;
        if idem.min_ttl_secs == 0 || idem.min_ttl_secs > idem.max_ttl_secs {
            return fail("idempotency.min_ttl_secs", "must be between 1 and idempotency.max_ttl_secs");
        }
        if !(idem.min_ttl_secs..=idem.max_ttl_secs).contains(&idem.default_ttl_secs) {
            return fail("idempotency.default_ttl_secs", "must lie between min_ttl_secs and max_ttl_secs");
        }
        if idem.lock_secs == 0 {
            return fail("idempotency.lock_secs", "must be greater than 0");
        }
        let w = &self.workers;
        if w.concurrency == 0 {
            return fail("workers.concurrency", "must be at least 1");
        }
        if w.lease_secs == 0 || w.poll_interval_ms == 0 {
            return fail("workers.lease_secs", "lease and poll interval must be greater than 0");
        }
        if w.job_timeout_ms == 0 || w.job_timeout_ms >= w.lease_secs.saturating_mul(1000) {
            return fail("workers.job_timeout_ms", "must be greater than 0 and below workers.lease_secs");
        }
        if w.retry_base_ms == 0 || w.retry_base_ms > w.retry_cap_ms {
            return fail("workers.retry_base_ms", "must be between 1 and workers.retry_cap_ms");
        }
        if self.integrations.is_some() && self.demo {
            return fail(
                "demo",
                "demo = true cannot be combined with [integrations]: a demo tenant and admin token would be \
                 created against the real upstreams; set demo = false or remove integrations",
            );
        }
        if self.server.header_read_timeout_ms == 0 {
            return fail("server.header_read_timeout_ms", "must be greater than 0");
        }
        if self.server.max_connections == 0 {
            return fail("server.max_connections", "must be at least 1");
        }
        if self.server.tenant_rate_per_second == 0 || self.server.tenant_rate_burst == 0 {
            return fail("server.tenant_rate_per_second", "rate and server.tenant_rate_burst must be at least 1");
        }
        if self.integrations.is_none() && !self.sandbox.embedded {
            return fail("integrations", "configure [integrations] or enable sandbox.embedded");
        }
        let hook = &self.btg_webhook;
        if hook.hmac_secret.as_deref().is_some_and(|s| s.len() < 16) {
            return fail("btg_webhook.hmac_secret", "must be at least 16 characters");
        }
        if self.integrations.is_some() && hook.hmac_secret.is_some() {
            return fail(
                "btg_webhook.hmac_secret",
                "one shared secret cannot tell tenants apart: with [integrations] each tenant has its own \
                 (PUT /v1/admin/tenants/{id}/inbound-secret)",
            );
        }
        if hook.timestamp_tolerance_secs <= 0 {
            return fail("btg_webhook.timestamp_tolerance_secs", "must be greater than 0");
        }
        if let Some(mtls) = &hook.mtls {
            for (key, path) in
                [("cert_file", &mtls.cert_file), ("key_file", &mtls.key_file), ("client_ca_file", &mtls.client_ca_file)]
            {
                if !path.exists() {
                    return fail(&format!("btg_webhook.mtls.{key}"), &format!("{} does not exist", path.display()));
                }
            }
        }
        let out = &self.outbound;
        if out.connect_timeout_ms == 0 || out.max_response_bytes == 0 {
            return fail(
                "outbound.connect_timeout_ms",
                "connect timeout and max_response_bytes must be greater than 0",
            );
        }
        if out.max_webhook_endpoints == 0 || out.tenant_delivery_concurrency == 0 {
            return fail(
                "outbound.tenant_delivery_concurrency",
                "max_webhook_endpoints and tenant_delivery_concurrency must be at least 1",
            );
        }
        if self.policies.poll_interval_ms == 0 || self.policies.decision_retention_days == 0 {
            return fail("policies.poll_interval_ms", "poll interval and retention must be greater than 0");
        }
        if self.cache.credential_ttl_ms > 1_000 {
            return fail(
                "cache.credential_ttl_ms",
                "must be at most 1000: a revocation made on another instance waits this long",
            );
        }
        if self.cache.account_ttl_ms > 60_000 {
            return fail("cache.account_ttl_ms", "must be at most 60000: a Midaz block waits this long");
        }
        match &self.security.secret_key {
            Some(key) if pix_store::sealed::Sealer::from_base64(key).is_err() => {
                return fail("security.secret_key", "must be 32 bytes, base64-encoded");
            }
            None if !self.demo_enabled() => {
                return fail(
                    "security.secret_key",
                    "required outside demo mode (32 bytes, base64; e.g. env PIX_SECURITY__SECRET_KEY)",
                );
            }
            _ => {}
        }
        if let Err(e) = self.log.filter.parse::<tracing_subscriber::EnvFilter>() {
            return fail("log.filter", &e.to_string());
        }
        Ok(())
    }

    /// The database URL in effect: the configured one or SQLite under `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("pix-host.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// Whether demo mode is on (see [`Config::demo`]).
    pub fn demo_enabled(&self) -> bool {
        self.demo
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.server.header_read_timeout_ms)
    }

    pub fn is_embedded(&self) -> bool {
        self.database.url.is_empty()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.server.request_timeout_ms)
    }
}

/// figment errors already name the key ("for key `server.listen`"); keep only that, never values.
fn figment_message(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let kind = e.kind.to_string();
            if key.is_empty() { kind } else { format!("{key}: {kind}") }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.is_embedded());
        assert!(c.database_url().starts_with("sqlite://data"));
    }

    fn integrations() -> IntegrationsConfig {
        serde_json::from_value(serde_json::json!({
            "midaz": { "onboarding_url": "https://midaz.example", "organization_id": "o", "ledger_id": "l" },
            "crm": { "base_url": "https://crm.example", "organization_id": "o", "ledger_id": "l" },
            "btg": { "base_url": "https://btg.example", "client_id": "c", "client_secret": "s", "ispb": "12345678" },
        }))
        .unwrap()
    }

    /// Inbound webhooks by mTLS (files need only exist for validation).
    fn mtls_files(dir: &Path) -> MtlsListenerConfig {
        for name in ["cert.pem", "key.pem", "ca.pem"] {
            std::fs::write(dir.join(name), "-").unwrap();
        }
        MtlsListenerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            client_ca_file: dir.join("ca.pem"),
            handshake_timeout_ms: 5_000,
        }
    }

    #[test]
    fn demo_is_on_only_without_integrations_and_never_with_them() {
        let c = Config::default();
        assert!(c.demo_enabled(), "no upstreams: demo by default");

        let dir = tempfile::tempdir().unwrap();
        let mut c = Config { integrations: Some(integrations()), ..Config::default() };
        c.btg_webhook.mtls = Some(mtls_files(dir.path()));
        c.security.secret_key = Some(pix_store::sealed::Sealer::generate_key());
        c.demo = true;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("demo") && err.contains("integrations"), "{err}");

        c.demo = false;
        c.validate().unwrap();
        c.security.secret_key = None;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("security.secret_key"), "{err}");
        c.security.secret_key = Some("c2hvcnQ=".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("security.secret_key"), "{err}");
        assert!(!format!("{c:?}").contains("c2hvcnQ="), "the key is never in Debug output");
    }

    #[test]
    fn demo_and_integrations_from_a_file_are_refused_naming_both_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pix.toml");
        std::fs::write(
            &file,
            format!(
                "demo = true\n[btg_webhook.mtls]\nlisten = \"127.0.0.1:0\"\ncert_file = \"{d}/cert.pem\"\nkey_file = \"{d}/key.pem\"\nclient_ca_file = \"{d}/ca.pem\"\n\
             [integrations.midaz]\nonboarding_url = \"https://m.example\"\norganization_id = \"o\"\nledger_id = \"l\"\n\
             [integrations.crm]\nbase_url = \"https://c.example\"\norganization_id = \"o\"\nledger_id = \"l\"\n\
             [integrations.btg]\nbase_url = \"https://b.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nispb = \"12345678\"\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        mtls_files(dir.path());
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("demo") && err.contains("integrations"), "{err}");

        // The same without `demo`: production mode (and then the sealing key is required).
        let text = std::fs::read_to_string(&file).unwrap().replace("demo = true\n", "");
        std::fs::write(
            &file,
            format!("[security]\nsecret_key = \"{}\"\n{text}", pix_store::sealed::Sealer::generate_key()),
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert!(!c.demo_enabled(), "upstreams configured: no demo by default");
        assert!(Config::load(None).unwrap().demo_enabled(), "no upstreams: demo by default");
    }

    #[test]
    fn transport_and_rate_settings_are_validated() {
        for (key, set) in [
            (
                "server.header_read_timeout_ms",
                (|c: &mut Config| c.server.header_read_timeout_ms = 0) as fn(&mut Config),
            ),
            ("server.max_connections", |c| c.server.max_connections = 0),
            ("server.tenant_rate_per_second", |c| c.server.tenant_rate_burst = 0),
            ("cache.credential_ttl_ms", |c| c.cache.credential_ttl_ms = 1_001),
        ] {
            let mut c = Config::default();
            set(&mut c);
            assert!(c.validate().unwrap_err().to_string().contains(key), "{key}");
        }
        assert!(Config::default().cache.credential_ttl_ms <= 1_000, "revocation within a second");
    }

    #[test]
    fn file_values_override_defaults_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pix.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
        assert_eq!(Config::load(Some(&file)).unwrap().server.listen.port(), 9999);

        std::fs::write(&file, "[server]\nlisten = \"not an address\"\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");

        std::fs::write(&file, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");

        std::fs::write(&file, "[database]\nurl = \"mysql://x\"\n").unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("database.url"), "{err}");

        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    // `figment::Jail` (which isolates the environment) fixes its closure's large error type.
    #[allow(clippy::result_large_err)]
    fn the_outbound_allowlist_is_read_from_files_and_the_environment() {
        assert!(Config::default().outbound.allow_networks.is_empty(), "no exception by default");
        figment::Jail::expect_with(|jail| {
            jail.create_file("pix.toml", "[outbound]\nallow_networks = [\"127.0.0.1/32\", \"::1/128\"]\n")?;
            let config = Config::load(Some(Path::new("pix.toml"))).map_err(|e| e.to_string())?;
            let nets: Vec<String> = config.outbound.allow_networks.iter().map(|n| n.to_string()).collect();
            assert_eq!(nets, ["127.0.0.1/32", "::1/128"]);
            jail.create_file("bad.toml", "[outbound]\nallow_networks = [\"10.0.0.0/33\"]\n")?;
            let err = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("allow_networks"), "{err}");
            jail.set_env("PIX_OUTBOUND__ALLOW_NETWORKS", "[\"10.1.0.0/16\"]");
            jail.set_env("PIX_OUTBOUND__MAX_WEBHOOK_ENDPOINTS", "3");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.outbound.allow_networks, vec!["10.1.0.0/16".parse::<ipnet::IpNet>().unwrap()]);
            assert_eq!(config.outbound.max_webhook_endpoints, 3);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_command_lines_own_variables_are_not_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("pix.toml", "[server]\nlisten = \"127.0.0.1:4999\"\n")?;
            jail.set_env("PIX_CONFIG", "pix.toml");
            jail.set_env("PIX_SANDBOX_WEBHOOK_SECRET", "a-sandbox-secret");
            let config = Config::load(Some(Path::new("pix.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.server.listen.port(), 4999);
            Ok(())
        });
    }

    #[test]
    fn cross_field_rules_are_enforced() {
        let mut c = Config::default();
        c.idempotency.default_ttl_secs = 10;
        assert!(c.validate().unwrap_err().to_string().contains("idempotency.default_ttl_secs"));
        let mut c = Config::default();
        c.database.statement_timeout_ms = 60_000;
        assert!(c.validate().unwrap_err().to_string().contains("statement_timeout_ms"));
        let mut c = Config::default();
        c.log.filter = "[[[".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.filter"));
        for timeout_ms in [0, 60_000, 90_000] {
            let mut c = Config::default();
            c.workers.job_timeout_ms = timeout_ms;
            assert!(c.validate().unwrap_err().to_string().contains("workers.job_timeout_ms"), "{timeout_ms}");
        }
        let mut c = Config::default();
        c.workers.job_timeout_ms = 59_999;
        c.validate().unwrap();
    }

    #[test]
    fn a_shared_inbound_secret_is_refused_with_real_upstreams() {
        let integrations: IntegrationsConfig = serde_json::from_value(serde_json::json!({
            "midaz": {"onboarding_url": "https://midaz.example", "organization_id": "o", "ledger_id": "l"},
            "crm": {"base_url": "https://crm.example", "organization_id": "o", "ledger_id": "l"},
            "btg": {"base_url": "https://btg.example", "client_id": "c", "client_secret": "s", "ispb": "12345678"},
        }))
        .unwrap();
        let mut c = Config { demo: false, integrations: Some(integrations), ..Config::default() };
        c.security.secret_key = Some(pix_store::sealed::Sealer::generate_key());
        c.btg_webhook.hmac_secret = Some("a-shared-secret-for-everyone".into());
        assert!(c.validate().unwrap_err().to_string().contains("btg_webhook.hmac_secret"));
        c.btg_webhook.hmac_secret = None;
        c.validate().unwrap();
    }
}
