//! Typed errors shared by every client, so the HTTP layer can map them to API errors without
//! looking at upstream-specific bodies.

use std::fmt;
use std::time::Duration;

/// Which external system a call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// Midaz ledger (onboarding and transaction routes).
    Midaz,
    /// Lerian CRM (holders and aliases).
    Crm,
    /// BTG Pactual (DICT and SPI).
    Btg,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Upstream::Midaz => "midaz",
            Upstream::Crm => "crm",
            Upstream::Btg => "btg",
        })
    }
}

/// What went wrong talking to an upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrationError {
    /// No complete answer within the per-call timeout. For a money-moving call the effect may
    /// or may not have happened: reconcile by reading back.
    #[error("{upstream} did not answer within {after:?}")]
    Timeout {
        /// The upstream.
        upstream: Upstream,
        /// The per-call timeout that elapsed.
        after: Duration,
    },
    /// The upstream answered with a 5xx or 429, or refused the connection.
    #[error("{upstream} unavailable (status {status:?}): {message}")]
    Unavailable {
        /// The upstream.
        upstream: Upstream,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// Short description (upstream body message when present).
        message: String,
    },
    /// The circuit breaker for this upstream is open; no call was made.
    #[error("{upstream} circuit open; calls are short-circuited for {retry_after:?}")]
    CircuitOpen {
        /// The upstream.
        upstream: Upstream,
        /// When a call may be admitted again: the rest of the cooldown, or while another call
        /// probes the upstream, a short wait for its outcome.
        retry_after: std::time::Duration,
    },
    /// The entity does not exist upstream (HTTP 404).
    #[error("{upstream}: not found ({code}): {message}")]
    NotFound {
        /// The upstream.
        upstream: Upstream,
        /// Upstream error code (`"0007"`, `"CRM-0008"`, `"ENTRY_NOT_FOUND"`), or empty.
        code: String,
        /// Upstream message.
        message: String,
    },
    /// The request conflicts with the upstream's state (HTTP 409), e.g. a duplicate alias.
    #[error("{upstream}: conflict ({code}): {message}")]
    Conflict {
        /// The upstream.
        upstream: Upstream,
        /// Upstream error code.
        code: String,
        /// Upstream message.
        message: String,
    },
    /// The same idempotency key is still being processed upstream (Midaz 409 `0084`): retry later
    /// with the same key.
    #[error("{upstream}: request with the same idempotency key is still in flight")]
    InFlight {
        /// The upstream.
        upstream: Upstream,
    },
    /// The upstream refused the request on business or validation grounds (HTTP 400/422).
    #[error("{upstream} rejected the request ({status} {code}): {message}")]
    Rejected {
        /// The upstream.
        upstream: Upstream,
        /// HTTP status.
        status: u16,
        /// Upstream error code (`"0018"` insufficient funds, …).
        code: String,
        /// Upstream message.
        message: String,
    },
    /// Our credentials were refused (HTTP 401/403), even after a token refresh.
    #[error("{upstream} refused our credentials (status {status})")]
    Unauthorized {
        /// The upstream.
        upstream: Upstream,
        /// HTTP status.
        status: u16,
    },
    /// The upstream answered 2xx with a body we could not read.
    #[error("{upstream}: undecodable response: {message}")]
    Decode {
        /// The upstream.
        upstream: Upstream,
        /// Parser message.
        message: String,
    },
    /// A connection-level failure (DNS, TLS, reset) before a response arrived.
    #[error("{upstream}: transport error: {message}")]
    Transport {
        /// The upstream.
        upstream: Upstream,
        /// Transport message.
        message: String,
    },
    /// Bad client configuration (unreadable certificate, malformed URL, …).
    #[error("integration configuration: {0}")]
    Config(String),
}

impl IntegrationError {
    /// The upstream involved, if any.
    pub fn upstream(&self) -> Option<Upstream> {
        match self {
            IntegrationError::Timeout { upstream, .. }
            | IntegrationError::Unavailable { upstream, .. }
            | IntegrationError::CircuitOpen { upstream, .. }
            | IntegrationError::NotFound { upstream, .. }
            | IntegrationError::Conflict { upstream, .. }
            | IntegrationError::InFlight { upstream }
            | IntegrationError::Rejected { upstream, .. }
            | IntegrationError::Unauthorized { upstream, .. }
            | IntegrationError::Decode { upstream, .. }
            | IntegrationError::Transport { upstream, .. } => Some(*upstream),
            IntegrationError::Config(_) => None,
        }
    }

    /// Whether repeating the same idempotent call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IntegrationError::Timeout { .. }
                | IntegrationError::Unavailable { .. }
                | IntegrationError::Transport { .. }
                | IntegrationError::InFlight { .. }
        )
    }

    /// Whether this outcome says the upstream is unhealthy (counts against the circuit breaker).
    /// Business answers (404, 409, 422) come from a healthy upstream and do not count.
    pub(crate) fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            IntegrationError::Timeout { .. }
                | IntegrationError::Unavailable { .. }
                | IntegrationError::Transport { .. }
        )
    }

    /// The upstream error code, when the upstream sent one.
    /// The upstream certainly answered and refused (not found, conflict, business rule): the
    /// same request would be refused again. Anything else (timeout, 5xx, open circuit) leaves
    /// the outcome unknown.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            IntegrationError::NotFound { .. } | IntegrationError::Conflict { .. } | IntegrationError::Rejected { .. }
        )
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            IntegrationError::NotFound { code, .. }
            | IntegrationError::Conflict { code, .. }
            | IntegrationError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Result alias for client calls.
pub type Result<T, E = IntegrationError> = std::result::Result<T, E>;
