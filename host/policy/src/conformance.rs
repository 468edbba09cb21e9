//! Load-time gate: every exported kind must answer its fixtures validly within the limits.
//!
//! The fixtures run under the component's own fuel and memory limits, but not its wall-clock
//! deadline: a load happens at start, on upload and on every activation, often on a host whose
//! CPUs are busy (with decisions, compiles, or a test suite), and a thread preempted for a few
//! tens of milliseconds would fail a correct component ("exceeded its deadline of 50 ms"). Fuel is
//! the deterministic budget (a component that is too slow uses too much of it, on any machine),
//! and no guest can wait on anything (no clocks, no I/O but captured stdio), so the wall-clock
//! deadline only guards against the host being slow; at load it is [`LOAD_DEADLINE`] at least.
//! Decisions keep the component's own deadline.

use std::time::Duration;

use crate::decide::Decide;
use crate::engine::{LoadedPolicy, PolicyEngine};
use crate::error::PolicyError;
use crate::fixtures;
use crate::types::PolicyKind;

/// The least wall-clock deadline a conformance fixture runs under.
pub(crate) const LOAD_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) fn check(engine: &PolicyEngine, policy: &LoadedPolicy) -> Result<(), PolicyError> {
    let policy = &engine.with_deadline_at_least(policy, LOAD_DEADLINE);
    for kind in policy.kinds() {
        match kind {
            PolicyKind::Fee => run_all(engine, policy, fixtures::fee())?,
            PolicyKind::RefundSplit => run_all(engine, policy, fixtures::refund_split())?,
            PolicyKind::CashinAcceptance => run_all(engine, policy, fixtures::cashin_acceptance())?,
            PolicyKind::FraudTriage => run_all(engine, policy, fixtures::fraud_triage())?,
        }
    }
    Ok(())
}

fn run_all<D: Decide>(
    engine: &PolicyEngine,
    policy: &LoadedPolicy,
    fixtures: Vec<(&'static str, D)>,
) -> Result<(), PolicyError> {
    for (fixture, input) in fixtures {
        engine.run(policy, &input).map_err(|e| PolicyError::Conformance {
            kind: D::KIND,
            fixture,
            source: Box::new(e),
        })?;
    }
    Ok(())
}
