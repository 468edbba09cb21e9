//! Admin API of the policy registry (`/v1/admin/policies…`): upload with validation, activate
//! and roll back per (tenant, kind), shadow runs with a disagreement summary, and replay.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use pix_core::error::ErrorCode;
use pix_policy::{LoadedPolicy, PolicyEngine, PolicyKind};
use pix_store::policies::{Binding, ComponentMeta, Decision};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::runtime::{Cashin, Fee, Fraud, RefundSplit, ReplayReport};
use super::{params_from_json, parse_kind};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, list))
        .routes(routes!(get_component))
        .routes(routes!(activate))
        .routes(routes!(rollback))
        .routes(routes!(bindings))
        .routes(routes!(start_shadow, stop_shadow))
        .routes(routes!(shadow_summary))
        .routes(routes!(replay))
}

/// Uploaded components are at most this large (the shipped ones are ~60 KiB).
const MAX_COMPONENT: usize = 8 << 20;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The decision the component must implement: fee, refund-split, cashin-acceptance, fraud-triage.
    pub kind: String,
    /// A label for operators.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    #[serde(flatten)]
    pub component: ComponentView,
    /// False when these exact bytes were already in the registry.
    pub created: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentView {
    pub sha256: String,
    pub name: String,
    pub kinds: Vec<String>,
    pub size_bytes: i64,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

impl From<ComponentMeta> for ComponentView {
    fn from(m: ComponentMeta) -> Self {
        ComponentView {
            sha256: m.sha256,
            name: m.name,
            kinds: m.kinds,
            size_bytes: m.size_bytes,
            uploaded_at: m.uploaded_at,
        }
    }
}

fn rejected(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::PolicyRejected, e.to_string())
}

/// What an upload checks, also run offline by `pix-host policy validate`: the size, that the
/// component compiles, imports nothing but stdio, exports the world of `kind`, and passes the
/// conformance fixtures of every kind it exports within the engine's limits. Blocks for the
/// compile (tens of milliseconds on a cache miss).
pub fn validate_component(engine: &PolicyEngine, kind: PolicyKind, bytes: &[u8]) -> ApiResult<LoadedPolicy> {
    if bytes.is_empty() || bytes.len() > MAX_COMPONENT {
        return Err(ApiError::new(ErrorCode::InvalidField, "the body must be a component of at most 8 MiB"));
    }
    let policy = engine.load(bytes).map_err(rejected)?;
    if !policy.implements(kind) {
        return Err(rejected(format!("the component does not export the {kind} decision")));
    }
    Ok(policy)
}

/// Upload a component (`application/wasm`). It must compile, import nothing but stdio, export
/// the world of `kind` and pass that kind's conformance fixtures within the limits.
#[utoipa::path(post, path = "/v1/admin/policies", tag = "Policies", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    security(("admin_token" = [])),
    responses((status = 201, body = Uploaded), (status = 200, body = Uploaded), (status = 400, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn upload(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    let kind = parse_kind(&query.kind)?;
    let engine = &state.policies.engine;
    let policy = tokio::task::block_in_place(|| validate_component(engine, kind, &body))?;
    let kinds: Vec<String> = policy.kinds().iter().map(|k| k.as_str().to_owned()).collect();
    let name = query.name.unwrap_or_else(|| format!("{kind}-{}", &policy.sha256()[..12]));
    let created = state.store.put_policy_component(policy.sha256(), &name, &kinds, &body, state.clock.now()).await?;
    let (meta, _) =
        state.store.policy_component(policy.sha256()).await?.ok_or_else(|| ApiError::internal("lost upload"))?;
    tracing::info!(sha256 = %meta.sha256, %kind, created, "policy component uploaded");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Uploaded { component: meta.into(), created })))
}

/// Every component in the registry.
#[utoipa::path(get, path = "/v1/admin/policies", tag = "Policies", security(("admin_token" = [])),
    responses((status = 200, body = Vec<ComponentView>)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<ComponentView>>> {
    Ok(Json(state.store.list_policy_components().await?.into_iter().map(ComponentView::from).collect()))
}

/// One component.
#[utoipa::path(get, path = "/v1/admin/policies/{sha256}", tag = "Policies", params(("sha256" = String, Path)),
    security(("admin_token" = [])), responses((status = 200, body = ComponentView), (status = 404, body = ErrorResponse)))]
async fn get_component(
    State(state): State<AppState>,
    AppPath(sha256): AppPath<String>,
) -> ApiResult<Json<ComponentView>> {
    let (meta, _) = state.store.policy_component(&sha256).await?.ok_or_else(not_found)?;
    Ok(Json(meta.into()))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "policy component not found")
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Slot {
    /// fee, refund-split, cashin-acceptance or fraud-triage.
    pub kind: String,
    /// The tenant; absent means the default for tenants without their own binding.
    pub tenant_id: Option<Uuid>,
    /// Parameters passed to the policy on every call, e.g. `{"fee-account": "@tarifas"}`.
    #[serde(default)]
    pub params: serde_json::Value,
}

impl Slot {
    async fn check(&self, state: &AppState) -> ApiResult<PolicyKind> {
        let kind = parse_kind(&self.kind)?;
        if let Some(t) = self.tenant_id
            && state.store.tenant(t).await?.is_none()
        {
            return Err(ApiError::new(ErrorCode::ResourceNotFound, "tenant not found"));
        }
        Ok(kind)
    }
}

/// Loads `sha256` with the slot's params, checking it implements the kind and still conforms.
async fn candidate(
    state: &AppState,
    sha256: &str,
    kind: PolicyKind,
    params: &serde_json::Value,
) -> ApiResult<LoadedPolicy> {
    params_from_json(params)?;
    if state.store.policy_component(sha256).await?.is_none() {
        return Err(not_found());
    }
    let policy = state.policies.load_stored(sha256, params).await.map_err(rejected)?;
    if !policy.implements(kind) {
        return Err(rejected(format!("the component does not export the {kind} decision")));
    }
    Ok(policy)
}

async fn reload(state: &AppState) -> ApiResult<()> {
    state.policies.reload().await.map_err(ApiError::internal)
}

/// Make a component the active policy of (tenant, kind). New decisions use it at once (on every
/// instance); decisions in flight finish on the previous version.
#[utoipa::path(post, path = "/v1/admin/policies/{sha256}/activate", tag = "Policies", params(("sha256" = String, Path)),
    request_body = Slot, security(("admin_token" = [])),
    responses((status = 200, body = Object), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
async fn activate(
    State(state): State<AppState>,
    AppPath(sha256): AppPath<String>,
    AppJson(slot): AppJson<Slot>,
) -> ApiResult<Json<Binding>> {
    let kind = slot.check(&state).await?;
    candidate(&state, &sha256, kind, &slot.params).await?;
    let binding =
        state.store.activate_policy(slot.tenant_id, kind.as_str(), &sha256, &slot.params, state.clock.now()).await?;
    reload(&state).await?;
    metrics::counter!("pix_policy_activations_total", "kind" => kind.as_str(), "action" => "activate").increment(1);
    tracing::info!(%sha256, %kind, tenant = ?slot.tenant_id, "policy activated");
    Ok(Json(binding))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlotRef {
    pub kind: String,
    pub tenant_id: Option<Uuid>,
}

/// Return (tenant, kind) to the version the current one replaced. Rolling back the slot's first
/// activation removes its binding (the answer has `removed: true`): the tenant falls back to the
/// default binding, and the default to the shipped component. 409 when nothing is active.
#[utoipa::path(post, path = "/v1/admin/policy-bindings/rollback", tag = "Policies", request_body = SlotRef,
    security(("admin_token" = [])),
    responses((status = 200, body = Object), (status = 409, body = ErrorResponse)))]
async fn rollback(State(state): State<AppState>, AppJson(slot): AppJson<SlotRef>) -> ApiResult<Json<Binding>> {
    let kind = parse_kind(&slot.kind)?;
    let binding = match state.store.rollback_policy(slot.tenant_id, kind.as_str(), state.clock.now()).await {
        Ok(b) => b,
        Err(pix_store::StoreError::Conflict(m)) => return Err(ApiError::new(ErrorCode::PolicyNoEarlierVersion, m)),
        Err(e) => return Err(e.into()),
    };
    reload(&state).await?;
    metrics::counter!("pix_policy_activations_total", "kind" => kind.as_str(), "action" => "rollback").increment(1);
    tracing::info!(sha256 = %binding.sha256, %kind, tenant = ?slot.tenant_id, removed = binding.removed, "policy rolled back");
    Ok(Json(binding))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindingsQuery {
    pub kind: String,
    pub tenant_id: Option<Uuid>,
}

/// The binding history of (tenant, kind), newest (active) first.
#[utoipa::path(get, path = "/v1/admin/policy-bindings", tag = "Policies", params(BindingsQuery),
    security(("admin_token" = [])), responses((status = 200, body = Vec<Object>)))]
async fn bindings(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<BindingsQuery>,
) -> ApiResult<Json<Vec<Binding>>> {
    let kind = parse_kind(&q.kind)?;
    Ok(Json(state.store.policy_binding_history(q.tenant_id, kind.as_str(), 100).await?))
}

/// Run a component in shadow beside the active policy of (tenant, kind): it sees every live
/// decision, never affects the answer, and disagreements are recorded.
#[utoipa::path(put, path = "/v1/admin/policies/{sha256}/shadow", tag = "Policies", params(("sha256" = String, Path)),
    request_body = Slot, security(("admin_token" = [])),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
async fn start_shadow(
    State(state): State<AppState>,
    AppPath(sha256): AppPath<String>,
    AppJson(slot): AppJson<Slot>,
) -> ApiResult<StatusCode> {
    let kind = slot.check(&state).await?;
    candidate(&state, &sha256, kind, &slot.params).await?;
    state.store.set_policy_shadow(slot.tenant_id, kind.as_str(), &sha256, &slot.params, state.clock.now()).await?;
    reload(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop the shadow run of (tenant, kind) on this component.
#[utoipa::path(delete, path = "/v1/admin/policies/{sha256}/shadow", tag = "Policies", params(("sha256" = String, Path), BindingsQuery),
    security(("admin_token" = [])), responses((status = 204), (status = 404, body = ErrorResponse)))]
async fn stop_shadow(
    State(state): State<AppState>,
    AppPath(_sha256): AppPath<String>,
    AppQuery(q): AppQuery<BindingsQuery>,
) -> ApiResult<StatusCode> {
    let kind = parse_kind(&q.kind)?;
    if !state.store.clear_policy_shadow(q.tenant_id, kind.as_str()).await? {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "no shadow runs for this tenant and kind"));
    }
    reload(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DecisionsQuery {
    pub kind: String,
    pub tenant_id: Uuid,
    /// How many recent decisions to look at (1–10000, default 1000).
    pub limit: Option<i64>,
}

impl DecisionsQuery {
    async fn decisions(&self, state: &AppState) -> ApiResult<(PolicyKind, Vec<Decision>)> {
        let kind = parse_kind(&self.kind)?;
        let limit = self.limit.unwrap_or(1000);
        if !(1..=10_000).contains(&limit) {
            return Err(ApiError::new(ErrorCode::InvalidField, "limit must be between 1 and 10000"));
        }
        // Decisions are written in batches; read this process's own ones too.
        state.policies.flush_decisions().await;
        Ok((kind, state.store.recent_policy_decisions(self.tenant_id, kind.as_str(), limit).await?))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShadowSummary {
    /// Recent decisions that had a shadow answer.
    pub compared: u64,
    pub agreed: u64,
    pub disagreed: u64,
    /// Up to 20 recent disagreements.
    #[schema(value_type = Vec<Object>)]
    pub disagreements: Vec<Decision>,
}

/// How the shadow candidate compared with the active policy on recent live decisions.
#[utoipa::path(get, path = "/v1/admin/policy-shadows/summary", tag = "Policies", params(DecisionsQuery),
    security(("admin_token" = [])), responses((status = 200, body = ShadowSummary)))]
async fn shadow_summary(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<DecisionsQuery>,
) -> ApiResult<Json<ShadowSummary>> {
    let (_, decisions) = q.decisions(&state).await?;
    let mut summary = ShadowSummary { compared: 0, agreed: 0, disagreed: 0, disagreements: Vec::new() };
    for d in decisions {
        match d.shadow_agrees {
            None => {}
            Some(true) => (summary.compared, summary.agreed) = (summary.compared + 1, summary.agreed + 1),
            Some(false) => {
                (summary.compared, summary.disagreed) = (summary.compared + 1, summary.disagreed + 1);
                if summary.disagreements.len() < 20 {
                    summary.disagreements.push(d);
                }
            }
        }
    }
    Ok(Json(summary))
}

/// Replay a candidate over the last N recorded decisions of (tenant, kind) and report differences.
#[utoipa::path(post, path = "/v1/admin/policies/{sha256}/replay", tag = "Policies", params(("sha256" = String, Path), DecisionsQuery),
    security(("admin_token" = [])), responses((status = 200, body = ReplayReport), (status = 404, body = ErrorResponse)))]
async fn replay(
    State(state): State<AppState>,
    AppPath(sha256): AppPath<String>,
    AppQuery(q): AppQuery<DecisionsQuery>,
) -> ApiResult<Json<ReplayReport>> {
    let (kind, decisions) = q.decisions(&state).await?;
    let policy = candidate(&state, &sha256, kind, &serde_json::Value::Null).await?;
    let runtime = &state.policies;
    let report = tokio::task::block_in_place(|| match kind {
        PolicyKind::Fee => runtime.replay::<Fee>(&policy, &decisions),
        PolicyKind::RefundSplit => runtime.replay::<RefundSplit>(&policy, &decisions),
        PolicyKind::CashinAcceptance => runtime.replay::<Cashin>(&policy, &decisions),
        PolicyKind::FraudTriage => runtime.replay::<Fraud>(&policy, &decisions),
    });
    Ok(Json(report))
}
