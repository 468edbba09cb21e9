//! Policies (admin): per tenant and kind the active component and its history with rollback,
//! upload with the validation error inline, activation, shadow runs (agreement over time and the
//! disagreeing decisions) and replay; and the decision log with a latency histogram. Every
//! action calls the `/v1/admin/policies…` handler itself.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Multipart, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use pix_policy::PolicyKind;
use pix_store::policies::Decision;
use serde::Deserialize;
use uuid::Uuid;

use super::view::{self, csrf, json, short, time};
use super::{ConsoleError, ConsoleResult, Operator};
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::policies::admin::{self, BindingView, BindingsQuery, Channel, DecisionsQuery, Slot, SlotRef, UploadQuery};
use pix_policy::ComponentLimits;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies", get(overview))
        .route("/policies/upload", post(upload))
        .route("/policies/act", post(act))
        .route("/policies/rollback", post(rollback))
        .route("/policies/shadow", get(shadow))
        .route("/policies/shadow/stop", post(stop_shadow))
        .route("/decisions", get(decisions))
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    tenant: Option<Uuid>,
    notice: Option<String>,
}

async fn overview(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<PageQuery>,
) -> ConsoleResult<Markup> {
    operator.viewer.require_admin()?;
    render(&state, &operator, q.tenant, q.notice.as_deref(), None, None).await
}

/// What a refused upload sends back to the page: the error, shown inline, and the limits the
/// operator typed (so they are not lost).
#[derive(Default)]
struct UploadDraft {
    error: String,
    memory_mib: String,
    fuel: String,
    deadline_ms: String,
}

/// One binding slot as shown: its history (newest first) and the component deciding now.
struct SlotView {
    kind: PolicyKind,
    history: Vec<BindingView>,
    effective: String,
}

/// The bindings of `tenant` (or of the default, `None`) for every kind.
async fn slots(state: &AppState, tenant: Option<Uuid>) -> ConsoleResult<Vec<SlotView>> {
    let mut slots = Vec::new();
    for kind in PolicyKind::ALL {
        let query = BindingsQuery { kind: kind.as_str().into(), tenant_id: tenant };
        let history = admin::bindings(State(state.clone()), AppQuery(query)).await?.0;
        let effective = match tenant {
            Some(t) => state.policies.policy_for(t, kind).sha256().to_owned(),
            None => state.policies.default_policy(kind).sha256().to_owned(),
        };
        slots.push(SlotView { kind, history, effective });
    }
    Ok(slots)
}

/// The policies page, with an optional notice, upload error or replay report.
async fn render(
    state: &AppState,
    operator: &Operator,
    tenant: Option<Uuid>,
    notice: Option<&str>,
    upload: Option<&UploadDraft>,
    replay: Option<Markup>,
) -> ConsoleResult<Markup> {
    let tenant = operator.viewer.tenant(state, tenant).await?;
    let tenants = state.store.list_tenants().await?;
    let components = admin::list(State(state.clone())).await?.0;
    let shadows = state.store.policy_shadows().await?;
    let own = slots(state, Some(tenant.id)).await?;
    let defaults = slots(state, None).await?;
    let maxima = admin::component_limits(&state.store.tenant_policy_limits(tenant.id).await?);
    let name_of = |sha: &str| components.iter().find(|c| c.sha256 == sha).map(|c| c.name.clone()).unwrap_or_default();
    let who = |b: &BindingView| html! { (time(b.created_at)) " (" (b.action) ") by " span.actor { (b.actor) } };
    let draft = upload.map(|d| (d.memory_mib.as_str(), d.fuel.as_str(), d.deadline_ms.as_str()));
    let (memory, fuel, deadline) = draft.unwrap_or_default();
    let body = html! {
        (view::tenant_picker(operator, &tenants, tenant.id, "/console/policies"))
        (view::notices(notice, None))
        @if let Some(report) = replay { (report) }
        h2 { "Active policies of " (tenant.name) }
        table #tenant-bindings {
            thead { tr { th { "Kind" } th { "Component" } th { "sha256" } th { "Activated" } th { "Shadow" } th {} } }
            tbody {
                @for slot in &own {
                    @let active = slot.history.first().filter(|b| !b.removed);
                    @let shadow = shadows.iter().find(|s| s.tenant_id == Some(tenant.id) && s.kind == slot.kind.as_str());
                    tr data-kind=(slot.kind.as_str()) {
                        td { (slot.kind.as_str()) }
                        td { (name_of(&slot.effective)) @if active.is_none() { " " span.badge { "inherited" } } }
                        td { code { (short(&slot.effective)) } }
                        td { @if let Some(b) = active { (who(b)) } @else { "—" } }
                        td {
                            @if let Some(s) = shadow {
                                a href=(format!("/console/policies/shadow?tenant={}&kind={}", tenant.id, slot.kind.as_str())) {
                                    code { (short(&s.sha256)) } " since " (time(s.started_at))
                                }
                            } @else { "—" }
                        }
                        td {
                            @if active.is_some() {
                                (rollback_form(operator, tenant.id, None, slot.kind,
                                    &format!("Roll back the {} policy of {}?", slot.kind.as_str(), tenant.name)))
                            }
                        }
                    }
                }
            }
        }
        h2 { "Default policies (tenants without their own binding)" }
        table #default-bindings {
            thead { tr { th { "Kind" } th { "Component" } th { "sha256" } th { "Activated" } th {} } }
            tbody {
                @for slot in &defaults {
                    @let active = slot.history.first().filter(|b| !b.removed);
                    tr data-kind=(slot.kind.as_str()) {
                        td { (slot.kind.as_str()) }
                        td { (name_of(&slot.effective)) @if active.is_none() { " " span.badge { "shipped" } } }
                        td { code { (short(&slot.effective)) } }
                        td { @if let Some(b) = active { (who(b)) } @else { "—" } }
                        td {
                            @if active.is_some() {
                                (rollback_form(operator, tenant.id, Some(Scope::Default), slot.kind,
                                    &format!("Roll back the default {} policy of every tenant without its own?", slot.kind.as_str())))
                            }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        table #history {
            thead { tr { th { "When" } th { "Scope" } th { "Kind" } th { "Action" } th { "By" } th { "Component" } th { "Params" } } }
            tbody {
                @for (scope, list) in [(tenant.name.as_str(), &own), ("default", &defaults)] {
                    @for slot in list {
                        @for b in &slot.history {
                            tr {
                                td { (time(b.created_at)) }
                                td { (scope) }
                                td { (slot.kind.as_str()) }
                                td { (b.action) @if b.removed { " (binding removed)" } }
                                td.actor { (b.actor) }
                                td { (name_of(&b.sha256)) " " code { (short(&b.sha256)) } }
                                td { (json(&b.params)) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Upload a component" }
        @if let Some(d) = upload { p.error #upload-error role="alert" { (d.error) } }
        form.grid #upload method="post" action="/console/policies/upload" enctype="multipart/form-data" {
            (csrf(&operator.csrf))
            input type="hidden" name="tenant" value=(tenant.id);
            label for="component" { "Component (.wasm)" }
            input #component type="file" name="component" accept=".wasm,application/wasm" required;
            label for="upload-kind" { "Kind" }
            (kind_select("upload-kind"))
            label for="upload-name" { "Name" }
            input #upload-name type="text" name="name" placeholder="optional label";
            label for="upload-memory" { "Memory (MiB)" }
            input #upload-memory type="text" inputmode="numeric" name="memory_mib" value=(memory)
                placeholder=(limit_hint(maxima.memory_mib.map(u64::from)));
            label for="upload-fuel" { "Fuel (instructions)" }
            input #upload-fuel type="text" inputmode="numeric" name="fuel" value=(fuel)
                placeholder=(limit_hint(maxima.fuel));
            label for="upload-deadline" { "Deadline (ms)" }
            input #upload-deadline type="text" inputmode="numeric" name="deadline_ms" value=(deadline)
                placeholder=(limit_hint(maxima.deadline_ms));
            span {}
            span.muted { "Empty limits are the engine's defaults; each must be above zero and at most "
                (tenant.name) "'s maximum (else the host's)." }
            button type="submit" { "Upload and validate" }
        }
        h2 { "Activate, shadow or replay a component" }
        form.grid #act method="post" action="/console/policies/act" {
            (csrf(&operator.csrf))
            input type="hidden" name="tenant" value=(tenant.id);
            label for="act-sha" { "Component" }
            select #act-sha name="sha256" {
                @for c in &components {
                    option value=(c.sha256) { (c.name) " — " (short(&c.sha256)) " (" (c.kinds.join(", ")) ")" }
                }
            }
            label for="act-kind" { "Kind" }
            (kind_select("act-kind"))
            label for="act-scope" { "For" }
            select #act-scope name="scope" {
                option value="tenant" selected { (tenant.name) }
                option value="default" { "the default (every tenant without its own binding; activate only)" }
            }
            label for="act-params" { "Params (JSON)" }
            textarea #act-params name="params" placeholder=r#"{"fee-account": "@tarifas"}"# {}
            label for="act-limit" { "Replay over" }
            span { "the last " input #act-limit type="number" name="limit" value="1000" min="1" max="10000"; " recorded decisions" }
            label for="act-from" { "or the window from" }
            span {
                input #act-from type="datetime-local" step="1" name="from";
                " to " input #act-to type="datetime-local" step="1" name="to";
                " (UTC; at most that many decisions of the window, newest first)"
            }
            span {}
            span {
                button type="submit" name="action" value="activate" { "Activate" } " "
                button type="submit" name="action" value="shadow" { "Start shadow" } " "
                button type="submit" name="action" value="replay" { "Replay" }
            }
        }
    };
    Ok(view::page(operator, "/console/policies", "Policies", body))
}

fn limit_hint(maximum: Option<u64>) -> String {
    match maximum {
        Some(m) => format!("default; at most {m}"),
        None => "default".to_owned(),
    }
}

/// Which binding a form acts on: the page's tenant, or the default of tenants without their own.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Tenant,
    Default,
}

fn rollback_form(operator: &Operator, tenant: Uuid, scope: Option<Scope>, kind: PolicyKind, confirm: &str) -> Markup {
    html! {
        form.inline method="post" action="/console/policies/rollback" data-confirm=(confirm) {
            (csrf(&operator.csrf))
            input type="hidden" name="tenant" value=(tenant);
            @if scope == Some(Scope::Default) { input type="hidden" name="scope" value="default"; }
            input type="hidden" name="kind" value=(kind.as_str());
            button.danger type="submit" { "Roll back" }
        }
    }
}

fn kind_select(id: &str) -> Markup {
    html! {
        select id=(id) name="kind" {
            @for kind in PolicyKind::ALL { option value=(kind.as_str()) { (kind.as_str()) } }
        }
    }
}

fn back(tenant: Uuid, notice: &str) -> Response {
    view::redirect_with_notice(&format!("/console/policies?tenant={tenant}"), notice)
}

/// A limit field of the upload form: empty is the engine default; anything else must be a
/// whole number above zero.
fn limit_field<T: std::str::FromStr + PartialEq + From<u8>>(label: &str, value: &str) -> Result<Option<T>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<T>() {
        Ok(v) if v != T::from(0) => Ok(Some(v)),
        _ => Err(format!("{label}: {value:?} is not a whole number above zero")),
    }
}

/// The upload form: the same validation as `POST /v1/admin/policies` (with its per-component
/// limits), and limits above the page's tenant's maxima are refused too; a refusal is shown
/// above the form, with what was typed kept.
async fn upload(State(state): State<AppState>, operator: Operator, mut form: Multipart) -> ConsoleResult<Response> {
    operator.viewer.require_admin()?;
    let (mut tenant, mut kind, mut name, mut bytes) = (None, String::new(), None, Bytes::new());
    let mut draft = UploadDraft::default();
    while let Some(field) = form.next_field().await.map_err(|e| ConsoleError::BadRequest(e.body_text()))? {
        let field_name = field.name().unwrap_or_default().to_owned();
        let value = field.bytes().await.map_err(|e| ConsoleError::BadRequest(e.body_text()))?;
        let text = || String::from_utf8_lossy(&value).trim().to_owned();
        match field_name.as_str() {
            "tenant" => tenant = Uuid::parse_str(&text()).ok(),
            "kind" => kind = text(),
            "name" => name = Some(text()).filter(|n| !n.is_empty()),
            "component" => bytes = value.clone(),
            "memory_mib" => draft.memory_mib = text(),
            "fuel" => draft.fuel = text(),
            "deadline_ms" => draft.deadline_ms = text(),
            _ => {}
        }
    }
    let page_tenant = operator.viewer.tenant(&state, tenant).await?;
    let limits = (|| -> Result<ComponentLimits, String> {
        Ok(ComponentLimits {
            memory_mib: limit_field("Memory (MiB)", &draft.memory_mib)?,
            fuel: limit_field("Fuel", &draft.fuel)?,
            deadline_ms: limit_field("Deadline (ms)", &draft.deadline_ms)?,
        })
    })();
    let outcome = match limits {
        Err(message) => Err(message),
        Ok(limits) => {
            let maxima = admin::component_limits(&state.store.tenant_policy_limits(page_tenant.id).await?);
            match limits.above(&maxima) {
                Some((limit, asked, maximum)) => {
                    Err(format!("{limit} {asked} is above {}'s maximum of {maximum}", page_tenant.name))
                }
                None => {
                    let query = UploadQuery {
                        kind,
                        name,
                        memory_mib: limits.memory_mib,
                        fuel: limits.fuel,
                        deadline_ms: limits.deadline_ms,
                    };
                    admin::upload(State(state.clone()), AppQuery(query), bytes).await.map_err(|e| e.0.to_string())
                }
            }
        }
    };
    match outcome {
        Ok((_, Json(uploaded))) => {
            let verb = if uploaded.created { "Uploaded" } else { "Already in the registry:" };
            Ok(back(page_tenant.id, &format!("{verb} {} ({})", uploaded.component.name, uploaded.component.sha256)))
        }
        Err(message) => {
            draft.error = message;
            let status = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok((status, render(&state, &operator, Some(page_tenant.id), None, Some(&draft), None).await?)
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct ActForm {
    tenant: Uuid,
    sha256: String,
    kind: String,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    params: String,
    limit: Option<i64>,
    /// The replay window (a datetime-local field or RFC 3339, UTC); empty means unbounded.
    from: Option<String>,
    to: Option<String>,
    action: String,
}

/// Activate, start a shadow run or replay, through the admin handlers.
async fn act(State(state): State<AppState>, operator: Operator, Form(form): Form<ActForm>) -> ConsoleResult<Response> {
    let admin = operator.viewer.require_admin()?;
    let actor = admin::actor(CurrentAdmin { credential_id: admin }, Channel::Console);
    let tenant = operator.viewer.tenant(&state, Some(form.tenant)).await?;
    let params = if form.params.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&form.params)
            .map_err(|e| ConsoleError::BadRequest(format!("params: not a JSON object: {e}")))?
    };
    let slot_tenant = match form.scope {
        Scope::Tenant => Some(tenant.id),
        Scope::Default => None,
    };
    if form.scope == Scope::Default && form.action != "activate" {
        return Err(ConsoleError::BadRequest(
            "shadow runs and replays compare a tenant's live decisions: pick the tenant, not the default".into(),
        ));
    }
    let slot = Slot { kind: form.kind.clone(), tenant_id: slot_tenant, params };
    let sha = AppPath(form.sha256.clone());
    match form.action.as_str() {
        "activate" => {
            let binding = admin::activate_as(&state, &actor, &form.sha256, slot).await?;
            let whose = match slot_tenant {
                Some(_) => tenant.name.clone(),
                None => "the default (tenants without their own)".to_owned(),
            };
            let what = format!("Activated {} as the {} policy of {whose}", short(&binding.sha256), binding.kind);
            Ok(back(tenant.id, &what))
        }
        "shadow" => {
            admin::start_shadow(State(state.clone()), sha, AppJson(slot)).await?;
            let to = format!("/console/policies/shadow?tenant={}&kind={}", tenant.id, form.kind);
            Ok(Redirect::to(&to).into_response())
        }
        "replay" => {
            let (from, to) = (instant("from", form.from.as_deref())?, instant("to", form.to.as_deref())?);
            let query = DecisionsQuery { kind: form.kind.clone(), tenant_id: tenant.id, limit: form.limit, from, to };
            let report = admin::replay(State(state.clone()), sha, AppQuery(query)).await?.0;
            let window = match (from, to) {
                (None, None) => format!("the last {} recorded decisions", form.limit.unwrap_or(1000)),
                (f, t) => format!(
                    "the decisions from {} to {}",
                    f.map(time).unwrap_or_else(|| "the first".into()),
                    t.map(time).unwrap_or_else(|| "now".into())
                ),
            };
            let markup = html! {
                section #replay {
                    h2 { "Replay of " code { (short(&form.sha256)) } " as " (form.kind) }
                    p #replay-window { "Over " (window) " of " (tenant.name) "." }
                    p #replay-summary { strong { (report.replayed) } " decisions replayed: " strong { (report.same) } " same, "
                        strong { (report.different) } " different (" (report.errors) " candidate errors)." }
                    @if !report.differences.is_empty() {
                        table {
                            thead { tr { th { "Decision" } th { "Input" } th { "Recorded answer" } th { "Candidate answer" } } }
                            tbody {
                                @for d in &report.differences {
                                    tr { td { (d.decision_id) } td { (json(&d.input)) } td { (json(&d.recorded)) } td { (json(&d.candidate)) } }
                                }
                            }
                        }
                    }
                }
            };
            Ok(render(&state, &operator, Some(tenant.id), None, None, Some(markup)).await?.into_response())
        }
        _ => Err(ConsoleError::BadRequest("action: one of activate, shadow, replay".into())),
    }
}

#[derive(Deserialize)]
pub struct SlotForm {
    tenant: Uuid,
    kind: String,
    #[serde(default)]
    scope: Scope,
}

/// Roll back the page's tenant's binding, or (scope `default`) the default binding.
async fn rollback(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<SlotForm>,
) -> ConsoleResult<Response> {
    let admin = operator.viewer.require_admin()?;
    let actor = admin::actor(CurrentAdmin { credential_id: admin }, Channel::Console);
    let tenant_id = match form.scope {
        Scope::Tenant => Some(form.tenant),
        Scope::Default => None,
    };
    let slot = SlotRef { kind: form.kind.clone(), tenant_id };
    let binding = admin::rollback_as(&state, &actor, slot).await?;
    let whose = if tenant_id.is_some() { "" } else { "default " };
    let what = if binding.removed {
        match tenant_id {
            Some(_) => format!("Rolled back: the {} binding was removed, the default applies", form.kind),
            None => format!("Rolled back: the default {} binding was removed, the shipped policy applies", form.kind),
        }
    } else {
        format!("Rolled back the {whose}{} policy to {}", form.kind, short(&binding.sha256))
    };
    Ok(back(form.tenant, &what))
}

async fn stop_shadow(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<SlotForm>,
) -> ConsoleResult<Response> {
    operator.viewer.require_admin()?;
    let query = BindingsQuery { kind: form.kind.clone(), tenant_id: Some(form.tenant) };
    admin::stop_shadow(State(state), AppPath(String::new()), AppQuery(query)).await?;
    Ok(back(form.tenant, &format!("Stopped the {} shadow run", form.kind)))
}

#[derive(Deserialize)]
pub struct ShadowQuery {
    tenant: Uuid,
    kind: String,
}

/// Agreement of recent decisions per time bucket (at most 12 buckets over the span they cover).
fn agreement_over_time(decisions: &[Decision]) -> Vec<(String, f64)> {
    let compared: Vec<(DateTime<Utc>, bool)> =
        decisions.iter().filter_map(|d| d.shadow_agrees.map(|a| (d.decided_at, a))).collect();
    let (Some(first), Some(last)) = (compared.iter().map(|c| c.0).min(), compared.iter().map(|c| c.0).max()) else {
        return Vec::new();
    };
    let buckets = 12_i64;
    let span = (last - first).num_milliseconds().max(1);
    let mut counts: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for (at, agrees) in compared {
        let i = ((at - first).num_milliseconds() * (buckets - 1) / span).clamp(0, buckets - 1);
        let entry = counts.entry(i).or_default();
        entry.0 += u64::from(agrees);
        entry.1 += 1;
    }
    counts
        .into_iter()
        .map(|(i, (agreed, total))| {
            let at = first + chrono::Duration::milliseconds(i * span / (buckets - 1));
            (at.format("%H:%M:%S").to_string(), agreed as f64 * 100.0 / total as f64)
        })
        .collect()
}

async fn shadow(
    State(state): State<AppState>,
    operator: Operator,
    Query(q): Query<ShadowQuery>,
) -> ConsoleResult<Markup> {
    operator.viewer.require_admin()?;
    let tenant = operator.viewer.tenant(&state, Some(q.tenant)).await?;
    let query = DecisionsQuery { kind: q.kind.clone(), tenant_id: tenant.id, limit: None, from: None, to: None };
    let summary = admin::shadow_summary(State(state.clone()), AppQuery(query)).await?.0;
    let recent = state.store.recent_policy_decisions(tenant.id, &q.kind, 1000).await?;
    let running =
        state.store.policy_shadows().await?.into_iter().find(|s| s.tenant_id == Some(tenant.id) && s.kind == q.kind);
    let body = html! {
        p { a href=(format!("/console/policies?tenant={}", tenant.id)) { "← Policies of " (tenant.name) } }
        @if let Some(s) = &running {
            p { "Candidate " code { (short(&s.sha256)) } " shadows the " (q.kind) " policy since " (time(s.started_at)) "." }
            form method="post" action="/console/policies/shadow/stop" {
                (csrf(&operator.csrf))
                input type="hidden" name="tenant" value=(tenant.id);
                input type="hidden" name="kind" value=(q.kind);
                button.danger type="submit" { "Stop the shadow run" }
            }
        } @else { p.muted { "No shadow run is active for this kind; the numbers below are from recorded decisions." } }
        div.cards {
            div.card { div.big #compared { (summary.compared) } "decisions compared" }
            div.card { div.big #agreed { (summary.agreed) } "agreed" }
            div.card { div.big #disagreed { (summary.disagreed) } "disagreed" }
        }
        (view::percent_line("Agreement with the active policy over time (recent decisions)", &agreement_over_time(&recent)))
        h2 { "Disagreements (newest first, at most 20)" }
        table #disagreements {
            thead { tr { th { "When" } th { "Input" } th { "Active answer" } th { "Candidate answer" } } }
            tbody {
                @for d in &summary.disagreements {
                    tr {
                        td { (time(d.decided_at)) }
                        td { (json(&d.input)) }
                        td { (json(&d.output)) }
                        td { @if let Some(o) = &d.shadow_output { (json(o)) } }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console/policies", &format!("Shadow run: {} of {}", q.kind, tenant.name), body))
}

#[derive(Deserialize)]
pub struct DecisionFilter {
    tenant: Option<Uuid>,
    kind: Option<String>,
    /// `policy` or `failsafe`.
    outcome: Option<String>,
    component: Option<String>,
    /// RFC 3339 or `YYYY-MM-DDTHH:MM[:SS]` (a datetime-local field), UTC.
    since: Option<String>,
    until: Option<String>,
}

fn instant(field: &str, value: Option<&str>) -> ConsoleResult<Option<DateTime<Utc>>> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc()))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").map(|t| t.and_utc()))
        .map(Some)
        .map_err(|_| ConsoleError::BadRequest(format!("{field}: not a date and time")))
}

/// Latency buckets (µs upper bounds) of the histogram.
const LATENCY_BUCKETS: &[i64] = &[100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, i64::MAX];

fn latency_histogram(decisions: &[Decision]) -> Vec<(String, u64)> {
    let mut counts = vec![0u64; LATENCY_BUCKETS.len()];
    for d in decisions {
        let i = LATENCY_BUCKETS.iter().position(|b| d.duration_us <= *b).unwrap_or(LATENCY_BUCKETS.len() - 1);
        counts[i] += 1;
    }
    LATENCY_BUCKETS
        .iter()
        .zip(counts)
        .map(|(b, n)| (if *b == i64::MAX { "more".to_owned() } else { format!("≤{b}µs") }, n))
        .collect()
}

/// The decision log of one tenant and kind (the newest 1000), filtered.
async fn decisions(
    State(state): State<AppState>,
    operator: Operator,
    Query(f): Query<DecisionFilter>,
) -> ConsoleResult<Markup> {
    operator.viewer.require_admin()?;
    let tenant = operator.viewer.tenant(&state, f.tenant).await?;
    let tenants = state.store.list_tenants().await?;
    let kind = crate::policies::parse_kind(f.kind.as_deref().unwrap_or("fee"))?;
    let (since, until) = (instant("since", f.since.as_deref())?, instant("until", f.until.as_deref())?);
    state.policies.flush_decisions().await;
    let all = state.store.recent_policy_decisions(tenant.id, kind.as_str(), 1000).await?;
    let outcome = f.outcome.as_deref().filter(|o| !o.is_empty());
    let component = f.component.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let shown: Vec<Decision> = all
        .into_iter()
        .filter(|d| match outcome {
            Some("failsafe") => d.outcome.starts_with("failsafe"),
            Some(o) => d.outcome == o,
            None => true,
        })
        .filter(|d| component.is_none_or(|c| d.sha256.starts_with(c)))
        .filter(|d| since.is_none_or(|s| d.decided_at >= s) && until.is_none_or(|u| d.decided_at <= u))
        .collect();
    let body = html! {
        form.filters method="get" action="/console/decisions" {
            @if operator.viewer.is_admin() {
                label { "Tenant " select name="tenant" {
                    @for t in &tenants { option value=(t.id) selected[t.id == tenant.id] { (t.name) } }
                } }
            }
            label { "Kind " select name="kind" {
                @for k in PolicyKind::ALL { option value=(k.as_str()) selected[k == kind] { (k.as_str()) } }
            } }
            label { "Outcome " select name="outcome" {
                option value="" { "any" }
                option value="policy" selected[outcome == Some("policy")] { "policy" }
                option value="failsafe" selected[outcome == Some("failsafe")] { "fail-safe" }
            } }
            label { "Component " input type="text" name="component" value=[component] placeholder="sha256 prefix" size="14"; }
            label { "Since " input type="datetime-local" name="since" value=[f.since.as_deref()]; }
            label { "Until " input type="datetime-local" name="until" value=[f.until.as_deref()]; }
            button type="submit" { "Filter" }
        }
        p { (shown.len()) " decisions (of the newest 1000 of " (tenant.name) ", " (kind.as_str()) ")." }
        (view::bar_chart("Decision latency (count per bucket)", &latency_histogram(&shown)))
        table {
            thead { tr { th { "When" } th { "Component" } th { "Outcome" } th.num { "µs" } th { "Input" } th { "Output" } th { "Shadow" } } }
            tbody {
                @for d in shown.iter().take(200) {
                    tr {
                        td { (time(d.decided_at)) }
                        td { code { (short(&d.sha256)) } }
                        td { @if d.outcome.starts_with("failsafe") { span.badge.bad { (d.outcome) } } @else { (d.outcome) } }
                        td.num { (d.duration_us) }
                        td { (json(&d.input)) }
                        td { (json(&d.output)) }
                        td { @match d.shadow_agrees { Some(true) => span.badge.good { "agrees" }, Some(false) => span.badge.bad { "differs" }, None => "—" } }
                    }
                }
            }
        }
    };
    Ok(view::page(&operator, "/console/decisions", "Decision log", body))
}
