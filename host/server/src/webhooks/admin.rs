//! Operator endpoints under `/v1/admin/webhooks`: dead letters, redelivery, routed events.
//! No payloads are shown (they may carry personal data); ids, routing and HTTP outcomes are.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_store::deliveries::{Delivery, DeliveryAttempt, DeliveryFilter, DeliveryStatus, EventRouting, WebhookEvent};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::{ErrorResponse, Page, PageQuery};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(redeliver_one))
        .routes(routes!(redeliver_failed))
        .routes(routes!(list_events))
}

/// One delivery of an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: i64,
    /// The event id, sent as `webhook-id`.
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    #[schema(example = "TRANSFER")]
    pub flow_type: String,
    #[schema(example = "CASHOUT")]
    pub entity_type: String,
    pub entity_id: String,
    /// `pending`, `delivered` or `failed` (dead-lettered).
    #[schema(example = "failed")]
    pub status: String,
    /// Attempts in the current round (a redelivery starts a new one).
    pub attempts: i32,
    pub redeliveries: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// HTTP status of the last attempt, absent when the receiver did not answer.
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            tenant_id: d.tenant_id,
            endpoint_id: d.endpoint_id,
            flow_type: d.flow_type,
            entity_type: d.entity_type,
            entity_id: d.entity_id,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            redeliveries: d.redeliveries,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            delivered_at: d.delivered_at,
            failed_at: d.failed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> Self {
        AttemptView {
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

/// A delivery with every attempt, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempts_log: Vec<AttemptView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `failed` (the dead letters) by default.
    #[param(pattern = "^(failed|pending|delivered)$")]
    pub status: Option<String>,
    pub tenant_id: Option<Uuid>,
    pub endpoint_id: Option<Uuid>,
    pub flow_type: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    #[param(minimum = 1, default = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<u32>,
}

fn paging(page: Option<u32>, limit: Option<u32>) -> ApiResult<(i64, i64, u32, u32)> {
    let (l, o) = PageQuery { page, limit }.limit_offset()?;
    Ok((l, o, page.unwrap_or(1), limit.unwrap_or(10)))
}

/// Deliveries, oldest first; by default the dead letters (`status=failed`).
#[utoipa::path(get, path = "/v1/admin/webhooks/deliveries", tag = "Admin", params(DeliveryQuery),
    security(("admin_token" = [])),
    responses((status = 200, body = Page<DeliveryView>), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    _: CurrentAdmin,
    AppQuery(query): AppQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    let (limit, offset, page, page_limit) = paging(query.page, query.limit)?;
    let status = match query.status.as_deref() {
        None => DeliveryStatus::Failed,
        Some(s) => DeliveryStatus::parse(s)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidField, "status: one of pending, delivered, failed"))?,
    };
    let filter = DeliveryFilter {
        status: Some(status),
        tenant_id: query.tenant_id,
        endpoint_id: query.endpoint_id,
        flow_type: query.flow_type,
        entity_type: query.entity_type,
        entity_id: query.entity_id,
    };
    let (items, total) = state.store.list_deliveries(&filter, limit, offset).await?;
    Ok(Json(Page { items: items.into_iter().map(DeliveryView::from).collect(), page, limit: page_limit, total }))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "webhook delivery not found")
}

/// One delivery and its attempts.
#[utoipa::path(get, path = "/v1/admin/webhooks/deliveries/{id}", tag = "Admin", params(("id" = i64, Path)),
    security(("admin_token" = [])),
    responses((status = 200, body = DeliveryDetail), (status = 400, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
async fn get_delivery(
    State(state): State<AppState>,
    _: CurrentAdmin,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<DeliveryDetail>> {
    let delivery = state.store.delivery(id).await?.ok_or_else(not_found)?;
    let attempts = state.store.delivery_attempts(id).await?;
    Ok(Json(DeliveryDetail {
        delivery: delivery.into(),
        attempts_log: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

/// Send a delivery again now, with the same `webhook-id`. A failed or delivered one starts a new
/// round with the full retry schedule; a pending one is made due now.
#[utoipa::path(post, path = "/v1/admin/webhooks/deliveries/{id}/redeliver", tag = "Admin",
    params(("id" = i64, Path)), security(("admin_token" = [])),
    responses((status = 202, body = DeliveryView), (status = 400, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
pub(crate) async fn redeliver_one(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(id): AppPath<i64>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let delivery = match state.store.redeliver(id, state.clock.now()).await {
        Ok(d) => d,
        Err(pix_store::StoreError::NotFound) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    metrics::counter!("webhook_redeliveries_total").increment(1);
    tracing::info!(delivery = id, admin = %admin.credential_id, "webhook redelivery requested");
    Ok((StatusCode::ACCEPTED, Json(delivery.into())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedeliverFailed {
    /// Only this tenant's dead letters.
    pub tenant_id: Option<Uuid>,
    /// Only this endpoint's dead letters.
    pub endpoint_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redelivered {
    /// How many failed deliveries were put back in the queue.
    pub redelivered: u64,
}

/// Redeliver every dead-lettered delivery, optionally of one tenant and/or endpoint.
#[utoipa::path(post, path = "/v1/admin/webhooks/deliveries/redeliver-failed", tag = "Admin",
    request_body = RedeliverFailed, security(("admin_token" = [])),
    responses((status = 202, body = Redelivered), (status = 400, body = ErrorResponse)))]
async fn redeliver_failed(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppJson(body): AppJson<RedeliverFailed>,
) -> ApiResult<(StatusCode, Json<Redelivered>)> {
    let count = state.store.redeliver_failed(body.tenant_id, body.endpoint_id, state.clock.now()).await?;
    metrics::counter!("webhook_redeliveries_total").increment(count);
    tracing::info!(count, tenant = ?body.tenant_id, endpoint = ?body.endpoint_id, admin = %admin.credential_id,
        "failed webhook deliveries requeued");
    Ok((StatusCode::ACCEPTED, Json(Redelivered { redelivered: count })))
}

/// A routed event (without its payload).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// The `webhook-id`.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub flow_type: String,
    pub entity_type: String,
    pub entity_id: String,
    /// `routed`, `not_routed` (no endpoint matched) or `disabled` (matching endpoints switched off).
    #[schema(example = "not_routed")]
    pub routing: String,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<WebhookEvent> for EventView {
    fn from(e: WebhookEvent) -> Self {
        EventView {
            id: e.id,
            tenant_id: e.tenant_id,
            flow_type: e.flow_type,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            routing: e.routing.as_str().to_owned(),
            occurred_at: e.occurred_at,
            created_at: e.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    pub tenant_id: Option<Uuid>,
    #[param(pattern = "^(routed|not_routed|disabled)$")]
    pub routing: Option<String>,
    #[param(minimum = 1, default = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<u32>,
}

/// Recorded outbound events and how they were routed, newest first.
#[utoipa::path(get, path = "/v1/admin/webhooks/events", tag = "Admin", params(EventQuery),
    security(("admin_token" = [])),
    responses((status = 200, body = Page<EventView>), (status = 400, body = ErrorResponse)))]
async fn list_events(
    State(state): State<AppState>,
    _: CurrentAdmin,
    AppQuery(query): AppQuery<EventQuery>,
) -> ApiResult<Json<Page<EventView>>> {
    let (limit, offset, page, page_limit) = paging(query.page, query.limit)?;
    let routing =
        match query.routing.as_deref() {
            None => None,
            Some(r) => Some(EventRouting::parse(r).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidField, "routing: one of routed, not_routed, disabled")
            })?),
        };
    let (items, total) = state.store.list_webhook_events(query.tenant_id, routing, limit, offset).await?;
    Ok(Json(Page { items: items.into_iter().map(EventView::from).collect(), page, limit: page_limit, total }))
}
