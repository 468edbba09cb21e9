//! Admin API of the policy registry (`/v1/admin/policies…`): upload with validation, activate
//! and roll back per (tenant, kind), shadow runs with a disagreement summary, replay, and the
//! recorded decisions (which `pix-host policy test --from-decisions` turns into fixtures).

use axum::Json;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_policy::{ComponentLimits, LoadedPolicy, PolicyEngine, PolicyError, PolicyKind};
use pix_store::policies::{Binding, ComponentMeta, Decision, PolicyLimits};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::runtime::{Cashin, Fee, Fraud, RefundSplit, ReplayReport};
use super::{params_from_json, parse_kind};
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload, list))
        // Interpreter components (JavaScript, Python) are 11–18 MiB: above the API's body limit.
        // A layer applies to the routes added before it, so only to these.
        .layer(DefaultBodyLimit::max(MAX_COMPONENT))
        .routes(routes!(get_component))
        .routes(routes!(activate))
        .routes(routes!(rollback))
        .routes(routes!(bindings))
        .routes(routes!(start_shadow, stop_shadow))
        .routes(routes!(shadow_summary))
        .routes(routes!(replay))
        .routes(routes!(get_tenant_policy_limits, put_tenant_policy_limits))
        .routes(routes!(recent_decisions))
}

/// Uploaded components are at most this large (Rust ones are ~60 KiB, JavaScript ~12 MiB,
/// Python ~18 MiB).
pub const MAX_COMPONENT: usize = 32 << 20;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The decision the component must implement.
    #[param(pattern = "^(fee|refund-split|cashin-acceptance|fraud-triage)$")]
    pub kind: String,
    /// A label for operators.
    pub name: Option<String>,
    /// Memory cap per instance in MiB (default: the engine's, 16; at most the host maximum).
    pub memory_mib: Option<u32>,
    /// Instruction budget per decision (default 10 000 000; at most the host maximum).
    pub fuel: Option<u64>,
    /// Wall-clock deadline per decision in ms (default 50; at most the host maximum).
    pub deadline_ms: Option<u64>,
}

impl UploadQuery {
    fn limits(&self) -> ComponentLimits {
        ComponentLimits { memory_mib: self.memory_mib, fuel: self.fuel, deadline_ms: self.deadline_ms }
    }
}

/// `ComponentLimits` as stored (the store keeps plain integers).
pub fn stored_limits(l: &ComponentLimits) -> PolicyLimits {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    PolicyLimits { memory_mib: l.memory_mib.map(i64::from), fuel: l.fuel.map(int), deadline_ms: l.deadline_ms.map(int) }
}

/// Stored limits as `ComponentLimits` (the database's CHECKs keep them positive).
pub fn component_limits(l: &PolicyLimits) -> ComponentLimits {
    let int = |v: i64| u64::try_from(v).unwrap_or(0);
    ComponentLimits {
        memory_mib: l.memory_mib.map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
        fuel: l.fuel.map(int),
        deadline_ms: l.deadline_ms.map(int),
    }
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
    /// The limits declared at upload; an absent one is the engine default.
    #[schema(value_type = Object)]
    pub limits: ComponentLimits,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

impl From<ComponentMeta> for ComponentView {
    fn from(m: ComponentMeta) -> Self {
        ComponentView {
            sha256: m.sha256,
            name: m.name,
            kinds: m.kinds,
            size_bytes: m.size_bytes,
            limits: component_limits(&m.limits),
            uploaded_at: m.uploaded_at,
        }
    }
}

/// A load failure as an API error: a declared limit above its maximum or zero is an invalid
/// field (400), anything else a rejected component (422).
fn rejected(e: PolicyError) -> ApiError {
    let code = match e {
        PolicyError::LimitAboveMaximum { .. } | PolicyError::InvalidInput(_) => ErrorCode::InvalidField,
        _ => ErrorCode::PolicyRejected,
    };
    ApiError::new(code, e.to_string())
}

/// What an upload checks, also run offline by `pix-host policy validate`: the size, the declared
/// limits (within the host maxima), that the component compiles, imports nothing but stdio,
/// exports the world of `kind`, and passes the conformance fixtures of every kind it exports
/// within its limits. Blocks for the compile (tens of milliseconds for a Rust component on a
/// cache miss, seconds for an interpreter).
pub fn validate_component(
    engine: &PolicyEngine,
    kind: PolicyKind,
    bytes: &[u8],
    limits: ComponentLimits,
) -> ApiResult<LoadedPolicy> {
    if bytes.is_empty() || bytes.len() > MAX_COMPONENT {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("the body must be a component of at most {} MiB", MAX_COMPONENT >> 20),
        ));
    }
    let policy = engine.load_with(bytes, limits).map_err(rejected)?;
    if !policy.implements(kind) {
        return Err(not_exported(kind));
    }
    Ok(policy)
}

fn not_exported(kind: PolicyKind) -> ApiError {
    ApiError::new(ErrorCode::PolicyRejected, format!("the component does not export the {kind} decision"))
}

/// Upload a component (`application/wasm`, at most 32 MiB) with its own limits (`memoryMib`,
/// `fuel`, `deadlineMs`; each defaults to the engine's and may not exceed the host maximum, else
/// 400 `PIX-0004`). It must compile, import nothing but stdio, export the world of `kind` and
/// pass that kind's conformance fixtures within its limits. The same bytes uploaded again with
/// other limits are refused (400 `PIX-0004`): a component's limits never change.
#[utoipa::path(post, path = "/v1/admin/policies", tag = "Policies", params(UploadQuery),
    // Any media type is read as the component's bytes; both usual ones are declared.
    request_body(content(([u8] = "application/wasm"), ([u8] = "application/octet-stream"))),
    security(("admin_token" = [])),
    responses((status = 201, body = Uploaded), (status = 200, body = Uploaded), (status = 400, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    let kind = parse_kind(&query.kind)?;
    let engine = &state.policies.engine;
    let limits = query.limits();
    let policy = tokio::task::block_in_place(|| validate_component(engine, kind, &body, limits))?;
    let kinds: Vec<String> = policy.kinds().iter().map(|k| k.as_str().to_owned()).collect();
    let name = query.name.clone().unwrap_or_else(|| format!("{kind}-{}", &policy.sha256()[..12]));
    let stored = stored_limits(&limits);
    // Other limits for stored bytes: a Conflict, answered 400 PIX-0004.
    let created =
        state.store.put_policy_component(policy.sha256(), &name, &kinds, &body, &stored, state.clock.now()).await?;
    // Compiled once, here: every instance that activates it deserializes this code instead.
    match engine.artifact(&policy) {
        Ok(artifact) => state.policies.store_artifact(policy.sha256(), &artifact).await,
        Err(e) => tracing::warn!(sha256 = %policy.sha256(), error = %e, "serializing the compiled policy failed"),
    }
    let (meta, _) =
        state.store.policy_component(policy.sha256()).await?.ok_or_else(|| ApiError::internal("lost upload"))?;
    tracing::info!(sha256 = %meta.sha256, %kind, created, "policy component uploaded");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Uploaded { component: meta.into(), created })))
}

/// Every component in the registry.
#[utoipa::path(get, path = "/v1/admin/policies", tag = "Policies", security(("admin_token" = [])),
    responses((status = 200, body = Vec<ComponentView>)))]
pub(crate) async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<ComponentView>>> {
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
    #[schema(pattern = "^(fee|refund-split|cashin-acceptance|fraud-triage)$")]
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

/// Loads `sha256` with the slot's params, checking it implements the kind, still conforms and,
/// for a tenant's slot, that its limits are within the tenant's maxima (else 400 `PIX-0004`).
async fn candidate(
    state: &AppState,
    sha256: &str,
    kind: PolicyKind,
    tenant: Option<Uuid>,
    params: &serde_json::Value,
) -> ApiResult<LoadedPolicy> {
    params_from_json(params)?;
    if state.store.policy_component(sha256).await?.is_none() {
        return Err(not_found());
    }
    let policy = state
        .policies
        .load_stored(sha256, params)
        .await
        .map_err(|e| ApiError::new(ErrorCode::PolicyRejected, format!("{e:#}")))?;
    if !policy.implements(kind) {
        return Err(not_exported(kind));
    }
    if let Some(tenant) = tenant {
        let maxima = component_limits(&state.store.tenant_policy_limits(tenant).await?);
        if let Some((limit, asked, maximum)) = policy.limits().above(&maxima) {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("{limit} {asked} is above this tenant's maximum of {maximum}"),
            ));
        }
    }
    Ok(policy)
}

async fn reload(state: &AppState) -> ApiResult<()> {
    state.policies.reload().await.map_err(ApiError::internal)
}

/// Where a binding change was made: recorded with the credential in the binding's `actor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Api,
    Console,
}

/// The non-secret label of who changed a binding: the admin credential's id (never its token),
/// and ` via console` when the change was made in the operator console.
pub fn actor(admin: CurrentAdmin, via: Channel) -> String {
    match via {
        Channel::Api => format!("admin:{}", admin.credential_id),
        Channel::Console => format!("admin:{} via console", admin.credential_id),
    }
}

/// A binding change: which component (tenant, kind) uses from when, and who made the change.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingView {
    pub id: i64,
    /// Absent (null) for the default binding of tenants without their own.
    pub tenant_id: Option<Uuid>,
    #[schema(pattern = "^(fee|refund-split|cashin-acceptance|fraud-triage)$")]
    pub kind: String,
    pub sha256: String,
    /// The parameters passed to the policy (null when none, and on a removal row).
    #[schema(value_type = Option<Object>)]
    pub params: serde_json::Value,
    #[schema(pattern = "^(activate|rollback)$")]
    pub action: String,
    /// The binding this one replaced (a rollback returns to it).
    pub previous_id: Option<i64>,
    /// True for the row that rolled back a slot's first activation: the slot has no binding of
    /// its own any more; `sha256` is the component that was removed.
    pub removed: bool,
    /// Who made the change: `admin:<credential id>`, with ` via console` when made in the
    /// console (`unrecorded` for changes made before this was kept). Never a token.
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

impl From<Binding> for BindingView {
    fn from(b: Binding) -> Self {
        BindingView {
            id: b.id,
            tenant_id: b.tenant_id,
            kind: b.kind,
            sha256: b.sha256,
            params: b.params,
            action: b.action,
            previous_id: b.previous_id,
            removed: b.removed,
            actor: b.actor,
            created_at: b.created_at,
        }
    }
}

/// Make a component the active policy of (tenant, kind); the binding records which admin
/// credential did it. New decisions use it at once (on every instance); decisions in flight
/// finish on the previous version. Without `tenantId` it is the default binding of tenants
/// without their own.
#[utoipa::path(post, path = "/v1/admin/policies/{sha256}/activate", tag = "Policies", params(("sha256" = String, Path)),
    request_body = Slot, security(("admin_token" = [])),
    responses((status = 200, body = BindingView), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub(crate) async fn activate(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(sha256): AppPath<String>,
    AppJson(slot): AppJson<Slot>,
) -> ApiResult<Json<BindingView>> {
    activate_as(&state, &actor(admin, Channel::Api), &sha256, slot).await.map(Json)
}

/// [`activate`] on behalf of `actor`.
pub(crate) async fn activate_as(state: &AppState, actor: &str, sha256: &str, slot: Slot) -> ApiResult<BindingView> {
    let kind = slot.check(state).await?;
    candidate(state, sha256, kind, slot.tenant_id, &slot.params).await?;
    let binding = state
        .store
        .activate_policy(slot.tenant_id, kind.as_str(), sha256, &slot.params, actor, state.clock.now())
        .await?;
    reload(state).await?;
    metrics::counter!("pix_policy_activations_total", "kind" => kind.as_str(), "action" => "activate").increment(1);
    tracing::info!(%sha256, %kind, tenant = ?slot.tenant_id, %actor, "policy activated");
    Ok(binding.into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlotRef {
    #[schema(pattern = "^(fee|refund-split|cashin-acceptance|fraud-triage)$")]
    pub kind: String,
    pub tenant_id: Option<Uuid>,
}

/// Return (tenant, kind) to the version the current one replaced, recording which admin
/// credential did it. Rolling back the slot's first activation removes its binding (the answer
/// has `removed: true`): the tenant falls back to the default binding, and the default to the
/// shipped component. 409 when nothing is active.
#[utoipa::path(post, path = "/v1/admin/policy-bindings/rollback", tag = "Policies", request_body = SlotRef,
    security(("admin_token" = [])),
    responses((status = 200, body = BindingView), (status = 409, body = ErrorResponse)))]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppJson(slot): AppJson<SlotRef>,
) -> ApiResult<Json<BindingView>> {
    rollback_as(&state, &actor(admin, Channel::Api), slot).await.map(Json)
}

/// [`rollback`] on behalf of `actor`.
pub(crate) async fn rollback_as(state: &AppState, actor: &str, slot: SlotRef) -> ApiResult<BindingView> {
    let kind = parse_kind(&slot.kind)?;
    let binding = match state.store.rollback_policy(slot.tenant_id, kind.as_str(), actor, state.clock.now()).await {
        Ok(b) => b,
        Err(pix_store::StoreError::Conflict(m)) => return Err(ApiError::new(ErrorCode::PolicyNoEarlierVersion, m)),
        Err(e) => return Err(e.into()),
    };
    reload(state).await?;
    metrics::counter!("pix_policy_activations_total", "kind" => kind.as_str(), "action" => "rollback").increment(1);
    tracing::info!(sha256 = %binding.sha256, %kind, tenant = ?slot.tenant_id, removed = binding.removed, %actor, "policy rolled back");
    Ok(binding.into())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct BindingsQuery {
    #[param(pattern = "^(fee|refund-split|cashin-acceptance|fraud-triage)$")]
    pub kind: String,
    pub tenant_id: Option<Uuid>,
}

/// The binding history of (tenant, kind), newest (active) first, each with who made the change
/// and when. Without `tenantId`: the default binding's history.
#[utoipa::path(get, path = "/v1/admin/policy-bindings", tag = "Policies", params(BindingsQuery),
    security(("admin_token" = [])), responses((status = 200, body = Vec<BindingView>)))]
pub(crate) async fn bindings(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<BindingsQuery>,
) -> ApiResult<Json<Vec<BindingView>>> {
    let kind = parse_kind(&q.kind)?;
    let history = state.store.policy_binding_history(q.tenant_id, kind.as_str(), 100).await?;
    Ok(Json(history.into_iter().map(BindingView::from).collect()))
}

/// Run a component in shadow beside the active policy of (tenant, kind): it sees every live
/// decision, never affects the answer, and disagreements are recorded.
#[utoipa::path(put, path = "/v1/admin/policies/{sha256}/shadow", tag = "Policies", params(("sha256" = String, Path)),
    request_body = Slot, security(("admin_token" = [])),
    responses((status = 204), (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
pub(crate) async fn start_shadow(
    State(state): State<AppState>,
    AppPath(sha256): AppPath<String>,
    AppJson(slot): AppJson<Slot>,
) -> ApiResult<StatusCode> {
    let kind = slot.check(&state).await?;
    candidate(&state, &sha256, kind, slot.tenant_id, &slot.params).await?;
    state.store.set_policy_shadow(slot.tenant_id, kind.as_str(), &sha256, &slot.params, state.clock.now()).await?;
    reload(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop the shadow run of (tenant, kind) on this component.
#[utoipa::path(delete, path = "/v1/admin/policies/{sha256}/shadow", tag = "Policies", params(("sha256" = String, Path), BindingsQuery),
    security(("admin_token" = [])), responses((status = 204), (status = 404, body = ErrorResponse)))]
pub(crate) async fn stop_shadow(
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
#[into_params(parameter_in = Query)]
pub struct DecisionsQuery {
    #[param(pattern = "^(fee|refund-split|cashin-acceptance|fraud-triage)$")]
    pub kind: String,
    pub tenant_id: Uuid,
    /// How many recent decisions to look at (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    /// Only decisions taken at or after this instant (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only decisions taken at or before this instant (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

/// The earliest and latest instants a window may name: SQLite compares timestamps as text, which
/// orders correctly only for four-digit years.
fn window_bounds() -> (DateTime<Utc>, DateTime<Utc>) {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("a constant instant").with_timezone(&Utc);
    (at("1970-01-01T00:00:00Z"), at("9999-12-31T23:59:59Z"))
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
        if self.from.is_none() && self.to.is_none() {
            return Ok((kind, state.store.recent_policy_decisions(self.tenant_id, kind.as_str(), limit).await?));
        }
        let (earliest, latest) = window_bounds();
        let (from, to) = (self.from.unwrap_or(earliest), self.to.unwrap_or(latest));
        if from < earliest || to > latest {
            return Err(ApiError::new(ErrorCode::InvalidField, "from and to must be between the years 1970 and 9999"));
        }
        if from > to {
            return Err(ApiError::new(ErrorCode::InvalidField, "from must not be after to"));
        }
        let decisions = state.store.policy_decisions_between(self.tenant_id, kind.as_str(), from, to, limit).await?;
        Ok((kind, decisions))
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

/// How the shadow candidate compared with the active policy on recent live decisions (or those
/// taken between `from` and `to`).
#[utoipa::path(get, path = "/v1/admin/policy-shadows/summary", tag = "Policies", params(DecisionsQuery),
    security(("admin_token" = [])), responses((status = 200, body = ShadowSummary)))]
pub(crate) async fn shadow_summary(
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

/// Replay a candidate over recorded decisions of (tenant, kind) and report differences: the last
/// `limit` (default 1000), or with `from` and/or `to` the decisions taken in that time window (at
/// most `limit`, newest first).
#[utoipa::path(post, path = "/v1/admin/policies/{sha256}/replay", tag = "Policies", params(("sha256" = String, Path), DecisionsQuery),
    security(("admin_token" = [])), responses((status = 200, body = ReplayReport), (status = 404, body = ErrorResponse),
        (status = 422, body = ErrorResponse, description = "The component does not implement `kind` (`PIX-0029`)")))]
pub(crate) async fn replay(
    State(state): State<AppState>,
    AppPath(sha256): AppPath<String>,
    AppQuery(q): AppQuery<DecisionsQuery>,
) -> ApiResult<Json<ReplayReport>> {
    let (kind, decisions) = q.decisions(&state).await?;
    let policy = candidate(&state, &sha256, kind, Some(q.tenant_id), &serde_json::Value::Null).await?;
    let runtime = &state.policies;
    let report = tokio::task::block_in_place(|| match kind {
        PolicyKind::Fee => runtime.replay::<Fee>(&policy, &decisions),
        PolicyKind::RefundSplit => runtime.replay::<RefundSplit>(&policy, &decisions),
        PolicyKind::CashinAcceptance => runtime.replay::<Cashin>(&policy, &decisions),
        PolicyKind::FraudTriage => runtime.replay::<Fraud>(&policy, &decisions),
    });
    Ok(Json(report))
}

/// A tenant's maxima for the limits of the components bound to it: activating or shadowing a
/// component whose limits exceed them is refused (400 `PIX-0004`). An absent field is the host
/// maximum; each must be > 0 and at most the host maximum.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TenantPolicyLimits {
    pub memory_mib: Option<u32>,
    pub fuel: Option<u64>,
    pub deadline_ms: Option<u64>,
}

/// A tenant's maxima for policy limits (all absent when none were set: the host maxima apply).
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant_id}/policy-limits", tag = "Policies",
    params(("tenant_id" = Uuid, Path)), security(("admin_token" = [])),
    responses((status = 200, body = TenantPolicyLimits), (status = 404, body = ErrorResponse)))]
async fn get_tenant_policy_limits(
    State(state): State<AppState>,
    AppPath(tenant): AppPath<Uuid>,
) -> ApiResult<Json<TenantPolicyLimits>> {
    if state.store.tenant(tenant).await?.is_none() {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "tenant not found"));
    }
    let l = component_limits(&state.store.tenant_policy_limits(tenant).await?);
    Ok(Json(TenantPolicyLimits { memory_mib: l.memory_mib, fuel: l.fuel, deadline_ms: l.deadline_ms }))
}

/// Replace a tenant's maxima for policy limits. Components already bound keep running; the
/// maxima apply to the next activation or shadow run.
#[utoipa::path(put, path = "/v1/admin/tenants/{tenant_id}/policy-limits", tag = "Policies",
    params(("tenant_id" = Uuid, Path)), request_body = TenantPolicyLimits, security(("admin_token" = [])),
    responses((status = 200, body = TenantPolicyLimits), (status = 400, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
async fn put_tenant_policy_limits(
    State(state): State<AppState>,
    AppPath(tenant): AppPath<Uuid>,
    AppJson(body): AppJson<TenantPolicyLimits>,
) -> ApiResult<Json<TenantPolicyLimits>> {
    let limits = ComponentLimits { memory_mib: body.memory_mib, fuel: body.fuel, deadline_ms: body.deadline_ms };
    if [limits.memory_mib.map(u64::from), limits.fuel, limits.deadline_ms].contains(&Some(0)) {
        return Err(ApiError::new(ErrorCode::InvalidField, "policy limits must be greater than zero"));
    }
    if let Some((limit, asked, maximum)) = limits.above(&state.policies.engine.maxima()) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("{limit} {asked} is above the host maximum of {maximum}"),
        ));
    }
    state.store.set_tenant_policy_limits(tenant, &stored_limits(&limits), state.clock.now()).await?;
    Ok(Json(body))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentDecisions {
    /// Newest first: component, input, output, outcome (`policy` or `failsafe:<error class>`).
    #[schema(value_type = Vec<Object>)]
    pub decisions: Vec<Decision>,
}

/// The last N recorded decisions of (tenant, kind), newest first (with `from`/`to`: those taken
/// in that window).
#[utoipa::path(get, path = "/v1/admin/policy-decisions", tag = "Policies", params(DecisionsQuery),
    security(("admin_token" = [])), responses((status = 200, body = RecentDecisions)))]
async fn recent_decisions(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<DecisionsQuery>,
) -> ApiResult<Json<RecentDecisions>> {
    let (_, decisions) = q.decisions(&state).await?;
    Ok(Json(RecentDecisions { decisions }))
}
