//! `GET /v1/transfers` and `GET /v1/transfers/{transfer_id}`, scoped to the tenant and the
//! account in `X-Account-Id`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use pix_core::error::ErrorCode;
use pix_core::transfer::{Direction, TransferStatus};
use pix_store::transfers::TransferFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::TransferView;
use crate::app::AppState;
use crate::auth::CurrentTenant;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AccountId, AppPath, AppQuery};
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_transfers)).routes(routes!(get_transfer))
}

/// Every value is text so that a malformed one is reported as `PIX-0404` with its name.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    /// 1–100, default 10.
    pub limit: Option<String>,
    /// Default 0.
    pub offset: Option<String>,
    /// `asc` or `desc` (default) by creation time.
    pub sort_order: Option<String>,
    pub end_to_end: Option<String>,
    /// `PENDING`, `IN_REVIEW`, `PROCESSING`, `COMPLETED`, `FAILED`, `CANCELLED` or
    /// `RECONCILIATION_REQUIRED`.
    pub status: Option<String>,
    /// `CASHOUT` or `CASHIN`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub transfer_type: Option<String>,
    /// RFC 3339; transfers updated after it.
    pub modified_after: Option<String>,
    /// RFC 3339; transfers updated before it.
    pub modified_before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferPage {
    pub items: Vec<TransferView>,
    pub limit: i64,
    pub offset: i64,
    pub total: i64,
}

fn bad_query(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidTransferQuery, message)
}

fn number(name: &str, value: Option<&str>, default: i64, range: std::ops::RangeInclusive<i64>) -> ApiResult<i64> {
    let n = match value {
        None => default,
        Some(v) => v.parse().map_err(|_| bad_query(format!("{name} must be a number")))?,
    };
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(bad_query(format!("{name} must be between {} and {}", range.start(), range.end())))
    }
}

fn instant(name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.to_utc())
                .map_err(|_| bad_query(format!("{name} must be an RFC 3339 timestamp")))
        })
        .transpose()
}

/// The account's transfers, newest first unless `sort_order=asc`.
#[utoipa::path(get, path = "/v1/transfers", tag = "Transfers",
    params(TransferQuery, ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = TransferPage), (status = 400, body = ErrorResponse)))]
async fn list_transfers(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppQuery(q): AppQuery<TransferQuery>,
) -> ApiResult<Json<TransferPage>> {
    let limit = number("limit", q.limit.as_deref(), 10, 1..=100)?;
    let offset = number("offset", q.offset.as_deref(), 0, 0..=i64::from(i32::MAX))?;
    let descending = match q.sort_order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(bad_query("sort_order must be asc or desc")),
    };
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<TransferStatus>().map_err(|_| {
                let all: Vec<&str> = TransferStatus::ALL.iter().map(|s| s.as_str()).collect();
                bad_query(format!("status {s:?} must be one of {}", all.join(", ")))
            })
        })
        .transpose()?;
    let direction = q
        .transfer_type
        .as_deref()
        .map(|t| t.parse::<Direction>().map_err(|_| bad_query("type must be CASHOUT or CASHIN")))
        .transpose()?;
    let filter = TransferFilter {
        end_to_end_id: q.end_to_end,
        status,
        direction,
        modified_after: instant("modified_after", q.modified_after.as_deref())?,
        modified_before: instant("modified_before", q.modified_before.as_deref())?,
        descending,
    };
    let (items, total) = state.store.list_transfers(tenant.id, account, &filter, limit, offset).await?;
    Ok(Json(TransferPage { items: items.iter().map(TransferView::from).collect(), limit, offset, total }))
}

/// One transfer of the account.
#[utoipa::path(get, path = "/v1/transfers/{transfer_id}", tag = "Transfers",
    params(("transfer_id" = Uuid, Path), ("X-Account-Id" = Uuid, Header)), security(("tenant_token" = [])),
    responses((status = 200, body = TransferView), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get_transfer(
    State(state): State<AppState>,
    CurrentTenant(tenant): CurrentTenant,
    AccountId(account): AccountId,
    AppPath(transfer_id): AppPath<Uuid>,
) -> ApiResult<Json<TransferView>> {
    match state.store.transfer(tenant.id, transfer_id).await? {
        Some(t) if t.account_id == account => Ok(Json(TransferView::from(&t))),
        _ => Err(ApiError::new(ErrorCode::TransferNotFound, "no transfer with this id for this account")),
    }
}
