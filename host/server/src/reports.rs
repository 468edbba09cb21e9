//! trck.002 reporting of intra-PSP settlements (issue #14; docs/intra-psp.md): the reporter's
//! configuration and task, BTG's camt.025 receipts (`PIX_INTERNAL_TRANSACTIONS_REPORT`) and the
//! operators' listing. The work itself is `pix_app::reports`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_integrations::btg::BtgEvent;
use pix_store::inbound::InboundEvent;
use pix_store::internal_reports::{self, InternalReport, ReportFilter, ReportState};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::dict::decode_event;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppQuery;
use crate::inbound::InboundHandler;
use crate::routes::ErrorResponse;
use crate::worker::{JobError, JobFuture};

/// `[trck002]`: how the reporter batches and retries (see docs/intra-psp.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// How often the reporter looks for settlements to report.
    pub poll_interval_ms: u64,
    /// Settlements per trck.002 report.
    pub batch_size: u32,
    /// Retry delay after a failed submission, doubled each time up to the cap.
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    /// A report BTG accepted without a camt.025 after this long is asked for at BTG.
    pub confirm_after_secs: u64,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        let d = pix_app::reports::ReportSettings::default();
        let ms = |d: chrono::Duration| u64::try_from(d.num_milliseconds()).unwrap_or(0);
        ReportsConfig {
            poll_interval_ms: u64::try_from(d.poll_every.as_millis()).unwrap_or(u64::MAX),
            batch_size: u32::try_from(d.batch_size).unwrap_or(20),
            retry_base_ms: ms(d.backoff_base),
            retry_cap_ms: ms(d.backoff_cap),
            confirm_after_secs: u64::try_from(d.confirm_after.num_seconds()).unwrap_or(0),
        }
    }
}

impl ReportsConfig {
    pub fn settings(&self) -> pix_app::reports::ReportSettings {
        let ms = |v: u64| chrono::Duration::milliseconds(i64::try_from(v).unwrap_or(i64::MAX / 1_000_000));
        pix_app::reports::ReportSettings {
            poll_every: Duration::from_millis(self.poll_interval_ms.max(1)),
            batch_size: i64::from(self.batch_size.max(1)),
            backoff_base: ms(self.retry_base_ms.max(1)),
            backoff_cap: ms(self.retry_cap_ms.max(self.retry_base_ms).max(1)),
            confirm_after: ms(self.confirm_after_secs.saturating_mul(1000)),
            ..pix_app::reports::ReportSettings::default()
        }
    }
}

/// The reporter, as `serve` runs it (one per instance; they share the work through leases).
pub fn spawn_workers(state: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    tasks.spawn(reporter(state, None, shutdown.clone()));
}

/// The reporter task with the configured settings, looking every `poll_every` instead when given
/// (the tests look every few milliseconds; what is due depends on their clock).
pub fn reporter(
    state: &AppState,
    poll_every: Option<Duration>,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    let mut settings = state.config.trck002.settings();
    if let Some(every) = poll_every {
        settings.poll_every = every;
    }
    pix_app::reports::run(state.app.clone(), settings, shutdown)
}

/// BTG's camt.025 receipts of our reports.
pub fn inbound_handlers(state: &AppState) -> Vec<(&'static str, Arc<dyn InboundHandler>)> {
    vec![("PIX_INTERNAL_TRANSACTIONS_REPORT", Arc::new(Receipts(state.clone())))]
}

/// `PIX_INTERNAL_TRANSACTIONS_REPORT`: BACEN answered one of the tenant's reports.
pub struct Receipts(pub AppState);

impl InboundHandler for Receipts {
    fn handle<'a>(&'a self, event: &'a InboundEvent) -> JobFuture<'a> {
        Box::pin(async move {
            let BtgEvent::InternalTransactionsReport(receipt) = decode_event(event)? else {
                return Err(JobError::Permanent("PIX_INTERNAL_TRANSACTIONS_REPORT event without a report".into()));
            };
            Ok(pix_app::reports::on_receipt(&self.0.app, event.tenant_id, &receipt).await?)
        })
    }
}

/// Operator routes.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_reports))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    #[param(schema_with = crate::openapi::one_of::<pix_store::internal_reports::ReportState>)]
    pub status: Option<String>,
    pub tenant_id: Option<Uuid>,
    pub end_to_end_id: Option<String>,
}

/// One recorded intra-PSP settlement and its trck.002 report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InternalReportView {
    pub tenant_id: Uuid,
    pub end_to_end_id: String,
    pub return_identification: Option<String>,
    /// `TRANSFER` or `REFUND`.
    pub kind: String,
    /// Centavos.
    pub amount: i64,
    /// `PENDING`, `SUBMITTED`, `CONFIRMED` or `ERROR`.
    pub status: String,
    pub report_id: Option<String>,
    pub btg_report_id: Option<String>,
    pub receipt_code: Option<String>,
    pub attempts: i64,
    pub rejections: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl From<&InternalReport> for InternalReportView {
    fn from(r: &InternalReport) -> Self {
        InternalReportView {
            tenant_id: r.settlement.tenant_id,
            end_to_end_id: r.settlement.end_to_end_id.clone(),
            return_identification: r.settlement.return_identification.clone(),
            kind: r.settlement.kind.as_str().to_owned(),
            amount: r.settlement.amount,
            status: r.state.as_str().to_owned(),
            report_id: r.report_id.clone(),
            btg_report_id: r.btg_report_id.clone(),
            receipt_code: r.receipt_code.clone(),
            attempts: r.attempts,
            rejections: r.rejections,
            last_error: r.last_error.clone(),
            next_attempt_at: r.next_attempt_at,
            recorded_at: r.recorded_at,
            accepted_at: r.accepted_at,
            answered_at: r.answered_at,
        }
    }
}

/// Intra-PSP settlements and their trck.002 reports, oldest first (at most 500), across tenants
/// unless `tenantId` is given: `status=ERROR` is the queue of reports BACEN rejected twice.
#[utoipa::path(get, path = "/v1/admin/internal-reports", tag = "Transfers", security(("admin_token" = [])),
    params(ReportQuery),
    responses((status = 200, body = Vec<InternalReportView>), (status = 400, body = ErrorResponse),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
async fn list_reports(
    State(state): State<AppState>,
    _admin: CurrentAdmin,
    AppQuery(q): AppQuery<ReportQuery>,
) -> ApiResult<Json<Vec<InternalReportView>>> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<ReportState>)
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, format!("status: {e}")))?;
    let filter = ReportFilter { tenant_id: q.tenant_id, state: status, end_to_end_id: q.end_to_end_id };
    let found = internal_reports::list(&state.store, &filter, 500).await?;
    Ok(Json(found.iter().map(InternalReportView::from).collect()))
}
