//! pix-policy: institution business rules as sandboxed WebAssembly components.
//!
//! The contract is `wit/policy.wit` (package `pix:policy@0.2.0`): four decisions (fee,
//! refund-split, cashin-acceptance, fraud-triage), one world per decision plus `institution`
//! with all four. Components built against an earlier release (`wit/0.1.0/`) still load and
//! decide: see [`ContractVersion`]. This crate hosts such components with wasmtime:
//!
//! - [`PolicyEngine::load`] compiles (cached by sha256), refuses forbidden imports, resolves the
//!   exported decisions and runs the conformance [`fixtures`]; the result is a [`LoadedPolicy`].
//! - `PolicyEngine::decide_*` runs one decision in a **fresh instance** (pooling allocator,
//!   fuel, epoch deadline, memory cap) and checks the answer against the contract; every failure
//!   is a typed [`PolicyError`], never a panic. `*_or_failsafe` returns the kind's fail-safe
//!   instead, with an [`Outcome`] saying so.
//! - [`PolicySet`] holds the active policy per (tenant, kind) with an atomic swap and history.
//! - [`native`] has the default rules in plain Rust (benchmark baseline, fee fail-safe,
//!   cross-check of the wasm defaults).
//!
//! Fail-safes (documented in docs/policies.md):
//!
//! | Kind | On any failure |
//! |---|---|
//! | fee | the native default fee table with the tenant's parameters |
//! | refund-split | whole refund from the first customer account (the single-account flow) |
//! | cashin-acceptance | deny, `POLICY_UNAVAILABLE`, pacs.002 `AG03` |
//! | fraud-triage | `review` (manual analysis), score 500, reason `POLICY_UNAVAILABLE` |
//!
//! Metrics (`metrics` crate; labels in braces):
//!
//! - `pix_policy_decisions_total{kind, outcome=ok|error}` — decisions taken.
//! - `pix_policy_errors_total{kind, error}` — failed decisions by [`PolicyError::class`].
//! - `pix_policy_failsafe_total{kind}` — fail-safe answers given.
//! - `pix_policy_decision_seconds{kind}` — histogram, wall time per decision.
//! - `pix_policy_fuel_consumed{kind}` — histogram, fuel used per call.
//! - `pix_policy_loads_total{result=ok|rejected}` — component loads.
//! - `pix_policy_activations_total{kind, action=activate|rollback}` — registry changes.

pub mod cases;
mod conformance;
mod contract;
mod decide;
mod engine;
mod error;
pub mod fixtures;
/// The contract checks on policy inputs and answers; public for the fuzz targets (fuzz/).
pub mod limits;
mod manifest;
pub mod native;
mod registry;
mod types;

pub use contract::ContractVersion;
pub use engine::{Artifact, Check, CodeSource, LoadedPolicy, PolicyEngine, PolicyLimits, Session};
pub use error::{Outcome, PolicyError};
pub use limits::{
    ComponentLimits, MAX_ALIAS, MAX_MESSAGE, MAX_OPERATIONS, MAX_PARAMS, MAX_REASONS, MAX_SHORT_TEXT, MAX_SPI_MESSAGE,
    PACS002_REASONS,
};
pub use manifest::{ManifestEntry, load_manifest, load_manifest_where};
pub use registry::PolicySet;
pub use types::*;
