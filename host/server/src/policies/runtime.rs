//! Which policy decides for whom, taking decisions, and keeping the record.
//!
//! Resolution per (tenant, kind): the tenant's binding, else the default binding (tenant `None`),
//! else the shipped component from `policies/manifest.json`. Bindings live in the database; every
//! instance keeps them in a `PolicySet` (atomic swap: a decision in flight finishes on the version
//! it started with) and reloads on PostgreSQL `NOTIFY` or, failing that, by polling.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use arc_swap::ArcSwap;
use pix_core::clock::Clock;
use pix_policy::{
    Artifact, CashinDecision, CashinInput, Check, CodeSource, FeeDecision, FeeInput, FraudDecision, FraudInput,
    LoadedPolicy, Outcome, PolicyEngine, PolicyError, PolicyKind, PolicySet, RefundSplitDecision, RefundSplitInput,
};
use pix_store::Store;
use pix_store::policies::Decision;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::decision_log::DecisionLog;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The slot key of a tenant in the `PolicySet` (`""` is the default binding).
fn slot(tenant: Option<Uuid>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

pub struct PolicyRuntime {
    pub engine: PolicyEngine,
    store: Store,
    clock: Arc<dyn Clock>,
    active: PolicySet,
    shipped: ArcSwap<HashMap<PolicyKind, LoadedPolicy>>,
    shadows: ArcSwap<HashMap<(String, PolicyKind), LoadedPolicy>>,
    /// What `reload` last applied, so an unchanged binding is not swapped again.
    applied: Mutex<HashMap<(String, PolicyKind), (String, serde_json::Value)>>,
    /// One `reload` at a time (the activation handler and the change follower both call it): an
    /// older read applied after a newer one would leave this instance on a superseded version.
    reloading: tokio::sync::Mutex<()>,
    /// Where `decide` records its decisions (written in batches).
    decisions: DecisionLog,
}

/// A decision kind's input, output and engine calls, so one generic path logs and shadows all four.
pub trait Kind {
    const KIND: PolicyKind;
    type Input: Serialize + DeserializeOwned;
    type Output: Serialize + PartialEq;
    fn decide(engine: &PolicyEngine, policy: &LoadedPolicy, input: &Self::Input) -> Result<Self::Output, PolicyError>;
    fn or_failsafe(engine: &PolicyEngine, policy: &LoadedPolicy, input: &Self::Input) -> (Self::Output, Outcome);
    fn or_failsafe_checked(
        engine: &PolicyEngine,
        policy: &LoadedPolicy,
        input: &Self::Input,
        check: &Check<'_, Self::Output>,
    ) -> (Self::Output, Outcome);
}

macro_rules! kind {
    ($name:ident, $kind:expr, $input:ty, $output:ty, $decide:ident, $failsafe:ident, $checked:ident) => {
        pub struct $name;
        impl Kind for $name {
            const KIND: PolicyKind = $kind;
            type Input = $input;
            type Output = $output;
            fn decide(engine: &PolicyEngine, p: &LoadedPolicy, i: &$input) -> Result<$output, PolicyError> {
                engine.$decide(p, i)
            }
            fn or_failsafe(engine: &PolicyEngine, p: &LoadedPolicy, i: &$input) -> ($output, Outcome) {
                engine.$failsafe(p, i)
            }
            fn or_failsafe_checked(
                engine: &PolicyEngine,
                p: &LoadedPolicy,
                i: &$input,
                check: &Check<'_, $output>,
            ) -> ($output, Outcome) {
                engine.$checked(p, i, check)
            }
        }
    };
}

kind!(Fee, PolicyKind::Fee, FeeInput, FeeDecision, decide_fee, fee_or_failsafe, fee_or_failsafe_checked);
kind!(
    RefundSplit,
    PolicyKind::RefundSplit,
    RefundSplitInput,
    RefundSplitDecision,
    decide_refund_split,
    refund_split_or_failsafe,
    refund_split_or_failsafe_checked
);
kind!(
    Cashin,
    PolicyKind::CashinAcceptance,
    CashinInput,
    CashinDecision,
    decide_cashin_acceptance,
    cashin_acceptance_or_failsafe,
    cashin_acceptance_or_failsafe_checked
);
kind!(
    Fraud,
    PolicyKind::FraudTriage,
    FraudInput,
    FraudDecision,
    decide_fraud_triage,
    fraud_triage_or_failsafe,
    fraud_triage_or_failsafe_checked
);

impl PolicyRuntime {
    /// Loads the shipped components from `dir` (recording them in the registry so they can be
    /// activated by hash) and the bindings from the database.
    pub async fn start(
        engine: PolicyEngine,
        store: Store,
        clock: Arc<dyn Clock>,
        dir: &Path,
    ) -> anyhow::Result<PolicyRuntime> {
        let runtime = PolicyRuntime {
            engine,
            clock,
            active: PolicySet::new(),
            shipped: ArcSwap::default(),
            shadows: ArcSwap::default(),
            applied: Mutex::default(),
            reloading: tokio::sync::Mutex::default(),
            decisions: DecisionLog::spawn(store.clone()),
            store,
        };
        runtime.load_shipped(dir).await?;
        runtime.reload().await?;
        Ok(runtime)
    }

    /// The runtime with the engine's default limits (what `serve` uses).
    pub async fn with_default_limits(
        store: Store,
        clock: Arc<dyn Clock>,
        dir: &Path,
    ) -> anyhow::Result<Arc<PolicyRuntime>> {
        let engine = PolicyEngine::new(pix_policy::PolicyLimits::default())?;
        Ok(Arc::new(PolicyRuntime::start(engine, store, clock, dir).await?))
    }

    /// (Re)reads `dir/manifest.json`: the fallback component of each kind.
    pub async fn load_shipped(&self, dir: &Path) -> anyhow::Result<()> {
        let entries = pix_policy::load_manifest(&self.engine, dir)
            .with_context(|| format!("loading policies from {}", dir.display()))?;
        let mut shipped = HashMap::new();
        for (entry, policy) in entries {
            let bytes = std::fs::read(dir.join(&entry.file))?;
            let kinds: Vec<String> = policy.kinds().iter().map(|k| k.as_str().to_owned()).collect();
            let limits = super::admin::stored_limits(&entry.limits);
            self.store
                .put_policy_component(policy.sha256(), &entry.name, &kinds, &bytes, &limits, self.clock.now())
                .await?;
            // A single-kind component is that kind's fallback; `institution` bundles don't override them.
            if let [kind] = policy.kinds() {
                shipped.insert(*kind, policy);
            }
        }
        for kind in PolicyKind::ALL {
            if !shipped.contains_key(&kind) {
                anyhow::bail!("{} has no shipped policy for {kind}", dir.display());
            }
        }
        self.shipped.store(Arc::new(shipped));
        Ok(())
    }

    /// Applies the bindings and shadows stored in the database.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let bindings = self.store.active_policy_bindings().await?;
        let bound: HashSet<(String, PolicyKind)> =
            bindings.iter().filter_map(|b| Some((slot(b.tenant_id), PolicyKind::parse(&b.kind)?))).collect();
        // Slots whose binding was removed (rollback of a first activation) fall back again.
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).retain(|key, _| {
            let keep = bound.contains(key);
            if !keep {
                self.active.deactivate(&key.0, key.1);
                tracing::info!(tenant = %key.0, kind = %key.1, "policy binding removed; falling back");
            }
            keep
        });
        for binding in bindings {
            let Some(kind) = PolicyKind::parse(&binding.kind) else { continue };
            let key = (slot(binding.tenant_id), kind);
            let wanted = (binding.sha256.clone(), binding.params.clone());
            if self.applied.lock().unwrap_or_else(|p| p.into_inner()).get(&key) == Some(&wanted) {
                continue;
            }
            let started = Instant::now();
            let policy = self.load_stored(&binding.sha256, &binding.params).await?;
            self.active.activate(&key.0, kind, policy)?;
            let load_ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::info!(tenant = %key.0, %kind, sha256 = %binding.sha256, load_ms, "policy active");
            self.applied.lock().unwrap_or_else(|p| p.into_inner()).insert(key, wanted);
        }
        let mut shadows = HashMap::new();
        for shadow in self.store.policy_shadows().await? {
            let Some(kind) = PolicyKind::parse(&shadow.kind) else { continue };
            shadows.insert((slot(shadow.tenant_id), kind), self.load_stored(&shadow.sha256, &shadow.params).await?);
        }
        self.shadows.store(Arc::new(shadows));
        Ok(())
    }

    /// A stored component with parameters, validated (conforms, within the limits it declared at
    /// upload) by the engine. Its compiled code comes from this process's cache, else from the
    /// artifact stored for it and this engine (milliseconds), else it is compiled (tens of
    /// milliseconds for Rust, seconds for an interpreter) and the artifact stored for the next
    /// instance. The engine work runs on a blocking thread, off the request workers.
    pub async fn load_stored(&self, sha256: &str, params: &serde_json::Value) -> anyhow::Result<LoadedPolicy> {
        let (meta, bytes) = self
            .store
            .policy_component(sha256)
            .await?
            .with_context(|| format!("policy component {sha256} is not in the registry"))?;
        let params = super::params_from_json(params).map_err(|e| anyhow::anyhow!("policy params: {}", e.0.message))?;
        let tag = self.engine.artifact_tag().to_owned();
        let stored = match self.store.policy_artifact(sha256, &tag).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(%sha256, error = %e, "reading the compiled policy failed; compiling it");
                None
            }
        };
        let engine = self.engine.clone();
        let owned_sha = sha256.to_owned();
        let limits = super::admin::component_limits(&meta.limits);
        let (policy, fresh) = tokio::task::spawn_blocking(move || -> Result<_, PolicyError> {
            let artifact = stored.as_deref().map(|code| Artifact { sha256: &owned_sha, code });
            let (policy, source) = engine.load_with_artifact(&bytes, artifact, limits)?;
            // Compiled here: store the code for the other instances (and this one's restarts).
            let fresh = match source {
                CodeSource::Compiled => engine.artifact(&policy).ok(),
                CodeSource::Cached | CodeSource::Deserialized => None,
            };
            let policy = if params.is_empty() { policy } else { engine.with_params(&policy, params)? };
            Ok((policy, fresh))
        })
        .await
        .context("loading a policy component panicked")??;
        if let Some(artifact) = fresh {
            self.store_artifact(sha256, &artifact).await;
        }
        Ok(policy)
    }

    /// Stores the compiled code of a component this engine loaded (a failure only costs the other
    /// instances a compile).
    pub async fn store_artifact(&self, sha256: &str, artifact: &[u8]) {
        let tag = self.engine.artifact_tag();
        if let Err(e) = self.store.put_policy_artifact(sha256, tag, artifact, self.clock.now()).await {
            tracing::warn!(%sha256, error = %e, "storing the compiled policy failed");
        }
    }

    /// The policy deciding `kind` for `tenant` right now.
    pub fn policy_for(&self, tenant: Uuid, kind: PolicyKind) -> LoadedPolicy {
        self.active
            .active(&slot(Some(tenant)), kind)
            .or_else(|| self.active.active("", kind))
            .or_else(|| self.shipped.load().get(&kind).cloned())
            .expect("load_shipped guarantees a fallback for every kind")
    }

    /// The policy deciding `kind` for tenants without a binding of their own: the default
    /// binding's, else the shipped component.
    pub fn default_policy(&self, kind: PolicyKind) -> LoadedPolicy {
        self.active
            .active("", kind)
            .or_else(|| self.shipped.load().get(&kind).cloned())
            .expect("load_shipped guarantees a fallback for every kind")
    }

    /// Decides with the tenant's policy (fail-safe on any policy failure), runs the shadow
    /// candidate beside it without affecting the answer, and records the decision.
    /// Returns the answer and the sha256 of the component that gave it.
    pub async fn decide<K: Kind>(&self, tenant: Uuid, input: &K::Input) -> (K::Output, String) {
        self.decide_checked::<K>(tenant, input, |_| Ok(())).await
    }

    /// [`Self::decide`] with a tenant-specific `check` on the policy's answer (its transfer
    /// limits, see `pix_app::transfers::limits::fee_within_limits`). An answer that fails the check is
    /// treated exactly like an invalid answer: the kind's fail-safe applies, the failure is logged
    /// and counted (`pix_policy_errors_total{error="invalid_output"}`) and the decision log
    /// records `failsafe:invalid_output`. The fail-safe itself is not the policy's to break, so
    /// if it fails the check too (a cap below the default fee table) it still stands, with an
    /// error in the log for the operator; callers that must refuse then re-apply the check.
    pub async fn decide_checked<K: Kind>(
        &self,
        tenant: Uuid,
        input: &K::Input,
        check: impl Fn(&K::Output) -> Result<(), String> + Send + Sync,
    ) -> (K::Output, String) {
        let policy = self.policy_for(tenant, K::KIND);
        let started = Instant::now();
        let (output, outcome) = K::or_failsafe_checked(&self.engine, &policy, input, &check);
        let duration_us = started.elapsed().as_micros() as i64;
        if matches!(outcome, Outcome::FailSafe(_))
            && let Err(reason) = check(&output)
        {
            tracing::error!(%tenant, kind = %K::KIND, %reason, "the fail-safe answer also breaks the tenant's limits");
        }
        let output_json = serde_json::to_value(&output).unwrap_or_default();
        let shadow = self.shadows.load().get(&(slot(Some(tenant)), K::KIND)).cloned();
        let shadow = shadow.map(|candidate| {
            let answer = match K::decide(&self.engine, &candidate, input) {
                Ok(out) => serde_json::to_value(&out).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e.class() }),
            };
            let agrees = answer == output_json;
            metrics::counter!("pix_policy_shadow_total", "kind" => K::KIND.as_str(), "agrees" => agrees.to_string())
                .increment(1);
            (candidate.sha256().to_owned(), answer, agrees)
        });
        let input_json = serde_json::to_value(input).unwrap_or_default();
        let record = Decision {
            id: 0,
            tenant_id: tenant,
            kind: K::KIND.as_str().to_owned(),
            sha256: policy.sha256().to_owned(),
            input_sha256: hex::encode(Sha256::digest(input_json.to_string().as_bytes())),
            input: input_json,
            output: output_json,
            outcome: match &outcome {
                Outcome::Policy => "policy".to_owned(),
                Outcome::FailSafe(e) => format!("failsafe:{}", e.class()),
            },
            duration_us,
            shadow_sha256: shadow.as_ref().map(|s| s.0.clone()),
            shadow_agrees: shadow.as_ref().map(|s| s.2),
            shadow_output: shadow.map(|s| s.1),
            decided_at: self.clock.now(),
        };
        self.decisions.record(record).await;
        (output, policy.sha256().to_owned())
    }

    /// The account the tenant's fee fail-safe posts to (its fee binding's `fee-account`
    /// parameter, else the default): always allowed by its transfer limits.
    pub fn default_fee_account(&self, tenant: Uuid) -> String {
        pix_policy::native::fee_account(self.policy_for(tenant, PolicyKind::Fee).params()).to_owned()
    }

    /// Waits until every decision taken so far is in the database (before reading the log, and
    /// on shutdown).
    pub async fn flush_decisions(&self) {
        self.decisions.flush().await;
    }

    /// Runs `candidate` over recorded decisions of its kind and compares with what was answered.
    pub fn replay<K: Kind>(&self, candidate: &LoadedPolicy, decisions: &[Decision]) -> ReplayReport {
        let mut report = ReplayReport::default();
        for decision in decisions {
            report.replayed += 1;
            let answer = match serde_json::from_value::<K::Input>(decision.input.clone()) {
                Err(e) => serde_json::json!({ "error": format!("unreadable recorded input: {e}") }),
                Ok(input) => match K::decide(&self.engine, candidate, &input) {
                    Ok(out) => serde_json::to_value(&out).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e.class() }),
                },
            };
            if answer.get("error").is_some() {
                report.errors += 1;
            }
            if answer == decision.output {
                report.same += 1;
            } else {
                report.different += 1;
                if report.differences.len() < 20 {
                    report.differences.push(ReplayDifference {
                        decision_id: decision.id,
                        input: decision.input.clone(),
                        recorded: decision.output.clone(),
                        candidate: answer,
                    });
                }
            }
        }
        report
    }
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub replayed: u64,
    pub same: u64,
    pub different: u64,
    /// Candidate failures (counted in `different` too).
    pub errors: u64,
    /// Up to 20 examples.
    pub differences: Vec<ReplayDifference>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayDifference {
    pub decision_id: i64,
    pub input: serde_json::Value,
    pub recorded: serde_json::Value,
    pub candidate: serde_json::Value,
}
