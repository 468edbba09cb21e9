//! MED records: fraud markers (proxied to BTG, not stored), infraction reports and refund
//! requests (stored, kept current from BTG's `INFRACTION_REPORT_V2` and `DICT_REFUND` events).
//! Every change of a report or a request records an outbound event.

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use pix_app::AppError;
use pix_app::med::CautionaryBlockView;
use pix_app::refunds::outgoing;
use pix_core::document::Document;
use pix_core::error::ErrorCode;
use pix_core::ids::EndToEndId;
use pix_core::med::{
    AnalysisResult, InfractionStatus, RefundAnalysisResult, RefundRequestStatus, ReportRole, RequestRole,
};
use pix_core::money::{Amount, Money};
use pix_core::pix_key::PixKey;
use pix_core::refund::{RefundReason, RefundStatus};
use pix_core::transfer::Direction;
use pix_integrations::btg::{
    self, BtgEvent, FraudMarkerStatus, FraudType, NewInfractionReport, NewRefundRequest, RefundClose,
};
use pix_store::StoreError;
use pix_store::dict::{
    FraudMarkerOwner, InfractionFilter, InfractionReport, RefundFilter, RefundRequest, upsert_infraction_report,
    upsert_refund_request,
};
use pix_store::inbound::InboundEvent;
use pix_store::refunds::Refund;
use pix_store::tenants::Tenant;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Dict;
use super::recoveries::local_recovery_id;
use super::{btg_error, descending, invalid, missing, paging, parse_enum, record_event, retry, timestamp};
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::inbound::InboundHandler;
use crate::routes::{ErrorResponse, Page};
use crate::worker::{JobError, JobFuture};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_fraud_marker, list_fraud_markers))
        .routes(routes!(cancel_fraud_marker))
        .routes(routes!(create_infraction_report, list_infraction_reports))
        .routes(routes!(get_infraction_report))
        .routes(routes!(acknowledge_infraction_report))
        .routes(routes!(close_infraction_report))
        .routes(routes!(cancel_infraction_report))
        .routes(routes!(create_refund_request, list_refund_requests))
        .routes(routes!(get_refund_request))
        .routes(routes!(close_refund_request))
        .routes(routes!(cancel_refund_request))
}

fn one_of(field: &str, value: &str, accepted: &[&str]) -> ApiResult<()> {
    if accepted.contains(&value) {
        Ok(())
    } else {
        Err(invalid(format!("{field}: must be one of {}", accepted.join(", "))))
    }
}

fn end_to_end(field: &str, value: &str) -> ApiResult<String> {
    EndToEndId::parse(value).map(|e| e.as_str().to_owned()).map_err(|e| invalid(format!("{field}: {e}")))
}

fn btg_of(state: &Dict, tenant: &Tenant) -> ApiResult<std::sync::Arc<dyn pix_integrations::Btg>> {
    Ok(state.integrations.for_tenant(tenant)?.btg.clone())
}

// ============================================================================================ fraud markers

const FRAUD_TYPES: [(&str, FraudType); 4] = [
    ("APPLICATION_FRAUD", FraudType::ApplicationFraud),
    ("MULE_ACCOUNT", FraudType::MuleAccount),
    ("SCAMMER_ACCOUNT", FraudType::ScammerAccount),
    ("OTHER", FraudType::Other),
];

fn fraud_type(value: &str) -> ApiResult<FraudType> {
    FRAUD_TYPES
        .iter()
        .find(|(t, _)| *t == value)
        .map(|(_, f)| *f)
        .ok_or_else(|| invalid("fraudType: must be one of APPLICATION_FRAUD, MULE_ACCOUNT, SCAMMER_ACCOUNT, OTHER"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateFraudMarker {
    /// CPF or CNPJ of the person marked.
    #[schema(example = "11144477735", pattern = r"^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2})$")]
    pub tax_id_number: String,
    /// `APPLICATION_FRAUD`, `MULE_ACCOUNT`, `SCAMMER_ACCOUNT` or `OTHER`.
    #[schema(pattern = "^(APPLICATION_FRAUD|MULE_ACCOUNT|SCAMMER_ACCOUNT|OTHER)$")]
    pub fraud_type: String,
    /// The key involved, if any.
    #[schema(schema_with = crate::openapi::pix_key)]
    pub key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FraudMarkerView {
    pub id: String,
    /// The CPF/CNPJ marked.
    pub document: String,
    pub fraud_type: String,
    pub key: Option<String>,
    #[schema(value_type = String, pattern = "^(REGISTERED|CANCELLED)$")]
    pub status: FraudMarkerStatus,
    pub created_at: DateTime<Utc>,
    /// The registration or, once cancelled, the cancellation: the list's cursor.
    pub updated_at: DateTime<Utc>,
}

fn marker_view(m: btg::FraudMarker) -> FraudMarkerView {
    FraudMarkerView {
        id: m.id,
        document: m.tax_id,
        fraud_type: m.fraud_type.as_str().to_owned(),
        key: m.key,
        status: m.status,
        updated_at: m.updated_at,
        created_at: m.created_at,
    }
}

async fn register_marker(
    state: &Dict,
    tenant: &Tenant,
    tax_id: &str,
    kind: FraudType,
    key: Option<&str>,
) -> ApiResult<btg::FraudMarker> {
    let document = Document::parse(tax_id).map_err(|e| invalid(format!("taxIdNumber: {e}")))?;
    let key = key.map(|k| PixKey::infer(k).map_err(|e| invalid(format!("key: {e}")))).transpose()?;
    let marker = btg_of(state, tenant)?
        .create_fraud_marker(document.as_str(), kind, key.as_ref().map(|k| k.value()))
        .await
        .map_err(|e| btg_error("registering the fraud marker", e))?;
    state
        .store
        .record_fraud_marker(&FraudMarkerOwner {
            tenant_id: tenant.id,
            btg_id: marker.id.clone(),
            document: document.as_str().to_owned(),
            fraud_type: kind.as_str().to_owned(),
            key: marker.key.clone(),
            created_at: state.clock.now(),
        })
        .await?;
    Ok(marker)
}

fn marker_not_found() -> ApiError {
    ApiError::new(ErrorCode::FraudMarkerNotFound, "fraud marker not found")
}

/// An EndToEndId a tenant files a MED request on must be one of its payments: a transfer it
/// recorded (sent or received), or else an id carrying its ISPB (a payment it sent) that no
/// other tenant recorded. Anything else is `PIX-0035`, answered before BTG is called.
async fn own_payment(state: &Dict, tenant: &Tenant, e2e: &str) -> ApiResult<()> {
    let owners = state.store.end_to_end_id_tenants(e2e).await?;
    let ours = owners.contains(&tenant.id);
    let foreign = owners.iter().any(|t| *t != tenant.id);
    let carries_our_ispb = EndToEndId::parse(e2e).is_ok_and(|id| id.ispb().as_str() == tenant.ispb);
    if ours || (carries_our_ispb && !foreign) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::PaymentNotFound, "transactionId: no payment of yours has this EndToEndId"))
    }
}

/// Mark a person (and optionally a key) as involved in fraud.
#[utoipa::path(post, path = "/v1/dict/fraud-markers", tag = "MED", request_body = CreateFraudMarker,
    security(("tenant_token" = [])),
    responses((status = 201, body = FraudMarkerView), (status = 400, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn create_fraud_marker(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppJson(body): AppJson<CreateFraudMarker>,
) -> ApiResult<(StatusCode, Json<FraudMarkerView>)> {
    let kind = fraud_type(&body.fraud_type)?;
    let marker = register_marker(&state, &tenant, &body.tax_id_number, kind, body.key.as_deref()).await?;
    tracing::info!(marker = %marker.id, fraud_type = %kind, "fraud marker registered");
    Ok((StatusCode::CREATED, Json(marker_view(marker))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FraudMarkerQuery {
    /// CPF/CNPJ whose markers to list (required).
    #[param(required = true, pattern = r"^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2})$")]
    pub tax_id: Option<String>,
    /// 1–200, default 10.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Cursor: the `updatedAt` of the last item of the previous page.
    #[param(format = DateTime)]
    pub modified_after: Option<String>,
    #[param(format = DateTime)]
    pub modified_before: Option<String>,
    pub key: Option<String>,
    #[param(pattern = "^(REGISTERED|CANCELLED)$")]
    pub status: Option<String>,
    #[param(pattern = "^(APPLICATION_FRAUD|MULE_ACCOUNT|SCAMMER_ACCOUNT|OTHER)$")]
    pub fraud_type: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FraudMarkerPage {
    pub items: Vec<FraudMarkerView>,
    pub limit: u32,
    /// While true, ask again with `modified_after` = the last item's `updatedAt`.
    pub has_more_elements: bool,
}

/// Fraud markers of a person, read from DICT (not stored), oldest first, cursor-paged.
#[utoipa::path(get, path = "/v1/dict/fraud-markers", tag = "MED", params(FraudMarkerQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = FraudMarkerPage), (status = 400, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn list_fraud_markers(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(q): AppQuery<FraudMarkerQuery>,
) -> ApiResult<Json<FraudMarkerPage>> {
    let tax_id = q.tax_id.as_deref().ok_or_else(|| missing("tax_id"))?;
    let document = Document::parse(tax_id).map_err(|e| invalid(format!("tax_id: {e}")))?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=200).contains(&limit) {
        return Err(invalid("limit must be between 1 and 200"));
    }
    let after = timestamp("modified_after", q.modified_after.as_deref())?;
    let before = timestamp("modified_before", q.modified_before.as_deref())?;
    if let Some(t) = &q.fraud_type {
        fraud_type(t)?;
    }
    if let Some(s) = &q.status {
        one_of("status", s, &[FraudMarkerStatus::Registered.as_str(), FraudMarkerStatus::Cancelled.as_str()])?;
    }
    // BTG lists the markers of every tenant sharing its identity: keep this tenant's own.
    let ours = state.store.fraud_marker_ids(tenant.id, document.as_str()).await?;
    if ours.is_empty() {
        return Ok(Json(FraudMarkerPage { items: Vec::new(), limit, has_more_elements: false }));
    }
    let mut markers: Vec<btg::FraudMarker> = btg_of(&state, &tenant)?
        .fraud_markers(document.as_str())
        .await
        .map_err(|e| btg_error("listing fraud markers", e))?
        .into_iter()
        .filter(|m| ours.contains(&m.id))
        // A cancellation moves a marker's `updatedAt`, so a cursor reader sees it again.
        .filter(|m| after.is_none_or(|t| m.updated_at > t) && before.is_none_or(|t| m.updated_at < t))
        .filter(|m| q.key.as_deref().is_none_or(|k| m.key.as_deref() == Some(k)))
        .filter(|m| q.status.as_deref().is_none_or(|s| m.status.as_str() == s))
        .filter(|m| q.fraud_type.as_deref().is_none_or(|f| m.fraud_type.as_str() == f))
        .collect();
    markers.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then_with(|| a.id.cmp(&b.id)));
    let has_more = markers.len() > limit as usize;
    markers.truncate(limit as usize);
    Ok(Json(FraudMarkerPage {
        items: markers.into_iter().map(marker_view).collect(),
        limit,
        has_more_elements: has_more,
    }))
}

/// Cancel a fraud marker.
#[utoipa::path(post, path = "/v1/dict/fraud-markers/{id}/cancel", tag = "MED", params(("id" = String, Path)),
    security(("tenant_token" = [])),
    responses((status = 200, body = FraudMarkerView), (status = 404, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn cancel_fraud_marker(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<FraudMarkerView>> {
    if id.len() > 128 || !state.store.owns_fraud_marker(tenant.id, &id).await? {
        return Err(marker_not_found());
    }
    let marker = btg_of(&state, &tenant)?.cancel_fraud_marker(&id).await.map_err(|e| btg_error("fraud marker", e))?;
    Ok(Json(marker_view(marker)))
}

// ============================================================================================ infraction reports

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateInfractionReport {
    /// EndToEndId of one of the tenant's payments (see `PIX-0035`).
    #[schema(schema_with = crate::openapi::end_to_end_id)]
    pub transaction_id: String,
    /// `REFUND_REQUEST` (payer's PSP) or `REFUND_CANCELLED` (payee's PSP; needs `OTHER`).
    #[schema(pattern = "^(REFUND_REQUEST|REFUND_CANCELLED)$")]
    pub reason: String,
    /// `SCAM`, `ACCOUNT_TAKEOVER`, `COERCION`, `FRAUDULENT_ACCESS` or `OTHER` (needs details).
    #[schema(pattern = "^(SCAM|ACCOUNT_TAKEOVER|COERCION|FRAUDULENT_ACCESS|OTHER)$")]
    pub situation_type: Option<String>,
    /// Up to 2,000 characters.
    #[schema(max_length = 2000)]
    pub report_details: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfractionReportView {
    pub id: Uuid,
    /// The report's id at DICT.
    pub bacen_infraction_id: String,
    pub transaction_id: String,
    pub reason: String,
    pub situation_type: Option<String>,
    pub report_details: Option<String>,
    #[schema(value_type = String, pattern = "^(OPEN|ACKNOWLEDGED|CLOSED|CANCELLED)$")]
    pub status: InfractionStatus,
    /// Our side.
    #[schema(value_type = String, pattern = "^(REPORTER|COUNTERPARTY)$")]
    pub role: ReportRole,
    pub reporter_participant: String,
    pub counterparty_participant: String,
    /// Once closed.
    #[schema(value_type = Option<String>, pattern = "^(AGREED|DISAGREED)$")]
    pub analysis_result: Option<AnalysisResult>,
    pub analysis_details: Option<String>,
    pub fraud_marker_id: Option<String>,
    /// The MED 2.0 funds recovery this report belongs to, if any.
    pub fund_recovery_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `GET /v1/dict/infraction-reports/{id}` of a report against a Pix we received: the
    /// cautionary block it placed (its changes are CAUTIONARY_BLOCK events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cautionary_block: Option<CautionaryBlockView>,
}

impl From<&InfractionReport> for InfractionReportView {
    fn from(r: &InfractionReport) -> Self {
        InfractionReportView {
            id: r.id,
            bacen_infraction_id: r.btg_id.clone(),
            transaction_id: r.transaction_id.clone(),
            reason: r.reason.clone(),
            situation_type: r.situation_type.clone(),
            report_details: r.report_details.clone(),
            status: r.status,
            role: r.role,
            reporter_participant: r.reporter_participant.clone(),
            counterparty_participant: r.counterparty_participant.clone(),
            analysis_result: r.analysis_result,
            analysis_details: r.analysis_details.clone(),
            fraud_marker_id: r.fraud_marker_id.clone(),
            fund_recovery_id: r.fund_recovery_id.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            cautionary_block: None,
        }
    }
}

/// Stores a report change with its INFRACTION_REPORT event (and the release of its cautionary
/// block when it closes in our customer's favour).
async fn save_report(state: &Dict, report: &InfractionReport) -> ApiResult<()> {
    save_report_with_block(state, report, None).await
}

/// [`save_report`]; `first`: the report against us is new, with DICT's `InfractionAmount`, and
/// its cautionary block is decided in the same transaction.
async fn save_report_with_block(state: &Dict, report: &InfractionReport, first: Option<Option<i64>>) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    upsert_infraction_report(&mut tx, report).await?;
    record_event(
        &mut tx,
        report.tenant_id,
        "INFRACTION_REPORT",
        report.id,
        &InfractionReportView::from(report),
        report.updated_at,
    )
    .await?;
    match first {
        Some(amount) => super::blocks::on_new_report(&mut tx, state, report, amount).await?,
        None => super::blocks::on_report_saved(&mut tx, report).await?,
    }
    tx.commit().await?;
    Ok(())
}

/// Copies BTG's state of a report onto ours; `false` when it says nothing new.
fn merge_report(local: &mut InfractionReport, remote: &btg::InfractionReport, now: DateTime<Utc>) -> bool {
    if remote.updated_at < local.btg_updated_at || !local.status.accepts(remote.status) {
        return false;
    }
    let changed = local.status != remote.status
        || local.analysis_result != remote.analysis_result
        || local.analysis_details != remote.analysis_details;
    local.status = remote.status;
    local.analysis_result = remote.analysis_result;
    local.analysis_details.clone_from(&remote.analysis_details);
    local.btg_updated_at = remote.updated_at;
    if changed {
        local.updated_at = now;
    }
    changed
}

fn report_from(
    tenant: &Tenant,
    remote: &btg::InfractionReport,
    details: Option<String>,
    now: DateTime<Utc>,
) -> InfractionReport {
    InfractionReport {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        btg_id: remote.id.clone(),
        role: if remote.reporter_participant == tenant.ispb { ReportRole::Reporter } else { ReportRole::Counterparty },
        transaction_id: remote.end_to_end_id.clone(),
        reason: remote.reason.clone(),
        situation_type: remote.situation_type.clone(),
        report_details: details,
        status: remote.status,
        reporter_participant: remote.reporter_participant.clone(),
        counterparty_participant: remote.counterparty_participant.clone(),
        analysis_result: remote.analysis_result,
        analysis_details: remote.analysis_details.clone(),
        fraud_marker_id: None,
        fund_recovery_id: None,
        btg_updated_at: remote.updated_at,
        created_at: now,
        updated_at: now,
    }
}

const SITUATIONS: [&str; 5] = ["SCAM", "ACCOUNT_TAKEOVER", "COERCION", "FRAUDULENT_ACCESS", "OTHER"];

/// Report an infraction on a settled payment. **Deprecated** (DICT 2.12.1 creates reports
/// through funds recoveries): it still works, answers with a `Deprecation` header and logs a
/// warning.
#[utoipa::path(post, path = "/v1/dict/infraction-reports", tag = "MED", request_body = CreateInfractionReport,
    security(("tenant_token" = [])),
    responses((status = 201, body = InfractionReportView, headers(("Deprecation" = String))),
               (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn create_infraction_report(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppJson(body): AppJson<CreateInfractionReport>,
) -> ApiResult<Response> {
    tracing::warn!(tenant = %tenant.id, "deprecated endpoint used: POST /v1/dict/infraction-reports (use funds recoveries)");
    let e2e = end_to_end("transactionId", &body.transaction_id)?;
    one_of("reason", &body.reason, &["REFUND_REQUEST", "REFUND_CANCELLED"])?;
    if let Some(s) = &body.situation_type {
        one_of("situationType", s, &SITUATIONS)?;
    }
    let situation = body.situation_type.as_deref();
    if body.reason == "REFUND_CANCELLED" && situation != Some("OTHER") {
        return Err(invalid("situationType: REFUND_CANCELLED reports need OTHER"));
    }
    let details = body.report_details.filter(|d| !d.trim().is_empty());
    if situation == Some("OTHER") && details.is_none() {
        return Err(missing("reportDetails"));
    }
    if details.as_ref().is_some_and(|d| d.chars().count() > 2000) {
        return Err(invalid("reportDetails: at most 2000 characters"));
    }
    own_payment(&state, &tenant, &e2e).await?;
    let remote = btg_of(&state, &tenant)?
        .create_infraction_report(&NewInfractionReport {
            end_to_end_id: e2e,
            reason: body.reason.clone(),
            situation_type: body.situation_type.clone(),
            details: details.clone(),
        })
        .await
        .map_err(|e| btg_error("reporting the infraction", e))?;
    let report = report_from(&tenant, &remote, details, state.clock.now());
    save_report(&state, &report).await?;
    let mut response = (StatusCode::CREATED, Json(InfractionReportView::from(&report))).into_response();
    response.headers_mut().insert("deprecation", HeaderValue::from_static("true"));
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InfractionQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
    #[param(pattern = "^(OPEN|ACKNOWLEDGED|CLOSED|CANCELLED)$")]
    pub status: Option<String>,
    pub transaction_id: Option<String>,
    pub reporter_participant: Option<String>,
    pub counterparty_participant: Option<String>,
    #[param(pattern = "^(AGREED|DISAGREED)$")]
    pub analysis_result: Option<String>,
    /// The reports of this funds recovery (our id, or DICT's for one we do not have).
    pub fund_recovery_id: Option<String>,
    #[param(format = DateTime)]
    pub modified_after: Option<String>,
    #[param(format = DateTime)]
    pub modified_before: Option<String>,
}

/// Infraction reports in both roles.
#[utoipa::path(get, path = "/v1/dict/infraction-reports", tag = "MED", params(InfractionQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<InfractionReportView>), (status = 400, body = ErrorResponse)))]
async fn list_infraction_reports(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(q): AppQuery<InfractionQuery>,
) -> ApiResult<Json<Page<InfractionReportView>>> {
    let (limit, offset, page, size) = paging(q.page, q.limit)?;
    let filter = InfractionFilter {
        status: q.status.as_deref().map(|s| parse_enum("status", s)).transpose()?,
        transaction_id: q.transaction_id,
        reporter_participant: q.reporter_participant,
        counterparty_participant: q.counterparty_participant,
        analysis_result: q.analysis_result.as_deref().map(|a| parse_enum("analysis_result", a)).transpose()?,
        fund_recovery_id: q.fund_recovery_id,
        modified_after: timestamp("modified_after", q.modified_after.as_deref())?,
        modified_before: timestamp("modified_before", q.modified_before.as_deref())?,
        descending: descending(q.sort_order.as_deref(), true)?,
    };
    let (items, total) = state.store.list_infraction_reports(tenant.id, &filter, limit, offset).await?;
    Ok(Json(Page { items: items.iter().map(InfractionReportView::from).collect(), page, limit: size, total }))
}

/// A report by our id; a malformed id is `PIX-0219`.
async fn find_report(state: &Dict, tenant: &Tenant, id: &str) -> ApiResult<InfractionReport> {
    let id = Uuid::parse_str(id)
        .map_err(|_| ApiError::new(ErrorCode::InvalidInfractionId, "infraction_id must be a UUID"))?;
    state
        .store
        .infraction_report(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InfractionReportNotFound, "infraction report not found"))
}

fn report_refused(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidInfractionStatus, message)
}

/// One infraction report.
#[utoipa::path(get, path = "/v1/dict/infraction-reports/{infraction_id}", tag = "MED",
    params(("infraction_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = InfractionReportView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_infraction_report(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<InfractionReportView>> {
    let report = find_report(&state, &tenant, &id).await?;
    let block = state.store.cautionary_block_of_report(tenant.id, report.id).await?;
    Ok(Json(InfractionReportView { cautionary_block: block.as_ref().map(Into::into), ..(&report).into() }))
}

/// Counterparty: acknowledge a report against us (OPEN → ACKNOWLEDGED).
#[utoipa::path(post, path = "/v1/dict/infraction-reports/{infraction_id}/acknowledge", tag = "MED",
    params(("infraction_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = InfractionReportView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn acknowledge_infraction_report(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<InfractionReportView>> {
    let mut report = find_report(&state, &tenant, &id).await?;
    if report.role != ReportRole::Counterparty {
        return Err(report_refused("only the counterparty acknowledges a report"));
    }
    match report.status {
        InfractionStatus::Acknowledged => return Ok(Json(InfractionReportView::from(&report))),
        InfractionStatus::Open => {}
        _ => return Err(report_refused("only an OPEN report can be acknowledged")),
    }
    let remote = btg_of(&state, &tenant)?
        .acknowledge_infraction_report(&report.btg_id)
        .await
        .map_err(|e| btg_error("acknowledging the report", e))?;
    if merge_report(&mut report, &remote, state.clock.now()) {
        save_report(&state, &report).await?;
    }
    Ok(Json(InfractionReportView::from(&report)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloseInfractionReport {
    /// `AGREED` or `DISAGREED`.
    #[schema(pattern = "^(AGREED|DISAGREED)$")]
    pub analysis_result: String,
    #[schema(max_length = 2000)]
    pub analysis_details: Option<String>,
    /// With AGREED: also register a fraud marker of this type for `taxIdNumber`.
    #[schema(pattern = "^(APPLICATION_FRAUD|MULE_ACCOUNT|SCAMMER_ACCOUNT|OTHER)$")]
    pub fraud_type: Option<String>,
    /// The person to mark (needed with `fraudType`).
    #[schema(pattern = r"^([0-9]{11}|[A-Za-z0-9]{12}[0-9]{2})$")]
    pub tax_id_number: Option<String>,
    /// The key to mark with the person, if any.
    #[schema(min_length = 1, max_length = 77)]
    pub key: Option<String>,
}

/// Counterparty: close a report with our analysis. AGREED with a `fraudType` also registers a
/// fraud marker.
#[utoipa::path(post, path = "/v1/dict/infraction-reports/{infraction_id}/close", tag = "MED",
    request_body = CloseInfractionReport, params(("infraction_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = InfractionReportView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn close_infraction_report(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<CloseInfractionReport>,
) -> ApiResult<Json<InfractionReportView>> {
    let agreed = parse_enum::<AnalysisResult>("analysisResult", &body.analysis_result)? == AnalysisResult::Agreed;
    let marker = match (&body.fraud_type, agreed) {
        (Some(_), false) => return Err(invalid("fraudType: only with AGREED")),
        (Some(t), true) => {
            let tax_id = body.tax_id_number.as_deref().ok_or_else(|| missing("taxIdNumber"))?;
            Document::parse(tax_id).map_err(|e| invalid(format!("taxIdNumber: {e}")))?;
            Some((fraud_type(t)?, tax_id))
        }
        (None, _) => None,
    };
    if body.analysis_details.as_ref().is_some_and(|d| d.chars().count() > 2000) {
        return Err(invalid("analysisDetails: at most 2000 characters"));
    }
    let mut report = find_report(&state, &tenant, &id).await?;
    if report.role != ReportRole::Counterparty {
        return Err(report_refused("only the counterparty closes a report"));
    }
    if report.status.is_final() {
        return Err(report_refused("only an OPEN or ACKNOWLEDGED report can be closed"));
    }
    let remote = btg_of(&state, &tenant)?
        .close_infraction_report(&report.btg_id, agreed, body.analysis_details.as_deref())
        .await
        .map_err(|e| btg_error("closing the report", e))?;
    merge_report(&mut report, &remote, state.clock.now());
    save_report(&state, &report).await?;
    if let Some((kind, tax_id)) = marker {
        let created = register_marker(&state, &tenant, tax_id, kind, body.key.as_deref()).await?;
        report.fraud_marker_id = Some(created.id);
        report.updated_at = state.clock.now();
        save_report(&state, &report).await?;
    }
    Ok(Json(InfractionReportView::from(&report)))
}

/// Reporter: cancel a report we filed.
#[utoipa::path(post, path = "/v1/dict/infraction-reports/{infraction_id}/cancel", tag = "MED",
    params(("infraction_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = InfractionReportView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse)))]
async fn cancel_infraction_report(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<InfractionReportView>> {
    let mut report = find_report(&state, &tenant, &id).await?;
    if report.role != ReportRole::Reporter {
        return Err(report_refused("only the reporter cancels a report"));
    }
    if report.fund_recovery_id.is_some() || report.status.is_final() {
        return Err(report_refused("only an OPEN or ACKNOWLEDGED report outside a funds recovery can be cancelled"));
    }
    let remote = btg_of(&state, &tenant)?
        .cancel_infraction_report(&report.btg_id)
        .await
        .map_err(|e| btg_error("cancelling the report", e))?;
    if merge_report(&mut report, &remote, state.clock.now()) {
        save_report(&state, &report).await?;
    }
    Ok(Json(InfractionReportView::from(&report)))
}

/// `INFRACTION_REPORT_V2` events: reports against us, and changes of any report.
pub struct InfractionEvents(pub Dict);

impl InboundHandler for InfractionEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let state = &self.0;
            let Some(tenant) = state.store.tenant(event.tenant_id).await.map_err(retry)? else {
                return Err(JobError::Permanent("unknown tenant".into()));
            };
            let BtgEvent::InfractionReport(remote) = super::decode_event(event)? else {
                return Err(JobError::Permanent("INFRACTION_REPORT_V2 without a report".into()));
            };
            let now = state.clock.now();
            let (mut report, mut changed, first) =
                match state.store.infraction_report_by_btg_id(tenant.id, &remote.id).await.map_err(retry)? {
                    Some(mut local) => {
                        let changed = merge_report(&mut local, &remote, now);
                        (local, changed, None)
                    }
                    None => (
                        report_from(&tenant, &remote, None, now),
                        true,
                        Some(remote.infraction_amount.map(|a| a.centavos())),
                    ),
                };
            let recovery =
                local_recovery_id(state, tenant.id, remote.funds_recovery_id.as_deref()).await.map_err(retry)?;
            if recovery.is_some() && report.fund_recovery_id != recovery {
                report.fund_recovery_id = recovery;
                report.updated_at = now;
                changed = true;
            }
            if changed {
                save_report_with_block(state, &report, first).await.map_err(|e| retry(e.0))?;
            }
            Ok(())
        })
    }
}

// ============================================================================================ refund requests

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRefundRequest {
    /// EndToEndId of one of the tenant's payments (see `PIX-0035`).
    #[schema(schema_with = crate::openapi::end_to_end_id)]
    pub transaction_id: String,
    /// Decimal string with two places.
    #[schema(example = "100.00", pattern = r"^[0-9]{1,15}(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// A report of ours closed AGREED (needed for FRAUD when known here).
    pub infraction_id: Option<Uuid>,
    /// `FRAUD` (default), `OPERATIONAL_FLAW` (needs details) or `PIX_AUTOMATICO`.
    #[schema(pattern = "^(FRAUD|OPERATIONAL_FLAW|PIX_AUTOMATICO)$")]
    pub reason: Option<String>,
    #[schema(max_length = 2000)]
    pub refund_details: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequestView {
    pub id: Uuid,
    pub bacen_refund_id: String,
    pub transaction_id: String,
    #[schema(value_type = String, example = "100.00")]
    pub amount: Money,
    pub reason: String,
    #[schema(value_type = String, pattern = "^(OPEN|CLOSED|CANCELLED)$")]
    pub status: RefundRequestStatus,
    /// Our side.
    #[schema(value_type = String, pattern = "^(REQUESTING|CONTESTED)$")]
    pub role: RequestRole,
    pub infraction_id: Option<String>,
    pub requesting_participant: Option<String>,
    pub contested_participant: Option<String>,
    pub refund_details: Option<String>,
    /// Once closed.
    #[schema(value_type = Option<String>, pattern = "^(TOTALLY_ACCEPTED|PARTIALLY_ACCEPTED|REJECTED)$")]
    pub analysis_result: Option<RefundAnalysisResult>,
    pub analysis_details: Option<String>,
    pub rejection_reason: Option<String>,
    pub refund_transaction_id: Option<String>,
    /// Our refund (see `/v1/refunds/{id}`) that moved the funds. Contested side: the refund
    /// (type CASHOUT) that returned them, when the request was closed with `refundId` or
    /// `createRefund`, or with a `refundTransactionId` of ours. Requesting side: the refund (type
    /// CASHIN) that received the return DICT names in `refundTransactionId`.
    pub refund_id: Option<Uuid>,
    /// The MED 2.0 funds recovery this request belongs to, if any.
    pub fund_recovery_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&RefundRequest> for RefundRequestView {
    fn from(r: &RefundRequest) -> Self {
        RefundRequestView {
            id: r.id,
            bacen_refund_id: r.btg_id.clone(),
            transaction_id: r.transaction_id.clone(),
            amount: Money::from_centavos(r.amount),
            reason: r.reason.clone(),
            status: r.status,
            role: r.role,
            infraction_id: r.infraction_id.clone(),
            requesting_participant: r.requesting_participant.clone(),
            contested_participant: r.contested_participant.clone(),
            refund_details: r.refund_details.clone(),
            analysis_result: r.analysis_result,
            analysis_details: r.analysis_details.clone(),
            rejection_reason: r.rejection_reason.clone(),
            refund_transaction_id: r.refund_transaction_id.clone(),
            refund_id: r.refund_id,
            fund_recovery_id: r.fund_recovery_id.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

async fn save_refund(state: &Dict, refund: &RefundRequest) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    upsert_refund_request(&mut tx, refund).await?;
    record_event(&mut tx, refund.tenant_id, "REFUND", refund.id, &RefundRequestView::from(refund), refund.updated_at)
        .await?;
    super::blocks::on_request_saved(&mut tx, refund).await?;
    tx.commit().await?;
    Ok(())
}

fn merge_refund(local: &mut RefundRequest, remote: &btg::RefundRequest, now: DateTime<Utc>) -> bool {
    if !local.status.accepts(remote.status) {
        return false; // Closed or cancelled is final; an older event cannot reopen it.
    }
    let changed = local.status != remote.status
        || local.analysis_result != remote.analysis_result
        || local.rejection_reason != remote.rejection_reason
        || local.refund_transaction_id != remote.refund_end_to_end_id;
    local.status = remote.status;
    local.analysis_result = remote.analysis_result;
    local.rejection_reason.clone_from(&remote.rejection_reason);
    local.refund_transaction_id.clone_from(&remote.refund_end_to_end_id);
    if changed {
        local.updated_at = now;
    }
    changed
}

/// Ask for a payment's funds back (MED).
#[utoipa::path(post, path = "/v1/dict/refund-requests", tag = "MED", request_body = CreateRefundRequest,
    security(("tenant_token" = [])),
    responses((status = 201, body = RefundRequestView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn create_refund_request(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppJson(body): AppJson<CreateRefundRequest>,
) -> ApiResult<(StatusCode, Json<RefundRequestView>)> {
    let e2e = end_to_end("transactionId", &body.transaction_id)?;
    let amount = Amount::parse(&body.amount).map_err(|e| invalid(format!("amount: {e}")))?.money();
    let reason = body.reason.clone().unwrap_or_else(|| "FRAUD".into());
    one_of("reason", &reason, &["FRAUD", "OPERATIONAL_FLAW", "PIX_AUTOMATICO"])?;
    let details = body.refund_details.filter(|d| !d.trim().is_empty());
    if reason == "OPERATIONAL_FLAW" && details.is_none() {
        return Err(missing("refundDetails"));
    }
    if details.as_ref().is_some_and(|d| d.chars().count() > 2000) {
        return Err(invalid("refundDetails: at most 2000 characters"));
    }
    let infraction =
        match body.infraction_id {
            Some(id) => {
                Some(state.store.infraction_report(tenant.id, id).await?.ok_or_else(|| {
                    ApiError::new(ErrorCode::InfractionReportNotFound, "infractionId: no such report")
                })?)
            }
            None => None,
        };
    // DICT: a FRAUD refund needs the report closed AGREED.
    if let Some(r) = &infraction
        && reason == "FRAUD"
        && !(r.status == InfractionStatus::Closed && r.analysis_result == Some(AnalysisResult::Agreed))
    {
        return Err(report_refused("a FRAUD refund needs the infraction report closed AGREED"));
    }
    own_payment(&state, &tenant, &e2e).await?;
    let remote = btg_of(&state, &tenant)?
        .create_refund_request(&NewRefundRequest {
            end_to_end_id: e2e.clone(),
            amount: pix_integrations::Money::from_centavos(amount.centavos()),
            reason: reason.clone(),
            infraction_report_id: infraction.as_ref().map(|r| r.btg_id.clone()),
            details: details.clone(),
        })
        .await
        .map_err(|e| btg_error("requesting the refund", e))?;
    let now = state.clock.now();
    let refund = RefundRequest {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        btg_id: remote.id,
        role: RequestRole::Requesting,
        transaction_id: e2e,
        amount: remote.amount.centavos(),
        reason,
        status: remote.status,
        infraction_id: infraction.map(|r| r.id.to_string()),
        requesting_participant: Some(tenant.ispb.clone()),
        contested_participant: None,
        refund_details: details,
        analysis_result: remote.analysis_result,
        analysis_details: None,
        rejection_reason: remote.rejection_reason,
        refund_transaction_id: remote.refund_end_to_end_id,
        fund_recovery_id: None,
        refund_id: None,
        created_at: now,
        updated_at: now,
    };
    save_refund(&state, &refund).await?;
    tracing::info!(refund = %refund.id, amount = %amount, "MED refund requested");
    Ok((StatusCode::CREATED, Json(RefundRequestView::from(&refund))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefundQuery {
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
    #[param(pattern = "^[A-Za-z0-9]{32}$")]
    pub transaction_id: Option<String>,
    #[param(pattern = "^(OPEN|CLOSED|CANCELLED)$")]
    pub status: Option<String>,
    #[param(min_length = 8, max_length = 8)]
    pub requesting_participant: Option<String>,
    #[param(min_length = 8, max_length = 8)]
    pub contested_participant: Option<String>,
    pub infraction_id: Option<String>,
    #[param(schema_with = crate::openapi::one_of::<pix_core::med::RefundAnalysisResult>)]
    pub analysis_result: Option<String>,
    pub refund_transaction_id: Option<String>,
    /// The requests linked to this refund of ours (`refundId`).
    pub refund_id: Option<Uuid>,
    /// The requests of this funds recovery (our id, or DICT's for one we do not have).
    pub fund_recovery_id: Option<String>,
    #[param(format = DateTime)]
    pub modified_after: Option<String>,
    #[param(format = DateTime)]
    pub modified_before: Option<String>,
}

/// Refund requests in both roles.
#[utoipa::path(get, path = "/v1/dict/refund-requests", tag = "MED", params(RefundQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<RefundRequestView>), (status = 400, body = ErrorResponse)))]
async fn list_refund_requests(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(q): AppQuery<RefundQuery>,
) -> ApiResult<Json<Page<RefundRequestView>>> {
    let (limit, offset, page, size) = paging(q.page, q.limit)?;
    if let Some(t) = &q.transaction_id
        && t.len() != 32
    {
        return Err(invalid("transaction_id must have 32 characters"));
    }
    for (name, value) in
        [("requesting_participant", &q.requesting_participant), ("contested_participant", &q.contested_participant)]
    {
        if value.as_ref().is_some_and(|v| v.len() != 8) {
            return Err(invalid(format!("{name} must have 8 characters")));
        }
    }
    let filter = RefundFilter {
        transaction_id: q.transaction_id,
        status: q.status.as_deref().map(|s| parse_enum("status", s)).transpose()?,
        requesting_participant: q.requesting_participant,
        contested_participant: q.contested_participant,
        infraction_id: q.infraction_id,
        analysis_result: q.analysis_result.as_deref().map(|a| parse_enum("analysis_result", a)).transpose()?,
        refund_transaction_id: q.refund_transaction_id,
        refund_id: q.refund_id,
        fund_recovery_id: q.fund_recovery_id,
        modified_after: timestamp("modified_after", q.modified_after.as_deref())?,
        modified_before: timestamp("modified_before", q.modified_before.as_deref())?,
        descending: descending(q.sort_order.as_deref(), true)?,
    };
    let (items, total) = state.store.list_refund_requests(tenant.id, &filter, limit, offset).await?;
    Ok(Json(Page { items: items.iter().map(RefundRequestView::from).collect(), page, limit: size, total }))
}

async fn find_refund(state: &Dict, tenant: &Tenant, id: &str) -> ApiResult<RefundRequest> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::new(ErrorCode::InvalidRefundId, "refund_id must be a UUID"))?;
    state
        .store
        .refund_request(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::RefundRequestNotFound, "refund request not found"))
}

/// One refund request.
#[utoipa::path(get, path = "/v1/dict/refund-requests/{refund_id}", tag = "MED",
    params(("refund_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = RefundRequestView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_refund_request(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<RefundRequestView>> {
    Ok(Json(RefundRequestView::from(&find_refund(&state, &tenant, &id).await?)))
}

/// Requesting side: withdraw a refund request we filed that is still OPEN. A request that
/// belongs to a funds recovery is withdrawn by cancelling the recovery (DICT cancels its
/// requests), so it is refused here.
#[utoipa::path(post, path = "/v1/dict/refund-requests/{refund_id}/cancel", tag = "MED",
    params(("refund_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = RefundRequestView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn cancel_refund_request(
    State(state): State<Dict>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<RefundRequestView>> {
    let mut refund = find_refund(&state, &tenant, &id).await?;
    if refund.role != RequestRole::Requesting {
        return Err(ApiError::new(
            ErrorCode::InvalidRefundStatus,
            "only the requesting participant cancels a refund request",
        ));
    }
    if refund.fund_recovery_id.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidRefundStatus,
            "this refund request belongs to a funds recovery: cancel the recovery instead",
        ));
    }
    match refund.status {
        RefundRequestStatus::Cancelled => return Ok(Json(RefundRequestView::from(&refund))),
        RefundRequestStatus::Open => {}
        _ => return Err(ApiError::new(ErrorCode::InvalidRefundStatus, "only an OPEN refund request can be cancelled")),
    }
    let remote = btg_of(&state, &tenant)?
        .cancel_refund_request(&refund.btg_id)
        .await
        .map_err(|e| btg_error("cancelling the refund request", e))?;
    if merge_refund(&mut refund, &remote, state.clock.now()) {
        save_refund(&state, &refund).await?;
    }
    Ok(Json(RefundRequestView::from(&refund)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloseRefundRequest {
    /// `TOTALLY_ACCEPTED`, `PARTIALLY_ACCEPTED` or `REJECTED`.
    #[schema(pattern = "^(TOTALLY_ACCEPTED|PARTIALLY_ACCEPTED|REJECTED)$")]
    pub refund_analysis_result: String,
    #[schema(max_length = 2000)]
    pub refund_analysis_details: Option<String>,
    /// With REJECTED: `NO_BALANCE`, `ACCOUNT_CLOSURE`, `INVALID_REQUEST` (OPERATIONAL_FLAW only,
    /// needs details) or `OTHER`.
    #[schema(pattern = "^(NO_BALANCE|ACCOUNT_CLOSURE|INVALID_REQUEST|OTHER)$")]
    pub refund_rejection_reason: Option<String>,
    /// When accepted, exactly one of `refundTransactionId`, `refundId` and `createRefund`.
    /// The return (`D…`) that sent the funds back. When it is the return of one of our refunds,
    /// that refund is checked as with `refundId` and linked.
    #[schema(pattern = r"^D[0-9]{20}[A-Za-z0-9]{11}$")]
    pub refund_transaction_id: Option<String>,
    /// One of our refunds (type CASHOUT) of this request's transaction, PROCESSING or COMPLETED,
    /// of the requested amount (TOTALLY_ACCEPTED) or less (PARTIALLY_ACCEPTED): its return id is
    /// sent and the request links it.
    #[schema(format = "uuid")]
    pub refund_id: Option<Uuid>,
    /// Return the funds now (reason FR01, from the account the Pix credited) and send that
    /// refund's return id; the request links it.
    pub create_refund: Option<MedRefundCreate>,
}

/// The refund `createRefund` makes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MedRefundCreate {
    /// Decimal string with two places. TOTALLY_ACCEPTED: the requested amount (the default);
    /// PARTIALLY_ACCEPTED: required, less than the requested amount.
    #[schema(example = "40.00", pattern = r"^[0-9]{1,15}(\.[0-9]{1,2})?$")]
    pub amount: Option<String>,
}

/// Metadata key of a refund created to close a MED refund request: the request's id. At most one
/// refund that has not FAILED carries a given request's id (migration 0014's unique index).
const MED_REQUEST_KEY: &str = "medRefundRequestId";

/// How an accepted close names the return of the funds.
enum Return {
    /// A bare return id: ours (then checked and linked) or made elsewhere.
    Given(String),
    /// One of our refunds.
    Refund(Uuid),
    /// A refund to create now, of this many centavos.
    Create(i64),
}

/// The return an accepted close names (exactly one of the three fields), checked against the
/// request (`requested`: its amount in centavos).
fn return_of(body: &CloseRefundRequest, result: RefundAnalysisResult, requested: i64) -> ApiResult<Return> {
    let given = [body.refund_transaction_id.is_some(), body.refund_id.is_some(), body.create_refund.is_some()];
    match given.iter().filter(|g| **g).count() {
        0 => return Err(missing("refundTransactionId (or refundId, or createRefund)")),
        1 => {}
        _ => return Err(invalid("refundTransactionId, refundId and createRefund: give exactly one")),
    }
    if let Some(rtr) = &body.refund_transaction_id {
        let parsed = EndToEndId::parse(rtr).map_err(|e| invalid(format!("refundTransactionId: {e}")))?;
        if !parsed.is_return() {
            return Err(invalid("refundTransactionId: must be a return id (D…)"));
        }
        return Ok(Return::Given(parsed.as_str().to_owned()));
    }
    if let Some(id) = body.refund_id {
        return Ok(Return::Refund(id));
    }
    let create = body.create_refund.as_ref().ok_or_else(|| missing("createRefund"))?;
    let amount = match (&create.amount, result) {
        (Some(a), _) => Amount::parse(a).map_err(|e| invalid(format!("createRefund.amount: {e}")))?.money().centavos(),
        (None, RefundAnalysisResult::TotallyAccepted) => requested,
        (None, _) => return Err(missing("createRefund.amount")),
    };
    let requested_money = Money::from_centavos(requested);
    if result == RefundAnalysisResult::TotallyAccepted && amount != requested {
        return Err(invalid(format!("createRefund.amount: TOTALLY_ACCEPTED returns the requested {requested_money}")));
    }
    if result == RefundAnalysisResult::PartiallyAccepted && amount >= requested {
        return Err(invalid(format!(
            "createRefund.amount: PARTIALLY_ACCEPTED returns less than the requested {requested_money}"
        )));
    }
    Ok(Return::Create(amount))
}

fn link_refused(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRefundStatus, message)
}

/// `r` may close `request` as `result`: a refund we sent of the request's transaction, accepted by
/// BTG (PROCESSING or COMPLETED, so it has its return id), of the requested amount when
/// TOTALLY_ACCEPTED and of less when PARTIALLY_ACCEPTED. Otherwise `PIX-0204`.
fn check_linkable(request: &RefundRequest, result: RefundAnalysisResult, r: &Refund) -> ApiResult<()> {
    if r.kind() != Direction::Cashout {
        return Err(link_refused(format!("refund {} is a return we received, not one we sent", r.id)));
    }
    if r.original_end_to_end_id != request.transaction_id {
        return Err(link_refused(format!(
            "refund {} returns {}, not this request's transaction {}",
            r.id, r.original_end_to_end_id, request.transaction_id
        )));
    }
    if !matches!(r.status(), RefundStatus::Processing | RefundStatus::Completed) || r.return_end_to_end_id().is_none() {
        return Err(link_refused(format!(
            "refund {} is {}: only a PROCESSING or COMPLETED refund has a return id BTG accepted",
            r.id,
            r.status()
        )));
    }
    let (returned, requested) = (Money::from_centavos(r.amount), Money::from_centavos(request.amount));
    match result {
        RefundAnalysisResult::TotallyAccepted if r.amount != request.amount => Err(link_refused(format!(
            "refund {} returns {returned}; TOTALLY_ACCEPTED needs the requested {requested}",
            r.id
        ))),
        RefundAnalysisResult::PartiallyAccepted if r.amount >= request.amount => Err(link_refused(format!(
            "refund {} returns {returned}; PARTIALLY_ACCEPTED needs less than the requested {requested}",
            r.id
        ))),
        _ => Ok(()),
    }
}

/// `r` is not linked to another refund request: one return closes one request.
async fn not_linked_elsewhere(state: &Dict, request: &RefundRequest, r: &Refund) -> ApiResult<()> {
    let filter = RefundFilter { refund_id: Some(r.id), ..RefundFilter::default() };
    let (linked, _) = state.store.list_refund_requests(request.tenant_id, &filter, 2, 0).await?;
    match linked.iter().find(|other| other.id != request.id) {
        Some(other) => Err(link_refused(format!("refund {} already closes refund request {}", r.id, other.id))),
        None => Ok(()),
    }
}

/// The refund created earlier to close `request` that has not failed, if any (the unique index
/// allows at most one).
async fn live_med_refund(state: &Dict, tenant: &Tenant, transfer: Uuid, request: Uuid) -> ApiResult<Option<Refund>> {
    let tag = serde_json::Value::String(request.to_string());
    Ok(state.store.refunds_of_transfer(tenant.id, transfer).await?.into_iter().find(|r| {
        r.kind() == Direction::Cashout
            && r.status() != RefundStatus::Failed
            && r.metadata.get(MED_REQUEST_KEY) == Some(&tag)
    }))
}

/// The pacs.004 reason of a MED return: BE08 for an operational flaw, FR01 otherwise (fraud).
fn med_return_reason(request_reason: &str) -> RefundReason {
    match request_reason {
        "OPERATIONAL_FLAW" => RefundReason::Be08,
        _ => RefundReason::Fr01,
    }
}

/// `createRefund`: returns `amount` centavos of the cash-in the request names through the refund
/// engine (reason FR01, BE08 for OPERATIONAL_FLAW), taking over the payment's cautionary block
/// when it holds exactly that amount (else releasing it first), or reuses the refund an earlier close of this request created, and links
/// it to the request at once (before BTG's DICT is called), so that a retry finds it. Answers the
/// refund only once BTG accepted it: PENDING is `PIX-0207` (409, close again later), FAILED is
/// `PIX-0204`; the engine's refusals pass through with their own codes. Nothing is sent to DICT
/// in those cases.
async fn create_med_refund(
    app: &AppState,
    state: &Dict,
    tenant: &Tenant,
    request: &mut RefundRequest,
    amount: i64,
) -> ApiResult<Refund> {
    let cashin = state
        .store
        .transfer_by_end_to_end_id(tenant.id, Direction::Cashin, &request.transaction_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::TransferNotRefundable,
                "createRefund: you received no Pix with this request's transactionId; nothing to return",
            )
        })?;
    let mut refund = live_med_refund(state, tenant, cashin.id, request.id).await?;
    if refund.is_none() {
        let block = super::blocks::before_med_refund(state, tenant, &request.transaction_id, amount).await?;
        let mut metadata = pix_store::refunds::Metadata::new();
        metadata.insert(MED_REQUEST_KEY.to_owned(), serde_json::Value::String(request.id.to_string()));
        let created = outgoing::create(
            &app.app,
            outgoing::RefundRequest {
                tenant,
                account_id: cashin.account_id,
                transfer_id: cashin.id,
                reason: med_return_reason(&request.reason),
                amount,
                description: Some(format!("MED refund request {}", request.btg_id)),
                metadata,
                operations: None,
                adopt: block.as_ref(),
                idempotency_key: None,
            },
        )
        .await;
        refund = match created {
            Ok(r) => Some(r),
            // A concurrent close of this request created it first (the unique index refused this
            // one before anything was held): use that one.
            Err(AppError::Store(StoreError::Conflict(_))) => {
                live_med_refund(state, tenant, cashin.id, request.id).await?
            }
            Err(e) => return Err(e.into()),
        };
    }
    let refund =
        refund.ok_or_else(|| ApiError::internal("a refund of this MED request conflicted but is not found"))?;
    if refund.amount != amount {
        return Err(link_refused(format!(
            "refund {} of {} was already created for this request; close with refundId {} or REJECTED",
            refund.id,
            Money::from_centavos(refund.amount),
            refund.id
        )));
    }
    if request.refund_id != Some(refund.id) {
        request.refund_id = Some(refund.id);
        request.updated_at = state.clock.now();
        save_refund(state, request).await?;
    }
    match refund.status() {
        RefundStatus::Processing | RefundStatus::Completed if refund.return_end_to_end_id().is_some() => Ok(refund),
        RefundStatus::Failed => {
            let why = refund.state.failure().map(|f| format!(" ({}: {})", f.code, f.reason)).unwrap_or_default();
            Err(link_refused(format!(
                "refund {} FAILED{why}; the request stays OPEN: close it again (a new refund is created) or REJECTED",
                refund.id
            )))
        }
        status => Err(ApiError::new(
            ErrorCode::MedRefundPending,
            format!(
                "refund {} is {status}: BTG has not (certainly) accepted it, so there is no return id yet; the \
                 request stays OPEN: close it again with refundId {} (or the same createRefund, which reuses \
                 it) once the refund is PROCESSING",
                refund.id, refund.id
            ),
        )),
    }
}

/// Contested side: close a refund request with our analysis. Accepted results name the return
/// of the funds by its `D…` id, by one of our refunds (`refundId`) or by creating it
/// (`createRefund`); see docs/dict.md, "MED link".
#[utoipa::path(post, path = "/v1/dict/refund-requests/{refund_id}/close", tag = "MED", request_body = CloseRefundRequest,
    params(("refund_id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = RefundRequestView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse),
               (status = 409, body = ErrorResponse), (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn close_refund_request(
    State(app): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<CloseRefundRequest>,
) -> ApiResult<Json<RefundRequestView>> {
    let state = Dict::from_ref(&app);
    let result: RefundAnalysisResult = parse_enum("refundAnalysisResult", &body.refund_analysis_result)?;
    let mut refund = find_refund(&state, &tenant, &id).await?;
    let named = match (result, &body.refund_rejection_reason) {
        (RefundAnalysisResult::Rejected, None) => return Err(missing("refundRejectionReason")),
        (RefundAnalysisResult::Rejected, Some(r)) => {
            one_of("refundRejectionReason", r, &["NO_BALANCE", "ACCOUNT_CLOSURE", "INVALID_REQUEST", "OTHER"])?;
            if r == "INVALID_REQUEST" && (refund.reason != "OPERATIONAL_FLAW" || body.refund_analysis_details.is_none())
            {
                return Err(invalid(
                    "refundRejectionReason: INVALID_REQUEST only for OPERATIONAL_FLAW requests, with details",
                ));
            }
            if body.refund_transaction_id.is_some() || body.refund_id.is_some() || body.create_refund.is_some() {
                return Err(invalid("refundTransactionId, refundId and createRefund: only when accepted"));
            }
            None
        }
        (_, Some(_)) => return Err(invalid("refundRejectionReason: only when REJECTED")),
        (_, None) => Some(return_of(&body, result, refund.amount)?),
    };
    if refund.role != RequestRole::Contested {
        return Err(ApiError::new(
            ErrorCode::InvalidRefundStatus,
            "only the contested participant closes a refund request",
        ));
    }
    if refund.status != RefundRequestStatus::Open {
        return Err(ApiError::new(ErrorCode::InvalidRefundStatus, "only an OPEN refund request can be closed"));
    }
    let linked = match &named {
        None => None,
        Some(Return::Given(rtr)) => {
            match state.store.refund_by_return_id(tenant.id, pix_core::transfer::Direction::Cashout, rtr).await? {
                Some(r) => {
                    check_linkable(&refund, result, &r)?;
                    not_linked_elsewhere(&state, &refund, &r).await?;
                    Some(r)
                }
                None => None,
            }
        }
        Some(Return::Refund(refund_id)) => {
            let r =
                state.store.refund(tenant.id, *refund_id).await?.ok_or_else(|| {
                    ApiError::new(ErrorCode::RefundNotFound, "refundId: you have no refund with this id")
                })?;
            check_linkable(&refund, result, &r)?;
            not_linked_elsewhere(&state, &refund, &r).await?;
            Some(r)
        }
        Some(Return::Create(amount)) => Some(create_med_refund(&app, &state, &tenant, &mut refund, *amount).await?),
    };
    let refund_end_to_end_id = match (&linked, &named) {
        (Some(r), _) => r.return_end_to_end_id().map(str::to_owned),
        (None, Some(Return::Given(rtr))) => Some(rtr.clone()),
        (None, _) => None,
    };
    let remote = btg_of(&state, &tenant)?
        .close_refund_request(
            &refund.btg_id,
            &RefundClose {
                result,
                rejection_reason: body.refund_rejection_reason.clone(),
                refund_end_to_end_id,
                details: body.refund_analysis_details.clone(),
            },
        )
        .await
        .map_err(|e| btg_error("closing the refund request", e))?;
    merge_refund(&mut refund, &remote, state.clock.now());
    if let Some(r) = &linked {
        refund.refund_id = Some(r.id);
    }
    refund.analysis_details = body.refund_analysis_details;
    save_refund(&state, &refund).await?;
    if let Some(r) = &linked {
        tracing::info!(request = %refund.id, refund = %r.id, result = %result, "MED refund request closed with our refund");
    }
    Ok(Json(RefundRequestView::from(&refund)))
}

/// `DICT_REFUND` events: requests against us, and changes of ours.
pub struct RefundEvents(pub Dict);

impl InboundHandler for RefundEvents {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let state = &self.0;
            let Some(tenant) = state.store.tenant(event.tenant_id).await.map_err(retry)? else {
                return Err(JobError::Permanent("unknown tenant".into()));
            };
            let BtgEvent::Refund(remote) = super::decode_event(event)? else {
                return Err(JobError::Permanent("DICT_REFUND without a refund request".into()));
            };
            let now = state.clock.now();
            // DICT opens the requests of our funds recoveries on our behalf; the others we did not
            // file are addressed to us.
            let requesting = remote.requesting_participant.as_deref() == Some(tenant.ispb.as_str());
            let existing = state.store.refund_request_by_btg_id(tenant.id, &remote.id).await.map_err(retry)?;
            let (mut refund, mut changed) = match existing {
                Some(mut local) => {
                    let changed = merge_refund(&mut local, &remote, now);
                    (local, changed)
                }
                None if requesting => (
                    RefundRequest {
                        role: RequestRole::Requesting,
                        requesting_participant: Some(tenant.ispb.clone()),
                        contested_participant: None,
                        ..refund_against_us(&tenant, &remote, now)
                    },
                    true,
                ),
                None => (refund_against_us(&tenant, &remote, now), true),
            };
            let recovery =
                local_recovery_id(state, tenant.id, remote.funds_recovery_id.as_deref()).await.map_err(retry)?;
            if recovery.is_some() && refund.fund_recovery_id != recovery {
                refund.fund_recovery_id = recovery;
                refund.updated_at = now;
                changed = true;
            }
            if link_received_return(state, &mut refund).await.map_err(|e| retry(e.0))? {
                changed = true;
            }
            if changed {
                save_refund(state, &refund).await.map_err(|e| retry(e.0))?;
            }
            Ok(())
        })
    }
}

/// A request of ours that DICT closed with a return id: links the refund (type CASHIN) that
/// received those funds, once it is here. Whichever arrives second (the `DICT_REFUND` close or
/// the `PIX_REVERSAL_INBOUND` return) makes the link.
/// `true` when it linked one.
async fn link_received_return(state: &Dict, request: &mut RefundRequest) -> ApiResult<bool> {
    let Some(return_id) = request.refund_transaction_id.as_deref() else { return Ok(false) };
    if request.role != RequestRole::Requesting || request.refund_id.is_some() {
        return Ok(false);
    }
    let Some(received) = state.store.refund_by_return_id(request.tenant_id, Direction::Cashin, return_id).await? else {
        return Ok(false);
    };
    request.refund_id = Some(received.id);
    request.updated_at = state.clock.now();
    Ok(true)
}

/// A return we received: the refund requests of ours DICT closed with its id now link it.
pub async fn on_return_received(state: &Dict, tenant: &Tenant, return_end_to_end_id: &str) -> ApiResult<()> {
    let filter =
        RefundFilter { refund_transaction_id: Some(return_end_to_end_id.to_owned()), ..RefundFilter::default() };
    let (requests, _) = state.store.list_refund_requests(tenant.id, &filter, 10, 0).await?;
    for mut request in requests {
        if link_received_return(state, &mut request).await? {
            save_refund(state, &request).await?;
        }
    }
    Ok(())
}

/// A request we learn of from DICT: addressed to us (the contested participant).
fn refund_against_us(tenant: &Tenant, remote: &btg::RefundRequest, now: DateTime<Utc>) -> RefundRequest {
    RefundRequest {
        id: pix_core::ids::new_id(),
        tenant_id: tenant.id,
        btg_id: remote.id.clone(),
        role: RequestRole::Contested,
        transaction_id: remote.end_to_end_id.clone(),
        amount: remote.amount.centavos(),
        reason: remote.reason.clone(),
        status: remote.status,
        infraction_id: None,
        requesting_participant: EndToEndId::parse(&remote.end_to_end_id).ok().map(|e| e.ispb().to_string()),
        contested_participant: Some(tenant.ispb.clone()),
        refund_details: None,
        analysis_result: remote.analysis_result,
        analysis_details: None,
        rejection_reason: remote.rejection_reason.clone(),
        refund_transaction_id: remote.refund_end_to_end_id.clone(),
        fund_recovery_id: None,
        refund_id: None,
        created_at: now,
        updated_at: now,
    }
}
