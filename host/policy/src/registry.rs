//! Active policy per (tenant, kind), swapped atomically.
//!
//! Readers take a snapshot (`ArcSwap::load`) and clone the `LoadedPolicy` out of it, so a
//! decision pins the version it started with; activations and rollbacks publish a new snapshot
//! and never block readers. Each slot keeps its history for rollback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::engine::LoadedPolicy;
use crate::error::PolicyError;
use crate::types::PolicyKind;

type Slots = [Option<LoadedPolicy>; 4];

fn slot(kind: PolicyKind) -> usize {
    match kind {
        PolicyKind::Fee => 0,
        PolicyKind::RefundSplit => 1,
        PolicyKind::CashinAcceptance => 2,
        PolicyKind::FraudTriage => 3,
    }
}

/// In-memory registry of active policies.
#[derive(Default)]
pub struct PolicySet {
    active: ArcSwap<HashMap<String, Slots>>,
    // Writers serialise here; index = slot(kind); the last entry of each history is the active
    // version.
    history: Mutex<HashMap<String, [Vec<LoadedPolicy>; 4]>>,
}

impl PolicySet {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The active policy for `tenant` and `kind`, pinned for as long as the caller holds it.
    pub fn active(&self, tenant: &str, kind: PolicyKind) -> Option<LoadedPolicy> {
        self.active.load().get(tenant)?[slot(kind)].clone()
    }

    /// Like [`active`](Self::active), as an error when nothing is active.
    pub fn require(&self, tenant: &str, kind: PolicyKind) -> Result<LoadedPolicy, PolicyError> {
        self.active(tenant, kind).ok_or_else(|| PolicyError::NoActivePolicy { tenant: tenant.to_owned(), kind })
    }

    /// Make `policy` the active `kind` policy of `tenant`; the previous one stays in the history.
    pub fn activate(&self, tenant: &str, kind: PolicyKind, policy: LoadedPolicy) -> Result<(), PolicyError> {
        if !policy.implements(kind) {
            return Err(PolicyError::NotExported(kind));
        }
        let mut history = self.lock();
        history.entry(tenant.to_owned()).or_default()[slot(kind)].push(policy);
        self.publish(tenant, &history);
        metrics::counter!("pix_policy_activations_total", "kind" => kind.as_str(), "action" => "activate").increment(1);
        tracing::info!(tenant, kind = kind.as_str(), "policy activated");
        Ok(())
    }

    /// Reactivate the previous version; returns the policy that is active afterwards.
    pub fn rollback(&self, tenant: &str, kind: PolicyKind) -> Result<LoadedPolicy, PolicyError> {
        let mut history = self.lock();
        let versions = history
            .get_mut(tenant)
            .map(|slots| &mut slots[slot(kind)])
            .filter(|versions| versions.len() >= 2)
            .ok_or_else(|| PolicyError::NoPreviousVersion { tenant: tenant.to_owned(), kind })?;
        versions.pop();
        let now_active = versions
            .last()
            .cloned()
            .ok_or_else(|| PolicyError::NoPreviousVersion { tenant: tenant.to_owned(), kind })?;
        self.publish(tenant, &history);
        metrics::counter!("pix_policy_activations_total", "kind" => kind.as_str(), "action" => "rollback").increment(1);
        tracing::info!(tenant, kind = kind.as_str(), "policy rolled back");
        Ok(now_active)
    }

    /// Remove the `kind` policy of `tenant` and its history, so that lookups fall through to the
    /// caller's fallback. Returns whether a policy was active.
    pub fn deactivate(&self, tenant: &str, kind: PolicyKind) -> bool {
        let mut history = self.lock();
        let Some(versions) = history.get_mut(tenant).map(|slots| &mut slots[slot(kind)]) else {
            return false;
        };
        let was_active = !versions.is_empty();
        versions.clear();
        self.publish(tenant, &history);
        tracing::info!(tenant, kind = kind.as_str(), "policy deactivated");
        was_active
    }

    /// Every version activated for `tenant` and `kind`, oldest first; the last one is active.
    pub fn history(&self, tenant: &str, kind: PolicyKind) -> Vec<LoadedPolicy> {
        self.lock().get(tenant).map(|slots| slots[slot(kind)].clone()).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, [Vec<LoadedPolicy>; 4]>> {
        self.history.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn publish(&self, tenant: &str, history: &HashMap<String, [Vec<LoadedPolicy>; 4]>) {
        let Some(versions) = history.get(tenant) else {
            return;
        };
        let slots: Slots = std::array::from_fn(|i| versions[i].last().cloned());
        let mut next = HashMap::clone(&self.active.load());
        next.insert(tenant.to_owned(), slots);
        self.active.store(Arc::new(next));
    }
}
