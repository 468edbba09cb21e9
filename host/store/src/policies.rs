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
    pub uploaded_at: DateTime<Utc>,
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

fn slot(tenant: Option<Uuid>) -> String {
    tenant.map(|t| t.to_string()).unwrap_or_default()
}

fn tenant_of(slot: &str) -> StoreResult<Option<Uuid>> {
    if slot.is_empty() { Ok(None) } else { crate::parse_uuid(slot).map(Some) }
}

type BindingRow = (i64, String, String, String, Json<serde_json::Value>, String, Option<i64>, DateTime<Utc>);

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
        created_at: r.7,
    })
}

const BINDING: &str = "id, tenant_id, kind, sha256, params, action, previous_id, created_at";

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

impl Store {
    /// Stores a validated component; `false` when those exact bytes were already stored.
    pub async fn put_policy_component(
        &self,
        sha256: &str,
        name: &str,
        kinds: &[String],
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let inserted = on_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO policy_components (sha256, name, kinds, size_bytes, component, uploaded_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(name)
            .bind(Json(kinds))
            .bind(bytes.len() as i64)
            .bind(bytes)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(inserted == 1)
    }

    pub async fn policy_component(&self, sha256: &str) -> StoreResult<Option<(ComponentMeta, Vec<u8>)>> {
        type Row = (String, String, Json<Vec<String>>, i64, Vec<u8>, DateTime<Utc>);
        let row: Option<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT sha256, name, kinds, size_bytes, component, uploaded_at FROM policy_components WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row
            .map(|r| (ComponentMeta { sha256: r.0, name: r.1, kinds: r.2.0, size_bytes: r.3, uploaded_at: r.5 }, r.4)))
    }

    pub async fn list_policy_components(&self) -> StoreResult<Vec<ComponentMeta>> {
        type Row = (String, String, Json<Vec<String>>, i64, DateTime<Utc>);
        let rows: Vec<Row> = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT sha256, name, kinds, size_bytes, uploaded_at FROM policy_components ORDER BY uploaded_at, sha256",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| ComponentMeta { sha256: r.0, name: r.1, kinds: r.2.0, size_bytes: r.3, uploaded_at: r.4 })
            .collect())
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

    /// Makes `sha256` (with `params`) the active policy of (tenant, kind).
    pub async fn activate_policy(
        &self,
        tenant: Option<Uuid>,
        kind: &str,
        sha256: &str,
        params: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<Binding> {
        // After a removal nothing is active: rolling this activation back removes it again.
        let current = self.current_policy_binding(tenant, kind).await?.filter(|b| !b.removed);
        self.insert_binding(tenant, kind, sha256, params, "activate", current.map(|b| b.id), now).await
    }

    /// Returns (tenant, kind) to the binding the current one replaced; rolling back the first
    /// activation removes the binding (the returned row has `removed`), so the slot falls back.
    /// `Conflict` when nothing is active.
    pub async fn rollback_policy(&self, tenant: Option<Uuid>, kind: &str, now: DateTime<Utc>) -> StoreResult<Binding> {
        let current = self
            .current_policy_binding(tenant, kind)
            .await?
            .filter(|b| !b.removed)
            .ok_or_else(|| StoreError::Conflict("nothing is active for this tenant and kind".into()))?;
        let Some(previous_id) = current.previous_id else {
            let removal = serde_json::json!({ REMOVED: true });
            return self.insert_binding(tenant, kind, &current.sha256, &removal, "rollback", None, now).await;
        };
        let sql = format!("SELECT {BINDING} FROM policy_bindings WHERE id = $1");
        let previous: BindingRow = on_pool!(self.db(), pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(previous_id).fetch_one(pool).await
        })?;
        let previous = binding(previous)?;
        self.insert_binding(tenant, kind, &previous.sha256, &previous.params, "rollback", previous.previous_id, now)
            .await
    }

    #[allow(clippy::too_many_arguments, reason = "one row's columns")]
    async fn insert_binding(
        &self,
        tenant: Option<Uuid>,
        kind: &str,
        sha256: &str,
        params: &serde_json::Value,
        action: &str,
        previous_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> StoreResult<Binding> {
        let sql = format!(
            "INSERT INTO policy_bindings (tenant_id, kind, sha256, params, action, previous_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {BINDING}"
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
        let (bindings, shadows, latest): (Option<i64>, i64, Option<String>) = on_pool!(self.db(), pool => {
            sqlx::query_as(
                "SELECT (SELECT MAX(id) FROM policy_bindings), (SELECT COUNT(*) FROM policy_shadows),
                        (SELECT MAX(sha256 || tenant_id || kind) FROM policy_shadows)",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(format!("{}:{shadows}:{}", bindings.unwrap_or(0), latest.unwrap_or_default()))
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
            sqlx::query_as(
                "SELECT id, tenant_id, kind, sha256, input_sha256, input, output, outcome, duration_us, shadow_sha256,
                        shadow_output, shadow_agrees, decided_at
                 FROM policy_decisions WHERE tenant_id = $1 AND kind = $2 ORDER BY id DESC LIMIT $3",
            )
            .bind(tenant.to_string())
            .bind(kind)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|r| {
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
            })
            .collect()
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
