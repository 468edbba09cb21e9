//! Bearer-token authentication. Tenant routes need a tenant credential; `/v1/admin/*` needs an
//! admin credential; neither works in the other's place.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pix_core::error::ErrorCode;
use pix_store::tenants::{Credential, Principal, Tenant};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

/// The tenant a request acts for, placed in the request extensions by [`require_tenant`].
#[derive(Debug, Clone)]
pub struct CurrentTenant(pub Tenant);

/// The admin credential that authorised a request, placed by [`require_admin`].
#[derive(Debug, Clone, Copy)]
pub struct CurrentAdmin {
    pub credential_id: Uuid,
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(ErrorCode::Unauthorized, message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

/// Resolves the bearer token; the store keeps resolved credentials briefly (`cache.credential_ttl_ms`).
async fn credential(state: &AppState, headers: &HeaderMap) -> Result<Credential, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("missing bearer token"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
    match state.store.credential_at(token, state.clock.now()).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(unauthorized("invalid, expired or revoked token")),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// 429 `PIX-0017` with `Retry-After` in whole seconds.
fn rate_limited(wait: std::time::Duration) -> Response {
    let secs = crate::rate_limit::retry_after_secs(wait);
    metrics::counter!("tenant_rate_limited_total").increment(1);
    let mut response =
        ApiError::new(ErrorCode::RateLimited, format!("request rate limit reached; retry in {secs} s")).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    response
}

pub async fn require_tenant(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let tenant = match credential(&state, req.headers()).await {
        Ok(Credential { principal: Principal::Tenant { .. }, tenant, .. }) => tenant,
        Ok(Credential { principal: Principal::Admin { .. }, .. }) => {
            return ApiError::new(ErrorCode::Forbidden, "admin credentials cannot act as a tenant").into_response();
        }
        Err(response) => return response,
    };
    let Some(tenant) = tenant else {
        return unauthorized("the token's tenant no longer exists");
    };
    tracing::Span::current().record("tenant", tracing::field::display(tenant.id));
    if let Err(wait) = state.rate_limits.check(tenant.id) {
        return rate_limited(wait);
    }
    req.extensions_mut().insert(CurrentTenant(tenant));
    next.run(req).await
}

pub async fn require_admin(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match credential(&state, req.headers()).await.map(|c| c.principal) {
        Ok(Principal::Admin { credential_id }) => {
            req.extensions_mut().insert(CurrentAdmin { credential_id });
            next.run(req).await
        }
        Ok(Principal::Tenant { .. }) => {
            ApiError::new(ErrorCode::Forbidden, "this endpoint needs an admin credential").into_response()
        }
        Err(response) => response,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<CurrentTenant>()
            .cloned()
            .ok_or_else(|| ApiError::internal("route is missing the require_tenant layer"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentAdmin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<CurrentAdmin>()
            .copied()
            .ok_or_else(|| ApiError::internal("route is missing the require_admin layer"))
    }
}
