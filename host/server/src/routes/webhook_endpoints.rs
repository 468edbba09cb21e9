//! A tenant's outbound webhook endpoints (`/v1/webhooks/endpoints`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_store::webhook_endpoints::{NewWebhookEndpoint, WebhookEndpoint};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ErrorResponse, Page, PageQuery};
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, AppQuery};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_endpoint, list_endpoints)).routes(routes!(get_endpoint, delete_endpoint))
}

/// Flows and the entities each emits (lerian-plugin-api.md §5.1).
const CATALOG: &[(&str, &[&str])] = &[
    (
        "DICT",
        &[
            "CLAIM",
            "INFRACTION_REPORT",
            "REFUND",
            "FUNDS_RECOVERY",
            "FUNDS_RECOVERY_EVENT",
            "DICT_RECONCILIATION_JOB",
            "CAUTIONARY_BLOCK",
        ],
    ),
    ("TRANSFER", &["CASHIN", "CASHOUT"]),
    ("REFUND", &["CASHIN", "CASHOUT"]),
    ("RECURRING", &["AUTHORIZATION_REQUEST", "AUTHORIZATION", "CHARGE", "RECURRENCE"]),
    ("SCHEDULE", &["CASHOUT"]),
    ("COLLECTION", &["IMMEDIATE", "DUE_DATE"]),
    ("REPORT", &["TEMPOSTRANSACOES"]),
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEndpoint {
    /// Absolute https URL that receives the events (http only in demo mode); an IP-literal host
    /// must be a public address.
    #[schema(example = "https://hooks.example.com/pix", pattern = "^https?://[^/@]+")]
    pub url: String,
    /// Only events of this flow (DICT, TRANSFER, REFUND, RECURRING, SCHEDULE, REPORT); all when absent.
    #[schema(pattern = "^(DICT|TRANSFER|REFUND|RECURRING|SCHEDULE|REPORT)$")]
    pub flow_type: Option<String>,
    /// Only this entity of the flow (needs `flowType`); all of the flow when absent.
    pub entity_type: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub flow_type: Option<String>,
    pub entity_type: Option<String>,
    pub enabled: bool,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The creation response also carries the signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// Standard Webhooks secret (`whsec_` + base64) used to sign deliveries.
    pub secret: String,
}

impl From<WebhookEndpoint> for EndpointView {
    fn from(e: WebhookEndpoint) -> Self {
        EndpointView {
            id: e.id,
            url: e.url,
            flow_type: e.flow_type,
            entity_type: e.entity_type,
            enabled: e.enabled,
            description: e.description,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, message)
}

fn not_allowed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::WebhookUrlNotAllowed, message)
}

/// The URL rules: absolute, https outside demo mode, no credentials, and an IP-literal host the
/// outbound policy permits. Names are checked again at every delivery, when they are resolved.
fn validate_url(state: &AppState, raw: &str) -> ApiResult<()> {
    let url = url::Url::parse(raw).map_err(|e| invalid(format!("url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid("url: must be an absolute http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("url: must not embed credentials"));
    }
    if url.scheme() != "https" && !state.config.demo {
        return Err(not_allowed("url: must be https (plain http is accepted in demo mode only)"));
    }
    if state.outbound.check_url(&url).is_err() {
        return Err(not_allowed("url: the address is not a public one this host may deliver to"));
    }
    Ok(())
}

fn validate(body: &CreateEndpoint) -> ApiResult<()> {
    if body.description.chars().count() > 200 {
        return Err(invalid("description: at most 200 characters"));
    }
    match (&body.flow_type, &body.entity_type) {
        (None, Some(_)) => Err(invalid("entityType: needs flowType")),
        (None, None) => Ok(()),
        (Some(flow), entity) => {
            let (_, entities) = CATALOG
                .iter()
                .find(|(f, _)| f == flow)
                .ok_or_else(|| invalid(format!("flowType: unknown flow {flow:?}")))?;
            match entity {
                Some(e) if !entities.contains(&e.as_str()) => {
                    Err(invalid(format!("entityType: {flow} has no entity {e:?}")))
                }
                _ => Ok(()),
            }
        }
    }
}

fn new_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Register an endpoint for the tenant's events.
#[utoipa::path(post, path = "/v1/webhooks/endpoints", tag = "Webhooks", request_body = CreateEndpoint,
    security(("tenant_token" = [])),
    responses((status = 201, body = CreatedEndpoint), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse),
               (status = 409, body = ErrorResponse, description = "PIX-0030: the tenant has `[outbound] max_webhook_endpoints` endpoints already"),
               (status = 422, body = ErrorResponse, description = "PIX-0031: the URL is not https (outside demo mode) or its IP literal is not public")))]
async fn create_endpoint(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AppJson(body): AppJson<CreateEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    validate(&body)?;
    validate_url(&state, &body.url)?;
    let cap = state.config.outbound.max_webhook_endpoints;
    let (_, registered) = state.store.list_webhook_endpoints(tenant.id, 1, 0).await?;
    if registered >= i64::from(cap) {
        return Err(ApiError::new(
            ErrorCode::WebhookEndpointLimit,
            format!("a tenant may register at most {cap} webhook endpoints; delete one first"),
        ));
    }
    let new = NewWebhookEndpoint {
        url: body.url,
        flow_type: body.flow_type,
        entity_type: body.entity_type,
        enabled: body.enabled,
        secret: new_secret(),
        description: body.description,
    };
    let created = state.store.create_webhook_endpoint(tenant.id, &new, state.clock.now()).await?;
    tracing::info!(endpoint = %created.id, "webhook endpoint registered");
    let secret = created.secret.clone();
    Ok((StatusCode::CREATED, Json(CreatedEndpoint { endpoint: created.into(), secret })))
}

/// List the tenant's endpoints, oldest first.
#[utoipa::path(get, path = "/v1/webhooks/endpoints", tag = "Webhooks", params(PageQuery),
    security(("tenant_token" = [])),
    responses((status = 200, body = Page<EndpointView>), (status = 400, body = ErrorResponse)))]
async fn list_endpoints(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AppQuery(query): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<EndpointView>>> {
    let (limit, offset) = query.limit_offset()?;
    let (items, total) = state.store.list_webhook_endpoints(tenant.id, limit, offset).await?;
    Ok(Json(Page {
        items: items.into_iter().map(EndpointView::from).collect(),
        page: query.page.unwrap_or(1),
        limit: query.limit.unwrap_or(10),
        total,
    }))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "webhook endpoint not found")
}

/// One endpoint of the tenant (another tenant's id is "not found").
#[utoipa::path(get, path = "/v1/webhooks/endpoints/{id}", tag = "Webhooks",
    params(("id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 200, body = EndpointView), (status = 400, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
async fn get_endpoint(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<EndpointView>> {
    let endpoint = state.store.webhook_endpoint(tenant.id, id).await?.ok_or_else(not_found)?;
    Ok(Json(endpoint.into()))
}

/// Remove an endpoint; later events are no longer sent to it.
#[utoipa::path(delete, path = "/v1/webhooks/endpoints/{id}", tag = "Webhooks",
    params(("id" = Uuid, Path)), security(("tenant_token" = [])),
    responses((status = 204), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn delete_endpoint(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    match state.store.delete_webhook_endpoint(tenant.id, id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(pix_store::StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}
