//! Operator endpoints under `/v1/admin` (admin credential only): tenants and inbound events.
//! Credentials are in `credentials`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::ids::Ispb;
use pix_store::tenants::{NewTenant, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ErrorResponse;
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppJson;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_tenant, list_tenants)).routes(routes!(list_inbound_events))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTenant {
    /// Unique, human-readable name of the institution.
    #[schema(example = "Banco Exemplo", min_length = 1, max_length = 100)]
    pub name: String,
    /// The institution's ISPB (8 digits); payments to it are intra-PSP.
    #[schema(example = "12345678", pattern = "^[0-9]{8}$")]
    pub ispb: String,
    /// The institution's own Midaz organization; with the ledger, used by no other tenant.
    #[schema(format = Uuid)]
    pub midaz_organization_id: String,
    #[schema(format = Uuid)]
    pub midaz_ledger_id: String,
    /// The institution's own BTG client. Required outside demo mode.
    pub btg_identity: Option<super::tenant_identity::BtgIdentityIn>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub ispb: String,
    pub midaz_organization_id: Option<String>,
    pub midaz_ledger_id: Option<String>,
    pub btg_identity: Option<super::tenant_identity::BtgIdentityOut>,
    /// Subject (CN or DNS SAN) the client certificate on the mTLS webhook listener must carry.
    pub inbound_client_subject: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        TenantView {
            id: t.id,
            name: t.name,
            ispb: t.ispb,
            midaz_organization_id: t.midaz_organization_id,
            midaz_ledger_id: t.midaz_ledger_id,
            btg_identity: t.btg.map(Into::into),
            inbound_client_subject: t.inbound_client_subject,
            created_at: t.created_at,
        }
    }
}

/// A bearer token, shown once: only its hash is kept.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCredential {
    pub credential_id: Uuid,
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTenant {
    pub tenant: TenantView,
    pub credential: IssuedCredential,
}

/// Create a tenant (institution) and its first API credential.
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "Admin", request_body = CreateTenant,
    security(("admin_token" = [])),
    responses((status = 201, body = CreatedTenant), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
               (status = 409, body = ErrorResponse, description = "name, ledger or BTG client already used (PIX-0041)")))]
async fn create_tenant(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppJson(body): AppJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::new(ErrorCode::InvalidField, "name: 1 to 100 characters"));
    }
    let ispb = Ispb::parse(&body.ispb).map_err(|e| ApiError::new(ErrorCode::InvalidField, format!("ispb: {e}")))?;
    let organization = super::tenant_identity::midaz_id("midazOrganizationId", &body.midaz_organization_id)?;
    let ledger = super::tenant_identity::midaz_id("midazLedgerId", &body.midaz_ledger_id)?;
    let btg = match body.btg_identity {
        Some(identity) => Some(identity.validate()?),
        None if state.config.demo => None,
        None => {
            return Err(ApiError::new(
                ErrorCode::MissingField,
                "btgIdentity is required outside demo mode: each institution uses its own BTG client",
            ));
        }
    };
    let now = state.clock.now();
    let tenant = state
        .store
        .create_tenant(
            NewTenant {
                name: name.to_owned(),
                ispb: ispb.as_str().to_owned(),
                midaz_organization_id: Some(organization),
                midaz_ledger_id: Some(ledger),
                settings: serde_json::json!({}),
                btg,
            },
            now,
        )
        .await
        .map_err(super::tenant_identity::identity_conflict)?;
    let issued = state.store.issue_token(Some(tenant.id), "initial", now).await?;
    tracing::info!(tenant = %tenant.id, admin = %admin.credential_id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant: tenant.into(),
            credential: IssuedCredential { credential_id: issued.credential_id, token: issued.token },
        }),
    ))
}

/// List every tenant.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "Admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<TenantView>), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse)))]
async fn list_tenants(State(state): State<AppState>, _: CurrentAdmin) -> ApiResult<Json<Vec<TenantView>>> {
    Ok(Json(state.store.list_tenants().await?.into_iter().map(TenantView::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboundQuery {
    #[param(pattern = "^(pending|processed|unhandled|failed)$")]
    pub status: Option<String>,
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
}

/// Inbound BTG events, newest first: look for `unhandled` (no handler for the type) and `failed`.
#[utoipa::path(get, path = "/v1/admin/inbound-events", tag = "Admin", params(InboundQuery),
    security(("admin_token" = [])),
    responses((status = 200, body = Vec<serde_json::Value>), (status = 400, body = ErrorResponse)))]
async fn list_inbound_events(
    State(state): State<AppState>,
    _: CurrentAdmin,
    crate::extract::AppQuery(query): crate::extract::AppQuery<InboundQuery>,
) -> ApiResult<Json<Vec<pix_store::inbound::InboundEvent>>> {
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(pix_store::inbound::InboundStatus::parse(s).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidField, "status: one of pending, processed, unhandled, failed")
        })?),
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidField, "limit must be between 1 and 500"));
    }
    Ok(Json(state.store.list_inbound_events(status, limit).await?))
}
