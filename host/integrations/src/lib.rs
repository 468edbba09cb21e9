//! Production clients for the systems pix-host talks to: Midaz (ledger of record), Lerian CRM
//! (holders and banking details) and BTG Pactual (DICT and SPI, the direct participant).
//!
//! Each system sits behind an object-safe async trait ([`Ledger`], [`HolderDirectory`], [`Btg`])
//! so the server can hold `Arc<dyn …>` and tests can swap in fakes. Every client applies a
//! per-attempt timeout, retries only idempotent calls (with jittered exponential backoff), keeps a
//! circuit breaker per upstream, masks PII in its tracing spans, and reports failures as
//! [`IntegrationError`].

pub mod btg;
pub mod config;
pub mod crm;
pub mod domain;
pub mod error;
mod lerian_auth;
pub mod midaz;
pub mod resilience;
mod tls;
mod transport;

pub use btg::{Btg, BtgClient};
pub use config::{
    BreakerConfig, BtgConfig, CrmConfig, HttpConfig, LerianAuthConfig, MidazConfig, MtlsConfig, RetryConfig, Secret,
    SecretRef,
};
pub use crm::{AccountHolder, CrmClient, HolderDirectory};
pub use domain::Money;
pub use error::{IntegrationError, Result, Upstream};
pub use midaz::{IdempotencyKey, Ledger, MidazClient};
pub use resilience::{BreakerState, CircuitBreaker};
