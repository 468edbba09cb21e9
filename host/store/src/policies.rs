//! The policy registry's storage: components by content hash, an append-only log of which
//! component each tenant uses per decision kind (rollback walks it back), shadow candidates,
//! and the decision log. Tenant `None` is the default binding for tenants without their own.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, on_pool, on_tx};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentMeta {
    pub sha256: String,
    pub name: String,
    pub kinds: Vec<String>,
    pub size_bytes: i64,
    /// What the component declared at upload.
    pub limits: PolicyLimits,
    pub uploaded_at: DateTime<Utc>,
}

/// Memory, fuel and deadline of policy decisions: what a component declared at upload (`None`:
/// the engine default), or a tenant's maxima (`None`: the host maximum). The policy engine
/// checks the values; this only stores them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PolicyLimits {
    pub memory_mib: Option<i64>,
    pub fuel: Option<i64>,
    pub deadline_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub id: i64,
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub sha256: String,
    pub params: serde_json::Value,
    pub action: String,
    pub previous_id: Option<i64>,
    /// True for the row that rolled back a slot's first activation: the slot has no binding
    /// (it falls back to the default binding, then the shipped component); `sha256` is the
    /// component that was removed.
    pub removed: bool,
    /// Who made the change: a non-secret label of the credential (`admin:<credential id>`, with
    /// ` via console` when made there); `unrecorded` for changes made before it was kept.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shadow {
    pub tenant_id: Option<Uuid>,
    pub kind: String,
    pub sha256: String,
    pub params: serde_json::Value,
    pub started_at: DateTime<Utc>,
}

/// One decision as taken (and, with a shadow running, what the candidate would have said).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub id: i64,
    pub tenant_id: Uuid,
    pub kind: String,
    pub sha256: String,
    pub input_sha256: String,
    pub input: serde_json::Value,
    pub output: serde_json::Value,
    /// `policy`, or `failsafe:<error class>`.
    pub outcome: String,
    pub duration_us: i64,
    pub shadow_sha256: Option<String>,
    pub shadow_output: Option<serde_json::Value>,
    pub shadow_agrees: Option<bool>,
    pub decided_at: DateTime<Utc>,
}

/// The columns of a new `policy_bindings` row besides who and when.
struct NewBinding<'a> {
    tenant: Option<Uuid>,
    kind: &'a str,
    sha256: &'a str,
    params: &'a serde_json::Value,
    action: &'a str,
    previous_id: Option<i64>,
}

fn slot(tenant: Option<Uuid>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

fn tenant_of(slot: &str) -> StoreResult<Option<Uuid>> {
    if slot.is_empty() { Ok(None) } else { crate::parse_uuid(slot).map(Some) }
}

type BindingRow = (i64, String, String, String, Json<serde_json::Value>, String, Option<i64>, String, DateTime<Utc>);

/// The `params` of a removal row. The schema has no "removed" action, and a boolean can never be
/// a real policy parameter (the API accepts integers and strings only), so this cannot clash.
const REMOVED: &str = "pix:removed";

fn is_removal(params: &serde_json::Value) -> bool {
    params.get(REMOVED) == Some(&serde_json::Value::Bool(true))
}

fn binding(r: BindingRow) -> StoreResult<Binding> {
    let removed = is_removal(&r.4.0);
    Ok(Binding {
        id: r.0,
        tenant_id: tenant_of(&r.1)?,
        kind: r.2,
        sha256: r.3,
        params: if removed { serde_json::Value::Null } else { r.4.0 },
        action: r.5,
        previous_id: r.6,
        removed,
        actor: r.7,
        created_at: r.8,
    })
}

const BINDING: &str = "id, tenant_id, kind, sha256, params, action, previous_id, actor, created_at";

const DECISION: &str = "id, tenant_id, kind, sha256, input_sha256, input, output, outcome, duration_us, \
    shadow_sha256, shadow_output, shadow_agrees, decided_at";

fn decision(r: DecisionRow) -> StoreResult<Decision> {
    Ok(Decision {
        id: r.id,
        tenant_id: crate::parse_uuid(&r.tenant_id)?,
        kind: r.kind,
        sha256: r.sha256,
        input_sha256: r.input_sha256,
        input: r.input.0,
        output: r.output.0,
        outcome: r.outcome,
        duration_us: r.duration_us,
        shadow_sha256: r.shadow_sha256,
        shadow_output: r.shadow_output.map(|j| j.0),
        shadow_agrees: r.shadow_agrees,
        decided_at: r.decided_at,
    })
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: i64,
    tenant_id: String,
    kind: String,
    sha256: String,
    input_sha256: String,
    input: Json<serde_json::Value>,
    output: Json<serde_json::Value>,
    outcome: String,
    duration_us: i64,
    shadow_sha256: Option<String>,
    shadow_output: Option<Json<serde_json::Value>>,
    shadow_agrees: Option<bool>,
    decided_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ComponentRow {
    sha256: String,
    name: String,
    kinds: Json<Vec<String>>,
    size_bytes: i64,
    #[sqlx(flatten)]
    limits: PolicyLimits,
    uploaded_at: DateTime<Utc>,
}

impl From<ComponentRow> for ComponentMeta {
    fn from(r: ComponentRow) -> Self {
        ComponentMeta {
            sha256: r.sha256,
            name: r.name,
            kinds: r.kinds.0,
            size_bytes: r.size_bytes,
            limits: r.limits,
            uploaded_at: r.uploaded_at,
        }
    }
}

const COMPONENT: &str = "sha256, name, kinds, size_bytes, memory_mib, fuel, deadline_ms, uploaded_at";

impl Store {
    /// Stores a validated component with the limits it declared; `false` when those exact bytes
    /// were already stored with the same limits. A component's limits never change (decisions
    /// already taken ran under them): the same bytes with other limits are a `Conflict`.
    pub async fn put_policy_component(
        &self,
        sha256: &str,
        name: &str,
        kinds: &[String],
        bytes: &[u8],
        limits: &PolicyLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let inserted = on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO policy_components
                   (sha256, name, kinds, size_bytes, component, memory_mib, fuel, deadline_ms, uploaded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(name)
            .bind(Json(kinds))
            .bind(bytes.len() as i64)
            .bind(bytes)
            .bind(limits.memory_mib)
            .bind(limits.fuel)
            .bind(limits.deadline_ms)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted == 1 {
            return Ok(true);
        }
        match self.policy_component_meta(sha256).await? {
            Some(stored) if stored.limits != *limits => Err(StoreError::Conflict(format!(
                "this component is already stored with other limits ({:?})",
                stored.limits
            ))),
            _ => Ok(false),
        }
    }

    pub async fn policy_component(&self, sha256: &str) -> StoreResult<Option<(ComponentMeta, Vec<u8>)>> {
        let Some(meta) = self.policy_component_meta(sha256).await? else { return Ok(None) };
        let (bytes,): (Vec<u8>,) = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT component FROM policy_components WHERE sha256 = $1")
                .bind(sha256)
                .fetch_one(pool)
                .await
        })?;
        Ok(Some((meta, bytes)))
    }

    /// Stores the compiled code of a component for engines with compatibility tag `engine`
    /// (replacing an earlier one: the caller compiled because the stored one was refused). Only
    /// the policy runtime calls this, with what its engine serialized after a successful load.
    pub async fn put_policy_artifact(
        &self,
        sha256: &str,
        engine: &str,
        artifact: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO policy_artifacts (sha256, engine, artifact, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sha256, engine) DO UPDATE SET artifact = excluded.artifact,
                   created_at = excluded.created_at",
            )
            .bind(sha256)
            .bind(engine)
            .bind(artifact)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// The compiled code stored for component `sha256` and engine tag `engine`, if any.
    pub async fn policy_artifact(&self, sha256: &str, engine: &str) -> StoreResult<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT artifact FROM policy_artifacts WHERE sha256 = $1 AND engine = $2")
                .bind(sha256)
                .bind(engine)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|(artifact,)| artifact))
    }

    async fn policy_component_meta(&self, sha256: &str) -> StoreResult<Option<ComponentMeta>> {
        let sql = format!("SELECT {COMPONENT} FROM policy_components WHERE sha256 = $1");
        let row: Option<ComponentRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(sha256).fetch_optional(pool).await
        })?;
        Ok(row.map(ComponentMeta::from))
    }

    pub async fn list_policy_components(&self) -> StoreResult<Vec<ComponentMeta>> {
        let sql = format!("SELECT {COMPONENT} FROM policy_components ORDER BY uploaded_at, sha256");
        let rows: Vec<ComponentRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(ComponentMeta::from).collect())
    }

    /// The tenant's maxima for the limits of the components bound to it (all `None` when unset).
    pub async fn tenant_policy_limits(&self, tenant: Uuid) -> StoreResult<PolicyLimits> {
        let row: Option<PolicyLimits> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT memory_mib, fuel, deadline_ms FROM tenant_policy_limits WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.unwrap_or_default())
    }

    /// Replaces the tenant's maxima (the API checks them against the host's). Unknown tenant:
    /// `NotFound`.
    pub async fn set_tenant_policy_limits(
        &self,
        tenant: Uuid,
        limits: &PolicyLimits,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if self.tenant(tenant).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO tenant_policy_limits (tenant_id, memory_mib, fuel, deadline_ms, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id) DO UPDATE SET memory_mib = $2, fuel = $3, deadline_ms = $4, updated_at = $5",
            )
            .bind(tenant.to_string())
            .bind(limits.memory_mib)
            .bind(limits.fuel)
            .bind(limits.deadline_ms)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    pub async fn current_policy_binding(&self, tenant: Option<Uuid>, kind: &str) -> StoreResult<Option<Binding>> {
        let sql = format!(
            "SELECT {BINDING} FROM policy_bindings WHERE tenant_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1"
        );
        let row: Option<BindingRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(slot(tenant)).bind(kind).fetch_optional(pool).await
        })?;
        row.map(binding).transpose()
    }

    /// Makes `sha256` (with `params`) the active policy of (tenant, kind); `actor` labels who.
    pub async fn activate_policy(
        &self,
        tenant: Option<Uuid>,
        kind: &str,
        sha256: &str,
        params: &serde_json::Value,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Binding> {
        // After a removal nothing is active: rolling this activation back removes it again.
        let current = self.current_policy_binding(tenant, kind).await?.filter(|b| !b.removed);
        let row = NewBinding { tenant, kind, sha256, params, action: "activate", previous_id: current.map(|b| b.id) };
        self.insert_binding(row, actor, now).await
    }

    /// Returns (tenant, kind) to the binding the current one replaced; rolling back the first
    /// activation removes the binding (the returned row has `removed`), so the slot falls back.
    /// `Conflict` when nothing is active.
    pub async fn rollback_policy(
        &self,
        tenant: Option<Uuid>,
        kind: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Binding> {
        let current = self
            .current_policy_binding(tenant, kind)
            .await?
            .filter(|b| !b.removed)
            .ok_or_else(|| StoreError::Conflict("nothing is active for this tenant and kind".into()))?;
        let Some(previous_id) = current.previous_id else {
            let removal = serde_json::json!({ REMOVED: true });
            let row = NewBinding {
                tenant,
                kind,
                sha256: &current.sha256,
                params: &removal,
                action: "rollback",
                previous_id: None,
            };
            return self.insert_binding(row, actor, now).await;
        };
        let sql = format!("SELECT {BINDING} FROM policy_bindings WHERE id = $1");
        let previous: BindingRow = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(previous_id).fetch_one(pool).await
        })?;
        let previous = binding(previous)?;
        let row = NewBinding {
            tenant,
            kind,
            sha256: &previous.sha256,
            params: &previous.params,
            action: "rollback",
            previous_id: previous.previous_id,
        };
        self.insert_binding(row, actor, now).await
    }

    async fn insert_binding(&self, row: NewBinding<'_>, actor: &str, now: DateTime<Utc>) -> StoreResult<Binding> {
        let NewBinding { tenant, kind, sha256, params, action, previous_id } = row;
        let sql = format!(
            "INSERT INTO policy_bindings (tenant_id, kind, sha256, params, action, previous_id, actor, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {BINDING}"
        );
        let mut tx = self.begin().await?;
        let row: BindingRow = on_tx!(&mut tx, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(slot(tenant))
                .bind(kind)
                .bind(sha256)
                .bind(Json(params))
                .bind(action)
                .bind(previous_id)
                .bind(actor)
                .bind(now)
                .fetch_one(conn)
                .await
        })?;
        if let crate::Tx::Postgres(t) = &mut tx {
            // Wakes other instances at commit; they also poll, so a lost notification only delays.
            sqlx::query("SELECT pg_notify('pix_policy_changes', $1)").bind(kind).execute(&mut **t).await?;
        }
        tx.commit().await?;
        binding(row)
    }

    /// The active binding of every (tenant, kind) that has one (removed bindings left out).
    pub async fn active_policy_bindings(&self) -> StoreResult<Vec<Binding>> {
        let sql = format!(
            "SELECT {BINDING} FROM policy_bindings b
             WHERE id = (SELECT MAX(id) FROM policy_bindings o WHERE o.tenant_id = b.tenant_id AND o.kind = b.kind)
             ORDER BY tenant_id, kind"
        );
        let rows: Vec<BindingRow> =
            on_pool!(self.db(), pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(pool).await)?;
        let bindings: Vec<Binding> = rows.into_iter().map(binding).collect::<StoreResult<_>>()?;
        Ok(bindings.into_iter().filter(|b| !b.removed).collect())
    }

    pub async fn policy_binding_history(
        &self,
        tenant: Option<Uuid>,
        kind: &str,
        limit: i64,
    ) -> StoreResult<Vec<Binding>> {
        let sql = format!(
            "SELECT {BINDING} FROM policy_bindings WHERE tenant_id = $1 AND kind = $2 ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<BindingRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(slot(tenant)).bind(kind).bind(limit).fetch_all(pool).await
        })?;
        rows.into_iter().map(binding).collect()
    }

    pub async fn set_policy_shadow(
        &self,
        tenant: Option<Uuid>,
        kind: &str,
        sha256: &str,
        params: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO policy_shadows (tenant_id, kind, sha256, params, started_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET sha256 = $3, params = $4, started_at = $5",
            )
            .bind(slot(tenant))
            .bind(kind)
            .bind(sha256)
            .bind(Json(params))
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.notify_policy_change(kind).await
    }

    pub async fn clear_policy_shadow(&self, tenant: Option<Uuid>, kind: &str) -> StoreResult<bool> {
        let n = on_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM policy_shadows WHERE tenant_id = $1 AND kind = $2")
                .bind(slot(tenant))
                .bind(kind)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        self.notify_policy_change(kind).await?;
        Ok(n == 1)
    }

    async fn notify_policy_change(&self, kind: &str) -> StoreResult<()> {
        if let crate::Db::Postgres(pool) = self.db() {
            sqlx::query("SELECT pg_notify('pix_policy_changes', $1)").bind(kind).execute(pool).await?;
        }
        Ok(())
    }

    pub async fn policy_shadows(&self) -> StoreResult<Vec<Shadow>> {
        type Row = (String, String, String, Json<serde_json::Value>, DateTime<Utc>);
        let rows: Vec<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as("SELECT tenant_id, kind, sha256, params, started_at FROM policy_shadows ORDER BY tenant_id, kind")
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter()
            .map(|r| Ok(Shadow { tenant_id: tenant_of(&r.0)?, kind: r.1, sha256: r.2, params: r.3.0, started_at: r.4 }))
            .collect()
    }

    /// A value that changes whenever bindings or shadows change (the polling fallback).
    pub async fn policy_generation(&self) -> StoreResult<String> {
        let bindings: Option<i64> = on_pool!(self.db(), pool => {
            sqlx::query_scalar("SELECT MAX(id) FROM policy_bindings").fetch_one(pool).await
        })?;
        // Every shadow in full: a shadow's params replaced in place, or one shadow swapped for
        // another, must change the generation too (there are a handful at most).
        let shadows: Vec<String> = self
            .policy_shadows()
            .await?
            .iter()
            .map(|s| format!("{}/{}/{}/{}", slot(s.tenant_id), s.kind, s.sha256, s.params))
            .collect();
        Ok(format!("{}:{}", bindings.unwrap_or(0), shadows.join(",")))
    }

    pub async fn record_policy_decision(&self, d: &Decision) -> StoreResult<()> {
        self.record_policy_decisions(std::slice::from_ref(d)).await
    }

    /// Records many decisions in one transaction (one commit for the batch).
    pub async fn record_policy_decisions(&self, decisions: &[Decision]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for d in decisions {
            on_tx!(&mut tx, c => {
                sqlx::query(
                    "INSERT INTO policy_decisions (tenant_id, kind, sha256, input_sha256, input, output, outcome,
                                                   duration_us, shadow_sha256, shadow_output, shadow_agrees, decided_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(d.tenant_id.to_string())
                .bind(&d.kind)
                .bind(&d.sha256)
                .bind(&d.input_sha256)
                .bind(Json(&d.input))
                .bind(Json(&d.output))
                .bind(&d.outcome)
                .bind(d.duration_us)
                .bind(&d.shadow_sha256)
                .bind(d.shadow_output.as_ref().map(Json))
                .bind(d.shadow_agrees)
                .bind(d.decided_at)
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await
    }

    /// The newest `limit` decisions of (tenant, kind), newest first.
    pub async fn recent_policy_decisions(&self, tenant: Uuid, kind: &str, limit: i64) -> StoreResult<Vec<Decision>> {
        let rows: Vec<DecisionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {DECISION} FROM policy_decisions WHERE tenant_id = $1 AND kind = $2 ORDER BY id DESC LIMIT $3"
            )))
            .bind(tenant.to_string())
            .bind(kind)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(decision).collect()
    }

    /// The decisions of (tenant, kind) taken in `[from, to]`, newest first, at most `limit`.
    pub async fn policy_decisions_between(
        &self,
        tenant: Uuid,
        kind: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Decision>> {
        let rows: Vec<DecisionRow> = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {DECISION} FROM policy_decisions
                 WHERE tenant_id = $1 AND kind = $2 AND decided_at >= $3 AND decided_at <= $4
                 ORDER BY id DESC LIMIT $5"
            )))
            .bind(tenant.to_string())
            .bind(kind)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(decision).collect()
    }

    /// Deletes decisions older than `before` (retention).
    pub async fn purge_policy_decisions(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(on_pool!(self.db(), pool => {
            sqlx::query("DELETE FROM policy_decisions WHERE decided_at < $1")
                .bind(before)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?)
    }
}
