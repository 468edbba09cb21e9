//! Operator endpoints for API credentials (admin credential only): list a tenant's credentials
//! or the admin ones, issue one with an optional expiry, change the expiry, revoke. Never shows a
//! token after issuing it, nor its hash. A revocation or expiry change applies at once in this
//! process and within `cache.credential_ttl_ms` (≤ 1 s) on every other instance.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_store::StoreError;
use pix_store::credentials::CredentialInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ErrorResponse;
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, parse_json};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenant_credentials, issue_tenant_credential))
        .routes(routes!(list_admin_credentials, issue_admin_credential))
        .routes(routes!(set_credential_expiry, revoke_credential))
}

/// A credential as an operator sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    pub id: Uuid,
    /// Absent for an admin credential.
    pub tenant_id: Option<Uuid>,
    /// `tenant` or `admin`.
    #[schema(example = "tenant")]
    pub kind: &'static str,
    pub label: String,
    pub created_at: DateTime<Utc>,
    /// After this instant the token answers 401; absent: no expiry.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Neither revoked nor expired.
    pub active: bool,
}

impl CredentialView {
    fn new(c: CredentialInfo, now: DateTime<Utc>) -> CredentialView {
        let active = c.revoked_at.is_none() && c.expires_at.is_none_or(|at| at > now);
        CredentialView {
            id: c.id,
            tenant_id: c.tenant_id,
            kind: if c.tenant_id.is_some() { "tenant" } else { "admin" },
            label: c.label,
            created_at: c.created_at,
            expires_at: c.expires_at,
            revoked_at: c.revoked_at,
            active,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IssueCredential {
    /// What the credential is for (1 to 100 characters); default `api`.
    #[schema(example = "rotation 2026-12", min_length = 1, max_length = 100)]
    pub label: Option<String>,
    /// When the token stops working (RFC 3339, in the future); absent: never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A bearer token, shown once: only its hash is kept.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCredential {
    pub credential_id: Uuid,
    pub token: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetExpiry {
    /// New expiry (RFC 3339); `null` removes it. A past instant makes the token stop at once.
    pub expires_at: Option<DateTime<Utc>>,
}

fn credential_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::new(ErrorCode::CredentialNotFound, "credential not found"),
        StoreError::Conflict(_) => ApiError::new(ErrorCode::CredentialRevoked, "the credential is revoked"),
        other => other.into(),
    }
}

/// The body is optional: an empty body issues a credential labelled `api` without expiry.
fn issue_request(body: &Bytes, now: DateTime<Utc>) -> ApiResult<(String, Option<DateTime<Utc>>)> {
    let request: IssueCredential =
        if body.iter().all(u8::is_ascii_whitespace) { Default::default() } else { parse_json(body)? };
    let label = request.label.as_deref().map(str::trim).unwrap_or("api");
    if label.is_empty() || label.chars().count() > 100 {
        return Err(ApiError::new(ErrorCode::InvalidField, "label: 1 to 100 characters"));
    }
    if request.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::new(ErrorCode::InvalidField, "expiresAt: must be in the future"));
    }
    Ok((label.to_owned(), request.expires_at))
}

async fn issue(
    state: &AppState,
    admin: CurrentAdmin,
    tenant: Option<Uuid>,
    body: &Bytes,
) -> ApiResult<(StatusCode, Json<IssuedCredential>)> {
    let now = state.clock.now();
    let (label, expires_at) = issue_request(body, now)?;
    let issued = state.store.issue_credential(tenant, &label, expires_at, now).await?;
    tracing::info!(credential = %issued.credential_id, tenant = ?tenant, admin = %admin.credential_id, "credential issued");
    Ok((
        StatusCode::CREATED,
        Json(IssuedCredential { credential_id: issued.credential_id, token: issued.token, expires_at }),
    ))
}

/// List a tenant's credentials, revoked and expired ones included (never their tokens).
#[utoipa::path(get, path = "/v1/admin/tenants/{id}/credentials", tag = "Admin",
    params(("id" = Uuid, Path)), security(("admin_token" = [])),
    responses((status = 200, body = Vec<CredentialView>), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn list_tenant_credentials(
    State(state): State<AppState>,
    _: CurrentAdmin,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<Vec<CredentialView>>> {
    if state.store.tenant(id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "tenant not found"));
    }
    let now = state.clock.now();
    Ok(Json(state.store.list_credentials(Some(id)).await?.into_iter().map(|c| CredentialView::new(c, now)).collect()))
}

/// Issue another API credential for a tenant (e.g. for rotation), optionally expiring.
#[utoipa::path(post, path = "/v1/admin/tenants/{id}/credentials", tag = "Admin",
    params(("id" = Uuid, Path)), request_body(content = Option<IssueCredential>, description = "optional"),
    security(("admin_token" = [])),
    responses((status = 201, body = IssuedCredential), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
async fn issue_tenant_credential(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(id): AppPath<Uuid>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IssuedCredential>)> {
    if state.store.tenant(id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "tenant not found"));
    }
    issue(&state, admin, Some(id), &body).await
}

/// List the admin (operator) credentials, revoked and expired ones included.
#[utoipa::path(get, path = "/v1/admin/credentials", tag = "Admin", security(("admin_token" = [])),
    responses((status = 200, body = Vec<CredentialView>), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse)))]
async fn list_admin_credentials(
    State(state): State<AppState>,
    _: CurrentAdmin,
) -> ApiResult<Json<Vec<CredentialView>>> {
    let now = state.clock.now();
    Ok(Json(state.store.list_credentials(None).await?.into_iter().map(|c| CredentialView::new(c, now)).collect()))
}

/// Issue an admin credential, optionally expiring.
#[utoipa::path(post, path = "/v1/admin/credentials", tag = "Admin",
    request_body(content = Option<IssueCredential>, description = "optional"), security(("admin_token" = [])),
    responses((status = 201, body = IssuedCredential), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
async fn issue_admin_credential(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IssuedCredential>)> {
    issue(&state, admin, None, &body).await
}

/// Set or remove the expiry of a credential (tenant or admin).
#[utoipa::path(patch, path = "/v1/admin/credentials/{id}", tag = "Admin", params(("id" = Uuid, Path)),
    request_body = SetExpiry, security(("admin_token" = [])),
    responses((status = 200, body = CredentialView), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
               (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
               (status = 415, body = ErrorResponse)))]
async fn set_credential_expiry(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<SetExpiry>,
) -> ApiResult<Json<CredentialView>> {
    let info = state.store.set_credential_expiry(id, body.expires_at).await.map_err(credential_error)?;
    tracing::info!(credential = %id, expires_at = ?body.expires_at, admin = %admin.credential_id, "credential expiry set");
    Ok(Json(CredentialView::new(info, state.clock.now())))
}

/// Revoke a credential (tenant or admin): its token answers 401 from now on. Revoking a revoked
/// credential changes nothing.
#[utoipa::path(delete, path = "/v1/admin/credentials/{id}", tag = "Admin", params(("id" = Uuid, Path)),
    security(("admin_token" = [])),
    responses((status = 200, body = CredentialView), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn revoke_credential(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<CredentialView>> {
    let now = state.clock.now();
    let info = state.store.revoke_credential(id, now).await.map_err(credential_error)?;
    tracing::info!(credential = %id, admin = %admin.credential_id, "credential revoked");
    Ok(Json(CredentialView::new(info, now)))
}
