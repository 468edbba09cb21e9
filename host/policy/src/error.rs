//! Typed errors. Every way a policy can fail maps to one variant; none of them panics the host.

use crate::types::PolicyKind;

/// Why loading a policy or taking a decision failed.
///
/// Load-time variants: [`Compile`](Self::Compile), [`ForbiddenImport`](Self::ForbiddenImport),
/// [`NoDecisionExported`](Self::NoDecisionExported), [`Link`](Self::Link),
/// [`LimitAboveMaximum`](Self::LimitAboveMaximum),
/// [`Conformance`](Self::Conformance), [`Manifest`](Self::Manifest).
/// Decision-time variants: the rest. Each has a stable [`class`](Self::class) used as the
/// `error` metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid component: {0}")]
    Compile(String),
    /// The component imports something the sandbox does not provide.
    #[error(
        "component imports {}, which policies may not use (allowed: wasi:cli stdio/environment/exit/terminal, wasi:io, pix:policy/types)",
        .imports.join(", ")
    )]
    ForbiddenImport {
        /// Every offending import, e.g. `wasi:filesystem/types@0.2.6`.
        imports: Vec<String>,
    },
    /// The component exports none of the four decision interfaces.
    #[error(
        "component exports no pix:policy decision (expected fee, refund-split, cashin-acceptance or fraud-triage @0.1.0)"
    )]
    NoDecisionExported,
    /// Linking or type-checking the component against the host failed.
    #[error("cannot link component: {0}")]
    Link(String),
    /// The component failed one of its kind's conformance fixtures at load time.
    #[error("conformance fixture `{fixture}` of `{kind}` failed: {source}")]
    Conformance {
        /// Kind whose fixture failed.
        kind: PolicyKind,
        /// Fixture name.
        fixture: &'static str,
        /// What went wrong.
        source: Box<PolicyError>,
    },
    /// A component asked for a limit above the host's (or its tenant's) maximum.
    #[error("{limit} {asked} is above the maximum of {maximum}")]
    LimitAboveMaximum {
        /// `memoryMib`, `fuel` or `deadlineMs`.
        limit: &'static str,
        /// What the component declared.
        asked: u64,
        /// The maximum it must stay within.
        maximum: u64,
    },
    /// The policy set or manifest is inconsistent (missing file, wrong hash, wrong kind).
    #[error("{0}")]
    Manifest(String),
    /// The loaded component does not implement the requested decision.
    #[error("policy does not export `{0}`")]
    NotExported(PolicyKind),
    /// No policy is active for this tenant and kind.
    #[error("no active `{kind}` policy for tenant `{tenant}`")]
    NoActivePolicy {
        /// Tenant id.
        tenant: String,
        /// Decision kind.
        kind: PolicyKind,
    },
    /// Rollback asked for with no earlier version.
    #[error("no earlier `{kind}` policy to roll back to for tenant `{tenant}`")]
    NoPreviousVersion {
        /// Tenant id.
        tenant: String,
        /// Decision kind.
        kind: PolicyKind,
    },
    /// The host's own input breaks the contract (a caller bug); the guest was not called.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The guest used up its instruction budget.
    #[error("policy ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The budget.
        fuel: u64,
    },
    /// The guest ran past its wall-clock deadline.
    #[error("policy exceeded its deadline of {millis} ms")]
    Deadline {
        /// The deadline.
        millis: u64,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("policy exceeded its memory limit of {bytes} bytes")]
    MemoryLimit {
        /// The cap.
        bytes: usize,
    },
    /// The guest trapped (panic, unreachable, stack overflow, ...).
    #[error("policy trapped: {message}{}", if .stderr.is_empty() { String::new() } else { format!(" (guest stderr: {})", .stderr) })]
    Trap {
        /// The trap as reported by wasmtime.
        message: String,
        /// What the guest wrote to stderr (bounded), e.g. its panic message.
        stderr: String,
    },
    /// Instantiation failed (e.g. the instance pool is exhausted).
    #[error("cannot instantiate policy: {0}")]
    Instantiate(String),
    /// The guest returned its WIT `policy-error`.
    #[error("policy declined to decide: {code}: {message}")]
    Guest {
        /// Guest's code.
        code: String,
        /// Guest's message.
        message: String,
    },
    /// The guest's answer breaks the contract (sum mismatch, out of range, oversized, ...).
    #[error("invalid policy answer: {0}")]
    InvalidOutput(String),
}

impl PolicyError {
    /// Stable snake_case name of the variant, used as the `error` label of the metrics.
    pub fn class(&self) -> &'static str {
        match self {
            PolicyError::Compile(_) => "compile",
            PolicyError::ForbiddenImport { .. } => "forbidden_import",
            PolicyError::NoDecisionExported => "no_decision_exported",
            PolicyError::Link(_) => "link",
            PolicyError::Conformance { .. } => "conformance",
            PolicyError::LimitAboveMaximum { .. } => "limit_above_maximum",
            PolicyError::Manifest(_) => "manifest",
            PolicyError::NotExported(_) => "not_exported",
            PolicyError::NoActivePolicy { .. } => "no_active_policy",
            PolicyError::NoPreviousVersion { .. } => "no_previous_version",
            PolicyError::InvalidInput(_) => "invalid_input",
            PolicyError::OutOfFuel { .. } => "out_of_fuel",
            PolicyError::Deadline { .. } => "deadline",
            PolicyError::MemoryLimit { .. } => "memory_limit",
            PolicyError::Trap { .. } => "trap",
            PolicyError::Instantiate(_) => "instantiate",
            PolicyError::Guest { .. } => "guest_error",
            PolicyError::InvalidOutput(_) => "invalid_output",
        }
    }
}

/// Where a decision returned by a `*_or_failsafe` call came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The policy decided.
    Policy,
    /// The policy failed with this error and the kind's fail-safe was used.
    FailSafe(PolicyError),
}
