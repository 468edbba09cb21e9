//! HTTP handlers, one module per resource. Each module's `routes()` lists its documented routes.

pub mod admin;
pub mod credentials;
pub mod health;
pub mod tenant_identity;
pub mod transfer_limits;
pub mod webhook_endpoints;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The error body every failure uses.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    /// Stable machine code, e.g. `PIX-0004` or `IDEMPOTENCY_KEY_REUSE`.
    #[schema(example = "PIX-0004")]
    pub code: String,
    #[schema(example = "Invalid Field Values in Request")]
    pub title: String,
    #[schema(example = "url: must be an absolute http(s) URL")]
    pub message: String,
}

/// `page` (≥ 1) and `limit` (1–100), the paging of every list but transfers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, default = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<u32>,
}

impl PageQuery {
    /// (limit, offset), or the name of the bad parameter.
    pub fn limit_offset(&self) -> Result<(i64, i64), crate::error::ApiError> {
        let bad = |m: &str| crate::error::ApiError::new(pix_core::error::ErrorCode::InvalidField, m);
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(10);
        if page == 0 {
            return Err(bad("page must be at least 1"));
        }
        if !(1..=100).contains(&limit) {
            return Err(bad("limit must be between 1 and 100"));
        }
        Ok((i64::from(limit), i64::from(page - 1) * i64::from(limit)))
    }
}

/// A page of results with the paging that produced it.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub limit: u32,
    pub total: i64,
}
