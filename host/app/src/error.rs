//! What a use case can fail with. The server turns it into an HTTP error (`From<AppError> for
//! ApiError`) or a job outcome (`From<AppError> for JobError`): a refusal is final, everything
//! else is worth retrying.

use pix_core::error::ErrorCode;
use pix_core::med::BlockTransitionError;
use pix_core::refund::RefundTransitionError;
use pix_core::transfer::{CorruptState, TransitionError};
use pix_integrations::IntegrationError;
use pix_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is refused for a reason the caller can act on.
    #[error("{code:?}: {message}")]
    Refused { code: ErrorCode, message: String },
    /// An upstream failed or its answer is unknown; the same idempotent step must run again.
    #[error("{what}: {source}")]
    Upstream { what: &'static str, source: IntegrationError },
    /// The outcome of a money step is not known yet (BTG has not said); try again later.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A transition the state machine refuses: a bug or a corrupt row, never the caller's fault.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    RefundTransition(#[from] RefundTransitionError),
    #[error(transparent)]
    BlockTransition(#[from] BlockTransitionError),
    #[error(transparent)]
    Corrupt(#[from] CorruptState),
    #[error("internal: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError::Refused { code, message: message.into() }
    }

    pub fn upstream(what: &'static str) -> impl FnOnce(IntegrationError) -> AppError {
        move |source| AppError::Upstream { what, source }
    }

    /// An upstream's circuit breaker refused the call: nothing was sent, so the step has not
    /// been tried yet; it may be tried after the returned wait.
    pub fn short_circuited(&self) -> Option<std::time::Duration> {
        match self {
            AppError::Upstream { source: IntegrationError::CircuitOpen { retry_after, .. }, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Retrying cannot change the answer.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            AppError::Refused { .. }
                | AppError::Transition(_)
                | AppError::RefundTransition(_)
                | AppError::BlockTransition(_)
                | AppError::Corrupt(_)
        )
    }
}
