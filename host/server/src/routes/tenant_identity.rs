//! A tenant's own upstream identity and inbound authentication (admin credential only):
//!
//! - `PUT /v1/admin/tenants/{tenant_id}/btg-identity`: its BTG OAuth2 client (and mTLS files);
//! - `PUT /v1/admin/tenants/{tenant_id}/inbound-secret`: rotate the HMAC secret of its BTG webhooks,
//!   the previous one staying valid for an overlap; `GET …/inbound-secrets` lists the valid ones;
//! - `PUT /v1/admin/tenants/{tenant_id}/inbound-client-certificate`: pin the subject of the client
//!   certificate its webhooks arrive with on the mTLS listener.
//!
//! Secrets are given as references (`env:NAME`, `file:/absolute/path`) and checked to be readable
//! when set; the database never holds a secret value. See docs/security.md.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_integrations::SecretRef;
use pix_store::StoreError;
use pix_store::inbound_secrets::InboundSecret;
use pix_store::tenants::{BtgIdentity, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ErrorResponse;
use super::admin::TenantView;
use crate::app::AppState;
use crate::auth::CurrentAdmin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_btg_identity))
        .routes(routes!(rotate_inbound_secret))
        .routes(routes!(list_inbound_secrets))
        .routes(routes!(pin_inbound_client_certificate))
}

/// Longest overlap a rotated-out inbound secret may keep: a week.
const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;
const DEFAULT_OVERLAP_SECS: u64 = 24 * 3600;

/// A tenant's BTG client. The secret is a reference; the files are paths on the host.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BtgIdentityIn {
    #[schema(example = "institution-a", min_length = 1, max_length = 200)]
    pub client_id: String,
    /// `env:NAME` or `file:/absolute/path`, never the secret itself.
    #[schema(example = "env:BTG_SECRET_INSTITUTION_A", pattern = "^(env:[A-Za-z0-9_]+|file:/.+)$")]
    pub client_secret_ref: String,
    /// PEM certificate chain for BTG's mTLS (with `privateKeyFile`).
    pub certificate_file: Option<String>,
    pub private_key_file: Option<String>,
}

impl BtgIdentityIn {
    /// Checks the identity can be used now, so a typo shows at configuration, not at the first Pix.
    pub fn validate(self) -> ApiResult<BtgIdentity> {
        let client_id = self.client_id.trim();
        if client_id.is_empty() || client_id.len() > 200 {
            return Err(invalid("btgIdentity.clientId: 1 to 200 characters"));
        }
        readable_secret("btgIdentity.clientSecretRef", &self.client_secret_ref)?;
        match (&self.certificate_file, &self.private_key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                for (field, path) in [("certificateFile", cert), ("privateKeyFile", key)] {
                    if !std::path::Path::new(path).is_file() {
                        return Err(invalid(format!("btgIdentity.{field}: no readable file at {path}")));
                    }
                }
            }
            _ => return Err(invalid("btgIdentity: certificateFile and privateKeyFile go together")),
        }
        Ok(BtgIdentity {
            client_id: client_id.to_owned(),
            client_secret_ref: self.client_secret_ref,
            certificate_file: self.certificate_file,
            private_key_file: self.private_key_file,
        })
    }
}

/// A tenant's BTG client as shown to operators: references only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BtgIdentityOut {
    pub client_id: String,
    pub client_secret_ref: String,
    pub certificate_file: Option<String>,
    pub private_key_file: Option<String>,
}

impl From<BtgIdentity> for BtgIdentityOut {
    fn from(b: BtgIdentity) -> Self {
        BtgIdentityOut {
            client_id: b.client_id,
            client_secret_ref: b.client_secret_ref,
            certificate_file: b.certificate_file,
            private_key_file: b.private_key_file,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InboundSecretIn {
    /// `env:NAME` or `file:/absolute/path` holding the HMAC secret BTG signs this tenant's webhooks with.
    #[schema(example = "file:/run/secrets/btg-webhook-a", pattern = "^(env:[A-Za-z0-9_]+|file:/.+)$")]
    pub secret_ref: String,
    /// How long the secret being replaced stays valid (0 retires it at once; at most a week).
    #[schema(minimum = 0, maximum = 604800, default = 86400)]
    pub previous_valid_for_secs: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboundSecretOut {
    pub secret_ref: String,
    pub created_at: DateTime<Utc>,
    /// `null` for the current secret.
    pub retires_at: Option<DateTime<Utc>>,
}

impl From<InboundSecret> for InboundSecretOut {
    fn from(s: InboundSecret) -> Self {
        InboundSecretOut { secret_ref: s.secret_ref, created_at: s.created_at, retires_at: s.retires_at }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InboundClientCertificateIn {
    /// The subject CN or a DNS SAN the client certificate must carry; `null` removes the pin.
    #[schema(example = "webhooks.btgpactual.com", max_length = 253)]
    pub subject: Option<String>,
}

/// Replace a tenant's BTG client (its clients are rebuilt on next use).
#[utoipa::path(put, path = "/v1/admin/tenants/{tenant_id}/btg-identity", tag = "Admin",
    params(("tenant_id" = Uuid, Path)), request_body = BtgIdentityIn, security(("admin_token" = [])),
    responses((status = 200, body = TenantView), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
               (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn put_btg_identity(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(tenant_id): AppPath<Uuid>,
    AppJson(body): AppJson<BtgIdentityIn>,
) -> ApiResult<Json<TenantView>> {
    let identity = body.validate()?;
    state.store.set_btg_identity(tenant_id, &identity, state.clock.now()).await.map_err(identity_conflict)?;
    state.integrations.forget(tenant_id);
    tracing::info!(tenant = %tenant_id, admin = %admin.credential_id, "BTG identity replaced");
    Ok(Json(tenant(&state, tenant_id).await?.into()))
}

/// Make a new HMAC secret current for the tenant's BTG webhooks; the one it replaces stays valid
/// for the overlap, so BTG can switch at any moment inside it.
#[utoipa::path(put, path = "/v1/admin/tenants/{tenant_id}/inbound-secret", tag = "Admin",
    params(("tenant_id" = Uuid, Path)), request_body = InboundSecretIn, security(("admin_token" = [])),
    responses((status = 200, body = Vec<InboundSecretOut>, description = "the secrets valid now"),
               (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn rotate_inbound_secret(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(tenant_id): AppPath<Uuid>,
    AppJson(body): AppJson<InboundSecretIn>,
) -> ApiResult<Json<Vec<InboundSecretOut>>> {
    tenant(&state, tenant_id).await?;
    readable_secret("secretRef", &body.secret_ref)?;
    let overlap = body.previous_valid_for_secs.unwrap_or(DEFAULT_OVERLAP_SECS);
    if overlap > MAX_OVERLAP_SECS {
        return Err(invalid(format!("previousValidForSecs: at most {MAX_OVERLAP_SECS}")));
    }
    let now = state.clock.now();
    let until = now + chrono::Duration::seconds(i64::try_from(overlap).unwrap_or(0));
    state.store.rotate_inbound_secret(tenant_id, &body.secret_ref, until, now).await?;
    tracing::info!(tenant = %tenant_id, admin = %admin.credential_id, overlap, "inbound webhook secret rotated");
    list(&state, tenant_id).await
}

/// The HMAC secrets (references) that authenticate the tenant's BTG webhooks now, current first.
#[utoipa::path(get, path = "/v1/admin/tenants/{tenant_id}/inbound-secrets", tag = "Admin",
    params(("tenant_id" = Uuid, Path)), security(("admin_token" = [])),
    responses((status = 200, body = Vec<InboundSecretOut>), (status = 401, body = ErrorResponse),
               (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn list_inbound_secrets(
    State(state): State<AppState>,
    _: CurrentAdmin,
    AppPath(tenant_id): AppPath<Uuid>,
) -> ApiResult<Json<Vec<InboundSecretOut>>> {
    tenant(&state, tenant_id).await?;
    list(&state, tenant_id).await
}

/// Pin the client certificate the tenant's webhooks must present on the mTLS listener.
#[utoipa::path(put, path = "/v1/admin/tenants/{tenant_id}/inbound-client-certificate", tag = "Admin",
    params(("tenant_id" = Uuid, Path)), request_body = InboundClientCertificateIn, security(("admin_token" = [])),
    responses((status = 200, body = TenantView), (status = 400, body = ErrorResponse),
               (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
               (status = 404, body = ErrorResponse)))]
async fn pin_inbound_client_certificate(
    State(state): State<AppState>,
    admin: CurrentAdmin,
    AppPath(tenant_id): AppPath<Uuid>,
    AppJson(body): AppJson<InboundClientCertificateIn>,
) -> ApiResult<Json<TenantView>> {
    let subject = body.subject.as_deref().map(str::trim);
    if subject.is_some_and(|s| s.is_empty() || s.len() > 253 || s.chars().any(char::is_control)) {
        return Err(invalid("subject: 1 to 253 printable characters, or null"));
    }
    state.store.set_inbound_client_subject(tenant_id, subject, state.clock.now()).await.map_err(not_found)?;
    tracing::info!(tenant = %tenant_id, admin = %admin.credential_id, pinned = subject.is_some(), "inbound client certificate pin set");
    Ok(Json(tenant(&state, tenant_id).await?.into()))
}

async fn list(state: &AppState, tenant_id: Uuid) -> ApiResult<Json<Vec<InboundSecretOut>>> {
    let secrets = state.store.inbound_secrets(tenant_id, state.clock.now()).await?;
    Ok(Json(secrets.into_iter().map(Into::into).collect()))
}

async fn tenant(state: &AppState, id: Uuid) -> ApiResult<Tenant> {
    state.store.tenant(id).await?.ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "tenant not found"))
}

/// A Midaz id: a UUID, as Midaz issues them.
pub(super) fn midaz_id(field: &str, value: &str) -> ApiResult<String> {
    Uuid::parse_str(value.trim()).map(|id| id.to_string()).map_err(|_| invalid(format!("{field}: a Midaz id (UUID)")))
}

/// A reference that parses and can be read now; the error names the reference, never a value.
fn readable_secret(field: &str, reference: &str) -> ApiResult<()> {
    let parsed: SecretRef = reference.parse().map_err(|e| invalid(format!("{field}: {e}")))?;
    parsed.resolve().map_err(|e| invalid(format!("{field}: {e}")))?;
    Ok(())
}

/// A uniqueness conflict on the tenant row is someone else's ledger or BTG client.
pub(super) fn identity_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(message) => ApiError::new(ErrorCode::TenantIdentityInUse, message),
        other => not_found(other),
    }
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::new(ErrorCode::ResourceNotFound, "tenant not found"),
        other => other.into(),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, message)
}
