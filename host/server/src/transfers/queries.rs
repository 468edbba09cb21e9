//! `GET /v1/transfers` and `GET /v1/transfers/{transfer_id}`, scoped to the tenant and the
//! account in `X-Account-Id`.

use axum::Json;
use axum::extract::State;
use pix_core::error::ErrorCode;
use pix_core::transfer::{Direction, TransferStatus};
use pix_store::transfers::{Transfer, TransferFilter};
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
use crate::list_query::ListQuery;
use crate::routes::ErrorResponse;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_transfers)).routes(routes!(get_transfer))
}

/// Every value is text so that a malformed one is reported as `PIX-0404` with its name.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    /// Default 10.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Default 0.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 2147483647)]
    pub offset: Option<String>,
    /// By creation time, `desc` by default.
    #[param(pattern = "^(asc|desc)$")]
    pub sort_order: Option<String>,
    pub end_to_end: Option<String>,
    #[param(schema_with = crate::openapi::one_of::<pix_core::transfer::TransferStatus>)]
    pub status: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = crate::openapi::one_of::<pix_core::transfer::Direction>)]
    pub transfer_type: Option<String>,
    /// RFC 3339; transfers updated after it.
    #[param(format = DateTime)]
    pub modified_after: Option<String>,
    /// RFC 3339; transfers updated before it.
    #[param(format = DateTime)]
    pub modified_before: Option<String>,
    /// `true`: only intra-PSP ones (settled inside this institution); `false`: only the others.
    #[param(value_type = Option<bool>)]
    pub is_intra_psp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferPage {
    pub items: Vec<TransferView>,
    pub limit: i64,
    pub offset: i64,
    pub total: i64,
}

const QUERY: ListQuery = ListQuery(ErrorCode::InvalidTransferQuery);

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
    let limit = QUERY.number("limit", q.limit.as_deref(), 10, 1..=100)?;
    let offset = QUERY.number("offset", q.offset.as_deref(), 0, 0..=i64::from(i32::MAX))?;
    let descending = QUERY.descending(q.sort_order.as_deref())?;
    let status: Option<TransferStatus> = QUERY.one_of("status", q.status.as_deref())?;
    let direction: Option<Direction> = QUERY.one_of("type", q.transfer_type.as_deref())?;
    let filter = TransferFilter {
        end_to_end_id: q.end_to_end,
        status,
        direction,
        modified_after: QUERY.instant("modified_after", q.modified_after.as_deref())?,
        modified_before: QUERY.instant("modified_before", q.modified_before.as_deref())?,
        is_intra_psp: QUERY.boolean("is_intra_psp", q.is_intra_psp.as_deref())?,
        descending,
    };
    let (items, total) = state.store.list_transfers(tenant.id, Some(account), &filter, limit, offset).await?;
    let items = with_blocks(&state, tenant.id, &items).await?;
    Ok(Json(TransferPage { items, limit, offset, total }))
}

/// The views of `transfers` with the cautionary blocks on each (one query for the page).
async fn with_blocks(state: &AppState, tenant: Uuid, transfers: &[Transfer]) -> ApiResult<Vec<TransferView>> {
    let ids: Vec<Uuid> = transfers.iter().filter(|t| t.direction() == Direction::Cashin).map(|t| t.id).collect();
    let blocks = state.store.cautionary_blocks_of_transfers(tenant, &ids).await?;
    Ok(transfers
        .iter()
        .map(|t| TransferView {
            cautionary_blocks: blocks.iter().filter(|b| b.transfer_id == t.id).map(Into::into).collect(),
            ..TransferView::from(t)
        })
        .collect())
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
        Some(t) if t.account_id == account => {
            Ok(Json(with_blocks(&state, tenant.id, std::slice::from_ref(&t)).await?.remove(0)))
        }
        _ => Err(ApiError::new(ErrorCode::TransferNotFound, "no transfer with this id for this account")),
    }
}
