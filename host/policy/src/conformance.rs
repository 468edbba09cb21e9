//! Load-time gate: every exported kind must answer its fixtures validly within the limits.

use crate::decide::Decide;
use crate::engine::{LoadedPolicy, PolicyEngine};
use crate::error::PolicyError;
use crate::fixtures;
use crate::types::PolicyKind;

pub(crate) fn check(engine: &PolicyEngine, policy: &LoadedPolicy) -> Result<(), PolicyError> {
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
